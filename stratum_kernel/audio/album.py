"""The album: ``tracklist.json``'s schema and loading a folder of tracks.

An album folder holds ``tracklist.json`` — a JSON list, in album order, of entries
``{"id", "src", "title", "artist", "bpm", "key", "markers", ...}`` — the audio files it
names, and optionally ``stems/<id>/{drums,bass,other,vocals}.<ext>`` per track. A folder of
audio files without ``tracklist.json`` is an album too: its tracks are the files in name
order (a user dropping in their own songs).

:func:`load_album` checks everything a render will rely on before any work starts, and
reports every problem of the folder at once, each naming the file, the field and the value:
unreadable JSON (with line and column), a missing or damaged audio file, a duplicate or
unsafe id, a ``src`` leaving the album folder, a bpm out of range, markers that are
negative, unsorted or past the end of the track, a partial stem set. Unknown fields warn
(:class:`AlbumWarning`) and are kept in ``entry.model_extra``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stratum_kernel.audio.files import AUDIO_SUFFIXES, AudioInfo, audio_info
from stratum_kernel.core.errors import AudioError, ConfigError, StratumError
from stratum_kernel.core.paths import inside, safe_name
from stratum_kernel.core.schema import field_problems, read_json, shown
from stratum_kernel.core.timeline import STEM_NAMES

log = logging.getLogger(__name__)

TRACKLIST_NAME = "tracklist.json"
BPM_RANGE = (20.0, 300.0)
# A track id names <id>.mp4 in a run folder beside album.mp4, and files on every system:
# 'album' would overwrite the album film; the others are device names on Windows.
RESERVED_IDS = frozenset({"album", "con", "prn", "aux", "nul",
                          *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))})
# A stem may differ from its mix by this much (lossy encoders pad a few ms).
STEM_DURATION_TOLERANCE_S = 0.1


class AlbumWarning(UserWarning):
    """Something odd but harmless in an album (an unknown tracklist field, ...)."""


class Marker(BaseModel):
    """A point in a track, in seconds from its start; ``label`` names the section it opens."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    time: float = Field(ge=0.0)
    label: str = ""


class Section(BaseModel):
    """A named part of a track ("intro", "build", "peak", ...) starting at ``start`` s."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    start: float = Field(ge=0.0)


class TrackEntry(BaseModel):
    """One entry of ``tracklist.json``.

    id: a safe file name (letters, digits, ``._-``), unique in the album; it names the
    track's cache files, stems folder and renders. src: the audio file, relative to the
    album folder. bpm: the tempo prior for beat tracking (20–300), or null when unknown.
    markers: section starts in seconds, ascending — plain numbers or
    ``{"time": s, "label": "build"}``. sections: optional named parts
    ``[{"name": "intro", "start": 0.0}, ...]``, ascending.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    id: str
    src: str
    title: str = ""
    artist: str = ""
    bpm: float | None = None
    key: str | None = None
    markers: tuple[Marker, ...] = ()
    sections: tuple[Section, ...] = ()

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        safe_name(value, "track id")
        if value.casefold() in RESERVED_IDS:
            why = ("album.mp4 is the album film" if value.casefold() == "album"
                   else "a device name on Windows")
            raise ValueError(
                f"track id {value!r} is reserved ({why}); rename the track, e.g. "
                f"{value + '-1'!r}"
            )
        return value

    @field_validator("src")
    @classmethod
    def _relative_src(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name an audio file inside the album folder")
        value = value.replace("\\", "/")  # a tracklist written on Windows
        parts = PurePosixPath(value).parts
        if value.startswith("/") or re.match(r"^[A-Za-z]:", value) or ".." in parts:
            raise ValueError(
                "must be a path inside the album folder (relative, without '..'), "
                "e.g. 'audio/track1.flac'"
            )
        return value

    @field_validator("bpm")
    @classmethod
    def _bpm_range(cls, value: float | None) -> float | None:
        lo, hi = BPM_RANGE
        if value is not None and not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g} BPM (or null when unknown)")
        return value

    @field_validator("markers", mode="before")
    @classmethod
    def _marker_numbers(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"time": m} if isinstance(m, int | float) else m for m in value]
        return value

    @field_validator("markers")
    @classmethod
    def _sorted_markers(cls, value: tuple[Marker, ...]) -> tuple[Marker, ...]:
        for i in range(1, len(value)):
            if value[i].time < value[i - 1].time:
                raise ValueError(
                    f"markers must be in ascending time order: marker {i} at "
                    f"{value[i].time:g} s comes after {value[i - 1].time:g} s"
                )
        return value

    @field_validator("sections")
    @classmethod
    def _sorted_sections(cls, value: tuple[Section, ...]) -> tuple[Section, ...]:
        for i in range(1, len(value)):
            if value[i].start < value[i - 1].start:
                raise ValueError(
                    f"sections must be in ascending order of start: section {i} "
                    f"({value[i].name!r}) at {value[i].start:g} s comes after "
                    f"{value[i - 1].start:g} s"
                )
        return value

    @model_validator(mode="after")
    def _default_title(self) -> TrackEntry:
        if not self.title:
            # frozen model: set the derived default once, during validation
            object.__setattr__(self, "title", self.id)
        return self

    @property
    def marker_times(self) -> tuple[float, ...]:
        """The markers' times in seconds, ascending."""
        return tuple(m.time for m in self.markers)

    @classmethod
    def known_fields(cls) -> frozenset[str]:
        return frozenset(cls.model_fields)


