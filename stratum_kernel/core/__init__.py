"""The bottom layer: what every stage uses, importing nothing else of stratum.

Modules
- ``errors``: ``StratumError`` and its kinds (``ConfigError``, ``AudioError``, ``ModelError``,
  ``RenderError``): problems a user can fix, each naming file, field, value and fix.
- ``paths``: the project root, caches, safe names, and atomic writes (``atomic_path``).
- ``seeding``: ``rng_for(seed, track, frame, purpose)``, randomness keyed by what it is for.
- ``digests``: ``file_sha256`` (remembered while a file is unchanged) and frame digests.
- ``dsp``: the STFT and the median filter that analysis, separation and the views share.
- ``blockwise``: the same a block at a time (STFT, overlap-add, medians with context,
  tiled products), with results that do not depend on the blocks.
- ``schema``: strict models, YAML reading, and the one validation-error formatter.
- ``timeline``: frame counts and times, ``FrameFeatures``, the stem names.
"""
