"""Weight-free image metrics: colour statistics and the sliced Wasserstein distance.

Everything here is numpy over uint8 or float images, so the same numbers are computed
for real sets, generated sets and the untrained network without any learned weights.

- :func:`colour_stats` — per-image saturation, chroma, colourfulness (Hasler & Süsstrunk
  2003), contrast, sharpness (mean |Laplacian|), mean hue. Used for validation logs, for
  culling generated datasets and for naming anchor clusters.
- :func:`sliced_wasserstein` — SWD between two image sets on Laplacian-pyramid patch
  descriptors, as in Karras et al. 2018 (progressive GANs): 7×7 patches sampled per
  pyramid level, normalised per channel, projected on random unit directions, and the
  sorted projections compared. Reported ×1e3 per level and averaged.
"""

from __future__ import annotations

import numpy as np


def to_float01(images: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W,3] or float [-1,1] [N,3,H,W] (tanh output) → float32 [N,H,W,3] in [0,1]."""
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images [N,H,W,3] or [N,3,H,W], got {x.shape}")
    if x.dtype == np.uint8:
        if x.shape[-1] != 3:
            raise ValueError(f"uint8 images must be [N,H,W,3], got {x.shape}")
        return x.astype(np.float32) / 255.0
    if x.shape[1] == 3 and x.shape[-1] != 3:
        x = x.transpose(0, 2, 3, 1)
    return np.clip((x.astype(np.float32) + 1.0) * 0.5, 0.0, 1.0)


def colour_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics of ``images`` (see :func:`to_float01` for accepted layouts).

    Returns float32 [N] arrays: ``saturation`` (HSV S, mean), ``chroma`` (max−min, mean),
    ``colourfulness`` (Hasler–Süsstrunk on 0..1 values), ``contrast`` (std of luma),
    ``sharpness`` (mean |4-neighbour Laplacian| of luma), ``brightness`` (mean luma),
    ``hue`` (circular mean hue in degrees, weighted by chroma), ``hue_spread``
    (1 − resultant length: 0 = one hue, 1 = all hues).
    """
    x = to_float01(images)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    chroma = mx - mn
    sat = np.where(mx > 1e-6, chroma / np.maximum(mx, 1e-6), 0.0)
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourful = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2) + 0.3 * np.sqrt(
        rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2
    )
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    lap = (
        4 * luma[:, 1:-1, 1:-1]
        - luma[:, :-2, 1:-1]
        - luma[:, 2:, 1:-1]
        - luma[:, 1:-1, :-2]
        - luma[:, 1:-1, 2:]
    )
    # Hue angle from the opponent axes (a cheap, smooth stand-in for HSV hue).
    a = r - 0.5 * (g + b)
    bb = (np.sqrt(3.0) / 2.0) * (g - b)
    ang = np.arctan2(bb, a)
    w = chroma + 1e-6
    c = (w * np.cos(ang)).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    s = (w * np.sin(ang)).sum(axis=(1, 2)) / w.sum(axis=(1, 2))
    return {
        "saturation": sat.mean(axis=(1, 2)).astype(np.float32),
        "chroma": chroma.mean(axis=(1, 2)).astype(np.float32),
        "colourfulness": colourful.astype(np.float32),
        "contrast": luma.std(axis=(1, 2)).astype(np.float32),
        "sharpness": np.abs(lap).mean(axis=(1, 2)).astype(np.float32),
        "brightness": luma.mean(axis=(1, 2)).astype(np.float32),
        "hue": (np.degrees(np.arctan2(s, c)) % 360.0).astype(np.float32),
        "hue_spread": (1.0 - np.sqrt(c**2 + s**2)).astype(np.float32),
    }


