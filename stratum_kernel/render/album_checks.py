"""A render config checked against the album it renders: the track ids it names exist (or
the closest is suggested), ``src`` files stay inside the album folder and read, trims and
section starts fall inside their tracks. Each problem is a ConfigError naming the field.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import inside
from stratum_kernel.render.config import RenderConfig, SectionConfig, TrackConfig, track_id_of


def album_problems(config: RenderConfig, album: Any) -> list[ConfigError]:
    """Every problem of ``config`` against ``album`` (unknown track ids, a missing ``src``,
    trims outside the track, a trim shorter than one frame), each naming its field."""
    source = config.source or "render config"
    by_id = {track_id_of(t): t for t in album.tracks}
    problems: list[ConfigError] = []
    for i, tc in enumerate(config.tracks):
        field = f"tracks[{i}]"
        track = by_id.get(tc.id)
        if track is None:
            close = difflib.get_close_matches(tc.id, list(by_id), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(ConfigError(
                source, f"{field}.id",
                f"track {tc.id!r} is not in the album; {hint}album tracks: {', '.join(by_id)}",
            ))
            continue
        if tc.src is not None:
            root = Path(album.root)
            resolved = (root / tc.src).resolve()  # an absolute src replaces root here
            if not inside(root, resolved):
                problems.append(ConfigError(
                    source, f"{field}.src",
                    f"{tc.src!r} resolves to {resolved}, outside the album folder {root}; "
                    "copy the file into the album and name it relative to it",
                ))
                continue
        try:
            _, duration = config.track_audio(album, tc.id)
        except Exception as err:  # AudioError or a missing file: name the field
            problems.append(ConfigError(source, f"{field}.src", f"cannot read {tc.src!r}: {err}"))
            continue
        start, end = tc.trim.start, tc.trim.end
        if start >= duration:
            problems.append(ConfigError(
                source, f"{field}.trim.start",
                f"starts at {start} s but track {tc.id!r} is only {duration:.3f} s long",
            ))
        if end is not None and end > duration + 1e-3:
            problems.append(ConfigError(
                source, f"{field}.trim.end",
                f"ends at {end} s, past the end of track {tc.id!r} ({duration:.3f} s); "
                "use a smaller value or null for the end of the track",
            ))
        problems += _section_problems(source, field, tc, track, duration)
        stop = min(end if end is not None else duration, duration)
        if start < duration and (stop - start) * config.frame_rate < 1:
            problems.append(ConfigError(
                source, f"{field}.trim", f"keeps {stop - start:.4f} s, less than one frame"
            ))
    return problems


def section_start(section: SectionConfig, track: Any) -> float:
    """Track seconds where a section begins (its marker's time, or ``at``); ValueError
    naming the known markers when it names none of them."""
    if section.at is not None:
        return float(section.at)
    markers = list(getattr(track, "markers", ()) or ())
    if isinstance(section.marker, int):
        if section.marker > len(markers):
            raise ValueError(f"marker {section.marker}: the track has {len(markers)} "
                             "marker(s)" + (" (see its tracklist entry)" if markers else ""))
        return float(markers[section.marker - 1].time)
    for m in markers:
        if m.label == section.marker:
            return float(m.time)
    labels = [m.label for m in markers if m.label]
    close = difflib.get_close_matches(str(section.marker), labels, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"no marker labelled {section.marker!r}; {hint}labels: "
                     f"{', '.join(labels) or '(none)'}")


def _section_problems(source: Any, field: str, tc: TrackConfig, track: Any,
                      duration: float) -> list[ConfigError]:
    out, last = [], -1.0
    for j, sec in enumerate(tc.sections):
        where = f"{field}.sections[{j}]"
        try:
            t = section_start(sec, track)
        except ValueError as err:
            out.append(ConfigError(source, f"{where}.marker", str(err)))
            continue
        if not 0.0 < t < duration:
            out.append(ConfigError(source, f"{where}.{'at' if sec.at is not None else 'marker'}",
                                   f"starts at {t:g} s, outside the track (0..{duration:.3f} s)"))
        elif t <= last:
            out.append(ConfigError(source, where, f"starts at {t:g} s, not after the section "
                                   "before it; list sections in time order"))
        last = max(last, t)
    return out


def validate_against_album(config: RenderConfig, album: Any) -> None:
    """Raise one ConfigError listing every :func:`album_problems` (field = the first)."""
    problems = album_problems(config, album)
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    first = problems[0]
    detail = "; ".join(f"{p.field}: {p.detail}" for p in problems)
    raise ConfigError(first.source, first.field, detail)
