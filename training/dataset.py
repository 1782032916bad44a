"""Image sets on disk and the training-time view of them.

A set lives in ``data/<set>/``: ``images/<stem>.png`` with a sidecar ``images/<stem>.json``
(bucket, seed, source, generation parameters) and ``manifest.csv`` (one row per image:
file, bucket, seed, size, sha256, source, score, kept). Procedural images
(``make_dataset.py``) and Stable Diffusion images (``sd_generate.py``) share the format.
Only the manifest (and the small ``data/sample``) is committed; the PNGs are regenerated
by one command.

Training reads a set once into uint8 [N, S, S, 3] at twice the training size (cached as .npy
in ``training/outputs/cache``) and takes a random crop and flips on the fly, seeded per
(seed, epoch, index).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from stratum_kernel.core.paths import atomic_path, write_bytes_atomic

MANIFEST_FIELDS = ["file", "bucket", "seed", "width", "height", "sha256", "source", "score", "kept"]


def _cv2():
    import cv2

    cv2.setNumThreads(1)
    return cv2


@dataclass(frozen=True)
class ImageRecord:
    """One manifest row; ``file`` is relative to the set folder (``images/<stem>.png``)."""

    file: str
    bucket: str
    seed: int
    width: int
    height: int
    sha256: str
    source: str
    score: float | None = None
    kept: bool = True

    def row(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "bucket": self.bucket,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "source": self.source,
            "score": "" if self.score is None else f"{self.score:.6f}",
            "kept": int(self.kept),
        }


def write_image(
    set_dir: str | Path,
    stem: str,
    image: np.ndarray,
    *,
    bucket: str,
    seed: int,
    source: str,
    params: dict[str, Any],
) -> ImageRecord:
    """Write ``images/<stem>.png`` (uint8 [H, W, 3]) and its JSON sidecar; return the record."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {image.dtype} {image.shape}")
    folder = Path(set_dir) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=6)
    png = buf.getvalue()
    write_bytes_atomic(folder / f"{stem}.png", png)
    sidecar = {"bucket": bucket, "seed": int(seed), "source": source, "params": params}
    write_bytes_atomic(folder / f"{stem}.json", (json.dumps(sidecar, indent=1) + "\n").encode())
    return ImageRecord(
        file=f"images/{stem}.png",
        bucket=bucket,
        seed=int(seed),
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        sha256=hashlib.sha256(png).hexdigest(),
        source=source,
    )


def write_manifest(set_dir: str | Path, records: list[ImageRecord]) -> Path:
    """Write ``manifest.csv`` (sorted by file name) atomically."""
    path = Path(set_dir) / "manifest.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rec in sorted(records, key=lambda r: r.file):
        writer.writerow(rec.row())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue().encode())
    return path


def read_manifest(set_dir: str | Path) -> list[ImageRecord]:
    """Rows of ``<set_dir>/manifest.csv``; ValueError naming the file if it is missing/bad."""
    path = Path(set_dir) / "manifest.csv"
    if not path.is_file():
        raise ValueError(
            f"{path}: no manifest; generate the set first (python training/make_dataset.py)"
        )
    out = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                out.append(
                    ImageRecord(
                        file=row["file"],
                        bucket=row["bucket"],
                        seed=int(row["seed"]),
                        width=int(row["width"]),
                        height=int(row["height"]),
                        sha256=row["sha256"],
                        source=row["source"],
                        score=float(row["score"]) if row.get("score") else None,
                        kept=bool(int(row.get("kept") or 1)),
                    )
                )
            except (KeyError, ValueError) as err:
                raise ValueError(f"{path}: line {i}: bad row ({err})") from None
    return out


def load_images(set_dir: str | Path, size: int, *, cache: str | Path | None = None) -> np.ndarray:
    """All kept images of a set, area-resized to ``size``²: uint8 [N, size, size, 3].

    With ``cache`` (a folder) the array is stored as ``<set>-<size>-<hash>.npy`` keyed by
    the manifest's content, so a regenerated set is re-read.
    """
    set_dir = Path(set_dir)
    records = [r for r in read_manifest(set_dir) if r.kept]
    if not records:
        raise ValueError(f"{set_dir / 'manifest.csv'}: no kept images")
    key = hashlib.sha256("".join(r.sha256 for r in records).encode()).hexdigest()[:12]
    cache_path = Path(cache) / f"{set_dir.name}-{size}-{key}.npy" if cache else None
    if cache_path is not None and cache_path.is_file():
        return np.load(cache_path)
    cv2 = _cv2()
    out = np.empty((len(records), size, size, 3), np.uint8)
    for i, rec in enumerate(records):
        path = set_dir / rec.file
        if not path.is_file():
            raise ValueError(f"{path}: listed in manifest.csv but missing; regenerate the set")
        img = np.asarray(Image.open(path).convert("RGB"))
        if img.shape[0] != img.shape[1]:
            s = min(img.shape[:2])
            y0, x0 = (img.shape[0] - s) // 2, (img.shape[1] - s) // 2
            img = img[y0 : y0 + s, x0 : x0 + s]
        out[i] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_path) as tmp, open(tmp, "wb") as f:
            np.save(f, out)
    return out


# ---------------------------------------------------------------------------------------
# augmentation


class AugmentParams(BaseModel):
    """Load-time augmentation of the real images: a random crop and flips.

    Only transformations that leave an image as plausible as the originals happen here;
    colour, translation and cutout are differentiable and applied to real and generated
    images alike in the training step (:mod:`training.augment`), so the generator never
    learns to reproduce an augmentation.
    """

    model_config = ConfigDict(extra="forbid")

    crop_scale: tuple[float, float] = (0.7, 1.0)  # side of the crop / side of the image
    flip: bool = True


def augment(
    image: np.ndarray, rng: np.random.Generator, size: int, params: AugmentParams
) -> np.ndarray:
    """uint8 [H, W, 3] → a random crop, resized and flipped: uint8 [size, size, 3]."""
    cv2 = _cv2()
    h, w = image.shape[:2]
    side = round(min(h, w) * rng.uniform(*params.crop_scale))
    side = max(8, min(side, h, w))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = image[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    img = cv2.resize(crop, (size, size), interpolation=interp)
    if params.flip and rng.random() < 0.5:
        img = img[:, ::-1]
    if params.flip and rng.random() < 0.5:
        img = img[::-1]
    return np.ascontiguousarray(img)


class AugmentedImages:
    """A torch ``Dataset`` over uint8 [N, H, W, 3]: item i → float32 [3, size, size] in [-1, 1].

    Augmentation is seeded by (seed, epoch, i); call :meth:`set_epoch` each epoch for new
    draws. ``augment=None`` gives the images resized only (validation).
    """

    def __init__(
        self,
        images: np.ndarray,
        size: int,
        *,
        params: AugmentParams | None = None,
        seed: int = 0,
    ):
        self.images = images
        self.size = int(size)
        self.params = params
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        import torch

        img = self.images[i]
        if self.params is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            img = augment(img, rng, self.size, self.params)
        elif img.shape[0] != self.size:
            img = _cv2().resize(img, (self.size, self.size), interpolation=_cv2().INTER_AREA)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
        return x / 127.5 - 1.0
