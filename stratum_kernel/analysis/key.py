"""The key of a track, estimated from its chroma (Krumhansl–Schmuckler).

The track's pitch-class profile — its chroma averaged over time, each frame weighted by its
level so quiet passages count less — is correlated with the Krumhansl–Kessler probe-tone
profiles of the 24 major and minor keys; the best correlation names the key. ``confidence``
is the margin of the best over the runner-up (small: ambiguous, e.g. relative keys or
atonal material), reported beside the estimate so a user can judge it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratum_kernel.analysis.features import TrackFeatures

PITCHES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Krumhansl & Kessler (1982), probe-tone ratings, tonic first
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class KeyEstimate:
    """name: 'A minor', 'F# major'; correlation of the best key with the profile;
    confidence: its margin over the second best (0..2)."""

    name: str
    correlation: float
    confidence: float


def key_scores(profile: np.ndarray) -> dict[str, float]:
    """Pearson correlation of a 12-bin pitch-class profile (C first) with every key."""
    p = np.asarray(profile, dtype=np.float64)
    if p.shape != (12,):
        raise ValueError(f"a pitch-class profile has 12 values, got shape {p.shape}")
    scores = {}
    for mode, template in (("major", MAJOR), ("minor", MINOR)):
        for tonic in range(12):
            t = np.roll(template, tonic)  # the profile of the key on this tonic
            scores[f"{PITCHES[tonic]} {mode}"] = float(np.corrcoef(p, t)[0, 1]) \
                if p.std() > 0 else 0.0
    return scores


def estimate_key(tf: TrackFeatures) -> KeyEstimate | None:
    """The key of ``tf`` (None for a track without pitched content)."""
    chroma = tf.series["chroma"].astype(np.float64)  # [12, T]
    weight = tf.series["rms"].astype(np.float64)
    if chroma.size == 0 or weight.sum() <= 0:
        return None
    profile = chroma @ weight / weight.sum()
    if profile.std() <= 1e-9:
        return None
    ranked = sorted(key_scores(profile).items(), key=lambda kv: (-kv[1], kv[0]))
    (best, r1), (_, r2) = ranked[0], ranked[1]
    return KeyEstimate(best, r1, r1 - r2)
