"""Stems for audio that has none: one interface over a DSP separator and Demucs.

:func:`separate` splits a mix into ``drums``, ``bass``, ``other`` and ``vocals``
(float32 [channels, samples] each, at the mix's rate):

- ``'dsp'`` needs no weights: :mod:`stratum_kernel.audio.dsp_separator` (median-filter
  masks and REPET-SIM on a pooled band spectrogram), run a block at a time, so an
  hour-long track needs a few hundred MB.
- ``'demucs'`` runs a Demucs model from a local file (``weights=`` or
  ``$STRATUM_DEMUCS_WEIGHTS``; never downloaded) with ``demucs.apply.apply_model``, at the
  model's sample rate, with one common normalisation for all stems (levels stay
  comparable; no per-stem rescaling).
- ``'auto'`` takes Demucs when the package and weights are present, else DSP.

:func:`load_stems` gives a track's bundled stems, or separated ones cached under
``cache/stems/<track>-<hash>/`` (24-bit FLAC plus a checksummed ``meta.json``; a damaged
entry is separated again). :func:`stem_streams` gives the same stems as blocks read from
their files, for the analysis of long tracks: DSP stems go from the mix's file to the
cache's FLAC files a block at a time and are read back the same way, never whole.
Demucs still separates the whole track in memory (its normalisation is over the track).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.audio.album import Track
from stratum_kernel.audio.demucs import WEIGHTS_ENV, DemucsSeparator
from stratum_kernel.audio.dsp_separator import (
    DSPSeparatorParams,
    separate_dsp,
    separate_dsp_blocks,
)
from stratum_kernel.audio.files import AudioWriter, audio_blocks, load_audio
from stratum_kernel.audio.resampling import resample_blocks
from stratum_kernel.core.blockwise import fit_blocks
from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.dsp import fit_length
from stratum_kernel.core.errors import ModelError, StratumError
from stratum_kernel.core.paths import atomic_dir, cache_dir
from stratum_kernel.core.timeline import STEM_NAMES

log = logging.getLogger(__name__)

# 2: DSP stems separated in blocks, REPET-SIM within ±60 s (was: the whole track)
SEPARATION_VERSION = 2
BACKENDS = ("auto", "dsp", "demucs")
#: Frames per block when stems are written to and read from the cache.
CACHE_BLOCK_FRAMES = 1 << 18
#: Stems are stored at 1 / this level (6 dB of headroom, 23 of the 24 bits' precision),
#: so a stem peaking above full scale, common since masks shift phases, is written in one
#: pass; a louder one is written again with its own factor.
_HEADROOM = 2.0


# ------------------------------------------------------------------ Demucs


def _demucs_weights(weights: str | Path | None) -> Path | None:
    """The Demucs weights file or model folder to use: ``weights`` or ``$STRATUM_DEMUCS_WEIGHTS``,
    when it exists; None when neither is set or the path is missing."""
    chosen = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    return path if path.exists() else None


def demucs_available(weights: str | Path | None = None) -> bool:
    """True when the ``demucs`` package imports and local weights are present."""
    if _demucs_weights(weights) is None:
        return False
    import importlib.util

    return importlib.util.find_spec("demucs") is not None


_DEMUCS_CACHE: dict[str, Any] = {}  # loaded DemucsSeparators by weights file


def _resolve(backend: str, weights: str | Path | None) -> tuple[str, Path | None]:
    if backend not in BACKENDS:
        raise StratumError(
            f"unknown separation backend {backend!r}; use one of {', '.join(BACKENDS)}"
        )
    path = _demucs_weights(weights)
    if backend == "dsp":
        return "dsp", None
    if backend == "auto":
        return ("demucs", path) if demucs_available(weights) else ("dsp", None)
    if path is None:
        where = weights if weights is not None else f"${WEIGHTS_ENV}"
        raise ModelError(
            f"the Demucs backend needs local weights: {where} is not set or does not exist; "
            f"set {WEIGHTS_ENV}=/path/to/model.th or use the 'dsp' backend"
        )
    return "demucs", path


def separate(
    y: np.ndarray,
    sr: int,
    *,
    backend: str = "auto",
    weights: str | Path | None = None,
    params: DSPSeparatorParams | None = None,
) -> dict[str, np.ndarray]:
    """Split ``y`` (float32 [channels, samples] at ``sr`` Hz) into
    {'drums', 'bass', 'other', 'vocals'}: float32 [channels, samples] each.

    backend: 'dsp', 'demucs' or 'auto' (Demucs when the package and weights — ``weights``
    or ``$STRATUM_DEMUCS_WEIGHTS`` — are present, else DSP).
    """
    name, path = _resolve(backend, weights)
    if name == "dsp":
        return separate_dsp(y, sr, params=params)
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"  # a replaced file reloads
    if key not in _DEMUCS_CACHE:
        _DEMUCS_CACHE[key] = DemucsSeparator(path)
    return _DEMUCS_CACHE[key](y, sr)


def separation_key(backend: str = "auto", weights: str | Path | None = None) -> str:
    """Names what :func:`separate` would run: 'dsp-v1-<params>' or 'demucs-<weights hash>';
    part of the stem and feature cache keys."""
    name, path = _resolve(backend, weights)
    if name == "dsp":
        digest = hashlib.sha256(DSPSeparatorParams().model_dump_json().encode()).hexdigest()
        return f"dsp-v{SEPARATION_VERSION}-{digest[:8]}"
    assert path is not None
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f"{f.name}={file_sha256(f)}".encode())
    return f"demucs-v{SEPARATION_VERSION}-{h.hexdigest()[:12]}"


# ------------------------------------------------------------------ stem sets and caching


@dataclass
class StemSet:
    """A track's four stems: {stem: float32 [channels, samples]} at ``sr`` Hz.

    source: 'bundled' (files in the album), 'dsp' or 'demucs' (separated); key: what the
    stems are made of (file hashes or audio hash + separator), for cache keys.
    """

    stems: dict[str, np.ndarray]
    sr: int
    source: str
    key: str = ""

    @property
    def duration(self) -> float:
        return max(a.shape[-1] for a in self.stems.values()) / float(self.sr)


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB, ``10 log10(|s|² / |s - ŝ|²)`` over all channels and
    samples (the shorter length of the two); nan for a silent reference."""
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    n = min(s.shape[-1], e.shape[-1])
    s, e = s[..., :n], e[..., :n]
    signal = float(np.sum(s * s))
    if signal <= 0.0:
        return float("nan")
    error = float(np.sum((s - e) ** 2))
    return float(10.0 * np.log10(signal / max(error, 1e-20)))


