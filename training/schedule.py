"""The training plan: progressive stages, learning rate and EMA, all keyed by images seen.

A run is a list of :class:`Stage` s, each training at one resolution for ``kimg`` thousand
images; a stage after the first fades its resolution in over its first ``fade_kimg``
(the generator's new toRGB and the discriminator's new input layer are blended in by
``alpha`` from 0 to 1, ProGAN-style). Everything that changes during a run is a function of
the position in the plan measured in images — never in iterations — so a run stopped by wall
time and resumed, or resumed with another batch size, follows the same curve:

- the stage, its resolution and fade ``alpha``: :meth:`Plan.state`;
- the learning rate: a short linear warm-up, then a cosine from 1 to ``lr_min_ratio`` over
  the whole plan;
- the EMA of the generator: a half-life in images (``ema_half_life_kimg``), ramped up as
  ``ema_rampup`` × images seen early on (StyleGAN's rule), so the decay per step follows
  from the batch size.

The GPU runner keys the same plan by wall time instead (the position is the elapsed
fraction of its budget × the plan's length), so one plan serves both.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Stage(BaseModel):
    """One resolution of the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: int = Field(ge=8, le=1024)
    kimg: float = Field(gt=0)  # thousands of real images shown in this stage
    fade_kimg: float = Field(default=0.0, ge=0)  # the first part of the stage that fades in
    r1_gamma: float | None = Field(default=None, ge=0)  # None: the run's gamma

    @model_validator(mode="after")
    def _fade_inside(self) -> Stage:
        if self.fade_kimg > self.kimg:
            raise ValueError(f"fade_kimg {self.fade_kimg} is longer than the stage ({self.kimg})")
        if self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two, got {self.resolution}")
        return self


def parse_stages(text: str) -> list[Stage]:
    """``"32:40,64:80:20,128:200:30"`` → stages (resolution:kimg[:fade_kimg[:gamma]])."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        fields = part.split(":")
        if not 2 <= len(fields) <= 4:
            raise ValueError(f"stage {part!r}: write resolution:kimg[:fade_kimg[:r1_gamma]]")
        res, kimg, *rest = fields
        stage = {"resolution": int(res), "kimg": float(kimg)}
        if rest:
            stage["fade_kimg"] = float(rest[0])
        if len(rest) > 1:
            stage["r1_gamma"] = float(rest[1])
        stages.append(Stage(**stage))
    if not stages:
        raise ValueError("the plan needs at least one stage")
    return stages


@dataclass(frozen=True)
class PlanState:
    """Where a position (in kimg) falls: the stage, its resolution and fade."""

    index: int
    stage: Stage
    alpha: float  # 1 = the stage's resolution fully in
    progress: float  # position / plan length, clamped to [0, 1]

    @property
    def resolution(self) -> int:
        return self.stage.resolution


class Plan(BaseModel):
    """Stages plus the schedules that run across them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...]
    lr_warmup_kimg: float = Field(default=2.0, ge=0)
    lr_min_ratio: float = Field(default=0.1, ge=0, le=1)
    ema_half_life_kimg: float = Field(default=10.0, gt=0)
    ema_rampup: float | None = Field(default=0.05, gt=0)

    @model_validator(mode="after")
    def _growing(self) -> Plan:
        if not self.stages:
            raise ValueError("the plan needs at least one stage")
        res = [s.resolution for s in self.stages]
        if any(b < a for a, b in itertools.pairwise(res)):
            raise ValueError(f"stage resolutions must not shrink, got {res}")
        return self

    @property
    def total_kimg(self) -> float:
        return float(sum(s.kimg for s in self.stages))

    @property
    def max_resolution(self) -> int:
        return self.stages[-1].resolution

    def state(self, kimg: float) -> PlanState:
        """The stage at ``kimg`` thousand images (past the end: the last stage, alpha 1)."""
        start = 0.0
        for i, stage in enumerate(self.stages):
            end = start + stage.kimg
            if kimg < end or i == len(self.stages) - 1:
                alpha = 1.0
                if stage.fade_kimg > 0 and i > 0:
                    grown = self.stages[i - 1].resolution < stage.resolution
                    alpha = min(1.0, max(0.0, (kimg - start) / stage.fade_kimg)) if grown else 1.0
                return PlanState(i, stage, alpha, min(1.0, max(0.0, kimg / self.total_kimg)))
            start = end
        raise AssertionError("unreachable")

    def lr_scale(self, kimg: float) -> float:
        """Learning-rate multiplier at ``kimg``: warm-up, then cosine to ``lr_min_ratio``."""
        if self.lr_warmup_kimg > 0 and kimg < self.lr_warmup_kimg:
            return max(kimg / self.lr_warmup_kimg, 0.01)
        t = min(1.0, max(0.0, kimg / self.total_kimg))
        return self.lr_min_ratio + (1 - self.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    def ema_decay(self, kimg: float, batch_size: int) -> float:
        """Per-step EMA decay for a batch of ``batch_size`` after ``kimg`` thousand images."""
        half_life = self.ema_half_life_kimg * 1000.0
        if self.ema_rampup is not None:
            half_life = min(half_life, kimg * 1000.0 * self.ema_rampup)
        if half_life <= 0:
            return 0.0
        return 0.5 ** (batch_size / half_life)
