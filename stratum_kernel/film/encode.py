"""ffmpeg and the H.264 encoder: frames through a pipe into video-only MP4 segments.

ffmpeg comes from imageio-ffmpeg. Frames travel as rgb24 over stdin (no frame files);
every output is written under a temporary name and renamed when complete. Each chunk of a
track becomes one segment with the same x264 settings, so it starts on an IDR frame with
identical SPS/PPS and segments join without re-encoding (:mod:`stratum_kernel.film.mux`).

Determinism: x264 runs with a fixed thread count and the bit-exact flags, so identical
frames give identical bytes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stratum_kernel.core.errors import RenderError
from stratum_kernel.core.ffmpeg import ffmpeg_exe as core_ffmpeg_exe
from stratum_kernel.core.paths import temp_sibling

#: The sample rates ffmpeg's AAC encoder accepts (anything else fails at the mux, after
#: every frame was rendered, so configs are checked against this list up front).
AAC_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000,
                    88200, 96000)


def check_aac_rate(rate: int) -> int:
    if rate not in AAC_SAMPLE_RATES:
        raise ValueError(
            f"{rate} Hz is not a sample rate AAC can carry; use one of "
            f"{', '.join(map(str, AAC_SAMPLE_RATES))} (48000 is the film standard)"
        )
    return rate


X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow",
]

AUDIO_TOLERANCE_S = 0.005


class EncodeParams(BaseModel):
    """Encoder settings shared by every track of a run (so the album concat needs no re-encode).

    crf / preset / tune: None = chosen by resolution (see :func:`resolve_x264`); tune
    'none' = no tune. max_bitrate:
    a ceiling in kbit/s on the video stream (x264 VBV), None = chosen by resolution, 0 =
    none: film grain and sharpening otherwise drive constant-quality x264 to tens of Mbit/s.
    threads: x264 threads; fixed so that identical frames give identical bytes. keyint:
    maximum GOP in frames (None = 2 s). audio_bitrate: AAC bitrate in kbit/s;
    audio_sample_rate in Hz.
    """

    model_config = ConfigDict(extra="forbid")

    codec: Literal["h264"] = "h264"
    crf: int | None = Field(default=None, ge=0, le=51)
    preset: X264Preset | None = None
    tune: Literal["none", "grain", "film", "animation", "stillimage", "fastdecode"] | None = None
    max_bitrate: int | None = Field(default=None, ge=0, le=500_000)
    pix_fmt: Literal["yuv420p"] = "yuv420p"
    keyint: int | None = Field(default=None, ge=1, le=1000)
    threads: int = Field(default=2, ge=1, le=64)
    audio_codec: Literal["aac"] = "aac"
    audio_bitrate: int = Field(default=192, ge=32, le=512)
    audio_sample_rate: int = Field(default=48000, ge=8000, le=192000)
    audio_channels: int = Field(default=2, ge=1, le=2)

    @field_validator("audio_sample_rate")
    @classmethod
    def _aac_rate(cls, v: int) -> int:
        return check_aac_rate(v)


@dataclass(frozen=True)
class X264Settings:
    crf: int
    preset: str
    tune: str | None  # None: no -tune
    keyint: int
    max_bitrate: int  # kbit/s, 0 = no ceiling


def default_max_bitrate(width: int, height: int, fps: float) -> int:
    """A video bitrate ceiling in kbit/s: 10 Mbit/s at 1280×720 up to 30 fps (about twice
    the common upload recommendation), growing with area to the power 0.75 (≈ 18 Mbit/s at
    1080p, 52 at 2160p) and in proportion to frame rate above 30 fps. Clean frames stay
    under it at their crf; grainy ones are capped instead of reaching 30+ Mbit/s."""
    area_ratio = (width * height) / (1280 * 720)
    rate = 10_000 * area_ratio**0.75 * max(1.0, fps / 30.0)
    return int(min(120_000, max(2_000, round(rate, -2))))


def resolve_x264(params: EncodeParams, width: int, height: int, fps: float) -> X264Settings:
    """crf/preset/tune/keyint for an output size: up to 640×360 'fast' crf 18 (small frames
    are cheap, spend effort); up to 1920×1080 'superfast' with ``-tune grain``, crf 19 up to
    1280×720 and 18 above; larger 'superfast' + grain crf 18. Explicit values win.

    Why superfast + grain (``stratum bench encode``, BENCHMARKS.md): on stratum's grainy
    frames at a fixed bitrate it scores higher than veryfast (VMAF 91.2 vs 89.2, SSIM Y
    0.9006 vs 0.8995 at 720p, 6 Mbit/s) for two thirds of its CPU (20 vs 30 ms a frame):
    the grain tune stops x264 from smoothing the grain away and spending bits re-creating
    it, which matters more than the slower presets' motion search on these frames."""
    area = width * height
    if area <= 640 * 360:
        crf, preset, tune = 18, "fast", None
    elif area <= 1280 * 720:
        crf, preset, tune = 19, "superfast", "grain"
    else:
        crf, preset, tune = 18, "superfast", "grain"
    if params.tune is not None:
        tune = None if params.tune == "none" else params.tune
    return X264Settings(
        crf=params.crf if params.crf is not None else crf,
        preset=params.preset or preset,
        tune=tune,
        keyint=params.keyint or max(1, round(2 * fps)),
        max_bitrate=(
            params.max_bitrate
            if params.max_bitrate is not None
            else default_max_bitrate(width, height, fps)
        ),
    )


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary (:func:`stratum_kernel.core.ffmpeg.ffmpeg_exe`; RenderError when
    it is missing)."""
    return core_ffmpeg_exe(RenderError, "encode films")


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """ffmpeg's first ``-version`` line, e.g. ``ffmpeg version n9.0.2 ...``."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True, check=False
    )
    return (out.stdout.splitlines() or ["ffmpeg version unknown"])[0].strip()


