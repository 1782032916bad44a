"""Presets ("moods"): how a track's audio steers the latent walk, the colour and the post-FX.

A preset is a YAML file validated into :class:`Preset`. Bundled presets live next to this
module in ``stratum_kernel/presets/``; user presets (the studio saves them) live in
``<project root>/presets/`` and shadow a bundled preset of the same name.

What a preset says, in the controller's terms (see ``controller.py``):

- ``anchors``: which named anchor latents from ``models/meta.json`` take part and what
  moves the weights between them (chroma → one anchor per pitch-class group, spectral
  centroid → a "brightness" anchor, slow seeded wander of the weights, a softmax
  temperature that makes the mixture sharp or blended).
- ``motion``: smoothing of the slow signals, overall speed, seeded bounded wander in latent
  space, the limit on PCA offsets, renormalisation of the anchor mixture.
- ``tempo_sync``: a decaying pulse on the beat grid at a subdivision, pushing a PCA axis,
  an anchor or a post-FX parameter.
- ``sections``: what happens at each section marker (shift the focus anchor with a
  cross-fade, cut to it, or nothing).
- ``features`` / ``stem_map``: signal → target mappings for the full mix and for each stem.
  A target is ``pca:K`` (the K-th PCA axis of meta.json), ``anchor:NAME`` (adds to that
  anchor's weight logit) or ``postfx:PARAM`` (an additive offset to a numeric
  :class:`~stratum_kernel.picture.postfx.PostFXParams` field, in that field's units).
- ``postfx``: partial ``PostFXParams`` overrides, the mood's colour and texture.
- ``suits``: the music the mood is made for, as ranges of a track's character
  (:data:`~stratum_kernel.core.character.CHARACTER_FIELDS`: ``tempo: [110, 128]``,
  ``drums: [0.35, null]``...); ``controller.preset: auto`` picks the preset whose ranges fit a
  track best (``motion/choice.py``).

Layers merge album → track → override with :func:`merge_preset_layers` (a deep merge of
dicts, lists replaced whole, then one validation).
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from stratum_kernel.core.character import CHARACTER_FIELDS
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import project_root, safe_name, write_text_atomic
from stratum_kernel.core.schema import StrictModel, field_problems, read_yaml, validation_error
from stratum_kernel.core.timeline import STEM_NAMES, STEM_SERIES
from stratum_kernel.picture.postfx import MODULATABLE, PostFXParams

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "presets"
MIX_FEATURES = ("rms", "onset", "centroid", "flatness", "harmonic", "percussive")
_TARGET = re.compile(r"^(pca:(\d{1,2})|anchor:([A-Za-z0-9][A-Za-z0-9._-]*)|postfx:([a-z_]+))$")


def user_presets_dir() -> Path:
    """Where the studio saves presets: ``<project root>/presets``."""
    return project_root() / "presets"


def parse_target(target: str) -> tuple[str, str | int]:
    """``'pca:3'`` → ``('pca', 3)``, ``'anchor:warm'`` → ``('anchor', 'warm')``,
    ``'postfx:grain_intensity'`` → ``('postfx', 'grain_intensity')``."""
    m = _TARGET.match(target)
    if not m:
        raise ValueError(
            f"target {target!r} is not one of 'pca:K' (K = 0..99), 'anchor:NAME' or "
            "'postfx:PARAM'"
        )
    if m.group(2) is not None:
        return "pca", int(m.group(2))
    if m.group(3) is not None:
        return "anchor", m.group(3)
    return "postfx", m.group(4)


def check_target(v: str) -> str:
    """Validate a mapping target; a postfx target must name a numeric PostFXParams field."""
    kind, name = parse_target(v)
    if kind == "postfx" and name not in MODULATABLE:
        raise ValueError(
            f"postfx parameter {name!r} cannot be modulated; use one of {sorted(MODULATABLE)}"
        )
    return v


class SignalMapping(StrictModel):
    """One signal → one target.

    source: for ``features``, a full-mix feature (rms, onset, centroid, flatness, harmonic,
        percussive); for ``stem_map``, ``envelope`` or ``onset`` of that stem.
    amount: gain. For ``pca:K`` in latent standard deviations (``meta.latent_scale``) along
        the unit axis, turned down on axes that move the picture more than the reference
        (``motion.controller.axis_gains``); for ``anchor:NAME`` in softmax logits; for
        ``postfx:PARAM`` in the parameter's own units (added to its static value).
    bipolar: centre the signal (``2v - 1``) so that it pushes both ways.
    curve: response exponent applied to the (gated) signal: >1 favours peaks.
    threshold: a gate; values below it count as zero, the rest is rescaled to [0, 1].
    decay_s: onset-like sources only: how long a hit rings (hold-and-decay); None = the
        preset's ``motion.onset_decay_s``.
    """

    source: str
    target: str
    amount: float = Field(ge=-100.0, le=100.0)
    bipolar: bool = False
    curve: float = Field(default=1.0, ge=0.1, le=8.0)
    threshold: float = Field(default=0.0, ge=0.0, lt=1.0)
    decay_s: float | None = Field(default=None, ge=0.01, le=8.0)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return check_target(v)

    def is_onset(self) -> bool:
        """Onset sources ring with hold-and-decay; envelopes go through the EMA."""
        return self.source == "onset"


class AnchorParams(StrictModel):
    """Which anchors take part and what moves the weights between them.

    use: anchor names from meta.json, or ``'all'``.
    chroma: logit gain of the chroma mapping (pitch class p feeds anchor p mod A).
    brightness_anchor / brightness: the anchor the spectral centroid pulls toward (centred:
        dull pushes away, bright pulls in) and the logit gain. Skipped (with a note) when
        the model has no anchor of that name.
    temperature: softmax temperature; small = one anchor dominates, large = blended.
    wander: logit amount of seeded slow wander between anchors (rate: motion.wander.rate_hz).
    """

    use: list[str] | Literal["all"] = "all"
    chroma: float = Field(default=1.0, ge=0.0, le=20.0)
    brightness_anchor: str | None = None
    brightness: float = Field(default=0.0, ge=-20.0, le=20.0)
    temperature: float = Field(default=1.0, gt=0.01, le=20.0)
    wander: float = Field(default=0.5, ge=0.0, le=10.0)

    @field_validator("use")
    @classmethod
    def _names(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("list at least one anchor name, or 'all'")
            if len(set(v)) != len(v):
                raise ValueError("anchor names repeat")
        return v


class WanderParams(StrictModel):
    """Seeded smooth noise in latent space, keyed by (seed, track, knot).

    amount: standard deviation per latent element, in ``latent_scale`` units.
    rate_hz: knots per second (Catmull-Rom between knots); bound: hard limit per element
        (a smooth soft clip, so the limit is never crossed). follow_rms: how much of the
        amount follows loudness (0 = constant, 1 = silent passages do not wander at all).
    """

    amount: float = Field(default=0.25, ge=0.0, le=4.0)
    rate_hz: float = Field(default=0.25, gt=0.0, le=8.0)
    bound: float = Field(default=0.75, gt=0.0, le=8.0)
    follow_rms: float = Field(default=0.5, ge=0.0, le=1.0)


class MotionParams(StrictModel):
    """Smoothing, speed and limits of the latent walk.

    smoothing_alpha: one-pole EMA coefficient per frame at 24 fps for slow signals (0 = no
        smoothing, 0.95 ≈ 0.8 s time constant); converted so motion looks the same at any
        frame rate. speed: time scale of the whole mood (wander rate × speed, smoothing time
        ÷ speed). onset_decay_s: how long onset hits ring by default. pca_limit: soft limit
        of each PCA coefficient (latent std units, before the axis gain). renormalize:
        rescale the anchor mixture to the anchors' mean norm (a convex mix of Gaussian
        latents is shorter than its parts, and the generator was trained on norms near
        sqrt(2048)).
    """

    smoothing_alpha: float = Field(default=0.9, ge=0.0, lt=1.0)
    speed: float = Field(default=1.0, ge=0.1, le=10.0)
    onset_decay_s: float = Field(default=0.3, ge=0.01, le=8.0)
    wander: WanderParams = Field(default_factory=WanderParams)
    pca_limit: float = Field(default=12.0, gt=0.0, le=100.0)
    renormalize: bool = True


SUBDIVISIONS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def check_subdivision(v: float) -> float:
    if float(v) not in SUBDIVISIONS:
        raise ValueError(f"subdivision {v} is not one of {list(SUBDIVISIONS)} (beats per pulse)")
    return float(v)


class TempoSyncParams(StrictModel):
    """Pulses on the beat grid.

    subdivision: beats per pulse (0.5 = every half beat, 2 = every other beat).
    amount / target: how far and where each pulse pushes (units as in SignalMapping).
    decay: pulse length as a fraction of the pulse period. follow_rms: how much of the pulse
        size follows loudness (1 = silent passages do not pulse).
    """

    enabled: bool = False
    subdivision: float = 1.0
    amount: float = Field(default=4.0, ge=-100.0, le=100.0)
    target: str = "pca:0"
    decay: float = Field(default=0.3, ge=0.02, le=1.0)
    follow_rms: float = Field(default=0.5, ge=0.0, le=1.0)

    @field_validator("subdivision")
    @classmethod
    def _subdivision(cls, v: float) -> float:
        return check_subdivision(v)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return check_target(v)


class SectionParams(StrictModel):
    """Section markers: 'shift' moves the focus to another anchor over ``crossfade_s``,
    'cut' switches at the marker frame, 'none' ignores markers. focus: logit gain of the
    section's focus anchor."""

    on_marker: Literal["shift", "cut", "none"] = "shift"
    crossfade_s: float = Field(default=2.0, ge=0.0, le=60.0)
    focus: float = Field(default=2.0, ge=0.0, le=20.0)


