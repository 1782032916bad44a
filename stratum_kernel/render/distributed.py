"""Rendering an album's chunks as tasks on a Dask cluster, byte-identical to a local run.

``render_album(config, scheduler=...)`` hands its tracks to :func:`render_tracks_distributed`.
The client (the process that called it) resolves every track's job — features, latent plan,
post-FX — and prepares the audio; each chunk (a frame range of a track) becomes one Dask
task, :func:`chunk_task`, which decodes, post-processes and encodes that range into a video
segment on a worker. The client records each finished chunk in the track's ``state.json``
(so ``resume`` works as for a local run) and joins the segments without re-encoding.

Identity with a local run: a chunk computed alone decodes its persistence history again
(see :func:`stratum_kernel.render.pipeline.render_chunk`), frames depend only on (seed,
track, frame), and the encoder is bit-exact, so segments, films and frame digests equal the
local run's.

Model: loaded once per worker process (:data:`_WORKER_MODELS`, keyed by the ONNX file's
sha256 and the decoder settings); a worker whose model file differs from the client's
refuses the chunk with a clear error.

Storage: with a shared output path (every worker sees the run folder) workers write their
segments straight into ``<run>/.work/<track>/`` (temporary name, renamed when complete);
otherwise each worker encodes into a private temporary folder and returns the segment's
bytes, which the client writes. ``shared_storage=None`` detects which by asking every
worker to read a probe file the client just wrote.

Faults: a worker that dies mid-chunk loses only its temporary file; the scheduler runs the
task again on another worker (``distributed.scheduler.allowed-failures``), and a task that
raises is retried ``retries`` times. A chunk is recorded once, from the first result that
arrives; a repeated task writes the same bytes under the same name. meta.json says which
worker rendered each chunk (``tracks[i].chunks[j].worker``) and sums it up under
``distributed``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.errors import RenderError
from stratum_kernel.core.paths import write_bytes_atomic
from stratum_kernel.picture.decoder import FrameDecoder
from stratum_kernel.picture.model import load_model
from stratum_kernel.render.config import check_scheduler
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.pipeline import (
    WORK,
    TrackRun,
    finish_track,
    prepare_track_audio,
    record_chunk,
    render_chunk,
    track_already_done,
)
from stratum_kernel.render.progress import RenderProgress, reporter
from stratum_kernel.render.record import TrackRecord

log = logging.getLogger(__name__)

#: Per worker process: (model sha256, decoder params) -> (model, FrameDecoder).
_WORKER_MODELS: dict[str, tuple[Any, Any]] = {}
#: How many times this process loaded a model (reported with each chunk; tests check 1).
_LOADS = {"count": 0}
DEFAULT_RETRIES = 2
LOCAL_WORKERS = 2


# ----------------------------------------------------------------------------- clients


def connect(scheduler: Any, *, timeout: float = 20.0) -> tuple[Any, Callable[[], None], str]:
    """A ``distributed.Client`` for ``scheduler`` and a function that releases what was
    started here, plus the address for meta.json.

    scheduler: a Client (used as is, left open), ``'local'`` / ``'local:N'`` (a LocalCluster
    of N single-threaded worker processes on 127.0.0.1, closed at the end), or an address
    such as ``'tcp://host:8786'`` (given ``timeout`` seconds to answer)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RenderError(
            "rendering on a Dask cluster needs dask distributed: pip install "
            "'stratum[scale]' (or remove --scheduler to render on this machine)"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, lambda: None, str(scheduler.scheduler.address)
    if not isinstance(scheduler, str):
        raise RenderError(f"scheduler must be an address, 'local[:N]' or a distributed.Client, "
                          f"not {type(scheduler).__name__}")
    try:
        spec = check_scheduler(scheduler)
    except ValueError as err:
        raise RenderError(str(err)) from None
    if spec.startswith("local"):
        n = int(spec.split(":", 1)[1]) if ":" in spec else LOCAL_WORKERS
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)

        def close_local() -> None:
            client.close()
            cluster.close()

        return client, close_local, f"local:{n}"
    try:
        client = Client(spec, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as err:
        raise RenderError(
            f"could not reach the Dask scheduler at {spec}: {err}; start one with "
            "'dask scheduler' and workers with 'dask worker " + spec + "', or check the "
            "address and firewall"
        ) from None
    return client, client.close, spec


# ------------------------------------------------------------------------ worker side


def _worker_name(with_name: bool = False) -> Any:
    """This worker's address (and its name), or ``pid-N`` outside a Dask worker."""
    try:
        from distributed import get_worker

        w = get_worker()
        return (str(w.address), str(w.name)) if with_name else str(w.address)
    except (ImportError, ValueError):
        here = f"pid-{os.getpid()}"
        return (here, here) if with_name else here


def worker_context(config: Any, model_sha: str) -> RenderContext:
    """A RenderContext for ``config`` whose model and decoder are loaded once per process
    (cached by the model's sha256 and the decoder settings)."""
    key = model_sha + config.decoder.model_dump_json()
    cached = _WORKER_MODELS.get(key)
    if cached is None:
        model = load_model(config.model_path)
        onnx_path = model.head(config.decoder.head)[0]
        found = file_sha256(onnx_path)
        if found != model_sha:
            raise RenderError(
                f"worker {_worker_name()}: {onnx_path} has sha256 {found[:12]}…, the "
                f"client's model has {model_sha[:12]}…; give every worker the same model "
                "folder at the same path"
            )
        _LOADS["count"] += 1
        cached = _WORKER_MODELS[key] = (model, FrameDecoder(model, config.decoder))
    model, decoder = cached
    return RenderContext(config, model=model, decoder=decoder)


def chunk_task(config: Any, model_sha: str, job: Any, index: int, start: int, stop: int,
               segment: str | None, hook: Callable[[str, int, int], None] | None = None
               ) -> dict:
    """Render chunk ``index`` (frames [start, stop)) of ``job`` on this worker.

    segment: the segment's path in the shared run folder; when None, or when this worker
    cannot see its folder, the segment is encoded in a private temporary folder and its
    bytes are returned. Returns {"digests": [bytes], "path" | "data", "worker", "loads",
    "seconds"}."""
    t0 = time.perf_counter()
    ctx = worker_context(config, model_sha)
    tick = None if hook is None else (lambda done: hook(job.track_id, index, done))
    address, name = _worker_name(with_name=True)
    out: dict[str, Any] = {"worker": address, "name": name, "loads": _LOADS["count"]}
    if segment is not None and Path(segment).parent.is_dir():
        out["digests"] = render_chunk(ctx, job, start, stop, Path(segment), hook=tick)
        out["path"] = segment
    else:
        tmp = Path(tempfile.mkdtemp(prefix="stratum-chunk-"))
        try:
            seg = tmp / f"seg_{index:05d}.mp4"
            out["digests"] = render_chunk(ctx, job, start, stop, seg, hook=tick)
            out["data"] = seg.read_bytes()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    return out


def _probe(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def detect_shared_storage(client: Any, work: Path) -> bool:
    """True when every worker reads the probe file this client writes into ``work``."""
    token = uuid.uuid4().hex
    probe = work / f".probe-{token[:8]}"
    probe.write_text(token)
    try:
        seen = client.run(_probe, str(probe), token)
    finally:
        probe.unlink(missing_ok=True)
    return bool(seen) and all(seen.values())


# ------------------------------------------------------------------------ client side


def check_local_only(cfg: Any) -> None:
    """Settings a cluster cannot honour (a RenderError naming them)."""
    if cfg.render.keep_frames:
        raise RenderError("render.keep_frames is not available with a Dask scheduler (the "
                          "frames are made on the workers); render locally to keep PNGs")


def render_tracks_distributed(ctx: RenderContext, run_dir: Path, ids: Sequence[str],
                              scheduler: Any, *,
                              model_sha: str, shared_storage: bool | None = None,
                              progress: bool | str | RenderProgress = True,
                              on_chunk: Callable[[str, int], None] | None = None,
                              worker_hook: Callable[[str, int, int], None] | None = None,
                              retries: int = DEFAULT_RETRIES, address: str | None = None,
                              ) -> tuple[dict[str, TrackRecord], dict]:
    """Render tracks ``ids`` of a run on a Dask cluster (``scheduler``: see :func:`connect`);
    returns ({track: its record}, the ``distributed`` record for meta.json). Resumes like a
    local run: chunks already recorded in a track's state are not submitted again.
    ``address``: how to name the cluster in meta.json (default: its scheduler address)."""
    cfg = ctx.config
    check_local_only(cfg)
    client, release, found = connect(scheduler)
    address = address or found
    t0 = time.perf_counter()
    try:
        runs = {t: TrackRun(ctx, ctx.job(t), run_dir) for t in ids}
        shown = reporter(progress, {t: r.job.n_frames for t, r in runs.items()})
        if shared_storage is None:
            shared_storage = detect_shared_storage(client, run_dir / WORK)
        infos: dict[str, TrackRecord] = {}
        pending: dict[Any, tuple[str, int, int, int]] = {}
        token = uuid.uuid4().hex[:8]
        for tid, run in runs.items():
            done = track_already_done(run)
            if done is not None:
                infos[tid] = done
                shown.start_track(tid, run.job.n_frames)
                continue
            finished = run.finished_chunks()
            shown.start_track(tid, sum(b - a for i, a, b in run.chunks if i in finished))
            for i, a, b in run.chunks:
                if i in finished:
                    continue
                seg = str(run.segment(i)) if shared_storage else None
                fut = client.submit(chunk_task, cfg, model_sha, run.job, i, a, b, seg,
                                    worker_hook, key=f"stratum-chunk-{tid}-{i}-{token}",
                                    retries=retries, pure=False)
                pending[fut] = (tid, i, a, b)
        log.info("%d chunk task(s) on %s (%d workers, %s storage)", len(pending), address,
                 len(client.scheduler_info().get("workers", {})),
                 "shared" if shared_storage else "client")
        audio = {t: prepare_track_audio(r) for t, r in runs.items() if t not in infos}
        workers: dict[str, dict] = {}
        try:
            _collect(client, pending, runs, workers, shown, on_chunk, record_chunk,
                     write_bytes_atomic)
        finally:
            shown.close()
        for tid in ids:
            if tid not in infos:
                infos[tid] = finish_track(runs[tid], audio[tid])
        meta = {"scheduler": address, "shared_storage": bool(shared_storage),
                "retries": retries, "tasks": sum(w["chunks"] for w in workers.values()),
                "workers": workers, "seconds": round(time.perf_counter() - t0, 3)}
        return infos, meta
    finally:
        release()


def _collect(client: Any, pending: dict, runs: dict, workers: dict, shown: RenderProgress,
             on_chunk: Callable[[str, int], None] | None, record: Callable,
             write_segment: Callable) -> None:
    """Record chunk results as they arrive; on a failure cancel the rest and re-raise."""
    from distributed import as_completed

    seen: set[tuple[str, int]] = set()
    try:
        for fut in as_completed(list(pending)):
            tid, i, a, b = pending[fut]
            try:
                res = fut.result()
            except Exception as err:
                raise RenderError(f"track {tid!r} chunk {i} (frames {a}-{b - 1}) failed on "
                                  f"the cluster: {type(err).__name__}: {err}") from err
            if (tid, i) in seen:  # never record a chunk twice
                continue
            seen.add((tid, i))
            run = runs[tid]
            seg = run.segment(i)
            if "data" in res:
                write_segment(seg, res["data"])
            elif not Path(res["path"]).is_file():
                raise RenderError(
                    f"worker {res['worker']} wrote {res['path']}, which this machine cannot "
                    "see; the output path is not shared: use shared_storage=False"
                )
            if on_chunk is not None:
                on_chunk(tid, i)
            record(run, i, a, b, [bytes(d) for d in res["digests"]], seg, res["worker"])
            w = workers.setdefault(res["worker"], {"name": res.get("name"), "chunks": 0,
                                                   "frames": 0, "seconds": 0.0,
                                                   "model_loads": 0})
            w["chunks"] += 1
            w["frames"] += b - a
            w["seconds"] = round(w["seconds"] + res["seconds"], 3)
            w["model_loads"] = max(w["model_loads"], res["loads"])
            shown.advance(tid, b - a)
    except BaseException:
        client.cancel(list(pending))
        raise


def describe(meta: dict) -> str:
    """One line about a distributed run's meta record (the CLI prints it)."""
    ws = meta.get("workers", {})
    per = ", ".join(f"{w}: {r['chunks']}" for w, r in sorted(ws.items()))
    return (f"{meta.get('tasks', 0)} chunk(s) on {meta.get('scheduler')} "
            f"({'shared' if meta.get('shared_storage') else 'client'} storage; {per})")


__all__ = ["chunk_task", "connect", "describe", "detect_shared_storage",
           "render_tracks_distributed", "worker_context"]
