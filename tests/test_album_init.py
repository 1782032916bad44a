"""`stratum init`: tags, key and section estimates, and the files it writes for a folder.

The estimators are checked on signals with known answers (a chord progression in a known
key, a track whose timbre changes at known times); `init` runs the real analysis on a tiny
folder of songs the test writes, with tags in three formats.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.analysis.features import TrackFeatures
from stratum_kernel.analysis.key import MAJOR, MINOR, estimate_key, key_scores
from stratum_kernel.analysis.sections import estimate_sections, novelty
from stratum_kernel.audio.tags import parse_ffmetadata, read_tags, track_number
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.ffmpeg import ffmpeg_exe
from tests.fixtures_audio import album_stems

# ------------------------------------------------------------------ tags


def _tagged(path: Path, seconds: float = 0.3, **tags: str) -> Path:
    meta = [a for k, v in tags.items() for a in ("-metadata", f"{k}={v}")]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=330:duration={seconds}", "-ac", "2", *meta, str(path)],
                   check=True)
    return path


@pytest.mark.parametrize("ext", ["mp3", "flac", "wav", "m4a", "ogg"])
def test_tags_of_every_format(tmp_path, ext):
    path = _tagged(tmp_path / f"t.{ext}", title="Café = Noël; #1", artist="Ann\\B", track="3/12")
    tags = read_tags(path)
    assert tags["title"] == "Café = Noël; #1" and tags["artist"] == "Ann\\B"
    assert track_number(tags) == 3


def test_untagged_and_unreadable_files_have_no_tags(tmp_path):
    sf.write(tmp_path / "plain.wav", np.zeros((100, 1), np.float32), 8000)
    (tmp_path / "junk.mp3").write_bytes(b"not audio at all")
    assert read_tags(tmp_path / "plain.wav") == {} and read_tags(tmp_path / "junk.mp3") == {}
    assert track_number({"track": "x"}) is None and track_number({}) is None


def test_ffmetadata_escapes():
    text = ";FFMETADATA1\ntitle=a\\=b\\;c\\#d\\\\e\nartist=one\\\ntwo\n[STREAM]\ntitle=x\n"
    assert parse_ffmetadata(text) == {"title": "a=b;c#d\\e", "artist": "one\ntwo"}


# ------------------------------------------------------------------ key


def _features_with(chroma: np.ndarray, rms: np.ndarray | None = None,
                   mfcc: np.ndarray | None = None, rate_hop=(22050, 512)) -> TrackFeatures:
    n = chroma.shape[1]
    sr, hop = rate_hop
    rms = np.ones(n, np.float32) if rms is None else rms
    series = {"rms": rms, "chroma": chroma.astype(np.float32),
              "mfcc": (np.zeros((13, n)) if mfcc is None else mfcc).astype(np.float32),
              "onset": np.zeros(n, np.float32), "centroid": np.zeros(n, np.float32),
              "flatness": np.zeros(n, np.float32), "harmonic": rms, "percussive": 0 * rms}
    return TrackFeatures("t", n * hop / sr, sr, hop, series, 120.0, 120.0, np.zeros(0))


@pytest.mark.parametrize("tonic, mode, name", [(9, MINOR, "A minor"), (0, MAJOR, "C major"),
                                               (6, MINOR, "F# minor"), (10, MAJOR, "A# major")])
def test_the_key_profiles_are_recognised(tonic, mode, name):
    profile = np.roll(mode, tonic)
    assert max(key_scores(profile).items(), key=lambda kv: kv[1])[0] == name
    est = estimate_key(_features_with(np.repeat(profile[:, None], 50, axis=1)))
    assert est.name == name and est.correlation == pytest.approx(1.0) and est.confidence > 0.1


def test_a_chord_progression_in_g_major():
    """I–IV–V–I in G (G B D, C E G, D F# A, G B D) as chroma frames: G major, not E minor."""
    chords = [(7, 11, 2), (0, 4, 7), (2, 6, 9), (7, 11, 2)]
    frames = []
    for chord in chords:
        c = np.full(12, 0.05)
        c[list(chord)] = 1.0
        c[chord[0]] = 1.3  # the root sounds loudest
        frames += [c] * 40
    est = estimate_key(_features_with(np.array(frames).T))
    assert est.name == "G major"


def test_no_key_for_silence_or_flat_chroma():
    assert estimate_key(_features_with(np.ones((12, 30)))) is None
    assert estimate_key(_features_with(np.ones((12, 30)), rms=np.zeros(30, np.float32))) is None


# ------------------------------------------------------------------ sections


def test_sections_are_found_where_the_timbre_changes():
    rate = 22050 / 512
    n = round(90 * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(0)
    mfcc = rng.normal(0, 0.05, (13, n))
    chroma = np.full((12, n), 0.1)
    for k, (a, b) in enumerate([(0, 30), (30, 55), (55, 90)]):
        part = (t >= a) & (t < b)
        mfcc[k * 3:(k + 1) * 3, part] += 1.0  # another timbre
        chroma[np.ix_([0, 4, 7] if k != 1 else [2, 5, 9], part)] = 1.0  # another harmony
    found = estimate_sections(_features_with(chroma, mfcc=mfcc))
    assert len(found) == 2 and abs(found[0] - 30) <= 1 and abs(found[1] - 55) <= 1


def test_a_steady_track_has_no_sections_and_novelty_is_local():
    rate = 22050 / 512
    n = round(40 * rate)
    steady = _features_with(np.full((12, n), 0.5), mfcc=np.ones((13, n)))
    assert estimate_sections(steady) == []
    assert novelty(np.zeros((3, 4)), 4).tolist() == [0.0, 0.0, 0.0]  # shorter than the kernel


# ------------------------------------------------------------------ stratum init


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "My Songs"
    root.mkdir()
    for i, (name, ext, bpm) in enumerate([("zz last", "flac", 96.0), ("aa first", "mp3", 124.0)]):
        mix = sum(album_stems(bpm, 2.0, 22050, 2).values())
        wav = root / f"{name}.wav"
        sf.write(wav, mix.T, 22050, subtype="FLOAT")
        out = root / f"{name}.{ext}"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-metadata",
                        f"title=Song {i + 1}", "-metadata", "artist=The Testers", "-metadata",
                        f"track={i + 1}", str(out)], check=True)
        wav.unlink()
    return root


