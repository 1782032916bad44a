"""Evaluate an exported generator against the held-out real set; write README figures.

    python training/evaluate.py --model models --set abstract-v1 --figures training/figures

Reports (JSON to stdout and ``<figures>/evaluation.json``), all at the generator's output
size on the held-out images (every 12th image of the set, never trained on):

- SWD ×1e3 (Laplacian-pyramid patches) of the trained model vs held-out reals,
- the same for the untrained network (same architecture, seeded random init),
- real-vs-real: training images vs held-out images (the floor the metric can reach),
- colour statistics of each, interpolation smoothness, ONNX Runtime frames/s at batch 1.

Figures: ``samples.png`` (a 4×4 grid of seeded samples), ``interpolation.png`` (three
slerp sweeps of 8 frames), downscaled to keep the repository small.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from stratum_kernel.paths import project_root


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


def evaluate(
    gen,
    *,
    held_out: np.ndarray,
    train_images: np.ndarray,
    samples: int = 96,
    seed: int = 0,
) -> dict[str, Any]:
    """SWD and colour statistics of ``gen`` and an untrained twin vs ``held_out`` (uint8)."""
    import torch

    from stratum_kernel.torch_generator import Generator
    from training.metrics import colour_stats, sliced_wasserstein, summarize_stats
    from training.sampling import fixed_latents, generate, interpolation_sweeps, smoothness

    n = min(samples, len(held_out))
    real = held_out[:n]
    z = fixed_latents(n, seed + 7)
    fake = generate(gen, z)
    torch.manual_seed(0)
    untrained = Generator(**gen.config).eval()
    fake0 = generate(untrained, z)
    other = train_images[:n]
    _, frames = interpolation_sweeps(gen, rows=3, steps=8)
    return {
        "held_out_images": n,
        "resolution": int(real.shape[1]),
        "swd_trained": sliced_wasserstein(real, fake, seed=seed),
        "swd_untrained": sliced_wasserstein(real, fake0, seed=seed),
        "swd_real_vs_real": sliced_wasserstein(real, other, seed=seed),
        "stats_trained": summarize_stats(colour_stats(fake)),
        "stats_untrained": summarize_stats(colour_stats(fake0)),
        "stats_real": summarize_stats(colour_stats(real)),
        "interpolation_smoothness": smoothness(frames, 8),
    }


def write_figures(gen, out_dir: str | Path, *, thumb: int = 128) -> list[Path]:
    """samples.png (4×4) and interpolation.png (3×8), thumbnails of ``thumb`` px."""
    import cv2

    from training.sampling import (
        fixed_latents,
        generate,
        image_grid,
        interpolation_sweeps,
        save_png,
    )

    out_dir = Path(out_dir)

    def shrink(images: np.ndarray) -> np.ndarray:
        return np.stack(
            [cv2.resize(im, (thumb, thumb), interpolation=cv2.INTER_AREA) for im in images]
        )

    samples = generate(gen, fixed_latents(16, 11))
    _, frames = interpolation_sweeps(gen, rows=3, steps=8)
    return [
        save_png(out_dir / "samples.png", image_grid(shrink(samples), 4)),
        save_png(out_dir / "interpolation.png", image_grid(shrink(frames), 8)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models", help="folder with meta.json + weights")
    parser.add_argument("--set", default="abstract-v1")
    parser.add_argument("--figures", default="training/figures")
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--no-fps", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from stratum_kernel.model_meta import load_model
    from stratum_kernel.torch_generator import load_generator_safetensors
    from training.dataset import load_images
    from training.train_gan import split_indices

    torch.set_num_threads(1)
    root = project_root()
    model = load_model(root / args.model if not Path(args.model).is_absolute() else args.model)
    if model.meta.weights is None:
        raise SystemExit(f"{model.directory}: meta.json names no safetensors weights")
    gen = load_generator_safetensors(str(model.directory / model.meta.weights.file))
    size = gen.output_size
    images = load_images(
        root / "data" / args.set, size, cache=root / "training" / "outputs" / "cache"
    )
    train_idx, held_idx = split_indices(len(images))
    report = evaluate(
        gen, held_out=images[held_idx], train_images=images[train_idx], samples=args.samples
    )
    if not args.no_fps:
        report["ort_fps"] = [ort_fps(model.onnx_path, threads=t) for t in (1, 2)]
    figures = write_figures(gen, root / args.figures)
    report["figures"] = [str(p.relative_to(root)) for p in figures]
    (root / args.figures / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
