"""Train the generator on one GPU for a time budget:
``python -m training.gpu_train --minutes 8 --out DIR``.

One command for a borrowed machine (one CUDA GPU, many CPU cores, minutes of time):

1. the procedural set (``abstract-v2``: 5000 images of 256², seeds 0.., as
   ``training/cpu_run.sh`` makes it) is generated in a process pool over all cores, or
   reused where its images already exist;
2. the training images go to the GPU once, as one uint8 tensor [N, 3, H, W]; random crops
   and flips (the CPU path's :class:`training.dataset.AugmentParams`) are drawn there per
   batch (:mod:`training.gpu_data`), DiffAugment then runs in the GAN module as always;
3. the progressive plan (default 64² → 128² → 256²) is keyed by **wall time**: a
   :class:`PlanClock` maps the elapsed fraction of ``--minutes`` onto the plan's length, so
   every stage gets its share of the budget whatever the GPU's speed; learning rate and
   EMA follow the same position. Training itself is :func:`training.train_gan.train`
   (bf16 autocast on the GPU), started fresh, ``--init-from`` another run's weights (e.g.
   ``training/checkpoints/cpu-run.ckpt``) or ``--resume`` d;
4. ``DIR`` receives only small files (each ≤ 16 MB, so they can be fetched back):
   ``generator_ema.safetensors``, ``travel.ckpt`` (the travel checkpoint less Adam's
   moments: what ``training/export_onnx.py --checkpoint`` reads, and what ``--resume``
   continues), ``validation.jsonl``, ``metrics.csv``, ``config.json``, ``grid.png`` and
   ``summary.json``. Lightning's full checkpoints stay in the work folder (``--work``).

With ``--device cpu`` and tiny settings the same code path runs on a CPU (the tests do).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stratum_kernel.core.paths import project_root, write_text_atomic
from training.dataset import load_images, read_manifest
from training.gpu_data import crop_flip, device_loaders
from training.schedule import Plan, PlanState, Stage, parse_stages

MAX_RESULT_BYTES = 16_000_000  # what one fetched-back file may weigh
SUMMARY_FORMAT = "stratum-gpu-run/1"
STORE_MAX = 256  # images are held at twice the largest stage, at most this (as train_gan)


# ------------------------------------------------------------------------- the run config


class GpuRunConfig(BaseModel):
    """Everything one ``gpu_train`` run is given (written into ``summary.json``)."""

    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(gt=0)  # the training budget; the plan is spread over it
    out: str  # the small files to fetch back
    work: str = "training/outputs/gpu-run"  # Lightning's checkpoints, logs, samples
    set: str = "abstract-v2"
    data: str | None = None  # set folder (default data/<set>)
    cache: str = "training/outputs/cache"  # the decoded set as .npy
    count: int = Field(default=5000, ge=13)  # at least one held-out image and a batch
    size: int = Field(default=256, ge=16)  # side of the generated images
    data_seed: int = 0  # base seed of the set (image i has seed data_seed + i)
    workers: int = Field(default=0, ge=0)  # processes making the set; 0: every core
    plan: str | None = None  # train_gan syntax; overrides plan_resolutions
    plan_resolutions: tuple[int, ...] = (64, 128, 256)
    plan_kimg: float = Field(default=600.0, gt=0)  # the plan's length in its own units
    batch_size: int = Field(default=128, ge=2)
    device: Literal["auto", "cuda", "cpu"] = "auto"
    precision: str = "auto"  # auto: bf16-mixed where native (every recent CUDA GPU)
    epoch_iterations: int = Field(default=400, ge=1)  # validation after each epoch
    checkpoint_every: int = Field(default=1000, ge=1)  # iterations
    init_from: str | None = None
    resume: str | None = None
    generator: dict[str, Any] | None = None  # Generator kwargs (default: the checkpoint's)
    seed: int = 0
    final_samples: int = Field(default=256, ge=4)  # images per side of the final SWD
    threads: int | None = None  # torch intra-op threads (CPU)
    progress: bool = False

    @field_validator("plan_resolutions", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return tuple(int(x) for x in v.split(",") if x.strip()) if isinstance(v, str) else v

    def resolve(self, path: str) -> Path:
        """A path of this config, relative ones taken from the project root."""
        p = Path(path)
        return p if p.is_absolute() else project_root() / p

    def set_dir(self) -> Path:
        return Path(self.data) if self.data else project_root() / "data" / self.set


# ------------------------------------------------------------------------ plan and clock


def time_plan(
    resolutions: tuple[int, ...] | list[int], *, kimg: float, fade: float = 0.25
) -> Plan:
    """A progressive plan of ``kimg`` units over ``resolutions``: stage i gets a share ∝ i+1
    (64/128/256: 1/6, 1/3, 1/2 of the time, most where the detail is learned); each grown
    stage fades in over its first ``fade``; R1 γ = 1 from 128² on, as the CPU plan's 128²."""
    res = [int(r) for r in resolutions]
    weights = np.arange(1, len(res) + 1, dtype=float)
    stages = []
    for i, (r, w) in enumerate(zip(res, weights / weights.sum(), strict=True)):
        stage_kimg = float(kimg * w)
        grown = i > 0 and res[i - 1] < r
        stages.append(
            Stage(
                resolution=r,
                kimg=stage_kimg,
                fade_kimg=fade * stage_kimg if grown else 0.0,
                r1_gamma=1.0 if r >= 128 else None,
            )
        )
    return Plan(stages=tuple(stages))


