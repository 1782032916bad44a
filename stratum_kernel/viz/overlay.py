"""Views burnt into films: a strip along the bottom (or top) with a moving playhead.

``render.yaml`` lists overlays under ``postfx.overlays`` as :class:`OverlaySpec` mappings::

    postfx:
      overlays:
        - kind: stem_waveform      # stem_waveform | loudness | dynamics | spectral
          position: bottom         # bottom | top
          height: 0.12             # fraction of the frame height (<= 1) or pixels (> 1)
          opacity: 85              # %, the whole strip over the film
          window_s: null           # null: the whole track, or seconds scrolling past
          params: {background_opacity: 0, smoothing: 2}   # over the saved panel values

:func:`build_overlay` renders the static strip once (the view's pure renderer, with the
project's saved parameters and the spec's overrides) and returns an :class:`Overlay`
whose ``paint(frame, time_s)`` only blends the strip into its region and draws the
playhead: integer arithmetic, in place, the same pixels for the same frame however the
film is chunked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratum_kernel.audio.files import load_audio
from stratum_kernel.core.schema import validation_error
from stratum_kernel.viz.raster import parse_hex, percent_to_alpha
from stratum_kernel.viz.registry import KINDS, view_kind
from stratum_kernel.viz.settings import VisualizationSettings, default_settings
from stratum_kernel.viz.view_kind import StripSource

MAX_STRIP_COLUMNS = 65536


class OverlaySpec(BaseModel):
    """One overlay: which view, where, how big, how opaque, and its parameter overrides."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "stem_waveform"  # a name in viz.registry.KINDS
    position: Literal["bottom", "top"] = "bottom"
    height: float = Field(0.12, gt=0, description="fraction of the frame (<= 1) or pixels")
    margin: int = Field(0, ge=0, description="pixels between the strip and the frame edge")
    opacity: int = Field(85, ge=0, le=100, description="the strip over the film, %")
    window_s: float | None = Field(None, gt=0, description="scrolling window; None = whole")
    playhead_width: int | None = Field(None, ge=1, le=16, description="px; None = auto")
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"unknown overlay kind {v!r}; choose one of {', '.join(KINDS)}")
        return v

    @field_validator("height")
    @classmethod
    def _height(cls, v: float) -> float:
        if v > 1 and v != int(v):
            raise ValueError("a height above 1 is in pixels and must be a whole number")
        return v

    def strip_height(self, frame_height: int) -> int:
        h = round(self.height * frame_height) if self.height <= 1 else int(self.height)
        return max(1, min(frame_height - self.margin, h))


def parse_overlay_spec(spec: OverlaySpec | dict[str, Any], source: str = "postfx.overlays"
                       ) -> OverlaySpec:
    """Validate a spec (a dict from render.yaml) into an :class:`OverlaySpec`."""
    if isinstance(spec, OverlaySpec):
        return spec
    try:
        return OverlaySpec.model_validate(spec)
    except ValidationError as err:
        raise validation_error(source, err) from None


