"""The GAN as a Lightning module: losses, regularisers, EMA, validation.

Losses (per iteration, manual optimisation, D then G):

- D: non-saturating logistic ``softplus(D(G(z))) + softplus(-D(x))``; every
  ``r1_every`` iterations the lazy R1 penalty ``(γ/2)·‖∇ₓD(x)‖²·r1_every`` on reals.
- G: ``softplus(-D(G(z)))`` plus two colour regularisers against the real batch:
  *chroma alignment* — L1 between the batch mean and std of the opponent chroma channels
  (r−g, (r+g)/2−b) of fakes and reals (keeps the colour distribution from drifting), and
  *saturation preservation* — ``relu(sat_real − sat_fake)`` on batch-mean saturation (GANs
  trained briefly tend to grey out; this pushes back only when fakes are duller).

AdamW β = (0.5, 0.999), cosine learning-rate decay over ``iterations``; EMA of G (0.999
with warm-up ramp, :class:`training.models.EMA`); fp32. Validation (every epoch, on the
held-out set): a fixed-noise sample grid PNG, SWD on Laplacian-pyramid patches of the EMA
generator's samples vs held-out reals, interpolation sweeps PNG + smoothness, and
saturation/chroma statistics, all logged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from stratum_kernel.torch_generator import Generator
from training.metrics import colour_stats, sliced_wasserstein, summarize_stats
from training.models import EMA, Discriminator
from training.sampling import (
    fixed_latents,
    generate,
    image_grid,
    interpolation_sweeps,
    save_png,
    smoothness,
    to_uint8,
)


class GANConfig(BaseModel):
    """Everything that defines a training run (stored in every checkpoint)."""

    model_config = ConfigDict(extra="forbid")

    resolution: int = 64  # training resolution (a stage of the generator)
    generator: dict[str, Any] = Field(default_factory=dict)  # Generator kwargs
    d_channels: dict[int, int] | None = None
    batch_size: int = Field(default=16, ge=2)
    iterations: int = Field(default=20_000, ge=1)  # G+D iterations (for the cosine schedule)
    lr_g: float = Field(default=2e-4, gt=0)
    lr_d: float = Field(default=2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_min_ratio: float = Field(default=0.1, ge=0, le=1)
    r1_gamma: float = Field(default=10.0, ge=0)
    r1_every: int = Field(default=16, ge=1)
    chroma_weight: float = Field(default=0.5, ge=0)
    saturation_weight: float = Field(default=1.0, ge=0)
    ema_decay: float = Field(default=0.999, gt=0, lt=1)
    checkpointing: bool = False
    seed: int = 0
    val_samples: int = Field(default=64, ge=4)
    val_grid: int = Field(default=16, ge=1)
    out_dir: str = "training/outputs/run"


def chroma_channels(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] → opponent chroma [B, 2, H, W] (r−g, (r+g)/2−b)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack([r - g, 0.5 * (r + g) - b], dim=1) * 0.5


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Mean HSV saturation per image [B] of [B, 3, H, W] images in [-1, 1]."""
    y = (x + 1) * 0.5
    mx = y.amax(dim=1)
    mn = y.amin(dim=1)
    return ((mx - mn) / (mx + 1e-3)).mean(dim=(1, 2))


