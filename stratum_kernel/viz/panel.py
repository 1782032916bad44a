"""One parameter panel per visualization type, shared by every view of that type.

``panel_for("stem_waveform")`` always returns the same :class:`ParamPanel` (per settings
file); every view of that type subscribes to it, so one change redraws them all. The
panel's controls are built from the type's pydantic model (colour pickers for hex
colours, sliders for bounded numbers, drop-downs for choices, check boxes for switches)
and every accepted change is saved to the settings file at once. ``layout(views, panel)``
puts the panel to the right of the views, as in the notebooks and the Voila dashboard.

ipywidgets is imported when a panel's widget is first built, not at import time, so the
panel logic (validation, persistence, fan-out) also runs headless.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from stratum_kernel.viz.params import ViewParams
from stratum_kernel.viz.registry import view_kind
from stratum_kernel.viz.settings import VisualizationSettings, default_settings, params_model

Subscriber = Callable[[ViewParams], None]

# float fields: slider step
_FLOAT_STEPS = {"gain": 0.01}


class ParamPanel:
    """The shared parameters of one view type: current value, persistence, subscribers.

    ``update(changes)`` validates (a bad value is refused with a message in the panel and
    nothing changes), stores and saves, then calls every subscriber with the new params.
    ``widget`` is the ipywidgets box (built on first access).
    """

    def __init__(self, kind: str, settings: VisualizationSettings | None = None):
        self.kind = kind
        self.model = params_model(kind)
        self.settings = settings or default_settings()
        self.params: ViewParams = self.settings.get(kind)
        self._subscribers: list[Subscriber] = []
        self._controls: dict[str, Any] = {}
        self._widget = None
        self._status = None
        self._syncing = False
        self.last_error: str | None = None

    # ---- state -------------------------------------------------------------------
    @property
    def from_file(self) -> bool:
        """True when the settings file held values for this type when the panel loaded."""
        return self.settings.is_stored(self.kind)

    def subscribe(self, callback: Subscriber, *, call_now: bool = True) -> None:
        if callback not in self._subscribers:
            self._subscribers.append(callback)
        if call_now:
            callback(self.params)

    def unsubscribe(self, callback: Subscriber) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    @property
    def n_subscribers(self) -> int:
        return len(self._subscribers)

    def update(self, changes: dict[str, Any] | None = None, **kw: Any) -> bool:
        """Apply ``changes``; True when accepted (saved and pushed), False when refused."""
        changes = {**(changes or {}), **kw}
        merged = {**self.params.model_dump(), **changes}
        try:
            new = self.model.model_validate(merged)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ())) or "value"
            self.last_error = (f"{self.kind}.{field}: {first.get('msg')} "
                               f"(got {first.get('input')!r}); kept {field} unchanged")
            self._show_status(self.last_error, error=True)
            self._sync_controls()  # put the refused control back
            return False
        self.last_error = None
        if new == self.params:
            return True
        self.params = self.settings.set(self.kind, new)
        self._sync_controls()
        self._show_status(f"saved to {self.settings.path.name}")
        self._notify()
        return True

    def reset(self) -> None:
        """Back to the defaults (saved) and redraw every view."""
        self.settings.reset(self.kind)
        self.params = self.settings.get(self.kind)
        self._sync_controls()
        self._show_status("reset to defaults")
        self._notify()

    def _notify(self) -> None:
        for callback in list(self._subscribers):
            callback(self.params)

    # ---- widget ------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets panel (VBox): one control per field, a Reset button, a status."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self):
        import ipywidgets as w

        rows = []
        # the stem waveform redraws in the browser: sliders update while dragging; the other
        # views render in Python per change, so they update when the slider is released
        live = view_kind(self.kind).client_side
        for name, info in self.model.model_fields.items():
            control = _control_for(name, info, getattr(self.params, name), live=live)
            if control is None:
                continue
            control.observe(self._on_control(name), names="value")
            self._controls[name] = control
            rows.append(control)
        reset = w.Button(description="Reset to defaults", icon="", layout=w.Layout(width="auto"))
        reset.on_click(lambda _b: self.reset())
        self._status = w.HTML(value="", layout=w.Layout(min_height="1.5em"))
        title = w.HTML(value=f"<b>{self.kind.replace('_', ' ')}</b> · shared by every view")
        box = w.VBox([title, *rows, reset, self._status],
                     layout=w.Layout(width="300px", min_width="300px", padding="0 0 0 12px"))
        box.add_class("stratum-param-panel")
        return box

    def _on_control(self, name: str):
        def handler(change):
            if not self._syncing:
                self.update({name: change["new"]})
        return handler

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for name, control in self._controls.items():
                value = getattr(self.params, name)
                if control.value != value:
                    control.value = value
        finally:
            self._syncing = False

    def _show_status(self, text: str, *, error: bool = False) -> None:
        if self._status is not None:
            import html

            color = "#b3261e" if error else "#5b5b5b"
            self._status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"


def _bounds(info) -> tuple[float | None, float | None]:
    lo = hi = None
    for meta in info.metadata:
        lo = getattr(meta, "ge", lo)
        hi = getattr(meta, "le", hi)
    return lo, hi


def _control_for(name: str, info, value, *, live: bool = True):
    """An ipywidgets control for one pydantic field, or None for unsupported types."""
    import ipywidgets as w

    label = name.replace("_", " ")
    style = {"description_width": "110px"}
    layout = w.Layout(width="100%")
    annotation = info.annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return w.Dropdown(options=list(typing.get_args(annotation)), value=value,
                          description=label, style=style, layout=layout)
    if annotation is bool:
        return w.Checkbox(value=value, description=label, indent=False, layout=layout)
    if isinstance(value, str) and value.startswith("#"):
        return w.ColorPicker(value=value, description=label, concise=False, style=style,
                             layout=layout)
    lo, hi = _bounds(info)
    if annotation is int and lo is not None and hi is not None:
        return w.IntSlider(value=value, min=int(lo), max=int(hi), description=label,
                           continuous_update=live, style=style, layout=layout)
    if annotation is float and lo is not None and hi is not None:
        step = _FLOAT_STEPS.get(name, 0.5)
        return w.FloatSlider(value=value, min=float(lo), max=float(hi), step=step,
                             description=label, continuous_update=live, style=style,
                             layout=layout, readout_format=".2f" if step < 0.1 else ".1f")
    return None


_PANELS: dict[tuple[str, str], ParamPanel] = {}


def panel_for(kind: str, settings: VisualizationSettings | None = None) -> ParamPanel:
    """The one panel of ``kind`` for this settings file (created on first use)."""
    params_model(kind)
    settings = settings or default_settings()
    key = (kind, str(settings.path))
    panel = _PANELS.get(key)
    if panel is None:
        panel = ParamPanel(kind, settings)
        _PANELS[key] = panel
    return panel


def clear_panels() -> None:
    """Forget every registered panel (tests, or after switching projects)."""
    _PANELS.clear()


def layout(views: list[Any], panel: ParamPanel):
    """HBox: the views stacked on the left, the shared panel on the right."""
    import ipywidgets as w

    column = w.VBox(list(views), layout=w.Layout(flex="1 1 auto", overflow="auto"))
    return w.HBox([column, panel.widget], layout=w.Layout(align_items="flex-start"))
