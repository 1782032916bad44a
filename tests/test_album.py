import json
import logging

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.album import AlbumWarning, Section, TrackEntry, load_album
from stratum_kernel.audio.files import load_audio
from stratum_kernel.core.errors import AudioError, ConfigError, StratumError
from tests.fixtures_audio import STEMS


def _write_tracklist(root, entries):
    (root / "tracklist.json").write_text(json.dumps(entries, indent=2))


def _entries(root):
    return json.loads((root / "tracklist.json").read_text())


# ---------------------------------------------------------------- loading


def test_loads_album_with_stems(make_album):
    root = make_album(3, duration=1.5, sr=22050, stems=True)
    album = load_album(root)
    assert album.ids == ("track1", "track2", "track3")
    assert album.tracklist == (root / "tracklist.json").resolve()
    assert album.total_duration == pytest.approx(4.5)
    t = album.track("track2")
    assert (t.duration, t.sample_rate, t.channels, t.frames) == (1.5, 22050, 2, 33075)
    assert t.bpm == 98.0 and t.key == "C major" and t.title == "Track 2"
    assert t.artist == "stratum tests"
    assert t.marker_times == (0.75,) and t.markers[0].label == "peak"
    assert t.audio_path == (root / "audio" / "track2.wav").resolve()
    assert set(t.stem_paths) == set(STEMS)
    assert t.stem_paths["vocals"].name == "vocals.wav"
    assert [x.id for x in album] == list(album.ids) and len(album) == 3
    assert hash(t) == hash(album.track("track2"))


def test_fixture_stems_sum_to_the_mix(make_album):
    root = make_album(1, duration=1.0, stems=True)
    t = load_album(root).track("track1")
    mix, _ = load_audio(t.audio_path)
    total = sum(load_audio(p)[0] for p in t.stem_paths.values())
    np.testing.assert_allclose(total, mix, atol=1e-6)
    assert np.abs(mix).max() <= 1.0


def test_no_stems_folder_means_none(make_album):
    album = load_album(make_album(1))
    assert album.track("track1").stem_paths is None


def test_tracklist_path_accepted_directly(make_album):
    root = make_album(1)
    assert load_album(root / "tracklist.json").ids == ("track1",)


def test_unknown_track_id_lists_known_ones(make_album):
    album = load_album(make_album(2))
    with pytest.raises(ConfigError, match=r"no track with id 'nope'.*track1, track2") as exc:
        album.track("nope")
    assert exc.value.field == "id"


def test_minimal_entries_get_defaults(make_album):
    root = make_album(1)
    _write_tracklist(root, [{"id": "solo", "src": "audio/track1.wav"}])
    t = load_album(root).track("solo")
    assert t.title == "solo" and t.bpm is None and t.markers == () and t.artist == ""


def test_markers_as_plain_numbers(make_album):
    root = make_album(1, duration=2.0, overrides={0: {"markers": [0, 0.5, 1.25]}})
    assert load_album(root).track("track1").marker_times == (0.0, 0.5, 1.25)


def test_unknown_keys_warn_but_load(make_album):
    root = make_album(1, overrides={0: {"mood": "dreamy", "tempo": 100}})
    with pytest.warns(AlbumWarning, match=r"tracklist\.json.*'mood', 'tempo'"):
        album = load_album(root)
    assert album.track("track1").entry.model_extra == {"mood": "dreamy", "tempo": 100}


# ---------------------------------------------------------------- folder without tracklist


def test_plain_folder_of_audio(tmp_path, caplog):
    root = tmp_path / "mine"
    root.mkdir()
    for name in ["02 - Night Drive.wav", "01 - Dawn.flac", "b side!.ogg", "notes.txt"]:
        if name.endswith(".txt"):
            (root / name).write_text("not audio")
            continue
        sf.write(root / name, np.zeros((4000, 2), dtype=np.float32), 8000)
    with caplog.at_level(logging.INFO, logger="stratum_kernel.audio.album"):
        album = load_album(root)
    assert album.tracklist is None
    assert album.ids == ("01-dawn", "02-night-drive", "b-side")
    assert [t.title for t in album] == ["Dawn", "Night Drive", "b side!"]
    assert all(t.duration == 0.5 for t in album)
    assert "no tracklist.json" in caplog.text


def test_plain_folder_duplicate_ids_are_numbered(tmp_path):
    for name in ["Song.wav", "song.flac"]:
        sf.write(tmp_path / name, np.zeros(800, dtype=np.float32), 8000)
    assert load_album(tmp_path).ids == ("song", "song-2")


def test_plain_folder_without_audio(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ConfigError, match=r"no tracklist\.json and no audio files"):
        load_album(tmp_path)


