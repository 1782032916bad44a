"""Randomness keyed by what it is for, never by call order.

Every random draw in stratum comes from :func:`rng_for`, keyed by (seed, track, frame,
purpose). The same frame gets the same noise whether it is rendered alone, in a chunk,
in a batch of 64, or on another machine.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(*parts: object) -> int:
    """A 64-bit integer from ``parts`` that is the same in every process and platform
    (Python's ``hash`` of a str is salted per process, so it is never used)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def rng_for(seed: int, track_id: str, frame: int, purpose: str) -> np.random.Generator:
    """A fresh generator for one (seed, track, frame, purpose)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, stable_hash(track_id, purpose), frame])
