"""Train the generator: ``python -m training.train_gan --plan 32:30,64:90:15,128:280:30:1.0``.

One run follows a plan of progressive stages (:mod:`training.schedule`): each stage trains
at one resolution for a number of thousand images (kimg), a new stage fading in over its
first part. Learning rate and EMA follow images seen, so a run stopped by ``--max-minutes``
and resumed with ``--resume`` (Lightning restores optimisers, EMA, the image counter and the
data epoch) — even with another batch size — follows the same schedule. ``--init-from``
starts a new run from another run's weights (every tensor whose name and shape match).

Output in ``--out`` (default ``training/outputs/<set>``): ``config.json``,
``checkpoints/last.ckpt`` (+ periodic ones), ``samples/grid-*.png``, ``samples/interp-*.png``,
``validation.jsonl`` and Lightning's CSV log ``csv/``. Export the result with
``training/export_onnx.py --checkpoint <out>/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.core.paths import project_root

HELD_OUT_EVERY = 12  # every 12th image of a set is held out for validation / SWD
DEFAULT_PLAN = "32:30,64:90:15,128:280:30:1.0"


def split_indices(n: int, every: int = HELD_OUT_EVERY) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: every ``every``-th image is held out, deterministically."""
    idx = np.arange(n)
    held = idx % every == 0
    return idx[~held], idx[held]


