"""Per-frame image effects between the generator and the encoder.

Pure functions over uint8 / float32 arrays. ``apply_postfx`` takes decoded generator frames
(uint8 [B, h, w, 3], usually square) and returns output frames (uint8 [B, H, W, 3]).

Order, and why: the colour work runs at the generator's resolution (256² is ~14× fewer
pixels than 720p), the rest after scaling::

    persistence → sharpen → tone LUT (exposure, curve, contrast, grade) → saturation
    → chromatic shift → scale/fit to the output → vignette → film grain → overlays

Determinism: every random draw is keyed by (seed, track, frame) through
:func:`stratum_kernel.core.seeding.rng_for`; persistence is a finite window over the previous
``persistence_frames`` *decoded* frames (no recursion through post-FX output), so any frame
range computes alone with identical pixels as long as the caller passes those earlier
decoded frames as ``history``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stratum_kernel.core.seeding import rng_for, stable_hash

ToneCurve = Literal["filmlog", "linear", "punch", "soft", "bleach", "noir"]
Fit = Literal["fill", "fit", "crop"]

#: An overlay painter: gets a writable output frame uint8 [H, W, 3] and the frame's time in
#: track seconds; draws in place (returns None) or returns a new frame of the same shape.
Painter = Callable[[np.ndarray, float], "np.ndarray | None"]

GRAIN_MARGIN = 128  # pool is this much larger than the frame; offsets pick a window
GRAIN_LEVELS = 32.0  # grain std in 8-bit levels at grain_intensity 1.0


class GradeParams(BaseModel):
    """Colour grading: lift/gamma/gain per RGB channel, then white balance.

    lift raises the shadows, gain scales the highlights, gamma bends the midtones
    (> 1 brightens). temperature > 0 warms (more red, less blue), tint > 0 adds magenta.
    """

    model_config = ConfigDict(extra="forbid")

    lift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gamma: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    temperature: float = Field(default=0.0, ge=-1.0, le=1.0)
    tint: float = Field(default=0.0, ge=-1.0, le=1.0)

    def model_post_init(self, _ctx: object) -> None:
        if min(self.gamma) <= 0 or min(self.gain) <= 0:
            raise ValueError("grade.gamma and grade.gain must be > 0")
        if not all(-0.5 <= v <= 0.5 for v in self.lift):
            raise ValueError("grade.lift values must be within -0.5..0.5")


class PostFXParams(BaseModel):
    """Post-FX settings (the neutral values switch an effect off).

    fit: how the square generator frame meets the output aspect — 'fill' scales to cover
        the output and crops the overflow, 'fit' scales to fit inside and pads with
        ``pad_color`` (letterbox), 'crop' takes a centred window at the generator's own scale
        (no resampling; padded where the output is larger).
    tone_curve: the base LUT; exposure in stops; contrast and saturation 1.0 = neutral.
    vignette: 0..1 darkening of the corners. grain_intensity: 0..1 film grain (1.0 = a std
        of 32 levels); grain_size: grain blob size in output pixels. chroma_shift: red/blue
        radial offset at the frame's edge, in output pixels. persistence: 0..0.95 weight
        ratio of the trailing frames (frame feedback) over ``persistence_frames`` earlier
        frames. sharpen: unsharp-mask amount (0 = off).
    overlays: overlay specs (dicts; see ``viz/overlay.py`` ``OverlaySpec``), painted last.
    """

    model_config = ConfigDict(extra="forbid")

    fit: Fit = "fill"
    pad_color: tuple[int, int, int] = (0, 0, 0)
    tone_curve: ToneCurve = "filmlog"
    exposure: float = Field(default=0.0, ge=-4.0, le=4.0)
    contrast: float = Field(default=1.0, ge=0.0, le=3.0)
    saturation: float = Field(default=1.0, ge=0.0, le=3.0)
    grade: GradeParams = Field(default_factory=GradeParams)
    vignette: float = Field(default=0.0, ge=0.0, le=1.0)
    grain_intensity: float = Field(default=0.0, ge=0.0, le=1.0)
    grain_size: float = Field(default=1.0, ge=0.5, le=8.0)
    chroma_shift: float = Field(default=0.0, ge=0.0, le=32.0)
    persistence: float = Field(default=0.0, ge=0.0, le=0.95)
    persistence_frames: int = Field(default=8, ge=1, le=32)
    sharpen: float = Field(default=0.0, ge=0.0, le=3.0)
    overlays: list[dict] = Field(default_factory=list)


#: Parameters a per-frame modulation may move, with the range the result is clipped to.
#: Modulation values are offsets added to the configured value. Every float field of
#: PostFXParams is here (presets may target any of them). A modulated grain_size is
#: quantised to 1/4 px, one cached grain pool per size.
MODULATABLE: dict[str, tuple[float, float]] = {
    "exposure": (-4.0, 4.0),
    "contrast": (0.0, 3.0),
    "saturation": (0.0, 3.0),
    "vignette": (0.0, 1.0),
    "grain_intensity": (0.0, 1.0),
    "grain_size": (0.5, 8.0),
    "chroma_shift": (0.0, 32.0),
    "persistence": (0.0, 0.95),
    "sharpen": (0.0, 3.0),
    "temperature": (-1.0, 1.0),
    "tint": (-1.0, 1.0),
}


@dataclass(frozen=True)
class FrameFX:
    """The effective scalar settings of one frame (configured value + modulation)."""

    exposure: float
    contrast: float
    saturation: float
    vignette: float
    grain_intensity: float
    grain_size: float
    chroma_shift: float
    persistence: float
    sharpen: float
    temperature: float
    tint: float


def frame_settings(
    params: PostFXParams, modulation: Mapping[str, np.ndarray] | None, n: int
) -> list[FrameFX]:
    """Per-frame effective settings for ``n`` frames; ``modulation``: {param: float32 [n]}."""
    base = {k: float(getattr(params, k, 0.0)) for k in MODULATABLE}
    base["temperature"] = params.grade.temperature
    base["tint"] = params.grade.tint
    columns = {k: np.full(n, v, dtype=np.float64) for k, v in base.items()}
    for key, values in (modulation or {}).items():
        if key not in MODULATABLE:
            raise ValueError(
                f"post-FX modulation of unknown parameter {key!r}; "
                f"modulatable: {', '.join(sorted(MODULATABLE))}"
            )
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.shape != (n,):
            raise ValueError(f"modulation {key!r} has {arr.size} values for {n} frames")
        lo, hi = MODULATABLE[key]
        columns[key] = np.clip(columns[key] + np.nan_to_num(arr), lo, hi)
    return [FrameFX(**{k: float(columns[k][i]) for k in MODULATABLE}) for i in range(n)]


# ---------------------------------------------------------------------------- tone & colour

TONE_SATURATION = {"filmlog": 0.95, "linear": 1.0, "punch": 1.15, "soft": 0.9, "bleach": 0.5,
                   "noir": 0.0}


def _s_curve(x: np.ndarray, k: float, lo: float, hi: float, g: float = 1.0) -> np.ndarray:
    """A logistic S-curve through (0, lo) and (1, hi); k = steepness, g = input gamma."""
    s = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    xg = np.power(np.clip(x, 0.0, 1.0), g)
    a, b = s(-k / 2), s(k / 2)
    return lo + (hi - lo) * (s(k * (xg - 0.5)) - a) / (b - a)


def tone_curve(name: str, x: np.ndarray) -> np.ndarray:
    """The named base curve on [0, 1] (monotonic non-decreasing)."""
    if name == "linear":
        return np.clip(x, 0.0, 1.0)
    if name == "filmlog":  # lifted blacks, soft shoulder: the log-ish look of scanned film
        return _s_curve(x, 3.5, 0.035, 0.965, 0.9)
    if name == "punch":
        return _s_curve(x, 7.0, 0.0, 1.0)
    if name == "soft":
        return _s_curve(x, 2.0, 0.08, 0.92, 0.95)
    if name in ("bleach", "noir"):
        return _s_curve(x, 6.0, 0.01, 0.99, 1.1)
    raise ValueError(f"unknown tone curve {name!r}")


def tone_lut(params: PostFXParams, fx: FrameFX) -> np.ndarray:
    """uint8 [1, 256, 3]: exposure → tone curve → contrast → lift/gamma/gain → white balance,
    as one per-channel lookup table (for ``cv2.LUT``)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    y = tone_curve(params.tone_curve, x * 2.0**fx.exposure)
    y = np.clip(0.5 + fx.contrast * (y - 0.5), 0.0, 1.0)
    g = params.grade
    wb = (1.0 + 0.12 * fx.temperature, 1.0 - 0.08 * fx.tint, 1.0 - 0.12 * fx.temperature)
    chans = []
    for c in range(3):
        yc = g.gain[c] * (y + g.lift[c] * (1.0 - y))
        yc = np.power(np.clip(yc, 0.0, 1.0), 1.0 / g.gamma[c]) * wb[c]
        chans.append(np.clip(yc, 0.0, 1.0))
    lut = np.rint(np.stack(chans, axis=-1) * 255.0).astype(np.uint8)
    return lut.reshape(1, 256, 3)


