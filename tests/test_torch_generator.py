"""The torch generator: shapes, parameter count, stages, checkpointing, safetensors."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")

from stratum_kernel.errors import ModelError  # noqa: E402
from stratum_kernel.torch_generator import (  # noqa: E402
    Generator,
    _groups,
    count_parameters,
    generator_from_config,
    load_generator_safetensors,
)

TINY = {"channels": [16, 8, 8]}  # 16² → 64²


def expected_parameters(channels, latent_channels=8):
    """Parameter count written out from the architecture (not from the module)."""
    c0 = channels[0]
    n = 9 * latent_channels * c0 + c0  # stem
    cin = c0
    for cout in channels:
        n += 2 * cin + 2 * cout  # two GroupNorms
        n += 9 * cin * cout + cout + 9 * cout * cout + cout  # two 3×3 convs
        n += cin * cout if cin != cout else 0  # 1×1 skip without bias
        n += 3 * cout + 3  # toRGB
        cin = cout
    return n


def test_default_shape_and_parameter_count():
    gen = Generator()
    assert gen.output_size == 256 and gen.levels == 5
    assert count_parameters(gen) == expected_parameters((128, 96, 48, 24, 12))
    assert 0.5e6 < count_parameters(gen) < 0.7e6  # chosen for ≥ 35 fps in ORT on 2 cores
    with torch.no_grad():
        out = gen(torch.randn(2, 8, 16, 16))
    assert out.shape == (2, 3, 256, 256) and out.dtype == torch.float32
    assert float(out.abs().max()) <= 1.0


@pytest.mark.parametrize("levels, size", [(1, 16), (2, 32), (3, 64)])
def test_levels_give_lower_resolutions(levels, size):
    gen = Generator(**TINY).eval()
    with torch.no_grad():
        out = gen(torch.randn(1, 8, 16, 16), levels)
    assert out.shape == (1, 3, size, size)
    assert gen.resolution(levels) == size and gen.levels_for(size) == levels


def test_fresh_high_stages_are_silent():
    """Zero-initialised toRGB of stages ≥ 2: the full image is the upsampled 32² one."""
    torch.manual_seed(0)
    gen = Generator(**TINY).eval()
    z = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        low = gen(z, 2)
        full = gen(z)
        up = torch.nn.functional.interpolate(
            torch.atanh(low.clamp(-0.999999, 0.999999)), scale_factor=2.0, mode="bilinear"
        )
    assert torch.allclose(torch.tanh(up), full, atol=1e-5)


def test_bad_inputs_are_refused():
    gen = Generator(**TINY)
    with pytest.raises(ValueError, match=r"z must be \[B, 8, 16, 16\]"):
        gen(torch.randn(1, 4, 16, 16))
    with pytest.raises(ValueError, match=r"levels must be in 1\.\.3"):
        gen(torch.randn(1, 8, 16, 16), 4)
    with pytest.raises(ValueError, match="not 48"):
        gen.levels_for(48)
    with pytest.raises(ValueError, match="channels"):
        Generator(channels=[])


def test_checkpointing_gives_same_output_and_gradients():
    torch.manual_seed(1)
    a = Generator(**TINY).train()
    b = Generator(**TINY, checkpointing=True).train()
    b.load_state_dict(a.state_dict())
    for m in (a, b):  # make the high stages contribute
        for rgb in m.to_rgb:
            torch.nn.init.constant_(rgb.weight, 0.05)
    z = torch.randn(2, 8, 16, 16)
    ya, yb = a(z), b(z)
    assert torch.allclose(ya, yb, atol=1e-6)
    ya.square().mean().backward()
    yb.square().mean().backward()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6)


def test_config_rebuilds_the_same_network():
    gen = Generator(channels=[24, 12], groups=4, latent_size=8)
    clone = generator_from_config(gen.config)
    assert (
        clone.config
        == gen.config
        == {
            "latent_channels": 8,
            "latent_size": 8,
            "channels": [24, 12],
            "groups": 4,
        }
    )
    assert count_parameters(clone) == count_parameters(gen)


@pytest.mark.parametrize("channels, preferred, expected", [(12, 8, 6), (24, 8, 8), (7, 8, 7)])
def test_groups_divide_channels(channels, preferred, expected):
    assert _groups(channels, preferred) == expected


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    from training.export_onnx import save_safetensors

    torch.manual_seed(2)
    gen = Generator(**TINY).eval()
    path = save_safetensors(gen, tmp_path / "g.safetensors", extra={"steps": 5})
    back = load_generator_safetensors(str(path))
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 8, 16, 16)).astype("f4"))
    with torch.no_grad():
        assert torch.equal(gen(z), back(z))
    save_file({"w": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ModelError, match="generator_config"):
        load_generator_safetensors(str(tmp_path / "bare.safetensors"))
