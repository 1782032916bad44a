"""``stratum bench viz``: render time per view and the loudness real-time factor.

A synthetic 3-minute track (44.1 kHz stereo; four stems of shaped noise and tones, their
sum the mix) is analysed once; then each view renders at 1200x200 and 1920x1080 and the
median of ``--repeats`` runs is printed, with the per-frame cost of a 1080p overlay
(blend + playhead) and the loudness analysis's real-time factor (audio seconds per
second of computing). ``--quick`` uses a 30 s track.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stratum_kernel.bench.timing import median, print_table, time_call, write_json
from stratum_kernel.core.timeline import STEM_NAMES
from stratum_kernel.viz.dynamics import compute_dynamics, render_dynamics
from stratum_kernel.viz.loudness_view import compute_loudness, render_loudness
from stratum_kernel.viz.overlay import build_overlay
from stratum_kernel.viz.params import (
    DynamicsParams,
    LoudnessParams,
    SpectralParams,
    StemWaveformParams,
)
from stratum_kernel.viz.settings import VisualizationSettings
from stratum_kernel.viz.spectral import compute_spectral, render_spectral
from stratum_kernel.viz.waveform import StemEnvelope, stem_waveform_image

SIZES = ((1200, 200), (1920, 1080))


def synthetic_stems(duration: float, sr: int = 44100, seed: int = 0) -> dict[str, np.ndarray]:
    """{stem: float32 [2, n]}: kick-like drums, a bass tone, pad noise, a vocal-ish tone,
    each with its own slow level envelope; the sum stays within [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(duration * sr)
    t = np.arange(n, dtype=np.float64) / sr
    beat = (t * 2.0) % 1.0  # 120 bpm
    drums = np.exp(-beat * 18.0) * np.sin(2 * np.pi * 55.0 * t) + 0.1 * rng.standard_normal(n) * (
        beat < 0.05)
    bass = 0.6 * np.sin(2 * np.pi * 55.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 23.0))
    other = 0.3 * rng.standard_normal(n) * (0.4 + 0.6 * np.sin(2 * np.pi * t / 37.0) ** 2)
    vocals = 0.4 * np.sin(2 * np.pi * (220.0 + 20 * np.sin(2 * np.pi * t / 3.0)) * t) * (
        np.sin(2 * np.pi * t / 11.0) > 0)
    out = {}
    for name, x in zip(STEM_NAMES, (drums, bass, other, vocals), strict=True):
        x = (0.22 * x).astype(np.float32)
        out[name] = np.stack([x, np.roll(x, 7)])
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:  # pragma: no cover - optional
    pass


def run(args: argparse.Namespace) -> int:

    repeats = max(1, int(getattr(args, "repeats", 5)))
    duration = 30.0 if getattr(args, "quick", False) else 180.0
    sr = 44100
    stems = synthetic_stems(duration, sr)
    mix = sum(stems.values())
    rows: list[tuple[str, str]] = []
    results: dict[str, float] = {"track_seconds": duration}

    def timed(label: str, key: str, fn, reps: int = repeats, warmup: int = 1) -> float:
        t = median(time_call(fn, repeats=reps, warmup=warmup))
        rows.append((label, f"{t * 1000:8.2f} ms"))
        results[key] = t
        return t

    t0 = time.perf_counter()
    summary = compute_loudness(mix, sr)
    t_loud = time.perf_counter() - t0
    rows.append(("loudness analysis (BS.1770, first run)",
                 f"{t_loud:8.2f} s  = {duration / t_loud:7.1f}x real time"))
    t_loud = timed("loudness analysis (median)", "loudness_s", lambda: compute_loudness(mix, sr),
                   reps=min(repeats, 3), warmup=0)
    results["loudness_realtime_factor"] = duration / t_loud
    rows.append(("loudness real-time factor", f"{duration / t_loud:8.1f}x"))
    envelope = timed("stem envelope (4 stems, once per track)", "stem_envelope_s",
                     lambda: StemEnvelope.from_stems(stems, sr), reps=min(repeats, 3))
    del envelope
    env = StemEnvelope.from_stems(stems, sr)
    dyn = compute_dynamics(mix, sr, summary)
    t0 = time.perf_counter()
    mel = compute_spectral(mix, sr, kind="mel")
    rows.append(("mel spectrogram analysis (librosa, once)",
                 f"{time.perf_counter() - t0:8.2f} s"))
    beats = np.arange(0.0, duration, 0.5)
    markers = [duration * f for f in (0.25, 0.5, 0.75)]
    wf, lp, dp, sp = StemWaveformParams(smoothing=2), LoudnessParams(), DynamicsParams(), \
        SpectralParams()
    for w, h in SIZES:
        tag = f"{w}x{h}"
        timed(f"stem waveform {tag}", f"stem_waveform_{tag}_s",
              lambda w=w, h=h: stem_waveform_image(env, wf, width=w, height=h, playhead=60.0))
        timed(f"loudness plot {tag}", f"loudness_{tag}_s",
              lambda w=w, h=h: render_loudness(summary, lp, width=w, height=h, playhead=60.0))
        timed(f"dynamics heatstrip {tag}", f"dynamics_{tag}_s",
              lambda w=w, h=h: render_dynamics(dyn, dp, width=w, height=h, playhead=60.0))
        timed(f"mel spectrogram {tag}", f"spectral_{tag}_s",
              lambda w=w, h=h: render_spectral(mel, sp, width=w, height=h, playhead=60.0,
                                               beats=beats, markers=markers))
    settings = VisualizationSettings.in_memory()  # defaults: the bench never reads a file
    overlay = build_overlay({"kind": "stem_waveform", "height": 0.12, "opacity": 85},
                            stems=stems, sr=sr, size=(1920, 1080), settings=settings)
    frame = np.zeros((1080, 1920, 3), np.uint8)
    counter = iter(range(10**9))
    timed("overlay paint per 1080p frame (blend + playhead)", "overlay_paint_1080p_s",
          lambda: overlay.paint(frame, next(counter) / 30.0 % duration), reps=max(repeats, 20))
    print_table(f"viz: {duration:.0f} s synthetic track, medians of {repeats}", rows)
    write_json(getattr(args, "json_path", None), "viz", results)
    return 0
