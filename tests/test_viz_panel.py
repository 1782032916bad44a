"""One parameter panel per view type: registry, fan-out to views, persistence, widgets."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from stratum_kernel.viz.panel import ParamPanel, clear_panels, panel_for
from stratum_kernel.viz.params import StemWaveformParams
from stratum_kernel.viz.settings import VisualizationSettings

NAMES = ("drums", "bass", "other", "vocals")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    path = tmp_path / "stratum_settings.yaml"
    monkeypatch.setenv("STRATUM_SETTINGS", str(path))
    clear_panels()
    yield path
    clear_panels()


@pytest.fixture
def envelope():
    from stratum_kernel.viz.waveform import StemEnvelope

    rng = np.random.default_rng(3)
    stems = {n: (rng.standard_normal((2, 8000)) * 0.1 * (i + 1)).astype(np.float32)
             for i, n in enumerate(NAMES)}
    return StemEnvelope.from_stems(stems, 8000, block_rate=400)


def test_one_panel_per_type(isolated_settings):
    a = panel_for("stem_waveform")
    assert panel_for("stem_waveform") is a
    assert panel_for("loudness") is not a
    other = VisualizationSettings(isolated_settings.parent / "elsewhere.yaml")
    assert panel_for("stem_waveform", other) is not a
    with pytest.raises(Exception, match="unknown visualization type"):
        panel_for("histogram")


def test_update_fans_out_saves_and_refuses_bad_values(isolated_settings):
    panel = panel_for("stem_waveform")
    seen: list[list[int]] = [[], []]
    panel.subscribe(lambda p: seen[0].append(p.smoothing))
    panel.subscribe(lambda p: seen[1].append(p.smoothing))
    assert panel.n_subscribers == 2
    assert panel.update(smoothing=5)
    assert seen == [[0, 5], [0, 5]]
    saved = yaml.safe_load(isolated_settings.read_text())
    assert saved["visualizations"]["stem_waveform"]["smoothing"] == 5
    assert not panel.update(smoothing=25)
    assert "smoothing" in panel.last_error and panel.params.smoothing == 5
    assert panel.update(smoothing=5)  # no change: nobody is called
    assert seen[0] == [0, 5]
    panel.reset()
    assert panel.params == StemWaveformParams() and seen[1][-1] == 0
    cb = panel._subscribers[0]
    panel.unsubscribe(cb)
    assert panel.n_subscribers == 1


def test_panel_widget_controls_drive_the_params(isolated_settings):
    import ipywidgets as w

    panel = ParamPanel("stem_waveform")
    box = panel.widget
    assert isinstance(box, w.VBox) and panel.widget is box
    controls = panel._controls
    assert isinstance(controls["bass"], w.ColorPicker)
    assert isinstance(controls["smoothing"], w.IntSlider) and controls["smoothing"].max == 20
    assert isinstance(controls["opacity"], w.IntSlider) and controls["opacity"].min == 10
    assert isinstance(controls["mirror"], w.Checkbox)
    assert isinstance(controls["level"], w.Dropdown)
    assert isinstance(controls["gain"], w.FloatSlider) and controls["gain"].step == 0.01
    assert controls["smoothing"].continuous_update  # drawn client-side: live while dragging
    controls["opacity"].value = 42
    assert panel.params.opacity == 42
    controls["bass"].value = "#123456"
    assert panel.params.bass == "#123456"
    controls["bass"].value = "red"  # a valid HTML colour, not a hex one
    assert panel.params.bass == "#123456" and controls["bass"].value == "#123456"
    panel.reset()
    assert controls["opacity"].value == 100
    # every kind builds its controls
    for kind in ("loudness", "dynamics", "spectral"):
        other = ParamPanel(kind)
        assert len(other.widget.children) > 4
        sliders = [c for c in other._controls.values() if isinstance(c, w.FloatSlider)]
        assert sliders and not any(c.continuous_update for c in sliders)


def test_stem_view_follows_the_shared_panel(envelope, isolated_settings):
    from stratum_kernel.viz.widgets import StemWaveformView, show

    a = StemWaveformView(envelope, width=80, height=20, title="one")
    b = StemWaveformView(envelope, width=50, height=31, t0=0.2, t1=0.7)
    panel = panel_for("stem_waveform")
    assert a.panel is b.panel is panel and panel.n_subscribers == 2
    assert a.adopt_local  # no file yet: the browser's stored values may be adopted
    assert len(a.levels) == 2 * 4 * 80
    panel.update(smoothing=4, opacity=60)
    assert a.params["smoothing"] == b.params["smoothing"] == 4
    # a change coming from the browser (adopted localStorage values) reaches the panel
    a.params = {**a.params, "gain": 2.5}
    assert panel.params.gain == 2.5 and b.params["gain"] == 2.5
    # level mode change recomputes the columns sent to the browser
    before = a.levels
    panel.update(level="rms")
    assert a.levels != before
    img = b.python_render()
    assert img.shape == (31, 50, 4)
    b.playhead = 0.45
    x = int((0.45 - 0.2) / 0.5 * 50)
    assert (b.python_render()[:, x, :3] == (0xE8, 0x44, 0x2E)).all()
    b.set_range(0.0, 1.0)
    assert b.t1 == 1.0
    box = show([a, b])
    assert box.children[1] is panel.widget
    c = StemWaveformView(envelope, width=10, height=4)
    assert not c.adopt_local  # the file now holds values: they win
    # stale or bad browser values: valid fields are taken, bad ones corrected in the browser
    from stratum_kernel.viz.settings import SettingsWarning

    with pytest.warns(SettingsWarning, match="smoothing"):
        c.params = {**c.params, "smoothing": 99, "opacity": 35, "retired_field": 1}
    assert panel.params.opacity == 35 and panel.params.smoothing == 4  # bad value: kept
    assert c.params["smoothing"] == 4 and "retired_field" not in c.params
    assert a.params["opacity"] == 35


def test_image_view_rerenders_on_change(isolated_settings):
    from stratum_kernel.viz.widgets import ImageView, show

    calls = []

    def render(params):
        calls.append(params.top_db)
        return np.zeros((4, 6, 3), np.uint8)

    view = ImageView("spectral", render, title="track")
    assert calls == [80.0] and bytes(view.image.value).startswith(b"\x89PNG")
    panel_for("spectral").update(top_db=60)
    assert calls == [80.0, 60.0]
    box = show([view])
    assert box.children[1] is panel_for("spectral").widget
