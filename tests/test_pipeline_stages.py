"""run_pipeline: decode → post-FX → consume over units, in two worker threads or one."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stratum_kernel.render.pipeline import fuse_stages, plan_units, run_pipeline


def _stages(fail_at: tuple[str, int] | None = None):
    seen: dict[str, list] = {"decode": [], "postfx": [], "consume": [], "threads": []}
    history = []

    def decode(u):
        seen["decode"].append(u.start)
        seen["threads"].append(threading.current_thread().name)
        if fail_at == ("decode", u.start):
            raise ValueError(f"decode failed at {u.start}")
        return np.arange(u.start, u.stop, dtype=np.int64)

    def postfx(u, frames):
        if fail_at == ("postfx", u.start):
            raise KeyError(u.start)
        history.append(int(frames[0]))  # stateful: sees units in order
        return frames * 10 + len(history)

    def consume(u, frames):
        seen["consume"].append((u.chunk, frames.tolist()))

    return decode, postfx, consume, seen


@pytest.mark.parametrize("fused", [False, True])
def test_every_unit_in_order_with_the_same_results(fused):
    units = plan_units([(0, 0, 5), (1, 5, 9)], batch=2)
    decode, postfx, consume, seen = _stages()
    run_pipeline(units, decode, postfx, consume, fused=fused, depth=2)
    assert [c for c, _ in seen["consume"]] == [0, 0, 0, 1, 1]
    assert [f for _, f in seen["consume"]] == [[1, 11], [22, 32], [43], [54, 64], [75, 85]]
    names = set(seen["threads"])
    assert names == ({"stratum-frames"} if fused else {"stratum-decode"})


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("stage", ["decode", "postfx"])
def test_a_failing_stage_stops_the_run_and_reaches_the_caller(fused, stage):
    units = plan_units([(0, 0, 40)], batch=1)
    decode, postfx, consume, seen = _stages(fail_at=(stage, 3))
    with pytest.raises(ValueError if stage == "decode" else KeyError):
        run_pipeline(units, decode, postfx, consume, fused=fused, depth=2)
    assert len(seen["consume"]) == 3 and len(seen["decode"]) < 40  # stopped, not drained


def test_stages_fuse_only_for_a_cpu_decoder_on_two_cores():
    assert fuse_stages("CPUExecutionProvider", cores=2)
    assert fuse_stages("torch:cpu:bfloat16", cores=1)
    assert not fuse_stages("CPUExecutionProvider", cores=16)
    assert not fuse_stages("CUDAExecutionProvider", cores=2)
    assert not fuse_stages("torch:cuda", cores=2)
