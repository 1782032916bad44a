"""Fixtures for torch tests (training, export, the torch generator)."""

from __future__ import annotations

import json
import warnings

import pytest

from stratum_kernel.core.digests import file_sha256


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for the module: on 2 shared cores, spinning worker threads only
    thrash. torch is imported here, not at collection, so torch-free runs never load it."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def torch_model_dir(tmp_path_factory, tiny_model_dir):
    """A small torch Generator (16 -> 64 px, image-wide paths) exported to ONNX next to its
    safetensors weights, with a meta.json naming both (the decoder's torch and bf16 paths;
    shared by the session: copy it before changing it)."""
    torch = pytest.importorskip("torch")
    tg = pytest.importorskip("stratum_kernel.picture.generator")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = tg.Generator(channels=(8, 8, 4)).eval()  # 16 -> 64 px
    for p in net.to_rgb.parameters():  # make the silent high stages speak
        torch.nn.init.normal_(p, std=0.2)
    model_dir = tmp_path_factory.mktemp("torch-model")
    save_file(
        net.state_dict(),
        str(model_dir / "g.safetensors"),
        metadata={"generator_config": json.dumps(net.config)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(1, 8, 16, 16),), str(model_dir / "generator.onnx"),
            input_names=["z"], output_names=["image"], dynamic_axes={"z": {0: "b"}},
            opset_version=18, dynamo=False,
        )
    meta = json.loads((tiny_model_dir / "meta.json").read_text())
    meta["onnx"]["sha256"] = file_sha256(model_dir / "generator.onnx")
    meta["weights"] = {"file": "g.safetensors", "sha256": file_sha256(model_dir / "g.safetensors")}
    (model_dir / "meta.json").write_text(json.dumps(meta))
    return model_dir
