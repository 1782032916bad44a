"""``stratum bench postfx``: the cost of each post-FX stage per output frame.

From decoded frames at the generator's size (128² and 256², seeded noise blurred into
blobs like a generator's) to 1280×720 output: the plain chain (fill + tone LUT, always on),
then each stage switched on alone — its cost is its median minus the plain chain's,
measured side by side in one run — and all look stages together (the budget: each stage
≤ 4 ms, the whole chain ≤ 10 ms per 720p frame on a 2-core CPU). Trails run with a full
history window, as mid-track.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from stratum_kernel.bench.timing import median, print_table, time_call, write_json
from stratum_kernel.picture.postfx import PostFXParams, apply_postfx, window_frames

STAGES: dict[str, dict] = {
    "persistence 0.6 (8 frames)": {"persistence": 0.6},
    "feedback 0.85 (12 frames)": {"feedback": {"amount": 0.85, "zoom": 1.03, "rotate": 1.0,
                                               "hue": 4.0}},
    "symmetry kaleidoscope 8 (spinning)": {"symmetry": {"mode": "kaleidoscope", "segments": 8,
                                                        "spin": 30.0}},
    "symmetry quad mirror": {"symmetry": {"mode": "quad"}},
    "palette cosine, drifting": {"palette": {"cosine": {}, "mix": 0.8, "drift": 4.0}},
    "palette stops, hue mode": {"palette": {"stops": [[20, 0, 60], [250, 120, 40]],
                                            "mix": 0.8, "mode": "hue"}},
    "glow 0.8": {"glow": {"amount": 0.8}},
    "detail 0.6": {"detail": 0.6},
    "sharpen 0.5": {"sharpen": 0.5},
    "grain 0.3": {"grain_intensity": 0.3},
    "vignette 0.4": {"vignette": 0.4},
    "chroma shift 3 px": {"chroma_shift": 3.0},
}
LOOK = {"feedback": STAGES["feedback 0.85 (12 frames)"]["feedback"],
        "symmetry": STAGES["symmetry kaleidoscope 8 (spinning)"]["symmetry"],
        "palette": STAGES["palette cosine, drifting"]["palette"], "glow": {"amount": 0.8},
        "detail": 0.6, "grain_intensity": 0.3, "vignette": 0.4}


def add_arguments(parser: argparse.ArgumentParser) -> None:  # pragma: no cover - CLI glue
    pass


def _decoded(n: int, size: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        noise = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8)
        out[i] = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    return out


def stage_times(size: int, out_size: tuple[int, int], repeats: int, batch: int = 8
                ) -> dict[str, float]:
    """{stage: median ms per output frame} for the plain chain, each stage and the look."""
    history = 32
    frames = _decoded(history + batch, size)
    cases = {"plain chain (fill, tone LUT)": {}, **STAGES, "all look stages": LOOK}
    out = {}
    for name, over in cases.items():
        params = PostFXParams.model_validate(over)
        k = window_frames(params)

        def call(params=params, k=k):
            apply_postfx(frames[history:], params, frame_indices=range(history, history + batch),
                         seed=1, track_id="bench", out_size=out_size,
                         history=frames[history - k:history], fps=24.0)

        out[name] = median(time_call(call, repeats=repeats)) / batch * 1000.0
    return out


def run(args: argparse.Namespace) -> int:
    import cv2

    cv2.setNumThreads(1)  # as in the render: x264 has the other core
    out_size = (640, 360) if args.quick else (1280, 720)
    repeats = 2 if args.quick else max(3, args.repeats)
    load = os.getloadavg()[0]
    results: dict = {"output": list(out_size), "load_1min": round(load, 2), "sizes": {}}
    for size in ((128,) if args.quick else (128, 256)):
        times = stage_times(size, out_size, repeats)
        plain = times["plain chain (fill, tone LUT)"]
        rows = [(name, f"{ms:7.2f} ms/frame" + ("" if name.startswith("plain") else
                                                f"   (+{ms - plain:5.2f} ms)"))
                for name, ms in times.items()]
        print_table(f"post-FX stages, {size}² decoded → {out_size[0]}×{out_size[1]}, cv2 1 "
                    f"thread, load {load:.2f}", rows)
        results["sizes"][str(size)] = {k: round(v, 3) for k, v in times.items()}
    write_json(args.json_path, "postfx", results)
    return 0
