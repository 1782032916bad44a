"""The latent controller: anchor weights, wander, tempo pulses, sections, stem mappings, and
the promise that any frame range computes alone, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.timeline import FrameFeatures
from stratum_kernel.motion.controller import (
    REFERENCE_AXIS_STRENGTH,
    LatentController,
    axis_gains,
    catmull_rom_weights,
    ema,
    hold_decay,
    soft_clip,
    value_noise,
)
from stratum_kernel.motion.presets import list_presets, load_preset, merge_preset_layers
from stratum_kernel.picture.model import GeneratorModel, ModelMeta

ANCHOR_NAMES = ("calm", "bright", "dense", "dark", "warm", "cold")
D = 8 * 16 * 16
FPS = 24.0


def synthetic_model(n_anchors: int = 6, n_axes: int = 6, seed: int = 7,
                    strength: list[float] | None = None) -> GeneratorModel:
    """A GeneratorModel with seeded N(0, 1) anchors and orthonormal PCA axes (no ONNX);
    ``strength``: its meta's pca_strength (none: every axis keeps gain 1)."""
    rng = np.random.default_rng(seed)
    names = ANCHOR_NAMES[:n_anchors]
    anchors = {n: rng.standard_normal((8, 16, 16)).astype(np.float32) for n in names}
    if n_axes:
        q, _ = np.linalg.qr(rng.standard_normal((D, n_axes)))
        axes = q.T.astype(np.float32).reshape(n_axes, 8, 16, 16)
    else:
        axes = np.zeros((0, 8, 16, 16), dtype=np.float32)
    meta = ModelMeta(
        name="synthetic", version="0", output_shape=(3, 64, 64),
        onnx={"sha256": "0" * 64, "opset": 18},
        anchors={n: a.ravel().tolist() for n, a in anchors.items()},
        pca_strength=strength or [],
    )
    return GeneratorModel(Path("."), meta, Path("generator.onnx"), anchors, axes)


