"""Rendering an album into films: features → latents → frames → post-FX → H.264, per chunk.

``render_album(config)`` writes ``<output_root>/<run-id>/``: ``<track>.mp4`` per track,
``album.mp4``, ``previews/``, ``meta.json`` (the run record, :mod:`stratum_kernel.render.record`)
and ``render.log``. Each track is cut into chunks of ``render.chunk_frames`` frames; a chunk
is decoded, post-processed and encoded as its own video segment, and recorded in a small
state file written atomically (:mod:`stratum_kernel.render.pipeline`), so ``resume=True``
continues an interrupted run after its last finished chunk and ends with the same files.

Determinism: latents and post-FX are keyed by (seed, track, frame); persistence reads the
decoded frames before a chunk (:class:`~stratum_kernel.render.jobs.PersistenceWindow`); so batch
size, chunk size and thread count never change a pixel. The digest of a run of frames is
the sha256 of its frames' sha256 digests in order; meta.json stores it per chunk and per
track, for the frames before encoding (the determinism proof) and for the frames decoded
back from the MP4 (what ``stratum verify`` re-checks).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratum_kernel import __version__
from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.errors import RenderError
from stratum_kernel.core.paths import inside, safe_name, write_text_atomic
from stratum_kernel.film.encode import ffmpeg_version, resolve_x264
from stratum_kernel.film.mux import concat_films
from stratum_kernel.film.streams import check_film
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.distributed import check_local_only, connect, render_tracks_distributed
from stratum_kernel.render.fingerprint import changed, digest, explain, run_fingerprint
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.pipeline import (
    WORK,
    TrackRun,
    render_track_chunks,
    render_track_frames,
)
from stratum_kernel.render.progress import RenderProgress, reporter
from stratum_kernel.render.record import RUN_FORMAT, AlbumRecord, RunRecord, TrackRecord

log = logging.getLogger(__name__)

OnChunk = Callable[[str, int], None]


@dataclass
class RunResult:
    """A finished run: its folder, per-track records, the album film and the run record."""

    run_id: str
    run_dir: Path
    tracks: dict[str, TrackRecord]
    album: Path
    record: RunRecord
    seconds: float = 0.0

    @property
    def meta_path(self) -> Path:
        return self.run_dir / "meta.json"

    def film(self, track_id: str) -> Path:
        """The film of a track."""
        return self.run_dir / self.tracks[track_id].film.file


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the output (read without importing them)."""
    from importlib import metadata

    out = {"stratum": __version__, "python": sys.version.split()[0], "ffmpeg": ffmpeg_version()}
    for dist in ("numpy", "onnxruntime-gpu", "onnxruntime", "librosa", "opencv-python-headless",
                 "pydantic", "imageio-ffmpeg", "pillow", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _default_run_id(picture_digest: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + picture_digest[:6]


def _open_log(run_dir: Path) -> tuple[logging.Handler, int]:
    """Send stratum's INFO messages to ``<run>/render.log`` (appending on resume); returns
    the handler and the logger level to restore."""
    handler = logging.FileHandler(run_dir / "render.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("stratum_kernel")
    level = root.level
    root.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler, level


def render_album(config: RenderConfig, *, progress: bool | str = True, resume: bool = False,
                 on_chunk: OnChunk | None = None, context: RenderContext | None = None,
                 scheduler: Any = None, shared_storage: bool | None = None,
                 worker_hook: Callable[[str, int, int], None] | None = None) -> RunResult:
    """Render every configured track, join the album film, write previews and meta.json.

    resume: continue ``<output_root>/<run_id>`` after its last finished chunk (needs the
    run id and the same config). on_chunk(track_id, chunk_index): called when a chunk's
    segment is encoded, before it is recorded as finished (progress, tests).
    progress: True (bars on a terminal, plain lines elsewhere), False, 'bar' or 'lines'
    (:mod:`stratum_kernel.render.progress`); the analysis reports the same way.

    scheduler: render the chunks as tasks on a Dask cluster (see
    :mod:`stratum_kernel.render.distributed`): a scheduler address ``'tcp://host:8786'``, a
    ``distributed.Client``, or ``'local'`` / ``'local:N'``; default ``config.scheduler``
    (None: render here). shared_storage: whether workers can write into the run folder
    (default ``config.shared_storage``; None: detected). worker_hook(track_id, chunk,
    frames_done): called on the worker during a chunk (fault injection in tests).
    The files are byte-identical to a local run's.
    """
    t0 = time.perf_counter()
    ctx = context or RenderContext(config, progress=progress)
    cfg = ctx.config
    if scheduler is None:
        scheduler = cfg.scheduler
    if shared_storage is None:
        shared_storage = cfg.shared_storage
    if resume and not cfg.run_id:
        raise RenderError("resume needs the run id of the interrupted run (--run-id ID)")
    root = cfg.output_path
    run_dir = root / (cfg.run_id or "")
    if cfg.run_id and (run_dir / "meta.json").exists():
        if resume:
            log.info("run %s is already complete", cfg.run_id)
            return _result_from_record(run_dir)
        raise RenderError(f"{run_dir} already holds a finished run; choose another --run-id")
    if resume and not (run_dir / WORK).is_dir():
        raise RenderError(
            f"there is no unfinished run {cfg.run_id!r} in {root} to resume; start it "
            "without --resume (or check --run-id and --output-root)"
        )
    # Everything that can be checked is checked before the run folder exists, so a run
    # that fails here leaves nothing behind and its id stays free.
    _check_output_root(root)
    jobs = {tid: ctx.job(tid) for tid in ctx.track_ids()}  # album, analysis, presets, ...
    fingerprint = run_fingerprint(ctx, jobs)  # loads the model and probes it
    client = release = None
    if scheduler is not None:
        check_local_only(cfg)
        client, release, address = connect(scheduler)
    try:
        run_id = safe_name(cfg.run_id or _default_run_id(digest(fingerprint["picture"])),
                           "run id")
        run_dir = root / run_id
        if not inside(root, run_dir):
            raise RenderError(f"run folder {run_dir} would be outside {root}")
        _open_run_folder(run_dir, fingerprint, resume=resume)
        handler, level = _open_log(run_dir)
        dist = None if client is None else {"client": client, "address": address,
                                            "shared_storage": shared_storage,
                                            "worker_hook": worker_hook}
        try:
            return _render_run(ctx, run_id, run_dir, progress=progress, on_chunk=on_chunk,
                               t0=t0, dist=dist)
        except BaseException as err:
            log.error("run %s stopped: %s: %s (continue it with --resume --run-id %s)",
                      run_id, type(err).__name__, err, run_id)
            raise
        finally:
            logger = logging.getLogger("stratum_kernel")
            logger.removeHandler(handler)
            logger.setLevel(level)
            handler.close()
    finally:
        if release is not None:
            release()


def _check_output_root(root: Path) -> None:
    """A folder runs can be written into (made when missing); a RenderError naming the
    ``output_root`` and the fix otherwise."""
    if root.exists() and not root.is_dir():
        raise RenderError(f"output_root {root} is a file, not a folder; choose another "
                          "--output-root (or output_root in render.yaml)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".stratum-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RenderError(f"output_root {root}: runs cannot be written there "
                          f"({err.strerror}); choose another --output-root or make it "
                          "writable") from None


def _rendered_anything(work: Path) -> bool:
    """True when a run's work folder records a finished chunk or track."""
    for state in work.glob("*/state.json"):
        try:
            doc = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and (doc.get("chunks") or doc.get("done")):
            return True
    return False


def _open_run_folder(run_dir: Path, fingerprint: dict, *, resume: bool) -> None:
    """Create or reopen ``<run>/.work`` for this run's fingerprint.

    A folder whose run never finished a chunk is started again (a failed start does not
    hold its id); a resume needs the same picture (finished chunks are kept) and remakes
    the audio and joins when only the sound changed."""
    work = run_dir / WORK
    fp_path = work / "fingerprint.json"
    if work.exists() and not _rendered_anything(work):
        if not resume:
            log.info("%s: an earlier start rendered nothing; starting again", run_dir)
        shutil.rmtree(work, ignore_errors=True)
    elif work.exists() and not resume:
        raise RenderError(
            f"{run_dir} holds an unfinished run; continue it with --resume or choose another "
            "--run-id"
        )
    if fp_path.exists():
        try:
            old = json.loads(fp_path.read_text())
            old_picture, old_sound = old["picture"], old["sound"]
        except (OSError, ValueError, KeyError, TypeError):
            raise RenderError(f"{fp_path}: damaged; this run cannot be resumed — choose "
                              "another --run-id") from None
        diff = changed(old_picture, fingerprint["picture"])
        if diff:
            raise RenderError(
                f"{run_dir} was started with other inputs — {explain(diff)} — so its "
                "finished chunks would not match; resume it with the inputs it started "
                "with, or render afresh under another --run-id"
            )
        sound = changed(old_sound, fingerprint["sound"])
        if sound:
            log.info("%s: the sound changed (%s): remaking the audio and the joins",
                     run_dir, ", ".join(sound))
            for state_path in work.glob("*/state.json"):
                state = json.loads(state_path.read_text())
                state.pop("audio", None)
                state.pop("done", None)
                write_text_atomic(state_path, json.dumps(state))
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(fp_path, json.dumps(fingerprint, indent=1, sort_keys=True) + "\n")


def _render_run(ctx: RenderContext, run_id: str, run_dir: Path, *, progress: bool | str,
                on_chunk: OnChunk | None, t0: float, dist: dict | None = None) -> RunResult:
    cfg = ctx.config
    ids = ctx.track_ids()
    shown = reporter(progress, {tid: ctx.job(tid).n_frames for tid in ids})
    log.info("run %s: %d track(s) %s at %dx%d %g fps, decoder %s", run_id, len(ids),
             ",".join(ids), *cfg.resolution, cfg.frame_rate, ctx.decoder.provider)
    tracks: dict[str, TrackRecord] = {}
    dist_meta = None
    if dist is not None:
        tracks, dist_meta = render_tracks_distributed(
            ctx, run_dir, ids, dist["client"], model_sha=file_sha256(ctx.decoder.onnx_path),
            shared_storage=dist["shared_storage"], progress=shown, on_chunk=on_chunk,
            worker_hook=dist["worker_hook"], address=dist["address"])
    else:
        try:
            tracks = _render_tracks_overlapped(ctx, run_dir, ids, shown, on_chunk)
        finally:
            shown.close()
    fps = float(cfg.frame_rate)
    counts = [tracks[t].frames for t in ids]
    album = concat_films([run_dir / tracks[t].film.file for t in ids], counts,
                         [run_dir / WORK / t / "audio.wav" for t in ids], run_dir / "album.mp4",
                         fps=fps, params=cfg.encode)
    total = sum(counts)
    check_film(album, frames=total, fps=fps, audio_duration=total / fps, size=cfg.resolution)
    x = resolve_x264(cfg.encode, *cfg.resolution, fps)
    record = RunRecord(
        format=RUN_FORMAT,
        run_id=run_id,
        config={**cfg.to_meta(), "run_id": run_id},
        notes=cfg.notes,
        versions=library_versions(),
        model={"name": ctx.model.meta.name, "version": ctx.model.meta.version,
               "onnx_sha256": file_sha256(ctx.decoder.onnx_path),
               "head": ctx.decoder.frame_size[0], "dir": str(ctx.model.directory)},
        decoder={"provider": ctx.decoder.provider},
        encode={"crf": x.crf, "preset": x.preset, "tune": x.tune, "keyint": x.keyint,
                "max_bitrate_kbps": x.max_bitrate, "threads": cfg.encode.threads},
        seeds={t: tracks[t].seed for t in ids},
        tracks=[tracks[t] for t in ids],
        album=AlbumRecord(file="album.mp4", sha256=file_sha256(album), frames=total,
                          duration=total / fps),
        mixer=None if cfg.mixer is None else cfg.mixer.to_meta(),  # per track: tracks[i].mixer
        distributed=dist_meta,
    )
    record.write(run_dir / "meta.json")
    shutil.rmtree(run_dir / WORK, ignore_errors=True)
    seconds = time.perf_counter() - t0
    log.info("run %s finished: %d frames in %.1f s (%.2f fps)", run_id, total, seconds,
             total / max(seconds, 1e-9))
    return RunResult(run_id, run_dir, tracks, album, record, seconds)


def _render_tracks_overlapped(ctx: RenderContext, run_dir: Path, ids: list[str],
                              shown: RenderProgress, on_chunk: OnChunk | None
                              ) -> dict[str, TrackRecord]:
    """Each track's frames in turn, while the previous track is finished (segments joined
    with its sound, the film checked, the last chunk's digests and the previews) on one
    background thread: the per-track work no longer waits between tracks. A failure in
    either stops the run after the finishing in flight has ended (its track then stays
    done for ``--resume``)."""
    from concurrent.futures import ThreadPoolExecutor

    tracks: dict[str, TrackRecord] = {}
    finishing: dict = {}  # id -> the future of its finishing
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stratum-finish") as pool:
        for tid in ids:
            for done in [t for t, f in finishing.items() if f.done()]:
                tracks[done] = finishing.pop(done).result()  # raises a finishing failure
            run = TrackRun(ctx, ctx.job(tid), run_dir)
            finishing[tid] = pool.submit(render_track_frames(run, progress=shown,
                                                             on_chunk=on_chunk))
        for tid, future in finishing.items():
            tracks[tid] = future.result()
    return {tid: tracks[tid] for tid in ids}


def _result_from_record(run_dir: Path) -> RunResult:
    record = RunRecord.load(run_dir / "meta.json")
    tracks = {t.id: t for t in record.tracks}
    return RunResult(record.run_id, run_dir, tracks, run_dir / "album.mp4", record)


def render_track(ctx: RenderContext, run_dir: Path, track_id: str, *,
                 progress: bool | str | RenderProgress = True,
                 on_chunk: OnChunk | None = None) -> TrackRecord:
    """Render one track into ``<run_dir>/<track_id>.mp4`` (resuming its finished chunks);
    returns its record."""
    run = TrackRun(ctx, ctx.job(track_id), run_dir)
    shown = reporter(progress, {track_id: run.job.n_frames})
    return render_track_chunks(run, progress=shown, on_chunk=on_chunk)


__all__ = ["RunResult", "render_album", "render_track"]
