"""Fixtures for the generator: tiny ONNX models built in the test (no torch needed).

``make_tiny_model(dir)`` writes ``generator.onnx`` + a valid ``meta.json`` for a generator
of the real interface: z float32 [B, 8, 16, 16] -> image float32 [B, 3, S, S] in [-1, 1]
(S = 64 by default). The graph is a 1x1 conv to 3 channels, a bilinear x(S/16) resize, a 3x3
conv that adds spatial structure, a fixed sinusoidal pattern and a Tanh; opset 18, dynamic
batch. Different latents give visibly different images, and the output is deterministic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

LATENT_SHAPE = (8, 16, 16)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_tiny_onnx(path: Path, *, size: int = 64, seed: int = 0) -> None:
    """Write a tiny generator graph to ``path`` (onnx.helper only)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if size % 16:
        raise ValueError("size must be a multiple of 16")
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((3, 8, 1, 1)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(3) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((3, 3, 3, 3)) * 0.25).astype(np.float32)
    w2[:, :, 1, 1] += np.eye(3, dtype=np.float32)  # mostly identity, plus a little texture
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    pattern = np.stack(
        [
            0.3 * np.sin(xx / size * 6.28 * 2),
            0.3 * np.cos(yy / size * 6.28 * 3),
            0.3 * np.sin((xx + yy) / size * 6.28),
        ]
    )[None].astype(np.float32)
    scale = float(size // 16)
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(pattern, "pattern"),
        numpy_helper.from_array(np.array([1, 1, scale, scale], dtype=np.float32), "scales"),
    ]
    nodes = [
        helper.make_node("Conv", ["z", "w1", "b1"], ["c1"]),
        helper.make_node("Resize", ["c1", "", "scales"], ["up"], mode="linear"),
        helper.make_node("Conv", ["up", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "pattern"], ["s"]),
        helper.make_node("Tanh", ["s"], ["image"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_generator",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", *LATENT_SHAPE])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)


def make_tiny_model(
    directory: Path, *, size: int = 64, seed: int = 0, n_anchors: int = 4, n_axes: int = 6
) -> Path:
    """Write ``generator.onnx`` and ``meta.json`` into ``directory``; return the directory.

    Anchors are seeded standard-normal latents; PCA axes are seeded, orthonormalised and
    unit norm, with decreasing strengths.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / "generator.onnx"
    build_tiny_onnx(onnx_path, size=size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    n = int(np.prod(LATENT_SHAPE))
    anchors = {
        name: rng.standard_normal(n).astype(np.float32).round(5).tolist()
        for name in ["calm", "bright", "dense", "dark", "warm", "cold"][:n_anchors]
    }
    q, _ = np.linalg.qr(rng.standard_normal((n, n_axes)))
    axes = q.T.astype(np.float32)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    meta = {
        "format": "stratum-generator/1",
        "name": "tiny-test-generator",
        "version": "0.0.1",
        "latent_shape": list(LATENT_SHAPE),
        "output_shape": [3, size, size],
        "output_range": [-1.0, 1.0],
        "onnx": {"file": "generator.onnx", "sha256": _sha256(onnx_path), "opset": 18},
        "architecture": {"kind": "tiny-onnx-fixture", "size": size},
        "anchors": anchors,
        "pca_axes": axes.tolist(),
        "pca_strength": [float(1.0 / (i + 1)) for i in range(n_axes)],
    }
    (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a 64x64 tiny generator.onnx and its meta.json (shared by the session;
    do not modify it — copy it first)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    """The tiny model loaded with ``picture.model.load_model``."""
    from stratum_kernel.picture.model import load_model

    return load_model(tiny_model_dir)
