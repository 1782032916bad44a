"""ffmpeg: frames through a pipe into H.264 MP4s, segment concat, audio mux, stream checks.

ffmpeg comes from imageio-ffmpeg. Frames travel as rgb24 over stdin (no frame files);
every output is written under a temporary name and renamed when complete.

How a film is made: each chunk of frames becomes a video-only MP4 segment (same x264
settings, so it starts on an IDR frame with identical SPS/PPS); the segments are joined with
the concat demuxer without re-encoding, and the audio (trimmed, loudness-normalised, written
once as a float WAV by :func:`prepare_audio`) is encoded to AAC in that same mux. The album
film joins the track films' video the same way; its audio is encoded once from the tracks'
WAVs, each padded or trimmed to its track's video length, because stream-copied AAC would
carry each track's encoder priming (1024 samples) into the join and drift against the
picture.

Determinism: x264 runs with a fixed thread count and the bit-exact flags, so identical
frames give identical bytes; the AAC encoder is deterministic too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stratum_kernel.digests import frame_digest
from stratum_kernel.errors import RenderError
from stratum_kernel.paths import atomic_path, temp_sibling, write_text_atomic

X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow",
]

#: A track's audio must last as long as its source within this many seconds.
AUDIO_TOLERANCE_S = 0.005


class EncodeParams(BaseModel):
    """Encoder settings shared by every track of a run (so the album concat needs no re-encode).

    crf / preset: None = chosen by resolution (see :func:`resolve_x264`). max_bitrate:
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
    max_bitrate: int | None = Field(default=None, ge=0, le=500_000)
    pix_fmt: Literal["yuv420p"] = "yuv420p"
    keyint: int | None = Field(default=None, ge=1, le=1000)
    threads: int = Field(default=2, ge=1, le=64)
    audio_codec: Literal["aac"] = "aac"
    audio_bitrate: int = Field(default=192, ge=32, le=512)
    audio_sample_rate: int = Field(default=48000, ge=8000, le=192000)
    audio_channels: int = Field(default=2, ge=1, le=2)


@dataclass(frozen=True)
class X264Settings:
    crf: int
    preset: str
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
    """crf/preset/keyint for an output size: up to 640×360 'fast' crf 18 (small frames are
    cheap, spend effort); up to 1280×720 'veryfast' crf 19; up to 1920×1080 'veryfast'
    crf 18; larger 'superfast' crf 18 (x264 speed falls with area). Explicit values win."""
    area = width * height
    if area <= 640 * 360:
        crf, preset = 18, "fast"
    elif area <= 1280 * 720:
        crf, preset = 19, "veryfast"
    elif area <= 1920 * 1080:
        crf, preset = 18, "veryfast"
    else:
        crf, preset = 18, "superfast"
    return X264Settings(
        crf=params.crf if params.crf is not None else crf,
        preset=params.preset or preset,
        keyint=params.keyint or max(1, round(2 * fps)),
        max_bitrate=(
            params.max_bitrate
            if params.max_bitrate is not None
            else default_max_bitrate(width, height, fps)
        ),
    )


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped with imageio-ffmpeg (RenderError when it is missing)."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as err:  # ImportError or its RuntimeError when no binary is found
        raise RenderError(
            f"ffmpeg is not available ({err}); install imageio-ffmpeg (pip install imageio-ffmpeg)"
        ) from None
    # imageio-ffmpeg trusts $IMAGEIO_FFMPEG_EXE without checking it
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)) and shutil.which(exe) is None:
        env = os.environ.get("IMAGEIO_FFMPEG_EXE")
        where = f" (from IMAGEIO_FFMPEG_EXE={env!r})" if env else ""
        raise RenderError(
            f"ffmpeg not found: {exe!r}{where} is not an executable file; point "
            "IMAGEIO_FFMPEG_EXE at an ffmpeg binary, or unset it to use imageio-ffmpeg's own"
        )
    return exe


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
BT709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
         "-color_range", "tv"]


