"""Where things live: the project root, caches, renders, and safe names.

Every id that becomes part of a path (track ids, preset names, run ids) goes through
:func:`safe_name`, so nothing a user types can read or write outside the album,
``renders/`` and ``cache/`` folders.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def project_root() -> Path:
    """The stratum checkout: ``$STRATUM_ROOT`` if set, else the folder above this package."""
    env = os.environ.get("STRATUM_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Disk cache for features and stems: ``$STRATUM_CACHE`` or ``<root>/cache``."""
    env = os.environ.get("STRATUM_CACHE")
    return Path(env).resolve() if env else project_root() / "cache"


def default_album_dir() -> Path:
    return project_root() / "album"


def default_models_dir() -> Path:
    return project_root() / "models"


def renders_dir() -> Path:
    return project_root() / "renders"


def is_safe_name(name: str) -> bool:
    """True when ``name`` is usable as a single file name: letters, digits, ``._-``,
    starting with a letter or digit, no path separators, not ``.``/``..``."""
    return bool(_SAFE_NAME.match(name)) and ".." not in name


def safe_name(name: str, what: str = "name") -> str:
    """Return ``name`` unchanged if :func:`is_safe_name`, else raise ``ValueError``.

    The message says what the name was for and what is allowed, so validators can pass
    it straight to the user.
    """
    if not isinstance(name, str) or not is_safe_name(name):
        raise ValueError(
            f"{what} {name!r} is not a safe file name: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, no '/' or '..')"
        )
    return name


def inside(base: Path, candidate: Path) -> bool:
    """True when ``candidate`` resolves to ``base`` or somewhere below it."""
    base = base.resolve()
    try:
        candidate.resolve().relative_to(base)
    except ValueError:
        return False
    return True


def temp_sibling(path: str | Path) -> Path:
    """``<stem>.tmp-<pid><suffix>`` beside ``path``: the suffix is kept, so writers that
    choose a format by it (ffmpeg, PIL, OpenCV, libsndfile) write the same kind of file."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling (:func:`temp_sibling`) to write ``path`` through: renamed onto
    ``path`` when the block ends without error, removed otherwise, so nothing
    half-written ever sits under the final name."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A fresh temporary sibling folder to fill; when the block ends without error it
    replaces ``path`` (an old folder there is removed first), otherwise it is removed."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
