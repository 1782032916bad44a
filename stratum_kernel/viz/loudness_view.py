"""The loudness view: BS.1770 momentary and short-term curves, integrated and target lines.

Data comes from :mod:`stratum_kernel.audio.loudness` (``loudness_summary``); this module only
draws. The plot is pure numpy (no matplotlib): whole-pixel curves, grid lines every few LU
with labels in a 3x5 bitmap font, the integrated loudness as a solid line, the target as a
dashed line, a playhead, and the numbers (integrated, LRA, true peak) in the corner.
``loudness_numbers`` gives the same figures as a dict for widgets and reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from stratum_kernel.audio.loudness import loudness_summary
from stratum_kernel.viz.params import LoudnessParams
from stratum_kernel.viz.raster import (
    draw_text,
    hline,
    new_image,
    parse_hex,
    polyline_columns,
    rgba_to_rgb,
    series_columns,
    text_size,
    time_to_column,
    vline,
)
from stratum_kernel.viz.view_kind import StripSource, ViewKind, rgba


def compute_loudness(y: np.ndarray, sr: float):
    """The track's :class:`~stratum_kernel.audio.loudness.LoudnessSummary` (series and numbers)."""
    return loudness_summary(y, sr)


def loudness_numbers(summary) -> dict[str, Any]:
    """Integrated (LUFS), LRA (LU), true peak (dBTP), maxima; None where silent."""
    return summary.to_dict()


def album_loudness_ceiling(summaries: Sequence) -> float:
    """The loudest momentary value over an album (LUFS), for album-relative plots."""
    values = [s.momentary_max for s in summaries if math.isfinite(s.momentary_max)]
    return max(values) if values else 0.0


def _grid_step(span: float, height: int) -> float:
    """LU between grid lines: lines at least 18 px apart and at most 16 of them."""
    for step in (1.0, 2.0, 3.0, 6.0, 10.0, 20.0):
        if height / (span / step) >= 18 and span / step <= 16:
            return step
    return 30.0


def _fmt(value: float, unit: str) -> str:
    return f"{value:.1f} {unit}" if math.isfinite(value) else f"-INF {unit}"


def render_loudness(summary, params: LoudnessParams | None = None, *, width: int, height: int,
                    t0: float = 0.0, t1: float | None = None, playhead: float | None = None,
                    album_ceiling: float | None = None, numbers: bool = True) -> np.ndarray:
    """uint8 [height, width, 3]: the loudness plot of ``summary`` over ``[t0, t1)`` seconds.

    The vertical range is ``params.floor_lufs .. params.ceiling_lufs``; with
    ``params.album_relative`` and ``album_ceiling`` (see :func:`album_loudness_ceiling`) the
    same span is moved so that its top sits at the album's loudest moment (rounded up to
    1 LU), so every track of the album shares one scale.
    """
    params = params or LoudnessParams()
    if width < 1 or height < 1:
        raise ValueError(f"loudness view needs width, height >= 1, got {width}x{height}")
    end = summary.duration if t1 is None else t1
    if end <= t0:
        raise ValueError(f"time range must have t1 > t0, got {t0}..{end}")
    top, bottom = params.ceiling_lufs, params.floor_lufs
    if params.album_relative and album_ceiling is not None and math.isfinite(album_ceiling):
        span = top - bottom
        top = float(math.ceil(album_ceiling))
        bottom = top - span
    # drawn on RGBA (uint32 stores for the curves), returned as RGB
    img = new_image(height, width, parse_hex(params.background), alpha=True)
    grid = parse_hex(params.grid)
    ink = parse_hex(params.text)

    def row(lufs: float | np.ndarray):
        return (top - np.asarray(lufs, dtype=np.float64)) / (top - bottom) * (height - 1)

    step = _grid_step(top - bottom, height)
    scale = 2 if height >= 300 else 1
    level = math.floor(top / step) * step
    while level >= bottom:
        y = round(float(row(level)))
        hline(img, y, grid)
        if height >= 40:
            draw_text(img, 2, y + 2 if y < 8 * scale else y - 6 * scale, f"{level:g}", ink,
                      scale=scale)
        level -= step
    for target, color, dash in ((params.target_lufs, params.target, 6),
                                (summary.integrated, params.integrated, 0)):
        if math.isfinite(target) and bottom <= target <= top:
            hline(img, round(float(row(target))), parse_hex(color),
                  width=params.line_width, dash=dash)
    curves = []
    if params.show_momentary:
        curves.append(("momentary", summary.momentary, params.momentary))
    if params.show_short_term:
        curves.append(("short_term", summary.short_term, params.short_term))
    for which, series, color in curves:
        times = summary.times(which)
        if len(series) == 0:
            continue
        step_s = float(times[1] - times[0]) if len(times) > 1 else max(summary.duration, 1e-3)
        cols = series_columns(series, float(times[0]), step_s, width, t0, end,
                              extent=(0.0, summary.duration))
        clipped = np.where(np.isnan(cols), np.nan, np.clip(np.nan_to_num(
            cols, nan=bottom, neginf=bottom), bottom, top))
        polyline_columns(img, row(clipped), parse_hex(color), thickness=params.line_width)
    if numbers and height >= 24:
        text = (f"I {_fmt(summary.integrated, 'LUFS')}  LRA {_fmt(summary.loudness_range, 'LU')}"
                f"  TP {_fmt(summary.true_peak, 'DBTP')}")
        _, tw = text_size(text, scale)
        if tw + 4 <= width:
            draw_text(img, width - tw - 3, 3, text, ink, scale=scale)
    x = None if playhead is None else time_to_column(playhead, t0, end, width)
    if x is not None:
        vline(img, x, parse_hex(params.playhead))
    return rgba_to_rgb(img)


# ------------------------------------------------------------------------- the view type


def _show(data, track_id: str, params: LoudnessParams, *, album_reference=None,
          **common) -> np.ndarray:
    return render_loudness(data.loudness(track_id), params, album_ceiling=album_reference,
                           **common)


def _album_reference(data, params: LoudnessParams, width: int) -> float:
    return album_loudness_ceiling([data.loudness(t) for t in data.track_ids])


def _strip(params: LoudnessParams, width: int, height: int, length: float,
           src: StripSource) -> np.ndarray:
    y, sr = src.mix("loudness")
    return rgba(render_loudness(compute_loudness(y, sr), params, width=width, height=height,
                                t0=0.0, t1=length, album_ceiling=src.album_reference))


def _caption(data, track_id: str) -> str:
    nums = data.loudness(track_id).to_dict()

    def f(v, unit):
        return "–" if v is None else f"{v:.1f} {unit}"

    return (f"<span style='font:12px monospace'>integrated {f(nums['integrated_lufs'], 'LUFS')}"
            f" · LRA {f(nums['loudness_range_lu'], 'LU')} · true peak "
            f"{f(nums['true_peak_dbtp'], 'dBTP')}</span>")


KIND = ViewKind("loudness", LoudnessParams, show=_show, strip=_strip,
                album_reference=_album_reference, caption=_caption)
