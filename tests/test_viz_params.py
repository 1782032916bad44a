"""Visualization parameters: validation, persistence, per-field fallback, reset."""

from __future__ import annotations

import os

import pytest
import yaml

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.viz.params import (
    DynamicsParams,
    LoudnessParams,
    SpectralParams,
    StemWaveformParams,
)
from stratum_kernel.viz.raster import COLORMAPS
from stratum_kernel.viz.registry import KINDS
from stratum_kernel.viz.settings import (
    SettingsWarning,
    VisualizationSettings,
    current_params,
    default_settings,
    settings_path,
    validate_per_field,
)


@pytest.fixture
def settings_file(tmp_path, monkeypatch):
    path = tmp_path / "proj" / "stratum_settings.yaml"
    monkeypatch.setenv("STRATUM_SETTINGS", str(path))
    return path


def test_models_validate_fields():
    p = StemWaveformParams(bass="6B3FA0", gain=1.234)
    assert p.bass == "#6b3fa0" and p.gain == 1.23
    for bad in [dict(smoothing=21), dict(smoothing=-1), dict(opacity=5), dict(opacity=101),
                dict(drums="purple"), dict(gain=0), dict(level="mean"), dict(nope=1)]:
        with pytest.raises(ValueError):
            StemWaveformParams(**bad)
    with pytest.raises(ValueError, match="6 LU"):
        LoudnessParams(floor_lufs=-20, ceiling_lufs=-18)
    with pytest.raises(ValueError, match="loudness_ceiling"):
        DynamicsParams(loudness_floor=-10, loudness_ceiling=-20)
    with pytest.raises(ValueError, match="crest_ceiling"):
        DynamicsParams(crest_floor=15, crest_ceiling=10)
    with pytest.raises(ValueError):
        SpectralParams(colormap="jet")
    assert set(SpectralParams.model_fields["colormap"].annotation.__args__) == set(COLORMAPS)
    p.smoothing = 4  # validate_assignment
    with pytest.raises(ValueError):
        p.smoothing = 40


def test_settings_path_env_and_default(settings_file, monkeypatch):
    assert settings_path() == settings_file.resolve()
    assert default_settings().path == settings_file.resolve()
    monkeypatch.delenv("STRATUM_SETTINGS")
    assert settings_path().name == "stratum_settings.yaml"


def test_defaults_without_file_and_file_created_on_first_save(settings_file):
    s = VisualizationSettings()
    assert s.get("stem_waveform") == StemWaveformParams()
    assert not settings_file.exists() and not s.is_stored("stem_waveform")
    s.set("stem_waveform", {"smoothing": 7, "bass": "#112233"})
    doc = yaml.safe_load(settings_file.read_text())
    assert doc["visualizations"]["stem_waveform"]["smoothing"] == 7
    assert [p.name for p in settings_file.parent.iterdir()] == ["stratum_settings.yaml"]
    again = VisualizationSettings()  # another session reads the same values
    assert again.get("stem_waveform").smoothing == 7
    assert again.get("stem_waveform").bass == "#112233"
    assert again.is_stored("stem_waveform") and not again.is_stored("loudness")


def test_bad_field_falls_back_alone_with_warning(settings_file):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(yaml.safe_dump({
        "render": {"keep": "me"},
        "visualizations": {
            "stem_waveform": {"smoothing": 99, "opacity": 40, "bass": "nope", "vocals": "#010203",
                              "mystery": 1},
            "loudness": {"floor_lufs": -20, "ceiling_lufs": -18, "target_lufs": -16},
            "dynamics": ["not", "a", "mapping"],
            "unknown_view": {},
        },
    }))
    with pytest.warns(SettingsWarning) as record:
        s = VisualizationSettings().load()
    text = "\n".join(str(r.message) for r in record)
    assert "stem_waveform.smoothing" in text and "99" in text and str(settings_file) in text
    assert "stem_waveform.bass" in text and "mystery" in text and "unknown_view" in text
    wf = s.get("stem_waveform")
    assert wf.smoothing == 0 and wf.bass == "#6b3fa0"  # fell back
    assert wf.opacity == 40 and wf.vocals == "#010203"  # kept
    loud = s.get("loudness")
    assert loud.target_lufs == -16  # kept; the cross-field rule dropped one bound only
    assert (loud.floor_lufs, loud.ceiling_lufs).count(-20) + \
        (loud.floor_lufs, loud.ceiling_lufs).count(-18) == 1
    assert s.get("dynamics") == DynamicsParams()
    # saving keeps other sections of the file
    s.set("spectral", {"top_db": 60})
    doc = yaml.safe_load(settings_file.read_text())
    assert doc["render"] == {"keep": "me"} and doc["visualizations"]["spectral"]["top_db"] == 60


