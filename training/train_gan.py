"""Train the generator: ``python training/train_gan.py --set abstract-v1 --resolution 64``.

One run trains one resolution stage. A later stage starts from an earlier one's weights
(``--init-from``: the generator's lower stages, the EMA and the discriminator's lower
blocks carry over); an interrupted run resumes exactly with ``--resume <ckpt>`` (Lightning
restores optimisers, schedulers, EMA, the iteration counter and the data epoch).

Output in ``--out`` (default ``training/outputs/<set>-<resolution>``): ``config.json``,
``checkpoints/last.ckpt`` (+ periodic ones), ``samples/grid-*.png``, ``samples/interp-*.png``,
``validation.jsonl`` and Lightning's CSV log ``csv/``. Export the result with
``training/export_onnx.py --checkpoint <out>/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from stratum_kernel.paths import project_root

HELD_OUT_EVERY = 12  # every 12th image of a set is held out for validation / SWD


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
    """Training (augmented, shuffled, drop_last) and held-out (plain) DataLoaders."""
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
    """Copy every tensor of a checkpoint whose name and shape match into ``module``."""
    import torch

    state = torch.load(str(ckpt_path), map_location="cpu", weights_only=False)["state_dict"]
    own = module.state_dict()
    loaded, skipped = [], []
    for k, v in state.items():
        if k in own and own[k].shape == v.shape and k != "iteration":
            own[k] = v
            loaded.append(k)
        else:
            skipped.append(k)
    module.load_state_dict(own)
    return {"loaded": loaded, "skipped": skipped}


def train(
    config: dict[str, Any],
    *,
    images: np.ndarray,
    iterations: int,
    epoch_iterations: int | None = None,
    resume: str | None = None,
    init: str | None = None,
    checkpoint_every: int = 500,
    max_minutes: float | None = None,
    accelerator: str = "auto",
    progress: bool = True,
    log_every: int = 10,
):
    """Run one training stage; returns the trained :class:`GANModule` (its ``history``
    holds the validation records)."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from training.gan_module import GANConfig, GANModule

    cfg = GANConfig(**{**config, "iterations": config.get("iterations", iterations)})
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = GANModule(cfg)
    if init and not resume:
        info = init_from(module, init)
        n_in, n_out = len(info["loaded"]), len(info["skipped"])
        print(f"init from {init}: {n_in} tensors loaded, {n_out} skipped")
    (out / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=1) + "\n")
    train_loader, val_loader = build_loaders(
        images,
        resolution=cfg.resolution,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        val_samples=cfg.val_samples,
    )
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
        precision="32-true",
        max_steps=2 * iterations,  # Lightning counts each optimiser's step
        limit_train_batches=per_epoch,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        logger=CSVLogger(str(out), name="csv", version=""),
        callbacks=[ckpt],
        enable_progress_bar=progress,
        enable_model_summary=False,
        max_time={"minutes": max_minutes} if max_minutes else None,
        deterministic=False,
        log_every_n_steps=log_every,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # Lightning warns that manual-optimisation checkpoints hold post-step weights (what
        # we want) and that modules start in eval mode (the frozen EMA copy, on purpose).
        warnings.filterwarnings("ignore", message=".*manual optimization.*")
        warnings.filterwarnings("ignore", message=".*eval mode.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(module, train_loader, val_loader, ckpt_path=resume)
    module.wall_seconds = time.perf_counter() - t0
    if trainer.global_step % (2 * checkpoint_every):
        trainer.save_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    del torch
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="abstract-v1", help="image set under data/")
    parser.add_argument("--data", help="set folder (default: data/<set>)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--epoch-iterations", type=int, default=250, help="iterations per epoch")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--config", help="JSON file of GANConfig fields (flags override)")
    parser.add_argument(
        "--generator", help="JSON of Generator kwargs, e.g. '{\"channels\": [...]}'"
    )
    parser.add_argument("--lr", type=float, help="learning rate of G and D")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run folder (default: training/outputs/<set>-<res>)")
    parser.add_argument("--resume", help="checkpoint to resume this run from")
    parser.add_argument("--init-from", help="checkpoint of an earlier stage to start from")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    parser.add_argument("--max-minutes", type=float, help="stop after this wall time")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from training.dataset import load_images

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    root = project_root()
    data = Path(args.data) if args.data else root / "data" / args.set
    out = args.out or str(root / "training" / "outputs" / f"{args.set}-{args.resolution}")
    config: dict[str, Any] = json.loads(Path(args.config).read_text()) if args.config else {}
    config.update({"resolution": args.resolution, "batch_size": args.batch_size, "seed": args.seed})
    config["out_dir"] = out
    config["iterations"] = args.iterations
    if args.generator:
        config["generator"] = json.loads(args.generator)
    if args.lr:
        config["lr_g"] = config["lr_d"] = args.lr
    # Crops are taken from images stored at twice the training size (at most 256).
    images = load_images(
        data, min(256, 2 * args.resolution), cache=root / "training" / "outputs" / "cache"
    )
    print(f"{len(images)} images from {data}; training at {args.resolution}² → {out}")
    module = train(
        config,
        images=images,
        iterations=args.iterations,
        epoch_iterations=args.epoch_iterations,
        resume=args.resume,
        init=args.init_from,
        checkpoint_every=args.checkpoint_every,
        max_minutes=args.max_minutes,
        accelerator=args.accelerator,
        progress=not args.no_progress,
    )
    print(f"done: {int(module.iteration.item())} iterations in {module.wall_seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
