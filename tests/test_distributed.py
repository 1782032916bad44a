"""Rendering on a Dask LocalCluster of two worker processes: byte-identical to a local run,
with shared storage and with segments returned to the client, and through a worker killed
in the middle of a chunk. The album analysis is the numpy stand-in of test_render.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stratum_kernel.audio.album import load_album
from stratum_kernel.core.errors import ConfigError, RenderError
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.run import render_album
from tests.test_render import NumpyAnalysis, make_config, sha, write_album

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def album_dir(tmp_path_factory) -> Path:
    return write_album(tmp_path_factory.mktemp("dalbum"))


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       memory_limit="1GiB")
    c = distributed.Client(cluster)
    c.wait_for_workers(2, timeout=120)
    yield c
    c.close()
    cluster.close()


SMALL = {"render__duration": 1.0, "render__chunk_frames": 8}  # 24 frames, 3 chunks a track


def run(album_dir, model_dir, out, run_id, **kw):
    render_kw = ("scheduler", "shared_storage", "worker_hook", "on_chunk")
    over = {**SMALL, **{k: kw.pop(k) for k in list(kw) if k not in render_kw}}
    cfg = make_config(album_dir, model_dir, out, run_id, **over)
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    return render_album(cfg, progress=False, context=ctx, **kw)


@pytest.fixture(scope="module")
def local(album_dir, tiny_model_dir, tmp_path_factory):
    return run(album_dir, tiny_model_dir, tmp_path_factory.mktemp("local"), "local")


def assert_identical(res, local) -> None:
    for name in ("track1.mp4", "track2.mp4", "album.mp4"):
        assert sha(res.run_dir / name) == sha(local.run_dir / name), name
    base = {t.id: t for t in local.record.tracks}
    for t in res.record.tracks:
        b = base[t.id]
        assert t.frames_sha256 == b.frames_sha256
        assert t.decoded_sha256 == b.decoded_sha256
        assert [c.frames_sha256 for c in t.chunks] == [c.frames_sha256 for c in b.chunks]
    assert res.record.album.sha256 == local.record.album.sha256
    assert sorted(p.name for p in (res.run_dir / "previews").iterdir()) == sorted(
        p.name for p in (local.run_dir / "previews").iterdir())
    assert not (res.run_dir / ".work").exists()
    assert not list(res.run_dir.rglob("*.tmp-*"))


def worker_addresses(client) -> set[str]:
    return set(client.scheduler_info()["workers"])


@pytest.mark.slow
@pytest.mark.parametrize("shared", [None, False])
def test_cluster_render_is_identical_to_local(local, album_dir, tiny_model_dir, tmp_path,
                                              client, shared):
    done: list = []
    res = run(album_dir, tiny_model_dir, tmp_path, "dist", scheduler=client,
              shared_storage=shared, on_chunk=lambda t, c: done.append((t, c)))
    assert_identical(res, local)
    d = res.record.distributed
    assert d["shared_storage"] is (shared is None)  # one machine: the probe is seen
    assert d["tasks"] == 6 and sorted(done) == [(t, i) for t in ("track1", "track2")
                                                 for i in range(3)]
    workers = worker_addresses(client)
    chunk_workers = [c.worker for t in res.record.tracks for c in t.chunks]
    assert set(chunk_workers) <= workers and set(d["workers"]) == set(chunk_workers)
    assert all(w["model_loads"] == 1 for w in d["workers"].values())  # once per worker
    names = {str(i["name"]) for i in client.scheduler_info()["workers"].values()}
    assert {w["name"] for w in d["workers"].values()} <= names
    assert sum(w["frames"] for w in d["workers"].values()) == 48
    on_disk = json.loads((res.run_dir / "meta.json").read_text())
    assert on_disk["distributed"]["workers"] == d["workers"]


@pytest.mark.slow
def test_worker_killed_mid_chunk_is_retried_elsewhere(local, album_dir, tiny_model_dir,
                                                      tmp_path, client):
    marker = tmp_path / "killed-once"

    def kill_once(track: str, chunk: int, done: int) -> None:
        # runs on the worker: die half-way through track1's chunk 1, the first time only
        if (track, chunk) == ("track1", 1) and done >= 4 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)

    before = worker_addresses(client)
    res = run(album_dir, tiny_model_dir, tmp_path, "killed", scheduler=client,
              worker_hook=kill_once)
    assert marker.exists()  # a worker really died mid-chunk
    assert_identical(res, local)
    t1 = res.record.tracks[0]
    assert [c.index for c in t1.chunks] == [0, 1, 2]  # nothing lost or duplicated
    assert res.record.distributed["tasks"] == 6
    client.wait_for_workers(2, timeout=120)  # the nanny restarted it
    assert worker_addresses(client) != before or len(before) == 2


def test_scheduler_config_and_errors(album_dir, tiny_model_dir, tmp_path):
    cfg = make_config(album_dir, tiny_model_dir, tmp_path, "x", scheduler="local:3")
    assert cfg.scheduler == "local:3"
    with pytest.raises(ConfigError, match="scheduler"):
        make_config(album_dir, tiny_model_dir, tmp_path, "x", scheduler="http://nope")
    from stratum_kernel.render.distributed import connect

    with pytest.raises(RenderError, match="not int"):
        connect(8786)
    with pytest.raises(RenderError, match="could not reach"):
        connect("tcp://127.0.0.1:9", timeout=1.0)
    with pytest.raises(RenderError, match="keep_frames"):
        run(album_dir, tiny_model_dir, tmp_path, "kf", scheduler="tcp://127.0.0.1:9",
            render__keep_frames=True)


def test_fingerprint_ignores_where_chunks_run(album_dir, tiny_model_dir, tmp_path):
    from stratum_kernel.render.fingerprint import run_fingerprint

    def fingerprint(cfg):
        album = load_album(album_dir)
        ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
        return run_fingerprint(ctx, {t: ctx.job(t) for t in ctx.track_ids()})

    a = make_config(album_dir, tiny_model_dir, tmp_path, "x")
    b = make_config(album_dir, tiny_model_dir, tmp_path, "x", scheduler="tcp://h:8786",
                    shared_storage=False, decoder={"batch_size": 7, "threads": 2})
    assert fingerprint(a) == fingerprint(b)


def test_cli_scheduler_flag(monkeypatch, tmp_path):
    import argparse

    from stratum_kernel.commands import render as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--scheduler", "tcp://127.0.0.1:8786", "--shared-storage", "no"])
    seen = {}

    def fake_render(config, **kw):
        seen["config"] = config
        raise RenderError("stop here")

    monkeypatch.setattr(cmd, "render_album", fake_render)
    with pytest.raises(RenderError, match="stop here"):
        cmd.run(args)
    assert seen["config"].scheduler == "tcp://127.0.0.1:8786"
    assert seen["config"].shared_storage is False


def test_chunk_task_alone_equals_the_render_frames(album_dir, tiny_model_dir, tmp_path):
    """The task body, run in this process: both storage modes give the same bytes and the
    digests of exactly the frames RenderContext.frames computes; a foreign model refuses."""
    from stratum_kernel.core.digests import file_sha256, frame_digest
    from stratum_kernel.render.distributed import chunk_task, describe

    cfg = make_config(album_dir, tiny_model_dir, tmp_path, "t", render__chunk_frames=8)
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    job = ctx.job("track1")
    model_sha = file_sha256(ctx.model.onnx_path)
    ticks: list = []
    as_bytes = chunk_task(cfg, model_sha, job, 1, 8, 16, None,
                          lambda t, c, done: ticks.append((t, c, done)))
    seg = tmp_path / "seg_00001.mp4"
    shared = chunk_task(cfg, model_sha, job, 1, 8, 16, str(seg))
    elsewhere = chunk_task(cfg, model_sha, job, 1, 8, 16, str(tmp_path / "missing/seg.mp4"))
    assert as_bytes["worker"].startswith("pid-") and shared["path"] == str(seg)
    assert seg.read_bytes() == as_bytes["data"] == elsewhere["data"]
    assert as_bytes["digests"] == shared["digests"] == [
        frame_digest(f) for f in ctx.frames(job, 8, 16)]
    assert ticks[-1] == ("track1", 1, 8) and len(ticks) == 2  # batch size 4
    assert shared["loads"] == as_bytes["loads"]  # the model was not loaded again
    with pytest.raises(RenderError, match="same model folder"):
        chunk_task(cfg, "0" * 64, job, 1, 8, 16, None)
    line = describe({"tasks": 2, "scheduler": "local:2", "shared_storage": False,
                     "workers": {"tcp://a": {"chunks": 2}}})
    assert line == "2 chunk(s) on local:2 (client storage; tcp://a: 2)"


@pytest.mark.slow
def test_a_chunk_that_keeps_failing_stops_the_run_resumably(album_dir, tiny_model_dir,
                                                            tmp_path, client):
    def always_fails(track: str, chunk: int, done: int) -> None:
        if chunk == 1:
            raise ValueError("simulated bad chunk")

    with pytest.raises(RenderError, match=r"chunk 1 .*failed on the cluster.*simulated"):
        run(album_dir, tiny_model_dir, tmp_path, "fail", scheduler=client, tracks=["track2"],
            render__duration=0.5, worker_hook=always_fails)
    state = json.loads((tmp_path / "fail/.work/track2/state.json").read_text())
    assert "1" not in state["chunks"]  # the failed chunk is not recorded; resume redoes it
    assert not (tmp_path / "fail/meta.json").exists()


def test_connect_starts_and_stops_a_local_cluster(monkeypatch):
    from stratum_kernel.render import distributed as dist

    made: dict = {}

    class FakeCluster:
        def __init__(self, **kw):
            made["cluster"] = kw

        def close(self):
            made["cluster_closed"] = True

    class FakeClient:
        def __init__(self, target, **kw):
            made["client"] = target

        def close(self):
            made["client_closed"] = True

    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", FakeClient)
    client, release, address = dist.connect("local:3")
    assert address == "local:3" and isinstance(client, FakeClient)
    assert made["cluster"]["n_workers"] == 3 and made["cluster"]["processes"] is True
    assert made["cluster"]["host"] == "127.0.0.1"
    release()
    assert made["client_closed"] and made["cluster_closed"]
    _, _, default = dist.connect("local")
    assert default == f"local:{dist.LOCAL_WORKERS}"


@pytest.mark.slow
def test_bench_scale_measures_on_the_cluster(client, tiny_model_dir):
    from stratum_kernel.bench.scale import measure

    res = measure(client, size=(64, 64), seconds=1.0, chunk=12, repeats=1,
                  models=str(tiny_model_dir))
    assert res["frames"] == 24 and res["chunks"] == 2 and res["workers"] == 2
    med = res["median_s"]
    assert set(med) == {"local", "remote", "empty", "one", "two"}
    assert all(v > 0 for v in med.values()) and med["empty"] < med["remote"]


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_local_run_resumes_on_the_cluster(local, album_dir, tiny_model_dir, tmp_path, client):
    def crash(track, chunk):
        if (track, chunk) == ("track1", 1):
            raise Interrupt("stopped after track1 chunk 1")

    with pytest.raises(Interrupt):
        run(album_dir, tiny_model_dir, tmp_path, "moved", on_chunk=crash)
    done: list = []
    cfg = make_config(album_dir, tiny_model_dir, tmp_path, "moved", **SMALL)
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    res = render_album(cfg, progress=False, context=ctx, resume=True, scheduler=client,
                       on_chunk=lambda t, c: done.append((t, c)))
    assert ("track1", 0) not in done and len(done) == 5  # chunk 0 was kept
    assert_identical(res, local)
    t1 = res.record.tracks[0].chunks
    assert t1[0].worker is None and t1[1].worker.startswith("tcp://127.0.0.1:")
