"""Tempo and beats from an onset series: a global tempo estimate and a beat grid.

Pure numpy (no numba), so nothing here is compiled per process: :func:`track_beats`
reproduces ``librosa.beat.beat_track(bpm=...)``, whose kernels numba recompiles in every
process (~3 s on a 2-core machine). Re-exported by :mod:`stratum_kernel.analysis.features`.
"""

from __future__ import annotations

import math

import numpy as np


def estimate_tempo(
    onset: np.ndarray,
    rate: float,
    *,
    start_bpm: float = 120.0,
    std_bpm: float = 0.7,
    min_bpm: float = 30.0,
    max_bpm: float = 320.0,
) -> float:
    """The dominant tempo in bpm of an onset series ``onset`` [T] at ``rate`` Hz.

    The autocorrelation of the (mean-removed) onset series at the beat period, plus half
    of it at twice that period (a real beat also recurs every two beats; a dotted or
    triplet pattern's period does not), weighted by a log-normal prior centred at
    ``start_bpm`` with ``std_bpm`` octaves of spread (librosa's prior, narrower: 0.7
    rather than 1 octave settled every octave error on the bundled album), picks the
    beat period; a parabola through the peak refines it below one hop.
    """
    o = np.asarray(onset, dtype=np.float64)
    o = o - o.mean()
    n = len(o)
    lo = max(1, math.floor(60.0 * rate / max_bpm))
    hi = min(n - 2, math.ceil(60.0 * rate / min_bpm))
    if hi <= lo + 1 or not np.any(o):
        return float(start_bpm)
    m = min(n, 2 * hi + 4)
    spec = np.fft.rfft(o, n=2 * n)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2)[:m] / (n - np.arange(m))
    acf = np.maximum(acf, 0.0)
    lags = np.arange(hi + 2)
    twice = np.where(2 * lags < m, acf[np.minimum(2 * lags, m - 1)], 0.0)
    bpms = 60.0 * rate / np.maximum(lags, 1)
    prior = np.exp(-0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2)
    score = (acf[: hi + 2] + 0.5 * twice) * prior
    score[:lo] = 0.0
    k = int(np.argmax(score[: hi + 1]))
    if score[k] <= 0.0:
        return float(start_bpm)
    a, b, c = score[k - 1], score[k], score[k + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(60.0 * rate / (k + float(np.clip(shift, -0.5, 0.5))))


def track_beats(onset: np.ndarray, rate: float, bpm: float, *, tightness: float = 100.0):
    """int64 [B]: frame indices of beats at ``bpm`` aligned to ``onset`` [T] (``rate`` Hz).

    Ellis' dynamic programme, as in ``librosa.beat.beat_track(bpm=...)`` (same local score,
    transition cost, first-beat rule and last-beat choice; the tests compare the two), but
    vectorised over blocks of half a beat, which never depend on each other. This avoids
    librosa.beat, whose kernels numba recompiles in every process (~3 s here).
    """
    onset = np.asarray(onset, dtype=np.float64)
    n = len(onset)
    fpb = float(np.round(rate * 60.0 / bpm))
    if n == 0 or fpb < 1 or not np.any(onset):
        return np.zeros(0, dtype=np.int64)
    norm = onset / (onset.std(ddof=1) + np.finfo(np.float64).tiny) if n > 1 else onset
    offsets = np.arange(-fpb, fpb + 1)
    window = np.exp(-0.5 * (offsets * 32.0 / fpb) ** 2)
    # librosa's same-mode convolution leaves out the first onset value
    local = np.convolve(np.concatenate([[0.0], norm[1:]]), window, mode="same")
    # candidate distances to the previous beat, nearest first (librosa's tie-break)
    dist = np.arange(round(fpb / 2), int(2 * fpb) + 1)
    dist = dist[dist >= 1]
    penalty = tightness * (np.log(dist) - np.log(fpb)) ** 2
    cum = np.zeros(n)
    back = np.full(n, -1, dtype=np.int64)
    block = max(1, int(dist[0]))
    for start in range(0, n, block):
        i = np.arange(start, min(n, start + block))
        loc = i[:, None] - dist[None, :]
        score = np.where(loc >= 0, cum[np.maximum(loc, 0)] - penalty, -np.inf)
        k = np.argmax(score, axis=1)
        best = score[np.arange(len(i)), k]
        found = np.isfinite(best)
        cum[i] = local[i] + np.where(found, best, 0.0)
        back[i] = np.where(found, loc[np.arange(len(i)), k], -1)
    above = np.flatnonzero(local >= 0.01 * local.max())
    back[: above[0] if len(above) else n] = -1  # no beat before the first real onset
    # last beat: the last local maximum of the cumulative score above half their median
    peaks = np.zeros(n, dtype=bool)
    if n > 1:
        peaks[1:-1] = (cum[1:-1] > cum[:-2]) & (cum[1:-1] >= cum[2:])
        peaks[-1] = cum[-1] > cum[-2]
    threshold = 0.5 * np.median(cum[peaks]) if peaks.any() else -np.inf
    candidates = np.flatnonzero(peaks & (cum >= threshold))
    beats = []
    t = int(candidates[-1]) if len(candidates) else n - 1
    while t >= 0:
        beats.append(t)
        t = int(back[t])
    frames = np.asarray(beats[::-1], dtype=np.int64)
    # and, like librosa with trim=False, drops beats in silent runs at either end
    live = np.flatnonzero(local > 0)
    if len(live) == 0:
        return np.zeros(0, dtype=np.int64)
    return frames[(frames >= live[0]) & (frames <= live[-1])]
