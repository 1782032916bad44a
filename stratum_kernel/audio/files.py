"""Reading and writing audio of any common kind.

Everything in stratum reads audio through :func:`load_audio`, which always returns
``float32 [channels, samples]`` (2-D, even for mono) and the sample rate. WAV (8/16/24/32-bit
integer and float), FLAC, Ogg (Vorbis, Opus), MP3, AIFF and friends go through libsndfile
(``soundfile``); whatever libsndfile cannot open (AAC/M4A, WMA, ...) is decoded by the
ffmpeg binary that ships with ``imageio-ffmpeg``.

Long tracks are read a block at a time with :func:`audio_blocks` (same checks, same
samples; ffmpeg's output is read from its pipe as it decodes) and written a block at a
time with :class:`AudioWriter`; :mod:`stratum_kernel.audio.resampling` converts rates.

Damaged files never surface as a library traceback: a missing, empty, unreadable,
truncated or silent-because-empty file raises :class:`~stratum_kernel.core.errors.AudioError`
whose message starts with the file's path and says what to do.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratum_kernel.audio.channels import downmix
from stratum_kernel.audio.resampling import resample
from stratum_kernel.core.background import Behind, prefetch
from stratum_kernel.core.errors import AudioError
from stratum_kernel.core.ffmpeg import ffmpeg_exe
from stratum_kernel.core.paths import temp_sibling

log = logging.getLogger(__name__)

# Suffixes libsndfile reads itself; for these its verdict on a damaged file is final
# (ffmpeg's lenient probing would otherwise "decode" random bytes as something).
SOUNDFILE_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64", ".rf64"}
)
# Read by libsndfile when it can, else by ffmpeg (older libsndfile builds lack MP3/Opus).
SOUNDFILE_THEN_FFMPEG_SUFFIXES = frozenset({".mp3", ".ogg", ".oga", ".opus"})
FFMPEG_SUFFIXES = frozenset({".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka", ".ac3", ".alac"})
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | SOUNDFILE_THEN_FFMPEG_SUFFIXES | FFMPEG_SUFFIXES

# Output format per suffix for write_audio.
_WRITE_FORMATS = {
    ".wav": "WAV",
    ".wave": "WAV",
    ".flac": "FLAC",
    ".ogg": "OGG",
    ".oga": "OGG",
    ".mp3": "MP3",
    ".aif": "AIFF",
    ".aiff": "AIFF",
    ".w64": "W64",
    ".caf": "CAF",
}
_INT_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32"})
# Sample rates a file may declare: anything else is a damaged header (a 1 Hz header would
# have the resampler allocate terabytes).
RATE_RANGE = (4000, 768_000)

# libsndfile logs "data : <declared> (should be <present>)" for a WAV cut short.
_DATA_SHORTFALL = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Declared sizes that mean "unknown length" (streamed WAV), not truncation.
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (ffmpeg-only formats are decoded once).

    sample_rate: Hz; channels: count; frames: samples per channel; duration: seconds;
    format: a short label such as ``'WAV PCM_24'``, ``'FLAC PCM_16'`` or ``'ffmpeg aac'``.
    """

    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: audio file not found (check the path and its spelling)")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as err:
        raise AudioError(
            f"{path}: cannot be read ({err.strerror}); check its permissions"
        ) from None
    if size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes); re-export or re-copy the audio")


def _not_audio(path: Path, detail: str) -> AudioError:
    kinds = "WAV, FLAC, Ogg, MP3, AIFF, M4A/AAC"
    return AudioError(
        f"{path}: not a readable audio file ({detail}); expected one of {kinds} — "
        "check that the file is audio and not damaged"
    )


def _truncation_check(path: Path, sf_file) -> None:
    """Raise when libsndfile reports a WAV whose header promises more data than exists."""
    match = _DATA_SHORTFALL.search(sf_file.extra_info or "")
    if not match:
        return
    declared, present = int(match.group(1)), int(match.group(2))
    if declared in _STREAMING_SIZES:
        return
    block = max(1, sf_file.channels) * 4
    if declared - present > block:
        raise AudioError(
            f"{path}: truncated: the header declares {declared} bytes of audio but only "
            f"{present} are present (the file was cut short); re-export or re-copy it"
        )


