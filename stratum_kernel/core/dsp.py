"""Signal-processing primitives shared by analysis, separation and the views.

Pure numpy/scipy over float arrays; no I/O. The analysis (features), the DSP stem separator
and the spectral views all use the same short-time Fourier transform and the same median
filter, so each exists once, here.
"""

from __future__ import annotations

import numpy as np


def hann(n: int) -> np.ndarray:
    """float32 [n]: the periodic Hann window (overlap-adds to a constant at 50 % and 75 %)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def stft(y: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """complex [..., T, 1 + n_fft // 2]: the STFT of ``y`` [..., samples], frame k centred
    on sample ``k * hop`` (zero padding of ``n_fft // 2`` at both ends), ``T = 1 + samples //
    hop``. Time-major, one real FFT over a strided view (5x fewer passes over memory than
    librosa's blockwise STFT)."""
    import scipy.fft
    from numpy.lib.stride_tricks import sliding_window_view

    half = n_fft // 2
    pad = [(0, 0)] * (y.ndim - 1) + [(half, half)]
    frames = sliding_window_view(np.pad(y, pad), n_fft, axis=-1)[..., ::hop, :]
    return scipy.fft.rfft(frames * window, axis=-1)


def stft_magnitude(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """float32 [..., T, 1 + n_fft // 2]: ``|STFT|`` of ``y`` with a periodic Hann window
    (see :func:`stft`)."""
    return np.abs(stft(y, n_fft, hop, hann(n_fft)))


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` [..., samples] cut or zero-padded to ``n`` samples along the last axis."""
    if x.shape[-1] >= n:
        return x[..., :n]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad)


def median_filter_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Median over a centred window of ``size`` (odd) along ``axis``, edges mirrored.

    Equivalent to ``scipy.ndimage.median_filter`` along one axis (mode 'reflect') but 3-5x
    faster for short kernels: a partial sort of a strided view.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    half = size // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (half, half)
    windows = sliding_window_view(np.pad(x, pad, mode="symmetric"), size, axis=axis)
    return np.partition(windows, half, axis=-1)[..., half]
