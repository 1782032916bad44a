"""Frames → films.

Modules
- ``encode``: ffmpeg, x264 settings and ``VideoEncoder`` (frames through a pipe).
- ``mux``: the film's audio (``prepare_audio``) and joining segments and films.
- ``streams``: what a film holds (``stream_report``, ``check_film``) and its decoded frames.
- ``stills``: the preview stills and GIF cut from a finished film.
"""