def test_init_writes_a_tracklist_and_a_render_yaml_that_render(folder, capsys):
    from stratum_kernel.audio.album import load_album
    from stratum_kernel.cli import main
    from stratum_kernel.render.config import load_render_config

    assert main(["init", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {folder / 'tracklist.json'}" in out and "make render ALBUM=" in out
    entries = json.loads((folder / "tracklist.json").read_text())
    # in track-number order (the tags), not name order
    assert [e["title"] for e in entries] == ["Song 1", "Song 2"]
    assert [e["src"] for e in entries] == ["zz last.flac", "aa first.mp3"]
    assert all(e["artist"] == "The Testers" for e in entries)
    assert [round(e["bpm"] / 4) * 4 for e in entries] == [96, 124]  # the estimates
    assert all(e["key"].endswith((" major", " minor")) for e in entries)
    album = load_album(folder)
    assert [t.id for t in album.tracks] == ["zz-last", "aa-first"]
    cfg = load_render_config(folder / "render.yaml")
    assert cfg.album_path == folder.resolve() and cfg.controller.preset == "auto"
    assert [t.id for t in cfg.tracks] == ["zz-last", "aa-first"]
    assert cfg.output_path == folder.resolve() / "renders"
    assert cfg.model_path.name == "models" and cfg.model_path.is_absolute()
    text = (folder / "render.yaml").read_text()
    assert "# auto: " in text and "tempo " in text
    # the shipped settings came along
    shipped = load_render_config(Path(__file__).parents[1] / "render.yaml")
    assert (cfg.resolution, cfg.frame_rate, cfg.seed) == (shipped.resolution,
                                                          shipped.frame_rate, shipped.seed)


def test_init_never_overwrites_without_force(folder):
    from stratum_kernel.commands.init import init_album

    (folder / "tracklist.json").write_text("[]")
    before = (folder / "tracklist.json").read_text()
    with pytest.raises(ConfigError, match=r"tracklist.json: already exists \(tracklist.json\); "
                                          r"`stratum init --force` replaces it"):
        init_album(folder, progress=False)
    assert (folder / "tracklist.json").read_text() == before
    assert not (folder / "render.yaml").exists()
    report = init_album(folder, force=True, separate=False, progress=False)
    assert len(report["tracks"]) == 2 and json.loads((folder / "tracklist.json").read_text())


def test_analyze_shows_the_estimates_beside_the_users_values(folder, capsys):
    from stratum_kernel.cli import main

    entries = [{"id": "zz-last", "src": "zz last.flac", "bpm": 96, "key": "C major",
                "markers": [0.5]},
               {"id": "aa-first", "src": "aa first.mp3", "bpm": 62}]
    (folder / "tracklist.json").write_text(json.dumps(entries))
    assert main(["analyze", "--album", str(folder), "--no-separate"]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[1]
    for col in ("bpm", "tempo (est.)", "key", "key (est.)", "markers (est.)", "auto preset"):
        assert col in header
    row = next(ln for ln in table.splitlines() if ln.lstrip().startswith("2  aa-first"))
    assert "double" in row  # 62 listed, ~124 estimated
    assert " 0 (0)" in row or " 0 (" in row
