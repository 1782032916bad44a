"""training/gpu_train.py: the time-keyed plan, batches drawn on the device, and the whole
command run end to end on the CPU with tiny settings (the path a GPU runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from training.dataset import AugmentParams  # noqa: E402
from training.gpu_data import DeviceBatches, crop_flip  # noqa: E402
from training.gpu_train import MAX_RESULT_BYTES, PlanClock, main, time_plan  # noqa: E402

MINUTES = 0.3
# the command of the issue, with the set, work folder and cache kept in the test's folder
COMMAND = ["--minutes", str(MINUTES), "--device", "cpu", "--count", "40", "--size", "64",
           "--plan-resolutions", "16,32", "--batch-size", "8"]
SUMMARY_FIELDS = ("images_seen", "iterations", "wall_seconds", "train_seconds",
                  "stages_reached", "final_swd", "native_resolution", "plan", "files",
                  "precision", "device")


class FakeTime:
    """A clock the test moves by hand (seconds)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ the plan keyed by time


@pytest.mark.parametrize(
    ("resolutions", "shares"),
    [((64, 128, 256), (1 / 6, 1 / 3, 1 / 2)), ((16, 32), (1 / 3, 2 / 3)), ((32,), (1.0,))],
)
def test_time_plan_gives_later_stages_more_time(resolutions, shares):
    plan = time_plan(resolutions, kimg=600)
    assert [s.resolution for s in plan.stages] == list(resolutions)
    assert plan.total_kimg == pytest.approx(600)
    assert [s.kimg / 600 for s in plan.stages] == pytest.approx(list(shares))
    assert plan.stages[0].fade_kimg == 0
    assert all(s.fade_kimg == pytest.approx(0.25 * s.kimg) for s in plan.stages[1:])


def test_clock_maps_elapsed_time_to_the_stage():
    plan = time_plan((64, 128, 256), kimg=600)  # 64² to 1/6, 128² to 1/2, then 256²
    now = FakeTime()
    entered = []
    clock = PlanClock(plan, 480.0, now=now, on_stage=entered.append)
    assert clock.elapsed() == 0.0  # not started before its first reading
    # (seconds into the 8-minute budget, stage resolution, fade alpha)
    expected = [(0, 64, 1.0), (79, 64, 1.0), (80, 128, 0.0), (100, 128, 0.5),
                (200, 128, 1.0), (240, 256, 0.0), (270, 256, 0.5), (300, 256, 1.0), (480, 256, 1.0),
                (900, 256, 1.0)]
    start = now.t
    for seconds, resolution, alpha in expected:
        now.t = start + seconds
        pos = clock()
        st = plan.state(pos)
        assert (st.resolution, st.alpha) == (resolution, pytest.approx(alpha, abs=1e-9)), seconds
        assert clock.state(seconds).resolution == resolution
        assert pos == pytest.approx(min(600.0, 600.0 * seconds / 480))
    assert [(e["resolution"], e["entered_at_s"]) for e in clock.stages_reached] == [
        (64, 0.0), (128, 80.0), (256, 240.0)]
    assert entered == clock.stages_reached


def test_clock_continues_a_plan_from_where_a_resumed_run_stood():
    plan = time_plan((64, 128, 256), kimg=600)
    now = FakeTime()
    clock = PlanClock(plan, 60.0, start_kimg=300.0, now=now)
    assert clock() == pytest.approx(300.0)  # in 256², where the earlier run stopped
    now.t += 30
    assert clock() == pytest.approx(450.0)  # the rest of the plan spread over the budget
    now.t += 60
    assert clock() == pytest.approx(600.0)
    with pytest.raises(ValueError, match="positive"):
        PlanClock(plan, 0.0)


# --------------------------------------------------------------- batches on the device


def _gradients(n=12, size=16):
    """uint8 [n, 3, size, size]: image i a left-to-right ramp in red, i·16 in green."""
    ramp = np.linspace(0, 255, size).astype(np.uint8)
    out = np.zeros((n, 3, size, size), np.uint8)
    out[:, 0] = ramp[None, None, :]
    out[:, 1] = (np.arange(n) * 16)[:, None, None]
    out[:, 2] = ramp[None, :, None]
    return torch.from_numpy(out)


def test_crop_flip_without_cropping_gives_the_image_or_its_flips():
    images = _gradients()
    x = images.float() / 127.5 - 1
    params = AugmentParams(crop_scale=(1.0, 1.0), flip=True)
    out = crop_flip(images, 16, params, torch.Generator().manual_seed(0))
    assert out.shape == (12, 3, 16, 16) and out.dtype == torch.float32
    kinds = set()
    for i in range(12):
        for kind, ref in {"id": x[i], "lr": x[i].flip(-1), "ud": x[i].flip(-2),
                          "both": x[i].flip(-1, -2)}.items():
            if torch.allclose(out[i], ref, atol=1e-4):
                kinds.add(kind)
                break
        else:
            pytest.fail(f"image {i} is not a flip of its source")
    assert len(kinds) >= 2  # flips are drawn, not fixed
    # a crop sampled above the output size is pooled down: area-like
    half = crop_flip(images, 8, AugmentParams(crop_scale=(1.0, 1.0), flip=False))
    assert torch.allclose(half, torch.nn.functional.avg_pool2d(x, 2), atol=1e-4)
    assert torch.allclose(crop_flip(images, 8, None), torch.nn.functional.avg_pool2d(x, 2))


