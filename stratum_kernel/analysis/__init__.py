"""Audio → features on the video timeline.

Modules
- ``features``: ``compute_features`` / ``features_from_blocks`` — one STFT per track, a
  block of frames at a time, every series at ``sr / hop`` Hz.
- ``tempo``: the tempo estimate and the beat grid (pure numpy).
- ``frames``: ``frame_features`` (a track on the frame timeline) and the album reference.
- ``cache``: ``FeatureCache`` (checksummed npz files keyed by content) and ``analyze_album``.
"""
