"""End-to-end rendering at tiny sizes: files, meta.json, determinism, resume, previews.

The album analysis is replaced by a numpy stand-in (librosa's first import costs tens of
seconds); everything else is real: the controller, ONNX Runtime, post-FX and ffmpeg.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.files import load_audio
from stratum_kernel.core.errors import ConfigError, RenderError
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.jobs import RenderContext, frame_at_time, frames_at_times
from stratum_kernel.render.run import render_album
from tests.fixtures_analysis import NumpyAnalysis
from tests.fixtures_audio import album_stems

FPS = 24.0


def write_album(root: Path) -> Path:
    """Two short tracks (2.5 s at 120 bpm, 2.0 s at 98 bpm) with a marker at 1.2 s."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (dur, bpm) in enumerate([(2.5, 120.0), (2.0, 98.0)]):
        mix = sum(album_stems(bpm, dur, 22050, 2, root_hz=110.0 * 2 ** (i / 12)).values())
        sf.write(root / f"audio/track{i + 1}.wav", mix.T, 22050, subtype="FLOAT")
        entries.append({"id": f"track{i + 1}", "src": f"audio/track{i + 1}.wav", "bpm": bpm,
                        "markers": [{"time": 1.2, "label": "drop"}]})
    (root / "tracklist.json").write_text(json.dumps(entries))
    return root


@pytest.fixture(scope="module")
def album_dir(tmp_path_factory) -> Path:
    return write_album(tmp_path_factory.mktemp("album"))


POSTFX = {"persistence": 0.6, "grain_intensity": 0.25, "chroma_shift": 1.0}