def _use_soundfile(path: Path):
    """Open ``path`` with libsndfile, or return the error text when it cannot."""
    import soundfile as sf

    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        return None, str(err).rsplit(": ", 1)[-1].strip().rstrip(".")
    try:
        _truncation_check(path, handle)
    except AudioError:
        handle.close()
        raise
    return handle, None


def _sf_format(handle) -> str:
    return f"{handle.format} {handle.subtype}"


def _ffmpeg_exe() -> str:
    return ffmpeg_exe(AudioError, "decode this kind of audio")


def _wav_header(path: Path, read) -> tuple[int, int, int]:
    """(channels, sr, data bytes or -1 for 'unknown') from a WAV stream whose next bytes
    ``read(n)`` returns, leaving it at the first sample (ffmpeg's output to a pipe)."""
    head = read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise _not_audio(path, "ffmpeg produced no audio")
    channels = sr = None
    while True:
        chunk = read(8)
        if len(chunk) < 8:
            break
        tag, size = chunk[:4], struct.unpack("<I", chunk[4:8])[0]
        if tag == b"data":
            if channels is None or sr is None:
                break
            return channels, sr, -1 if size in _STREAMING_SIZES else size
        body = read(size + (size & 1)) if size not in _STREAMING_SIZES else b""
        if tag == b"fmt ":
            _fmt, channels, sr = struct.unpack("<HHI", body[:8])
    raise _not_audio(path, "ffmpeg output had no audio stream")


def _parse_wav_stream(path: Path, data: bytes) -> tuple[np.ndarray, int]:
    """Parse ffmpeg's float WAV output (data size may be 'unknown'): [channels, n], sr."""
    import io

    stream = io.BytesIO(data)
    channels, sr, size = _wav_header(path, stream.read)
    raw = stream.read() if size < 0 else stream.read(size)
    raw = raw[: len(raw) - len(raw) % (4 * channels)]
    y = np.frombuffer(raw, dtype="<f4").reshape(-1, channels).T
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def _ffmpeg_stream(path: Path, sf_error: str | None, block_frames: int):
    """Decode any file ffmpeg understands, read from its pipe as it goes: (sr, channels,
    label, generator of float32 [channels, n] blocks of ``block_frames``).

    ``sf_error``: why libsndfile refused the file, repeated in the error if ffmpeg fails too.
    The label ('ffmpeg aac') is known once the stream has ended.
    """
    import tempfile

    exe = _ffmpeg_exe()
    cmd = [exe, "-hide_banner", "-nostdin", "-i", str(path), "-vn",
           "-map", "0:a:0", "-f", "wav", "-c:a", "pcm_f32le", "-"]  # fmt: skip
    # a file, not a pipe, so ffmpeg never waits on it; failure() closes it
    errors = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
    label = {"format": "ffmpeg audio"}

    def failure() -> AudioError | None:
        code = proc.wait()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
        errors.close()
        m = re.search(r"Stream #0:\d+\S*: Audio: (\w+)", stderr)
        label["format"] = f"ffmpeg {m.group(1) if m else 'audio'}"
        if code == 0:
            return None
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"ffmpeg exit status {code}"
        tried = f"libsndfile: {sf_error}; " if sf_error and sf_error != "not tried" else ""
        return _not_audio(path, f"{tried}ffmpeg: {detail}")

    assert proc.stdout is not None
    try:
        channels, sr, size = _wav_header(path, proc.stdout.read)
    except AudioError:
        proc.stdout.close()
        raise failure() or _not_audio(path, "ffmpeg produced no audio") from None

    def blocks():
        left = size if size >= 0 else None
        frame = 4 * channels
        try:
            while left is None or left > 0:
                want = block_frames * frame if left is None else min(left, block_frames * frame)
                raw = proc.stdout.read(want)
                raw = raw[: len(raw) - len(raw) % frame]
                if not raw:
                    break
                if left is not None:
                    left -= len(raw)
                yield np.frombuffer(raw, dtype="<f4").reshape(-1, channels).T.copy()
        finally:
            proc.stdout.close()
            err = failure()
        if err is not None:
            raise err

    return int(sr), int(channels), label, blocks()


