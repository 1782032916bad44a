"""The look stages of post-FX: palette, symmetry, feedback, glow, detail.

Known answers where there are some (a palette on a grey ramp, symmetry to the pixel), the
bounds that make feedback chunk-independent, and the whole chain with every stage on and
modulated giving identical frames however it is cut into calls.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.motion.presets import preset_from_dict
from stratum_kernel.picture.postfx import (
    MODULATABLE,
    FeedbackParams,
    PaletteParams,
    PostFXParams,
    SymmetryParams,
    apply_postfx,
    history_frames,
    window_frames,
)
from stratum_kernel.picture.postfx.glow import glow
from stratum_kernel.picture.postfx.palette import apply_palette, palette_colours, palette_lut
from stratum_kernel.picture.postfx.symmetry import apply_symmetry, mirror
from stratum_kernel.picture.postfx.texture import detail
from stratum_kernel.picture.postfx.trails import feedback

RAMP = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # [1, 256, 3]


def _frames(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(20, 236, (n, size // 4, size // 4, 3)).astype(np.uint8)
    return np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)


# ------------------------------------------------------------------ palette


def test_a_two_stop_palette_maps_grey_exactly():
    p = PaletteParams(stops=[(0, 0, 0), (255, 0, 0)], mix=1.0)
    out = apply_palette(RAMP, p, 1.0, 0.0)
    assert out[0, :, 0].tolist() == list(range(256))  # luma of grey = its level
    assert not out[0, :, 1:].any()


def test_stops_interpolate_and_the_shift_walks_back_and_forth():
    p = PaletteParams(stops=[(0, 0, 0), (0, 200, 0), (255, 255, 255)], mix=1.0)
    lut = palette_lut(p)
    assert lut[0].tolist() == [0, 0, 0] and lut[255].tolist() == [255, 255, 255]
    assert lut[128].tolist() == [1, 200, 1]  # 128/255 is just past the middle stop
    assert np.array_equal(palette_lut(p, 1.0), lut[::-1])  # a full shift: walked back
    assert np.array_equal(palette_lut(p, 2.0), lut)


def test_a_cosine_palette_has_the_formula_values():
    p = PaletteParams(cosine={"a": (0.5, 0.5, 0.5), "b": (0.5, 0.5, 0.5),
                              "c": (1.0, 1.0, 1.0), "d": (0.0, 0.25, 0.5)}, mix=1.0)
    c = palette_colours(p, np.array([0.0, 0.5]))
    np.testing.assert_allclose(c[0], [1.0, 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(c[1], [0.0, 0.5, 1.0], atol=1e-12)
    assert np.array_equal(palette_lut(p, 1.0), palette_lut(p, 0.0))  # goes round


def test_mix_and_hue_mode():
    img = np.full((2, 2, 3), (200, 40, 40), np.uint8)
    p = PaletteParams(stops=[(0, 0, 255), (0, 0, 255)], mix=0.5)
    half = apply_palette(img, p, 0.5, 0.0)
    assert half[0, 0].tolist() == [100, 20, 148]
    hue = PaletteParams(stops=[(0, 255, 0), (0, 255, 0)], mode="hue", mix=1.0)
    kept = apply_palette(img, hue, 1.0, 0.0)
    assert kept[0, 0].tolist() == [0, 200, 0]  # the palette's colour at the pixel's value


def test_palette_needs_colours():
    with pytest.raises(ValueError, match=r"needs palette\.stops or palette\.cosine"):
        PaletteParams(mix=0.5)
    with pytest.raises(ValueError, match="2 to 6 colour stops"):
        PaletteParams(stops=[(1, 2, 3)])


# ------------------------------------------------------------------ symmetry


@pytest.fixture
def noise() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (64, 64, 3)).astype(np.uint8)


def test_mirrors_are_exact(noise):
    x = mirror(noise, "mirror_x")
    assert np.array_equal(x, x[:, ::-1]) and np.array_equal(x[:, :32], noise[:, :32])
    y = mirror(noise, "mirror_y")
    assert np.array_equal(y, y[::-1]) and np.array_equal(y[:32], noise[:32])
    q = mirror(noise, "quad")
    assert np.array_equal(q, q[::-1, ::-1]) and np.array_equal(q[:32, :32], noise[:32, :32])


def test_the_kaleidoscope_is_symmetric_to_the_pixel(noise):
    k8 = apply_symmetry(noise, SymmetryParams(mode="kaleidoscope", segments=8), 0.0)
    assert np.array_equal(k8, np.rot90(k8)) and np.array_equal(k8, k8[:, ::-1])
    k4 = apply_symmetry(noise, SymmetryParams(mode="kaleidoscope", segments=4), 0.0)
    assert np.array_equal(k4, k4[::-1]) and np.array_equal(k4, k4[:, ::-1])
    k6 = apply_symmetry(noise, SymmetryParams(mode="kaleidoscope", segments=6), 0.0)
    assert np.array_equal(k6, k6[::-1])  # the 0° edge is a mirror line
    assert not np.array_equal(k6, k6[:, ::-1])  # 90° is not an edge of 6 wedges
    # a turn by two wedges is the same pattern
    turned = apply_symmetry(noise, SymmetryParams(mode="kaleidoscope", segments=6), 120.0)
    assert np.array_equal(turned, k6)


# ------------------------------------------------------------------ feedback


def test_feedback_is_off_at_zero_and_lighten_never_darkens():
    win = _frames(5)
    fb = FeedbackParams(amount=0.0)
    assert np.array_equal(feedback(win, 4, fb, 0.0, 1.02, 0.0, 0.0), win[-1])
    lit = feedback(win, 4, FeedbackParams(amount=0.9), 0.9, 1.05, 3.0, 10.0)
    assert (lit >= win[-1]).all() and (lit > win[-1]).any()
    # a large frame builds its trail at half size; this frame itself stays exact where the
    # trail is darker
    big = np.repeat(np.repeat(win, 8, axis=1), 8, axis=2)  # 256²
    out = feedback(big, 4, FeedbackParams(amount=0.5), 0.5, 1.05, 0.0, 0.0)
    assert out.shape == big.shape[1:] and (out >= big[-1]).all()
    blend = feedback(win, 4, FeedbackParams(amount=0.5, mode="blend"), 0.5, 1.0, 0.0, 0.0)
    expected = (win[-1] + 0.5 * win[-2] + 0.25 * win[-3] + 0.125 * win[-4]
                + 0.0625 * win[-5].astype(np.float64)) / 1.9375
    assert np.abs(blend.astype(np.float64) - expected).max() <= 1.0  # zoom 1: a plain mean


def test_feedback_reads_a_bounded_window():
    """Frame t depends on frames t-K..t only (K = feedback.frames), so a frame before the
    window changes nothing."""
    params = PostFXParams(feedback={"amount": 0.9, "frames": 4, "zoom": 1.05, "hue": 5.0})
    assert window_frames(params) == 8 and history_frames(params, 100) == 8  # persistence's 8
    params = params.model_copy(update={"persistence_frames": 2})
    assert window_frames(params) == 4
    frames = _frames(12)
    base = apply_postfx(frames, params, frame_indices=range(12), seed=1, track_id="t",
                        out_size=(32, 32))
    changed = frames.copy()
    changed[5] = 255 - changed[5]
    after = apply_postfx(changed, params, frame_indices=range(12), seed=1, track_id="t",
                         out_size=(32, 32))
    assert np.array_equal(base[10:], after[10:])  # 5 is outside 10's window of 4
    assert not np.array_equal(base[9], after[9])  # and inside 9's


# ------------------------------------------------------------------ glow and detail


def test_glow_spreads_only_what_is_bright():
    img = np.zeros((64, 64, 3), np.uint8)
    img[30:34, 30:34] = 255
    from stratum_kernel.picture.postfx import GlowParams

    g = glow(img, GlowParams(amount=1.0, threshold=0.5, radius=8), 1.0)
    assert g[32, 27].sum() > 0 and g[32, 27].sum() < g[31, 31].sum() and not g[0, 0].any()
    assert (g >= img).all()
    dim = np.full((64, 64, 3), 100, np.uint8)
    assert np.array_equal(glow(dim, GlowParams(amount=1.0, threshold=0.5), 1.0), dim)


def test_detail_steepens_edges():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, 8:] = 200
    soft = np.array(img, copy=True)
    import cv2

    soft = cv2.GaussianBlur(soft, (0, 0), 1.5)
    sharp = detail(soft, 1.0)
    assert int(sharp[8, 9, 0]) - int(sharp[8, 6, 0]) > int(soft[8, 9, 0]) - int(soft[8, 6, 0])


# ------------------------------------------------------------------ the whole chain


LOOK = {
    "persistence": 0.3, "persistence_frames": 3, "grain_intensity": 0.2, "glow":
        {"amount": 0.6, "threshold": 0.5, "radius": 6}, "detail": 0.5,
    "palette": {"cosine": {"d": (0.1, 0.4, 0.7)}, "mix": 0.6, "drift": 6.0},
    "symmetry": {"mode": "kaleidoscope", "segments": 6, "spin": 20.0},
    "feedback": {"amount": 0.8, "frames": 5, "zoom": 1.04, "rotate": 2.0, "hue": 6.0},
}


@pytest.mark.parametrize("cuts", [[0, 24], [0, 1, 7, 8, 15, 24], [0, 5, 6, 24]])
def test_every_stage_on_and_modulated_is_chunk_invariant(cuts):
    params = PostFXParams.model_validate(LOOK)
    frames = _frames(24, size=32, seed=5)
    rng = np.random.default_rng(2)
    mod = {k: rng.uniform(-0.2, 0.2, 24).astype(np.float32)
           for k in ("feedback", "feedback_zoom", "palette_shift", "symmetry_rotation", "glow",
                     "detail", "palette_mix", "feedback_hue")}
    kw = dict(seed=9, track_id="t", out_size=(48, 32), fps=24.0, start_time=1.5)
    whole = apply_postfx(frames, params, frame_indices=range(24), modulation=mod, **kw)
    parts = []
    for a, b in itertools.pairwise(cuts):
        k = history_frames(params, a, modulated=True)
        parts.append(apply_postfx(frames[a:b], params, frame_indices=range(a, b),
                                  history=frames[a - k:a], modulation={m: v[a:b] for m, v in
                                                                       mod.items()}, **kw))
    assert np.array_equal(np.concatenate(parts), whole)


def test_the_new_stages_are_modulatable_and_checked():
    for name in ("palette_mix", "palette_shift", "symmetry_rotation", "feedback",
                 "feedback_zoom", "feedback_rotate", "feedback_hue", "glow", "detail"):
        assert name in MODULATABLE
    preset = preset_from_dict({"name": "x", "features": [
        {"source": "rms", "target": "postfx:feedback_zoom", "amount": 0.05}]})
    assert preset.features[0].target == "postfx:feedback_zoom"
    with pytest.raises(ConfigError, match=r"feedback.zoom: Input should be less than or equal "
                                          r"to 1.25 \(got 2\)"):
        preset_from_dict({"name": "x", "postfx": {"feedback": {"zoom": 2}}})
    with pytest.raises(ConfigError, match=r"symmetry.segments: Input should be greater than or "
                                          r"equal to 2"):
        preset_from_dict({"name": "x", "postfx": {"symmetry": {"segments": 1}}})
    with pytest.raises(ValueError, match="need fps"):
        apply_postfx(_frames(1), PostFXParams.model_validate(LOOK), frame_indices=[0], seed=1,
                     track_id="t", out_size=(32, 32))
