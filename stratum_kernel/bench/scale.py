"""``stratum bench scale``: what a Dask task costs per chunk, and what a second worker buys.

On a LocalCluster of two single-threaded worker processes (127.0.0.1), with the model in
``models/`` and synthetic features (librosa is not what is measured):

- **per-chunk overhead**: one chunk rendered in this process with
  :func:`~stratum_kernel.render.pipeline.render_chunk` against the same chunk sent to a warm
  worker as :func:`~stratum_kernel.render.distributed.chunk_task` and waited for (pickling the job,
  scheduling, the result's digests back); plus an empty task's round trip;
- **speed-up**: every chunk of a track rendered as tasks pinned to one worker, then spread
  over both; the ratio of the medians is the speed-up of 2 workers over 1.

Default 640×352, 6 s at 24 fps in chunks of 24 frames (``--quick``: 256×144, 2 s, chunks of
12). Segments go to a temporary folder (shared storage). Prints medians; ``--json`` keeps
them for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from stratum_kernel.bench.render import SyntheticAnalysis, _write_album
from stratum_kernel.bench.timing import median, print_table, write_json
from stratum_kernel.core.digests import file_sha256
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.distributed import chunk_task
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.pipeline import render_chunk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=None, help="model folder (default: models/)")


def _setup(work: Path, size: tuple[int, int], seconds: float, chunk: int, models: str | None):

    album = _write_album(work / "album", seconds)
    data = {
        "album_dir": str(album), "output_root": str(work / "out"), "run_id": "scale",
        "frame_rate": 24.0, "resolution": list(size), "controller": {"preset": "pulse"},
        "postfx": {"grain_intensity": 0.12, "vignette": 0.3, "persistence": 0.4},
        "render": {"chunk_frames": chunk, "duration": seconds},
        "decoder": {"batch_size": 1, "threads": 1},
    }
    if models:
        data["model_dir"] = models
    cfg = RenderConfig.from_dict(data)
    ctx = RenderContext(cfg, analysis=SyntheticAnalysis((seconds / 2,)))
    job = ctx.job("bench")
    return cfg, ctx, job, file_sha256(ctx.decoder.onnx_path)


def _chunks(job, chunk: int) -> list[tuple[int, int, int]]:
    return [(i, a, min(a + chunk, job.n_frames)) for i, a in enumerate(range(0, job.n_frames,
                                                                             chunk))]


def measure(client, *, size: tuple[int, int], seconds: float, chunk: int, repeats: int,
            models: str | None = None) -> dict:
    """Time one chunk in process and as a task, an empty task, and all chunks on one worker
    and on every worker of ``client`` (interleaved repetitions); returns medians in
    seconds ({'local', 'remote', 'empty', 'one', 'two'}) and the sizes."""
    from distributed import wait

    work = Path(tempfile.mkdtemp(prefix="stratum-bench-scale-"))
    segs = work / "segs"
    segs.mkdir()
    try:
        cfg, ctx, job, sha = _setup(work, size, seconds, chunk, models)
        workers = sorted(client.scheduler_info()["workers"])
        chunks = _chunks(job, chunk)
        i0, a0, b0 = chunks[min(1, len(chunks) - 1)]

        def local_chunk() -> None:
            render_chunk(ctx, job, a0, b0, segs / "local.mp4")

        def remote_chunk() -> None:
            client.submit(chunk_task, cfg, sha, job, i0, a0, b0, str(segs / "remote.mp4"),
                          workers=workers[:1], pure=False).result()

        def empty_task() -> None:
            client.submit(int, 0, workers=workers[:1], pure=False).result()

        def all_chunks(on: list[str]) -> None:
            futs = [client.submit(chunk_task, cfg, sha, job, i, a, b,
                                  str(segs / f"seg_{i}.mp4"), workers=on, pure=False)
                    for i, a, b in chunks]
            wait(futs)
            for f in futs:
                f.result()

        # warm-up: sessions open here and on every worker (the model loads once per worker)
        local_chunk()
        for w in workers:
            client.submit(chunk_task, cfg, sha, job, i0, a0, b0, str(segs / "warm.mp4"),
                          workers=[w], pure=False).result()
        times: dict[str, list[float]] = {k: [] for k in ("local", "remote", "empty", "one",
                                                         "two")}
        for _ in range(repeats):  # interleaved, so a busy moment hits every variant
            for key, fn in (("local", local_chunk), ("remote", remote_chunk),
                            ("empty", empty_task), ("one", lambda: all_chunks(workers[:1])),
                            ("two", lambda: all_chunks(workers))):
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"median_s": {k: median(v) for k, v in times.items()}, "frames": job.n_frames,
            "chunks": len(chunks), "chunk": b0 - a0, "preset": job.preset.name,
            "workers": len(workers)}


def run(args: argparse.Namespace) -> int:
    from distributed import Client, LocalCluster

    quick = bool(getattr(args, "quick", False))
    size, seconds, chunk = ((256, 144), 2.0, 12) if quick else ((640, 352), 6.0, 24)
    repeats = max(1, int(getattr(args, "repeats", 5) or 5))
    if quick:
        repeats = min(repeats, 2)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    try:
        client.wait_for_workers(2, timeout=180)
        res = measure(client, size=size, seconds=seconds, chunk=chunk, repeats=repeats,
                      models=getattr(args, "models", None))
    finally:
        client.close()
        cluster.close()
    med, frames, n = res["median_s"], res["frames"], res["chunks"]
    rows = [
        ("chunk", f"{res['chunk']} frames at {size[0]}x{size[1]}, {res['preset']} preset"),
        ("in-process chunk", f"{med['local'] * 1000:.1f} ms"),
        ("Dask task chunk", f"{med['remote'] * 1000:.1f} ms"),
        ("overhead per chunk", f"{(med['remote'] - med['local']) * 1000:.1f} ms "
                               f"({(med['remote'] / med['local'] - 1) * 100:+.1f} %)"),
        ("empty task round trip", f"{med['empty'] * 1000:.2f} ms"),
        (f"{n} chunks, 1 worker", f"{med['one']:.2f} s ({frames / med['one']:.1f} fps)"),
        (f"{n} chunks, 2 workers", f"{med['two']:.2f} s ({frames / med['two']:.1f} fps)"),
        ("speed-up 2 workers / 1", f"{med['one'] / med['two']:.2f}x"),
        ("repeats (median of)", str(repeats)),
    ]
    print_table("bench scale (Dask LocalCluster, 2 worker processes)", rows)
    write_json(getattr(args, "json_path", None), "scale", {
        "size": list(size), "seconds": seconds, "chunk_frames": chunk, "frames": frames,
        "chunks": n, "repeats": repeats, "median_s": med,
        "overhead_ms": (med["remote"] - med["local"]) * 1000,
        "speedup_2_over_1": med["one"] / med["two"],
    })
    return 0
