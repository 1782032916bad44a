"""Album-wide normalisation and the mapping of track features onto the video timeline.

:func:`frame_features` turns a :class:`~stratum_kernel.analysis.features.TrackFeatures` (series at
``sr / hop`` Hz) into a :class:`~stratum_kernel.core.timeline.FrameFeatures` (one value per video
frame, frame ``i`` at ``start + i / fps``), scaling level-like series against an
:class:`AlbumReference` so that a quiet ballad does not react as hard as the loudest single.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from stratum_kernel.analysis.features import _EPS, LEVEL_SERIES, RANGE_SERIES, TrackFeatures
from stratum_kernel.core.timeline import FrameFeatures, frame_count, frame_times, sample_series

# Frames of a level series below this fraction of its album maximum are "silent" and
# do not count towards its reference level.
ACTIVE_FRACTION = 1e-3


@dataclass(frozen=True)
class AlbumReference:
    """Album-wide reference values that put every track on one scale.

    levels: series key -> the level that maps to 1.0 (a high percentile over every frame of
    every track); keys are 'rms', 'onset', 'harmonic', 'percussive' and
    'stems/<stem>/<envelope|onset>'. ranges: 'centroid' (log2 Hz) and 'flatness' (log10)
    -> (lo, hi) percentiles over the album's non-silent frames, mapped to 0 and 1.
    """

    levels: dict[str, float]
    ranges: dict[str, tuple[float, float]]
    track_ids: tuple[str, ...] = ()
    percentile: float = 95.0

    def level(self, key: str) -> float:
        return float(self.levels.get(key, 0.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for a run's meta.json)."""
        return {
            "levels": dict(self.levels),
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "track_ids": list(self.track_ids),
            "percentile": self.percentile,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlbumReference:
        return cls(
            levels={k: float(v) for k, v in data["levels"].items()},
            ranges={k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()},
            track_ids=tuple(data.get("track_ids", ())),
            percentile=float(data.get("percentile", 95.0)),
        )


def _log_range_values(name: str, values: np.ndarray) -> np.ndarray:
    if name == "centroid":
        return np.log2(np.maximum(values, 20.0))
    return np.log10(np.maximum(values, 1e-6))


def album_reference(
    tracks: list[TrackFeatures] | tuple[TrackFeatures, ...], *, percentile: float = 95.0
) -> AlbumReference:
    """The :class:`AlbumReference` of ``tracks`` (one track: a per-track reference).

    A level's reference is the ``percentile`` of that series over the active frames (above
    :data:`ACTIVE_FRACTION` of its album maximum) of all tracks, so the loudest passages of
    the album reach 1.0 and a track 20 dB quieter than the rest stays at about a tenth.
    """
    if not tracks:
        raise ValueError("album_reference needs at least one track")
    levels: dict[str, float] = {}
    pooled: dict[str, list[np.ndarray]] = {}
    for tf in tracks:
        for name in LEVEL_SERIES:
            pooled.setdefault(name, []).append(tf.series[name])
        for stem, d in tf.stems.items():
            for name, arr in d.items():
                pooled.setdefault(f"stems/{stem}/{name}", []).append(arr)
    for key, arrays in pooled.items():
        values = np.concatenate(arrays)
        # Only active frames count: silence would drag a level down, and a sparse onset
        # series (a few clicks) would have a zero percentile.
        active = values[values > ACTIVE_FRACTION * float(values.max(initial=0.0))]
        levels[key] = float(np.percentile(active, percentile)) if active.size else 0.0
    ranges: dict[str, tuple[float, float]] = {}
    for name in RANGE_SERIES:
        parts = []
        for tf in tracks:
            gate = tf.series["rms"] > max(1e-4, 1e-3 * float(tf.series["rms"].max()))
            parts.append(_log_range_values(name, tf.series[name][gate]))
        values = np.concatenate(parts)
        if values.size == 0:
            lo, hi = (math.log2(200.0), math.log2(5000.0)) if name == "centroid" else (-4.0, 0.0)
        else:
            lo, hi = (float(v) for v in np.percentile(values, [100 - percentile, percentile]))
        ranges[name] = (lo, max(hi, lo + 1e-3))
    return AlbumReference(
        levels=levels,
        ranges=ranges,
        track_ids=tuple(tf.track_id for tf in tracks),
        percentile=percentile,
    )


def sample_peaks(series: np.ndarray, rate: float, times: np.ndarray, fps: float) -> np.ndarray:
    """Sample a spiky series (onsets) at video frames without losing or moving a spike.

    Frame i (at ``times[i]``) takes the maximum of the series values whose time lies in
    ``(t_i - 1/(2 fps), t_i + 1/(2 fps)]``, so each value lands on exactly one frame, the
    nearest; when frames are denser than the series (fps above ``rate``) a frame whose
    span holds no value takes the linear interpolation instead. ``series``: [T] or [C, T];
    returns float32 [len(times)] or [C, len(times)].
    """
    s = np.asarray(series, dtype=np.float32)
    n = s.shape[-1]
    pos = np.asarray(times, dtype=np.float64) * rate
    half = rate / (2.0 * fps)
    lo = np.clip(np.floor(pos - half).astype(np.int64) + 1, 0, n)
    hi = np.clip(np.floor(pos + half).astype(np.int64) + 1, 0, n)
    empty = hi <= lo
    width = max(1, int((hi - lo).max(initial=1)))
    last = np.maximum(hi - 1, lo)
    idx = np.clip(np.minimum(lo[:, None] + np.arange(width)[None, :], last[:, None]), 0, n - 1)
    peak = s[..., idx].max(axis=-1)
    interp = sample_series(s, rate, times)
    return np.where(empty, interp, peak).astype(np.float32)


def _marker_time(m: Any) -> float:
    if isinstance(m, dict):
        return float(m["time"])
    return float(getattr(m, "time", m))


def frame_features(
    tf: TrackFeatures,
    *,
    fps: float,
    start: float = 0.0,
    end: float | None = None,
    reference: AlbumReference | None = None,
    markers: tuple[Any, ...] | list[Any] = (),
) -> FrameFeatures:
    """``tf`` on the video timeline: ``round((end - start) * fps)`` frames, frame i at
    ``start + i / fps`` (exactly; no accumulated step), values in [0, 1].

    reference: album-wide scaling (None: this track alone, so its loudest passages reach
    1.0). Level-like series (rms, onset, harmonic, percussive, stem envelopes and onsets)
    are divided by the reference level; centroid and flatness are mapped from the
    reference's log range; mfcc is standardised over the whole track; onsets are sampled
    with :func:`sample_peaks`, envelopes linearly. markers: section start times (seconds,
    or objects with ``.time``).
    """
    end = tf.duration if end is None else float(end)
    if fps <= 0 or start < 0 or end <= start:
        raise ValueError(
            f"frame_features needs fps > 0 and 0 <= start < end, got fps={fps}, "
            f"start={start}, end={end}"
        )
    ref = reference if reference is not None else album_reference([tf])
    n = frame_count(end - start, fps)
    times = frame_times(n, fps, start)
    rate = tf.rate

    def level(arr: np.ndarray, key: str, peaks: bool) -> np.ndarray:
        sampled = sample_peaks(arr, rate, times, fps) if peaks else sample_series(arr, rate, times)
        scale = ref.level(key)
        if scale <= _EPS:
            return np.zeros(n, dtype=np.float32)
        return np.clip(sampled / scale, 0.0, 1.0).astype(np.float32)

    values = {name: level(tf.series[name], name, name == "onset") for name in LEVEL_SERIES}
    for name in RANGE_SERIES:
        lo, hi = ref.ranges[name]
        logv = sample_series(_log_range_values(name, tf.series[name]), rate, times)
        values[name] = np.clip((logv - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    values["chroma"] = np.clip(sample_series(tf.series["chroma"], rate, times), 0.0, 1.0)
    mfcc = tf.series["mfcc"].astype(np.float64)
    mfcc = (mfcc - mfcc.mean(axis=1, keepdims=True)) / np.maximum(
        mfcc.std(axis=1, keepdims=True), 1e-6
    )
    values["mfcc"] = sample_series(mfcc, rate, times)
    stems = {
        stem: {name: level(arr, f"stems/{stem}/{name}", name == "onset") for name, arr in d.items()}
        for stem, d in tf.stems.items()
    }
    beat_idx = np.floor((np.asarray(tf.beats) - start) * fps + 0.5).astype(np.int64)
    beat_frames = np.unique(beat_idx[(beat_idx >= 0) & (beat_idx < n)])
    marker_times = tuple(sorted(_marker_time(m) for m in markers))
    section = np.searchsorted(np.asarray(marker_times, dtype=np.float64), times, side="right")
    return FrameFeatures(
        track_id=tf.track_id,
        fps=float(fps),
        start=float(start),
        n_frames=n,
        values=values,
        stems=stems,
        beat_frames=beat_frames,
        tempo=float(tf.tempo),
        markers=marker_times,
        section=section.astype(np.int32),
    )
