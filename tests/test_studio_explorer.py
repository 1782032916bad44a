"""The preset explorer: generated controls, A/B, save/load/reset, and the promise that a
saved preset renders exactly the frames the preview showed."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import yaml
from ipywidgets import Button
from pydantic import BaseModel

from stratum_kernel.audio.album import load_album
from stratum_kernel.core.character import CHARACTER_FIELDS
from stratum_kernel.motion.presets import Preset, load_preset
from stratum_kernel.picture.postfx import PostFXParams
from stratum_kernel.render.run import render_album
from stratum_kernel.studio.explorer import AS_LOADED, PresetExplorer
from stratum_kernel.studio.preset_form import PresetForm, field_bounds, nice_step
from stratum_kernel.studio.preview import PreviewEngine
from stratum_kernel.studio.transport import TimelinePlot, column_peaks, feature_lanes
from tests.test_studio_preview import (  # noqa: F401 - fixtures
    StudioAnalysis,
    studio_album,
    studio_config,
)


@pytest.fixture(scope="module")
def explorer(studio_album, tiny_model_dir, tmp_path_factory):  # noqa: F811
    cfg = studio_config(studio_album, tiny_model_dir, tmp_path_factory.mktemp("out"),
                        tracks=[{"id": "track1"}, {"id": "track2", "preset": "pulse"}])
    album = load_album(studio_album)
    engine = PreviewEngine(cfg, album=album, analysis=StudioAnalysis(album))
    ex = PresetExplorer(engine, presets_dir=tmp_path_factory.mktemp("presets"), strip=2,
                        strip_step=3, lazy_form=False)
    assert ex.wait(60)
    yield ex
    ex.close()


def _leaves(model, prefix=()):
    """(path, field info, annotation) of every scalar field, as the form should show."""
    for name, info in model.model_fields.items():
        ann = info.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        inner = args[0] if typing.get_origin(ann) is typing.Union and len(args) == 1 else ann
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _leaves(inner, (*prefix, name))
        else:
            yield (*prefix, name), info, inner


def test_every_parameter_has_a_control_with_the_models_bounds(explorer):
    form = explorer.form
    preset = explorer.preset
    checked = 0
    leaves = [*_leaves(Preset), *_leaves(PostFXParams, ("postfx",))]
    for i, m in enumerate(preset.features):
        leaves += [(("features", i, n), f, f.annotation) for n, f in type(m).model_fields.items()]
    for path, info, ann in leaves:
        if path in (("features",), ("stem_map",), ("postfx",), ("postfx", "overlays")):
            continue
        if any(path[:n] in form.controls and isinstance(form.controls[path[:n]], Button)
               for n in range(1, len(path))):
            continue  # inside an optional part not added yet (its "add" button stands in)
        if path == ("suits",):  # one 'low, high' box per character measure
            assert all(("suits", m) in form.controls for m in CHARACTER_FIELDS)
            continue
        if typing.get_origin(ann) is tuple:
            n = len(typing.get_args(ann))
            assert all((*path, c) in form.controls for c in range(n)) or path in form.controls
            continue
        assert path in form.controls, path
        control = form.controls[path]
        lo, hi, lo_x, hi_x = field_bounds(info)
        if ann in (int, float) and lo is not None and hi is not None:
            step = 1 if ann is int else nice_step(hi - lo)
            assert control.min <= lo + (step if lo_x else 0) + 1e-9, path
            assert control.min >= lo - 1e-9 or control.min == control.value, path
            assert control.max >= hi - (step if hi_x else 0) - 1e-9, path
            checked += 1
    assert checked >= 25


def test_choices_come_from_the_model(explorer):
    c = explorer.form.controls
    targets = [v for _, v in c[("tempo_sync", "target")].options]
    assert "pca:5" in targets and "pca:6" not in targets  # the tiny model has 6 axes
    assert {"anchor:calm", "postfx:exposure"} <= set(targets)
    assert [v for _, v in c[("tempo_sync", "subdivision")].options][:3] == [0.125, 0.25, 0.5]
    assert c[("sections", "on_marker")].options == ("shift", "cut", "none")
    assert c[("postfx", "pad_color")].value == "#000000"


def test_a_bad_value_is_refused_and_the_last_valid_preset_stays(explorer):
    form = explorer.form
    before = explorer.preset
    assert not form.set_value(("motion", "speed"), 50.0)
    assert "speed" in form.status.value and "less than or equal to 10" in form.error
    assert explorer.preset == before
    assert form.set_value(("motion", "speed"), before.motion.speed)  # later edits still work
    assert form.error is None


def test_a_saved_preset_renders_what_the_preview_showed(explorer, studio_album,  # noqa: F811
                                                        tiny_model_dir, tmp_path):
    """Tune (controller and post-FX), look at a moment, save; a render naming the saved
    file writes, before encoding, exactly the preview's frame and strip frames."""
    ex = explorer
    ex.set_track("track1")
    ex.form.set_value(("motion", "speed"), 1.7)
    ex.form.set_value(("anchors", "temperature"), 0.45)
    ex.form.set_value(("postfx", "exposure"), 0.4)
    ex.form.set_value(("postfx", "grain_intensity"), 0.2)
    ex.form.set_value(("stem_map", "bass", 0, "amount"), 5.0)
    ex.timeline.frame = 31
    assert ex.wait(60) and not ex.errors
    shown = ex.last["a"]
    assert shown.indices == [31] and shown.request.preset == ex.preset
    strip = ex.last["strip"]
    path = ex.save("tuned-test")
    assert path is not None and load_preset(path) == ex.preset.model_copy(
        update={"name": "tuned-test"})

    cfg = studio_config(studio_album, tiny_model_dir, tmp_path, run_id="saved",
                        render={"chunk_frames": 16, "keep_frames": True},
                        tracks=[{"id": "track1", "preset": str(path)}])
    album = load_album(studio_album)
    from stratum_kernel.render.jobs import RenderContext

    ctx = RenderContext(cfg, album=album, analysis=StudioAnalysis(album))
    result = render_album(cfg, progress=False, context=ctx)
    import cv2

    def rendered(i):
        p = result.run_dir / "frames" / "track1" / f"{i:06d}.png"
        return cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1]

    np.testing.assert_array_equal(shown.frames[0], rendered(31))
    for j, frame in zip(strip.indices, strip.frames, strict=True):
        np.testing.assert_array_equal(frame, rendered(j))
    assert result.record.model_dump(mode="json")["tracks"][0]["preset"] == "tuned-test"