def _saturate(img: np.ndarray, factor: float) -> np.ndarray:
    """Mix each pixel with its Rec.709 luma: 0 = grey, 1 = unchanged, > 1 = more colour
    (one 3x3 colour matrix, applied by ``cv2.transform`` with saturation to 0..255)."""
    import cv2

    luma = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    m = np.float32(factor) * np.eye(3, dtype=np.float32) + np.float32(1.0 - factor) * luma
    return cv2.transform(img, m)


def _sharpen(img: np.ndarray, amount: float) -> np.ndarray:
    import cv2

    blur = cv2.GaussianBlur(img, (0, 0), 1.0)
    return cv2.addWeighted(img, 1.0 + amount, blur, -amount, 0)


def _chroma(img: np.ndarray, shift_px: float) -> np.ndarray:
    """Lateral chromatic aberration: red scaled out, blue scaled in, by ``shift_px`` at the
    edge (in this image's pixels), around the centre."""
    import cv2

    h, w = img.shape[:2]
    out = img.copy()
    for c, sign in ((0, 1.0), (2, -1.0)):
        k = 1.0 + sign * shift_px / (0.5 * max(h, w))
        m = np.float32([[k, 0, (1 - k) * (w - 1) / 2], [0, k, (1 - k) * (h - 1) / 2]])
        out[..., c] = cv2.warpAffine(
            np.ascontiguousarray(img[..., c]), m, (w, h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
    return out


# ------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class FitGeometry:
    """How a source frame maps onto the output.

    crop: (y0, y1, x0, x1) window of the source that is used; scaled: (height, width) that
    window is resized to; pad: (top, bottom, left, right) output pixels of padding.
    """

    crop: tuple[int, int, int, int]
    scaled: tuple[int, int]
    pad: tuple[int, int, int, int]

    @property
    def scale(self) -> float:
        return self.scaled[0] / max(1, self.crop[1] - self.crop[0])


def fit_geometry(src_hw: tuple[int, int], out_wh: tuple[int, int], fit: str) -> FitGeometry:
    """The crop/scale/pad that takes a frame of ``src_hw`` (height, width) to an output of
    ``out_wh`` (width, height) under ``fit`` ('fill' | 'fit' | 'crop'), centred."""
    sh, sw = src_hw
    ow, oh = out_wh
    if fit == "fill":
        s = max(ow / sw, oh / sh)
        ch, cw = min(sh, max(1, round(oh / s))), min(sw, max(1, round(ow / s)))
        y0, x0 = (sh - ch) // 2, (sw - cw) // 2
        return FitGeometry((y0, y0 + ch, x0, x0 + cw), (oh, ow), (0, 0, 0, 0))
    if fit == "fit":
        s = min(ow / sw, oh / sh)
        th, tw = min(oh, max(1, round(sh * s))), min(ow, max(1, round(sw * s)))
        top, left = (oh - th) // 2, (ow - tw) // 2
        return FitGeometry((0, sh, 0, sw), (th, tw), (top, oh - th - top, left, ow - tw - left))
    if fit == "crop":
        ch, cw = min(sh, oh), min(sw, ow)
        y0, x0 = (sh - ch) // 2, (sw - cw) // 2
        top, left = (oh - ch) // 2, (ow - cw) // 2
        return FitGeometry(
            (y0, y0 + ch, x0, x0 + cw), (ch, cw), (top, oh - ch - top, left, ow - cw - left)
        )
    raise ValueError(f"unknown fit {fit!r}; use 'fill', 'fit' or 'crop'")


def scale_to_output(
    img: np.ndarray, geom: FitGeometry, pad_color: tuple[int, int, int] = (0, 0, 0)
) -> np.ndarray:
    """Apply a :class:`FitGeometry` to one uint8 [h, w, 3] frame."""
    import cv2

    y0, y1, x0, x1 = geom.crop
    src = img[y0:y1, x0:x1]
    th, tw = geom.scaled
    if (th, tw) != src.shape[:2]:
        up = th >= src.shape[0]
        src = cv2.resize(
            src, (tw, th), interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA
        )
    top, bottom, left, right = geom.pad
    if top or bottom or left or right:
        src = cv2.copyMakeBorder(
            np.ascontiguousarray(src), top, bottom, left, right, cv2.BORDER_CONSTANT,
            value=tuple(int(v) for v in pad_color),
        )
    return np.ascontiguousarray(src)


# --------------------------------------------------------------------- vignette and grain


@functools.lru_cache(maxsize=8)
def vignette_shape(height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: 255 × how much a full-strength vignette darkens each pixel (0 in the
    centre, smooth, 255 at the corners)."""
    yy = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / (height / 2)
    xx = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / (width / 2)
    r2 = (xx[None, :] ** 2 + yy[:, None] ** 2) / 2.0  # 0 centre, 1 corners
    d = np.clip((r2 - 0.15) / 0.85, 0.0, 1.0)
    d = d * d * (3 - 2 * d)  # smoothstep
    m = np.rint(d * 255).astype(np.uint8)
    m = np.repeat(m[..., None], 3, axis=2)
    m.setflags(write=False)
    return m


def _vignette(img: np.ndarray, strength: float) -> np.ndarray:
    import cv2

    dark = cv2.multiply(img, vignette_shape(*img.shape[:2]), scale=strength / 255.0)
    return cv2.subtract(img, dark)


@functools.lru_cache(maxsize=8)
def grain_pool(seed: int, height: int, width: int, grain_size: float) -> np.ndarray:
    """uint8 [H + margin, W + margin, 3]: film grain codes (128 = no change; one code step
    is 1/4 of :data:`GRAIN_LEVELS` σ), mostly luminance with a little colour, blurred to
    ``grain_size`` pixels. Keyed by the seed and size only; each frame picks its window by a
    keyed offset (:func:`grain_offset`) and adds it scaled by the frame's intensity."""
    import cv2

    rng = np.random.default_rng([seed & 0xFFFFFFFF, stable_hash("grain-pool", height, width)])
    shape = (height + GRAIN_MARGIN, width + GRAIN_MARGIN)
    mono = rng.standard_normal(shape, dtype=np.float32)
    colour = rng.standard_normal((*shape, 3), dtype=np.float32)
    noise = 0.85 * mono[..., None] + 0.35 * colour
    if grain_size > 0.75:
        noise = cv2.GaussianBlur(noise, (0, 0), 0.5 * grain_size)
    noise *= 4.0 / max(float(noise.std()), 1e-6)  # σ = 4 codes
    pool = np.clip(np.rint(noise) + 128, 0, 255).astype(np.uint8)
    pool.setflags(write=False)
    return pool


def grain_offset(seed: int, track_id: str, frame: int) -> tuple[int, int]:
    """The (y, x) window offset into the grain pool for one frame."""
    oy, ox = rng_for(seed, track_id, frame, "grain").integers(0, GRAIN_MARGIN, size=2)
    return int(oy), int(ox)


def _grain(img: np.ndarray, intensity: float, seed: int, track_id: str, frame: int,
           size: float) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    pool = grain_pool(seed, h, w, round(size * 4) / 4)
    oy, ox = grain_offset(seed, track_id, frame)
    window = pool[oy : oy + h, ox : ox + w]
    beta = float(intensity) * GRAIN_LEVELS / 4.0  # codes are σ/4 steps around 128
    return cv2.addWeighted(img, 1.0, window, beta, -128.0 * beta)


# ------------------------------------------------------------------------------ persistence


def persistence_weights(p: float, k: int) -> np.ndarray:
    """float32 [k]: weights p¹..pᵏ of the 1st..k-th previous frame (the current frame has 1)."""
    return (float(p) ** np.arange(1, k + 1)).astype(np.float32)


def _persist(window: np.ndarray, n_prev: int, p: float) -> np.ndarray:
    """Blend the current frame ``window[-1]`` with the ``n_prev`` frames before it.

    window: float32 [n_prev + 1, h, w, 3] in time order (values 0..255). A normalised
    weighted sum, accumulated in a fixed order (newest first), so the result never depends
    on how frames were batched or chunked. Returns uint8 [h, w, 3].
    """
    import cv2

    w = persistence_weights(p, n_prev)
    acc = window[-1].copy()
    for j in range(n_prev):
        acc = cv2.scaleAdd(window[-2 - j], float(w[j]), acc)
    acc *= np.float32(1.0 / (1.0 + float(w.sum())))
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ the chain


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
        ``frame_indices[0]`` (oldest first); needed when persistence can be > 0, and then it
        must hold ``min(persistence_frames, frame_indices[0])`` frames.
    out_size: (width, height) of the output. modulation: {param: float32 [B]} offsets
        (see :data:`MODULATABLE`). overlays: painters called per frame with (frame, time_s)
        where time_s = ``start_time + frame_index / fps`` (``fps`` required with overlays).
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
    if overlays and not fps:
        raise ValueError("apply_postfx: overlays need fps to compute each frame's time")
    ow, oh = (int(v) for v in out_size)
    settings = frame_settings(params, modulation, b)
    k = params.persistence_frames
    if b and any(s.persistence > 0 for s in settings):
        need = min(k, int(idx[0]))
        have = 0 if history is None else len(history)
        if have < need:
            raise ValueError(
                f"persistence needs the {need} decoded frames before frame {int(idx[0])} as "
                f"history, got {have}"
            )
        hist = history[have - need :] if need else frames[:0]
        seq = np.concatenate([hist, frames]) if need else frames
    else:
        need, seq = 0, frames
    seq_f = None  # float copy of seq, made once, only if some frame persists

    import cv2

    geom = fit_geometry(frames.shape[1:3], (ow, oh), params.fit)
    out = np.empty((b, oh, ow, 3), dtype=np.uint8)
    for j in range(b):
        fx = settings[j]
        i = int(idx[j])
        pos = need + j
        n_prev = min(k, i, pos)
        if n_prev and fx.persistence > 0:
            if seq_f is None:
                seq_f = seq.astype(np.float32)
            img = _persist(seq_f[pos - n_prev : pos + 1], n_prev, fx.persistence)
        else:
            img = seq[pos]
        if fx.sharpen > 0:
            img = _sharpen(img, fx.sharpen)
        img = cv2.LUT(np.ascontiguousarray(img), tone_lut(params, fx))
        sat = fx.saturation * TONE_SATURATION[params.tone_curve]
        if abs(sat - 1.0) > 1e-6:
            img = _saturate(img, sat)
        if fx.chroma_shift > 0:
            img = _chroma(img, fx.chroma_shift / max(geom.scale, 1e-6))
        img = scale_to_output(img, geom, params.pad_color)
        if fx.vignette > 0:
            img = _vignette(img, fx.vignette)
        if fx.grain_intensity > 0:
            img = _grain(img, fx.grain_intensity, seed, track_id, i, fx.grain_size)
        if overlays:
            img = np.array(img, copy=True)
            t = start_time + i / float(fps)
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
    persistence is on or may be modulated on."""
    if params.persistence > 0 or modulated:
        return min(params.persistence_frames, max(0, first_frame))
    return 0

