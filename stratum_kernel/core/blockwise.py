"""Block-wise signal processing whose results do not depend on the blocks.

Long tracks are analysed and separated a block at a time, so that memory holds a block
of samples and the small per-frame series, never the whole signal or its spectrogram.
Three rules make every result identical to one pass over the whole signal, whatever size
the blocks of samples arrive in and however many frames are processed together:

- **frames**: :func:`stft_blocks` computes each STFT frame from exactly its ``n_fft``
  samples of the zero-padded signal (the frames of :func:`~stratum_kernel.core.dsp.stft`),
  and :class:`OverlapAdd` overlap-adds frames in the order a whole-signal inverse does;
- **products**: :func:`matmul_rows` multiplies in aligned tiles of :data:`ROW_TILE` rows
  on one BLAS thread, because BLAS rounds a row differently depending on how many rows it
  multiplies at once (OpenBLAS 0.3.31: gemm with fewer than 8 rows, and gemv, differ in
  the last bit from a large product) and on its thread count; one thread also keeps these
  small products from waiting on a second thread when the machine is busy (2-30x slower);
- **context**: filters along time read the neighbours they need across block edges
  (:func:`median_filter_rows`), mirrored only at the ends of the whole signal.

Pure numpy/scipy; arrays are ``[..., samples]`` for signals and ``[frames, ...]`` for
per-frame series, as in :mod:`stratum_kernel.core.dsp`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

#: Rows per matrix product in :func:`matmul_rows` (a multiple of BLAS's row blocking).
ROW_TILE = 32
_BLAS: list = []  # the threadpoolctl controller, made once (it scans the loaded libraries)


def _one_blas_thread():
    """A context in which BLAS uses one thread (threadpoolctl; a no-op without it)."""
    import contextlib

    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:
            _BLAS.append(None)
    ctl = _BLAS[0]
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


def matmul_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a`` [R, K] and ``b`` [K, N], computed in tiles of :data:`ROW_TILE`
    rows (the last one zero-padded) on one BLAS thread, so that row ``i`` of the result does
    not depend on the other rows nor on the machine's cores: the same frames give the same
    values in any block whose first row is a multiple of :data:`ROW_TILE` from the start."""
    rows = a.shape[0]
    out = np.empty((rows, b.shape[1]), dtype=np.result_type(a.dtype, b.dtype))
    full = rows - rows % ROW_TILE
    with _one_blas_thread():
        for s in range(0, full, ROW_TILE):
            np.matmul(a[s : s + ROW_TILE], b, out=out[s : s + ROW_TILE])
        if full < rows:
            tile = np.zeros((ROW_TILE, a.shape[1]), dtype=a.dtype)
            tile[: rows - full] = a[full:]
            out[full:] = (tile @ b)[: rows - full]
    return out


