"""Audio in and out: files, loudness, the album folder, stems and the stem mixer.

Modules
- ``files``: ``load_audio`` / ``audio_info`` / ``write_audio`` for WAV, FLAC, MP3, Ogg, ...
- ``loudness``: ITU-R BS.1770-4 (integrated, momentary, short-term, LRA, true peak).
- ``album``: ``tracklist.json``'s schema and ``load_album`` (a folder of tracks).
- ``stems``: ``StemSet``, the DSP separator, ``separate`` and ``load_stems`` (cached).
- ``demucs``: the Demucs backend from local weights.
- ``mixer``: ``MixerState`` (gain, mute, solo), mixes, exports and the render's mixer spec.
"""
