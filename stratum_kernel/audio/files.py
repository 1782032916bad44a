"""Reading and writing audio of any common kind.

Everything in stratum reads audio through :func:`load_audio`, which always returns
``float32 [channels, samples]`` (2-D, even for mono) and the sample rate. WAV (8/16/24/32-bit
integer and float), FLAC, Ogg (Vorbis, Opus), MP3, AIFF and friends go through libsndfile
(``soundfile``); whatever libsndfile cannot open (AAC/M4A, WMA, ...) is decoded by the
ffmpeg binary that ships with ``imageio-ffmpeg``. Resampling uses soxr when installed, else
scipy's polyphase filter; both are deterministic.

Damaged files never surface as a library traceback: a missing, empty, unreadable,
truncated or silent-because-empty file raises :class:`~stratum_kernel.core.errors.AudioError`
whose message starts with the file's path and says what to do.
"""

from __future__ import annotations

import logging
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratum_kernel.core.errors import AudioError
from stratum_kernel.core.ffmpeg import ffmpeg_exe
from stratum_kernel.core.paths import atomic_path

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

#: What the channels of a 3–8 channel file are, in the order the FLAC format defines them
#: (and WAV's WAVE_FORMAT_EXTENSIBLE stores 5.0, 5.1, 6.1 and 7.1; ffmpeg reads those the
#: same way). A file's own channel mask is not read: a 3- or 4-channel file is taken as
#: L R C or quad, as FLAC defines them (ffmpeg guesses 2.1 and 4.0 for a WAV without mask).
CHANNEL_LAYOUTS: dict[int, tuple[str, ...]] = {
    3: ("L", "R", "C"),
    4: ("L", "R", "Ls", "Rs"),
    5: ("L", "R", "C", "Ls", "Rs"),
    6: ("L", "R", "C", "LFE", "Ls", "Rs"),
    7: ("L", "R", "C", "LFE", "Cs", "Ls", "Rs"),
    8: ("L", "R", "C", "LFE", "Ls", "Rs", "Lss", "Rss"),
}
_TO_LEFT = {"L": 1.0, "C": 0.7071, "Ls": 0.7071, "Lss": 0.7071, "Cs": 0.5}
_TO_RIGHT = {"R": 1.0, "C": 0.7071, "Rs": 0.7071, "Rss": 0.7071, "Cs": 0.5}

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


