"""Texture stages: sharpen and detail (unsharp masks), lateral chromatic aberration,
vignette and keyed film grain.

Grain is keyed by (seed, track, frame): each frame takes a window of a per-seed pool at an
offset drawn by :func:`~stratum_kernel.core.seeding.rng_for`, so a frame's grain never
depends on which frames were rendered before it.
"""

from __future__ import annotations

import functools

import numpy as np

from stratum_kernel.core.seeding import rng_for, stable_hash

GRAIN_MARGIN = 128  # pool is this much larger than the frame; offsets pick a window
GRAIN_LEVELS = 32.0  # grain std in 8-bit levels at grain_intensity 1.0


def sharpen(img: np.ndarray, amount: float) -> np.ndarray:
    """An unsharp mask over a 1-pixel blur, at the generator's size."""
    import cv2

    blur = cv2.GaussianBlur(img, (0, 0), 1.0)
    return cv2.addWeighted(img, 1.0 + amount, blur, -amount, 0)


def chroma(img: np.ndarray, shift_px: float) -> np.ndarray:
    """Lateral chromatic aberration: red scaled out, blue scaled in, by ``shift_px`` at the
    edge (in this image's pixels), around the centre."""
    import cv2

    h, w = img.shape[:2]
    out = img.copy()
    for c, sign in ((0, 1.0), (2, -1.0)):
        k = 1.0 + sign * shift_px / (0.5 * max(h, w))
        m = np.float32([[k, 0, (1 - k) * (w - 1) / 2], [0, k, (1 - k) * (h - 1) / 2]])
        out[..., c] = cv2.warpAffine(
            np.ascontiguousarray(img[..., c]), m, (w, h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
    return out


def detail(img: np.ndarray, amount: float) -> np.ndarray:
    """Bring back edges after upscaling: an unsharp mask over a 5-tap Gaussian (σ 1 px)
    of the output-sized frame — about the upscaler's own softness, and cheap at 720p."""
    import cv2

    blur = cv2.GaussianBlur(img, (5, 5), 1.0)
    return cv2.addWeighted(img, 1.0 + amount, blur, -amount, 0)


@functools.lru_cache(maxsize=8)
def vignette_shape(height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: 255 × how much a full-strength vignette darkens each pixel (0 in the
    centre, smooth, 255 at the corners)."""
    yy = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / (height / 2)
    xx = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / (width / 2)
    r2 = (xx[None, :] ** 2 + yy[:, None] ** 2) / 2.0  # 0 centre, 1 corners
    d = np.clip((r2 - 0.15) / 0.85, 0.0, 1.0)
    d = d * d * (3 - 2 * d)  # smoothstep
    m = np.rint(d * 255).astype(np.uint8)
    m = np.repeat(m[..., None], 3, axis=2)
    m.setflags(write=False)
    return m


def vignette(img: np.ndarray, strength: float) -> np.ndarray:
    import cv2

    dark = cv2.multiply(img, vignette_shape(*img.shape[:2]), scale=strength / 255.0)
    return cv2.subtract(img, dark)


@functools.lru_cache(maxsize=8)
def grain_pool(seed: int, height: int, width: int, grain_size: float) -> np.ndarray:
    """uint8 [H + margin, W + margin, 3]: film grain codes (128 = no change; one code step
    is 1/4 of :data:`GRAIN_LEVELS` σ), mostly luminance with a little colour, blurred to
    ``grain_size`` pixels. Keyed by the seed and size only; each frame picks its window by a
    keyed offset (:func:`grain_offset`) and adds it scaled by the frame's intensity."""
    import cv2

    rng = np.random.default_rng([seed & 0xFFFFFFFF, stable_hash("grain-pool", height, width)])
    shape = (height + GRAIN_MARGIN, width + GRAIN_MARGIN)
    mono = rng.standard_normal(shape, dtype=np.float32)
    colour = rng.standard_normal((*shape, 3), dtype=np.float32)
    noise = 0.85 * mono[..., None] + 0.35 * colour
    if grain_size > 0.75:
        noise = cv2.GaussianBlur(noise, (0, 0), 0.5 * grain_size)
    noise *= 4.0 / max(float(noise.std()), 1e-6)  # σ = 4 codes
    pool = np.clip(np.rint(noise) + 128, 0, 255).astype(np.uint8)
    pool.setflags(write=False)
    return pool


def grain_offset(seed: int, track_id: str, frame: int) -> tuple[int, int]:
    """The (y, x) window offset into the grain pool for one frame."""
    oy, ox = rng_for(seed, track_id, frame, "grain").integers(0, GRAIN_MARGIN, size=2)
    return int(oy), int(ox)


def grain(img: np.ndarray, intensity: float, seed: int, track_id: str, frame: int,
           size: float) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    pool = grain_pool(seed, h, w, round(size * 4) / 4)
    oy, ox = grain_offset(seed, track_id, frame)
    window = pool[oy : oy + h, ox : ox + w]
    beta = float(intensity) * GRAIN_LEVELS / 4.0  # codes are σ/4 steps around 128
    return cv2.addWeighted(img, 1.0, window, beta, -128.0 * beta)
