"""Deterministic synthetic songs with their true stems, for the benchmarks: the analysis
and separation figures (3 minutes) and the long-track memory figures (an hour, one
minute at a time)."""

from __future__ import annotations

import numpy as np

STEMS = ("drums", "bass", "other", "vocals")


def synthetic_song(duration: float = 180.0, sr: int = 44100, seed: int = 7):
    """A deterministic 120 bpm song: {stem: float32 [2, n]}; the mix is their sum.

    Kick on every beat, snare on 2 and 4, closed hats on eighths; a bass line on the root
    of a four-bar progression; sustained triads panned left/right; a centred lead gliding
    between chord tones with vibrato, in phrases that never repeat exactly.
    """
    rng = np.random.default_rng(seed)
    n = round(duration * sr)
    t = np.arange(n) / sr
    beat = 0.5
    pos = t / beat
    stems = {s: np.zeros((2, n)) for s in STEMS}
    roots = np.array([45, 41, 48, 43])  # A2 F2 C3 G2 (midi), one per bar
    bar = (pos // 4).astype(np.int64) % 4
    hz = 440.0 * 2.0 ** ((roots[bar] - 69) / 12.0)

    def place(hit: np.ndarray, times: np.ndarray, gain: tuple[float, float]) -> np.ndarray:
        out = np.zeros(n)
        for s in np.round(times * sr).astype(np.int64):
            e = min(n, s + len(hit))
            out[s:e] += hit[: e - s]
        return np.stack([gain[0] * out, gain[1] * out])

    k = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * k + 60 * (1 - np.exp(-k / 0.02)) * 0.02)) * np.exp(-k / 0.09)
    snare = (
        rng.standard_normal(len(k)) * np.exp(-k / 0.05) * 0.4
        + np.sin(2 * np.pi * 190 * k) * np.exp(-k / 0.04) * 0.3
    )
    hat = np.diff(rng.standard_normal(int(0.04 * sr) + 1)) * np.exp(-k[: int(0.04 * sr)] / 0.01)
    beats = np.arange(0, duration, beat)
    stems["drums"] += place(0.9 * kick, beats, (1.0, 1.0))
    stems["drums"] += place(0.5 * snare, beats[1::2], (0.9, 1.0))
    stems["drums"] += place(0.12 * hat, np.arange(0, duration, beat / 2), (0.7, 1.0))

    note = (pos * 2 % 1.0) * beat / 2  # time since the last eighth note
    bass_phase = 2 * np.pi * np.cumsum(hz) / sr
    bass = (np.sin(bass_phase) + 0.3 * np.sin(2 * bass_phase)) * np.exp(-note / 0.4)
    stems["bass"] += np.stack([0.35 * bass, 0.35 * bass])

    chord = sum(np.sin(2 * np.pi * np.cumsum(2 * hz * 2 ** (i / 12)) / sr + i) for i in (0, 4, 7))
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / (16 * beat))
    stems["other"] += np.stack([0.07 * chord * swell, 0.05 * chord * swell])

    phrase = rng.choice([0, 3, 7, 12, 10, 5], size=int(duration / beat) + 2)
    lead_midi = roots[bar] + 24 + phrase[pos.astype(np.int64)]
    lead_hz = 440.0 * 2.0 ** ((lead_midi - 69) / 12.0) * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * t))
    smooth = np.convolve(lead_hz, np.ones(441) / 441, mode="same")
    voice = np.sin(2 * np.pi * np.cumsum(smooth) / sr)
    voice = voice + 0.4 * np.sin(2 * np.cumsum(2 * np.pi * smooth) / sr)
    gate = (np.sin(np.pi * pos / 8) > -0.2).astype(np.float64)  # phrases with rests
    gate = np.convolve(gate, np.ones(2205) / 2205, mode="same")
    stems["vocals"] += np.stack([0.12 * voice * gate, 0.12 * voice * gate])
    return {s: v.astype(np.float32) for s, v in stems.items()}