def _load_bundled(track: Track) -> StemSet:
    assert track.stem_paths is not None
    stems, keys = {}, []
    for name in STEM_NAMES:
        path = track.stem_paths[name]
        y, _ = load_audio(path, sr=track.sample_rate)
        # a stem a few ms off the mix's length (within the album's tolerance) is fitted to
        # it, so every stem and the mix line up sample for sample
        stems[name] = np.ascontiguousarray(fit_length(y, track.frames))
        keys.append(f"{name}={file_sha256(path)[:16]}")
    return StemSet(stems=stems, sr=track.sample_rate, source="bundled", key=",".join(keys))


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read 1 MB at a time (never remembered: a cache check)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cached_meta(folder: Path) -> dict[str, Any] | None:
    """The meta.json of a complete, intact cache folder (every FLAC's checksum, rate and
    length checked, reading a block at a time), or None when it is missing or damaged."""
    import soundfile as sf

    try:
        meta = json.loads((folder / "meta.json").read_text())
        for name in STEM_NAMES:
            path = folder / f"{name}.flac"
            if _sha256(path) != meta["files"][name]:
                raise ValueError(f"{path.name} checksum mismatch")
            info = sf.info(str(path))
            if info.samplerate != meta["sr"] or info.frames != meta["frames"]:
                raise ValueError(f"{path.name} has {info.frames} frames at {info.samplerate} Hz")
        return meta
    except FileNotFoundError:
        return None
    except Exception as err:  # any damage means "separate again"
        log.warning("%s: damaged stem cache (%s); separating again", folder, err)
        return None