class Preset(StrictModel):
    """A validated mood; see the module docstring for the meaning of each section."""

    name: str
    description: str = ""
    anchors: AnchorParams = Field(default_factory=AnchorParams)
    motion: MotionParams = Field(default_factory=MotionParams)
    tempo_sync: TempoSyncParams = Field(default_factory=TempoSyncParams)
    sections: SectionParams = Field(default_factory=SectionParams)
    features: list[SignalMapping] = Field(default_factory=list)
    stem_map: dict[str, list[SignalMapping]] = Field(default_factory=dict)
    stem_fallback: bool = True
    postfx: dict[str, Any] = Field(default_factory=dict)
    suits: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return safe_name(v, "preset name")

    @field_validator("features")
    @classmethod
    def _feature_sources(cls, v: list[SignalMapping]) -> list[SignalMapping]:
        for i, m in enumerate(v):
            if m.source not in MIX_FEATURES:
                raise ValueError(
                    f"features[{i}].source {m.source!r} is not one of {list(MIX_FEATURES)}"
                )
        return v

    @field_validator("stem_map")
    @classmethod
    def _stem_sources(cls, v: dict[str, list[SignalMapping]]):
        for stem, maps in v.items():
            if stem not in STEM_NAMES:
                raise ValueError(f"stem {stem!r} is not one of {list(STEM_NAMES)}")
            for i, m in enumerate(maps):
                if m.source not in STEM_SERIES:
                    raise ValueError(
                        f"{stem}[{i}].source {m.source!r} is not one of {list(STEM_SERIES)}"
                    )
        return v

    @field_validator("postfx")
    @classmethod
    def _postfx_overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v:
            try:
                PostFXParams.model_validate(v)
            except ValidationError as err:
                raise ValueError("; ".join(
                    f"{field}: {msg}" for field, msg in field_problems(err, PostFXParams)
                )) from None
        return v

    @field_validator("suits")
    @classmethod
    def _suits(cls, v: dict[str, tuple[float | None, float | None]]):
        for key, (lo, hi) in v.items():
            if key not in CHARACTER_FIELDS:
                close = difflib.get_close_matches(key, list(CHARACTER_FIELDS), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"suits.{key}: not a character measure; {hint}known: "
                                 f"{', '.join(CHARACTER_FIELDS)}")
            if lo is None and hi is None:
                raise ValueError(f"suits.{key}: give at least one end of the range")
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"suits.{key}: [{lo}, {hi}] is empty (low end above high)")
        return v

    def to_yaml(self) -> str:
        """The preset as YAML (description kept as a block)."""
        data = self.model_dump(mode="json", exclude_defaults=False)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=96)


