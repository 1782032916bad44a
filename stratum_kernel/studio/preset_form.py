"""Every preset parameter as a widget, generated from the :class:`Preset` pydantic model.

Nothing here lists preset fields by hand: :class:`PresetForm` walks ``Preset``'s fields
(and ``PostFXParams``' for the partial ``postfx`` dict) and picks a control from each
field's type and bounds — a slider for a bounded number (``ge``/``gt``/``le``/``lt``), a
drop-down for a ``Literal`` or a known set of choices, a check box for a switch, a colour
picker for an RGB triple, a list editor for mapping lists — grouped by section in an
accordion. Choices that depend on the model (anchor names, PCA axes) come from
``choices_for``; numbers a model leaves unbounded get display ranges from
:data:`DISPLAY_RANGES` (validation stays the model's).

Every change edits a plain dict, validated into a Preset at once; an invalid value is
shown in the status line and the last valid preset stays in force. Fields that
render.yaml sets over the preset (``overrides``) are disabled with a note, since editing
them would not change the render.
"""

from __future__ import annotations

import html
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from stratum_kernel.core.character import CHARACTER_FIELDS
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.timeline import STEM_NAMES, STEM_SERIES
from stratum_kernel.motion.presets import (
    MIX_FEATURES,
    SUBDIVISIONS,
    Preset,
    SignalMapping,
    preset_from_dict,
)
from stratum_kernel.picture.postfx import PostFXParams
from stratum_kernel.studio.form_fields import (
    DISPLAY_RANGES,
    Path,
    field_bounds,
    from_widget,
    get_in,
    hex_colour,
    model_of,
    nice_step,
    set_in,
    targets_for,
    to_widget,
    unwrap_optional,
)

#: the ``postfx`` dict of a preset is a partial PostFXParams
DICT_MODELS: dict[str, type[BaseModel]] = {"postfx": PostFXParams}
GROUP_TITLES = {"anchors": "anchors", "motion": "motion", "tempo_sync": "tempo sync",
                "sections": "sections", "features": "mix → targets",
                "stem_map": "stems → targets", "postfx": "post-FX",
                "suits": "suits (auto choice)"}
STYLE = {"description_width": "118px"}