@dataclass
class Overlay:
    """A pre-rendered strip and where it goes; call ``paint(frame, time_s)`` per frame.

    strip: uint8 [h, Ws, 4] (Ws = frame width, or wider when scrolling); the region is
    rows ``[y0, y0 + h)`` of the frame; times ``[t0, t1)`` map onto the strip's columns.
    params: the view parameters actually used (saved values + the spec's overrides), for
    a run's meta.json: the settings file may change after the render.
    """

    spec: OverlaySpec
    strip: np.ndarray
    y0: int
    frame_size: tuple[int, int]
    t0: float
    t1: float
    playhead_rgb: tuple[int, int, int]
    playhead_width: int
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.strip[..., 3].astype(np.uint32) * percent_to_alpha(self.spec.opacity)
        alpha = ((a + 127) // 255).astype(np.uint16)  # 0..255 per pixel
        self._pre = (self.strip[..., :3].astype(np.uint16) * alpha[..., None])  # <= 65025
        self._inv = (255 - alpha).astype(np.uint16)[..., None]
        self._opaque = bool((alpha == 255).all())

    @property
    def height(self) -> int:
        return self.strip.shape[0]

    def column(self, time_s: float) -> int:
        """The strip column of ``time_s`` (may fall outside the strip)."""
        ws = self.strip.shape[1]
        return math.floor((time_s - self.t0) / (self.t1 - self.t0) * ws)

    def paint(self, frame: np.ndarray, time_s: float) -> None:
        """Blend the strip into ``frame`` (uint8 [H, W, 3], in place) with a playhead."""
        width, height = self.frame_size
        if frame.shape != (height, width, 3):
            raise ValueError(f"overlay built for {width}x{height} frames, got {frame.shape}")
        region = frame[self.y0:self.y0 + self.height]
        ws = self.strip.shape[1]
        if self.spec.window_s is None:
            lo, hi, dst = 0, ws, 0
            x = self.column(time_s)
        else:  # the playhead stays in the middle; the strip scrolls past
            centre = self.column(time_s)
            start = centre - width // 2
            lo, hi = max(0, start), min(ws, start + width)
            dst = lo - start
            x = width // 2
        if hi > lo:
            target = region[:, dst:dst + hi - lo]
            if self._opaque:
                target[...] = self.strip[:, lo:hi, :3]
            else:
                mixed = self._pre[:, lo:hi] + target * self._inv[:, lo:hi] + 127
                target[...] = (mixed // 255).astype(np.uint8)
        if 0 <= x < width:
            region[:, x:x + self.playhead_width] = np.asarray(self.playhead_rgb, np.uint8)

    __call__ = paint  # the post-FX painter protocol: painter(frame, time_s) -> None


def _merged_params(kind: str, overrides: dict[str, Any], settings: VisualizationSettings | None):
    base = (settings or default_settings()).get(kind)
    try:
        return view_kind(kind).params.model_validate({**base.model_dump(), **overrides})
    except ValidationError as err:
        raise validation_error(f"postfx.overlays ({kind}).params", err) from None


def build_overlay(spec: OverlaySpec | dict[str, Any], *, size: tuple[int, int] | None = None,
                  out_size: tuple[int, int] | None = None, features: Any = None,
                  fps: float | None = None, track_id: str = "",
                  stems: dict[str, np.ndarray] | None = None, audio: np.ndarray | None = None,
                  sr: int | None = None, audio_path: Any = None, start: float | None = None,
                  duration: float | None = None, markers: Any = None, beats: Any = None,
                  album_reference: Any = None, settings: VisualizationSettings | None = None
                  ) -> Overlay:
    """Render ``spec``'s view once for a track and return the per-frame painter.

    size / out_size: (width, height) of the output frames. The view's data comes from, in
    order: ``stems`` (stem audio at ``sr``) or ``features`` (a FrameFeatures: stem
    envelopes, chroma, markers, beats) for the stem waveform; ``audio`` at ``sr`` (or
    ``audio_path``) for loudness, dynamics and spectrograms. The strip spans the features'
    range (``start .. start + n_frames / fps``) or ``start .. start + duration`` track
    seconds; ``time_s`` passed to ``paint`` is in track seconds.
    """
    spec = parse_overlay_spec(spec)
    frame_size = size or out_size
    if frame_size is None:
        raise ValueError("build_overlay needs size=(width, height) of the output frames")
    width, height = (int(v) for v in frame_size)
    params = _merged_params(spec.kind, spec.params, settings)
    if features is not None:
        fps = float(fps or features.fps)
        t_start = float(features.start if start is None else start)
        length = features.n_frames / fps if duration is None else float(duration)
        if markers is None:
            markers = [m - t_start for m in features.markers]
        if beats is None:
            beats = np.asarray(features.beat_frames, dtype=np.float64) / fps
    else:
        t_start = float(start or 0.0)
        length = duration
    vk = view_kind(spec.kind)
    if audio is None and audio_path is not None and vk.needs_audio:
        audio, sr = load_audio(audio_path, offset=t_start, duration=length)
    if length is None:
        if audio is not None and sr:
            length = np.asarray(audio).shape[-1] / float(sr)
        elif stems and sr:
            length = max(np.asarray(v).shape[-1] for v in stems.values()) / float(sr)
        else:
            raise ValueError("build_overlay needs duration=, features= or audio to know the "
                             "strip's time span")
    strip_h = spec.strip_height(height)
    strip_w = width
    if spec.window_s is not None:
        strip_w = min(MAX_STRIP_COLUMNS, max(width, round(width * length / spec.window_s)))
    source = StripSource(stems=stems, audio=audio, sr=sr, features=features,
                         markers=tuple(markers or ()),
                         beats=tuple(beats) if beats is not None else (),
                         album_reference=album_reference)
    rgba = vk.strip(params, strip_w, strip_h, length, source)
    y0 = height - spec.margin - strip_h if spec.position == "bottom" else spec.margin
    y0 = max(0, y0)
    ph_width = spec.playhead_width or max(1, round(width / 1000))
    return Overlay(spec, rgba, y0, (width, height), t_start, t_start + length,
                   parse_hex(params.playhead), ph_width, params.model_dump(mode="json"))
