"""The album's instruments: drum voices, bass, keys, pads, plucks, stabs, risers and a singer.

Each function renders one note or hit as a mono ``float64 [n]`` array (pads: stereo
``[2, n]``) starting at the note's onset, with its release tail included. Loudness is
roughly normalised (peaks near 1 at full velocity) so the arrangement sets the balance.
Deterministic notes are memoised (an arpeggio repeats a handful of them hundreds of
times); callers never modify the returned arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from album.synth import (
    additive,
    adsr,
    blep_saw,
    filt,
    fm_tone,
    midi_hz,
    one_pole_lowpass,
    perc_env,
    saturate,
    smooth,
)

# ---------------------------------------------------------------- drums


def _peak1(x: np.ndarray) -> np.ndarray:
    """Scale a one-shot to peak 1, so drum levels are set by the arrangement alone."""
    return x / np.abs(x).max()


def kick(
    sr: int,
    *,
    tone: float = 48.0,
    punch: float = 1.0,
    decay: float = 0.38,
    click: float = 0.35,
    drive: float = 1.6,
) -> np.ndarray:
    """A synthesised bass drum: a sine swept down from ~tone+160 Hz and a beater click (a
    fast downward chirp, broadband so the beat reads across the spectrum), soft clipped
    so its peak sits near 1 without a spike."""
    n = int((decay * 3.0 + 0.02) * sr)
    t = np.arange(n) / sr
    f = tone + 160.0 * punch * np.exp(-t / 0.028) + 600.0 * np.exp(-t / 0.0025)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * perc_env(n, sr, attack=0.0008, decay=decay)
    chirp = 400.0 + min(7000.0, 0.4 * sr) * np.exp(-t / 0.003)
    tick = np.sin(2 * np.pi * np.cumsum(chirp) / sr) * np.exp(-t / 0.004) * click
    return _peak1(np.tanh(drive * (body + tick)))


def snare(
    sr: int,
    rng: np.random.Generator,
    *,
    tone: float = 190.0,
    snap: float = 0.6,
    decay: float = 0.11,
) -> np.ndarray:
    """Two damped drum-head modes plus band-passed noise for the wires."""
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    head = (
        np.sin(2 * np.pi * tone * t * (1 + 0.2 * np.exp(-t / 0.01)))
        + 0.6 * np.sin(2 * np.pi * tone * 1.72 * t)
    ) * np.exp(-t / 0.045)
    wires = filt(rng.standard_normal(n), "bandpass", 4200.0, sr, q=0.6)
    wires = filt(wires, "highpass", 900.0, sr) * perc_env(n, sr, attack=0.0005, decay=decay)
    return _peak1(0.55 * head + snap * 2.2 * wires)


def clap(sr: int, rng: np.random.Generator, *, tail: float = 0.09) -> np.ndarray:
    """Three quick noise bursts then a short tail, band-passed around 1.2 kHz."""
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    env = np.zeros(n)
    for k, offset in enumerate((0.0, 0.009, 0.019)):
        tt = t - offset
        env += np.where(tt >= 0, np.exp(-np.maximum(tt, 0) / 0.0035), 0.0) * (0.8 + 0.1 * k)
    tt = t - 0.026
    env += np.where(tt >= 0, np.exp(-np.maximum(tt, 0) / tail), 0.0) * 0.7
    burst = filt(rng.standard_normal(n), "bandpass", 1250.0, sr, q=1.2)
    return _peak1(burst * env)


HAT_PARTIALS = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)


def hat(
    sr: int,
    rng: np.random.Generator,
    *,
    decay: float = 0.035,
    noise: float = 0.2,
    tone_hz: float = 8000.0,
) -> np.ndarray:
    """A metallic hi-hat: six detuned square waves (the TR-808 recipe) and a little noise,
    high-passed; ``decay`` 0.03 s closed, 0.2-0.3 s open."""
    n = int((decay * 6 + 0.01) * sr)
    t = np.arange(n) / sr
    metal = sum(
        np.sign(np.sin(2 * np.pi * f * 1.5 * t + rng.uniform(0, 6.28))) for f in HAT_PARTIALS
    )
    src = metal / 6.0 + noise * rng.standard_normal(n)
    src = filt(filt(src, "highpass", tone_hz * 0.85, sr, q=0.9), "highpass", tone_hz, sr)
    return _peak1(src * perc_env(n, sr, attack=0.0004, decay=decay))


def shaker(sr: int, rng: np.random.Generator, *, length: float = 0.07) -> np.ndarray:
    """Band-passed noise with a soft attack: a shaker or brushed snare."""
    n = int(length * 2.5 * sr)
    t = np.arange(n) / sr
    env = np.sin(np.pi * np.clip(t / length, 0, 1)) ** 2 * np.exp(-t / (length * 0.6))
    return _peak1(filt(rng.standard_normal(n), "bandpass", 6500.0, sr, q=1.4) * env)


@lru_cache(maxsize=256)
def rim(sr: int) -> np.ndarray:
    """A short woody click: two damped modes."""
    n = int(0.08 * sr)
    t = np.arange(n) / sr
    return _peak1(
        (np.sin(2 * np.pi * 1650 * t) + 0.7 * np.sin(2 * np.pi * 520 * t)) * np.exp(-t / 0.012)
    )


@lru_cache(maxsize=256)
def conga(sr: int, *, tone: float = 240.0) -> np.ndarray:
    """A hand-drum tone with a small pitch drop."""
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    f = tone * (1 + 0.12 * np.exp(-t / 0.015))
    return _peak1(np.sin(2 * np.pi * np.cumsum(f) / sr) * perc_env(n, sr, attack=0.001, decay=0.09))


def crash(sr: int, rng: np.random.Generator, *, decay: float = 0.9) -> np.ndarray:
    """A cymbal swell: bright noise and metal decaying over about ``decay`` x 3 s."""
    n = int(decay * 3.2 * sr)
    t = np.arange(n) / sr
    metal = sum(np.sin(2 * np.pi * f * 7.3 * t + rng.uniform(0, 6.28)) for f in HAT_PARTIALS)
    src = filt(rng.standard_normal(n) + 0.3 * metal, "highpass", 5200.0, sr)
    return _peak1(one_pole_lowpass(src, 11000.0, sr) * perc_env(n, sr, attack=0.002, decay=decay))


# ---------------------------------------------------------------- bass and keys


def bass(
    midi: float,
    dur: float,
    sr: int,
    *,
    cutoff: float = 380.0,
    env_amount: float = 900.0,
    env_decay: float = 0.09,
    resonance: float = 0.4,
    sub: float = 0.6,
    shape: str = "saw",
    release: float = 0.06,
    glide_from: float | None = None,
    drive: float = 1.5,
) -> np.ndarray:
    """A monophonic synth bass: a filtered saw/square with a plucky filter envelope plus a
    sine sub-octave, softly driven; ``glide_from`` slides in from another pitch."""
    n = int((dur + release * 1.5) * sr)
    t = np.arange(n) / sr
    pitch = np.full(n, float(midi))
    if glide_from is not None:
        pitch = midi + (glide_from - midi) * np.exp(-t / 0.035)
    f = midi_hz(pitch)
    fc = cutoff + env_amount * np.exp(-t / env_decay)
    tone = additive(
        f, n, sr, cutoff=fc, resonance=resonance, slope=2, shape=shape, max_harmonics=40
    )
    low = np.sin(2 * np.pi * np.cumsum(f) / sr)
    amp = adsr(n, sr, gate=dur, attack=0.004, decay=0.25, sustain=0.75, release=release)
    return saturate((tone + sub * low) * amp, drive) * 0.9


@lru_cache(maxsize=256)
def epiano(
    midi: float, dur: float, sr: int, *, velocity: float = 0.8, release: float = 0.25
) -> np.ndarray:
    """An FM electric piano: a ratio-1 body whose brightness falls after the strike and a
    quiet high tine ringing briefly, like a struck rod."""
    f = float(midi_hz(midi))
    ring = 1.6 * (261.6 / f) ** 0.35
    n = int((min(dur, ring * 2.5) + release * 1.2) * sr)
    t = np.arange(n) / sr
    index = (0.5 + 2.0 * velocity) * np.exp(-t / 0.25) + 0.25
    body = fm_tone(f, n, sr, ratio=1.0, index=index)
    tine = np.sin(2 * np.pi * f * 14.0 * t) * np.exp(-t / 0.018) * 0.18 * velocity
    if f * 14.0 > 0.45 * sr:
        tine *= 0.0
    decay = np.exp(-t / ring)
    gate = adsr(n, sr, gate=dur, attack=0.002, decay=0.01, sustain=1.0, release=release)
    return (body * decay + tine) * gate * (0.4 + 0.6 * velocity)


@lru_cache(maxsize=256)
def bell(midi: float, sr: int, *, velocity: float = 0.7, decay: float = 0.9) -> np.ndarray:
    """An FM bell (inharmonic ratio 3.5) for sparkling arpeggios."""
    f = float(midi_hz(midi))
    n = int(decay * 4 * sr)
    t = np.arange(n) / sr
    index = 2.2 * velocity * np.exp(-t / (decay * 0.4))
    return (
        fm_tone(f, n, sr, ratio=3.5, index=index)
        * perc_env(n, sr, attack=0.001, decay=decay)
        * velocity
    )


def pad(
    midi: float,
    dur: float,
    sr: int,
    rng: np.random.Generator,
    *,
    voices: int = 3,
    detune_cents: float = 14.0,
    width: float = 0.45,
    attack: float = 0.6,
    release: float = 1.2,
    sustain: float = 0.85,
) -> np.ndarray:
    """Stereo [2, n] detuned-saw pad ("supersaw"): ``voices`` saws shared by both sides
    plus one more saw per side at ``width`` level, with random phases and slow drift. The
    side signal stays small, which keeps the pad wide yet cheap to store; the channel
    filter shapes it (see synth.swept)."""
    n = int((dur + release) * sr)
    f0 = float(midi_hz(midi))
    t = np.arange(n) / sr

    def saw(cents: float) -> np.ndarray:
        drift = 1 + 0.0015 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6.28))
        return blep_saw(f0 * 2 ** (cents / 1200) * drift, n, sr, rng.uniform())

    center = sum(
        saw((v - (voices - 1) / 2) / max(voices - 1, 1) * 2 * detune_cents) for v in range(voices)
    )
    sides = [saw(-0.6 * detune_cents), saw(0.6 * detune_cents)]
    env = adsr(n, sr, gate=dur, attack=attack, decay=0.8, sustain=sustain, release=release)
    out = np.stack([center + width * sides[0], center + width * sides[1]])
    return out * env / (voices + width)


@lru_cache(maxsize=256)
def pluck(
    midi: float,
    sr: int,
    *,
    velocity: float = 0.8,
    decay: float = 0.22,
    brightness: float = 2500.0,
    shape: str = "saw",
) -> np.ndarray:
    """A plucked synth note: band-limited saw whose filter closes quickly after the pluck."""
    f = float(midi_hz(midi))
    n = int(decay * 5 * sr)
    t = np.arange(n) / sr
    fc = f * 1.2 + brightness * velocity * np.exp(-t / (decay * 0.5))
    tone = additive(f, n, sr, cutoff=fc, resonance=0.3, slope=2, shape=shape, max_harmonics=32)
    return tone * perc_env(n, sr, attack=0.002, decay=decay) * velocity


ORGAN_DRAWBARS = ((1.0, 1.0), (2.0, 0.65), (3.0, 0.45), (4.0, 0.3), (6.0, 0.15), (8.0, 0.12))


@lru_cache(maxsize=256)
def stab(midi: float, sr: int, *, velocity: float = 0.8, length: float = 0.16) -> np.ndarray:
    """A short organ-like chord stab (drawbar partials) for deep-house offbeats."""
    f = float(midi_hz(midi))
    n = int((length * 4 + 0.02) * sr)
    t = np.arange(n) / sr
    tone = sum(a * np.sin(2 * np.pi * f * h * t) for h, a in ORGAN_DRAWBARS if f * h < 0.45 * sr)
    env = np.minimum(t / 0.003, 1.0) * np.exp(-t / length)
    return tone * env * velocity * 0.5


def riser(
    dur: float,
    sr: int,
    rng: np.random.Generator,
    *,
    start_midi: float = 48.0,
    octaves: float = 2.0,
    noise: float = 0.25,
) -> np.ndarray:
    """A build-up sweep: a saw gliding up ``octaves`` with an opening filter, plus a thin
    layer of noise, swelling to full level at ``dur``."""
    n = int(dur * sr)
    t = np.arange(n) / sr
    x = t / dur
    f = midi_hz(start_midi + 12 * octaves * x**1.6)
    tone = additive(f, n, sr, cutoff=400 + 6000 * x**2, resonance=0.8, slope=2, max_harmonics=24)
    hiss = filt(rng.standard_normal(n), "highpass", 3000.0, sr) * noise * x
    return (tone + hiss) * (x**2) * np.minimum((1 - x) / 0.01 + 0.0, 1.0)


# ---------------------------------------------------------------- the singer

# Formants of a sung alto (frequency Hz, bandwidth Hz, level dB), after the classic
# Csound/IRCAM vowel tables.
VOWELS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "a": ((800, 80, 0), (1150, 90, -4), (2800, 120, -20), (3500, 130, -36), (4950, 140, -60)),
    "e": ((400, 60, 0), (1600, 80, -24), (2700, 120, -30), (3300, 150, -35), (4950, 200, -60)),
    "i": ((350, 50, 0), (1700, 100, -20), (2700, 120, -30), (3700, 150, -36), (4950, 200, -60)),
    "o": ((450, 70, 0), (800, 80, -9), (2830, 100, -16), (3500, 130, -28), (4950, 135, -55)),
    "u": ((325, 50, 0), (700, 60, -12), (2530, 170, -30), (3500, 180, -40), (4950, 200, -64)),
}


@dataclass(frozen=True)
class SungNote:
    """One sung note, times in seconds from the phrase onset."""

    start: float
    dur: float
    midi: float
    vowel: str = "a"
    velocity: float = 0.8


def sing(
    notes: list[SungNote],
    sr: int,
    rng: np.random.Generator,
    *,
    vibrato_hz: float = 5.4,
    vibrato_cents: float = 38.0,
    glide: float = 0.045,
    breath: float = 0.03,
    formant_shift: float = 1.0,
    release: float = 0.12,
) -> np.ndarray:
    """A legato phrase as mono float64 [n] from t = 0: a glottal-like source (band-limited
    saw with slow pitch drift and vibrato that blooms after each onset) through parallel
    vowel formant filters, morphing smoothly from vowel to vowel."""
    end = max(nt.start + nt.dur for nt in notes) + release * 4
    n = int(end * sr)
    t = np.arange(n) / sr
    pitch = np.full(n, notes[0].midi)
    gate = np.zeros(n)
    onset_age = np.full(n, 10.0)
    weights = {v: np.zeros(n) for v in {nt.vowel for nt in notes}}
    for nt in notes:
        s, e = int(nt.start * sr), int((nt.start + nt.dur) * sr)
        pitch[s:] = nt.midi
        gate[s:e] = nt.velocity
        onset_age[s:] = t[s:] - nt.start
        for v, w in weights.items():
            w[s:] = 1.0 if v == nt.vowel else 0.0
    pitch = smooth(pitch, sr, glide)
    depth = np.clip((onset_age - 0.18) / 0.35, 0.0, 1.0) * vibrato_cents / 100.0
    rate = vibrato_hz * (1 + 0.04 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.28)))
    vibrato = depth * np.sin(2 * np.pi * np.cumsum(rate) / sr)
    drift = smooth(rng.standard_normal(n), sr, 0.08) * 0.6  # a few cents of wander
    f0 = midi_hz(pitch + vibrato + drift)
    source = blep_saw(f0, n, sr, rng.uniform())
    source = one_pole_lowpass(source, 1000.0, sr) + 0.15 * source  # glottal tilt, -12 dB/oct
    aspiration = filt(rng.standard_normal(n), "highpass", 1500.0, sr) * breath
    source = source + aspiration * (0.5 + 0.5 * np.sin(2 * np.pi * np.cumsum(f0) / sr))
    voice = np.zeros(n)
    for v, w in weights.items():
        shaped = np.zeros(n)
        for freq, bw, level in VOWELS[v]:
            fc = freq * formant_shift
            shaped += filt(source, "bandpass", fc, sr, q=fc / bw) * 10 ** (level / 20)
        voice += smooth(w, sr, 0.05) * shaped
    amp = smooth(smooth(gate, sr, 0.035), sr, release / 3)
    return 2.2 * voice * amp
