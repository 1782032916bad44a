"""Pixel primitives shared by every view: colours, integer blending, lines, text, LUTs.

Everything here works on uint8 images ``[H, W, 3]`` or ``[H, W, 4]`` in place or returns
new arrays, with integer arithmetic only where results must match the browser port
(``static/stem_waveform.js``) bit for bit. No antialiasing anywhere: a line is a set of
whole pixels.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")

COLORMAPS: tuple[str, ...] = ("magma", "inferno", "viridis", "plasma", "cividis", "turbo", "gray")


def parse_hex(color: str) -> tuple[int, int, int]:
    """``'#6b3fa0'`` -> ``(107, 63, 160)``; raises ``ValueError`` naming the value."""
    m = _HEX.match(color.strip()) if isinstance(color, str) else None
    if not m:
        raise ValueError(f"colour {color!r} is not a hex colour like '#6b3fa0'")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def blend_percent(fg: np.ndarray, bg: np.ndarray, percent: int) -> np.ndarray:
    """Integer blend ``(fg * p + bg * (100 - p) + 50) // 100`` per channel, as uint8.

    The same rounding is used by the browser port, so both give identical pixels.
    """
    p = int(percent)
    fg16 = np.asarray(fg, dtype=np.int32)
    bg16 = np.asarray(bg, dtype=np.int32)
    return ((fg16 * p + bg16 * (100 - p) + 50) // 100).astype(np.uint8)


def percent_to_alpha(percent: int) -> int:
    """0..100 % -> 0..255, rounded half up (``(p * 255 + 50) // 100``)."""
    return (int(percent) * 255 + 50) // 100


def rgba_u32(rgb: tuple[int, int, int], alpha: int = 255) -> np.uint32:
    """The pixel (r, g, b, alpha) as one native uint32, for uint32 views of RGBA images."""
    return np.array([*rgb, alpha], dtype=np.uint8).view(np.uint32)[0]


def rgba_to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 4] -> a new contiguous uint8 [H, W, 3] (OpenCV: a fast SIMD copy)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGBA2RGB)


def time_to_column(t: float, t0: float, t1: float, width: int) -> int | None:
    """The pixel column of time ``t`` in a view of ``width`` columns spanning ``[t0, t1)``.

    ``floor((t - t0) / (t1 - t0) * width)``; ``None`` when ``t`` falls outside the view.
    The browser port computes the same expression in the same order (IEEE doubles).
    """
    if t1 <= t0 or width <= 0:
        return None
    x = math.floor((t - t0) / (t1 - t0) * width)
    if x < 0 or x >= width:
        return None
    return int(x)


def column_times(width: int, t0: float, t1: float) -> np.ndarray:
    """float64 [width + 1]: the time at each column edge of a view spanning ``[t0, t1)``."""
    return t0 + (t1 - t0) * np.arange(width + 1, dtype=np.float64) / width


def new_image(height: int, width: int, rgb: tuple[int, int, int], alpha: bool = False
              ) -> np.ndarray:
    """uint8 [height, width, 3|4] filled with ``rgb`` (alpha 255)."""
    px = np.array([*rgb, 255] if alpha else list(rgb), dtype=np.uint8)
    row = np.tile(px, (max(width, 0), 1))
    # repeating a ready row is a memcpy per line; broadcasting a 3-byte pixel is not
    return np.repeat(row[None], max(height, 0), axis=0)


def vline(image: np.ndarray, x: int, rgb: tuple[int, int, int], *, width: int = 1,
          y0: int = 0, y1: int | None = None, percent: int = 100) -> None:
    """Paint columns ``[x, x + width)`` (clipped) between rows ``y0`` and ``y1``, in place."""
    h, w = image.shape[:2]
    xa, xb = max(0, x), min(w, x + width)
    ya, yb = max(0, y0), min(h, h if y1 is None else y1)
    if xa >= xb or ya >= yb:
        return
    region = image[ya:yb, xa:xb, :3]
    if percent >= 100:
        region[...] = np.asarray(rgb, dtype=np.uint8)
    else:
        region[...] = blend_percent(np.asarray(rgb), region, percent)