def make_config(album_dir, model_dir, out, run_id, **over) -> RenderConfig:
    data = {
        "album_dir": str(album_dir), "model_dir": str(model_dir), "output_root": str(out),
        "run_id": run_id, "frame_rate": FPS, "resolution": [160, 96],
        "controller": {"preset": "pulse"},
        "postfx": dict(POSTFX),
        "render": {"chunk_frames": 20},
        "decoder": {"batch_size": 4, "threads": 1},
        "audio": {"normalization": -16.0},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[section] = value
    return RenderConfig.from_dict(data)


def render(album_dir, model_dir, out, run_id, *, on_chunk=None, resume=False, **over):
    cfg = make_config(album_dir, model_dir, out, run_id, **over)
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    return render_album(cfg, progress=False, resume=resume, on_chunk=on_chunk, context=ctx)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def baseline(album_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("renders")
    return render(album_dir, tiny_model_dir, out, "base", render__keep_frames=True)


def test_run_folder_is_complete(baseline):
    run = baseline.run_dir
    names = {p.name for p in run.iterdir()}
    assert {"track1.mp4", "track2.mp4", "album.mp4", "meta.json", "render.log", "previews",
            "frames"} <= names
    assert not (run / ".work").exists()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["format"] == "stratum-run/2" and meta["run_id"] == "base"
    assert {"numpy", "ffmpeg", "python", "stratum"} <= set(meta["versions"])
    assert meta["versions"]["ffmpeg"].startswith("ffmpeg version")
    assert len(meta["model"]["onnx_sha256"]) == 64
    assert meta["config"]["resolution"] == [160, 96]
    t1, t2 = meta["tracks"]
    assert (t1["frames"], t2["frames"]) == (60, 48)  # round(2.5 × 24), round(2.0 × 24)
    assert meta["album"]["frames"] == 108
    assert [(c["start"], c["stop"]) for c in t1["chunks"]] == [(0, 20), (20, 40), (40, 60)]
    for t in (t1, t2):
        assert len(t["audio"]["sha256"]) == 64 and t["audio"]["duration"] == t["end"]
        assert t["seed"] == meta["seeds"][t["id"]] and t["preset"] == "pulse"
        assert all(len(c["frames_sha256"]) == 64 and len(c["decoded_sha256"]) == 64
                   for c in t["chunks"])
        assert t["film"]["sha256"] == sha(run / t["film"]["file"])
        assert any(p.endswith(".gif") for p in t["previews"])
        assert any("marker01" in p for p in t["previews"])
        for p in t["previews"]:
            assert (run / "previews" / p).stat().st_size > 0
    assert len(list((run / "frames" / "track1").glob("*.png"))) == 60
    assert "track2: chunk 2" in (run / "render.log").read_text()


def test_audio_is_normalised_and_aligned(baseline):
    from stratum_kernel.audio.loudness import integrated_loudness

    y, sr = load_audio(baseline.run_dir / "track1.mp4")
    assert sr == 48000 and y.shape[0] == 2
    assert abs(y.shape[1] / sr - 2.5) < 0.005
    assert integrated_loudness(y, sr) == pytest.approx(-16.0, abs=0.5)


def _pre_encode(run_dir: Path, track: str, frames) -> np.ndarray:
    import cv2

    return np.stack([cv2.imread(str(run_dir / "frames" / track / f"{i:06d}.png"))[..., ::-1]
                     for i in frames])


@pytest.mark.parametrize("time_s", [0.0, 0.49, 0.84, 2.45])
def test_preview_frame_is_the_rendered_frame(baseline, album_dir, tiny_model_dir, time_s):
    cfg = make_config(album_dir, tiny_model_dir, baseline.run_dir.parent, "base")
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    i = int(np.floor(time_s * FPS + 1e-6))
    frame = frame_at_time(ctx, "track1", time_s)
    np.testing.assert_array_equal(frame, _pre_encode(baseline.run_dir, "track1", [i])[0])
    several = frames_at_times(ctx, "track1", [time_s, 1.0])
    np.testing.assert_array_equal(several[0], frame)
    block = frames_at_times(ctx, "track1", frames=(i, min(i + 3, 60)))
    np.testing.assert_array_equal(block[0], frame)


def test_preview_with_another_preset_differs(baseline, album_dir, tiny_model_dir):
    cfg = make_config(album_dir, tiny_model_dir, baseline.run_dir.parent, "base")
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    a = frame_at_time(ctx, "track2", 1.0)
    b = frame_at_time(ctx, "track2", 1.0, preset="drift")
    assert a.shape == b.shape == (96, 160, 3) and not np.array_equal(a, b)
    assert ctx.job("track2", "drift").preset.name == "drift"


@pytest.mark.parametrize(
    ("batch", "chunk", "threads"), [(1, 20, 2), (16, 13, 2), (3, 60, 1)]
)
def test_frames_do_not_depend_on_batch_chunk_or_threads(
    baseline, album_dir, tiny_model_dir, tmp_path, batch, chunk, threads
):
    res = render(album_dir, tiny_model_dir, tmp_path, "alt", decoder__batch_size=batch,
                 decoder__threads=threads, render__chunk_frames=chunk)
    base = {t.id: t for t in baseline.record.tracks}
    for t in res.record.tracks:
        assert t.frames_sha256 == base[t.id].frames_sha256
        if chunk == 20:  # same chunks: same chunk digests and the very same film bytes
            assert [c.frames_sha256 for c in t.chunks] == [
                c.frames_sha256 for c in base[t.id].chunks]
            assert t.film.sha256 == base[t.id].film.sha256
    if chunk == 20:
        assert res.record.album.sha256 == baseline.record.album.sha256


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("where", ["between_chunks", "inside_chunk"])
def test_resume_ends_with_identical_files(baseline, album_dir, tiny_model_dir, tmp_path,
                                          monkeypatch, where):
    from stratum_kernel.render import run as render_mod

    if where == "between_chunks":
        def hook(track, chunk):
            if (track, chunk) == ("track2", 1):
                raise Interrupt("simulated crash after encoding track2 chunk 1")
        kwargs = {"on_chunk": hook}
    else:
        real = render_mod.RenderContext.decode
        calls = {"n": 0}

        def flaky(self, job, start, stop):
            if job.track_id == "track1" and start >= 44:
                raise Interrupt("simulated crash while decoding")
            calls["n"] += 1
            return real(self, job, start, stop)

        monkeypatch.setattr(render_mod.RenderContext, "decode", flaky)
        kwargs = {}
    with pytest.raises(Interrupt):
        render(album_dir, tiny_model_dir, tmp_path, "r", **kwargs)
    run = tmp_path / "r"
    assert (run / ".work").is_dir() and not (run / "meta.json").exists()
    assert not list(run.rglob("*.tmp-*"))  # nothing half-written under a final name
    if where == "between_chunks":  # track1 was finished beside track2's frames, and stays
        state = json.loads((run / ".work" / "track1" / "state.json").read_text())
        assert "done" in state and (run / "track1.mp4").is_file()
    with pytest.raises(RenderError, match="--resume"):
        render(album_dir, tiny_model_dir, tmp_path, "r")
    with pytest.raises(RenderError, match=r"started with other inputs — render\.yaml"):
        render(album_dir, tiny_model_dir, tmp_path, "r", resume=True, frame_rate=30.0)
    monkeypatch.undo()
    done: list = []
    res = render(album_dir, tiny_model_dir, tmp_path, "r", resume=True,
                 on_chunk=lambda t, c: done.append((t, c)))
    if where == "between_chunks":
        assert done == [("track2", 1), ("track2", 2)]  # only the unfinished chunks
    else:
        assert done[0] == ("track1", 2) and len(done) == 4
    for name in ("track1.mp4", "track2.mp4", "album.mp4"):
        assert sha(run / name) == sha(baseline.run_dir / name), name
    assert sorted(p.name for p in (run / "previews").iterdir()) == sorted(
        p.name for p in (baseline.run_dir / "previews").iterdir())
    for p in (run / "previews").iterdir():
        assert sha(p) == sha(baseline.run_dir / "previews" / p.name)
    again = render(album_dir, tiny_model_dir, tmp_path, "r", resume=True)
    assert again.record == res.record  # a finished run resumes to itself


def test_run_folder_rules(baseline, album_dir, tiny_model_dir, tmp_path):
    with pytest.raises(RenderError, match="already holds a finished run"):
        render(album_dir, tiny_model_dir, baseline.run_dir.parent, "base")
    with pytest.raises(RenderError, match="needs the run id"):
        render(album_dir, tiny_model_dir, tmp_path, None, resume=True)
    with pytest.raises(ConfigError, match="run id"):
        make_config(album_dir, tiny_model_dir, tmp_path, "../escape")


def test_duration_cap_and_track_selection(album_dir, tiny_model_dir, tmp_path):
    res = render(album_dir, tiny_model_dir, tmp_path, "short", render__duration=0.5,
                 tracks=["track2"], render__chunk_frames=100)
    assert list(res.tracks) == ["track2"] and res.tracks["track2"].frames == 12
    assert res.record.album.frames == 12


def test_bad_track_and_frame_range(album_dir, tiny_model_dir, tmp_path):
    cfg = make_config(album_dir, tiny_model_dir, tmp_path, "x")
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))
    with pytest.raises(RenderError, match="not in the album"):
        ctx.job("nope")
    job = ctx.job("track1")
    with pytest.raises(RenderError, match="outside"):
        ctx.frames(job, 55, 70)
    assert job.frame_at(-3.0) == 0 and job.frame_at(99.0) == 59
    with pytest.raises(TypeError):
        frame_at_time({"not": "a config"}, "track1", 0.0)