# --- loading ---------------------------------------------------------------------------


def list_presets(user_dir: Path | None = None) -> list[str]:
    """Names of every available preset (bundled and user), sorted."""
    names = {p.stem for p in BUNDLED_DIR.glob("*.yaml")}
    udir = user_presets_dir() if user_dir is None else Path(user_dir)
    if udir.is_dir():
        names |= {p.stem for p in udir.glob("*.yaml")}
    return sorted(names)


def looks_like_path(name_or_path: str | os.PathLike) -> bool:
    """True for a preset given as a file (a .yaml name or a path), not a preset name."""
    s = str(name_or_path)
    return isinstance(name_or_path, os.PathLike) or s.endswith((".yaml", ".yml")) or "/" in s


def preset_path(
    name_or_path: str | os.PathLike, *, base_dir: Path | None = None, user_dir: Path | None = None
) -> Path:
    """Where a preset lives: a path (relative to ``base_dir``) or a name looked up in the
    user folder, then the bundled folder. Unknown names raise a ConfigError listing the
    known ones."""
    if looks_like_path(name_or_path):
        p = Path(name_or_path).expanduser()
        if not p.is_absolute():
            p = (base_dir or Path.cwd()) / p
        if p.suffix.lower() not in (".yaml", ".yml"):
            raise ConfigError(
                p, "preset", "a preset file must be a .yaml file; give a preset name "
                f"({', '.join(list_presets())}) or the path of a preset .yaml file"
            )
        if not p.is_file():
            raise ConfigError(p, None, "preset file not found")
        return p
    name = str(name_or_path)
    udir = user_presets_dir() if user_dir is None else Path(user_dir)
    for folder in (udir, BUNDLED_DIR):
        p = folder / f"{name}.yaml"
        if p.is_file():
            return p
    known = list_presets(udir)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        None, "preset", f"unknown preset {name!r}; {hint}known presets: {', '.join(known)}"
    )


