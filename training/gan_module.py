"""The GAN as a Lightning module: one training step, regularisers, EMA, validation.

Per iteration (manual optimisation, D then G), at the resolution and fade ``alpha`` that the
plan (:mod:`training.schedule`) gives for the number of images seen so far:

- reals come from the loader at the plan's largest size and are area-downsampled to the
  stage's resolution; while a stage fades in they are blended with their own 2×-blurred
  version by the same ``alpha`` as the generator's new stage (ProGAN), so D compares like
  with like;
- every image D sees — real or fake, in the D step and in the G step — goes through the same
  differentiable augmentation (:mod:`training.augment`);
- D: the chosen adversarial loss (:mod:`training.losses`: ``rpgan`` or ``logistic``), with
  lazy R1 (reals) and, for ``rpgan``, R2 (fakes) every ``reg_every`` iterations, weighted
  ``γ/2 · reg_every``;
- G: the adversarial loss plus two colour regularisers against the real batch: *chroma
  alignment* (L1 between batch mean and std of the opponent chroma channels of fakes and
  reals) and *saturation preservation* (``relu(sat_real − sat_fake)``), which keep short runs
  from drifting or greying out;
- learning rate and EMA decay follow the plan (images, not iterations).

Validation (every epoch, on the held-out set, at the current resolution): a fixed-noise
sample grid PNG, SWD on Laplacian-pyramid patches of the EMA generator's samples vs held-out
reals, interpolation sweeps PNG + smoothness, colour statistics; all logged and appended to
``validation.jsonl``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from stratum_kernel.picture.generator import Generator
from training.augment import DiffAugmentParams, diff_augment
from training.losses import d_loss, g_loss, gradient_penalty
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
from training.schedule import Plan, PlanState, Stage

DEFAULT_PLAN = Plan(
    stages=(
        Stage(resolution=32, kimg=30),
        Stage(resolution=64, kimg=90, fade_kimg=15),
        Stage(resolution=128, kimg=280, fade_kimg=30, r1_gamma=1.0),
    )
)


class GANConfig(BaseModel):
    """Everything that defines a training run (stored in every checkpoint)."""

    model_config = ConfigDict(extra="forbid")

    plan: Plan = DEFAULT_PLAN
    generator: dict[str, Any] = Field(default_factory=dict)  # Generator kwargs
    d_channels: dict[int, int] | None = None
    batch_size: int = Field(default=16, ge=2)
    # logistic + R1 beat rpgan + R1 + R2 in the A/B runs (training/README.md)
    loss: Literal["logistic", "rpgan"] = "logistic"
    r1_gamma: float = Field(default=0.5, ge=0)  # stages may set their own
    r2_gamma: float | None = Field(default=None, ge=0)  # rpgan only; None: same as R1
    reg_every: int = Field(default=4, ge=1)
    augment: DiffAugmentParams | None = Field(default_factory=DiffAugmentParams)
    lr_g: float = Field(default=2e-4, gt=0)
    lr_d: float = Field(default=2e-4, gt=0)
    betas: tuple[float, float] = (0.0, 0.99)
    chroma_weight: float = Field(default=0.5, ge=0)
    saturation_weight: float = Field(default=1.0, ge=0)
    checkpointing: bool = False
    channels_last: bool = True  # oneDNN's fast layout on CPUs (1.3-1.5x per step)
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


def reals_at(batch: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Loader images [B, 3, S, S] → [B, 3, R, R] (area), faded like a growing generator."""
    x = batch
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=resolution, mode="area")
    if alpha < 1.0 and resolution >= 16:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="bilinear")
        x = torch.lerp(low, x, float(alpha))
    return x


