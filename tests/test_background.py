"""Reading ahead and writing behind on a thread: order, errors and early stops."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.files import AudioWriter, audio_blocks, load_audio
from stratum_kernel.core.background import Behind, prefetch
from stratum_kernel.core.errors import AudioError


def test_prefetch_keeps_order_and_raises_where_the_error_was():
    def items():
        yield from range(5)
        raise ValueError("broken at 5")

    got = []
    with pytest.raises(ValueError, match="broken at 5"):
        for x in prefetch(items(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_prefetch_closed_early_stops_its_thread_and_closes_the_source():
    closed = threading.Event()

    def items():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    ahead = prefetch(items(), depth=3)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    before = {t for t in threading.enumerate() if t.name == "stratum-prefetch"}
    assert before
    ahead.close()
    assert closed.is_set()
    assert not any(t.is_alive() for t in before)


def test_behind_runs_in_order_and_reports_a_failure_later():
    done = []
    behind = Behind(pending=2)
    for i in range(6):
        behind.submit(done.append, i)
    behind.wait()
    assert done == list(range(6))

    def fail(_):
        raise OSError("disk gone")

    behind.submit(fail, 0)
    with pytest.raises(OSError, match="disk gone"):
        for i in range(10):
            behind.submit(done.append, i)
        behind.wait()
    behind.close()


def test_audio_writer_written_behind_equals_the_samples_and_reads_back_in_blocks(tmp_path):
    rng = np.random.default_rng(3)
    y = (rng.standard_normal((2, 50_000)) * 0.2).astype(np.float32)
    path = tmp_path / "x.flac"
    buf = np.empty((2, 1000), dtype=np.float32)
    with AudioWriter(path, 44100, 2, "PCM_24") as out:
        for a in range(0, y.shape[1], 1000):
            buf[:] = y[:, a : a + 1000]  # the writer must copy: this buffer is reused
            out.write(buf)
    back, sr = load_audio(path)
    assert sr == 44100 and back.shape == y.shape
    assert np.abs(back - y).max() < 2**-22
    _, _, blocks = audio_blocks(path, block_frames=777)
    assert np.array_equal(np.concatenate(list(blocks), axis=1), back)


def test_audio_writer_failure_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "x.wav"

    def broken(self, data):
        raise sf.LibsndfileError(0, "simulated encoder failure")

    with pytest.raises(AudioError, match="could not write audio"), \
            AudioWriter(path, 8000, 1) as out:
        monkeypatch.setattr(out._file, "write", broken.__get__(out._file))
        for _ in range(5):
            out.write(np.zeros((1, 100), np.float32))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_audio_blocks_left_early_closes_the_file(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros((40_000, 1), np.float32), 8000)
    _, _, blocks = audio_blocks(path, block_frames=1000)
    next(blocks)
    blocks.close()  # the reading thread stops before the handle closes: no crash, no leak
    assert not any(t.is_alive() and t.name == "stratum-prefetch" for t in threading.enumerate())
