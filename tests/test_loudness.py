import math
import re
import subprocess

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly, sosfreqz

from stratum_kernel.audio import loudness as L
from tests.fixtures_audio import pink_noise, sine


def _db(a):
    return 20 * math.log10(a)


def _steps(levels_s, sr, *, freq=1000.0, channels=2, rng=None):
    """Concatenated segments [(dBFS, seconds)], sine peaks (or pink noise RMS when rng)."""
    parts = []
    for level, seconds in levels_s:
        if rng is None:
            parts.append(sine(freq, seconds, sr, amplitude=10 ** (level / 20), channels=channels))
        else:
            parts.append(pink_noise(seconds, sr, rng, rms_dbfs=level, channels=channels))
    return np.concatenate(parts, axis=1)


# ---------------------------------------------------------------- the K-weighting filter


def test_k_weighting_matches_bs1770_table_at_48k():
    sos = L.k_weighting_sos(48000)
    np.testing.assert_allclose(
        sos[0],
        [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
         0.73248077421585],
        atol=1e-8,
    )  # fmt: skip
    np.testing.assert_allclose(
        sos[1], [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], atol=1e-8
    )


# The bilinear design bends the shelf near Nyquist at low rates, as in libebur128.
@pytest.mark.parametrize(("sr", "tol_db"), [(8000, 0.5), (22050, 0.1), (44100, 0.01),
                                            (96000, 0.05), (192000, 0.05)])  # fmt: skip
def test_k_weighting_response_is_the_same_at_any_rate(sr, tol_db):
    freqs = np.array([30.0, 100.0, 997.0, 2000.0, 3000.0])
    _, ref = sosfreqz(L.k_weighting_sos(48000), worN=freqs, fs=48000)
    _, got = sosfreqz(L.k_weighting_sos(sr), worN=freqs, fs=sr)
    diff = 20 * np.log10(np.abs(got)) - 20 * np.log10(np.abs(ref))
    assert np.abs(diff).max() <= tol_db
    assert 20 * np.log10(abs(ref[2])) == pytest.approx(0.691, abs=0.01)


def test_k_weighting_needs_a_real_sample_rate():
    with pytest.raises(ValueError, match="at least 4 kHz"):
        L.k_weighting_sos(2000)


# ---------------------------------------------------------------- EBU Tech 3341 / 3342


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([(-23, 20)], -23.0),  # 3341 case 1
        ([(-33, 20)], -33.0),  # case 2
        ([(-36, 10), (-23, 60), (-36, 10)], -23.0),  # case 3: relative gate
        ([(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)], -23.0),  # case 4
        ([(-26, 20), (-20, 20.1), (-26, 20)], -23.0),  # case 5
    ],
)
def test_tech3341_integrated_loudness(segments, expected):
    y = _steps(segments, 48000)
    assert L.integrated_loudness(y, 48000) == pytest.approx(expected, abs=0.1)


def test_tech3341_steady_momentary_and_short_term():
    y = _steps([(-23, 20)], 48000)
    m = L.momentary_loudness(y, 48000)
    s = L.short_term_loudness(y, 48000)
    assert len(m) == 197 and len(s) == 171  # 400 ms / 3 s blocks every 100 ms over 20 s
    np.testing.assert_allclose(m, -23.0, atol=0.1)
    np.testing.assert_allclose(s, -23.0, atol=0.1)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([(-20, 20), (-30, 20)], 10.0),  # 3342 case 1
        ([(-20, 20), (-15, 20)], 5.0),  # case 2
        ([(-40, 20), (-20, 20)], 20.0),  # case 3
        ([(-50, 20), (-35, 20), (-20, 20), (-35, 20), (-50, 20)], 15.0),  # case 4
    ],
)
def test_tech3342_loudness_range(segments, expected):
    y = _steps(segments, 48000)
    assert L.loudness_range(y, 48000) == pytest.approx(expected, abs=0.1)


# ---------------------------------------------------------------- reference implementations


def _signals(sr, rng):
    return {
        "sine -20 dBFS mono": sine(1000.0, 5.0, sr, amplitude=0.1),
        "sine -23 dBFS stereo": sine(1000.0, 5.0, sr, amplitude=10 ** (-23 / 20), channels=2),
        "pink stereo": pink_noise(6.0, sr, rng, rms_dbfs=-18, channels=2),
        "stepped pink": _steps([(-35, 2), (-15, 3), (-25, 2)], sr, rng=rng),
        "low bass": sine(50.0, 4.0, sr, amplitude=0.5, channels=2),
    }


