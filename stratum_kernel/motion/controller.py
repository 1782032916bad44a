"""The latent controller: features on the frame timeline → latents float32 [frames, 8, 16, 16].

Two stages, so that any frame range computes alone with bit-identical results:

1. :meth:`LatentController.plan` computes small *control signals* for the whole track at
   once (N frames, a few dozen numbers per frame; cheap even at N = 40 000):

   - anchor weights ``[N, A]`` (≥ 0, summing to one): a softmax over logits from chroma,
     spectral centroid (a brightness anchor), ``anchor:NAME`` mappings, seeded wander of
     the logits, and the section focus (shift / cut / none at each marker);
   - PCA coefficients ``[N, K]`` in latent units: feature and stem mappings to ``pca:K``
     plus tempo pulses, each soft-limited to ``motion.pca_limit`` and then scaled by the
     axis's gain (:func:`axis_gains`), so a preset moves every model's picture alike;
   - post-FX modulation ``{param: [N]}``: additive offsets in the parameter's own units;
   - the wander gain ``[N]`` and the mixture's renormalisation scale ``[N]``.

   Smoothing is a causal one-pole EMA over the whole track (``motion.smoothing_alpha`` per
   frame at 24 fps, converted to the frame rate); onsets use hold-and-decay instead, so hits
   stay sharp. Both are causal, so a track cut short (``render.duration``) keeps the same
   signals on the frames it has.

2. :meth:`TrackPlan.latents` materialises latents for ``[start, stop)`` only:
   ``z = scale · Σ_a w_a anchor_a + Σ_k c_k axis_k + wander``. Every frame is computed by
   the same sequence of element-wise float64 operations from its own row of control signals
   (no BLAS, no reductions across frames), so a chunk equals the same rows of the whole
   track bit for bit, whatever the chunk or batch size and thread count.

Wander is value noise in latent space: a standard-normal vector per knot, knots every
``1 / (rate_hz · speed)`` seconds of *track time*, drawn from ``rng_for(seed, track, knot,
'wander')``; Catmull-Rom interpolation normalised to unit variance, scaled by the wander
gain and soft-clipped (``x / sqrt(1 + (x/b)²)``) so no element ever reaches the bound.

Range: anchors are N(0, 1) latents of norm ≈ sqrt(2048) ≈ 45; a convex mixture is shorter
than its parts, so (``motion.renormalize``) it is rescaled to the anchors' mean norm; PCA
offsets (≤ pca_limit × the axis gain along unit axes) and wander (≤ bound per element) are
bounded on top, so latents stay in the range the generator was trained on.

Axis gains: how far one latent unit along an axis moves the picture depends on the model
(``meta.pca_strength``: RMS pixel change per unit). The first bundled model moved about
0.1 along each of its axes; a model with an image-wide path can move 2.8 along its first,
so a preset's ``pca:0`` amount of 6 would drive it far past its range (a frame of one flat
colour). A unit of ``amount`` is therefore at most :data:`REFERENCE_AXIS_STRENGTH` of pixel
change: axes stronger than that are turned down in proportion, weaker ones keep one latent
unit per unit (turning them up would leave the latent prior).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.seeding import rng_for
from stratum_kernel.core.timeline import STEM_NAMES, FrameFeatures
from stratum_kernel.motion.presets import Preset, SignalMapping, load_preset, merge_preset_layers
from stratum_kernel.motion.presets import parse_target as _parse_target
from stratum_kernel.picture.model import GeneratorModel

log = logging.getLogger(__name__)

REFERENCE_FPS = 24.0
# RMS pixel change (tanh units) per unit of a pca:K amount, at most; see "Axis gains"
REFERENCE_AXIS_STRENGTH = 0.1
# mix features standing in for each stem's (envelope, onset) when a track has no stems
STEM_FALLBACK = {
    "drums": ("percussive", "onset"),
    "bass": ("rms", "onset"),
    "other": ("harmonic", "onset"),
    "vocals": ("harmonic", "onset"),
}


# --- signal processing on control signals (whole track, float64) ----------------------


def ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """Causal one-pole smoothing along the last axis, starting at the first value:
    ``y[n] = (1 - alpha) x[n] + alpha y[n-1]``, ``y[-1] = x[0]``. float64.

    Computed in blocks with the closed form ``y[n0+i] = a^i (a y[n0-1] + Σ_j (1-a) x[n0+j]
    a^-j)`` (a sequential cumsum per block), so it needs no scipy import (slow to import)
    and block boundaries sit at fixed frames: a prefix of the input gives the same prefix
    of the output, bit for bit.
    """
    x = np.asarray(x, dtype=np.float64)
    if alpha <= 0.0 or x.shape[-1] == 0:
        return x.copy()
    n = x.shape[-1]
    # a^-L must stay far from overflow: L · (-ln a) <= 500
    block = int(max(1, min(1024, 500.0 / -np.log(alpha))))
    k = np.arange(block, dtype=np.float64)
    grow = alpha ** -k
    shrink = alpha**k
    y = np.empty_like(x)
    prev = x[..., 0].copy()
    for n0 in range(0, n, block):
        m = min(block, n - n0)
        acc = np.cumsum((1.0 - alpha) * x[..., n0 : n0 + m] * grow[:m], axis=-1)
        y[..., n0 : n0 + m] = shrink[:m] * (alpha * prev[..., None] + acc)
        prev = y[..., n0 + m - 1]
    return y


def hold_decay(x: np.ndarray, decay_per_frame: float) -> np.ndarray:
    """``y[n] = max(x[n], d · y[n-1])`` for x ≥ 0 (a hit rings and fades), vectorised in
    the log domain: ``log y[n] = n log d + cummax(log x[k] - k log d)``. float64 [N]."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    n = np.arange(x.shape[-1], dtype=np.float64)
    if decay_per_frame <= 0.0:
        return x.copy()
    ld = np.log(decay_per_frame)
    with np.errstate(divide="ignore"):
        lx = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), -np.inf)
    acc = np.maximum.accumulate(lx - n * ld, axis=-1)
    with np.errstate(invalid="ignore"):
        y = np.exp(n * ld + acc)
    return np.where(np.isfinite(acc), np.maximum(y, x), 0.0)


