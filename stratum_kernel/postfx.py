"""Per-frame image effects between the generator and the encoder.

Pure functions over uint8 / float32 arrays. ``apply_postfx`` scales the generator's square
frames to the output size and aspect, then applies tone curve, grading, vignette, chromatic
shift, trailing persistence, film grain, sharpening and overlays. Every random draw is keyed
by (seed, track, frame), and persistence is a finite window over earlier frames, so any
frame range computes alone with identical pixels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ToneCurve = Literal["filmlog", "linear", "punch", "soft", "bleach", "noir"]
Fit = Literal["fill", "fit", "crop"]


class GradeParams(BaseModel):
    """Colour grading: lift/gamma/gain per RGB channel, then white balance.

    lift adds to the shadows, gain multiplies the highlights, gamma bends the midtones
    (> 1 brightens). temperature > 0 warms (more red, less blue), tint > 0 adds magenta.
    """

    model_config = ConfigDict(extra="forbid")

    lift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gamma: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    temperature: float = Field(default=0.0, ge=-1.0, le=1.0)
    tint: float = Field(default=0.0, ge=-1.0, le=1.0)


class PostFXParams(BaseModel):
    """Post-FX settings (all neutral values switch an effect off).

    fit: how the square generator frame meets the output aspect — 'fill' scales to cover
        the output and crops the overflow, 'fit' scales to fit inside and letterboxes,
        'crop' takes a centred window at the generator's own scale (no resampling; padded
        when the output is larger).
    tone_curve: the base LUT; exposure in stops; contrast and saturation 1.0 = neutral.
    vignette: 0..1 darkening of the corners. grain_intensity: 0..1 film grain strength;
        grain_size: grain blob size in output pixels. chroma_shift: red/blue offset in
        output pixels. persistence: 0..1 weight of the trailing frames (frame feedback) over
        ``persistence_frames`` earlier frames. sharpen: unsharp-mask amount (0 = off).
    overlays: overlay specs (dicts for now; see viz/overlay.py ``OverlaySpec``), painted last.
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