class PresetForm:
    """Grouped widgets for one preset; see the module docstring.

    preset: the starting preset. anchors / n_axes: the model's anchor names and PCA axes
    (for choices). overrides: {dotted field: where render.yaml sets it}. on_change(preset):
    called with each new valid preset. lazy: make a section's controls when it is opened.
    """

    def __init__(self, preset: Preset, *, anchors: list[str] | None = None, n_axes: int = 8,
                 overrides: Mapping[str, str] | None = None,
                 on_change: Callable[[Preset], None] | None = None, lazy: bool = False):
        import ipywidgets as w

        self.anchors = list(anchors or [])
        self.n_axes = int(n_axes)
        self.overrides = dict(overrides or {})
        self.on_change = on_change
        self.controls: dict[Path, Any] = {}
        self.status = w.HTML(layout=w.Layout(min_height="1.4em"))
        self.accordion = w.Accordion(layout=w.Layout(width="100%"))
        self.widget = w.VBox([self.accordion, self.status],
                             layout=w.Layout(width="100%", min_width="330px"))
        self.widget.add_class("stratum-preset-form")
        self.error: str | None = None
        self._muted = False
        self.lazy = bool(lazy)
        self.accordion.observe(self._on_select, names="selected_index")
        self.set_preset(preset, notify=False)

    # ---- state ------------------------------------------------------------------
    def set_preset(self, preset: Preset, *, notify: bool = True) -> None:
        """Show ``preset`` (load / reset); rebuilds the controls."""
        self.preset = preset
        self.data = preset.model_dump(mode="json")
        self.error = None
        self._rebuild()
        self._show("", False)
        if notify and self.on_change:
            self.on_change(preset)

    def set_overrides(self, overrides: Mapping[str, str]) -> None:
        self.overrides = dict(overrides)
        self._rebuild()

    def set_value(self, path: Path, value: Any) -> bool:
        """Change one field as its control would (tests, scripts); True when valid."""
        control = self.controls.get(tuple(path))
        if control is not None and not isinstance(value, list | tuple | type(None)):
            self._muted = True
            try:
                control.value = to_widget(control, value)
            finally:
                self._muted = False
        return self._changed(tuple(path), value)

    def _changed(self, path: Path, value: Any) -> bool:
        set_in(self.data, path, value, fill=self._default_at)
        try:
            new = preset_from_dict(self.data, source="preset explorer")
        except ConfigError as err:
            # keep the last valid preset in force and put the control back
            field = getattr(err, "field", None)
            detail = getattr(err, "detail", None) or str(err)
            self.error = f"{field}: {detail}" if field else detail
            self.data = self.preset.model_dump(mode="json")
            control = self.controls.get(path)
            good = get_in(self.data, path, _MISSING)
            if control is not None and good is not _MISSING and good is not None:
                self._muted = True
                try:
                    control.value = to_widget(control, good)
                finally:
                    self._muted = False
            self._show(f"not applied: {self.error}", True)
            return False
        self.error = None
        self._show("", False)
        self.preset = new
        if self.on_change:
            self.on_change(new)
        return True

    def _default_at(self, path: Path) -> Any:
        """The effective value at ``path`` (post-FX defaults for a partial dict)."""
        if path and path[0] in DICT_MODELS:
            eff = DICT_MODELS[path[0]].model_validate(self.data.get(path[0]) or {})
            return get_in(eff.model_dump(mode="json"), path[1:])
        return None

    def _show(self, text: str, error: bool) -> None:
        color = "#b3261e" if error else "#5b5b5b"
        self.status.value = (f"<span style='color:{color};font-size:12px'>"
                             f"{html.escape(text)}</span>") if text else ""

    # ---- building ----------------------------------------------------------------
    def _rebuild(self) -> None:
        """(Re)make the accordion: one section per group of fields. With ``lazy``, a
        section's controls are made when it is first opened (a closed section costs the
        browser nothing; the whole form is ~600 widgets)."""
        import ipywidgets as w

        selected = self.accordion.selected_index
        self.controls = {}
        general: list[tuple[Path, Any, Any]] = []
        builders: list[tuple[str, Callable[[], Any]]] = []
        for name, info in Preset.model_fields.items():
            path = (name,)
            ann, _ = unwrap_optional(info.annotation)
            sub = model_of(ann) or DICT_MODELS.get(name)
            if sub is not None:
                builders.append((name, lambda sub=sub, path=path:
                                 w.VBox(self._model_rows(sub, path))))
            elif typing.get_origin(ann) is list and model_of(typing.get_args(ann)[0]):
                item = typing.get_args(ann)[0]
                builders.append((name, lambda path=path, item=item:
                                 self._list_editor(path, item)))
            elif name == "suits":
                builders.append((name, self._suits_editor))
            elif typing.get_origin(ann) is dict and name == "stem_map":
                builders.append((name, lambda name=name: w.VBox([
                    w.VBox([w.HTML(f"<b>{s}</b>"),
                            self._list_editor((name, s), SignalMapping)])
                    for s in STEM_NAMES])))
            else:
                general.append((path, info, ann))

        def general_rows():
            return w.VBox([r for r in (self._control(p, i, a) for p, i, a in general)
                           if r is not None])

        self._builders = [general_rows] + [b for _, b in builders]
        self._built: set[int] = set()
        self.accordion.children = [w.VBox() for _ in self._builders]
        self.accordion.titles = ("preset", *(GROUP_TITLES.get(n, n) for n, _ in builders))
        if not self.lazy:
            self.ensure_all()
        self.accordion.selected_index = selected
        if selected is not None:
            self._build_section(selected)

    def _on_select(self, change) -> None:
        if change["new"] is not None:
            self._build_section(change["new"])

    def _build_section(self, index: int) -> None:
        if index in self._built or not 0 <= index < len(self._builders):
            return
        self._built.add(index)
        self.accordion.children[index].children = [self._builders[index]()]

    def ensure_all(self) -> None:
        """Make every section's controls now (scripts and tests reach them by path)."""
        for i in range(len(self._builders)):
            self._build_section(i)

    def _model_rows(self, model: type[BaseModel], prefix: Path) -> list[Any]:
        import ipywidgets as w

        rows = []
        for name, info in model.model_fields.items():
            path = (*prefix, name)
            ann, optional = unwrap_optional(info.annotation)
            sub = model_of(ann)
            if sub is not None:
                title = w.HTML(f"<i>{name.replace('_', ' ')}</i>")
                if optional and self._value(path) is None:
                    # an optional part (e.g. a cosine palette): offered, made on demand
                    add = w.Button(description=f"add {name.replace('_', ' ')}",
                                   layout=w.Layout(width="160px"))
                    add.on_click(lambda _b, path=path, sub=sub: self._add_part(path, sub))
                    self.controls[path] = add
                    self._mark(path, add)
                    rows.append(w.VBox([title, add], layout=w.Layout(padding="0 0 0 10px")))
                    continue
                rows.append(w.VBox([title, *self._model_rows(sub, path)],
                                   layout=w.Layout(padding="0 0 0 10px")))
                continue
            if typing.get_origin(ann) is list and typing.get_args(ann) == (tuple[int, int, int],):
                rows.append(self._colour_list(path))
                continue
            row = self._control(path, info, info.annotation)
            if row is not None:
                rows.append(row)
        return rows

    def _value(self, path: Path) -> Any:
        v = get_in(self.data, path, _MISSING)
        return self._default_at(path) if v is _MISSING else v

    def _choices(self, path: Path) -> list[Any] | None:
        last = path[-1]
        if last == "target":
            return targets_for(self.n_axes, self.anchors)
        if last == "source":
            return list(STEM_SERIES if path[0] == "stem_map" else MIX_FEATURES)
        if path == ("tempo_sync", "subdivision"):
            return list(SUBDIVISIONS)
        if path == ("anchors", "brightness_anchor"):
            return [None, *self.anchors]
        return None

    def _overridden(self, path: Path) -> str | None:
        dotted = ".".join(str(p) for p in path if not isinstance(p, int))
        for key, where in self.overrides.items():
            if dotted == key or dotted.startswith(key + "."):
                return where
        return None

    def _control(self, path: Path, info: Any, annotation: Any):
        """The control for one field (registered under ``path``), or None."""
        import ipywidgets as w

        label = str(path[-1]).replace("_", " ")
        value = self._value(path)
        ann, optional = unwrap_optional(annotation)
        choices = self._choices(path)
        origin = typing.get_origin(ann)
        lay = w.Layout(width="100%")
        control: Any
        if path == ("anchors", "use"):
            return self._anchor_use(path, value)
        if choices is not None:
            opts = list(choices)
            if value not in opts:
                opts.append(value)
            options = [("(none)" if o is None else str(o), o) for o in opts]
            control = w.Dropdown(options=options, value=value, description=label, style=STYLE,
                                 layout=lay)
        elif origin is typing.Literal:
            control = w.Dropdown(options=list(typing.get_args(ann)), value=value,
                                 description=label, style=STYLE, layout=lay)
        elif ann is bool:
            control = w.Checkbox(value=bool(value), description=label, indent=False, layout=lay)
        elif origin is tuple and typing.get_args(ann) == (int, int, int):
            control = w.ColorPicker(value=hex_colour(value), description=label, concise=False,
                                    style=STYLE, layout=lay)
        elif origin is tuple and all(a is float for a in typing.get_args(ann)):
            names = "rgb" if len(typing.get_args(ann)) == 3 else "xyzw"
            return w.VBox([self._number((*path, c), f"{label} {names[c]}", float, info,
                                        value[c]) for c in range(len(typing.get_args(ann)))])
        elif ann in (int, float):
            control = self._number(path, label, ann, info, value, optional=optional)
            return control
        elif ann is str:
            box = w.Textarea if path[-1] == "description" else w.Text
            control = box(value=value or "", description=label, style=STYLE, layout=lay,
                          continuous_update=False)
        else:
            n = len(value) if isinstance(value, list) else 0
            return w.HTML(f"<span style='font-size:12px;color:#666'>{label}: {n} item(s) — "
                          "edit in the YAML file</span>")
        self._register(path, control)
        return control

    def _number(self, path: Path, label: str, kind: type, info: Any, value: Any, *,
                optional: bool = False):
        import ipywidgets as w

        lo, hi, lo_x, hi_x = field_bounds(info)
        if lo is None or hi is None:
            dlo, dhi = DISPLAY_RANGES.get(str(path[-1]) if not isinstance(path[-1], int)
                                          else str(path[-2]), (0.0, 10.0))
            lo = dlo if lo is None else lo
            hi = dhi if hi is None else hi
        if kind is int:
            control = w.IntSlider(value=int(value if value is not None else lo), min=int(lo),
                                  max=int(hi), description=label, style=STYLE,
                                  layout=w.Layout(width="100%"), continuous_update=True)
        else:
            step = nice_step(hi - lo)
            lo = lo + step if lo_x else lo
            hi = hi - step if hi_x else hi
            if value is not None:  # a slider clamps: never hide a stored value
                lo, hi = min(lo, float(value)), max(hi, float(value))
            decimals = max(0, -math.floor(math.log10(step)))
            control = w.FloatSlider(
                value=float(value if value is not None else lo), min=lo, max=hi, step=step,
                description=label, style=STYLE, layout=w.Layout(width="100%"),
                continuous_update=True, readout_format=f".{decimals}f")
        if not optional:
            self._register(path, control)
            return control
        on = w.Checkbox(value=value is not None, indent=False, layout=w.Layout(width="28px"),
                        tooltip=f"set {label} (unchecked: the preset's default)")
        control.disabled = value is None
        self._register(path, control, enabled=on)
        return w.HBox([on, control], layout=w.Layout(width="100%"))

    def _anchor_use(self, path: Path, value: Any):
        import ipywidgets as w

        all_on = value == "all"
        names = self.anchors or ([] if all_on else list(value))
        chosen = names if all_on else [v for v in value if v in names]
        pick = w.SelectMultiple(options=names, value=tuple(chosen), description="anchors",
                                rows=min(6, max(2, len(names))), style=STYLE,
                                disabled=all_on, layout=w.Layout(width="100%"))
        every = w.Checkbox(value=all_on, description="use all anchors", indent=False)

        def changed(_=None):
            pick.disabled = every.value
            new = "all" if every.value else list(pick.value)
            if not self._muted:
                self._changed(path, new)

        every.observe(changed, names="value")
        pick.observe(changed, names="value")
        self.controls[path] = every
        self._mark(path, every, pick)
        return w.VBox([every, pick])

    def _register(self, path: Path, control: Any, enabled: Any = None) -> None:
        self.controls[path] = control

        def changed(change):
            if self._muted:
                return
            self._changed(path, from_widget(control, change["new"]))

        control.observe(changed, names="value")
        if enabled is not None:
            def toggled(change):
                control.disabled = not change["new"]
                if not self._muted:
                    self._changed(path, from_widget(control, control.value)
                                  if change["new"] else None)

            enabled.observe(toggled, names="value")
        self._mark(path, control, enabled)

    def _mark(self, path: Path, *controls: Any) -> None:
        where = self._overridden(path)
        if where is None:
            return
        for c in controls:
            if c is not None:
                c.disabled = True
                c.tooltip = f"set by {where}; edit it there"

    # ---- optional parts and colour lists ----------------------------------------
    def _add_part(self, path: Path, model: type[BaseModel]) -> None:
        self._changed(path, model().model_dump(mode="json"))
        self._rebuild()

    def _colour_list(self, path: Path):
        """A list of colours (palette stops): one picker per colour, add and remove."""
        import ipywidgets as w

        colours = list(self._value(path) or [])
        rows = []
        for i, rgb in enumerate(colours):
            pick = w.ColorPicker(value=hex_colour(rgb), concise=True, layout=w.Layout(width="90px"))
            self._register((*path, i), pick)
            drop = w.Button(description="remove", layout=w.Layout(width="72px"))
            drop.on_click(lambda _b, i=i: self._set_list(path, colours[:i] + colours[i + 1:]))
            rows.append(w.HBox([pick, drop]))
        add = w.Button(description="add colour", layout=w.Layout(width="110px"),
                       disabled=len(colours) >= 6)
        add.on_click(lambda _b: self._set_list(path, [*colours, list(colours[-1])
                                                      if colours else [128, 128, 128]]))
        self.controls[path] = add
        self._mark(path, add)
        label = w.HTML(f"<span style='font-size:12px'>{path[-1]} (dark → bright)</span>")
        return w.VBox([label, *rows, add])

    def _set_list(self, path: Path, items: list) -> None:
        self._changed(path, [list(c) for c in items])
        self._rebuild()

    # ---- suits: ranges of a track's character --------------------------------------
    def _suits_editor(self):
        """One text box per character measure: 'low, high' (either may be blank; both
        blank: the measure does not matter to this preset)."""
        import ipywidgets as w

        rows = [w.HTML("<span style='font-size:12px'>the music this preset suits, for "
                       "<code>controller.preset: auto</code></span>")]
        for name, (unit, what) in CHARACTER_FIELDS.items():
            lo, hi = (self.data.get("suits") or {}).get(name, (None, None))
            text = "" if lo is None and hi is None else \
                f"{'' if lo is None else f'{lo:g}'}, {'' if hi is None else f'{hi:g}'}"
            box = w.Text(value=text, description=f"{name} ({unit})" if unit else name,
                         placeholder="low, high", tooltip=what, continuous_update=False,
                         style={"description_width": "140px"}, layout=w.Layout(width="100%"))
            self.controls[("suits", name)] = box
            box.observe(lambda change, name=name: self._suit_changed(name, change["new"]),
                        names="value")
            self._mark(("suits", name), box)
            rows.append(box)
        return w.VBox(rows)

    def _suit_changed(self, name: str, text: str) -> bool:
        if self._muted:
            return False
        suits = dict(self.data.get("suits") or {})
        parts = [p.strip() for p in text.replace(";", ",").split(",")]
        try:
            ends = [None if p == "" else float(p) for p in [*parts, "", ""][:2]]
        except ValueError:
            self._show(f"not applied: suits.{name}: write 'low, high' (numbers)", True)
            return False
        if ends == [None, None]:
            suits.pop(name, None)
        else:
            suits[name] = ends
        return self._changed(("suits",), suits)

    # ---- mapping lists -----------------------------------------------------------
    def _list_editor(self, path: Path, model: type[BaseModel]):
        import ipywidgets as w

        items = get_in(self.data, path) or []
        box = w.VBox()
        rows = []
        for i, _item in enumerate(items):
            fields = []
            for name, info in model.model_fields.items():
                c = self._control((*path, i, name), info, info.annotation)
                if c is not None:
                    fields.append(c)
            remove = w.Button(description="remove", layout=w.Layout(width="80px"),
                              tooltip=f"remove mapping {i + 1}")
            remove.on_click(lambda _b, i=i: self._remove(path, i))
            self._mark(path, remove)
            rows.append(w.VBox([*fields, remove], layout=w.Layout(
                border="1px solid #ddd", padding="4px", margin="2px 0")))
        add = w.Button(description="add mapping", layout=w.Layout(width="120px"))
        add.on_click(lambda _b: self._add(path))
        self._mark(path, add)
        box.children = [*rows, add]
        return box

    def _add(self, path: Path) -> None:
        items = list(get_in(self.data, path) or [])
        source = self._choices((*path, 0, "source"))[0]
        items.append({"source": source, "target": "pca:0", "amount": 1.0})
        set_in(self.data, path, items)
        self._changed(path, items)
        self._rebuild()

    def _remove(self, path: Path, index: int) -> None:
        items = list(get_in(self.data, path) or [])
        if 0 <= index < len(items):
            items.pop(index)
        self._changed(path, items)
        self._rebuild()


_MISSING = object()