def preset_from_dict(data: Mapping[str, Any], source: str | Path | None = None) -> Preset:
    """Validate a preset dict; errors become one ConfigError naming each field."""
    try:
        return Preset.model_validate(dict(data))
    except ValidationError as err:
        raise validation_error(source or "preset", err, Preset) from None


def load_preset(
    name_or_path: str | os.PathLike, *, base_dir: Path | None = None, user_dir: Path | None = None
) -> Preset:
    """A bundled or user preset by name, or a preset YAML file by path."""
    path = preset_path(name_or_path, base_dir=base_dir, user_dir=user_dir)
    data = read_yaml(path, "preset file")
    if not isinstance(data, dict):
        raise ConfigError(path, None, "a preset file must be a mapping (name: ..., anchors: ...)")
    data.setdefault("name", path.stem)
    return preset_from_dict(data, path)


def deep_merge(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base``: dicts merge key by key, anything else (lists too) replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_preset_layers(
    base: Preset | Mapping[str, Any], *layers: Preset | Mapping[str, Any] | None,
    source: str = "preset layers",
) -> Preset:
    """Deep-merge partial preset dicts over ``base`` (album → track → override) and
    validate the result once. ``None`` layers are skipped. A full Preset as a layer
    contributes only the fields it set explicitly."""
    merged = base.model_dump(mode="json") if isinstance(base, Preset) else dict(base)
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, Preset):
            layer = layer.model_dump(mode="json", exclude_unset=True)
        merged = deep_merge(merged, layer)
    return preset_from_dict(merged, source)


def save_preset(
    preset: Preset | Mapping[str, Any],
    path: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Validate and write a preset as YAML (atomically); return the path.

    ``path`` None or a bare name saves to the user presets folder as ``<name>.yaml``.
    An existing file is refused unless ``overwrite=True``.
    """
    if not isinstance(preset, Preset):
        preset = preset_from_dict(preset)
    if path is None:
        target = user_presets_dir() / f"{preset.name}.yaml"
    elif isinstance(path, os.PathLike) or str(path).endswith((".yaml", ".yml")):
        target = Path(path).expanduser()  # an explicit file chosen by the caller
    else:  # a bare name: one file in the user presets folder, never a path
        try:
            name = safe_name(str(path), "preset name")
        except ValueError as err:
            raise ConfigError(None, "name", str(err)) from None
        target = user_presets_dir() / f"{name}.yaml"
    if target.exists() and not overwrite:
        raise ConfigError(
            target, None, "a preset file already exists here; pass overwrite=True to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    header = f"# stratum preset {preset.name!r}, saved by stratum_kernel.motion.presets\n"
    write_text_atomic(target, header + preset.to_yaml())
    return target
