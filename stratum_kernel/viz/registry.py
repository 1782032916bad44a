"""The visualization types, listed once.

:data:`KINDS` maps each type's name to its :class:`~stratum_kernel.viz.view_kind.ViewKind`;
the settings file, the parameter panels, overlays and the showcase read it. A new type is a
module with a ``KIND`` and one entry here.
"""

from __future__ import annotations

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.viz import dynamics, loudness_view, spectral, waveform
from stratum_kernel.viz.view_kind import ViewKind

KINDS: dict[str, ViewKind] = {
    k.name: k for k in (waveform.KIND, loudness_view.KIND, dynamics.KIND, spectral.KIND)
}


def view_kind(name: str) -> ViewKind:
    """The view type called ``name``; a ConfigError naming the known ones if none."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            None, "kind", f"unknown visualization type {name!r}; choose one of "
            f"{', '.join(KINDS)}"
        ) from None