def hline(image: np.ndarray, y: int, rgb: tuple[int, int, int], *, width: int = 1,
          percent: int = 100, dash: int = 0) -> None:
    """Paint rows ``[y, y + width)`` (clipped), optionally dashed every ``dash`` pixels."""
    h, w = image.shape[:2]
    ya, yb = max(0, y), min(h, y + width)
    if ya >= yb:
        return
    region = image[ya:yb, :, :3]
    sel = slice(None) if dash <= 0 else (np.arange(w) // dash) % 2 == 0
    if percent >= 100:
        region[:, sel] = np.asarray(rgb, dtype=np.uint8)
    else:
        region[:, sel] = blend_percent(np.asarray(rgb), region[:, sel], percent)


def polyline_columns(image: np.ndarray, ys: np.ndarray, rgb: tuple[int, int, int], *,
                     thickness: int = 1) -> None:
    """Draw a curve given one row value per column (``ys``: float [W], NaN = gap).

    Each column is filled from its own row to its neighbour's, so steep changes stay
    connected without antialiasing; vectorised as a mask over rows.
    """
    h, w = image.shape[:2]
    ys = np.asarray(ys, dtype=np.float64)
    if ys.shape != (w,):
        raise ValueError(f"polyline_columns needs one value per column ({w}), got {ys.shape}")
    valid = np.isfinite(ys)
    if not valid.any():
        return
    yi = np.where(valid, np.rint(np.where(valid, ys, 0.0)), 0).astype(np.int64)
    prev = np.concatenate([yi[:1], yi[:-1]])
    prev_valid = np.concatenate([valid[:1], valid[:-1]])
    prev = np.where(prev_valid, prev, yi)
    lo = np.minimum(yi, (yi + prev) // 2) - (thickness - 1) // 2
    hi = np.maximum(yi, (yi + prev + 1) // 2) + thickness // 2
    rows = np.arange(h, dtype=np.int32)[:, None]
    mask = (rows >= lo.astype(np.int32)[None, :]) & (rows <= hi.astype(np.int32)[None, :])
    mask &= valid[None, :]
    if image.shape[-1] == 4 and image.flags.c_contiguous:
        # one 4-byte store per pixel through a uint32 view: far faster than [..., :3][mask]
        image.view(np.uint32)[..., 0][mask] = rgba_u32(rgb)
    else:
        image[..., :3][mask] = np.asarray(rgb, dtype=np.uint8)


# 3x5 bitmap font: each glyph is five rows of three bits (1 = ink).
_FONT_ROWS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "-": "000000111000000", ".": "000000000000010",
    ":": "000010000010000", "+": "000010111010000", " ": "000000000000000",
    "/": "001001010100100", "%": "101001010100101", "(": "010100100100010",
    ")": "010001001001010",
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011",
    "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "011100101101011", "H": "101101111101101", "I": "111010010010111",
    "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010",
    "P": "110101110100100", "Q": "010101101110011", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111",
    "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111",
}
_FONT = {ch: np.array([int(b) for b in bits], dtype=bool).reshape(5, 3)
         for ch, bits in _FONT_ROWS.items()}


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """(height, width) in pixels of ``text`` drawn by :func:`draw_text`."""
    n = len(text)
    return 5 * scale, max(0, (4 * n - 1) * scale)


def draw_text(image: np.ndarray, x: int, y: int, text: str, rgb: tuple[int, int, int], *,
              scale: int = 1) -> None:
    """Draw ``text`` (digits, A-Z, ``-.:+/%()``; lower case shown as upper) with its top-left
    corner at (x, y), clipped to the image. Unknown characters draw as blanks."""
    h, w = image.shape[:2]
    color = np.asarray(rgb, dtype=np.uint8)
    cx = x
    for ch in text.upper():
        glyph = _FONT.get(ch)
        if glyph is not None:
            big = np.repeat(np.repeat(glyph, scale, axis=0), scale, axis=1)
            gy0, gx0 = y, cx
            ya, yb = max(0, gy0), min(h, gy0 + big.shape[0])
            xa, xb = max(0, gx0), min(w, gx0 + big.shape[1])
            if ya < yb and xa < xb:
                sub = big[ya - gy0:yb - gy0, xa - gx0:xb - gx0]
                image[ya:yb, xa:xb, :3][sub] = color
        cx += 4 * scale


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """uint8 [256, 3] lookup table for a colour map name in :data:`COLORMAPS`.

    Built once from matplotlib's tables (imported lazily; no pyplot); 'gray' needs none.
    """
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    if name == "gray":
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    import matplotlib

    cmap = matplotlib.colormaps[name]
    rgba = cmap(np.linspace(0.0, 1.0, 256))
    return np.clip(np.rint(rgba[:, :3] * 255.0), 0, 255).astype(np.uint8)


def lut_u32(lut: np.ndarray) -> np.ndarray:
    """uint32 [256]: an RGB lookup table as opaque RGBA pixels, for uint32 gathers."""
    rgba = np.empty((len(lut), 4), dtype=np.uint8)
    rgba[:, :3] = lut
    rgba[:, 3] = 255
    return rgba.view(np.uint32).ravel()


def apply_lut(values01: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape; NaN -> 0) to uint8 RGB through ``lut`` [256, 3]."""
    v = np.nan_to_num(np.asarray(values01, dtype=np.float32), nan=0.0)
    idx = np.clip((v * 255.0 + 0.5).astype(np.int32), 0, 255)
    return lut[idx]


def resample_columns(n_source: int, width: int, s0: float, s1: float) -> np.ndarray:
    """int64 [width]: for each output column, the source index whose span holds its centre.

    The source covers indices ``[s0, s1)`` (fractional), e.g. frames of a feature series;
    out-of-range indices are clipped to the series.
    """
    centres = s0 + (np.arange(width, dtype=np.float64) + 0.5) * (s1 - s0) / width
    return np.clip(np.floor(centres).astype(np.int64), 0, max(0, n_source - 1))


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, 3|4] image (Pillow, imported lazily)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def series_columns(values: np.ndarray, t_first: float, step: float, width: int, t0: float,
                   t1: float, *, extent: tuple[float, float] | None = None) -> np.ndarray:
    """float [..., width] (the input's float type): a time series resampled to pixel columns
    by maximum.

    ``values[..., k]`` sits at ``t_first + k * step`` seconds. Each column takes the
    maximum over the points whose time falls in it (a point is never lost between
    columns); a column narrower than the spacing takes the nearest point. Columns whose
    centre lies outside ``extent`` (default: the points' own span, half a step either side;
    pass ``(0, duration)`` for windowed series) are NaN (drawn as gaps).
    """
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.floating):
        v = v.astype(np.float64)
    n = v.shape[-1]
    out_shape = (*v.shape[:-1], width)
    if n == 0 or width < 1:
        return np.full(out_shape, np.nan)
    edges = column_times(width, t0, t1)
    mids = (edges[:-1] + edges[1:]) / 2.0
    a = np.clip(np.ceil((edges[:-1] - t_first) / step - 1e-9).astype(np.int64), 0, n)
    b = np.clip(np.ceil((edges[1:] - t_first) / step - 1e-9).astype(np.int64), 0, n)
    nearest = np.clip(np.rint((mids - t_first) / step).astype(np.int64), 0, n - 1)
    empty = b <= a
    a = np.where(empty, nearest, a)
    b = np.where(empty, nearest + 1, b)
    # gather a fixed number of points per column (repeating each span's last point) and
    # take the max: much faster than reduceat over many short spans of a 2-D array
    longest = int((b - a).max())
    idx = np.minimum(a[:, None] + np.arange(longest)[None, :], (b - 1)[:, None])
    out = v[..., idx].max(axis=-1)
    lo, hi = extent or (t_first - step / 2.0, t_first + (n - 1) * step + step / 2.0)
    outside = (mids < lo) | (mids > hi)
    out[..., outside] = np.nan
    return out
