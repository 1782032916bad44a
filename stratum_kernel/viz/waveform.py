"""The pixel-exact stem waveform.

For each pixel column, every stem gets an exact whole number of pixels, proportional to
its level in that column, stacked from the centre outward: drums (the dark core), bass,
other, vocals. No antialiasing, no curves: a pixel is a stem colour or the background.

The integer rule (also implemented, operation for operation, by
``static/stem_waveform.js`` so the browser canvas gives identical pixels):

1. Levels are quantized: ``q = clip(floor(level * 32768 + 0.5), 0, 65535)`` (1.0 = 32768).
2. Smoothing radius ``r`` (0-20): each stem's box sum over columns ``c-r .. c+r`` with edge
   columns repeated, ``S[s, c]``; the box size ``D = 2r + 1`` is folded into step 3.
3. Column total ``tot = sum_s S[s, c]``; pixels on one side
   ``T = min(half, floor((2 * tot * g * half + R * D * 100) / (2 * R * D * 100)))``, i.e.
   ``tot / D * gain / R * half`` rounded half up, where ``g = floor(gain * 100 + 0.5)`` and
   ``R`` is the reference total in level units (the track's — or album's — loudest column).
4. Split ``T`` by largest remainder: stem ``s`` gets ``floor(T * S_s / tot)``, and the
   ``T - sum(floors)`` pixels left over go to the stems with the largest remainders
   ``T * S_s mod tot`` (ties: the inner stem first). The counts sum to ``T`` exactly.
5. Paint: side pixel ``k`` (0 at the centre) takes the colour of the first stem whose
   cumulative count exceeds ``k``, else the background. Stem colours are blended over the
   background at ``opacity`` %: ``(fg * p + bg * (100 - p) + 50) // 100``.
6. Mirrored: ``half = ceil(H / 2)`` rows per side; the top side is the bottom side flipped
   (an odd height shares its centre row). One-sided: ``half = H``, growing up from the
   bottom row.
7. Playhead: column ``floor((t - t0) / (t1 - t0) * W)`` painted in the playhead colour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.timeline import STEM_NAMES
from stratum_kernel.viz.params import StemWaveformParams
from stratum_kernel.viz.raster import blend_percent, parse_hex, percent_to_alpha, time_to_column
from stratum_kernel.viz.view_kind import StripSource, ViewKind

Q_ONE = 32768
Q_MAX = 65535
MAX_HEIGHT = 8192


def quantize_levels(levels: np.ndarray) -> np.ndarray:
    """float levels (1.0 = full scale) -> uint16 level units, ``floor(x * 32768 + 0.5)``."""
    lv = np.nan_to_num(np.asarray(levels, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.floor(lv * Q_ONE + 0.5), 0, Q_MAX).astype(np.uint16)


def gain_centi(gain: float) -> int:
    """The integer gain used by the pixel rule: ``floor(gain * 100 + 0.5)``."""
    return math.floor(float(gain) * 100 + 0.5)


def reference_units(levels_q: np.ndarray) -> int:
    """The largest column total of quantized levels ``[S, W]`` (at least 1)."""
    q = np.asarray(levels_q, dtype=np.int64)
    if q.size == 0:
        return 1
    return max(1, int(q.sum(axis=0).max()))


def box_sums(levels_q: np.ndarray, radius: int) -> np.ndarray:
    """int64 [S, W]: each row's sum over columns ``c - radius .. c + radius``, edges repeated."""
    q = np.asarray(levels_q, dtype=np.int64)
    if radius <= 0 or q.shape[1] == 0:
        return q.copy()
    padded = np.concatenate(
        [np.repeat(q[:, :1], radius, axis=1), q, np.repeat(q[:, -1:], radius, axis=1)], axis=1
    )
    cs = np.concatenate([np.zeros((q.shape[0], 1), np.int64), np.cumsum(padded, axis=1)], axis=1)
    d = 2 * radius + 1
    return cs[:, d:] - cs[:, :-d]