@pytest.mark.parametrize("content", ["visualizations: [1, 2", "- a list\n- b", "visualizations: 3"])
def test_unreadable_file_warns_and_uses_defaults(settings_file, content):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(content)
    with pytest.warns(SettingsWarning):
        s = VisualizationSettings().load()
    assert s.get("spectral") == SpectralParams()


def test_reset_and_set_errors(settings_file):
    s = VisualizationSettings()
    s.set("stem_waveform", {"smoothing": 3})
    s.set("dynamics", DynamicsParams(colormap="viridis"))
    s.reset("stem_waveform")
    assert s.get("stem_waveform") == StemWaveformParams()
    doc = yaml.safe_load(settings_file.read_text())
    assert "stem_waveform" not in doc["visualizations"]
    assert doc["visualizations"]["dynamics"]["colormap"] == "viridis"
    s.reset()
    assert "visualizations" not in (yaml.safe_load(settings_file.read_text()) or {})
    with pytest.raises(ConfigError, match="smoothing"):
        s.set("stem_waveform", {"smoothing": 50})
    with pytest.raises(ConfigError, match="kind"):
        s.get("histogram")
    with pytest.raises(ConfigError, match="StemWaveformParams"):
        s.set("stem_waveform", LoudnessParams())


def test_atomic_write_leaves_no_temp_and_replaces(settings_file, monkeypatch):
    s = VisualizationSettings()
    s.set("loudness", {"target_lufs": -16})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        s.set("loudness", {"target_lufs": -9})
    monkeypatch.undo()
    assert yaml.safe_load(settings_file.read_text())["visualizations"]["loudness"][
        "target_lufs"] == -16
    assert sorted(p.name for p in settings_file.parent.iterdir()) == ["stratum_settings.yaml"]


def test_current_params_overrides(settings_file):
    default_settings().set("stem_waveform", {"smoothing": 2})
    p = current_params("stem_waveform", {"opacity": 50})
    assert p.smoothing == 2 and p.opacity == 50
    with pytest.raises(ConfigError, match="opacity"):
        current_params("stem_waveform", {"opacity": 1})


def test_validate_per_field_every_kind():
    for kind, model in ((k, v.params) for k, v in KINDS.items()):
        params, messages = validate_per_field(kind, model().model_dump(mode="json"), source="x")
        assert params == model() and messages == []
    params, messages = validate_per_field("spectral", None, source="x")
    assert params == SpectralParams() and messages == []


def test_in_memory_settings_never_touch_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = VisualizationSettings.in_memory()
    s.set("stem_waveform", {"smoothing": 3})
    assert s.get("stem_waveform").smoothing == 3
    s.reset()
    assert list(tmp_path.iterdir()) == []


def test_fields_valid_only_together_are_kept(settings_file):
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text(yaml.safe_dump({"visualizations": {
        # each value alone breaks the rule with the other's default; together they are fine
        "dynamics": {"loudness_floor": -60, "loudness_ceiling": -40},
    }}))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = VisualizationSettings().load()
    dyn = s.get("dynamics")
    assert (dyn.loudness_floor, dyn.loudness_ceiling) == (-60, -40)


def test_per_field_fallback_to_a_base():
    base = StemWaveformParams(smoothing=4, opacity=60)
    params, messages = validate_per_field(
        "stem_waveform", {"smoothing": 99, "opacity": 35}, source="browser", base=base)
    assert params.smoothing == 4 and params.opacity == 35
    assert "keeping 4" in messages[0]
    loud, messages = validate_per_field(
        "loudness", {"ceiling_lufs": -28.0, "target_lufs": -20.0}, source="x",
        base=LoudnessParams(floor_lufs=-30.0))
    assert loud.ceiling_lufs == 0.0 and loud.target_lufs == -20.0
    assert "breaks a rule" in messages[0] and "keeping 0.0" in messages[0]
