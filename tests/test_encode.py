"""ffmpeg encoding: pipe, determinism, segments, audio prep and mux, album joins, checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.files import load_audio
from stratum_kernel.audio.loudness import integrated_loudness
from stratum_kernel.core.errors import RenderError
from stratum_kernel.film.encode import (
    EncodeParams,
    VideoEncoder,
    ffmpeg_version,
    resolve_x264,
    run_ffmpeg,
    video_args,
)
from stratum_kernel.film.mux import concat_films, concat_segments, prepare_audio
from stratum_kernel.film.streams import check_film, read_frames, stream_report
from tests.fixtures_audio import click_track, sine

W, H, FPS = 160, 96, 24.0


def _frames(n: int, seed: int = 0) -> np.ndarray:
    """Smoothly moving gradients + a little noise: compressible, but every frame differs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    out = np.empty((n, H, W, 3), np.uint8)
    for i in range(n):
        base = np.stack([(xx * 1.5 + i * 5) % 256, (yy * 2 + i * 3) % 256,
                         (xx + yy + i * 7) % 256], axis=-1)
        out[i] = np.clip(base + rng.integers(-6, 7, base.shape), 0, 255)
    return out


def _encode(path: Path, frames: np.ndarray, params: EncodeParams | None = None) -> Path:
    with VideoEncoder(path, width=W, height=H, fps=FPS, params=params) as enc:
        for i in range(0, len(frames), 4):
            enc.write(frames[i : i + 4])
    return path


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("size", "crf", "preset", "tune"),
    [((160, 96), 18, "fast", None), ((1280, 720), 19, "superfast", "grain"),
     ((1920, 1080), 18, "superfast", "grain"), ((3840, 2160), 18, "superfast", "grain")],
)
def test_x264_settings_follow_resolution(size, crf, preset, tune):
    x = resolve_x264(EncodeParams(), *size, 24.0)
    assert (x.crf, x.preset, x.tune, x.keyint) == (crf, preset, tune, 48)
    y = resolve_x264(EncodeParams(crf=30, preset="slow", tune="none", keyint=12), *size, 24.0)
    assert (y.crf, y.preset, y.tune, y.keyint) == (30, "slow", None, 12)
    assert "-tune" not in video_args(EncodeParams(tune="none"), *size, 24.0)
    args = video_args(EncodeParams(tune="film"), *size, 24.0)
    assert args[args.index("-tune") + 1] == "film"


@pytest.mark.parametrize(
    ("size", "fps", "kbps"),
    [((1280, 720), 24.0, 10_000), ((1920, 1080), 24.0, 18_400), ((1920, 1080), 60.0, 36_700),
     ((160, 96), 24.0, 2_000)],
)
def test_bitrate_ceiling_follows_size_and_rate(size, fps, kbps):
    assert resolve_x264(EncodeParams(), *size, fps).max_bitrate == kbps
    assert resolve_x264(EncodeParams(max_bitrate=0), *size, fps).max_bitrate == 0
    assert resolve_x264(EncodeParams(max_bitrate=777), *size, fps).max_bitrate == 777


def test_bitrate_ceiling_caps_grainy_frames(tmp_path):
    rng = np.random.default_rng(3)
    grain = rng.integers(0, 256, (48, H, W, 3), dtype=np.uint8)  # incompressible noise
    free = _encode(tmp_path / "free.mp4", grain, EncodeParams(max_bitrate=0))
    capped = _encode(tmp_path / "capped.mp4", grain, EncodeParams(max_bitrate=300))
    seconds = len(grain) / FPS
    assert free.stat().st_size * 8 / seconds / 1000 > 1500  # noise costs a lot at crf 18
    assert capped.stat().st_size * 8 / seconds / 1000 < 600  # the ceiling holds (+ headers)


