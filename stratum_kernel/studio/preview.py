"""Live preview: exact frames for an edited preset, fast, and never queued behind a slider.

:class:`PreviewEngine` makes the frame the render makes at a moment, for a preset that is
being edited: the job comes from :meth:`~stratum_kernel.render.jobs.RenderContext.job` (the one job
builder: features, seeds, preset layers, post-FX, overlays) and the frames from the same
decoder, persistence window and post-FX call as a render, so a saved preset renders
exactly what the preview showed. What a parameter change invalidates is all that is
recomputed:

- the track's features, seeds and timing are kept by the render context;
- the controller plan is remembered per *controller key* (the preset without ``postfx``,
  ``name`` and ``description``), so a post-FX change re-plans nothing;
- decoded generator frames are cached per (track, controller key, frame), so a post-FX
  change or a return to an earlier moment decodes nothing; only post-FX (about a
  millisecond at 256²) runs again.

With persistence (frame feedback) an exact frame needs the decoded frames before it; when
they are not cached yet, ``on_draft`` first gets a *draft* made with the nearest history at
hand (the previous parameters' frames, else the frame itself), then the exact frame follows.

:class:`LatestWins` runs requests in one worker thread with one slot per key: a request
submitted while another waits replaces it (the stale one is dropped), and the work in hand
can ask its :class:`Ticket` whether it has been superseded and stop between stages. A
dragged slider therefore costs at most the frame in progress plus the newest one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from stratum_kernel.core.errors import RenderError
from stratum_kernel.motion.choice import AUTO
from stratum_kernel.motion.presets import Preset, load_preset
from stratum_kernel.render.album_checks import validate_against_album
from stratum_kernel.render.config import RenderConfig, parse_resolution
from stratum_kernel.render.jobs import PersistenceWindow, RenderContext, TrackJob, check_range

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- the worker


class Superseded(Exception):
    """Raised by :meth:`Ticket.check` when a newer request for the same key arrived."""


class Ticket:
    """The handle a unit of work gets: ``superseded``, ``check()`` and ``publish()``."""

    def __init__(self, worker: LatestWins, key: Hashable, seq: int):
        self._worker, self.key, self.seq = worker, key, seq

    @property
    def superseded(self) -> bool:
        """True once a newer request with this key has been submitted."""
        return self._worker.latest(self.key) != self.seq

    def check(self) -> None:
        """Raise :class:`Superseded` when the work in hand is stale (call between stages)."""
        if self.superseded:
            raise Superseded(self.seq)

    def publish(self, value: Any) -> None:
        """Hand a (partial or final) result to the worker's ``on_result`` callback."""
        self._worker._deliver(self.key, self.seq, value)


