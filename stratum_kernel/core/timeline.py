"""The video timeline: frame counts and features sampled per frame.

Frame ``i`` of a track rendered at ``fps`` from ``start`` seconds sits at time
``start + i / fps``; a track of ``duration`` seconds has ``round(duration * fps)``
frames. Everything downstream of analysis (the latent controller, post-FX modulation,
overlays) reads a :class:`FrameFeatures`, so these two rules hold everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The four stems, in stacking order (drums at the core of the waveform view).
STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")
#: The series every stem has on the timeline (``FrameFeatures.stems[stem][series]``).
STEM_SERIES: tuple[str, ...] = ("envelope", "onset")


def frame_count(duration: float, fps: float) -> int:
    """Frames in ``duration`` seconds at ``fps``: ``round(duration * fps)`` (at least 1)."""
    if duration < 0 or fps <= 0:
        raise ValueError(f"frame_count needs duration >= 0 and fps > 0, got {duration}, {fps}")
    return max(1, round(duration * fps))


def frame_times(n_frames: int, fps: float, start: float = 0.0) -> np.ndarray:
    """float64 [n_frames]: the time in seconds of each frame, ``start + i / fps``."""
    return start + np.arange(n_frames, dtype=np.float64) / float(fps)


def sample_series(series: np.ndarray, series_rate: float, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of a feature series (rate ``series_rate`` Hz, value k at
    ``k / series_rate``) at ``times`` seconds (for envelopes; onsets use
    :func:`stratum_kernel.analysis.frames.sample_peaks`).

    ``series``: [T] or [C, T]. Returns float32 [len(times)] or [C, len(times)]; times past
    the end hold the last value.
    """
    series = np.asarray(series, dtype=np.float32)
    squeeze = series.ndim == 1
    s2 = series[None, :] if squeeze else series
    n = s2.shape[1]
    pos = np.asarray(times, dtype=np.float64) * series_rate
    if n == 0:
        out = np.zeros((s2.shape[0], len(times)), dtype=np.float32)
    else:
        grid = np.arange(n, dtype=np.float64)
        out = np.stack([np.interp(pos, grid, row) for row in s2]).astype(np.float32)
    return out[0] if squeeze else out


@dataclass(frozen=True)
class FrameFeatures:
    """One track's features on the video timeline; frame i is at ``start + i / fps``.

    values: name -> float32 [n_frames] in [0, 1] for 'rms', 'onset', 'centroid',
        'flatness', 'harmonic', 'percussive'; 'chroma' is [12, n_frames] in [0, 1];
        'mfcc' is [13, n_frames], standardised per track (mean 0, std 1).
        Level-like features ('rms', 'onset', 'harmonic', 'percussive' and every stem
        series) are scaled against the whole album, so a quiet track stays quiet.
    stems: stem name -> {'envelope': [n_frames], 'onset': [n_frames]}, in [0, 1].
    beat_frames: int64 [B], the frame index of each beat inside this range.
    tempo: the bpm of the beat grid (tracklist bpm when given, else the estimate).
    markers: section marker times in track seconds; section: int32 [n_frames], the
        index of the section each frame falls in (0 before the first marker).
    """

    track_id: str
    fps: float
    start: float
    n_frames: int
    values: dict[str, np.ndarray]
    stems: dict[str, dict[str, np.ndarray]]
    beat_frames: np.ndarray
    tempo: float
    markers: tuple[float, ...] = ()
    section: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __post_init__(self) -> None:
        n = self.n_frames
        for name, arr in self.values.items():
            if arr.shape[-1] != n:
                raise ValueError(f"feature {name!r} has {arr.shape[-1]} frames, expected {n}")
        for stem, series in self.stems.items():
            for name, arr in series.items():
                if arr.shape[-1] != n:
                    raise ValueError(f"stem {stem}.{name} has {arr.shape[-1]} frames, not {n}")
        if self.section.shape != (n,):
            object.__setattr__(self, "section", np.zeros(n, dtype=np.int32))

    def times(self) -> np.ndarray:
        """float64 [n_frames]: track time of each frame in seconds."""
        return frame_times(self.n_frames, self.fps, self.start)
