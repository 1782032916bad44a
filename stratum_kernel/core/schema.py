"""Documents at the edge: strict models, reading YAML, and one way to say what is wrong.

Every configuration document (tracklist.json, render.yaml, presets, mixer states, overlay
specs, visualization settings, meta.json files) is validated by a pydantic model once, where
it enters. :func:`validation_error` turns a ``ValidationError`` into one
:class:`~stratum_kernel.core.errors.ConfigError` whose field is written the way a user reads it
(``tracks[1].trim.end``), whose message says what is wrong and what was given (bounded:
a huge or deeply nested value is summarised, never printed whole), and, for a misspelt key,
which key was probably meant. :func:`read_yaml` and :func:`read_json` read documents within
bounds (size, YAML alias expansion, nesting depth, digits of a number).
"""

from __future__ import annotations

import difflib
import json
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


# Bounds on any document a user hands in: a few kilobytes of YAML aliases ("billion
# laughs") or a 100,000-deep JSON list must cost milliseconds and end in a clear error,
# never minutes and gigabytes.
MAX_DOCUMENT_BYTES = 16 * 2**20
MAX_NODES = 200_000  # values after YAML aliases are expanded
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 64


class DocumentTooLarge(ValueError):
    """A document beyond the bounds above (the message says which)."""


def _check_yaml(node: Any, memo: dict[int, int], depth: int = 0) -> int:
    """Size of ``node`` once aliases are expanded (memoised per node: aliases share nodes)."""
    import yaml

    if depth > MAX_DEPTH:
        raise DocumentTooLarge(f"nested more than {MAX_DEPTH} levels deep")
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, yaml.ScalarNode):
        numeric = node.tag.endswith((":int", ":float"))
        if numeric and len(node.value) > MAX_NUMBER_CHARS:
            raise DocumentTooLarge(f"a number of {len(node.value)} characters (line "
                                   f"{node.start_mark.line + 1}); write a plain value")
        size = 1
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_check_yaml(n, memo, depth + 1) for n in node.value)
    else:
        size = 1 + sum(_check_yaml(k, memo, depth + 1) + _check_yaml(v, memo, depth + 1)
                       for k, v in node.value)
    if size > MAX_NODES:
        raise DocumentTooLarge(f"more than {MAX_NODES:,} values once its aliases (&/*) are "
                               "expanded")
    memo[key] = size
    return size


def _read_text(path: Path, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise ConfigError(path, None, f"is {size / 2**20:.0f} MB; a {what} is at most "
                              f"{MAX_DOCUMENT_BYTES // 2**20} MB")
        return path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is fine
    except FileNotFoundError:
        raise ConfigError(path, None, f"{what} not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            path, None, f"is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from None
    except IsADirectoryError:
        raise ConfigError(path, None, f"is a folder, not a {what}") from None
    except OSError as err:
        raise ConfigError(path, None, f"cannot read {what}: {err.strerror}") from None


def parse_yaml(text: str, source: str | Path) -> Any:
    """A YAML document (safe types only) within the bounds above; ConfigError otherwise."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml(node, {})
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            source, None, f"YAML syntax error{where}: {problem}; fix the file and retry"
        ) from None
    except DocumentTooLarge as err:
        raise ConfigError(source, None, f"refused: {err}") from None
    except RecursionError:
        raise ConfigError(source, None, f"refused: nested more than {MAX_DEPTH} levels "
                          "deep") from None
    except ValueError as err:  # e.g. a date or number it cannot hold
        raise ConfigError(source, None, f"refused: {shown(str(err), 120)}") from None
    finally:
        loader.dispose()


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    """Read a YAML document; syntax errors become a ConfigError with line and column, and
    any document beyond the bounds (size, aliases, depth, huge numbers) is refused."""
    return parse_yaml(_read_text(Path(path), what), path)


def _bounded_number(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise DocumentTooLarge(f"a number of {len(text)} characters")
    return int(text) if text.lstrip("-").isdigit() else float(text)


def parse_json(text: str, source: str | Path) -> Any:
    """A JSON document within the bounds above; ConfigError (with line and column for a
    syntax error) otherwise."""
    try:
        return json.loads(text, parse_int=_bounded_number, parse_float=_bounded_number)
    except json.JSONDecodeError as err:
        raise ConfigError(
            source, None, f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(source, None, "refused: nested too deeply") from None
    except DocumentTooLarge as err:
        raise ConfigError(source, None, f"refused: {err}") from None


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Read a JSON document from ``path`` (see :func:`parse_json`)."""
    return parse_json(_read_text(Path(path), what), path)
