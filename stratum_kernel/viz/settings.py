"""The project's visualization settings: one value per view type, persisted in a file.

:class:`VisualizationSettings` keeps one value of each view type's parameters (see
:mod:`stratum_kernel.viz.registry`) in a YAML file inside the project
(``stratum_settings.yaml`` at the project root, or ``$STRATUM_SETTINGS``), under
``visualizations: {<kind>: {field: value}}``, so headless renders, papermill runs and the
widget panels all draw with the same values.

Reading is forgiving per field: a bad value warns (:class:`SettingsWarning`, naming the
file, the field, the value and the fix) and that field alone falls back to its default.
Writing is atomic and keeps every other section of the file.
"""

from __future__ import annotations

import os
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import project_root, write_text_atomic
from stratum_kernel.core.schema import read_yaml, validation_error
from stratum_kernel.viz.params import ViewParams
from stratum_kernel.viz.registry import KINDS, view_kind

SETTINGS_ENV = "STRATUM_SETTINGS"
SETTINGS_FILE = "stratum_settings.yaml"
SECTION = "visualizations"


class SettingsWarning(UserWarning):
    """A settings value that was ignored (the field fell back to its default)."""


def params_model(kind: str) -> type[ViewParams]:
    """The parameter model of a view type (a ConfigError naming the known ones if none)."""
    return view_kind(kind).params


