import json
import os
import subprocess
import sys

import pytest

from stratum_kernel import cli
from stratum_kernel.audio.files import load_audio
from stratum_kernel.audio.loudness import loudness_summary
from stratum_kernel.commands.analyze import format_table, tempo_agreement


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("STRATUM_CACHE", str(root))
    return root


@pytest.fixture
def tiny_album(make_album):
    """Two 4-second tracks; the first with bundled stems, the second without."""
    root = make_album(2, duration=4.0, sr=22050, stems=True, bpms=(120.0, 98.0))
    for stem in (root / "stems" / "track2").iterdir():
        stem.unlink()
    (root / "stems" / "track2").rmdir()
    return root


def test_analyze_prints_a_table_and_writes_json(tiny_album, cache_root, tmp_path, capsys):
    out_json = tmp_path / "out" / "summary.json"
    rc = cli.main(["analyze", "--album", str(tiny_album), "--fps", "24", "--json", str(out_json)])
    assert rc == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"album: {(tiny_album / 'tracklist.json').resolve()}"
    assert "frames@24" in lines[1] and "LUFS" in lines[1] and "stems" in lines[1]
    track_lines = [ln for ln in lines if ln.lstrip().startswith(("1 ", "2 "))]
    assert "track1" in track_lines[0] and "bundled" in track_lines[0]
    assert "track2" in track_lines[1] and "separated (dsp)" in track_lines[1]
    assert lines[-1].startswith("total: 2 tracks, 0:08.0, 192 frames at 24 fps")
    # the table's columns line up: every row is as wide as the separator line
    assert len({ln.index("  ") for ln in lines[1:4]}) == 1

    summary = json.loads(out_json.read_text())
    assert [r["id"] for r in summary["tracks"]] == ["track1", "track2"]
    first, second = summary["tracks"]
    assert first["frames"] == 96 and first["duration_s"] == 4.0
    assert (first["sample_rate"], first["channels"], first["bpm"]) == (22050, 2, 120.0)
    assert first["stems"] == "bundled" and second["stems"] == "dsp"
    assert isinstance(first["tempo_estimate"], float) and first["tempo_estimate"] > 0
    # loudness is BS.1770 of the very file
    y, sr = load_audio(first["file"])
    ref = loudness_summary(y, sr)
    assert first["integrated_lufs"] == pytest.approx(ref.integrated, abs=0.01)
    assert first["true_peak_dbtp"] == pytest.approx(ref.true_peak, abs=0.01)
    assert summary["total"]["frames"] == 192
    assert summary["total"]["integrated_lufs"] is not None
    # features went to the cache named by STRATUM_CACHE
    assert list((cache_root / "features").glob("track1-*.npz"))


def test_no_separate_and_json_on_stdout(tiny_album, cache_root, capsys):
    rc = cli.main(["analyze", "--album", str(tiny_album), "--no-separate", "--json", "-"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)  # only JSON: no table on stdout
    assert [r["stems"] for r in summary["tracks"]] == ["bundled", "none"]
    assert summary["tracks"][1]["stems_label"] == "none"


def test_plain_folder_album(tmp_path, make_album, cache_root, capsys):
    root = make_album(1, duration=3.0, tracklist=False, name="mine")
    assert cli.main(["analyze", "--album", str(root), "--no-separate", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "no tracklist.json: files in name order" in out
    assert "01-track1" in out
    assert not (cache_root / "features").exists()


def test_broken_album_exits_non_zero_without_traceback(make_album, tmp_path):
    root = make_album(2, overrides={1: {"bpm": 500}})
    env = {**os.environ, "STRATUM_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "stratum_kernel", "analyze", "--album", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert "stratum: error:" in proc.stderr
    assert "tracklist.json" in proc.stderr and "field 'bpm'" in proc.stderr
    assert "(got 500)" in proc.stderr


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate", "track1.wav: truncated"),
        ("delete", "track1.wav: audio file not found"),
        ("json", "invalid JSON at line 1"),
    ],
)
def test_damaged_albums_name_the_problem(make_album, cache_root, capsys, damage, expected):
    root = make_album(1)
    wav = root / "audio" / "track1.wav"
    if damage == "truncate":
        wav.write_bytes(wav.read_bytes()[:3000])
    elif damage == "delete":
        wav.unlink()
    else:
        (root / "tracklist.json").write_text("[{'id': 'single quotes'}]")
    assert cli.main(["analyze", "--album", str(root)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_missing_album_folder(tmp_path, capsys):
    assert cli.main(["analyze", "--album", str(tmp_path / "nowhere")]) == 1
    assert "album folder not found" in capsys.readouterr().err


@pytest.mark.parametrize("fps", ["0", "-5", "nan"])
def test_bad_fps(make_album, capsys, fps):
    assert cli.main(["analyze", "--album", str(make_album(1)), "--fps", fps]) == 1
    assert "--fps" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("estimate", "listed", "expected"),
    [
        (120.3, 120.0, "ok"),
        (240.0, 120.0, "double"),
        (61.0, 120.0, "half"),
        (100.0, 120.0, "differs"),
        (120.0, None, ""),
        (float("nan"), 120.0, ""),
    ],
)
def test_tempo_agreement(estimate, listed, expected):
    assert tempo_agreement(estimate, listed) == expected


def test_table_shows_unknown_values_as_dashes():
    summary = {
        "album": "/a",
        "tracklist": None,
        "fps": 30.0,
        "tracks": [
            {
                "index": 1, "id": "quiet", "title": "A very long title that goes on and on",
                "duration_s": 65.25, "sample_rate": 44100, "channels": 1, "frames": 1958,
                "bpm": None, "tempo_estimate": 97.96, "tempo_agreement": "",
                "integrated_lufs": None, "loudness_range_lu": 0.0, "true_peak_dbtp": None,
                "stems_label": "none", "key": None, "key_estimate": None,
                "key_confidence": None, "markers": [], "sections_estimate": [],
                "preset_auto": "drift",
            }
        ],
        "total": {"tracks": 1, "duration_s": 65.25, "frames": 1958,
                  "integrated_lufs": None, "true_peak_dbtp": None},
    }  # fmt: skip
    table = format_table(summary)
    row = table.splitlines()[3]
    assert "1:05.2" in row and "44.1k" in row and "98.0" in row and "…" in row
    assert row.split()[-5:] == ["-", "0.0", "-", "none", "drift"]
    assert row.split()[-9:-5] == ["-", "-", "0", "(0)"]  # key, key (est.), markers (est.)
    assert table.splitlines()[-1].endswith("album loudness -, max true peak -")
    assert "total: 1 track," in table


def test_short_and_silent_tracks(tmp_path, cache_root, capsys):
    import numpy as np
    import soundfile as sf

    from tests.fixtures_audio import click_track

    root = tmp_path / "edge"
    root.mkdir()
    sf.write(root / "01 short.wav", click_track(120.0, 0.3, 22050)[0], 22050)
    sf.write(root / "02 silent.flac", np.zeros((2 * 44100, 2), dtype=np.float32), 44100)
    assert cli.main(["analyze", "--album", str(root), "--json", str(tmp_path / "s.json")]) == 0
    rows = json.loads((tmp_path / "s.json").read_text())["tracks"]
    assert rows[0]["duration_s"] == 0.3 and rows[0]["frames"] == 9
    assert rows[0]["integrated_lufs"] is not None
    assert rows[1]["integrated_lufs"] is None and rows[1]["true_peak_dbtp"] is None
    silent_row = capsys.readouterr().out.splitlines()[4]
    assert "02-silent" in silent_row and " - " in silent_row