def _ffmpeg_decode(path: Path, sf_error: str | None = None) -> tuple[np.ndarray, int, str]:
    """Decode any file ffmpeg understands to float32 [channels, samples] (see
    :func:`_ffmpeg_stream`)."""
    sr, channels, label, blocks = _ffmpeg_stream(path, sf_error, 1 << 20)
    parts = list(blocks)
    y = np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), np.float32)
    return y, sr, label["format"]


def _soundfile_blocks(path: Path, handle, start: int, stop: int | None, block_frames: int):
    """Frames [start, stop) as float32 [channels, n] blocks of ``block_frames``; decoding
    errors and a file shorter than its header -> AudioError."""
    import soundfile as sf

    declared = handle.frames
    stop = declared if stop is None else min(stop, declared)
    want = max(0, stop - start)
    got = 0
    try:
        if start:
            handle.seek(start)
        while got < want:
            data = handle.read(frames=min(block_frames, want - got), dtype="float32",
                               always_2d=True)
            if data.shape[0] == 0:
                break
            got += data.shape[0]
            yield np.ascontiguousarray(data.T)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(
            f"{path}: corrupt or truncated audio: decoding failed ({err}); "
            "re-export or re-copy the file"
        ) from None
    if got < want:
        exact = handle.format not in ("MP3", "OGG")
        # MP3/Ogg frame counts in headers are estimates; allow a small shortfall there.
        tolerance = 0 if exact else max(int(0.01 * declared), handle.samplerate // 10)
        if want - got > tolerance:
            raise AudioError(
                f"{path}: truncated: the header promises {declared} frames but decoding "
                f"stopped after {start + got}; the file was cut short or is damaged — "
                "re-export or re-copy it"
            )


def _read_soundfile(path: Path, handle, start: int, stop: int | None) -> np.ndarray:
    """Frames [start, stop) as float32 [channels, n] (see :func:`_soundfile_blocks`)."""
    parts = list(_soundfile_blocks(path, handle, start, stop, max(1, handle.frames)))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts, axis=1) if parts else np.zeros((handle.channels, 0), np.float32)


def _check_finite(path: Path, y: np.ndarray, first: int, rate: int) -> None:
    """AudioError naming the time of the first NaN/inf sample of ``y``, whose first sample
    is sample ``first`` of the file."""
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y).all(axis=0))[0])
        raise AudioError(
            f"{path}: contains NaN or infinite samples (the first at "
            f"{(first + bad) / rate:.3f} s); re-export the file from its source"
        )


#: Frames per block that :func:`audio_blocks` reads (about 6 s at 44.1 kHz).
READ_FRAMES = 1 << 18


def audio_blocks(path: str | Path, *, block_frames: int | None = None):
    r"""Open ``path`` for reading a block at a time: ``(sample rate, channels, blocks)``,
    blocks being float32 [channels, n] of ``block_frames`` (default :data:`READ_FRAMES`)
    in order, the same samples :func:`load_audio` gives in one array.

    The header is checked at once (the :class:`AudioError`\ s of :func:`load_audio`);
    damage found while decoding (a truncated file, NaN samples) is raised by the
    iterator, naming the file and the time.
    """
    path = Path(path)
    block_frames = int(block_frames or READ_FRAMES)
    _check_file(path)
    suffix = path.suffix.lower()
    handle, sf_error = (None, "not tried") if suffix in FFMPEG_SUFFIXES else _use_soundfile(path)
    if handle is None and suffix in SOUNDFILE_SUFFIXES:
        raise _not_audio(path, sf_error)
    if handle is not None:
        sr, channels = int(handle.samplerate), int(handle.channels)
        try:
            _check_rate(path, sr)
            if handle.frames <= 0:
                raise AudioError(f"{path}: contains no audio (0 samples); replace it")
        except AudioError:
            handle.close()
            raise
        raw = _soundfile_blocks(path, handle, 0, None, block_frames)
    else:
        sr, channels, _, raw = _ffmpeg_stream(path, sf_error, block_frames)
        _check_rate(path, sr)

    def blocks():
        done = 0
        # libsndfile decodes the next blocks on a thread while this one is used
        ahead = prefetch(raw) if handle is not None else raw
        try:
            for block in ahead:
                _check_finite(path, block, done, sr)
                done += block.shape[1]
                yield block
        finally:
            ahead.close()  # the decoding thread has stopped before the file closes
            if handle is not None:
                handle.close()
        if done == 0:
            raise AudioError(f"{path}: contains no audio (0 samples); replace it")

    return sr, channels, blocks()


