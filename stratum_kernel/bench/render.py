"""``stratum bench render``: the render pipeline against a naive loop and bare x264.

The same frames (10 s at 1280×720, 24 fps — the draft profile — with the model in
``models/``; ``--quick``: 3 s at 640×352) are produced three ways:

- **pipeline**: stratum's renderer (decode, post-FX and encode overlapping, per-chunk
  segments and digests), timed for the frames phase and end to end (audio, segment join,
  checks, decoded digests, previews, album film);
- **naive loop**: the textbook loop the issue measured: one frame at a time, decode, PIL
  resize, numpy LUT, fresh gaussian grain, then the ffmpeg pipe;
- **sequential**: stratum's own stages one frame at a time in one thread (the gain of
  pipelining alone);
- **bare x264**: ffmpeg encoding the pre-computed frames from a raw file at the same
  settings (the encoder's ceiling on this machine).

The album analysis is replaced by synthetic features (librosa is not what is measured).
With ``--precision bfloat16|auto`` the pipeline and the sequential loop decode as asked
(the naive loop stays ONNX Runtime float32, the fixed baseline), and the decoded frames of
the first chunk are compared with float32's: the levels they differ by. Prints fps, the
real-time factor and the ratios, and BENCHMARKS.md-ready table rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from stratum_kernel.bench.quality import has_vmaf, score
from stratum_kernel.bench.timing import machine_description, median, print_table, write_json
from stratum_kernel.core.timeline import FrameFeatures, frame_count, frame_times
from stratum_kernel.film.encode import (
    BITEXACT,
    VideoEncoder,
    ffmpeg_exe,
    resolve_x264,
    video_args,
)
from stratum_kernel.picture.decoder import to_uint8
from stratum_kernel.picture.postfx import tone_curve
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.pipeline import TrackRun, render_track_chunks


class SyntheticAnalysis:
    """FrameFeatures with music-like motion (a 120 bpm pulse, a slow swell), no librosa."""

    def __init__(self, markers: tuple[float, ...] = ()):
        self.markers = markers

    def frame_features(self, track_id, *, fps, start=0.0, end=None, album_normalised=True):
        n = frame_count(end - start, fps)
        t = frame_times(n, fps, start)
        beat = (t * 2.0) % 1.0
        pulse = np.exp(-beat * 6).astype(np.float32)
        swell = (0.5 + 0.5 * np.sin(t * 0.7)).astype(np.float32)
        values = {
            "rms": 0.3 + 0.5 * swell * (0.6 + 0.4 * pulse), "onset": pulse,
            "harmonic": swell, "percussive": pulse, "centroid": 0.5 + 0.3 * np.sin(t * 0.3),
            "flatness": np.full(n, 0.2), "chroma": np.abs(np.sin(np.outer(np.arange(1, 13), t))),
            "mfcc": np.cos(np.outer(np.arange(13), t * 0.5)),
        }
        stems = {s: {"envelope": swell, "onset": pulse} for s in ("drums", "bass", "other",
                                                                   "vocals")}
        return FrameFeatures(
            track_id=track_id, fps=fps, start=start, n_frames=n,
            values={k: np.asarray(v, np.float32) for k, v in values.items()},
            stems={s: {k: np.asarray(v, np.float32) for k, v in d.items()}
                   for s, d in stems.items()},
            beat_frames=np.flatnonzero(np.diff(np.floor(t * 2), prepend=-1) > 0),
            tempo=120.0, markers=self.markers,
            section=np.searchsorted(np.asarray(self.markers), t, side="right").astype(np.int32),
        )


def _write_album(root: Path, seconds: float) -> Path:
    import soundfile as sf

    sr = 48000
    t = np.arange(round(seconds * sr)) / sr
    beat = (t * 2.0) % 1.0
    y = 0.25 * np.sin(2 * np.pi * 110 * t) + 0.3 * np.exp(-beat * 30) * np.sin(2 * np.pi * 60 * t)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    sf.write(root / "audio" / "bench.wav", np.stack([y, y], axis=1).astype(np.float32), sr,
             subtype="FLOAT")
    (root / "tracklist.json").write_text(json.dumps(
        [{"id": "bench", "src": "audio/bench.wav", "bpm": 120.0,
          "markers": [{"time": round(seconds / 2, 2), "label": "mid"}]}]))
    return root


def _config(album: Path, out: Path, size: tuple[int, int], seconds: float, models: str | None,
            fps: float = 24.0, precision: str = "float32"):
    data = {
        "album_dir": str(album), "output_root": str(out), "run_id": "bench",
        "frame_rate": fps, "resolution": list(size),
        "controller": {"preset": "pulse"},
        "postfx": {"grain_intensity": 0.12, "vignette": 0.3, "persistence": 0.4},
        "render": {"chunk_frames": 120, "duration": seconds},
        "decoder": {"batch_size": 1, "threads": 1, "precision": precision},
    }
    if models:
        data["model_dir"] = models
    return RenderConfig.from_dict(data)


def _context(config, markers):
    return RenderContext(config, analysis=SyntheticAnalysis(markers))


def _pipeline(album: Path, work: Path, size, seconds, models, fps: float = 24.0,
              precision: str = "float32") -> dict:
    """One stratum render; returns seconds for the frames phase and end to end."""
    out = work / "pipe"
    shutil.rmtree(out, ignore_errors=True)
    cfg = _config(album, out, size, seconds, models, fps, precision)
    ctx = _context(cfg, (seconds / 2,))
    job = ctx.job("bench")
    ctx.decoder  # noqa: B018 - open the session before timing
    run_dir = out / "bench"
    t0 = time.perf_counter()
    run = TrackRun(ctx, job, run_dir)
    render_track_chunks(run, progress=False)
    total = time.perf_counter() - t0
    return {"frames": job.n_frames, "frames_s": run.timing.frames_seconds, "total_s": total,
            "decoder": ctx.decoder.provider}


def _naive(album: Path, work: Path, size, seconds, models, raw: Path, fps: float = 24.0,
           precision: str = "float32") -> dict:
    """Decode → post-FX → encode one frame at a time; also stores the frames in ``raw``."""
    cfg = _config(album, work / "naive", size, seconds, models, fps, precision)
    ctx = _context(cfg, (seconds / 2,))
    job = ctx.job("bench")
    ctx.decoder  # noqa: B018
    w, h = size
    frames = np.memmap(raw, dtype=np.uint8, mode="w+", shape=(job.n_frames, h, w, 3))
    k_max = job.window_frames
    history = np.zeros((0, *ctx.decoder.frame_size, 3), np.uint8)
    cpu = {"decode": 0.0, "postfx": 0.0}
    t0 = time.perf_counter()
    with VideoEncoder(work / "naive.mp4", width=w, height=h, fps=job.fps,
                      params=cfg.encode) as enc:
        for i in range(job.n_frames):
            c0 = time.process_time()  # this process only: ffmpeg is a child process
            decoded = ctx.decode(job, i, i + 1)
            c1 = time.process_time()
            k = job.history_count(i)
            out = ctx.postfx(job, decoded, i, history[len(history) - k:] if k else None)
            c2 = time.process_time()
            cpu["decode"] += c1 - c0
            cpu["postfx"] += c2 - c1
            enc.write(out)
            frames[i] = out[0]
            history = np.concatenate([history, decoded])[-k_max:]
    secs = time.perf_counter() - t0
    frames.flush()
    return {"frames": job.n_frames, "s": secs, **{f"cpu_{k}": v for k, v in cpu.items()}}


def _textbook(album: Path, work: Path, size, seconds, models, fps: float = 24.0) -> dict:
    """The textbook loop the issue measured (7.3 fps at 720p): one frame at a time, decode,
    then PIL resize, numpy LUT and vignette, fresh gaussian grain, then the ffmpeg pipe.
    Always ONNX Runtime in float32: the fixed baseline the pipeline is compared with."""
    from PIL import Image

    cfg = _config(album, work / "textbook", size, seconds, models, fps)
    ctx = _context(cfg, (seconds / 2,))
    job = ctx.job("bench")
    session = ctx.decoder._session
    w, h = size
    src = ctx.decoder.frame_size[0]
    crop = round(src * h / w)
    lut = np.rint(tone_curve("filmlog", np.arange(256) / 255.0) * 255).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vignette = (1 - 0.3 * np.clip(r2 / 2, 0, 1))[..., None]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with VideoEncoder(work / "textbook.mp4", width=w, height=h, fps=job.fps,
                      params=cfg.encode) as enc:
        for i in range(job.n_frames):
            z = job.plan.latents(i, i + 1)
            img = to_uint8(session.run(None, {"z": z})[0])[0]
            top = (src - crop) // 2
            pil = Image.fromarray(img[top : top + crop]).resize((w, h), Image.BICUBIC)
            out = lut[np.asarray(pil)] * vignette
            out = out + rng.normal(0.0, 0.12 * 32, out.shape)
            enc.write(np.clip(out, 0, 255).astype(np.uint8))
    return {"frames": job.n_frames, "s": time.perf_counter() - t0}


def _bare(raw: Path, work: Path, size, n: int, models, album, seconds, fps: float = 24.0
          ) -> dict:
    cfg = _config(album, work / "bare", size, seconds, models, fps)
    w, h = size
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", str(raw),
           "-an", *video_args(cfg.encode, w, h, fps), *BITEXACT, "-f", "mp4",
           str(work / "bare.mp4")]
    c0 = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    c1 = os.times()
    child_cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
    return {"frames": n, "s": time.perf_counter() - t0, "cpu_x264": child_cpu}


def _precision_error(album: Path, work: Path, size, seconds, models, fps, precision) -> dict:
    """uint8 levels between the decoded frames of ``precision`` and ONNX Runtime float32
    over the first 48 frames: {"mean", "p99", "max"}; {} when both decode in float32."""
    cfg = _config(album, work / "precision", size, seconds, models, fps, precision)
    ctx = _context(cfg, (seconds / 2,))
    if ctx.decoder.precision == "float32":
        return {}
    job = ctx.job("bench")
    n = min(48, job.n_frames)
    ref_cfg = _config(album, work / "precision", size, seconds, models, fps, "float32")
    ref = _context(ref_cfg, (seconds / 2,)).decode(job, 0, n).astype(np.int16)
    diff = np.abs(ctx.decode(job, 0, n).astype(np.int16) - ref)
    return {"mean": float(diff.mean()), "p99": float(np.percentile(diff, 99)),
            "max": int(diff.max())}


def _size_arg(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if not text:
        return default
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size: expected WIDTHxHEIGHT such as 1920x1080, got {text!r}"
                         ) from None
    return w, h


def run(args: argparse.Namespace) -> int:
    quick = bool(getattr(args, "quick", False))
    size = _size_arg(getattr(args, "size", None), (640, 352) if quick else (1280, 720))
    fps = float(getattr(args, "fps", None) or 24.0)
    seconds = 3.0 if quick else 10.0
    repeats = 1 if quick else max(1, min(int(getattr(args, "repeats", 3) or 3), 3))
    models = getattr(args, "models", None)
    precision = getattr(args, "precision", None) or "float32"
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="stratum-bench-render-"))
    try:
        album = _write_album(work / "album", seconds)
        raw = work / "frames.rgb"
        pipe, naive, bare, textbook = [], [], [], []
        for _ in range(repeats):
            textbook.append(_textbook(album, work, size, seconds, models, fps))
            naive.append(_naive(album, work, size, seconds, models, raw, fps, precision))
            pipe.append(_pipeline(album, work, size, seconds, models, fps, precision))
            bare.append(_bare(raw, work, size, naive[-1]["frames"], models, album, seconds, fps))
        film = work / "pipe" / "bench" / "bench.mp4"
        quality = score(raw, film, size, fps, vmaf=not quick and has_vmaf())
        drift = _precision_error(album, work, size, seconds, models, fps, precision)
        kbps = film.stat().st_size * 8 / 1000 / seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    n = pipe[0]["frames"]
    fps_pipe = n / median([p["frames_s"] for p in pipe])
    fps_total = n / median([p["total_s"] for p in pipe])
    fps_naive = n / median([p["s"] for p in naive])
    fps_bare = n / median([b["s"] for b in bare])
    fps_text = n / median([b["s"] for b in textbook])
    ms = {k: 1000 * median([r[f"cpu_{k}"] for r in rows_src]) / n
          for k, rows_src in (("decode", naive), ("postfx", naive), ("x264", bare))}
    bound = 2000.0 / max(sum(ms.values()), 1e-9)
    x = resolve_x264(_config(album, work, size, seconds, models, fps).encode, *size, fps)
    encode = f"x264 {x.preset}{' tune ' + x.tune if x.tune else ''} crf {x.crf}"
    label = (f"{size[0]}x{size[1]} {fps:g} fps, {seconds:g} s ({n} frames), {encode}, "
             f"decoder {pipe[0]['decoder']}, "
             f"median of {repeats}; load {load[0]:.2f} before, {load_after[0]:.2f} after")
    overhead = fps_pipe / fps_total - 1.0
    q = (f"SSIM Y {quality.get('ssim_y', float('nan')):.4f}, PSNR Y "
         f"{quality.get('psnr_y', float('nan')):.2f} dB"
         + (f", VMAF {quality['vmaf']:.2f}" if "vmaf" in quality else "")
         + f" at {kbps:.0f} kbit/s")
    rows = [
        ("profile", label),
        ("pipeline (frames)", f"{fps_pipe:6.1f} fps  {fps_pipe / fps:4.2f}x real time"),
        ("pipeline end to end", f"{fps_total:6.1f} fps  {fps_total / fps:4.2f}x real time"
                                f"  (aim >= 1.0x; +{100 * overhead:.0f} % over the frames,"
                                " aim <= 15 %)"),
        ("naive loop (textbook)", f"{fps_text:6.1f} fps  {fps_text / fps:4.2f}x real time"),
        ("sequential, stratum stages",
         f"{fps_naive:6.1f} fps  {fps_naive / fps:4.2f}x real time"),
        ("bare x264 (raw file)", f"{fps_bare:6.1f} fps  {fps_bare / fps:4.2f}x real time"),
        ("pipeline / naive loop",
         f"{fps_pipe / fps_text:4.2f}x (end to end {fps_total / fps_text:4.2f}x; aim >= 2.5x)"),
        ("pipeline / sequential", f"{fps_pipe / fps_naive:4.2f}x (pipelining alone)"),
        ("pipeline / bare x264", f"{fps_pipe / fps_bare:4.2f} (aim >= 0.8)"),
        ("pipeline / 2-core bound", f"{fps_pipe / bound:4.2f}"),
        ("draft encode quality", q),
        *([("decoder vs float32", f"{drift['mean']:.2f} levels on average, p99 "
                                  f"{drift['p99']:.0f}, max {drift['max']} (decoded frames, "
                                  "0-255)")] if drift else []),
        ("CPU per frame", f"decode {ms['decode']:.1f} ms, post-FX {ms['postfx']:.1f} ms, "
                          f"x264 {ms['x264']:.1f} ms"),
        ("2-core bound", f"{bound:6.1f} fps (2 cores / CPU per frame of the three stages)"),
    ]
    print_table("render", rows)
    print("\nBENCHMARKS.md rows:")
    print("| measurement | fps | × real time |\n|---|---|---|")
    for name, f in (("pipeline, frames", fps_pipe), ("pipeline, end to end", fps_total),
                    ("naive loop (textbook)", fps_text),
                    ("sequential, stratum stages", fps_naive), ("bare x264", fps_bare)):
        print(f"| {name} ({label}) | {f:.1f} | {f / fps:.2f} |")
    write_json(getattr(args, "json_path", None), "render", {
        "profile": label, "machine": machine_description(), "load": [load, load_after],
        "size": list(size), "fps": fps, "encode": encode, "decoder": pipe[0]["decoder"],
        "fps_pipeline": fps_pipe,
        "fps_end_to_end": fps_total, "fps_naive_textbook": fps_text,
        "fps_sequential_stages": fps_naive, "fps_bare_x264": fps_bare,
        "ratio_pipeline_naive": fps_pipe / fps_text,
        "ratio_pipeline_sequential": fps_pipe / fps_naive,
        "ratio_pipeline_bare": fps_pipe / fps_bare, "end_to_end_overhead": overhead,
        "cpu_ms_per_frame": ms, "two_core_bound_fps": bound, "quality": quality,
        "kbps": kbps, "decoder_vs_float32": drift,
    })
    return 0