def _rate(fps: float) -> str:
    f = Fraction(fps).limit_denominator(1001)
    return f"{f.numerator}/{f.denominator}"


BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
            "-flags:a", "+bitexact"]
#: RGB → BT.709 limited-range YUV, as every stratum film is encoded (and scored).
TO_BT709 = "scale=out_color_matrix=bt709:out_range=tv"
BT709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
         "-color_range", "tv"]


def video_args(params: EncodeParams, width: int, height: int, fps: float) -> list[str]:
    """The x264 output options shared by every segment of a run."""
    x = resolve_x264(params, width, height, fps)
    return [
        "-vf", TO_BT709,
        "-c:v", "libx264", "-preset", x.preset, *(["-tune", x.tune] if x.tune else []),
        "-crf", str(x.crf),
        *(["-maxrate", f"{x.max_bitrate}k", "-bufsize", f"{2 * x.max_bitrate}k"]
          if x.max_bitrate else []),
        "-pix_fmt", params.pix_fmt, "-g", str(x.keyint), "-threads", str(params.threads),
        *BT709,
    ]


def audio_args(params: EncodeParams) -> list[str]:
    return ["-c:a", "aac", "-b:a", f"{params.audio_bitrate}k",
            "-ar", str(params.audio_sample_rate), "-ac", str(params.audio_channels)]


_ERROR_WORDS = ("error", "invalid", "unsupported", "not supported", "could not", "cannot",
                "failed", "no such", "unable", "denied", "space")


def tail_text(text: str, n: int = 1200) -> str:
    """What ffmpeg said, shortened to about ``n`` characters without cutting a line open:
    the lines that name an error (ffmpeg prints the cause first), else its last lines."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if sum(len(ln) + 3 for ln in lines) <= n:
        return " | ".join(lines)
    errors = [ln for ln in lines if any(w in ln.lower() for w in _ERROR_WORDS)]
    chosen, size = [], 0
    for ln in (errors or lines[::-1])[:6]:
        if size + len(ln) + 3 > n:
            break
        chosen.append(ln)
        size += len(ln) + 3
    if not errors:
        chosen.reverse()
    return " | ".join(chosen) or lines[-1][:n]


def _exit_text(rc: int | None) -> str:
    """'exit 1', or 'killed by signal 9 (SIGKILL)' for a negative return code."""
    if rc is not None and rc < 0:
        import signal

        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "?"
        return f"killed by signal {-rc} ({name})"
    return f"exit {rc}"


def _disk_hint(message: str, path: Path) -> str:
    if "No space left on device" in message or "Disk quota exceeded" in message:
        return (f" -- the disk holding {path.parent} is full: free some space, then continue "
                "the run with --resume (finished chunks are kept)")
    return ""


def run_ffmpeg(args: Sequence[str], *, what: str, timeout: float | None = None) -> str:
    """Run ffmpeg with ``args``; returns stderr; RenderError with its tail on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                             start_new_session=True)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{what}: ffmpeg did not finish within {timeout} s") from None
    if out.returncode != 0:
        raise RenderError(f"{what}: ffmpeg failed ({_exit_text(out.returncode)}): "
                          f"{tail_text(out.stderr)}{_disk_hint(out.stderr, Path(cmd[-1]))}")
    return out.stderr


