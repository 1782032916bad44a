"""Hostile documents: every YAML and JSON file a user hands in is read within bounds.

A 700-byte "billion laughs" YAML (nested aliases) used to take a minute and 3 GB — the error
formatter built the repr() of the whole expanded value — and one more level ran out of
memory; a 100,000-deep JSON list or a 5,000-digit number gave a bare RecursionError or
ValueError naming no file. Each reader now refuses such a document at once with a
ConfigError (or the reader's own error kind) naming the file. A test that regressed would
hang or run out of memory rather than pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from stratum_kernel.core.errors import StratumError
from stratum_kernel.core.schema import MAX_DEPTH, MAX_NODES, parse_json, parse_yaml


def billion_laughs(levels: int = 10, width: int = 9) -> str:
    """``levels`` of aliases, each a list of ``width`` of the one before: width**levels
    strings once expanded, from well under a kilobyte of text."""
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"frame_rate: *a{levels}")
    return "\n".join(lines) + "\n"


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


HOSTILE = {
    "yaml-aliases": billion_laughs(),
    "yaml-deep": "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "yaml-number": "frame_rate: " + "9" * 5000 + "\n",
    "json-deep": deep_json(),
    "json-number": '[{"id": "t", "src": "a.wav", "bpm": ' + "1" * 5000 + "}]",
}
YAML_CASES = ["yaml-aliases", "yaml-deep", "yaml-number"]
JSON_CASES = ["json-deep", "json-number"]


def test_the_bomb_is_small_and_would_be_huge():
    text = billion_laughs()
    assert len(text) < 700 and 9**10 > 3 * 10**9  # 3.5 billion strings once expanded
    with pytest.raises(StratumError, match=rf"more than {MAX_NODES:,} values once its "
                                           r"aliases \(&/\*\) are expanded"):
        parse_yaml(text, "bomb.yaml")


def test_sharing_aliases_within_the_bound_is_fine():
    doc = parse_yaml(billion_laughs(levels=3, width=5), "ok.yaml")
    assert len(doc["frame_rate"]) == 5 and doc["frame_rate"][0][0][0] == "lol"


@pytest.mark.parametrize("case, pattern", [
    ("yaml-deep", rf"nested more than {MAX_DEPTH} levels deep"),
    ("yaml-number", r"a number of 5000 characters \(line 1\)"),
])
def test_yaml_bounds(case, pattern):
    with pytest.raises(StratumError, match=rf"doc.yaml: refused: {pattern}"):
        parse_yaml(HOSTILE[case], "doc.yaml")


@pytest.mark.parametrize("case, pattern", [
    ("json-deep", "refused: nested too deeply"),
    ("json-number", "refused: a number of 5000 characters"),
])
def test_json_bounds(case, pattern):
    with pytest.raises(StratumError, match=rf"doc.json: {pattern}"):
        parse_json(HOSTILE[case], "doc.json")


def test_ordinary_numbers_and_depth_still_read():
    assert parse_json('{"a": [1, -2, 3.5e-3, 1e300]}', "x") == {"a": [1, -2, 0.0035, 1e300]}
    assert parse_yaml("a: -12345678901234567890\nb: .5\n", "x") == {
        "a": -12345678901234567890, "b": 0.5}
    nested = "[" * 40 + "]" * 40
    assert parse_json(nested, "x") and parse_yaml(f"x: {nested}", "x")


def _render_yaml(path: Path) -> None:
    from stratum_kernel.render.config import load_render_config

    load_render_config(path)


def _preset(path: Path) -> None:
    from stratum_kernel.motion.presets import load_preset

    load_preset(path)


def _tracklist(path: Path) -> None:
    from stratum_kernel.audio.album import load_album

    load_album(path.parent)


def _mixer_state(path: Path) -> None:
    from stratum_kernel.audio.mixer import load_mixer_state

    load_mixer_state(path)


def _model_meta(path: Path) -> None:
    from stratum_kernel.picture.model import load_model

    load_model(path.parent)


def _run_record(path: Path) -> None:
    from stratum_kernel.render.record import RunRecord

    RunRecord.load(path)


READERS: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    "render.yaml": ("render.yaml", _render_yaml, YAML_CASES),
    "preset": ("mine.yaml", _preset, YAML_CASES),
    "tracklist": ("tracklist.json", _tracklist, JSON_CASES),
    "mixer state": ("mixer.json", _mixer_state, JSON_CASES),
    "model meta.json": ("meta.json", _model_meta, JSON_CASES),
    "run meta.json": ("meta.json", _run_record, JSON_CASES),
}


@pytest.mark.parametrize("reader, case", [
    (reader, case) for reader, (_, _, cases) in READERS.items() for case in cases])
def test_every_reader_refuses_hostile_documents(tmp_path, reader, case):
    name, load, _ = READERS[reader]
    path = tmp_path / reader.replace(" ", "-") / name
    path.parent.mkdir()
    path.write_text(HOSTILE[case])
    with pytest.raises(StratumError, match=rf"{name}: .*refused"):
        load(path)


def test_the_settings_file_falls_back_to_defaults(tmp_path):
    """The visualization settings file is read leniently: a bomb warns and uses defaults."""
    from stratum_kernel.viz.settings import VisualizationSettings

    path = tmp_path / "settings.yaml"
    path.write_text(billion_laughs())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = VisualizationSettings(path)
        settings.get("loudness")
    assert any("refused" in str(w.message) and "settings.yaml" in str(w.message)
               for w in caught)


def test_a_document_over_the_size_bound(tmp_path, monkeypatch):
    from stratum_kernel.core import schema

    monkeypatch.setattr(schema, "MAX_DOCUMENT_BYTES", 1024)
    path = tmp_path / "render.yaml"
    path.write_text("# padding\n" * 200)
    with pytest.raises(StratumError, match=r"render.yaml: is 0 MB; a render config is at most"):
        _render_yaml(path)


def test_a_byte_order_mark_is_accepted_and_other_encodings_named(tmp_path):
    path = tmp_path / "render.yaml"
    path.write_bytes(b"\xef\xbb\xbfframe_rate: 30\n")
    from stratum_kernel.render.config import load_render_config

    assert load_render_config(path).frame_rate == 30
    path.write_bytes("frame_rate: 30 # é\n".encode("utf-16"))
    with pytest.raises(StratumError, match=r"render.yaml: is not UTF-8 text .*save it as UTF-8"):
        load_render_config(path)
