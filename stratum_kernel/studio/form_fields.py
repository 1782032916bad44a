"""What a form field is, apart from any widget: bounds and steps read from a pydantic
field, targets a mapping may name, paths into nested dicts, and the conversions between
stored values and widget values (colours as ``#rrggbb``). Used by ``preset_form``.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from stratum_kernel.picture.postfx import MODULATABLE

Path = tuple[Any, ...]

#: display ranges for numbers the models leave unbounded (by the field's last path part)
DISPLAY_RANGES: dict[str, tuple[float, float]] = {
    "lift": (-0.5, 0.5), "gamma": (0.2, 4.0), "gain": (0.05, 3.0),
}


def targets_for(n_axes: int, anchors: list[str]) -> list[str]:
    """Every mapping target the model offers: ``pca:K``, ``anchor:NAME``, ``postfx:PARAM``
    (every modulatable post-FX scalar, :data:`MODULATABLE`)."""
    post = list(MODULATABLE)
    return ([f"pca:{k}" for k in range(n_axes)] + [f"anchor:{a}" for a in anchors]
            + [f"postfx:{p}" for p in post])


def nice_step(span: float) -> float:
    """A 1-2-5 step giving about 400-1000 positions over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 0.01
    raw = span / 1000.0
    e = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * 10**e >= raw:
            return float(m * 10**e)
    return float(10 ** (e + 1))  # pragma: no cover


def field_bounds(info: Any) -> tuple[float | None, float | None, bool, bool]:
    """(low, high, low_exclusive, high_exclusive) from a field's annotated constraints."""
    lo = hi = None
    lo_x = hi_x = False
    for meta in getattr(info, "metadata", ()):
        for attr, is_lo, excl in (("ge", True, False), ("gt", True, True),
                                  ("le", False, False), ("lt", False, True)):
            v = getattr(meta, attr, None)
            if v is None:
                continue
            if is_lo:
                lo, lo_x = float(v), excl
            else:
                hi, hi_x = float(v), excl
    return lo, hi, lo_x, hi_x


def get_in(data: Any, path: Path, default: Any = None) -> Any:
    node = data
    for p in path:
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            return default
    return node


def set_in(data: dict, path: Path, value: Any, fill: Callable[[Path], Any] | None = None) -> None:
    """Set ``data[path] = value``, creating dicts (or, via ``fill(prefix)``, default values)
    on the way."""
    node = data
    for depth, p in enumerate(path[:-1]):
        nxt = path[depth + 1]
        try:
            child = node[p]
        except (KeyError, IndexError):
            child = None
        if child is None:
            child = copy.deepcopy(fill(path[: depth + 1])) if fill else None
            if child is None:
                child = [] if isinstance(nxt, int) else {}
            node[p] = child
        if isinstance(child, tuple):
            child = node[p] = list(child)
        node = child
    node[path[-1]] = value


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def model_of(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def hex_colour(rgb: Any) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def to_widget(control: Any, value: Any) -> Any:
    import ipywidgets as w

    if isinstance(control, w.ColorPicker) and not isinstance(value, str):
        return hex_colour(value)
    return value


def from_widget(control: Any, value: Any) -> Any:
    import ipywidgets as w

    if isinstance(control, w.ColorPicker):
        h = value.lstrip("#")
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return [int(h[i: i + 2], 16) for i in (0, 2, 4)]
    return value
