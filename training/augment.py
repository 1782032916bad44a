"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for the discriminator's input.

A GAN trained on a few thousand images lets the discriminator memorise them; augmenting
only the real images teaches the generator to reproduce the augmentation (blur, JPEG,
cutout). Here the *same* random transformations are applied to real and generated images,
in the discriminator step and in the generator step, and every one is differentiable, so
the generator learns the un-augmented distribution while the discriminator sees more
variety than the data holds.

Ops (each applied to an image with probability ``p``):

- ``colour``: brightness ± ``brightness``, saturation × (1 ± ``saturation``), contrast
  × (1 ± ``contrast``), drawn per image;
- ``translation``: an integer shift of up to ``translation`` of the side, zero (mid-grey)
  fill;
- ``cutout``: one square of ``cutout`` of the side set to mid-grey.

Images are float [B, 3, H, W] in [-1, 1]; draws come from the ``generator`` passed in
(or torch's global one), so a seeded run is repeatable.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

OPS = ("colour", "translation", "cutout")


class DiffAugmentParams(BaseModel):
    """Which ops run, with what probability and strength."""

    model_config = ConfigDict(extra="forbid")

    policy: tuple[str, ...] = OPS
    p: float = Field(default=1.0, ge=0, le=1)
    brightness: float = Field(default=0.25, ge=0, le=1)  # added, in [-1, 1] units
    saturation: float = Field(default=0.5, ge=0, le=1)  # relative
    contrast: float = Field(default=0.3, ge=0, le=1)  # relative
    translation: float = Field(default=0.125, ge=0, le=0.5)  # of the side
    cutout: float = Field(default=0.3, ge=0, le=1)  # of the side

    def model_post_init(self, _ctx) -> None:
        unknown = [op for op in self.policy if op not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown}; choose from {list(OPS)}")


def _uniform(shape, lo: float, hi: float, like: torch.Tensor, gen) -> torch.Tensor:
    r = torch.rand(shape, generator=gen, device=like.device, dtype=torch.float32)
    return (lo + (hi - lo) * r).to(like.dtype)


def _chosen(b: int, p: float, like: torch.Tensor, gen) -> torch.Tensor:
    """[B, 1, 1, 1] mask (1 = augment this image) drawn with probability ``p``."""
    if p >= 1.0:
        return torch.ones(b, 1, 1, 1, device=like.device, dtype=like.dtype)
    r = torch.rand(b, 1, 1, 1, generator=gen, device=like.device)
    return (r < p).to(like.dtype)


def colour(x: torch.Tensor, params: DiffAugmentParams, gen=None) -> torch.Tensor:
    b = x.shape[0]
    keep = _chosen(b, params.p, x, gen)
    x = x + keep * _uniform((b, 1, 1, 1), -params.brightness, params.brightness, x, gen)
    grey = x.mean(dim=1, keepdim=True)
    sat = 1 + keep * _uniform((b, 1, 1, 1), -params.saturation, params.saturation, x, gen)
    x = grey + (x - grey) * sat
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    con = 1 + keep * _uniform((b, 1, 1, 1), -params.contrast, params.contrast, x, gen)
    return mean + (x - mean) * con


def translation(x: torch.Tensor, params: DiffAugmentParams, gen=None) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * params.translation + 0.5), int(w * params.translation + 0.5)
    if sh == 0 and sw == 0:
        return x
    keep = _chosen(b, params.p, x, gen).view(b, 1, 1).long()
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), generator=gen, device=x.device) * keep
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=gen, device=x.device) * keep
    ys = torch.arange(h, device=x.device).view(1, h, 1) + dy + sh  # rows of the padded image
    xs = torch.arange(w, device=x.device).view(1, 1, w) + dx + sw
    padded = torch.nn.functional.pad(x, [sw, sw, sh, sh]).permute(0, 2, 3, 1)  # [B, H', W', C]
    bi = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded[bi, ys, xs].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, params: DiffAugmentParams, gen=None) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * params.cutout + 0.5)), max(1, int(w * params.cutout + 0.5))
    keep = _chosen(b, params.p, x, gen).view(b, 1, 1)
    cy = torch.randint(0, h - ch + 1, (b, 1, 1), generator=gen, device=x.device)
    cx = torch.randint(0, w - cw + 1, (b, 1, 1), generator=gen, device=x.device)
    yy = torch.arange(h, device=x.device).view(1, h, 1)
    xx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (yy >= cy) & (yy < cy + ch) & (xx >= cx) & (xx < cx + cw)
    mask = 1 - inside.to(x.dtype) * keep
    return x * mask.unsqueeze(1)


_FUNCS = {"colour": colour, "translation": translation, "cutout": cutout}


def diff_augment(
    x: torch.Tensor, params: DiffAugmentParams | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply ``params.policy`` in order to float [B, 3, H, W] images; None returns ``x``."""
    if params is None or params.p <= 0:
        return x
    for op in params.policy:
        x = _FUNCS[op](x, params, generator)
    return x
