"""render.yaml: typed validation naming each field, overrides from the CLI and notebooks,
per-track preset and post-FX layering, checks against the album, the shipped render.yaml."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from stratum_kernel.audio.album import load_album
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import project_root
from stratum_kernel.render.album_checks import album_problems, validate_against_album
from stratum_kernel.render.config import RenderConfig, load_render_config, parse_resolution
from stratum_kernel.render.overrides import add_override_arguments, overrides_from_cli
from stratum_kernel.render.overrides import apply_overrides as _apply

KNOWN = list(RenderConfig.model_fields)


def apply_overrides(raw, overrides):
    return _apply(raw, overrides, known=KNOWN)


def write(tmp_path: Path, text: str, name: str = "render.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def field_of(overrides: dict, path: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_render_config(path, overrides)
    return err.value


# --- the schema ------------------------------------------------------------------------


def test_defaults_are_valid_and_json_for_meta():
    cfg = load_render_config()
    assert cfg.frame_rate == 24 and cfg.resolution == (1280, 720)
    assert cfg.controller.preset == "default" and cfg.tracks == []
    meta = cfg.to_meta()
    assert json.loads(json.dumps(meta))["resolution"] == [1280, 720]
    assert meta["resolved_paths"]["album_dir"] == str(project_root() / "album")


@pytest.mark.parametrize(
    "overrides,field,words",
    [
        ({"frame_rate": 23}, "frame_rate", "greater than or equal to 24"),
        ({"frame_rate": 121}, "frame_rate", "less than or equal to 120"),
        ({"resolution": "1281x720"}, "resolution", "use 1280 or 1296"),
        ({"resolution": [1280, 1084]}, "resolution", "not divisible by 16"),
        ({"resolution": [1080, 720]}, "resolution", "not divisible by 16"),
        ({"resolution": "big"}, "resolution", "WIDTHxHEIGHT"),
        ({"resolution": [32, 32]}, "resolution", "outside"),
        ({"resolution": [1280.5, 720]}, "resolution", "two integers"),
        ({"audio.sample_rate": 4000}, "audio.sample_rate", "8000"),
        ({"audio.normalization": 3}, "audio.normalization", "-1"),
        ({"controller.smoothing_alpha": 1.0}, "controller.smoothing_alpha", "less than 1"),
        ({"controller.tempo_sync.subdivision": 3}, "controller.tempo_sync.subdivision", "0.5"),
        ({"render.chunk_frames": 0}, "render.chunk_frames", "greater than or equal to 1"),
        ({"render.duration": -1}, "render.duration", "greater than 0"),
        ({"decoder.batch_size": 0}, "decoder.batch_size", "greater than or equal to 1"),
        ({"run_id": "../x"}, "run_id", "safe file name"),
        ({"tracks": [{"id": "a", "trim": {"start": 3, "end": 2}}]}, "tracks[0].trim.end",
         "after trim start"),
        ({"tracks": [{"id": "a"}, {"id": "b", "trim": {"start": -1}}]},
         "tracks[1].trim.start", "greater than or equal to 0"),
        ({"tracks": ["a", "b", "a"]}, "tracks", "repeats tracks[0]"),
        ({"tracks": [{"id": "a/b"}]}, "tracks[0].id", "safe file name"),
    ],
)
def test_each_rule_names_its_field(overrides, field, words):
    err = field_of(overrides)
    assert err.field == field, str(err)
    assert words in str(err)


def test_unknown_preset_lists_the_known_ones():
    err = field_of({"controller.preset": "pluse"})
    assert err.field == "controller.preset"
    msg = str(err)
    assert "did you mean 'pulse'" in msg
    for name in ("default", "pulse", "drift", "shatter", "bloom"):
        assert name in msg
    err = field_of({"tracks": [{"id": "a", "preset": "nope"}]})
    assert err.field == "tracks[0].preset" and "known presets" in str(err)


def test_typo_keys_are_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, "frame_rate: 30\ncontroler:\n  preset: pulse\n")
    err = field_of({}, path)
    assert err.field == "controler" and "did you mean 'controller'" in str(err)
    assert str(path) in str(err)
    path = write(tmp_path, "render:\n  chunk_frame: 10\n")
    err = field_of({}, path)
    assert err.field == "render.chunk_frame" and "did you mean 'chunk_frames'" in str(err)
    path = write(tmp_path, "tracks:\n  - id: a\n    trim: {start: 1, edn: 2}\n")
    err = field_of({}, path)
    assert err.field == "tracks[0].trim.edn" and "did you mean 'end'" in str(err)
    err = field_of({"controler.preset": "pulse"})
    assert err.field == "controler.preset" and "did you mean 'controller'" in str(err)


def test_several_problems_are_reported_together():
    err = field_of({"frame_rate": 10, "resolution": "1281x720"})
    assert err.field == "frame_rate"
    assert "frame_rate" in str(err) and "resolution" in str(err)


def test_resolution_forms():
    assert parse_resolution("1920x1088") == (1920, 1088)
    assert parse_resolution("1920x1080") == (1920, 1080)  # the one standard exception
    assert parse_resolution("640×368") == (640, 368)
    assert parse_resolution([1280, 720]) == (1280, 720)
    assert load_render_config(None, {"resolution": (640, 368)}).resolution == (640, 368)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "frame_rate: 24\nresolution: [1280, 720\naudio:\n  sample_rate: 1\n")
    err = field_of({}, path)
    assert str(path) in str(err) and "line 3" in str(err) and "YAML syntax error" in str(err)
    err = field_of({}, write(tmp_path, "- just\n- a list\n"))
    assert "must be a mapping" in str(err)
    with pytest.raises(ConfigError, match="not found"):
        load_render_config(tmp_path / "absent.yaml")
    assert load_render_config(write(tmp_path, "# nothing yet\n")).frame_rate == 24


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path):
    (tmp_path / "moods").mkdir()
    (tmp_path / "moods" / "mine.yaml").write_text("description: local mood\n")
    path = write(tmp_path, "album_dir: songs\noutput_root: out\ncontroller:\n"
                           "  preset: moods/mine.yaml\n")
    cfg = load_render_config(path)
    assert cfg.album_path == tmp_path / "songs"
    assert cfg.output_path == tmp_path / "out"
    assert cfg.model_path == tmp_path / "models"
    assert cfg.resolve("/abs/x") == Path("/abs/x")
    assert cfg.preset_for("any").description == "local mood"
    assert cfg.source == str(tmp_path / "render.yaml")


# --- overrides -------------------------------------------------------------------------


def test_dotted_overrides_from_a_notebook(tmp_path):
    path = write(tmp_path, "frame_rate: 60\nresolution: [1920, 1088]\ndecoder:\n  batch_size: 32\n"
                           "tracks:\n  - id: a\n    preset: drift\n    trim: {start: 2}\n"
                           "  - id: c\n")
    cfg = load_render_config(path, {
        "frame_rate": 30, "resolution": "1280x720", "controller.preset": "pulse",
        "tracks": ["a", "b"], "render.duration": 10, "decoder.batch_size": 4,
        "render.chunk_frames": 48,
    })
    assert cfg.frame_rate == 30 and cfg.resolution == (1280, 720)
    assert cfg.controller.preset == "pulse"
    assert [t.id for t in cfg.tracks] == ["a", "b"]
    assert cfg.tracks[0].trim.start == 2 and cfg.tracks[0].preset == "drift"  # kept
    assert cfg.render.duration == 10 and cfg.render.chunk_frames == 48
    assert cfg.decoder.batch_size == 4


def test_overrides_into_lists_and_every_track():
    raw = {"tracks": ["a", {"id": "b", "preset": "drift"}]}
    out = apply_overrides(raw, {"tracks.1.seed": 9, "tracks.*.preset": "bloom"})
    assert out["tracks"] == [{"id": "a", "preset": "bloom"},
                             {"id": "b", "preset": "bloom", "seed": 9}]
    assert raw["tracks"][1] == {"id": "b", "preset": "drift"}  # input untouched
    with pytest.raises(ConfigError, match="no list item"):
        apply_overrides(raw, {"tracks.5.seed": 1})
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"frame_rate": 24}, {"frame_rate.x": 1})
    assert apply_overrides({}, {"tracks": "x, y"})["tracks"] == ["x", "y"]


def test_cli_flags_become_overrides(tmp_path):
    parser = argparse.ArgumentParser()
    add_override_arguments(parser)
    parser.add_argument("--resume", action="store_true")  # the render command's own flag
    args = parser.parse_args([
        "--album", "/data/album", "--output-root", "out", "--run-id", "r1", "--preset", "pulse",
        "--fps", "30", "--resolution", "640x368", "--tracks", "a,b", "--duration", "5",
        "--batch-size", "2", "--chunk-frames", "24", "--resume",
    ])
    ov = overrides_from_cli(args)
    assert ov == {
        "album_dir": "/data/album", "output_root": str(Path("out").resolve()), "run_id": "r1",
        "controller.preset": "pulse", "frame_rate": 30.0, "resolution": "640x368",
        "tracks": ["a", "b"], "render.duration": 5.0, "decoder.batch_size": 2,
        "render.chunk_frames": 24, "tracks.*.preset": None,
    }
    path = write(tmp_path, "tracks:\n  - {id: a, preset: drift}\n")
    cfg = load_render_config(path, ov)
    # --preset wins over per-track presets
    assert cfg.preset_name_for("a") == "pulse" and cfg.preset_name_for("b") == "pulse"
    assert cfg.album_path == Path("/data/album") and cfg.run_id == "r1"
    assert overrides_from_cli(parser.parse_args([])) == {}


# --- per-track views -------------------------------------------------------------------


def test_preset_layers_album_then_track(tmp_path):
    path = write(tmp_path, """
