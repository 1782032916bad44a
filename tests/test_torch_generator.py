"""The torch generator: shapes, parameter count, stages, checkpointing, safetensors."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")

from stratum_kernel.core.errors import ModelError  # noqa: E402
from stratum_kernel.picture.generator import (  # noqa: E402
    Generator,
    _groups,
    count_parameters,
    generator_from_config,
    load_generator_safetensors,
)

TINY = {"channels": [16, 8, 8], "global_dim": 8}  # 16² → 64²


def expected_parameters(channels, latent_channels=8, latent_size=16, global_dim=128,
                        excitation=True):
    """Parameter count written out from the architecture (not from the module)."""
    c0 = channels[0]
    n = 9 * latent_channels * c0 + c0  # stem
    if global_dim:  # FiLM: flatten(z) → hidden → (scale, shift) per stem channel
        numel = latent_channels * latent_size * latent_size
        n += numel * global_dim + global_dim + global_dim * 2 * c0 + 2 * c0
    cin = c0
    for i, cout in enumerate(channels):
        n += 2 * cin + 2 * cout  # two GroupNorms
        n += 9 * cin * cout + cout + 9 * cout * cout + cout  # two 3×3 convs
        n += cin * cout if cin != cout else 0  # 1×1 skip without bias
        n += 3 * cout + 3  # toRGB
        if excitation and i >= 2:  # a 4×4 squeeze from two stages below, a 1×1 expand
            n += 16 * channels[i - 2] * cout + cout + cout * cout + cout
        cin = cout
    return n


def test_default_shape_and_parameter_count():
    gen = Generator()
    assert gen.output_size == 256 and gen.levels == 5
    assert count_parameters(gen) == expected_parameters((192, 128, 48, 24, 12))
    with torch.no_grad():
        out = gen(torch.randn(2, 8, 16, 16))
    assert out.shape == (2, 3, 256, 256) and out.dtype == torch.float32
    assert float(out.abs().max()) <= 1.0


def test_plain_network_without_global_paths():
    gen = Generator(channels=(32, 16, 8), global_dim=0, excitation=False)
    assert gen.film is None and len(gen.gates) == 0
    assert count_parameters(gen) == expected_parameters((32, 16, 8), global_dim=0,
                                                        excitation=False)


def test_global_paths_start_as_the_identity_and_see_the_whole_frame():
    """Fresh FiLM and excitation change nothing; both act per channel over the whole image,
    and the FiLM reads every latent cell (a corner cell moves the scale of every pixel)."""
    torch.manual_seed(0)
    gen = Generator(**TINY).eval()
    plain = Generator(**{**TINY, "global_dim": 0, "excitation": False}).eval()
    plain.load_state_dict({k: v for k, v in gen.state_dict().items()
                           if not k.startswith(("film.", "gates."))})
    z = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        assert torch.allclose(gen(z, 2), plain(z, 2), atol=1e-6)
        assert torch.allclose(gen(z), plain(z), atol=1e-6)
        for p in list(gen.film.out.parameters()) + list(gen.gates.parameters()):
            p.normal_(0, 0.1)
        z2 = z.clone()
        z2[0, :, 0, 0] += 3.0  # one corner cell of the latent
        (s1, _), (s2, _) = gen.film(z), gen.film(z2)
        assert s1.shape == (1, 16, 1, 1) and not torch.allclose(s1, s2)
        gate = gen.gates["2"](torch.randn(1, 16, 16, 16))
        assert gate.shape == (1, 8, 1, 1) and float(gate.min()) > 0 and float(gate.max()) < 2
        assert not torch.allclose(gen(z2), gen(z))


def test_fade_in_weighs_the_last_stage():
    torch.manual_seed(3)
    gen = Generator(**TINY).eval()
    with torch.no_grad():
        for rgb in gen.to_rgb:
            torch.nn.init.normal_(rgb.weight, 0, 0.2)
        z = torch.randn(2, 8, 16, 16)
        low = torch.nn.functional.interpolate(
            torch.atanh(gen(z, 2).clamp(-0.999999, 0.999999)), scale_factor=2.0, mode="bilinear")
        faded = gen(z, 3, alpha=0.0)
        half, full = gen(z, 3, alpha=0.5), gen(z, 3)
    assert torch.allclose(faded, torch.tanh(low), atol=1e-5)
    assert float((half - faded).abs().mean()) < float((full - faded).abs().mean())


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
            "global_dim": 128,
            "excitation": True,
        }
    )
    assert count_parameters(clone) == count_parameters(gen)
    # a config written before the image-wide paths existed rebuilds that network
    old = generator_from_config({"channels": [24, 12], "latent_size": 8})
    assert old.film is None and len(old.gates) == 0


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


def test_latent_blur_removes_the_latent_grid_checkerboard():
    """A z alternating per cell (the latent grid's Nyquist) reaches the image as a
    checkerboard without the blur; with it the first convolution sees none of it."""
    torch.manual_seed(0)
    gen = Generator(channels=[16, 12, 8], latent_blur=True).eval()
    assert gen.config["latent_blur"] is True
    assert "latent_blur" not in Generator(channels=[16, 12, 8]).config  # old configs as they were
    assert not [k for k in gen.state_dict() if "blur" in k]  # same weights file as without it
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = ((-1.0) ** (yy + xx)).float()
    z = checker.expand(1, 8, 16, 16).contiguous()
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(z, (1, 1, 1, 1),
                                                                 mode="reflect"),
                                         gen._blur, groups=8)
    assert blurred.abs().max() < 1e-6
    white = torch.randn(256, 8, 16, 16)
    std = torch.nn.functional.conv2d(torch.nn.functional.pad(white, (1, 1, 1, 1),
                                                             mode="reflect"),
                                     gen._blur, groups=8).std()
    assert 0.95 < float(std) < 1.1  # rescaled: the network sees unit-variance latents
    rebuilt = generator_from_config(gen.config)
    rebuilt.load_state_dict(gen.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(z), gen(z))
