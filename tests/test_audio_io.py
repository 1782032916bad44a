import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio import files as audio_io
from stratum_kernel.audio.channels import downmix_matrix
from stratum_kernel.audio.files import (
    AudioInfo,
    audio_info,
    load_audio,
    resample,
    write_audio,
)
from stratum_kernel.core.errors import AudioError
from tests.fixtures_audio import sine


def _ffmpeg():
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _encode(src, dst, *args):
    cmd = [_ffmpeg(), "-y", "-v", "error", "-i", str(src), *args, str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


# (suffix, libsndfile subtype, max abs error vs the float original)
LOSSLESS = [
    (".wav", "PCM_U8", 1.0 / 64),
    (".wav", "PCM_16", 1e-4),
    (".wav", "PCM_24", 1e-6),
    (".wav", "PCM_32", 1e-7),
    (".wav", "FLOAT", 0.0),
    (".wav", "DOUBLE", 1e-7),
    (".flac", "PCM_16", 1e-4),
    (".flac", "PCM_24", 1e-6),
    (".aiff", "PCM_16", 1e-4),
]


@pytest.mark.parametrize(("suffix", "subtype", "tol"), LOSSLESS)
@pytest.mark.parametrize("channels", [1, 2])
def test_lossless_formats_round_trip(tmp_path, suffix, subtype, tol, channels):
    x = sine(440.0, 0.5, 44100, amplitude=0.5, channels=channels)
    if channels == 2:
        x[1] *= 0.5
    path = tmp_path / f"t{suffix}"
    sf.write(path, x.T, 44100, subtype=subtype)
    y, sr = load_audio(path)
    assert sr == 44100
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= tol
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames) == (44100, channels, x.shape[1])
    assert info.duration == pytest.approx(0.5)
    assert subtype in info.format


