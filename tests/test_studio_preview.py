"""The preview worker (newest request wins) and the preview engine (exact, cached frames).

The album analysis is a numpy stand-in (librosa's import is slow); the controller, ONNX
Runtime (a tiny generator), post-FX and the render are real.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.album import load_album
from stratum_kernel.motion.presets import load_preset, merge_preset_layers
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.jobs import RenderContext, controller_key
from stratum_kernel.studio.preview import (
    LatestWins,
    PreviewEngine,
    Superseded,
    encode_image,
    fields_set_by_config,
    preview_config,
    scaled_resolution,
    strip_indices,
)
from tests.fixtures_analysis import StudioAnalysis
from tests.fixtures_audio import album_stems

FPS = 24.0


# ------------------------------------------------------------------ shared test helpers


def write_studio_album(root: Path, durations=(2.0, 1.5), bpms=(120.0, 98.0)) -> Path:
    """A tiny album with bundled stems and a marker per track."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (dur, bpm) in enumerate(zip(durations, bpms, strict=True)):
        tid = f"track{i + 1}"
        parts = album_stems(bpm, dur, 22050, 2, root_hz=110.0 * 2 ** (i / 12))
        sf.write(root / f"audio/{tid}.wav", sum(parts.values()).T, 22050, subtype="FLOAT")
        (root / "stems" / tid).mkdir(parents=True, exist_ok=True)
        for stem, y in parts.items():
            sf.write(root / "stems" / tid / f"{stem}.wav", y.T, 22050, subtype="FLOAT")
        entries.append({"id": tid, "src": f"audio/{tid}.wav", "bpm": bpm,
                        "title": f"Track {i + 1}",
                        "markers": [{"time": round(dur / 2, 2), "label": "drop"}]})
    (root / "tracklist.json").write_text(json.dumps(entries))
    return root


def studio_config(album_dir, model_dir, out, **extra) -> RenderConfig:
    data = {"album_dir": str(album_dir), "model_dir": str(model_dir), "output_root": str(out),
            "frame_rate": FPS, "resolution": [96, 64], "controller": {"preset": "bloom"},
            "render": {"chunk_frames": 16}, "decoder": {"batch_size": 4, "threads": 1},
            "audio": {"normalization": None}}
    data.update(extra)
    return RenderConfig.from_dict(data)


@pytest.fixture(scope="module")
def studio_album(tmp_path_factory) -> Path:
    return write_studio_album(tmp_path_factory.mktemp("studio_album"))


@pytest.fixture(scope="module")
def engine(studio_album, tiny_model_dir, tmp_path_factory):
    cfg = studio_config(studio_album, tiny_model_dir, tmp_path_factory.mktemp("out"))
    album = load_album(studio_album)
    return PreviewEngine(cfg, album=album, analysis=StudioAnalysis(album))


# ----------------------------------------------------------------------- the worker


def test_many_requests_collapse_to_the_newest():
    """A slow renderer (40 ms) fed 60 requests in ~60 ms runs only a few, ends with the
    newest, and delivers results in submission order."""
    ran, delivered = [], []

    def slow(request, ticket):
        ran.append(request)
        time.sleep(0.04)
        return request * 10

    worker = LatestWins(slow, on_result=lambda k, s, v: delivered.append((s, v)))
    for i in range(60):
        worker.submit(i)
        time.sleep(0.001)
    assert worker.wait_idle(5)
    stats = worker.stats
    assert stats["submitted"] == 60
    assert ran[-1] == 59 and delivered[-1][1] == 590
    assert len(ran) <= 6, ran
    assert stats["started"] == len(ran) and stats["dropped"] == 60 - len(ran)
    assert [s for s, _ in delivered] == sorted(s for s, _ in delivered)
    worker.close()


