"""Preview stills and a short GIF per track, picked from the features, cut from the film.

Which frames: one PNG at every section marker and at the strongest feature peaks (loudness
plus onsets, at least ``min_gap_s`` apart), and a GIF of ``gif_seconds`` around the
strongest peak. The frames come from the film as it is decoded for verification, a segment
at a time (:class:`PreviewCollector` is fed every decoded frame with its index, in any
order), so previews cost no extra rendering and are identical for an interrupted-then-
resumed run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratum_kernel.core.paths import atomic_path
from stratum_kernel.core.timeline import FrameFeatures


@dataclass(frozen=True)
class PreviewSpec:
    """One still: ``kind`` 'marker' | 'peak' | 'first', a label, and the frame index."""

    kind: str
    label: str
    frame: int


def peak_frames(ff: FrameFeatures, *, n_peaks: int = 4, min_gap_s: float = 1.5) -> list[int]:
    """Frame indices of the ``n_peaks`` strongest moments (rms + onset), strongest first,
    at least ``min_gap_s`` apart; ties break towards the earlier frame."""
    n = ff.n_frames
    if n == 0:
        return []
    score = np.zeros(n, dtype=np.float64)
    for name in ("rms", "onset"):
        if name in ff.values:
            score += np.asarray(ff.values[name], dtype=np.float64).reshape(-1)[:n]
    order = np.lexsort((np.arange(n), -score))  # by score desc, then index asc
    gap = max(1, round(min_gap_s * ff.fps))
    picked: list[int] = []
    for i in order:
        if all(abs(int(i) - p) >= gap for p in picked):
            picked.append(int(i))
            if len(picked) == n_peaks:
                break
    return picked


def preview_specs(ff: FrameFeatures, *, n_peaks: int = 4, min_gap_s: float = 1.5
                  ) -> list[PreviewSpec]:
    """The stills of a track: its first frame, each marker inside the rendered range, and
    the feature peaks, in frame order (a frame is listed once)."""
    specs = [PreviewSpec("first", "start", 0)]
    for k, t in enumerate(ff.markers, start=1):
        i = int(np.floor((t - ff.start) * ff.fps + 1e-6))
        if 0 <= i < ff.n_frames:
            specs.append(PreviewSpec("marker", f"marker{k:02d}", i))
    for k, i in enumerate(peak_frames(ff, n_peaks=n_peaks, min_gap_s=min_gap_s), start=1):
        specs.append(PreviewSpec("peak", f"peak{k:02d}", i))
    seen: set[int] = set()
    out = []
    for s in sorted(specs, key=lambda s: (s.frame, s.kind)):
        if s.frame not in seen:
            seen.add(s.frame)
            out.append(s)
    return out


def gif_frames(ff: FrameFeatures, *, seconds: float = 2.5, gif_fps: float = 12.0) -> list[int]:
    """Frame indices of the GIF: ``seconds`` centred on the strongest peak, at ``gif_fps``."""
    if ff.n_frames == 0:
        return []
    peaks = peak_frames(ff, n_peaks=1)
    centre = peaks[0] if peaks else ff.n_frames // 2
    length = max(1, round(seconds * ff.fps))
    first = int(np.clip(centre - length // 2, 0, max(0, ff.n_frames - length)))
    step = max(1, round(ff.fps / gif_fps))
    return list(range(first, min(ff.n_frames, first + length), step))


def _atomic_save(image, path: Path, **kwargs) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, **kwargs)


class PreviewCollector:
    """Collects the preview frames of one track while its film is decoded in order.

    ``feed(first_index, frames)`` with uint8 [n, H, W, 3]; ``finish()`` writes
    ``<out_dir>/<track>_<label>_<time>s.png`` and ``<out_dir>/<track>.gif`` and returns the
    file names (relative to ``out_dir``), stills first.
    """

    def __init__(self, track_id: str, ff: FrameFeatures, out_dir: str | Path, *,
                 gif_width: int = 320, gif_fps: float = 12.0):
        self.track_id = track_id
        self.ff = ff
        self.out_dir = Path(out_dir)
        self.specs = preview_specs(ff)
        self.gif_index = gif_frames(ff, gif_fps=gif_fps)
        self.gif_width = gif_width
        self.gif_fps = gif_fps
        self._want = {s.frame for s in self.specs}
        self._gif_want = set(self.gif_index)
        self._stills: dict[int, np.ndarray] = {}
        self._gif: dict[int, np.ndarray] = {}

    def feed(self, first_index: int, frames: np.ndarray) -> None:
        import cv2

        for j, frame in enumerate(frames):
            i = first_index + j
            if i in self._want:
                self._stills[i] = frame.copy()
            if i in self._gif_want:
                h, w = frame.shape[:2]
                gw = min(self.gif_width, w)
                gh = max(2, round(h * gw / w))
                self._gif[i] = cv2.resize(frame, (gw, gh), interpolation=cv2.INTER_AREA)

    def wanted(self, first_index: int, n: int) -> list[int]:
        """Offsets j in [0, n) of the frames ``first_index + j`` the previews use."""
        return [j for j in range(n)
                if first_index + j in self._want or first_index + j in self._gif_want]

    @property
    def complete(self) -> bool:
        """Every frame the stills and the GIF need has been fed."""
        return self._want <= self._stills.keys() and self._gif_want <= self._gif.keys()

    def finish(self) -> list[str]:
        from PIL import Image

        self.out_dir.mkdir(parents=True, exist_ok=True)
        names = []
        for s in self.specs:
            frame = self._stills.get(s.frame)
            if frame is None:
                continue
            t = self.ff.start + s.frame / self.ff.fps
            name = f"{self.track_id}_{s.label}_{t:07.2f}s.png"
            # zlib level 1: a grainy 720p still in ~50 ms instead of ~200 (a little larger)
            _atomic_save(Image.fromarray(frame), self.out_dir / name, optimize=False,
                         compress_level=1)
            names.append(name)
        gif = [self._gif[i] for i in self.gif_index if i in self._gif]
        if gif:
            # one palette for the whole clip (no colour flicker), from every other frame
            sample = Image.fromarray(np.concatenate(gif[::2], axis=0))
            palette = sample.quantize(colors=255, method=Image.Quantize.FASTOCTREE,
                                      dither=Image.Dither.NONE)
            images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
                      for f in gif]
            name = f"{self.track_id}.gif"
            _atomic_save(images[0], self.out_dir / name, save_all=True,
                         append_images=images[1:], duration=round(1000 / self.gif_fps),
                         loop=0, optimize=False)
            names.append(name)
        return names
