"""The discriminator, and the EMA helper for the generator.

The generator lives in :mod:`stratum_kernel.picture.generator` (one definition shared with
the kernel). The discriminator mirrors it: per-resolution input layers (``from_rgb``),
residual blocks with strided downsampling, then a minibatch-stddev feature and a
global-average head. Because blocks are keyed by resolution, one discriminator serves
training at 32², then 64², then 128² (and 256²): the lower blocks carry over when the
resolution grows (as the generator's lower stages do), and a new input layer fades in.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_D_CHANNELS = {256: 16, 128: 32, 64: 64, 32: 128, 16: 128, 8: 128}


class DBlock(nn.Module):
    """x [B, cin, H, W] → [B, cout, H/2, W/2]: conv3x3, strided conv3x3, avg-pool skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1, stride=2)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(x, 0.2))
        h = self.conv2(F.leaky_relu(h, 0.2))
        s = self.skip(F.avg_pool2d(x, 2))
        return (s + h) * (1.0 / math.sqrt(2.0))


class Discriminator(nn.Module):
    """Image [B, 3, R, R] (R a power of two, 16 ≤ R ≤ max_resolution) → logit [B].

    ``channels`` maps resolution → width; a block at resolution r maps
    ``channels[r] → channels[r/2]``. The head runs at 8².
    """

    def __init__(
        self,
        *,
        max_resolution: int = 256,
        channels: dict[int, int] | None = None,
        mbstd_group: int = 4,
    ):
        super().__init__()
        ch = dict(DEFAULT_D_CHANNELS if channels is None else channels)
        ch = {int(k): int(v) for k, v in ch.items()}
        self.config = {
            "max_resolution": int(max_resolution),
            "channels": {str(k): v for k, v in sorted(ch.items())},
            "mbstd_group": int(mbstd_group),
        }
        self.max_resolution = int(max_resolution)
        self.mbstd_group = int(mbstd_group)
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        r = self.max_resolution
        while r > 8:
            self.from_rgb[str(r)] = nn.Conv2d(3, ch[r], 1)
            self.blocks[str(r)] = DBlock(ch[r], ch[r // 2])
            r //= 2
        c8 = ch[8]
        self.head_conv = nn.Conv2d(c8 + 1, c8, 3, padding=1)
        self.head_fc = nn.Linear(c8, 1)

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        """Append the mean over a group's features of their std (a diversity signal)."""
        b, c, h, w = x.shape
        g = min(self.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [B/g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Logits [B] of images [B, 3, R, R]; ``alpha`` < 1 while resolution R fades in.

        During a fade the first block's output is blended with the next resolution's
        input layer applied to the 2×-average-pooled image (ProGAN), so a fresh input layer
        takes over gradually.
        """
        r = img.shape[-1]
        if str(r) not in self.from_rgb or img.shape[-2] != r:
            raise ValueError(
                f"discriminator takes square images of {sorted(map(int, self.from_rgb))} px, "
                f"got {list(img.shape)}"
            )
        h = self.blocks[str(r)](self.from_rgb[str(r)](img))
        if alpha < 1.0 and str(r // 2) in self.from_rgb:
            low = self.from_rgb[str(r // 2)](F.avg_pool2d(img, 2))
            h = torch.lerp(low, h, float(alpha))
        r //= 2
        while r > 8:
            h = self.blocks[str(r)](h)
            r //= 2
        h = F.leaky_relu(self.head_conv(self._mbstd(h)), 0.2)
        return self.head_fc(h.mean(dim=(2, 3))).squeeze(1)


class EMA:
    """Exponential moving average of a module's parameters into a frozen copy.

    The decay of each update is given by the caller (:meth:`training.schedule.Plan.ema_decay`
    derives it from a half-life in images, so it does not depend on the batch size).
    """

    @staticmethod
    def make_copy(module: nn.Module) -> nn.Module:
        ema = copy.deepcopy(module).eval()
        for p in ema.parameters():
            p.requires_grad_(False)
        return ema

    @staticmethod
    @torch.no_grad()
    def update(ema: nn.Module, module: nn.Module, decay: float) -> None:
        for pe, pm in zip(ema.parameters(), module.parameters(), strict=True):
            pe.lerp_(pm.detach(), 1.0 - decay)
        for be, bm in zip(ema.buffers(), module.buffers(), strict=True):
            be.copy_(bm)