def test_superseded_work_stops_between_stages_and_keys_take_turns():
    gate = threading.Event()
    stages = []

    def staged(request, ticket):
        key, value = request
        ticket.publish(("first", value))
        if value == 0:
            gate.wait(2)
        ticket.check()
        stages.append(("second", key, value))

    seen = []
    worker = LatestWins(staged, on_result=lambda k, s, v: seen.append((k, v)))
    worker.submit(("a", 0), key="a")
    time.sleep(0.05)
    worker.submit(("a", 1), key="a")  # supersedes the running one
    worker.submit(("b", 2), key="b")
    gate.set()
    assert worker.wait_idle(5)
    assert ("a", ("first", 0)) in seen  # its first stage was delivered
    assert ("second", "a", 0) not in stages  # its second stage was skipped
    assert ("second", "a", 1) in stages and ("second", "b", 2) in stages
    assert worker.stats["superseded"] == 1
    worker.close()
    with pytest.raises(RuntimeError):
        worker.submit(1)


def test_worker_reports_errors_and_keeps_going():
    errors, results = [], []

    def flaky(request, ticket):
        if request == "bad":
            raise ValueError("boom")
        return request

    worker = LatestWins(flaky, on_result=lambda k, s, v: results.append(v),
                        on_error=lambda k, s, e: errors.append(str(e)))
    worker.submit("bad", key=1)
    worker.wait_idle(5)
    worker.submit("good", key=1)
    worker.wait_idle(5)
    assert errors == ["boom"] and results == ["good"] and worker.stats["errors"] == 1
    assert worker.idle
    worker.close()


def test_ticket_check_raises_when_stale():
    worker = LatestWins(lambda r, t: None)
    from stratum_kernel.studio.preview import Ticket

    first = worker.submit("x", key="k")
    t = Ticket(worker, "k", first)
    t.check()  # the newest: no exception
    worker.submit("y", key="k")
    worker.wait_idle(5)
    with pytest.raises(Superseded):
        t.check()
    worker.close()


# ----------------------------------------------------------------------- the engine


@pytest.mark.parametrize("i", [0, 5, 23, 47])
def test_engine_frames_equal_the_render_context(engine, i):
    """For the configured preset, the engine's frames are RenderContext.frames' (which the
    render test proves equal to the rendered frames), persistence history included."""
    ctx = RenderContext(engine.config, album=engine.album, analysis=engine.ctx.analysis,
                        model=engine.model)
    job = ctx.job("track1")
    expected = ctx.frames(job, i, i + 1)[0]
    base = engine.file_preset("track1")
    np.testing.assert_array_equal(engine.frames("track1", i, i + 1, base)[0], expected)
    np.testing.assert_array_equal(engine.frames("track1", i, i + 1)[0], expected)
    block = engine.frames("track1", max(0, i - 2), i + 1, base)
    np.testing.assert_array_equal(block[-1], expected)


def test_postfx_change_decodes_nothing_and_reuses_the_plan(engine):
    base = engine.file_preset("track2")
    engine.frames("track2", 20, 21, base)
    before = engine.cache_info()
    brighter = merge_preset_layers(base, {"postfx": {"exposure": 0.8}})
    assert controller_key(brighter) == controller_key(base)
    a = engine.frames("track2", 20, 21, base)[0]
    b = engine.frames("track2", 20, 21, brighter)[0]
    after = engine.cache_info()
    assert after["decoded"] == before["decoded"]
    assert after["plans"] == before["plans"]
    assert b.mean() > a.mean()


def test_controller_change_gives_a_draft_then_the_exact_frame(engine):
    base = engine.file_preset("track1")
    engine.frames("track1", 30, 31, base)
    faster = merge_preset_layers(base, {"motion": {"speed": 2.5}})
    assert controller_key(faster) != controller_key(base)
    drafts = []
    exact = engine.frames("track1", 30, 31, faster, on_draft=drafts.append)[0]
    assert len(drafts) == 1 and drafts[0].shape == exact.shape
    ctx = RenderContext(engine.config, album=engine.album, analysis=engine.ctx.analysis,
                        model=engine.model)
    job = ctx.job("track1", faster.model_copy())  # an object: not from the context's cache
    np.testing.assert_array_equal(exact, ctx.frames(job, 30, 31)[0])
    again = []
    engine.frames("track1", 30, 31, faster, on_draft=again.append)
    assert again == []  # everything cached: no draft


