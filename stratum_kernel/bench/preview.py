"""``stratum bench preview``: slider change → new preview frame ready, server side.

The explorer's own path is timed, headless: a parameter change becomes a request to the
latest-wins worker, which plans (when the controller changed), decodes (what is not
cached), applies post-FX and encodes the image the browser gets (BMP); the latency is
from ``submit`` to that image. The model in ``models/`` draws a 256² preview of a 3-minute
synthetic track (``--quick``: 60 s, 128²); the analysis is synthetic (librosa is not what
is measured).

Scenarios, each over ~50 changes, one at a time (the next change waits for the frame):

- **post-FX** sliders (exposure, contrast, grain, ...): decoded frames are reused;
- **controller** sliders (speed, temperature, pulse amount, ...): a new plan and a decode;
- **timeline** moves to another moment: a decode;
- **mixed**: the three interleaved, as a session of tuning goes;
- **persistence** (the 'bloom' preset, 16 frames of trails), controller sliders: the first
  frame shown is a draft, the exact one follows once the trail frames are decoded;
- **drag**: 50 changes 15 ms apart (a dragged slider): how many were rendered, and the
  latency of the last one.

Prints p50 / p95 / max per scenario in milliseconds, and the worker thread's CPU time per
change (ONNX Runtime decodes on that thread with the render's one decoder thread), which is
what the wall time would be on an idle CPU: on a shared machine the wall time also counts
waiting for a core.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from stratum_kernel.bench.render import SyntheticAnalysis, _write_album
from stratum_kernel.bench.timing import machine_description, print_table, write_json
from stratum_kernel.motion.presets import load_preset, merge_preset_layers
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.studio.explorer import PreviewRequest, render_request
from stratum_kernel.studio.preview import LatestWins, PreviewEngine

POSTFX = [("postfx", "exposure", -0.6, 0.9), ("postfx", "contrast", 0.8, 1.6),
          ("postfx", "saturation", 0.6, 1.6), ("postfx", "vignette", 0.0, 0.8),
          ("postfx", "grain_intensity", 0.0, 0.4), ("postfx", "chroma_shift", 0.0, 4.0)]
CONTROLLER = [("motion", "speed", 0.5, 2.5), ("anchors", "temperature", 0.3, 2.0),
              ("tempo_sync", "amount", 1.0, 12.0), ("anchors", "chroma", 0.0, 3.0),
              ("anchors", "wander", 0.0, 2.0)]


class Probe:
    """The explorer's worker and request function, with submit → result timestamps."""

    def __init__(self, engine, track_id: str, preset, strip: int = 4):

        self.engine, self.track_id, self.preset, self.strip = engine, track_id, preset, strip
        self.Request = PreviewRequest
        self.sent: dict[int, float] = {}
        self.first: dict[int, float] = {}
        self.exact: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.drafts = 0
        self._cpu0 = 0.0
        self._done = threading.Condition()

        def work(request, ticket):
            self._cpu0 = time.thread_time()  # the worker thread's own CPU time
            render_request(engine, request, ticket)

        self.worker = LatestWins(work, on_result=self._result)

    def _result(self, _key, seq, res) -> None:
        now = time.perf_counter()
        if res.kind == "strip":
            return
        with self._done:
            if seq not in self.first:
                self.first[seq] = now
                self.cpu[seq] = 1000.0 * (time.thread_time() - self._cpu0)
            if res.kind == "draft":
                self.drafts += 1
            else:
                self.exact[seq] = now
            self._done.notify_all()

    def submit(self, frame: int) -> int:
        req = self.Request("a", self.track_id, frame, self.preset, self.strip)
        t = time.perf_counter()
        seq = self.worker.submit(req, key="a")
        self.sent[seq] = t
        return seq

    def wait(self, seq: int, timeout: float = 60.0) -> None:
        with self._done:
            self._done.wait_for(lambda: seq in self.exact, timeout)
        self.worker.wait_idle(timeout)

    def latency(self, seq: int, exact: bool = False) -> float:
        end = (self.exact if exact else self.first)[seq]
        return 1000.0 * (end - self.sent[seq])


def _edit(preset, section: str, name: str, value: float):
    return merge_preset_layers(preset, {section: {name: round(float(value), 4)}})


def _scenario(probe: Probe, kind: str, n: int, rng: np.random.Generator, n_frames: int,
              frame: int) -> dict[str, list[float]]:
    first, exact, cpu = [], [], []
    for k in range(n):
        pick = kind if kind != "mixed" else ("postfx", "controller", "timeline")[k % 3]
        if pick == "timeline":
            frame = int(rng.integers(0, n_frames))
        else:
            table = POSTFX if pick == "postfx" else CONTROLLER
            section, name, lo, hi = table[k % len(table)]
            probe.preset = _edit(probe.preset, section, name, rng.uniform(lo, hi))
        seq = probe.submit(frame)
        probe.wait(seq)
        first.append(probe.latency(seq))
        exact.append(probe.latency(seq, exact=True))
        cpu.append(probe.cpu[seq])
    return {"first": first, "exact": exact, "cpu": cpu}


