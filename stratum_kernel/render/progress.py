"""A run's progress on the terminal: per track frames done of total, fps and ETA.

Two ways to show it, chosen by where the output goes:

- ``bar``: one tqdm bar per track, updated in place (a terminal);
- ``lines``: a plain line every :data:`LINE_EVERY_S` seconds and when a track ends — what
  a CI log, a pipe or papermill's ``--log-output`` (``make render``) can show::

    [stratum] track 2/3 sodium-lights: 480/1440 frames (33%) at 24.1 fps, ETA 0:40 ·
    album 1920/4320, ETA 1:40    (one line)

``auto`` (what ``progress=True`` means) takes ``bar`` when the stream is a terminal and
``lines`` otherwise. Frames already finished by an earlier, interrupted start count as done
but not towards the speed. The clock is injectable, so the lines are testable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import IO

from stratum_kernel.core.progress import PREFIX, Mode, clock_text, resolve_mode

LINE_EVERY_S = 10.0


class RenderProgress:
    """Progress of the frames of a run's tracks (module docstring).

    totals: track id -> frames of its film, in render order; done: track id -> frames
    finished before this session (a resume).
    """

    def __init__(self, totals: Mapping[str, int], *, mode: Mode = "lines",
                 done: Mapping[str, int] | None = None, stream: IO[str] | None = None,
                 every: float = LINE_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.totals = dict(totals)
        self.done = {t: int((done or {}).get(t, 0)) for t in self.totals}
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self.every = float(every)
        self.clock = clock
        self._rendered = 0
        self._t0: float | None = None
        self._last_line = -float("inf")
        self._bars: dict[str, object] = {}
        self._ended: set[str] = set()

    # -- figures --

    @property
    def fps(self) -> float:
        """Frames per second rendered in this session, counted from its first track."""
        if self._t0 is None:
            return 0.0
        dt = self.clock() - self._t0
        return self._rendered / dt if dt > 0 else 0.0

    def eta(self, frames_left: int) -> float:
        fps = self.fps
        return frames_left / fps if fps > 0 else float("nan")

    def line(self, track_id: str) -> str:
        """The status line of a track and the album."""
        ids = list(self.totals)
        total, done = self.totals[track_id], self.done[track_id]
        album_total, album_done = sum(self.totals.values()), sum(self.done.values())
        pct = 100 * done // total if total else 100
        return (f"{PREFIX} track {ids.index(track_id) + 1}/{len(ids)} {track_id}: "
                f"{done}/{total} frames ({pct}%) at {self.fps:.1f} fps, "
                f"ETA {clock_text(self.eta(total - done))} · album {album_done}/{album_total}, "
                f"ETA {clock_text(self.eta(album_total - album_done))}")

    # -- events --

    def start_track(self, track_id: str, finished: int = 0) -> None:
        """``track_id`` begins with ``finished`` frames done by an earlier start (they count
        as done, not towards the speed); a track already complete gets its final line."""
        self.done[track_id] = min(self.totals[track_id], int(finished))
        if self._t0 is None:  # the speed counts from the first track this session starts
            self._t0 = self._last_line = self.clock()
        if self.done[track_id] >= self.totals[track_id]:
            self.end_track(track_id)

    def advance(self, track_id: str, frames: int) -> None:
        """``frames`` more frames of ``track_id`` are finished."""
        now = self.clock()
        if self._t0 is None:
            self._t0 = self._last_line = now
        if self.mode == "bar":
            self._bar(track_id).update(frames)
        self._rendered += frames
        self.done[track_id] = min(self.totals[track_id], self.done[track_id] + frames)
        if self.done[track_id] >= self.totals[track_id]:
            self.end_track(track_id)
        elif self.mode == "lines" and now - self._last_line >= self.every:
            self._print(self.line(track_id))
            self._last_line = now

    def end_track(self, track_id: str) -> None:
        """The track's frames are all done: a final line (or the bar is closed)."""
        if track_id in self._ended:
            return
        self._ended.add(track_id)
        if self.mode == "bar":
            bar = self._bars.pop(track_id, None)
            if bar is not None:
                bar.close()
        elif self.mode == "lines":
            self._print(self.line(track_id))
            self._last_line = self.clock()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    # -- output --

    def _bar(self, track_id: str):
        bar = self._bars.get(track_id)
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=self.totals[track_id], initial=self.done[track_id],
                       desc=track_id, unit="frame", file=self.stream, leave=True,
                       dynamic_ncols=True)
            self._bars[track_id] = bar
        return bar

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def reporter(progress: bool | str | RenderProgress, totals: Mapping[str, int]) -> RenderProgress:
    """``progress`` as a :class:`RenderProgress` over ``totals`` (one given is kept)."""
    if isinstance(progress, RenderProgress):
        return progress
    return RenderProgress(totals, mode=resolve_mode(progress))
