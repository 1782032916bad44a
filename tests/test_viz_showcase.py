"""The album showcase: every track in one view type under one shared panel."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_kernel.viz.album_data import AlbumViewData, render_track
from stratum_kernel.viz.panel import clear_panels, panel_for
from stratum_kernel.viz.showcase import showcase, track_views


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATUM_SETTINGS", str(tmp_path / "stratum_settings.yaml"))
    clear_panels()
    yield
    clear_panels()


@pytest.fixture
def album_data(make_album):
    root = make_album(3, duration=4.0, sr=8000, stems=True)
    return AlbumViewData(root)


def test_stem_waveform_showcase_shares_one_panel(album_data):
    box = showcase("stem_waveform", album_data, width=200, height=40)
    views = box.children[0].children
    panel = panel_for("stem_waveform")
    assert len(views) == 3 and box.children[1] is panel.widget
    assert panel.n_subscribers == 3
    assert [v.title.split(" (")[0] for v in views] == ["Track 1", "Track 2", "Track 3"]
    # album-relative: every view carries the album's loudest column as reference
    refs = {v.album_reference_q for v in views}
    assert len(refs) == 1 and refs.pop() == max(v.reference_q for v in views)
    panel.update(smoothing=6, album_relative=True)
    assert all(v.params["smoothing"] == 6 and v.params["album_relative"] for v in views)
    before = views[0].album_reference_q
    panel.update(level="rms")
    assert views[0].album_reference_q != before  # recomputed for the new level mode


@pytest.mark.parametrize("kind", ["loudness", "dynamics"])
def test_image_showcase_rerenders_every_track(album_data, kind):
    views = track_views(kind, album_data, width=120, height=30)
    assert len(views) == 3
    first = [v.last.copy() for v in views]
    panel = panel_for(kind)
    change = {"target_lufs": -20.0} if kind == "loudness" else {"colormap": "gray"}
    panel.update(change)
    assert all((v.last != f).any() for v, f in zip(views, first, strict=True))
    if kind == "loudness":
        assert "LUFS" in views[0].caption.value


def test_render_track_headless_uses_saved_params(album_data):
    img = render_track("stem_waveform", album_data, "track2", width=150, height=31)
    assert img.shape == (31, 150, 3)
    panel_for("stem_waveform").update(bass="#00ff00")  # saved: headless renders follow
    img2 = render_track("stem_waveform", album_data, "track2", width=150, height=31)
    assert ((img2 == (0, 255, 0)).all(axis=-1)).any() and not ((img == (0, 255, 0)).all(
        axis=-1)).any()
    rel = render_track("loudness", album_data, "track1",
                       panel_for("loudness").params.model_copy(update={"album_relative": True}),
                       width=100, height=40, playhead=1.0)
    assert rel.shape == (40, 100, 3)
    dyn = render_track("dynamics", album_data, "track3", width=64, height=8)
    assert dyn.shape == (8, 64, 3)
    assert album_data.markers("track1") == (2.0,)
    assert album_data.beats("track1").size == 0  # no analysis asked for
    with pytest.raises(Exception, match="no track"):
        album_data.track("nope")
    with pytest.raises(Exception, match="unknown visualization type"):
        render_track("histogram", album_data, "track1")


@pytest.mark.slow  # librosa: spectrograms and the beat tracker
def test_spectral_showcase_with_beats(make_album):
    data = AlbumViewData(make_album(2, duration=4.0, sr=8000, stems=True), beats=True)
    img = render_track("spectral", data, "track1", width=120, height=48)
    assert img.shape == (48, 120, 3)
    beats = data.beats("track1")
    assert 4 <= len(beats) <= 10  # 120 bpm over 4 s
    views = track_views("spectral", data, width=80, height=24)
    panel_for("spectral").update(kind="chroma", album_relative=True)
    assert views[1].last.shape == (24, 80, 3)
    assert isinstance(data.album_reference("spectral", panel_for("spectral").params, 80),
                      float)
    np.testing.assert_array_equal(views[0].last, render_track(
        "spectral", data, "track1", panel_for("spectral").params, width=80, height=24))


@pytest.mark.slow  # starts a Jupyter kernel
def test_notebook_runs_headless_with_papermill(make_album, tmp_path):
    import papermill as pm

    from stratum_kernel.core.paths import project_root

    album = make_album(2, duration=2.0, sr=8000, stems=True, name="nb-album")
    out = tmp_path / "pngs"
    pm.execute_notebook(
        str(project_root() / "notebooks" / "visualizations.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters={"album_dir": str(album), "kind": "stem_waveform", "width": 90,
                    "height": 20, "export_dir": str(out)},
        kernel_name="stratum", progress_bar=False, cwd=str(tmp_path),
    )
    assert sorted(p.name for p in out.iterdir()) == ["track1-stem_waveform.png",
                                                      "track2-stem_waveform.png"]
