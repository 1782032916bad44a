"""Fixtures for audio: synthetic signals with known answers and tiny albums.

Signal makers are plain functions (import them: ``from tests.fixtures_audio import sine``);
``rng`` and ``make_album`` are fixtures. Every signal is float32 [channels, samples] so it
matches ``load_audio``'s shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

STEMS = ("drums", "bass", "other", "vocals")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def sine(
    freq: float = 1000.0,
    duration: float = 1.0,
    sr: int = 48000,
    *,
    amplitude: float = 0.5,
    channels: int = 1,
    phase: float = 0.0,
) -> np.ndarray:
    """A sine of ``freq`` Hz and peak ``amplitude``: float32 [channels, round(duration*sr)]."""
    t = np.arange(round(duration * sr), dtype=np.float64) / sr
    y = amplitude * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(y[None, :], channels, axis=0).astype(np.float32)


def click_track(
    bpm: float = 120.0,
    duration: float = 4.0,
    sr: int = 22050,
    *,
    amplitude: float = 0.8,
    click_ms: float = 10.0,
    freq: float = 1500.0,
    channels: int = 1,
    offset: float = 0.0,
) -> np.ndarray:
    """Decaying clicks (``click_ms`` long, ``freq`` Hz) on every beat at ``bpm``, the first at
    ``offset`` seconds: float32 [channels, round(duration*sr)]. Click k starts at sample
    ``round((offset + k*60/bpm) * sr)`` exactly."""
    n = round(duration * sr)
    y = np.zeros(n, dtype=np.float64)
    m = max(1, round(click_ms / 1000 * sr))
    t = np.arange(m) / sr
    click = amplitude * np.sin(2 * np.pi * freq * t) * np.exp(-t / (click_ms / 4000))
    period = 60.0 / bpm
    k = 0
    while True:
        start = round((offset + k * period) * sr)
        if start >= n:
            break
        end = min(n, start + m)
        y[start:end] += click[: end - start]
        k += 1
    return np.repeat(y[None, :], channels, axis=0).astype(np.float32)


def pink_noise(
    duration: float = 1.0,
    sr: int = 48000,
    rng: np.random.Generator | None = None,
    *,
    rms_dbfs: float = -20.0,
    channels: int = 1,
) -> np.ndarray:
    """Pink (1/f power) noise scaled to ``rms_dbfs`` per channel: float32 [channels, n].

    Shaped in the frequency domain from seeded white noise, so it is exact and repeatable.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n = round(duration * sr)
    white = rng.standard_normal((channels, n))
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1] if n > 1 else 1.0
    spec /= np.sqrt(f)[None, :]
    y = np.fft.irfft(spec, n=n, axis=1)
    rms = np.sqrt(np.mean(y**2, axis=1, keepdims=True))
    y *= 10 ** (rms_dbfs / 20) / np.maximum(rms, 1e-20)
    return y.astype(np.float32)


def album_stems(bpm: float, duration: float, sr: int, channels: int = 2, root_hz: float = 110.0):
    """Four stems of a tiny song at ``bpm``: {stem: float32 [channels, n]}; their sum is the
    mix and stays within [-1, 1]."""
    n = round(duration * sr)
    t = np.arange(n) / sr
    beat = 60.0 / bpm
    drums = click_track(bpm, duration, sr, amplitude=0.5, click_ms=30.0, freq=180.0)[0]
    bass = 0.2 * np.sin(2 * np.pi * root_hz * t) * (0.6 + 0.4 * np.cos(np.pi * t / beat) ** 2)
    other = sum(0.06 * np.sin(2 * np.pi * root_hz * 2 * r * t) for r in (1.0, 1.26, 1.5))
    vib = 5.0 * np.sin(2 * np.pi * 5.0 * t)
    vocals = 0.1 * np.sin(2 * np.pi * np.cumsum(root_hz * 4 + vib) / sr)
    vocals *= np.sin(np.pi * t / (2 * beat)) ** 2
    out = {}
    for name, mono in zip(STEMS, (drums, bass, other, vocals), strict=True):
        pan = np.linspace(0.8, 1.0, channels)[:, None] if channels > 1 else np.ones((1, 1))
        out[name] = (mono[None, :] * pan).astype(np.float32)
    return out


_DEFAULT_BPMS = (120.0, 98.0, 132.0, 110.0, 86.0, 140.0)
_DEFAULT_KEYS = ("A minor", "C major", "F# minor", "D major", "E minor", "G major")


@pytest.fixture
def make_album(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a tiny album folder under ``tmp_path``; returns the album's root.

    ``make_album(n_tracks=2, *, duration=2.0, sr=22050, channels=2, bpms=None, stems=False,
    tracklist=True, overrides=None, name="album", suffix=".wav", subtype="FLOAT")``

    - n_tracks: tracks ``track1 .. trackN`` with files ``audio/trackN.wav``.
    - duration, sr, channels: of every track (seconds, Hz, count).
    - bpms: one bpm per track (default 120, 98, 132, ...); the drum stem clicks on it.
    - stems: also write ``stems/<id>/{drums,bass,other,vocals}<suffix>`` that sum to the mix
      (exactly with the default float subtype).
    - tracklist: write ``tracklist.json`` (False: only the audio files, straight in the root,
      as a user's plain folder of songs).
    - overrides: {track index: {field: value}} merged into that tracklist entry; a value of
      ``None`` removes the field.
    - name: the album folder's name under tmp_path (call again with another name for a
      second album); suffix / subtype: file type of the mix and stems.
    """

    def factory(
        n_tracks: int = 2,
        *,
        duration: float = 2.0,
        sr: int = 22050,
        channels: int = 2,
        bpms: tuple[float, ...] | None = None,
        stems: bool = False,
        tracklist: bool = True,
        overrides: dict[int, dict] | None = None,
        name: str = "album",
        suffix: str = ".wav",
        subtype: str | None = "FLOAT",
    ) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        bpms = tuple(bpms) if bpms is not None else _DEFAULT_BPMS
        subtype = subtype if suffix in (".wav", ".w64", ".aiff") else None
        entries = []
        for i in range(n_tracks):
            tid = f"track{i + 1}"
            bpm = float(bpms[i % len(bpms)])
            parts = album_stems(bpm, duration, sr, channels, root_hz=110.0 * 2 ** (i / 12))
            mix = sum(parts.values())
            src = f"audio/{tid}{suffix}" if tracklist else f"{i + 1:02d} {tid}{suffix}"
            (root / src).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / src, mix.T, sr, subtype=subtype)
            if stems:
                stem_dir = root / "stems" / tid
                stem_dir.mkdir(parents=True, exist_ok=True)
                for stem, y in parts.items():
                    sf.write(stem_dir / f"{stem}{suffix}", y.T, sr, subtype=subtype)
            entry = {
                "id": tid,
                "src": src,
                "title": f"Track {i + 1}",
                "artist": "stratum tests",
                "bpm": bpm,
                "key": _DEFAULT_KEYS[i % len(_DEFAULT_KEYS)],
                "markers": [{"time": round(duration / 2, 3), "label": "peak"}],
            }
            for field, value in (overrides or {}).get(i, {}).items():
                if value is None:
                    entry.pop(field, None)
                else:
                    entry[field] = value
            entries.append(entry)
        if tracklist:
            (root / "tracklist.json").write_text(json.dumps(entries, indent=2) + "\n")
        return root

    return factory
