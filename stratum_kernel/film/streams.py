"""What a film holds: packet counts, durations and starts, and its frames decoded back.

Measured with ffmpeg alone (no ffprobe): :func:`stream_report` copies the video packets and
decodes the audio in one framecrc pass; :func:`check_film` says what differs from what a
film must be; :func:`read_frames` and :func:`decoded_digests` give the frames as they play.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from stratum_kernel.core.digests import frame_digest
from stratum_kernel.core.errors import RenderError
from stratum_kernel.film.encode import ffmpeg_exe, tail_text

#: A track's audio must last as long as its source within this many seconds.
AUDIO_TOLERANCE_S = 0.005


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
        raise RenderError(f"{path}: unreadable film: {tail_text(out.stderr)}")
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


def read_frames(path: str | Path, width: int, height: int, *, batch: int = 24,
                pix_fmt: str = "rgb24") -> Iterator[np.ndarray]:
    """Decode a film's video to uint8 blocks of n ≤ ``batch`` frames (ffmpeg rawvideo
    pipe): [n, H, W, 3] for 'rgb24'; for 'yuv420p' the planes as stored, [n, H·W·3/2]
    (Y, then U and V at half size: no colour conversion, half the bytes)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
           "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt,
           "pipe:1"]
    if pix_fmt == "rgb24":
        frame_bytes, shape = width * height * 3, (height, width, 3)
    elif pix_fmt == "yuv420p":
        frame_bytes = width * height * 3 // 2
        shape = (frame_bytes,)
    else:
        raise ValueError(f"read_frames: pix_fmt must be 'rgb24' or 'yuv420p', got {pix_fmt!r}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield from raw_frame_blocks(proc.stdout, frame_bytes, shape, batch=batch,
                                    what=f"{path}: decoded video")
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0:
        raise RenderError(f"{path}: decoding failed: {tail_text(err)}")


def raw_frame_blocks(stream, frame_bytes: int, shape: tuple[int, ...], *, batch: int = 24,
                     what: str) -> Iterator[np.ndarray]:
    """uint8 [n ≤ batch, *shape] blocks of consecutive raw frames of ``frame_bytes`` each
    read from a binary ``stream`` (a pipe or a file); RenderError naming ``what`` if it
    ends inside a frame."""
    while True:
        data = stream.read(frame_bytes * batch)
        if not data:
            return
        n = len(data) // frame_bytes
        if n * frame_bytes != len(data):
            raise RenderError(f"{what} ends in a partial frame")
        yield np.frombuffer(data, dtype=np.uint8).reshape(n, *shape)


def yuv420p_to_rgb(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [H, W, 3] RGB of one yuv420p frame (``planes``: its H·W·3/2 bytes), BT.709
    limited range as stratum encodes; chroma upsampled bilinearly. For previews: the
    digests are taken over the planes themselves."""
    import cv2

    area = width * height
    y = planes[:area].reshape(height, width).astype(np.float32)
    cw, ch = width // 2, height // 2
    u = planes[area : area + cw * ch].reshape(ch, cw).astype(np.float32)
    v = planes[area + cw * ch :].reshape(ch, cw).astype(np.float32)
    u = cv2.resize(u, (width, height), interpolation=cv2.INTER_LINEAR) - 128.0
    v = cv2.resize(v, (width, height), interpolation=cv2.INTER_LINEAR) - 128.0
    luma = (y - 16.0) * np.float32(255.0 / 219.0)
    k = np.float32(255.0 / 224.0)
    r = luma + k * np.float32(1.5748) * v
    g = luma - k * (np.float32(0.1873) * u + np.float32(0.4681) * v)
    b = luma + k * np.float32(1.8556) * u
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def decoded_digests(film: str | Path, width: int, height: int) -> list[bytes]:
    """Per-frame sha256 of a film's decoded picture: each frame's yuv420p planes as the
    decoder gives them (``decoded_sha256`` in meta.json; no colour conversion, so the
    figure is the codec's output itself and costs half the hashing of RGB)."""
    out: list[bytes] = []
    for block in read_frames(film, width, height, pix_fmt="yuv420p"):
        out.extend(frame_digest(f) for f in block)
    return out