def _cached_blocks(folder: Path, meta: dict[str, Any], name: str) -> Iterator[np.ndarray]:
    """One cached stem as float32 [channels, n] blocks, at its true level."""
    _, _, blocks = audio_blocks(folder / f"{name}.flac", block_frames=CACHE_BLOCK_FRAMES)
    scale = np.float32(meta["scale"])
    for block in blocks:
        yield block * scale


def _read_cached(folder: Path) -> StemSet | None:
    """The stems in a cache folder, or None when it is missing, incomplete or damaged."""
    meta = _cached_meta(folder)
    if meta is None:
        return None
    try:
        stems = {s: np.concatenate(list(_cached_blocks(folder, meta, s)), axis=1)
                 for s in STEM_NAMES}
    except Exception as err:  # decoding errors too
        log.warning("%s: damaged stem cache (%s); separating again", folder, err)
        return None
    return StemSet(stems=stems, sr=int(meta["sr"]), source=meta["source"], key=meta["key"])


class _Louder(Exception):
    """A stem went above full scale: write again with this scale."""

    def __init__(self, scale: float):
        self.scale = scale


def _write_cached_blocks(folder: Path, blocks: Callable[[], Iterable[dict[str, np.ndarray]]],
                         sr: int, channels: int, source: str, key: str) -> None:
    """Write stems given as blocks ({stem: float32 [channels, n]}) as 24-bit FLAC plus
    meta.json into a temp folder, then rename it into place, so a folder under its final
    name is always complete. The stems are divided by one factor (levels stay relative),
    :data:`_HEADROOM`; a set that peaks above that is written again with a larger one
    (``blocks()`` is called again)."""
    scale = _HEADROOM
    while True:
        try:
            _write_scaled(folder, blocks(), sr, channels, source, key, scale)
            return
        except _Louder as louder:
            scale = louder.scale


