"""Where a track's sections change, from its timbre and harmony (Foote novelty).

The MFCC (standardised per coefficient) and chroma series are pooled to one vector per
:data:`POOL_S` seconds; a checkerboard kernel of ±``kernel_s`` seconds (Gaussian-tapered)
slid along the diagonal of their cosine self-similarity gives a novelty curve that peaks
where the music before a moment is unlike the music after it. Peaks above the curve's mean
plus half its deviation, at least ``min_gap_s`` apart and not within ``min_gap_s`` of
either end, are the section changes (strongest first, then in time order). Only the band
of the similarity matrix the kernel touches is computed, so memory and time grow with the
track's length, not its square.
"""

from __future__ import annotations

import numpy as np

from stratum_kernel.analysis.features import TrackFeatures

POOL_S = 0.5


def _pooled(tf: TrackFeatures) -> np.ndarray:
    """float64 [N, D]: unit-norm MFCC + chroma vectors, one per POOL_S seconds."""
    mfcc = tf.series["mfcc"].astype(np.float64)
    mfcc = (mfcc - mfcc.mean(axis=1, keepdims=True)) / (mfcc.std(axis=1, keepdims=True) + 1e-9)
    chroma = tf.series["chroma"].astype(np.float64)
    x = np.concatenate([mfcc, 2.0 * chroma], axis=0).T  # [T, D]
    step = max(1, round(POOL_S * tf.rate))
    n = x.shape[0] // step
    if n == 0:
        return np.zeros((0, x.shape[1]))
    x = x[: n * step].reshape(n, step, -1).mean(axis=1)
    x -= x.mean(axis=0, keepdims=True)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)


def novelty(x: np.ndarray, half: int) -> np.ndarray:
    """float64 [N]: Foote novelty of the unit rows of ``x`` with a ±``half`` checkerboard."""
    n = x.shape[0]
    out = np.zeros(n)
    if n < 2 * half + 1:
        return out
    offsets = np.arange(-half, half)  # the kernel's rows/cols relative to the centre
    taper = np.exp(-0.5 * ((offsets + 0.5) / (0.5 * half)) ** 2)
    sign = np.where(offsets < 0, -1.0, 1.0)
    kernel = np.outer(sign * taper, sign * taper)  # +1 within a side, -1 across
    kernel /= np.abs(kernel).sum()
    for c in range(half, n - half):
        block = x[c - half: c + half]
        out[c] = float(np.sum(kernel * (block @ block.T)))
    return out


def estimate_sections(tf: TrackFeatures, *, kernel_s: float = 4.0, min_gap_s: float = 6.0,
                      max_sections: int = 12) -> list[float]:
    """Section change times in seconds, in order (module docstring)."""
    x = _pooled(tf)
    half = max(2, round(kernel_s / POOL_S))
    nov = novelty(x, half)
    if not np.any(nov > 0):
        return []
    level = nov.mean() + 0.5 * nov.std()
    gap = max(1, round(min_gap_s / POOL_S))
    is_peak = (nov > level) & (nov >= np.roll(nov, 1)) & (nov >= np.roll(nov, -1))
    candidates = [i for i in np.flatnonzero(is_peak) if gap <= i <= len(nov) - gap]
    chosen: list[int] = []
    for i in sorted(candidates, key=lambda i: (-nov[i], i)):
        if all(abs(i - j) >= gap for j in chosen):
            chosen.append(i)
        if len(chosen) >= max_sections:
            break
    return [round(float(i * POOL_S), 2) for i in sorted(chosen)]
