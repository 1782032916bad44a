"""The bundled album's composition code (``python album/compose.py``); the FLAC files and
``tracklist.json`` beside it are its output."""
