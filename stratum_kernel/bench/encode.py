"""``stratum bench encode``: x264 presets and tunes by quality per CPU millisecond.

The frames are stratum's own (the render bench's synthetic album through decode and
post-FX, with its film grain — grain is what makes x264 costly), written once as raw RGB;
each candidate then encodes the same file at the same fixed bitrate (one-pass ABR with a
VBV of the same rate, so every candidate spends the same bits), and ffmpeg's own filters
score the result against the source: SSIM (Y), PSNR (Y) and VMAF where the bundled
ffmpeg has libvmaf. CPU is the ffmpeg child's user + system time, so the figure is the
encoder's cost whatever the machine's other load; wall fps is with ``threads`` x264
threads. The candidates are the ones the draft profile could use on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stratum_kernel.bench.quality import has_vmaf, score
from stratum_kernel.bench.render import _naive, _write_album
from stratum_kernel.bench.timing import machine_description, median, print_table, write_json
from stratum_kernel.film.encode import BT709, TO_BT709, ffmpeg_exe


@dataclass(frozen=True)
class Candidate:
    """One x264 setting: a preset, an optional tune and extra x264 parameters."""

    name: str
    preset: str
    tune: str | None = None
    x264_params: str | None = None

    def args(self) -> list[str]:
        out = ["-preset", self.preset]
        if self.tune:
            out += ["-tune", self.tune]
        if self.x264_params:
            out += ["-x264-params", self.x264_params]
        return out


CANDIDATES = (
    Candidate("ultrafast", "ultrafast"),
    Candidate("superfast", "superfast"),
    Candidate("veryfast", "veryfast"),
    Candidate("veryfast, tune grain", "veryfast", "grain"),
    Candidate("veryfast, tune film", "veryfast", "film"),
    Candidate("faster, ref 1", "faster", None, "ref=1"),
    Candidate("faster", "faster"),
    Candidate("superfast, tune grain", "superfast", "grain"),
)


def _frames(work: Path, size: tuple[int, int], seconds: float, models: str | None) -> tuple[
        Path, int]:
    """stratum's frames for the render bench's album, as raw RGB (decode + post-FX)."""
    album = _write_album(work / "album", seconds)
    raw = work / "frames.rgb"
    result = _naive(album, work, size, seconds, models, raw)
    (work / "naive.mp4").unlink(missing_ok=True)
    return raw, int(result["frames"])


def _encode(raw: Path, out: Path, cand: Candidate, size: tuple[int, int], fps: float,
            kbps: int, threads: int) -> dict:
    w, h = size
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", str(raw),
           "-vf", TO_BT709, "-c:v", "libx264",
           *cand.args(), "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize",
           f"{2 * kbps}k", "-pix_fmt", "yuv420p", "-g", str(round(2 * fps)),
           "-threads", str(threads), *BT709, "-an", "-f", "mp4", str(out)]
    c0 = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
    return {"wall_s": wall, "cpu_s": cpu, "bytes": out.stat().st_size}


def study(raw: Path, work: Path, n: int, size: tuple[int, int], fps: float, *, kbps: int,
          threads: int, repeats: int, candidates=CANDIDATES, vmaf: bool | None = None
          ) -> list[dict]:
    """Encode ``raw`` with every candidate ``repeats`` times (medians) and score it once."""
    vmaf = has_vmaf() if vmaf is None else vmaf
    rows = []
    for cand in candidates:
        film = work / "candidate.mp4"
        runs = [_encode(raw, film, cand, size, fps, kbps, threads) for _ in range(repeats)]
        q = score(raw, film, size, fps, vmaf=vmaf)
        cpu = median([r["cpu_s"] for r in runs])
        wall = median([r["wall_s"] for r in runs])
        rows.append({"name": cand.name, "preset": cand.preset, "tune": cand.tune,
                     "x264_params": cand.x264_params, "cpu_ms_per_frame": 1000 * cpu / n,
                     "fps": n / wall, "kbps": runs[0]["bytes"] * 8 / 1000 / (n / fps), **q})
        film.unlink(missing_ok=True)
    return rows




def run(args: argparse.Namespace) -> int:
    quick = bool(getattr(args, "quick", False))
    size = (640, 352) if quick else (1280, 720)
    seconds = 2.0 if quick else 10.0
    fps = 24.0
    kbps = 2500 if quick else 6000
    repeats = 1 if quick else max(1, min(int(getattr(args, "repeats", 3) or 3), 3))
    models = getattr(args, "models", None)
    cands = CANDIDATES[:2] if quick else CANDIDATES
    work = Path(tempfile.mkdtemp(prefix="stratum-bench-encode-"))
    load = os.getloadavg()
    try:
        raw, n = _frames(work, size, seconds, models)
        rows = study(raw, work, n, size, fps, kbps=kbps, threads=2, repeats=repeats,
                     candidates=cands, vmaf=False if quick else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    label = (f"{size[0]}x{size[1]} {fps:g} fps, {n} frames of stratum's grainy frames, "
             f"{kbps} kbit/s ABR, 2 threads, median of {repeats}; load {load[0]:.2f}")
    table = [("profile", label)]
    for r in rows:
        vm = f"  VMAF {r['vmaf']:.2f}" if "vmaf" in r else ""
        table.append((r["name"], f"{r['cpu_ms_per_frame']:6.1f} ms CPU/frame  {r['fps']:6.1f} fps"
                                 f"  SSIM {r.get('ssim_y', float('nan')):.4f}"
                                 f"  PSNR {r.get('psnr_y', float('nan')):.2f} dB{vm}"
                                 f"  {r['kbps']:.0f} kbit/s"))
    print_table("encode", table)
    print("\nBENCHMARKS.md rows:")
    print("| x264 setting | CPU ms/frame | fps (2 threads) | SSIM Y | PSNR Y dB | VMAF | kbit/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        vm = f"{r['vmaf']:.2f}" if "vmaf" in r else "—"
        print(f"| {r['name']} | {r['cpu_ms_per_frame']:.1f} | {r['fps']:.1f} | "
              f"{r.get('ssim_y', 0):.4f} | {r.get('psnr_y', 0):.2f} | {vm} | {r['kbps']:.0f} |")
    write_json(getattr(args, "json_path", None), "encode", {
        "profile": label, "machine": machine_description(), "load": load, "rows": rows})
    return 0
