"""A short preview clip with sound, rendered in a background thread, played inline.

:func:`render_clip` makes ``seconds`` of a track from a frame on, with an edited preset:
exact frames from the :class:`~stratum_kernel.studio.preview.PreviewEngine` (the frames
the render would write), encoded by the render's own segment writer (``encode_range``),
and the film's audio for that span (the whole track's film audio is prepared once per
track by the render's own ``film_audio``, the mixer's soundtrack included, and the clip's
samples are cut from it). It returns the MP4's bytes; :class:`ClipPanel` runs it in a thread with a
progress bar and shows the result in an ``ipywidgets.Video``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.audio.files import write_audio
from stratum_kernel.core.errors import RenderError, StratumError
from stratum_kernel.film.mux import PreparedAudio, concat_segments
from stratum_kernel.render.pipeline import encode_range, film_audio

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, stage)


@dataclass
class Clip:
    """A rendered clip: MP4 bytes, the frame range, and how long it took."""

    data: bytes
    track_id: str
    start: int
    stop: int
    fps: float
    seconds: float

    @property
    def n_frames(self) -> int:
        return self.stop - self.start


class ClipRenderer:
    """Renders clips over one engine; keeps each track's prepared film audio."""

    def __init__(self, engine: Any, *, work_dir: str | Path | None = None):
        self.engine = engine
        self._tmp = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stratum-clip-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir)
        self._audio: dict[str, Any] = {}
        self._lock = threading.Lock()

    def film_audio(self, job: Any) -> PreparedAudio:
        """The track's film audio, prepared once per track exactly as the render does
        (the mixer's soundtrack included)."""
        with self._lock:
            if job.track_id not in self._audio:
                wav = self.work_dir / f"{job.track_id}-film.wav"
                self._audio[job.track_id] = film_audio(self.engine.ctx, job, wav)[0]
            return self._audio[job.track_id]

    def render(self, track_id: str, preset: Any, start_frame: int, seconds: float = 2.0, *,
               progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
               batch: int = 8) -> Clip:
        """``seconds`` of ``track_id`` from ``start_frame`` (shifted back when it would run
        past the end) as MP4 bytes with sound."""
        import soundfile as sf

        t0 = time.perf_counter()
        engine = self.engine
        job = engine.job(track_id, preset)
        n = max(1, min(job.n_frames, round(seconds * job.fps)))
        start = int(np.clip(start_frame, 0, job.n_frames - n))
        stop = start + n
        cfg = engine.config
        w, h = cfg.resolution
        stem = f"{track_id}-{start}-{stop}-{time.time_ns()}"
        seg, out = self.work_dir / f"{stem}.video.mp4", self.work_dir / f"{stem}.mp4"
        wav = self.work_dir / f"{stem}.wav"
        report = progress or (lambda *_: None)
        report(0, n, "frames")

        def on_batch(done: int) -> None:
            report(done, n, "frames")
            if cancelled is not None and cancelled() and done < n:
                raise RenderError("clip cancelled")

        try:
            if cancelled is not None and cancelled():
                raise RenderError("clip cancelled")
            encode_range(engine.window(job), start, stop, seg, width=w, height=h, fps=job.fps,
                         params=cfg.encode, batch=batch, on_batch=on_batch)
            report(n, n, "sound")
            film = self.film_audio(job)
            y, sr = sf.read(film.path, dtype="float32", always_2d=True)
            a0 = round(start / job.fps * sr)
            a1 = min(len(y), round(stop / job.fps * sr))
            write_audio(wav, np.ascontiguousarray(y[a0:a1].T), sr, subtype="FLOAT")
            concat_segments([seg], [n], out, fps=job.fps, params=cfg.encode, audio=wav)
            data = out.read_bytes()
        finally:
            for p in (seg, out, wav):
                p.unlink(missing_ok=True)
        report(n, n, "done")
        return Clip(data, track_id, start, stop, job.fps, time.perf_counter() - t0)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class ClipPanel:
    """A 'render clip' button, a progress bar and an inline video, for an explorer.

    ``source()`` → (track_id, preset, start_frame) of the moment to render. The render runs
    in a daemon thread; the button is disabled meanwhile. ``last`` holds the last Clip.
    """

    def __init__(self, renderer: ClipRenderer, source: Callable[[], tuple[str, Any, int]], *,
                 seconds: float = 2.0, width: int = 384):
        import ipywidgets as w

        self.renderer = renderer
        self.source = source
        self.seconds = w.FloatSlider(value=float(seconds), min=0.5, max=10.0, step=0.5,
                                     description="seconds", layout=w.Layout(width="200px"),
                                     style={"description_width": "56px"})
        self.button = w.Button(description="render clip", layout=w.Layout(width="110px"),
                               tooltip="render a short clip with sound in the background")
        self.button.add_class("stratum-clip-button")
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0,
                                        layout=w.Layout(width="96%"))
        self.status = w.HTML()
        self.width = int(width)
        # the Video widget is made with the first clip: an empty one would hand the browser
        # a 0-byte blob, which the media element fails to load (a console error)
        self.video = None
        self.video_box = w.Box()
        self.widget = w.VBox([w.HBox([self.button, self.seconds]), self.progress,
                              self.status, self.video_box])
        self.last: Clip | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self.button.on_click(lambda _b: self.start())

    def start(self) -> threading.Thread | None:
        """Start rendering the clip in the background (ignored while one renders)."""
        if self._thread is not None and self._thread.is_alive():
            return None
        track_id, preset, frame = self.source()
        self.button.disabled = True
        self.error = None
        self.progress.value = 0.0
        self.progress.bar_style = ""
        self.status.value = "<span style='font-size:12px'>rendering…</span>"
        seconds = float(self.seconds.value)
        self._thread = threading.Thread(target=self._run, args=(track_id, preset, frame, seconds),
                                        name="stratum-clip", daemon=True)
        self._thread.start()
        return self._thread

    def _progress(self, done: int, total: int, stage: str) -> None:
        self.progress.value = 0.9 * done / max(1, total) if stage == "frames" else (
            1.0 if stage == "done" else 0.95)
        self.status.value = f"<span style='font-size:12px'>{stage}: {done}/{total} frames</span>"

    def _run(self, track_id: str, preset: Any, frame: int, seconds: float) -> None:
        try:
            clip = self.renderer.render(track_id, preset, frame, seconds, progress=self._progress)
        except (StratumError, OSError) as err:
            self.error = str(err)
            self.progress.bar_style = "danger"
            self.status.value = f"<span style='color:#b3261e;font-size:12px'>{err}</span>"
        except Exception as err:  # shown in the panel: a thread has no one else to tell
            log.exception("clip render failed")
            self.error = f"{type(err).__name__}: {err}"
            self.progress.bar_style = "danger"
            self.status.value = f"<span style='color:#b3261e'>{self.error}</span>"
        else:
            self.last = clip
            self._show(clip.data)
            self.progress.bar_style = "success"
            self.status.value = (
                f"<span style='font-size:12px'>{clip.n_frames} frames "
                f"({clip.n_frames / clip.fps:.1f} s from {clip.start / clip.fps:.2f} s) in "
                f"{clip.seconds:.1f} s · {len(clip.data) / 1024:.0f} KiB</span>")
        finally:
            self.button.disabled = False

    def _show(self, data: bytes) -> None:
        import ipywidgets as w

        if self.video is None:
            self.video = w.Video(value=data, format="mp4", autoplay=False, loop=True,
                                 controls=True, layout=w.Layout(width=f"{self.width}px"))
            self.video.add_class("stratum-clip-video")
            self.video_box.children = [self.video]
        else:
            self.video.value = data

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
