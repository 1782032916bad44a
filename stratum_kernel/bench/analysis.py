"""``stratum bench analysis``: audio analysis and stem separation speed, and separation SDR.

On a deterministic synthetic 3-minute stereo 44.1 kHz track (``--quick``: 30 s) with its
four true stems (kick/snare/hats, a bass line, chords, a gliding vibrato lead):

- **cold analysis**: :func:`compute_features` from audio in memory, mix only and with the
  four stems, after an untimed warm-up on 5 s (imports and the numba cache are warm);
- **cold from file**: ``FeatureCache.load_or_compute`` on an empty cache (decode the FLAC,
  hash it, analyse, write the npz);
- **cached load**: the same call again, with the file hash remembered (the normal case),
  and as a new process would find it (hash memo read from disk);
- **DSP separation**: :func:`separate_dsp` on the whole track.

Each is reported as seconds (median over ``--repeats``) and as a real-time factor (track
duration ÷ time), against the targets: cold ≥ 60×, cached ≤ 50 ms, separation ≥ 10×.
Then the DSP separator's SDR per stem on the synthetic track and on every track of the
bundled album that ships true stems (``album/stems/<id>/``).

``--long 5,20,60`` measures instead peak memory and speed on tracks of those lengths
(:mod:`stratum_kernel.bench.long_track`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.analysis.cache import FeatureCache
from stratum_kernel.analysis.features import FeatureParams, compute_features
from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.files import load_audio
from stratum_kernel.audio.stems import sdr, separate_dsp
from stratum_kernel.bench.songs import STEMS, synthetic_song
from stratum_kernel.bench.timing import median, print_table, time_call, write_json
from stratum_kernel.core import digests
from stratum_kernel.core.paths import default_album_dir

TARGET_COLD_RTF = 60.0
TARGET_CACHED_S = 0.050
TARGET_SEPARATION_RTF = 10.0


def _write_album(root: Path, mix: np.ndarray, sr: int) -> Any:
    import soundfile as sf

    (root / "audio").mkdir(parents=True)
    sf.write(root / "audio" / "bench.flac", mix.T, sr, subtype="PCM_24")
    entry = {"id": "bench", "src": "audio/bench.flac", "bpm": 120.0}
    (root / "tracklist.json").write_text(json.dumps([entry]))
    old = time.time() - 3600  # an album file written long ago, as albums are
    os.utime(root / "audio" / "bench.flac", (old, old))
    return load_album(root).tracks[0]


def album_sdr(album_dir: Path) -> dict[str, dict[str, float]]:
    """{track id: {stem: SDR dB}} of the DSP separator against the album's true stems."""

    out: dict[str, dict[str, float]] = {}
    if not (album_dir / "tracklist.json").exists():
        return out
    for track in load_album(album_dir).tracks:
        if not track.stem_paths:
            continue
        y, sr = load_audio(track.audio_path)
        est = separate_dsp(y, sr)
        out[track.id] = {}
        for s in STEMS:
            ref, _ = load_audio(track.stem_paths[s], sr=sr)
            out[track.id][s] = round(sdr(ref, est[s]), 2)
    return out


def _rtf(duration: float, seconds: float) -> str:
    return f"{seconds:.3f} s  ({duration / seconds:.0f}x real time)"


