"""Spectrogram and chromagram views with section markers and the beat grid.

``compute_spectral(y, sr, kind='mel'|'chroma')`` computes the data with librosa (imported
lazily): a mel power spectrogram in dB, or a 12-bin chromagram (STFT-based, a light
stand-in for a CQT chromagram) in [0, 1]. ``render_spectral`` maps it to pixels: columns
take the maximum over the frames they cover, rows the nearest bin (low bins at the
bottom), a colour map, then the beat grid (every ``beats_per_bar``-th beat solid, the
others faint), section markers and the playhead on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stratum_kernel.viz.params import SpectralParams
from stratum_kernel.viz.raster import (
    blend_percent,
    colormap_lut,
    lut_u32,
    parse_hex,
    rgba_to_rgb,
    rgba_u32,
    series_columns,
    time_to_column,
)
from stratum_kernel.viz.view_kind import StripSource, ViewKind, rgba


@dataclass(frozen=True)
class SpectralData:
    """kind: 'mel' or 'chroma'; values: float32 [bins, frames] (mel: power in dB, chroma:
    [0, 1]); bin 0 is the lowest band (C for chroma); frame k is centred at
    ``k / frame_rate`` seconds; duration: seconds; max_db: the loudest mel value (dB)."""

    kind: str
    values: np.ndarray
    frame_rate: float
    duration: float

    @cached_property
    def max_db(self) -> float:
        finite = self.values[np.isfinite(self.values)]
        return float(finite.max()) if finite.size else 0.0


def compute_spectral(y: np.ndarray, sr: int, *, kind: str = "mel", analysis_sr: int = 22050,
                     n_fft: int = 2048, hop: int = 512, n_mels: int = 128) -> SpectralData:
    """Mel spectrogram (dB) or chromagram of ``y`` ([channels, samples] or [samples])."""
    if kind not in ("mel", "chroma"):
        raise ValueError(f"spectral kind must be 'mel' or 'chroma', got {kind!r}")
    import librosa

    x = np.asarray(y, dtype=np.float32)
    mono = x.mean(axis=0) if x.ndim == 2 else x
    duration = len(mono) / float(sr)
    if sr != analysis_sr:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=analysis_sr, res_type="soxr_hq")
    if kind == "mel":
        power = librosa.feature.melspectrogram(y=mono, sr=analysis_sr, n_fft=n_fft,
                                               hop_length=hop, n_mels=n_mels)
        values = 10.0 * np.log10(np.maximum(power, 1e-10))
    else:
        values = librosa.feature.chroma_stft(y=mono, sr=analysis_sr, n_fft=n_fft,
                                             hop_length=hop)
    return SpectralData(kind, values.astype(np.float32), analysis_sr / hop, duration)


def spectral_from_features(features) -> SpectralData:
    """The chromagram already on the video timeline in a
    :class:`~stratum_kernel.core.timeline.FrameFeatures` (``values['chroma']`` [12, n_frames]),
    as a :class:`SpectralData` whose time 0 is the features' first frame."""
    chroma = features.values.get("chroma")
    if chroma is None:
        raise ValueError("these frame features hold no 'chroma' series")
    return SpectralData("chroma", np.asarray(chroma, dtype=np.float32), float(features.fps),
                        features.n_frames / float(features.fps))


class SpectralSource:
    """Computes a track's spectral data once per kind, on demand (for views whose panel
    can switch between mel and chroma)."""

    def __init__(self, y: np.ndarray, sr: int, **kwargs):
        self.y, self.sr, self.kwargs = y, sr, kwargs
        self._cache: dict[str, SpectralData] = {}

    def data(self, kind: str) -> SpectralData:
        if kind not in self._cache:
            self._cache[kind] = compute_spectral(self.y, self.sr, kind=kind, **self.kwargs)
        return self._cache[kind]


def album_max_db(data: Sequence[SpectralData]) -> float:
    """The loudest mel value over an album (dB), for album-relative colour scaling."""
    return max((d.max_db for d in data if d.kind == "mel"), default=0.0)


def _columns(times: Sequence[float], t0: float, t1: float, width: int) -> np.ndarray:
    """int64 [N]: ``floor((t - t0) / (t1 - t0) * width)`` per time, -1 outside the view."""
    t = np.asarray(times, dtype=np.float64)
    x = np.floor((t - t0) / (t1 - t0) * width).astype(np.int64)
    return np.where((x >= 0) & (x < width), x, -1)


