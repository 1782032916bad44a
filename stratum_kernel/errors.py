"""Errors that speak to the user.

Every failure a person can fix (a bad file, a wrong field, a missing binary) is raised
as a :class:`StratumError` whose message names the file, the field, the value and what to
do. The command line prints these without a traceback; anything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class StratumError(Exception):
    """A problem the user can fix; ``str(err)`` is the whole message."""


class ConfigError(StratumError):
    """An invalid configuration document (tracklist.json, render.yaml, a preset, settings)."""

    def __init__(self, source: str | Path | None, field: str | None, message: str):
        self.source = str(source) if source is not None else None
        self.field = field
        self.detail = message
        where = self.source or "configuration"
        if field:
            where = f"{where}: field '{field}'"
        super().__init__(f"{where}: {message}")


class AudioError(StratumError):
    """Audio that is missing, unreadable, corrupt or truncated."""


class ModelError(StratumError):
    """A generator model that is missing, corrupt or does not match its meta.json."""


class RenderError(StratumError):
    """A render that could not complete (encoder failure, verification mismatch, ...)."""


def format_validation_error(source: str | Path | None, err: Exception) -> ConfigError:
    """Turn a pydantic ``ValidationError`` into one :class:`ConfigError` naming every field.

    Each problem becomes ``field.path: message (got value)``; the first field is kept as
    ``.field`` for programmatic checks.
    """
    errors = getattr(err, "errors", None)
    if not callable(errors):
        return ConfigError(source, None, str(err))
    parts: list[tuple[str, str]] = []  # (field path, what is wrong with it)
    for item in errors():
        loc = ".".join(str(p) for p in item.get("loc", ()))
        msg = item.get("msg", "invalid value")
        shown = repr(item.get("input"))
        if len(shown) > 60:
            shown = shown[:57] + "..."
        if item.get("type") == "missing":
            parts.append((loc, "required field is missing"))
        else:
            parts.append((loc, f"{msg} (got {shown})"))
    first_field = next((loc for loc, _ in parts if loc), None)
    if len(parts) == 1:
        return ConfigError(source, first_field, parts[0][1])
    return ConfigError(
        source, first_field, "; ".join(f"{loc}: {text}" if loc else text for loc, text in parts)
    )