def stem_pixel_counts(levels_q: np.ndarray, *, half: int, smoothing: int = 0,
                      gain: float = 1.0, reference_q: int | None = None) -> np.ndarray:
    """int64 [S, W]: the exact pixels of each stem on one side of each column (steps 2-4).

    ``levels_q``: uint16 [S, W] level units (inner stem first); ``half``: pixels per side;
    ``reference_q``: the full-height total in level units (default: the largest total here).
    ``counts.sum(axis=0) == min(half, round(total / reference * gain * half))``.
    """
    q = np.asarray(levels_q, dtype=np.int64)
    if q.ndim != 2:
        raise ValueError(f"levels must be [stems, width], got shape {q.shape}")
    if not 0 <= smoothing <= 20:
        raise ValueError(f"smoothing must be 0..20, got {smoothing}")
    ref = reference_units(q) if reference_q is None else int(reference_q)
    n_stems, width = q.shape
    if ref <= 0 or half <= 0 or width == 0:
        return np.zeros((n_stems, width), dtype=np.int64)
    d = 2 * smoothing + 1
    g = gain_centi(gain)
    sums = box_sums(q, smoothing)
    tot = sums.sum(axis=0)
    den = 2 * ref * d * 100
    total_px = np.minimum(half, (2 * tot * g * half + ref * d * 100) // den)
    safe_tot = np.maximum(tot, 1)
    num = total_px[None, :] * sums
    floors = num // safe_tot[None, :]
    rem = num - floors * safe_tot[None, :]
    left = total_px - floors.sum(axis=0)
    # rank of each stem's remainder in its column: larger first, the inner stem on ties
    idx = np.arange(n_stems)
    beats = (rem[None, :, :] > rem[:, None, :]) | (
        (rem[None, :, :] == rem[:, None, :]) & (idx[None, :, None] < idx[:, None, None])
    )
    rank = beats.sum(axis=1)  # [S, W]: how many stems come before stem s
    counts = floors + (rank < left[None, :])
    counts[:, tot == 0] = 0
    return counts


def paint_counts(counts: np.ndarray, colors: list[tuple[int, int, int]],
                 background: tuple[int, int, int], *, height: int, mirror: bool = True,
                 opacity: int = 100, background_alpha: int = 255, alpha: bool = False
                 ) -> np.ndarray:
    """uint8 [height, W, 3|4]: stacked stem pixels from the centre (or bottom) outward.

    ``counts``: int [S, W] pixels per side, summing to at most ``half`` per column.
    Stem pixels have alpha 255; background pixels ``background_alpha``.
    """
    n_stems, width = counts.shape
    half = (height + 1) // 2 if mirror else height
    bg = np.asarray(background, dtype=np.int32)
    palette = np.empty((n_stems + 1, 4), dtype=np.uint8)
    for s, rgb in enumerate(colors):
        palette[s, :3] = blend_percent(np.asarray(rgb), bg, opacity)
    palette[:n_stems, 3] = 255
    palette[n_stems, :3] = bg
    palette[n_stems, 3] = background_alpha if alpha else 255
    # index of the colour of side pixel k in each column: how many stems end at or below k
    k = np.arange(half, dtype=np.int32)[:, None]
    cum = np.cumsum(counts, axis=0).astype(np.int32)
    index = np.zeros((half, width), dtype=np.uint8)
    for s in range(n_stems):
        index += (k >= cum[s][None, :]).view(np.uint8)
    # each output row shows side pixel k_row; rows are gathered as whole uint8 lines, then
    # one 4-byte palette lookup per pixel (a uint32 view: much faster than [..., 3] indexing)
    y = np.arange(height)
    k_row = np.maximum((height - 1) // 2 - y, y - height // 2) if mirror else height - 1 - y
    p32 = palette.view(np.uint32).ravel()
    rgba = p32[index[k_row]].view(np.uint8).reshape(height, width, 4)
    if alpha:
        return rgba
    import cv2

    return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)


def render_stem_waveform(columns: np.ndarray | Mapping[str, np.ndarray],
                         params: StemWaveformParams | None = None, *, height: int,
                         reference_q: int | None = None, playhead_x: int | None = None,
                         alpha: bool = False, names: tuple[str, ...] = STEM_NAMES
                         ) -> np.ndarray:
    """Render per-column stem levels as a pixel-exact stacked waveform.

    columns: float [S, W] levels (1.0 = full scale; stems in ``names`` order, inner first)
        or {stem: float [W]} (missing stems are silent). params: colours, smoothing,
        opacity, mirror, gain. reference_q: full-height total in level units (see
        :func:`reference_units`; pass the track's or album's so zoom and tracks compare).
    Returns uint8 [height, W, 3] (or [height, W, 4] with ``alpha``).
    """
    params = params or StemWaveformParams()
    if isinstance(columns, Mapping):
        width = len(next(iter(columns.values()))) if columns else 0
        levels = np.zeros((len(names), width), dtype=np.float64)
        for s, name in enumerate(names):
            if name in columns:
                levels[s] = np.asarray(columns[name], dtype=np.float64)
    else:
        levels = np.asarray(columns, dtype=np.float64)
        if levels.ndim != 2 or levels.shape[0] != len(names):
            raise ValueError(f"columns must be [{len(names)}, width], got {levels.shape}")
    if not 1 <= height <= MAX_HEIGHT:
        raise ValueError(f"height must be 1..{MAX_HEIGHT} pixels, got {height}")
    half = (height + 1) // 2 if params.mirror else height
    counts = stem_pixel_counts(quantize_levels(levels), half=half, smoothing=params.smoothing,
                               gain=params.gain, reference_q=reference_q)
    image = paint_counts(
        counts, [parse_hex(c) for c in params.stem_colors(names)], parse_hex(params.background),
        height=height, mirror=params.mirror, opacity=params.opacity,
        background_alpha=percent_to_alpha(params.background_opacity), alpha=alpha,
    )
    if playhead_x is not None and 0 <= playhead_x < image.shape[1]:
        image[:, playhead_x, :3] = np.asarray(parse_hex(params.playhead), dtype=np.uint8)
        if alpha:
            image[:, playhead_x, 3] = 255
    return image


def _span_reduce(values: np.ndarray, starts: np.ndarray, stops: np.ndarray, how: str
                 ) -> np.ndarray:
    """Reduce ``values[..., a:b]`` for each span (empty spans give 0), vectorised.

    Uses one ``reduceat`` over interleaved (start, stop) indices with a zero sentinel
    appended, so spans may overlap or leave gaps.
    """
    n = values.shape[-1]
    a = np.clip(starts, 0, n)
    b = np.clip(stops, 0, n)
    empty = b <= a
    padded = np.concatenate([values, np.zeros((*values.shape[:-1], 1), values.dtype)], axis=-1)
    idx = np.stack([np.where(empty, n, a), np.where(empty, n, b)], axis=1).ravel()
    ufunc = np.maximum if how == "max" else np.add
    out = ufunc.reduceat(padded, idx, axis=-1)[..., ::2]
    out[..., empty] = 0
    return out


def _column_spans(width: int, s0: float, s1: float) -> tuple[np.ndarray, np.ndarray]:
    edges = s0 + (s1 - s0) * np.arange(width + 1, dtype=np.float64) / width
    starts = np.floor(edges[:-1]).astype(np.int64)
    stops = np.maximum(starts + 1, np.floor(edges[1:]).astype(np.int64))
    return starts, stops


def stem_columns(stems: Mapping[str, np.ndarray], sr: int, width: int, t0: float = 0.0,
                 t1: float | None = None, *, mode: str = "peak") -> dict[str, np.ndarray]:
    """Per-column levels straight from stem audio: {stem: float32 [width]}.

    stems: {name: float32 [channels, samples]} at ``sr`` Hz. Column ``c`` covers samples
    ``floor(s0 + c * (s1 - s0) / W)`` up to the next edge (at least one sample), where
    ``s0, s1 = t0 * sr, t1 * sr``. ``mode='peak'``: max |x| over the span and channels;
    ``'rms'``: sqrt of the mean square. Columns outside the audio are 0.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    if mode not in ("peak", "rms"):
        raise ValueError(f"mode must be 'peak' or 'rms', got {mode!r}")
    out: dict[str, np.ndarray] = {}
    for name, audio in stems.items():
        x = np.asarray(audio, dtype=np.float32)
        x = x[None, :] if x.ndim == 1 else x
        n = x.shape[1]
        end = n / sr if t1 is None else t1
        if end <= t0:
            raise ValueError(f"time range must have t1 > t0, got {t0}..{end}")
        starts, stops = _column_spans(width, t0 * sr, end * sr)
        if mode == "peak":
            mono = np.abs(x).max(axis=0)
            out[name] = _span_reduce(mono, starts, stops, "max").astype(np.float32)
        else:
            sq = np.square(x, dtype=np.float64).mean(axis=0)
            total = _span_reduce(sq, starts, stops, "add")
            count = np.clip(stops, 0, n) - np.clip(starts, 0, n)
            out[name] = np.sqrt(total / np.maximum(count, 1)).astype(np.float32)
    return out


@dataclass(frozen=True)
class StemEnvelope:
    """Block peaks and energies of a track's stems, for fast columns at any zoom.

    names: stem names (inner first); block_rate: blocks per second; peaks: float32
    [S, B] max |x| per block; sumsq: float64 [S, B] sum of x^2 (channel mean) per block
    (accumulated in float32 within a block: ample for levels);
    counts: int64 [B] samples per block; duration: seconds.
    """

    names: tuple[str, ...]
    block_rate: float
    peaks: np.ndarray
    sumsq: np.ndarray
    counts: np.ndarray
    duration: float

    @classmethod
    def from_stems(cls, stems: Mapping[str, np.ndarray], sr: int, *, block_rate: float = 200.0,
                   names: tuple[str, ...] = STEM_NAMES) -> StemEnvelope:
        """Summarise {stem: float32 [channels, samples]} in blocks of ``sr / block_rate``."""
        present = [np.asarray(stems[n], dtype=np.float32) for n in names if n in stems]
        if not present:
            raise ValueError(f"no stems among {names}; got {sorted(stems)}")
        n = max(a.shape[-1] for a in present)
        block = max(1, round(sr / block_rate))
        n_blocks = max(1, -(-n // block))
        peaks = np.zeros((len(names), n_blocks), dtype=np.float32)
        sumsq = np.zeros((len(names), n_blocks), dtype=np.float64)
        for s, name in enumerate(names):
            if name not in stems:
                continue
            x = np.asarray(stems[name], dtype=np.float32)
            x = x[None, :] if x.ndim == 1 else x
            ch, length = x.shape
            full = length // block
            # whole blocks as a view (no padded copy); max and -min avoid an |x| copy
            main = x[:, : full * block].reshape(ch, full, block)
            if full:
                peaks[s, :full] = np.maximum(main.max(axis=(0, 2)), -main.min(axis=(0, 2)))
                sumsq[s, :full] = np.einsum("cbk,cbk->b", main, main) / ch
            tail = x[:, full * block:]
            if tail.size:
                peaks[s, full] = np.abs(tail).max()
                sumsq[s, full] = np.square(tail, dtype=np.float64).sum() / ch
        counts = np.full(n_blocks, block, dtype=np.int64)
        counts[-1] = n - (n_blocks - 1) * block
        return cls(tuple(names), sr / block, peaks, sumsq, counts, n / sr)

    @classmethod
    def from_series(cls, series: Mapping[str, np.ndarray], rate: float, *,
                    names: tuple[str, ...] = STEM_NAMES) -> StemEnvelope:
        """Use level series already sampled at ``rate`` Hz ({stem: float [T]}, e.g. the
        per-frame stem envelopes of :class:`~stratum_kernel.core.timeline.FrameFeatures`) as
        block peaks; RMS columns then average their squares."""
        present = [np.asarray(series[n], dtype=np.float32) for n in names if n in series]
        if not present:
            raise ValueError(f"no stems among {names}; got {sorted(series)}")
        n_blocks = max(len(a) for a in present)
        peaks = np.zeros((len(names), n_blocks), dtype=np.float32)
        for s, name in enumerate(names):
            if name in series:
                values = np.abs(np.asarray(series[name], dtype=np.float32))
                peaks[s, : len(values)] = values
        return cls(tuple(names), float(rate), peaks, np.square(peaks, dtype=np.float64),
                   np.ones(n_blocks, dtype=np.int64), n_blocks / float(rate))

    def columns(self, width: int, t0: float = 0.0, t1: float | None = None, *,
                mode: str = "peak") -> np.ndarray:
        """float32 [S, width]: per-column peak (or RMS) over the blocks each column covers."""
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        end = self.duration if t1 is None else t1
        if end <= t0:
            raise ValueError(f"time range must have t1 > t0, got {t0}..{end}")
        starts, stops = _column_spans(width, t0 * self.block_rate, end * self.block_rate)
        if mode == "peak":
            return _span_reduce(self.peaks, starts, stops, "max").astype(np.float32)
        if mode != "rms":
            raise ValueError(f"mode must be 'peak' or 'rms', got {mode!r}")
        total = _span_reduce(self.sumsq, starts, stops, "add")
        count = _span_reduce(self.counts.astype(np.float64), starts, stops, "add")
        return np.sqrt(total / np.maximum(count, 1)).astype(np.float32)

    def reference_q(self, width: int, mode: str = "peak") -> int:
        """The loudest column total (level units) of the whole track at ``width`` columns
        (cached per width and mode: every zoomed view of the track shares it)."""
        cache = self.__dict__.setdefault("_references", {})
        key = (int(width), mode)
        if key not in cache:
            cache[key] = reference_units(quantize_levels(self.columns(width, mode=mode)))
        return cache[key]


def album_reference_q(envelopes: list[StemEnvelope], width: int, mode: str = "peak") -> int:
    """The loudest column total over several tracks: the album-relative reference."""
    return max((e.reference_q(width, mode) for e in envelopes), default=1)


def stem_waveform_image(envelope: StemEnvelope, params: StemWaveformParams | None = None, *,
                        width: int, height: int, t0: float = 0.0, t1: float | None = None,
                        playhead: float | None = None, album_reference: int | None = None,
                        alpha: bool = False) -> np.ndarray:
    """A track's stem waveform over ``[t0, t1)`` with an optional playhead at ``playhead`` s.

    The reference is the whole track's loudest column at this width (so zooming keeps the
    scale), or ``album_reference`` when ``params.album_relative`` is set.
    """
    params = params or StemWaveformParams()
    end = envelope.duration if t1 is None else t1
    cols = envelope.columns(width, t0, end, mode=params.level)
    if params.album_relative and album_reference is not None:
        ref = int(album_reference)
    else:
        ref = envelope.reference_q(width, params.level)
    x = None if playhead is None else time_to_column(playhead, t0, end, width)
    return render_stem_waveform(cols, params, height=height, reference_q=ref, playhead_x=x,
                                alpha=alpha, names=envelope.names)


# ------------------------------------------------------------------------- the view type


def _show(data, track_id: str, params: StemWaveformParams, *, album_reference=None,
          **common) -> np.ndarray:
    return stem_waveform_image(data.envelope(track_id), params,
                               album_reference=album_reference, **common)


def _album_reference(data, params: StemWaveformParams, width: int) -> int:
    return album_reference_q([data.envelope(t) for t in data.track_ids], width, params.level)


def _strip(params: StemWaveformParams, width: int, height: int, length: float,
           src: StripSource) -> np.ndarray:
    if src.stems:
        if not src.sr:
            raise ValueError("build_overlay: stems need sr=")
        envelope = StemEnvelope.from_stems(src.stems, src.sr)
    elif src.features is not None and src.features.stems:
        envelope = StemEnvelope.from_series(
            {name: d["envelope"] for name, d in src.features.stems.items() if "envelope" in d},
            src.features.fps)
    else:
        raise ConfigError("postfx.overlays", "kind", "a 'stem_waveform' overlay needs stems "
                          "(stem audio, or frame features with stem envelopes); this track "
                          "has none: analyse it with stems, or pick another overlay kind")
    return stem_waveform_image(envelope, params, width=width, height=height, t0=0.0, t1=length,
                               album_reference=src.album_reference, alpha=True)


KIND = ViewKind("stem_waveform", StemWaveformParams, show=_show, strip=_strip,
                album_reference=_album_reference, needs_audio=False, client_side=True)