def audio_info(path: str | Path) -> AudioInfo:
    """Sample rate, channels, frames, duration and format of ``path``.

    Header-only for libsndfile formats (a truncated WAV is caught here); formats only ffmpeg
    reads are decoded once, a block at a time. Raises :class:`AudioError` for missing,
    empty, unreadable or zero-length files.
    """
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    handle, sf_error = (None, "not tried") if suffix in FFMPEG_SUFFIXES else _use_soundfile(path)
    if handle is not None:
        with handle:
            info = AudioInfo(
                sample_rate=int(handle.samplerate),
                channels=int(handle.channels),
                frames=int(handle.frames),
                duration=handle.frames / float(handle.samplerate),
                format=_sf_format(handle),
            )
    elif suffix in SOUNDFILE_SUFFIXES:
        raise _not_audio(path, sf_error)
    else:
        sr, channels, label, blocks = _ffmpeg_stream(path, sf_error, 1 << 18)
        frames = sum(block.shape[1] for block in blocks)  # counted, never held whole
        info = AudioInfo(sr, channels, frames, frames / float(sr), label["format"])
    if info.frames <= 0:
        raise AudioError(f"{path}: contains no audio (0 samples); replace it with a real track")
    _check_rate(path, info.sample_rate)
    return info


def _check_rate(path: Path, rate: int) -> None:
    lo, hi = RATE_RANGE
    if not lo <= rate <= hi:
        raise AudioError(
            f"{path}: the header says {rate} Hz, outside {lo}-{hi} Hz; the file is damaged or "
            "not audio — re-export it"
        )


