"""The generator network in PyTorch: latent ``z`` float32 [B, 8, 16, 16] → RGB [B, 3, H, W].

This is the one definition of the network. ``training/`` builds, trains and exports it;
the kernel's optional torch decoder backend loads its EMA weights. Rendering through ONNX
Runtime never imports this module (torch is a training-extra dependency).

Shape of the network (``channels = (c0, c1, c2, c3, c4)``, the default reaching 256²)::

    z [B, 8, 16, 16] ─ conv3x3 → c0 ─ FiLM(MLP(flatten z)) ─ ResBlock(c0)   @ 16²  ─ toRGB ─┐
      ─ up×2 ─ ResBlock(c0 → c1)                                           @ 32²  ─ toRGB ─┤
      ─ up×2 ─ ResBlock(c1 → c2) ─ × gate(stage 16²)                       @ 64²  ─ toRGB ─┤
      ─ up×2 ─ ResBlock(c2 → c3) ─ × gate(stage 32²)                       @ 128² ─ toRGB ─┤
      ─ up×2 ─ ResBlock(c3 → c4) ─ × gate(stage 64²)                       @ 256² ─ toRGB ─┤
                                                          tanh( Σ bilinear-upsampled RGB ) ┘

Each ResBlock is GroupNorm → SiLU → conv3x3 → GroupNorm → SiLU → conv3x3 plus a (1×1)
skip, scaled by 1/√2. The image is the sum of per-stage RGB contributions (the skip
architecture of StyleGAN2): low stages lay down colour and layout, high stages add
texture. ``forward(z, levels=k)`` stops after stage ``k``, so one set of weights gives an
image at every stage: training grows 32² → 64² → 128² (a new stage fades in through
``alpha``) and the ONNX export takes the highest trained stage (the model's *native*
size).

Two image-wide paths, because a 3×3-conv stack lets an output pixel see only nearby
latent cells while a training image keeps one palette across the frame:

- **FiLM from the whole latent** (``global_dim``): an MLP of the flattened z gives a
  per-channel scale and shift of the 16² features, so colour and contrast can be decided
  for the whole frame at once.
- **Skip-layer excitation** (``excitation``, FastGAN, Liu et al. 2021): the features two
  stages below, pooled to 4² and squeezed to one gate per channel, multiply the features
  of stages ≥ 64² — a cheap global signal where the convolutions are most local.

Both start as the identity (their last layers are zero-initialised), as do the toRGB of
stages ≥ 64², so a fresh network is the smooth upsampling of its 32² image.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stratum_kernel.core.errors import ModelError

LATENT_SHAPE = (8, 16, 16)
DEFAULT_CHANNELS = (192, 128, 48, 24, 12)
DEFAULT_GLOBAL_DIM = 128


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


def _reflect1(x: torch.Tensor) -> torch.Tensor:
    """Reflect-pad the last two axes by one (``F.pad(mode="reflect")``), written with
    slices so the ONNX export keeps static shapes."""
    x = torch.cat([x[..., 1:2, :], x, x[..., -2:-1, :]], dim=-2)
    return torch.cat([x[..., 1:2], x, x[..., -2:-1]], dim=-1)


class Excitation(nn.Module):
    """Skip-layer excitation: low [B, cin, h, w] → gates [B, cout, 1, 1] in (0, 2).

    ``2·sigmoid`` of a zero-initialised 1×1 conv, so a fresh gate is exactly 1.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, cout, 4)  # 4×4 pooled map → 1×1
        self.expand = nn.Conv2d(cout, cout, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(low, 4)
        return 2.0 * torch.sigmoid(self.expand(F.silu(self.squeeze(pooled))))


class LatentFiLM(nn.Module):
    """Flattened z [B, C·S·S] → per-channel (scale, shift) [B, c, 1, 1] each; starts at (1, 0)."""

    def __init__(self, latent_numel: int, hidden: int, channels: int):
        super().__init__()
        self.hidden = nn.Linear(latent_numel, hidden)
        self.out = nn.Linear(hidden, 2 * channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = F.silu(self.hidden(z.flatten(1)))
        scale, shift = self.out(g).chunk(2, dim=1)
        return (1.0 + scale)[:, :, None, None], shift[:, :, None, None]


class Generator(nn.Module):
    """Latent → image generator.

    Parameters
    ----------
    latent_channels, latent_size:
        The latent is float32 [B, latent_channels, latent_size, latent_size].
    channels:
        Feature width per stage; stage 0 runs at ``latent_size``, each later stage doubles
        the resolution, so the full output is ``latent_size * 2**(len(channels) - 1)`` px.
    groups:
        GroupNorm groups (reduced to a divisor of each width).
    global_dim:
        Hidden width of the latent FiLM path (0 turns it off).
    excitation:
        Skip-layer excitation of stages ≥ 2 from the stage two below.
    latent_blur:
        Low-pass the latent grid before the first convolution ([1, 2, 1]² binomial, reflected
        edges, rescaled so unit white noise stays unit variance). Without it the per-cell
        white noise of z reaches the image as a checkerboard at the latent grid's Nyquist
        frequency (period 2 cells: 16 px at 128²), which the discriminator was not seen to
        remove in 150 kimg on the CPU; FiLM still sees the raw z.
    checkpointing:
        Gradient checkpointing of each ResBlock while training (saves memory, costs time).

    The constructor kwargs (but ``checkpointing``) are kept in ``self.config`` so
    checkpoints, safetensors files and ``meta.json`` rebuild the same network with
    ``Generator(**config)``.
    """

    def __init__(
        self,
        *,
        latent_channels: int = LATENT_SHAPE[0],
        latent_size: int = LATENT_SHAPE[1],
        channels: tuple[int, ...] | list[int] = DEFAULT_CHANNELS,
        groups: int = 8,
        global_dim: int = DEFAULT_GLOBAL_DIM,
        excitation: bool = True,
        latent_blur: bool = False,
        checkpointing: bool = False,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 1 or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        if global_dim < 0:
            raise ValueError(f"global_dim must be >= 0, got {global_dim}")
        self.config: dict[str, Any] = {
            "latent_channels": int(latent_channels),
            "latent_size": int(latent_size),
            "channels": list(channels),
            "groups": int(groups),
            "global_dim": int(global_dim),
            "excitation": bool(excitation),
        }
        if latent_blur:  # recorded only when on, so older configs stay valid as they are
            self.config["latent_blur"] = True
        self.latent_channels = int(latent_channels)
        self.latent_size = int(latent_size)
        self.checkpointing = bool(checkpointing)
        self.stem = nn.Conv2d(latent_channels, channels[0], 3, padding=1)
        self.latent_blur = bool(latent_blur)
        if self.latent_blur:
            k = torch.tensor([1.0, 2.0, 1.0])
            k = torch.outer(k, k) / 16.0
            k = k / k.square().sum().sqrt()  # unit white noise keeps unit variance
            self.register_buffer("_blur", k.expand(latent_channels, 1, 3, 3).clone(),
                                 persistent=False)
        numel = latent_channels * latent_size * latent_size
        self.film = LatentFiLM(numel, global_dim, channels[0]) if global_dim else None
        blocks, to_rgb, gates = [], [], {}
        cin = channels[0]
        for i, cout in enumerate(channels):
            blocks.append(ResBlock(cin, cout, groups))
            rgb = nn.Conv2d(cout, 3, 1)
            if i >= 2:
                # High stages start silent: the image is first the upsampled low-res one.
                nn.init.zeros_(rgb.weight)
                nn.init.zeros_(rgb.bias)
                if excitation:
                    gates[str(i)] = Excitation(channels[i - 2], cout)
            to_rgb.append(rgb)
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(to_rgb)
        self.gates = nn.ModuleDict(gates)

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

    def _block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        block = self.blocks[i]
        if self.checkpointing and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(block, h, use_reentrant=False)
        return block(h)

    def forward(
        self, z: torch.Tensor, levels: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """z float32 [B, C, S, S] → image float32 [B, 3, R, R] in [-1, 1].

        ``levels`` (1..len(channels)) stops after that many stages, giving a lower-resolution
        image from the same weights. ``alpha`` in [0, 1] weighs the last stage's RGB
        contribution while that stage fades in during training (1 = fully in).
        """
        expected = (self.latent_channels, self.latent_size, self.latent_size)
        if z.ndim != 4 or tuple(z.shape[1:]) != expected:
            raise ValueError(f"z must be [B, {', '.join(map(str, expected))}], got {list(z.shape)}")
        levels = self.levels if levels is None else int(levels)
        if not 1 <= levels <= self.levels:
            raise ValueError(f"levels must be in 1..{self.levels}, got {levels}")
        if self.latent_blur:
            z_grid = F.conv2d(_reflect1(z), self._blur, groups=self.latent_channels)
        else:
            z_grid = z
        h = self.stem(z_grid)
        if self.film is not None:
            scale, shift = self.film(z)
            h = h * scale + shift
        feats: list[torch.Tensor] = []
        rgb = None
        for i in range(levels):
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                rgb = F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False)
            h = self._block(i, h)
            if str(i) in self.gates:
                h = h * self.gates[str(i)](feats[i - 2])
            feats.append(h)
            out = self.to_rgb[i](h)
            if i == levels - 1 and i > 0 and alpha < 1.0:
                out = out * float(alpha)
            rgb = out if rgb is None else rgb + out
        return torch.tanh(rgb)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def generator_from_config(config: dict[str, Any]) -> Generator:
    """Rebuild a :class:`Generator` from its recorded ``config`` (unknown keys are an error).

    A config written before the image-wide paths existed (no ``global_dim`` /
    ``excitation`` keys) rebuilds the network it described: both off.
    """
    config = {"global_dim": 0, "excitation": False, **config}
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