def build_loaders(
    images: np.ndarray,
    *,
    resolution: int,
    batch_size: int,
    seed: int,
    val_samples: int,
    augment: bool = True,
):
    """Training (cropped and flipped, shuffled, drop_last) and held-out (plain) DataLoaders,
    both yielding float [B, 3, resolution, resolution] in [-1, 1]."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from training.dataset import AugmentedImages, AugmentParams

    train_idx, held_idx = split_indices(len(images))
    if len(held_idx) == 0 or len(train_idx) < batch_size:
        raise ValueError(f"need at least {batch_size + 1} images, got {len(images)}")
    train = AugmentedImages(
        images[train_idx], resolution, params=AugmentParams() if augment else None, seed=seed
    )
    held = AugmentedImages(images[held_idx][:val_samples], resolution, params=None)
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, drop_last=True, generator=gen, num_workers=0
    )
    val_loader = DataLoader(Subset(held, range(len(held))), batch_size=batch_size, shuffle=False)
    return train_loader, val_loader


def init_from(module, ckpt_path: str | Path) -> dict[str, list[str]]:
    """Copy every tensor of a checkpoint whose name and shape match into ``module``
    (the counters stay at zero: this starts a new run)."""
    from training.travel import load_checkpoint

    state = load_checkpoint(ckpt_path)["state_dict"]
    own = module.state_dict()
    loaded, skipped = [], []
    for k, v in state.items():
        if k in own and own[k].shape == v.shape and k not in ("iteration", "images_seen"):
            own[k] = v
            loaded.append(k)
        else:
            skipped.append(k)
    module.load_state_dict(own)
    return {"loaded": loaded, "skipped": skipped}


def auto_precision(accelerator: str = "auto") -> str:
    """``bf16-mixed`` where the hardware runs bf16 natively (a CUDA GPU with bf16, or a CPU
    with AVX512-BF16/AMX through oneDNN: ~3x faster steps), else ``32-true``."""
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16-mixed" if native else "32-true"


def train(
    config: dict[str, Any],
    *,
    images: np.ndarray,
    epoch_iterations: int | None = None,
    resume: str | None = None,
    init: str | None = None,
    checkpoint_every: int = 500,
    max_minutes: float | None = None,
    accelerator: str = "auto",
    precision: str = "32-true",
    progress: bool = True,
    log_every: int = 10,
    clock=None,
    loaders=None,
):
    """Run (or resume) a plan; returns the trained :class:`GANModule` (its ``history``
    holds the validation records). ``clock`` and ``loaders`` let the GPU runner key the plan
    by wall time and feed batches that already live on the GPU."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from training.gan_module import GANConfig, GANModule
    from training.travel import TravelCheckpoint, resume_path

    cfg = GANConfig(**config)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = GANModule(cfg)
    module.clock = clock
    if init and not resume:
        info = init_from(module, init)
        n_in, n_out = len(info["loaded"]), len(info["skipped"])
        print(f"init from {init}: {n_in} tensors loaded, {n_out} skipped")
    (out / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=1) + "\n")
    if loaders is None:
        loaders = build_loaders(
            images,
            resolution=cfg.plan.max_resolution,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            val_samples=cfg.val_samples,
        )
    train_loader, val_loader = loaders
    per_epoch = min(epoch_iterations or len(train_loader), len(train_loader))
    ckpt = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="it{step:07d}",
        every_n_train_steps=2 * checkpoint_every,  # two optimiser steps per iteration
        save_last=True,
        save_top_k=-1,
        auto_insert_metric_name=False,
    )
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=-1,
        max_epochs=10**7,  # the plan (images seen) or max_time ends the run
        limit_train_batches=per_epoch,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        logger=CSVLogger(str(out), name="csv", version=""),
        callbacks=[ckpt, TravelCheckpoint(out / "travel.ckpt", every=2 * checkpoint_every)],
        enable_progress_bar=progress,
        enable_model_summary=False,
        max_time={"minutes": max_minutes} if max_minutes else None,
        deterministic=False,
        log_every_n_steps=log_every,
    )
    t0 = time.perf_counter()
    ckpt_path = resume_path(resume, out)
    if ckpt_path and clock is None:
        from training.travel import load_checkpoint

        seen = int(load_checkpoint(ckpt_path)["state_dict"]["images_seen"])
        if seen >= cfg.plan.total_kimg * 1000:
            print(f"{resume}: the plan ({cfg.plan.total_kimg:g} kimg) is already done "
                  f"({seen / 1000:g} kimg seen); lengthen the plan to train on")
            module.load_state_dict(load_checkpoint(ckpt_path)["state_dict"])
            module.wall_seconds = 0.0
            return module
    with warnings.catch_warnings():
        # Lightning warns that manual-optimisation checkpoints hold post-step weights (what
        # we want) and that modules start in eval mode (the frozen EMA copy, on purpose).
        warnings.filterwarnings("ignore", message=".*manual optimization.*")
        warnings.filterwarnings("ignore", message=".*eval mode.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)
    module.wall_seconds = time.perf_counter() - t0
    trainer.save_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="abstract-v2", help="image set under data/")
    parser.add_argument("--data", help="set folder (default: data/<set>)")
    parser.add_argument(
        "--plan", default=DEFAULT_PLAN, help="stages resolution:kimg[:fade_kimg[:r1_gamma]],..."
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--loss", choices=["rpgan", "logistic"])
    parser.add_argument("--r1-gamma", type=float)
    parser.add_argument("--epoch-iterations", type=int, default=250, help="iterations per epoch")
    parser.add_argument("--checkpoint-every", type=int, default=250, help="iterations")
    parser.add_argument("--config", help="JSON file of GANConfig fields (flags override)")
    parser.add_argument(
        "--generator", help="JSON of Generator kwargs, e.g. '{\"channels\": [...]}'"
    )
    parser.add_argument("--lr", type=float, help="learning rate of G and D")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run folder (default: training/outputs/<set>)")
    parser.add_argument("--resume", help="checkpoint (or travel checkpoint) to resume from")
    parser.add_argument("--init-from", help="checkpoint of another run to start from")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    parser.add_argument("--max-minutes", type=float, help="stop after this wall time")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument(
        "--precision", default="auto", help="auto (bf16-mixed where native), 32-true, bf16-mixed"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from training.dataset import load_images
    from training.schedule import parse_stages

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    root = project_root()
    data = Path(args.data) if args.data else root / "data" / args.set
    out = args.out or str(root / "training" / "outputs" / args.set)
    config: dict[str, Any] = json.loads(Path(args.config).read_text()) if args.config else {}
    plan = dict(config.get("plan") or {})
    plan["stages"] = [s.model_dump() for s in parse_stages(args.plan)]
    config.update({"plan": plan, "batch_size": args.batch_size, "seed": args.seed})
    config["out_dir"] = out
    if args.generator:
        config["generator"] = json.loads(args.generator)
    if args.lr:
        config["lr_g"] = config["lr_d"] = args.lr
    if args.loss:
        config["loss"] = args.loss
    if args.r1_gamma is not None:
        config["r1_gamma"] = args.r1_gamma
    max_res = max(s["resolution"] for s in plan["stages"])
    # Crops are taken from images stored at twice the largest training size (at most 256).
    images = load_images(data, min(256, 2 * max_res), cache=root / "training" / "outputs" / "cache")
    print(f"{len(images)} images from {data}; plan {args.plan} → {out}", flush=True)
    if args.precision == "auto":
        print(f"precision: {auto_precision(args.accelerator)}", flush=True)
    module = train(
        config,
        images=images,
        epoch_iterations=args.epoch_iterations,
        resume=args.resume,
        init=args.init_from,
        checkpoint_every=args.checkpoint_every,
        max_minutes=args.max_minutes,
        accelerator=args.accelerator,
        precision=auto_precision(args.accelerator) if args.precision == "auto" else args.precision,
        progress=not args.no_progress,
    )
    kimg = int(module.images_seen.item()) / 1000
    print(
        f"done: {int(module.iteration.item())} iterations, {kimg:.1f} kimg in "
        f"{module.wall_seconds / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
