"""``stratum bench analysis --long 5,20,60``: peak memory and speed on long tracks.

A seeded synthetic stereo 44.1 kHz track of the longest requested length is written to a
temporary folder as 24-bit FLAC, one minute at a time (each minute is
:func:`~stratum_kernel.bench.songs.synthetic_song` with its own seed, so the music does
not repeat exactly); the shorter lengths are its first minutes. For each length two
measurements run, each in a fresh child process, so that one's memory cannot hide in
another's:

- **analysis**: ``FeatureCache.load_or_compute`` with DSP stems on empty caches (hash the
  file, separate and write the stem cache, analyse the mix and the stems, save the npz);
- **film audio**: :func:`~stratum_kernel.film.mux.prepare_audio` to 48 kHz stereo, loudness
  normalised to -14 LUFS.

Peak memory is the child's maximum resident set (``os.wait4``'s ``ru_maxrss``, the same
figure as ``getrusage(RUSAGE_CHILDREN)`` for one child), including the interpreter and its
imports (reported apart as "baseline"); speed is the track's duration over the call's wall
time. The aim (issue #19): at most 1.5 GB for an hour-long track, at least 60x real time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_PEAK_BYTES = 1.5e9
TARGET_RTF = 60.0
_SECTION_S = 60.0


def write_long_track(path: Path, minutes: int, sr: int = 44100, seed: int = 7) -> Path:
    """A deterministic stereo song of ``minutes`` minutes as 24-bit FLAC at ``path``:
    minute ``k`` is ``synthetic_song(60 s, seed=seed + k)`` (written as it is made, so the
    memory used does not grow with the length)."""
    import soundfile as sf

    from stratum_kernel.bench.songs import synthetic_song

    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", sr, 2, subtype="PCM_24", format="FLAC") as f:
        for k in range(minutes):
            mix = sum(synthetic_song(_SECTION_S, sr, seed=seed + k).values())
            f.write(np.clip(mix, -1.0, 1.0).T)
    return path


def _copy_prefix(src: Path, dst: Path, minutes: int) -> Path:
    """The first ``minutes`` minutes of ``src`` as a FLAC at ``dst``, copied in blocks."""
    import soundfile as sf

    with sf.SoundFile(src) as f_in:
        frames = round(minutes * 60 * f_in.samplerate)
        with sf.SoundFile(dst, "w", f_in.samplerate, f_in.channels, subtype="PCM_24",
                          format="FLAC") as f_out:
            done = 0
            for block in f_in.blocks(1 << 20, dtype="float32", frames=frames):
                f_out.write(block)
                done += len(block)
    return dst


def _album(root: Path, audio: Path) -> Path:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    target = root / "audio" / audio.name
    if not target.exists():
        os.link(audio, target)
    entry = {"id": "long", "src": f"audio/{audio.name}", "bpm": 120.0}
    (root / "tracklist.json").write_text(json.dumps([entry]))
    return root


def _child(kind: str, audio: str, work: str) -> None:
    """Runs in the measured process: one call, then a JSON line with its wall time."""
    import resource

    import stratum_kernel  # noqa: F401  (the numba cache location)
    from stratum_kernel.analysis.cache import FeatureCache
    from stratum_kernel.audio.album import load_album
    from stratum_kernel.film.mux import prepare_audio

    work_dir = Path(work)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    if kind == "analysis":
        track = load_album(_album(work_dir / "album", Path(audio))).tracks[0]
        cache = FeatureCache(work_dir / "cache" / "features")
        tf = cache.load_or_compute(track, stems="auto", stems_backend="dsp")
        detail = {"frames": tf.n_frames, "stems": tf.stem_source, "tempo": tf.tempo_estimate}
    else:
        pa = prepare_audio(audio, work_dir / "film.wav", sample_rate=48000, channels=2,
                           target_lufs=-14.0)
        detail = {"samples": pa.samples, "gain_db": pa.gain_db}
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "baseline_bytes": baseline, **detail}))


def measure(kind: str, audio: Path, work: Path) -> dict[str, Any]:
    """Run one measurement in a child process: {seconds, peak_bytes, baseline_bytes, ...}."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "stratum_kernel.bench.long_track", kind, str(audio), str(work)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {kind} on {audio} failed with {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_bytes"] = usage.ru_maxrss * 1024  # Linux reports KiB
    return result


def run_long(minutes: list[int], *, keep: Path | None = None) -> list[dict[str, Any]]:
    """Measure analysis and film audio at each length in ``minutes``; one row per length."""
    import soundfile as sf

    rows = []
    with tempfile.TemporaryDirectory(prefix="stratum-long-", dir=keep) as tmp:
        root = Path(tmp)
        longest = root / f"long-{max(minutes)}.flac"
        # made in a child: Linux keeps a process's peak RSS across fork and exec, so the
        # measuring parent must stay small
        subprocess.run([sys.executable, "-m", "stratum_kernel.bench.long_track", "write",
                        str(longest), str(max(minutes))], check=True)
        for m in sorted(minutes):
            audio = longest if m == max(minutes) else _copy_prefix(
                longest, root / f"long-{m}.flac", m)
            duration = sf.info(str(audio)).duration
            row: dict[str, Any] = {"minutes": m, "duration_s": duration,
                                   "file_bytes": audio.stat().st_size}
            for kind in ("analysis", "film_audio"):
                load = os.getloadavg()[0]
                r = measure(kind, audio, root / f"work-{m}-{kind}")
                row[kind] = {**r, "rtf": duration / r["seconds"], "load_before": load,
                             "load_after": os.getloadavg()[0]}
            rows.append(row)
            if audio != longest:
                audio.unlink()
    return rows


def table_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Rows for :func:`~stratum_kernel.bench.timing.print_table`."""
    out = []
    for row in rows:
        for kind, label in (("analysis", "analysis + DSP stems"), ("film_audio", "film audio")):
            r = row[kind]
            peak = r["peak_bytes"] / 1e9
            mark = "ok" if peak <= TARGET_PEAK_BYTES / 1e9 and r["rtf"] >= TARGET_RTF else "MISSED"
            out.append((
                f"{row['minutes']} min, {label}",
                f"peak {peak:.2f} GB (baseline {r['baseline_bytes'] / 1e9:.2f}), "
                f"{r['seconds']:.1f} s = {r['rtf']:.0f}x real time, "
                f"load {r['load_before']:.2f}/{r['load_after']:.2f}  {mark}",
            ))
    return out


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write_long_track(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        _child(*sys.argv[1:4])