def test_save_asks_before_overwriting(explorer):
    ex = explorer
    first = ex.save("keep-me")
    assert first is not None and first.parent == ex.presets_dir
    text = first.read_text()
    ex.form.set_value(("postfx", "contrast"), 1.6)
    assert ex.save("keep-me") is None
    assert ex.confirm_box.layout.display == "flex" and "overwrite" in ex.message.value
    assert first.read_text() == text  # untouched
    ex.cancel_button.click()
    assert ex.confirm_box.layout.display == "none"
    ex.save_name.value = "keep-me"
    ex.overwrite_button.click()
    assert yaml.safe_load(first.read_text())["postfx"]["contrast"] == 1.6
    assert "keep-me" in ex.preset_pick.options
    assert ex.save("../escape") is None and "not a safe file name" in ex.message.value


def test_load_and_reset(explorer):
    ex = explorer
    ex.load("drift")
    assert ex.preset.name == "drift" and ex.form.controls[("postfx", "tone_curve")].value == "soft"
    ex.form.set_value(("postfx", "saturation"), 2.0)
    assert ex.preset.postfx["saturation"] == 2.0
    ex.reset()
    assert ex.preset == load_preset("drift")
    from stratum_kernel.core.errors import ConfigError

    with pytest.raises(ConfigError):
        ex.load("no-such-preset")
    assert "unknown preset" in ex.message.value


def test_ab_compare_shows_two_presets_at_the_same_moment(explorer):
    ex = explorer
    ex.load("bloom")
    ex.compare.value = True
    ex.b_pick.value = "shatter"
    ex.timeline.frame = 12
    assert ex.wait(60) and not ex.errors
    a, b = ex.last["a"], ex.last["b"]
    assert a.indices == b.indices == [12]
    assert a.request.preset.name == "bloom" and b.request.preset.name == "shatter"
    assert not np.array_equal(a.frames[0], b.frames[0])
    assert ex.image_b.value == b.images[0] and "shatter" in ex.label_b.value
    ex.b_pick.value = AS_LOADED
    ex.form.set_value(("postfx", "exposure"), 1.0)
    assert ex.wait(60)
    assert ex.last["b"].request.preset == ex.loaded
    ex.compare.value = False
    assert ex.pane_b.layout.display == "none"


def test_switching_tracks_loads_the_tracks_preset(explorer):
    ex = explorer
    ex.track_pick.value = "track2"
    assert ex.wait(60)
    assert ex.loaded.name == "pulse" and ex.last["a"].request.track_id == "track2"
    assert ex.timeline.n_frames == 36  # 1.5 s at 24 fps
    ex.track_pick.value = "track1"
    assert ex.wait(60) and ex.timeline.n_frames == 48


def test_overridden_fields_are_disabled(studio_album, tiny_model_dir, tmp_path):  # noqa: F811
    cfg = studio_config(studio_album, tiny_model_dir, tmp_path,
                        controller={"preset": "pulse", "smoothing_alpha": 0.5},
                        postfx={"fit": "fit"})
    from stratum_kernel.studio.preview import fields_set_by_config

    form = PresetForm(load_preset("pulse"), anchors=["calm"], n_axes=2,
                      overrides=fields_set_by_config(cfg, "track1"))
    c = form.controls
    assert c[("motion", "smoothing_alpha")].disabled and "controller" in \
        c[("motion", "smoothing_alpha")].tooltip
    assert c[("postfx", "fit")].disabled and not c[("postfx", "exposure")].disabled


