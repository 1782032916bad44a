"""What a visualization type is to the rest of stratum: one :class:`ViewKind` per type.

A view type brings its parameter model and three renderers, each a pure function over
numpy arrays: ``show`` (one track of an album, for the notebooks, the dashboard and
reports), ``strip`` (a band burnt into a film, :mod:`stratum_kernel.viz.overlay`) and
``album_reference`` (the album-wide scale for album-relative views). The types are listed
once, in :mod:`stratum_kernel.viz.registry`; everything that needs "each view type" — the
settings file, the parameter panels, overlays, the showcase — looks them up there instead
of branching on names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.viz.params import ViewParams


@dataclass(frozen=True)
class StripSource:
    """What an overlay strip is drawn from; any part may be missing.

    stems: {stem: float32 [channels, samples]} at ``sr``; audio: the mix [channels,
    samples] at ``sr``; features: a FrameFeatures of the strip's span; markers and beats in
    seconds from the strip's start; album_reference: the album-wide scale, or None.
    """

    stems: Mapping[str, np.ndarray] | None = None
    audio: np.ndarray | None = None
    sr: int | None = None
    features: Any = None
    markers: Sequence[float] = ()
    beats: Sequence[float] = ()
    album_reference: Any = None

    def mix(self, kind: str) -> tuple[np.ndarray, int]:
        """The mix and its rate, or a ConfigError saying that this overlay needs it."""
        if self.audio is None or not self.sr:
            raise ConfigError("postfx.overlays", "kind", f"a '{kind}' overlay needs the "
                              "track's audio (pass audio=/sr= or audio_path= to build_overlay);"
                              " use a 'stem_waveform' overlay when only analysis features are "
                              "at hand")
        return self.audio, int(self.sr)


#: show(data, track_id, params, *, album_reference, width, height, t0, t1, playhead) -> RGB
Show = Callable[..., np.ndarray]
#: strip(params, width, height, length_s, source) -> uint8 [height, width, 4]
Strip = Callable[[Any, int, int, float, StripSource], np.ndarray]


@dataclass(frozen=True)
class ViewKind:
    """One visualization type.

    name: its key in settings files and overlay specs; params: its parameter model.
    show / strip / album_reference: its renderers (see the module docstring); ``data`` is an
    :class:`~stratum_kernel.viz.showcase.AlbumViewData`. needs_audio: overlays load the mix
    for it. client_side / live_view: drawn in the browser (sliders update while dragging);
    ``live_view(data, track_id, panel, width=, height=, title=)`` builds that widget.
    caption(data, track_id): an HTML line under each view, or None.
    """

    name: str
    params: type[ViewParams]
    show: Show
    strip: Strip
    album_reference: Callable[[Any, ViewParams, int], Any]
    needs_audio: bool = True
    client_side: bool = False
    live_view: Callable[..., Any] | None = None
    caption: Callable[[Any, str], str] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def rgba(rgb: np.ndarray) -> np.ndarray:
    """An opaque uint8 [H, W, 4] from uint8 [H, W, 3]."""
    out = np.empty((*rgb.shape[:2], 4), dtype=np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255
    return out