@pytest.mark.parametrize(("suffix", "fmt", "subtype"), [
    (".ogg", "OGG", "VORBIS"),
    (".opus", "OGG", "OPUS"),
    (".mp3", "MP3", "MPEG_LAYER_III"),
])  # fmt: skip
def test_lossy_formats_written_by_soundfile(tmp_path, suffix, fmt, subtype):
    sr = 48000
    x = sine(440.0, 1.0, sr, amplitude=0.5, channels=2)
    path = tmp_path / f"t{suffix}"
    sf.write(path, x.T, sr, format=fmt, subtype=subtype)
    y, got_sr = load_audio(path)
    assert got_sr == sr and y.shape[0] == 2
    assert abs(y.shape[1] - x.shape[1]) < 0.05 * sr
    # Lossy, but the level of a sine survives: RMS within 1 dB.
    rms = np.sqrt(np.mean(y[:, sr // 4 : -sr // 4] ** 2))
    assert 20 * np.log10(rms / (0.5 / np.sqrt(2))) == pytest.approx(0.0, abs=1.0)


def test_mp3_encoded_by_ffmpeg(tmp_path):
    src = tmp_path / "src.wav"
    sf.write(src, sine(440.0, 1.0, 44100, amplitude=0.5, channels=2).T, 44100)
    mp3 = _encode(src, tmp_path / "t.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    y, sr = load_audio(mp3)
    assert sr == 44100 and y.shape[0] == 2
    assert abs(y.shape[1] - 44100) < 2000
    assert audio_info(mp3).format.startswith("MP3")


def test_m4a_goes_through_ffmpeg(tmp_path):
    src = tmp_path / "src.wav"
    x = sine(440.0, 1.0, 44100, amplitude=0.5, channels=2)
    sf.write(src, x.T, 44100)
    m4a = _encode(src, tmp_path / "t.m4a", "-c:a", "aac", "-b:a", "128k")
    y, sr = load_audio(m4a)
    assert sr == 44100 and y.shape[0] == 2
    assert abs(y.shape[1] - 44100) < 3000
    info = audio_info(m4a)
    assert info.format == "ffmpeg aac" and info.channels == 2
    part, _ = load_audio(m4a, offset=0.25, duration=0.5, mono=True)
    assert part.shape == (1, 22050)


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000, 96000, 192000])
def test_sample_rates_from_8k_to_192k(tmp_path, sr):
    x = sine(sr / 16, 0.25, sr, amplitude=0.25)
    path = tmp_path / "t.wav"
    sf.write(path, x.T, sr, subtype="PCM_24")
    y, got = load_audio(path)
    assert got == sr and y.shape == x.shape
    y2, got2 = load_audio(path, sr=22050)
    assert got2 == 22050 and abs(y2.shape[1] - round(0.25 * 22050)) <= 1


def test_multichannel_kept_and_mono_mix(tmp_path):
    x = np.stack([sine(220.0 * (c + 1), 0.2, 16000, amplitude=0.1)[0] for c in range(6)])
    path = tmp_path / "surround.wav"
    write_audio(path, x, 16000, subtype="FLOAT")
    y, _ = load_audio(path)
    np.testing.assert_array_equal(y, x)
    m, _ = load_audio(path, mono=True)
    assert m.shape == (1, x.shape[1])
    # mono is the mean of the BS.775 stereo downmix (the LFE, channel 4, left out)
    np.testing.assert_allclose(m[0], (downmix_matrix(6) @ x).mean(axis=0), atol=1e-7)


def test_short_and_silent_tracks(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.zeros(round(0.3 * 44100), dtype=np.float32), 44100)
    y, _ = load_audio(path)
    assert y.shape == (1, 13230) and not y.any()
    assert audio_info(path).duration == pytest.approx(0.3)


def test_offset_and_duration(tmp_path):
    sr = 8000
    x = np.arange(sr * 2, dtype=np.float32)[None, :] / (sr * 4)
    path = tmp_path / "ramp.wav"
    write_audio(path, x, sr, subtype="FLOAT")
    y, _ = load_audio(path, offset=0.5, duration=0.25)
    np.testing.assert_array_equal(y, x[:, 4000:6000])
    tail, _ = load_audio(path, offset=1.5, duration=10.0)
    np.testing.assert_array_equal(tail, x[:, 12000:])
    with pytest.raises(AudioError, match=r"ramp\.wav.*past the end"):
        load_audio(path, offset=3.0)
    with pytest.raises(ValueError):
        load_audio(path, offset=-1.0)


def test_resample_is_deterministic_and_keeps_a_sine():
    x = sine(1000.0, 0.5, 44100, amplitude=0.5, channels=2)
    a = resample(x, 44100, 48000)
    b = resample(x, 44100, 48000)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 24000) and a.dtype == np.float32
    ref = sine(1000.0, 0.5, 48000, amplitude=0.5)[0]
    np.testing.assert_allclose(a[0, 2000:-2000], ref[2000:-2000], atol=2e-3)


def test_resample_without_soxr_uses_scipy(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_soxr(name, *args, **kwargs):
        if name == "soxr":
            raise ImportError("no soxr")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_soxr)
    x = sine(1000.0, 0.5, 44100, amplitude=0.5)
    y = resample(x, 44100, 22050)
    assert y.shape == (1, 11025) and y.dtype == np.float32
    ref = sine(1000.0, 0.5, 22050, amplitude=0.5)[0]
    np.testing.assert_allclose(y[0, 500:-500], ref[500:-500], atol=2e-3)


# ---------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_write_audio_is_atomic_and_readable(tmp_path, suffix):
    x = sine(440.0, 0.5, 22050, amplitude=0.5, channels=2)
    out = write_audio(tmp_path / "sub" / f"mix{suffix}", x, 22050)
    assert out.exists()
    assert [p.name for p in out.parent.iterdir()] == [f"mix{suffix}"]  # no temp left over
    y, sr = load_audio(out)
    assert sr == 22050 and y.shape[0] == 2


def test_write_audio_clips_instead_of_wrapping(tmp_path):
    x = np.array([[0.5, 1.5, -2.0, 0.0]], dtype=np.float32)
    path = write_audio(tmp_path / "loud.wav", x, 8000, subtype="PCM_16")
    y, _ = load_audio(path)
    assert y[0, 1] > 0.99 and y[0, 2] <= -0.99


def test_write_audio_accepts_1d_and_refuses_bad_input(tmp_path):
    write_audio(tmp_path / "m.wav", np.zeros(100, dtype=np.float32), 8000)
    assert audio_info(tmp_path / "m.wav").channels == 1
    with pytest.raises(AudioError, match=r"x\.xyz.*suffix"):
        write_audio(tmp_path / "x.xyz", np.zeros(10), 8000)
    with pytest.raises(AudioError, match=r"nan\.wav.*NaN"):
        write_audio(tmp_path / "nan.wav", np.array([0.0, np.nan]), 8000)
    with pytest.raises(ValueError, match="shape"):
        write_audio(tmp_path / "b.wav", np.zeros((2, 2, 2)), 8000)
    assert not (tmp_path / "nan.wav").exists()


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(AudioError, match="could not write"):
        write_audio(tmp_path / "bad.wav", np.zeros((1, 10)), 8000, subtype="VORBIS")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        audio_info(tmp_path / "nope.wav")


def test_folder_is_not_audio(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(AudioError, match=r"d\.wav: is a folder"):
        load_audio(tmp_path / "d.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.wav"
    sf.write(path, np.zeros(100), 8000)
    path.chmod(0)
    with pytest.raises(AudioError, match=r"locked\.wav: cannot be read"):
        load_audio(path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: file is empty \(0 bytes\)"):
        load_audio(tmp_path / "empty.wav")


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a", ".ogg"])
def test_random_bytes_are_not_audio(tmp_path, rng, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(rng.bytes(4000))
    with pytest.raises(AudioError, match=rf"noise\{suffix}: not a readable audio file"):
        load_audio(path)
    with pytest.raises(AudioError, match=rf"noise\{suffix}: not a readable audio file"):
        audio_info(path)


def test_text_file_with_audio_suffix(tmp_path):
    path = tmp_path / "notes.flac"
    path.write_text("these are my lyrics, not audio\n")
    with pytest.raises(AudioError, match=r"notes\.flac: not a readable audio file"):
        audio_info(path)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_truncated_wav_is_named_truncated(tmp_path, subtype):
    path = tmp_path / "cut.wav"
    sf.write(path, sine(440.0, 1.0, 22050).T, 22050, subtype=subtype)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut\.wav: truncated"):
        audio_info(path)
    with pytest.raises(AudioError, match=r"cut\.wav: truncated"):
        load_audio(path)


def test_streamed_wav_with_unknown_length_is_not_truncated(tmp_path):
    path = tmp_path / "stream.wav"
    sf.write(path, sine(440.0, 0.5, 8000).T, 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = b"\xff\xff\xff\xff"
    data[4:8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    y, sr = load_audio(path)
    assert sr == 8000 and y.shape == (1, 4000)


def test_truncated_flac_is_corrupt_or_truncated(tmp_path, rng):
    path = tmp_path / "cut.flac"
    sf.write(path, (0.3 * rng.standard_normal(44100)).astype(np.float32), 22050)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut\.flac: (corrupt or truncated|truncated)"):
        load_audio(path)


def test_truncated_mp3_is_truncated(tmp_path):
    path = tmp_path / "cut.mp3"
    sf.write(path, sine(440.0, 2.0, 44100).T, 44100, format="MP3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated"):
        load_audio(path)


def test_zero_length_wav(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 2), dtype=np.float32), 44100)
    with pytest.raises(AudioError, match=r"zero\.wav: contains no audio"):
        audio_info(path)
    with pytest.raises(AudioError, match=r"zero\.wav: contains no audio"):
        load_audio(path)


def test_missing_ffmpeg_is_explained(tmp_path, monkeypatch):
    import imageio_ffmpeg

    def broken():
        raise RuntimeError("no binary")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", broken)
    path = tmp_path / "x.m4a"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(AudioError, match="ffmpeg is needed"):
        load_audio(path)


def test_wav_stream_parser_rejects_garbage(tmp_path):
    with pytest.raises(AudioError, match="no audio"):
        audio_io._parse_wav_stream(tmp_path / "x", b"not a wav at all")
    with pytest.raises(AudioError, match="no audio stream"):
        audio_io._parse_wav_stream(tmp_path / "x", b"RIFF\x00\x00\x00\x00WAVE")


def test_audio_info_is_a_plain_record():
    info = AudioInfo(44100, 2, 44100, 1.0, "WAV PCM_16")
    assert info.duration == 1.0 and info.format == "WAV PCM_16"


def test_track_longer_than_ten_minutes(tmp_path):
    sr = 8000
    n = sr * 630  # 10.5 minutes
    x = np.zeros(n, dtype=np.float32)
    x[::sr] = 0.5  # one click a second, so the end is checkable
    path = tmp_path / "long.wav"
    sf.write(path, x, sr, subtype="PCM_16")
    assert audio_info(path).duration == pytest.approx(630.0)
    y, _ = load_audio(path)
    assert y.shape == (1, n)
    assert np.flatnonzero(y[0] > 0.25)[-1] == n - sr