controller:
  preset: default
  smoothing_alpha: 0.5
  tempo_sync: {enabled: false}
  preset_overrides: {motion: {wander: {amount: 0.1}}}
tracks:
  - id: a
    preset: pulse
    preset_overrides: {motion: {wander: {amount: 0.4}}, tempo_sync: {amount: 1.0}}
  - id: b
""")
    cfg = load_render_config(path)
    a, b = cfg.preset_for("a"), cfg.preset_for("b")
    assert a.name == "pulse" and b.name == "default"
    assert a.motion.smoothing_alpha == b.motion.smoothing_alpha == 0.5
    assert not a.tempo_sync.enabled and not b.tempo_sync.enabled
    assert a.motion.wander.amount == 0.4 and b.motion.wander.amount == 0.1
    assert a.tempo_sync.amount == 1.0
    assert cfg.preset_for("unlisted").name == "default"
    bad = write(tmp_path, "tracks:\n  - id: a\n    preset_overrides: {motion: {speed: 0}}\n",
                "bad.yaml")
    with pytest.raises(ConfigError) as err:
        load_render_config(bad).preset_for("a")
    assert err.value.field == "motion.speed" and "track 'a'" in str(err.value)


def test_postfx_layers_preset_then_yaml_then_track(tmp_path):
    path = write(tmp_path, """
