"""The bundled album in album/: tracklist, files, lengths, form, stems, loudness and size,
read with soundfile directly (independent of the stratum loaders); and album/compose.py,
which must render the same samples again."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ALBUM = Path(__file__).resolve().parents[1] / "album"
STEMS = ("drums", "bass", "other", "vocals")
SECTIONS = ["intro", "build", "peak", "breakdown", "outro"]
REQUIRED = {"id", "src", "title", "artist", "bpm", "key", "markers"}
MAX_BYTES = 30_000_000
CEILING = 32768 * 10 ** (-1.0 / 20)  # -1 dBFS in 16-bit steps


def _tracklist() -> list[dict]:
    return json.loads((ALBUM / "tracklist.json").read_text(encoding="utf-8"))


TRACK_IDS = [entry["id"] for entry in _tracklist()]


@pytest.fixture(scope="module")
def tracklist() -> list[dict]:
    return _tracklist()


@pytest.fixture(scope="module")
def audio(tracklist: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """{track id: {'mix' | stem: int16 [n, 2]}}, each file read once."""
    out = {}
    for entry in tracklist:
        files = {"mix": ALBUM / entry["src"]}
        files.update({s: ALBUM / "stems" / entry["id"] / f"{s}.flac" for s in STEMS})
        out[entry["id"]] = {name: sf.read(path, dtype="int16")[0] for name, path in files.items()}
    return out


def _entry(tracklist: list[dict], track_id: str) -> dict:
    return next(e for e in tracklist if e["id"] == track_id)


def _rms_db(x: np.ndarray) -> float:
    y = x.astype(np.float64) / 32768.0
    return float(10 * np.log10(np.mean(y**2) + 1e-20))


def _section(entry: dict, name: str, sr: int, x: np.ndarray) -> np.ndarray:
    starts = [s["start"] for s in entry["sections"]] + [len(x) / sr]
    i = [s["name"] for s in entry["sections"]].index(name)
    return x[int(starts[i] * sr) : int(starts[i + 1] * sr)]


def test_tracklist_is_valid(tracklist: list[dict]) -> None:
    assert isinstance(tracklist, list) and len(tracklist) >= 3
    ids = [e["id"] for e in tracklist]
    assert len(set(ids)) == len(ids)
    for entry in tracklist:
        assert set(entry) >= REQUIRED, f"{entry.get('id')}: missing {REQUIRED - set(entry)}"
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry["id"])
        assert entry["title"].strip() and entry["artist"] == "stratum"
        assert entry["src"] == f"{entry['id']}.flac" and (ALBUM / entry["src"]).is_file()
        assert 40 <= entry["bpm"] <= 200
        assert re.fullmatch(r"[A-G][#b]? (major|minor)", entry["key"])
        for stem in STEMS:
            assert (ALBUM / "stems" / entry["id"] / f"{stem}.flac").is_file()


def test_tempi_and_keys_are_distinct(tracklist: list[dict]) -> None:
    bpms = [e["bpm"] for e in tracklist]
    keys = [e["key"] for e in tracklist]
    assert len(set(bpms)) == len(bpms) and len(set(keys)) == len(keys)
    assert min(np.diff(sorted(bpms))) >= 8  # tempi clearly apart, not 120 vs 121


@pytest.mark.parametrize("track_id", TRACK_IDS)
def test_files_agree_and_last_45_to_90_seconds(tracklist: list[dict], track_id: str) -> None:
    entry = _entry(tracklist, track_id)
    info = sf.info(str(ALBUM / entry["src"]))
    assert 45.0 <= info.duration <= 90.0
    assert info.channels == 2 and info.subtype == "PCM_16" and info.format == "FLAC"
    for stem in STEMS:
        s = sf.info(str(ALBUM / "stems" / track_id / f"{stem}.flac"))
        assert (s.samplerate, s.frames, s.channels) == (info.samplerate, info.frames, 2)


@pytest.mark.parametrize("track_id", TRACK_IDS)
def test_markers_are_section_starts_on_downbeats(tracklist: list[dict], track_id: str) -> None:
    entry = _entry(tracklist, track_id)
    duration = sf.info(str(ALBUM / entry["src"])).duration
    markers = entry["markers"]
    assert len(markers) == 4 and all(0 < m < duration for m in markers)
    assert all(b > a for a, b in itertools.pairwise(markers))
    assert [s["name"] for s in entry["sections"]] == SECTIONS
    assert [s["start"] for s in entry["sections"]] == [0.0, *markers]
    bar = 4 * 60.0 / entry["bpm"]
    for m in markers:  # every section starts on a bar line (to the millisecond)
        assert abs(m / bar - round(m / bar)) * bar < 0.001
    assert duration - markers[-1] >= 2 * bar  # the outro is more than a fade


@pytest.mark.parametrize("track_id", TRACK_IDS)
def test_stems_sum_to_mix_within_rounding(audio: dict, track_id: str) -> None:
    files = audio[track_id]
    total = sum(files[s].astype(np.int32) for s in STEMS)
    diff = np.abs(total - files["mix"].astype(np.int32))
    assert diff.max() <= 4, f"stems differ from the mix by {diff.max()} LSB"
    for stem in STEMS:  # every stem carries sound somewhere
        assert _rms_db(files[stem]) > -45.0


@pytest.mark.parametrize("track_id", TRACK_IDS)
def test_mix_has_headroom_and_no_dc(audio: dict, track_id: str) -> None:
    mix = audio[track_id]["mix"].astype(np.float64)
    assert np.abs(mix).max() <= CEILING
    assert np.abs(mix.mean(axis=0)).max() < 0.001 * 32768
    assert not np.array_equal(mix[:, 0], mix[:, 1])  # stereo, not doubled mono


@pytest.mark.parametrize("track_id", TRACK_IDS)
def test_sections_differ_in_energy_and_texture(
    tracklist: list[dict], audio: dict, track_id: str
) -> None:
    entry = _entry(tracklist, track_id)
    sr = sf.info(str(ALBUM / entry["src"])).samplerate
    files = audio[track_id]

    def level(name: str, what: str = "mix") -> float:
        return _rms_db(_section(entry, name, sr, files[what]))

    assert level("peak") >= level("intro") + 3.0
    assert level("peak") >= level("breakdown") + 3.0
    assert level("peak", "drums") >= level("breakdown", "drums") + 12.0  # the drums leave
    assert level("intro", "vocals") < -80.0 < level("peak", "vocals")  # the voice enters
    assert level("peak", "bass") >= level("breakdown", "bass") + 20.0  # and the bass drops


def test_album_size_is_within_budget() -> None:
    sizes = [p.stat().st_size for p in ALBUM.rglob("*.flac")]
    assert len(sizes) == 5 * len(TRACK_IDS)
    assert sum(sizes) <= MAX_BYTES, f"album audio is {sum(sizes) / 1e6:.1f} MB"


def test_loudness_is_sensible_and_differs_between_tracks(
    tracklist: list[dict], audio: dict
) -> None:
    # BS.1770 as stratum measures it (agrees with pyloudnorm to 0.1 LU here; pyloudnorm
    # itself takes ~10 s to import on this machine)
    from stratum_kernel.audio.loudness import integrated_loudness, true_peak_dbtp

    levels = []
    for entry in tracklist:
        sr = sf.info(str(ALBUM / entry["src"])).samplerate
        mix = np.ascontiguousarray(audio[entry["id"]]["mix"].T, dtype=np.float64) / 32768.0
        levels.append(integrated_loudness(mix, sr))
        assert true_peak_dbtp(mix, sr) <= -1.0  # no inter-sample overs either
    assert all(-16.0 <= lufs <= -9.0 for lufs in levels), levels
    assert max(levels) - min(levels) >= 1.5  # a quieter ballad, for album normalisation


# ---------------------------------------------------------------- album/compose.py


@pytest.fixture(scope="module")
def compose():
    from album import compose

    return compose


def test_tracklist_is_what_compose_writes(compose, tracklist: list[dict]) -> None:
    from album.songs import ALBUM as SONGS

    assert [compose.track_entry(song) for song, _ in SONGS] == tracklist


def test_compose_renders_an_excerpt_deterministically(compose) -> None:
    from album.songs import ALBUM as SONGS

    song, renderer = SONGS[1]
    first = compose.render_stems(song, renderer, seconds=1.0)
    second = compose.render_stems(song, renderer, seconds=1.0)
    for stem in STEMS:
        assert np.array_equal(first[stem], second[stem])
    assert any(np.abs(first[s]).max() > 0.01 for s in STEMS)


@pytest.mark.parametrize("index", range(len(TRACK_IDS)))
def test_compose_reproduces_the_files(compose, audio: dict, index: int) -> None:
    """The first seconds rendered now equal the committed files (every effect is causal,
    so an excerpt is the start of the full render); 1 LSB allows for libm differences."""
    from album.songs import ALBUM as SONGS

    song, renderer = SONGS[index]
    seconds = 2.5
    stems = compose.render_stems(song, renderer, seconds=seconds)
    n = int((seconds - 0.05) * compose.SR)  # the limiter looks 5 ms ahead
    mix = compose.mixdown(stems)
    for name, x in [*stems.items(), ("mix", mix)]:
        want = audio[song.id][name][:n].astype(np.int32)
        got = compose.quantise(x)[:n].astype(np.int32)
        assert np.abs(got - want).max() <= 1, f"{song.id} {name}"
    assert _rms_db(compose.quantise(mix)[:n]) > -40.0  # not a silent excerpt


@pytest.mark.slow
def test_compose_reproduces_a_whole_track(compose, audio: dict, tmp_path: Path) -> None:
    from album.songs import ALBUM as SONGS

    song, renderer = min(SONGS, key=lambda sr: sr[0].duration)
    compose.compose_track(song, renderer, tmp_path)
    for name in ("mix", *STEMS):
        path = tmp_path / (f"{song.id}.flac" if name == "mix" else f"stems/{song.id}/{name}.flac")
        got = sf.read(path, dtype="int16")[0].astype(np.int32)
        assert got.shape == audio[song.id][name].shape
        assert np.abs(got - audio[song.id][name].astype(np.int32)).max() <= 1, name