@dataclass(frozen=True)
class Track:
    """A tracklist entry whose audio has been found and read.

    audio_path: absolute path of the mix; duration: seconds; sample_rate: Hz of the file;
    stem_paths: {'drums','bass','other','vocals': Path} when all four stems are bundled in
    ``stems/<id>/``, else None.
    """

    entry: TrackEntry
    album_dir: Path
    audio_path: Path
    duration: float
    sample_rate: int
    channels: int
    frames: int
    format: str
    stem_paths: dict[str, Path] | None = None

    def __hash__(self) -> int:  # stem_paths is a dict; the id and file identify a track
        return hash((self.entry.id, str(self.audio_path)))

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def title(self) -> str:
        return self.entry.title

    @property
    def artist(self) -> str:
        return self.entry.artist

    @property
    def bpm(self) -> float | None:
        return self.entry.bpm

    @property
    def key(self) -> str | None:
        return self.entry.key

    @property
    def markers(self) -> tuple[Marker, ...]:
        return self.entry.markers

    @property
    def marker_times(self) -> tuple[float, ...]:
        return self.entry.marker_times

    @property
    def sections(self) -> tuple[Section, ...]:
        return self.entry.sections


@dataclass(frozen=True)
class Album:
    """The tracks of an album folder, in album order.

    root: the album folder; tracklist: its ``tracklist.json``, or None when the tracks were
    found as a plain folder of audio files.
    """

    root: Path
    tracks: tuple[Track, ...]
    tracklist: Path | None = None

    def __iter__(self):
        return iter(self.tracks)

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tracks)

    @property
    def total_duration(self) -> float:
        """Seconds of audio in the whole album."""
        return float(sum(t.duration for t in self.tracks))

    def track(self, track_id: str) -> Track:
        """The track with ``track_id``; a :class:`ConfigError` listing the known ids if none."""
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise ConfigError(
            self.tracklist or self.root,
            "id",
            f"no track with id {track_id!r}; this album has: {', '.join(self.ids) or '(none)'}",
        )


# ------------------------------------------------------------------ problems


@dataclass
class _Problem:
    """One thing wrong with the album: where it is and what to do about it."""

    where: str  # "entry 2 ('intro')" or a file name
    field: str | None
    message: str
    audio: bool = False

    def __str__(self) -> str:
        field = f", field '{self.field}'" if self.field else ""
        return f"{self.where}{field}: {self.message}"


def _entry_label(index: int, raw: Any) -> str:
    tid = raw.get("id") if isinstance(raw, dict) else None
    return f"entry {index + 1} ({tid!r})" if isinstance(tid, str) else f"entry {index + 1}"


def _validation_problems(index: int, raw: Any, err: ValidationError) -> list[_Problem]:
    label = _entry_label(index, raw)
    return [_Problem(label, field or None, msg) for field, msg in field_problems(err, TrackEntry)]


def _raise_problems(source: Path, problems: list[_Problem]) -> None:
    if not problems:
        return
    if len(problems) == 1:
        body = str(problems[0])
    else:
        body = f"{len(problems)} problems:\n  - " + "\n  - ".join(str(p) for p in problems)
    first = problems[0]
    if all(p.audio for p in problems):
        err: StratumError = AudioError(f"{source}: {body}")
    else:
        err = ConfigError(source, None, body)
        err.field = first.field
    raise err


# ------------------------------------------------------------------ reading


