"""Rendering an album into films: features → latents → frames → post-FX → H.264, per chunk.

``render_album(config)`` writes ``<output_root>/<run-id>/``: ``<track>.mp4`` per track,
``album.mp4``, ``previews/``, ``meta.json`` and ``render.log``. Each track is cut into chunks
of ``render.chunk_frames`` frames; a chunk is decoded, post-processed and encoded as its own
video segment, and recorded in a small state file written atomically, so ``resume=True``
continues an interrupted run after its last finished chunk and ends with the same files.

Decoding (ONNX Runtime), post-FX (OpenCV/numpy) and encoding (an ffmpeg process) overlap:
two worker threads and the calling thread pass batches through bounded queues. ORT and cv2
release the GIL, so the stages really run side by side.

Determinism: latents and post-FX are keyed by (seed, track, frame); persistence reads the
decoded frames before a chunk (kept from the previous batch, or decoded again on resume and
in previews); so batch size, chunk size and thread count never change a pixel. The digest of
a run of frames is the sha256 of its frames' sha256 digests in order (see
:func:`frames_digest`); meta.json stores it per chunk and per track, for the frames before
encoding (the determinism proof) and for the frames decoded back from the MP4 (what
``stratum verify`` re-checks).

:func:`preview_frame` gives the studio exactly the frame the render produces at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.config import RenderConfig, validate_against_album
from stratum_kernel.errors import RenderError
from stratum_kernel.model_meta import sha256_file
from stratum_kernel.paths import inside, safe_name, write_text_atomic
from stratum_kernel.postfx import PostFXParams, apply_postfx, history_frames
from stratum_kernel.render_pipeline import (
    TrackRun,
    frames_digest,
    render_track_chunks,
)

log = logging.getLogger(__name__)

RUN_FORMAT = "stratum-run/1"
WORK = ".work"
OnChunk = Callable[[str, int], None]


# --------------------------------------------------------------------------- track jobs


@dataclass
class TrackJob:
    """Everything needed to make one track's frames: times, plan, post-FX, seeds.

    Frame i of the film shows track time ``start + i / fps``; ``n_frames`` =
    round((end - start) × fps).
    """

    track_id: str
    audio_path: Path
    start: float
    end: float
    fps: float
    n_frames: int
    seed: int
    postfx_seed: int
    preset: Any
    postfx: PostFXParams
    features: Any
    plan: Any
    painters: list = field(default_factory=list)
    mixer: Any = None  # MixerRenderSpec | None: per-stem weights (picture) and soundtrack

    @property
    def modulated_persistence(self) -> bool:
        return "persistence" in getattr(self.plan, "modulation", {})

    def history_count(self, first_frame: int) -> int:
        """Decoded frames before ``first_frame`` that post-FX needs for persistence."""
        return history_frames(self.postfx, first_frame, self.modulated_persistence)

    def frame_at(self, time_s: float) -> int:
        """The index of the frame showing track time ``time_s`` (clamped to the film)."""
        i = int(np.floor((time_s - self.start) * self.fps + 1e-6))
        return int(np.clip(i, 0, self.n_frames - 1))


class RenderContext:
    """A RenderConfig resolved once: album, model, analysis, decoder and per-track jobs.

    Pass ``album``, ``analysis`` (anything with ``frame_features(track_id, fps=, start=,
    end=)``) or ``model`` to reuse ones already loaded (the studio, tests).
    """

    def __init__(self, config: RenderConfig, *, album: Any = None, analysis: Any = None,
                 model: Any = None, progress: bool = False):
        self.config = config
        self.progress = progress
        self._album = album
        self._analysis = analysis
        self._model = model
        self._decoder = None
        self._jobs: dict[tuple[str, str], TrackJob] = {}
        self._validated = False

    @property
    def album(self):
        if self._album is None:
            from stratum_kernel.album import load_album

            self._album = load_album(self.config.album_path)
        if not self._validated:
            validate_against_album(self.config, self._album)
            self._validated = True
        return self._album

    @property
    def model(self):
        if self._model is None:
            from stratum_kernel.model_meta import load_model

            self._model = load_model(self.config.model_path)
        return self._model

    @property
    def analysis(self):
        if self._analysis is None:
            from stratum_kernel.features import analyze_album

            self._analysis = analyze_album(self.album, progress=self.progress)
        return self._analysis

    @property
    def decoder(self):
        if self._decoder is None:
            from stratum_kernel.decoder import FrameDecoder

            self._decoder = FrameDecoder(self.model, self.config.decoder)
        return self._decoder

    def track_ids(self) -> list[str]:
        return self.config.track_ids(self.album)

    def _audio_source(self, track_id: str) -> tuple[Path, float]:
        track = self.album.track(track_id)
        src = self.config.track_config(track_id).src
        if src is None:
            return Path(track.audio_path), float(track.duration)
        from stratum_kernel.audio_io import audio_info

        path = Path(src) if Path(src).is_absolute() else Path(self.album.root) / src
        return path, float(audio_info(path).duration)

    def job(self, track_id: str, preset: Any = None) -> TrackJob:
        """The (cached) job of a track; ``preset``: a preset name to use instead of the
        configured one (layered like it), or a finished Preset object."""
        from stratum_kernel.controller import LatentController
        from stratum_kernel.timeline import frame_count

        cacheable = preset is None or isinstance(preset, str)
        key = (track_id, preset or "")
        if cacheable and key in self._jobs:
            return self._jobs[key]
        cfg = self.config
        if track_id not in self.album.ids:
            raise RenderError(
                f"track {track_id!r} is not in the album ({', '.join(self.album.ids)})"
            )
        tc = cfg.track_config(track_id)
        audio_path, duration = self._audio_source(track_id)
        start = float(tc.trim.start)
        end = min(float(tc.trim.end) if tc.trim.end is not None else duration, duration)
        if cfg.render.duration is not None:
            end = min(end, start + float(cfg.render.duration))
        if isinstance(preset, str):
            preset_obj = _config_with_preset(cfg, track_id, preset).preset_for(track_id)
        else:
            preset_obj = preset if preset is not None else cfg.preset_for(track_id)
        postfx = cfg.postfx_for(track_id, preset_obj)
        fps = float(cfg.frame_rate)
        ff = self.analysis.frame_features(track_id, fps=fps, start=start, end=end)
        mixer = cfg.mixer_for(track_id)
        if mixer is not None:
            from stratum_kernel.mixer import apply_reactive_weights

            ff = apply_reactive_weights(ff, mixer)
        seed = cfg.seed_for(track_id)
        plan = LatentController(self.model, preset_obj, seed=seed, track_id=track_id).plan(ff)
        n = frame_count(end - start, fps)
        if plan.n_frames != n or ff.n_frames != n:
            raise RenderError(
                f"track {track_id!r}: the plan has {plan.n_frames} frames, expected {n}"
            )
        job = TrackJob(track_id, audio_path, start, end, fps, n, seed,
                       cfg.seed_for(track_id, "postfx"), preset_obj, postfx, ff, plan,
                       mixer=mixer)
        job.painters = build_painters(job, cfg.resolution)
        if cacheable:
            self._jobs[key] = job
        return job

    # -- frames ---------------------------------------------------------------------

    def decode(self, job: TrackJob, start: int, stop: int) -> np.ndarray:
        """Decoded generator frames uint8 [stop - start, h, w, 3]."""
        if stop <= start:
            h, w = self.model.image_size
            return np.zeros((0, h, w, 3), np.uint8)
        return self.decoder.decode(job.plan.latents(start, stop))

    def postfx(self, job: TrackJob, decoded: np.ndarray, start: int,
               history: np.ndarray | None) -> np.ndarray:
        """Output frames uint8 [n, H, W, 3] for decoded frames ``start .. start + n``."""
        stop = start + len(decoded)
        return apply_postfx(
            decoded, job.postfx, frame_indices=range(start, stop), seed=job.postfx_seed,
            track_id=job.track_id, out_size=self.config.resolution,
            modulation=job.plan.postfx_modulation(start, stop), history=history,
            overlays=job.painters, fps=job.fps, start_time=job.start,
        )

    def frames(self, job: TrackJob, start: int, stop: int) -> np.ndarray:
        """Final frames [start, stop) computed alone: exactly what the render writes."""
        if not 0 <= start < stop <= job.n_frames:
            raise RenderError(f"frames {start}..{stop} are outside track {job.track_id!r} "
                              f"(0..{job.n_frames})")
        k = job.history_count(start)
        decoded = self.decode(job, start - k, stop)
        return self.postfx(job, decoded[k:], start, decoded[:k] if k else None)


def _config_with_preset(config: RenderConfig, track_id: str, preset: str) -> RenderConfig:
    """A copy of ``config`` whose track ``track_id`` uses preset ``preset``."""
    copy = config.model_copy(deep=True)
    copy.controller.preset = preset
    for t in copy.tracks:
        if t.id == track_id:
            t.preset = None
    return copy


def build_painters(job: TrackJob, resolution: tuple[int, int]) -> list:
    """Overlay painters from the post-FX ``overlays`` specs (see ``viz/overlay.py``)."""
    specs = job.postfx.overlays
    if not specs:
        return []
    try:
        from stratum_kernel.viz.overlay import build_overlay
    except ImportError:
        raise RenderError(
            f"track {job.track_id!r}: postfx.overlays is set but stratum_kernel.viz.overlay "
            "is not available; remove the overlays or install the visualisation module"
        ) from None
    painters = []
    for spec in specs:
        overlay = build_overlay(spec, size=tuple(resolution), features=job.features,
                                fps=job.fps, track_id=job.track_id, audio_path=job.audio_path)
        painters.append(overlay.paint)
    return painters


# ------------------------------------------------------------------------------ preview

_CONTEXTS: dict[str, RenderContext] = {}


def _context_for(config_or_parts: Any) -> RenderContext:
    if isinstance(config_or_parts, RenderContext):
        return config_or_parts
    if not isinstance(config_or_parts, RenderConfig):
        raise TypeError("preview_frame needs a RenderConfig or a RenderContext")
    key = config_or_parts.model_dump_json() + str(config_or_parts.base_dir)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        if len(_CONTEXTS) >= 2:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        ctx = _CONTEXTS[key] = RenderContext(config_or_parts)
    return ctx


def preview_frame(config_or_parts: RenderConfig | RenderContext, track_id: str, time_s: float,
                  *, preset: Any = None) -> np.ndarray:
    """The frame the render shows at track time ``time_s``: uint8 [H, W, 3], identical to
    the frame written before encoding (same plan, post-FX, persistence history, grain)."""
    ctx = _context_for(config_or_parts)
    job = ctx.job(track_id, preset)
    i = job.frame_at(time_s)
    return ctx.frames(job, i, i + 1)[0]


def preview_frames(config_or_parts: RenderConfig | RenderContext, track_id: str,
                   times: Sequence[float] | None = None, *, frames: tuple[int, int] | None = None,
                   preset: Any = None) -> np.ndarray:
    """Several frames at once: at track ``times`` (seconds), or the frame range
    ``frames=(start, stop)``; uint8 [n, H, W, 3]. Consecutive frames are decoded once."""
    ctx = _context_for(config_or_parts)
    job = ctx.job(track_id, preset)
    if frames is not None:
        return ctx.frames(job, *frames)
    idx = [job.frame_at(t) for t in (times or [])]
    if not idx:
        h, w = ctx.config.resolution[1], ctx.config.resolution[0]
        return np.zeros((0, h, w, 3), np.uint8)
    lo, hi = min(idx), max(idx) + 1
    if hi - lo <= 4 * len(idx) + 16:
        block = ctx.frames(job, lo, hi)
        return np.stack([block[i - lo] for i in idx])
    return np.stack([ctx.frames(job, i, i + 1)[0] for i in idx])


# ------------------------------------------------------------------------------- runs


@dataclass
class TrackResult:
    track_id: str
    film: Path
    frames: int
    duration: float
    info: dict


@dataclass
class RunResult:
    """A finished run: its folder, per-track results, the album film and meta.json."""

    run_id: str
    run_dir: Path
    tracks: dict[str, TrackResult]
    album: Path
    meta: dict
    seconds: float = 0.0

    @property
    def meta_path(self) -> Path:
        return self.run_dir / "meta.json"


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def config_fingerprint(config: RenderConfig, model_sha: str) -> str:
    """What a resumed run must share with the interrupted one: everything that changes
    output bytes (not the run id, batch size or decoder threads)."""
    data = config.to_meta()
    data.pop("run_id", None)
    data.pop("scheduler", None)  # where chunks run never changes a byte
    data.pop("shared_storage", None)
    data.get("decoder", {}).pop("batch_size", None)
    data.get("decoder", {}).pop("threads", None)
    text = json.dumps({"config": data, "model": model_sha}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the output (read without importing them)."""
    from importlib import metadata

    from stratum_kernel import __version__
    from stratum_kernel.encode import ffmpeg_version

    out = {"stratum": __version__, "python": sys.version.split()[0], "ffmpeg": ffmpeg_version()}
    for dist in ("numpy", "onnxruntime-gpu", "onnxruntime", "librosa", "opencv-python-headless",
                 "pydantic", "imageio-ffmpeg", "pillow", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _default_run_id(fingerprint: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + fingerprint[:6]


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


def render_album(config: RenderConfig, *, progress: bool = True, resume: bool = False,
                 on_chunk: OnChunk | None = None, context: RenderContext | None = None,
                 scheduler: Any = None, shared_storage: bool | None = None,
                 worker_hook: Callable[[str, int, int], None] | None = None) -> RunResult:
    """Render every configured track, join the album film, write previews and meta.json.

    resume: continue ``<output_root>/<run_id>`` after its last finished chunk (needs the
    run id and the same config). on_chunk(track_id, chunk_index): called when a chunk's
    segment is encoded, before it is recorded as finished (progress, tests).

    scheduler: render the chunks as tasks on a Dask cluster (see
    :mod:`stratum_kernel.distributed`): a scheduler address ``'tcp://host:8786'``, a
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
    dist = None if scheduler is None else {"scheduler": scheduler,
                                           "shared_storage": shared_storage,
                                           "worker_hook": worker_hook}
    model_sha = sha256_file(ctx.model.onnx_path)
    fp = config_fingerprint(cfg, model_sha)
    if resume and not cfg.run_id:
        raise RenderError("resume needs the run id of the interrupted run (--run-id ID)")
    run_id = safe_name(cfg.run_id or _default_run_id(fp), "run id")
    root = cfg.output_path
    run_dir = root / run_id
    if not inside(root, run_dir):
        raise RenderError(f"run folder {run_dir} would be outside {root}")
    work = run_dir / WORK
    if (run_dir / "meta.json").exists():
        if resume:
            log.info("run %s is already complete", run_id)
            return _result_from_meta(run_dir)
        raise RenderError(f"{run_dir} already holds a finished run; choose another --run-id")
    if work.exists() and not resume:
        raise RenderError(
            f"{run_dir} holds an unfinished run; continue it with --resume or choose another "
            "--run-id"
        )
    work.mkdir(parents=True, exist_ok=True)
    fp_path = work / "fingerprint.json"
    if fp_path.exists():
        old = json.loads(fp_path.read_text()).get("fingerprint")
        if old != fp:
            raise RenderError(
                f"{run_dir} was started with a different configuration or model; resume it "
                "with the same render.yaml and overrides, or choose another --run-id"
            )
    else:
        _write_json(fp_path, {"fingerprint": fp})
    handler, level = _open_log(run_dir)
    try:
        return _render_run(ctx, run_id, run_dir, model_sha, progress=progress,
                           on_chunk=on_chunk, t0=t0, dist=dist)
    except BaseException as err:
        log.error("run %s stopped: %s: %s (continue it with --resume --run-id %s)", run_id,
                  type(err).__name__, err, run_id)
        raise
    finally:
        logger = logging.getLogger("stratum_kernel")
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def _render_run(ctx: RenderContext, run_id: str, run_dir: Path, model_sha: str, *,
                progress: bool, on_chunk: OnChunk | None, t0: float,
                dist: dict | None = None) -> RunResult:
    from tqdm.auto import tqdm

    from stratum_kernel.encode import check_film, concat_films, resolve_x264

    cfg = ctx.config
    ids = ctx.track_ids()
    log.info("run %s: %d track(s) %s at %dx%d %g fps, decoder %s", run_id, len(ids),
             ",".join(ids), *cfg.resolution, cfg.frame_rate, ctx.decoder.provider)
    results: dict[str, TrackResult] = {}
    dist_meta = None
    if dist is not None:
        from stratum_kernel.distributed import render_tracks_distributed

        infos, dist_meta = render_tracks_distributed(
            ctx, run_dir, ids, dist["scheduler"], model_sha=model_sha,
            shared_storage=dist["shared_storage"], progress=progress, on_chunk=on_chunk,
            worker_hook=dist["worker_hook"])
        for tid in ids:
            job = ctx.job(tid)
            results[tid] = TrackResult(tid, run_dir / f"{tid}.mp4", job.n_frames,
                                       job.n_frames / job.fps, infos[tid])
    else:
        bar = tqdm(total=len(ids), desc="tracks", unit="track", disable=not progress)
        try:
            for tid in ids:
                bar.set_postfix_str(tid)
                results[tid] = render_track(ctx, run_dir, tid, progress=progress,
                                            on_chunk=on_chunk)
                bar.update(1)
        finally:
            bar.close()
    fps = float(cfg.frame_rate)
    counts = [results[t].frames for t in ids]
    album = concat_films([results[t].film for t in ids], counts,
                         [run_dir / WORK / t / "audio.wav" for t in ids], run_dir / "album.mp4",
                         fps=fps, params=cfg.encode)
    total = sum(counts)
    check_film(album, frames=total, fps=fps, audio_duration=total / fps, size=cfg.resolution)
    x = resolve_x264(cfg.encode, *cfg.resolution, fps)
    meta = {
        "format": RUN_FORMAT,
        "run_id": run_id,
        "config": {**cfg.to_meta(), "run_id": run_id},
        "versions": library_versions(),
        "model": {"name": ctx.model.meta.name, "version": ctx.model.meta.version,
                  "onnx_sha256": model_sha, "dir": str(ctx.model.directory)},
        "decoder": {"provider": ctx.decoder.provider},
        "encode": {"crf": x.crf, "preset": x.preset, "keyint": x.keyint,
                   "max_bitrate_kbps": x.max_bitrate,
                   "threads": cfg.encode.threads},
        "seeds": {t: results[t].info["seed"] for t in ids},
        "tracks": [results[t].info for t in ids],
        "album": {"file": "album.mp4", "sha256": sha256_file(album), "frames": total,
                  "duration": total / fps},
    }
    if cfg.mixer is not None:  # per-track specs are in tracks[i]["mixer"]
        meta["mixer"] = cfg.mixer.to_meta()
    if dist_meta is not None:
        meta["distributed"] = dist_meta
    _write_json(run_dir / "meta.json", meta)
    shutil.rmtree(run_dir / WORK, ignore_errors=True)
    seconds = time.perf_counter() - t0
    log.info("run %s finished: %d frames in %.1f s (%.2f fps)", run_id, total, seconds,
             total / max(seconds, 1e-9))
    return RunResult(run_id, run_dir, results, album, meta, seconds)


def _result_from_meta(run_dir: Path) -> RunResult:
    meta = json.loads((run_dir / "meta.json").read_text())
    tracks = {
        t["id"]: TrackResult(t["id"], run_dir / t["film"]["file"], t["frames"], t["duration"], t)
        for t in meta["tracks"]
    }
    return RunResult(meta["run_id"], run_dir, tracks, run_dir / "album.mp4", meta)


def render_track(ctx: RenderContext, run_dir: Path, track_id: str, *, progress: bool = True,
                 on_chunk: OnChunk | None = None) -> TrackResult:
    """Render one track into ``<run_dir>/<track_id>.mp4`` (resuming its finished chunks)."""
    job = ctx.job(track_id)
    run = TrackRun(ctx, job, run_dir, work=run_dir / WORK / track_id)
    info = render_track_chunks(run, progress=progress, on_chunk=on_chunk)
    return TrackResult(track_id, run_dir / f"{track_id}.mp4", job.n_frames,
                       job.n_frames / job.fps, info)


__all__ = [
    "RenderContext", "RunResult", "TrackJob", "TrackResult", "frames_digest", "preview_frame",
    "preview_frames", "render_album", "render_track",
]
