"""A film's sound and its joins: audio prepared once, segments and films joined as they are.

The audio of a track (trimmed, resampled, loudness-normalised) is written once as a float
WAV by :func:`prepare_audio`, in two passes over blocks of the file (measure, then write),
and encoded to AAC in the mux that joins the track's video
segments with the concat demuxer (no re-encode). The album film joins the track films'
video the same way; its audio is encoded once from the tracks' WAVs, each padded or trimmed
to its track's video length, because stream-copied AAC would carry each track's encoder
priming (1024 samples) into the join and drift against the picture. The AAC encoder is
deterministic.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratum_kernel.audio.channels import downmix, downmix_description
from stratum_kernel.audio.files import AudioWriter, audio_blocks
from stratum_kernel.audio.loudness import LoudnessMeter, normalisation_gain_db
from stratum_kernel.audio.resampling import resample_blocks
from stratum_kernel.core.errors import RenderError
from stratum_kernel.core.paths import atomic_path, write_text_atomic
from stratum_kernel.film.encode import BITEXACT, EncodeParams, audio_args, run_ffmpeg
from stratum_kernel.film.streams import stream_report


@dataclass(frozen=True)
class PreparedAudio:
    """A track's film audio as a float WAV: ``samples`` at ``sample_rate``; ``gain_db`` was
    applied to reach the loudness target (0 when normalisation is off); ``downmix`` says how
    a source of more (or fewer) channels became ``channels``."""

    path: Path
    samples: int
    sample_rate: int
    channels: int
    gain_db: float
    loudness_lufs: float | None
    source_channels: int = 2
    downmix: str = "none"

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate


def _film_blocks(src: Path, sample_rate: int, first: int, stop: int | None, channels: int):
    """(source channels, blocks): ``src`` resampled to ``sample_rate``, samples
    ``[first, stop)`` of that, with ``channels`` channels; float32 [channels, n] blocks.
    Reading ends at ``stop``: the resampler's output up to there does not depend on what
    follows, so a preview's audio is that of the whole film, without reading the track."""
    sr, source_channels, blocks = audio_blocks(src)

    def trimmed():
        at = 0
        for block in resample_blocks(blocks, sr, sample_rate):
            n = block.shape[1]
            a, b = max(first - at, 0), n if stop is None else min(stop - at, n)
            at += n
            if b > a:
                yield downmix(block[:, a:b], channels)
            if stop is not None and at >= stop:
                break  # a preview's seconds: the rest of the track is not read

    return source_channels, trimmed()


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
    round(end·sr))``, match ``channels`` (a surround source is downmixed with ITU-R BS.775
    coefficients, ``audio.channels.downmix``), apply one static gain that brings the
    integrated loudness (ITU-R BS.1770) to ``target_lufs`` without a true peak above
    ``true_peak_ceiling`` dBTP, and write a float32 WAV to ``dst`` (atomically).

    Two passes over blocks of the file (measure, then apply the gain and write), so memory
    does not grow with the track's length; the samples are those of one pass over the whole
    track (the streaming resampler and the loudness meter give the same values).
    """
    src = Path(src)
    first = round(start * sample_rate)
    stop = None if end is None else round(end * sample_rate)
    gain_db, lufs = 0.0, None
    if target_lufs is not None:
        source_channels, blocks = _film_blocks(src, sample_rate, first, stop, channels)
        meter = LoudnessMeter(sample_rate, channels)
        for block in blocks:
            meter.add(block)
        if meter.samples == 0:
            raise RenderError(f"{src}: trim {start}..{end} s keeps no audio")
        summary = meter.summary()
        lufs = float(summary.integrated) if np.isfinite(summary.integrated) else None
        gain_db = normalisation_gain_db(
            summary, target_lufs=target_lufs, true_peak_ceiling=true_peak_ceiling
        )
    gain = np.float32(10.0 ** (gain_db / 20.0))
    source_channels, blocks = _film_blocks(src, sample_rate, first, stop, channels)
    with AudioWriter(dst, sample_rate, channels, subtype="FLOAT") as out:
        for block in blocks:
            out.write(block * gain if target_lufs is not None else block)
        if out.frames == 0:
            raise RenderError(f"{src}: trim {start}..{end} s keeps no audio")
    mixdown = ("none" if source_channels == channels else
               downmix_description(source_channels) if source_channels > 2 else
               f"{source_channels} to {channels} channel(s)")
    return PreparedAudio(Path(dst), out.frames, sample_rate, channels, float(gain_db), lufs,
                         source_channels, mixdown)


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
