"""Albums as users really hand them in: odd names, surround files, DAW exports, copied disks.

Each case builds its own album (tiny audio) and goes through the real loaders; the render
cases run ONNX Runtime and ffmpeg at tiny sizes with the numpy analysis stand-in and end
with ``stratum verify``'s checks. RELIABILITY.md ("Unusual albums") lists what each proves.
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.album import RESERVED_IDS, load_album
from stratum_kernel.audio.channels import CHANNEL_LAYOUTS, downmix, downmix_matrix
from stratum_kernel.audio.files import audio_info, load_audio, write_audio
from stratum_kernel.core.errors import AudioError, ConfigError
from stratum_kernel.film.encode import ffmpeg_exe
from stratum_kernel.render.verify import verify_run
from tests.fixtures_audio import album_stems, sine
from tests.test_render import render

SR = 22050


def _song(path: Path, duration=1.5, channels=2, bpm=120.0, sr=SR) -> np.ndarray:
    mix = sum(album_stems(bpm, duration, sr, channels).values())
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, mix.T, sr, subtype="FLOAT")
    return mix


# ------------------------------------------------------------------ names and folders


def test_a_file_named_album_renders_its_own_film(tmp_path, tiny_model_dir):
    """`album.wav` in a plain folder used to become track 'album', whose film was then
    overwritten by the album film (exit 0, verify mismatch)."""
    root = tmp_path / "songs"
    _song(root / "album.wav", 1.0)
    _song(root / "b-side.wav", 1.0, bpm=98.0)
    album = load_album(root)
    assert [t.id for t in album.tracks] == ["album-track", "b-side"]
    res = render(root, tiny_model_dir, tmp_path / "out", "r")
    names = sorted(p.name for p in res.run_dir.glob("*.mp4"))
    assert names == ["album-track.mp4", "album.mp4", "b-side.mp4"]
    report = verify_run(res.run_dir)
    assert report.ok, report.summary()


@pytest.mark.parametrize("tid", ["album", "Album", "con", "NUL", "lpt1", "com9"])
def test_reserved_track_ids_are_refused(make_album, tid):
    root = make_album(1, overrides={0: {"id": tid}})
    with pytest.raises(ConfigError, match=rf"field 'id': track id '{tid}' is reserved .*rename "
                                          rf"the track, e.g. '{tid}-1'"):
        load_album(root)
    assert {"album", "con", "prn", "aux", "nul", "com1", "lpt9"} <= RESERVED_IDS


def test_reserved_names_in_a_plain_folder_are_renamed(tmp_path):
    root = tmp_path / "songs"
    for name in ("con", "album", "aux"):
        _song(root / f"{name}.wav", 0.5)
    assert [t.id for t in load_album(root).tracks] == ["album-track", "aux-track",
                                                       "con-track"]


def test_backslashes_in_src_are_folders(make_album):
    """A tracklist written on Windows: `audio\\track1.wav` is audio/track1.wav."""
    root = make_album(2, overrides={0: {"src": "audio\\track1.wav"}})
    album = load_album(root)
    assert album.tracks[0].audio_path == (root / "audio" / "track1.wav").resolve()


def test_src_in_the_other_unicode_normal_form(make_album):
    """macOS stores 'é' decomposed (NFD); a tracklist typed elsewhere holds it composed."""
    root = make_album(1)
    nfd = unicodedata.normalize("NFD", "Café Noël")
    folder = root / unicodedata.normalize("NFD", "Démos")
    folder.mkdir()
    (root / "audio" / "track1.wav").rename(folder / f"{nfd}.wav")
    doc = json.loads((root / "tracklist.json").read_text())
    doc[0]["src"] = unicodedata.normalize("NFC", "Démos/Café Noël.wav")
    (root / "tracklist.json").write_text(json.dumps(doc, ensure_ascii=False))
    track = load_album(root).tracks[0]
    assert track.audio_path == (folder / f"{nfd}.wav").resolve()
    assert track.duration == pytest.approx(2.0)


def test_appledouble_and_hidden_files_are_ignored(make_album, tmp_path):
    """A disk formatted on Windows and filled from a Mac holds `._name.wav` beside every
    file: 4 KB of metadata, not audio. One used to block the whole album."""
    junk = b"\x00\x05\x16\x07" + b"\x00" * 4092  # the AppleDouble magic and padding
    root = make_album(2, stems=True)
    (root / "stems" / "track1" / "._drums.wav").write_bytes(junk)
    (root / "stems" / "track1" / ".DS_Store").write_bytes(b"Bud1")
    album = load_album(root)
    assert album.tracks[0].stem_paths is not None
    plain = tmp_path / "plain"
    _song(plain / "one.wav", 0.5)
    (plain / "._one.wav").write_bytes(junk)
    (plain / ".hidden.flac").write_bytes(junk)
    assert [t.id for t in load_album(plain).tracks] == ["one"]


def test_a_tracklist_with_a_byte_order_mark(make_album):
    root = make_album(2)
    path = root / "tracklist.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Windows Notepad saves it
    assert [t.id for t in load_album(root).tracks] == ["track1", "track2"]


# ------------------------------------------------------------------ damaged samples


def _wav_with_rate(path: Path, declared: int) -> None:
    sf.write(path, np.zeros((800, 1), np.float32), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = declared.to_bytes(4, "little")  # fmt chunk: sample rate
    data[28:32] = (declared * 2).to_bytes(4, "little")  # byte rate
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rate", [1, 100, 3_000_000])
def test_a_header_with_an_impossible_sample_rate(tmp_path, rate):
    """A 1 Hz header used to have the resampler ask for terabytes (MemoryError)."""
    path = tmp_path / "odd.wav"
    _wav_with_rate(path, rate)
    pattern = rf"odd.wav: the header says {rate} Hz, outside 4000-768000 Hz"
    with pytest.raises(AudioError, match=pattern):
        audio_info(path)
    with pytest.raises(AudioError, match=pattern):
        load_audio(path, sr=48000)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_samples_are_named_with_file_and_time(tmp_path, value):
    y = sine(220.0, 1.0, 8000, channels=2).T.copy()
    y[6000, 1] = value
    sf.write(tmp_path / "bad.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"bad.wav: contains NaN or infinite samples \(the "
                                         r"first at 0.750 s\); re-export"):
        load_audio(tmp_path / "bad.wav")
    # a window that starts later names the time in the file, not in the window
    with pytest.raises(AudioError, match=r"the first at 0.750 s"):
        load_audio(tmp_path / "bad.wav", offset=0.5)
    assert load_audio(tmp_path / "bad.wav", duration=0.5)[0].shape == (2, 4000)


def test_a_nan_stem_is_named(make_album):
    from stratum_kernel.audio.stems import load_stems

    root = make_album(1, stems=True, duration=1.0)
    path = root / "stems" / "track1" / "bass.wav"
    y, sr = sf.read(path, dtype="float32")
    y[sr // 4] = np.nan
    sf.write(path, y, sr, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"stems/track1/bass.wav: contains NaN .* 0.250 s"):
        load_stems(load_album(root).tracks[0])


def test_a_full_disk_names_the_folder_and_the_fix(tmp_path, monkeypatch):
    """libsndfile reports ENOSPC as 'System error.'; the message says what happened."""
    import shutil

    import soundfile

    def full(*args, **kwargs):
        raise soundfile.LibsndfileError(2, "System error.")

    monkeypatch.setattr(soundfile.SoundFile, "write", full)  # audio is written in blocks
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9,
                                                                                 4096))
    with pytest.raises(AudioError, match=r"out.wav: could not write audio: no space left on "
                                         r"the disk holding .* free some space"):
        write_audio(tmp_path / "out.wav", sine(duration=0.1), 48000)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


# ------------------------------------------------------------------ surround


def _surround(path: Path, channels: int, only: str | None = None, sr=SR) -> np.ndarray:
    """A ``channels`` file with a different sine on each channel (or on ``only``)."""
    layout = CHANNEL_LAYOUTS[channels]
    t = np.arange(round(1.0 * sr)) / sr
    y = np.stack([0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t) for i in range(channels)])
    if only is not None:
        y[[c != only for c in layout]] = 0.0
    sf.write(path, y.T.astype(np.float32), sr, subtype="PCM_16")
    return y.astype(np.float32)


@pytest.mark.parametrize("channels", [5, 6, 7, 8])
def test_downmix_matches_ffmpeg(tmp_path, channels):
    """BS.775: L + 0.707 C + 0.707 Ls (LFE left out), rows scaled to a gain sum of 1 — the
    matrix of ffmpeg's `-ac 2` for integer output, compared sample for sample (5.0, 5.1,
    6.1, 7.1: the layouts ffmpeg and the FLAC format agree on)."""
    src = tmp_path / "in.wav"
    _surround(src, channels)
    out = tmp_path / "out.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-ac", "2",
                    "-c:a", "pcm_s16le", str(out)], check=True)
    theirs, _ = sf.read(out, dtype="float32")
    ours = downmix(load_audio(src)[0], 2)
    assert ours.shape == theirs.T.shape
    np.testing.assert_allclose(ours, theirs.T, atol=3 / 32768)


def test_downmix_matrix_rows():
    m = downmix_matrix(6)  # L R C LFE Ls Rs
    s = 1 / (1 + 2 * 0.7071)
    np.testing.assert_allclose(m, [[s, 0, 0.7071 * s, 0, 0.7071 * s, 0],
                                   [0, s, 0.7071 * s, 0, 0, 0.7071 * s]], atol=1e-6)
    np.testing.assert_allclose(downmix_matrix(3), np.array([[1, 0, 0.7071], [0, 1, 0.7071]])
                               / 1.7071, atol=1e-6)  # L R C
    np.testing.assert_allclose(downmix_matrix(4), np.array([[1, 0, 0.7071, 0],
                                                            [0, 1, 0, 0.7071]]) / 1.7071,
                               atol=1e-6)  # quad: L R Ls Rs
    np.testing.assert_allclose(downmix_matrix(11), np.full((2, 11), 1 / 11), atol=1e-7)
    mono = downmix(np.ones((6, 4), np.float32), 1)
    assert mono.shape == (1, 4) and np.allclose(mono, 1.0)  # full scale stays full scale


def test_a_centre_only_surround_film_is_not_silent(tmp_path, tiny_model_dir):
    """A 5.1 file with only dialogue in the centre used to give a silent film (channels 1–2
    kept); its sound is the BS.775 downmix, and meta.json says so."""
    root = tmp_path / "surround"
    root.mkdir()
    y = _surround(root / "centre.wav", 6, only="C")
    res = render(root, tiny_model_dir, tmp_path / "out", "r", audio={"normalization": None})
    film, _ = load_audio(res.run_dir / "centre.mp4")
    assert film.shape[0] == 2
    level = np.sqrt(np.mean(film[:, 4000:-4000] ** 2, axis=1))
    expected = np.sqrt(np.mean(y[2] ** 2)) * 0.7071 / (1 + 2 * 0.7071)
    np.testing.assert_allclose(level, expected, rtol=0.05)
    meta = json.loads((res.run_dir / "meta.json").read_text())
    audio = meta["tracks"][0]["audio"]
    assert audio["source_channels"] == 6
    assert "ITU-R BS.775" in audio["downmix"] and "LFE left out" in audio["downmix"]


# ------------------------------------------------------------------ stems


@pytest.mark.parametrize("delta_ms", [-20.0, -3.0, 4.0])
def test_stems_a_few_ms_off_the_mix_line_up(make_album, delta_ms):
    """DAW exports are often a few ms shorter or longer than the mix (inside the 0.1 s the
    album allows): the stems are fitted to the mix, sample for sample."""
    from stratum_kernel.audio.stems import load_stems

    root = make_album(1, stems=True, duration=1.0)
    for path in (root / "stems" / "track1").iterdir():
        y, sr = sf.read(path, dtype="float32")
        n = len(y) + round(delta_ms / 1000 * sr)
        y = y[:n] if n <= len(y) else np.pad(y, ((0, n - len(y)), (0, 0)))
        sf.write(path, y, sr, subtype="FLOAT")
    track = load_album(root).tracks[0]
    stems = load_stems(track)
    assert {s.shape for s in stems.stems.values()} == {(2, track.frames)}
    mix = load_audio(track.audio_path)[0]
    keep = min(track.frames, track.frames + round(delta_ms / 1000 * SR))
    total = sum(stems.stems.values())
    np.testing.assert_allclose(total[:, :keep], mix[:, :keep], atol=1e-5)
