"""Tone and colour at the generator's size: the tone curve LUT (exposure, curve, contrast,
lift/gamma/gain, white balance) and saturation, each one cheap whole-frame operation.
"""

from __future__ import annotations

import numpy as np

from stratum_kernel.picture.postfx.params import FrameFX, PostFXParams

TONE_SATURATION = {"filmlog": 0.95, "linear": 1.0, "punch": 1.15, "soft": 0.9, "bleach": 0.5,
                   "noir": 0.0}


def _s_curve(x: np.ndarray, k: float, lo: float, hi: float, g: float = 1.0) -> np.ndarray:
    """A logistic S-curve through (0, lo) and (1, hi); k = steepness, g = input gamma."""
    s = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    xg = np.power(np.clip(x, 0.0, 1.0), g)
    a, b = s(-k / 2), s(k / 2)
    return lo + (hi - lo) * (s(k * (xg - 0.5)) - a) / (b - a)


def tone_curve(name: str, x: np.ndarray) -> np.ndarray:
    """The named base curve on [0, 1] (monotonic non-decreasing)."""
    if name == "linear":
        return np.clip(x, 0.0, 1.0)
    if name == "filmlog":  # lifted blacks, soft shoulder: the log-ish look of scanned film
        return _s_curve(x, 3.5, 0.035, 0.965, 0.9)
    if name == "punch":
        return _s_curve(x, 7.0, 0.0, 1.0)
    if name == "soft":
        return _s_curve(x, 2.0, 0.08, 0.92, 0.95)
    if name in ("bleach", "noir"):
        return _s_curve(x, 6.0, 0.01, 0.99, 1.1)
    raise ValueError(f"unknown tone curve {name!r}")


def tone_lut(params: PostFXParams, fx: FrameFX) -> np.ndarray:
    """uint8 [1, 256, 3]: exposure → tone curve → contrast → lift/gamma/gain → white balance,
    as one per-channel lookup table (for ``cv2.LUT``)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    y = tone_curve(params.tone_curve, x * 2.0**fx.exposure)
    y = np.clip(0.5 + fx.contrast * (y - 0.5), 0.0, 1.0)
    g = params.grade
    wb = (1.0 + 0.12 * fx.temperature, 1.0 - 0.08 * fx.tint, 1.0 - 0.12 * fx.temperature)
    chans = []
    for c in range(3):
        yc = g.gain[c] * (y + g.lift[c] * (1.0 - y))
        yc = np.power(np.clip(yc, 0.0, 1.0), 1.0 / g.gamma[c]) * wb[c]
        chans.append(np.clip(yc, 0.0, 1.0))
    lut = np.rint(np.stack(chans, axis=-1) * 255.0).astype(np.uint8)
    return lut.reshape(1, 256, 3)


def saturate(img: np.ndarray, factor: float) -> np.ndarray:
    """Mix each pixel with its Rec.709 luma: 0 = grey, 1 = unchanged, > 1 = more colour
    (one 3x3 colour matrix, applied by ``cv2.transform`` with saturation to 0..255)."""
    import cv2

    luma = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    m = np.float32(factor) * np.eye(3, dtype=np.float32) + np.float32(1.0 - factor) * luma
    return cv2.transform(img, m)


def hue_rotation(degrees: float) -> np.ndarray:
    """float32 [3, 3]: a turn of the hue by ``degrees`` around the grey axis (luma kept to
    first order), for ``cv2.transform``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    k = 1.0 / 3.0
    sq = np.sqrt(k)
    m = np.array([
        [c + (1 - c) * k, k * (1 - c) - sq * s, k * (1 - c) + sq * s],
        [k * (1 - c) + sq * s, c + k * (1 - c), k * (1 - c) - sq * s],
        [k * (1 - c) - sq * s, k * (1 - c) + sq * s, c + k * (1 - c)],
    ])
    return m.astype(np.float32)