def run(args: argparse.Namespace) -> int:
    import stratum_kernel  # noqa: F401  (numba cache location)

    if getattr(args, "long", None):
        return run_long_tracks(args)

    quick = bool(getattr(args, "quick", False))
    repeats = max(1, 1 if quick else int(getattr(args, "repeats", 5) or 5))
    duration = 30.0 if quick else 180.0
    sr = 44100
    parts = synthetic_song(duration, sr)
    mix = sum(parts.values())
    params = FeatureParams()

    compute_features(mix[:, : 5 * sr], sr, params=params, bpm_prior=120.0, stems=parts)
    cold = time_call(
        lambda: compute_features(mix, sr, params=params, bpm_prior=120.0), repeats, warmup=0
    )
    cold_stems = time_call(
        lambda: compute_features(mix, sr, params=params, bpm_prior=120.0, stems=parts),
        repeats,
        warmup=0,
    )
    tf = compute_features(mix, sr, params=params, bpm_prior=120.0)

    with tempfile.TemporaryDirectory(prefix="stratum-bench-") as tmp:
        track = _write_album(Path(tmp) / "album", mix, sr)
        from_file, cached, fresh_process = [], [], []
        for i in range(repeats):
            cache = FeatureCache(Path(tmp) / f"cache{i}" / "features")
            t0 = time.perf_counter()
            cache.load_or_compute(track, params, stems="none")
            from_file.append(time.perf_counter() - t0)
            cached += time_call(
                lambda c=cache: c.load_or_compute(track, params, stems="none"), 3, warmup=0
            )

            digests._MEMO.clear()  # as a new process: the memo is on disk
            t0 = time.perf_counter()
            cache.load_or_compute(track, params, stems="none")
            fresh_process.append(time.perf_counter() - t0)

    sep_repeats = 1 if quick else max(1, min(3, repeats))
    separation = time_call(lambda: separate_dsp(mix, sr), sep_repeats, warmup=0)
    est = separate_dsp(mix, sr)
    synthetic_sdr = {s: round(sdr(parts[s], est[s]), 2) for s in STEMS}
    sum_error = float(np.abs(sum(est.values()) - mix).max())

    album = {} if quick else album_sdr(default_album_dir())

    c, cs, ff = median(cold), median(cold_stems), median(from_file)
    hit, fresh, sep = median(cached), median(fresh_process), median(separation)
    rows = [
        ("track", f"{duration:.0f} s stereo {sr} Hz synthetic, {tf.n_frames} hops"),
        ("tempo estimate", f"{tf.tempo_estimate:.2f} bpm (truth 120)"),
        ("cold analysis, mix", _rtf(duration, c) + _mark(duration / c >= TARGET_COLD_RTF)),
        ("cold analysis, mix + 4 stems", _rtf(duration, cs)),
        ("cold from FLAC (decode, hash, save)", _rtf(duration, ff)),
        ("cached load", f"{hit * 1000:.1f} ms" + _mark(hit <= TARGET_CACHED_S)),
        ("cached load, new process", f"{fresh * 1000:.1f} ms" + _mark(fresh <= TARGET_CACHED_S)),
        ("DSP separation", _rtf(duration, sep) + _mark(duration / sep >= TARGET_SEPARATION_RTF)),
        ("separation sum error", f"{sum_error:.2e} (max abs)"),
        ("SDR synthetic (dB)", _sdr_row(synthetic_sdr)),
    ]
    for tid, values in album.items():
        rows.append((f"SDR album {tid} (dB)", _sdr_row(values)))
    if album:
        mean = {s: round(float(np.mean([v[s] for v in album.values()])), 2) for s in STEMS}
        rows.append(("SDR album mean (dB)", _sdr_row(mean)))
    elif not quick:
        rows.append(("SDR album", "no bundled album with stems found"))
    print_table(f"analysis (median of {repeats})", rows)

    write_json(
        getattr(args, "json_path", None),
        "analysis",
        {
            "duration_s": duration,
            "cold_mix_s": c,
            "cold_mix_rtf": duration / c,
            "cold_stems_s": cs,
            "cold_from_file_s": ff,
            "cached_load_s": hit,
            "cached_load_new_process_s": fresh,
            "separation_s": sep,
            "separation_rtf": duration / sep,
            "separation_sum_error": sum_error,
            "sdr_synthetic_db": synthetic_sdr,
            "sdr_album_db": album,
        },
    )
    return 0


def run_long_tracks(args: argparse.Namespace) -> int:
    """``--long``: peak memory and speed of analysis and film audio per track length."""
    from stratum_kernel.bench.long_track import run_long, table_rows

    minutes = sorted({int(m) for m in str(args.long).split(",") if m.strip()})
    rows = run_long(minutes)
    print_table("long tracks (fresh process each, empty caches)", table_rows(rows))
    write_json(getattr(args, "json_path", None), "analysis_long", {"rows": rows})
    return 0


def _mark(ok: bool) -> str:
    return "  ok" if ok else "  BELOW TARGET"


def _sdr_row(values: dict[str, float]) -> str:
    return "  ".join(f"{s} {values[s]:+.2f}" for s in STEMS)
