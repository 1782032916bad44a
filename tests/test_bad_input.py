"""Bad input sweep (hypothesis): tracklist.json, render.yaml, preset YAML and visualization
settings, each mutated at random from a valid document — a field set to junk (wrong type,
NaN/inf, huge or negative numbers, odd strings, nested containers), a field deleted, an
unknown key added, the whole document replaced.

Every document either loads, or fails with a :class:`StratumError` whose message names the
file and the field that was touched; no TypeError/KeyError/AttributeError/ValueError from
deep inside ever escapes. The visualization settings file is read leniently by design (bad
fields warn and fall back one by one): loading never raises, its warnings name the field,
and ``set()`` with a bad value raises a ConfigError naming the field.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_kernel.core.errors import StratumError
from tests.test_render import write_album

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

ODD_STRINGS = ["", " ", "../x", "../../etc/passwd", "/etc/passwd", "a/b", "..", ".", "\x00",
               "NaN", "1e999", "-inf", "💥", "a" * 300, "C:\\x", "~", "${HOME}", "\n", "0x10",
               "null", "yes"]

junk = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 10**18, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324]),
    st.sampled_from(ODD_STRINGS), st.text(max_size=12),
    st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none()), max_size=3),
    st.dictionaries(st.sampled_from(["a", "id", "x", "time"]),
                    st.one_of(st.integers(-3, 3), st.none(), st.text(max_size=3)), max_size=2),
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a nested document (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw, base: Any) -> tuple[Any, tuple, str]:
    """(document, the path touched, the kind of mutation)."""
    doc = copy.deepcopy(base)
    kind = draw(st.sampled_from(["set", "set", "set", "delete", "unknown", "nest", "whole"]))
    if kind == "whole":
        return draw(st.one_of(junk, st.lists(junk, max_size=2))), (), kind
    paths = _paths(doc)
    path = draw(st.sampled_from(paths))
    parent = _get(doc, path[:-1])
    if kind == "set":
        parent[path[-1]] = draw(junk)
    elif kind == "nest":
        parent[path[-1]] = {"deep": [{"er": draw(junk)}]}
    elif kind == "delete":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:  # an unknown key next to the chosen one
        name = draw(st.sampled_from(["colour", "frame_rte", "zzz", "Seed", "extra_field"]))
        if isinstance(parent, dict):
            parent[name] = draw(junk)
            path = (*path[:-1], name)
        elif isinstance(_get(doc, path), dict):
            _get(doc, path)[name] = draw(junk)
            path = (*path, name)
        else:
            return doc, (), "none"  # no mapping here to add a key to
    return doc, path, kind


def _check(load, doc_path: Path, path: tuple, kind: str) -> None:
    """Load; a failure must be a StratumError naming the file and the touched field."""
    try:
        load()
    except StratumError as err:
        msg = str(err)
        assert doc_path.name in msg, msg
        names = [str(p) for p in path if isinstance(p, str)]
        if kind in ("set", "nest", "unknown") and names:
            assert any(n in msg for n in names), (path, msg)
    except Exception as err:  # pragma: no cover - the failure being looked for
        pytest.fail(f"{type(err).__name__} escaped for {path} ({kind}): {err!r}")


def _dump_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# ---------------------------------------------------------------------------- tracklist


@pytest.fixture(scope="module")
def album_root(tmp_path_factory) -> Path:
    return write_album(tmp_path_factory.mktemp("bad_album"))


TRACKLIST = [
    {"id": "track1", "src": "audio/track1.wav", "title": "One", "artist": "a", "bpm": 120.0,
     "key": "A minor", "markers": [{"time": 1.2, "label": "drop"}, 2.0],
     "sections": [{"name": "intro", "start": 0.0}, {"name": "peak", "start": 1.0}]},
    {"id": "track2", "src": "audio/track2.wav", "bpm": 98.0, "markers": [0.5]},
]


def test_the_base_tracklist_is_valid(album_root):
    from stratum_kernel.audio.album import load_album

    (album_root / "tracklist.json").write_text(json.dumps(TRACKLIST))
    assert load_album(album_root).ids == ("track1", "track2")


@SETTINGS
@given(case=mutated(TRACKLIST))
def test_tracklist_sweep(album_root, case):
    from stratum_kernel.audio.album import load_album

    doc, path, kind = case
    p = album_root / "tracklist.json"
    p.write_text(json.dumps(doc, allow_nan=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(lambda: load_album(album_root), p, path, kind)


# --------------------------------------------------------------------------- render.yaml


@pytest.fixture(scope="module")
def render_base(album_root, tiny_model_dir) -> dict:
    return {
        "output_root": "renders", "run_id": "r1", "album_dir": str(album_root),
        "model_dir": str(tiny_model_dir), "frame_rate": 24, "resolution": [160, 96],
        "seed": 7, "audio": {"sample_rate": 48000, "normalization": -14},
        "controller": {"preset": "pulse", "smoothing_alpha": None,
                       "tempo_sync": {"enabled": None, "subdivision": None},
                       "preset_overrides": {"motion": {"speed": 1.0}}},
        "decoder": {"execution_provider": "auto", "batch_size": 1, "threads": 1},
        "postfx": {"fit": "fill", "grain_intensity": 0.1},
        "encode": {"preset": "veryfast", "audio_bitrate": 192},
        "render": {"chunk_frames": 24, "duration": None, "keep_frames": False},
        "tracks": [{"id": "track1", "preset": "bloom", "trim": {"start": 0.0, "end": 2.0},
                    "postfx": {"vignette": 0.2}}, {"id": "track2"}],
    }


def test_the_base_render_yaml_is_valid(render_base, tmp_path):
    from stratum_kernel.render.config import load_render_config

    p = tmp_path / "render.yaml"
    p.write_text(_dump_yaml(render_base))
    assert load_render_config(p).frame_rate == 24


@SETTINGS
@given(data=st.data())
def test_render_yaml_sweep(render_base, tmp_path_factory, data):
    from stratum_kernel.render.config import load_render_config

    doc, path, kind = data.draw(mutated(render_base))
    p = tmp_path_factory.mktemp("ry") / "render.yaml"
    p.write_text(_dump_yaml(doc))
    _check(lambda: load_render_config(p), p, path, kind)


@SETTINGS
@given(key=st.sampled_from(["frame_rate", "resolution", "tracks", "controller.preset",
                            "run_id", "render.duration", "decoder.batch_size", "seed",
                            "postfx.grain_intensity", "nonsense.key", "audio.sample_rate",
                            "scheduler", "mixer", "shared_storage", "tracks.*.preset",
                            "encode.crf", "controller.tempo_sync"]),
       value=junk)
def test_render_overrides_sweep(render_base, tmp_path_factory, key, value):
    """Command-line / notebook overrides go through the same validation."""
    from stratum_kernel.render.config import load_render_config

    p = tmp_path_factory.mktemp("ro") / "render.yaml"
    p.write_text(_dump_yaml(render_base))
    try:
        load_render_config(p, {key: value})
    except StratumError as err:
        assert key.split(".")[0] in str(err) or key.split(".")[-1] in str(err), str(err)
    except Exception as err:  # pragma: no cover
        pytest.fail(f"{type(err).__name__} escaped for {key}={value!r}: {err!r}")


# ------------------------------------------------------------------------------ presets


@pytest.fixture(scope="module")
def preset_base() -> dict:
    from stratum_kernel.motion.presets import preset_path

    return yaml.safe_load(preset_path("pulse").read_text())


@SETTINGS
@given(data=st.data())
def test_preset_yaml_sweep(preset_base, tmp_path_factory, data):
    from stratum_kernel.motion.presets import load_preset

    doc, path, kind = data.draw(mutated(preset_base))
    p = tmp_path_factory.mktemp("pr") / "mine.yaml"
    p.write_text(_dump_yaml(doc))
    _check(lambda: load_preset(p), p, path, kind)


# ----------------------------------------------------------------- visualization settings


def _viz_base() -> dict:
    from stratum_kernel.viz.registry import KINDS

    return {"visualizations": {k: v.params().model_dump() for k, v in KINDS.items()},
            "other": {"kept": True}}


@SETTINGS
@given(data=st.data())
def test_visualization_settings_sweep(tmp_path_factory, data):
    from stratum_kernel.viz.registry import KINDS
    from stratum_kernel.viz.settings import SettingsWarning, VisualizationSettings

    doc, path, kind = data.draw(mutated(_viz_base()))
    p = tmp_path_factory.mktemp("viz") / "stratum_settings.yaml"
    p.write_text(_dump_yaml(doc))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            s = VisualizationSettings(p).load()
            values = {k: s.get(k) for k in KINDS}
        except Exception as err:  # pragma: no cover
            pytest.fail(f"{type(err).__name__} escaped loading {path} ({kind}): {err!r}")
    for k, v in values.items():  # every view still has complete, valid parameters
        assert isinstance(v, KINDS[k].params)
    texts = [str(w.message) for w in caught if issubclass(w.category, SettingsWarning)]
    for t in texts:
        assert str(p) in t
    if kind in ("set", "nest") and len(path) == 3 and texts:
        assert any(str(path[-1]) in t for t in texts), (path, texts)


@SETTINGS
@given(kind=st.sampled_from(["stem_waveform", "loudness", "dynamics", "spectral"]),
       data=st.data())
def test_visualization_set_sweep(tmp_path_factory, kind, data):
    from stratum_kernel.core.errors import ConfigError
    from stratum_kernel.viz.registry import KINDS
    from stratum_kernel.viz.settings import VisualizationSettings

    field = data.draw(st.sampled_from(sorted(KINDS[kind].params.model_fields)))
    value = data.draw(junk)
    s = VisualizationSettings(tmp_path_factory.mktemp("vs") / "s.yaml")
    before = s.get(kind)
    try:
        s.set(kind, {field: value})
    except ConfigError as err:
        assert field in str(err), str(err)
        assert s.get(kind) == before  # a refused change changes nothing
    except Exception as err:  # pragma: no cover
        pytest.fail(f"{type(err).__name__} escaped for {kind}.{field}={value!r}: {err!r}")


# ------------------------------------------------------------- a run's meta.json (verify)

RUN_META = {
    "format": "stratum-run/2", "run_id": "r",
    "tracks": [{"id": "a", "fps": 24, "frames": 24, "start": 0.0, "end": 1.0,
                "film": {"file": "a.mp4", "sha256": "0" * 64, "width": 64, "height": 64},
                "audio": {"duration": 1.0},
                "chunks": [{"index": 0, "start": 0, "stop": 24, "decoded_sha256": "0" * 64}],
                "previews": ["a-000.png"]}],
    "album": {"file": "album.mp4", "sha256": "0" * 64, "frames": 24},
}


@SETTINGS
@given(data=st.data())
def test_verify_meta_sweep(tmp_path_factory, data):
    """``stratum verify`` on an edited or damaged meta.json: a report or a StratumError."""
    from stratum_kernel.render.verify import verify_run

    doc, path, kind = data.draw(mutated(RUN_META))
    run = tmp_path_factory.mktemp("run")
    (run / "meta.json").write_text(json.dumps(doc, allow_nan=True))
    try:
        report = verify_run(run, decode=False)
    except StratumError as err:
        assert "meta.json" in str(err)
    except Exception as err:  # pragma: no cover
        pytest.fail(f"{type(err).__name__} escaped for {path} ({kind}): {err!r}")
    else:
        assert report.problems  # there are no films: never "all good"