class GANModule(L.LightningModule):
    """Generator + discriminator + EMA generator, trained with manual optimisation.

    ``clock`` (optional) returns the plan position in kimg; by default it is the number of
    real images seen / 1000. The GPU runner passes a wall-time clock instead.
    """

    def __init__(self, config: dict[str, Any] | GANConfig | None = None, **_: Any):
        super().__init__()
        cfg = config if isinstance(config, GANConfig) else GANConfig(**(config or {}))
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.generator = Generator(**cfg.generator, checkpointing=cfg.checkpointing)
        for stage in cfg.plan.stages:
            self.generator.levels_for(stage.resolution)  # every stage is one of G's sizes
        self.discriminator = Discriminator(
            max_resolution=self.generator.output_size, channels=cfg.d_channels
        )
        self.g_ema = EMA.make_copy(self.generator)
        self.g_ema.checkpointing = False
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in (self.generator, self.discriminator, self.g_ema):
            net.to(memory_format=self.memory_format)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self.automatic_optimization = False
        self.clock: Callable[[], float] | None = None
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

    # ------------------------------------------------------------------------ the plan

    def position_kimg(self) -> float:
        """Where the run stands in its plan, in thousands of images."""
        if self.clock is not None:
            return float(self.clock())
        return int(self.images_seen.item()) / 1000.0

    def state(self) -> PlanState:
        return self.cfg.plan.state(self.position_kimg())

    @property
    def levels(self) -> int:
        """Generator stages of the current resolution."""
        return self.generator.levels_for(self.state().resolution)

    def native_resolution(self) -> int:
        """The highest resolution fully faded in so far (what an export should decode)."""
        st = self.state()
        if st.alpha >= 1.0 or st.index == 0:
            return st.resolution
        return self.cfg.plan.stages[st.index - 1].resolution

    # -------------------------------------------------------------------- optimisation

    def configure_optimizers(self):
        cfg = self.cfg
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        return [opt_g, opt_d]

    def _noise(self, n: int) -> torch.Tensor:
        z = torch.randn(n, *self._latent_shape(), device=self.device)
        return z.contiguous(memory_format=self.memory_format)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.cfg.augment)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        cfg = self.cfg
        opt_g, opt_d = self.optimizers()
        pos = self.position_kimg()
        if self.clock is None and pos >= cfg.plan.total_kimg:
            self.trainer.should_stop = True  # resumed after the plan was done
            return
        st = cfg.plan.state(pos)
        levels, alpha = self.generator.levels_for(st.resolution), st.alpha
        real = reals_at(batch, st.resolution, alpha).contiguous(memory_format=self.memory_format)
        n = real.shape[0]
        it = int(self.iteration.item())
        lr_scale = cfg.plan.lr_scale(pos)
        for opt, base in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
            for group in opt.optimizer.param_groups:
                group["lr"] = base * lr_scale
        gamma1 = st.stage.r1_gamma if st.stage.r1_gamma is not None else cfg.r1_gamma
        gamma2 = (gamma1 if cfg.r2_gamma is None else cfg.r2_gamma) if cfg.loss == "rpgan" else 0.0
        regularise = it % cfg.reg_every == 0 and (gamma1 > 0 or gamma2 > 0)

        # ---- discriminator
        self.generator.requires_grad_(False)
        self.discriminator.requires_grad_(True)
        with torch.no_grad():
            fake = self.generator(self._noise(n), levels, alpha)
        real_in = real.detach().requires_grad_(regularise and gamma1 > 0)
        fake_in = fake.detach().requires_grad_(regularise and gamma2 > 0)
        d_real = self.discriminator(self._augment(real_in), alpha)
        d_fake = self.discriminator(self._augment(fake_in), alpha)
        loss_d = d_loss(cfg.loss, d_real, d_fake)
        r1 = r2 = torch.zeros((), device=self.device)
        if regularise and gamma1 > 0:
            r1 = gradient_penalty(d_real, real_in)
            loss_d = loss_d + 0.5 * gamma1 * cfg.reg_every * r1
        if regularise and gamma2 > 0:
            r2 = gradient_penalty(d_fake, fake_in)
            loss_d = loss_d + 0.5 * gamma2 * cfg.reg_every * r2
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()

        # ---- generator
        self.generator.requires_grad_(True)
        self.discriminator.requires_grad_(False)
        fake = self.generator(self._noise(n), levels, alpha)
        g_fake = self.discriminator(self._augment(fake), alpha)
        g_real = None
        if cfg.loss == "rpgan":
            with torch.no_grad():
                g_real = self.discriminator(self._augment(real), alpha)
        loss_adv = g_loss(cfg.loss, g_real, g_fake)
        regs = colour_regularisers(fake, real)
        loss_g = (
            loss_adv
            + cfg.chroma_weight * regs["chroma"]
            + cfg.saturation_weight * regs["saturation"]
        )
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.discriminator.requires_grad_(True)

        decay = cfg.plan.ema_decay(pos, n)
        EMA.update(self.g_ema, self.generator, decay)
        self.iteration += 1
        self.images_seen += n
        if self.clock is None and self.position_kimg() >= cfg.plan.total_kimg:
            self.trainer.should_stop = True  # the plan is done (a clock ends by max_time)
        logs = {
            "loss_d": loss_d.detach(),
            "loss_g": loss_adv.detach(),
            "d_real": d_real.detach().mean(),
            "d_fake": d_fake.detach().mean(),
            "reg_chroma": regs["chroma"].detach(),
            "reg_saturation": regs["saturation"].detach(),
            "ema_decay": decay,
            "lr_g": cfg.lr_g * lr_scale,
            "kimg": pos,
            "resolution": float(st.resolution),
            "alpha": alpha,
        }
        if regularise:
            logs.update({"r1": r1.detach(), "r2": r2.detach()})
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=False, batch_size=n)

    # ---------------------------------------------------------------------- validation

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._val_real.append(batch.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        step = int(self.iteration.item())
        if not self._val_real or (self.history and self.history[-1]["iteration"] == step):
            self._val_real = []
            return
        st = self.state()
        res = self.native_resolution()
        levels = self.generator.levels_for(res)
        real = torch.cat(self._val_real)[: self.cfg.val_samples]
        real = reals_at(real, res, 1.0)
        self._val_real = []
        z = self.val_z[: len(real)].numpy()
        with torch.autocast(self.device.type, enabled=False):  # measure in full precision
            fake = generate(self.g_ema, z, levels=levels)
            sweep, frames = interpolation_sweeps(self.g_ema, rows=3, steps=8, levels=levels)
        real_u8 = to_uint8(real)
        swd = sliced_wasserstein(real_u8, fake, seed=self.cfg.seed)
        stats_fake = summarize_stats(colour_stats(fake))
        stats_real = summarize_stats(colour_stats(real_u8))
        metrics = {
            "val_swd": swd["mean"],
            "val_saturation": stats_fake["saturation"],
            "val_chroma": stats_fake["chroma"],
            "val_colourfulness": stats_fake["colourfulness"],
            "val_sharpness": stats_fake["sharpness"],
            "real_saturation": stats_real["saturation"],
            "real_chroma": stats_real["chroma"],
            "real_sharpness": stats_real["sharpness"],
            "val_interp_smoothness": smoothness(frames, 8),
        }
        self.log_dict(metrics, on_step=False, on_epoch=True)
        if self.trainer is not None and not self.trainer.sanity_checking:
            out = Path(self.cfg.out_dir) / "samples"
            cols = math.ceil(math.sqrt(self.cfg.val_grid))
            save_png(out / f"grid-{step:06d}.png", image_grid(fake[: self.cfg.val_grid], cols))
            save_png(out / f"interp-{step:06d}.png", sweep)
            record = {
                "iteration": step,
                "epoch": int(self.current_epoch),
                "kimg": round(self.position_kimg(), 3),
                "resolution": res,
                "stage_resolution": st.resolution,
                "alpha": round(st.alpha, 4),
                **metrics,
            }
            record.update({f"swd_level_{k}": v for k, v in swd.items() if k != "mean"})
            self.history.append(record)
            with open(Path(self.cfg.out_dir) / "validation.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Where the plan stood, so an export (or a resumed time-keyed run) need not infer it
        # from images seen, which differ from the plan's position when a clock keys it.
        checkpoint["plan_kimg"] = self.position_kimg()

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)


def sample_fakes(module: GANModule, count: int, seed: int) -> np.ndarray:
    """uint8 [count, R, R, 3] from the EMA generator at the module's native resolution."""
    z = fixed_latents(count, seed, module._latent_shape())
    return generate(module.g_ema, z, levels=module.generator.levels_for(module.native_resolution()))