def test_missing_album_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere.*album folder not found"):
        load_album(tmp_path / "nowhere")


# ---------------------------------------------------------------- document errors


def test_invalid_json_names_line_and_column(make_album):
    root = make_album(1)
    (root / "tracklist.json").write_text('[\n  {"id": "a", "src": "x.wav"\n  {"id": "b"}\n]')
    with pytest.raises(ConfigError, match=r"tracklist\.json: invalid JSON at line 3, column 3"):
        load_album(root)


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ({"tracks": []}, "expected a list of track objects.*got a JSON object"),
        ("hello", "expected a list of track objects.*got a JSON str"),
        ([], "the tracklist is empty"),
    ],
)
def test_tracklist_must_be_a_non_empty_list(make_album, doc, pattern):
    root = make_album(1)
    _write_tracklist(root, doc)
    with pytest.raises(ConfigError, match=rf"tracklist\.json: {pattern}"):
        load_album(root)


def test_tracklist_not_utf8(make_album):
    root = make_album(1)
    (root / "tracklist.json").write_bytes(b'[{"id": "\xff\xfe"}]')
    with pytest.raises(ConfigError, match=r"tracklist\.json: is not UTF-8"):
        load_album(root)


def test_entry_not_an_object(make_album):
    root = make_album(1)
    _write_tracklist(root, [*_entries(root), "track2.wav"])
    with pytest.raises(ConfigError, match=r"entry 2: expected an object, got 'track2.wav'"):
        load_album(root)


