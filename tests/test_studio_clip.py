"""Preview clips: exact frames through the render's encoder, the film's audio, a background
thread with progress, and the inline video."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_kernel.audio.album import load_album
from stratum_kernel.film.encode import VideoEncoder
from stratum_kernel.film.streams import read_frames, stream_report
from stratum_kernel.studio.clip import ClipPanel, ClipRenderer
from stratum_kernel.studio.preview import PreviewEngine
from tests.test_studio_preview import (  # noqa: F401 - fixtures
    StudioAnalysis,
    studio_album,
    studio_config,
)


@pytest.fixture(scope="module")
def renderer(studio_album, tiny_model_dir, tmp_path_factory):  # noqa: F811
    cfg = studio_config(studio_album, tiny_model_dir, tmp_path_factory.mktemp("out"),
                        audio={"normalization": -18.0})
    album = load_album(studio_album)
    engine = PreviewEngine(cfg, album=album, analysis=StudioAnalysis(album))
    r = ClipRenderer(engine, work_dir=tmp_path_factory.mktemp("clips"))
    yield r
    r.close()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_clip_is_the_exact_frames_with_the_films_audio(renderer, tmp_path):
    engine = renderer.engine
    preset = engine.file_preset("track1")
    stages = []
    clip = renderer.render("track1", preset, 10, 0.5,
                           progress=lambda d, n, s: stages.append((d, n, s)))
    assert (clip.start, clip.stop, clip.n_frames) == (10, 22, 12)
    assert stages[0] == (0, 12, "frames") and stages[-1] == (12, 12, "done")
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip.data)
    rep = stream_report(path)
    assert rep.video_frames == 12
    assert rep.audio_duration == pytest.approx(0.5, abs=0.03)
    decoded = np.concatenate(list(read_frames(path, 96, 64)))
    exact = engine.frames("track1", 10, 22, preset)
    assert decoded.shape == exact.shape
    # x264 is bit-exact: the clip's video is the exact frames through the render's encoder
    with VideoEncoder(tmp_path / "ref.mp4", width=96, height=64, fps=24.0,
                      params=engine.config.encode) as enc:
        enc.write(exact)
    reference = np.concatenate(list(read_frames(tmp_path / "ref.mp4", 96, 64)))
    np.testing.assert_array_equal(decoded, reference)
    assert _psnr(decoded[0], exact[0]) > 20  # and lossy only as H.264 4:2:0 is
    assert not list(renderer.work_dir.glob("track1-10-*"))  # temporary files are gone


def test_clip_near_the_end_is_shifted_back_and_cancel_stops_it(renderer):
    from stratum_kernel.core.errors import RenderError

    preset = renderer.engine.file_preset("track2")
    clip = renderer.render("track2", preset, 35, 1.0)
    assert (clip.start, clip.stop) == (12, 36)  # 1.5 s = 36 frames
    with pytest.raises(RenderError, match="cancelled"):
        renderer.render("track2", preset, 0, 1.0, cancelled=lambda: True)


def test_clip_panel_renders_in_the_background(renderer):
    engine = renderer.engine
    panel = ClipPanel(renderer, lambda: ("track1", engine.file_preset("track1"), 5),
                      seconds=0.5)
    assert panel.video is None  # no empty video in the page before the first clip
    thread = panel.start()
    assert thread is not None and panel.button.disabled
    assert panel.start() is None or not thread.is_alive()  # one clip at a time
    assert panel.wait(60)
    assert panel.error is None and panel.last.n_frames == 12
    assert panel.video.value == panel.last.data and panel.video.format == "mp4"
    assert panel.progress.value == 1.0 and panel.progress.bar_style == "success"
    assert "12 frames" in panel.status.value and not panel.button.disabled
    first = panel.video
    panel.start()
    panel.wait(60)
    assert panel.video is first  # later clips replace the value


def test_clip_panel_shows_errors(renderer):
    panel = ClipPanel(renderer, lambda: ("no-such-track", None, 0))
    panel.start()
    assert panel.wait(30)
    assert panel.error and "no-such-track" in panel.error
    assert panel.progress.bar_style == "danger" and not panel.button.disabled
