"""Audio features on a fixed hop, their disk cache, and album-wide normalisation.

Per track, :func:`compute_features` reduces the audio to series at ``sr / hop`` Hz
(22050 / 512 ≈ 43.07 Hz by default): RMS, spectral centroid, flatness, MFCC, onset
strength, chroma, harmonic/percussive energy, a tempo and a beat grid, and an envelope and
onset series per stem. Everything comes from ONE short-time Fourier transform of the mono
mix at 22.05 kHz and the mel spectrogram derived from it; the harmonic/percussive split is a
median filter on that mel spectrogram, not on a 44.1 kHz STFT (10x cheaper).

:func:`features_from_blocks` reads the mix and the stems a block at a time (an hour-long
track never sits in memory, nor does its spectrogram: only the per-frame series, the mel
bands being the largest at ~80 MB an hour), :data:`BLOCK_FRAMES` frames computed together;
what needs the whole track (the MFCC floor, tempo, beats) runs over those series.
:func:`compute_features` is the same on arrays; the series do not depend on the blocks
(:mod:`stratum_kernel.core.blockwise`).

:func:`frame_features` maps a track onto the video timeline (frame ``i`` at
``start + i / fps``) and scales level-like series against an :class:`AlbumReference`, so a
quiet ballad stays quieter than the loudest single. :class:`FeatureCache` keeps results in
``cache/features/<track>-<hash>.npz``, keyed by the audio's bytes and the parameters.

librosa (and numba under it) is imported inside the functions that need it, so
``import stratum_kernel`` stays fast; :func:`warm_numba_cache` compiles its kernels once into
the project's numba cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stratum_kernel.analysis.tempo import estimate_tempo, track_beats
from stratum_kernel.audio.channels import downmix
from stratum_kernel.audio.resampling import resample_blocks
from stratum_kernel.core.blockwise import (
    fit_blocks,
    matmul_rows,
    median_filter_rows,
    row_blocks,
    stft_blocks,
)
from stratum_kernel.core.dsp import fit_length, hann, median_filter_axis
from stratum_kernel.core.errors import AudioError
from stratum_kernel.core.paths import atomic_path
from stratum_kernel.core.timeline import STEM_NAMES

# Bump when the meaning of any stored series changes: it is part of every cache key.
# 2: computed block by block (products in aligned tiles; values differ in the last bits).
FEATURES_VERSION = 2
#: Analysis frames computed together (about 24 s at 22.05 kHz / hop 512); a multiple of
#: ROW_TILE. Memory per block, not per track; the series do not depend on it.
BLOCK_FRAMES = 1024
# Series that measure "how much": scaled by an album-wide reference level.
LEVEL_SERIES = ("rms", "onset", "harmonic", "percussive")
# Series that measure "what kind": mapped from an album-wide (lo, hi) range of their log.
RANGE_SERIES = ("centroid", "flatness")
#: Where a track's stems came from (``TrackFeatures.stem_source``).
STEM_ORIGINS = ("bundled", "dsp", "demucs", "none")
_EPS = 1e-10
_TINY = 1e-300
_ONSET_FLOOR = 1e-6


class FeatureParams(BaseModel):
    """How audio is reduced to feature series; part of every cache key via :meth:`digest`.

    sr: analysis rate in Hz (the mix is resampled to it); hop_length: samples between
    series values (so series run at ``sr / hop_length`` Hz); n_fft: STFT window in samples;
    n_mels: mel bands of the one spectrogram everything derives from; n_mfcc: cepstral
    coefficients; onset_compression: exponent applied to mel magnitudes before spectral
    flux (1/3 follows loudness perception and keeps onsets proportional to level);
    hpss_kernel: median-filter length (frames and mel bands) of the harmonic/percussive
    split; stem_n_fft / stem_n_mels: the cheaper spectrogram used for stem onsets;
    tightness: how strictly beats follow the tempo (librosa's beat tracker).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sr: int = Field(22050, ge=8000, le=192000)
    hop_length: int = Field(512, ge=32, le=16384)
    n_fft: int = Field(2048, ge=64, le=32768)
    n_mels: int = Field(128, ge=16, le=512)
    n_mfcc: int = Field(13, ge=1, le=64)
    onset_compression: float = Field(1.0 / 3.0, gt=0.0, le=1.0)
    hpss_kernel: int = Field(17, ge=3, le=101)
    stem_n_fft: int = Field(1024, ge=64, le=32768)
    stem_n_mels: int = Field(64, ge=8, le=512)
    tightness: float = Field(100.0, gt=0.0)

    @model_validator(mode="after")
    def _consistent(self) -> FeatureParams:
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} must not exceed n_fft {self.n_fft}")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc {self.n_mfcc} must not exceed n_mels {self.n_mels}")
        if self.hpss_kernel % 2 == 0:
            raise ValueError(f"hpss_kernel must be odd, got {self.hpss_kernel}")
        return self

    @property
    def rate(self) -> float:
        """Series rate in Hz: ``sr / hop_length``."""
        return self.sr / self.hop_length

    def digest(self) -> str:
        """16 hex digits naming these parameters and :data:`FEATURES_VERSION`; stable across
        processes and machines (canonical JSON, sorted keys)."""
        text = json.dumps(
            {"version": FEATURES_VERSION, **self.model_dump()}, sort_keys=True, default=float
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ track features


class FeatureCacheError(ValueError):
    """A feature file that is unreadable, incomplete or fails its checksum."""


@dataclass
class TrackFeatures:
    """One track's features at ``rate = sr / hop`` Hz; value k describes time ``k / rate``.

    duration: seconds of the source audio. series: 'rms', 'centroid' (Hz), 'flatness',
    'onset', 'harmonic', 'percussive': float32 [T]; 'mfcc': float32 [n_mfcc, T];
    'chroma': float32 [12, T] in [0, 1]. rms/harmonic/percussive are linear amplitudes
    (harmonic² + percussive² = rms²). tempo_estimate: bpm estimated from the audio (with the
    tracklist bpm as a prior); tempo: the bpm of the beat grid (tracklist bpm when given).
    beats: float64 [B] seconds. stems: {stem: {'envelope': [T], 'onset': [T]}} (float32;
    envelope is the stem's RMS); stem_source: 'bundled', 'dsp', 'demucs' or 'none'.
    """

    track_id: str
    duration: float
    sr: int
    hop: int
    series: dict[str, np.ndarray]
    tempo_estimate: float
    tempo: float
    beats: np.ndarray
    stems: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    stem_source: str = "none"
    params_digest: str = ""

    @property
    def rate(self) -> float:
        """Series rate in Hz."""
        return self.sr / self.hop

    @property
    def n_frames(self) -> int:
        """T, the length of every series."""
        return int(self.series["rms"].shape[-1])

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"series/{k}": np.ascontiguousarray(v) for k, v in self.series.items()}
        for stem, d in self.stems.items():
            arrays.update({f"stems/{stem}/{k}": np.ascontiguousarray(v) for k, v in d.items()})
        arrays["beats"] = np.asarray(self.beats, dtype=np.float64)
        return arrays

    def save(self, path: str | Path) -> Path:
        """Write an uncompressed ``.npz`` atomically (temp name, then rename), with a
        SHA-256 of every array so a damaged file is detected on :meth:`load`."""
        path = Path(path)
        arrays = self._arrays()
        meta = {
            "track_id": self.track_id,
            "duration": self.duration,
            "sr": self.sr,
            "hop": self.hop,
            "tempo_estimate": self.tempo_estimate,
            "tempo": self.tempo,
            "stem_source": self.stem_source,
            "params_digest": self.params_digest,
            "version": FEATURES_VERSION,
            "shapes": {k: list(v.shape) for k, v in arrays.items()},
            "checksum": _checksum(arrays),
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrackFeatures:
        """Read a file written by :meth:`save`; :class:`FeatureCacheError` when it is not
        a complete, intact feature file (never returns partial data)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(bytes(npz["meta"]).decode())
                arrays = {k: npz[k] for k in meta["shapes"]}
        except Exception as err:  # zip, json, key and decode errors all mean "damaged"
            raise FeatureCacheError(f"{path}: unreadable feature file ({err})") from None
        for key, shape in meta["shapes"].items():
            if list(arrays[key].shape) != shape:
                raise FeatureCacheError(f"{path}: {key} has shape {arrays[key].shape}")
        if meta.get("version") != FEATURES_VERSION or _checksum(arrays) != meta["checksum"]:
            raise FeatureCacheError(f"{path}: checksum or version mismatch")
        series = {k[7:]: v for k, v in arrays.items() if k.startswith("series/")}
        stems: dict[str, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            if key.startswith("stems/"):
                _, stem, name = key.split("/")
                stems.setdefault(stem, {})[name] = value
        missing = [k for k in (*LEVEL_SERIES, *RANGE_SERIES, "mfcc", "chroma") if k not in series]
        lengths = {v.shape[-1] for v in series.values()}
        lengths |= {v.shape[-1] for d in stems.values() for v in d.values()}
        if missing or len(lengths) != 1:
            raise FeatureCacheError(f"{path}: missing {missing} or unequal series lengths")
        return cls(
            track_id=meta["track_id"],
            duration=float(meta["duration"]),
            sr=int(meta["sr"]),
            hop=int(meta["hop"]),
            series=series,
            tempo_estimate=float(meta["tempo_estimate"]),
            tempo=float(meta["tempo"]),
            beats=arrays["beats"],
            stems=stems,
            stem_source=meta["stem_source"],
            params_digest=meta["params_digest"],
        )


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(str(arrays[key].dtype).encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ computing


def _to_mono(y: np.ndarray, what: str) -> np.ndarray:
    """float32 [samples]: the channel average of [channels, samples] (or [samples])."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2 and y.shape[0] > 2:  # surround: the stereo downmix the film plays
        y = downmix(y, 2)
    if y.ndim == 2:
        y = y[0] if y.shape[0] == 1 else np.add.reduce(y, axis=0) * np.float32(1 / y.shape[0])
    if y.ndim != 1:
        raise ValueError(f"{what}: audio must be [channels, samples] or [samples], got {y.shape}")
    if not np.isfinite(y).all():
        raise AudioError(f"{what}: audio contains NaN or infinite samples; re-export the file")
    return y


def _mono_blocks(blocks: Iterable[np.ndarray], sr: int, target: int, what: str, count: list):
    """The mono mix of a stream of [channels, n] blocks at ``sr``, resampled to ``target``
    Hz; ``count`` receives [samples in, samples out] when the stream ends."""
    def mono():
        for block in blocks:
            count[0] += block.shape[-1]
            yield _to_mono(block, what)[None, :]

    for out in resample_blocks(mono(), int(sr), int(target)):
        count[1] += out.shape[-1]
        yield out[0]


def _window_rms(power: np.ndarray, n_fft: int) -> np.ndarray:
    """float32 [..., T]: Hann²-weighted RMS of each frame from its one-sided power
    spectrum [..., T, F] (Parseval), so a steady sine of amplitude A reads A/√2."""
    total = 2.0 * power.sum(axis=-1) - power[..., 0] - power[..., -1]
    return np.sqrt(np.maximum(total, 0.0) / (n_fft * n_fft * 0.375)).astype(np.float32)


def _flux(mel: np.ndarray, params: FeatureParams) -> np.ndarray:
    """float32 [T-1]: mean positive difference between consecutive frames of power-law
    compressed mel magnitudes (``mel``: power [T, bands])."""
    # The floor (about -100 dB re a full-scale tone) keeps FFT rounding noise, which
    # compression would magnify, out of the flux.
    comp = np.maximum(mel, np.float32(_ONSET_FLOOR)) ** np.float32(params.onset_compression / 2.0)
    return np.maximum(np.diff(comp, axis=0), 0.0).mean(axis=-1)


def _onset_from_flux(flux: np.ndarray, n: int, params: FeatureParams, n_fft: int) -> np.ndarray:
    """float32 [n]: the onset series from the flux between frames [n - 1].

    Flux is proportional to level**compression, so a quieter track has weaker onsets. A
    Hann-windowed frame starts to see a transient about ``n_fft / 4`` samples before its
    centre, so the flux is delayed by ``n_fft // (4 * hop)`` frames to put the peak on the
    frame nearest the transient (checked with clicks on and between hops).
    """
    delay = 1 + n_fft // (4 * params.hop_length)
    out = np.zeros(n, dtype=np.float32)
    out[delay:] = flux[: max(0, n - delay)]
    return out


def _onset_from_mel(mel: np.ndarray, params: FeatureParams, n_fft: int) -> np.ndarray:
    """float32 [T]: onset strength from mel power [T, bands] (see :func:`_onset_from_flux`),
    computed :data:`BLOCK_FRAMES` frames at a time."""
    n = mel.shape[0]
    flux = [_flux(mel[a : min(n, b + 1)], params)
            for a, b in row_blocks(max(n - 1, 0), BLOCK_FRAMES)]
    flux_all = np.concatenate(flux) if flux else np.zeros(0, np.float32)
    return _onset_from_flux(flux_all, n, params, n_fft)


def _harmonic_fraction(mel: np.ndarray, kernel: int) -> np.ndarray:
    """float32 [T] in [0, 1]: the harmonic share of each frame's power, from soft HPSS
    masks on ``mel`` [T, bands] with adjacent bands pooled in pairs (half the cost; the
    split only feeds two energy curves): median along time (``kernel`` frames) finds
    sustained tones, median along frequency (``kernel // 2`` bands) transients. Computed
    :data:`BLOCK_FRAMES` frames at a time, each reading its neighbours."""
    pooled = mel[:, 0::2] + mel[:, 1::2] if mel.shape[1] % 2 == 0 else mel
    out = np.empty(mel.shape[0], dtype=np.float32)
    for a, b in row_blocks(mel.shape[0], BLOCK_FRAMES):
        part = pooled[a:b]
        # float64 and a tiny floor keep the split independent of level (quiet stays quiet)
        harm = median_filter_rows(pooled, kernel, a, b).astype(np.float64)
        perc = median_filter_axis(part, (kernel // 2) | 1, axis=1).astype(np.float64)
        denom = harm**2 + perc**2
        mask = np.divide(harm**2, denom, out=np.full_like(denom, 0.5), where=denom > _TINY)
        total = part.sum(axis=1, dtype=np.float64)
        frac = np.divide(
            (part * mask).sum(axis=1), total, out=np.full_like(total, 0.5), where=total > _TINY
        )
        out[a:b] = frac
    return out


def _tempo_and_beats(
    onset: np.ndarray, params: FeatureParams, bpm_prior: float | None
) -> tuple[float, float, np.ndarray]:
    """(tempo_estimate, tempo used, beats in seconds float64 [B])."""
    start_bpm = float(bpm_prior) if bpm_prior else 120.0
    if len(onset) < 8 or not np.any(onset > 0):
        return start_bpm, start_bpm, np.zeros(0, dtype=np.float64)
    estimate = estimate_tempo(onset, params.rate, start_bpm=start_bpm)
    tempo = float(bpm_prior) if bpm_prior else estimate
    frames = track_beats(onset, params.rate, tempo, tightness=params.tightness)
    return estimate, tempo, frames.astype(np.float64) / params.rate


def _db(mel: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(mel, 1e-10))


def _mfcc(mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """float32 [n_mfcc, T] from mel power [T, bands]: DCT-II (orthonormal) of dB values
    floored 80 dB below the track's peak, as ``librosa.feature.mfcc(S=power_to_db(mel))``;
    :data:`BLOCK_FRAMES` frames at a time (the peak first, over all of them)."""
    import scipy.fft

    blocks = list(row_blocks(mel.shape[0], BLOCK_FRAMES))
    peak = max(float(_db(mel[a:b]).max()) for a, b in blocks)
    out = np.empty((n_mfcc, mel.shape[0]), dtype=np.float32)
    for a, b in blocks:
        db = np.maximum(_db(mel[a:b]), peak - 80.0)
        out[:, a:b] = scipy.fft.dct(db, type=2, axis=1, norm="ortho")[:, :n_mfcc].T
    return out


def _spectra(samples: Iterable[np.ndarray], n_fft: int, hop: int):
    """(first frame, power [g, F], magnitude [g, F]) of a mono stream's STFT (periodic
    Hann, frames centred on multiples of ``hop``), :data:`BLOCK_FRAMES` at a time."""
    for first, spec in stft_blocks(samples, n_fft, hop, hann(n_fft), BLOCK_FRAMES):
        mag = np.abs(spec)
        yield first, mag * mag, mag


def _stem_series(
    blocks: Iterable[np.ndarray], sr: int, length: int, params: FeatureParams, what: str
) -> dict[str, np.ndarray]:
    """'envelope' (RMS) and 'onset' float32 [T] of one stem's stream at ``sr``, on the
    mix's frames: mono, resampled, cut or zero-padded to the mix's ``length`` samples."""
    import librosa

    fb_t = librosa.filters.mel(sr=params.sr, n_fft=params.stem_n_fft,
                               n_mels=params.stem_n_mels).T
    samples = fit_blocks(_mono_blocks(blocks, sr, params.sr, what, [0, 0]), length)
    env, flux, last = [], [], None
    for _, power, _ in _spectra(samples, params.stem_n_fft, params.hop_length):
        mel = matmul_rows(power, fb_t)
        env.append(_window_rms(power, params.stem_n_fft))
        flux.append(_flux(mel if last is None else np.concatenate([last, mel]), params))
        last = mel[-1:]
    envelope = np.concatenate(env)
    onset = _onset_from_flux(np.concatenate(flux), len(envelope), params, params.stem_n_fft)
    return {"envelope": envelope, "onset": onset}


def features_from_blocks(
    blocks: Iterable[np.ndarray],
    sr: int,
    *,
    params: FeatureParams | None = None,
    bpm_prior: float | None = None,
    stems: dict[str, Iterable[np.ndarray]] | None = None,
    stems_sr: int | None = None,
    stem_source: str | None = None,
    track_id: str = "",
) -> TrackFeatures:
    """Features of one track read a block at a time (see :func:`compute_features`).

    ``blocks``: the mix as float32 [channels, n] blocks of any sizes at ``sr`` Hz;
    ``stems``: {stem: its blocks at ``stems_sr``}, each as long as the mix (cut or padded
    to it), read after the mix. Memory holds a block and the series: per analysis frame
    the 128 mel bands and a few numbers (about 80 MB for an hour), never the signal or its
    spectrogram. The result does not depend on the block sizes.
    """
    import librosa

    params = params or FeatureParams()
    what = f"track {track_id!r}" if track_id else "audio"
    source = (stem_source or "bundled") if stems else "none"
    if source not in STEM_ORIGINS:
        raise ValueError(f"stem_source must be one of {STEM_ORIGINS}, got {source!r}")
    fb_t = librosa.filters.mel(sr=params.sr, n_fft=params.n_fft, n_mels=params.n_mels).T
    chroma_t = librosa.filters.chroma(sr=params.sr, n_fft=params.n_fft, tuning=0.0).T
    freqs = np.linspace(0.0, params.sr / 2.0, fb_t.shape[0], dtype=np.float32)[:, None]
    count = [0, 0]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("mel", "chroma", "centroid", "rms")}
    for _, power, mag in _spectra(_mono_blocks(blocks, sr, params.sr, what, count),
                                  params.n_fft, params.hop_length):
        mag_sum = mag.sum(axis=1)
        parts["centroid"].append(np.divide(matmul_rows(mag, freqs)[:, 0], mag_sum,
                                           out=np.zeros_like(mag_sum),
                                           where=mag_sum > np.float32(1e-30)))
        parts["mel"].append(matmul_rows(power, fb_t))
        chroma = matmul_rows(power, chroma_t)
        parts["chroma"].append(chroma / np.maximum(chroma.max(axis=1, keepdims=True),
                                                   np.float32(1e-30)))
        parts["rms"].append(_window_rms(power, params.n_fft))
    if count[0] == 0:
        raise AudioError(f"{what}: contains no audio (0 samples)")
    mel = np.concatenate(parts.pop("mel"))  # [T, n_mels]
    series = {k: np.concatenate(v) for k, v in parts.items()}
    # Flatness on the (Slaney-normalised) mel bands: white noise is flat there too, and
    # 128 bands cost a sixteenth of the 1025 FFT bins.
    flatness = np.empty(mel.shape[0], dtype=np.float32)
    for a, b in row_blocks(mel.shape[0], BLOCK_FRAMES):
        floor = np.maximum(mel[a:b], _EPS)
        flat = np.exp(np.log(floor).mean(axis=1)) / floor.mean(axis=1)
        flatness[a:b] = np.where(mel[a:b].mean(axis=1) > _EPS * 10, flat, 0.0)
    onset = _onset_from_mel(mel, params, params.n_fft)
    rms = series["rms"]
    harm_frac = _harmonic_fraction(mel, params.hpss_kernel)
    estimate, tempo, beats = _tempo_and_beats(onset, params, bpm_prior)
    series = {
        "rms": rms,
        "centroid": series["centroid"].astype(np.float32),
        "flatness": flatness,
        "onset": onset,
        "harmonic": (rms * np.sqrt(harm_frac)).astype(np.float32),
        "percussive": (rms * np.sqrt(1.0 - harm_frac)).astype(np.float32),
        "mfcc": _mfcc(mel, params.n_mfcc),
        "chroma": np.ascontiguousarray(series["chroma"].T, dtype=np.float32),
    }
    del mel
    stems = stems or {}
    names = [s for s in STEM_NAMES if s in stems] + sorted(set(stems) - set(STEM_NAMES))
    stem_series = {s: _stem_series(stems[s], stems_sr or sr, count[1], params, f"stem {s!r}")
                   for s in names}
    return TrackFeatures(
        track_id=track_id,
        duration=count[0] / float(sr),
        sr=params.sr,
        hop=params.hop_length,
        series=series,
        tempo_estimate=estimate,
        tempo=tempo,
        beats=beats,
        stems=stem_series,
        stem_source=source,
        params_digest=params.digest(),
    )


def compute_features(
    y: np.ndarray,
    sr: int,
    *,
    params: FeatureParams | None = None,
    bpm_prior: float | None = None,
    stems: dict[str, np.ndarray] | None = None,
    stems_sr: int | None = None,
    stem_source: str | None = None,
    track_id: str = "",
) -> TrackFeatures:
    """Features of one track.

    Parameters
    ----------
    y : float32 [channels, samples] or [samples]
        The mix at ``sr`` Hz; channels are averaged.
    sr : int
        Sample rate of ``y`` in Hz.
    params : FeatureParams, optional
        Analysis settings (defaults: 22.05 kHz, hop 512, 2048-point STFT, 128 mel bands).
    bpm_prior : float, optional
        Tracklist tempo: centre of the tempo prior and the tempo of the beat grid.
    stems : {stem: float32 [channels, samples]}, optional
        Stems at ``stems_sr`` (default ``sr``); each gets 'envelope' and 'onset' series.
        Stems a few ms shorter or longer than the others (as DAWs export them) line up at 0.
    stem_source : str, optional
        Where the stems came from ('bundled', 'dsp', 'demucs'); 'none' without stems.
    track_id : str
        Names the track in errors and in the result.

    Returns
    -------
    TrackFeatures
        Series of length ``T = 1 + samples_at_analysis_rate // hop``; the same values as
        :func:`features_from_blocks` on the same audio cut into blocks.
    """
    y = np.asarray(y, dtype=np.float32)
    blocks = [y if y.ndim == 2 else y[None, :]] if y.ndim in (1, 2) else [y]
    if y.shape[-1] == 0:
        raise AudioError(f"{f'track {track_id!r}' if track_id else 'audio'}: contains no audio "
                         "(0 samples)")
    stem_blocks = None
    if stems:
        longest = max(np.asarray(a).shape[-1] for a in stems.values())
        stem_blocks = {s: [np.atleast_2d(fit_length(np.asarray(a, np.float32), longest))]
                       for s, a in stems.items()}
    return features_from_blocks(blocks, sr, params=params, bpm_prior=bpm_prior,
                                stems=stem_blocks, stems_sr=stems_sr, stem_source=stem_source,
                                track_id=track_id)


def warm_numba_cache() -> None:
    """Run the numba-compiled librosa paths stratum uses, on two seconds of audio.

    ``import stratum_kernel`` points ``NUMBA_CACHE_DIR`` at ``<root>/cache/numba``; running
    the kernels here writes their compiled code there, so later processes load it instead
    of compiling (about 47 s against 6 s on a 2-core machine). Covers the analysis (which
    needs only librosa's filter banks) and the spectral views (mel spectrogram, chroma with
    tuning estimation, soxr resampling), plus onset strength. librosa.beat is not used:
    its kernels are compiled without caching, in every process. Called by
    ``stratum warmup`` during set-up.
    """
    import librosa

    sr = 22050
    t = np.arange(sr * 2, dtype=np.float64) / sr
    y = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    y[:: sr // 2] += 1.0
    compute_features(y, sr, bpm_prior=120.0, stems={s: y[None, :] for s in STEM_NAMES})
    librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128)
    librosa.feature.chroma_stft(y=y, sr=sr, n_fft=2048, hop_length=512)
    librosa.util.localmax(librosa.onset.onset_strength(y=y, sr=sr))
    librosa.resample(y, orig_sr=sr, target_sr=16000, res_type="soxr_hq")