@pytest.mark.parametrize("bad_id", ["../evil", "a/b", ".hidden", "x..y", "", "sp ace"])
def test_unsafe_ids_are_rejected(make_album, bad_id):
    root = make_album(1, overrides={0: {"id": bad_id}})
    with pytest.raises(ConfigError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "tracklist.json" in msg and "field 'id'" in msg and "not a safe file name" in msg
    assert repr(bad_id) in msg
    assert exc.value.field == "id"


def test_duplicate_ids(make_album):
    root = make_album(3, overrides={2: {"id": "Track1"}})
    with pytest.raises(ConfigError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "entry 3 ('Track1'), field 'id': duplicate id 'Track1' (entry 1 has 'track1')" in msg


@pytest.mark.parametrize("src", ["../outside.wav", "/etc/passwd", "audio/../../x.wav", "C:\\x.wav"])
def test_src_must_stay_inside_the_album(make_album, src):
    root = make_album(1, overrides={0: {"src": src}})
    with pytest.raises(ConfigError, match=r"field 'src': must be a path inside the album") as e:
        load_album(root)
    assert repr(src) in str(e.value)


@pytest.mark.parametrize("bpm", [10, 19.9, 300.5, 1000])
def test_bpm_out_of_range(make_album, bpm):
    root = make_album(1, overrides={0: {"bpm": bpm}})
    with pytest.raises(ConfigError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "entry 1 ('track1'), field 'bpm': must be between 20 and 300 BPM" in msg
    assert f"(got {bpm})" in msg


def test_bpm_must_be_a_number(make_album):
    root = make_album(1, overrides={0: {"bpm": "fast"}})
    with pytest.raises(ConfigError, match=r"field 'bpm'.*got 'fast'"):
        load_album(root)


def test_negative_marker(make_album):
    root = make_album(1, overrides={0: {"markers": [0.5, -1.0]}})
    with pytest.raises(ConfigError, match=r"field 'markers\[1\]\.time'.*greater than or equal"):
        load_album(root)


def test_unsorted_markers(make_album):
    root = make_album(1, overrides={0: {"markers": [1.0, {"time": 0.5, "label": "x"}]}})
    with pytest.raises(ConfigError, match=r"field 'markers': markers must be in ascending"):
        load_album(root)


def test_marker_past_the_end(make_album):
    root = make_album(1, duration=2.0, overrides={0: {"markers": [0.5, 2.5]}})
    with pytest.raises(ConfigError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "field 'markers[1].time': 2.5 s is past the end of the track (2.000 s)" in msg


def test_marker_with_unknown_key(make_album):
    root = make_album(1, overrides={0: {"markers": [{"t": 1.0}]}})
    with pytest.raises(ConfigError, match=r"markers\[0\]\.time': required field is missing"):
        load_album(root)


@pytest.mark.parametrize("field", ["id", "src"])
def test_missing_required_field(make_album, field):
    root = make_album(1, overrides={0: {field: None}})
    with pytest.raises(ConfigError, match=rf"field '{field}': required field is missing"):
        load_album(root)


def test_all_problems_reported_together(make_album):
    root = make_album(3, overrides={0: {"bpm": 5}, 1: {"id": "a/b"}, 2: {"src": "gone.wav"}})
    with pytest.raises(ConfigError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "3 problems" in msg
    assert "field 'bpm'" in msg and "field 'id'" in msg and "gone.wav: audio file not found" in msg
    assert exc.value.field == "bpm"


# ---------------------------------------------------------------- audio errors


def test_missing_audio_file(make_album):
    root = make_album(1)
    (root / "audio" / "track1.wav").unlink()
    with pytest.raises(AudioError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "tracklist.json: entry 1 ('track1'), field 'src'" in msg
    assert "track1.wav: audio file not found" in msg


def test_corrupt_audio_file(make_album, rng):
    root = make_album(1)
    (root / "audio" / "track1.wav").write_bytes(rng.bytes(3000))
    with pytest.raises(AudioError, match=r"field 'src'.*track1\.wav: not a readable audio file"):
        load_album(root)


def test_truncated_audio_file(make_album):
    root = make_album(1)
    path = root / "audio" / "track1.wav"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(AudioError, match=r"field 'src'.*track1\.wav: truncated"):
        load_album(root)


def test_empty_audio_file(make_album):
    root = make_album(1)
    (root / "audio" / "track1.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"track1\.wav: file is empty"):
        load_album(root)


# ---------------------------------------------------------------- stems


def test_partial_stems_name_the_missing_ones(make_album):
    root = make_album(1, stems=True)
    (root / "stems" / "track1" / "bass.wav").unlink()
    (root / "stems" / "track1" / "vocals.wav").unlink()
    with pytest.raises(ConfigError) as exc:
        load_album(root)
    msg = str(exc.value)
    assert "field 'stems'" in msg and "missing bass, vocals" in msg
    assert "stems/track1" in msg


def test_empty_stems_folder_means_none(make_album):
    root = make_album(1)
    (root / "stems" / "track1").mkdir(parents=True)
    (root / "stems" / "track1" / "readme.txt").write_text("stems go here")
    assert load_album(root).track("track1").stem_paths is None


def test_stems_in_another_format(make_album):
    root = make_album(1, stems=True, suffix=".flac")
    stems = load_album(root).track("track1").stem_paths
    assert {p.suffix for p in stems.values()} == {".flac"}


def test_two_files_for_one_stem(make_album):
    root = make_album(1, stems=True)
    sf.write(root / "stems" / "track1" / "drums.flac", np.zeros((44100, 2)), 22050)
    with pytest.raises(ConfigError, match=r"several drums files \(drums.flac, drums.wav\)"):
        load_album(root)


def test_stem_of_the_wrong_length(make_album):
    root = make_album(1, duration=2.0, stems=True)
    sf.write(root / "stems" / "track1" / "other.wav", np.zeros((22050, 2)), 22050)
    with pytest.raises(ConfigError, match=r"field 'stems.other'.*lasts 1.000 s but the mix"):
        load_album(root)


def test_corrupt_stem(make_album):
    root = make_album(1, stems=True)
    (root / "stems" / "track1" / "bass.wav").write_bytes(b"RIFF....garbage")
    with pytest.raises(AudioError, match=r"field 'stems.bass'.*bass\.wav: not a readable"):
        load_album(root)


def test_errors_are_stratum_errors(make_album):
    root = make_album(1, overrides={0: {"bpm": 1}})
    with pytest.raises(StratumError):
        load_album(root)


def test_entry_model_directly():
    e = TrackEntry(id="x", src="a.wav", markers=[1.0, 2.0])
    assert e.marker_times == (1.0, 2.0) and e.title == "x"
    assert "markers" in TrackEntry.known_fields()


def test_sections_are_known_and_checked(make_album):
    sections = [{"name": "intro", "start": 0.0}, {"name": "peak", "start": 1.0}]
    root = make_album(1, duration=2.0, overrides={0: {"sections": sections}})
    t = load_album(root).track("track1")
    assert t.sections == (Section(name="intro", start=0.0), Section(name="peak", start=1.0))
    bad = [{"name": "peak", "start": 1.0}, {"name": "intro", "start": 0.5}]
    root = make_album(1, duration=2.0, overrides={0: {"sections": bad}}, name="b")
    with pytest.raises(ConfigError, match=r"field 'sections': sections must be in ascending"):
        load_album(root)
    late = [{"name": "outro", "start": 2.5}]
    root = make_album(1, duration=2.0, overrides={0: {"sections": late}}, name="c")
    with pytest.raises(ConfigError, match=r"field 'sections\[0\]\.start': 2.5 s \('outro'\)"):
        load_album(root)
