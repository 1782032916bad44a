"""Picture quality of an encoded film against its raw source, by ffmpeg's own filters."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from stratum_kernel.film.encode import TO_BT709, ffmpeg_exe


def has_vmaf() -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True,
                         text=True, check=False).stdout
    return bool(re.search(r"^\s*\S+\s+libvmaf\s", out, re.M))


def score(raw: Path, film: Path, size: tuple[int, int], fps: float, *, vmaf: bool) -> dict:
    """SSIM (Y and all), PSNR (Y) and, with ``vmaf``, VMAF of ``film`` against the raw RGB
    source, both converted to yuv420p BT.709 limited range as the encoder sees it."""
    w, h = size
    conv = f"{TO_BT709},format=yuv420p"
    graph = (f"[0:v]{conv},split=3[r1][r2][r3];[1:v]format=yuv420p,split=3[d1][d2][d3];"
             "[d1][r1]ssim;[d2][r2]psnr" + (";[d3][r3]libvmaf" if vmaf else ";[d3]nullsink;"
                                           "[r3]nullsink"))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostats", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", str(raw), "-i", str(film),
           "-lavfi", graph, "-f", "null", "-"]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    out: dict = {}
    m = re.search(r"SSIM Y:([\d.]+).*All:([\d.]+)", err)
    if m:
        out["ssim_y"], out["ssim_all"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"PSNR y:([\d.]+|inf).*average:([\d.]+|inf)", err)
    if m:
        out["psnr_y"], out["psnr_avg"] = float(m.group(1)), float(m.group(2))
    m = re.search(r"VMAF score: ([\d.]+)", err)
    if m:
        out["vmaf"] = float(m.group(1))
    return out
