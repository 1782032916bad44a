"""Trails: persistence (a weighted mean of the last frames) and feedback (the last frames
warped as many times as they are old, fading), both over a bounded window of *decoded*
frames.

Neither recurses through its own output: frame t is computed from the decoded frames
t-K..t only (K = ``persistence_frames`` or ``feedback.frames``) with *this* frame's
settings, so any frame range computes alone with identical pixels when the caller passes
those K earlier decoded frames — however a track is chunked, resumed or spread over
workers. The bound is the trail's length: a frame older than K frames no longer shows (at
the default decay of feedback, 0.8¹² ≈ 7 % — choose ``frames`` and ``amount`` together).
"""

from __future__ import annotations

import functools

import numpy as np

from stratum_kernel.picture.postfx.params import FeedbackParams
from stratum_kernel.picture.postfx.tone import hue_rotation


def persistence_weights(p: float, k: int) -> np.ndarray:
    """float32 [k]: weights p¹..pᵏ of the 1st..k-th previous frame (the current frame has 1)."""
    return (float(p) ** np.arange(1, k + 1)).astype(np.float32)


def persist(window: np.ndarray, n_prev: int, p: float) -> np.ndarray:
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


@functools.lru_cache(maxsize=64)
def _warp_power(h: int, w: int, zoom: float, rotate: float, dx: float, dy: float,
                times: int) -> np.ndarray:
    """float32 [2, 3]: the per-frame warp (zoom and turn about the centre, then a shift in
    frame fractions) applied ``times`` times, as one affine matrix."""
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a = np.deg2rad(rotate)
    one = np.array([[zoom * np.cos(a), -zoom * np.sin(a), 0.0],
                    [zoom * np.sin(a), zoom * np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    to_c = np.array([[1.0, 0, -cx], [0, 1.0, -cy], [0, 0, 1.0]])
    back = np.array([[1.0, 0, cx + dx * w], [0, 1.0, cy + dy * h], [0, 0, 1.0]])
    step = back @ one @ to_c
    m = np.linalg.matrix_power(step, times)
    out = m[:2].astype(np.float32)
    out.setflags(write=False)
    return out


TRAIL_MAX_PX = 160  # larger frames build their trail at half size (a trail is soft anyway)


def feedback(window: np.ndarray, n_prev: int, params: FeedbackParams, amount: float,
             zoom: float, rotate: float, hue: float) -> np.ndarray:
    """This frame ``window[-1]`` with the ``n_prev`` frames before it fed back.

    window: uint8 [n_prev + 1, h, w, 3] in time order. The j-th previous frame is warped j
    times (zoom, rotate, ``params.shift``) and hue-turned by j·``hue`` degrees, weighted
    ``amount``^j, and combined newest first: ``lighten`` takes the brightest, ``blend`` a
    normalised weighted sum. Frames larger than :data:`TRAIL_MAX_PX` build the trail at half
    size (each warp samples straight into it) and it is scaled back once; this frame itself
    stays sharp. Returns uint8 [h, w, 3]."""
    import cv2

    h, w = window.shape[1:3]
    cur = np.ascontiguousarray(window[-1])
    half = max(h, w) > TRAIL_MAX_PX
    th, tw = ((h + 1) // 2, (w + 1) // 2) if half else (h, w)
    to_trail = np.array([[tw / w, 0, 0], [0, th / h, 0], [0, 0, 1.0]])
    lighten = params.mode == "lighten"
    trail = np.zeros((th, tw, 3), np.uint8) if lighten else np.zeros((th, tw, 3), np.float32)
    total = 0.0
    dx, dy = params.shift
    for j in range(1, n_prev + 1):
        weight = float(amount) ** j
        if weight < 0.5 / 255:  # invisible from here on
            break
        m = _warp_power(h, w, round(zoom, 5), round(rotate, 4), dx, dy, j)
        m = (to_trail @ np.vstack([m, [0, 0, 1.0]]))[:2].astype(np.float32)
        prev = cv2.warpAffine(np.ascontiguousarray(window[-1 - j]), m, (tw, th),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(0, 0, 0))
        tint = hue_rotation(j * hue) if hue else np.eye(3, dtype=np.float32)
        if lighten:  # weight and hue turn in one colour matrix, saturating to uint8
            cv2.max(trail, cv2.transform(prev, tint * np.float32(weight)), dst=trail)
        else:
            trail = cv2.scaleAdd(cv2.transform(prev.astype(np.float32), tint), weight, trail)
            total += weight
    if half:
        trail = cv2.resize(trail, (w, h), interpolation=cv2.INTER_LINEAR)
    if lighten:
        return cv2.max(cur, trail)
    acc = (cur.astype(np.float32) + trail) * np.float32(1.0 / (1.0 + total))
    return np.clip(np.rint(acc), 0, 255).astype(np.uint8)
