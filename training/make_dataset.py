"""Generate a procedural training set: ``data/<set>/images/*.png|json`` + ``manifest.csv``.

The bundled model's set is reproduced with::

    python training/make_dataset.py --set abstract-v1 --count 1200 --size 256

Image ``i`` belongs to bucket ``BUCKETS[i % 5]`` (equal shares) and has seed
``base_seed + i``, so any subset regenerates alone and the manifest's sha256 column
checks that a regenerated image is byte-identical. ``--sample N --out data/sample``
writes the small committed sample (the first N of the same sequence).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterable
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

from stratum_kernel.core.paths import project_root
from training.dataset import ImageRecord, write_image, write_manifest
from training.procedural import BUCKETS, generate


def existing_record(out_dir: Path, stem: str, size: int) -> ImageRecord | None:
    """The record of an already written image ``stem`` of ``size``², or None."""
    png, side = out_dir / "images" / f"{stem}.png", out_dir / "images" / f"{stem}.json"
    if not (png.is_file() and side.is_file()):
        return None
    try:
        meta = json.loads(side.read_text())
        with Image.open(png) as im:
            if im.size != (size, size):
                return None
    except (OSError, ValueError):
        return None
    return ImageRecord(
        file=f"images/{stem}.png",
        bucket=meta["bucket"],
        seed=int(meta["seed"]),
        width=size,
        height=size,
        sha256=hashlib.sha256(png.read_bytes()).hexdigest(),
        source=meta.get("source", "procedural"),
    )


def make_image(
    out_dir: Path,
    index: int,
    *,
    size: int,
    base_seed: int = 0,
    buckets: tuple[str, ...] = BUCKETS,
    reuse: bool = True,
) -> ImageRecord:
    """Write image ``index`` of a set (bucket ``buckets[index % len(buckets)]``, seed
    ``base_seed + index``) unless ``reuse`` finds it already written; return its record."""
    bucket = buckets[index % len(buckets)]
    seed = base_seed + index
    stem = f"{index:05d}-{bucket}"
    if reuse:
        old = existing_record(out_dir, stem, size)
        if old is not None and old.seed == seed:
            return old
    img, params = generate(bucket, seed, size)
    return write_image(
        out_dir, stem, img, bucket=bucket, seed=seed, source="procedural", params=params
    )


def _collect(made: Iterable[ImageRecord], count: int, progress: bool) -> list[ImageRecord]:
    records = []
    t0 = time.perf_counter()
    for n, record in enumerate(made, start=1):
        records.append(record)
        if progress and n % 100 == 0:
            print(f"{n}/{count} images ({n / (time.perf_counter() - t0):.1f}/s)", flush=True)
    return records


def make_set(
    out_dir: str | Path,
    *,
    count: int,
    size: int = 256,
    base_seed: int = 0,
    buckets: tuple[str, ...] = BUCKETS,
    start: int = 0,
    progress: bool = True,
    reuse: bool = True,
    workers: int = 1,
) -> list[ImageRecord]:
    """Write ``count`` procedural images (indices ``start..start+count``) and the manifest.

    With ``reuse``, an image whose PNG and sidecar already exist (an interrupted run) is
    kept and only hashed: generation is deterministic, so it is the same image.
    ``workers`` > 1 makes the images in a process pool (same files, same manifest).
    """
    out_dir = Path(out_dir)
    one = partial(make_image, out_dir, size=size, base_seed=base_seed, buckets=buckets, reuse=reuse)
    indices = range(start, start + count)
    if workers > 1:
        # Spawned, not forked: the caller may hold torch / OpenMP threads a fork would copy.
        with get_context("spawn").Pool(workers) as pool:
            records = _collect(pool.imap(one, indices, chunksize=4), count, progress)
    else:
        records = _collect(map(one, indices), count, progress)
    write_manifest(out_dir, records)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="abstract-v1", help="set name (folder under data/)")
    parser.add_argument("--out", help="output folder (default: data/<set>)")
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--start", type=int, default=0, help="first image index")
    parser.add_argument("--buckets", nargs="+", choices=BUCKETS, default=list(BUCKETS))
    parser.add_argument("--workers", type=int, default=1, help="processes that make images")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else project_root() / "data" / args.set
    records = make_set(
        out,
        count=args.count,
        size=args.size,
        base_seed=args.seed,
        buckets=tuple(args.buckets),
        start=args.start,
        workers=args.workers,
    )
    print(f"wrote {len(records)} images and {out / 'manifest.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
