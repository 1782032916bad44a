"""DSP building blocks for the bundled album: oscillators, envelopes, filters, space, dynamics.

Everything is a pure function over float64 numpy arrays at a given sample rate ``sr``.
Mono signals are ``float64 [n]``; stereo signals are ``float64 [2, n]`` (left, right).
Times are in seconds, frequencies in Hz, pitches in MIDI note numbers (69 = A4 = 440 Hz).

Randomness never comes from a global generator: :func:`rng_for` keys a fresh generator by
(track, purpose, index), so any note renders the same whether or not its neighbours do.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import signal

SR = 32000  # 16 kHz of bandwidth; keeps the whole album (mixes and stems) under 30 MB
ALBUM_SEED = 20241122


def rng_for(track: str, purpose: str, index: int = 0) -> np.random.Generator:
    """A fresh generator for one (track, purpose, index); crc32 is stable across processes."""
    key = [ALBUM_SEED, zlib.crc32(track.encode()), zlib.crc32(purpose.encode()), int(index)]
    return np.random.default_rng(key)


def midi_hz(midi: float | np.ndarray) -> float | np.ndarray:
    """Frequency in Hz of a (possibly fractional) MIDI pitch."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def db(gain_db: float) -> float:
    """Linear amplitude of a level in dB."""
    return float(10.0 ** (gain_db / 20.0))


def as_curve(value: float | np.ndarray, n: int) -> np.ndarray:
    """``value`` (scalar or float64 [n]) as a float64 [n] curve."""
    arr = np.asarray(value, dtype=np.float64)
    return np.full(n, float(arr)) if arr.ndim == 0 else arr[:n]


# ---------------------------------------------------------------- envelopes


def adsr(
    n: int,
    sr: int,
    *,
    gate: float,
    attack: float = 0.005,
    decay: float = 0.1,
    sustain: float = 0.7,
    release: float = 0.2,
) -> np.ndarray:
    """float64 [n]: linear attack, exponential decay to ``sustain``, hold until ``gate``
    seconds, then an exponential release reaching -60 dB after ``release`` seconds."""
    t = np.arange(n) / sr
    attack = max(attack, 1.0 / sr)

    def held(tt: np.ndarray) -> np.ndarray:
        rise = np.clip(tt / attack, 0.0, 1.0)
        fall = sustain + (1.0 - sustain) * np.exp(-np.maximum(tt - attack, 0.0) / (decay / 4.0))
        return np.where(tt < attack, rise, fall)

    env = held(t)
    level_at_gate = float(held(np.array([gate]))[0])
    after = t >= gate
    env[after] = level_at_gate * np.exp(-(t[after] - gate) * 6.91 / max(release, 1e-3))
    return env


def perc_env(n: int, sr: int, *, attack: float = 0.001, decay: float = 0.2) -> np.ndarray:
    """float64 [n]: a short linear attack then exponential decay (time constant ``decay``)."""
    t = np.arange(n) / sr
    return np.minimum(t / max(attack, 1.0 / sr), 1.0) * np.exp(-t / decay)


def smooth(x: np.ndarray, sr: int, tau: float) -> np.ndarray:
    """One-pole low-pass of a control curve (time constant ``tau`` seconds), causal."""
    a = np.exp(-1.0 / (max(tau, 1e-5) * sr))
    out, _ = signal.lfilter([1.0 - a], [1.0, -a], x, zi=[a * x[0]])
    return out


def ramp(points: list[tuple[float, float]], n: int, sr: int, *, log: bool = False) -> np.ndarray:
    """float64 [n]: piecewise-linear automation through (time s, value) points; with ``log``
    the interpolation is linear in log(value) (for cutoffs, which we hear in octaves)."""
    ts = np.array([p[0] for p in points], dtype=np.float64)
    vs = np.array([p[1] for p in points], dtype=np.float64)
    t = np.arange(n) / sr
    if log:
        return np.exp(np.interp(t, ts, np.log(vs)))
    return np.interp(t, ts, vs)


# ---------------------------------------------------------------- oscillators


