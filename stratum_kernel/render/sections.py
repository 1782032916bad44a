"""Sections with their own looks: a track's markers can carry another preset.

render.yaml's ``tracks[].sections`` lists, for some of a track's markers (by number, by
label, or a time ``at``), a preset and layers for the music from there on. The film
crossfades into each one over ``crossfade_beats`` beats of the track's tempo, starting at
the marker.

How a sectioned frame is made, and why it stays exact:

- every look (the track's own, then each section's) has a full-track controller plan; a
  frame's latent is the weighted blend of the plans' latents (:func:`section_weights`: 1
  inside a section, a smoothstep ramp across a crossfade), its length kept at the blend of
  the lengths so a crossfade does not dim the picture;
- the blended latent is decoded once; each look with weight > 0 post-processes the same
  decoded frames (with the same decoded history, so trails run across the change) and the
  outputs are blended with the same weights. A frame inside one section is that look's
  frame exactly — the blend only happens inside crossfades.

Everything is a pure function of the frame index, so any chunking, batch size, worker or
the studio's preview gives the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SectionLook:
    """One look of a sectioned track: where it starts (frame), its crossfade (frames), the
    preset and post-FX it renders with, its plan, and the config entry it came from."""

    start: int
    crossfade: int
    preset: Any
    postfx: Any
    plan: Any
    spec: dict = field(default_factory=dict)


def section_weights(starts: list[int], fades: list[int], start: int, stop: int) -> np.ndarray:
    """float64 [len(starts), stop - start]: each look's weight on frames [start, stop).

    Look k (``starts`` ascending, ``starts[0] == 0``) fades in over ``fades[k]`` frames from
    ``starts[k]`` with a smoothstep and hands over the same way to look k + 1; the weights
    of a frame sum to 1. A fade is cut short where the next section begins earlier."""
    f = np.arange(start, stop, dtype=np.float64)
    n = len(starts)
    up = np.ones((n, len(f)))  # how far look k has come in at each frame
    for k in range(1, n):
        length = max(0, min(fades[k], (starts[k + 1] - starts[k]) if k + 1 < n else fades[k]))
        if length == 0:
            x = (f >= starts[k]).astype(np.float64)
        else:
            x = np.clip((f - starts[k] + 0.5) / length, 0.0, 1.0)
            x = x * x * (3.0 - 2.0 * x)
        up[k] = x
    w = np.empty_like(up)
    for k in range(n):
        nxt = up[k + 1] if k + 1 < n else np.zeros(len(f))
        w[k] = up[k] * (1.0 - nxt)
    return w


class SectionedPlan:
    """The plan of a sectioned track: the looks' plans blended by :func:`section_weights`
    (the interface of :class:`~stratum_kernel.motion.controller.TrackPlan` the render uses)."""

    def __init__(self, looks: list[SectionLook]):
        self.looks = looks
        base = looks[0].plan
        self.track_id, self.seed, self.fps = base.track_id, base.seed, base.fps
        self.start_time, self.n_frames = base.start_time, base.n_frames
        self.notes = [n for look in looks for n in look.plan.notes]
        self.modulation = {k: v for look in looks for k, v in look.plan.modulation.items()}

    def weights(self, start: int, stop: int) -> np.ndarray:
        return section_weights([lk.start for lk in self.looks],
                               [lk.crossfade for lk in self.looks], start, stop)

    def active(self, start: int, stop: int) -> list[tuple[int, np.ndarray]]:
        """[(look index, its weights [stop - start])] of the looks seen in [start, stop)."""
        w = self.weights(start, stop)
        return [(k, w[k]) for k in range(len(self.looks)) if w[k].max() > 0]

    def latents(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.n_frames if stop is None else stop
        parts = self.active(start, stop)
        if len(parts) == 1:
            return self.looks[parts[0][0]].plan.latents(start, stop)
        zs = [(w, self.looks[k].plan.latents(start, stop).astype(np.float64)) for k, w in parts]
        shape = zs[0][1].shape
        blend = sum(w[:, None] * z.reshape(len(w), -1) for w, z in zs)
        length = sum(w * np.linalg.norm(z.reshape(len(w), -1), axis=1) for w, z in zs)
        norm = np.linalg.norm(blend, axis=1)
        blend *= (length / np.maximum(norm, 1e-12))[:, None]
        return blend.reshape(shape).astype(np.float32)

    def postfx_modulation(self, start: int = 0, stop: int | None = None):
        """The first look's modulation (a sectioned job post-processes per look: see
        :func:`blend_looks`)."""
        return self.looks[0].plan.postfx_modulation(start, stop)


def blend_looks(outputs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """uint8 [n, H, W, 3]: per-frame blend of [(weights [n], frames uint8 [n, H, W, 3])];
    a frame with one look at weight 1 is that look's frame unchanged."""
    if len(outputs) == 1:
        return outputs[0][1]
    out = np.empty_like(outputs[0][1])
    for i in range(len(out)):
        live = [(float(w[i]), f[i]) for w, f in outputs if w[i] > 0]
        if len(live) == 1:
            out[i] = live[0][1]
            continue
        acc = sum(w * f.astype(np.float32) for w, f in live)
        out[i] = np.clip(np.rint(acc), 0, 255).astype(np.uint8)
    return out