def colour_regularisers(fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
    """Chroma-alignment and saturation-preservation terms (real is treated as a constant)."""
    cf, cr = chroma_channels(fake), chroma_channels(real.detach())
    chroma = (cf.mean(dim=(0, 2, 3)) - cr.mean(dim=(0, 2, 3))).abs().sum() + (
        cf.std(dim=(0, 2, 3)) - cr.std(dim=(0, 2, 3))
    ).abs().sum()
    sat = F.relu(saturation(real.detach()).mean() - saturation(fake).mean())
    return {"chroma": chroma, "saturation": sat}


class GANModule(L.LightningModule):
    """Generator + discriminator + EMA generator, trained with manual optimisation."""

    def __init__(self, config: dict[str, Any] | GANConfig | None = None, **_: Any):
        super().__init__()
        cfg = config if isinstance(config, GANConfig) else GANConfig(**(config or {}))
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.generator = Generator(**cfg.generator, checkpointing=cfg.checkpointing)
        self.levels = self.generator.levels_for(cfg.resolution)
        self.discriminator = Discriminator(
            max_resolution=self.generator.output_size, channels=cfg.d_channels
        )
        self.g_ema = EMA.make_copy(self.generator)
        self.g_ema.checkpointing = False
        self.ema = EMA(cfg.ema_decay)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.automatic_optimization = False
        self.save_hyperparameters(
            {"config": cfg.model_dump(mode="json"), "generator": self.generator.config}
        )
        self.val_z = torch.from_numpy(
            fixed_latents(cfg.val_samples, cfg.seed + 1000, self._latent_shape())
        )
        self._val_real: list[torch.Tensor] = []
        self.history: list[dict[str, float]] = []

    def _latent_shape(self) -> tuple[int, int, int]:
        g = self.generator
        return (g.latent_channels, g.latent_size, g.latent_size)

    # -------------------------------------------------------------------- optimisation

    def configure_optimizers(self):
        cfg = self.cfg
        opt_g = torch.optim.AdamW(
            self.generator.parameters(), lr=cfg.lr_g, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
        opt_d = torch.optim.AdamW(
            self.discriminator.parameters(),
            lr=cfg.lr_d,
            betas=cfg.betas,
            weight_decay=cfg.weight_decay,
        )

        def cosine(step: int) -> float:
            t = min(step / max(cfg.iterations, 1), 1.0)
            return cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

        sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, cosine)
        sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, cosine)
        return [opt_g, opt_d], [sched_g, sched_d]

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, *self._latent_shape(), device=self.device)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        cfg = self.cfg
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        real = batch
        n = real.shape[0]
        it = int(self.iteration.item())

        # ---- discriminator
        self.generator.requires_grad_(False)
        self.discriminator.requires_grad_(True)
        with torch.no_grad():
            fake = self.generator(self._noise(n), self.levels)
        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake)
        loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        r1 = torch.zeros((), device=self.device)
        if cfg.r1_gamma > 0 and it % cfg.r1_every == 0:
            real_r = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(
                self.discriminator(real_r).sum(), real_r, create_graph=True
            )
            r1 = grad.pow(2).sum(dim=(1, 2, 3)).mean()
            loss_d = loss_d + 0.5 * cfg.r1_gamma * r1 * cfg.r1_every
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        sched_d.step()

        # ---- generator
        self.generator.requires_grad_(True)
        self.discriminator.requires_grad_(False)
        fake = self.generator(self._noise(n), self.levels)
        loss_adv = F.softplus(-self.discriminator(fake)).mean()
        regs = colour_regularisers(fake, real)
        loss_g = (
            loss_adv
            + cfg.chroma_weight * regs["chroma"]
            + cfg.saturation_weight * regs["saturation"]
        )
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        sched_g.step()
        self.discriminator.requires_grad_(True)

        decay = self.ema.update(self.g_ema, self.generator, it)
        self.iteration += 1
        self.log_dict(
            {
                "loss_d": loss_d.detach(),
                "loss_g": loss_adv.detach(),
                "d_real": d_real.detach().mean(),
                "d_fake": d_fake.detach().mean(),
                "reg_chroma": regs["chroma"].detach(),
                "reg_saturation": regs["saturation"].detach(),
                "ema_decay": decay,
                "lr_g": sched_g.get_last_lr()[0],
            },
            prog_bar=False,
            on_step=True,
            on_epoch=False,
            batch_size=n,
        )
        if r1.item() > 0:
            self.log("r1", r1.detach(), on_step=True, on_epoch=False, batch_size=n)

    # ---------------------------------------------------------------------- validation

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._val_real.append(batch.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_real:
            return
        real = torch.cat(self._val_real)[: self.cfg.val_samples]
        self._val_real = []
        z = self.val_z[: len(real)].numpy()
        fake = generate(self.g_ema, z, levels=self.levels)
        real_u8 = to_uint8(real)
        swd = sliced_wasserstein(real_u8, fake, seed=self.cfg.seed)
        stats_fake = summarize_stats(colour_stats(fake))
        stats_real = summarize_stats(colour_stats(real_u8))
        sweep, frames = interpolation_sweeps(self.g_ema, rows=3, steps=8, levels=self.levels)
        metrics = {
            "val_swd": swd["mean"],
            "val_saturation": stats_fake["saturation"],
            "val_chroma": stats_fake["chroma"],
            "val_colourfulness": stats_fake["colourfulness"],
            "val_sharpness": stats_fake["sharpness"],
            "real_saturation": stats_real["saturation"],
            "real_chroma": stats_real["chroma"],
            "val_interp_smoothness": smoothness(frames, 8),
        }
        self.log_dict(metrics, on_step=False, on_epoch=True)
        if self.trainer is not None and not self.trainer.sanity_checking:
            out = Path(self.cfg.out_dir) / "samples"
            step = int(self.iteration.item())
            cols = math.ceil(math.sqrt(self.cfg.val_grid))
            save_png(out / f"grid-{step:06d}.png", image_grid(fake[: self.cfg.val_grid], cols))
            save_png(out / f"interp-{step:06d}.png", sweep)
            record = {"iteration": step, "epoch": int(self.current_epoch), **metrics}
            record.update({f"swd_level_{k}": v for k, v in swd.items() if k != "mean"})
            self.history.append(record)
            with open(Path(self.cfg.out_dir) / "validation.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)


def sample_fakes(module: GANModule, count: int, seed: int) -> np.ndarray:
    """uint8 [count, R, R, 3] from the EMA generator at the module's training resolution."""
    z = fixed_latents(count, seed, module._latent_shape())
    return generate(module.g_ema, z, levels=module.levels)