def render_spectral(data: SpectralData, params: SpectralParams | None = None, *, width: int,
                    height: int, t0: float = 0.0, t1: float | None = None,
                    playhead: float | None = None, markers: Sequence[float] = (),
                    beats: Sequence[float] = (), album_max: float | None = None
                    ) -> np.ndarray:
    """uint8 [height, width, 3]: the spectrogram/chromagram over ``[t0, t1)`` seconds.

    Mel colours span ``top_db`` below the track's loudest value, or below ``album_max``
    (see :func:`album_max_db`) when ``params.album_relative`` is set. ``markers`` and
    ``beats`` are times in seconds.
    """
    params = params or SpectralParams()
    if width < 1 or height < 1:
        raise ValueError(f"spectral view needs width, height >= 1, got {width}x{height}")
    end = data.duration if t1 is None else t1
    if end <= t0:
        raise ValueError(f"time range must have t1 > t0, got {t0}..{end}")
    cols = series_columns(data.values, 0.0, 1.0 / data.frame_rate, width, t0, end,
                          extent=(0.0, data.duration))  # [bins, W]
    n_bins = data.values.shape[0]
    # row y (0 at the top) shows the bin under its centre, low bins at the bottom
    centres = (height - 1 - np.arange(height) + 0.5) * n_bins / height
    rows = np.clip(np.floor(centres).astype(np.int64), 0, n_bins - 1)
    if data.kind == "mel":
        top = album_max if params.album_relative and album_max is not None else data.max_db
        scaled = (cols - (top - params.top_db)) / params.top_db
    else:
        scaled = cols
    # colour indices per (bin, column) first, then rows pick bins: the big arrays stay uint8
    index = np.clip(np.nan_to_num(scaled, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # every overlay is a full-height vertical line, so draw them at bin resolution and
    # expand rows last; pixels are RGBA uint32 so gathers move 4 bytes at a time
    img32 = np.ascontiguousarray(lut_u32(colormap_lut(params.colormap))[index])  # [bins, W]
    img32[:, np.isnan(cols[0])] = rgba_u32((0, 0, 0))  # outside the track
    img = img32.view(np.uint8).reshape(n_bins, width, 4)
    if params.show_beats and len(beats):
        xs = _columns(beats, t0, end, width)
        solid = (np.arange(len(xs)) % params.beats_per_bar) == 0
        color = np.asarray(parse_hex(params.beat), dtype=np.uint8)
        faint = np.unique(xs[~solid & (xs >= 0)])
        img[:, faint, :3] = blend_percent(color, img[:, faint, :3], params.beat_opacity)
        img32[:, np.unique(xs[solid & (xs >= 0)])] = rgba_u32(parse_hex(params.beat))
    if params.show_markers and len(markers):
        xs = _columns(markers, t0, end, width)
        img32[:, xs[xs >= 0]] = rgba_u32(parse_hex(params.marker))
    x = None if playhead is None else time_to_column(playhead, t0, end, width)
    if x is not None:
        img32[:, x] = rgba_u32(parse_hex(params.playhead))
    img = rgba_to_rgb(img32[rows].view(np.uint8).reshape(height, width, 4))
    return img


# ------------------------------------------------------------------------- the view type


def _show(data, track_id: str, params: SpectralParams, *, album_reference=None,
          **common) -> np.ndarray:
    return render_spectral(data.spectral(track_id, params.kind), params,
                           album_max=album_reference, markers=data.markers(track_id),
                           beats=data.beats(track_id), **common)


def _album_reference(data, params: SpectralParams, width: int) -> float:
    return album_max_db([data.spectral(t, params.kind) for t in data.track_ids])


def _strip(params: SpectralParams, width: int, height: int, length: float,
           src: StripSource) -> np.ndarray:
    if src.audio is None and src.features is not None:
        if params.kind != "chroma":
            src.mix("spectral (mel)")  # raises: a mel strip needs the audio
        spectral = spectral_from_features(src.features)
        return rgba(render_spectral(spectral, params, width=width, height=height, t0=0.0,
                                    t1=length, markers=src.markers, beats=src.beats))
    y, sr = src.mix("spectral")
    return rgba(render_spectral(compute_spectral(y, sr, kind=params.kind), params, width=width,
                                height=height, t0=0.0, t1=length, markers=src.markers,
                                beats=src.beats, album_max=src.album_reference))


KIND = ViewKind("spectral", SpectralParams, show=_show, strip=_strip,
                album_reference=_album_reference)