def test_encode_counts_frames_and_is_deterministic(tmp_path):
    f = _frames(17)
    a = _encode(tmp_path / "a.mp4", f)
    b = _encode(tmp_path / "b.mp4", f)
    assert _sha(a) == _sha(b)  # identical frames → identical bytes
    rep = check_film(a, frames=17, fps=FPS, size=(W, H))
    assert rep.video_start == 0.0 and rep.video_duration == pytest.approx(17 / FPS)
    decoded = np.concatenate(list(read_frames(a, W, H, batch=5)))
    assert decoded.shape == f.shape
    assert np.abs(decoded.astype(int) - f).mean() < 6  # lossy, but the same picture
    assert not list(tmp_path.glob("*.tmp-*"))
    with pytest.raises(RenderError, match="17 video frames, expected 18"):
        check_film(a, frames=18, fps=FPS)
    with pytest.raises(RenderError, match="size 160x96"):
        check_film(a, frames=17, fps=FPS, size=(320, 192))
    assert ffmpeg_version().startswith("ffmpeg version")


def test_encoder_refuses_bad_frames_and_aborts_cleanly(tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(RenderError, match="uint8"), VideoEncoder(
        out, width=W, height=H, fps=FPS
    ) as enc:
        enc.write(np.zeros((2, H, W + 2, 3), np.uint8))
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError), VideoEncoder(out, width=W, height=H, fps=FPS) as enc:
        enc.write(_frames(3))
        raise RuntimeError("interrupted")
    assert not out.exists() and not list(tmp_path.iterdir())
    enc = VideoEncoder(out, width=W, height=H, fps=FPS)
    with pytest.raises(RenderError, match="no frames"):
        enc.close()


def test_segments_join_without_reencoding(tmp_path):
    f = _frames(30, seed=2)
    counts = [10, 7, 13]
    segs, pos = [], 0
    for i, c in enumerate(counts):
        segs.append(_encode(tmp_path / f"seg{i}.mp4", f[pos : pos + c]))
        pos += c
    film = concat_segments(segs, counts, tmp_path / "film.mp4", fps=FPS, params=EncodeParams())
    check_film(film, frames=30, fps=FPS, size=(W, H))
    joined = np.concatenate(list(read_frames(film, W, H)))
    parts = np.concatenate([np.concatenate(list(read_frames(s, W, H))) for s in segs])
    np.testing.assert_array_equal(joined, parts)  # copied, not re-encoded
    odd = _encode(tmp_path / "odd.mp4", f[:5], EncodeParams(preset="ultrafast"))
    with pytest.raises(RenderError, match="different settings"):
        concat_segments([segs[0], odd], [10, 5], tmp_path / "bad.mp4", fps=FPS,
                        params=EncodeParams())


def test_prepare_audio_trims_resamples_and_normalises(tmp_path):
    src = tmp_path / "src.wav"
    sf.write(src, sine(440, 3.0, 44100, amplitude=0.1).T, 44100)
    pa = prepare_audio(src, tmp_path / "a.wav", start=0.5, end=2.25, sample_rate=48000,
                       channels=2, target_lufs=-18.0)
    assert pa.samples == round(2.25 * 48000) - round(0.5 * 48000)
    assert pa.duration == pytest.approx(1.75) and pa.channels == 2
    y, sr = load_audio(pa.path)
    assert sr == 48000 and y.shape == (2, pa.samples)
    assert integrated_loudness(y, sr) == pytest.approx(-18.0, abs=0.1)
    assert pa.gain_db > 0 and pa.loudness_lufs < -18.0
    raw = prepare_audio(src, tmp_path / "r.wav", sample_rate=44100, channels=1)
    assert raw.gain_db == 0.0 and raw.loudness_lufs is None and raw.samples == 3 * 44100
    loud = tmp_path / "loud.wav"
    sf.write(loud, sine(440, 1.0, 48000, amplitude=0.9).T, 48000)
    capped = prepare_audio(loud, tmp_path / "c.wav", target_lufs=-5.0)
    yc, _ = load_audio(capped.path)
    assert np.abs(yc).max() < 10 ** (-1.0 / 20) + 1e-3  # true-peak ceiling wins
    with pytest.raises(RenderError, match="keeps no audio"):
        prepare_audio(src, tmp_path / "n.wav", start=5.0)


