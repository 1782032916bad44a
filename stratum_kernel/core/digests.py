"""Content digests: of files (remembered while a file is unchanged) and of video frames.

``file_sha256`` is the one file hasher: audio (feature and stem cache keys), models (the
sha256 in meta.json), segments and films (a run's records) all go through it. Hashing a
30 MB WAV costs ~60 ms, more than reading its cached features, so a digest is remembered by
(path, size, mtime, inode) — in memory and, when ``memo_dir`` is given, on disk — and the
file is hashed again whenever any of them changes. A file modified less than two seconds
before it was hashed is not remembered (its mtime may not yet tell a second write apart,
like git's "racily clean" entries).

A run of frames is digested as the sha256 of its frames' sha256 digests in order
(:func:`frames_digest`): each frame is hashed once, and the digest of a track does not
depend on where its chunks were cut.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stratum_kernel.core.paths import write_text_atomic

log = logging.getLogger(__name__)

RACY_SECONDS = 2.0
_MEMO: dict[tuple[str, int, int, int], str] = {}


def _identity(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def _remember(memo_file: Path | None, ident: tuple[str, int, int, int], digest: str) -> None:
    if memo_file is None:
        return
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(memo_file, json.dumps({"ident": list(ident), "sha256": digest}))
    except OSError as err:  # a memo is an optimisation; failing to write it is not an error
        log.debug("could not write %s: %s", memo_file, err)


def file_sha256(path: str | Path, *, memo_dir: str | Path | None = None) -> str:
    """Hex SHA-256 of the bytes of ``path``, remembered while the file's size, mtime and
    inode stay the same (in this process, and in ``memo_dir`` when given)."""
    path = Path(path).resolve()
    ident = _identity(path)
    memo_file = None
    if memo_dir is not None:
        name = hashlib.sha256(str(path).encode()).hexdigest()[:32]
        memo_file = Path(memo_dir) / f"{name}.json"
    if ident in _MEMO:
        digest = _MEMO[ident]
        if memo_file is not None and not memo_file.exists():
            _remember(memo_file, ident, digest)
        return digest
    if memo_file is not None:
        try:
            memo = json.loads(memo_file.read_text())
            if tuple(memo["ident"]) == ident:
                _MEMO[ident] = memo["sha256"]
                return memo["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    settled = time.time() - ident[2] / 1e9 > RACY_SECONDS
    if settled and _identity(path) == ident:
        _MEMO[ident] = digest
        _remember(memo_file, ident, digest)
    return digest


def frame_digest(frame: np.ndarray) -> bytes:
    """sha256 of one frame's raw uint8 bytes (row-major H, W, RGB)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(frame)).cast("B")).digest()


def frames_digest(digests: Sequence[bytes]) -> str:
    """The digest of a run of frames: sha256 over the frames' sha256 digests, in order."""
    h = hashlib.sha256()
    for d in digests:
        h.update(d)
    return h.hexdigest()
