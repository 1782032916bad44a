"""A run's life: what is checked before its folder exists, what a resume may and may not mix.

Real ONNX Runtime, post-FX and ffmpeg at tiny sizes (the analysis is the numpy stand-in).
The rules (RELIABILITY.md, "Runs"):

- every check that can run before rendering runs before the run folder exists, so a run that
  fails to start leaves nothing and its id stays free; a start that rendered nothing is
  simply started again;
- a resume keeps finished chunks only when the picture's inputs are the same — the content
  of the audio, stems, tracklist and preset files included — and names what changed;
- a change that only touches the sound remakes the audio and the joins, not the frames.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.core.errors import ConfigError, ModelError, RenderError, StratumError
from stratum_kernel.film.encode import AAC_SAMPLE_RATES, ffmpeg_exe
from stratum_kernel.render.config import RenderConfig
from tests.test_render import render, sha, write_album

PRESET = Path(__file__).parents[1] / "stratum_kernel" / "motion" / "presets" / "pulse.yaml"


class Interrupt(Exception):
    pass


def _stop_at(track: str, chunk: int):
    def hook(t, c):
        if (t, c) == (track, chunk):
            raise Interrupt(f"stopped after {t} chunk {c}")
    return hook


@pytest.fixture
def album(tmp_path) -> Path:
    return write_album(tmp_path / "album")


def _interrupted(album, model_dir, out, run_id="r", **over):
    with pytest.raises(Interrupt):
        render(album, model_dir, out, run_id, on_chunk=_stop_at("track2", 1), **over)
    assert (out / run_id / ".work").is_dir()


def test_resume_after_the_audio_changed_is_refused(album, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    _interrupted(album, tiny_model_dir, out)
    path = album / "audio" / "track1.wav"
    y, sr = sf.read(path, dtype="float32")
    sf.write(path, y[::-1].copy(), sr, subtype="FLOAT")  # re-exported: other content
    with pytest.raises(RenderError, match=r"track track1: the audio, the stems or the "
                                          r"tracklist entry"):
        render(album, tiny_model_dir, out, "r", resume=True)


def test_resume_after_the_tracklist_changed_is_refused(album, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    _interrupted(album, tiny_model_dir, out)
    doc = json.loads((album / "tracklist.json").read_text())
    doc[1]["markers"] = [{"time": 0.5, "label": "moved"}]
    (album / "tracklist.json").write_text(json.dumps(doc))
    with pytest.raises(RenderError, match="track track2: the audio, the stems or the "
                                          "tracklist entry") as err:
        render(album, tiny_model_dir, out, "r", resume=True)
    assert "track track1" not in str(err.value)  # only what changed is named


def test_resume_after_the_preset_file_changed_is_refused(album, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    preset = tmp_path / "mine.yaml"
    shutil.copy(PRESET, preset)
    _interrupted(album, tiny_model_dir, out, controller={"preset": str(preset)})
    text = preset.read_text()
    preset.write_text(text.replace("motion:", "motion:\n  speed: 3.5", 1)
                      if "speed:" not in text else
                      "\n".join(("  speed: 3.5" if ln.strip().startswith("speed:") else ln)
                                for ln in text.splitlines()))
    with pytest.raises(RenderError, match="the preset"):
        render(album, tiny_model_dir, out, "r", resume=True,
               controller={"preset": str(preset)})


def test_resume_after_the_picture_code_changed_is_refused(album, tiny_model_dir, tmp_path,
                                                         monkeypatch):
    from stratum_kernel.render import fingerprint

    out = tmp_path / "out"
    _interrupted(album, tiny_model_dir, out)
    monkeypatch.setattr(fingerprint, "picture_code_digest", lambda: "0" * 64)
    with pytest.raises(RenderError, match="stratum's picture code"):
        render(album, tiny_model_dir, out, "r", resume=True)


def test_the_picture_code_digest_covers_motion_and_picture_sources_only(tmp_path):
    from stratum_kernel.render.fingerprint import PICTURE_CODE, code_digest

    for sub in ("motion", "picture/postfx", "render"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "m.py").write_text("x = 1\n")
    first = code_digest(tmp_path, PICTURE_CODE)
    (tmp_path / "render" / "m.py").write_text("x = 2\n")
    (tmp_path / "motion" / "notes.yaml").write_text("not code\n")
    assert code_digest(tmp_path, PICTURE_CODE) == first
    (tmp_path / "picture" / "postfx" / "m.py").write_text("x = 2\n")
    assert code_digest(tmp_path, PICTURE_CODE) != first


def test_resume_after_a_sound_only_change_keeps_every_frame(album, tiny_model_dir, tmp_path):
    """Another loudness target changes the films' sound: the finished chunks are kept, the
    audio and joins are remade, and the result is byte-identical to a fresh render with the
    new target."""
    out = tmp_path / "out"
    _interrupted(album, tiny_model_dir, out, audio={"normalization": -16.0})
    done: list = []
    res = render(album, tiny_model_dir, out, "r", resume=True, audio={"normalization": -20.0},
                 on_chunk=lambda t, c: done.append((t, c)))
    assert done == [("track2", 1), ("track2", 2)]  # no frame rendered twice
    fresh = render(album, tiny_model_dir, tmp_path / "fresh", "f",
                   audio={"normalization": -20.0})
    for name in ("track1.mp4", "track2.mp4", "album.mp4"):
        assert sha(res.run_dir / name) == sha(fresh.run_dir / name), name
    assert res.record.config["audio"]["normalization"] == -20.0


def test_resume_of_an_unknown_run_is_refused(album, tiny_model_dir, tmp_path):
    with pytest.raises(RenderError, match=r"no unfinished run .nope.*without --resume"):
        render(album, tiny_model_dir, tmp_path, "nope", resume=True)
    assert not (tmp_path / "nope").exists()


def _nan_audio(album):
    y, sr = sf.read(album / "audio/track2.wav", dtype="float32")
    y[sr // 2] = np.nan
    sf.write(album / "audio/track2.wav", y, sr, subtype="FLOAT")


def _bad_tracklist(album):
    (album / "tracklist.json").write_text('[{"id": "track1", "src": "audio/missing.wav"}]')


def _broken_model(model_dir):
    onnx = model_dir / "generator.onnx"
    onnx.write_bytes(b"\x08\x07not a model" * 50)
    meta = json.loads((model_dir / "meta.json").read_text())
    import hashlib
    meta["onnx"]["sha256"] = hashlib.sha256(onnx.read_bytes()).hexdigest()
    (model_dir / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("fault, error, pattern", [
    ("tracklist", StratumError, "missing.wav"),
    ("trim", ConfigError, r"tracks\[0\].trim.start"),
    ("preset", ConfigError, r"bad.yaml: field .motion.speed."),
    ("nan", StratumError, r"track2.wav: contains NaN or infinite samples \(the first at "
                          r"0.500 s\)"),
    ("model", ModelError, r"generator.onnx: not a readable ONNX model \(InvalidProtobuf"),
])
def test_a_failed_start_leaves_no_folder_and_frees_its_id(album, tiny_model_dir, tmp_path,
                                                          fault, error, pattern):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    pristine = tmp_path / "pristine"
    shutil.copytree(album, pristine)
    over: dict = {}
    if fault == "tracklist":
        _bad_tracklist(album)
    elif fault == "trim":
        over["tracks"] = [{"id": "track1", "trim": {"start": 9.0}}]
    elif fault == "preset":
        bad = tmp_path / "bad.yaml"
        bad.write_text("motion:\n  speed: fast\n")
        over["controller"] = {"preset": str(bad)}
    elif fault == "nan":
        _nan_audio(album)
    else:
        _broken_model(model)
    out = tmp_path / "out"
    with pytest.raises(error, match=pattern):
        render(album, model, out, "same-id", **over)
    assert not (out / "same-id").exists()
    # fixed: the same id starts (no --resume needed, nothing to clear by hand)
    shutil.rmtree(album)
    shutil.copytree(pristine, album)
    shutil.rmtree(model)
    shutil.copytree(tiny_model_dir, model)
    res = render(album, model, out, "same-id", render__duration=0.3)
    assert (res.run_dir / "meta.json").exists()


def test_a_start_that_rendered_nothing_is_started_again(album, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    # stopped while its first chunk was being written: nothing finished, nothing to keep
    with pytest.raises(Interrupt):
        render(album, tiny_model_dir, out, "r", on_chunk=_stop_at("track1", 0))
    assert (out / "r" / ".work").is_dir()
    with pytest.raises(Interrupt):  # a plain retry starts again (and stops again here)
        render(album, tiny_model_dir, out, "r", on_chunk=_stop_at("track1", 1))
    # that run finished a chunk: a plain retry is refused, naming the way on
    with pytest.raises(RenderError, match="holds an unfinished run; continue it with --resume"):
        render(album, tiny_model_dir, out, "r")
    res = render(album, tiny_model_dir, out, "r", resume=True)
    assert (res.run_dir / "meta.json").exists()


def test_output_root_that_is_a_file(album, tiny_model_dir, tmp_path):
    target = tmp_path / "renders"
    target.write_text("not a folder")
    with pytest.raises(RenderError, match=r"output_root .*renders is a file, not a folder; "
                                          r"choose another --output-root"):
        render(album, tiny_model_dir, target, "r")
    with pytest.raises(RenderError, match=r"output_root .*renders/sub: runs cannot be written "
                                          r"there \(Not a directory\)"):
        render(album, tiny_model_dir, target / "sub", "r")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs file permissions that apply (not root)")
def test_output_root_that_is_read_only(album, tiny_model_dir, tmp_path):
    target = tmp_path / "renders"
    target.mkdir()
    target.chmod(0o555)
    try:
        with pytest.raises(RenderError, match=r"output_root .*renders: runs cannot be written "
                                              r"there \(Permission denied\)"):
            render(album, tiny_model_dir, target, "r")
    finally:
        target.chmod(0o755)


def test_sample_rates_are_checked_against_the_encoder(tmp_path):
    """Every rate the config accepts is one ffmpeg's AAC encoder takes, and the first rate it
    refuses (192 kHz, which passed validation before, then failed the mux after every frame)
    is refused up front."""
    import subprocess

    for rate in (*AAC_SAMPLE_RATES, 192000):
        out = tmp_path / f"{rate}.m4a"
        proc = subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
             f"anullsrc=r={rate}:cl=stereo", "-t", "0.05", "-c:a", "aac", "-ar", str(rate),
             str(out)],
            capture_output=True, text=True)
        accepted = rate in AAC_SAMPLE_RATES
        assert (proc.returncode == 0) == accepted, (rate, proc.stderr)
    with pytest.raises(ConfigError, match=r"audio.sample_rate.*192000 Hz is not a sample rate "
                                          r"AAC can carry"):
        RenderConfig.from_dict({"audio": {"sample_rate": 192000}})
    with pytest.raises(ConfigError, match=r"encode\.audio_sample_rate"):
        RenderConfig.from_dict({"encode": {"audio_sample_rate": 50000}})