def test_film_audio_is_exact_and_aligned(tmp_path):
    src = tmp_path / "clicks.wav"
    sf.write(src, click_track(120, 2.0, 44100, offset=0.25).T, 44100)
    pa = prepare_audio(src, tmp_path / "a.wav", end=1.2, sample_rate=48000)
    seg = _encode(tmp_path / "s.mp4", _frames(29))  # round(1.2 * 24) = 29
    film = concat_segments([seg], [29], tmp_path / "film.mp4", fps=FPS,
                           params=EncodeParams(), audio=pa.path)
    rep = check_film(film, frames=29, fps=FPS, audio_duration=1.2, size=(W, H))
    assert rep.audio_start == 0.0 and rep.audio_sample_rate == 48000
    assert abs(rep.audio_duration - 1.2) <= 0.005
    with pytest.raises(RenderError, match="audio lasts"):
        check_film(film, frames=29, fps=FPS, audio_duration=1.25)
    with pytest.raises(RenderError, match="no audio stream"):
        check_film(seg, frames=29, fps=FPS, audio_duration=1.2)
    # the first click is still at 0.25 s in the film
    y, sr = load_audio(film, sr=48000, mono=True)
    assert abs(np.argmax(np.abs(y[0]) > 0.2) / sr - 0.25) < 0.003
    again = concat_segments([seg], [29], tmp_path / "film2.mp4", fps=FPS,
                            params=EncodeParams(), audio=pa.path)
    assert _sha(film) == _sha(again)


def test_album_join_keeps_picture_and_sound_together(tmp_path):
    films, wavs, counts = [], [], [29, 36]
    for i, (dur, n) in enumerate(zip([1.2, 1.5], counts, strict=True)):
        src = tmp_path / f"c{i}.wav"
        sf.write(src, click_track(60, dur + 0.5, 48000, offset=0.1).T, 48000)
        pa = prepare_audio(src, tmp_path / f"a{i}.wav", end=dur)
        seg = _encode(tmp_path / f"s{i}.mp4", _frames(n, seed=i))
        films.append(concat_segments([seg], [n], tmp_path / f"t{i}.mp4", fps=FPS,
                                     params=EncodeParams(), audio=pa.path))
        wavs.append(pa.path)
    album = concat_films(films, counts, wavs, tmp_path / "album.mp4", fps=FPS,
                         params=EncodeParams())
    total = sum(counts)
    rep = check_film(album, frames=total, fps=FPS, audio_duration=total / FPS, size=(W, H))
    assert rep.video_start == 0.0
    video = np.concatenate(list(read_frames(album, W, H)))
    first = np.concatenate(list(read_frames(films[0], W, H)))
    np.testing.assert_array_equal(video[: counts[0]], first)
    y, sr = load_audio(album, sr=48000, mono=True)
    loud = np.flatnonzero(np.abs(y[0]) > 0.2) / sr
    second_track = loud[loud > counts[0] / FPS]
    # the second track's first click sits 0.1 s after its first frame
    assert abs(second_track[0] - (counts[0] / FPS + 0.1)) < 0.003
    assert not list(tmp_path.glob(".album*"))


def test_stream_report_and_ffmpeg_errors(tmp_path):
    with pytest.raises(RenderError, match="not found"):
        stream_report(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a film at all" * 10)
    with pytest.raises(RenderError, match="unreadable"):
        stream_report(junk)
    with pytest.raises(RenderError, match="ffmpeg failed"):
        run_ffmpeg(["-i", str(junk), "-f", "null", "-"], what="probe")


def test_x264_reconstruction_is_what_the_decoder_gives(tmp_path):
    """The render checks segments from x264's dump-yuv; it must equal decoding the file."""
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (30, 48, 64, 3), dtype=np.uint8)  # grain-like: B-frames work
    out = tmp_path / "odd: name=x" / "seg.mp4"  # ':' and '=' in the folder do not reach x264
    with VideoEncoder(out, width=64, height=48, fps=24, params=EncodeParams(),
                      recon=True) as enc:
        enc.write(frames)
    assert enc.recon_path is not None and enc.recon_path.is_file()
    decoded = np.concatenate(list(read_frames(out, 64, 48, pix_fmt="yuv420p")))
    assert decoded.shape == (30, 64 * 48 * 3 // 2)
    assert enc.recon_path.read_bytes() == decoded.tobytes()


def test_aborted_encoder_leaves_no_reconstruction(tmp_path):
    out = tmp_path / "seg.mp4"
    enc = VideoEncoder(out, width=64, height=48, fps=24, recon=True)
    enc.write(np.zeros((3, 48, 64, 3), np.uint8))
    enc.abort()
    assert list(tmp_path.iterdir()) == []