def load_audio(
    path: str | Path,
    *,
    sr: int | None = None,
    mono: bool = False,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 [channels, samples] in [-1, 1] and its sample rate.

    sr: resample to this rate (None keeps the file's). mono: average the channels to one
    (shape stays [1, samples]). offset, duration: seconds to skip, and to keep (None: to the
    end), in the file's own time. Raises :class:`AudioError` naming the file for anything
    that is not readable, complete audio.
    """
    path = Path(path)
    if offset < 0 or (duration is not None and duration < 0):
        raise ValueError(f"offset and duration must be >= 0, got {offset}, {duration}")
    if sr is not None and sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    _check_file(path)
    suffix = path.suffix.lower()
    handle, sf_error = (None, "not tried") if suffix in FFMPEG_SUFFIXES else _use_soundfile(path)
    if handle is not None:
        with handle:
            native = int(handle.samplerate)
            _check_rate(path, native)
            total = int(handle.frames)
            if total <= 0:
                raise AudioError(f"{path}: contains no audio (0 samples); replace it")
            start = round(offset * native)
            if start >= total and offset > 0:
                raise AudioError(
                    f"{path}: offset {offset:.3f} s is past the end of the audio "
                    f"({total / native:.3f} s)"
                )
            stop = None if duration is None else start + round(duration * native)
            y = _read_soundfile(path, handle, start, stop)
    elif suffix in SOUNDFILE_SUFFIXES:
        raise _not_audio(path, sf_error)
    else:
        y, native, _ = _ffmpeg_decode(path, sf_error)
        _check_rate(path, native)
        if y.shape[1] == 0:
            raise AudioError(f"{path}: contains no audio (0 samples); replace it")
        start = round(offset * native)
        if start >= y.shape[1] and offset > 0:
            raise AudioError(
                f"{path}: offset {offset:.3f} s is past the end of the audio "
                f"({y.shape[1] / native:.3f} s)"
            )
        stop = None if duration is None else start + round(duration * native)
        y = np.ascontiguousarray(y[:, start:stop])
    _check_finite(path, y, start, native)
    if mono and y.shape[0] > 1:
        y = downmix(y, 1)
    if sr is not None and sr != native:
        y = resample(y, native, int(sr))
        native = int(sr)
    return y.astype(np.float32, copy=False), native


class AudioWriter:
    """An audio file written a block at a time, atomically: ``with AudioWriter(path, sr,
    channels, subtype) as out: out.write(block)``; the file appears under its final name
    only when the block ends without error (see :func:`write_audio` for formats and
    subtypes). ``frames`` counts what was written. ``compression_level``: FLAC's, 0-1."""

    def __init__(self, path: str | Path, sr: int, channels: int, subtype: str | None = None,
                 *, compression_level: float | None = None):
        import soundfile as sf

        self.path = Path(path)
        self.format = _WRITE_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise AudioError(
                f"{self.path}: cannot write audio with suffix '{self.path.suffix}'; use one of "
                + ", ".join(sorted(_WRITE_FORMATS))
            )
        self.sr, self.channels = int(sr), int(channels)
        self.subtype = subtype or sf.default_subtype(self.format)
        self._clip = self.subtype in _INT_SUBTYPES or self.format in ("OGG", "MP3")
        self._level = compression_level
        self.frames = 0

    def __enter__(self) -> AudioWriter:
        import soundfile as sf

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_sibling(self.path)
        extra = {} if self._level is None else {"compression_level": self._level}
        try:
            self._file = sf.SoundFile(str(self._tmp), "w", self.sr, self.channels,
                                      subtype=self.subtype, format=self.format, **extra)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
            self._tmp.unlink(missing_ok=True)
            raise self._error(err, 0) from None
        self._behind = Behind(pending=2, name="stratum-audio-writer")
        return self

    def write(self, block: np.ndarray) -> None:
        """Append float [channels, n] samples (nominally in [-1, 1]).

        The samples are checked here and encoded on a background thread (libsndfile lets
        the main thread go on computing); an encoding error is raised by a later
        :meth:`write` or on leaving the ``with`` block."""
        data = np.array(block, dtype=np.float32, copy=True)  # the caller may reuse its buffer
        if not np.all(np.isfinite(data)):
            raise AudioError(
                f"{self.path}: refusing to write audio containing NaN or infinite samples"
            )
        if self._clip:
            np.clip(data, -1.0, 1.0, out=data)
        self._behind.submit(self._encode, data)
        self.frames += data.shape[1]

    def _encode(self, data: np.ndarray) -> None:
        import soundfile as sf

        try:
            self._file.write(data.T)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
            raise self._error(err, data.size) from None

    def _error(self, err: Exception, size: int) -> AudioError:
        # libsndfile reports a full disk as "System error."; the free space tells
        free = shutil.disk_usage(self.path.parent).free
        if free < size * 4 + 2**20:
            return AudioError(
                f"{self.path}: could not write audio: no space left on the disk holding "
                f"{self.path.parent} ({free / 2**20:.0f} MB free); free some space and retry"
            )
        return AudioError(
            f"{self.path}: could not write audio as {self.format} {self.subtype}: {err}"
        )

    def __exit__(self, exc_type, exc, tb) -> None:
        import soundfile as sf

        try:
            try:
                if exc_type is None:
                    self._behind.wait()
            finally:
                self._behind.close()
                try:
                    self._file.close()
                except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
                    if exc_type is None:
                        raise self._error(err, 0) from None
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def write_audio(path: str | Path, y: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write ``y`` (float [channels, samples] or [samples], nominally in [-1, 1]) atomically.

    The format follows the suffix (.wav, .flac, .ogg, .mp3, .aiff, .w64, .caf); ``subtype``
    is a libsndfile subtype such as ``'PCM_16'``, ``'PCM_24'`` or ``'FLOAT'`` (None: the
    format's default, PCM_16 for WAV and FLAC). Integer subtypes are clipped to [-1, 1]
    rather than wrapped. The file appears under its final name only when complete.
    """
    data = np.asarray(y, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[0] < 1:
        raise ValueError(f"audio must be [channels, samples], got shape {data.shape}")
    with AudioWriter(path, sr, data.shape[0], subtype) as out:
        out.write(data)
    return Path(path)


def check_audio(y: np.ndarray) -> np.ndarray:
    """``y`` as float32 [channels, samples] (a 1-D signal becomes one channel); an
    :class:`AudioError` for an empty signal, another shape, or NaN/infinite samples."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[1] == 0:
        raise AudioError(f"audio must be [channels, samples] with samples, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise AudioError("the audio contains NaN or infinite samples")
    return y
