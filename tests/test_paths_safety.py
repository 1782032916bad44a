"""Paths: no track id, ``src``, preset name, run id or notebook parameter reads or writes
outside the album, ``renders/`` (the output root) and ``cache/`` folders.

Each escape attempt ('../x', absolute paths, symlinks out of the album, names with
separators, run ids with '..', a run folder that is a symlink) ends in a ConfigError or
RenderError naming the field, before anything is read or written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from stratum_kernel.audio.album import load_album
from stratum_kernel.core.errors import ConfigError, RenderError, StratumError
from stratum_kernel.render.album_checks import validate_against_album
from stratum_kernel.render.config import RenderConfig, load_render_config
from tests.fixtures_audio import sine
from tests.test_render import render, write_album


@pytest.fixture
def album_dir(tmp_path) -> Path:
    return write_album(tmp_path / "album")


@pytest.fixture
def outside_wav(tmp_path) -> Path:
    p = tmp_path / "elsewhere" / "secret.wav"
    p.parent.mkdir()
    sf.write(p, sine(440.0, 2.5, 22050, channels=2).T, 22050)
    return p


def _tracklist(album: Path, **changes) -> Path:
    doc = json.loads((album / "tracklist.json").read_text())
    doc[0].update(changes)
    (album / "tracklist.json").write_text(json.dumps(doc))
    return album


@pytest.mark.parametrize("bad", ["../x", "..", "/abs", "a/b", "a\\b", ".hidden", "x" * 200,
                                 "", "a\x00b"])
def test_track_ids_cannot_be_paths(album_dir, bad):
    with pytest.raises(ConfigError, match="id") as info:
        load_album(_tracklist(album_dir, id=bad))
    assert "tracklist.json" in str(info.value)


@pytest.mark.parametrize("bad", ["../x.wav", "../../etc/passwd", "/etc/passwd",
                                 "audio/../../x.wav", "C:\\music\\x.wav", "\\\\server\\x.wav"])
def test_track_src_stays_inside_the_album(album_dir, bad):
    with pytest.raises(ConfigError, match="src") as info:
        load_album(_tracklist(album_dir, src=bad))
    assert "inside the album" in str(info.value)


def test_a_symlink_out_of_the_album_is_refused(album_dir, outside_wav):
    (album_dir / "audio" / "link.wav").symlink_to(outside_wav)
    with pytest.raises(ConfigError, match="src") as info:
        load_album(_tracklist(album_dir, src="audio/link.wav"))
    assert "outside the album folder" in str(info.value)
    (album_dir / "linked").symlink_to(outside_wav.parent, target_is_directory=True)
    with pytest.raises(ConfigError, match="outside the album folder"):
        load_album(_tracklist(album_dir, src="linked/secret.wav"))


def _config(album_dir: Path, model_dir: Path, out: Path, **data) -> RenderConfig:
    base = {"album_dir": str(album_dir), "model_dir": str(model_dir), "output_root": str(out),
            "resolution": [160, 96]}
    return RenderConfig.from_dict({**base, **data})


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_render_yaml_track_src_stays_inside_the_album(album_dir, tiny_model_dir, tmp_path,
                                                      outside_wav, how):
    if how == "absolute":
        src = str(outside_wav)
    elif how == "dotdot":
        src = "../elsewhere/secret.wav"
    else:
        (album_dir / "audio" / "alt.wav").symlink_to(outside_wav)
        src = "audio/alt.wav"
    cfg = _config(album_dir, tiny_model_dir, tmp_path / "out",
                  tracks=[{"id": "track1", "src": src}])
    with pytest.raises(ConfigError, match=r"tracks\[0\]\.src") as info:
        validate_against_album(cfg, load_album(album_dir))
    assert "outside the album folder" in str(info.value)
    inside = _config(album_dir, tiny_model_dir, tmp_path / "out",
                     tracks=[{"id": "track1", "src": "audio/track2.wav"}])
    validate_against_album(inside, load_album(album_dir))  # a file inside is fine


@pytest.mark.parametrize("bad", ["../x", "..", "/tmp/x", "a/b", "a\\..\\b", ".", "~root",
                                 "x/../../y"])
def test_run_ids_cannot_leave_the_output_root(album_dir, tiny_model_dir, tmp_path, bad):
    with pytest.raises(ConfigError, match="run id"):
        _config(album_dir, tiny_model_dir, tmp_path, run_id=bad)
    p = tmp_path / "render.yaml"
    p.write_text(f"album_dir: {album_dir}\nmodel_dir: {tiny_model_dir}\n")
    with pytest.raises(ConfigError, match="run_id"):
        load_render_config(p, {"run_id": bad})


def test_a_run_folder_symlinked_out_is_refused(album_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "renders"
    out.mkdir()
    target = tmp_path / "outside"
    target.mkdir()
    (out / "evil").symlink_to(target, target_is_directory=True)
    with pytest.raises(RenderError, match="outside"):
        render(album_dir, tiny_model_dir, out, "evil")
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "../pulse", "a/b",
                                 "..", "pulse/../../x"])
def test_preset_names_with_separators(album_dir, tiny_model_dir, tmp_path, bad):
    """A preset named in render.yaml is a bundled/user name or a preset *file*; paths that
    are not readable preset files are refused with the field named."""
    with pytest.raises(ConfigError, match="preset"):
        _config(album_dir, tiny_model_dir, tmp_path, controller={"preset": bad})
    with pytest.raises(ConfigError, match="preset"):
        _config(album_dir, tiny_model_dir, tmp_path, tracks=[{"id": "track1", "preset": bad}])


@pytest.mark.parametrize("bad", ["..", "../x", "a\\b", "", "x" * 200])
def test_saved_preset_names_stay_in_the_presets_folder(tmp_path, monkeypatch, bad):
    from stratum_kernel.motion import presets

    monkeypatch.setattr(presets, "user_presets_dir", lambda: tmp_path / "user")
    preset = presets.load_preset("pulse")
    with pytest.raises(StratumError, match="preset name"):
        presets.save_preset(preset, bad)
    with pytest.raises(StratumError, match="name"):
        presets.save_preset({**preset.model_dump(), "name": bad})
    assert not any(tmp_path.rglob("*.yaml"))


@pytest.mark.parametrize(("name", "value"), [("run_id", "../escape"), ("run_id", "/abs"),
                                              ("tracks", "../x"), ("preset", "../../etc/x")])
def test_notebook_parameters_are_validated_like_the_cli(album_dir, tiny_model_dir, tmp_path,
                                                        name, value):
    from stratum_kernel.studio.notebook_params import config_from_parameters

    params = {"config": None, "album_dir": str(album_dir), "model_dir": str(tiny_model_dir),
              "output_root": str(tmp_path / "renders"), name: value}
    with pytest.raises(ConfigError):
        cfg = config_from_parameters(params)
        validate_against_album(cfg, load_album(album_dir))
    assert not (tmp_path / "renders").exists()


def test_verify_reads_only_inside_the_run(tmp_path):
    """A tampered meta.json naming '../' files makes verify look inside the run only."""
    from stratum_kernel.render.verify import verify_run

    run = tmp_path / "renders" / "r"
    run.mkdir(parents=True)
    secret = tmp_path / "renders" / "secret.mp4"
    secret.write_bytes(b"not a film")
    meta = {"format": "stratum-run/2", "run_id": "r",
            "tracks": [{"id": "t", "fps": 24, "frames": 1,
                        "film": {"file": "../secret.mp4", "sha256": "0" * 64, "width": 64,
                                 "height": 64},
                        "previews": ["../../secret.mp4"]}],
            "album": {"file": "../secret.mp4", "sha256": "0" * 64}}
    (run / "meta.json").write_text(json.dumps(meta))
    report = verify_run(run, decode=False)
    text = " ".join(report.problems)
    assert "secret.mp4" in text and "not a film" not in text
    assert all("renders/secret.mp4" not in p for p in report.problems), report.problems
    shutil.rmtree(run)


def test_feature_cache_files_stay_in_the_cache(tmp_path, album_dir):
    from stratum_kernel.analysis.cache import FeatureCache

    cache = FeatureCache(tmp_path / "cache" / "features")
    for track in load_album(album_dir).tracks:
        p = cache.path_for(track.id, "0123456789abcdef")
        assert p.resolve().parent == (tmp_path / "cache" / "features").resolve()