def _drag(probe: Probe, n: int, frame: int) -> dict[str, float]:
    before = dict(probe.worker.stats)
    seqs = []
    for k in range(n):
        probe.preset = _edit(probe.preset, "postfx" if k % 2 else "motion",
                             "exposure" if k % 2 else "speed",
                             0.1 + 0.5 * k / n if k % 2 else 1.0 + k / n)
        seqs.append(probe.submit(frame))
        time.sleep(0.015)
    probe.wait(seqs[-1])
    started = probe.worker.stats["started"] - before["started"]
    return {"changes": n, "rendered": started, "last_ms": probe.latency(seqs[-1])}


def _stats(values: list[float]) -> str:
    a = np.asarray(values)
    return (f"p50 {np.percentile(a, 50):6.1f} ms   p95 {np.percentile(a, 95):6.1f} ms   "
            f"max {a.max():6.1f} ms   (n={len(a)})")


def add_arguments(parser: argparse.ArgumentParser) -> None:  # pragma: no cover - CLI glue
    pass


def run(args: argparse.Namespace) -> int:

    quick = bool(getattr(args, "quick", False))
    seconds, size, n = (60.0, (128, 128), 20) if quick else (180.0, (256, 256), 50)
    models = getattr(args, "models", None)
    work = Path(tempfile.mkdtemp(prefix="stratum-bench-preview-"))
    rng = np.random.default_rng(0)
    results: dict[str, dict] = {}
    try:
        album = _write_album(work / "album", seconds)
        data = {"album_dir": str(album), "output_root": str(work / "out"),
                "resolution": list(size), "frame_rate": 24.0,
                "controller": {"preset": "pulse"},
                "decoder": {"batch_size": 4, "threads": 1,
                            "precision": getattr(args, "precision", None) or "float32"}}
        if models:
            data["model_dir"] = models
        cfg = RenderConfig.from_dict(data)
        engine = PreviewEngine(cfg, analysis=SyntheticAnalysis((seconds / 2,)))
        t0 = time.perf_counter()
        job = engine.base_job("bench")
        engine.ctx.decoder  # noqa: B018 - the ORT session, opened before timing
        setup_s = time.perf_counter() - t0
        frame = job.n_frames // 3
        probe = Probe(engine, "bench", engine.file_preset("bench"))
        probe.wait(probe.submit(frame))  # warm: first plan, first decode
        for kind in ("postfx", "controller", "timeline", "mixed"):
            results[kind] = _scenario(probe, kind, n, rng, job.n_frames, frame)
        probe.worker.close()
        bloom = Probe(engine, "bench", load_preset("bloom"))
        bloom.wait(bloom.submit(frame))
        results["persistence"] = _scenario(bloom, "controller", max(10, n // 3), rng,
                                           job.n_frames, frame)
        results["persistence"]["drafts"] = bloom.drafts
        bloom.worker.close()
        drag = Probe(engine, "bench", engine.file_preset("bench"))
        drag.wait(drag.submit(frame))
        results["drag"] = _drag(drag, n, frame)
        drag.worker.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [("profile", f"{size[0]}x{size[1]} preview, {seconds:g} s track "
                        f"({job.n_frames} frames), model {engine.model.meta.name}, "
                        f"decoder {engine.ctx.decoder.provider}"),
            ("setup (job + session)", f"{setup_s * 1000:.0f} ms")]
    everything: list[float] = []
    cpu_all: list[float] = []
    for kind in ("postfx", "controller", "timeline", "mixed"):
        rows.append((f"{kind} → frame", _stats(results[kind]["first"])))
        everything += results[kind]["first"]
        cpu_all += results[kind]["cpu"]
    rows.append(("all of the above", _stats(everything)))
    for kind in ("postfx", "controller", "timeline"):
        rows.append((f"  CPU of {kind}", _stats(results[kind]["cpu"])))
    rows.append(("  CPU of all", _stats(cpu_all) + "  (worker thread; = wall on an idle CPU)"))
    p = results["persistence"]
    rows.append(("persistence → first", _stats(p["first"]) + f"  drafts {p['drafts']}"))
    rows.append(("persistence → exact", _stats(p["exact"])))
    d = results["drag"]
    rows.append(("drag (15 ms apart)", f"{d['changes']} changes → {d['rendered']} rendered, "
                                       f"last ready after {d['last_ms']:.0f} ms"))
    print_table("preview latency (slider change → image ready, server side)", rows)
    summary = {k: {"p50_ms": float(np.percentile(v["first"], 50)),
                   "p95_ms": float(np.percentile(v["first"], 95))}
               for k, v in results.items() if k != "drag"}
    summary["all"] = {"p50_ms": float(np.percentile(everything, 50)),
                      "p95_ms": float(np.percentile(everything, 95)),
                      "cpu_p50_ms": float(np.percentile(cpu_all, 50)),
                      "cpu_p95_ms": float(np.percentile(cpu_all, 95))}
    summary["persistence_exact"] = {"p50_ms": float(np.percentile(p["exact"], 50)),
                                    "p95_ms": float(np.percentile(p["exact"], 95))}
    summary["drag"] = d
    write_json(getattr(args, "json_path", None), "preview",
               {"machine": machine_description(), **summary})
    return 0
