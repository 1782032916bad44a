import numpy as np
import pytest

from stratum_kernel.core.timeline import FrameFeatures, frame_count, frame_times, sample_series


@pytest.mark.parametrize("fps", [24, 30, 60, 120])
@pytest.mark.parametrize("duration", [0.5, 61.0, 600.0])
def test_frame_count_is_rounded_product(duration, fps):
    assert frame_count(duration, fps) == round(duration * fps)


def test_frame_times_have_no_drift():
    t = frame_times(36000, 60.0)
    assert t[-1] == pytest.approx(35999 / 60.0, abs=1e-12)


def test_sample_series_interpolates_and_holds_the_last_value():
    rate = 10.0
    series = np.array([0.0, 1.0, 3.0], dtype=np.float32)
    out = sample_series(series, rate, np.array([0.0, 0.05, 0.15, 0.2, 5.0]))
    np.testing.assert_allclose(out, [0.0, 0.5, 2.0, 3.0, 3.0])
    two = sample_series(np.stack([series, 2 * series]), rate, np.array([0.05]))
    assert two.shape == (2, 1) and two[1, 0] == pytest.approx(1.0)
    assert sample_series(np.zeros(0, np.float32), rate, np.array([0.0, 1.0])).tolist() == [0, 0]


def test_frame_features_check_their_lengths():
    n = 5
    ok = FrameFeatures("t", 24.0, 0.0, n, {"rms": np.zeros(n)}, {}, np.zeros(0), 120.0)
    assert ok.section.shape == (n,) and ok.times()[-1] == pytest.approx(4 / 24)
    with pytest.raises(ValueError, match="rms"):
        FrameFeatures("t", 24.0, 0.0, n, {"rms": np.zeros(4)}, {}, np.zeros(0), 120.0)
    with pytest.raises(ValueError, match=r"drums\.envelope"):
        FrameFeatures("t", 24.0, 0.0, n, {}, {"drums": {"envelope": np.zeros(3)}}, np.zeros(0),
                      120.0)
