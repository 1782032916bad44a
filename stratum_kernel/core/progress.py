"""How progress is shown: a bar updated in place on a terminal, plain lines elsewhere.

``resolve_mode`` turns a ``progress`` argument (True, False, 'auto', 'bar', 'lines', 'off')
into one of three modes; the analysis (``analysis/cache.py``) and the render
(``render/progress.py``) both report through it, so ``make render`` under papermill, a CI
log and a terminal each get the form they can show.
"""

from __future__ import annotations

import sys
from typing import IO, Literal

Mode = Literal["bar", "lines", "off"]
PREFIX = "[stratum]"


def resolve_mode(progress: bool | str, stream: IO[str] | None = None) -> Mode:
    """``True``/'auto' → 'bar' on a terminal, else 'lines'; ``False``/'off' → 'off'."""
    if progress is False or progress in ("off", "none", None):
        return "off"
    if progress in ("bar", "lines"):
        return progress  # type: ignore[return-value]
    if progress is True or progress == "auto":
        stream = stream if stream is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        return "bar" if callable(isatty) and isatty() else "lines"
    raise ValueError(f"progress must be True, False, 'auto', 'bar', 'lines' or 'off', "
                     f"not {progress!r}")


def clock_text(seconds: float) -> str:
    """'1:05:09', '4:02', '0:07' ('?' when unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
