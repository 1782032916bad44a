"""How the (square) generator frame meets the output's size and aspect: fill, fit, crop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FitGeometry:
    """How a source frame maps onto the output.

    crop: (y0, y1, x0, x1) window of the source that is used; scaled: (height, width) that
    window is resized to; pad: (top, bottom, left, right) output pixels of padding.
    """

    crop: tuple[int, int, int, int]
    scaled: tuple[int, int]
    pad: tuple[int, int, int, int]

    @property
    def scale(self) -> float:
        return self.scaled[0] / max(1, self.crop[1] - self.crop[0])


def fit_geometry(src_hw: tuple[int, int], out_wh: tuple[int, int], fit: str) -> FitGeometry:
    """The crop/scale/pad that takes a frame of ``src_hw`` (height, width) to an output of
    ``out_wh`` (width, height) under ``fit`` ('fill' | 'fit' | 'crop'), centred."""
    sh, sw = src_hw
    ow, oh = out_wh
    if fit == "fill":
        s = max(ow / sw, oh / sh)
        ch, cw = min(sh, max(1, round(oh / s))), min(sw, max(1, round(ow / s)))
        y0, x0 = (sh - ch) // 2, (sw - cw) // 2
        return FitGeometry((y0, y0 + ch, x0, x0 + cw), (oh, ow), (0, 0, 0, 0))
    if fit == "fit":
        s = min(ow / sw, oh / sh)
        th, tw = min(oh, max(1, round(sh * s))), min(ow, max(1, round(sw * s)))
        top, left = (oh - th) // 2, (ow - tw) // 2
        return FitGeometry((0, sh, 0, sw), (th, tw), (top, oh - th - top, left, ow - tw - left))
    if fit == "crop":
        ch, cw = min(sh, oh), min(sw, ow)
        y0, x0 = (sh - ch) // 2, (sw - cw) // 2
        top, left = (oh - ch) // 2, (ow - cw) // 2
        return FitGeometry(
            (y0, y0 + ch, x0, x0 + cw), (ch, cw), (top, oh - ch - top, left, ow - cw - left)
        )
    raise ValueError(f"unknown fit {fit!r}; use 'fill', 'fit' or 'crop'")


def scale_to_output(
    img: np.ndarray, geom: FitGeometry, pad_color: tuple[int, int, int] = (0, 0, 0)
) -> np.ndarray:
    """Apply a :class:`FitGeometry` to one uint8 [h, w, 3] frame."""
    import cv2

    y0, y1, x0, x1 = geom.crop
    src = img[y0:y1, x0:x1]
    th, tw = geom.scaled
    if (th, tw) != src.shape[:2]:
        up = th >= src.shape[0]
        src = cv2.resize(
            src, (tw, th), interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA
        )
    top, bottom, left, right = geom.pad
    if top or bottom or left or right:
        src = cv2.copyMakeBorder(
            np.ascontiguousarray(src), top, bottom, left, right, cv2.BORDER_CONSTANT,
            value=tuple(int(v) for v in pad_color),
        )
    return np.ascontiguousarray(src)
