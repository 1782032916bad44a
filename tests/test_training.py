"""GAN training on CPU (a tiny model grown 16² → 32²): plan, augmentation, losses, EMA,
checkpoints that travel, the discriminator and the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from training.augment import DiffAugmentParams, diff_augment  # noqa: E402
from training.gan_module import GANModule, colour_regularisers, reals_at, saturation  # noqa: E402
from training.losses import d_loss, g_loss, gradient_penalty  # noqa: E402
from training.metrics import colour_stats, laplacian_pyramid, sliced_wasserstein  # noqa: E402
from training.models import EMA, Discriminator  # noqa: E402
from training.sampling import image_grid, slerp, smoothness  # noqa: E402
from training.schedule import Plan, Stage, parse_stages  # noqa: E402
from training.train_gan import init_from, split_indices, train  # noqa: E402
from training.travel import load_checkpoint, pack, resume_path, unpack  # noqa: E402


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


PLAN = {"stages": [{"resolution": 16, "kimg": 0.008},
                   {"resolution": 32, "kimg": 0.016, "fade_kimg": 0.008}],
        "lr_warmup_kimg": 0.004, "ema_half_life_kimg": 0.01}


def _config(out_dir, **kw):
    cfg = {
        "plan": PLAN,
        "generator": {"channels": [16, 8], "global_dim": 8},
        "d_channels": {32: 8, 16: 16, 8: 16},
        "batch_size": 4,
        "val_samples": 8,
        "val_grid": 4,
        "reg_every": 2,
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
    module = train(_config(out), images=images, epoch_iterations=2, checkpoint_every=2,
                   progress=False, log_every=1)
    return out, images, before, module


def test_tiny_run_grows_trains_logs_and_validates(tiny_run):
    out, _, before, module = tiny_run
    assert int(module.images_seen) == 24 and int(module.iteration) == 6  # 24 images / 4
    after = module.state_dict()
    changed = lambda prefix: any(  # noqa: E731
        not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)
    )
    assert changed("generator.") and changed("discriminator.") and changed("g_ema.")
    assert changed("generator.film.")  # the image-wide path learns
    # the EMA is a blend: it differs from the live generator after updates
    assert any(
        not torch.equal(after[f"g_ema.{k}"], after[f"generator.{k}"])
        for k in module.generator.state_dict()
        if k.endswith("weight")
    )
    records = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4, 6]
    # the plan: 16² for 8 images, then 32² fading in over the next 8 (two iterations);
    # validation measures the highest stage fully faded in
    assert [r["stage_resolution"] for r in records] == [32, 32, 32]
    assert [r["alpha"] for r in records] == [0.0, 1.0, 1.0]
    assert [r["resolution"] for r in records] == [16, 32, 32]
    assert records[-1]["kimg"] == 0.024
    for r in records:
        assert np.isfinite(r["val_swd"]) and r["val_swd"] > 0
        assert 0 <= r["val_saturation"] <= 1 and r["val_interp_smoothness"] >= 1
    assert (out / "samples" / "grid-000006.png").is_file()
    metrics = (out / "csv" / "metrics.csv").read_text()
    assert all(k in metrics for k in ("loss_d", "r1", "r2", "val_swd", "kimg", "alpha"))
    assert json.loads((out / "config.json").read_text())["plan"]["stages"][1]["resolution"] == 32
    assert module.native_resolution() == 32


def test_resume_continues_by_images_even_with_another_batch_size(tiny_run, tmp_path):
    out, images, _, first = tiny_run
    longer = {**PLAN, "stages": [*PLAN["stages"][:1],
                                 {**PLAN["stages"][1], "kimg": 0.032}]}
    module = train(_config(out, plan=longer, batch_size=8), images=images,
                   epoch_iterations=2, checkpoint_every=2,
                   resume=str(out / "checkpoints" / "last.ckpt"), progress=False)
    assert int(module.images_seen) == 40  # 24 before, then two batches of 8
    assert int(module.iteration) == 8
    ckpt = torch.load(str(out / "checkpoints" / "last.ckpt"), map_location="cpu",
                      weights_only=False)
    assert ckpt["hyper_parameters"]["generator"] == first.generator.config


def test_travel_checkpoint_is_small_and_resumes(tiny_run, tmp_path):
    out, images, _, _ = tiny_run
    travel = out / "travel.ckpt"
    full = torch.load(str(out / "checkpoints" / "last.ckpt"), map_location="cpu",
                      weights_only=False)
    packed = pack(full)
    assert packed["state_dict"]["generator.stem.weight"].dtype == torch.float16
    assert packed["state_dict"]["g_ema.stem.weight"].dtype == torch.float32  # the product
    opt = packed["optimizer_states"][0]["state"]
    assert all("exp_avg" not in st and st["exp_avg_sq"].dtype == torch.bfloat16
               for st in opt.values())  # beta1 = 0: the first moment carries nothing
    back = unpack(packed)
    assert torch.equal(back["state_dict"]["g_ema.stem.weight"],
                       full["state_dict"]["g_ema.stem.weight"])
    w = full["state_dict"]["generator.stem.weight"]
    assert torch.allclose(back["state_dict"]["generator.stem.weight"], w, rtol=1e-3, atol=1e-4)
    assert travel.is_file() and travel.stat().st_size < 0.7 * (
        out / "checkpoints" / "last.ckpt").stat().st_size
    seen = int(load_checkpoint(travel)["state_dict"]["images_seen"])
    assert seen >= 24
    ckpt_path = resume_path(str(travel), tmp_path)
    assert ckpt_path.endswith("resumed-from-travel.ckpt")
    module = train(_config(tmp_path), images=images, epoch_iterations=2, checkpoint_every=2,
                   resume=str(travel), progress=False)
    assert int(module.images_seen) == seen  # the plan was already done: nothing more to do
    assert torch.equal(module.g_ema.stem.weight,
                       load_checkpoint(travel)["state_dict"]["g_ema.stem.weight"])


def test_init_from_copies_matching_tensors(tiny_run, tmp_path):
    out = tiny_run[0]
    bigger = GANModule(
        _config(
            tmp_path,
            plan={"stages": [{"resolution": 64, "kimg": 1}]},
            generator={"channels": [16, 8, 8], "global_dim": 8},
            d_channels={64: 4, 32: 8, 16: 16, 8: 16},
        )
    )
    last = out / "checkpoints" / "last.ckpt"
    info = init_from(bigger, last)
    assert "generator.stem.weight" in info["loaded"]
    saved = torch.load(str(last), map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(bigger.generator.stem.weight, saved["generator.stem.weight"])
    assert "iteration" in info["skipped"] and "images_seen" in info["skipped"]
    assert "discriminator.from_rgb.32.weight" in info["loaded"]  # lower D blocks carry over
    assert bigger.levels == 3 and bigger.generator.output_size == 64
    assert int(bigger.images_seen) == 0


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


def test_discriminator_fades_a_new_input_layer_in():
    torch.manual_seed(0)
    disc = Discriminator(max_resolution=64, channels={64: 4, 32: 8, 16: 8, 8: 8}).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        # alpha 0: the 64² input layer is ignored; the image is judged at 32² by its pool
        judged_low = disc(x, alpha=0.0)
        h = disc.from_rgb["32"](torch.nn.functional.avg_pool2d(x, 2))
        for r in (32, 16):
            h = disc.blocks[str(r)](h)
        h = torch.nn.functional.leaky_relu(disc.head_conv(disc._mbstd(h)), 0.2)
        expected = disc.head_fc(h.mean(dim=(2, 3))).squeeze(1)
        assert torch.allclose(judged_low, expected, atol=1e-5)
        assert not torch.allclose(disc(x, alpha=1.0), judged_low)


def test_discriminator_refuses_other_sizes():
    disc = Discriminator(max_resolution=32, channels={32: 4, 16: 4, 8: 4})
    with pytest.raises(ValueError, match="square images"):
        disc(torch.randn(2, 3, 24, 24))


def test_ema_update_with_a_given_decay():
    net = torch.nn.Linear(2, 2)
    copy = EMA.make_copy(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    EMA.update(copy, net, 0.1)  # decay 0.1: 90 % of the way to the new weights
    assert torch.allclose(copy.weight, net.weight - 0.1, atol=1e-6)
    assert not any(p.requires_grad for p in copy.parameters())


def test_plan_stages_fade_and_schedules():
    plan = Plan(stages=parse_stages("32:10,64:20:5,128:30:10:0.3"), lr_warmup_kimg=1,
                lr_min_ratio=0.1, ema_half_life_kimg=10, ema_rampup=0.05)
    assert plan.total_kimg == 60 and plan.max_resolution == 128
    assert plan.state(0).resolution == 32 and plan.state(9.99).resolution == 32
    st = plan.state(12.5)
    assert st.resolution == 64 and st.alpha == pytest.approx(0.5) and st.index == 1
    assert plan.state(16).alpha == 1.0
    assert plan.state(35).resolution == 128 and plan.state(35).stage.r1_gamma == 0.3
    assert plan.state(1000).resolution == 128 and plan.state(1000).progress == 1.0
    assert plan.lr_scale(0.5) == pytest.approx(0.5)  # warm-up
    assert plan.lr_scale(30) == pytest.approx(0.1 + 0.9 * 0.5)  # cosine at half way
    assert plan.lr_scale(60) == pytest.approx(0.1)
    # the EMA half-life is counted in images: batch 16 twice equals batch 32 once
    d16, d32 = plan.ema_decay(100, 16), plan.ema_decay(100, 32)
    assert d16 * d16 == pytest.approx(d32)
    assert plan.ema_decay(1, 16) < plan.ema_decay(100, 16)  # ramped up early on
    with pytest.raises(ValueError, match="power of two"):
        Stage(resolution=48, kimg=1)
    with pytest.raises(ValueError, match="shrink"):
        Plan(stages=parse_stages("64:1,32:1"))
    with pytest.raises(ValueError, match="resolution:kimg"):
        parse_stages("64")


def test_reals_fade_like_the_generator():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(reals_at(x, 16, 1.0), x)
    assert reals_at(x, 8, 1.0).shape == (2, 3, 8, 8)
    low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 2),
                                          scale_factor=2.0, mode="bilinear")
    assert torch.allclose(reals_at(x, 16, 0.0), low)


def test_diff_augment_is_seeded_differentiable_and_the_same_for_every_input():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    params = DiffAugmentParams()
    a = diff_augment(x, params, torch.Generator().manual_seed(1))
    b = diff_augment(x, params, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert diff_augment(x, None) is x and diff_augment(x, DiffAugmentParams(p=0.0)) is x
    # translation moves pixels by whole steps and fills with zeros (mid-grey)
    shift = DiffAugmentParams(policy=("translation",), translation=0.25)
    img = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 3, 1, 1)
    out = diff_augment(img, shift, torch.Generator().manual_seed(0))
    kept = out[out != 0]
    assert set(kept.tolist()) <= set(img.flatten().tolist())
    # cutout sets one square to mid-grey (0 in tanh units)
    hole = DiffAugmentParams(policy=("cutout",), cutout=0.5)
    ones = torch.ones(2, 3, 8, 8)
    cut = diff_augment(ones, hole, torch.Generator().manual_seed(0))
    assert ((cut == 0).sum(dim=(1, 2, 3)) == 3 * 16).all()
    with pytest.raises(ValueError, match="unknown augmentation"):
        DiffAugmentParams(policy=("blur",))


def test_losses_and_penalties():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.0])
    sp = torch.nn.functional.softplus
    assert float(d_loss("rpgan", real, fake)) == pytest.approx(float(sp(fake - real).mean()))
    assert float(g_loss("rpgan", real, fake)) == pytest.approx(float(sp(real - fake).mean()))
    assert float(d_loss("logistic", real, fake)) == pytest.approx(
        float(sp(fake).mean() + sp(-real).mean()))
    assert float(g_loss("logistic", None, fake)) == pytest.approx(float(sp(-fake).mean()))
    with pytest.raises(ValueError, match="needs the logits"):
        g_loss("rpgan", None, fake)
    with pytest.raises(ValueError, match="unknown loss"):
        d_loss("hinge", real, fake)
    x = torch.randn(3, 3, 4, 4, requires_grad=True)
    logits = (x * 2.0).sum(dim=(1, 2, 3))  # gradient 2 everywhere: |g|² = 4 · 48
    assert float(gradient_penalty(logits, x)) == pytest.approx(4.0 * 48)


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

    from stratum_kernel.core.paths import project_root
    from stratum_kernel.picture.model import load_model

    root = project_root()
    out = tmp_path / "executed.ipynb"
    params = {
        "DATA_DIR": str(tmp_path / "set"),
        "COUNT": 14,
        "PLAN": "16:0.008,32:0.008:0.004",
        "BATCH_SIZE": 4,
        "EPOCH_ITERATIONS": 2,
        "RUN_DIR": str(tmp_path / "run"),
        "EXPORT_DIR": str(tmp_path / "model"),
        "GENERATOR": {"channels": [16, 8], "global_dim": 8},
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