def test_crop_flip_crops_are_random_seeded_and_in_range():
    images = _gradients(n=1).repeat(8, 1, 1, 1)
    params = AugmentParams(crop_scale=(0.5, 0.7))
    a = crop_flip(images, 16, params, torch.Generator().manual_seed(3))
    b = crop_flip(images, 16, params, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    # a crop of 50–70 % of the side, stretched to the full size: the ramp's step per pixel
    # is that fraction of the original's
    full = images.float() / 127.5 - 1
    step = lambda t: (t[:, 0, 2:-2, 1:] - t[:, 0, 2:-2, :-1]).abs().mean()  # noqa: E731
    assert 0.5 - 0.02 <= step(a) / step(full) <= 0.7 + 0.02
    assert len({tuple(img[0, 0, :4].tolist()) for img in a}) > 1  # different crops
    with pytest.raises(ValueError, match="uint8"):
        crop_flip(images.float(), 16, params)


def test_device_batches_show_every_image_once_per_permutation():
    images = _gradients(n=12)
    batches = DeviceBatches(images, size=8, batch_size=4, iterations=3, seed=1)
    assert len(batches) == 3
    seen = []
    for batch in batches:
        assert batch.shape == (4, 3, 8, 8) and batch.device == images.device
        green = ((batch[:, 1].mean(dim=(1, 2)) + 1) * 127.5 / 16).round().long()
        seen += green.tolist()
    assert sorted(seen) == list(range(12))
    second = [b[:, 1].mean().item() for b in batches]  # a new pass, a new permutation
    assert len(second) == 3 and batches.passes == 2
    with pytest.raises(ValueError, match="at least 16"):
        DeviceBatches(images, size=8, batch_size=16, iterations=1)


# ------------------------------------------------------------------- the whole command


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("gpu-run")
    out = root / "out"
    rc = main([*COMMAND, "--out", str(out), "--data", str(root / "set"),
               "--work", str(root / "work"), "--cache", str(root / "cache"),
               "--workers", "2", "--epoch-iterations", "10", "--final-samples", "8"])
    assert rc == 0
    return root, out, json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_run_builds_the_set_in_parallel_and_writes_small_results(gpu_run):
    root, out, summary = gpu_run
    assert len(list((root / "set" / "images").glob("*.png"))) == 40
    assert summary["dataset"] == {"set_dir": str(root / "set"), "images": 40,
                                  "stored_size": 64, "build": "made with 2 processes"}
    names = {"generator_ema.safetensors", "travel.ckpt", "validation.jsonl", "summary.json",
             "config.json", "metrics.csv", "grid.png"}
    assert names <= {p.name for p in out.iterdir()}
    for path in out.iterdir():
        assert 0 < path.stat().st_size <= MAX_RESULT_BYTES, path
    assert not (out / "checkpoints").exists()  # the full checkpoints stay in --work
    assert (root / "work" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_summary_reports_images_time_stages_and_swd(gpu_run):
    _, out, summary = gpu_run
    assert all(k in summary for k in SUMMARY_FIELDS)
    assert summary["format"] == "stratum-gpu-run/1"
    assert summary["images_seen"] == 8 * summary["iterations"] > 0
    budget = 60 * MINUTES
    assert budget * 0.95 <= summary["train_seconds"] <= budget + 15
    # the plan is keyed by time: 16² for the first third of the budget, then 32²
    stages = summary["stages_reached"]
    assert [s["resolution"] for s in stages] == [16, 32]
    assert budget / 3 <= stages[1]["entered_at_s"] <= budget / 3 + 5
    assert summary["final_stage"] == {"resolution": 32, "alpha": 1.0}
    assert summary["native_resolution"] == 32
    assert summary["plan_kimg_reached"] == pytest.approx(summary["plan"]["stages"][0]["kimg"]
                                                         + summary["plan"]["stages"][1]["kimg"])
    assert np.isfinite(summary["final_swd"]) and summary["final_swd"] > 0
    records = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    steps = [r["iteration"] for r in records]
    assert steps[0] == 10 and steps == sorted(set(steps))  # after every epoch of 10
    assert records[-1]["stage_resolution"] == 32 and np.isfinite(records[-1]["val_swd"])
    assert summary["last_validation"] == records[-1]


@pytest.mark.slow
def test_weights_decode_and_export_reads_the_checkpoint(gpu_run):
    from stratum_kernel.picture.generator import load_generator_safetensors
    from training.export_onnx import generator_from_checkpoint

    _, out, summary = gpu_run
    gen = load_generator_safetensors(str(out / "generator_ema.safetensors"))
    levels = gen.levels_for(summary["native_resolution"])
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 8, 16, 16),
                                                                  dtype=np.float32))
    with torch.no_grad():
        img = gen(z, levels)
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()
    assert img.abs().max() <= 1 and img.std() > 0
    # what training/export_onnx.py --checkpoint reads: the same EMA, the native size 32²
    again, info = generator_from_checkpoint(out / "travel.ckpt")
    assert info["native_resolution"] == 32 and info["images_seen"] == summary["images_seen"]
    for (k, a), (k2, b) in zip(gen.state_dict().items(), again.state_dict().items(),
                               strict=True):
        assert k == k2 and torch.equal(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batches_and_a_short_run_on_the_gpu(tmp_path):
    images = _gradients()
    params = AugmentParams(crop_scale=(1.0, 1.0), flip=False)
    on_gpu = crop_flip(images.cuda(), 16, params, torch.Generator("cuda").manual_seed(0))
    assert on_gpu.is_cuda
    assert torch.allclose(on_gpu.cpu(), images.float() / 127.5 - 1, atol=1e-4)
    out = tmp_path / "out"
    assert main([*COMMAND[4:], "--minutes", "0.2", "--device", "cuda", "--out", str(out),
                 "--data", str(tmp_path / "set"), "--work", str(tmp_path / "work"),
                 "--cache", str(tmp_path / "cache"), "--epoch-iterations", "20"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "bf16-mixed"
    assert [s["resolution"] for s in summary["stages_reached"]] == [16, 32]
