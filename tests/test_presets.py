"""Presets: loading, validation, merging album → track → override, saving, and the bundled
moods being valid and distinct."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.motion.controller import LatentController
from stratum_kernel.motion.presets import (
    BUNDLED_DIR,
    Preset,
    deep_merge,
    list_presets,
    load_preset,
    merge_preset_layers,
    parse_target,
    preset_from_dict,
    save_preset,
    user_presets_dir,
)
from tests.test_controller import motion, synthetic_features, synthetic_model

BUNDLED = ("default", "pulse", "drift", "shatter", "bloom")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throwaway project root, so user presets land in tmp_path/presets."""
    monkeypatch.setenv("STRATUM_ROOT", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_presets_load_and_describe_themselves(name):
    p = load_preset(name)
    assert p.name == name
    assert len(p.description) > 40
    text = (BUNDLED_DIR / f"{name}.yaml").read_text()
    assert text.startswith("# "), "each bundled preset explains its character in a comment"
    assert p.features or p.stem_map


def test_bundled_presets_have_distinct_characters():
    """Same features, same seed: each mood gives a different latent walk and post-FX."""
    model = synthetic_model()
    ff = synthetic_features(480, markers=(10.0,))
    stats = {}
    for name in BUNDLED:
        plan = LatentController(model, name, seed=5, track_id="t1").plan(ff)
        z = plan.latents(0, ff.n_frames)
        w = plan.anchor_weights
        entropy = float(-(w * np.log(w + 1e-12)).sum(axis=1).mean())
        stats[name] = np.array([
            motion(z),                                   # how fast it moves
            entropy,                                     # blended vs one anchor
            float(plan.tempo_pulse.mean()),              # beat pulses
            len(plan.postfx_modulation(0, 1)),           # post-FX it drives
        ])
        assert load_preset(name).postfx, f"{name} sets its own look"
    for a, b in itertools.combinations(BUNDLED, 2):
        rel = np.abs(stats[a] - stats[b]) / (np.abs(stats[a]) + np.abs(stats[b]) + 1e-9)
        assert rel.max() > 0.1, (a, b, stats[a], stats[b])
    # the characters the YAML comments promise
    assert stats["drift"][0] < stats["default"][0] < stats["pulse"][0]
    assert stats["bloom"][0] < stats["default"][0]
    assert stats["drift"][2] == 0 and stats["pulse"][2] > 0
    assert stats["shatter"][1] < stats["drift"][1]  # near one-hot vs blended
    looks = {n: load_preset(n).postfx for n in BUNDLED}
    assert looks["shatter"]["chroma_shift"] > 0 and looks["bloom"]["persistence"] >= 0.5


def test_unknown_name_lists_the_known_presets():
    with pytest.raises(ConfigError) as err:
        load_preset("pluse")
    msg = str(err.value)
    assert "did you mean 'pulse'" in msg
    for name in BUNDLED:
        assert name in msg
    assert err.value.field == "preset"


def test_load_by_path_and_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("description: from a file\nmotion: {speed: 2}\n")
    p = load_preset(path)
    assert p.name == "mine" and p.motion.speed == 2.0
    assert load_preset("mine.yaml", base_dir=tmp_path) == p
    with pytest.raises(ConfigError, match="not found"):
        load_preset(tmp_path / "absent.yaml")


def test_user_presets_are_listed_and_shadow_bundled_ones(project):
    save_preset({"name": "night", "description": "mine"})
    assert "night" in list_presets()
    assert load_preset("night").description == "mine"
    shadow = load_preset("pulse").model_copy(update={"description": "my pulse"})
    save_preset(shadow)
    assert load_preset("pulse").description == "my pulse"
    assert (user_presets_dir() / "pulse.yaml").is_file()


def test_save_refuses_to_overwrite_unless_asked(project):
    p = load_preset("drift").model_copy(update={"name": "drift2"})
    path = save_preset(p)
    assert path == project / "presets" / "drift2.yaml"
    assert load_preset("drift2").model_dump(exclude={"name"}) == p.model_dump(exclude={"name"})
    changed = p.model_copy(update={"description": "changed"})
    with pytest.raises(ConfigError, match=r"overwrite=True"):
        save_preset(changed)
    assert load_preset("drift2").description == p.description  # untouched
    save_preset(changed, overwrite=True)
    assert load_preset("drift2").description == "changed"
    other = save_preset(changed, project / "elsewhere" / "x.yaml")
    assert other.is_file() and not list(other.parent.glob("*.tmp-*"))
    assert save_preset(changed, "renamed").name == "renamed.yaml"


def test_save_validates_first(project):
    with pytest.raises(ConfigError, match=r"motion\.speed"):
        save_preset({"name": "bad", "motion": {"speed": 0}})
    assert not (project / "presets" / "bad.yaml").exists()


def test_merge_layers_deep_merges_dicts_and_replaces_lists():
    base = load_preset("default")
    album = {"motion": {"wander": {"amount": 0.5}}, "postfx": {"vignette": 0.5}}
    track = {"features": [{"source": "rms", "target": "pca:1", "amount": 2.0}]}
    override = {"motion": {"smoothing_alpha": 0.5}}
    merged = merge_preset_layers(base, album, None, track, override)
    assert merged.motion.wander.amount == 0.5
    assert merged.motion.wander.rate_hz == base.motion.wander.rate_hz
    assert merged.motion.smoothing_alpha == 0.5
    assert merged.postfx == {**base.postfx, "vignette": 0.5}
    assert len(merged.features) == 1 and merged.features[0].target == "pca:1"
    assert merged.stem_map == base.stem_map
    # a later layer wins
    assert merge_preset_layers(base, {"tempo_sync": {"amount": 1}},
                               {"tempo_sync": {"amount": 2}}).tempo_sync.amount == 2.0
    # a Preset as a layer contributes only what it set
    layer = Preset(name="x", description="only this")
    assert merge_preset_layers(base, layer).motion == base.motion
    assert deep_merge({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize(
    "layer,field",
    [
        ({"motion": {"smoothing_alpha": 1.5}}, "motion.smoothing_alpha"),
        ({"motion": {"wandr": {}}}, "motion.wandr"),
        ({"stem_map": {"bass": [{"source": "onset", "target": "pca:0", "amount": 1,
                                  "decy_s": 1}]}}, "stem_map.bass[0].decy_s"),
        ({"tempo_sync": {"subdivision": 3}}, "tempo_sync.subdivision"),
        ({"features": [{"source": "loudness", "target": "pca:0", "amount": 1}]}, "features"),
        ({"features": [{"source": "rms", "target": "pca0", "amount": 1}]}, "features[0].target"),
        ({"features": [{"source": "rms", "target": "postfx:blur", "amount": 1}]},
         "features[0].target"),
        ({"stem_map": {"piano": []}}, "stem_map"),
        ({"stem_map": {"drums": [{"source": "rms", "target": "pca:0", "amount": 1}]}},
         "stem_map"),
        ({"sections": {"on_marker": "fade"}}, "sections.on_marker"),
        ({"anchors": {"use": []}}, "anchors.use"),
        ({"name": "../evil"}, "name"),
    ],
)
def test_invalid_layers_name_the_field(layer, field):
    with pytest.raises(ConfigError) as err:
        merge_preset_layers(load_preset("default"), layer)
    assert err.value.field == field, str(err.value)


def test_postfx_overrides_are_checked_against_postfx_params():
    bad = r"grain_intensity: Input should be less than or equal to 1 \(got 7\)"
    with pytest.raises(ConfigError, match=bad) as err:
        preset_from_dict({"name": "x", "postfx": {"grain_intensity": 7}})
    assert err.value.field == "postfx"
    with pytest.raises(ConfigError, match=r"shimmer: unknown key; did you mean 'symmetry'\? known "
                                          r"keys here: fit"):
        preset_from_dict({"name": "x", "postfx": {"shimmer": 1}})


def test_yaml_syntax_errors_give_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nmotion:\n  speed: [1, 2\n  smoothing_alpha: 0.5\n")
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert "line 4" in str(err.value) and str(path) in str(err.value)
    path.write_text("- a list\n- not a preset\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_preset(path)


def test_targets_parse():
    assert parse_target("pca:3") == ("pca", 3)
    assert parse_target("anchor:warm") == ("anchor", "warm")
    assert parse_target("postfx:chroma_shift") == ("postfx", "chroma_shift")
    with pytest.raises(ValueError):
        parse_target("latent:1")


def test_to_yaml_round_trips():
    p = load_preset("shatter")
    assert Preset.model_validate(yaml.safe_load(p.to_yaml())) == p