class PlanClock:
    """The plan's position from wall time, for :attr:`GANModule.clock`.

    ``clock()`` → ``start + (total − start) · min(1, elapsed / budget)`` in the plan's kimg
    units; the clock starts at its first reading (the first training step), so dataset,
    upload and compile time do not eat into the first stage. Each stage's first reading is
    recorded in :attr:`stages_reached` (and passed to ``on_stage``).
    """

    def __init__(
        self,
        plan: Plan,
        budget_s: float,
        *,
        start_kimg: float = 0.0,
        now: Callable[[], float] = time.monotonic,
        on_stage: Callable[[dict[str, Any]], None] | None = None,
    ):
        if budget_s <= 0:
            raise ValueError(f"the time budget must be positive, got {budget_s} s")
        self.plan, self.budget_s, self.now, self.on_stage = plan, float(budget_s), now, on_stage
        self.start_kimg = min(max(0.0, float(start_kimg)), plan.total_kimg)
        self.t0: float | None = None
        self.stages_reached: list[dict[str, Any]] = []

    def elapsed(self) -> float:
        """Seconds since the first reading (0 before it)."""
        return 0.0 if self.t0 is None else self.now() - self.t0

    def position(self, elapsed_s: float) -> float:
        """Plan position (kimg units) after ``elapsed_s`` seconds of the budget."""
        frac = min(1.0, max(0.0, elapsed_s / self.budget_s))
        return self.start_kimg + (self.plan.total_kimg - self.start_kimg) * frac

    def state(self, elapsed_s: float) -> PlanState:
        """The stage (resolution, fade) after ``elapsed_s`` seconds."""
        return self.plan.state(self.position(elapsed_s))

    def __call__(self) -> float:
        if self.t0 is None:
            self.t0 = self.now()
        elapsed = self.elapsed()
        pos = self.position(elapsed)
        st = self.plan.state(pos)
        if not self.stages_reached or self.stages_reached[-1]["index"] != st.index:
            entry = {
                "index": st.index,
                "resolution": st.resolution,
                "entered_at_s": round(elapsed, 2),
                "plan_kimg": round(pos, 3),
            }
            self.stages_reached.append(entry)
            if self.on_stage is not None:
                self.on_stage(entry)
        return pos


# ---------------------------------------------------------------------------- data set


def set_is_complete(set_dir: Path, *, count: int, size: int, base_seed: int) -> bool:
    """Whether ``set_dir`` already holds images 0..count-1 of ``size``² with those seeds."""
    try:
        records = read_manifest(set_dir)
    except ValueError:
        return False
    if len(records) < count:
        return False
    for i, rec in enumerate(sorted(records, key=lambda r: r.file)[:count]):
        if rec.seed != base_seed + i or (rec.width, rec.height) != (size, size):
            return False
        if not (set_dir / rec.file).is_file():
            return False
    return True