class LatestWins:
    """One worker thread; one pending slot per key; the newest request wins.

    work(request, ticket) -> result or None: runs in the worker thread; it may publish
    intermediate results with ``ticket.publish`` and stop early with ``ticket.check()``.
    A returned non-None result is published too. on_result(key, seq, value) and
    on_error(key, seq, exc) run in the worker thread. Requests for different keys take
    turns in submission order. ``stats`` counts submitted, started, dropped (replaced
    while waiting), completed, superseded (stopped early) and errors.
    """

    def __init__(self, work: Callable[[Any, Ticket], Any], *,
                 on_result: Callable[[Hashable, int, Any], None] | None = None,
                 on_error: Callable[[Hashable, int, BaseException], None] | None = None,
                 name: str = "stratum-preview"):
        self._work = work
        self._on_result = on_result
        self._on_error = on_error
        self._cond = threading.Condition()
        self._slots: dict[Hashable, tuple[int, Any]] = {}
        self._latest: dict[Hashable, int] = {}
        self._seq = 0
        self._busy = False
        self._closed = False
        self.stats = dict.fromkeys(
            ("submitted", "started", "dropped", "completed", "superseded", "errors"), 0)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Any, key: Hashable = "default") -> int:
        """Queue ``request`` under ``key`` (replacing a waiting one); returns its number."""
        with self._cond:
            if self._closed:
                raise RuntimeError("this preview worker is closed")
            self._seq += 1
            if key in self._slots:
                self.stats["dropped"] += 1
            self._slots[key] = (self._seq, request)
            self._latest[key] = self._seq
            self.stats["submitted"] += 1
            self._cond.notify_all()
            return self._seq

    def latest(self, key: Hashable) -> int | None:
        """The number of the newest request submitted under ``key``."""
        return self._latest.get(key)

    def _deliver(self, key: Hashable, seq: int, value: Any) -> None:
        if self._on_result is not None:
            self._on_result(key, seq, value)

    def _next(self) -> tuple[Hashable, int, Any] | None:
        with self._cond:
            while not self._slots and not self._closed:
                self._cond.wait()
            if not self._slots:
                return None
            key = min(self._slots, key=lambda k: self._slots[k][0])
            seq, request = self._slots.pop(key)
            self._busy = True
            self.stats["started"] += 1
            return key, seq, request

    def _run(self) -> None:
        while (item := self._next()) is not None:
            key, seq, request = item
            ticket = Ticket(self, key, seq)
            try:
                result = self._work(request, ticket)
                if result is not None:
                    ticket.publish(result)
                self.stats["completed"] += 1
            except Superseded:
                self.stats["superseded"] += 1
            except Exception as err:  # reported to the callback, the worker carries on
                self.stats["errors"] += 1
                if self._on_error is not None:
                    self._on_error(key, seq, err)
                else:
                    log.exception("preview request %d failed", seq)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._slots and not self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing waits or runs; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._slots and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Drop waiting requests, let the one in hand finish, stop the thread."""
        with self._cond:
            self._closed = True
            self.stats["dropped"] += len(self._slots)
            self._slots.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


# ------------------------------------------------------------------- preset fields


def _dotted(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in data.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.extend(_dotted(v, path + "."))
        else:
            out.append(path)
    return out


def fields_set_by_config(config: RenderConfig, track_id: str) -> dict[str, str]:
    """Preset fields (dotted, ``postfx.*`` included) that render.yaml sets over the preset
    for ``track_id``, each with where it is set: editing them in a preset changes nothing."""
    album_layer, track_layer = config.preset_layers(track_id)
    src = config.source or "render config"
    out = {p: f"{src}: controller" for p in _dotted(album_layer)}
    out.update({p: f"{src}: tracks[{track_id}].preset_overrides" for p in _dotted(track_layer)})
    postfx = config.postfx.model_dump(mode="json", exclude_unset=True)
    out.update({f"postfx.{p}": f"{src}: postfx" for p in _dotted(postfx)})
    out.update({f"postfx.{p}": f"{src}: tracks[{track_id}].postfx"
                for p in _dotted(config.track_config(track_id).postfx)})
    return out


def scaled_resolution(resolution: tuple[int, int], height: int = 256) -> tuple[int, int]:
    """The film's aspect at ``height`` rows, both sides divisible by 16."""
    w, h = resolution
    height = max(64, int(height) // 16 * 16)
    width = max(64, round(w * height / h / 16) * 16)
    return width, height


def preview_config(config: RenderConfig, resolution: Any) -> RenderConfig:
    """A copy of ``config`` at another output size ('256x256', (448, 256), ...)."""
    size = parse_resolution(resolution)
    return config.model_copy(update={"resolution": size}, deep=True)


def encode_image(frame: np.ndarray, fmt: str = "bmp", quality: int = 88) -> bytes:
    """uint8 [H, W, 3] RGB → BMP, PNG (both lossless) or JPEG bytes.

    The live preview sends BMP: lossless like PNG but ~0.05 ms instead of ~20 ms for a
    256² frame (OpenCV's PNG filter search dominates the whole post-FX chain); the bytes
    travel over the local kernel connection, where size matters less than latency."""
    import cv2

    bgr = np.ascontiguousarray(frame[..., ::-1])
    if fmt == "bmp":
        ok, buf = cv2.imencode(".bmp", bgr)
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    elif fmt in ("jpg", "jpeg"):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        raise ValueError(f"unknown image format {fmt!r}; use 'bmp', 'png' or 'jpeg'")
    if not ok:
        raise RenderError(f"could not encode a {frame.shape} frame as {fmt}")
    return buf.tobytes()


# ---------------------------------------------------------------------- the engine


class PreviewEngine:
    """Exact frames for edited presets over one :class:`RenderContext`, with caches.

    config: the render config (use :func:`preview_config` for a smaller preview size);
    context / album / analysis / model: already loaded parts to share. cache_mb: memory
    for decoded generator frames (least recently used go first).
    """

    def __init__(self, config: RenderConfig, *, context: RenderContext | None = None,
                 album: Any = None, analysis: Any = None, model: Any = None,
                 cache_mb: float = 192.0, max_plans: int = 24):
        self.ctx = context or RenderContext(config, album=album, analysis=analysis,
                                            model=model, max_plans=max_plans)
        self.cache_mb = float(cache_mb)
        self._lock = threading.RLock()
        self._decoded: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._last_key: dict[str, str] = {}
        self.counters = dict.fromkeys(("decoded", "decode_hits"), 0)

    # -- parts of the context --

    @property
    def config(self) -> RenderConfig:
        return self.ctx.config

    @property
    def album(self):
        return self.ctx.album

    @property
    def model(self):
        return self.ctx.model

    def track_ids(self) -> list[str]:
        return self.ctx.track_ids()

    def base_job(self, track_id: str) -> TrackJob:
        """The render's own job for the track (its configured preset)."""
        return self.ctx.job(track_id)

    def file_preset(self, track_id: str) -> Preset:
        """The track's preset as its file holds it (before render.yaml's layers); for
        ``auto``, the preset chosen for the track."""
        name = self.config.preset_name_for(track_id)
        if name == AUTO:
            name = self.ctx.preset_choice(track_id).name
        return load_preset(name, base_dir=self.config.base_dir)

    def job(self, track_id: str, preset: Preset | str | None = None) -> TrackJob:
        """The render job of ``track_id`` with ``preset`` (a base preset; render.yaml's
        layers are applied as in the render; None = the configured one)."""
        return self.ctx.job(track_id, preset)

    def set_sections(self, track_id: str, sections: list[dict]) -> None:
        """Give a track these ``sections`` (render.yaml's ``tracks[].sections`` entries) from
        now on, as if render.yaml said so; a ConfigError naming the field leaves the old
        ones in force."""
        cfg = self.config
        # only what was set: a value set in render.yaml wins over the presets, a default not
        data = cfg.model_dump(mode="json", exclude_unset=True)
        listed = {t["id"]: t for t in data.get("tracks") or []}
        entry = {**listed.get(track_id, {"id": track_id}), "sections": list(sections)}
        # the same tracks as before (the configured list, or every track), in order
        data["tracks"] = [entry if tid == track_id else listed.get(tid, {"id": tid})
                          for tid in cfg.track_ids(self.album)]
        new = RenderConfig.from_dict(data, source=cfg.source, base_dir=cfg.base_dir)
        validate_against_album(new, self.album)
        new._notes = cfg.notes
        with self._lock:
            self.ctx.config = new
            self.ctx.forget_track(track_id)

    # -- decoded frames --

    def _frame_bytes(self) -> int:
        h, w = self.ctx.decoder.frame_size
        return int(h) * int(w) * 3

    def _cache_put(self, track_id: str, ckey: str, start: int, frames: np.ndarray) -> None:
        limit = max(16, int(self.cache_mb * 2**20 / max(1, self._frame_bytes())))
        with self._lock:
            for j, f in enumerate(frames):
                f.setflags(write=False)
                self._decoded[(track_id, ckey, start + j)] = f
            while len(self._decoded) > limit:
                self._decoded.popitem(last=False)

    def _cached(self, track_id: str, ckey: str, i: int) -> np.ndarray | None:
        with self._lock:
            f = self._decoded.get((track_id, ckey, i))
            if f is not None:
                self._decoded.move_to_end((track_id, ckey, i))
            return f

    def decoded(self, job, start: int, stop: int, *, ticket: Ticket | None = None) -> np.ndarray:
        """Decoded generator frames [start, stop) of ``job``: uint8 [n, h, w, 3], from the
        cache where possible; missing runs are decoded in decoder-sized batches (checking
        ``ticket`` between batches)."""
        track_id, ckey = job.track_id, job.controller_key
        have = {i: self._cached(track_id, ckey, i) for i in range(start, stop)}
        missing = [i for i, f in have.items() if f is None]
        with self._lock:
            self.counters["decode_hits"] += len(have) - len(missing)
        batch = max(1, int(self.config.decoder.batch_size))
        for a, b in _runs(missing):
            for s in range(a, b, batch):
                if ticket is not None:
                    ticket.check()
                e = min(b, s + batch)
                out = self.ctx.decode(job, s, e)
                self._cache_put(track_id, ckey, s, out)
                with self._lock:
                    self.counters["decoded"] += e - s
                for j in range(s, e):
                    have[j] = out[j - s]
        self._last_key[track_id] = ckey
        if stop <= start:
            h, w = self.ctx.decoder.frame_size
            return np.zeros((0, h, w, 3), np.uint8)
        return np.stack([have[i] for i in range(start, stop)])

    # -- output frames --

    def frames(self, track_id: str, start: int, stop: int, preset: Preset | str | None = None,
               *, job: Any = None, ticket: Ticket | None = None,
               on_draft: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Output frames [start, stop) exactly as the render writes them: uint8
        [n, H, W, 3]. on_draft(frame [H, W, 3]): for a single frame whose persistence
        history is not decoded yet, called first with a draft (see the module docstring)."""
        job = job if job is not None else self.job(track_id, preset)
        check_range(job, start, stop)
        k = job.history_count(start)
        if on_draft is not None and k and stop - start == 1:
            self._draft(job, start, k, on_draft, ticket)
        return self.window(job, ticket=ticket).frames(start, stop)

    def window(self, job: TrackJob, *, ticket: Ticket | None = None) -> PersistenceWindow:
        """A persistence window over ``job`` that decodes through the frame cache."""
        return self.ctx.window(job, lambda a, b: self.decoded(job, a, b, ticket=ticket))

    def _draft(self, job, i: int, k: int, on_draft, ticket: Ticket | None) -> None:
        ckey = job.controller_key
        if all(self._cached(job.track_id, ckey, j) is not None for j in range(i - k, i)):
            return  # the exact frame is as quick as a draft
        prev = self._last_key.get(job.track_id)
        current = self.decoded(job, i, i + 1, ticket=ticket)
        hist = []
        for j in range(i - k, i):
            f = self._cached(job.track_id, ckey, j)
            if f is None and prev is not None:
                f = self._cached(job.track_id, prev, j)
            hist.append(current[0] if f is None else f)
        on_draft(self.ctx.postfx(job, current, i, np.stack(hist))[0])

    def frame(self, track_id: str, time_s: float, preset: Preset | str | None = None,
              **kwargs: Any) -> np.ndarray:
        """The output frame at track time ``time_s``: uint8 [H, W, 3]."""
        job = self.job(track_id, preset)
        i = job.frame_at(time_s)
        return self.frames(track_id, i, i + 1, job=job, **kwargs)[0]

    def cache_info(self) -> dict[str, int]:
        with self._lock:
            return {"plans_cached": len(self.ctx._plans), "frames_cached": len(self._decoded),
                    **self.ctx.counters, **self.counters}

    def clear(self) -> None:
        with self._lock:
            self._decoded.clear()
            self._last_key.clear()


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices → consecutive [start, stop) runs."""
    out: list[tuple[int, int]] = []
    for i in sorted(indices):
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def strip_indices(i: int, n_frames: int, count: int = 4, step: int = 6) -> list[int]:
    """Up to ``count`` neighbouring frame indices of ``i``, ``step`` apart: nearest first,
    alternating before and after (only one side at the ends of the track), sorted."""
    step = max(1, int(step))
    out: list[int] = []
    k = 1
    while len(out) < count and (i - k * step >= 0 or i + k * step < n_frames):
        for j in (i - k * step, i + k * step):
            if 0 <= j < n_frames and len(out) < count:
                out.append(j)
        k += 1
    return sorted(out)


class Stopwatch:
    """Milliseconds of named stages: ``with sw("decode"): ...``; ``sw.ms`` is the dict."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def __call__(self, name: str):
        sw = self

        class _Stage:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                sw.ms[name] = sw.ms.get(name, 0.0) + 1000 * (time.perf_counter() - self.t)

        return _Stage()

    def total(self) -> float:
        return 1000 * (time.perf_counter() - self._t0)
