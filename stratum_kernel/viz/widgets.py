"""Notebook / Voila views that follow a shared :class:`~stratum_kernel.viz.panel.ParamPanel`.

- :class:`StemWaveformView` (anywidget): the stem waveform drawn client-side on a canvas by
  ``static/stem_waveform.js``, the exact port of ``waveform.py``. The levels (uint16 level
  units, one column per pixel) are sent once; parameter changes arrive through the
  ``params`` trait and redraw at once in the browser; the browser mirrors them in
  localStorage. When the settings file holds no values for the type yet, the view adopts
  the browser's stored values and sends them back to the panel (which saves them).
- :class:`ImageView` (ipywidgets.Image): the other views, rendered in Python per change.

``show(kind, tracks, ...)`` builds one view per track under one shared panel.
"""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Callable
from typing import Any

import anywidget
import ipywidgets as w
import numpy as np
import traitlets

from stratum_kernel.viz.panel import ParamPanel, layout, panel_for
from stratum_kernel.viz.params import StemWaveformParams, ViewParams
from stratum_kernel.viz.raster import encode_png, time_to_column
from stratum_kernel.viz.settings import SettingsWarning, validate_per_field
from stratum_kernel.viz.waveform import StemEnvelope, quantize_levels, render_stem_waveform

STATIC = pathlib.Path(__file__).parent / "static"
STORAGE_PREFIX = "stratum.viz."


class StemWaveformView(anywidget.AnyWidget):
    """Canvas view of one track's stem waveform; redraws in the browser on every change."""

    _esm = STATIC / "stem_waveform.js"

    levels = traitlets.Bytes(b"").tag(sync=True)  # uint16 little-endian [S * width]
    names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    width = traitlets.Int(1200).tag(sync=True)
    height = traitlets.Int(200).tag(sync=True)
    reference_q = traitlets.Int(1).tag(sync=True)
    album_reference_q = traitlets.Int(0).tag(sync=True)
    params = traitlets.Dict().tag(sync=True)
    t0 = traitlets.Float(0.0).tag(sync=True)
    t1 = traitlets.Float(1.0).tag(sync=True)
    playhead = traitlets.Float(None, allow_none=True).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    storage_key = traitlets.Unicode(STORAGE_PREFIX + "stem_waveform").tag(sync=True)
    adopt_local = traitlets.Bool(False).tag(sync=True)

    def __init__(self, envelope: StemEnvelope, *, panel: ParamPanel | None = None,
                 width: int = 1200, height: int = 200, t0: float = 0.0,
                 t1: float | None = None, title: str = "",
                 album_reference: int | Callable[[int, str], int] | None = None, **kwargs: Any):
        self.envelope = envelope
        self.panel = panel or panel_for("stem_waveform")
        self._mode: str | None = None
        self._album_reference = album_reference
        params = self.panel.params
        super().__init__(width=width, height=height, t0=t0,
                         t1=envelope.duration if t1 is None else t1, title=title,
                         names=list(envelope.names),
                         params=params.model_dump(mode="json"),
                         adopt_local=not self.panel.from_file, **kwargs)
        self._refresh_levels(params.level)
        self.observe(self._on_browser_params, names="params")
        self.panel.subscribe(self._on_panel, call_now=False)

    def _refresh_levels(self, mode: str) -> None:
        """Send the columns (and references) for the current range, width and level mode.

        album_reference: an int, or ``fn(width, mode) -> int`` (e.g. over the album's
        envelopes) so that switching peak/RMS keeps album-relative scaling right."""
        cols = self.envelope.columns(self.width, self.t0, self.t1, mode=mode)
        self.reference_q = self.envelope.reference_q(self.width, mode)
        ref = self._album_reference
        self.album_reference_q = int(ref(self.width, mode) if callable(ref) else (ref or 0))
        self.levels = quantize_levels(cols).astype("<u2").tobytes()
        self._mode = mode

    def set_range(self, t0: float, t1: float) -> None:
        """Zoom to ``[t0, t1)`` seconds (levels are recomputed and sent once)."""
        with self.hold_sync():
            self.t0, self.t1 = float(t0), float(t1)
            self._refresh_levels(self._mode or "peak")

    def _on_panel(self, params: ViewParams) -> None:
        if params.level != self._mode:
            self._refresh_levels(params.level)
        self.params = params.model_dump(mode="json")

    def _on_browser_params(self, change) -> None:
        # the browser adopted its stored values: hand the valid ones to the shared panel
        # (field by field, like the settings file) and correct the browser if any was bad
        new = change["new"]
        current = self.panel.params.model_dump(mode="json")
        if new == current:
            return
        params, messages = validate_per_field("stem_waveform", new, base=self.panel.params,
                                              source="browser localStorage")
        for message in messages:
            warnings.warn(message, SettingsWarning, stacklevel=2)
        self.panel.update(params.model_dump(mode="json"))
        accepted = self.panel.params.model_dump(mode="json")
        if self.params != accepted:
            self.params = accepted

    def python_render(self, *, alpha: bool = True) -> np.ndarray:
        """The Python renderer's pixels for this view's current state (for comparison)."""

        params = StemWaveformParams.model_validate(self.params)
        levels = np.frombuffer(self.levels, dtype="<u2").reshape(len(self.names), self.width)
        ref = (self.album_reference_q if params.album_relative and self.album_reference_q > 0
               else self.reference_q)
        x = None if self.playhead is None else time_to_column(self.playhead, self.t0, self.t1,
                                                               self.width)
        return render_stem_waveform(levels.astype(np.float64) / 32768.0, params,
                                    height=self.height, reference_q=ref, playhead_x=x,
                                    alpha=alpha, names=tuple(self.names))


class ImageView(w.VBox):
    """A Python-rendered view (loudness, dynamics, spectral) that follows its panel.

    ``render(params) -> uint8 [H, W, 3|4]`` is called on creation and on every change.
    """

    def __init__(self, kind: str, render: Callable[[ViewParams], np.ndarray], *,
                 panel: ParamPanel | None = None, title: str = "", caption: str = ""):
        self.kind = kind
        self.render_fn = render
        self.panel = panel or panel_for(kind)
        self.image = w.Image(format="png")
        self.caption = w.HTML(value=caption)
        parts = ([w.HTML(value=f"<span style='font:12px sans-serif'>{title}</span>")]
                 if title else [])
        super().__init__([*parts, self.image, self.caption])
        self.last: np.ndarray | None = None
        self.panel.subscribe(self._on_panel)

    def _on_panel(self, params: ViewParams) -> None:
        self.last = self.render_fn(params)
        # shown at its own size, one image pixel per screen pixel, never stretched by a
        # wider column (a column box stretches its children unless told otherwise)
        h, w_ = self.last.shape[:2]
        self.image.layout.width, self.image.layout.height = f"{w_}px", f"{h}px"
        self.image.layout.align_self = "flex-start"
        self.image.value = encode_png(self.last)


def show(views: list[Any], kind: str | None = None, panel: ParamPanel | None = None):
    """Lay out ``views`` with their shared panel on the right."""
    if panel is None:
        kind = kind or getattr(views[0], "kind", "stem_waveform")
        panel = panel_for(kind)
    return layout(views, panel)
