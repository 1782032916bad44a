"""The dynamics heatstrip: short-term loudness and crest factor over time, as colour.

Short-term loudness (BS.1770, 3 s windows every 100 ms) comes from
:mod:`stratum_kernel.audio.loudness`; the crest factor is computed here over the same windows:
``20 log10(peak / rms)`` of the (channel-combined) signal, in dB — high for punchy,
transient material, low for dense, limited material. The strip shows loudness in the top
band and crest in the bottom band (or one of them, full height), each through a colour map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stratum_kernel.audio.loudness import loudness_summary
from stratum_kernel.viz.params import DynamicsParams
from stratum_kernel.viz.raster import (
    apply_lut,
    colormap_lut,
    hline,
    parse_hex,
    series_columns,
    time_to_column,
    vline,
)
from stratum_kernel.viz.view_kind import StripSource, ViewKind, rgba

WINDOW_S = 3.0
HOP_S = 0.1


@dataclass(frozen=True)
class DynamicsSeries:
    """loudness: float32 [B] short-term LUFS (-inf in silence); crest: float32 [B] dB (NaN
    in silence); window k starts at ``k * hop`` s and is centred ``window / 2`` later;
    duration: seconds."""

    loudness: np.ndarray
    crest: np.ndarray
    hop: float
    window: float
    duration: float

    @property
    def first_time(self) -> float:
        return min(self.window, self.duration) / 2.0

    def finite_range(self, which: str) -> tuple[float, float] | None:
        values = self.loudness if which == "loudness" else self.crest
        finite = values[np.isfinite(values)]
        return (float(finite.min()), float(finite.max())) if finite.size else None


def crest_factor_db(y: np.ndarray, sr: float, *, window_s: float = WINDOW_S,
                    hop_s: float = HOP_S) -> np.ndarray:
    """float32 [B]: crest factor in dB of windows ``window_s`` long every ``hop_s`` seconds.

    Peak is the largest |sample| over channels; RMS is over samples and channels. Block
    ``k`` covers ``[k * hop, k * hop + window)`` (one block over everything when the signal
    is shorter than a window), like the loudness series. Silent windows are NaN.
    """
    x = np.asarray(y, dtype=np.float32)
    x = x[None, :] if x.ndim == 1 else x
    n = x.shape[1]
    hop = max(1, round(hop_s * sr))
    n_seg = max(1, -(-n // hop))
    padded = np.pad(x, ((0, 0), (0, n_seg * hop - n)))
    seg = padded.reshape(x.shape[0], n_seg, hop)
    seg_peak = np.abs(seg).max(axis=(0, 2)).astype(np.float64)
    seg_energy = np.square(seg, dtype=np.float64).mean(axis=0).sum(axis=1)
    per_window = max(1, round(window_s / hop_s))
    if n_seg <= per_window:
        peaks = seg_peak.max(keepdims=True)
        energy = seg_energy.sum(keepdims=True)
        counts = np.array([float(n)])
    else:
        from numpy.lib.stride_tricks import sliding_window_view

        peaks = sliding_window_view(seg_peak, per_window).max(axis=1)
        csum = np.concatenate([[0.0], np.cumsum(seg_energy)])
        energy = csum[per_window:] - csum[:-per_window]
        counts = np.full(len(energy), float(per_window * hop))
        counts[-1] = n - (len(energy) - 1) * hop  # the last window may run past the end
    rms = np.sqrt(energy / np.maximum(counts, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        crest = 20.0 * np.log10(peaks / rms)
    crest[~np.isfinite(crest) | (peaks <= 0)] = np.nan
    return crest.astype(np.float32)


def compute_dynamics(y: np.ndarray, sr: float, summary=None) -> DynamicsSeries:
    """Short-term loudness and crest factor of ``y`` ([channels, samples]) at ``sr`` Hz.

    ``summary``: a :class:`~stratum_kernel.audio.loudness.LoudnessSummary` already computed for
    this signal (saves recomputing the loudness).
    """
    if summary is None:
        summary = loudness_summary(y, sr)
    loud = np.asarray(summary.short_term, dtype=np.float32)
    crest = crest_factor_db(y, sr, window_s=WINDOW_S, hop_s=summary.hop)
    n = min(len(loud), len(crest))
    return DynamicsSeries(loud[:n], crest[:n], float(summary.hop), WINDOW_S,
                          float(summary.duration))


def album_dynamics_ranges(series: Sequence[DynamicsSeries]) -> dict[str, tuple[float, float]]:
    """{'loudness': (lo, hi), 'crest': (lo, hi)}: the album's finite extremes."""
    out = {}
    for which in ("loudness", "crest"):
        ranges = [r for s in series if (r := s.finite_range(which)) is not None]
        if ranges:
            lo = min(r[0] for r in ranges)
            hi = max(r[1] for r in ranges)
            out[which] = (lo, hi if hi > lo else lo + 1.0)
    return out


