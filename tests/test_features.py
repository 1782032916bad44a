"""Audio features on synthetic signals with known answers, album normalisation, and the
exact mapping of features onto the video timeline."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from stratum_kernel.analysis.features import (
    FeatureParams,
    TrackFeatures,
    compute_features,
    warm_numba_cache,
)
from stratum_kernel.analysis.frames import album_reference, frame_features, sample_peaks
from stratum_kernel.analysis.tempo import estimate_tempo, track_beats
from stratum_kernel.core.dsp import median_filter_axis, stft_magnitude
from stratum_kernel.core.errors import AudioError
from stratum_kernel.core.timeline import frame_count
from tests.fixtures_audio import click_track, sine

SR = 22050
P = FeatureParams()


def white_noise(duration: float, sr: int = SR, seed: int = 0, amplitude: float = 0.3):
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal((1, round(duration * sr)))).astype(np.float32)


def steady(series: np.ndarray, trim: int = 8) -> np.ndarray:
    """The series without its first and last frames (zero padding at the edges)."""
    return series[..., trim:-trim]


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_centroid_of_a_sine_is_its_frequency(freq):
    tf = compute_features(sine(freq, 2.0, SR), SR, params=P)
    assert np.median(steady(tf.series["centroid"])) == pytest.approx(freq, rel=0.03)


def test_flatness_is_high_for_noise_and_low_for_a_sine():
    noise = compute_features(white_noise(2.0), SR, params=P).series["flatness"]
    tone = compute_features(sine(1000.0, 2.0, SR), SR, params=P).series["flatness"]
    assert np.median(steady(noise)) > 0.5
    assert np.median(steady(tone)) < 0.05


@pytest.mark.parametrize("amplitude", [0.5, 0.05])
def test_rms_of_a_sine_is_amplitude_over_root_two(amplitude):
    tf = compute_features(sine(220.0, 2.0, SR, amplitude=amplitude), SR, params=P)
    assert np.median(steady(tf.series["rms"])) == pytest.approx(amplitude / np.sqrt(2), rel=0.01)


def test_level_series_scale_with_gain_and_timbre_series_do_not(rng):
    y = click_track(120.0, 4.0, SR) + sine(330.0, 4.0, SR, amplitude=0.2)
    loud = compute_features(y, SR, params=P)
    quiet = compute_features(0.1 * y, SR, params=P)
    for name in ("rms", "harmonic", "percussive"):
        np.testing.assert_allclose(
            quiet.series[name], 0.1 * loud.series[name], rtol=1e-3, atol=1e-7
        )
    # onset flux of magnitude**(1/3): a tenth of the level gives 0.1**(1/3) of the flux
    peaks = loud.series["onset"] > 0.5 * loud.series["onset"].max()
    assert peaks.sum() >= 8
    ratio = quiet.series["onset"][peaks] / loud.series["onset"][peaks]
    # 0.1 ** (1/3) = 0.46 where every band is above the -100 dB floor, less where the
    # quieter copy sinks below it
    assert ratio.min() > 0.2 and ratio.max() < 0.5 and np.median(ratio) > 0.3
    for name in ("centroid", "chroma"):
        np.testing.assert_allclose(quiet.series[name], loud.series[name], rtol=1e-3, atol=1e-4)
    assert quiet.tempo_estimate == pytest.approx(loud.tempo_estimate, abs=0.2)


def test_harmonic_and_percussive_energy_split_tone_from_clicks():
    tone = compute_features(sine(440.0, 3.0, SR, amplitude=0.3), SR, params=P).series
    frac = steady(tone["harmonic"]) ** 2 / np.maximum(steady(tone["rms"]) ** 2, 1e-12)
    assert np.median(frac) > 0.9
    clicks = compute_features(click_track(120.0, 3.0, SR, freq=3000.0), SR, params=P).series
    peak = np.argmax(clicks["rms"][5:-5]) + 5
    assert clicks["percussive"][peak] > clicks["harmonic"][peak]
    np.testing.assert_allclose(
        tone["harmonic"] ** 2 + tone["percussive"] ** 2, tone["rms"] ** 2, rtol=1e-4, atol=1e-9
    )


def test_series_shapes_and_rate():
    y = sine(500.0, 1.5, 44100, channels=2)
    tf = compute_features(y, 44100, params=P, track_id="t")
    n = 1 + round(1.5 * SR) // P.hop_length
    assert tf.n_frames == n and tf.rate == pytest.approx(SR / 512)
    assert tf.duration == pytest.approx(1.5)
    assert tf.series["mfcc"].shape == (13, n) and tf.series["chroma"].shape == (12, n)
    for name in ("rms", "centroid", "flatness", "onset", "harmonic", "percussive"):
        assert tf.series[name].shape == (n,) and tf.series[name].dtype == np.float32
    assert tf.stems == {} and tf.stem_source == "none" and tf.track_id == "t"
    # A in the chroma of a 440 Hz tone (chroma index 9 with C = 0)
    assert (
        np.argmax(
            np.median(steady(compute_features(sine(440.0, 1.0, SR), SR).series["chroma"]), axis=1)
        )
        == 9
    )


def test_click_track_tempo_and_beats_on_the_clicks():
    y = click_track(120.0, 12.0, SR, offset=0.25)
    tf = compute_features(y, SR, params=P)
    assert tf.tempo_estimate == pytest.approx(120.0, abs=1.5)
    assert tf.tempo == tf.tempo_estimate
    clicks = 0.25 + 0.5 * np.arange(24)
    inner = tf.beats[(tf.beats > 1.0) & (tf.beats < 11.0)]
    assert len(inner) >= 18
    error = np.abs(inner[:, None] - clicks[None, :]).min(axis=1)
    assert error.max() <= 1.01 * P.hop_length / SR  # on the click, to one hop
    assert tf.beats.dtype == np.float64


@pytest.mark.parametrize(
    ("prior", "expected_estimate"), [(60.0, 60.0), (123.0, 120.0), (150.0, 120.0)]
)
def test_bpm_prior_sets_the_grid_and_guides_the_estimate(prior, expected_estimate):
    tf = compute_features(click_track(120.0, 12.0, SR), SR, params=P, bpm_prior=prior)
    assert tf.tempo == prior
    assert tf.tempo_estimate == pytest.approx(expected_estimate, rel=0.03)
    spacing = np.median(np.diff(tf.beats))
    assert spacing == pytest.approx(60.0 / prior, abs=P.hop_length / SR)


@pytest.mark.parametrize("bpm", [86.0, 98.0, 132.0])
def test_estimate_tempo_of_an_onset_pulse(bpm):
    rate = SR / 512
    t = np.arange(round(30 * rate)) / rate
    onset = np.maximum(0.0, np.cos(2 * np.pi * t * bpm / 60.0)) ** 16
    assert estimate_tempo(onset, rate, start_bpm=bpm * 1.1) == pytest.approx(bpm, rel=0.01)
    assert estimate_tempo(np.zeros(100), rate, start_bpm=99.0) == 99.0


def test_per_stem_envelope_and_onset():
    drums = click_track(120.0, 4.0, 44100, offset=0.5)
    bass = sine(60.0, 4.0, 44100, amplitude=0.4)
    stems = {"drums": drums, "bass": bass, "other": 0 * bass, "vocals": 0.01 * bass}
    tf = compute_features(drums + bass, 44100, params=P, stems=stems, stem_source="dsp")
    assert tf.stem_source == "dsp" and set(tf.stems) == set(stems)
    for d in tf.stems.values():
        assert d["envelope"].shape == (tf.n_frames,) and d["onset"].shape == (tf.n_frames,)
    assert np.median(steady(tf.stems["bass"]["envelope"])) == pytest.approx(
        0.4 / np.sqrt(2), rel=0.02
    )
    onset = tf.stems["drums"]["onset"]
    local_max = (onset[1:-1] > onset[:-2]) & (onset[1:-1] >= onset[2:])
    strong = np.flatnonzero(local_max & (onset[1:-1] > 0.3 * onset.max())) + 1
    np.testing.assert_allclose(strong / tf.rate, 0.5 + 0.5 * np.arange(7), atol=1.01 * 512 / SR)
    assert tf.stems["other"]["envelope"].max() == 0.0
    np.testing.assert_allclose(
        tf.stems["vocals"]["envelope"], 0.01 * tf.stems["bass"]["envelope"], rtol=1e-3, atol=1e-9
    )


def test_bad_audio_raises_audio_errors():
    with pytest.raises(AudioError, match="no audio"):
        compute_features(np.zeros((2, 0), np.float32), SR, track_id="x")
    bad = sine(440.0, 0.5, SR)
    bad[0, 100] = np.nan
    with pytest.raises(AudioError, match=r"'x'.*NaN"):
        compute_features(bad, SR, track_id="x")
    with pytest.raises(ValueError, match="stem_source"):
        compute_features(bad[:, :50] * 0, SR, stems={"drums": bad[:, :50] * 0}, stem_source="magic")


def test_silence_and_very_short_audio_give_finite_features():
    for y in (np.zeros((1, SR), np.float32), sine(440.0, 0.05, SR)):
        tf = compute_features(y, SR, params=P, bpm_prior=100.0)
        for arr in tf.series.values():
            assert np.isfinite(arr).all()
        assert tf.tempo == 100.0


def test_params_validate_and_digest_is_stable():
    assert FeatureParams().digest() == FeatureParams().digest()
    assert FeatureParams(n_mfcc=20).digest() != FeatureParams().digest()
    assert len(P.digest()) == 16
    with pytest.raises(ValidationError):
        FeatureParams(hop_length=4096, n_fft=2048)
    with pytest.raises(ValidationError):
        FeatureParams(hpss_kernel=16)
    with pytest.raises(ValidationError):
        FeatureParams(unknown=1)


def test_median_filter_matches_scipy():
    from scipy.ndimage import median_filter

    x = np.random.default_rng(3).random((20, 40)).astype(np.float32)
    for axis in (0, 1):
        size = [1, 1]
        size[axis] = 7
        np.testing.assert_array_equal(
            median_filter_axis(x, 7, axis), median_filter(x, size=size, mode="reflect")
        )


def test_stft_magnitude_of_a_bin_centred_sine():
    n_fft, hop = 1024, 256
    freq = 20 * SR / n_fft
    mag = stft_magnitude(sine(freq, 1.0, SR, amplitude=1.0)[0], n_fft, hop)
    assert mag.shape == (1 + SR // hop, n_fft // 2 + 1)
    assert np.argmax(mag[40]) == 20
    assert mag[40, 20] == pytest.approx(n_fft / 4, rel=1e-3)  # A * sum(hann) / 2


# ------------------------------------------------------------------ album normalisation


def _track(y: np.ndarray, tid: str, stems: dict | None = None) -> TrackFeatures:
    return compute_features(y, SR, params=P, track_id=tid, bpm_prior=120.0, stems=stems)


def test_album_reference_keeps_a_quiet_track_quiet():
    y = click_track(120.0, 4.0, SR) + sine(220.0, 4.0, SR, amplitude=0.3)
    stems = {"drums": click_track(120.0, 4.0, SR), "bass": sine(220.0, 4.0, SR, amplitude=0.3)}
    loud = _track(y, "single", stems)
    quiet = _track(10 ** (-20 / 20) * y, "ballad", {k: 0.1 * v for k, v in stems.items()})
    ref = album_reference([loud, quiet])
    ff_loud = frame_features(loud, fps=30, reference=ref)
    ff_quiet = frame_features(quiet, fps=30, reference=ref)
    inner = slice(5, -5)
    pairs = [(ff_loud.values[k], ff_quiet.values[k]) for k in ("rms", "harmonic", "percussive")]
    pairs.append((ff_loud.stems["bass"]["envelope"], ff_quiet.stems["bass"]["envelope"]))
    compared = 0
    for a, b in pairs:
        a, b = a[inner], b[inner]
        unclipped = a < 0.999  # the loudest frames of the single are clipped at 1.0
        np.testing.assert_allclose(b[unclipped], 0.1 * a[unclipped], rtol=2e-3, atol=1e-5)
        assert (b[~unclipped] >= 0.0998).all()
        compared += int(unclipped.sum())
    assert compared > 100
    assert ff_quiet.values["onset"].max() < 0.5 < ff_loud.values["onset"].max()
    # per-track scaling makes both react alike
    alone_loud = frame_features(loud, fps=30)
    alone_quiet = frame_features(quiet, fps=30)
    np.testing.assert_allclose(
        alone_quiet.values["rms"], alone_loud.values["rms"], rtol=2e-3, atol=1e-4
    )
    assert ref.track_ids == ("single", "ballad")
    assert type(ref).from_dict(ref.to_dict()) == ref


def test_frame_features_contract():
    y = click_track(120.0, 6.0, SR, offset=0.1) + sine(330.0, 6.0, SR, amplitude=0.2)
    tf = _track(y, "t", {"drums": click_track(120.0, 6.0, SR, offset=0.1)})
    ff = frame_features(tf, fps=24, markers=(2.0, {"time": 4.0}))
    assert ff.n_frames == frame_count(6.0, 24) == 144
    for name, arr in ff.values.items():
        assert arr.shape[-1] == 144, name
        if name != "mfcc":
            assert arr.min() >= 0.0 and arr.max() <= 1.0, name
    assert ff.values["chroma"].shape == (12, 144) and ff.values["mfcc"].shape == (13, 144)
    np.testing.assert_allclose(ff.values["mfcc"].mean(axis=1), 0.0, atol=0.25)
    assert set(ff.stems) == {"drums"} and ff.stems["drums"]["onset"].max() == pytest.approx(
        1.0, abs=0.3
    )
    np.testing.assert_array_equal(ff.section[[0, 47, 48, 95, 96, 143]], [0, 0, 1, 1, 2, 2])
    assert ff.markers == (2.0, 4.0) and ff.tempo == 120.0
    # beats every half second -> every 12 frames
    assert set(np.diff(ff.beat_frames)) <= {11, 12, 13}


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_a_range_equals_the_same_frames_of_the_whole_track(fps):
    y = click_track(98.0, 5.0, SR) + sine(200.0, 5.0, SR, amplitude=0.1)
    tf = _track(y, "t")
    whole = frame_features(tf, fps=fps)
    k = 37
    part = frame_features(tf, fps=fps, start=k / fps, end=(k + 50) / fps)
    assert part.n_frames == 50
    for name in whole.values:
        np.testing.assert_allclose(
            part.values[name], whole.values[name][..., k : k + 50], atol=1e-6
        )
    np.testing.assert_array_equal(
        part.beat_frames + k,
        whole.beat_frames[(whole.beat_frames >= k) & (whole.beat_frames < k + 50)],
    )


def test_frame_features_rejects_bad_ranges():
    tf = _track(sine(200.0, 1.0, SR), "t")
    with pytest.raises(ValueError, match="start < end"):
        frame_features(tf, fps=30, start=1.0, end=0.5)
    with pytest.raises(ValueError, match="fps"):
        frame_features(tf, fps=0)


def test_sample_peaks_keeps_each_spike_once():
    rate = SR / 512
    series = np.zeros(200, np.float32)
    series[[10, 57, 150]] = [1.0, 0.5, 0.8]
    for fps in (24.0, 30.0, 60.0, 120.0):
        times = np.arange(frame_count(200 / rate, fps)) / fps
        out = sample_peaks(series, rate, times, fps)
        for j, v in zip([10, 57, 150], [1.0, 0.5, 0.8], strict=True):
            frame = int(np.floor(j / rate * fps + 0.5))
            assert out[frame] == pytest.approx(v)
            assert (out[max(0, frame - 3) : frame] < v).all()


# ------------------------------------------------------------------ the exact timeline


@pytest.fixture(scope="module")
def ten_minute_clicks():
    """Onset series of a 10-minute click track at 22.05 kHz, computed by the analysis'
    own STFT → mel → onset path, and the click times: ten clicks near the start and ten
    near the end, each starting exactly on a hop (so the true frame is known exactly)."""
    import librosa

    from stratum_kernel.analysis.features import _onset_from_mel

    duration = 600.0
    n = round(duration * SR)
    rate = SR / P.hop_length
    hops = np.concatenate([np.arange(10) * 37 + 20, (n // P.hop_length - 400) + np.arange(10) * 37])
    y = np.zeros(n, np.float32)
    burst = (np.hanning(24) * np.random.default_rng(0).standard_normal(24)).astype(np.float32)
    for h in hops:
        y[h * P.hop_length : h * P.hop_length + 24] += burst
    mag = stft_magnitude(y, P.n_fft, P.hop_length)
    mel = (mag * mag) @ librosa.filters.mel(sr=SR, n_fft=P.n_fft, n_mels=P.n_mels).T
    onset = _onset_from_mel(mel, P, P.n_fft)
    zeros = np.zeros_like(onset)
    tf = TrackFeatures(
        track_id="clicks",
        duration=duration,
        sr=SR,
        hop=P.hop_length,
        series={
            "rms": zeros + 0.1,
            "centroid": zeros + 1000,
            "flatness": zeros + 0.1,
            "onset": onset,
            "harmonic": zeros,
            "percussive": zeros,
            "mfcc": np.zeros((13, len(onset)), np.float32),
            "chroma": np.zeros((12, len(onset)), np.float32),
        },
        tempo_estimate=120.0,
        tempo=120.0,
        beats=hops / rate,
    )
    return tf, hops / rate


@pytest.mark.parametrize("fps", [24, 30, 60, 120])
def test_clicks_land_on_the_right_frame_at_the_end_as_at_the_start(ten_minute_clicks, fps):
    tf, click_times = ten_minute_clicks
    ff = frame_features(tf, fps=fps)
    assert ff.n_frames == round(600.0 * fps)
    onset = ff.values["onset"]
    expected = np.floor(click_times * fps + 0.5).astype(int)
    found = []
    for frame in expected:
        lo = max(0, frame - fps // 4)
        found.append(lo + int(np.argmax(onset[lo : frame + fps // 4 + 1])))
    np.testing.assert_array_equal(found, expected)  # first ten: start, last ten: ~9:50
    np.testing.assert_array_equal(ff.beat_frames, expected)
    # a range starting late keeps the same frame grid
    start = 590.0
    tail = frame_features(tf, fps=fps, start=start)
    assert tail.n_frames == round(10.0 * fps)
    late = expected[expected >= round(start * fps)] - round(start * fps)
    np.testing.assert_array_equal(tail.beat_frames, late)


@pytest.mark.slow
def test_warm_numba_cache_runs():
    warm_numba_cache()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_track_beats_matches_librosa(seed):
    import librosa

    rng = np.random.default_rng(seed)
    rate = SR / 512
    n = int(rng.integers(300, 2000))
    bpm = float(rng.uniform(70, 180))
    t = np.arange(n) / rate
    onset = np.maximum(0, rng.standard_normal(n)) ** 3
    onset += 5 * (np.mod(t * bpm / 60 + rng.uniform(), 1) < 0.03)
    onset[: 20 * seed] = 0
    _, expected = librosa.beat.beat_track(
        onset_envelope=onset, sr=SR, hop_length=512, bpm=bpm, trim=False
    )
    np.testing.assert_array_equal(track_beats(onset, rate, bpm), expected)
