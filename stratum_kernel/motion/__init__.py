"""Features → latents: how the music moves the picture.

Modules
- ``presets``: the moods (``Preset``, YAML files in ``presets/``) and their layering.
- ``controller``: ``LatentController`` — a track's plan of control signals, and latents for
  any frame range from it.
"""