def _write_scaled(folder: Path, blocks: Iterable[dict[str, np.ndarray]], sr: int,
                  channels: int, source: str, key: str, scale: float) -> None:
    peak = 0.0
    limit = 0.999 * scale * (1.0 + 1e-6)
    with atomic_dir(folder) as tmp, contextlib.ExitStack() as files:
        # FLAC level 0: a quarter faster to write than the default, 5 % larger
        out = {s: files.enter_context(AudioWriter(tmp / f"{s}.flac", sr, channels, "PCM_24",
                                                  compression_level=0.0))
               for s in STEM_NAMES}
        for block in blocks:
            for name in STEM_NAMES:
                y = block[name]
                if y.size:
                    peak = max(peak, float(np.max(np.abs(y))))
                if peak > limit:
                    continue  # finding the peak; written again at the right scale
                out[name].write(y / np.float32(scale))
        if peak > limit:
            raise _Louder(peak / 0.999)
        files.close()
        meta = {
            "version": SEPARATION_VERSION,
            "source": source,
            "key": key,
            "sr": int(sr),
            "frames": int(out["drums"].frames),
            "scale": scale,
            "files": {s: _sha256(tmp / f"{s}.flac") for s in STEM_NAMES},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def _write_cached(folder: Path, stem_set: StemSet) -> None:
    """Write a whole :class:`StemSet` into the cache (see :func:`_write_cached_blocks`)."""
    n = int(stem_set.stems["drums"].shape[1])

    def blocks():
        for a in range(0, max(n, 1), CACHE_BLOCK_FRAMES):
            yield {s: stem_set.stems[s][:, a : a + CACHE_BLOCK_FRAMES] for s in STEM_NAMES}

    _write_cached_blocks(folder, blocks, stem_set.sr, stem_set.stems["drums"].shape[0],
                         stem_set.source, stem_set.key)


def _separated_folder(
    track: Track,
    cache_root: str | Path | None,
    backend: str,
    weights: str | Path | None,
    audio: tuple[np.ndarray, int] | None,
) -> tuple[Path, dict[str, Any] | None, StemSet | None]:
    """(cache folder, its meta, None) once the track's separated stems are in the cache,
    separating them if needed; (folder, None, stems in memory) when they could not be
    written there."""
    root = Path(cache_root) if cache_root is not None else cache_dir() / "stems"
    sep_key = separation_key(backend, weights)
    audio_hash = file_sha256(track.audio_path, memo_dir=root / "hashes")
    digest = hashlib.sha256(f"{audio_hash}\x1f{sep_key}".encode()).hexdigest()[:16]
    folder = root / f"{track.id}-{digest}"
    key = f"{audio_hash[:16]}:{sep_key}"
    meta = _cached_meta(folder)
    if meta is not None and meta.get("key") == key:
        return folder, meta, None
    source = sep_key.split("-", 1)[0]
    try:
        if source == "dsp" and audio is None:
            sr, channels, _ = audio_blocks(track.audio_path)

            def stems_of_file():
                return separate_dsp_blocks(lambda: audio_blocks(track.audio_path)[2], sr)

            _write_cached_blocks(folder, stems_of_file, sr, channels, source, key)
        else:
            y, sr = audio if audio is not None else load_audio(track.audio_path)
            stems = separate(y, sr, backend=source, weights=weights)
            _write_cached(folder, StemSet(stems=stems, sr=sr, source=source, key=key))
    except OSError as err:
        log.warning("could not cache stems in %s: %s", folder, err)
        y, sr = audio if audio is not None else load_audio(track.audio_path)
        stems = separate(y, sr, backend=source, weights=weights)
        return folder, None, StemSet(stems=stems, sr=sr, source=source, key=key)
    return folder, _cached_meta(folder), None


@dataclass
class StemStreams:
    """A track's four stems as blocks read from their files: ``blocks(stem)`` gives float32
    [channels, n] blocks at ``sr`` Hz, as many samples as the mix; source and key as in
    :class:`StemSet`."""

    blocks: Callable[[str], Iterator[np.ndarray]]
    sr: int
    source: str
    key: str


def stem_streams(
    track: Track,
    *,
    cache_root: str | Path | None = None,
    backend: str = "auto",
    weights: str | Path | None = None,
) -> StemStreams:
    """The stems of ``track`` as :class:`StemStreams`: its bundled files (resampled to the
    mix's rate and fitted to its length a block at a time), else the separated ones from
    the cache (separated first when needed, see :func:`load_stems`)."""
    if track.stem_paths:
        paths = track.stem_paths

        def bundled(name: str) -> Iterator[np.ndarray]:
            sr, _, blocks = audio_blocks(paths[name])
            return fit_blocks(resample_blocks(blocks, sr, track.sample_rate), track.frames)

        keys = ",".join(f"{s}={file_sha256(paths[s])[:16]}" for s in STEM_NAMES)
        return StemStreams(bundled, track.sample_rate, "bundled", keys)
    folder, meta, in_memory = _separated_folder(track, cache_root, backend, weights, None)
    if meta is None:
        assert in_memory is not None
        return StemStreams(lambda s: iter([in_memory.stems[s]]), in_memory.sr,
                           in_memory.source, in_memory.key)
    return StemStreams(lambda s: _cached_blocks(folder, meta, s), int(meta["sr"]),
                       meta["source"], meta["key"])


def load_stems(
    track: Track,
    *,
    cache_root: str | Path | None = None,
    backend: str = "auto",
    weights: str | Path | None = None,
    audio: tuple[np.ndarray, int] | None = None,
) -> StemSet:
    """The stems of ``track``: its bundled files when the album has them, else separated
    with ``backend`` and cached under ``cache_root`` (default ``<cache>/stems``) as
    ``<track>-<hash>/``, the hash naming the audio's bytes and the separator.

    audio: the track's (samples, sr) when already loaded, to avoid reading it again.
    Separated stems come back from their 24-bit FLAC files in the cache (also when just
    separated), so they sum to the mix within 2e-7. DSP stems are separated from the file a
    block at a time; the returned set is whole (an hour of four stereo stems is 5 GB: the
    analysis uses :func:`stem_streams` instead).
    """
    if track.stem_paths:
        return _load_bundled(track)
    folder, _, in_memory = _separated_folder(track, cache_root, backend, weights, audio)
    if in_memory is not None:
        return in_memory
    stems = _read_cached(folder)
    if stems is None:
        raise StratumError(f"{folder}: the stems just written cannot be read back")
    return stems
