"""Loudness, dynamics and spectral views, and the raster primitives under them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratum_kernel.viz import raster
from stratum_kernel.viz.dynamics import (
    DynamicsSeries,
    album_dynamics_ranges,
    compute_dynamics,
    crest_factor_db,
    dynamics_legend,
    render_dynamics,
)
from stratum_kernel.viz.loudness_view import (
    album_loudness_ceiling,
    compute_loudness,
    loudness_numbers,
    render_loudness,
)
from stratum_kernel.viz.params import DynamicsParams, LoudnessParams, SpectralParams
from stratum_kernel.viz.raster import parse_hex
from stratum_kernel.viz.spectral import (
    SpectralData,
    SpectralSource,
    album_max_db,
    compute_spectral,
    render_spectral,
)
from tests.fixtures_audio import sine

SR = 8000


# ---------------------------------------------------------------- raster primitives


def test_raster_primitives():
    assert parse_hex("#6B3FA0") == (107, 63, 160) and parse_hex("2d8f8f") == (45, 143, 143)
    for bad in ["#12345", "red", "#gg0000", 7]:
        with pytest.raises(ValueError, match="hex colour"):
            parse_hex(bad)
    assert raster.time_to_column(0.0, 0.0, 10.0, 100) == 0
    assert raster.time_to_column(9.999, 0.0, 10.0, 100) == 99
    assert raster.time_to_column(10.0, 0.0, 10.0, 100) is None
    assert raster.time_to_column(-0.01, 0.0, 10.0, 100) is None
    assert raster.time_to_column(1.0, 2.0, 2.0, 100) is None
    assert raster.percent_to_alpha(100) == 255 and raster.percent_to_alpha(0) == 0
    img = raster.new_image(7, 12, (0, 0, 0))
    raster.draw_text(img, 0, 1, "-1", (255, 255, 255))
    assert img[3, 0:3, 0].tolist() == [255, 255, 255]  # the minus bar
    assert img[1:6, 5, 0].tolist() == [255, 255, 255, 255, 255]  # the 1's stem
    assert raster.text_size("ab", 2) == (10, 14)
    raster.draw_text(img, 10, 5, "8", (9, 9, 9))  # clipped, no error
    raster.hline(img, 0, (1, 2, 3), dash=2)
    assert img[0, 0].tolist() == [1, 2, 3] and img[0, 2].tolist() != [1, 2, 3]
    raster.vline(img, 11, (7, 7, 7), width=3, percent=50)
    assert img[6, 11].tolist() == [(7 * 50 + 0 * 50 + 50) // 100] * 3  # 50 % over black
    with pytest.raises(ValueError, match="colour map"):
        raster.colormap_lut("jet")
    gray = raster.colormap_lut("gray")
    assert gray.shape == (256, 3) and gray[128].tolist() == [128, 128, 128]
    assert raster.encode_png(img).startswith(b"\x89PNG")


def test_series_columns_max_nearest_and_gaps():
    values = np.array([0.0, 5.0, 1.0, 2.0, 9.0, 3.0, 4.0, 0.0])  # points at 0.5 + k s
    cols = raster.series_columns(values, 0.5, 1.0, 4, 0.0, 8.0)
    assert cols.tolist() == [5.0, 2.0, 9.0, 4.0]  # a spike is never lost
    fine = raster.series_columns(values, 0.5, 1.0, 16, 0.0, 8.0)  # nearest point
    assert fine[2].item() == 5.0 and fine[8].item() == 9.0
    out = raster.series_columns(values, 0.5, 1.0, 4, 6.0, 14.0)
    assert out[0] == 4.0 and np.isnan(out[2:]).all()
    clamp = raster.series_columns(values, 1.5, 1.0, 8, 0.0, 8.0, extent=(0.0, 8.0))
    assert not np.isnan(clamp).any()
    two_d = raster.series_columns(np.stack([values, -values]), 0.5, 1.0, 2, 0.0, 8.0)
    assert two_d.shape == (2, 2)
    assert np.isnan(raster.series_columns(np.zeros(0), 0, 1, 3, 0, 1)).all()


def test_polyline_connects_steep_steps():
    img = raster.new_image(20, 4, (0, 0, 0))
    raster.polyline_columns(img, np.array([2.0, 17.0, np.nan, 5.0]), (255, 0, 0))
    ink = img[..., 0] == 255
    assert ink[2, 0] and ink[17, 1]
    assert ink[:, 1].sum() >= 8  # the jump is drawn as a connected run
    assert not ink[:, 2].any()  # NaN is a gap
    with pytest.raises(ValueError, match="one value per column"):
        raster.polyline_columns(img, np.zeros(3), (1, 1, 1))


# ---------------------------------------------------------------- loudness view


@pytest.fixture(scope="module")
def tone_then_silence():
    tone = sine(1000.0, 6.0, SR, amplitude=10 ** (-20 / 20), channels=2)
    return np.concatenate([tone, np.zeros_like(tone)], axis=1)


def test_loudness_view_places_curves_and_lines(tone_then_silence):
    summary = compute_loudness(tone_then_silence, SR)
    nums = loudness_numbers(summary)
    assert nums["integrated_lufs"] == pytest.approx(-20.0, abs=0.3)
    params = LoudnessParams(floor_lufs=-45, ceiling_lufs=0, target_lufs=-14,
                            show_momentary=False)
    h, w = 91, 120
    img = render_loudness(summary, params, width=w, height=h, playhead=9.0)
    row = lambda lufs: round((0 - lufs) / 45 * (h - 1))  # noqa: E731
    short = np.all(img == parse_hex(params.short_term), axis=-1)
    # the tone's plateau (3 s windows fully inside it) sits on the -20 LUFS row
    plateau = [c for c in range(20, 28)]
    for c in plateau:
        assert short[row(-20.0) - 1:row(-20.0) + 2, c].any()
    # the silent second half sits on the floor (bottom row)
    assert short[h - 1, 100:115].all()
    integrated_row = np.all(img[row(summary.integrated)] == parse_hex(params.integrated), -1)
    assert integrated_row[70:90].all()  # where the curve has fallen to the floor
    target_row = np.all(img[row(-14.0)] == parse_hex(params.target), axis=-1)
    assert 0.3 < target_row.mean() < 0.7  # dashed
    assert np.all(img[:, 90] == parse_hex(params.playhead))
    # zoom into the silent half: no curve above the floor
    zoom = render_loudness(summary, params, width=w, height=h, t0=8.0, t1=12.0)
    assert not np.all(zoom[: h - 2] == parse_hex(params.short_term), axis=-1).any()
    # album-relative: the top moves to the album's loudest moment (rounded up)
    loud = render_loudness(summary, params.model_copy(update={"album_relative": True}),
                           width=w, height=h, album_ceiling=-10.4, numbers=False)
    new_row = round((-10 - -20.0) / 45 * (h - 1))
    assert np.all(loud[new_row - 1:new_row + 2, 24] == parse_hex(params.short_term), -1).any()
    assert album_loudness_ceiling([summary]) == pytest.approx(summary.momentary_max)
    with pytest.raises(ValueError, match="t1 > t0"):
        render_loudness(summary, width=10, height=10, t0=3, t1=2)
    with pytest.raises(ValueError, match="width"):
        render_loudness(summary, width=0, height=10)
    big = render_loudness(summary, width=400, height=320)  # labels at scale 2
    assert big.shape == (320, 400, 3)


def test_loudness_view_of_silence():
    summary = compute_loudness(np.zeros((2, SR * 4), np.float32), SR)
    img = render_loudness(summary, width=50, height=30)
    assert img.shape == (30, 50, 3)
    assert album_loudness_ceiling([summary]) == 0.0


# ---------------------------------------------------------------- dynamics


def test_crest_factor_known_signals(rng):
    s = sine(440.0, 4.0, SR, amplitude=0.5, channels=2)
    np.testing.assert_allclose(crest_factor_db(s, SR), 20 * math.log10(math.sqrt(2)), atol=0.02)
    square = np.sign(s) * 0.5
    square[square == 0] = 0.5
    np.testing.assert_allclose(crest_factor_db(square, SR), 0.0, atol=1e-6)
    short = crest_factor_db(s[:, : SR], SR)  # shorter than a window: one value
    assert short.shape == (1,)
    assert np.isnan(crest_factor_db(np.zeros((1, SR * 4)), SR)).all()
    noise = rng.standard_normal(SR * 4).astype(np.float32) * 0.1
    assert 9.0 < float(np.nanmean(crest_factor_db(noise, SR))) < 15.0


def test_dynamics_series_and_strip(tone_then_silence):
    series = compute_dynamics(tone_then_silence, SR)
    assert series.loudness.shape == series.crest.shape
    assert series.finite_range("crest")[0] == pytest.approx(3.01, abs=0.05)
    params = DynamicsParams(colormap="gray", loudness_floor=-40, loudness_ceiling=-10,
                            crest_floor=0, crest_ceiling=6, separator="#ff0000")
    img = render_dynamics(series, params, width=60, height=21, playhead=6.0)
    assert img.shape == (21, 60, 3)
    assert img[10, :30].tolist() == [[255, 0, 0]] * 30  # separator between the bands
    # tone: loudness -20 LUFS -> (20/30) of the ramp; crest 3.01 dB -> half
    lum = img[2, 10, 0]
    assert abs(int(lum) - round(255 * 20 / 30)) <= 3
    assert abs(int(img[15, 10, 0]) - 128) <= 3
    # silence: colour 0
    assert img[2, 55].tolist() == [0, 0, 0]
    assert img[:, 30].tolist() == [list(parse_hex(params.playhead))] * 21
    only = render_dynamics(series, params.model_copy(update={"layout": "crest"}), width=60,
                           height=9)
    assert (only[:, 10] == only[0, 10]).all()
    outside = render_dynamics(series, params, width=40, height=6, t0=10.0, t1=14.0)
    assert outside[0, 35].tolist() == [0, 0, 0]
    quieter = DynamicsSeries(series.loudness - 10, series.crest, series.hop, series.window,
                             series.duration)
    ranges = album_dynamics_ranges([series, quieter])
    assert ranges["loudness"][1] == pytest.approx(series.finite_range("loudness")[1])
    rel = render_dynamics(quieter, params.model_copy(update={"album_relative": True}),
                          width=60, height=21, album_ranges=ranges)
    own = render_dynamics(quieter, params, width=60, height=21)
    assert rel[2, 10, 0] != own[2, 10, 0]
    assert "LUFS" in dynamics_legend(params) and "album" in dynamics_legend(
        params.model_copy(update={"album_relative": True}))
    with pytest.raises(ValueError, match="t1 > t0"):
        render_dynamics(series, width=4, height=4, t0=2, t1=1)


# ---------------------------------------------------------------- spectral


def synthetic_spectral(kind="mel", bins=16, frames=100, hot_bin=3):
    values = np.full((bins, frames), -80.0, np.float32)
    values[hot_bin] = 0.0
    return SpectralData(kind, values, frame_rate=10.0, duration=10.0)


def test_spectral_render_rows_markers_beats_playhead():
    data = synthetic_spectral()
    params = SpectralParams(colormap="gray", top_db=80, beat="#00ff00", beat_opacity=50,
                            beats_per_bar=4, marker="#0000ff")
    img = render_spectral(data, params, width=50, height=32, beats=[1.0, 2.0, 3.0, 4.0, 5.0],
                          markers=[7.0], playhead=9.0)
    assert img.shape == (32, 50, 3)
    hot_rows = np.where(img[:, 2, 0] == 255)[0]
    assert hot_rows.tolist() == [24, 25]  # bin 3 of 16 -> rows 24-25 from the top
    assert img[0, 2].tolist() == [0, 0, 0]
    assert img[0, 5].tolist() == [0, 255, 0]  # beat 0 of the bar: solid
    assert img[0, 10].tolist() == [0, 128, 0]  # other beats: 50 % over black
    assert img[0, 25].tolist() == [0, 255, 0]  # beat 4: solid again
    assert img[0, 35].tolist() == [0, 0, 255]  # marker
    assert img[0, 45].tolist() == list(parse_hex(params.playhead))
    plain = render_spectral(data, params.model_copy(update={"show_beats": False,
                                                            "show_markers": False}),
                            width=50, height=32, beats=[1.0], markers=[7.0])
    assert plain[0, 5].tolist() == [0, 0, 0] and plain[0, 35].tolist() == [0, 0, 0]
    # album-relative: a louder album max darkens this track
    rel = render_spectral(data, params.model_copy(update={"album_relative": True}), width=50,
                          height=32, album_max=40.0)
    assert rel[25, 2, 0] == 128
    assert album_max_db([data, synthetic_spectral("chroma")]) == 0.0
    zoom = render_spectral(data, params, width=20, height=16, t0=8.0, t1=12.0)
    assert zoom[:, 15].tolist() == [[0, 0, 0]] * 16  # past the end
    with pytest.raises(ValueError, match="t1 > t0"):
        render_spectral(data, width=4, height=4, t0=2, t1=1)


@pytest.mark.slow  # imports librosa (numba): seconds on a cold cache
def test_compute_spectral_finds_the_tone():
    tone = sine(440.0, 2.0, 22050, amplitude=0.5, channels=1)
    mel = compute_spectral(tone, 22050, kind="mel", n_mels=64)
    assert mel.values.shape[0] == 64 and mel.frame_rate == pytest.approx(22050 / 512)
    import librosa

    peak_bin = int(np.argmax(mel.values.mean(axis=1)))
    centres = librosa.mel_frequencies(n_mels=64 + 2, fmax=11025)[1:-1]
    assert abs(centres[peak_bin] - 440.0) < 60.0
    source = SpectralSource(tone, 22050)
    chroma = source.data("chroma")
    assert source.data("chroma") is chroma
    assert int(np.argmax(chroma.values.mean(axis=1))) == 9  # A
    with pytest.raises(ValueError, match="kind"):
        compute_spectral(tone, 22050, kind="cqt")
    img = render_spectral(chroma, SpectralParams(kind="chroma"), width=30, height=24)
    assert img.shape == (24, 30, 3)
