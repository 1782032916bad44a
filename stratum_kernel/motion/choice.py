"""Choosing a preset for a track from what it is like (``controller.preset: auto``).

Each shipped preset says in its ``suits`` section which music it is made for, as ranges
of a :class:`~stratum_kernel.core.character.TrackCharacter`. A measure inside its range fits
fully; outside, the fit falls off with the distance in that measure's own unit of change
(:data:`SCALES`: 10 bpm, one onset per second, 3 dB, half an octave, a tenth of a share),
as ``exp(-d²)``. A preset's fit is the mean over its ranges; the best fit wins (ties: the
preset with more ranges, then the name), and ``default`` is taken when no preset fits at
least :data:`MIN_FIT`. The choice and its reasons — what fitted, what did not, the runner-up —
go into the run's meta.json, so a choice can always be explained and overridden (a preset
named for the track or for the album wins over ``auto``).

Pure and deterministic: the same character and presets always give the same choice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from stratum_kernel.core.character import TrackCharacter
from stratum_kernel.motion.presets import Preset

AUTO = "auto"
FALLBACK = "default"
MIN_FIT = 0.5
#: how far outside its range a measure is "one step" off (fit exp(-1) ≈ 0.37)
SCALES = {"tempo": 10.0, "onset_rate": 1.0, "loudness": 3.0, "dynamics": 3.0,
          "brightness": 0.5, "percussive": 0.1, "beat_strength": 0.15, "vocals": 0.1,
          "drums": 0.1}
_LOG2 = {"brightness"}  # measured in octaves


@dataclass(frozen=True)
class PresetChoice:
    """The preset chosen for a track, with the fit of every candidate and why."""

    name: str
    fit: float
    reasons: tuple[str, ...]
    fits: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "by": "analysis", "fit": round(self.fit, 3),
                "reasons": list(self.reasons),
                "fits": {k: round(v, 3) for k, v in self.fits.items()}}


def _distance(name: str, value: float, lo: float | None, hi: float | None) -> float:
    """How many :data:`SCALES` steps ``value`` lies outside [lo, hi] (0 inside)."""
    if name in _LOG2:
        value = math.log2(max(value, 1.0))
        lo = None if lo is None else math.log2(max(lo, 1.0))
        hi = None if hi is None else math.log2(max(hi, 1.0))
    if lo is not None and value < lo:
        return (lo - value) / SCALES[name]
    if hi is not None and value > hi:
        return (value - hi) / SCALES[name]
    return 0.0


def _range_text(lo: float | None, hi: float | None) -> str:
    def f(x: float) -> str:
        return f"{x:g}"
    if lo is None:
        return f"≤ {f(hi)}"
    if hi is None:
        return f"≥ {f(lo)}"
    return f"{f(lo)}–{f(hi)}"


def preset_fit(character: TrackCharacter, preset: Preset) -> tuple[float, list[str]]:
    """(fit in [0, 1], one line per range: the value, the range, whether it fits). Ranges
    on a measure the track lacks (stem shares without stems) are left out."""
    fits, lines = [], []
    for name, (lo, hi) in preset.suits.items():
        value = getattr(character, name)
        if value is None:
            continue
        d = _distance(name, float(value), lo, hi)
        fits.append(math.exp(-d * d))
        verdict = "fits" if d == 0 else f"{d:.1f} steps off"
        lines.append(f"{character.describe(name)} (suits {_range_text(lo, hi)}: {verdict})")
    return (sum(fits) / len(fits) if fits else 0.0), lines


def choose_preset(character: TrackCharacter, presets: Iterable[Preset]) -> PresetChoice:
    """The best fitting preset for ``character`` among ``presets`` (module docstring)."""
    scored = []
    for p in presets:
        if not p.suits:
            continue
        fit, lines = preset_fit(character, p)
        scored.append((fit, len(lines), p.name, lines))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    fits = {name: fit for fit, _, name, _ in scored}
    if not scored or scored[0][0] < MIN_FIT:
        best = f"{scored[0][2]} ({scored[0][0]:.2f})" if scored else "none"
        return PresetChoice(FALLBACK, 0.0, (f"no preset fits well (best: {best}); the "
                                            "balanced default",), fits)
    fit, _, name, lines = scored[0]
    reasons = list(lines)
    if len(scored) > 1:
        reasons.append(f"next best: {scored[1][2]} (fit {scored[1][0]:.2f})")
    return PresetChoice(name, fit, tuple(reasons), fits)