def test_cli_render_and_verify(album_dir, tiny_model_dir, tmp_path, monkeypatch, capsys):
    """The command line end to end, with the analysis stand-in patched in."""
    from stratum_kernel.cli import main
    from stratum_kernel.render import run as render_mod

    real_init = render_mod.RenderContext.__init__

    def init(self, config, **kw):
        real_init(self, config, **kw)
        self._analysis = NumpyAnalysis(self.album)

    monkeypatch.setattr(render_mod.RenderContext, "__init__", init)
    # one rule for relative paths: in a file, relative to the file; on the command line,
    # relative to where the user stands
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    cfg = project / "render.yaml"
    cfg.write_text(f"album_dir: {os.path.relpath(album_dir, project)}\n"
                   f"model_dir: {tiny_model_dir}\n"
                   "resolution: 160x96\npostfx: {grain_intensity: 0.1}\n")
    monkeypatch.chdir(elsewhere)
    code = main(["render", "--config", "../project/render.yaml", "--output-root", "relout",
                 "--run-id", "cli", "--tracks", "track1", "--duration", "0.6",
                 "--batch-size", "3", "--chunk-frames", "5", "--no-progress", "--keep-frames"])
    assert code == 0
    run = elsewhere / "relout" / "cli"
    assert not (project / "relout").exists()
    assert "rendered 1 track(s), 14 frames" in capsys.readouterr().out
    assert len(list((run / "frames" / "track1").glob("*.png"))) == 14
    assert main(["verify", "relout/cli"]) == 0
    shutil.copy(run / "track1.mp4", tmp_path / "keep.mp4")
    data = bytearray((run / "track1.mp4").read_bytes())
    data[-200:] = bytes(200)
    (run / "track1.mp4").write_bytes(bytes(data))
    assert main(["verify", str(run)]) == 1
    assert "MISMATCH" in capsys.readouterr().err


def test_overlays_are_painted_and_chunk_independent(album_dir, tiny_model_dir, tmp_path):
    album = load_album(album_dir)
    plain = make_config(album_dir, tiny_model_dir, tmp_path, "o")
    over = make_config(album_dir, tiny_model_dir, tmp_path, "o",
                       postfx={**POSTFX, "overlays": [{"kind": "loudness", "height": 0.25}]})
    ctx_plain = RenderContext(plain, album=album, analysis=NumpyAnalysis(album))
    ctx = RenderContext(over, album=album, analysis=NumpyAnalysis(album))
    job = ctx.job("track1")
    assert len(job.painters) == 1
    whole = ctx.frames(job, 0, 30)
    parts = np.concatenate([ctx.frames(job, 0, 13), ctx.frames(job, 13, 30)])
    np.testing.assert_array_equal(whole, parts)
    bare = ctx_plain.frames(ctx_plain.job("track1"), 0, 30)
    assert not np.array_equal(whole[:, -20:], bare[:, -20:])  # the strip at the bottom
    np.testing.assert_array_equal(whole[:, :40], bare[:, :40])  # the rest untouched