def sliding_median(padded: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Median of every window of ``size`` (odd) along ``axis`` of an already padded array
    (the output is ``size - 1`` shorter there): a partial sort of a strided view."""
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(padded, size, axis=axis)
    return np.partition(windows, size // 2, axis=-1)[..., size // 2]


def median_filter_rows(x: np.ndarray, size: int, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the median along axis 0 of ``x`` [T, ...] over centred
    windows of ``size`` (odd), ends mirrored: exactly
    ``median_filter_axis(x, size, axis=0)[start:stop]``, reading only the rows it needs."""
    half = size // 2
    n = x.shape[0]
    lo, hi = max(0, start - half), min(n, stop + half)
    pad = [(half - (start - lo), half - (hi - stop))] + [(0, 0)] * (x.ndim - 1)
    padded = np.pad(x[lo:hi], pad, mode="symmetric")
    # along the last axis of a contiguous transpose: 3x faster than a strided time axis
    med = sliding_median(np.ascontiguousarray(np.moveaxis(padded, 0, -1)), size, axis=-1)
    return np.moveaxis(med, -1, 0)


def row_blocks(n: int, block: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of ``block`` rows covering ``range(n)``."""
    for start in range(0, n, block):
        yield start, min(n, start + block)


def fit_blocks(chunks: Iterable[np.ndarray], n: int) -> Iterator[np.ndarray]:
    """The stream ``chunks`` ([..., samples] each) cut or zero-padded to ``n`` samples,
    as :func:`~stratum_kernel.core.dsp.fit_length` does to a whole signal."""
    done = 0
    shape = None
    for chunk in chunks:
        shape = chunk.shape[:-1]
        take = min(chunk.shape[-1], n - done)
        if take > 0:
            yield chunk[..., :take]
            done += take
    if done < n:
        if shape is None:
            raise ValueError("fit_blocks: an empty stream has no channel shape")
        yield np.zeros((*shape, n - done), dtype=np.float32)


def _frame_fft(buf: np.ndarray, count: int, n_fft: int, hop: int, window: np.ndarray):
    import scipy.fft
    from numpy.lib.stride_tricks import sliding_window_view

    span = buf[..., : (count - 1) * hop + n_fft]
    frames = sliding_window_view(span, n_fft, axis=-1)[..., ::hop, :]
    return scipy.fft.rfft(frames * window, axis=-1)


def stft_blocks(
    chunks: Iterable[np.ndarray], n_fft: int, hop: int, window: np.ndarray, block_frames: int
) -> Iterator[tuple[int, np.ndarray]]:
    """The frames of :func:`~stratum_kernel.core.dsp.stft` of the concatenated ``chunks``
    ([..., samples] each, any sizes), ``block_frames`` at a time: yields ``(first frame,
    complex [..., frames, 1 + n_fft // 2])``; ``1 + samples // hop`` frames in all."""
    half = n_fft // 2
    buf: np.ndarray | None = None  # padded samples from the next frame's first sample
    done = total = 0
    for chunk in chunks:
        if buf is None:
            buf = np.zeros((*chunk.shape[:-1], half), dtype=chunk.dtype)
        buf = np.concatenate([buf, chunk], axis=-1)
        total += chunk.shape[-1]
        while buf.shape[-1] >= (block_frames - 1) * hop + n_fft:
            yield done, _frame_fft(buf, block_frames, n_fft, hop, window)
            buf = buf[..., block_frames * hop :]
            done += block_frames
    if buf is None:
        raise ValueError("stft_blocks: the signal has no samples")
    buf = np.concatenate([buf, np.zeros((*buf.shape[:-1], half), dtype=buf.dtype)], axis=-1)
    n_frames = 1 + total // hop
    while done < n_frames:
        count = min(block_frames, n_frames - done)
        yield done, _frame_fft(buf, count, n_fft, hop, window)
        buf = buf[..., count * hop :]
        done += count


class OverlapAdd:
    """The inverse of :func:`stft_blocks`, fed consecutive spectra [..., frames, F] (any
    block sizes) with :meth:`push` and closed with :meth:`finish`; each call gives the
    float32 samples [..., n] it completes, ``length`` in all.

    Weighted overlap-add with ``window`` as synthesis window, normalised by the summed
    squared window; every output sample adds its frames in the order a whole-signal inverse
    does, so the result is the same bit for bit. ``hop`` must divide ``n_fft``.
    """

    def __init__(self, n_fft: int, hop: int, window: np.ndarray, length: int):
        self.n_fft, self.hop, self.window = n_fft, hop, window
        self.r = n_fft // hop
        self._w2 = (window**2).reshape(self.r, hop)
        self._carry: np.ndarray | None = None  # the last r - 1 frames, [..., r - 1, r, hop]
        self._skip, self._left = n_fft // 2, length
        self._done = 0

    def _emit(self, slots: np.ndarray) -> np.ndarray:
        flat = slots.reshape((*slots.shape[:-2], -1))
        cut = min(self._skip, flat.shape[-1])
        self._skip -= cut
        out = flat[..., cut : cut + self._left]
        self._left -= out.shape[-1]
        return out

    def _overlap(self, frames: np.ndarray, first: int, n_slots: int) -> np.ndarray:
        """Hop-sized slots ``first ..`` from ``frames`` [.., m, r, hop] whose entry 0 is
        frame ``first - (r - 1)``; frames before 0 do not exist."""
        r, hop = self.r, self.hop
        out = np.zeros((*frames.shape[:-3], n_slots, hop), dtype=np.float32)
        win_sq = np.zeros((n_slots, hop), dtype=np.float32)
        for k in range(r):
            lo = max(0, k - first)  # slot first + j needs frame first + j - k >= 0
            a = lo + (r - 1) - k  # that frame's entry in ``frames``
            b = min(n_slots + (r - 1) - k, frames.shape[-3])
            if b > a:
                out[..., lo : lo + b - a, :] += frames[..., a:b, k, :]
                win_sq[lo : lo + b - a] += self._w2[k]
        out /= np.where(win_sq > 1e-6, win_sq, 1.0)
        return out

    def push(self, spec: np.ndarray) -> np.ndarray:
        import scipy.fft

        frames = scipy.fft.irfft(spec, n=self.n_fft, axis=-1).astype(np.float32, copy=False)
        frames *= self.window
        chunks = frames.reshape((*frames.shape[:-1], self.r, self.hop))
        if self._carry is None:
            self._carry = np.zeros((*chunks.shape[:-3], self.r - 1, self.r, self.hop),
                                   dtype=np.float32)
        ext = np.concatenate([self._carry, chunks], axis=-3)
        g = chunks.shape[-3]
        out = self._emit(self._overlap(ext, self._done, g))
        self._carry = ext[..., ext.shape[-3] - (self.r - 1) :, :, :]
        self._done += g
        return out

    def finish(self) -> np.ndarray:
        if self._carry is None:
            raise ValueError("OverlapAdd: no frames")
        # the last r - 1 slots hold only the tails of the last frames
        tail = self._emit(self._overlap(self._carry, self._done, self.r - 1))
        if self._left > 0:
            pad = np.zeros((*tail.shape[:-1], self._left), dtype=np.float32)
            self._left = 0
            tail = np.concatenate([tail, pad], axis=-1)
        return tail


def istft_blocks(
    blocks: Iterable[np.ndarray], n_fft: int, hop: int, window: np.ndarray, length: int
) -> Iterator[np.ndarray]:
    """The samples of consecutive spectra [..., frames, F] (see :class:`OverlapAdd`)."""
    ola = OverlapAdd(n_fft, hop, window, length)
    for spec in blocks:
        out = ola.push(spec)
        if out.shape[-1]:
            yield out
    tail = ola.finish()
    if tail.shape[-1]:
        yield tail


class SampleQueue:
    """A first-in first-out queue of samples [..., n]: blocks go in at one size and come out
    at another (the input of a block computation, kept until its output is ready)."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, block: np.ndarray) -> None:
        if block.shape[-1]:
            self._parts.append(block)
            self._size += block.shape[-1]

    def pop(self, n: int) -> np.ndarray:
        """The next ``n`` samples (fewer when the queue holds fewer)."""
        taken, got = [], 0
        while self._parts and got < n:
            part = self._parts[0]
            need = n - got
            if part.shape[-1] <= need:
                taken.append(self._parts.pop(0))
            else:
                taken.append(part[..., :need])
                self._parts[0] = part[..., need:]
            got += taken[-1].shape[-1]
        self._size -= got
        if len(taken) == 1:
            return taken[0]
        if not taken:
            raise ValueError("SampleQueue.pop: the queue is empty")
        return np.concatenate(taken, axis=-1)