class VideoEncoder:
    """Streams uint8 [B, H, W, 3] frames into a video-only H.264 MP4 through ffmpeg's stdin.

    Written to a temporary name; :meth:`close` waits for ffmpeg and renames it to ``path``.
    Used as a context manager, an exception inside the block aborts (kills ffmpeg, removes
    the temporary file).

    recon: also have x264 write its reconstructed frames (``dump-yuv``: raw yuv420p in
    display order, exactly what any H.264 decoder will decode from the file) to
    ``<path>.yuv`` — the decoded picture without decoding it back. :attr:`recon_path` is
    set when the file is complete.
    """

    def __init__(self, path: str | Path, *, width: int, height: int, fps: float,
                 params: EncodeParams | None = None, recon: bool = False):
        self.path = Path(path)
        self.recon_path: Path | None = None
        self._recon = self.path.with_name(self.path.name + ".yuv") if recon else None
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.params = params or EncodeParams()
        self.frames = 0
        self._tmp = temp_sibling(self.path)
        self._err = self._tmp.with_suffix(".log")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-framerate", _rate(self.fps), "-i", "pipe:0", "-an",
            *video_args(self.params, self.width, self.height, self.fps),
            # x264 parses its options at ':' and '=', so the dump is named relative to
            # ffmpeg's working folder (the segment's own), never by a user's path
            *(["-x264-params", f"dump-yuv={self._recon.name}"] if self._recon else []),
            *BITEXACT, "-f", "mp4", str(self._tmp.resolve()),
        ]
        self._errf = open(self._err, "wb")  # noqa: SIM115 - closed in close()/abort()
        # its own session: Ctrl-C in a terminal reaches Python only, which then stops the
        # run cleanly (abort() kills ffmpeg and removes the partial file)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._errf, start_new_session=True,
                                      cwd=self.path.parent)

    def write(self, frames: np.ndarray) -> None:
        """Append frames: uint8 [B, H, W, 3] (or one [H, W, 3])."""
        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.dtype != np.uint8 or arr.shape[1:] != (self.height, self.width, 3):
            raise RenderError(
                f"encoder: frames must be uint8 [B, {self.height}, {self.width}, 3], got "
                f"{arr.dtype} {list(arr.shape)}"
            )
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(arr)).cast("B"))
        except (BrokenPipeError, OSError):
            rc = self._proc.wait()
            msg = self._read_err()
            self.abort()
            raise RenderError(
                f"{self.path}: ffmpeg stopped accepting frames ({_exit_text(rc)}): {msg}"
                f"{_disk_hint(msg, self.path)}"
            ) from None
        self.frames += len(arr)

    def _read_err(self) -> str:
        self._errf.flush()
        try:
            return tail_text(self._err.read_text(errors="replace")) or "(no message)"
        except OSError:
            return "(no message)"

    def close(self) -> Path:
        """Finish the file; returns its final path."""
        self._proc.stdin.close()
        rc = self._proc.wait()
        msg = self._read_err()
        self._errf.close()
        self._err.unlink(missing_ok=True)
        if rc != 0 or self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            if self._recon is not None:
                self._recon.unlink(missing_ok=True)
            why = msg if rc != 0 else "no frames were written"
            raise RenderError(f"{self.path}: video encoding failed ({_exit_text(rc)}): {why}"
                              f"{_disk_hint(why, self.path)}")
        os.replace(self._tmp, self.path)
        if self._recon is not None and self._recon.is_file():
            self.recon_path = self._recon
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file."""
        if self._proc.poll() is None:
            self._proc.kill()
        if self._proc.stdin and not self._proc.stdin.closed:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        self._proc.wait()
        self._errf.close()
        self._tmp.unlink(missing_ok=True)
        self._err.unlink(missing_ok=True)
        if self._recon is not None:
            self._recon.unlink(missing_ok=True)

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