def test_frames_outside_the_track_are_refused(engine):
    from stratum_kernel.core.errors import RenderError

    with pytest.raises(RenderError, match="outside track"):
        engine.frames("track1", 40, 60)


def test_frame_at_time_and_stopping_early(engine):
    job = engine.job("track1", engine.file_preset("track1"))
    f = engine.frame("track1", 1.0, engine.file_preset("track1"))
    np.testing.assert_array_equal(f, engine.frames("track1", 24, 25, job=job)[0])

    class Stale:
        def check(self):
            raise Superseded(0)

    fresh = merge_preset_layers(engine.file_preset("track1"), {"anchors": {"wander": 2.0}})
    with pytest.raises(Superseded):
        engine.frames("track1", 10, 11, fresh, ticket=Stale())


def test_layered_preset_matches_the_config(studio_album, tiny_model_dir, tmp_path):
    """render.yaml's controller settings and per-track overrides apply over an edited
    preset exactly as over the preset file."""
    cfg = studio_config(studio_album, tiny_model_dir, tmp_path,
                        controller={"preset": "pulse", "smoothing_alpha": 0.5,
                                    "tempo_sync": {"subdivision": 2.0},
                                    "preset_overrides": {"anchors": {"wander": 1.5}}},
                        tracks=[{"id": "track1", "preset_overrides": {"motion": {"speed": 2}},
                                 "postfx": {"vignette": 0.1}}, {"id": "track2"}],
                        postfx={"fit": "fit"})
    base = load_preset("pulse")
    eff = cfg.preset_for("track1", base)
    assert eff == cfg.preset_for("track1")
    assert eff.motion.smoothing_alpha == 0.5 and eff.motion.speed == 2
    over = fields_set_by_config(cfg, "track1")
    assert {"motion.smoothing_alpha", "tempo_sync.subdivision", "anchors.wander",
            "motion.speed", "postfx.fit", "postfx.vignette"} <= set(over)
    assert "render" in over["motion.speed"] or "track1" in over["motion.speed"]
    assert "motion.speed" not in fields_set_by_config(cfg, "track2")


@pytest.mark.parametrize(("res", "height", "expected"), [
    ((1280, 720), 256, (448, 256)), ((1920, 1080), 256, (448, 256)), ((256, 256), 256,
                                                                      (256, 256)),
    ((1280, 720), 100, (176, 96)),
])
def test_scaled_resolution(res, height, expected):
    out = scaled_resolution(res, height)
    assert out == expected and out[0] % 16 == 0 and out[1] % 16 == 0


def test_preview_config_keeps_paths(engine):
    small = preview_config(engine.config, "64x64")
    assert small.resolution == (64, 64) and small.album_path == engine.config.album_path
    assert engine.config.resolution == (96, 64)


@pytest.mark.parametrize(("i", "n", "count", "step"), [
    (0, 100, 4, 6), (50, 100, 4, 6), (99, 100, 4, 6), (3, 5, 4, 1), (10, 100, 0, 6),
    (0, 1, 4, 6), (7, 100, 3, 10),
])
def test_strip_indices(i, n, count, step):
    idx = strip_indices(i, n, count, step)
    assert i not in idx and idx == sorted(set(idx))
    assert all(0 <= j < n for j in idx)
    assert len(idx) == (min(count, n - 1) if count else 0)
    if n > count * step + 1 and count:
        assert all(abs(j - i) % step == 0 for j in idx)


def test_encode_image_round_trips():
    import cv2

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for fmt in ("bmp", "png"):
        data = encode_image(frame, fmt)
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        np.testing.assert_array_equal(back, frame)
    assert encode_image(frame)[:2] == b"BM"
    assert encode_image(frame, "jpeg")[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="unknown image format"):
        encode_image(frame, "gif")