def summarize_stats(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-image statistic except the (circular) hue."""
    return {k: float(np.mean(v)) for k, v in stats.items() if k != "hue"}


# ---------------------------------------------------------------------------------------
# Sliced Wasserstein distance on Laplacian-pyramid patches


def _gauss_down(x: np.ndarray) -> np.ndarray:
    """[N,H,W,C] → [N,H/2,W/2,C]: 5-tap binomial blur then decimate (reflect borders)."""
    k = np.array([1, 4, 6, 4, 1], np.float32) / 16.0
    p = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    h = sum(k[i] * p[:, i : i + x.shape[1], :, :] for i in range(5))
    v = sum(k[i] * h[:, :, i : i + x.shape[2], :] for i in range(5))
    return v[:, ::2, ::2, :]


def _up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest ×2 upsampling followed by the same binomial blur (the pyramid's expand)."""
    u = x.repeat(2, axis=1).repeat(2, axis=2)[:, : shape[0], : shape[1], :]
    k = np.array([1, 4, 6, 4, 1], np.float32) / 16.0
    p = np.pad(u, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    h = sum(k[i] * p[:, i : i + u.shape[1], :, :] for i in range(5))
    return sum(k[i] * h[:, :, i : i + u.shape[2], :] for i in range(5))


def laplacian_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    """float [N,H,W,3] → ``levels`` bands, finest first; the last is the Gaussian residual."""
    bands, cur = [], images.astype(np.float32)
    for _ in range(levels - 1):
        down = _gauss_down(cur)
        bands.append(cur - _up(down, cur.shape[1:3]))
        cur = down
    bands.append(cur)
    return bands


def _patches(band: np.ndarray, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    n, h, w, c = band.shape
    idx = rng.integers(0, n, count)
    ys = rng.integers(0, h - size + 1, count)
    xs = rng.integers(0, w - size + 1, count)
    offs = np.arange(size)
    rows = band[
        idx[:, None, None],
        ys[:, None, None] + offs[None, :, None],
        xs[:, None, None] + offs[None, None, :],
    ]
    return rows.reshape(count, size * size * c)


def _channel_stats(desc: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per colour channel mean and std of patch descriptors [count, size*size*channels]."""
    per = desc.reshape(desc.shape[0], -1, channels)
    return per.mean(axis=(0, 1)), per.std(axis=(0, 1)) + 1e-8


def _normalise(desc: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    channels = mean.shape[0]
    per = desc.reshape(desc.shape[0], -1, channels)
    return ((per - mean) / std).reshape(desc.shape)


def sliced_wasserstein(
    images_a: np.ndarray,
    images_b: np.ndarray,
    *,
    levels: int = 4,
    patches_per_image: int = 64,
    patch_size: int = 7,
    directions: int = 256,
    repeats: int = 4,
    seed: int = 0,
) -> dict[str, float]:
    """SWD ×1e3 between two image sets, per pyramid level and averaged ("mean").

    ``images_*``: uint8 [N,H,W,3] or tanh-range float [N,3,H,W]; both sets at the same
    size. Set A is the reference (its per-channel statistics normalise both sets), so
    the distance is not exactly symmetric. Lower is closer; a set against itself gives 0
    and two halves of one distribution a small positive floor (the estimate's noise),
    reported as real-vs-real.
    """
    a, b = to_float01(images_a), to_float01(images_b)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image sizes differ: {a.shape[1:]} vs {b.shape[1:]}")
    rng = np.random.default_rng(seed)
    count = min(len(a), len(b)) * patches_per_image
    pa, pb = laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)
    out: dict[str, float] = {}
    for lvl, (ba, bb) in enumerate(zip(pa, pb, strict=True)):
        size = min(patch_size, ba.shape[1], ba.shape[2])
        # Patch positions come from one stream per level, shared by both sets: a set
        # compared with itself gives exactly 0, and the estimate's noise is paired.
        raw_a = _patches(ba, count, size, np.random.default_rng([seed, lvl]))
        # Both sets are normalised per channel with the statistics of set A (the reference).
        # Progressive GAN normalised each set by its own statistics, which hides a global
        # shift in colour or contrast; a colour model must see exactly that.
        mean, std = _channel_stats(raw_a, ba.shape[-1])
        da = _normalise(raw_a, mean, std)
        db = _normalise(_patches(bb, count, size, np.random.default_rng([seed, lvl])), mean, std)
        dists = []
        for _ in range(repeats):
            d = rng.standard_normal((da.shape[1], directions)).astype(np.float32)
            d /= np.linalg.norm(d, axis=0, keepdims=True)
            proj_a = np.sort(da @ d, axis=0)
            proj_b = np.sort(db @ d, axis=0)
            dists.append(np.abs(proj_a - proj_b).mean())
        res = ba.shape[1]
        out[f"swd_{res}"] = float(np.mean(dists) * 1e3)
    out["mean"] = float(np.mean([v for k, v in out.items() if k.startswith("swd_")]))
    return out