def soft_clip(x: np.ndarray, bound: float) -> np.ndarray:
    """``x / sqrt(1 + (x/bound)²)``: smooth, odd, monotone, |y| < bound. Only correctly
    rounded operations, so a value is the same whichever array it sits in."""
    r = x / bound
    return x / np.sqrt(1.0 + r * r)


def shape_signal(v: np.ndarray, m: SignalMapping) -> np.ndarray:
    """Gate, curve and (optionally) centre a [0, 1] signal as a mapping says."""
    v = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    th = m.threshold
    if m.bipolar:
        s = 2.0 * v - 1.0
        mag = np.maximum(0.0, (np.abs(s) - th) / (1.0 - th)) ** m.curve
        return np.sign(s) * mag
    return np.maximum(0.0, (v - th) / (1.0 - th)) ** m.curve


def axis_gains(strength, count: int) -> np.ndarray:
    """float64 [count]: latent units per unit of a ``pca:K`` amount, from the model's
    ``pca_strength`` (RMS pixel change per latent unit along each axis): ``min(1, REF /
    strength)``. Axes without a measured strength keep gain 1."""
    gains = np.ones(count)
    s = np.asarray(strength, dtype=np.float64)[:count]
    ok = s > 0
    gains[: s.size][ok] = np.minimum(1.0, REFERENCE_AXIS_STRENGTH / s[ok])
    return gains


def catmull_rom_weights(f: np.ndarray) -> tuple[np.ndarray, ...]:
    """The four Catmull-Rom weights at fraction ``f`` in [0, 1), normalised so that
    iid unit-variance knots give unit variance everywhere."""
    f2 = f * f
    f3 = f2 * f
    w = (
        0.5 * (-f3 + 2.0 * f2 - f),
        0.5 * (3.0 * f3 - 5.0 * f2 + 2.0),
        0.5 * (-3.0 * f3 + 4.0 * f2 + f),
        0.5 * (f3 - f2),
    )
    norm = np.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2] + w[3] * w[3])
    return tuple(wi / norm for wi in w)


