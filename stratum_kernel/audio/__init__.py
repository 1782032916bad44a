"""Audio in and out: files, loudness, the album folder, stems and the stem mixer.

Modules
- ``files``: ``load_audio`` / ``audio_blocks`` / ``audio_info`` / ``write_audio`` /
  ``AudioWriter`` for WAV, FLAC, MP3, Ogg, ...
- ``channels``: channel layouts and the BS.775 stereo downmix.
- ``resampling``: ``resample`` and ``resample_blocks`` (the same, streamed).
- ``loudness``: ITU-R BS.1770-4 (integrated, momentary, short-term, LRA, true peak), also
  measured a block at a time (``LoudnessMeter``).
- ``album``: ``tracklist.json``'s schema and ``load_album`` (a folder of tracks).
- ``dsp_separator``: the weight-free separator, a block of frames at a time.
- ``stems``: ``StemSet``, ``separate``, ``load_stems`` and ``stem_streams`` (cached).
- ``demucs``: the Demucs backend from local weights.
- ``mixer``: ``MixerState`` (gain, mute, solo), mixes, exports and the render's mixer spec.
"""