def video_args(params: EncodeParams, width: int, height: int, fps: float) -> list[str]:
    """The x264 output options shared by every segment of a run."""
    x = resolve_x264(params, width, height, fps)
    return [
        "-vf", "scale=out_color_matrix=bt709:out_range=tv",
        "-c:v", "libx264", "-preset", x.preset, "-crf", str(x.crf),
        *(["-maxrate", f"{x.max_bitrate}k", "-bufsize", f"{2 * x.max_bitrate}k"]
          if x.max_bitrate else []),
        "-pix_fmt", params.pix_fmt, "-g", str(x.keyint), "-threads", str(params.threads),
        *BT709,
    ]


def audio_args(params: EncodeParams) -> list[str]:
    return ["-c:a", "aac", "-b:a", f"{params.audio_bitrate}k",
            "-ar", str(params.audio_sample_rate), "-ac", str(params.audio_channels)]


def _tail(text: str, n: int = 1200) -> str:
    text = text.strip()
    return text[-n:] if len(text) > n else text


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
                          f"{_tail(out.stderr)}{_disk_hint(out.stderr, Path(cmd[-1]))}")
    return out.stderr


class VideoEncoder:
    """Streams uint8 [B, H, W, 3] frames into a video-only H.264 MP4 through ffmpeg's stdin.

    Written to a temporary name; :meth:`close` waits for ffmpeg and renames it to ``path``.
    Used as a context manager, an exception inside the block aborts (kills ffmpeg, removes
    the temporary file).
    """

    def __init__(self, path: str | Path, *, width: int, height: int, fps: float,
                 params: EncodeParams | None = None):
        self.path = Path(path)
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
            *BITEXACT, "-f", "mp4", str(self._tmp),
        ]
        self._errf = open(self._err, "wb")  # noqa: SIM115 - closed in close()/abort()
        # its own session: Ctrl-C in a terminal reaches Python only, which then stops the
        # run cleanly (abort() kills ffmpeg and removes the partial file)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._errf, start_new_session=True)

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
            return _tail(self._err.read_text(errors="replace")) or "(no message)"
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
            why = msg if rc != 0 else "no frames were written"
            raise RenderError(f"{self.path}: video encoding failed ({_exit_text(rc)}): {why}"
                              f"{_disk_hint(why, self.path)}")
        os.replace(self._tmp, self.path)
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

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ----------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class PreparedAudio:
    """A track's film audio as a float WAV: ``samples`` at ``sample_rate``; ``gain_db`` was
    applied to reach the loudness target (0 when normalisation is off)."""

    path: Path
    samples: int
    sample_rate: int
    channels: int
    gain_db: float
    loudness_lufs: float | None

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate


def prepare_audio(
    src: str | Path,
    dst: str | Path,
    *,
    start: float = 0.0,
    end: float | None = None,
    sample_rate: int = 48000,
    channels: int = 2,
    target_lufs: float | None = None,
    true_peak_ceiling: float = -1.0,
) -> PreparedAudio:
    """Read ``src``, resample to ``sample_rate``, keep samples ``[round(start·sr),
    round(end·sr))``, match ``channels``, apply one static gain that brings the integrated
    loudness (ITU-R BS.1770) to ``target_lufs`` without a true peak above
    ``true_peak_ceiling`` dBTP, and write a float32 WAV to ``dst`` (atomically)."""
    from stratum_kernel.audio_io import load_audio, write_audio

    y, sr = load_audio(src, sr=sample_rate)
    a = round(start * sr)
    b = y.shape[1] if end is None else min(y.shape[1], round(end * sr))
    if b <= a:
        raise RenderError(f"{src}: trim {start}..{end} s keeps no audio")
    y = y[:, a:b]
    if y.shape[0] != channels:
        y = (np.repeat(y[:1], channels, axis=0) if y.shape[0] == 1 and channels > 1
             else (y.mean(axis=0, keepdims=True) if channels == 1 else y[:channels]))
    gain_db, lufs = 0.0, None
    if target_lufs is not None:
        from stratum_kernel.loudness import loudness_summary, normalisation_gain_db

        summary = loudness_summary(y, sr)
        lufs = float(summary.integrated) if np.isfinite(summary.integrated) else None
        gain_db = normalisation_gain_db(
            summary, target_lufs=target_lufs, true_peak_ceiling=true_peak_ceiling
        )
        y = (y * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    path = write_audio(dst, np.ascontiguousarray(y, dtype=np.float32), sr, subtype="FLOAT")
    return PreparedAudio(Path(path), y.shape[1], sr, y.shape[0], float(gain_db), lufs)


# ------------------------------------------------------------------------ concatenation


def write_concat_list(path: Path, files: Sequence[Path], durations: Sequence[float]) -> Path:
    """An ffconcat list (absolute paths, exact durations) for the concat demuxer."""
    lines = ["ffconcat version 1.0"]
    for f, d in zip(files, durations, strict=True):
        text = str(Path(f).resolve()).replace("'", "'\\''")
        lines += [f"file '{text}'", f"duration {d:.9f}"]
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _check_same_headers(files: Sequence[Path]) -> None:
    """Segments joined without re-encoding must share their H.264 parameter sets."""
    seen: dict[str, Path] = {}
    for f in files:
        extradata = stream_report(f, audio=False).video_extradata
        seen.setdefault(extradata, f)
    if len(seen) > 1:
        a, b = list(seen.values())[:2]
        raise RenderError(
            f"{a} and {b} were encoded with different settings and cannot be joined without "
            "re-encoding; render them again with the same encode settings and resolution"
        )


def concat_segments(
    segments: Sequence[Path],
    frame_counts: Sequence[int],
    out: str | Path,
    *,
    fps: float,
    params: EncodeParams,
    audio: Path | None = None,
) -> Path:
    """Join video-only segments (no re-encode) and mux ``audio`` (a WAV, encoded to AAC
    once) into ``out`` with ``+faststart``; atomic."""
    out = Path(out)
    if not segments:
        raise RenderError(f"{out}: no segments to join")
    _check_same_headers(segments)
    lst = write_concat_list(out.with_name(out.stem + ".segments.ffconcat"), segments,
                            [n / fps for n in frame_counts])
    args = ["-f", "concat", "-safe", "0", "-i", str(lst)]
    if audio is not None:
        args += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", *audio_args(params)]
    else:
        args += ["-map", "0:v:0"]
    try:
        with atomic_path(out) as tmp:
            args += ["-c:v", "copy", "-movflags", "+faststart", *BITEXACT, "-f", "mp4", str(tmp)]
            run_ffmpeg(["-loglevel", "error", *args], what=str(out))
    finally:
        lst.unlink(missing_ok=True)
    return out


def concat_films(
    films: Sequence[Path],
    frame_counts: Sequence[int],
    audio_wavs: Sequence[Path] | None,
    out: str | Path,
    *,
    fps: float,
    params: EncodeParams,
) -> Path:
    """The album film: track films' video joined without re-encoding; audio encoded once
    from the tracks' WAVs, each padded/trimmed to exactly its track's video length so that
    picture and sound stay together at every join.

    Each film's video is first remuxed alone (stream copy): the concat demuxer offsets a file
    by its earliest timestamp over *all* streams, and AAC's priming makes that -21 ms, which
    would shift the picture.
    """
    out = Path(out)
    if not films:
        raise RenderError(f"{out}: no track films to join")
    work = out.with_name(f".{out.stem}.parts-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    try:
        videos = []
        for i, film in enumerate(films):
            v = work / f"{i:04d}.mp4"
            run_ffmpeg(["-loglevel", "error", "-i", str(film), "-map", "0:v:0", "-c", "copy",
                        *BITEXACT, "-f", "mp4", str(v)], what=f"{out} (video of {film})")
            videos.append(v)
        _check_same_headers(videos)
        lst = write_concat_list(work / "films.ffconcat", videos, [n / fps for n in frame_counts])
        args = ["-f", "concat", "-safe", "0", "-i", str(lst)]
        if audio_wavs:
            sr = params.audio_sample_rate
            parts = []
            for i, (wav, n) in enumerate(zip(audio_wavs, frame_counts, strict=True)):
                args += ["-i", str(wav)]
                samples = round(n * sr / fps)
                parts.append(
                    f"[{i + 1}:a]aresample={sr},apad=whole_len={samples},"
                    f"atrim=end_sample={samples}[a{i}]"
                )
            joined = "".join(f"[a{i}]" for i in range(len(audio_wavs)))
            graph = ";".join(parts) + f";{joined}concat=n={len(audio_wavs)}:v=0:a=1[aout]"
            args += ["-filter_complex", graph, "-map", "0:v:0", "-map", "[aout]",
                     *audio_args(params)]
        else:
            args += ["-map", "0:v:0"]
        with atomic_path(out) as tmp:
            args += ["-c:v", "copy", "-movflags", "+faststart", *BITEXACT, "-f", "mp4", str(tmp)]
            run_ffmpeg(["-loglevel", "error", *args], what=str(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------ checks


@dataclass(frozen=True)
class StreamReport:
    """What a film holds, measured from its packets (video) and decoded samples (audio).

    Durations and starts in seconds; ``audio_*`` are None without an audio stream.
    """

    video_frames: int
    video_duration: float
    video_start: float
    width: int
    height: int
    video_extradata: str
    audio_duration: float | None
    audio_start: float | None
    audio_sample_rate: int | None


_TB = re.compile(r"^#tb (\d+): (\d+)/(\d+)")
_DIM = re.compile(r"^#dimensions (\d+): (\d+)x(\d+)")
_TYPE = re.compile(r"^#media_type (\d+): (\w+)")
_EXTRA = re.compile(r"^#extradata (\d+):\s*(.+)$")
_RATE = re.compile(r"^#sample_rate (\d+): (\d+)")


def stream_report(path: str | Path, *, audio: bool = True) -> StreamReport:
    """Measure ``path`` with ffmpeg alone (no ffprobe): one framecrc pass that copies the
    video packets (frame count, duration, first timestamp, parameter-set checksum) and
    decodes the audio (exact sample count after the encoder delay is removed)."""
    path = Path(path)
    if not path.is_file():
        raise RenderError(f"{path}: film not found")
    args = ["-copyts", "-i", str(path), "-map", "0:v:0"]
    if audio:
        args += ["-map", "0:a:0?"]
    args += ["-c:v", "copy", "-f", "framecrc", "-"]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RenderError(f"{path}: unreadable film: {_tail(out.stderr)}")
    tb: dict[int, Fraction] = {}
    kind: dict[int, str] = {}
    dims = (0, 0)
    extradata, rate = "", None
    count: dict[int, int] = {}
    total: dict[int, int] = {}
    first: dict[int, int] = {}
    for line in out.stdout.splitlines():
        if line.startswith("#"):
            if m := _TB.match(line):
                tb[int(m[1])] = Fraction(int(m[2]), int(m[3]))
            elif m := _TYPE.match(line):
                kind[int(m[1])] = m[2]
            elif m := _DIM.match(line):
                dims = (int(m[2]), int(m[3]))
            elif m := _EXTRA.match(line):
                extradata = m[2].strip()
            elif m := _RATE.match(line):
                rate = int(m[2])
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        s, pts, dur = int(parts[0]), int(parts[2]), int(parts[3])
        count[s] = count.get(s, 0) + 1
        total[s] = total.get(s, 0) + dur
        first[s] = min(first.get(s, pts), pts)
    vid = next((s for s, k in kind.items() if k == "video"), None)
    aud = next((s for s, k in kind.items() if k == "audio"), None)
    if vid is None or vid not in count:
        raise RenderError(f"{path}: has no video frames")

    def secs(s: int, v: int) -> float:
        return float(v * tb.get(s, Fraction(1)))

    has_audio = aud is not None and aud in count
    return StreamReport(
        video_frames=count[vid],
        video_duration=secs(vid, total[vid]),
        video_start=secs(vid, first[vid]),
        width=dims[0],
        height=dims[1],
        video_extradata=extradata,
        audio_duration=secs(aud, total[aud]) if has_audio else None,
        audio_start=secs(aud, first[aud]) if has_audio else None,
        audio_sample_rate=rate if has_audio else None,
    )


def check_film(
    path: str | Path,
    *,
    frames: int,
    fps: float,
    audio_duration: float | None = None,
    size: tuple[int, int] | None = None,
    tolerance: float = AUDIO_TOLERANCE_S,
) -> StreamReport:
    """Check a finished film: ``frames`` video frames (= round(duration × fps)), video
    lasting frames/fps, audio lasting ``audio_duration`` within ``tolerance`` seconds, both
    streams starting at 0, and ``size`` (width, height). RenderError naming what differs."""
    rep = stream_report(path, audio=audio_duration is not None)
    problems = []
    if rep.video_frames != frames:
        problems.append(f"{rep.video_frames} video frames, expected {frames}")
    if abs(rep.video_duration - frames / fps) > 0.5 / fps:
        problems.append(f"video lasts {rep.video_duration:.4f} s, expected {frames / fps:.4f} s")
    if size is not None and (rep.width, rep.height) != tuple(size):
        problems.append(f"size {rep.width}x{rep.height}, expected {size[0]}x{size[1]}")
    if abs(rep.video_start) > 1e-6:
        problems.append(f"video starts at {rep.video_start:.4f} s, not 0")
    if audio_duration is not None:
        if rep.audio_duration is None:
            problems.append("no audio stream")
        else:
            if abs(rep.audio_duration - audio_duration) > tolerance:
                problems.append(
                    f"audio lasts {rep.audio_duration:.4f} s, expected {audio_duration:.4f} s "
                    f"(±{tolerance * 1000:.0f} ms)"
                )
            if abs(rep.audio_start or 0.0) > 1e-6:
                problems.append(f"audio starts at {rep.audio_start:.4f} s, not with the video")
    if problems:
        raise RenderError(f"{path}: " + "; ".join(problems))
    return rep


def read_frames(path: str | Path, width: int, height: int, *, batch: int = 24
                ) -> Iterator[np.ndarray]:
    """Decode a film's video to uint8 [n ≤ batch, H, W, 3] blocks (ffmpeg rawvideo pipe)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
           "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "pipe:1"]
    frame_bytes = width * height * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while True:
            data = proc.stdout.read(frame_bytes * batch)
            if not data:
                break
            n = len(data) // frame_bytes
            if n * frame_bytes != len(data):
                raise RenderError(f"{path}: decoded video ends in a partial frame")
            yield np.frombuffer(data, dtype=np.uint8).reshape(n, height, width, 3)
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0:
        raise RenderError(f"{path}: decoding failed: {_tail(err)}")


def decoded_digests(film: str | Path, width: int, height: int,
                    feed: Callable[[int, np.ndarray], None] | None = None) -> list[bytes]:
    """Per-frame sha256 of a film decoded back to rgb24; ``feed(first_index, block)`` sees
    every decoded block (the previews are cut from it)."""
    out: list[bytes] = []
    for block in read_frames(film, width, height):
        if feed is not None:
            feed(len(out), block)
        out.extend(frame_digest(f) for f in block)
    return out
