"""Export a generator to models/: generator.onnx, generator_ema.safetensors, meta.json.

The ONNX file is FP32, opset 18, one self-contained file (weights inside, no
``.onnx.data``), with a static spatial shape and a dynamic batch axis; the input is ``z``
float32 [B, 8, 16, 16] and the output ``image`` float32 [B, 3, N, N] in [-1, 1], N the
native size: the highest stage the checkpoint trained (``--size`` picks a lower head, e.g.
128² for CPU drafts of a 256² model).
``meta.json`` follows :mod:`stratum_kernel.picture.model` (sha256 of both files, named
anchors, image-change-ordered axes) and is validated by ``load_model`` before the export
counts as done. Every file is written under a temporary name and renamed.

Usage::

    python -m training.export_onnx --checkpoint training/outputs/run/last.ckpt --out models
    python -m training.export_onnx --untrained --seed 0 --out models   # random-init model
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stratum_kernel import __version__
from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.paths import atomic_path, write_text_atomic
from stratum_kernel.picture.generator import Generator, count_parameters, generator_from_config
from stratum_kernel.picture.model import META_FORMAT, load_model

OPSET = 18


class _Head(torch.nn.Module):
    """The generator stopped after ``levels`` stages: what one ONNX file decodes."""

    def __init__(self, gen: Generator, levels: int):
        super().__init__()
        self.gen, self.levels = gen, int(levels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.gen(z, self.levels)


def export_onnx(
    gen: Generator, path: str | Path, *, levels: int | None = None, opset: int = OPSET
) -> Path:
    """Write ``gen`` (eval mode, CPU, fp32) stopped after ``levels`` stages (default: all)
    as one self-contained ONNX file at ``path``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = gen.to("cpu", torch.float32).eval()
    head = _Head(gen, gen.levels if levels is None else levels)
    z = torch.zeros(1, gen.latent_channels, gen.latent_size, gen.latent_size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs
        # onnxscript and writes external data; this one writes a single file.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head,
            (z,),
            str(tmp),
            input_names=["z"],
            output_names=["image"],
            opset_version=opset,
            dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}},
            do_constant_folding=True,
            dynamo=False,
        )
        model = onnx.load(str(tmp), load_external_data=False)
        external = [t.name for t in model.graph.initializer if t.data_location == 1]
        if external or any(p.name.startswith(tmp.name) for p in tmp.parent.iterdir() if p != tmp):
            raise RuntimeError(f"ONNX export wrote external data for {external}; expected one file")
        onnx.checker.check_model(model)
    return path


