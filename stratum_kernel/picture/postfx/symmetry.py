"""Mirror and kaleidoscope symmetry, as one ``cv2.remap`` of the frame.

mirror_x copies the left half, flipped, onto the right; mirror_y the top onto the bottom;
quad both — exact to the pixel (``np.flip``). The kaleidoscope folds every output pixel's
angle around the centre into the first of ``segments`` wedges (every other wedge
mirrored, so edges meet seamlessly) and samples the frame there; its maps are cached per
(size, segments, rotation, centre), and built from the folded angle so that rotating the
output by one wedge gives the same source position.
"""

from __future__ import annotations

import functools

import numpy as np

from stratum_kernel.picture.postfx.params import SymmetryParams


def mirror(img: np.ndarray, mode: str) -> np.ndarray:
    """uint8 [h, w, 3] with the left (mirror_x), top (mirror_y) or top-left (quad) part
    reflected over the rest."""
    out = np.array(img, copy=True)
    h, w = img.shape[:2]
    if mode in ("mirror_x", "quad"):
        half = w // 2
        out[:, w - half:] = out[:, :half][:, ::-1]
    if mode in ("mirror_y", "quad"):
        half = h // 2
        out[h - half:] = out[:half][::-1]
    return out


@functools.lru_cache(maxsize=32)
def kaleidoscope_maps(h: int, w: int, segments: int, rotation_q: int,
                      cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """(map1, map2) for ``cv2.remap`` (fixed point): the kaleidoscope of ``segments``
    wedges turned by ``rotation_q``/16 degrees around (cx, cy) in frame fractions."""
    import cv2

    ox, oy = (w - 1) / 2.0 + cx * w, (h - 1) / 2.0 + cy * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - ox, yy - oy
    r = np.hypot(dx, dy)
    wedge = 2.0 * np.pi / segments
    rot = np.deg2rad(rotation_q / 16.0)
    theta = np.mod(np.arctan2(dy, dx) - rot, 2.0 * np.pi)
    k = np.floor(theta / wedge)
    local = theta - k * wedge
    local = np.where(np.mod(k, 2) == 1, wedge - local, local)  # mirror every other wedge
    # round the folded angle so that symmetric pixels land on the same source point
    local = np.round(local * 2**20) / 2**20 + rot
    sx = (ox + r * np.cos(local)).astype(np.float32)
    sy = (oy + r * np.sin(local)).astype(np.float32)
    # sample from inside the frame: reflect what falls outside back in
    sx = np.abs(sx)
    sx = np.where(sx > w - 1, 2 * (w - 1) - sx, sx)
    sy = np.abs(sy)
    sy = np.where(sy > h - 1, 2 * (h - 1) - sy, sy)
    m1, m2 = cv2.convertMaps(sx, sy, cv2.CV_16SC2)
    m1.setflags(write=False)
    m2.setflags(write=False)
    return m1, m2


def apply_symmetry(img: np.ndarray, params: SymmetryParams, rotation: float) -> np.ndarray:
    """uint8 [h, w, 3]: ``img`` made symmetric as ``params`` says (``rotation``: this
    frame's kaleidoscope turn in degrees)."""
    import cv2

    if params.mode == "none":
        return img
    if params.mode != "kaleidoscope":
        return mirror(img, params.mode)
    h, w = img.shape[:2]
    wedge = 360.0 / params.segments
    turn = float(np.mod(rotation, 2 * wedge))  # the pattern repeats every two wedges
    m1, m2 = kaleidoscope_maps(h, w, params.segments, round(turn * 16),
                               float(params.center[0]), float(params.center[1]))
    return cv2.remap(np.ascontiguousarray(img), m1, m2, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)
