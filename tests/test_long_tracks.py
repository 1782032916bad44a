"""Long tracks in blocks: the same results whatever the block sizes, and memory that does
not grow with the track (issue #19 item 9). Tiny audio with tiny blocks (the block-size
constants patched), so every block edge, context window and end case is crossed."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.analysis import features as feat
from stratum_kernel.analysis.cache import FeatureCache
from stratum_kernel.analysis.features import compute_features, features_from_blocks
from stratum_kernel.audio import dsp_separator as dsp
from stratum_kernel.audio import loudness as L
from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.channels import downmix
from stratum_kernel.audio.files import audio_blocks, load_audio
from stratum_kernel.audio.resampling import resample, resample_blocks
from stratum_kernel.audio.stems import load_stems
from stratum_kernel.core import blockwise as bw
from stratum_kernel.core.dsp import median_filter_axis, stft
from stratum_kernel.film.mux import prepare_audio
from tests.fixtures_audio import album_stems

SR = 22050
STEMS = ("drums", "bass", "other", "vocals")


def _song(duration: float, sr: int = SR, seed: int = 3) -> tuple[np.ndarray, dict]:
    parts = album_stems(120.0, duration, sr, channels=2)
    rng = np.random.default_rng(seed)
    mix = sum(parts.values()) + 0.01 * rng.standard_normal((2, round(duration * sr)))
    return mix.astype(np.float32), parts


def _chunks(y: np.ndarray, size: int) -> list[np.ndarray]:
    return [y[..., s : s + size] for s in range(0, y.shape[-1], size)]


def _same_features(a, b) -> None:
    assert a.series.keys() == b.series.keys() and a.stems.keys() == b.stems.keys()
    for k in a.series:
        np.testing.assert_array_equal(a.series[k], b.series[k], err_msg=k)
    for s in a.stems:
        for k in a.stems[s]:
            np.testing.assert_array_equal(a.stems[s][k], b.stems[s][k], err_msg=f"{s} {k}")
    assert a.tempo_estimate == b.tempo_estimate and a.duration == b.duration
    np.testing.assert_array_equal(a.beats, b.beats)


# ------------------------------------------------------------------ building blocks


@pytest.mark.parametrize(("n_fft", "hop"), [(512, 256), (512, 128), (2048, 512)])
@pytest.mark.parametrize("chunk", [100, 3000, 10**6])
@pytest.mark.parametrize("frames", [32, 96])
def test_block_stft_and_its_inverse_equal_the_whole_signal(n_fft, hop, chunk, frames, rng):
    x = rng.standard_normal((2, 20011)).astype(np.float32)
    window = dsp._window(n_fft, hop)
    whole = stft(x, n_fft, hop, window)
    blocks = [s for _, s in bw.stft_blocks(_chunks(x, chunk), n_fft, hop, window, frames)]
    np.testing.assert_array_equal(np.concatenate(blocks, axis=-2), whole)
    back = np.concatenate(list(bw.istft_blocks(blocks, n_fft, hop, window, x.shape[1])), -1)
    np.testing.assert_array_equal(back, dsp._istft(whole, n_fft, hop, x.shape[1]))
    np.testing.assert_allclose(back, x, atol=1e-5)


@pytest.mark.parametrize("size", [3, 5, 17])
@pytest.mark.parametrize(("start", "stop"), [(0, 300), (0, 5), (7, 120), (290, 300), (150, 151)])
def test_median_with_context_equals_the_whole_filter(size, start, stop, rng):
    x = rng.standard_normal((300, 12)).astype(np.float32)
    np.testing.assert_array_equal(bw.median_filter_rows(x, size, start, stop),
                                  median_filter_axis(x, size, axis=0)[start:stop])
    tiny = x[:4]  # shorter than the window: mirrored more than once, as the whole filter does
    np.testing.assert_array_equal(bw.median_filter_rows(tiny, 17, 1, 3),
                                  median_filter_axis(tiny, 17, axis=0)[1:3])


def test_tiled_products_do_not_depend_on_the_other_rows(rng):
    a = rng.standard_normal((333, 100)).astype(np.float32)
    b = rng.standard_normal((100, 7)).astype(np.float32)
    whole = bw.matmul_rows(a, b)
    for block in (bw.ROW_TILE, 3 * bw.ROW_TILE):
        parts = [bw.matmul_rows(a[s : s + block], b) for s in range(0, 333, block)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_allclose(whole, a @ b, rtol=1e-5, atol=1e-5)


def test_queue_and_fit():
    q = bw.SampleQueue()
    for part in np.array_split(np.arange(10.0)[None, :], [3, 4, 9], axis=1):
        q.push(part)
    assert q.pop(5).tolist() == [[0, 1, 2, 3, 4]] and len(q) == 5
    assert np.concatenate([q.pop(2), q.pop(9)], axis=1).tolist() == [[5, 6, 7, 8, 9]]
    y = np.ones((2, 10), np.float32)
    assert np.concatenate(list(bw.fit_blocks(_chunks(y, 4), 6)), 1).shape == (2, 6)
    padded = np.concatenate(list(bw.fit_blocks(_chunks(y, 4), 13)), 1)
    assert padded.shape == (2, 13) and padded[:, 10:].sum() == 0


@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 22050), (44100, 48000), (8000, 22050)])
def test_streamed_resampling_equals_one_call(sr_in, sr_out, rng):
    y = (0.3 * rng.standard_normal((2, sr_in * 2 + 17))).astype(np.float32)
    whole = resample(y, sr_in, sr_out)
    for chunk in (999, 65536, 10**6):
        out = np.concatenate(list(resample_blocks(_chunks(y, chunk), sr_in, sr_out)), axis=1)
        np.testing.assert_array_equal(out, whole)


# ------------------------------------------------------------------ reading, loudness, film audio


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".m4a"])
def test_audio_blocks_give_the_samples_of_load_audio(tmp_path, suffix, rng):
    import subprocess

    import imageio_ffmpeg

    y = (0.3 * rng.standard_normal((2, 30000))).astype(np.float32)
    path = tmp_path / f"a{suffix}"
    if suffix == ".m4a":
        sf.write(tmp_path / "src.wav", y.T, SR, subtype="FLOAT")
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i",
                        str(tmp_path / "src.wav"), "-c:a", "aac", str(path)], check=True)
    else:
        sf.write(path, y.T, SR, subtype="FLOAT" if suffix == ".wav" else "PCM_24")
    whole, sr = load_audio(path)
    got_sr, channels, blocks = audio_blocks(path, block_frames=4096)
    parts = list(blocks)
    assert got_sr == sr and channels == 2 and max(p.shape[1] for p in parts) <= 4096
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_a_nan_found_while_streaming_names_its_time(tmp_path):
    from stratum_kernel.core.errors import AudioError

    y = np.zeros((1, SR * 2), np.float32)
    y[0, SR + SR // 2] = np.nan
    sf.write(tmp_path / "nan.wav", y.T, SR, subtype="FLOAT")
    _, _, blocks = audio_blocks(tmp_path / "nan.wav", block_frames=1000)
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN .* 1\.500 s"):
        list(blocks)


@pytest.mark.parametrize("chunk", [1000, 4410, 131072 + 5])
def test_streamed_loudness_equals_the_whole_track(chunk, rng):
    sr = 44100
    y = (0.2 * rng.standard_normal((2, sr * 5 + 333))).astype(np.float32)
    y[:, : sr] *= 0.01
    whole = L.loudness_summary(y, sr)
    meter = L.LoudnessMeter(sr, 2)
    for part in _chunks(y, chunk):
        meter.add(part)
    streamed = meter.summary()
    for name in ("integrated", "loudness_range", "true_peak", "sample_peak", "momentary_max",
                 "short_term_max", "duration"):
        assert getattr(streamed, name) == getattr(whole, name), name
    np.testing.assert_array_equal(streamed.momentary, whole.momentary)
    np.testing.assert_array_equal(streamed.short_term, whole.short_term)


@pytest.mark.parametrize("kwargs", [
    {"target_lufs": -14.0},
    {"start": 0.5, "end": 2.25, "sample_rate": 48000, "target_lufs": -20.0},
    {"sample_rate": 44100, "channels": 1},
])
def test_film_audio_in_blocks_is_the_whole_track_computation(tmp_path, monkeypatch, kwargs, rng):
    """prepare_audio streams; its samples equal the one-pass computation it replaced."""
    from stratum_kernel.audio import files

    y = (0.3 * rng.standard_normal((2, 44100 * 4 + 77))).astype(np.float32)
    src = tmp_path / "src.flac"
    sf.write(src, y.T, 44100, subtype="PCM_24")
    monkeypatch.setattr(files, "READ_FRAMES", 5000)  # many blocks
    pa = prepare_audio(src, tmp_path / "film.wav", **kwargs)
    out, _ = sf.read(tmp_path / "film.wav", dtype="float32", always_2d=True)

    sr = kwargs.get("sample_rate", 48000)
    ref, _ = load_audio(src, sr=sr)
    a = round(kwargs.get("start", 0.0) * sr)
    b = ref.shape[1] if "end" not in kwargs else round(kwargs["end"] * sr)
    ref = downmix(ref[:, a:b], kwargs.get("channels", 2))
    if "target_lufs" in kwargs:
        gain = L.normalisation_gain_db(L.loudness_summary(ref, sr),
                                       target_lufs=kwargs["target_lufs"])
        ref = ref * np.float32(10.0 ** (gain / 20.0))
        assert pa.gain_db == gain
    np.testing.assert_array_equal(out.T, ref)


# ------------------------------------------------------------------ features and stems


@pytest.mark.parametrize(("chunk", "frames"), [(777, 32), (5000, 64), (10**7, 1 << 16)])
def test_features_do_not_depend_on_the_block_size(monkeypatch, chunk, frames):
    mix, parts = _song(6.0, 44100)
    whole = compute_features(mix, 44100, bpm_prior=120.0, stems=parts, stem_source="dsp")
    monkeypatch.setattr(feat, "BLOCK_FRAMES", frames)  # 1 << 16: larger than the track
    blocked = features_from_blocks(
        _chunks(mix, chunk), 44100, bpm_prior=120.0,
        stems={s: _chunks(v, chunk + 13) for s, v in parts.items()}, stem_source="dsp")
    _same_features(whole, blocked)


@pytest.mark.parametrize(("chunk", "frames"), [(777, 32), (5000, 64), (10**7, 1 << 16)])
def test_separated_stems_do_not_depend_on_the_block_size(monkeypatch, chunk, frames):
    mix, _ = _song(8.0)
    params = dsp.DSPSeparatorParams(repet_window_seconds=2.0)  # windows shorter than the track
    whole = dsp.separate_dsp(mix, SR, params=params)
    monkeypatch.setattr(dsp, "BLOCK_FRAMES", frames)
    parts = list(dsp.separate_dsp_blocks(lambda: _chunks(mix, chunk), SR, params=params))
    for s in STEMS:
        np.testing.assert_array_equal(np.concatenate([p[s] for p in parts], axis=1), whole[s])
    np.testing.assert_allclose(sum(whole.values()), mix, atol=2e-6)


def test_repet_looks_only_within_its_window():
    """Far-away repetitions are not used: the model of a frame changes only with frames
    inside its ±window (so cost is linear and blocks cannot matter)."""
    rng = np.random.default_rng(0)
    harm = rng.random((400, 16)).astype(np.float32) + 0.1
    params = dsp.DSPSeparatorParams(repet_window_seconds=10.0, repet_step=1)
    rate = 4.0  # 40 frames each side
    model = dsp._repeating_background(harm, 1.0, params, rate)
    changed = harm.copy()
    changed[300:] *= 5.0
    model2 = dsp._repeating_background(changed, 1.0, params, rate)
    np.testing.assert_array_equal(model[:219], model2[:219])  # window [c-40, c+40]
    assert not np.array_equal(model[260:300], model2[260:300])


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _song_blocks(duration: float, chunk: int = 4096):
    """The same few seconds of song over and over, made a block at a time (never whole)."""
    mix, _ = _song(3.0)
    n = round(duration * SR)
    for s in range(0, n, chunk):
        idx = np.arange(s, min(n, s + chunk)) % mix.shape[1]
        yield mix[:, idx]


@pytest.mark.slow
def test_memory_does_not_grow_with_the_track(monkeypatch):
    """tracemalloc (numpy reports its allocations to it): 30 s and 120 s with small blocks,
    after a warm-up (filter banks and caches made once). The peak stays far below the
    whole-track arrays the old code held (the separator's four stereo stems; the analysis'
    complex spectrogram, its magnitude and power) and grows only by the small per-frame
    series."""
    monkeypatch.setattr(dsp, "BLOCK_FRAMES", 64)
    monkeypatch.setattr(feat, "BLOCK_FRAMES", 64)
    params = dsp.DSPSeparatorParams(repet_window_seconds=3.0)

    def separate(duration):
        for block in dsp.separate_dsp_blocks(lambda: _song_blocks(duration), SR, params=params):
            assert np.isfinite(block["vocals"]).all()

    def analyse(duration):
        features_from_blocks(_song_blocks(duration), SR, bpm_prior=120.0)

    for run, whole_bytes_per_s in ((separate, 4 * 2 * 4 * SR), (analyse, 16 * 1025 * SR / 512)):
        run(5.0)
        short, long = _peak_bytes(lambda r=run: r(30.0)), _peak_bytes(lambda r=run: r(120.0))
        whole_long = whole_bytes_per_s * 120.0
        assert long < 0.35 * whole_long, (run.__name__, long, whole_long)
        assert long - short < 0.15 * whole_bytes_per_s * 90.0, (run.__name__, short, long)


def test_the_cache_analyses_files_as_compute_features_does_arrays(tmp_path, make_album,
                                                                 monkeypatch):
    """From files in blocks (mix, separated stems through their cache) = from arrays."""
    from stratum_kernel.audio import files

    track = load_album(make_album(1, duration=3.0, stems=False, name="one")).tracks[0]
    monkeypatch.setattr(files, "READ_FRAMES", 3000)
    monkeypatch.setattr(dsp, "BLOCK_FRAMES", 32)
    monkeypatch.setattr(feat, "BLOCK_FRAMES", 64)
    cache = FeatureCache(tmp_path / "features")
    tf = cache.load_or_compute(track, stems="auto", stems_backend="dsp", store=False)
    stems = load_stems(track, cache_root=tmp_path / "stems", backend="dsp")  # from the cache
    y, sr = load_audio(track.audio_path)
    ref = compute_features(y, sr, bpm_prior=track.bpm, stems=stems.stems, stems_sr=stems.sr,
                           stem_source="dsp", track_id=track.id)
    _same_features(ref, tf)