def test_mapping_lists_add_and_remove(explorer):
    ex = explorer
    ex.load("default")
    n = len(ex.preset.stem_map.get("vocals", []))
    ex.form._add(("stem_map", "vocals"))
    assert len(ex.preset.stem_map["vocals"]) == n + 1
    assert ("stem_map", "vocals", n, "amount") in ex.form.controls
    ex.form.controls[("stem_map", "vocals", n, "amount")].value = 2.5
    assert ex.preset.stem_map["vocals"][n].amount == 2.5
    ex.form._remove(("stem_map", "vocals"), n)
    assert len(ex.preset.stem_map.get("vocals", [])) == n


def test_optional_fields_toggle_between_none_and_a_value(explorer):
    ex = explorer
    ex.load("pulse")
    path = ("features", 1, "decay_s")
    assert ex.preset.features[1].decay_s is None and ex.form.controls[path].disabled
    box = next(b for b in _boxes(ex.form.widget) if path_in(b, ex.form.controls[path]))
    toggle = box.children[0]
    toggle.value = True
    assert ex.preset.features[1].decay_s is not None
    toggle.value = False
    assert ex.preset.features[1].decay_s is None


def test_a_lazy_form_makes_sections_when_opened():
    got = []
    form = PresetForm(load_preset("pulse"), anchors=["calm", "warm"], n_axes=4, lazy=True,
                      on_change=got.append)
    assert form.controls == {}  # every section closed: nothing made yet
    assert form.set_value(("motion", "speed"), 2.0) and got[-1].motion.speed == 2.0
    form.accordion.selected_index = form.accordion.titles.index("motion")
    assert form.controls[("motion", "speed")].value == 2.0
    assert ("postfx", "exposure") not in form.controls
    form.ensure_all()
    assert ("postfx", "exposure") in form.controls and ("stem_map", "bass", 0, "amount") in \
        form.controls
    form.set_preset(load_preset("drift"))  # a new preset: sections are made again on demand
    assert form.controls[("motion", "speed")].value == load_preset("drift").motion.speed
    assert ("postfx", "exposure") not in form.controls


def _boxes(widget):
    children = getattr(widget, "children", ())
    yield widget
    for c in children:
        yield from _boxes(c)


def path_in(box, control) -> bool:
    return control in getattr(box, "children", ())


def test_feature_lanes_draw_levels_beats_and_markers(explorer):
    ff = explorer.engine.base_job("track1").features
    img = feature_lanes(ff, width=120, lane_height=12)
    lanes = 3 + 4  # rms, onset, centroid + four stems
    assert img.shape == (lanes * 12 + 4, 120, 3) and img.dtype == np.uint8
    marker_x = int(np.floor((ff.markers[0] - ff.start) * ff.fps + 1e-6)) * 120 // ff.n_frames
    assert (img[::2, marker_x] == (0x1F, 0x1F, 0x1F)).all()
    loud = column_peaks(ff.values["rms"], 120)
    assert loud.shape == (120,) and loud.max() == pytest.approx(ff.values["rms"].max())


@pytest.mark.parametrize(("n", "width"), [(10, 4), (4, 10), (7, 7), (1, 5)])
def test_column_peaks_is_the_max_over_each_columns_frames(n, width):
    v = np.random.default_rng(n).random(n).astype(np.float32)
    peaks = column_peaks(v, width)
    for c in range(width):
        a = min(c * n // width, n - 1)
        b = max((c + 1) * n // width, a + 1)
        assert peaks[c] == v[a:b].max()


def test_timeline_plot_keeps_seconds_with_frames():
    plot = TimelinePlot(fps=24.0, offset=1.5, n_frames=100)
    plot.frame = 48
    assert plot.seconds == pytest.approx(3.5)


def test_the_suits_ranges_are_edited_as_text(explorer):
    form = explorer.form
    box = form.controls[("suits", "tempo")]
    box.value = "90, 120"
    assert form.preset.suits["tempo"] == (90.0, 120.0)
    box.value = ", 140"
    assert form.preset.suits["tempo"] == (None, 140.0)
    box.value = ""
    assert "tempo" not in form.preset.suits
    box.value = "fast"
    assert "write &#x27;low, high&#x27;" in form.status.value
    assert "tempo" not in form.preset.suits
    form.controls[("suits", "drums")].value = "0.9, 0.1"  # an empty range is refused
    assert "is empty (low end above high)" in form.status.value
    assert form.preset.suits["drums"] == (0.35, None)  # the last valid range stays