def _band_row(values: np.ndarray, lo: float, hi: float, lut: np.ndarray) -> np.ndarray:
    """uint8 [W, 3]: one band's colours; NaN (outside the track) is black."""
    scaled = (values - lo) / (hi - lo)
    rgb = apply_lut(np.clip(np.nan_to_num(scaled, nan=0.0, neginf=0.0), 0.0, 1.0), lut)
    rgb[np.isnan(values)] = 0
    return rgb


def render_dynamics(series: DynamicsSeries, params: DynamicsParams | None = None, *,
                    width: int, height: int, t0: float = 0.0, t1: float | None = None,
                    playhead: float | None = None,
                    album_ranges: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """uint8 [height, width, 3]: the heatstrip over ``[t0, t1)`` seconds.

    Colour 0..1 spans ``params.loudness_floor..loudness_ceiling`` (LUFS) and
    ``crest_floor..crest_ceiling`` (dB); with ``params.album_relative`` and
    ``album_ranges`` (see :func:`album_dynamics_ranges`) it spans the album's extremes.
    Silence takes colour 0; time outside the track stays black.
    """
    params = params or DynamicsParams()
    if width < 1 or height < 1:
        raise ValueError(f"dynamics view needs width, height >= 1, got {width}x{height}")
    end = series.duration if t1 is None else t1
    if end <= t0:
        raise ValueError(f"time range must have t1 > t0, got {t0}..{end}")
    ranges = {"loudness": (params.loudness_floor, params.loudness_ceiling),
              "crest": (params.crest_floor, params.crest_ceiling)}
    if params.album_relative and album_ranges:
        ranges.update(album_ranges)
    lut = colormap_lut(params.colormap)
    bands = ["loudness", "crest"] if params.layout == "stacked" else [params.layout]
    heights = [height // 2, height - height // 2] if len(bands) == 2 else [height]
    rows = []
    for which in bands:
        values = series.loudness if which == "loudness" else series.crest
        cols = series_columns(values, series.first_time, series.hop, width, t0, end,
                              extent=(0.0, series.duration))
        lo, hi = ranges[which]
        rows.append(_band_row(cols, lo, hi, lut))
    # every band is one row repeated: np.repeat copies whole lines (fast), unlike broadcasting
    img = np.repeat(np.stack(rows), heights, axis=0)
    if len(bands) == 2 and height >= 4:
        hline(img, heights[0], parse_hex(params.separator))
    x = None if playhead is None else time_to_column(playhead, t0, end, width)
    if x is not None:
        vline(img, x, parse_hex(params.playhead))
    return img


def dynamics_legend(params: DynamicsParams) -> str:
    """One line saying what the colours mean, for captions."""
    parts = []
    if params.layout in ("stacked", "loudness"):
        parts.append(f"loudness {params.loudness_floor:g}..{params.loudness_ceiling:g} LUFS")
    if params.layout in ("stacked", "crest"):
        parts.append(f"crest {params.crest_floor:g}..{params.crest_ceiling:g} dB")
    suffix = " (album range)" if params.album_relative else ""
    return f"{params.colormap}: " + " | ".join(parts) + suffix


# ------------------------------------------------------------------------- the view type


def _show(data, track_id: str, params: DynamicsParams, *, album_reference=None,
          **common) -> np.ndarray:
    return render_dynamics(data.dynamics(track_id), params, album_ranges=album_reference,
                           **common)


def _album_reference(data, params: DynamicsParams, width: int):
    return album_dynamics_ranges([data.dynamics(t) for t in data.track_ids])


def _strip(params: DynamicsParams, width: int, height: int, length: float,
           src: StripSource) -> np.ndarray:
    y, sr = src.mix("dynamics")
    return rgba(render_dynamics(compute_dynamics(y, sr), params, width=width, height=height,
                                t0=0.0, t1=length, album_ranges=src.album_reference))


KIND = ViewKind("dynamics", DynamicsParams, show=_show, strip=_strip,
                album_reference=_album_reference)
