"""What a track is like, in a few numbers: the measure a preset is chosen by.

:class:`TrackCharacter` is measured from a track's analysis (``analysis/character.py``) and
read by the preset chooser (``motion/choice.py``); it lives here because both layers use
it. Every value is absolute (not scaled against the album), so a one-track album and the
same track inside an album get the same character.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: name -> (unit, what it measures), in the order they are shown.
CHARACTER_FIELDS: dict[str, tuple[str, str]] = {
    "tempo": ("bpm", "the tempo of the beat grid"),
    "onset_rate": ("/s", "note and drum onsets per second of sound"),
    "loudness": ("dBFS", "mean RMS level of the sounding frames"),
    "dynamics": ("dB", "spread of the level: loud passages over quiet ones (95th - 10th)"),
    "brightness": ("Hz", "median spectral centroid"),
    "percussive": ("", "share of the energy in transients (0 = all sustained tones)"),
    "beat_strength": ("", "how much the onsets follow the beat grid (0 = not at all)"),
    "vocals": ("", "share of the stems' energy in the vocal stem"),
    "drums": ("", "share of the stems' energy in the drum stem"),
}


@dataclass(frozen=True)
class TrackCharacter:
    """A track in the numbers of :data:`CHARACTER_FIELDS` (stem shares are None for a track
    analysed without stems)."""

    tempo: float
    onset_rate: float
    loudness: float
    dynamics: float
    brightness: float
    percussive: float
    beat_strength: float
    vocals: float | None = None
    drums: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if v is None else round(float(v), 4)) for k, v in asdict(self).items()}

    def describe(self, name: str) -> str:
        """'tempo 121 bpm' — one value with its unit, for reasons and tables."""
        value = getattr(self, name)
        unit = CHARACTER_FIELDS[name][0]
        if value is None:
            return f"{name} unknown"
        if abs(value) >= 100 or name == "tempo":
            text = f"{value:.0f}"
        elif not unit:  # a share or a strength, 0..1
            text = f"{value:.2f}"
        else:
            text = f"{value:.3g}"
        return f"{name} {text}{' ' + unit if unit and unit != '/s' else unit}"
