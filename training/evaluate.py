"""Evaluate a generator against the held-out real set; write the README figures.

    python -m training.evaluate --model models --set abstract-v2 --figures training/figures
    python -m training.evaluate --checkpoint training/outputs/run/travel.ckpt --size 64

Everything is compared at ``--size`` (default 256²) on held-out images (every 12th image of
the set, never trained on). A generator decodes at its *native* size (the highest trained
stage); its frames are enlarged to the comparison size with bicubic interpolation, as the
renderer's post-FX does. Beside it, with the same metric:

- **untrained**: the same architecture freshly initialised (what training bought);
- **real vs real**: training images vs held-out images (the metric's floor);
- **ceiling**: training images shrunk to the native size and enlarged again, vs held-out —
  what a perfect model of that native size can reach at best.

SWD ×1e3 on Laplacian-pyramid patches is reported per level and as a mean, and each mean
as a ratio to real-vs-real; colour statistics (saturation, chroma, colourfulness, contrast,
sharpness) beside the real set's; interpolation smoothness; ONNX Runtime frames/s at batch 1.
Figures: ``samples.png`` (seeded samples), ``interpolation.png`` (slerp sweeps),
``buckets.png`` (real images of each bucket beside their nearest samples).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.core.paths import project_root


def _cv2():
    import cv2

    cv2.setNumThreads(1)
    return cv2


def resize_all(images: np.ndarray, size: int, *, up: str = "cubic") -> np.ndarray:
    """uint8 [N, H, W, 3] → [N, size, size, 3]: area when shrinking, bicubic when enlarging."""
    cv2 = _cv2()
    if images.shape[1] == size:
        return images
    interp = cv2.INTER_AREA if images.shape[1] > size else {"cubic": cv2.INTER_CUBIC}[up]
    return np.stack([cv2.resize(im, (size, size), interpolation=interp) for im in images])


def through(images: np.ndarray, native: int) -> np.ndarray:
    """Images passed through ``native``² and back to their own size (the ceiling)."""
    return resize_all(resize_all(images, native), images.shape[1])


def ort_fps(onnx_path: str | Path, *, threads: int, repeats: int = 30, rounds: int = 5) -> dict:
    """Frames/s of ONNX Runtime CPU at batch 1: median and best over ``rounds`` timings of
    ``repeats`` runs each (the best is the least disturbed by other processes)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    z = np.random.default_rng(0).standard_normal((1, 8, 16, 16)).astype(np.float32)
    for _ in range(3):
        sess.run(None, {name: z})
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            sess.run(None, {name: z})
        per_round.append((time.perf_counter() - t0) / repeats)
    return {
        "threads": threads,
        "fps_median": round(1.0 / statistics.median(per_round), 1),
        "fps_best": round(1.0 / min(per_round), 1),
    }


def _ratio(swd: dict[str, float], floor: dict[str, float]) -> float:
    return round(swd["mean"] / max(floor["mean"], 1e-9), 3)


