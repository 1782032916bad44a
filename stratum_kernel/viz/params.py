"""Typed parameter sets, one per view type.

Each view type has one pydantic model (``StemWaveformParams``, ``LoudnessParams``,
``DynamicsParams``, ``SpectralParams``) on :class:`ViewParams`; the view types themselves
are registered in :mod:`stratum_kernel.viz.registry`, and their persisted values live in
:mod:`stratum_kernel.viz.settings`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from stratum_kernel.viz.raster import parse_hex


def _hex_color(value: str) -> str:
    r, g, b = parse_hex(value)
    return f"#{r:02x}{g:02x}{b:02x}"


HexColor = Annotated[str, AfterValidator(_hex_color)]
ColorMap = Literal["magma", "inferno", "viridis", "plasma", "cividis", "turbo", "gray"]


class ViewParams(BaseModel):
    """Fields every view type has."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    playhead: HexColor = Field("#e8442e", description="playhead line colour")
    album_relative: bool = Field(
        False, description="scale levels by the album's maximum so tracks compare at a glance"
    )


class StemWaveformParams(ViewParams):
    """The pixel-exact stem waveform: colours, smoothing, opacity, mirror, gain."""

    drums: HexColor = Field("#26222b", description="drums colour (the dark core)")
    bass: HexColor = Field("#6b3fa0", description="bass colour")
    other: HexColor = Field("#2d8f8f", description="other colour")
    vocals: HexColor = Field("#c74882", description="vocals colour")
    background: HexColor = Field("#f3f0e8", description="background colour")
    background_opacity: int = Field(
        100, ge=0, le=100, description="background alpha in RGBA renders and overlays, %"
    )
    smoothing: int = Field(0, ge=0, le=20, description="box filter radius over columns")
    opacity: int = Field(100, ge=10, le=100, description="stem colour over background, %")
    mirror: bool = Field(True, description="mirrored top/bottom; off = one-sided from bottom")
    gain: float = Field(1.0, ge=0.1, le=20.0, description="level multiplier (0.01 steps)")
    level: Literal["peak", "rms"] = Field("peak", description="column level: peak or RMS")

    @model_validator(mode="after")
    def _round_gain(self) -> StemWaveformParams:
        rounded = round(float(self.gain), 2)
        if rounded != self.gain:
            object.__setattr__(self, "gain", rounded)
        return self

    def stem_colors(self, names: tuple[str, ...]) -> list[str]:
        return [getattr(self, n) for n in names]


class LoudnessParams(ViewParams):
    """The loudness plot: curves, lines and the LUFS range shown."""

    momentary: HexColor = Field("#9fb7d9", description="momentary loudness curve")
    short_term: HexColor = Field("#1f4e9c", description="short-term loudness curve")
    integrated: HexColor = Field("#2d8f8f", description="integrated loudness line")
    target: HexColor = Field("#c74882", description="target loudness line")
    background: HexColor = Field("#f3f0e8", description="background colour")
    grid: HexColor = Field("#d8d3c8", description="grid lines")
    text: HexColor = Field("#5b5750", description="labels and numbers")
    target_lufs: float = Field(-14.0, ge=-40.0, le=0.0, description="target loudness, LUFS")
    floor_lufs: float = Field(-45.0, ge=-90.0, le=-10.0, description="bottom of the plot, LUFS")
    ceiling_lufs: float = Field(0.0, ge=-30.0, le=6.0, description="top of the plot, LUFS")
    show_momentary: bool = True
    show_short_term: bool = True
    line_width: int = Field(1, ge=1, le=4)

    @model_validator(mode="after")
    def _range(self) -> LoudnessParams:
        if self.ceiling_lufs - self.floor_lufs < 6.0:
            raise ValueError(
                f"ceiling_lufs ({self.ceiling_lufs}) must be at least 6 LU above floor_lufs "
                f"({self.floor_lufs})"
            )
        return self


class DynamicsParams(ViewParams):
    """The dynamics heatstrip: short-term loudness and crest factor as colour."""

    colormap: ColorMap = "magma"
    layout: Literal["stacked", "loudness", "crest"] = Field(
        "stacked", description="loudness band over crest band, or one of them"
    )
    loudness_floor: float = Field(-40.0, ge=-90.0, le=-6.0, description="LUFS at colour 0")
    loudness_ceiling: float = Field(-6.0, ge=-40.0, le=6.0, description="LUFS at colour 1")
    crest_floor: float = Field(3.0, ge=0.0, le=20.0, description="crest dB at colour 0")
    crest_ceiling: float = Field(20.0, ge=3.0, le=40.0, description="crest dB at colour 1")
    separator: HexColor = Field("#000000", description="line between the bands")

    @model_validator(mode="after")
    def _ranges(self) -> DynamicsParams:
        if self.loudness_ceiling <= self.loudness_floor:
            raise ValueError("loudness_ceiling must be above loudness_floor")
        if self.crest_ceiling <= self.crest_floor:
            raise ValueError("crest_ceiling must be above crest_floor")
        return self


class SpectralParams(ViewParams):
    """Spectrogram / chromagram: colour map, range, markers and beat grid."""

    kind: Literal["mel", "chroma"] = "mel"
    colormap: ColorMap = "magma"
    top_db: float = Field(80.0, ge=20.0, le=120.0, description="dB range below the reference")
    show_markers: bool = True
    marker: HexColor = Field("#ffffff", description="section marker colour")
    show_beats: bool = True
    beat: HexColor = Field("#9fd3c7", description="beat grid colour")
    beat_opacity: int = Field(35, ge=0, le=100, description="beat line opacity, %")
    beats_per_bar: int = Field(4, ge=1, le=16, description="every n-th beat drawn solid")