@pytest.mark.parametrize("sr", [48000, 44100])
def test_integrated_agrees_with_pyloudnorm(sr, rng):
    pyln = pytest.importorskip("pyloudnorm")
    meter = pyln.Meter(sr)
    for name, y in _signals(sr, rng).items():
        ref = meter.integrated_loudness(y.T.astype(np.float64))
        assert L.integrated_loudness(y, sr) == pytest.approx(ref, abs=0.1), name


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000, 96000])
def test_integrated_equals_pyloudnorm_with_the_same_filter_design(sr, rng):
    # pyloudnorm's "DeMan" filter is the analogue design we use; then only rounding differs
    pyln = pytest.importorskip("pyloudnorm")
    meter = pyln.Meter(sr, filter_class="DeMan")
    y = pink_noise(4.0, sr, rng, rms_dbfs=-20, channels=2)
    ref = meter.integrated_loudness(y.T.astype(np.float64))
    assert L.integrated_loudness(y, sr) == pytest.approx(ref, abs=0.01)


def _ffmpeg_ebur128(path):
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
           "-af", "ebur128=peak=true", "-f", "null", "-"]  # fmt: skip
    err = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stderr
    summary = err[err.rindex("Summary:") :]

    def grab(label):
        return float(re.search(rf"{label}:\s+(-?[\d.]+|-inf)", summary).group(1))

    return grab("I"), grab("LRA"), grab("Peak")


def test_agrees_with_ffmpeg_ebur128(tmp_path, rng):
    sr = 44100  # 48 kHz is covered by the Tech 3341/3342 cases and pyloudnorm
    # steps long enough that both percentile conventions land on plateaus
    y = _steps([(-30, 8), (-18, 10), (-24, 8), (-14, 10), (-28, 8)], sr, rng=rng)
    path = tmp_path / "steps.wav"
    sf.write(path, y.T, sr, subtype="FLOAT")
    ref_i, ref_lra, ref_tp = _ffmpeg_ebur128(path)
    s = L.loudness_summary(y, sr)
    # ffmpeg prints one decimal: allow its rounding on top of 0.1
    assert s.integrated == pytest.approx(ref_i, abs=0.15)
    assert s.loudness_range == pytest.approx(ref_lra, abs=0.15)
    assert s.true_peak == pytest.approx(ref_tp, abs=0.15)


# ---------------------------------------------------------------- true peak


def test_true_peak_finds_the_inter_sample_peak():
    sr = 48000
    y = sine(sr / 4, 2.0, sr, amplitude=0.5, phase=np.pi / 4)  # samples at ±0.354, peak 0.5
    fade = np.ones(y.shape[1])
    ramp = np.sin(np.linspace(0, np.pi / 2, 4800)) ** 2
    fade[:4800], fade[-4800:] = ramp, ramp[::-1]
    y = (y * fade).astype(np.float32)
    assert _db(np.abs(y).max()) == pytest.approx(_db(0.5 / np.sqrt(2)), abs=0.01)
    assert L.true_peak_dbtp(y, sr) == pytest.approx(_db(0.5), abs=0.05)


@pytest.mark.parametrize("sr", [44100, 96000])
def test_true_peak_equals_oversampled_maximum(sr, rng, monkeypatch):
    monkeypatch.setattr(L, "_TRUE_PEAK_CHUNK", 5000)  # many chunk seams
    y = pink_noise(1.0, sr, rng, rms_dbfs=-15, channels=2)
    up = resample_poly(y.astype(np.float64), L.true_peak_factor(sr), 1, axis=-1)
    phase = np.arange(up.shape[1]) % L.true_peak_factor(sr) != 0
    ref = max(np.abs(up[:, phase]).max(), np.abs(y).max())
    assert L.true_peak_dbtp(y, sr) == pytest.approx(_db(ref), abs=1e-4)


def test_true_peak_at_192k_is_the_sample_peak():
    y = sine(1000.0, 0.1, 192000, amplitude=0.25)
    assert L.true_peak_factor(192000) == 1
    assert L.true_peak_dbtp(y, 192000) == pytest.approx(_db(np.abs(y).max()))


# ---------------------------------------------------------------- edge cases


def test_silence_is_minus_infinity_not_a_crash():
    y = np.zeros((2, 48000 * 5), dtype=np.float32)
    s = L.loudness_summary(y, 48000)
    assert s.integrated == -math.inf and s.true_peak == -math.inf
    assert s.sample_peak == -math.inf and s.momentary_max == -math.inf
    assert s.loudness_range == 0.0
    assert np.all(np.isneginf(s.momentary))
    d = s.to_dict(series=True)
    assert d["integrated_lufs"] is None and d["true_peak_dbtp"] is None
    assert d["momentary_lufs"][0] is None


def test_very_quiet_signal_is_gated_out():
    y = sine(1000.0, 3.0, 48000, amplitude=10 ** (-80 / 20), channels=2)
    assert L.integrated_loudness(y, 48000) == -math.inf
    assert L.momentary_loudness(y, 48000)[0] == pytest.approx(-80.0, abs=0.1)


def test_empty_signal():
    s = L.loudness_summary(np.zeros((1, 0), dtype=np.float32), 44100)
    assert s.integrated == -math.inf and s.momentary.size == 0 and s.duration == 0.0


def test_signal_shorter_than_a_block_gets_one_value():
    y = sine(1000.0, 0.3, 44100, amplitude=10 ** (-23 / 20), channels=2)
    assert L.momentary_loudness(y, 44100).shape == (1,)
    assert L.short_term_loudness(y, 44100).shape == (1,)
    assert L.integrated_loudness(y, 44100) == pytest.approx(-23.0, abs=0.1)
    assert L.loudness_range(y, 44100) == 0.0


