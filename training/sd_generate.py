"""A training set from Stable Diffusion 1.5 (diffusers), loaded from a local weights folder.

    python training/sd_generate.py --prompts training/prompts.yaml --set sd-abstract-v1 \
        --model weights/stable-diffusion-v1-5

Nothing is downloaded: the pipeline is opened with ``local_files_only=True`` and a
missing folder is a clear error. For every image the bucket, prompt, negative prompt,
steps (20–35), CFG (6.5–9.5), size (512²) and seed are drawn from
``numpy.random.default_rng([seed, bucket, index])`` and recorded in the sidecar JSON, so
any image regenerates alone. Output is the same format as the procedural sets (PNG +
JSON + ``manifest.csv``). Optional culling marks the lowest-scoring fraction of each
bucket ``kept=0`` in the manifest (files stay on disk for inspection); the score is
weight-free: colourfulness plus sharpness (see :func:`quality_score`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratum_kernel.core.errors import ConfigError, ModelError
from stratum_kernel.core.paths import project_root
from stratum_kernel.core.schema import read_yaml, validation_error
from stratum_kernel.core.seeding import stable_hash
from training.dataset import ImageRecord, write_image, write_manifest
from training.metrics import colour_stats


class PromptBucket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[str] = Field(min_length=1)
    negative: str = ""  # appended to the global negative prompt
    count: int | None = Field(default=None, ge=0)  # overrides per_bucket


class SDConfig(BaseModel):
    """``prompts.yaml``: the model folder, the buckets and the sampling ranges."""

    model_config = ConfigDict(extra="forbid")
    model_path: str
    size: int = Field(default=512, ge=16)
    steps: tuple[int, int] = (20, 35)
    guidance: tuple[float, float] = (6.5, 9.5)
    per_bucket: int = Field(default=800, ge=0)
    seed: int = 0
    cull_fraction: float = Field(default=0.0, ge=0.0, le=0.5)
    negative: str = ""
    styles: list[str] = Field(default_factory=lambda: [""])
    buckets: dict[str, PromptBucket] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError(f"steps must be [low, high] with 1 <= low <= high, got {list(v)}")
        return v

    @field_validator("guidance")
    @classmethod
    def _guidance(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1]:
            raise ValueError(f"guidance must be [low, high] with 0 < low <= high, got {list(v)}")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v % 8:
            raise ValueError(f"size must be a multiple of 8, got {v}")
        return v


def load_sd_config(path: str | Path, **overrides: Any) -> SDConfig:
    """Read and validate ``prompts.yaml``; ConfigError names the file and field."""
    path = Path(path)
    raw = read_yaml(path, "prompt file") or {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "a prompt file is a mapping (prompts: ..., steps: ...)")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SDConfig.model_validate(raw)
    except ValidationError as err:
        raise validation_error(path, err) from None


def load_pipeline(model_path: str | Path, *, device: str = "cpu", dtype: str = "float32"):
    """Open a local diffusers Stable Diffusion folder (never downloads)."""
    import torch
    from diffusers import StableDiffusionPipeline

    path = Path(model_path)
    if not (path / "model_index.json").is_file():
        raise ModelError(
            f"{path}: not a local diffusers Stable Diffusion folder (no model_index.json); "
            "download SD 1.5 once with diffusers' save_pretrained and pass its folder with "
            "--model (weights are never fetched at run time)"
        )
    pipe = StableDiffusionPipeline.from_pretrained(
        str(path),
        local_files_only=True,
        safety_checker=None,
        requires_safety_checker=False,
        torch_dtype=getattr(torch, dtype),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def quality_score(image: np.ndarray) -> float:
    """Weight-free score of uint8 [H, W, 3]: colourfulness + 2·sharpness (higher is better).

    Dull, grey or blurry generations score low; the weights make a typical vivid image's
    two terms comparable.
    """
    st = colour_stats(image[None])
    return float(st["colourfulness"][0] + 2.0 * st["sharpness"][0])


def draw_settings(cfg: SDConfig, bucket: str, index: int) -> dict[str, Any]:
    """Prompt, negative, steps, guidance and seed of image ``index`` of ``bucket``."""
    rng = np.random.default_rng([cfg.seed & 0xFFFFFFFF, stable_hash(bucket), index])
    spec = cfg.buckets[bucket]
    prompt = str(rng.choice(spec.prompts))
    style = str(rng.choice(cfg.styles)) if cfg.styles else ""
    negative = ", ".join(p for p in (cfg.negative, spec.negative) if p)
    return {
        "prompt": f"{prompt}, {style}" if style else prompt,
        "negative_prompt": negative,
        "steps": int(rng.integers(cfg.steps[0], cfg.steps[1] + 1)),
        "guidance": round(float(rng.uniform(*cfg.guidance)), 2),
        "seed": int(rng.integers(0, 2**31 - 1)),
        "size": cfg.size,
    }


def cull(records: list[ImageRecord], fraction: float) -> list[ImageRecord]:
    """Mark the lowest-scoring ``fraction`` of each bucket ``kept=False``."""
    if fraction <= 0:
        return records
    out = list(records)
    for bucket in sorted({r.bucket for r in records}):
        idx = [i for i, r in enumerate(out) if r.bucket == bucket]
        n_drop = int(np.floor(len(idx) * fraction))
        for i in sorted(idx, key=lambda i: out[i].score or 0.0)[:n_drop]:
            out[i] = replace(out[i], kept=False)
    return out


def generate_set(
    pipe, cfg: SDConfig, out_dir: str | Path, *, device: str = "cpu", progress: bool = True
) -> list[ImageRecord]:
    """Generate every bucket's images into ``out_dir`` and write the manifest."""
    import torch

    out_dir = Path(out_dir)
    records: list[ImageRecord] = []
    for bucket, spec in cfg.buckets.items():
        count = cfg.per_bucket if spec.count is None else spec.count
        for i in range(count):
            s = draw_settings(cfg, bucket, i)
            result = pipe(
                prompt=s["prompt"],
                negative_prompt=s["negative_prompt"],
                num_inference_steps=s["steps"],
                guidance_scale=s["guidance"],
                height=cfg.size,
                width=cfg.size,
                generator=torch.Generator(device=device).manual_seed(s["seed"]),
                output_type="np",
            )
            img = (np.clip(result.images[0], 0, 1) * 255 + 0.5).astype(np.uint8)
            rec = write_image(
                out_dir,
                f"{bucket}-{i:05d}",
                img,
                bucket=bucket,
                seed=s["seed"],
                source="stable-diffusion",
                params={**s, "model": Path(getattr(pipe, "name_or_path", "") or "").name},
            )
            records.append(replace(rec, score=quality_score(img)))
            if progress and (i + 1) % 25 == 0:
                print(f"{bucket}: {i + 1}/{count}", flush=True)
    records = cull(records, cfg.cull_fraction)
    write_manifest(out_dir, records)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", default=str(Path(__file__).with_name("prompts.yaml")))
    parser.add_argument("--set", default="sd-abstract-v1")
    parser.add_argument("--out", help="output folder (default: data/<set>)")
    parser.add_argument("--model", help="local diffusers folder (overrides model_path)")
    parser.add_argument("--per-bucket", type=int)
    parser.add_argument("--cull", type=float, help="fraction of each bucket to cull (0-0.5)")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    args = parser.parse_args(argv)
    cfg = load_sd_config(
        args.prompts, model_path=args.model, per_bucket=args.per_bucket, cull_fraction=args.cull
    )
    model_path = Path(cfg.model_path)
    if not model_path.is_absolute():
        model_path = project_root() / model_path
    dtype = "float16" if args.device.startswith("cuda") else "float32"
    pipe = load_pipeline(model_path, device=args.device, dtype=dtype)
    out = Path(args.out) if args.out else project_root() / "data" / args.set
    records = generate_set(pipe, cfg, out, device=args.device)
    kept = sum(r.kept for r in records)
    print(f"wrote {len(records)} images ({kept} kept) and {out / 'manifest.csv'}")
    return 0


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    raise SystemExit(main())
