"""The dashboard's widgets, headless (the browser test drives the real page): album and
track pickers, visualizations with their panels, the mixer on the timeline's clock."""

from __future__ import annotations

import pytest

from stratum_kernel.audio.album import load_album
from stratum_kernel.studio.dashboard import Dashboard
from tests.test_studio_preview import (  # noqa: F401 - fixtures
    StudioAnalysis,
    studio_album,
    studio_config,
    write_studio_album,
)


class AnyAlbumAnalysis:
    """StudioAnalysis for whichever album a track id belongs to."""

    def __init__(self, *albums):
        self.by_id = {}
        for a in albums:
            for t in a.tracks:
                self.by_id.setdefault(t.id, StudioAnalysis(a))

    def frame_features(self, track_id, **kw):
        return self.by_id[track_id].frame_features(track_id, **kw)


@pytest.fixture(scope="module")
def dashboard(studio_album, tiny_model_dir, tmp_path_factory):  # noqa: F811
    import os

    from stratum_kernel.viz.panel import clear_panels

    tmp = tmp_path_factory.mktemp("dash")
    saved = os.environ.get("STRATUM_SETTINGS")
    os.environ["STRATUM_SETTINGS"] = str(tmp / "settings.yaml")
    clear_panels()
    other = write_studio_album(tmp / "second", durations=(1.0,), bpms=(140.0,))
    cfg = studio_config(studio_album, tiny_model_dir, tmp / "out")
    album = load_album(studio_album)
    d = Dashboard(cfg, albums=[other], analysis=StudioAnalysis(album),
                  presets_dir=tmp / "presets", width=400)
    d._analysis[str(other.resolve())] = AnyAlbumAnalysis(load_album(other))
    assert d.wait_ready(60)
    yield d
    d.explorer.close()
    clear_panels()
    if saved is None:
        os.environ.pop("STRATUM_SETTINGS", None)
    else:
        os.environ["STRATUM_SETTINGS"] = saved


def test_dashboard_parts_and_links(dashboard):
    d = dashboard
    ex = d.explorer
    assert ex.wait(60) and not ex.errors and "a" in ex.last
    assert d.panel_tabs.titles == ("preset", "stem waveform", "loudness")
    assert d.panel_tabs.children[0] is ex.form.widget
    assert [v.__class__.__name__ for v in d.views] == ["StemWaveformView", "ImageView"]
    assert d.mixer is not None and d.mixer.names == ["drums", "bass", "other", "vocals"]
    assert d.mixer_box.children == (d.mixer,)
    plot, play = ex.timeline.plot, ex.timeline.play
    pairs = {(lk.source[0], lk.source[1], lk.target[0], lk.target[1]) for lk in d.links}
    assert (plot, "seconds", d.mixer, "position") in pairs  # mixer ↔ playhead
    assert (play, "playing", d.mixer, "playing") in pairs  # one play button
    assert (plot, "seconds", d.views[0], "playhead") in pairs  # the waveform's playhead
    ex.timeline.frame = 7
    assert d._clip_source() == ("track1", ex.preset, 7)


def test_switching_track_rebuilds_the_mixer_and_views(dashboard):
    d = dashboard
    first_mixer = d.mixer
    d.explorer.track_pick.value = "track2"
    assert d.explorer.wait(60) and d.wait_ready(60)
    assert d.mixer is not first_mixer and d.mixer.duration == pytest.approx(1.5, abs=0.01)
    assert "track2" in d.views[0].title
    d._track_parts("track1")
    d._track_parts("track2")  # picked before track1's parts were loaded: those are dropped
    assert d.wait_ready(60)
    assert "track2" in d.views[0].title and d.mixer.duration == pytest.approx(1.5, abs=0.01)


def test_a_missing_album_is_reported(dashboard, tmp_path):  # before the switch below
    d = dashboard
    before = d.explorer
    d.set_album(str(tmp_path / "nowhere"))
    assert "cannot open" in d.status.value and "nowhere" in d.status.value
    assert d.explorer is before  # the open album stays usable
    before.timeline.frame = 3
    assert before.wait(60) and before.last["a"].indices == [3]


def test_switching_album(dashboard):
    d = dashboard
    second = d.album_pick.options[1]
    d.album_pick.value = second
    ex = d.explorer
    assert ex.engine.config.album_path == second or str(ex.engine.config.album_path) == second
    assert ex.wait(60) and not ex.errors and d.wait_ready(60)
    assert ex.engine.track_ids() == ["track1"] and ex.timeline.n_frames == 24
    assert d.mixer is not None and d.mixer.duration == pytest.approx(1.0, abs=0.01)
    assert "a" in ex.last