def settings_path() -> Path:
    """``$STRATUM_SETTINGS`` if set, else ``<project root>/stratum_settings.yaml``."""
    env = os.environ.get(SETTINGS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return project_root() / SETTINGS_FILE


@cache
def _field_adapter(kind: str, name: str) -> TypeAdapter:
    """A validator for one field alone (its type and bounds, no cross-field rules)."""
    info = params_model(kind).model_fields[name]
    return TypeAdapter(Annotated[info.annotation, info])


def validate_per_field(kind: str, raw: Any, *, source: str, base: ViewParams | None = None
                       ) -> tuple[ViewParams, list[str]]:
    """Build ``kind``'s params from ``raw`` (a mapping), keeping every valid field.

    Returns (params, messages): each message names the source, the field, the bad value
    and what was used instead. Unknown fields are dropped; a value that fails alone, or
    that breaks a rule across fields, falls back (to ``base``'s value, default: the
    field's default) without touching the others.
    """
    model = params_model(kind)
    base = base if base is not None else model()
    instead = "keeping" if base != model() else "using the default"
    messages: list[str] = []
    if raw is None:
        return base.model_copy(), messages
    if not isinstance(raw, dict):
        messages.append(f"{source}: '{SECTION}.{kind}' should be a mapping of field: value, "
                        f"got {type(raw).__name__}; {instead} values")
        return base.model_copy(), messages
    fallback = base.model_dump()
    good: dict[str, Any] = dict(fallback)
    taken: list[str] = []
    for name, value in raw.items():
        if name not in model.model_fields:
            messages.append(f"{source}: unknown field '{SECTION}.{kind}.{name}' ignored "
                            f"(known: {', '.join(model.model_fields)})")
            continue
        try:
            _field_adapter(kind, name).validate_python(value)
        except ValidationError as err:
            why = err.errors()[0].get("msg", "invalid value")
            messages.append(f"{source}: field '{SECTION}.{kind}.{name}' = {value!r} is invalid "
                            f"({why}); {instead} {fallback[name]!r}. Fix or delete the line.")
            continue
        good[name] = value
        taken.append(name)
    while True:
        try:
            return model.model_validate(good), messages
        except ValidationError as err:
            # a rule across fields: put back the fields the rule names, one at a time
            text = "; ".join(e.get("msg", "") for e in err.errors())
            named = [n for n in taken if n in text] or taken
            if not named:
                return base.model_copy(), messages
            culprit = named[-1]
            messages.append(f"{source}: field '{SECTION}.{kind}.{culprit}' = {good[culprit]!r} "
                            f"breaks a rule ({text}); {instead} {fallback[culprit]!r}. Fix or "
                            "delete the line.")
            good[culprit] = fallback[culprit]
            taken.remove(culprit)


class VisualizationSettings:
    """The project's visualization parameters, one value per view type, persisted.

    ``get(kind)`` returns a copy of the current params; ``set(kind, params_or_changes)``
    validates, stores and saves; ``reset(kind)`` returns to defaults and saves. The file
    is re-read on ``load()`` (and lazily on first use); every save rewrites only the
    ``visualizations`` section and keeps other top-level keys.
    """

    def __init__(self, path: str | Path | None = None, *, persist: bool = True):
        self.path = Path(path).expanduser().resolve() if path is not None else settings_path()
        self.persist = persist
        self._values: dict[str, ViewParams] = {}
        self._stored: set[str] = set()
        self._loaded = False
        self._lock = threading.RLock()

    # ---- reading ------------------------------------------------------------------
    @classmethod
    def in_memory(cls) -> VisualizationSettings:
        """Defaults that are never read from or written to a file (benchmarks, tests)."""
        return cls(Path.cwd() / "in-memory-settings.yaml", persist=False)

    def _read_document(self) -> dict[str, Any]:
        if not self.persist or not self.path.exists():
            return {}
        try:
            doc = read_yaml(self.path, "settings file")
        except ConfigError as err:
            warnings.warn(f"{err}; using defaults. Fix the YAML or delete the file.",
                          SettingsWarning, stacklevel=3)
            return {}
        if doc is None:
            return {}
        if not isinstance(doc, dict):
            warnings.warn(f"{self.path}: the settings file should be a mapping, got "
                          f"{type(doc).__name__}; using defaults.", SettingsWarning, stacklevel=3)
            return {}
        return doc

    def load(self) -> VisualizationSettings:
        """(Re)read the file; bad fields warn and fall back one by one."""
        with self._lock:
            doc = self._read_document()
            section = doc.get(SECTION) or {}
            if not isinstance(section, dict):
                warnings.warn(f"{self.path}: '{SECTION}' should be a mapping; using defaults.",
                              SettingsWarning, stacklevel=2)
                section = {}
            self._values = {}
            self._stored = set()
            for kind in KINDS:
                if kind in section:
                    params, messages = validate_per_field(kind, section[kind],
                                                          source=str(self.path))
                    for msg in messages:
                        warnings.warn(msg, SettingsWarning, stacklevel=2)
                    self._stored.add(kind)
                else:
                    params = KINDS[kind].params()
                self._values[kind] = params
            for kind in section:
                if kind not in KINDS:
                    warnings.warn(f"{self.path}: unknown visualization type '{SECTION}.{kind}' "
                                  f"ignored (known: {', '.join(KINDS)})",
                                  SettingsWarning, stacklevel=2)
            self._loaded = True
        return self

    def _ensure(self) -> None:
        if not self._loaded:
            self.load()

    def get(self, kind: str) -> ViewParams:
        """A copy of the current parameters of ``kind``."""
        params_model(kind)
        with self._lock:
            self._ensure()
            return self._values[kind].model_copy()

    def is_stored(self, kind: str) -> bool:
        """True when the settings file holds a section for ``kind`` (not just defaults)."""
        with self._lock:
            self._ensure()
            return kind in self._stored

    # ---- writing ------------------------------------------------------------------
    def set(self, kind: str, params: ViewParams | dict[str, Any], *, save: bool = True
            ) -> ViewParams:
        """Replace (a model) or update (a dict of changes) ``kind``'s params; saves.

        Raises :class:`ConfigError` naming the field and value when a change is invalid.
        """
        model = params_model(kind)
        with self._lock:
            self._ensure()
            if isinstance(params, dict):
                merged = {**self._values[kind].model_dump(), **params}
            elif isinstance(params, model):
                merged = params.model_dump()
            else:
                raise ConfigError(None, kind, f"expected {model.__name__} or a dict, got "
                                  f"{type(params).__name__}")
            try:
                value = model.model_validate(merged)
            except ValidationError as err:
                raise validation_error(f"{SECTION}.{kind}", err) from None
            self._values[kind] = value
            if save:
                self._stored.add(kind)
                self.save()
            return value.model_copy()

    def reset(self, kind: str | None = None) -> None:
        """Back to defaults for ``kind`` (or every kind) and save."""
        with self._lock:
            self._ensure()
            kinds = [kind] if kind is not None else list(KINDS)
            for k in kinds:
                params_model(k)
                self._values[k] = KINDS[k].params()
                self._stored.discard(k)
            self.save()

    def save(self) -> Path:
        """Write the stored kinds atomically, keeping the file's other sections."""
        import yaml

        with self._lock:
            self._ensure()
            if not self.persist:
                return self.path
            doc = self._read_document() if self.path.exists() else {}
            section = {k: self._values[k].model_dump(mode="json") for k in KINDS
                       if k in self._stored}
            if section:
                doc[SECTION] = section
            else:
                doc.pop(SECTION, None)
            text = ("# stratum project settings (written by stratum; edit freely, bad values "
                    "fall back to defaults one field at a time)\n"
                    + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, text)
            return self.path


_default: VisualizationSettings | None = None
_default_lock = threading.Lock()


def default_settings() -> VisualizationSettings:
    """The process-wide store at :func:`settings_path` (re-created if the path changed)."""
    global _default
    with _default_lock:
        if _default is None or _default.path != settings_path():
            _default = VisualizationSettings()
        return _default


def current_params(kind: str, overrides: dict[str, Any] | None = None) -> ViewParams:
    """``kind``'s persisted params with ``overrides`` applied (not saved).

    Used by headless renders and overlays; raises :class:`ConfigError` on a bad override.
    """
    base = default_settings().get(kind)
    if not overrides:
        return base
    try:
        return type(base).model_validate({**base.model_dump(), **overrides})
    except ValidationError as err:
        raise validation_error(f"overrides for {kind}", err) from None
