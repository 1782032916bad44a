"""A resumable checkpoint small enough to commit and carry between machines.

Lightning's checkpoint of the default run holds ~38 MB (generator, EMA generator and
discriminator in fp32 plus both of Adam's moments). The *travel* checkpoint keeps what a
resumed run needs in ≤ 20 MB, losslessly where it matters:

- the EMA generator (the product) in fp32;
- the live generator and discriminator in fp16 (relative rounding ≤ 2⁻¹¹, far below the
  noise of one training step);
- Adam's second moments in bf16; the first moments are dropped when β₁ = 0 (Adam then
  overwrites them with the gradient at every step, so they carry nothing);
- counters, loop state and hyper-parameters as they are.

:func:`resume_path` turns a travel file into an ordinary Lightning checkpoint for
``Trainer.fit(ckpt_path=...)``; :func:`load_checkpoint` reads either kind.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from stratum_kernel.core.paths import atomic_path

TRAVEL_FORMAT = "stratum-travel/1"
_EXACT_PREFIXES = ("g_ema.",)


def pack(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A Lightning checkpoint dict → its travel form (a new dict; the input is untouched)."""
    out = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_states")}
    state = {}
    for k, v in ckpt["state_dict"].items():
        if v.is_floating_point() and not k.startswith(_EXACT_PREFIXES):
            v = v.to(torch.float16)
        state[k] = v.detach().cpu().clone()
    out["state_dict"] = state
    optims = []
    for opt in ckpt.get("optimizer_states", []):
        opt = copy.copy(opt)
        beta1 = [g.get("betas", (1.0, 0))[0] for g in opt.get("param_groups", [])]
        drop_first = bool(beta1) and all(b == 0.0 for b in beta1)
        packed = {}
        for idx, st in opt.get("state", {}).items():
            st = dict(st)
            if drop_first:
                st.pop("exp_avg", None)
            for name in ("exp_avg", "exp_avg_sq"):
                if name in st:
                    st[name] = st[name].to(torch.bfloat16)
            packed[idx] = st
        opt["state"] = packed
        optims.append(opt)
    out["optimizer_states"] = optims
    out["stratum_travel"] = TRAVEL_FORMAT
    return out


def unpack(travel: dict[str, Any]) -> dict[str, Any]:
    """Travel form → a Lightning checkpoint dict (fp32 tensors, zero first moments)."""
    if travel.get("stratum_travel") != TRAVEL_FORMAT:
        return travel
    out = {k: v for k, v in travel.items() if k != "stratum_travel"}
    out["state_dict"] = {
        k: v.float() if v.is_floating_point() else v for k, v in travel["state_dict"].items()
    }
    optims = []
    for opt in travel.get("optimizer_states", []):
        opt = copy.copy(opt)
        state = {}
        for idx, st in opt.get("state", {}).items():
            st = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
                  for k, v in st.items()}
            if "exp_avg" not in st and "exp_avg_sq" in st:
                st["exp_avg"] = torch.zeros_like(st["exp_avg_sq"])
            state[idx] = st
        opt["state"] = state
        optims.append(opt)
    out["optimizer_states"] = optims
    return out


def save_travel(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write the travel form of ``ckpt`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(pack(ckpt), tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning or travel checkpoint as a Lightning checkpoint dict."""
    return unpack(torch.load(str(path), map_location="cpu", weights_only=False))


def resume_path(resume: str | Path | None, out_dir: str | Path) -> str | None:
    """``resume`` as a path Lightning can resume from (a travel file is unpacked first)."""
    if not resume:
        return None
    raw = torch.load(str(resume), map_location="cpu", weights_only=False)
    if raw.get("stratum_travel") != TRAVEL_FORMAT:
        return str(resume)
    target = Path(out_dir) / "checkpoints" / "resumed-from-travel.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        torch.save(unpack(raw), tmp)
    return str(target)


class TravelCheckpoint(Callback):
    """Keeps ``path`` the travel form of the run every ``every`` optimiser steps and at the end."""

    def __init__(self, path: str | Path, every: int):
        self.path = Path(path)
        self.every = max(1, int(every))

    def _save(self, trainer) -> None:
        ckpt = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        save_travel(ckpt, self.path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step and trainer.global_step % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)
