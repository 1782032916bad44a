"""FrameDecoder: ONNX Runtime decoding, batching, retry-smaller, providers, torch backend."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.errors import ModelError, RenderError
from stratum_kernel.picture import decoder as decoder_mod
from stratum_kernel.picture.decoder import DecoderParams, FrameDecoder, to_uint8
from stratum_kernel.picture.model import load_model


def _latents(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 8, 16, 16)).astype(np.float32)


def test_to_uint8_known_values():
    x = np.array([-1.0, -2.0, 0.0, 1.0, 3.0, 0.5], dtype=np.float32).reshape(1, 1, 1, 6)
    x = np.repeat(x, 3, axis=1)  # [1, 3, 1, 6]
    out = to_uint8(x)
    assert out.shape == (1, 1, 6, 3) and out.dtype == np.uint8
    # (x + 1) * 127.5, rounded half to even, clipped
    assert out[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255, 191]
    assert to_uint8(np.zeros((1, 3, 1, 1)), (0.0, 1.0))[0, 0, 0, 0] == 0


def test_decode_shapes_and_range(tiny_model):
    frames = FrameDecoder(tiny_model, DecoderParams(execution_provider="cpu")).decode(_latents(5))
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a real image, not a constant
    assert not np.array_equal(frames[0], frames[1])  # different latents, different frames


@pytest.mark.parametrize("batch_size", [1, 3, 7, 16])
def test_batching_does_not_change_a_pixel(tiny_model, batch_size):
    z = _latents(10, seed=3)
    ref = FrameDecoder(tiny_model, DecoderParams(batch_size=1, threads=1)).decode(z)
    out = FrameDecoder(tiny_model, DecoderParams(batch_size=batch_size, threads=2)).decode(z)
    np.testing.assert_array_equal(out, ref)


class FlakySession:
    """Wraps a real session; fails (like an out-of-memory error) on batches over ``limit``."""

    def __init__(self, real, limit: int):
        self.real, self.limit, self.calls = real, limit, []

    def run(self, names, feeds):
        n = len(next(iter(feeds.values())))
        self.calls.append(n)
        if n > self.limit:
            raise RuntimeError(f"Failed to allocate memory for a batch of {n}")
        return self.real.run(names, feeds)


def test_failed_batch_is_retried_smaller_never_dropped(tiny_model, caplog):
    z = _latents(13, seed=5)
    ref = FrameDecoder(tiny_model, DecoderParams(batch_size=1)).decode(z)
    real = FrameDecoder(tiny_model, DecoderParams(execution_provider="cpu"))._session
    flaky = FlakySession(real, limit=2)
    dec = FrameDecoder(tiny_model, DecoderParams(batch_size=8), session=flaky)
    with caplog.at_level(logging.WARNING, logger="stratum_kernel.picture.decoder"):
        out = dec.decode(z)
    np.testing.assert_array_equal(out, ref)
    assert dec.retries >= 2 and dec.batch_size == 2
    assert max(n for n in flaky.calls if n <= 2) == 2
    assert "retrying with batches of" in caplog.text
    # the smaller size is remembered: the next decode does not fail first
    flaky.calls.clear()
    dec.decode(z)
    assert max(flaky.calls) == 2


def test_single_frame_failure_is_an_error(tiny_model):
    real = FrameDecoder(tiny_model, DecoderParams(execution_provider="cpu"))._session
    dec = FrameDecoder(tiny_model, DecoderParams(batch_size=4), session=FlakySession(real, 0))
    with pytest.raises(RenderError, match="single frame failed"):
        dec.decode(_latents(4))


def test_provider_choice_is_logged_once(tiny_model, caplog, monkeypatch):
    monkeypatch.setattr(decoder_mod, "_logged", set())
    with caplog.at_level(logging.INFO, logger="stratum_kernel.picture.decoder"):
        d1 = FrameDecoder(tiny_model, DecoderParams(execution_provider="auto"))
        FrameDecoder(tiny_model, DecoderParams(execution_provider="auto"))
    assert d1.provider in (decoder_mod.CPU_EP, decoder_mod.CUDA_EP)
    lines = [r.message for r in caplog.records if "decoder:" in r.message]
    assert len(lines) == 1 and d1.provider in lines[0] and "asked for auto" in lines[0]


def test_cuda_requested_without_cuda_is_a_clear_error(tiny_model, monkeypatch):
    monkeypatch.setattr(decoder_mod, "_cuda_works", False)
    with pytest.raises(RenderError, match="execution_provider is 'cuda'"):
        FrameDecoder(tiny_model, DecoderParams(execution_provider="cuda"))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((2, 8, 8, 8), np.float32), "must be float32"),
        (np.zeros((8, 16, 16), np.float32), "must be float32"),
        (np.full((1, 8, 16, 16), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_latents_are_refused(tiny_model, bad, match):
    with pytest.raises(RenderError, match=match):
        FrameDecoder(tiny_model).decode(bad)


def test_params_validation():
    with pytest.raises(ValueError):
        DecoderParams(batch_size=0)
    with pytest.raises(ValueError):
        DecoderParams(execution_provider="tpu")


def test_torch_backend_without_weights_is_a_model_error(tiny_model):
    pytest.importorskip("torch")
    pytest.importorskip("stratum_kernel.picture.generator")
    with pytest.raises(ModelError, match="'weights' is missing"):
        FrameDecoder(tiny_model, DecoderParams(execution_provider="torch"))


@pytest.mark.train
@pytest.mark.filterwarnings("ignore")
@pytest.mark.slow
def test_torch_backend_matches_onnx_runtime(tmp_path, torch_model_dir):
    """Both backends give the same frames (±1)."""
    model_dir = tmp_path / "m"
    shutil.copytree(torch_model_dir, model_dir)
    model = load_model(model_dir)
    z = _latents(3, seed=9)
    via_ort = FrameDecoder(model, DecoderParams(execution_provider="cpu")).decode(z)
    dec = FrameDecoder(model, DecoderParams(execution_provider="torch", batch_size=2))
    assert dec.provider.startswith("torch:") and dec.precision == "float32"
    via_torch = dec.decode(z)
    assert via_ort.std() > 5
    assert np.abs(via_torch.astype(int) - via_ort.astype(int)).max() <= 1
    # a tampered weights file is refused
    shutil.copy(model_dir / "g.safetensors", model_dir / "g2.safetensors")
    with open(model_dir / "g.safetensors", "ab") as f:
        f.write(b"x")
    with pytest.raises(ModelError, match="sha256"):
        FrameDecoder(load_model(model_dir), DecoderParams(execution_provider="torch"))


@pytest.mark.train
@pytest.mark.filterwarnings("ignore")
def test_bfloat16_decodes_close_to_float32_and_whatever_the_batch(torch_model_dir):
    model = load_model(torch_model_dir)
    z = _latents(5, seed=4)
    ref = FrameDecoder(model, DecoderParams(execution_provider="cpu")).decode(z)
    one = FrameDecoder(model, DecoderParams(execution_provider="torch", precision="bfloat16"))
    assert one.provider == "torch:cpu:bfloat16" and one.precision == "bfloat16"
    frames = one.decode(z)
    diff = np.abs(frames.astype(int) - ref.astype(int))
    assert ref.std() > 5 and 0 < diff.mean() < 1.5 and diff.max() <= 12  # bf16, not another picture
    batched = FrameDecoder(model, DecoderParams(execution_provider="torch", precision="bfloat16",
                                                batch_size=3)).decode(z)
    assert np.array_equal(batched, frames)  # one latent per pass: the batch changes nothing


@pytest.mark.train
@pytest.mark.filterwarnings("ignore")
def test_precision_auto_takes_bfloat16_only_where_the_cpu_has_it(torch_model_dir, tiny_model,
                                                                  monkeypatch):
    model = load_model(torch_model_dir)
    monkeypatch.setattr(decoder_mod, "native_bf16_cpu", lambda: True)
    dec = FrameDecoder(model, DecoderParams(precision="auto"))
    assert (dec.provider, dec.precision) == ("torch:cpu:bfloat16", "bfloat16")
    monkeypatch.setattr(decoder_mod, "native_bf16_cpu", lambda: False)
    dec = FrameDecoder(model, DecoderParams(precision="auto"))
    assert (dec.provider, dec.precision) == (decoder_mod.CPU_EP, "float32")
    dec = FrameDecoder(model, DecoderParams(execution_provider="torch", precision="auto"))
    assert (dec.provider, dec.precision) == ("torch:cpu", "float32")
    monkeypatch.setattr(decoder_mod, "native_bf16_cpu", lambda: True)
    dec = FrameDecoder(tiny_model, DecoderParams(precision="auto"))  # no weights file
    assert (dec.provider, dec.precision) == (decoder_mod.CPU_EP, "float32")
    monkeypatch.setattr(decoder_mod, "native_bf16_cpu", lambda: False)
    # asked for explicitly on a CPU without it: bf16 still, with a warning that it is slow
    dec = FrameDecoder(model, DecoderParams(execution_provider="torch", precision="bfloat16"))
    assert dec.precision == "bfloat16"


@pytest.mark.train
@pytest.mark.filterwarnings("ignore")
def test_precision_auto_opens_no_onnx_session_it_will_not_use(torch_model_dir, monkeypatch):
    """Without CUDA, bf16 on PyTorch is known in advance: no ONNX Runtime session is
    created (and dropped) to find out; float32's fallback opens exactly one."""
    opened = []
    real = decoder_mod.create_session
    monkeypatch.setattr(decoder_mod, "create_session",
                        lambda *a, **k: opened.append(a[1]) or real(*a, **k))
    monkeypatch.setattr(decoder_mod, "_cuda_may_work", lambda: False)
    model = load_model(torch_model_dir)
    monkeypatch.setattr(decoder_mod, "native_bf16_cpu", lambda: True)
    assert FrameDecoder(model, DecoderParams(precision="auto")).precision == "bfloat16"
    assert opened == []
    monkeypatch.setattr(decoder_mod, "native_bf16_cpu", lambda: False)
    assert FrameDecoder(model, DecoderParams(precision="auto")).provider == decoder_mod.CPU_EP
    assert opened == ["cpu"]