@functools.lru_cache(maxsize=8192)
def knot_noise(seed: int, track_id: str, knot: int, purpose: str, size: int) -> np.ndarray:
    """float64 [size] standard normal for one knot (knot ≥ -1; keys are shifted by one).

    Pure and keyed, so it is memoised: the studio re-plans a track on every controller
    slider change, and a 3-minute plan asks for ~1000 knots. The array is read-only."""
    noise = rng_for(seed, track_id, int(knot) + 1, purpose).standard_normal(size)
    noise.flags.writeable = False
    return noise


def value_noise(
    seed: int, track_id: str, purpose: str, phase: np.ndarray, size: int
) -> np.ndarray:
    """Smooth unit-variance noise float64 [len(phase), size] at knot ``phase`` values."""
    j = np.floor(phase).astype(np.int64)
    f = phase - j
    if len(j) == 0:
        return np.zeros((0, size))
    lo, hi = int(j.min()) - 1, int(j.max()) + 2
    knots = np.stack([knot_noise(seed, track_id, k, purpose, size) for k in range(lo, hi + 1)])
    out = np.zeros((len(phase), size))
    for q, w in enumerate(catmull_rom_weights(f)):
        out += w[:, None] * knots[j - 1 + q - lo]
    return out


# --- the plan -------------------------------------------------------------------------


