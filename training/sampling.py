"""Sample grids and latent interpolation sweeps (validation figures and README figures).

All functions take a :class:`~stratum_kernel.picture.generator.Generator` and return uint8
images [H, W, 3] ready to save; nothing here trains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stratum_kernel.core.paths import atomic_path
from stratum_kernel.picture.generator import Generator


def fixed_latents(count: int, seed: int, shape: tuple[int, int, int] = (8, 16, 16)) -> np.ndarray:
    """float32 [count, *shape] standard-normal latents from ``seed`` (the same every epoch)."""
    return np.random.default_rng(seed).standard_normal((count, *shape)).astype(np.float32)


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] → uint8 [N, H, W, 3]."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = np.clip((x.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255)
    return x.astype(np.uint8)


def image_grid(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """uint8 [N, H, W, 3] → one uint8 image of ``ceil(N/cols)`` rows, dark padding."""
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 16, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = img
    return out


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of flattened latents a, b for each t in [0, 1] → [T, *a.shape]."""
    fa, fb = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    cos = np.dot(fa, fb) / (np.linalg.norm(fa) * np.linalg.norm(fb))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.asarray(t, np.float64)[:, None]
    if omega < 1e-6:
        out = (1 - t) * fa + t * fb
    else:
        out = (np.sin((1 - t) * omega) * fa + np.sin(t * omega) * fb) / np.sin(omega)
    return out.reshape(len(t), *a.shape).astype(np.float32)


@torch.no_grad()
def generate(
    gen: Generator, z: np.ndarray, *, levels: int | None = None, batch: int = 16
) -> np.ndarray:
    """Latents float32 [N, 8, 16, 16] → uint8 [N, H, W, 3] (eval mode)."""
    was_training = gen.training
    gen.eval()
    device = next(gen.parameters()).device
    outs = []
    for i in range(0, len(z), batch):
        zz = torch.from_numpy(np.ascontiguousarray(z[i : i + batch])).to(device)
        outs.append(to_uint8(gen(zz, levels)))
    gen.train(was_training)
    return np.concatenate(outs)


def interpolation_sweeps(
    gen: Generator, *, rows: int = 3, steps: int = 8, seed: int = 1, levels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` slerp sweeps between seeded latent pairs: (grid image, frames [rows*steps, ...])."""
    shape = (gen.latent_channels, gen.latent_size, gen.latent_size)
    ends = fixed_latents(2 * rows, seed, shape)
    t = np.linspace(0.0, 1.0, steps)
    z = np.concatenate([slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)])
    frames = generate(gen, z, levels=levels)
    return image_grid(frames, steps), frames


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write uint8 [H, W, 3] as PNG atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp)
    return path


def smoothness(frames: np.ndarray, steps: int) -> float:
    """Max/mean ratio of consecutive-frame differences along each sweep (1 = perfectly even).

    ``frames``: uint8 [rows*steps, H, W, 3] from :func:`interpolation_sweeps`. Large values
    mean the image jumps somewhere along the path instead of changing evenly.
    """
    x = frames.astype(np.float32).reshape(-1, steps, *frames.shape[1:])
    d = np.abs(np.diff(x, axis=1)).mean(axis=(2, 3, 4))  # [rows, steps-1]
    return float(np.mean(d.max(axis=1) / (d.mean(axis=1) + 1e-6)))
