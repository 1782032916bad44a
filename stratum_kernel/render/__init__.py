"""The whole run, from render.yaml to a verified folder of films.

Modules
- ``config`` / ``overrides``: ``RenderConfig`` and the values the CLI and notebooks set.
- ``jobs``: ``RenderContext`` (each track's ``TrackJob``) and ``PersistenceWindow``.
- ``pipeline``: a track's chunks through decode → post-FX → encode, resumable.
- ``run``: ``render_album`` — every track, the album film, the run record.
- ``record``: ``RunRecord``, the typed ``meta.json``.
- ``distributed``: chunks as tasks on a Dask cluster, byte-identical to a local run.
- ``verify``: ``verify_run`` — a finished folder re-read against its record.
"""
