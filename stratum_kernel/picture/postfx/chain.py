"""The post-FX chain: decoded generator frames in, output frames out.

Order, and why: the trail, symmetry and colour stages run at the generator's size (a 128²
or 256² frame is 14–56× fewer pixels than 720p), the rest after scaling::

    persistence → feedback → symmetry → sharpen → tone LUT (exposure, curve, contrast,
    grade) → saturation → palette → chromatic shift → glow → scale/fit to the output →
    detail → vignette → film grain → overlays

Determinism: every random draw is keyed by (seed, track, frame); persistence and feedback
read a bounded window of the previous *decoded* frames (``trails.py``), palette drift and
kaleidoscope spin follow the frame's track time — so any frame range computes alone with
identical pixels as long as the caller passes those earlier decoded frames as ``history``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from stratum_kernel.picture.postfx.geometry import fit_geometry, scale_to_output
from stratum_kernel.picture.postfx.glow import glow
from stratum_kernel.picture.postfx.palette import apply_palette
from stratum_kernel.picture.postfx.params import FrameFX, PostFXParams, frame_settings
from stratum_kernel.picture.postfx.symmetry import apply_symmetry
from stratum_kernel.picture.postfx.texture import chroma, detail, grain, sharpen, vignette
from stratum_kernel.picture.postfx.tone import TONE_SATURATION, saturate, tone_lut
from stratum_kernel.picture.postfx.trails import feedback, persist

#: An overlay painter: gets a writable output frame uint8 [H, W, 3] and the frame's time in
#: track seconds; draws in place (returns None) or returns a new frame of the same shape.
Painter = Callable[[np.ndarray, float], "np.ndarray | None"]


def window_frames(params: PostFXParams) -> int:
    """How many decoded frames before a frame its trails read (0 when none can be on)."""
    return max(params.persistence_frames, params.feedback.frames)


def _uses_history(params: PostFXParams, settings: Sequence[FrameFX]) -> bool:
    return any(s.persistence > 0 or s.feedback > 0 for s in settings)


def _needs_time(params: PostFXParams) -> bool:
    return bool(params.palette.drift) or (params.symmetry.mode == "kaleidoscope"
                                          and bool(params.symmetry.spin))


def _source_stages(img: np.ndarray, params: PostFXParams, fx: FrameFX, t: float,
                   geom_scale: float) -> np.ndarray:
    """Symmetry, sharpen, tone, saturation, palette and chromatic shift at the source size."""
    import cv2

    sym = params.symmetry
    if sym.mode != "none":
        img = apply_symmetry(img, sym, fx.symmetry_rotation + sym.spin * t)
    if fx.sharpen > 0:
        img = sharpen(img, fx.sharpen)
    img = cv2.LUT(np.ascontiguousarray(img), tone_lut(params, fx))
    sat = fx.saturation * TONE_SATURATION[params.tone_curve]
    if abs(sat - 1.0) > 1e-6:
        img = saturate(img, sat)
    if fx.palette_mix > 0:
        img = apply_palette(img, params.palette, fx.palette_mix,
                            fx.palette_shift + params.palette.drift * t / 60.0)
    if fx.chroma_shift > 0:
        img = chroma(img, fx.chroma_shift / max(geom_scale, 1e-6))
    return img


def apply_postfx(
    frames: np.ndarray,
    params: PostFXParams,
    *,
    frame_indices: Sequence[int] | np.ndarray,
    seed: int,
    track_id: str,
    out_size: tuple[int, int],
    modulation: Mapping[str, np.ndarray] | None = None,
    history: np.ndarray | None = None,
    overlays: Sequence[Painter] = (),
    fps: float | None = None,
    start_time: float = 0.0,
) -> np.ndarray:
    """Post-process decoded frames into output frames.

    frames: uint8 [B, h, w, 3], decoded frames ``frame_indices`` (consecutive, ascending) of
        one track. history: uint8 [k, h, w, 3], the decoded frames just before
        ``frame_indices[0]`` (oldest first); needed when persistence or feedback can be on,
        and then it must hold ``min(window_frames(params), frame_indices[0])`` frames.
    out_size: (width, height) of the output. modulation: {param: float32 [B]} offsets
        (see :data:`~stratum_kernel.picture.postfx.params.MODULATABLE`). overlays: painters
        called per frame with (frame, time_s). time_s = ``start_time + frame_index / fps``
        (``fps`` is required with overlays, palette drift or kaleidoscope spin).
    Returns uint8 [B, H, W, 3]. Pixels depend only on (params, seed, track_id, the frame
    index, the decoded frames), never on B or on how a track was cut into calls.
    """

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [B, h, w, 3], got {frames.dtype} {frames.shape}")
    idx = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
    b = len(frames)
    if idx.shape != (b,) or (b > 1 and not np.all(np.diff(idx) == 1)):
        raise ValueError("frame_indices must list one consecutive, ascending index per frame")
    if (overlays or _needs_time(params)) and not fps:
        raise ValueError("apply_postfx: overlays, palette drift and kaleidoscope spin need "
                         "fps to compute each frame's time")
    ow, oh = (int(v) for v in out_size)
    settings = frame_settings(params, modulation, b)
    k = window_frames(params)
    if b and _uses_history(params, settings):
        need = min(k, int(idx[0]))
        have = 0 if history is None else len(history)
        if have < need:
            raise ValueError(
                f"persistence/feedback need the {need} decoded frames before frame "
                f"{int(idx[0])} as history, got {have}"
            )
        hist = history[have - need:] if need else frames[:0]
        seq = np.concatenate([hist, frames]) if need else frames
    else:
        need, seq = 0, frames
    seq_f = None  # float copy of seq, made once, only if some frame persists

    geom = fit_geometry(frames.shape[1:3], (ow, oh), params.fit)
    out = np.empty((b, oh, ow, 3), dtype=np.uint8)
    for j in range(b):
        fx = settings[j]
        i = int(idx[j])
        t = start_time + i / float(fps) if fps else 0.0
        pos = need + j
        img = seq[pos]
        n_pers = min(params.persistence_frames, i, pos)
        n_feed = min(params.feedback.frames, i, pos)
        if (n_pers and fx.persistence > 0) or (n_feed and fx.feedback > 0):
            if n_pers and fx.persistence > 0:
                if seq_f is None:
                    seq_f = seq.astype(np.float32)
                img = persist(seq_f[pos - n_pers: pos + 1], n_pers, fx.persistence)
            if n_feed and fx.feedback > 0:
                window = seq[pos - n_feed: pos + 1]
                if img is not seq[pos]:  # persistence first, then its trail fed back
                    window = window.copy()
                    window[-1] = img
                img = feedback(window, n_feed, params.feedback, fx.feedback,
                               fx.feedback_zoom, fx.feedback_rotate, fx.feedback_hue)
        img = _source_stages(img, params, fx, t, geom.scale)
        if fx.glow > 0:  # at the source size: soft by nature, and 14-56x fewer pixels
            img = glow(img, params.glow, fx.glow, scale=geom.scale)
        img = scale_to_output(img, geom, params.pad_color)
        if fx.detail > 0:
            img = detail(img, fx.detail)
        if fx.vignette > 0:
            img = vignette(img, fx.vignette)
        if fx.grain_intensity > 0:
            img = grain(img, fx.grain_intensity, seed, track_id, i, fx.grain_size)
        if overlays:
            img = np.array(img, copy=True)
            for paint in overlays:
                painted = paint(img, t)
                if painted is not None:
                    if painted.shape != img.shape:
                        raise ValueError(
                            f"overlay {paint!r} returned shape {painted.shape}, "
                            f"expected {img.shape}"
                        )
                    img = np.asarray(painted, dtype=np.uint8)
        out[j] = img
    return out


def history_frames(params: PostFXParams, first_frame: int, modulated: bool = False) -> int:
    """Decoded frames to keep before ``first_frame``: ``min(K, first_frame)`` whenever
    persistence or feedback is on or may be modulated on (K: :func:`window_frames`)."""
    if params.persistence > 0 or params.feedback.amount > 0 or modulated:
        return min(window_frames(params), max(0, first_frame))
    return 0
