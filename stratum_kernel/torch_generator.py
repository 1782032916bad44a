"""The generator network in PyTorch: latent ``z`` float32 [B, 8, 16, 16] → RGB [B, 3, H, W].

This is the one definition of the network. ``training/`` builds, trains and exports it;
the kernel's optional torch decoder backend loads its EMA weights. Rendering through ONNX
Runtime never imports this module (torch is a training-extra dependency).

Shape of the network (``channels = (c0, c1, c2, c3, c4)``, the default for 256²)::

    z [B, 8, 16, 16] ─ conv3x3 → c0 ─ ResBlock(c0)                       @ 16²  ─ toRGB ─┐
      ─ up×2 ─ ResBlock(c0 → c1)                                        @ 32²  ─ toRGB ─┤
      ─ up×2 ─ ResBlock(c1 → c2)                                        @ 64²  ─ toRGB ─┤
      ─ up×2 ─ ResBlock(c2 → c3)                                        @ 128² ─ toRGB ─┤
      ─ up×2 ─ ResBlock(c3 → c4)                                        @ 256² ─ toRGB ─┤
                                                       tanh( Σ bilinear-upsampled RGB ) ┘

Each ResBlock is GroupNorm → SiLU → conv3x3 → GroupNorm → SiLU → conv3x3 plus a (1×1)
skip, scaled by 1/√2. The image is the sum of per-stage RGB contributions (the skip
architecture of StyleGAN2): low stages lay down colour and layout, high stages add
texture. That lets training run at a lower resolution first (``forward(z, levels=k)``
stops after stage ``k``) and the high stages start from zero-initialised toRGB layers, so
a model trained at 64² already renders a sensible 256² image (its bilinear upsampling)
before fine-tuning adds detail. Channel widths halve towards high resolution, which is
where almost all the compute is; they are chosen for ONNX Runtime speed on a 2-core CPU
(see ``training/README.md``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stratum_kernel.errors import ModelError

LATENT_SHAPE = (8, 16, 16)


def _groups(channels: int, preferred: int = 8) -> int:
    """Largest group count ≤ ``preferred`` that divides ``channels``."""
    for g in range(min(preferred, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm + SiLU residual block: x [B, cin, H, W] → [B, cout, H, W]."""

    def __init__(self, cin: int, cout: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin, groups), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(cout, groups), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) + h) * (1.0 / math.sqrt(2.0))


class Generator(nn.Module):
    """Latent → image generator.

    Parameters
    ----------
    latent_channels, latent_size:
        The latent is float32 [B, latent_channels, latent_size, latent_size].
    channels:
        Feature width per stage; stage 0 runs at ``latent_size``, each later stage doubles
        the resolution, so the output is ``latent_size * 2**(len(channels) - 1)`` pixels.
    groups:
        GroupNorm groups (reduced to a divisor of each width).
    checkpointing:
        Gradient checkpointing of each ResBlock while training (saves memory, costs time).

    The constructor kwargs are kept in ``self.config`` so checkpoints, safetensors files
    and ``meta.json`` can rebuild the same network with ``Generator(**config)``.
    """

    def __init__(
        self,
        *,
        latent_channels: int = LATENT_SHAPE[0],
        latent_size: int = LATENT_SHAPE[1],
        channels: tuple[int, ...] | list[int] = (128, 96, 48, 24, 12),
        groups: int = 8,
        checkpointing: bool = False,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 1 or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        self.config: dict[str, Any] = {
            "latent_channels": int(latent_channels),
            "latent_size": int(latent_size),
            "channels": list(channels),
            "groups": int(groups),
        }
        self.latent_channels = int(latent_channels)
        self.latent_size = int(latent_size)
        self.checkpointing = bool(checkpointing)
        self.stem = nn.Conv2d(latent_channels, channels[0], 3, padding=1)
        blocks, to_rgb = [], []
        cin = channels[0]
        for i, cout in enumerate(channels):
            blocks.append(ResBlock(cin, cout, groups))
            rgb = nn.Conv2d(cout, 3, 1)
            if i >= 2:
                # High stages start silent: the image is first the upsampled low-res one.
                nn.init.zeros_(rgb.weight)
                nn.init.zeros_(rgb.bias)
            to_rgb.append(rgb)
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(to_rgb)

    @property
    def levels(self) -> int:
        return len(self.blocks)

    @property
    def output_size(self) -> int:
        """Side of the full-resolution output in pixels."""
        return self.resolution(self.levels)

    def resolution(self, levels: int) -> int:
        """Side in pixels of the image after the first ``levels`` stages."""
        return self.latent_size * 2 ** (levels - 1)

    def levels_for(self, size: int) -> int:
        """Number of stages whose output is ``size`` pixels; ValueError if none."""
        for k in range(1, self.levels + 1):
            if self.resolution(k) == size:
                return k
        sizes = [self.resolution(k) for k in range(1, self.levels + 1)]
        raise ValueError(f"this generator makes {sizes} pixel images, not {size}")

    def forward(self, z: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """z float32 [B, C, S, S] → image float32 [B, 3, R, R] in [-1, 1].

        ``levels`` (1..len(channels)) stops after that many stages, giving a lower-resolution
        image from the same weights (used for low-resolution training).
        """
        expected = (self.latent_channels, self.latent_size, self.latent_size)
        if z.ndim != 4 or tuple(z.shape[1:]) != expected:
            raise ValueError(f"z must be [B, {', '.join(map(str, expected))}], got {list(z.shape)}")
        levels = self.levels if levels is None else int(levels)
        if not 1 <= levels <= self.levels:
            raise ValueError(f"levels must be in 1..{self.levels}, got {levels}")
        h = self.stem(z)
        rgb = None
        for i in range(levels):
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                rgb = F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False)
            block = self.blocks[i]
            if self.checkpointing and self.training and torch.is_grad_enabled():
                from torch.utils.checkpoint import checkpoint

                h = checkpoint(block, h, use_reentrant=False)
            else:
                h = block(h)
            out = self.to_rgb[i](h)
            rgb = out if rgb is None else rgb + out
        return torch.tanh(rgb)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def generator_from_config(config: dict[str, Any]) -> Generator:
    """Rebuild a :class:`Generator` from its recorded ``config`` (unknown keys are an error)."""
    return Generator(**config)


def load_generator_safetensors(path: str, *, map_location: str = "cpu") -> Generator:
    """Load a generator saved by ``training/export_onnx.py`` (weights + config in metadata)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt", device=map_location) as f:
        metadata = f.metadata() or {}
    if "generator_config" not in metadata:
        raise ModelError(
            f"{path}: no 'generator_config' in the safetensors metadata; re-export the "
            "weights with training/export_onnx.py"
        )
    gen = generator_from_config(json.loads(metadata["generator_config"]))
    gen.load_state_dict(load_file(path, device=map_location))
    gen.eval()
    return gen