def _read_tracklist(path: Path) -> list[Any]:
    doc = read_json(path, "tracklist")
    if not isinstance(doc, list):
        raise ConfigError(
            path,
            None,
            f'expected a list of track objects [{{"id": ..., "src": ...}}, ...], '
            f"got a JSON {type(doc).__name__ if not isinstance(doc, dict) else 'object'}",
        )
    if not doc:
        raise ConfigError(path, None, "the tracklist is empty; add at least one track")
    return doc


def _sanitised_id(stem: str) -> str:
    # "01 - Night Drive" -> "01-night-drive", "Café Noël" -> "cafe-noel": lower case ASCII
    # (accents dropped, not the letters), one '-' between words
    ascii_ = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    tid = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:64].rstrip("-")
    return tid or "track"


def _title_from_name(stem: str) -> str:
    # "01 - Night Drive" / "01. Night Drive" -> "Night Drive"
    title = re.sub(r"^\d{1,3}\s*[-._)]?\s+", "", stem).strip()
    return title or stem


def _listed(folder: Path) -> list[Path]:
    """The files of ``folder`` that can be audio: hidden files are not (macOS writes
    ``._name.wav`` AppleDouble metadata beside every file copied to some disks)."""
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    if hidden:
        log.info("%s: hidden files ignored: %s", folder, ", ".join(sorted(hidden)[:5]))
    return [p for p in folder.iterdir()
            if not p.name.startswith(".") and p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]


def _entries_from_folder(root: Path) -> list[dict[str, Any]]:
    files = sorted(_listed(root), key=lambda p: (p.name.casefold(), p.name))
    if not files:
        raise ConfigError(
            root,
            None,
            f"no {TRACKLIST_NAME} and no audio files here; add audio files "
            f"({', '.join(sorted(AUDIO_SUFFIXES))}) or a {TRACKLIST_NAME}",
        )
    entries, seen = [], set()
    for p in files:
        base = tid = _sanitised_id(p.stem)
        if base in RESERVED_IDS:
            base = tid = f"{base}-track"
        n = 2
        while tid in seen:
            tid, n = f"{base}-{n}", n + 1
        seen.add(tid)
        entries.append({"id": tid, "src": p.name, "title": _title_from_name(p.stem)})
    log.info(
        "%s: no %s, using %d audio file(s) in name order: %s",
        root,
        TRACKLIST_NAME,
        len(entries),
        ", ".join(e["src"] for e in entries),
    )
    return entries


def _find_stems(root: Path, track_id: str, label: str, problems: list[_Problem]):
    folder = root / "stems" / track_id
    if not folder.is_dir():
        return None
    found: dict[str, list[Path]] = {s: [] for s in STEM_NAMES}
    for p in _listed(folder):
        if p.stem.lower() in found:
            found[p.stem.lower()].append(p)
    present = [s for s in STEM_NAMES if found[s]]
    if not present:
        return None
    missing = [s for s in STEM_NAMES if not found[s]]
    if missing:
        problems.append(
            _Problem(
                label,
                "stems",
                f"{folder} has {', '.join(present)} but is missing {', '.join(missing)}; "
                "add the missing stems or remove the folder to separate them instead",
            )
        )
        return None
    for s in STEM_NAMES:
        if len(found[s]) > 1:
            names = ", ".join(sorted(p.name for p in found[s]))
            problems.append(
                _Problem(label, "stems", f"{folder} has several {s} files ({names}); keep one")
            )
    return {s: found[s][0].resolve() for s in STEM_NAMES}


def _check_stems(label, stems, mix: AudioInfo, problems: list[_Problem]) -> bool:
    ok = True
    for s, path in stems.items():
        try:
            info = audio_info(path)
        except AudioError as err:
            problems.append(_Problem(label, f"stems.{s}", str(err), audio=True))
            ok = False
            continue
        if abs(info.duration - mix.duration) > STEM_DURATION_TOLERANCE_S:
            problems.append(
                _Problem(
                    label,
                    f"stems.{s}",
                    f"{path} lasts {info.duration:.3f} s but the mix lasts "
                    f"{mix.duration:.3f} s; stems must cover the whole track",
                )
            )
            ok = False
    return ok


def _find_file(root: Path, src: str) -> Path:
    """``root / src``; when that does not exist, the entry whose name is the same text in
    another Unicode normal form (macOS stores names decomposed: 'é' as 'e' + accent, while
    a tracklist typed elsewhere holds the composed form)."""
    path = root / src
    if path.exists():
        return path
    current = root
    for part in PurePosixPath(src).parts:
        nxt = current / part
        if not nxt.exists() and current.is_dir():
            want = unicodedata.normalize("NFC", part)
            nxt = next((p for p in current.iterdir()
                        if unicodedata.normalize("NFC", p.name) == want), nxt)
        current = nxt
    return current


