"""A track's character (:class:`~stratum_kernel.core.character.TrackCharacter`) from its
features: tempo, onsets per second, level and its spread, brightness, the share of
transients, how strongly onsets follow the beat, and the stems' shares.

Everything is measured over the *sounding* frames (within 60 dB of the track's loudest),
so silence before and after a song does not make it look sparse or quiet. Pure numpy over
a :class:`~stratum_kernel.analysis.features.TrackFeatures`; deterministic.
"""

from __future__ import annotations

import numpy as np

from stratum_kernel.analysis.features import TrackFeatures
from stratum_kernel.core.character import TrackCharacter

SOUNDING_DB = 60.0  # frames more than this below the track's peak RMS are silence
PEAK_WINDOW_S = 0.05  # an onset peak is the largest value within this many seconds


def sounding(rms: np.ndarray) -> np.ndarray:
    """bool [T]: frames within :data:`SOUNDING_DB` of the loudest."""
    peak = float(rms.max()) if rms.size else 0.0
    return rms > peak * 10 ** (-SOUNDING_DB / 20) if peak > 0 else np.zeros(rms.shape, bool)


def onset_peaks(onset: np.ndarray, rate: float) -> np.ndarray:
    """int [P]: frames where the onset curve has a clear local peak — the largest value
    within ±:data:`PEAK_WINDOW_S`, above a level set by the track's own onsets (its median
    plus twice the median deviation, and at least a tenth of its 99th percentile)."""
    if onset.size < 3 or not np.any(onset > 0):
        return np.zeros(0, dtype=np.int64)
    w = max(1, round(PEAK_WINDOW_S * rate))
    padded = np.pad(onset, w, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)
    is_max = onset >= windows.max(axis=1)
    med = float(np.median(onset))
    mad = float(np.median(np.abs(onset - med)))
    level = max(med + 2.0 * mad, 0.1 * float(np.percentile(onset, 99)), 1e-9)
    peaks = np.flatnonzero(is_max & (onset > level))
    # plateaus: keep the first frame of equal neighbours
    return peaks[np.diff(peaks, prepend=-2) > 1]


def _beat_strength(onset: np.ndarray, beats_s: np.ndarray, rate: float) -> float:
    """0..1: ``1 - mean(onset) / mean(onset at the beats)`` (the largest value within a
    frame of each beat): 0 when the beats are no stronger than anywhere else, 0.5 when
    twice as strong, towards 1 when only the beats sound."""
    n = onset.size
    idx = np.round(beats_s * rate).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < n)]
    mean = float(onset.mean()) if n else 0.0
    if idx.size == 0 or mean <= 0:
        return 0.0
    near = np.maximum(np.maximum(onset[np.maximum(idx - 1, 0)], onset[idx]),
                      onset[np.minimum(idx + 1, n - 1)])
    return float(np.clip(1.0 - mean / max(float(near.mean()), 1e-12), 0.0, 1.0))


def describe_track(tf: TrackFeatures) -> TrackCharacter:
    """The :class:`TrackCharacter` of one analysed track (module docstring)."""
    s = tf.series
    rms = s["rms"].astype(np.float64)
    live = sounding(rms)
    seconds = max(float(live.sum()) / tf.rate, 1.0 / tf.rate)
    if not live.any():
        return TrackCharacter(tempo=float(tf.tempo), onset_rate=0.0, loudness=-120.0,
                              dynamics=0.0, brightness=0.0, percussive=0.0, beat_strength=0.0)
    db = 20.0 * np.log10(np.maximum(rms[live], 1e-12))
    energy = float(np.sum(rms[live] ** 2))
    perc = float(np.sum(s["percussive"].astype(np.float64)[live] ** 2))
    peaks = onset_peaks(s["onset"], tf.rate)
    shares: dict[str, float | None] = {"vocals": None, "drums": None}
    if tf.stems:
        energies = {k: float(np.sum(v["envelope"].astype(np.float64) ** 2))
                    for k, v in tf.stems.items()}
        total = sum(energies.values())
        if total > 0:
            shares = {k: energies.get(k, 0.0) / total for k in shares}
    return TrackCharacter(
        tempo=float(tf.tempo),
        onset_rate=float(np.count_nonzero(live[peaks])) / seconds,
        loudness=float(10.0 * np.log10(max(energy / live.sum(), 1e-24))),
        dynamics=float(np.percentile(db, 95) - np.percentile(db, 10)),
        brightness=float(np.median(s["centroid"][live])),
        percussive=perc / energy if energy > 0 else 0.0,
        beat_strength=_beat_strength(s["onset"].astype(np.float64), tf.beats, tf.rate),
        **shares,
    )
