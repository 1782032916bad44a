"""GAN training on CPU (tiny 32² model), the discriminator, regularisers, EMA and SWD."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from training.gan_module import GANModule, colour_regularisers, saturation  # noqa: E402
from training.metrics import colour_stats, laplacian_pyramid, sliced_wasserstein  # noqa: E402
from training.models import EMA, Discriminator  # noqa: E402
from training.sampling import image_grid, slerp, smoothness  # noqa: E402
from training.train_gan import init_from, split_indices, train  # noqa: E402


def _images(n=26, size=48, seed=0):
    """Smooth colourful synthetic images uint8 [n, size, size, 3] (colour blobs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        phase = rng.uniform(0, 2 * np.pi, 3)
        freq = rng.uniform(1, 4, 3)
        img = np.stack(
            [
                0.5 + 0.5 * np.sin(2 * np.pi * freq[c] * (xx + yy * c / 3) + phase[c])
                for c in range(3)
            ],
            axis=-1,
        )
        out[i] = (img * 255).astype(np.uint8)
    return out


def _config(out_dir, **kw):
    cfg = {
        "resolution": 32,
        "generator": {"channels": [16, 8]},
        "d_channels": {32: 8, 16: 16, 8: 16},
        "batch_size": 4,
        "val_samples": 8,
        "val_grid": 4,
        "r1_every": 2,
        "out_dir": str(out_dir),
        "seed": 3,
    }
    cfg.update(kw)
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    images = _images()
    init = GANModule(_config(out))
    before = {k: v.clone() for k, v in init.state_dict().items()}
    module = train(
        _config(out),
        images=images,
        iterations=4,
        epoch_iterations=2,
        checkpoint_every=2,
        progress=False,
        log_every=1,
    )
    return out, images, before, module


def test_tiny_run_trains_logs_and_validates(tiny_run):
    out, _, before, module = tiny_run
    assert int(module.iteration) == 4
    after = module.state_dict()
    changed = lambda prefix: any(  # noqa: E731
        not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)
    )
    assert changed("generator.") and changed("discriminator.") and changed("g_ema.")
    # the EMA is a blend: it differs from the live generator after updates
    assert any(
        not torch.equal(after[f"g_ema.{k}"], after[f"generator.{k}"])
        for k in module.generator.state_dict()
        if k.endswith("weight")
    )
    lines = (out / "validation.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["iteration"] for r in records] == [2, 4]
    for r in records:
        assert np.isfinite(r["val_swd"]) and r["val_swd"] > 0
        assert 0 <= r["val_saturation"] <= 1 and r["val_interp_smoothness"] >= 1
    assert (out / "samples" / "grid-000004.png").is_file()
    assert (out / "samples" / "interp-000004.png").is_file()
    metrics = (out / "csv" / "metrics.csv").read_text()
    assert "loss_d" in metrics and "r1" in metrics and "val_swd" in metrics
    assert json.loads((out / "config.json").read_text())["resolution"] == 32


def test_resume_continues_the_same_run(tiny_run):
    out, images, _, first = tiny_run
    last = out / "checkpoints" / "last.ckpt"
    assert last.is_file()
    module = train(
        _config(out),
        images=images,
        iterations=6,
        epoch_iterations=2,
        checkpoint_every=2,
        resume=str(last),
        progress=False,
    )
    assert int(module.iteration) == 6
    ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 12  # two optimiser steps per iteration
    assert ckpt["hyper_parameters"]["generator"] == first.generator.config


def test_init_from_copies_matching_tensors(tiny_run, tmp_path):
    out = tiny_run[0]
    bigger = GANModule(
        _config(
            tmp_path,
            resolution=64,
            generator={"channels": [16, 8, 8]},
            d_channels={64: 4, 32: 8, 16: 16, 8: 16},
        )
    )
    last = out / "checkpoints" / "last.ckpt"
    info = init_from(bigger, last)
    assert "generator.stem.weight" in info["loaded"]
    saved = torch.load(str(last), map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(bigger.generator.stem.weight, saved["generator.stem.weight"])
    assert "iteration" in info["skipped"]
    assert "discriminator.from_rgb.32.weight" in info["loaded"]  # lower D blocks carry over
    assert bigger.levels == 3 and bigger.generator.output_size == 64


def test_colour_regularisers():
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.uniform(-1, 1, (4, 3, 8, 8)).astype(np.float32))
    same = colour_regularisers(real.clone(), real)
    assert float(same["chroma"]) < 1e-6 and float(same["saturation"]) == 0.0
    grey = real.mean(dim=1, keepdim=True).repeat(1, 3, 1, 1).requires_grad_(True)
    regs = colour_regularisers(grey, real)
    assert float(regs["chroma"]) > 0.05 and float(regs["saturation"]) > 0.2
    (regs["chroma"] + regs["saturation"]).backward()
    assert grey.grad is not None and float(grey.grad.abs().sum()) > 0
    assert float(saturation(grey).max()) < 1e-4


@pytest.mark.parametrize("res", [16, 32, 64])
def test_discriminator_takes_each_stage(res):
    disc = Discriminator(max_resolution=64, channels={64: 4, 32: 8, 16: 8, 8: 8})
    assert disc(torch.randn(4, 3, res, res)).shape == (4,)


def test_discriminator_refuses_other_sizes():
    disc = Discriminator(max_resolution=32, channels={32: 4, 16: 4, 8: 4})
    with pytest.raises(ValueError, match="square images"):
        disc(torch.randn(2, 3, 24, 24))


def test_ema_ramp_and_update():
    ema = EMA(0.999)
    assert ema.effective_decay(0) == pytest.approx(0.1)
    assert ema.effective_decay(10**6) == 0.999
    net = torch.nn.Linear(2, 2)
    copy = EMA.make_copy(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(copy, net, updates=0)  # decay 0.1: 90 % of the way to the new weights
    assert torch.allclose(copy.weight, net.weight - 0.1, atol=1e-6)
    assert not any(p.requires_grad for p in copy.parameters())


def test_swd_same_set_zero_and_different_sets_positive():
    a = _images(24, 32, seed=1)
    b = _images(24, 32, seed=2)
    noise = (np.random.default_rng(0).random((24, 32, 32, 3)) * 255).astype(np.uint8)
    same = sliced_wasserstein(a, a)
    assert same["mean"] == 0.0
    near = sliced_wasserstein(a, b)["mean"]
    far = sliced_wasserstein(a, noise)["mean"]
    assert 0 < near < far
    assert set(same) == {"swd_32", "swd_16", "swd_8", "swd_4", "mean"}
    # tanh-range float [N, 3, H, W] input is the same set
    as_float = a.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    assert sliced_wasserstein(a, as_float)["mean"] < 1.0
    with pytest.raises(ValueError, match="sizes differ"):
        sliced_wasserstein(a, _images(4, 16))


def test_laplacian_pyramid_reconstructs():
    x = _images(2, 32).astype(np.float32) / 255
    bands = laplacian_pyramid(x, 3)
    assert [b.shape[1] for b in bands] == [32, 16, 8]
    from training.metrics import _up

    rec = bands[-1]
    for band in reversed(bands[:-1]):
        rec = _up(rec, band.shape[1:3]) + band
    assert np.allclose(rec, x, atol=1e-5)


def test_colour_stats_known_values():
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((1, 8, 8, 3), 100, np.uint8)
    sr, sg = colour_stats(red), colour_stats(grey)
    assert sr["saturation"][0] == pytest.approx(1.0) and sg["saturation"][0] < 1e-6
    assert sr["chroma"][0] == pytest.approx(1.0) and sr["hue"][0] == pytest.approx(0.0, abs=1e-3)
    assert sg["sharpness"][0] < 1e-6 and sr["hue_spread"][0] == pytest.approx(0.0, abs=1e-6)


def test_sampling_helpers():
    a = np.random.default_rng(0).standard_normal((8, 4, 4)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((8, 4, 4)).astype(np.float32)
    path = slerp(a, b, np.linspace(0, 1, 5))
    assert np.allclose(path[0], a, atol=1e-5) and np.allclose(path[-1], b, atol=1e-5)
    assert np.allclose(slerp(a, a, np.array([0.5]))[0], a, atol=1e-5)
    grid = image_grid(np.zeros((5, 4, 4, 3), np.uint8), cols=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    even = np.stack([np.full((2, 2, 3), 10 * i, np.uint8) for i in range(5)])
    jump = even.copy()
    jump[3:] += 100
    assert smoothness(even, 5) == pytest.approx(1.0) and smoothness(jump, 5) > 2


def test_split_is_deterministic():
    train_idx, held = split_indices(30, every=10)
    assert held.tolist() == [0, 10, 20] and len(train_idx) == 27


@pytest.mark.slow
def test_notebook_runs_under_papermill(tmp_path):
    """notebooks/train_generator.ipynb end to end with a tiny generator and set."""
    import subprocess
    import sys

    from stratum_kernel.model_meta import load_model
    from stratum_kernel.paths import project_root

    root = project_root()
    out = tmp_path / "executed.ipynb"
    params = {
        "DATA_DIR": str(tmp_path / "set"),
        "COUNT": 14,
        "RESOLUTION": 32,
        "BATCH_SIZE": 4,
        "ITERATIONS": 2,
        "EPOCH_ITERATIONS": 2,
        "RUN_DIR": str(tmp_path / "run"),
        "EXPORT_DIR": str(tmp_path / "model"),
        "GENERATOR": {"channels": [16, 8]},
        "ANCHOR_SAMPLES": 12,
        "AXES": 2,
    }
    args = [sys.executable, "-m", "papermill", "-k", "stratum", "--no-progress-bar"]
    args += [str(root / "notebooks" / "train_generator.ipynb"), str(out)]
    args += ["-y", json.dumps(params)]
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = load_model(tmp_path / "model")
    assert model.image_size == (32, 32) and len(model.anchors) >= 2
    assert (tmp_path / "run" / "validation.jsonl").is_file()