def build_set(set_dir: Path, *, count: int, size: int, base_seed: int, workers: int) -> str:
    """Make (or keep) the procedural set; returns what was done, for the summary."""
    import os

    from training.make_dataset import make_set

    if set_is_complete(set_dir, count=count, size=size, base_seed=base_seed):
        return "reused"
    workers = workers or os.cpu_count() or 1
    print(f"making {count} images of {size}² in {set_dir} with {workers} processes", flush=True)
    make_set(set_dir, count=count, size=size, base_seed=base_seed, workers=workers,
             progress=True)
    return f"made with {workers} processes"


# ------------------------------------------------------------------------------ the run


def _resume_start(path: str, work: Path, plan: Plan) -> tuple[str, float]:
    """A copy of the checkpoint to resume from, without Lightning's Timer state (it would
    count the earlier run's time against this budget), and the plan position to continue
    from: the checkpoint's own when it ran this plan, else the plan's start."""
    import torch

    from training.travel import load_checkpoint

    ckpt = load_checkpoint(path)
    ckpt.get("callbacks", {}).pop("Timer", None)
    if not ckpt.get("optimizer_states"):
        print(f"{path}: no optimiser state (a result checkpoint); Adam starts afresh", flush=True)
    start = 0.0
    try:
        if Plan(**ckpt["hyper_parameters"]["config"]["plan"]) == plan:
            start = float(ckpt.get("plan_kimg", 0.0))
    except (KeyError, TypeError, ValueError):
        pass
    target = work / "checkpoints" / "resume-start.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, target)
    return str(target), start


def _checkpoint_config(path: str | None) -> dict[str, Any]:
    """The GANConfig stored in a checkpoint ({} without one)."""
    if not path:
        return {}
    from training.travel import load_checkpoint

    return dict(load_checkpoint(path).get("hyper_parameters", {}).get("config", {}))


def _place(src: Path, dst: Path) -> int:
    """Copy ``src`` into the results if it fits the size limit; its size, or 0 if left out."""
    if not src.is_file():
        return 0
    size = src.stat().st_size
    if size > MAX_RESULT_BYTES:
        print(f"{src}: {size / 1e6:.1f} MB is over the {MAX_RESULT_BYTES / 1e6:.0f} MB "
              "limit of a result file; left in the work folder", flush=True)
        return 0
    shutil.copyfile(src, dst)
    return size


def write_result_checkpoint(travel: Path, dst: Path) -> int:
    """The run's travel checkpoint without Adam's moments, as ``dst``; its size in bytes.

    The full travel form of the default network (~16.5 MB) is over the result limit; what
    stays (~12 MB: the EMA generator in fp32, the live networks in fp16, config, counters,
    loop state and ``plan_kimg``) is what an export reads, and a ``--resume`` from it goes
    on with every counter and the plan position, Adam's moments starting afresh (β₁ = 0:
    only the second moments are lost, rebuilt within a few hundred steps).
    """
    import torch

    from stratum_kernel.core.paths import atomic_path

    ckpt = torch.load(str(travel), map_location="cpu", weights_only=False)
    ckpt["optimizer_states"] = []
    ckpt["stratum_optimizer_states"] = "dropped"
    with atomic_path(dst) as tmp:
        torch.save(ckpt, tmp)
    size = dst.stat().st_size
    if size > MAX_RESULT_BYTES:
        dst.unlink()
        raise RuntimeError(f"{dst}: {size / 1e6:.1f} MB is over the {MAX_RESULT_BYTES / 1e6:.0f} "
                           f"MB limit of a result file; the full run is in {travel.parent}")
    return size