def test_bfloat16_on_onnx_runtime_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="execution_provider to 'torch' or 'auto'"):
        DecoderParams(execution_provider="cpu", precision="bfloat16")
    assert DecoderParams(execution_provider="cpu", precision="auto").precision == "auto"


def _tampered_model(tmp_path, tiny_model_dir, *, factor: float | None = None,
                    meta_size: int | None = None):
    """A copy of the tiny model whose output is multiplied by ``factor`` (NaN: what a
    diverged training exports) or whose meta.json promises another size; its sha256 is
    updated, so only the probe can tell."""
    import onnx
    from onnx import helper, numpy_helper

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    onnx_path = d / "generator.onnx"
    if factor is not None:
        model = onnx.load(str(onnx_path))
        g = model.graph
        g.node[-1].output[0] = "raw"
        g.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "factor"))
        g.node.append(helper.make_node("Mul", ["raw", "factor"], ["image"]))
        onnx.save(model, str(onnx_path))
    meta = json.loads((d / "meta.json").read_text())
    meta["onnx"]["sha256"] = file_sha256(onnx_path)
    if meta_size is not None:
        meta["output_shape"] = [3, meta_size, meta_size]
    (d / "meta.json").write_text(json.dumps(meta))
    return load_model(d)


@pytest.mark.parametrize("factor, meta_size, pattern", [
    (float("nan"), None, r"decodes a test latent to NaN or infinite values \(a diverged "
                         r"training\?\); export an earlier checkpoint"),
    (float("inf"), None, "decodes a test latent to NaN or infinite"),
    (10.0, None, r"outputs -\d.*\.\.\d.*, outside meta.json's output_range \[-1, 1\]"),
    (None, 32, r"decodes a latent to shape \[1, 3, 64, 64\], but meta.json promises "
               r"\[1, 3, 32, 32\]"),
])
def test_a_wrong_model_is_refused_at_load(tmp_path, tiny_model_dir, factor, meta_size,
                                          pattern):
    """A NaN model used to render an all-black film with exit 0; a wrong shape failed with
    'could not broadcast' deep in the render."""
    model = _tampered_model(tmp_path, tiny_model_dir, factor=factor, meta_size=meta_size)
    with pytest.raises(ModelError, match=rf"generator.onnx: {pattern}"):
        FrameDecoder(model, DecoderParams(execution_provider="cpu"))


def test_an_unreadable_onnx_with_a_matching_sha_is_named(tmp_path, tiny_model_dir):
    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    onnx_path = d / "generator.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes()[:200])  # cut, then its sha "fixed"
    meta = json.loads((d / "meta.json").read_text())
    meta["onnx"]["sha256"] = file_sha256(onnx_path)
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"generator.onnx: not a readable ONNX model "
                                         r"\(.*\); re-export it with training/export_onnx.py"):
        FrameDecoder(load_model(d), DecoderParams(execution_provider="cpu"))
