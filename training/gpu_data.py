"""The training images on the GPU: one uint8 tensor, crops and flips drawn per batch there.

What :mod:`training.gpu_train` feeds :func:`training.train_gan.train` instead of the CPU
path's DataLoaders: the same crop range and flips as :func:`training.dataset.augment`, as
one affine resampling per batch, and every image shown once before any twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from training.dataset import AugmentParams


def crop_flip(images, size: int, params: AugmentParams | None, generator=None):
    """uint8 [B, 3, H, W] on any device → float32 [B, 3, size, size] in [-1, 1].

    With ``params``: per image a random square crop of ``crop_scale`` of the side at a random
    place, resized to ``size``, flipped left-right and up-down with p 0.5 each — what
    :func:`training.dataset.augment` does on the CPU, as one affine resampling. A crop larger
    than ``size`` is sampled at k× and average-pooled (area-like, no aliasing); a smaller one
    is upsampled bicubically (as cv2's INTER_CUBIC there). ``None``: an area resize only.
    """
    import torch
    import torch.nn.functional as F

    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 [B, 3, H, W], got {images.dtype} {list(images.shape)}")
    x = images.float() / 127.5 - 1.0
    b, _, h, _ = x.shape
    if params is None:
        return x if h == size else F.interpolate(x, size=(size, size), mode="area")
    dev = x.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=dev)

    lo, hi = params.crop_scale
    scale = lo + (hi - lo) * rand(b)  # crop side / image side
    # crop centre anywhere the crop stays inside, in normalised [-1, 1] coordinates
    tx, ty = ((2 * rand(b) - 1) * (1 - scale) for _ in range(2))
    fx = torch.where(rand(b) < 0.5, -1.0, 1.0) if params.flip else torch.ones(b, device=dev)
    fy = torch.where(rand(b) < 0.5, -1.0, 1.0) if params.flip else torch.ones(b, device=dev)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = scale * fx, tx
    theta[:, 1, 1], theta[:, 1, 2] = scale * fy, ty
    k = max(1, math.ceil(h * hi / size))
    grid = F.affine_grid(theta, [b, 3, size * k, size * k], align_corners=False)
    mode = "bicubic" if k == 1 else "bilinear"
    out = F.grid_sample(x, grid, mode=mode, padding_mode="reflection", align_corners=False)
    if k > 1:
        out = F.avg_pool2d(out, k)
    return out.clamp_(-1.0, 1.0)


class DeviceBatches:
    """Training batches drawn from images that already live on the device.

    ``images``: uint8 [N, 3, H, W] (any device). Each pass yields ``iterations`` batches of
    float32 [batch_size, 3, size, size] in [-1, 1] (:func:`crop_flip`), walking through
    seeded permutations of the set (every image once before any twice); a new pass draws
    new permutations and crops. ``len()`` is the pass length, which Lightning takes as an
    epoch.
    """

    def __init__(
        self,
        images,
        *,
        size: int,
        batch_size: int,
        iterations: int,
        params: AugmentParams | None = None,
        seed: int = 0,
    ):
        import torch

        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"expected uint8 [N, 3, H, W], got {images.dtype} {images.shape}")
        if len(images) < batch_size:
            raise ValueError(f"need at least {batch_size} training images, got {len(images)}")
        self.images, self.size, self.batch_size = images, int(size), int(batch_size)
        self.iterations, self.params, self.seed = int(iterations), params, int(seed)
        self.passes = 0

    def __len__(self) -> int:
        return self.iterations

    def __iter__(self) -> Iterator:
        import torch

        dev = self.images.device
        gen = torch.Generator(device=dev).manual_seed(self.seed * 1_000_003 + self.passes)
        self.passes += 1
        n, order, at = len(self.images), None, 0
        for _ in range(self.iterations):
            if order is None or at + self.batch_size > n:
                order, at = torch.randperm(n, generator=gen, device=dev), 0
            idx = order[at : at + self.batch_size]
            at += self.batch_size
            yield crop_flip(self.images[idx], self.size, self.params, gen)


class HeldOutBatches:
    """Fixed validation batches (a list Lightning would take for several loaders)."""

    def __init__(self, batches: list):
        self.batches = list(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator:
        return iter(self.batches)


def device_loaders(images: np.ndarray, *, resolution: int, batch_size: int, iterations: int,
                   seed: int, val_samples: int, device: str):
    """(training :class:`DeviceBatches`, held-out batches) from uint8 [N, S, S, 3], both on
    ``device`` and split as :func:`training.train_gan.split_indices` splits the CPU path."""
    import torch

    from training.train_gan import split_indices

    train_idx, held_idx = split_indices(len(images))
    if len(held_idx) == 0 or len(train_idx) < batch_size:
        raise ValueError(f"need at least {batch_size + 1} images, got {len(images)}")

    def upload(idx: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(images[idx])).to(device).permute(0, 3, 1, 2)

    train = DeviceBatches(
        upload(train_idx).contiguous(), size=resolution, batch_size=batch_size,
        iterations=iterations, params=AugmentParams(), seed=seed,
    )
    held = crop_flip(upload(held_idx[:val_samples]), resolution, None)
    return train, HeldOutBatches(held.split(batch_size))
