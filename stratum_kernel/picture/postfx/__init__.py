"""Post-FX: per-frame image effects between the generator and the encoder.

Pure functions over uint8 / float32 arrays, one module per kind of stage:

- ``params``: :class:`PostFXParams` (one typed model per stage), :data:`MODULATABLE`,
  per-frame :func:`frame_settings`;
- ``trails``: persistence and feedback over a bounded window of decoded frames;
- ``symmetry``: mirrors and the kaleidoscope; ``palette``: gradient maps;
- ``tone``: the tone LUT and saturation; ``texture``: sharpen, detail, chromatic shift,
  vignette, grain; ``glow``: bloom; ``geometry``: fill/fit/crop to the output;
- ``chain``: :func:`apply_postfx`, the order of the stages and why.

The names most callers need are imported here.
"""

from stratum_kernel.picture.postfx.chain import Painter, apply_postfx, history_frames, window_frames
from stratum_kernel.picture.postfx.geometry import FitGeometry, fit_geometry, scale_to_output
from stratum_kernel.picture.postfx.params import (
    MODULATABLE,
    CosinePalette,
    FeedbackParams,
    FrameFX,
    GlowParams,
    GradeParams,
    PaletteParams,
    PostFXParams,
    SymmetryParams,
    frame_settings,
)
from stratum_kernel.picture.postfx.texture import grain_offset, grain_pool, vignette_shape
from stratum_kernel.picture.postfx.tone import tone_curve, tone_lut
from stratum_kernel.picture.postfx.trails import persistence_weights

__all__ = [
    "MODULATABLE", "CosinePalette", "FeedbackParams", "FitGeometry", "FrameFX", "GlowParams",
    "GradeParams", "Painter", "PaletteParams", "PostFXParams", "SymmetryParams",
    "apply_postfx", "fit_geometry", "frame_settings", "grain_offset", "grain_pool",
    "history_frames", "persistence_weights", "scale_to_output", "tone_curve", "tone_lut",
    "vignette_shape", "window_frames",
]