def save_safetensors(gen: Generator, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """EMA weights + ``generator_config`` (JSON) in the safetensors metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"generator_config": json.dumps(gen.config), "stratum_version": __version__}
    for k, v in (extra or {}).items():
        meta[k] = json.dumps(v)
    state = {k: v.detach().to("cpu").contiguous() for k, v in gen.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def build_meta(
    gen: Generator,
    *,
    onnx_path: Path,
    weights_path: Path | None,
    anchors: dict[str, np.ndarray],
    axes: np.ndarray,
    strength: np.ndarray,
    name: str,
    version: str,
    checkpoint: str | None,
    training: dict[str, Any],
    levels: int | None = None,
    heads: dict[int, Path] | None = None,
) -> dict[str, Any]:
    """The meta.json document (see :class:`stratum_kernel.picture.model.ModelMeta`); the
    output shape is the native size, ``gen`` stopped after ``levels`` stages; ``heads``:
    more ONNX files by their size."""
    levels = gen.levels if levels is None else int(levels)
    size = gen.resolution(levels)
    meta: dict[str, Any] = {
        "format": META_FORMAT,
        "name": name,
        "version": version,
        "latent_shape": [gen.latent_channels, gen.latent_size, gen.latent_size],
        "output_shape": [3, size, size],
        "output_range": [-1.0, 1.0],
        "onnx": {
            "file": onnx_path.name,
            "sha256": file_sha256(onnx_path),
            "opset": OPSET,
            "input": "z",
            "output": "image",
        },
        "heads": {
            str(k): {"file": p.name, "sha256": file_sha256(p), "opset": OPSET, "input": "z",
                     "output": "image"}
            for k, p in sorted((heads or {}).items())
        },
        "checkpoint": checkpoint,
        "architecture": {
            "class": "stratum_kernel.picture.generator.Generator",
            "config": gen.config,
            "parameters": count_parameters(gen),
            "levels": levels,
            "native_size": size,
        },
        "training": training,
        "latent_scale": 1.0,
        "anchors": {k: [round(float(x), 6) for x in v.ravel()] for k, v in sorted(anchors.items())},
        "pca_axes": [[round(float(x), 7) for x in a.ravel()] for a in axes],
        "pca_strength": [round(float(s), 7) for s in strength],
        "pca_method": "top eigenvectors of E_z[J^T J] of the 32x32-pooled image "
        "(block power iteration); strength = RMS pixel change per unit step",
        "anchor_method": "medoid latents of k-means clusters of colour/texture stats",
        "exported": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stratum_version": __version__,
    }
    if weights_path is not None:
        meta["weights"] = {"file": weights_path.name, "sha256": file_sha256(weights_path)}
    return meta


def export_model(
    gen: Generator,
    out_dir: str | Path,
    *,
    name: str = "stratum-abstract",
    version: str = "0.1.0",
    checkpoint: str | None = None,
    training: dict[str, Any] | None = None,
    anchor_count: int = 8,
    anchor_samples: int = 384,
    axis_count: int = 16,
    seed: int = 0,
    weights: bool = True,
    levels: int | None = None,
    head_sizes: Sequence[int] = (),
) -> Path:
    """Export ``gen`` stopped after ``levels`` stages (its native size; default: all) into
    ``out_dir`` and return the meta.json path (validated on load). ``head_sizes``: lower
    sizes to export as extra heads (``generator-<size>.onnx``), e.g. 128 for CPU drafts of a
    256² model."""
    from training.latent_analysis import find_anchors, find_axes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = gen.to("cpu", torch.float32).eval()
    levels = gen.levels if levels is None else int(levels)
    onnx_path = export_onnx(gen, out_dir / "generator.onnx", levels=levels)
    native = gen.resolution(levels)
    heads = {}
    for size in sorted(set(head_sizes) - {native}):
        if size > native:
            raise ValueError(f"a {size}² head is above the native {native}²")
        heads[size] = export_onnx(gen, out_dir / f"generator-{size}.onnx",
                                  levels=gen.levels_for(size))
    weights_path = save_safetensors(gen, out_dir / "generator_ema.safetensors") if weights else None
    # Anchors are judged on an image of at most 128² (cheap, and the look is set by then).
    look = levels
    while look > 1 and gen.resolution(look) > 128:
        look -= 1
    anchors = find_anchors(gen, count=anchor_count, samples=anchor_samples, seed=seed, levels=look)
    axes, strength = find_axes(gen, count=axis_count, seed=seed, levels=look)
    meta = build_meta(
        gen,
        onnx_path=onnx_path,
        weights_path=weights_path,
        anchors=anchors,
        axes=axes,
        strength=strength,
        name=name,
        version=version,
        checkpoint=checkpoint,
        training=training or {},
        levels=levels,
        heads=heads,
    )
    meta_path = out_dir / "meta.json"
    write_text_atomic(meta_path, json.dumps(meta, indent=1) + "\n")
    load_model(out_dir, verify=True)
    return meta_path


def generator_from_checkpoint(path: str | Path, *, ema: bool = True) -> tuple[Generator, dict]:
    """Rebuild the (EMA) generator from a checkpoint written by ``train_gan.py`` (a Lightning
    or a travel checkpoint).

    Returns the generator and the run summary stored in the checkpoint: config, steps,
    images seen, and ``native_resolution`` — the highest stage fully faded in, which is
    what an export decodes.
    """
    from training.schedule import Plan
    from training.travel import load_checkpoint

    ckpt = load_checkpoint(path)
    hp = ckpt.get("hyper_parameters", {})
    gen_cfg = hp.get("generator") or hp.get("config", {}).get("generator")
    if gen_cfg is None:
        raise ValueError(f"{path}: checkpoint has no generator config in its hyper_parameters")
    gen = generator_from_config(gen_cfg)
    prefix = "g_ema." if ema else "generator."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    gen.load_state_dict(state)
    gen = gen.to(memory_format=torch.contiguous_format)
    images_seen = int(ckpt["state_dict"].get("images_seen", torch.zeros(())).item())
    config = hp.get("config", {})
    native = gen.output_size
    if "plan" in config:
        plan = Plan(**config["plan"])
        st = plan.state(float(ckpt.get("plan_kimg", images_seen / 1000.0)))
        native = st.resolution if st.alpha >= 1 or st.index == 0 else (
            plan.stages[st.index - 1].resolution
        )
    info = {
        "global_step": int(ckpt.get("global_step", 0)),
        "epoch": int(ckpt.get("epoch", 0)),
        "images_seen": images_seen,
        "native_resolution": native,
        "config": config,
    }
    return gen.eval(), info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="Lightning checkpoint from training/train_gan.py")
    src.add_argument("--untrained", action="store_true", help="export a seeded random init")
    parser.add_argument("--out", default="models", help="output folder (default: models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="stratum-abstract")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--training-json", help="JSON file merged into meta.json 'training'")
    parser.add_argument("--anchors", type=int, default=8, help="number of named anchors")
    parser.add_argument("--anchor-samples", type=int, default=384, help="latents clustered")
    parser.add_argument("--axes", type=int, default=16, help="number of latent axes")
    parser.add_argument(
        "--size", type=int, help="native size to export (default: the highest trained stage)"
    )
    parser.add_argument(
        "--heads", type=int, nargs="*", default=[], metavar="SIZE",
        help="also export these lower sizes as extra heads (e.g. 128 for CPU drafts)",
    )
    args = parser.parse_args(argv)

    training: dict[str, Any] = {}
    if args.untrained:
        torch.manual_seed(args.seed)
        gen = Generator()
        checkpoint = None
        training = {"status": "untrained", "init_seed": args.seed}
        size = args.size or gen.output_size
    else:
        gen, info = generator_from_checkpoint(args.checkpoint)
        checkpoint = Path(args.checkpoint).name
        training = {"status": "trained", **info}
        size = args.size or info["native_resolution"]
    if args.training_json:
        training.update(json.loads(Path(args.training_json).read_text()))
    meta_path = export_model(
        gen,
        args.out,
        name=args.name,
        version=args.version,
        checkpoint=checkpoint,
        training=training,
        anchor_count=args.anchors,
        anchor_samples=args.anchor_samples,
        axis_count=args.axes,
        seed=args.seed,
        levels=gen.levels_for(size),
        head_sizes=args.heads,
    )
    model = load_model(Path(args.out))
    print(
        f"wrote {meta_path} ({model.onnx_path.stat().st_size / 1e6:.1f} MB onnx, "
        f"anchors: {', '.join(sorted(model.anchors))})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
