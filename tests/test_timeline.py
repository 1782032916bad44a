import numpy as np
import pytest

from stratum_kernel.timeline import FrameFeatures, frame_count, frame_times, sample_series


@pytest.mark.parametrize("fps", [24, 30, 60, 120])
@pytest.mark.parametrize("duration", [0.5, 61.0, 600.0])
def test_frame_count_is_rounded_product(duration, fps):
    assert frame_count(duration, fps) == round(duration * fps)


def test_frame_times_have_no_drift():
    t = frame_times(36000, 60.0)
    assert t[-1] == pytest.approx(35999 / 60.0, abs=1e-12)


def test_sample_series_max_keeps_single_hop_spikes():
    rate = 22050 / 512
    series = np.zeros(5000, dtype=np.float32)
    series[[101, 2345, 4990]] = 1.0
    times = frame_times(frame_count(5000 / rate, 24), 24)
    sampled = sample_series(series, rate, times, mode="max")
    assert sampled.sum() == pytest.approx(3.0)
    linear = sample_series(series, rate, times, mode="linear")
    assert linear.max() <= 1.0


def test_frame_features_slice_matches_whole():
    n = 100
    ff = FrameFeatures(
        track_id="t",
        fps=24.0,
        start=0.0,
        n_frames=n,
        values={"rms": np.linspace(0, 1, n, dtype=np.float32)},
        stems={"drums": {"envelope": np.ones(n, dtype=np.float32)}},
        beat_frames=np.array([0, 12, 24, 36, 48, 60, 72, 84, 96]),
        beat_phase=np.zeros(n, dtype=np.float32),
        tempo=120.0,
    )
    part = ff.slice(30, 70)
    assert part.n_frames == 40
    assert part.start == pytest.approx(30 / 24)
    np.testing.assert_array_equal(part.values["rms"], ff.values["rms"][30:70])
    np.testing.assert_array_equal(part.beat_frames, [6, 18, 30])
    with pytest.raises(ValueError, match="rms"):
        FrameFeatures("t", 24.0, 0.0, 5, {"rms": np.zeros(4)}, {}, np.zeros(0), np.zeros(5), 120.0)


def test_sample_series_max_above_series_rate_takes_nearest_not_next():
    rate = 22050 / 512  # ~43 Hz, below 120 fps
    series = np.zeros(200, dtype=np.float32)
    series[50] = 1.0  # at 1.161 s
    times = frame_times(frame_count(200 / rate, 120), 120)
    sampled = sample_series(series, rate, times, mode="max")
    hit = np.flatnonzero(sampled)
    # every frame that sees the spike is within half a hop of it, none a hop early
    assert len(hit) > 0
    assert np.all(np.abs(times[hit] - 50 / rate) <= 0.5 / rate + 1e-9)