def _resolve_track(root: Path, index: int, entry: TrackEntry, problems: list[_Problem]):
    label = _entry_label(index, {"id": entry.id})
    audio_path = _find_file(root, entry.src).resolve()
    if not inside(root, audio_path):  # a symlink out of the album
        problems.append(_Problem(
            label, "src", f"{entry.src!r} resolves to {audio_path}, outside the album folder "
            f"{root}; copy the file into the album instead of linking to it"))
        return None
    try:
        info = audio_info(audio_path)
    except AudioError as err:
        problems.append(_Problem(label, "src", str(err), audio=True))
        return None
    for k, m in enumerate(entry.markers):
        if m.time > info.duration:
            problems.append(
                _Problem(
                    label,
                    f"markers[{k}].time",
                    f"{m.time:g} s is past the end of the track ({info.duration:.3f} s)",
                )
            )
    for k, sec in enumerate(entry.sections):
        if sec.start >= info.duration:
            problems.append(
                _Problem(
                    label,
                    f"sections[{k}].start",
                    f"{sec.start:g} s ({sec.name!r}) is at or past the end of the track "
                    f"({info.duration:.3f} s)",
                )
            )
    stems = _find_stems(root, entry.id, label, problems)
    if stems is not None and not _check_stems(label, stems, info, problems):
        stems = None
    return Track(
        entry=entry,
        album_dir=root,
        audio_path=audio_path,
        duration=info.duration,
        sample_rate=info.sample_rate,
        channels=info.channels,
        frames=info.frames,
        format=info.format,
        stem_paths=stems,
    )


def load_album(root: str | Path, *, files_only: bool = False) -> Album:
    """Load the album in ``root`` (a folder, or its ``tracklist.json``).

    Reads ``tracklist.json`` if present (and not ``files_only``), else takes the folder's
    audio files in name order.
    Every track's audio header is read (duration, rate, channels; a truncated or non-audio
    file is caught here). Raises one :class:`ConfigError` (or :class:`AudioError` when only
    audio files are at fault) listing every problem found.
    """
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".json":
        tracklist: Path | None = root
        root = root.parent
    else:
        tracklist = root / TRACKLIST_NAME
    if not root.is_dir():
        raise ConfigError(root, None, "album folder not found (check the --album path)")
    root = root.resolve()
    if tracklist is not None and tracklist.exists() and not files_only:
        tracklist = tracklist.resolve()
        raw_entries = _read_tracklist(tracklist)
    else:
        tracklist = None
        raw_entries = _entries_from_folder(root)
    source = tracklist or root

    problems: list[_Problem] = []
    entries: list[tuple[int, TrackEntry]] = []
    first_index: dict[str, int] = {}
    for i, raw in enumerate(raw_entries):
        label = _entry_label(i, raw)
        if not isinstance(raw, dict):
            problems.append(_Problem(label, None, f"expected an object, got {shown(raw)}"))
            continue
        try:
            entry = TrackEntry.model_validate(raw)
        except ValidationError as err:
            problems.extend(_validation_problems(i, raw, err))
            continue
        unknown = sorted(set(raw) - TrackEntry.known_fields())
        if unknown:
            warnings.warn(
                f"{source}: {label}: unknown field(s) {', '.join(map(repr, unknown))} kept "
                f"but not used (known: {', '.join(sorted(TrackEntry.known_fields()))})",
                AlbumWarning,
                stacklevel=2,
            )
        folded = entry.id.casefold()
        if folded in first_index:
            j = first_index[folded]
            problems.append(
                _Problem(
                    label,
                    "id",
                    f"duplicate id {entry.id!r} (entry {j + 1} has "
                    f"{raw_entries[j]['id']!r}); ids must be unique, ignoring letter case",
                )
            )
            continue
        first_index[folded] = i
        entries.append((i, entry))

    tracks = []
    for i, entry in entries:
        track = _resolve_track(root, i, entry, problems)
        if track is not None:
            tracks.append(track)
    _raise_problems(source, problems)
    album = Album(root=root, tracks=tuple(tracks), tracklist=tracklist)
    log.debug("loaded album %s: %d tracks, %.1f s", root, len(album), album.total_duration)
    return album