controller: {preset: bloom}
postfx: {grain_intensity: 0.2, grade: {tint: 0.1}}
tracks:
  - id: a
    postfx: {vignette: 0.9}
  - id: bad
    postfx: {vignette: 9}
""")
    cfg = load_render_config(path)
    fx = cfg.postfx_for("a")
    assert fx.persistence == 0.7 and fx.tone_curve == "soft"  # from bloom
    assert fx.grain_intensity == 0.2 and fx.grade.tint == 0.1  # render.yaml wins
    assert fx.grade.temperature == 0.35  # bloom's grade kept where render.yaml is silent
    assert fx.vignette == 0.9  # the track wins
    with pytest.raises(ConfigError) as err:
        cfg.postfx_for("bad")
    assert err.value.field == "vignette" and "'bad'" in str(err.value)


def test_seeds_per_track():
    cfg = RenderConfig.from_dict({"seed": 3, "controller": {"wander_seed": 8},
                                  "tracks": [{"id": "a", "seed": 5}, "b"]})
    assert cfg.seed_for("a") == 5 and cfg.seed_for("a", "postfx") == 5
    assert cfg.seed_for("b") == 8 and cfg.seed_for("b", "postfx") == 3
    assert RenderConfig.from_dict({"seed": 3}).seed_for("x") == 3


def test_time_span_applies_trim_and_preview_duration():
    cfg = RenderConfig.from_dict({"tracks": [{"id": "a", "trim": {"start": 2, "end": 50}}, "b"]})
    assert cfg.time_span("a", 60.0) == (2.0, 50.0)
    assert cfg.time_span("a", 40.0) == (2.0, 40.0)
    assert cfg.time_span("b", 60.0) == (0.0, 60.0)
    short = load_render_config(None, {"render.duration": 5, "tracks": [
        {"id": "a", "trim": {"start": 2}}]})
    assert short.time_span("a", 60.0) == (2.0, 7.0)
    assert short.time_span("a", 4.0) == (2.0, 4.0)


def test_audio_sample_rate_drives_the_encoder():
    assert RenderConfig.from_dict({"audio": {"sample_rate": 44100}}).encode.audio_sample_rate \
        == 44100
    both = {"audio": {"sample_rate": 44100}, "encode": {"audio_sample_rate": 48000}}
    with pytest.raises(ConfigError, match=r"contradicts audio\.sample_rate 44100") as err:
        RenderConfig.from_dict(both)
    assert err.value.field == "encode"
    alone = RenderConfig.from_dict({"encode": {"audio_sample_rate": 32000}})
    assert alone.encode.audio_sample_rate == 32000


# --- against the album -----------------------------------------------------------------


def test_album_checks_name_the_track_field(make_album):
    album = load_album(make_album(2, duration=2.0))
    ok = RenderConfig.from_dict({"tracks": [{"id": "track1", "trim": {"start": 0.5, "end": 2.0}}]})
    validate_against_album(ok, album)
    assert RenderConfig.from_dict({}).track_ids(album) == ["track1", "track2"]
    assert ok.track_ids(album) == ["track1"]

    past = RenderConfig.from_dict({"tracks": [{"id": "track1", "trim": {"end": 2.5}}]})
    with pytest.raises(ConfigError) as err:
        validate_against_album(past, album)
    assert err.value.field == "tracks[0].trim.end" and "2.000 s" in str(err.value)

    many = RenderConfig.from_dict({"tracks": [
        "track1", {"id": "track2", "trim": {"start": 5}}, "track9",
    ]})
    problems = album_problems(many, album)
    assert [p.field for p in problems] == ["tracks[1].trim.start", "tracks[2].id"]
    assert "album tracks: track1, track2" in problems[1].detail
    with pytest.raises(ConfigError) as err:
        validate_against_album(many, album)
    assert err.value.field == "tracks[1].trim.start"
    assert "tracks[2].id" in str(err.value)
    short = RenderConfig.from_dict({"tracks": [{"id": "track2", "trim": {"start": 1.99}}]})
    (problem,) = album_problems(short, album)
    assert problem.field == "tracks[0].trim" and "less than one frame" in problem.detail


def test_a_src_override_is_read_for_its_duration(make_album):
    root = make_album(1, duration=2.0)
    album = load_album(root)
    missing = RenderConfig.from_dict({"tracks": [{"id": "track1", "src": "nope.wav"}]})
    (problem,) = album_problems(missing, album)
    assert problem.field == "tracks[0].src"
    ok = RenderConfig.from_dict({"tracks": [{"id": "track1", "src": "audio/track1.wav",
                                             "trim": {"end": 1.5}}]})
    assert album_problems(ok, album) == []


# --- the shipped render.yaml ----------------------------------------------------------


def test_shipped_render_yaml_is_valid():
    path = project_root() / "render.yaml"
    cfg = load_render_config(path)
    assert cfg.frame_rate == 24 and cfg.resolution == (1280, 720)
    # CPU by default, the GPU when one really works (the decoder probes and logs it)
    assert cfg.decoder.execution_provider == "auto"
    for tid in [t.id for t in cfg.tracks]:
        cfg.preset_for(tid)
        cfg.postfx_for(tid)
    if not (cfg.album_path / "tracklist.json").is_file():
        pytest.skip("the bundled album's tracklist.json is not there yet")
    album = load_album(cfg.album_path)
    validate_against_album(cfg, album)
    assert set(cfg.track_ids(album)) == set(album.ids)


def test_command_line_paths_are_relative_to_where_the_user_stands(tmp_path, monkeypatch):
    """`--output-root relout` run from another folder used to write into the project (the
    folder of render.yaml); `--preset mine.yaml` likewise. A path in render.yaml stays
    relative to render.yaml."""
    parser = argparse.ArgumentParser()
    add_override_arguments(parser)
    project, here = tmp_path / "project", tmp_path / "here"
    project.mkdir()
    here.mkdir()
    (here / "mine.yaml").write_text("name: mine\n")
    path = write(project, "output_root: from-file\nmodel_dir: models\n")
    monkeypatch.chdir(here)
    cfg = load_render_config(path)
    assert cfg.output_path == project / "from-file"
    ov = overrides_from_cli(parser.parse_args(["--output-root", "relout", "--album", "a",
                                               "--preset", "mine.yaml"]))
    assert ov["output_root"] == str(here / "relout") and ov["album_dir"] == str(here / "a")
    assert ov["controller.preset"] == str(here / "mine.yaml")
    cfg = load_render_config(path, ov)
    assert cfg.output_path == here / "relout" and cfg.album_path == here / "a"
    assert cfg.model_path == project / "models"
    # a preset name is a name, not a path
    assert overrides_from_cli(parser.parse_args(["--preset", "pulse"]))[
        "controller.preset"] == "pulse"
