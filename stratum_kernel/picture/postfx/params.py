"""Post-FX settings: one typed model per stage, the modulatable scalars, per-frame values.

:class:`PostFXParams` is what a preset's ``postfx`` and render.yaml's ``postfx`` hold (the
neutral values switch a stage off). :data:`MODULATABLE` lists every scalar the audio may
move (``postfx:NAME`` targets in presets) with the range the result is clipped to;
:func:`frame_settings` turns the configured values plus per-frame offsets into one
:class:`FrameFX` per frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ToneCurve = Literal["filmlog", "linear", "punch", "soft", "bleach", "noir"]
Fit = Literal["fill", "fit", "crop"]
RGB = tuple[float, float, float]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GradeParams(_Params):
    """Colour grading: lift/gamma/gain per RGB channel, then white balance.

    lift raises the shadows, gain scales the highlights, gamma bends the midtones
    (> 1 brightens). temperature > 0 warms (more red, less blue), tint > 0 adds magenta.
    """

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


class CosinePalette(_Params):
    """colour(t) = a + b·cos(2π(c·t + d)) per channel, t in 0..1 (Iñigo Quílez's form): a is
    the mean colour, b the swing, c how many cycles across the range, d the phase."""

    a: RGB = (0.5, 0.5, 0.5)
    b: RGB = (0.5, 0.5, 0.5)
    c: RGB = (1.0, 1.0, 1.0)
    d: RGB = (0.0, 0.33, 0.67)

    @field_validator("a", "b", "c", "d")
    @classmethod
    def _range(cls, v: RGB) -> RGB:
        if not all(-4.0 <= x <= 4.0 for x in v):
            raise ValueError("each value must be within -4..4")
        return v


class PaletteParams(_Params):
    """A gradient map: each pixel's brightness (mode 'luma') or hue (mode 'hue', brightness
    kept) picks a colour of the palette — ``stops`` (2–6 colours, 0..255, dark end first)
    or, without stops, the ``cosine`` palette. mix: 0 = off, 1 = palette colours only.
    shift moves along the palette (0..1); drift moves it with time, in cycles per minute
    (stops are walked back and forth, a cosine palette round)."""

    stops: list[tuple[int, int, int]] = Field(default_factory=list)
    cosine: CosinePalette | None = None
    mix: float = Field(default=0.0, ge=0.0, le=1.0)
    mode: Literal["luma", "hue"] = "luma"
    shift: float = Field(default=0.0, ge=0.0, le=1.0)
    drift: float = Field(default=0.0, ge=-60.0, le=60.0)

    @field_validator("stops")
    @classmethod
    def _stops(cls, v: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        if v and not 2 <= len(v) <= 6:
            raise ValueError(f"give 2 to 6 colour stops, got {len(v)}")
        for c in v:
            if not all(0 <= x <= 255 for x in c):
                raise ValueError(f"colour stop {list(c)} must have values 0..255")
        return v

    @model_validator(mode="after")
    def _source(self) -> PaletteParams:
        if self.mix > 0 and not self.stops and self.cosine is None:
            raise ValueError("palette.mix > 0 needs palette.stops or palette.cosine")
        return self


class SymmetryParams(_Params):
    """Mirror or kaleidoscope symmetry of the frame around ``center`` (offset from the
    middle, in frame widths/heights). mirror_x: the left half mirrored onto the right;
    mirror_y: the top onto the bottom; quad: both; kaleidoscope: ``segments`` wedges, each
    a mirror of its neighbour, turned by ``rotation`` degrees plus ``spin`` degrees per
    second."""

    mode: Literal["none", "mirror_x", "mirror_y", "quad", "kaleidoscope"] = "none"
    segments: int = Field(default=6, ge=2, le=24)
    rotation: float = Field(default=0.0, ge=-360.0, le=360.0)
    spin: float = Field(default=0.0, ge=-360.0, le=360.0)
    center: tuple[float, float] = (0.0, 0.0)

    @field_validator("center")
    @classmethod
    def _center(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(-0.5 <= x <= 0.5 for x in v):
            raise ValueError("center values must be within -0.5..0.5")
        return v


class FeedbackParams(_Params):
    """Feedback: the frames before this one, each warped as many times as it is old —
    zoomed by ``zoom``, turned by ``rotate`` degrees, moved by ``shift`` (frame fractions)
    and hue-turned by ``hue`` degrees per frame — fading by ``amount`` per frame, combined
    with this frame (``lighten``: the brightest wins, the classic trails; ``blend``: a
    weighted mean). Reaches back ``frames`` decoded frames; amount 0 = off."""

    amount: float = Field(default=0.0, ge=0.0, le=0.98)
    frames: int = Field(default=12, ge=1, le=32)
    zoom: float = Field(default=1.02, ge=0.8, le=1.25)
    rotate: float = Field(default=0.0, ge=-10.0, le=10.0)
    shift: tuple[float, float] = (0.0, 0.0)
    hue: float = Field(default=0.0, ge=-30.0, le=30.0)
    mode: Literal["lighten", "blend"] = "lighten"

    @field_validator("shift")
    @classmethod
    def _shift(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(-0.05 <= x <= 0.05 for x in v):
            raise ValueError("shift values must be within -0.05..0.05 (frame per frame)")
        return v


class GlowParams(_Params):
    """Glow: the parts brighter than ``threshold`` (0..1), blurred over ``radius`` output
    pixels, added back ``amount`` times (0 = off)."""

    amount: float = Field(default=0.0, ge=0.0, le=2.0)
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    radius: float = Field(default=12.0, ge=1.0, le=64.0)


class PostFXParams(_Params):
    """Post-FX settings (the neutral values switch an effect off).

    fit: how the square generator frame meets the output aspect — 'fill' scales to cover
        the output and crops the overflow, 'fit' scales to fit inside and pads with
        ``pad_color`` (letterbox), 'crop' takes a centred window at the generator's own scale
        (no resampling; padded where the output is larger).
    tone_curve: the base LUT; exposure in stops; contrast and saturation 1.0 = neutral.
    palette, symmetry, feedback, glow: the stages of their own models (above).
    vignette: 0..1 darkening of the corners. grain_intensity: 0..1 film grain (1.0 = a std
        of 32 levels); grain_size: grain blob size in output pixels. chroma_shift: red/blue
        radial offset at the frame's edge, in output pixels. persistence: 0..0.95 weight
        ratio of the trailing frames (frame feedback) over ``persistence_frames`` earlier
        frames. sharpen: unsharp-mask amount at the generator's size; detail: the same at
        the output size, bringing back edges after upscaling (0 = off).
    overlays: overlay specs (dicts; see ``viz/overlay.py`` ``OverlaySpec``), painted last.
    """

    fit: Fit = "fill"
    pad_color: tuple[int, int, int] = (0, 0, 0)
    tone_curve: ToneCurve = "filmlog"
    exposure: float = Field(default=0.0, ge=-4.0, le=4.0)
    contrast: float = Field(default=1.0, ge=0.0, le=3.0)
    saturation: float = Field(default=1.0, ge=0.0, le=3.0)
    grade: GradeParams = Field(default_factory=GradeParams)
    palette: PaletteParams = Field(default_factory=PaletteParams)
    symmetry: SymmetryParams = Field(default_factory=SymmetryParams)
    feedback: FeedbackParams = Field(default_factory=FeedbackParams)
    glow: GlowParams = Field(default_factory=GlowParams)
    vignette: float = Field(default=0.0, ge=0.0, le=1.0)
    grain_intensity: float = Field(default=0.0, ge=0.0, le=1.0)
    grain_size: float = Field(default=1.0, ge=0.5, le=8.0)
    chroma_shift: float = Field(default=0.0, ge=0.0, le=32.0)
    persistence: float = Field(default=0.0, ge=0.0, le=0.95)
    persistence_frames: int = Field(default=8, ge=1, le=32)
    sharpen: float = Field(default=0.0, ge=0.0, le=3.0)
    detail: float = Field(default=0.0, ge=0.0, le=2.0)
    overlays: list[dict] = Field(default_factory=list)


#: Parameters a per-frame modulation may move: name -> (where it lives in PostFXParams,
#: the range the result is clipped to). Modulation values are offsets added to the
#: configured value. A modulated grain_size is quantised to 1/4 px (one grain pool per size).
MODULATED_FIELDS: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "exposure": (("exposure",), (-4.0, 4.0)),
    "contrast": (("contrast",), (0.0, 3.0)),
    "saturation": (("saturation",), (0.0, 3.0)),
    "vignette": (("vignette",), (0.0, 1.0)),
    "grain_intensity": (("grain_intensity",), (0.0, 1.0)),
    "grain_size": (("grain_size",), (0.5, 8.0)),
    "chroma_shift": (("chroma_shift",), (0.0, 32.0)),
    "persistence": (("persistence",), (0.0, 0.95)),
    "sharpen": (("sharpen",), (0.0, 3.0)),
    "detail": (("detail",), (0.0, 2.0)),
    "temperature": (("grade", "temperature"), (-1.0, 1.0)),
    "tint": (("grade", "tint"), (-1.0, 1.0)),
    "palette_mix": (("palette", "mix"), (0.0, 1.0)),
    "palette_shift": (("palette", "shift"), (-8.0, 8.0)),
    "symmetry_rotation": (("symmetry", "rotation"), (-3600.0, 3600.0)),
    "feedback": (("feedback", "amount"), (0.0, 0.98)),
    "feedback_zoom": (("feedback", "zoom"), (0.8, 1.25)),
    "feedback_rotate": (("feedback", "rotate"), (-10.0, 10.0)),
    "feedback_hue": (("feedback", "hue"), (-30.0, 30.0)),
    "glow": (("glow", "amount"), (0.0, 2.0)),
}
#: name -> the range a modulated value is clipped to (presets' ``postfx:NAME`` targets)
MODULATABLE: dict[str, tuple[float, float]] = {k: r for k, (_, r) in MODULATED_FIELDS.items()}


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
    detail: float
    temperature: float
    tint: float
    palette_mix: float
    palette_shift: float
    symmetry_rotation: float
    feedback: float
    feedback_zoom: float
    feedback_rotate: float
    feedback_hue: float
    glow: float


def _configured(params: PostFXParams, path: tuple[str, ...]) -> float:
    value: object = params
    for part in path:
        value = getattr(value, part)
    return float(value)  # type: ignore[arg-type]


def frame_settings(
    params: PostFXParams, modulation: Mapping[str, np.ndarray] | None, n: int
) -> list[FrameFX]:
    """Per-frame effective settings for ``n`` frames; ``modulation``: {param: float32 [n]}."""
    columns = {k: np.full(n, _configured(params, path), dtype=np.float64)
               for k, (path, _) in MODULATED_FIELDS.items()}
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
    return [FrameFX(**{k: float(columns[k][i]) for k in MODULATED_FIELDS}) for i in range(n)]
