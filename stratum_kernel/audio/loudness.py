"""Loudness after ITU-R BS.1770-4 and EBU R 128 (Tech 3341 / 3342), in numpy and scipy.

Audio is ``float [channels, samples]`` (or ``[samples]`` for mono) at any sample rate from
8 kHz up. The K-weighting filter is designed for the actual rate (the analogue prototype
behind BS.1770's 48 kHz coefficients, as libebur128 and ffmpeg do), so 44.1 kHz needs no
resampling.

- momentary loudness: 400 ms blocks every 100 ms, in LUFS;
- short-term loudness: 3 s blocks every 100 ms, in LUFS;
- integrated loudness: the momentary blocks (75 % overlap) gated at −70 LUFS absolute and
  −10 LU relative (BS.1770-4 §2.8);
- loudness range (LRA, Tech 3342): short-term blocks gated at −70 LUFS and −20 LU relative,
  the spread between their 10th and 95th percentiles, in LU;
- true peak: the signal upsampled ×4 (×2 at 96 kHz and up, ×1 at 192 kHz), in dBTP.

Block ``k`` of a series covers samples ``[round(k·0.1·sr), round(k·0.1·sr) + window)``; a
signal shorter than a window gives one block over the whole signal, so short tracks still
get a value. Silence is ``-inf`` LUFS / dBTP (never an exception); the loudness range of
silence, or of fewer than two gated blocks, is 0 LU.

:class:`LoudnessMeter` measures a signal handed to it a block at a time (any block sizes,
the same figures bit for bit as one call on the whole signal), so an hour-long track is
measured in a few MB; the functions below run it on a whole array, in chunks of 60 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_PERCENTILES = (10.0, 95.0)
MOMENTARY_WINDOW_S = 0.4
SHORT_TERM_WINDOW_S = 3.0
HOP_S = 0.1
# 10 * log10 of the K-weighting's gain at 997 Hz, so that a 0 dBFS stereo sine reads 0 LUFS
_OFFSET = -0.691
_SEGMENTS_PER_CHUNK = 600  # 60 s of audio per filtering chunk
_TRUE_PEAK_CHUNK = 1 << 17


def k_weighting_sos(sr: float) -> np.ndarray:
    """float64 [2, 6]: the BS.1770 K-weighting (high shelf, then high pass) at ``sr`` Hz.

    Built from the analogue prototype of the 48 kHz coefficients (pole/zero frequencies
    and Q as in libebur128), so that 48 kHz reproduces the standard's table exactly.
    """
    if sr < 4000:
        raise ValueError(f"K-weighting needs a sample rate of at least 4 kHz, got {sr}")
    # stage 1: high shelf, +4 dB above ~1.7 kHz (the head's acoustic effect)
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ]
    # stage 2: RLB high pass at ~38 Hz
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def channel_weights(channels: int) -> np.ndarray:
    """float64 [channels]: BS.1770 weights G_i. 5 channels: L R C Ls Rs; 6 channels:
    L R C LFE Ls Rs (LFE ignored); surrounds weigh 1.41, everything else 1.0."""
    if channels == 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


def _as_channels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2:
        raise ValueError(f"audio must be [channels, samples] or [samples], got {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"audio must be floating point in [-1, 1], got {y.dtype}")
    return y


@dataclass(frozen=True)
class _Segments:
    """Channel-weighted K-weighted energy per 100 ms segment.

    energy: float64 [S] (sum over samples of Σ_i G_i x_i²); bounds: int64 [S+1] sample
    positions; full: how many leading segments are whole 100 ms hops.
    """

    energy: np.ndarray
    bounds: np.ndarray
    full: int
    sr: float


def _segment_bounds(first: int, n: int, sr: float, final: bool) -> np.ndarray:
    """int64 sample positions where 100 ms segments ``first, first + 1, ...`` start, up to
    sample ``n``: while the signal goes on (``final`` False) only segments that end before
    ``n``; at the end also the last partial one (ends capped at ``n``)."""
    full = math.floor(n / (HOP_S * sr) + 1e-9)
    stop = full if final else max(first, full - 1)
    bounds = np.round(np.arange(first, stop + 1) * HOP_S * sr).astype(np.int64)
    if final:
        bounds[-1] = min(bounds[-1], n)
        if n > bounds[-1]:
            bounds = np.append(bounds, n)  # a last partial segment
    return bounds


class LoudnessMeter:
    """BS.1770 measurement of ``channels`` channels at ``sr`` Hz, fed with :meth:`add`
    (float [channels, n] blocks, any sizes) and read with :meth:`summary`.

    Keeps the K-weighting filters' state, the samples of the unfinished 100 ms segment and
    the margin the true-peak interpolator needs, so memory does not grow with the length
    (the segment energies, 10 numbers a second, are kept). ``true_peak=False`` skips the
    oversampling when only loudness is wanted, ``loudness=False`` the K-weighting when only
    the true peak is.
    """

    def __init__(self, sr: float, channels: int, *, loudness: bool = True,
                 true_peak: bool = True):
        from scipy.signal import sosfilt_zi

        self.sr = sr
        self.channels = channels
        self._sos = k_weighting_sos(sr)
        self._weights = channel_weights(channels) if loudness else np.zeros(channels)
        zi = sosfilt_zi(self._sos) * 0.0  # the filter starts at rest (silence before)
        self._zi = [zi.copy() for _ in range(channels)]
        self._squares = np.zeros((channels, 0))  # K-weighted² samples from self._bound
        self._bound = 0  # first sample of the unfinished segment
        self._energy: list[np.ndarray] = []
        self._n = 0
        self._sample_peak = 0.0
        self._peak_factor = true_peak_factor(sr) if true_peak else 1
        self._peak = 0.0
        self._peak_buf = np.zeros((channels, 0), dtype=np.float32)  # from _peak_from
        self._peak_from = 0
        self._peak_next = 0  # first sample of the next true-peak chunk

    def add(self, y: np.ndarray) -> None:
        """Measure the next samples, float [channels, n]."""
        from scipy.signal import sosfilt

        y = _as_channels(y)
        if y.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {y.shape[0]}")
        step = max(1, round(_SEGMENTS_PER_CHUNK * HOP_S * self.sr))
        for s0 in range(0, y.shape[1], step):
            part = y[:, s0 : s0 + step]
            squares = np.empty(part.shape, dtype=np.float64)
            for ch in range(self.channels):
                if self._weights[ch] == 0.0:
                    squares[ch] = 0.0
                    continue
                xk, self._zi[ch] = sosfilt(self._sos, part[ch].astype(np.float64), zi=self._zi[ch])
                np.square(xk, out=squares[ch])
            self._squares = np.concatenate([self._squares, squares], axis=1)
            self._n += part.shape[1]
            self._segments(final=False)
        if y.size:
            self._sample_peak = max(self._sample_peak, float(np.max(np.abs(y))))
        if self._peak_factor > 1:
            self._peak_buf = np.concatenate([self._peak_buf, y.astype(np.float32)], axis=1)
            self._true_peak(final=False)

    def _segments(self, final: bool) -> None:
        first = len(self._energy_flat()) if self._energy else 0
        bounds = _segment_bounds(first, self._n, self.sr, final)
        if len(bounds) < 2:
            return
        rel = bounds - self._bound
        energy = np.zeros(len(bounds) - 1, dtype=np.float64)
        for ch in range(self.channels):
            if self._weights[ch] != 0.0:
                sums = np.add.reduceat(self._squares[ch, : rel[-1]], rel[:-1])
                energy += self._weights[ch] * sums
        self._energy.append(energy)
        self._squares = self._squares[:, rel[-1] :]
        self._bound = int(bounds[-1])

    def _energy_flat(self) -> np.ndarray:
        if len(self._energy) > 1:
            self._energy = [np.concatenate(self._energy)]
        return self._energy[0]

    def _true_peak(self, final: bool) -> None:
        """Oversampled peaks of the chunks of :data:`_TRUE_PEAK_CHUNK` samples (aligned at
        the signal's start, each read with its interpolator margin) that are complete."""
        from scipy.signal import oaconvolve

        d_min, bank = _interpolator(self._peak_factor)
        margin = bank.shape[1]
        while self._peak_next < self._n:
            start = self._peak_next
            stop = min(self._n, start + _TRUE_PEAK_CHUNK)
            if not final and (stop < start + _TRUE_PEAK_CHUNK or self._n < stop + margin):
                break
            lo, hi = max(0, start - margin), min(self._n, stop + margin)
            parts = self._peak_buf[:, lo - self._peak_from : hi - self._peak_from]
            for ch in range(self.channels):
                full = oaconvolve(parts[ch][None, :], bank, axes=1)
                # branch value at sample j sits at full index j - lo - d_min
                a, b = start - lo - d_min, stop - lo - d_min
                self._peak = max(self._peak, float(np.max(np.abs(full[:, a:b]))))
            self._peak_next = stop
            keep = max(0, stop - margin)
            self._peak_buf = self._peak_buf[:, keep - self._peak_from :]
            self._peak_from = keep

    @property
    def samples(self) -> int:
        """Samples per channel added so far."""
        return self._n

    def segments(self) -> _Segments:
        """The segment energies of everything added so far, as the signal's end."""
        self._segments(final=True)
        energy = self._energy_flat() if self._energy else np.zeros(0)
        full = math.floor(self._n / (HOP_S * self.sr) + 1e-9)
        bounds = (_segment_bounds(0, self._n, self.sr, final=True) if self._n
                  else np.zeros(1, np.int64))
        return _Segments(energy, bounds, full, self.sr)

    def true_peak(self) -> float:
        """Maximum of the oversampled signal so far, in dBTP (−inf if silent)."""
        if self._peak_factor > 1:
            self._true_peak(final=True)
        return _db(max(self._sample_peak, self._peak))

    def summary(self) -> LoudnessSummary:
        """Every figure of :func:`loudness_summary` for everything added so far."""
        seg = self.segments()
        momentary_power = _block_power(seg, MOMENTARY_WINDOW_S)
        momentary = _lufs(momentary_power)
        short_term = _lufs(_block_power(seg, SHORT_TERM_WINDOW_S))
        return LoudnessSummary(
            integrated=_gated_integrated(momentary_power),
            loudness_range=_range_lu(short_term),
            true_peak=self.true_peak(),
            sample_peak=_db(self._sample_peak) if self._n else float("-inf"),
            momentary_max=_max_or_neg_inf(momentary),
            short_term_max=_max_or_neg_inf(short_term),
            duration=self._n / float(self.sr),
            momentary=np.asarray(momentary, dtype=np.float32),
            short_term=np.asarray(short_term, dtype=np.float32),
        )


def _segments(y: np.ndarray, sr: float) -> _Segments:
    y = _as_channels(y)
    meter = LoudnessMeter(sr, y.shape[0], true_peak=False)
    meter.add(y)
    return meter.segments()


def _block_power(seg: _Segments, window_s: float) -> np.ndarray:
    """float64 [B]: weighted mean square of each window-long block, hop 100 ms."""
    span = round(window_s / HOP_S)
    if len(seg.energy) == 0:
        return np.zeros(0)
    if seg.full < span:
        # shorter than one window: one block over the whole signal
        return np.array([seg.energy.sum() / max(1, int(seg.bounds[-1]))])
    from numpy.lib.stride_tricks import sliding_window_view

    sums = sliding_window_view(seg.energy[: seg.full], span).sum(axis=1)
    lengths = seg.bounds[span : seg.full + 1] - seg.bounds[: seg.full + 1 - span]
    return sums / lengths


def _lufs(power: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return _OFFSET + 10.0 * np.log10(power)


def _gated_integrated(power: np.ndarray) -> float:
    loud = _lufs(power)
    above = power[loud > ABSOLUTE_GATE_LUFS]
    if above.size == 0:
        return float("-inf")
    relative = _lufs(above.mean()) + RELATIVE_GATE_LU
    gated = power[(loud > ABSOLUTE_GATE_LUFS) & (loud > relative)]
    return float(_lufs(gated.mean())) if gated.size else float("-inf")


def _range_lu(short_term_lufs: np.ndarray) -> float:
    st = short_term_lufs[short_term_lufs > ABSOLUTE_GATE_LUFS]
    if st.size < 2:
        return 0.0
    relative = 10.0 * np.log10(np.mean(10.0 ** (st / 10.0))) + LRA_RELATIVE_GATE_LU
    st = st[st > relative]
    if st.size < 2:
        return 0.0
    # nearest rank on the sorted values, as in Tech 3342's reference code
    st = np.sort(st)
    lo, hi = (st[math.floor((st.size - 1) * p / 100.0 + 0.5)] for p in LRA_PERCENTILES)
    return float(hi - lo)


def momentary_loudness(y: np.ndarray, sr: float) -> np.ndarray:
    """float64 [B] LUFS: 400 ms blocks every 100 ms (−inf where silent)."""
    return _lufs(_block_power(_segments(y, sr), MOMENTARY_WINDOW_S))


def short_term_loudness(y: np.ndarray, sr: float) -> np.ndarray:
    """float64 [B] LUFS: 3 s blocks every 100 ms (−inf where silent)."""
    return _lufs(_block_power(_segments(y, sr), SHORT_TERM_WINDOW_S))


def integrated_loudness(y: np.ndarray, sr: float) -> float:
    """Gated integrated loudness in LUFS (BS.1770-4); −inf for silence."""
    return _gated_integrated(_block_power(_segments(y, sr), MOMENTARY_WINDOW_S))


def loudness_range(y: np.ndarray, sr: float) -> float:
    """Loudness range in LU (EBU Tech 3342); 0 for silence or very short signals."""
    return _range_lu(_lufs(_block_power(_segments(y, sr), SHORT_TERM_WINDOW_S)))


def true_peak_factor(sr: float) -> int:
    """Oversampling used for true peak: ×4 below 96 kHz, ×2 below 192 kHz, else ×1."""
    return 4 if sr < 96000 else (2 if sr < 192000 else 1)


@lru_cache(maxsize=4)
def _interpolator(factor: int) -> tuple[int, np.ndarray]:
    """The polyphase branches of a ×``factor`` interpolator, phase 0 (the samples
    themselves) left out: (d_min, float32 [factor-1, K]) with branch p giving the value at
    ``j + p/factor`` as ``sum_d x[j-d] * G[p-1, d-d_min]``. The prototype is scipy's
    ``resample_poly`` filter (Kaiser-windowed sinc, 10 zero crossings each side), so the
    result equals ``resample_poly(x, factor, 1)``.
    """
    from scipy.signal import firwin

    half = 10 * factor
    h = firwin(2 * half + 1, 1.0 / factor, window=("kaiser", 5.0)) * factor
    d_min, d_max = -(half // factor) - 1, half // factor + 1
    bank = np.zeros((factor - 1, d_max - d_min + 1))
    for p in range(1, factor):
        for d in range(d_min, d_max + 1):
            k = factor * d + p + half
            if 0 <= k < len(h):
                bank[p - 1, d - d_min] = h[k]
    return d_min, bank.astype(np.float32)


def true_peak_dbtp(y: np.ndarray, sr: float) -> float:
    """Maximum of the ×4-oversampled signal over all channels, in dBTP (−inf if silent).

    The in-between values are computed per polyphase branch with FFT convolution in
    float32, chunk by chunk, so memory stays bounded on long tracks.
    """
    y = _as_channels(y)
    meter = LoudnessMeter(sr, y.shape[0], loudness=False)
    meter.add(y)
    return meter.true_peak()


def _db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else float("-inf")


def _finite_or_none(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None


@dataclass(frozen=True)
class LoudnessSummary:
    """Loudness of one signal.

    integrated: LUFS; loudness_range: LU; true_peak: dBTP; sample_peak: dBFS;
    momentary_max, short_term_max: LUFS; momentary, short_term: float32 [B] LUFS series,
    block k starting at ``k * hop`` seconds (see :meth:`times`); duration: seconds.
    Silent values are −inf.
    """

    integrated: float
    loudness_range: float
    true_peak: float
    sample_peak: float
    momentary_max: float
    short_term_max: float
    duration: float
    momentary: np.ndarray = field(repr=False)
    short_term: np.ndarray = field(repr=False)
    hop: float = HOP_S

    def times(self, which: str = "momentary") -> np.ndarray:
        """float64 [B]: the centre time in seconds of each block of a series."""
        series = self.momentary if which == "momentary" else self.short_term
        window = MOMENTARY_WINDOW_S if which == "momentary" else SHORT_TERM_WINDOW_S
        return np.arange(len(series)) * self.hop + min(window, self.duration) / 2.0

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """JSON-ready numbers (−inf becomes None), optionally with the series."""
        out: dict[str, Any] = {
            "integrated_lufs": _finite_or_none(self.integrated),
            "loudness_range_lu": _finite_or_none(self.loudness_range),
            "true_peak_dbtp": _finite_or_none(self.true_peak),
            "sample_peak_dbfs": _finite_or_none(self.sample_peak),
            "momentary_max_lufs": _finite_or_none(self.momentary_max),
            "short_term_max_lufs": _finite_or_none(self.short_term_max),
        }
        if series:
            out["hop_s"] = self.hop
            out["momentary_lufs"] = [_finite_or_none(v) for v in self.momentary]
            out["short_term_lufs"] = [_finite_or_none(v) for v in self.short_term]
        return out


def _max_or_neg_inf(series: np.ndarray) -> float:
    return float(np.max(series)) if series.size else float("-inf")


def loudness_summary(y: np.ndarray, sr: float) -> LoudnessSummary:
    """Every loudness figure of ``y`` ([channels, samples] or [samples]) at ``sr`` Hz,
    K-weighting the signal once (a :class:`LoudnessMeter` fed the whole signal)."""
    y = _as_channels(y)
    meter = LoudnessMeter(sr, y.shape[0])
    meter.add(y)
    return meter.summary()


def normalisation_gain_db(
    summary: LoudnessSummary, *, target_lufs: float = -14.0, true_peak_ceiling: float = -1.0
) -> float:
    """Gain in dB that brings ``summary``'s integrated loudness to ``target_lufs`` without
    pushing its true peak above ``true_peak_ceiling`` dBTP; 0 for silence."""
    if not math.isfinite(summary.integrated):
        return 0.0
    gain = target_lufs - summary.integrated
    if math.isfinite(summary.true_peak):
        gain = min(gain, true_peak_ceiling - summary.true_peak)
    return float(gain)


def album_integrated_loudness(summaries: list[LoudnessSummary]) -> float:
    """Integrated loudness of several tracks played back to back, in LUFS (EBU R 128's album
    loudness): every track's momentary blocks pooled and gated together. −inf if silent."""
    powers = [10.0 ** ((np.asarray(s.momentary, np.float64) - _OFFSET) / 10.0) for s in summaries]
    pooled = np.concatenate(powers) if powers else np.zeros(0)
    return _gated_integrated(pooled)