def _parse_wav_stream(path: Path, data: bytes) -> tuple[np.ndarray, int]:
    """Parse ffmpeg's float WAV output (data size may be 'unknown'): [channels, n], sr."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _not_audio(path, "ffmpeg produced no audio")
    pos, channels, sr = 12, None, None
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if tag == b"fmt ":
            _fmt, channels, sr = struct.unpack("<HHI", data[body : body + 8])
        elif tag == b"data":
            if channels is None or sr is None:
                break
            end = len(data) if size in _STREAMING_SIZES else min(len(data), body + size)
            raw = data[body:end]
            raw = raw[: len(raw) - len(raw) % (4 * channels)]
            y = np.frombuffer(raw, dtype="<f4").reshape(-1, channels).T
            return np.ascontiguousarray(y, dtype=np.float32), int(sr)
        pos = body + size + (size & 1)
    raise _not_audio(path, "ffmpeg output had no audio stream")


def _ffmpeg_decode(path: Path, sf_error: str | None = None) -> tuple[np.ndarray, int, str]:
    """Decode any file ffmpeg understands to float32 [channels, samples].

    ``sf_error``: why libsndfile refused the file, repeated in the error if ffmpeg fails too.
    """
    exe = _ffmpeg_exe()
    cmd = [exe, "-hide_banner", "-nostdin", "-i", str(path), "-vn",
           "-map", "0:a:0", "-f", "wav", "-c:a", "pcm_f32le", "-"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"ffmpeg exit status {proc.returncode}"
        tried = f"libsndfile: {sf_error}; " if sf_error and sf_error != "not tried" else ""
        raise _not_audio(path, f"{tried}ffmpeg: {detail}")
    y, sr = _parse_wav_stream(path, proc.stdout)
    m = re.search(r"Stream #0:\d+\S*: Audio: (\w+)", stderr)
    codec = m.group(1) if m else "audio"
    return y, sr, f"ffmpeg {codec}"


def _read_soundfile(path: Path, handle, start: int, stop: int | None) -> np.ndarray:
    """Read frames [start, stop) as float32 [channels, n]; decoding errors -> AudioError."""
    import soundfile as sf

    declared = handle.frames
    stop = declared if stop is None else min(stop, declared)
    want = max(0, stop - start)
    try:
        if start:
            handle.seek(start)
        data = handle.read(frames=want, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(
            f"{path}: corrupt or truncated audio: decoding failed ({err}); "
            "re-export or re-copy the file"
        ) from None
    got = data.shape[0]
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
    return np.ascontiguousarray(data.T)


def audio_info(path: str | Path) -> AudioInfo:
    """Sample rate, channels, frames, duration and format of ``path``.

    Header-only for libsndfile formats (a truncated WAV is caught here); formats only ffmpeg
    reads are decoded once. Raises :class:`AudioError` for missing, empty, unreadable or
    zero-length files.
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
        y, sr, label = _ffmpeg_decode(path, sf_error)
        info = AudioInfo(sr, y.shape[0], y.shape[1], y.shape[1] / float(sr), label)
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


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample float32 [channels, samples] from ``sr_in`` to ``sr_out`` Hz (deterministic)."""
    if sr_in == sr_out or y.shape[-1] == 0:
        return y
    try:
        import soxr
    except ImportError:
        soxr = None
    if soxr is not None:
        out = soxr.resample(np.ascontiguousarray(y.T), sr_in, sr_out, quality="HQ")
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, y.shape[0]).T)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    out = resample_poly(y, sr_out // g, sr_in // g, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


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
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y).all(axis=0))[0])
        raise AudioError(
            f"{path}: contains NaN or infinite samples (the first at "
            f"{(start + bad) / native:.3f} s); re-export the file from its source"
        )
    if mono and y.shape[0] > 1:
        y = downmix(y, 1)
    if sr is not None and sr != native:
        y = resample(y, native, int(sr))
        native = int(sr)
    return y.astype(np.float32, copy=False), native


def write_audio(path: str | Path, y: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Write ``y`` (float [channels, samples] or [samples], nominally in [-1, 1]) atomically.

    The format follows the suffix (.wav, .flac, .ogg, .mp3, .aiff, .w64, .caf); ``subtype``
    is a libsndfile subtype such as ``'PCM_16'``, ``'PCM_24'`` or ``'FLOAT'`` (None: the
    format's default, PCM_16 for WAV and FLAC). Integer subtypes are clipped to [-1, 1]
    rather than wrapped. The file appears under its final name only when complete.
    """
    import soundfile as sf

    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(
            f"{path}: cannot write audio with suffix '{path.suffix}'; use one of "
            + ", ".join(sorted(_WRITE_FORMATS))
        )
    data = np.asarray(y, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[0] < 1:
        raise ValueError(f"audio must be [channels, samples], got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: refusing to write audio containing NaN or infinite samples")
    subtype = subtype or sf.default_subtype(fmt)
    if subtype in _INT_SUBTYPES or fmt in ("OGG", "MP3"):
        data = np.clip(data, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            sf.write(str(tmp), data.T, int(sr), subtype=subtype, format=fmt)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
        # libsndfile reports a full disk as "System error."; the free space tells
        free = shutil.disk_usage(path.parent).free
        if free < data.size * 4 + 2**20:
            raise AudioError(
                f"{path}: could not write audio: no space left on the disk holding "
                f"{path.parent} ({free / 2**20:.0f} MB free); free some space and retry"
            ) from None
        raise AudioError(f"{path}: could not write audio as {fmt} {subtype}: {err}") from None
    return path


def downmix_matrix(channels: int) -> np.ndarray:
    """float32 [2, channels]: ITU-R BS.775 stereo downmix of a ``channels`` file
    (:data:`CHANNEL_LAYOUTS`): Lo = L + 0.707 C + 0.707 Ls, Ro = R + 0.707 C + 0.707 Rs (a
    back centre at 0.5 to both), the LFE left out; each row scaled so its gains sum to at
    most 1 so the mix cannot clip — the matrix ffmpeg's ``-ac 2`` uses for integer output
    (its float path skips that scaling and can clip). Other channel counts: every channel
    at equal gain to both sides."""
    layout = CHANNEL_LAYOUTS.get(channels)
    if channels == 1:
        m = np.ones((2, 1))
    elif channels == 2:
        m = np.eye(2)
    elif layout is None:
        m = np.full((2, channels), 1.0 / channels)
    else:
        m = np.array([[_TO_LEFT.get(c, 0.0) for c in layout],
                      [_TO_RIGHT.get(c, 0.0) for c in layout]])
    m /= np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    return m.astype(np.float32)


def downmix_description(channels: int) -> str:
    """How :func:`downmix` treats a file of ``channels`` channels, for run records."""
    if channels <= 2:
        return "none"
    layout = CHANNEL_LAYOUTS.get(channels)
    if layout is None:
        return f"{channels} channels averaged into both sides"
    return (f"{channels}-channel ({' '.join(layout)}) to stereo, ITU-R BS.775 coefficients, "
            "LFE left out, rows normalised to a gain sum of 1 (ffmpeg -ac 2, integer output)")


def downmix(y: np.ndarray, channels: int) -> np.ndarray:
    """float32 [channels, samples] from [c, samples]: mono → both sides, more than two
    channels → BS.775 stereo (:func:`downmix_matrix`), then, for ``channels=1``, the mean."""
    y = np.asarray(y, dtype=np.float32)
    c = y.shape[0]
    if c == channels:
        return y
    stereo = y if c == 2 else downmix_matrix(c) @ y
    if channels == 2:
        return np.ascontiguousarray(stereo, dtype=np.float32)
    if channels == 1:
        return (stereo.mean(axis=0, keepdims=True, dtype=np.float32) if c != 1 else y)
    raise ValueError(f"downmix to {channels} channels is not supported (1 or 2)")


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