def phase_cycles(freq: float | np.ndarray, n: int, sr: int, phase0: float = 0.0) -> np.ndarray:
    """float64 [n]: running phase in cycles (0..1) of a tone of (time-varying) ``freq``."""
    f = as_curve(freq, n)
    ph = phase0 + np.concatenate(([0.0], np.cumsum(f[:-1]))) / sr
    return ph % 1.0


def blep_saw(freq: float | np.ndarray, n: int, sr: int, phase0: float = 0.0) -> np.ndarray:
    """float64 [n] in [-1, 1]: a sawtooth with PolyBLEP correction (little aliasing)."""
    f = as_curve(freq, n)
    dt = np.clip(f / sr, 1e-9, 0.5)
    ph = phase_cycles(f, n, sr, phase0)
    y = 2.0 * ph - 1.0
    lo = ph < dt
    x = ph[lo] / dt[lo]
    y[lo] -= 2.0 * x - x * x - 1.0
    hi = ph > 1.0 - dt
    x = (ph[hi] - 1.0) / dt[hi]
    y[hi] -= x * x + 2.0 * x + 1.0
    return y


def additive(
    freq: float | np.ndarray,
    n: int,
    sr: int,
    *,
    cutoff: float | np.ndarray,
    resonance: float = 0.0,
    slope: int = 2,
    shape: str = "saw",
    max_harmonics: int = 48,
    phase0: float = 0.0,
    floor: float = 2e-3,
) -> np.ndarray:
    """float64 [n]: a band-limited saw/square/triangle built from harmonics, each weighted
    by a (time-varying) low-pass response at ``cutoff`` Hz with ``slope`` poles and a
    resonant bump. Exact filter sweeps with no aliasing; harmonic k is Im(z**k), computed
    by repeated complex multiplication (cheaper than a sine per harmonic)."""
    f = as_curve(freq, n)
    fc = np.maximum(as_curve(cutoff, n), 20.0)
    ph = phase_cycles(f, n, sr, phase0)
    z1 = np.exp(2j * np.pi * ph)
    zk = np.ones(n, dtype=np.complex128)
    out = np.zeros(n)
    nyq = 0.5 * sr
    for k in range(1, max_harmonics + 1):
        zk *= z1
        if shape == "saw":
            amp = 1.0 / k
        elif k % 2 == 0:
            continue
        elif shape == "square":
            amp = 1.0 / k
        else:  # triangle
            amp = (-1.0) ** ((k - 1) // 2) / (k * k)
        fk = k * f
        if fk.min() >= 0.9 * nyq:
            break
        x = fk / fc
        resp = 1.0 / np.sqrt(1.0 + x ** (2 * slope))
        if resonance:
            resp = resp + resonance * np.exp(-(((x - 1.0) / 0.3) ** 2))
        weight = amp * resp * np.clip((0.9 * nyq - fk) / (0.1 * nyq), 0.0, 1.0)
        if weight.max() < floor and k > 2:
            break
        out += weight * zk.imag
    return out * (2.0 / np.pi)


def fm_tone(
    freq: float, n: int, sr: int, *, ratio: float, index: np.ndarray, phase0: float = 0.0
) -> np.ndarray:
    """float64 [n]: a two-operator FM tone (carrier ``freq``, modulator ``ratio`` x freq,
    modulation ``index`` float64 [n] in radians)."""
    t = np.arange(n) / sr
    mod = np.sin(2 * np.pi * ratio * freq * t)
    return np.sin(2 * np.pi * (freq * t + phase0) + index * mod)


# ---------------------------------------------------------------- filters


def biquad(kind: str, fc: float, sr: int, q: float = 0.707) -> tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook coefficients (b, a) for 'lowpass', 'highpass' or 'bandpass'
    (band-pass with 0 dB peak gain)."""
    w0 = 2 * np.pi * min(fc, 0.49 * sr) / sr
    cw, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    if kind == "lowpass":
        b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
    elif kind == "highpass":
        b = np.array([(1 + cw) / 2, -(1 + cw), (1 + cw) / 2])
    elif kind == "bandpass":
        b = np.array([alpha, 0.0, -alpha])
    else:
        raise ValueError(f"unknown filter kind {kind!r}")
    a = np.array([1 + alpha, -2 * cw, 1 - alpha])
    return b / a[0], a / a[0]


def filt(x: np.ndarray, kind: str, fc: float, sr: int, q: float = 0.707) -> np.ndarray:
    """``x`` (mono [n] or stereo [2, n]) through one static biquad."""
    b, a = biquad(kind, fc, sr, q)
    return signal.lfilter(b, a, x, axis=-1)


def swept(
    x: np.ndarray,
    kind: str,
    cutoff: np.ndarray,
    sr: int,
    q: float = 0.707,
    block: int = 256,
    stages: int = 1,
) -> np.ndarray:
    """``x`` (mono [n] or stereo [2, n]) through ``stages`` cascaded biquads (12 dB/octave
    each) whose cutoff follows the curve ``cutoff`` float64 [n]; coefficients change every
    ``block`` samples and the filter state carries over, so sweeps are smooth and the
    result is causal."""
    out = np.empty_like(x)
    n = x.shape[-1]
    zis = [np.zeros((*x.shape[:-1], 2)) for _ in range(stages)]
    for s in range(0, n, block):
        e = min(s + block, n)
        b, a = biquad(kind, float(cutoff[(s + e) // 2]), sr, q)
        y = x[..., s:e]
        for k in range(stages):
            y, zis[k] = signal.lfilter(b, a, y, axis=-1, zi=zis[k])
        out[..., s:e] = y
    return out


def one_pole_lowpass(x: np.ndarray, fc: float, sr: int) -> np.ndarray:
    """A gentle 6 dB/octave low-pass (mono or stereo)."""
    a = np.exp(-2 * np.pi * fc / sr)
    return signal.lfilter([1 - a], [1, -a], x, axis=-1)


# ---------------------------------------------------------------- space and stereo


def pan(x: np.ndarray, position: float | np.ndarray) -> np.ndarray:
    """Mono float64 [n] -> stereo [2, n] with constant-power panning (-1 left .. 1 right)."""
    angle = (np.asarray(position, dtype=np.float64) + 1.0) * np.pi / 4.0
    return np.stack([x * np.cos(angle), x * np.sin(angle)])


def reverb_ir(
    sr: int,
    *,
    rt60: float,
    seed_key: str,
    predelay: float = 0.012,
    damping_hz: float = 4500.0,
    early: int = 10,
) -> np.ndarray:
    """float64 [2, L]: a synthetic stereo room response: a few early reflections, then
    decorrelated noise decaying by 60 dB over ``rt60`` s, darker as it decays (high
    frequencies die twice as fast). Normalised to unit energy per channel."""
    rng = rng_for(seed_key, "reverb-ir")
    length = int((rt60 * 1.1 + predelay) * sr)
    t = np.arange(length) / sr
    noise = rng.standard_normal((2, length))
    dark = one_pole_lowpass(noise, damping_hz, sr)
    bright = noise - dark
    tt = np.maximum(t - predelay, 0.0)
    env_slow = np.exp(-6.91 * tt / rt60) * (t >= predelay)
    env_fast = np.exp(-13.8 * tt / rt60) * (t >= predelay)
    onset = np.minimum(tt / 0.03, 1.0)
    ir = (dark * env_slow + 0.5 * bright * env_fast) * onset
    for i in range(early):
        delay = predelay * 0.4 + rng.uniform(0.004, 0.045)
        idx = int(delay * sr)
        ir[i % 2, idx] += rng.uniform(0.3, 0.8) * (1 - i / early) * 8.0
    ir /= np.sqrt((ir**2).sum(axis=1, keepdims=True))
    return ir


def convolve_stereo(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Stereo [2, n] through a stereo [2, L] response, channel by channel; output [2, n]."""
    n = x.shape[-1]
    return np.stack([signal.oaconvolve(x[c], ir[c])[:n] for c in range(2)])


def echo(
    x: np.ndarray,
    sr: int,
    *,
    delay: float,
    feedback: float,
    repeats: int = 6,
    pingpong: bool = True,
    tone_hz: float = 3500.0,
) -> np.ndarray:
    """Stereo [2, n] -> the wet signal of a feedback delay (repeats of ``feedback``**k,
    alternating sides when ``pingpong``), darkened by a low-pass; output [2, n]."""
    n = x.shape[-1]
    d = round(delay * sr)
    wet = np.zeros_like(x)
    mono = x.mean(axis=0)
    for k in range(1, repeats + 1):
        s = k * d
        if s >= n:
            break
        g = feedback**k
        if pingpong:
            side = (k - 1) % 2
            wet[side, s:] += g * mono[: n - s] * 1.4
        else:
            wet[:, s:] += g * x[:, : n - s]
    return one_pole_lowpass(wet, tone_hz, sr)


# ---------------------------------------------------------------- dynamics


def duck_curve(
    n: int,
    sr: int,
    hits: list[float],
    *,
    depth: float,
    release: float = 0.16,
    attack: float = 0.004,
) -> np.ndarray:
    """float64 [n] gain: dips by ``depth`` at each hit time (s) and recovers exponentially;
    the side-chain pump of dance music, keyed by the kick pattern."""
    dip = np.zeros(n)
    span = int((attack + 5 * release) * sr)
    shape_t = np.arange(span) / sr
    shape = np.minimum(shape_t / attack, 1.0) * np.exp(-np.maximum(shape_t - attack, 0) / release)
    for h in hits:
        s = round(h * sr)
        if s >= n:
            continue
        e = min(n, s + span)
        dip[s:e] = np.maximum(dip[s:e], shape[: e - s])
    return 1.0 - depth * dip


def saturate(x: np.ndarray, drive: float) -> np.ndarray:
    """Soft clipping with unity small-signal gain: tanh(drive x) / drive."""
    return np.tanh(drive * x) / drive


def limiter_gain(
    x: np.ndarray,
    sr: int,
    *,
    ceiling: float,
    lookahead: float = 0.005,
    release: float = 0.12,
    hop: int = 8,
    true_peak: bool = False,
) -> np.ndarray:
    """float64 [n] gain that keeps ``x`` (stereo [2, n]) at or below ``ceiling`` (linear):
    a look-ahead brick-wall limiter. The gain is a ``lookahead``-long running minimum of
    the required gain, box-smoothed (so it has reached its floor when the peak arrives),
    then released exponentially over ``release`` s. It is one curve for the whole mix, so
    applying it to every stem keeps stems summing to the limited mix. With ``true_peak``
    the level is read from a 4x oversampled signal, so peaks between samples (what a
    DAC or a lossy encoder sees) stay under the ceiling too."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    n = x.shape[-1]
    level = np.abs(x).max(axis=0)
    if true_peak:
        over = np.abs(signal.resample_poly(x, 4, 1, axis=-1)).max(axis=0)
        level = np.maximum(level, over[: 4 * n].reshape(n, 4).max(axis=1))
    need = np.minimum(1.0, ceiling / np.maximum(level, 1e-12))
    look = max(2, int(lookahead * sr))
    held = minimum_filter1d(need, size=2 * look + 1, mode="nearest")
    attack = uniform_filter1d(held, size=look | 1, mode="nearest")
    attack = np.minimum(attack, need)  # guard against rounding at the very peak
    # release, on a coarse grid (a Python loop over every sample would be slow)
    coarse = attack[: n - n % hop].reshape(-1, hop).min(axis=1) if n >= hop else attack[:1]
    coarse = np.append(coarse, attack[n - n % hop :].min()) if n % hop else coarse
    step = 1.0 - np.exp(-hop / (release * sr))
    out = np.empty_like(coarse)
    g = 1.0
    for k, floor_gain in enumerate(coarse.tolist()):
        g = min(floor_gain, g + (1.0 - g) * step)
        out[k] = g
    grid = np.arange(len(out)) * hop + (hop - 1) / 2.0
    released = np.interp(np.arange(n), grid, out)
    return np.minimum(released, attack)