def evaluate(
    gen,
    *,
    levels: int,
    held_out: np.ndarray,
    train_images: np.ndarray,
    samples: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """SWD and statistics of ``gen`` at ``levels`` (its native size), enlarged to the size of
    ``held_out`` (uint8 [N, S, S, 3]), beside an untrained twin, real-vs-real and the
    native-size ceiling."""
    import torch

    from stratum_kernel.picture.generator import generator_from_config
    from training.metrics import colour_stats, sliced_wasserstein, summarize_stats
    from training.sampling import fixed_latents, generate, interpolation_sweeps, smoothness

    size = int(held_out.shape[1])
    native = gen.resolution(levels)
    n = min(samples, len(held_out), len(train_images))
    real, other = held_out[:n], train_images[:n]
    z = fixed_latents(n, seed + 7, (gen.latent_channels, gen.latent_size, gen.latent_size))
    fake = resize_all(generate(gen, z, levels=levels), size)
    torch.manual_seed(0)
    untrained = generator_from_config(gen.config).eval()
    fake0 = resize_all(generate(untrained, z, levels=levels), size)
    ceiling = through(other, native)
    _, frames = interpolation_sweeps(gen, rows=3, steps=8, levels=levels)
    swd = {
        "trained": sliced_wasserstein(real, fake, seed=seed),
        "untrained": sliced_wasserstein(real, fake0, seed=seed),
        "real_vs_real": sliced_wasserstein(real, other, seed=seed),
        "ceiling": sliced_wasserstein(real, ceiling, seed=seed),
    }
    floor = swd["real_vs_real"]
    return {
        "held_out_images": n,
        "resolution": size,
        "native_resolution": native,
        "swd": swd,
        "swd_ratio": {k: _ratio(v, floor) for k, v in swd.items()},
        "stats": {
            "trained": summarize_stats(colour_stats(fake)),
            "untrained": summarize_stats(colour_stats(fake0)),
            "real": summarize_stats(colour_stats(real)),
            "ceiling": summarize_stats(colour_stats(ceiling)),
        },
        "interpolation_smoothness": smoothness(frames, 8),
    }


def write_figures(gen, out_dir: str | Path, *, levels: int, thumb: int = 128) -> list[Path]:
    """samples.png (4×6), interpolation.png (3×8): thumbnails of ``thumb`` px."""
    from training.sampling import (
        fixed_latents,
        generate,
        image_grid,
        interpolation_sweeps,
        save_png,
    )

    out_dir = Path(out_dir)
    shape = (gen.latent_channels, gen.latent_size, gen.latent_size)
    samples = resize_all(generate(gen, fixed_latents(24, 11, shape), levels=levels), thumb)
    _, frames = interpolation_sweeps(gen, rows=3, steps=8, levels=levels)
    return [
        save_png(out_dir / "samples.png", image_grid(samples, 6)),
        save_png(out_dir / "interpolation.png", image_grid(resize_all(frames, thumb), 8)),
    ]


def load_generator(*, model: str | None = None, checkpoint: str | None = None):
    """(EMA generator, native levels, where it came from) from an exported model folder or a
    (travel) checkpoint."""
    from stratum_kernel.picture.generator import load_generator_safetensors
    from stratum_kernel.picture.model import load_model

    root = project_root()
    if checkpoint:
        from training.export_onnx import generator_from_checkpoint

        gen, info = generator_from_checkpoint(checkpoint)
        return gen, gen.levels_for(info["native_resolution"]), str(checkpoint)
    path = Path(model or "models")
    loaded = load_model(path if path.is_absolute() else root / path)
    if loaded.meta.weights is None:
        raise SystemExit(f"{loaded.directory}: meta.json names no safetensors weights")
    gen = load_generator_safetensors(str(loaded.directory / loaded.meta.weights.file))
    return gen, gen.levels_for(loaded.image_size[0]), str(loaded.onnx_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, help="folder with meta.json + weights (models)")
    src.add_argument("--checkpoint", help="a training (or travel) checkpoint instead")
    parser.add_argument("--set", default="abstract-v2")
    parser.add_argument("--size", type=int, default=256, help="comparison size in pixels")
    parser.add_argument("--figures", help="write figures + evaluation.json here")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--no-fps", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from training.dataset import load_images
    from training.train_gan import split_indices

    torch.set_num_threads(2)
    root = project_root()
    gen, levels, source = load_generator(model=args.model, checkpoint=args.checkpoint)
    images = load_images(
        root / "data" / args.set, args.size, cache=root / "training" / "outputs" / "cache"
    )
    train_idx, held_idx = split_indices(len(images))
    report: dict[str, Any] = {"source": source, "set": args.set}
    report.update(
        evaluate(
            gen,
            levels=levels,
            held_out=images[held_idx],
            train_images=images[train_idx],
            samples=args.samples,
        )
    )
    if not args.no_fps and not args.checkpoint:
        report["ort_fps"] = [ort_fps(source, threads=t) for t in (1, 2)]
    if args.figures:
        figures = write_figures(gen, root / args.figures, levels=levels)
        report["figures"] = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
                         for p in figures]
        (root / args.figures / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