def run(cfg: GpuRunConfig) -> dict[str, Any]:
    """Build the set, train for ``cfg.minutes``, write the results; returns the summary."""
    import torch

    from stratum_kernel import __version__
    from training.export_onnx import save_safetensors
    from training.gan_module import GANConfig
    from training.metrics import sliced_wasserstein
    from training.sampling import fixed_latents, generate, image_grid, save_png, to_uint8
    from training.train_gan import auto_precision, split_indices, train

    t_start = time.perf_counter()
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU here (use --device cpu)")
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes per stage
        torch.set_float32_matmul_precision("high")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = "gpu" if device == "cuda" else "cpu"
    precision = auto_precision(accelerator) if cfg.precision == "auto" else cfg.precision
    out, work = cfg.resolve(cfg.out), cfg.resolve(cfg.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)

    plan = (Plan(stages=tuple(parse_stages(cfg.plan))) if cfg.plan
            else time_plan(cfg.plan_resolutions, kimg=cfg.plan_kimg))
    set_dir = cfg.set_dir()
    t0 = time.perf_counter()
    made = build_set(set_dir, count=cfg.count, size=cfg.size, base_seed=cfg.data_seed,
                     workers=cfg.workers)
    images = load_images(set_dir, min(STORE_MAX, 2 * plan.max_resolution),
                         cache=cfg.resolve(cfg.cache))
    dataset_s = time.perf_counter() - t0
    print(f"{len(images)} images of {images.shape[1]}² from {set_dir} ({made}, "
          f"{dataset_s:.0f} s); {device}, {precision}, batch {cfg.batch_size}", flush=True)

    base = _checkpoint_config(cfg.resume or cfg.init_from)
    config: dict[str, Any] = {
        "plan": plan.model_dump(mode="json"),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "out_dir": str(work),
        # the network of the run continued from, unless given
        "generator": cfg.generator if cfg.generator is not None else base.get("generator", {}),
    }
    if base.get("d_channels") and cfg.generator is None:
        config["d_channels"] = base["d_channels"]
    resume, start_kimg = (None, 0.0)
    if cfg.resume:
        resume, start_kimg = _resume_start(cfg.resume, work, plan)
    clock = PlanClock(
        plan, cfg.minutes * 60.0, start_kimg=start_kimg,
        on_stage=lambda e: print(f"stage {e['index'] + 1}/{len(plan.stages)}: "
                                 f"{e['resolution']}² at {e['entered_at_s']:.0f} s", flush=True),
    )
    val_samples = GANConfig(**config).val_samples
    loaders = device_loaders(
        images, resolution=plan.max_resolution, batch_size=cfg.batch_size,
        iterations=cfg.epoch_iterations, seed=cfg.seed, val_samples=val_samples, device=device,
    )
    module = train(
        config,
        images=images,
        epoch_iterations=cfg.epoch_iterations,
        resume=resume,
        init=cfg.init_from,
        checkpoint_every=cfg.checkpoint_every,
        max_minutes=cfg.minutes,
        accelerator=accelerator,
        precision=precision,
        progress=cfg.progress,
        clock=clock,
        loaders=loaders,
    )
    train_s = clock.elapsed()  # from the first step to the end of fit

    # ---- final measurement: EMA samples vs held-out reals at the native resolution
    native = module.native_resolution()
    levels = module.generator.levels_for(native)
    held = split_indices(len(images))[1][: cfg.final_samples]
    real = crop_flip(torch.from_numpy(images[held]).permute(0, 3, 1, 2), native, None)
    g_ema = module.g_ema.to(device)
    fake = generate(g_ema, fixed_latents(len(held), cfg.seed + 2000, module._latent_shape()),
                    levels=levels, batch=64)
    swd = sliced_wasserstein(to_uint8(real), fake, seed=cfg.seed)
    g_ema = g_ema.to("cpu", memory_format=torch.contiguous_format)

    # ---- results: small files only
    files: dict[str, int] = {}
    weights = out / "generator_ema.safetensors"
    save_safetensors(g_ema, weights, extra={"native_resolution": native,
                                            "source": "training/gpu_train.py"})
    files[weights.name] = weights.stat().st_size
    files["travel.ckpt"] = write_result_checkpoint(work / "travel.ckpt", out / "travel.ckpt")
    for src, name in ((work / "config.json", "config.json"),
                      (work / "csv" / "metrics.csv", "metrics.csv")):
        if size := _place(src, out / name):
            files[name] = size
    write_text_atomic(out / "validation.jsonl",
                      "".join(json.dumps(r) + "\n" for r in module.history))
    files["validation.jsonl"] = (out / "validation.jsonl").stat().st_size
    cols = max(1, math.ceil(math.sqrt(min(16, len(fake)))))
    save_png(out / "grid.png", image_grid(fake[:16], cols))
    files["grid.png"] = (out / "grid.png").stat().st_size

    images_seen = int(module.images_seen.item())
    device_name = (torch.cuda.get_device_name() if device == "cuda"
                   else f"cpu ({platform.processor() or platform.machine()})")
    final = clock.state(train_s)
    summary = {
        "format": SUMMARY_FORMAT,
        "stratum_version": __version__,
        "device": device_name,
        "precision": precision,
        "minutes": cfg.minutes,
        "wall_seconds": round(module.wall_seconds, 2),
        "train_seconds": round(train_s, 2),
        "dataset_seconds": round(dataset_s, 2),
        "total_seconds": round(time.perf_counter() - t_start, 2),
        "dataset": {"set_dir": str(set_dir), "images": len(images), "stored_size":
                    int(images.shape[1]), "build": made},
        "images_seen": images_seen,
        "iterations": int(module.iteration.item()),
        "images_per_second": round(images_seen / max(train_s, 1e-9), 1),
        "batch_size": cfg.batch_size,
        "plan": plan.model_dump(mode="json"),
        "plan_kimg_start": start_kimg,
        "plan_kimg_reached": round(clock.position(train_s), 3),
        "stages_reached": clock.stages_reached,
        "final_stage": {"resolution": final.resolution, "alpha": round(final.alpha, 4)},
        "native_resolution": native,
        "final_swd": swd["mean"],
        "final_swd_levels": {k: v for k, v in swd.items() if k != "mean"},
        "final_swd_samples": len(held),
        "last_validation": module.history[-1] if module.history else None,
        "init_from": cfg.init_from,
        "resume": cfg.resume,
        "files": files,
        "config": cfg.model_dump(mode="json"),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    fields = GpuRunConfig.model_fields
    parser.add_argument("--minutes", type=float, required=True, help="training budget")
    parser.add_argument("--out", required=True, help="folder of the small result files")
    parser.add_argument("--work", default=fields["work"].default,
                        help="folder of the full run (checkpoints, logs)")
    parser.add_argument("--set", default=fields["set"].default, help="set name under data/")
    parser.add_argument("--data", help="set folder (default data/<set>)")
    parser.add_argument("--cache", default=fields["cache"].default, help=".npy cache folder")
    parser.add_argument("--count", type=int, default=fields["count"].default,
                        help="images the set must hold (made where missing)")
    parser.add_argument("--size", type=int, default=fields["size"].default,
                        help="side of the generated images")
    parser.add_argument("--data-seed", type=int, default=0, help="base seed of the set")
    parser.add_argument("--workers", type=int, default=0, help="set processes (0: all cores)")
    parser.add_argument("--plan", help="stages resolution:kimg[:fade[:r1_gamma]],... "
                        "(kimg are shares of the time; overrides --plan-resolutions)")
    parser.add_argument("--plan-resolutions", default="64,128,256",
                        help="progressive stages, e.g. 64,128,256 or 16,32")
    parser.add_argument("--plan-kimg", type=float, default=fields["plan_kimg"].default,
                        help="the plan's length in its units (≈ images expected / 1000)")
    parser.add_argument("--batch-size", type=int, default=fields["batch_size"].default)
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--precision", default="auto",
                        help="auto (bf16-mixed where native), bf16-mixed, 32-true")
    parser.add_argument("--epoch-iterations", type=int,
                        default=fields["epoch_iterations"].default,
                        help="iterations between validations")
    parser.add_argument("--checkpoint-every", type=int,
                        default=fields["checkpoint_every"].default, help="iterations")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--init-from", help="start from this checkpoint's weights")
    start.add_argument("--resume",
                       help="continue this checkpoint (counters, plan, optimisers where kept)")
    parser.add_argument("--generator", help="JSON of Generator kwargs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--final-samples", type=int, default=fields["final_samples"].default)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    parser.add_argument("--progress", action="store_true", help="Lightning's progress bar")
    args = parser.parse_args(argv)
    cfg = GpuRunConfig(
        **{k: v for k, v in vars(args).items() if k != "generator"},
        generator=json.loads(args.generator) if args.generator else None,
    )
    summary = run(cfg)
    reached = " → ".join(f"{s['resolution']}²" for s in summary["stages_reached"])
    print(f"done: {summary['images_seen'] / 1000:.1f} kimg in {summary['train_seconds']:.0f} s "
          f"({reached}), native {summary['native_resolution']}², SWD "
          f"{summary['final_swd']:.1f} → {cfg.resolve(cfg.out)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
