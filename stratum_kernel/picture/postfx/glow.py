"""Glow (bloom): the bright parts of the frame, blurred and added back.

Run at the generator's size, before the frame is scaled to the output (a glow is soft by
nature, and a 128² or 256² frame is 14–56× fewer pixels than 720p): bright pass above
``threshold`` → half size → Gaussian blur of ``radius`` output pixels (converted to this
size) → back up → saturating add of ``amount`` times the result.
"""

from __future__ import annotations

import numpy as np

from stratum_kernel.picture.postfx.params import GlowParams

GLOW_SCALE = 2


def glow(img: np.ndarray, params: GlowParams, amount: float, *, scale: float = 1.0
         ) -> np.ndarray:
    """uint8 [h, w, 3]: ``img`` with its glow added; ``scale``: output pixels per pixel of
    ``img`` (the radius is given in output pixels)."""
    import cv2

    h, w = img.shape[:2]
    cut = round(params.threshold * 255)
    if cut >= 255:
        return img
    bright = cv2.subtract(img, np.full(3, cut, np.float64))  # what exceeds the threshold
    small = cv2.resize(bright, (max(1, w // GLOW_SCALE), max(1, h // GLOW_SCALE)),
                       interpolation=cv2.INTER_AREA)
    small = cv2.multiply(small, np.full(3, 255.0 / (255 - cut)))
    sigma = max(0.5, params.radius / max(scale, 1e-6) / GLOW_SCALE)
    halo = cv2.GaussianBlur(small, (0, 0), sigma)
    halo = cv2.resize(halo, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(img, 1.0, halo, float(amount), 0)
