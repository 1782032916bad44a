"""Sample-rate conversion, of a whole signal or of a stream of blocks.

soxr (HQ) when installed, else scipy's polyphase filter; both are deterministic.
:func:`resample_blocks` runs soxr's streaming resampler, whose concatenated output equals
:func:`resample` of the whole signal bit for bit, whatever the block sizes (soxr 1.1), so a
long track resampled a block at a time gives the same samples as a short one in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample float32 [channels, samples] from ``sr_in`` to ``sr_out`` Hz (deterministic)."""
    if sr_in == sr_out or y.shape[-1] == 0:
        return y
    try:
        import soxr
    except ImportError:
        soxr = None
    if soxr is not None:
        out = soxr.resample(np.ascontiguousarray(y.T), sr_in, sr_out, quality="HQ")
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, y.shape[0]).T)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    out = resample_poly(y, sr_out // g, sr_in // g, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


def resample_blocks(
    blocks: Iterable[np.ndarray], sr_in: int, sr_out: int
) -> Iterator[np.ndarray]:
    """Resample a stream of float32 [channels, n] blocks from ``sr_in`` to ``sr_out`` Hz
    with soxr's streaming resampler (HQ): the concatenated output equals
    :func:`resample` of the concatenated input bit for bit, whatever the block sizes."""
    if sr_in == sr_out:
        yield from blocks
        return
    try:
        import soxr
    except ImportError:  # scipy's filter has no streaming form: the whole signal at once
        parts = list(blocks)
        if parts:
            yield resample(np.concatenate(parts, axis=-1), sr_in, sr_out)
        return

    stream = None
    pending = None
    for block in blocks:
        if stream is None:
            stream = soxr.ResampleStream(sr_in, sr_out, block.shape[0], dtype="float32",
                                         quality="HQ")
        if pending is not None:  # one block behind, so the last one is flagged as last
            out = stream.resample_chunk(np.ascontiguousarray(pending.T), last=False)
            if len(out):
                yield np.ascontiguousarray(out.T)
        pending = block
    if stream is None:
        return
    out = stream.resample_chunk(np.ascontiguousarray(pending.T), last=True)
    if len(out):
        yield np.ascontiguousarray(out.T)
