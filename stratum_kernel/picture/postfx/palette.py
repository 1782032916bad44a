"""Colour mapped into a designed palette (a gradient map), the way audio-visual tools give a
source its colour: each pixel's brightness — or its hue — picks a colour of the palette.

A palette is a 256-entry lookup table built from 2–6 colour stops (linear in between, dark
end first) or a cosine palette ``a + b·cos 2π(c·t + d)``. ``shift`` (and ``drift``, in
cycles per minute of track time) moves along it: a cosine palette goes round, stops are
walked back and forth, so the colours never jump.
"""

from __future__ import annotations

import functools

import numpy as np

from stratum_kernel.picture.postfx.params import PaletteParams


def palette_colours(params: PaletteParams, t: np.ndarray) -> np.ndarray:
    """float64 [len(t), 3] in 0..1: the palette's colour at positions ``t`` (0..1)."""
    t = np.asarray(t, dtype=np.float64)
    if params.stops:
        stops = np.asarray(params.stops, dtype=np.float64) / 255.0
        pos = np.linspace(0.0, 1.0, len(stops))
        return np.stack([np.interp(t, pos, stops[:, c]) for c in range(3)], axis=-1)
    cos = params.cosine
    if cos is None:
        raise ValueError("a palette needs stops or a cosine palette")
    a, b, c, d = (np.asarray(v, dtype=np.float64) for v in (cos.a, cos.b, cos.c, cos.d))
    return np.clip(a + b * np.cos(2 * np.pi * (c * t[:, None] + d)), 0.0, 1.0)


def _walk(x: np.ndarray, cyclic: bool) -> np.ndarray:
    """Positions moved past 0..1 brought back: round (cyclic) or back and forth."""
    if cyclic:
        return np.mod(x, 1.0)
    return 1.0 - np.abs(np.mod(x, 2.0) - 1.0)


@functools.lru_cache(maxsize=256)
def _lut(params_json: str, shift_q: int) -> np.ndarray:
    params = PaletteParams.model_validate_json(params_json)
    t = np.arange(256, dtype=np.float64) / 255.0 + shift_q / 1024.0
    t = _walk(t, cyclic=not params.stops)
    lut = np.rint(palette_colours(params, t) * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def palette_lut(params: PaletteParams, shift: float = 0.0) -> np.ndarray:
    """uint8 [256, 3]: the palette sampled at 256 positions, moved by ``shift`` (quantised
    to 1/1024, one cached table per step)."""
    return _lut(params.model_dump_json(), round(shift * 1024))


def apply_palette(img: np.ndarray, params: PaletteParams, mix: float,
                  shift: float) -> np.ndarray:
    """uint8 [h, w, 3]: ``img`` mixed ``mix`` of the way to its palette colours."""
    import cv2

    lut = palette_lut(params, shift)
    if params.mode == "luma":
        mapped = lut[cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)]
    else:  # the hue picks the colour, the pixel keeps its brightness (HSV value)
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)
        mapped = lut[hsv[..., 0]].astype(np.uint16) * hsv[..., 2:3] // 255
        mapped = mapped.astype(np.uint8)
    if mix >= 1.0:
        return np.ascontiguousarray(mapped)
    return cv2.addWeighted(img, 1.0 - float(mix), mapped, float(mix), 0)
