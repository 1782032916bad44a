"""Post-FX: geometry, LUTs, grain keying, chunk-independent persistence, modulation, overlays."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_kernel.picture.postfx import (
    MODULATABLE,
    GradeParams,
    PostFXParams,
    apply_postfx,
    fit_geometry,
    frame_settings,
    grain_offset,
    history_frames,
    persistence_weights,
    tone_lut,
)


def _frames(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, (n, size // 4, size // 4, 3)).astype(np.uint8)
    return np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)  # blocky, so resizing is visible


def _run(frames, params, start=0, history=None, **kw):
    kw.setdefault("seed", 7)
    kw.setdefault("track_id", "t1")
    kw.setdefault("out_size", (48, 32))
    return apply_postfx(
        frames, params, frame_indices=range(start, start + len(frames)), history=history, **kw
    )


RICH = PostFXParams(
    tone_curve="punch", exposure=0.3, saturation=1.3, vignette=0.5, grain_intensity=0.4,
    grain_size=1.5, chroma_shift=1.5, persistence=0.7, persistence_frames=5, sharpen=0.6,
    grade=GradeParams(lift=(0.02, 0.0, -0.02), gamma=(1.1, 1.0, 0.9), temperature=0.3),
)


def test_same_inputs_same_pixels_and_seed_matters():
    f = _frames(6)
    a, b = _run(f, RICH), _run(f, RICH)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 32, 48, 3) and a.dtype == np.uint8
    c = _run(f, RICH, seed=8)
    assert not np.array_equal(a, c)  # grain follows the seed
    d = _run(f, RICH, track_id="t2")
    assert not np.array_equal(a, d)  # ... and the track


@pytest.mark.parametrize("cuts", [[20], [1, 19], [7, 6, 7], [3, 3, 3, 3, 3, 3, 2], [5, 15]])
def test_chunking_never_changes_a_pixel(cuts):
    """Persistence, grain and modulation give identical frames however the track is cut."""
    n = sum(cuts)
    f = _frames(n, seed=3)
    mod = {
        "exposure": np.linspace(-0.5, 0.5, n, dtype=np.float32),
        "persistence": np.sin(np.arange(n, dtype=np.float32)) * 0.3,
        "grain_intensity": np.linspace(0, 0.3, n, dtype=np.float32),
    }
    whole = _run(f, RICH, modulation=mod)
    parts, start = [], 0
    for c in cuts:
        k = history_frames(RICH, start, modulated=True)
        sl = slice(start, start + c)
        parts.append(
            _run(
                f[sl], RICH, start=start, history=f[start - k : start],
                modulation={key: v[sl] for key, v in mod.items()},
            )
        )
        start += c
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_history_is_required_when_persistence_is_on():
    f = _frames(4)
    with pytest.raises(ValueError, match="history"):
        _run(f[2:], RICH, start=2)
    _run(f[2:], RICH, start=2, history=f[:2])  # enough
    _run(f[2:], RICH.model_copy(update={"persistence": 0.0}), start=2)  # not needed when off


def test_persistence_trails_and_is_normalised():
    p = PostFXParams(tone_curve="linear", persistence=0.8, persistence_frames=4)
    flat = np.full((6, 16, 16, 3), 100, np.uint8)
    out = _run(flat, p, out_size=(16, 16))
    assert np.all(np.abs(out.astype(int) - 100) <= 1)  # weights sum to one
    flash = flat.copy()
    flash[2] = 250
    out = _run(flash, p, out_size=(16, 16)).astype(int)
    trail = out[:, 8, 8, 1]
    assert trail[0] == trail[1] == 100
    assert trail[2] > trail[3] > trail[4] > trail[5] > 100  # the flash trails off
    assert trail[2] < 250  # ... and its own frame is blended with the past
    w = persistence_weights(0.5, 3)
    np.testing.assert_allclose(w, [0.5, 0.25, 0.125])


def test_grain_is_keyed_by_frame_and_has_the_stated_strength():
    p = PostFXParams(tone_curve="linear", grain_intensity=0.5)
    grey = np.full((3, 64, 64, 3), 128, np.uint8)
    out = _run(grey, p, out_size=(96, 64)).astype(np.float64)
    assert not np.array_equal(out[0], out[1])
    assert abs(out.mean() - 128) < 1.5
    assert 12 < out[0].std() < 20  # 0.5 x 32 levels
    alone = _run(grey[:1], p, start=2, out_size=(96, 64))
    np.testing.assert_array_equal(alone[0], out[2])
    assert grain_offset(1, "a", 5) == grain_offset(1, "a", 5) != grain_offset(1, "a", 6)


@pytest.mark.parametrize(
    ("src", "out", "fit", "crop", "scaled", "pad"),
    [
        ((64, 64), (160, 96), "fill", (13, 51, 0, 64), (96, 160), (0, 0, 0, 0)),
        ((64, 64), (160, 96), "fit", (0, 64, 0, 64), (96, 96), (0, 0, 32, 32)),
        ((64, 64), (160, 96), "crop", (0, 64, 0, 64), (64, 64), (16, 16, 48, 48)),
        ((64, 64), (32, 48), "crop", (8, 56, 16, 48), (48, 32), (0, 0, 0, 0)),
        ((256, 256), (1280, 720), "fill", (56, 200, 0, 256), (720, 1280), (0, 0, 0, 0)),
        ((64, 64), (96, 160), "fit", (0, 64, 0, 64), (96, 96), (32, 32, 0, 0)),
    ],
)
def test_fit_geometry(src, out, fit, crop, scaled, pad):
    g = fit_geometry(src, out, fit)
    assert (g.crop, g.scaled, g.pad) == (crop, scaled, pad)
    h = g.scaled[0] + g.pad[0] + g.pad[1]
    w = g.scaled[1] + g.pad[2] + g.pad[3]
    assert (w, h) == out


def test_fit_modes_on_pixels():
    src = _frames(1, size=64)
    neutral = PostFXParams(tone_curve="linear", pad_color=(10, 20, 30))
    fit = _run(src, neutral.model_copy(update={"fit": "fit"}), out_size=(160, 96))
    assert fit.shape == (1, 96, 160, 3)
    assert (fit[0, :, :32] == [10, 20, 30]).all() and (fit[0, :, -32:] == [10, 20, 30]).all()
    crop = _run(src, neutral.model_copy(update={"fit": "crop"}), out_size=(32, 48))
    np.testing.assert_array_equal(crop[0], src[0, 8:56, 16:48])  # a window, no resampling
    fill = _run(src, neutral, out_size=(160, 96))
    assert (fill[0] != [10, 20, 30]).any(axis=-1).all()  # no padding anywhere
    with pytest.raises(ValueError, match="fit"):
        fit_geometry((64, 64), (10, 10), "stretch")


@pytest.mark.parametrize("curve", ["filmlog", "linear", "punch", "soft", "bleach", "noir"])
@pytest.mark.parametrize("exposure", [-1.0, 0.0, 1.5])
def test_luts_are_monotonic(curve, exposure):
    p = PostFXParams(
        tone_curve=curve, exposure=exposure, contrast=1.4,
        grade=GradeParams(lift=(0.05, 0.0, -0.05), gamma=(0.8, 1.0, 1.3), gain=(1.1, 1, 0.9),
                          temperature=-0.4, tint=0.2),
    )
    lut = tone_lut(p, frame_settings(p, None, 1)[0])
    assert lut.shape == (1, 256, 3) and lut.dtype == np.uint8
    assert (np.diff(lut[0].astype(int), axis=0) >= 0).all()


def test_neutral_linear_lut_is_identity_and_curves_differ():
    p = PostFXParams(tone_curve="linear")
    lut = tone_lut(p, frame_settings(p, None, 1)[0])
    np.testing.assert_array_equal(lut[0, :, 0], np.arange(256))
    film = tone_lut(PostFXParams(), frame_settings(PostFXParams(), None, 1)[0])
    assert film[0, 0, 0] > 0 and film[0, 255, 0] < 255  # lifted blacks, rolled-off whites


def test_saturation_zero_is_grey_and_vignette_darkens_corners():
    f = _frames(1, size=32)
    grey = _run(f, PostFXParams(tone_curve="linear", saturation=0.0), out_size=(32, 32))
    assert np.abs(grey[0].astype(int) - grey[0, :, :, :1].astype(int)).max() <= 1
    flat = np.full((1, 32, 32, 3), 200, np.uint8)
    v = _run(flat, PostFXParams(tone_curve="linear", vignette=1.0), out_size=(64, 64))[0]
    assert v[32, 32, 0] == 200 and v[0, 0, 0] < 20 and v[0, 32, 0] < 200


def test_chroma_shift_separates_red_and_blue_at_edges():
    img = np.full((1, 32, 32, 3), 60, np.uint8)
    img[0, :, 24:] = 220  # a bright vertical bar off-centre
    p = PostFXParams(tone_curve="linear", chroma_shift=3.0)
    out = _run(img, p, out_size=(32, 32))[0].astype(int)
    row = out[16]
    assert (row[:, 0] != row[:, 2]).any()  # fringes
    centre = _run(img, p.model_copy(update={"chroma_shift": 0.0}), out_size=(32, 32))[0]
    assert np.array_equal(centre[16, :, 0], centre[16, :, 2])


def test_modulation_moves_and_is_clipped():
    f = np.full((3, 16, 16, 3), 100, np.uint8)
    p = PostFXParams(tone_curve="linear")
    out = _run(f, p, out_size=(16, 16), modulation={"exposure": np.array([0.0, 1.0, 9.0])})
    assert out[0, 0, 0, 0] == 100 and out[1, 0, 0, 0] == 200 and out[2, 0, 0, 0] == 255
    s = frame_settings(p, {"saturation": np.array([-5.0, 0.5, 9.0])}, 3)
    assert [x.saturation for x in s] == [0.0, 1.5, 3.0]
    with pytest.raises(ValueError, match="unknown parameter 'wobble'"):
        frame_settings(p, {"wobble": np.zeros(3)}, 3)
    with pytest.raises(ValueError, match="2 values for 3 frames"):
        frame_settings(p, {"exposure": np.zeros(2)}, 3)
    floats = {k for k, f in PostFXParams.model_fields.items() if f.annotation is float}
    assert floats <= set(MODULATABLE)  # presets may modulate any float field
    sized = _run(np.full((2, 16, 16, 3), 128, np.uint8),
                 PostFXParams(tone_curve="linear", grain_intensity=0.5), out_size=(32, 32),
                 modulation={"grain_size": np.array([0.0, 3.0])})
    step = np.abs(np.diff(sized.astype(int), axis=2)).mean(axis=(1, 2, 3))
    assert step[1] < 0.5 * step[0]  # bigger grain: neighbouring pixels move together


def test_overlays_get_time_and_paint():
    seen = []

    def corner(frame, t):
        seen.append(t)
        frame[:4, :4] = 255

    def new_frame(frame, t):
        out = frame.copy()
        out[-1, -1] = 0
        return out

    f = _frames(3)
    out = _run(f, PostFXParams(), start=48, overlays=[corner, new_frame], fps=24.0, start_time=10.0)
    assert seen == pytest.approx([12.0, 12.0 + 1 / 24, 12.0 + 2 / 24])
    assert (out[:, :4, :4] == 255).all() and (out[:, -1, -1] == 0).all()
    with pytest.raises(ValueError, match="fps"):
        _run(f, PostFXParams(), overlays=[corner])
    with pytest.raises(ValueError, match="returned shape"):
        _run(f, PostFXParams(), overlays=[lambda fr, t: fr[:2]], fps=24.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": np.zeros((2, 8, 8, 3), np.float32)}, "uint8"),
        ({"frames": np.zeros((8, 8, 3), np.uint8)}, "uint8"),
        ({"frame_indices": [0, 2]}, "consecutive"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    args = {"frames": np.zeros((2, 8, 8, 3), np.uint8), "frame_indices": [0, 1]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        apply_postfx(args["frames"], PostFXParams(), frame_indices=args["frame_indices"],
                     seed=0, track_id="x", out_size=(8, 8))


def test_params_validation():
    with pytest.raises(ValueError):
        PostFXParams(persistence=1.0)
    with pytest.raises(ValueError, match="gamma"):
        GradeParams(gamma=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError):
        PostFXParams(tone_curve="sepia")
