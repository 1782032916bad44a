"""A user's own album, first try: one command with the shipped settings, presets chosen from
the analysis, progress on the terminal.

The render cases use the numpy analysis stand-in and the tiny model (real ONNX Runtime and
ffmpeg); the `make render` case runs the real thing end to end (papermill, librosa) on a
tiny album the test writes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.analysis.character import describe_track, onset_peaks, sounding
from stratum_kernel.analysis.features import TrackFeatures
from stratum_kernel.audio.album import load_album
from stratum_kernel.core.character import TrackCharacter
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.progress import clock_text, resolve_mode
from stratum_kernel.motion.choice import FALLBACK, choose_preset, preset_fit
from stratum_kernel.motion.presets import list_presets, load_preset
from stratum_kernel.render.config import load_render_config
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.progress import RenderProgress
from stratum_kernel.render.run import render_album
from tests.fixtures_analysis import StudioAnalysis
from tests.fixtures_audio import album_stems

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "render.yaml"


def write_songs(root: Path) -> Path:
    """A bare folder as users have them: odd names, MP3 and WAV mixed, a hidden file."""
    root.mkdir(parents=True, exist_ok=True)
    for name, bpm, ext in [("01 Café Noël", 96.0, ".mp3"), ("B-side (demo)", 124.0, ".wav"),
                           ("späti_3AM!!", 140.0, ".flac")]:
        mix = sum(album_stems(bpm, 1.5, 22050, 2).values())
        sf.write(root / f"{name}{ext}", mix.T, 22050)
    (root / "._B-side (demo).wav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    return root


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    return write_songs(tmp_path_factory.mktemp("own") / "My Album")


# ------------------------------------------------------------------ the track-list rule


def test_the_shipped_config_renders_another_album(songs):
    cfg = load_render_config(SHIPPED, {"album_dir": str(songs)})
    assert cfg.tracks == [] and cfg.controller.preset == "auto"
    assert len(cfg.notes) == 1 and "low-tide-choir" in cfg.notes[0]
    assert str(songs) in cfg.notes[0]
    album = load_album(songs)
    assert [t.id for t in album.tracks] == ["01-cafe-noel", "b-side-demo", "spati-3am"]
    assert cfg.track_ids(album) == ["01-cafe-noel", "b-side-demo", "spati-3am"]
    # the shipped config for its own album keeps its list
    own = load_render_config(SHIPPED, {"album_dir": str(ROOT / "album")})
    assert [t.id for t in own.tracks] == ["low-tide-choir", "sodium-lights", "glass-meridian"]
    assert own.notes == []


def test_a_config_written_for_the_album_keeps_its_typos_errors(songs, tmp_path,
                                                               tiny_model_dir):
    path = tmp_path / "render.yaml"
    path.write_text(f"album_dir: {songs}\nmodel_dir: {tiny_model_dir}\n"
                    "tracks:\n  - {id: b-side-dem, preset: pulse}\n")
    cfg = load_render_config(path)
    with pytest.raises(ConfigError, match=r"tracks\[0\].id.*'b-side-dem' is not in the album; "
                                          r"did you mean 'b-side-demo'\?"):
        RenderContext(cfg).album  # noqa: B018 - the property validates
    # the same file, pointed at the same album from the command line: still its list
    again = load_render_config(path, {"album_dir": str(songs)})
    assert [t.id for t in again.tracks] == ["b-side-dem"]
    # explicit track selection with another album picks that album's tracks
    chosen = load_render_config(SHIPPED, {"album_dir": str(songs), "tracks": ["spati-3am"]})
    assert chosen.track_ids(load_album(songs)) == ["spati-3am"]


def test_the_notebook_parameter_follows_the_same_rule(songs):
    from stratum_kernel.studio.notebook_params import config_from_parameters

    cfg = config_from_parameters({"config": str(SHIPPED), "album_dir": str(songs)})
    assert cfg.tracks == [] and cfg.notes


# ------------------------------------------------------------------ a bare folder renders


def test_a_bare_folder_renders_with_presets_chosen_from_its_analysis(songs, tiny_model_dir,
                                                                     tmp_path):
    cfg = load_render_config(SHIPPED, {
        "album_dir": str(songs), "model_dir": str(tiny_model_dir),
        "output_root": str(tmp_path), "run_id": "own", "resolution": "160x96",
        "render.duration": 0.5})
    album = load_album(songs)
    ctx = RenderContext(cfg, album=album, analysis=StudioAnalysis(album))
    res = render_album(cfg, progress=False, context=ctx)
    meta = json.loads((res.run_dir / "meta.json").read_text())
    assert meta["notes"] == cfg.notes
    names = set(list_presets())
    for t in meta["tracks"]:
        choice = t["preset_choice"]
        assert choice["by"] == "analysis" and choice["name"] == t["preset"] in names
        assert choice["reasons"] and set(choice["fits"]) <= names
        # the record says what the choice was made from
        assert any(r.startswith("tempo ") for r in choice["reasons"])
    assert sorted(p.name for p in res.run_dir.glob("*.mp4")) == [
        "01-cafe-noel.mp4", "album.mp4", "b-side-demo.mp4", "spati-3am.mp4"]


def test_the_choice_is_overridable(songs, tiny_model_dir, tmp_path):
    album = load_album(songs)
    for over, expected in [({"controller.preset": "drift"}, ("drift", "controller.preset")),
                           ({"tracks": [{"id": "b-side-demo", "preset": "shatter"}]},
                            ("shatter", "tracks[b-side-demo].preset"))]:
        cfg = load_render_config(SHIPPED, {"album_dir": str(songs),
                                           "model_dir": str(tiny_model_dir), **over})
        job = RenderContext(cfg, album=album, analysis=StudioAnalysis(album)).job(
            "b-side-demo")
        assert (job.preset.name, job.preset_choice["by"]) == expected


# ------------------------------------------------------------------ the choice itself


def _character(**kw) -> TrackCharacter:
    base = dict(tempo=120.0, onset_rate=3.0, loudness=-14.0, dynamics=10.0,
                brightness=1500.0, percussive=0.2, beat_strength=0.6, vocals=0.2,
                drums=0.3)
    return TrackCharacter(**{**base, **kw})


PRESETS = [load_preset(n) for n in list_presets()]


@pytest.mark.parametrize("kw, expected", [
    (dict(tempo=98, vocals=0.35, brightness=690, onset_rate=3.2), "bloom"),
    (dict(tempo=120, drums=0.48, onset_rate=5.2), "pulse"),
    (dict(tempo=132, onset_rate=5.9, dynamics=14.4), "shatter"),
    (dict(onset_rate=0.6, percussive=0.05, beat_strength=0.1), "drift"),
])
def test_the_choice_for_typical_tracks(kw, expected):
    choice = choose_preset(_character(**kw), PRESETS)
    assert choice.name == expected, choice


#: a wide span of each measure, for characters "in the middle" of a preset's ranges
SPANS = {"tempo": (40, 240), "onset_rate": (0, 12), "loudness": (-40, 0), "dynamics": (0, 30),
         "brightness": (200, 8000), "percussive": (0, 1), "beat_strength": (0, 1),
         "vocals": (0, 1), "drums": (0, 1)}


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.suits], ids=lambda p: p.name)
def test_every_shipped_preset_wins_for_the_music_it_names(preset):
    """Each preset's ranges describe music no other preset fits as well: a track in the
    middle of them (other measures ordinary) chooses it — the looks are all reachable."""
    kw = dict(tempo=105.0, onset_rate=3.0, loudness=-14.0, dynamics=10.0, brightness=1100.0,
              percussive=0.18, beat_strength=0.6, vocals=0.15, drums=0.3)
    for name, (lo, hi) in preset.suits.items():
        low, high = SPANS[name]
        if lo is None:
            kw[name] = hi - (hi - low) * 0.25
        elif hi is None:
            kw[name] = lo + (high - lo) * 0.25
        else:
            kw[name] = (lo + hi) / 2
    assert choose_preset(TrackCharacter(**kw), PRESETS).name == preset.name


def test_the_balanced_default_when_nothing_fits():
    few = [load_preset("pulse"), load_preset("shatter")]
    choice = choose_preset(_character(tempo=70, onset_rate=0.5, drums=0.0, dynamics=5), few)
    assert choice.name == FALLBACK and "no preset fits well" in choice.reasons[0]
    assert choose_preset(_character(), [load_preset("default")]).name == FALLBACK


def test_the_choice_is_stable():
    """Same character, any preset order, any number of calls: the same choice."""
    c = _character(tempo=126, onset_rate=5.6, dynamics=13.0, drums=0.4)  # pulse vs shatter
    first = choose_preset(c, PRESETS)
    for order in (PRESETS[::-1], PRESETS[1:] + PRESETS[:1]):
        again = choose_preset(c, order)
        assert again == first
    assert first.reasons[-1].startswith("next best: ")


def test_fit_falls_off_with_the_distance():
    pulse = load_preset("pulse")
    fits = [preset_fit(_character(tempo=t, drums=0.5, onset_rate=4), pulse)[0]
            for t in (120, 130, 140, 160)]
    assert fits[0] == 1.0 and fits[0] > fits[1] > fits[2] > fits[3] > 0
    fit, lines = preset_fit(_character(drums=None, tempo=120, onset_rate=4), pulse)
    assert fit == 1.0 and not any(ln.startswith("drums") for ln in lines)  # no stems


def test_suits_are_validated():
    from stratum_kernel.motion.presets import preset_from_dict

    with pytest.raises(ConfigError, match=r"suits.tempi: not a character measure; did you "
                                          r"mean 'tempo'\?"):
        preset_from_dict({"name": "x", "suits": {"tempi": [1, 2]}})
    with pytest.raises(ConfigError, match=r"suits.tempo: \[130.0, 120.0\] is empty"):
        preset_from_dict({"name": "x", "suits": {"tempo": [130, 120]}})


# ------------------------------------------------------------------ measuring a track


def _features(series: dict, *, rate_hop=(22050, 512), tempo=120.0, beats=None, stems=None):
    sr, hop = rate_hop
    n = len(series["rms"])
    full = {"rms": series["rms"], "onset": series.get("onset", np.zeros(n, np.float32)),
            "centroid": series.get("centroid", np.full(n, 1000.0, np.float32)),
            "percussive": series.get("percussive", np.zeros(n, np.float32)),
            "harmonic": series["rms"], "flatness": np.zeros(n, np.float32),
            "mfcc": np.zeros((13, n), np.float32), "chroma": np.zeros((12, n), np.float32)}
    return TrackFeatures("t", n * hop / sr, sr, hop, full, tempo, tempo,
                         np.zeros(0) if beats is None else beats, stems or {},
                         "bundled" if stems else "none")


def test_describe_track_measures_what_it_says():
    rate = 22050 / 512
    n = round(60 * rate)
    rms = np.full(n, 0.1, np.float32)
    rms[: round(10 * rate)] = 0.0  # 10 s of silence does not make the track sparse
    onset = np.zeros(n, np.float32)
    beats = np.arange(10.0, 60.0, 0.5)  # 120 bpm
    onset[np.round(beats * rate).astype(int)] = 1.0
    centroid = np.full(n, 2000.0, np.float32)
    perc = rms * np.float32(np.sqrt(0.3))
    stems = {"vocals": {"envelope": np.full(n, 1.0, np.float32)},
             "drums": {"envelope": np.full(n, np.sqrt(3.0), np.float32)}}
    c = describe_track(_features({"rms": rms, "onset": onset, "centroid": centroid,
                                  "percussive": perc}, beats=beats, stems=stems))
    assert c.onset_rate == pytest.approx(2.0, rel=0.03)  # 100 onsets in 50 sounding s
    assert c.loudness == pytest.approx(-20.0, abs=0.01) and c.dynamics == pytest.approx(0)
    assert c.brightness == 2000.0 and c.percussive == pytest.approx(0.3, rel=1e-4)
    assert c.beat_strength > 0.9  # every onset is on a beat
    assert c.vocals == pytest.approx(0.25) and c.drums == pytest.approx(0.75)
    # the same onsets off the beat grid
    off = describe_track(_features({"rms": rms, "onset": onset}, beats=beats + 0.23))
    assert off.beat_strength == 0.0
    silent = describe_track(_features({"rms": np.zeros(100, np.float32)}))
    assert silent.onset_rate == 0 and silent.loudness == -120.0


def test_onset_peaks_and_sounding_frames():
    x = np.zeros(200, np.float32)
    x[[10, 11, 50, 120]] = [0.5, 0.5, 1.0, 0.02]
    assert onset_peaks(x, 43.0).tolist() == [10, 50]  # plateau once, the tiny one is noise
    assert sounding(np.array([0.0, 1e-4, 2e-3, 1.0])).tolist() == [False, False, True, True]


# ------------------------------------------------------------------ progress


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_progress_lines_say_frames_fps_and_eta():
    out, clock = io.StringIO(), Clock()
    p = RenderProgress({"a": 240, "b": 120}, mode="lines", stream=out, every=10, clock=clock)
    p.start_track("a", 0)
    for _ in range(10):  # 24 frames per second for 10 s
        clock.t += 1
        p.advance("a", 24)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("[stratum] track 1/2 a: 240/240 frames (100%) at 24.0 fps, ETA 0:00 · "
                        "album 240/360, ETA 0:05")
    assert len(lines) == 1  # the periodic line and the track's final one are one here
    p.start_track("b", 60)  # resumed: 60 frames done earlier, not counted in the speed
    clock.t += 10
    p.advance("b", 30)
    assert out.getvalue().splitlines()[-1].startswith(
        "[stratum] track 2/2 b: 90/120 frames (75%) at 13.5 fps, ETA 0:02 · album 330/360, "
        "ETA 0:02")


def test_progress_modes():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert resolve_mode(True, Tty()) == "bar" and resolve_mode(True, io.StringIO()) == "lines"
    assert resolve_mode(False) == "off" and resolve_mode("lines", Tty()) == "lines"
    with pytest.raises(ValueError):
        resolve_mode("loud")
    assert [clock_text(s) for s in (7, 242, 3909, float("nan"))] == [
        "0:07", "4:02", "1:05:09", "?"]
    out = Tty()
    bar = RenderProgress({"a": 10}, mode="bar", stream=out)
    bar.advance("a", 4)
    bar.advance("a", 6)
    assert "10/10" in out.getvalue()


@pytest.mark.slow
def test_make_render_shows_progress_and_renders_the_album(tmp_path, tiny_model_dir):
    """`make render ALBUM=…` on a bare folder: the films, and progress lines in the
    captured terminal output (papermill --log-output)."""
    from tests.test_notebooks import ensure_stratum_kernel

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    ensure_stratum_kernel()
    songs = write_songs(tmp_path / "songs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_NB_")}
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / "cache" / "pycache")
    proc = subprocess.run(
        ["make", "-o", ".venv/.stratum-setup", "render", f"ALBUM={songs}",
         f"RENDERS={tmp_path / 'renders'}", "RUN_ID=mine",
         f"PARAMS=-p model_dir {tiny_model_dir} -p resolution 160x96 -p duration 1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    run = tmp_path / "renders" / "mine"
    assert (run / "render_album.ipynb").is_file() and (run / "album.mp4").is_file()
    for i, tid in enumerate(["01-cafe-noel", "b-side-demo", "spati-3am"], 1):
        assert f"[stratum] analysed track {i}/3 {tid}" in out
        assert f"[stratum] track {i}/3 {tid}: 24/24 frames (100%) at " in out
    assert "render.yaml's track list describes the album" in out
    meta = json.loads((run / "meta.json").read_text())
    assert all(t["preset_choice"]["by"] == "analysis" for t in meta["tracks"])