def test_mono_1d_and_2d_agree():
    y = sine(440.0, 1.0, 22050, amplitude=0.3)
    assert L.integrated_loudness(y[0], 22050) == L.integrated_loudness(y, 22050)


def test_channel_weights_surround_and_lfe():
    sr = 48000
    tone = sine(1000.0, 2.0, sr, amplitude=0.25)[0]
    five_one = np.zeros((6, tone.size), dtype=np.float32)
    five_one[3] = tone  # LFE only: not counted
    assert L.integrated_loudness(five_one, sr) == -math.inf
    front, surround = five_one * 0, five_one * 0
    front[0], surround[4] = tone, tone
    diff = L.integrated_loudness(surround, sr) - L.integrated_loudness(front, sr)
    assert diff == pytest.approx(10 * math.log10(1.41), abs=1e-6)
    assert L.channel_weights(5).tolist() == [1.0, 1.0, 1.0, 1.41, 1.41]
    assert L.channel_weights(2).tolist() == [1.0, 1.0]


def test_chunked_filtering_matches_one_pass(rng, monkeypatch):
    sr = 8000
    y = _steps([(-30, 5), (-15, 7), (-25, 5)], sr, rng=rng)
    one_pass = L.loudness_summary(y, sr)
    monkeypatch.setattr(L, "_SEGMENTS_PER_CHUNK", 7)
    chunked = L.loudness_summary(y, sr)
    np.testing.assert_allclose(chunked.momentary, one_pass.momentary, atol=1e-5)
    assert chunked.integrated == pytest.approx(one_pass.integrated, abs=1e-9)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="channels, samples"):
        L.integrated_loudness(np.zeros((1, 2, 3)), 48000)
    with pytest.raises(ValueError, match="floating point"):
        L.integrated_loudness(np.zeros((1, 100), dtype=np.int16), 48000)


# ---------------------------------------------------------------- summary


def test_summary_fields_and_times(rng):
    sr = 22050
    y = _steps([(-30, 4), (-16, 4)], sr, rng=rng)
    s = L.loudness_summary(y, sr)
    assert s.integrated == pytest.approx(L.integrated_loudness(y, sr))
    assert s.loudness_range == pytest.approx(L.loudness_range(y, sr))
    assert s.momentary_max == pytest.approx(float(s.momentary.max()))
    assert s.short_term_max <= s.momentary_max + 0.5
    assert s.sample_peak <= s.true_peak
    assert s.momentary.dtype == np.float32 and len(s.momentary) == 77
    t = s.times("momentary")
    assert t[0] == pytest.approx(0.2) and t[1] - t[0] == pytest.approx(0.1)
    assert s.times("short_term")[0] == pytest.approx(1.5)
    d = s.to_dict()
    assert set(d) >= {"integrated_lufs", "loudness_range_lu", "true_peak_dbtp"}
    assert "momentary_lufs" not in d
    assert len(s.to_dict(series=True)["short_term_lufs"]) == len(s.short_term)


def test_normalisation_gain(rng):
    y = pink_noise(4.0, 44100, rng, rms_dbfs=-30, channels=2)
    s = L.loudness_summary(y, 44100)
    gain = L.normalisation_gain_db(s, target_lufs=-23.0, true_peak_ceiling=0.0)
    assert gain == pytest.approx(-23.0 - s.integrated)
    scaled = y * 10 ** (gain / 20)
    assert L.integrated_loudness(scaled, 44100) == pytest.approx(-23.0, abs=0.01)
    # a ceiling below the peak wins over the target
    capped = L.normalisation_gain_db(s, target_lufs=0.0, true_peak_ceiling=-1.0)
    assert capped == pytest.approx(-1.0 - s.true_peak)
    silent = L.loudness_summary(np.zeros((1, 4410), dtype=np.float32), 44100)
    assert L.normalisation_gain_db(silent) == 0.0


def test_album_loudness_pools_the_tracks_blocks(rng):
    sr = 22050
    a = pink_noise(8.0, sr, rng, rms_dbfs=-26, channels=2)
    b = pink_noise(8.0, sr, rng, rms_dbfs=-20, channels=2)
    joined = L.integrated_loudness(np.concatenate([a, b], axis=1), sr)
    sa, sb = L.loudness_summary(a, sr), L.loudness_summary(b, sr)
    album = L.album_integrated_loudness([sa, sb])
    # the same blocks, less the three that would straddle the join
    assert album == pytest.approx(joined, abs=0.05)
    assert sa.integrated < album < sb.integrated
    # a much quieter track is gated out of the album figure entirely
    quiet = L.loudness_summary(a * 0.1, sr)
    assert L.album_integrated_loudness([quiet, sb]) == pytest.approx(sb.integrated, abs=1e-3)
    assert L.album_integrated_loudness([]) == -math.inf
