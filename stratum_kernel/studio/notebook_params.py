"""Notebook parameters: papermill's ``parameters`` cell, environment fallbacks, the config.

Every stratum notebook starts with a papermill ``parameters`` cell of plain values (None =
"not given") and derives everything in the next cell::

    params = resolve_parameters(dict(config=config, album_dir=album_dir, ...))
    cfg = config_from_parameters(params)

:func:`resolve_parameters` fills parameters left as None from ``STRATUM_NB_<NAME>``
environment variables (how the test suite runs the notebooks on a tiny album and model
under nbval, and how Voila gets its settings), then converts the text forms (``'a,b'``
track lists, numbers, ``none``). :func:`config_from_parameters` loads render.yaml (or the
defaults) with the parameters as overrides, so a notebook renders exactly what
``python -m stratum_kernel render`` would with the same flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import project_root
from stratum_kernel.render.config import load_render_config
from stratum_kernel.render.overrides import overrides_from_params

ENV_PREFIX = "STRATUM_NB_"

_NUMBERS = {"fps": float, "duration": float, "seed": int, "clip_seconds": float}
_NONE = ("", "none", "null", "default")


def _convert(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _NONE and name != "config":
        return None
    if name in _NUMBERS and isinstance(value, str):
        try:
            return _NUMBERS[name](value)
        except ValueError:
            raise ConfigError("notebook parameters", name,
                              f"{value!r} is not a number") from None
    if name in ("tracks", "albums") and isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()] or None
    return value


def resolve_parameters(values: Mapping[str, Any],
                       env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The notebook's parameters with None values filled from ``STRATUM_NB_<NAME>`` and
    text forms converted ('a,b' → ['a', 'b'], '30' → 30.0 for fps, 'none' → None)."""
    env = os.environ if env is None else env
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            value = env.get(ENV_PREFIX + name.upper())
        out[name] = _convert(name, value) if value is not None else None
    return out


def config_path(value: Any) -> Path | None:
    """render.yaml's path. None: the project's ``render.yaml`` (when there is one); a
    relative path is taken from the project root; 'none' = no file, the defaults."""
    if value is None:
        default = project_root() / "render.yaml"
        return default if default.is_file() else None
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else project_root() / p


def config_from_parameters(params: Mapping[str, Any]):
    """The RenderConfig the notebook works with (render.yaml + parameter overrides)."""
    return load_render_config(config_path(params.get("config")), overrides_from_params(params))
