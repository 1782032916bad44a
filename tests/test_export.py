"""ONNX export, meta.json, anchors and axes (real ONNX Runtime, tiny generators)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from stratum_kernel.core.errors import ModelError  # noqa: E402
from stratum_kernel.picture.generator import Generator  # noqa: E402
from stratum_kernel.picture.model import load_model  # noqa: E402
from training import export_onnx  # noqa: E402
from training.latent_analysis import (  # noqa: E402
    describe,
    find_anchors,
    find_axes,
    kmeans,
    name_clusters,
    vividness,
)

TINY = {"channels": [16, 12, 8]}  # 16² → 64²


def _gen(seed=0, **kw):
    torch.manual_seed(seed)
    gen = Generator(**{**TINY, **kw}).eval()
    with torch.no_grad():  # give every stage a visible contribution
        for rgb in gen.to_rgb:
            rgb.weight.normal_(0, 0.3)
    return gen


def _session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    gen = _gen()
    meta_path = export_onnx.export_model(
        gen,
        out,
        name="tiny",
        version="9.9.9",
        checkpoint="tiny.ckpt",
        training={"status": "test"},
        anchor_count=4,
        anchor_samples=48,
        axis_count=3,
    )
    return gen, out, meta_path


def test_single_file_with_dynamic_batch_and_static_size(exported):
    _, out, _ = exported
    assert sorted(p.name for p in out.iterdir()) == [
        "generator.onnx",
        "generator_ema.safetensors",
        "meta.json",
    ]
    model = onnx.load(str(out / "generator.onnx"))
    assert all(t.data_location != 1 for t in model.graph.initializer)  # no external data
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
    (inp,) = model.graph.input
    (outp,) = model.graph.output
    assert inp.name == "z" and outp.name == "image"
    dims = [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [3, 64, 64]


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_agrees_with_torch(exported, batch):
    gen, out, _ = exported
    z = np.random.default_rng(batch).standard_normal((batch, 8, 16, 16)).astype(np.float32)
    got = _session(out / "generator.onnx").run(None, {"z": z})[0]
    with torch.no_grad():
        want = gen(torch.from_numpy(z)).numpy()
    assert got.shape == (batch, 3, 64, 64)
    assert np.abs(got - want).max() <= 1e-4


def test_meta_validates_and_describes_the_model(exported):
    gen, out, _ = exported
    model = load_model(out)
    meta = model.meta
    assert meta.name == "tiny" and meta.version == "9.9.9" and meta.checkpoint == "tiny.ckpt"
    assert meta.output_shape == (3, 64, 64) and model.image_size == (64, 64)
    assert meta.architecture["config"] == gen.config
    assert meta.onnx.opset >= 18 and meta.weights is not None
    names = sorted(model.anchors)
    stack = np.stack([model.anchors[n] for n in names])
    assert len(names) == 4 and len(set(names)) == 4 and stack.shape == (4, 8, 16, 16)
    # anchors are real N(0, 1) draws (medoids), not shrunken averages
    assert all(0.8 < float(a.std()) < 1.2 for a in stack)
    axes = model.pca_axes
    assert axes.shape == (3, 8, 16, 16)
    flat = axes.reshape(3, -1)
    assert np.allclose(flat @ flat.T, np.eye(3), atol=1e-4)
    strength = meta.pca_strength
    assert len(strength) == 3 and strength[0] >= strength[1] >= strength[2] > 0


def test_sha_mismatch_is_refused(exported, tmp_path):
    _, out, _ = exported
    copy = tmp_path / "m"
    copy.mkdir()
    for p in out.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    raw = bytearray((copy / "generator.onnx").read_bytes())
    raw[-1] ^= 0xFF
    (copy / "generator.onnx").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=r"does not match meta\.json"):
        load_model(copy)
    assert load_model(copy, verify=False).meta.name == "tiny"


def test_top_axis_changes_the_image_most():
    gen = _gen(3)
    axes, strength = find_axes(gen, count=2, base_samples=2, iterations=2, size=16)
    rng = np.random.default_rng(5)
    z0 = torch.from_numpy(rng.standard_normal((1, 8, 16, 16)).astype(np.float32))
    rand = rng.standard_normal((8, 16, 16)).astype(np.float32)
    rand /= np.linalg.norm(rand)

    def change(direction):
        d = torch.from_numpy(direction)[None]
        with torch.no_grad():
            return float((gen(z0 + 0.5 * d) - gen(z0 - 0.5 * d)).abs().mean())

    assert change(axes[0]) > 2 * change(rand)
    assert strength[0] >= strength[1]


def test_anchor_names_are_distinct_and_descriptive():
    stats = [
        {"hue": 5.0, "chroma": 0.3, "sharpness": 0.01, "brightness": 0.5},
        {"hue": 8.0, "chroma": 0.3, "sharpness": 0.01, "brightness": 0.5},
        {"hue": 200.0, "chroma": 0.3, "sharpness": 0.05, "brightness": 0.9},
        {"hue": 0.0, "chroma": 0.01, "sharpness": 0.01, "brightness": 0.2},
        {"hue": 6.0, "chroma": 0.3, "sharpness": 0.01, "brightness": 0.5},
        {"hue": 7.0, "chroma": 0.3, "sharpness": 0.01, "brightness": 0.5},
    ]
    names = name_clusters(stats)
    assert names[0] == "ember" and names[2] == "tide" and names[3] == "ash"
    assert names[1].endswith("ember") and len(set(names)) == len(names)


def test_kmeans_separates_clear_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    centres, labels = kmeans(x, 2)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1 and labels[0] != labels[-1]
    assert np.allclose(np.sort(centres[:, 0]), [0, 5], atol=0.2)


def test_vividness_ranks_a_colourful_detailed_picture_above_murk():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    vivid = np.stack([np.sin(xx * 20), np.cos(yy * 17), -np.sin((xx + yy) * 9)]) * 0.9
    murky = np.full((3, 32, 32), -0.3) + 0.02 * rng.standard_normal((3, 32, 32))
    grey = np.zeros((3, 32, 32)) + np.sin(xx * 20) * 0.3
    images = np.stack([murky, vivid, grey]).astype(np.float32)
    v = vividness(describe(images))
    assert v[1] > v[2] > v[0]


def test_find_anchors_is_seeded():
    gen = _gen(4)
    a = find_anchors(gen, count=3, samples=24, seed=1)
    b = find_anchors(gen, count=3, samples=24, seed=1)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_checkpoint_round_trip_and_cli(tmp_path):
    gen = _gen(5)
    ema = _gen(6)
    state = {f"generator.{k}": v for k, v in gen.state_dict().items()}
    state.update({f"g_ema.{k}": v for k, v in ema.state_dict().items()})
    ckpt = tmp_path / "run.ckpt"
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": {"generator": gen.config, "config": {"resolution": 64}},
            "global_step": 20,
            "epoch": 2,
        },
        ckpt,
    )
    back, info = export_onnx.generator_from_checkpoint(ckpt)
    z = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        assert torch.equal(back(z), ema(z))
    assert info["global_step"] == 20 and info["config"] == {"resolution": 64}
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"hardware": "test CPU"}))
    args = ["--checkpoint", str(ckpt), "--out", str(tmp_path / "m"), "--anchors", "2"]
    rc = export_onnx.main(
        [*args, "--anchor-samples", "12", "--axes", "2", "--training-json", str(extra)]
    )
    assert rc == 0
    meta = load_model(tmp_path / "m").meta
    assert meta.training["status"] == "trained" and meta.training["hardware"] == "test CPU"
    assert meta.checkpoint == "run.ckpt" and len(meta.anchors) == 2
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="no generator config"):
        export_onnx.generator_from_checkpoint(tmp_path / "bad.ckpt")


def test_native_size_and_an_extra_head_decode_the_same_weights(tmp_path):
    """Export at a lower native size (the highest trained stage) with an even lower head:
    meta.json records both, the decoder picks one by size, and each equals torch."""
    from stratum_kernel.picture.decoder import DecoderParams, FrameDecoder

    gen = _gen(seed=4)
    export_onnx.export_model(gen, tmp_path, anchor_count=2, anchor_samples=16, axis_count=1,
                             levels=2, head_sizes=[16])
    model = load_model(tmp_path)
    assert model.image_size == (32, 32) and model.head_sizes == (16, 32)
    assert model.meta.architecture["native_size"] == 32
    assert (tmp_path / "generator-16.onnx").is_file()
    z = np.random.default_rng(0).standard_normal((2, 8, 16, 16)).astype(np.float32)
    for size, levels in ((None, 2), (32, 2), (16, 1)):
        dec = FrameDecoder(model, DecoderParams(head=size, execution_provider="cpu"))
        frames = dec.decode(z)
        with torch.no_grad():
            want = ((gen(torch.from_numpy(z), levels) + 1) * 127.5).round().clamp(0, 255)
        want = want.permute(0, 2, 3, 1).numpy().astype(np.uint8)
        assert frames.shape == want.shape
        assert np.abs(frames.astype(int) - want.astype(int)).max() <= 1
    with pytest.raises(ModelError, match=r"no 64² head; this model decodes 16², 32²"):
        FrameDecoder(model, DecoderParams(head=64))
    (tmp_path / "generator-16.onnx").write_bytes(b"damaged")
    with pytest.raises(ModelError, match=r"heads\.16\.sha256"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="above the native"):
        export_onnx.export_model(gen, tmp_path / "x", levels=1, head_sizes=[32])


def test_latent_blur_exports_and_agrees_with_torch(tmp_path):
    gen = _gen(latent_blur=True)
    export_onnx.export_model(gen, tmp_path, name="blur", version="0", checkpoint="x.ckpt",
                             training={}, anchor_count=2, anchor_samples=16, axis_count=2)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["architecture"]["config"]["latent_blur"] is True
    z = np.random.default_rng(1).standard_normal((2, 8, 16, 16)).astype(np.float32)
    out = _session(tmp_path / "generator.onnx").run(None, {"z": z})[0]
    with torch.no_grad():
        ref = gen(torch.from_numpy(z)).numpy()
    assert np.abs(out - ref).max() < 1e-4
