"""Procedural abstract images in five buckets, deterministic by seed.

The default training source (Stable Diffusion weights cannot be had on these machines;
see ``sd_generate.py`` for that path). Each bucket layers colour and texture at several
scales so a GAN trained on them learns rich, clean abstract frames:

- ``reaction_diffusion`` — Gray–Scott simulation (vectorised numpy) in one of several
  pattern regimes (spots, stripes, mazes, coral), colour-mapped through a palette over
  a soft gradient background.
- ``colour_field`` — layered linear/radial gradients and soft bands in a harmonious
  palette (Rothko-ish fields), with a fine grain.
- ``flow_field`` — domain-warped fractal noise (fBm of fBm), colour-mapped and lit.
- ``glitch`` — a field or flow image cut by slice shifts, RGB channel offsets, displaced
  blocks, scanlines and streaks.
- ``monochrome_noise`` — single-hue (duotone) ridged/fBm noise with grain.

:func:`generate` returns uint8 [H, W, 3] plus the parameters used (JSON-ready), from
``numpy.random.default_rng([seed, bucket index])`` only, so an image is reproduced from
its (bucket, seed) alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BUCKETS = ("reaction_diffusion", "colour_field", "flow_field", "glitch", "monochrome_noise")
Params = dict[str, Any]

# Gray–Scott (feed, kill) pairs that give distinct patterns (Pearson's classification).
GRAY_SCOTT_REGIMES = {
    "spots": (0.035, 0.065),
    "stripes": (0.042, 0.059),
    "maze": (0.029, 0.057),
    "coral": (0.0545, 0.062),
    "worms": (0.046, 0.0630),
    "bubbles": (0.098, 0.0555),
}


def _cv2():
    import cv2

    cv2.setNumThreads(1)
    return cv2


# ---------------------------------------------------------------------------------------
# palettes


def cosine_palette(rng: np.random.Generator) -> Params:
    """Parameters of ``a + b·cos(2π(c·t + d))`` (Quilez) drawn for pleasant, varied colour."""
    a = rng.uniform(0.35, 0.65, 3)
    b = rng.uniform(0.25, 0.5, 3)
    c = rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]) * rng.uniform(0.7, 1.3, 3)
    d = rng.uniform(0.0, 1.0, 3)
    return {"kind": "cosine", "a": a.tolist(), "b": b.tolist(), "c": c.tolist(), "d": d.tolist()}


def harmony_palette(rng: np.random.Generator, n: int = 5) -> Params:
    """``n`` colours from a colour-wheel harmony (analogous, complementary, triadic, split)."""
    scheme = str(rng.choice(["analogous", "complementary", "triadic", "split"]))
    h0 = rng.uniform(0, 1)
    offsets = {
        "analogous": [0.0, 0.06, 0.12, -0.06, 0.18],
        "complementary": [0.0, 0.5, 0.04, 0.54, -0.04],
        "triadic": [0.0, 1 / 3, 2 / 3, 0.05, 0.38],
        "split": [0.0, 0.42, 0.58, 0.04, 0.5],
    }[scheme]
    hues = [(h0 + offsets[i % len(offsets)] + rng.normal(0, 0.015)) % 1.0 for i in range(n)]
    sats = rng.uniform(0.5, 1.0, n)
    vals = np.sort(rng.uniform(0.25, 1.0, n))
    cols = [_hsv_to_rgb(h, s, v) for h, s, v in zip(hues, sats, vals, strict=True)]
    order = rng.permutation(n)
    return {"kind": "stops", "scheme": scheme, "colours": [cols[i] for i in order]}


def _hsv_to_rgb(h: float, s: float, v: float) -> list[float]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return [float(r), float(g), float(b)]


def random_palette(rng: np.random.Generator) -> Params:
    return cosine_palette(rng) if rng.random() < 0.55 else harmony_palette(rng)


def apply_palette(t: np.ndarray, palette: Params) -> np.ndarray:
    """Scalar field t float [H, W] (any range; used mod 1 for cosine, clipped for stops)
    → float32 [H, W, 3] in [0, 1]."""
    if palette["kind"] == "cosine":
        a, b, c, d = (np.asarray(palette[k], np.float32) for k in "abcd")
        rgb = a + b * np.cos(2 * np.pi * (c * t[..., None] + d))
    else:
        cols = np.asarray(palette["colours"], np.float32)
        x = np.clip(t, 0.0, 1.0) * (len(cols) - 1)
        i = np.clip(np.floor(x).astype(int), 0, len(cols) - 2)
        f = (x - i)[..., None]
        f = f * f * (3 - 2 * f)  # smoothstep between stops
        rgb = cols[i] * (1 - f) + cols[i + 1] * f
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# noise


def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise float32 [size, size] in ~[-1, 1]: a random grid, bicubic-upsampled."""
    cv2 = _cv2()
    grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(grid, (size + 3 * size // cells, size + 3 * size // cells), cv2.INTER_CUBIC)
    off = size // cells
    return big[off : off + size, off : off + size] * 0.5


def fbm(
    rng: np.random.Generator, size: int, *, base: int = 3, octaves: int = 6, gain: float = 0.5
) -> np.ndarray:
    """Fractal Brownian motion float32 [size, size], roughly unit std."""
    out = np.zeros((size, size), np.float32)
    amp, cells, total = 1.0, base, 0.0
    for _ in range(octaves):
        if cells >= size:
            break
        out += amp * value_noise(rng, size, cells)
        total += amp * amp
        amp *= gain
        cells *= 2
    return out / (np.sqrt(total) * 0.5 + 1e-6)


def _normalise01(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, [1, 99])
    return np.clip((x - lo) / (hi - lo + 1e-6), 0.0, 1.0).astype(np.float32)


def _grain(rng: np.random.Generator, img: np.ndarray, amount: float) -> np.ndarray:
    n = rng.standard_normal(img.shape[:2]).astype(np.float32)[..., None] * amount
    return np.clip(img + n, 0.0, 1.0)


def _gradient_background(
    rng: np.random.Generator, size: int, palette: Params
) -> tuple[np.ndarray, Params]:
    angle = float(rng.uniform(0, 2 * np.pi))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    t = 0.5 + (np.cos(angle) * xx + np.sin(angle) * yy) * float(rng.uniform(0.5, 1.4))
    shift = float(rng.uniform(0, 1))
    return apply_palette(t * 0.35 + shift, palette), {"angle": angle, "shift": shift}


# ---------------------------------------------------------------------------------------
# buckets


def _gray_scott(
    u: np.ndarray, v: np.ndarray, feed: float, kill: float, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` explicit Euler steps (dt = 1) of Gray–Scott on a periodic grid."""
    du, dv = 0.16, 0.08
    for _ in range(steps):
        lu = np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1) - 4 * u
        lv = np.roll(v, 1, 0) + np.roll(v, -1, 0) + np.roll(v, 1, 1) + np.roll(v, -1, 1) - 4 * v
        uvv = u * v * v
        u += du * lu - uvv + feed * (1 - u)
        v += dv * lv + uvv - (feed + kill) * v
    return u, v


def reaction_diffusion(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Params]:
    cv2 = _cv2()
    regime = str(rng.choice(list(GRAY_SCOTT_REGIMES)))
    feed, kill = GRAY_SCOTT_REGIMES[regime]
    feed += float(rng.normal(0, 0.002))
    kill += float(rng.normal(0, 0.001))
    grid = int(rng.choice([64, 72, 80]))
    steps = int(rng.integers(800, 1300))
    u = np.ones((grid, grid), np.float32)
    v = np.zeros((grid, grid), np.float32)
    for _ in range(int(rng.integers(6, 20))):
        r = int(rng.integers(2, 6))
        y, x = rng.integers(r, grid - r, 2)
        u[y - r : y + r, x - r : x + r] = 0.5
        v[y - r : y + r, x - r : x + r] = 0.25
    v += rng.uniform(0, 0.05, v.shape).astype(np.float32)
    u, v = _gray_scott(u, v, feed, kill, steps)
    if v.std() < 0.02:  # the pattern died out in this regime: fall back to a robust maze
        regime, (feed, kill) = "maze", GRAY_SCOTT_REGIMES["maze"]
        v[grid // 3 : grid // 2, grid // 3 : grid // 2] = 0.25
        u[grid // 3 : grid // 2, grid // 3 : grid // 2] = 0.5
        u, v = _gray_scott(u, v, feed, kill, steps)
    field = cv2.resize(v, (size, size), interpolation=cv2.INTER_CUBIC)
    field = _normalise01(field)
    palette = random_palette(rng)
    bg, bg_params = _gradient_background(rng, size, palette)
    phase = float(rng.uniform(0, 1))
    fg = apply_palette(field * float(rng.uniform(0.5, 1.0)) + phase, palette)
    soft = cv2.GaussianBlur(field, (0, 0), float(rng.uniform(1.0, 4.0)))
    mask = np.clip(field * 1.4, 0, 1)[..., None]
    img = bg * (1 - mask) + fg * mask
    img = img * (0.75 + 0.35 * soft[..., None])  # a soft glow where the pattern is dense
    img = _grain(rng, np.clip(img, 0, 1), float(rng.uniform(0.0, 0.02)))
    return img, {
        "regime": regime,
        "feed": feed,
        "kill": kill,
        "grid": grid,
        "steps": steps,
        "phase": phase,
        "palette": palette,
        "background": bg_params,
    }


def colour_field(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Params]:
    cv2 = _cv2()
    palette = harmony_palette(rng, n=int(rng.integers(3, 6)))
    cols = np.asarray(palette["colours"], np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.broadcast_to(cols[0], (size, size, 3)).copy()
    layers = []
    for i in range(int(rng.integers(3, 7))):
        kind = str(rng.choice(["band", "radial", "linear"]))
        col = cols[(i + 1) % len(cols)]
        if kind == "band":
            horizontal = bool(rng.random() < 0.7)
            c0, w = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.08, 0.35))
            coord = yy if horizontal else xx
            warp = 0.03 * value_noise(rng, size, int(rng.integers(2, 6)))
            m = np.exp(-(((coord + warp - c0) / w) ** 6))
            layers.append({"kind": kind, "horizontal": horizontal, "centre": c0, "width": w})
        elif kind == "radial":
            cy, cx = rng.uniform(0.0, 1.0, 2)
            r = float(rng.uniform(0.15, 0.6))
            m = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (r * r)))
            layers.append({"kind": kind, "centre": [float(cy), float(cx)], "radius": r})
        else:
            ang = float(rng.uniform(0, 2 * np.pi))
            t = (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) + 0.5
            m = np.clip(t * float(rng.uniform(0.6, 1.5)), 0, 1)
            layers.append({"kind": kind, "angle": ang})
        alpha = float(rng.uniform(0.4, 0.95))
        layers[-1]["alpha"] = alpha
        m = (m * alpha).astype(np.float32)[..., None]
        if rng.random() < 0.3:  # screen blend for luminous overlaps
            img = 1 - (1 - img) * (1 - m * col)
        else:
            img = img * (1 - m) + col * m
    blur = float(rng.uniform(0.3, 3.0))
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur)
    texture = fbm(rng, size, base=int(rng.integers(8, 24)), octaves=3)
    img = img * (1 + 0.06 * texture[..., None])
    vign = 1 - float(rng.uniform(0.0, 0.35)) * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2)[..., None] * 2
    img = img * vign
    # Stretch levels: overlapping translucent layers average towards mud otherwise.
    lo, hi = np.percentile(img, [0.5, 99.5])
    img = (img - lo) / (hi - lo + 1e-6)
    grey = img.mean(axis=-1, keepdims=True)
    boost = float(rng.uniform(1.1, 1.6))
    img = grey + (img - grey) * boost
    img = _grain(rng, np.clip(img, 0, 1), float(rng.uniform(0.005, 0.02)))
    return img, {"palette": palette, "layers": layers, "blur": blur, "saturation_boost": boost}


def flow_field(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Params]:
    cv2 = _cv2()
    base = int(rng.integers(2, 5))
    octaves = int(rng.integers(4, 7))
    warp1, warp2 = float(rng.uniform(0.05, 0.25)), float(rng.uniform(0.0, 0.25))
    p = fbm(rng, size, base=base, octaves=octaves)
    qx, qy = fbm(rng, size, base=base), fbm(rng, size, base=base)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    mx = (xx + warp1 * size * qx).astype(np.float32)
    my = (yy + warp1 * size * qy).astype(np.float32)
    q2 = cv2.remap(p, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    rx, ry = fbm(rng, size, base=base * 2), fbm(rng, size, base=base * 2)
    mx2 = (xx + warp2 * size * rx + 0.1 * size * q2).astype(np.float32)
    my2 = (yy + warp2 * size * ry).astype(np.float32)
    field = cv2.remap(q2, mx2, my2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    t = _normalise01(field)
    palette = random_palette(rng)
    freq = float(rng.uniform(0.6, 2.2))
    img = apply_palette(t * freq + float(rng.uniform(0, 1)), palette)
    # Light from the field's gradient: gives the flow a glossy relief.
    gy, gx = np.gradient(cv2.GaussianBlur(t, (0, 0), 1.5))
    light = float(rng.uniform(0.0, 6.0))
    img = img * (1 + light * (gx - gy)[..., None])
    mix = np.clip(np.abs(qx)[..., None] * float(rng.uniform(0, 0.5)), 0, 1)
    second = apply_palette(_normalise01(qy) + 0.5, palette)
    img = img * (1 - mix) + second * mix
    img = _grain(rng, np.clip(img, 0, 1), float(rng.uniform(0.0, 0.025)))
    return img, {
        "base": base,
        "octaves": octaves,
        "warp": [warp1, warp2],
        "frequency": freq,
        "light": light,
        "palette": palette,
    }


def glitch(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Params]:
    source = str(rng.choice(["colour_field", "flow_field"]))
    img, src_params = BUCKET_FUNCS[source](rng, size)
    img = img.copy()
    ops: list[Params] = []
    for _ in range(int(rng.integers(4, 14))):  # horizontal slice shifts
        y0 = int(rng.integers(0, size - 4))
        h = int(rng.integers(2, size // 6))
        dx = int(rng.integers(-size // 3, size // 3))
        img[y0 : y0 + h] = np.roll(img[y0 : y0 + h], dx, axis=1)
        ops.append({"op": "slice", "y": y0, "h": h, "dx": dx})
    shifts = rng.integers(-size // 24, size // 24 + 1, (3, 2))
    for c in range(3):  # chromatic channel offsets
        img[..., c] = np.roll(img[..., c], tuple(int(s) for s in shifts[c]), axis=(0, 1))
    ops.append({"op": "channel_shift", "shifts": shifts.tolist()})
    for _ in range(int(rng.integers(2, 9))):  # displaced / inverted blocks
        bh, bw = (int(v) for v in rng.integers(size // 16, size // 4, 2))
        y0, x0 = (int(v) for v in rng.integers(0, size - size // 4, 2))
        y1, x1 = (int(v) for v in rng.integers(0, size - size // 4, 2))
        block = img[y1 : y1 + bh, x1 : x1 + bw].copy()
        if rng.random() < 0.3:
            block = 1 - block
        img[y0 : y0 + bh, x0 : x0 + bw] = block
        ops.append({"op": "block", "src": [y1, x1], "dst": [y0, x0], "size": [bh, bw]})
    if rng.random() < 0.6:  # scanlines
        period = int(rng.integers(2, 6))
        depth = float(rng.uniform(0.08, 0.3))
        img[::period] *= 1 - depth
        ops.append({"op": "scanlines", "period": period, "depth": depth})
    if rng.random() < 0.5:  # streaks: smear columns downwards from a threshold
        x0 = int(rng.integers(0, size // 2))
        w = int(rng.integers(size // 8, size // 2))
        y0 = int(rng.integers(size // 4, size - 8))
        img[y0:, x0 : x0 + w] = img[y0 : y0 + 1, x0 : x0 + w]
        ops.append({"op": "streak", "x": x0, "w": w, "y": y0})
    return np.clip(img, 0, 1), {"source": source, "source_params": src_params, "ops": ops}


def monochrome_noise(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Params]:
    kind = str(rng.choice(["fbm", "ridged", "grain_field"]))
    base = int(rng.integers(2, 10))
    n = fbm(rng, size, base=base, octaves=int(rng.integers(3, 8)))
    if kind == "ridged":
        n = 1 - np.abs(n)
        n = n * n
    elif kind == "grain_field":
        n = n + 0.8 * rng.standard_normal((size, size)).astype(np.float32)
    t = _normalise01(n)
    gamma = float(rng.uniform(0.6, 1.8))
    t = t**gamma
    hue = float(rng.uniform(0, 1))
    dark = np.asarray(_hsv_to_rgb(hue, float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.0, 0.2))))
    light = np.asarray(
        _hsv_to_rgb(
            (hue + rng.normal(0, 0.04)) % 1,
            float(rng.uniform(0.0, 0.5)),
            float(rng.uniform(0.6, 1.0)),
        )
    )
    img = dark * (1 - t[..., None]) + light * t[..., None]
    img = _grain(rng, img.astype(np.float32), float(rng.uniform(0.01, 0.06)))
    return img, {"kind": kind, "base": base, "gamma": gamma, "hue": hue}


BUCKET_FUNCS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, Params]]] = {
    "reaction_diffusion": reaction_diffusion,
    "colour_field": colour_field,
    "flow_field": flow_field,
    "glitch": glitch,
    "monochrome_noise": monochrome_noise,
}


def generate(bucket: str, seed: int, size: int = 256) -> tuple[np.ndarray, Params]:
    """One image of ``bucket`` for ``seed``: (uint8 [size, size, 3], params dict)."""
    if bucket not in BUCKET_FUNCS:
        raise ValueError(f"unknown bucket {bucket!r}; choose one of {', '.join(BUCKETS)}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    rng = np.random.default_rng([int(seed), BUCKETS.index(bucket)])
    img, params = BUCKET_FUNCS[bucket](rng, size)
    out = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out, params