def synthetic_features(
    n: int = 480, *, level: float = 1.0, beat_every: int = 12, markers: tuple[float, ...] = (),
    stems: dict | None = None, seed: int = 3, track_id: str = "t1",
) -> FrameFeatures:
    """Music-like features: slow loudness swell, a hit on every beat, drifting brightness,
    random chroma; ``level`` scales every level and every movement (0 = silence: no level,
    no chroma, constant brightness and flatness)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FPS
    beats = np.arange(0, n, beat_every, dtype=np.int64)
    onset = np.zeros(n, dtype=np.float32)
    onset[beats] = 1.0
    vals = {
        "rms": (0.6 + 0.4 * np.sin(t * 0.7)) * level,
        "onset": onset * level,
        "centroid": 0.5 + 0.4 * np.sin(t * 0.3) * level,
        "flatness": 0.3 + 0.2 * np.sin(t * 1.3) * level,
        "harmonic": (0.5 + 0.3 * np.cos(t * 0.5)) * level,
        "percussive": (0.4 + 0.4 * onset) * level,
        "chroma": rng.random((12, n)) * level,
    }
    vals = {k: np.asarray(v, dtype=np.float32) for k, v in vals.items()}
    section = np.searchsorted(np.asarray(markers, dtype=float), t, side="right")
    return FrameFeatures(
        track_id=track_id, fps=FPS, start=0.0, n_frames=n, values=vals, stems=stems or {},
        beat_frames=beats, tempo=60.0 * FPS / beat_every,
        markers=tuple(markers), section=section.astype(np.int32),
    )


QUIET = {  # a preset with every moving part off, for isolating one mechanism at a time
    "name": "quiet",
    "anchors": {"chroma": 0.0, "wander": 0.0, "brightness": 0.0},
    "motion": {"smoothing_alpha": 0.0, "wander": {"amount": 0.0}},
    "tempo_sync": {"enabled": False},
    "sections": {"on_marker": "none", "focus": 0.0},
    "features": [],
    "stem_map": {},
}


def quiet(**layer) -> object:
    return merge_preset_layers(QUIET, layer)


@pytest.fixture(scope="module")
def model() -> GeneratorModel:
    return synthetic_model()


def motion(z: np.ndarray) -> float:
    """Mean frame-to-frame latent distance."""
    flat = z.reshape(len(z), -1).astype(np.float64)
    return float(np.linalg.norm(np.diff(flat, axis=0), axis=1).mean())


# --- building blocks ------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.01, 0.5, 0.9, 0.97, 0.9995])
def test_ema_matches_the_recursion(rng, alpha):
    x = rng.random((3, 2500))
    ref = np.empty_like(x)
    prev = x[:, 0]
    for i in range(x.shape[1]):
        prev = (1 - alpha) * x[:, i] + alpha * prev
        ref[:, i] = prev
    assert np.allclose(ema(x, alpha), ref, rtol=1e-10, atol=1e-12)
    assert np.allclose(ema(x[0], alpha), ref[0], rtol=1e-10, atol=1e-12)


def test_ema_step_response_and_start_value():
    x = np.r_[np.full(10, 2.0), np.full(40, 5.0)]
    y = ema(x, 0.5)
    assert y[:10] == pytest.approx(2.0)  # starts at the first value, no ramp from zero
    assert y[10] == pytest.approx(3.5)
    assert y[-1] == pytest.approx(5.0, abs=1e-9)
    assert np.array_equal(ema(x, 0.0), x)
    # causal: a prefix of the input gives the same prefix of the output
    assert np.array_equal(ema(x[:25], 0.8), ema(x, 0.8)[:25])


def test_hold_decay_matches_the_recursion(rng):
    x = np.where(rng.random(500) < 0.05, rng.random(500), 0.0)
    d = 0.9
    ref = np.zeros_like(x)
    prev = 0.0
    for i, v in enumerate(x):
        prev = max(v, d * prev)
        ref[i] = prev
    assert np.allclose(hold_decay(x, d), ref, rtol=1e-9, atol=1e-300)
    assert np.array_equal(hold_decay(np.zeros(5), d), np.zeros(5))


def test_soft_clip_stays_inside_and_is_nearly_linear_near_zero():
    x = np.linspace(-1e6, 1e6, 10001)
    y = soft_clip(x, 0.7)
    assert np.all(np.abs(y) < 0.7)
    assert np.all(np.diff(y) >= 0)
    assert soft_clip(np.array([0.01]), 0.7)[0] == pytest.approx(0.01, rel=1e-3)


def test_catmull_rom_weights_interpolate_knots_with_unit_variance():
    f = np.linspace(0, 0.999, 50)
    w = catmull_rom_weights(f)
    assert np.allclose(sum(wi * wi for wi in w), 1.0)
    assert w[1][0] == pytest.approx(1.0) and abs(w[0][0]) < 1e-12  # passes through knot j
    noise = value_noise(5, "t", "wander", np.array([0.0, 1.0, 2.0]), 16)
    direct = value_noise(5, "t", "wander", np.array([2.0]), 16)
    assert np.array_equal(noise[2], direct[0])


# --- shapes and invariants ------------------------------------------------------------


@pytest.mark.parametrize("preset", ["default", "pulse", "drift", "shatter", "bloom"])
def test_every_preset_gives_valid_latents_and_weights(model, preset):
    ff = synthetic_features(240, markers=(4.0,))
    plan = LatentController(model, preset, seed=1, track_id="t1").plan(ff)
    z = plan.latents(0, plan.n_frames)
    assert z.dtype == np.float32 and z.shape == (240, 8, 16, 16)
    assert np.all(np.isfinite(z))
    w = plan.anchor_weights
    assert w.shape == (240, 6) and np.all(w >= 0)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-12)
    norms = np.linalg.norm(z.reshape(240, -1), axis=1)
    assert np.all((norms > 0.8 * np.sqrt(D)) & (norms < 1.35 * np.sqrt(D)))
    for name, series in plan.postfx_modulation(10, 20).items():
        assert series.dtype == np.float32 and series.shape == (10,), name


@pytest.mark.parametrize("preset", ["default", "pulse", "drift", "shatter", "bloom"])
def test_any_frame_range_equals_the_whole_track_bit_for_bit(model, preset):
    ff = synthetic_features(300, markers=(5.0,))
    plan = LatentController(model, preset, seed=11, track_id="t1").plan(ff)
    whole = plan.latents(0, 300)
    whole_mod = plan.postfx_modulation(0, 300)
    rng = np.random.default_rng(0)
    ranges = [(0, 1), (299, 300), (7, 8), (0, 300)]
    ranges += [tuple(sorted(rng.choice(301, 2, replace=False))) for _ in range(6)]
    for a, b in ranges:
        assert np.array_equal(plan.latents(a, b), whole[a:b]), (a, b)
        for k, v in plan.postfx_modulation(a, b).items():
            assert np.array_equal(v, whole_mod[k][a:b]), (k, a, b)
    # a fresh controller and plan (another process, a resumed run) gives the same bits
    again = LatentController(model, preset, seed=11, track_id="t1").plan(ff)
    assert np.array_equal(again.latents(120, 180), whole[120:180])


def test_frame_range_is_checked(model):
    plan = LatentController(model, "default", seed=0, track_id="t1").plan(synthetic_features(50))
    with pytest.raises(ValueError, match="outside"):
        plan.latents(40, 51)
    with pytest.raises(ValueError, match="outside"):
        plan.postfx_modulation(-1, 3)
    assert plan.latents().shape[0] == 50


def test_seed_and_track_id_change_the_output(model):
    ff = synthetic_features(120, markers=(2.0,))
    base = LatentController(model, "default", seed=1, track_id="t1").plan(ff).latents(0, 120)
    other_seed = LatentController(model, "default", seed=2, track_id="t1").plan(ff).latents(0, 120)
    other_track = LatentController(model, "default", seed=1, track_id="t2").plan(ff).latents(0, 120)
    same = LatentController(model, "default", seed=1, track_id="t1").plan(ff).latents(0, 120)
    assert np.array_equal(base, same)
    assert not np.allclose(base, other_seed, atol=1e-3)
    assert not np.allclose(base, other_track, atol=1e-3)
    assert not np.allclose(other_seed, other_track, atol=1e-3)


# --- wander ---------------------------------------------------------------------------


@pytest.mark.parametrize("amount,bound", [(0.25, 0.75), (4.0, 0.3)])
def test_wander_stays_within_bound_and_is_smooth(model, amount, bound):
    preset = quiet(motion={"wander": {"amount": amount, "bound": bound, "rate_hz": 1.0,
                                      "follow_rms": 0.0}})
    plan = LatentController(model, preset, seed=4, track_id="t1").plan(synthetic_features(240))
    w = plan.wander(0, 240)
    assert np.abs(w).max() < bound
    assert np.abs(w).max() > 0.5 * min(bound, amount)  # it does move
    # smooth: frame-to-frame steps are small next to the excursion (iid noise: ~1.1x)
    assert np.abs(np.diff(w, axis=0)).mean() < 0.1 * np.abs(w).mean()
    for a, b in [(0, 1), (37, 91), (239, 240)]:
        assert np.array_equal(plan.wander(a, b), w[a:b])


def test_wander_follows_track_time_not_the_frame_rate(model):
    """The same moment of the track wanders to the same place at 24 and 48 fps."""
    preset = quiet(motion={"wander": {"amount": 0.5, "rate_hz": 0.5, "follow_rms": 0.0}})
    p24 = LatentController(model, preset, seed=4, track_id="t1").plan(synthetic_features(96))
    ff48 = synthetic_features(192)
    ff48 = FrameFeatures(**{**ff48.__dict__, "fps": 48.0})
    p48 = LatentController(model, preset, seed=4, track_id="t1").plan(ff48)
    assert np.allclose(p24.wander(24, 48), p48.wander(48, 96)[::2], atol=1e-12)


# --- tempo sync -----------------------------------------------------------------------


@pytest.mark.parametrize("subdivision,every", [(1.0, 12), (2.0, 24), (0.5, 6)])
def test_tempo_pulses_land_on_the_beat_grid(model, subdivision, every):
    preset = quiet(tempo_sync={"enabled": True, "subdivision": subdivision, "amount": 5.0,
                               "target": "pca:1", "decay": 0.2, "follow_rms": 0.0})
    ff = synthetic_features(240, beat_every=12)
    plan = LatentController(model, preset, seed=0, track_id="t1").plan(ff)
    pulse = plan.tempo_pulse
    peaks = np.flatnonzero(pulse > 0.999)
    assert np.array_equal(peaks, np.arange(0, 240, every))
    coef = plan.pca_coefficients[:, 1]
    assert np.array_equal(np.flatnonzero(coef > 0.999 * coef.max()), peaks)
    # the latent moves along axis 1 on the pulse frames
    z = plan.latents(0, 240).reshape(240, -1).astype(np.float64)
    proj = z @ model.pca_axes[1].ravel().astype(np.float64)
    assert proj[every] - proj[every - 1] > 3.0


def test_tempo_pulses_follow_irregular_beat_frames(model):
    """Beat frames are rounded beat times: the pulse peaks on them even when the grid is
    uneven."""
    preset = quiet(tempo_sync={"enabled": True, "subdivision": 1.0, "decay": 0.2,
                               "target": "postfx:exposure", "amount": 1.0, "follow_rms": 0.0})
    ff = synthetic_features(120, beat_every=12)
    beats = np.array([5, 16, 29, 40, 53, 64], dtype=np.int64)
    ff = FrameFeatures(**{**ff.__dict__, "beat_frames": beats})
    plan = LatentController(model, preset, seed=0, track_id="t1").plan(ff)
    pulse = plan.tempo_pulse
    assert np.array_equal(np.flatnonzero(pulse > 0.999), beats)
    assert not pulse[:5].any()  # nothing before the first beat
    assert pulse[64 + 11] > 0 and not pulse[64 + 12 :].any()  # rings one beat past the last
    assert np.array_equal(plan.postfx_modulation(0, 120)["exposure"], pulse.astype(np.float32))


def test_tempo_pulses_need_beats_and_follow_loudness(model):
    ts = {"enabled": True, "subdivision": 1.0, "amount": 5.0, "target": "pca:0",
          "follow_rms": 1.0}
    preset = quiet(tempo_sync=ts)
    silent = LatentController(model, preset, seed=0, track_id="t1").plan(
        synthetic_features(120, level=0.0)
    )
    assert np.abs(silent.pca_coefficients).max() == 0.0
    no_beats = synthetic_features(120)
    no_beats = FrameFeatures(**{**no_beats.__dict__, "beat_frames": np.zeros(0, np.int64)})
    plan = LatentController(model, preset, seed=0, track_id="t1").plan(no_beats)
    assert not plan.tempo_pulse.any()
    assert any("no beats" in n for n in plan.notes)


# --- sections -------------------------------------------------------------------------


def test_cut_changes_the_focus_anchor_at_the_marker_frame(model):
    preset = quiet(sections={"on_marker": "cut", "focus": 6.0})
    ff = synthetic_features(240, markers=(5.0,))  # frame 120
    plan = LatentController(model, preset, seed=2, track_id="t1").plan(ff)
    top = plan.anchor_weights.argmax(axis=1)
    assert len(set(top[:120])) == 1 and len(set(top[120:])) == 1
    assert top[119] != top[120]
    assert plan.section_focus == [plan.anchor_names[top[0]], plan.anchor_names[top[120]]]


def test_shift_crossfades_and_none_ignores_markers(model):
    ff = synthetic_features(240, markers=(5.0,))
    shift = quiet(sections={"on_marker": "shift", "crossfade_s": 2.0, "focus": 6.0})
    w = LatentController(model, shift, seed=2, track_id="t1").plan(ff).anchor_weights
    old, new = w[0].argmax(), w[-1].argmax()
    assert old != new
    assert np.allclose(w[:120], w[0])
    mid = w[120 + 23]  # halfway through the 48-frame cross-fade (the marker frame is 1/48)
    assert mid[old] == pytest.approx(mid[new], rel=1e-6)
    assert w[120 + 47, new] == pytest.approx(w[-1, new])
    assert w[120 + 10, new] < mid[new] < w[120 + 40, new]
    none = quiet(sections={"on_marker": "none", "focus": 6.0})
    wn = LatentController(model, none, seed=2, track_id="t1").plan(ff).anchor_weights
    assert np.allclose(wn, wn[0])


# --- mappings -------------------------------------------------------------------------


def _drum_hit_on_pca3(n: int, at: int = 40):
    """Silent stems but one drum hit at frame ``at``, and a quiet preset that maps drum
    onsets onto pca:3 (amount 6, ringing 0.2 s)."""
    env = np.zeros(n, np.float32)
    hit = env.copy()
    hit[at] = 1.0
    stems = {s: {"envelope": env, "onset": env} for s in ("drums", "bass", "other", "vocals")}
    stems["drums"] = {"envelope": env, "onset": hit}
    preset = quiet(stem_map={"drums": [{"source": "onset", "target": "pca:3", "amount": 6.0,
                                        "decay_s": 0.2}]})
    return stems, preset


def test_a_drum_hit_moves_along_its_pca_axis(model):
    n = 96
    stems, preset = _drum_hit_on_pca3(n)
    plan = LatentController(model, preset, seed=0, track_id="t1").plan(
        synthetic_features(n, stems=stems)
    )
    z = plan.latents(0, n).reshape(n, -1).astype(np.float64)
    axes = model.pca_axes.reshape(6, -1).astype(np.float64)
    jump = (z[40] - z[39]) @ axes.T
    assert jump[3] == pytest.approx(6.0 / np.sqrt(1 + 0.25), rel=1e-6)  # soft limit 12
    assert np.all(np.abs(np.delete(jump, 3)) < 1e-3)
    c = plan.pca_coefficients[:, 3]
    assert c[39] == 0 and c[40] > c[41] > c[50] > 0  # rings and decays
    assert not any("drums" in note for note in plan.notes)


def test_axis_gains_turn_down_only_the_axes_stronger_than_the_reference():
    ref = REFERENCE_AXIS_STRENGTH
    g = axis_gains([28 * ref, 2 * ref, ref, 0.5 * ref, 0.0], 6)
    assert g == pytest.approx([1 / 28, 0.5, 1.0, 1.0, 1.0, 1.0])  # 0 and missing: gain 1
    assert axis_gains([], 3) == pytest.approx([1, 1, 1])
    assert axis_gains([5 * ref] * 8, 2) == pytest.approx([0.2, 0.2])  # more strengths than axes


def test_a_hit_moves_a_strong_axis_by_the_same_picture_change():
    """The same preset on a model whose axis 3 moves the picture 4x the reference: a quarter
    of the latent step, so the frame changes as much as on a model at the reference."""
    n = 96
    stems, preset = _drum_hit_on_pca3(n)
    steps = []
    for strength in ([0.1] * 6, [0.1, 0.1, 0.1, 0.4, 0.1, 0.1]):
        m = synthetic_model(strength=strength)
        plan = LatentController(m, preset, seed=0, track_id="t1").plan(
            synthetic_features(n, stems=stems))
        z = plan.latents(0, n).reshape(n, -1).astype(np.float64)
        steps.append(float((z[40] - z[39]) @ m.pca_axes.reshape(6, -1)[3].astype(np.float64)))
    soft = 6.0 / np.sqrt(1 + 0.25)  # soft limit 12, applied before the gain
    assert steps[0] == pytest.approx(soft, rel=1e-6)
    assert steps[1] == pytest.approx(soft / 4, rel=1e-6)
    assert steps[1] * 0.4 == pytest.approx(steps[0] * 0.1, rel=1e-6)  # same picture change


def test_missing_stems_fall_back_to_the_mix_or_are_skipped(model):
    mapping = {"drums": [{"source": "onset", "target": "pca:2", "amount": 4.0}]}
    ff = synthetic_features(96)
    fb = LatentController(model, quiet(stem_map=mapping), seed=0, track_id="t1").plan(ff)
    assert np.abs(fb.pca_coefficients[:, 2]).max() > 1.0
    assert any("follows the mix's 'onset'" in n for n in fb.notes)
    off = quiet(stem_map=mapping, stem_fallback=False)
    skip = LatentController(model, off, seed=0, track_id="t1").plan(ff)
    assert not skip.pca_coefficients.any()
    assert any("skipped" in n for n in skip.notes)


def test_feature_to_postfx_and_anchor_targets(model):
    preset = quiet(features=[
        {"source": "onset", "target": "postfx:exposure", "amount": 0.5, "decay_s": 0.1},
        {"source": "centroid", "target": "anchor:bright", "amount": 3.0, "bipolar": True},
    ])
    ff = synthetic_features(120)
    plan = LatentController(model, preset, seed=0, track_id="t1").plan(ff)
    exp = plan.postfx_modulation(0, 120)["exposure"]
    assert exp[0] == pytest.approx(0.5) and exp[12] == pytest.approx(0.5)
    assert exp[6] == pytest.approx(0.5 * np.exp(-6 / (0.1 * FPS)), rel=1e-5)
    w = plan.anchor_weights[:, plan.anchor_names.index("bright")]
    centroid = ff.values["centroid"]
    assert np.corrcoef(w, centroid)[0, 1] > 0.95


def test_louder_music_moves_more_and_silence_is_calm(model):
    def run(level):
        ff = synthetic_features(240, level=level, markers=())
        plan = LatentController(model, "default", seed=3, track_id="t1").plan(ff)
        return motion(plan.latents(0, 240))

    silent, soft, loud = run(0.0), run(0.4), run(1.0)
    assert silent < soft < loud
    assert loud > 2.0 * silent


def test_smoothing_alpha_reduces_jitter(model):
    ff = synthetic_features(240)
    jitter = FrameFeatures(**{**ff.__dict__, "values": {
        **ff.values, "rms": np.random.default_rng(0).random(240).astype(np.float32)}})
    feats = [{"source": "rms", "target": "pca:0", "amount": 5.0}]
    rough = LatentController(model, quiet(features=feats), seed=0, track_id="t1",
                             smoothing_alpha=0.0).plan(jitter)
    smooth = LatentController(model, quiet(features=feats), seed=0, track_id="t1",
                              smoothing_alpha=0.95).plan(jitter)
    assert motion(smooth.latents()) < 0.3 * motion(rough.latents())


def test_tempo_sync_keyword_overrides_the_preset(model):
    ctl = LatentController(model, "drift", seed=0, track_id="t1",
                           tempo_sync={"enabled": True, "subdivision": 2})
    assert ctl.preset.tempo_sync.enabled and ctl.preset.tempo_sync.subdivision == 2.0
    assert ctl.plan(synthetic_features(96)).tempo_pulse.max() == pytest.approx(1.0)


# --- models of other shapes -----------------------------------------------------------


def test_unknown_anchor_names_are_refused_with_the_known_ones(model):
    preset = merge_preset_layers(load_preset("default"), {"anchors": {"use": ["calm", "nope"]}})
    with pytest.raises(ConfigError) as err:
        LatentController(model, preset, seed=0, track_id="t1")
    assert err.value.field == "anchors.use" and "calm" in str(err.value)


def test_a_model_without_pca_axes_or_named_anchors_still_works():
    small = synthetic_model(n_anchors=1, n_axes=0)
    plan = LatentController(small, "bloom", seed=0, track_id="t1").plan(synthetic_features(48))
    assert plan.pca_coefficients.shape == (48, 0)
    assert any("PCA axes" in n for n in plan.notes)
    assert any("brightness anchor" in n for n in plan.notes)
    assert plan.latents(0, 48).shape == (48, 8, 16, 16)
    one = synthetic_model(n_anchors=1, n_axes=2)
    p1 = LatentController(one, "pulse", seed=0, track_id="t1").plan(
        synthetic_features(48, markers=(1.0,))
    )
    assert np.allclose(p1.anchor_weights, 1.0)


def test_bundled_presets_are_available():
    assert {"default", "pulse", "drift", "shatter", "bloom"} <= set(list_presets())


def test_latents_from_a_loaded_model_decode_to_moving_pictures(tiny_model):
    """End to end through meta.json and ONNX Runtime: the plan's latents decode, and the
    pictures change on a beat pulse."""
    from stratum_kernel.picture.decoder import DecoderParams, FrameDecoder

    preset = quiet(tempo_sync={"enabled": True, "amount": 12.0, "target": "pca:0",
                               "follow_rms": 0.0})
    plan = LatentController(tiny_model, preset, seed=0, track_id="t1").plan(
        synthetic_features(24, beat_every=12)
    )
    frames = FrameDecoder(tiny_model, DecoderParams(execution_provider="cpu")).decode(
        plan.latents(10, 14)
    )
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8
    diff = np.abs(frames.astype(int)[1:] - frames.astype(int)[:-1]).mean(axis=(1, 2, 3))
    assert diff[1] > 3 * max(diff[0], 0.05)  # frame 12 is the pulse: the big change