@dataclass
class TrackPlan:
    """Control signals for one track and the means to materialise latents from them.

    anchor_weights: float64 [N, A] (rows ≥ 0, sum 1) over ``anchor_names``;
    pca_coefficients: float64 [N, K] in latent units; mix_scale: float64 [N] (the
    renormalisation of the anchor mixture); wander_gain: float64 [N] (latent units);
    tempo_pulse: float64 [N] in [0, 1] (zeros when tempo sync is off); section_focus: the
    focus anchor of each section; modulation: param → float64 [N]; notes: what was skipped.
    """

    track_id: str
    seed: int
    fps: float
    start_time: float
    n_frames: int
    latent_shape: tuple[int, int, int]
    anchor_names: list[str]
    anchor_weights: np.ndarray
    pca_coefficients: np.ndarray
    mix_scale: np.ndarray
    wander_gain: np.ndarray
    wander_phase_rate: float
    wander_bound: float
    tempo_pulse: np.ndarray
    section_focus: list[str]
    modulation: dict[str, np.ndarray]
    notes: list[str]
    _anchors: np.ndarray = field(repr=False, default=None)  # float64 [A, D]
    _axes: np.ndarray = field(repr=False, default=None)  # float64 [K, D]

    def _check(self, start: int, stop: int) -> None:
        if not (0 <= start <= stop <= self.n_frames):
            raise ValueError(
                f"frame range [{start}, {stop}) is outside the track's 0..{self.n_frames}"
            )

    def frame_times(self, start: int, stop: int) -> np.ndarray:
        """float64 [n]: track time of frames [start, stop)."""
        return self.start_time + np.arange(start, stop, dtype=np.float64) / self.fps

    def wander(self, start: int, stop: int) -> np.ndarray:
        """float64 [n, D]: the wander offset of frames [start, stop), |x| < bound."""
        self._check(start, stop)
        d = int(np.prod(self.latent_shape))
        if self.wander_phase_rate <= 0 or not np.any(self.wander_gain[start:stop]):
            return np.zeros((stop - start, d))
        phase = self.frame_times(start, stop) * self.wander_phase_rate
        noise = value_noise(self.seed, self.track_id, "wander", phase, d)
        return soft_clip(self.wander_gain[start:stop, None] * noise, self.wander_bound)

    def latents(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """float32 [stop - start, 8, 16, 16] for frames [start, stop)."""
        stop = self.n_frames if stop is None else stop
        self._check(start, stop)
        n = stop - start
        w = self.anchor_weights[start:stop] * self.mix_scale[start:stop, None]
        z = np.zeros((n, self._anchors.shape[1]))
        for a in range(self._anchors.shape[0]):
            z += w[:, a : a + 1] * self._anchors[a]
        c = self.pca_coefficients[start:stop]
        for k in range(self._axes.shape[0]):
            z += c[:, k : k + 1] * self._axes[k]
        z += self.wander(start, stop)
        return z.astype(np.float32).reshape(n, *self.latent_shape)

    def postfx_modulation(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """``{param: float32 [n]}``: additive offsets to PostFXParams fields for frames
        [start, stop), in each field's own units (post-FX clips to the field's range)."""
        stop = self.n_frames if stop is None else stop
        self._check(start, stop)
        return {k: v[start:stop].astype(np.float32) for k, v in self.modulation.items()}


# --- the controller ---------------------------------------------------------------------


class LatentController:
    """Turns one track's :class:`FrameFeatures` into a :class:`TrackPlan`.

    ``preset``: a Preset or a preset name. ``smoothing_alpha`` / ``tempo_sync`` (a dict of
    TempoSyncParams fields) override the preset's. ``seed`` and ``track_id`` key every
    random draw (wander knots, section focus order).
    """

    def __init__(
        self,
        model: GeneratorModel,
        preset: Preset | str,
        *,
        seed: int,
        track_id: str,
        smoothing_alpha: float | None = None,
        tempo_sync: Mapping[str, Any] | None = None,
    ):
        preset = load_preset(preset) if isinstance(preset, str) else preset
        layer: dict[str, Any] = {}
        if smoothing_alpha is not None:
            layer["motion"] = {"smoothing_alpha": smoothing_alpha}
        if tempo_sync:
            layer["tempo_sync"] = dict(tempo_sync)
        self.preset = merge_preset_layers(preset, layer) if layer else preset
        self.model = model
        self.seed = int(seed)
        self.track_id = str(track_id)
        self.latent_shape = tuple(model.latent_shape)
        self.scale = float(model.meta.latent_scale)
        self.notes: list[str] = []

        use = self.preset.anchors.use
        names = sorted(model.anchors) if use == "all" else list(use)
        missing = [n for n in names if n not in model.anchors]
        if missing:
            raise ConfigError(
                f"preset {self.preset.name!r}", "anchors.use",
                f"anchors {missing} are not in the model; it has {sorted(model.anchors)} "
                "(or use 'all')",
            )
        self.anchor_names = names
        self.anchors = np.stack([model.anchors[n] for n in names]).reshape(len(names), -1)
        self.anchors = self.anchors.astype(np.float64)
        axes = np.asarray(model.pca_axes, dtype=np.float64)
        self.axes = axes.reshape(axes.shape[0], -1) if axes.size else np.zeros((0, 1))
        if self.axes.shape[0] == 0:
            self.axes = np.zeros((0, self.anchors.shape[1]))
        self.axis_gain = axis_gains(model.meta.pca_strength, self.axes.shape[0])

    # -- helpers --

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.debug("controller %s/%s: %s", self.preset.name, self.track_id, text)

    def _resolve(self, target: str) -> tuple[str, Any] | None:
        kind, name = _parse_target(target)
        if kind == "pca" and name >= self.axes.shape[0]:
            self._note(f"{target}: the model has {self.axes.shape[0]} PCA axes; skipped")
            return None
        if kind == "anchor" and name not in self.anchor_names:
            self._note(f"{target}: no such anchor in use; skipped")
            return None
        return kind, name

    def _signal(self, ff: FrameFeatures, m: SignalMapping, raw: np.ndarray | None,
                alpha: float, what: str) -> np.ndarray | None:
        if raw is None:
            self._note(f"{what} is missing from the features; its mappings are skipped")
            return None
        s = shape_signal(raw, m)
        if m.is_onset() and not m.bipolar:
            decay_s = m.decay_s if m.decay_s is not None else self.preset.motion.onset_decay_s
            return hold_decay(s, float(np.exp(-1.0 / (decay_s * ff.fps))))
        return ema(s, alpha)

    def _mapped_sources(self, ff: FrameFeatures):
        """(mapping, raw [N] or None, label) for every feature and stem mapping."""
        for m in self.preset.features:
            yield m, ff.values.get(m.source), f"feature {m.source!r}"
        for stem in STEM_NAMES:
            for m in self.preset.stem_map.get(stem, []):
                series = ff.stems.get(stem)
                if series is not None and m.source in series:
                    yield m, series[m.source], f"stem {stem}.{m.source}"
                elif self.preset.stem_fallback:
                    env, ons = STEM_FALLBACK[stem]
                    sub = ons if m.source == "onset" else env
                    self._note(f"no {stem} stem: {stem}.{m.source} follows the mix's {sub!r}")
                    yield m, ff.values.get(sub), f"feature {sub!r} (for {stem})"
                else:
                    self._note(f"no {stem} stem: its mappings are skipped")

    def _tempo_pulse(self, ff: FrameFeatures) -> np.ndarray:
        """float64 [N] in [0, 1]: 1 on each pulse of the beat grid, decaying before the next.

        The grid is the beat frames themselves (beat k at ``beat_frames[k]``, linear in
        between), so pulses land exactly on beat frames even when a beat's true time falls
        between frames; after the last beat the grid runs on at the tempo for one beat.
        Nothing pulses before the first beat.
        """
        ts = self.preset.tempo_sync
        n = ff.n_frames
        if not ts.enabled:
            return np.zeros(n)
        beats = np.unique(np.asarray(ff.beat_frames, dtype=np.int64))
        if len(beats) == 0:
            self._note("tempo sync: the track has no beats; no pulses")
            return np.zeros(n)
        if ff.tempo and ff.tempo > 0:
            period = 60.0 * ff.fps / ff.tempo
        else:
            period = float(np.median(np.diff(beats))) if len(beats) > 1 else ff.fps / 2
        idx = np.arange(n, dtype=np.float64)
        k = np.searchsorted(beats, idx, side="right") - 1
        kk = np.clip(k, 0, max(len(beats) - 2, 0))
        if len(beats) > 1:
            span = (beats[kk + 1] - beats[kk]).astype(np.float64)
            inside = (idx - beats[kk]) / span
        else:
            inside = np.zeros(n)
        tail = (idx - beats[-1]) / period
        total = np.where(k >= len(beats) - 1, len(beats) - 1 + tail, k + inside)
        phase = np.mod(total / ts.subdivision, 1.0)
        pulse = np.exp(-phase / ts.decay)
        pulse[(k < 0) | (total >= len(beats))] = 0.0
        return pulse

    def _section_focus(self, ff: FrameFeatures, a: int) -> tuple[np.ndarray, list[int]]:
        """float64 [N, A] focus logits (before the gain) and the focus anchor per section."""
        sp = self.preset.sections
        n = ff.n_frames
        section = np.asarray(ff.section, dtype=np.int64)
        if sp.on_marker == "none" or len(section) == 0:
            section = np.zeros(n, dtype=np.int64)
        change = np.flatnonzero(np.diff(section) != 0) + 1
        starts = [0, *change.tolist()]
        ends = [*change.tolist(), n]
        out = np.zeros((n, a))
        focus: list[int] = []
        prev_vec = None
        cf = 0.0 if sp.on_marker == "cut" else sp.crossfade_s * ff.fps
        for s0, s1 in zip(starts, ends, strict=True):
            r = rng_for(self.seed, self.track_id, int(section[s0]), "section-focus")
            if focus and a > 1:
                idx = int(r.integers(a - 1))
                idx += idx >= focus[-1]
            else:
                idx = int(r.integers(a))
            focus.append(idx)
            cur = np.zeros(a)
            cur[idx] = 1.0
            if prev_vec is None or cf <= 0:
                out[s0:s1] = cur
            else:
                x = np.clip((np.arange(s0, s1) - s0 + 1) / cf, 0.0, 1.0)
                b = (x * x * (3.0 - 2.0 * x))[:, None]
                out[s0:s1] = (1.0 - b) * prev_vec + b * cur
            prev_vec = out[s1 - 1].copy()
        return out, focus

    # -- the plan --

    def plan(self, ff: FrameFeatures) -> TrackPlan:
        """Compute the control signals of the whole track described by ``ff``."""
        p = self.preset
        n, fps = ff.n_frames, float(ff.fps)
        if n < 1:
            raise ValueError("FrameFeatures has no frames")
        a, k = len(self.anchor_names), self.axes.shape[0]
        alpha = p.motion.smoothing_alpha ** (REFERENCE_FPS * p.motion.speed / fps)
        self.notes = []

        rms = ff.values.get("rms")
        if rms is None:
            self._note("no 'rms' feature: loudness-following treats the track as silent")
            rms = np.zeros(n)
        rms_s = ema(np.clip(rms, 0.0, 1.0), alpha)

        logits = np.zeros((n, a))
        coefs = np.zeros((n, k))
        modulation: dict[str, np.ndarray] = {}

        # anchor logits from harmony and brightness (smoothed)
        chroma = ff.values.get("chroma")
        if chroma is not None and p.anchors.chroma > 0:
            cs = ema(np.clip(chroma, 0.0, 1.0), alpha)
            for i in range(a):
                classes = list(range(i % 12, 12, a)) if a <= 12 else [i % 12]
                logits[:, i] += p.anchors.chroma * cs[classes].mean(axis=0)
        ba = p.anchors.brightness_anchor
        if ba is not None and p.anchors.brightness != 0:
            if ba not in self.anchor_names:
                self._note(f"brightness anchor {ba!r} is not in use; skipped")
            elif "centroid" in ff.values:
                cen = ema(np.clip(ff.values["centroid"], 0.0, 1.0), alpha)
                logits[:, self.anchor_names.index(ba)] += p.anchors.brightness * (2 * cen - 1)

        # feature and stem mappings
        for m, raw, label in self._mapped_sources(ff):
            target = self._resolve(m.target)
            if target is None:
                continue
            sig = self._signal(ff, m, raw, alpha, label)
            if sig is None:
                continue
            self._apply(target, m.amount * sig, logits, coefs, modulation, n)

        # tempo pulses
        pulse = self._tempo_pulse(ff)
        ts = p.tempo_sync
        if ts.enabled and pulse.any():
            target = self._resolve(ts.target)
            if target is not None:
                gain = (1.0 - ts.follow_rms) + ts.follow_rms * rms_s
                self._apply(target, ts.amount * gain * pulse, logits, coefs, modulation, n)

        # slow wander between anchors, then the section focus (not smoothed: a cut is a cut)
        times = ff.times()
        rate = p.motion.wander.rate_hz * p.motion.speed
        if p.anchors.wander > 0 and a > 1:
            logits += p.anchors.wander * value_noise(
                self.seed, self.track_id, "wander-anchor", times * rate, a
            )
        focus_vec, focus = self._section_focus(ff, a)
        logits += p.sections.focus * focus_vec

        z = logits / p.anchors.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        weights = e / e.sum(axis=1, keepdims=True)

        mix_scale = self._mix_scale(weights) if p.motion.renormalize else np.ones(n)
        if k:
            coefs = soft_clip(coefs, p.motion.pca_limit * self.scale) * self.axis_gain
        wd = p.motion.wander
        wander_gain = wd.amount * self.scale * ((1.0 - wd.follow_rms) + wd.follow_rms * rms_s)

        return TrackPlan(
            track_id=self.track_id, seed=self.seed, fps=fps, start_time=float(ff.start),
            n_frames=n, latent_shape=self.latent_shape, anchor_names=list(self.anchor_names),
            anchor_weights=weights, pca_coefficients=coefs, mix_scale=mix_scale,
            wander_gain=wander_gain, wander_phase_rate=rate if wd.amount > 0 else 0.0,
            wander_bound=wd.bound * self.scale, tempo_pulse=pulse,
            section_focus=[self.anchor_names[i] for i in focus], modulation=modulation,
            notes=list(self.notes), _anchors=self.anchors, _axes=self.axes,
        )

    def _apply(self, target, values, logits, coefs, modulation, n) -> None:
        kind, name = target
        if kind == "pca":
            coefs[:, name] += values * self.scale
        elif kind == "anchor":
            logits[:, self.anchor_names.index(name)] += values
        else:
            modulation[name] = modulation.get(name, np.zeros(n)) + values

    def _mix_scale(self, weights: np.ndarray) -> np.ndarray:
        """float64 [N]: factor that brings ``Σ w_a anchor_a`` to the anchors' mean norm,
        from the anchors' Gram matrix (so it needs no latent-sized work per frame)."""
        x = self.anchors
        a = x.shape[0]
        gram = np.array([[float(np.sum(x[i] * x[j])) for j in range(a)] for i in range(a)])
        target = float(np.mean(np.sqrt(np.diag(gram))))
        sq = np.zeros(weights.shape[0])
        for i in range(a):
            for j in range(a):
                sq += weights[:, i] * weights[:, j] * gram[i, j]
        return target / np.sqrt(np.maximum(sq, 1e-12))
