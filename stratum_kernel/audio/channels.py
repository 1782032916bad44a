"""Channel layouts and the stereo downmix of files with more (or fewer) channels.

The film plays stereo (or mono); a surround file is folded down with ITU-R BS.775
coefficients, and the analysis hears the same downmix. Pure numpy: the matrix applies to
each sample on its own, so a long track is downmixed block by block with the same result.
"""

from __future__ import annotations

import numpy as np

#: What the channels of a 3–8 channel file are, in the order the FLAC format defines them
#: (and WAV's WAVE_FORMAT_EXTENSIBLE stores 5.0, 5.1, 6.1 and 7.1; ffmpeg reads those the
#: same way). A file's own channel mask is not read: a 3- or 4-channel file is taken as
#: L R C or quad, as FLAC defines them (ffmpeg guesses 2.1 and 4.0 for a WAV without mask).
CHANNEL_LAYOUTS: dict[int, tuple[str, ...]] = {
    3: ("L", "R", "C"),
    4: ("L", "R", "Ls", "Rs"),
    5: ("L", "R", "C", "Ls", "Rs"),
    6: ("L", "R", "C", "LFE", "Ls", "Rs"),
    7: ("L", "R", "C", "LFE", "Cs", "Ls", "Rs"),
    8: ("L", "R", "C", "LFE", "Ls", "Rs", "Lss", "Rss"),
}
_TO_LEFT = {"L": 1.0, "C": 0.7071, "Ls": 0.7071, "Lss": 0.7071, "Cs": 0.5}
_TO_RIGHT = {"R": 1.0, "C": 0.7071, "Rs": 0.7071, "Rss": 0.7071, "Cs": 0.5}


def downmix_matrix(channels: int) -> np.ndarray:
    """float32 [2, channels]: ITU-R BS.775 stereo downmix of a ``channels`` file
    (:data:`CHANNEL_LAYOUTS`): Lo = L + 0.707 C + 0.707 Ls, Ro = R + 0.707 C + 0.707 Rs (a
    back centre at 0.5 to both), the LFE left out; each row scaled so its gains sum to at
    most 1 so the mix cannot clip — the matrix ffmpeg's ``-ac 2`` uses for integer output
    (its float path skips that scaling and can clip). Other channel counts: every channel
    at equal gain to both sides."""
    layout = CHANNEL_LAYOUTS.get(channels)
    if channels == 1:
        m = np.ones((2, 1))
    elif channels == 2:
        m = np.eye(2)
    elif layout is None:
        m = np.full((2, channels), 1.0 / channels)
    else:
        m = np.array([[_TO_LEFT.get(c, 0.0) for c in layout],
                      [_TO_RIGHT.get(c, 0.0) for c in layout]])
    m /= np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    return m.astype(np.float32)


def downmix_description(channels: int) -> str:
    """How :func:`downmix` treats a file of ``channels`` channels, for run records."""
    if channels <= 2:
        return "none"
    layout = CHANNEL_LAYOUTS.get(channels)
    if layout is None:
        return f"{channels} channels averaged into both sides"
    return (f"{channels}-channel ({' '.join(layout)}) to stereo, ITU-R BS.775 coefficients, "
            "LFE left out, rows normalised to a gain sum of 1 (ffmpeg -ac 2, integer output)")


def downmix(y: np.ndarray, channels: int) -> np.ndarray:
    """float32 [channels, samples] from [c, samples]: mono → both sides, more than two
    channels → BS.775 stereo (:func:`downmix_matrix`), then, for ``channels=1``, the mean."""
    y = np.asarray(y, dtype=np.float32)
    c = y.shape[0]
    if c == channels:
        return y
    stereo = y if c == 2 else downmix_matrix(c) @ y
    if channels == 2:
        return np.ascontiguousarray(stereo, dtype=np.float32)
    if channels == 1:
        return (stereo.mean(axis=0, keepdims=True, dtype=np.float32) if c != 1 else y)
    raise ValueError(f"downmix to {channels} channels is not supported (1 or 2)")
