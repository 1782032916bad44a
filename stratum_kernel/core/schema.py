"""Documents at the edge: strict models, reading YAML, and one way to say what is wrong.

Every configuration document (tracklist.json, render.yaml, presets, mixer states, overlay
specs, visualization settings, meta.json files) is validated by a pydantic model once, where
it enters. :func:`validation_error` turns a ``ValidationError`` into one
:class:`~stratum_kernel.core.errors.ConfigError` whose field is written the way a user reads it
(``tracks[1].trim.end``), whose message says what is wrong and what was given (bounded:
a huge or deeply nested value is summarised, never printed whole), and, for a misspelt key,
which key was probably meant.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stratum_kernel.core.errors import ConfigError

SHOWN_CHARS = 60


class StrictModel(BaseModel):
    """A model that refuses unknown keys (the base of every config section)."""

    model_config = ConfigDict(extra="forbid")


def field_path(loc: Sequence[Any]) -> str:
    """``('tracks', 1, 'trim', 'end')`` → ``'tracks[1].trim.end'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = SHOWN_CHARS
_REPR.maxlong = 24


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A short ``repr`` of a user's value: at most ``limit`` characters, and built without
    ever rendering the whole value (a 5,000-digit number or a nest of YAML aliases costs as
    much to print as to expand)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        text = f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    else:
        try:
            text = _REPR.repr(value)
        except (ValueError, RecursionError):  # a str() limit or a self-referencing value
            text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The (sub)model that holds the last key of ``loc`` (list indices and dict keys are
    skipped), or None when the path leaves the models."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if isinstance(part, int) or (fields and part not in fields and current is not model):
            continue  # a list index or a dict key: the model stays the same
        if not fields or part not in fields:
            return None
        found = _models_in(fields[part].annotation)
        if not found:
            return None
        current = found[0]
    return current if isinstance(current, type) else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in getattr(annotation, "__args__", ()) for m in _models_in(a)]


def field_problems(
    err: ValidationError, model: type[BaseModel] | None = None
) -> list[tuple[str, str]]:
    """Each problem of ``err`` as (field path, message): 'required field is missing', an
    unknown key with the closest known ones (when ``model`` is given), or the validator's
    message with the value given."""
    out = []
    for item in err.errors():
        loc = tuple(item.get("loc", ()))
        msg = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        kind = item.get("type")
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden" and loc and model is not None:
            holder = _model_at(model, loc)
            known = list(getattr(holder, "model_fields", {}))
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            msg = f"unknown key; {hint}known keys here: {', '.join(known)}"
        else:
            msg = f"{msg} (got {shown(item.get('input'))})"
        out.append((field_path(loc), msg))
    return out


def validation_error(
    source: str | Path | None, err: ValidationError, model: type[BaseModel] | None = None
) -> ConfigError:
    """One :class:`ConfigError` naming every problem of ``err`` (``.field`` = the first)."""
    parts = field_problems(err, model)
    first = next((f for f, _ in parts if f), None)
    if len(parts) == 1:
        return ConfigError(source, first, parts[0][1])
    text = "; ".join(f"{f}: {m}" if f else m for f, m in parts)
    return ConfigError(source, first, text)


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    """Read a YAML document; syntax errors become a ConfigError with line and column."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, f"{what} not found") from None
    except OSError as err:
        raise ConfigError(path, None, f"cannot read {what}: {err.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            path, None, f"YAML syntax error{where}: {problem}; fix the file and retry"
        ) from None
