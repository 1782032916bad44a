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
