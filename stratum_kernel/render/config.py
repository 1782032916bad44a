"""``render.yaml``: one typed :class:`RenderConfig` per run, validated once at the edge.

Layers, lowest first: the model defaults, ``render.yaml``, then overrides (a dict of dotted
keys from the command line or a notebook: ``{"frame_rate": 30, "controller.preset":
"pulse", "tracks": ["a", "b"]}``). Every problem becomes a
:class:`~stratum_kernel.core.errors.ConfigError` naming the file and the field
(``tracks[1].trim.end``), the value and the fix; a typo'd key names the key it was probably
meant to be.

Relative paths (album_dir, model_dir, output_root, preset files, track ``src``) resolve
against the folder of the YAML file, or the project root when there is none; a path given
as an override from the command line is relative to where the user stands.

A config's ``tracks`` list describes the album the same file names: rendering another album
(``--album``, the notebook's ``album_dir``, ``make render ALBUM=...``) sets that list aside and
renders every track of the other album with the album-wide settings (the run record says
so). ``controller.preset: auto`` then gives each track the preset that suits its analysis.

Presets and post-FX merge per track (see :meth:`RenderConfig.preset_for` and
:meth:`RenderConfig.postfx_for`): preset file → ``controller`` settings of render.yaml →
the track's ``preset_overrides``; post-FX defaults → the preset's ``postfx`` → the
``postfx`` keys set in render.yaml → the track's ``postfx``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stratum_kernel.audio.files import audio_info
from stratum_kernel.audio.mixer import MixerRenderSpec
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import project_root, safe_name
from stratum_kernel.core.schema import StrictModel, read_yaml, validation_error
from stratum_kernel.film.encode import EncodeParams, check_aac_rate
from stratum_kernel.motion.choice import AUTO
from stratum_kernel.motion.presets import (
    Preset,
    check_subdivision,
    deep_merge,
    load_preset,
    merge_preset_layers,
    preset_path,
)
from stratum_kernel.picture.decoder import DecoderParams
from stratum_kernel.picture.postfx import PostFXParams
from stratum_kernel.render.overrides import apply_overrides

MIN_SIZE, MAX_SIZE = (64, 64), (7680, 4320)

log = logging.getLogger(__name__)


# heights that are not multiples of 16 but that every encoder and player handles
STANDARD_HEIGHTS = frozenset({1080})


def parse_resolution(value: Any) -> tuple[int, int]:
    """``'1280x720'``, ``[1280, 720]`` or ``(1280, 720)`` → ``(1280, 720)``; checks that
    both sides are divisible by 16 and within 64×64 … 7680×4320.

    One exception: a height of 1080 (1920×1080 is the most common film size). H.264
    codes it as 1088 rows with a 8-row crop, so it costs nothing and people expect it."""
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(
                f"write the resolution as WIDTHxHEIGHT, e.g. '1280x720', not {value!r}"
            )
        w, h = (int(p) for p in parts)
    elif isinstance(value, Sequence) and len(value) == 2:
        try:
            w, h = (int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError("resolution needs two integers [width, height]") from None
        if [w, h] != list(value):
            raise ValueError("resolution needs two integers [width, height]")
    else:
        raise ValueError("resolution is [width, height] or 'WIDTHxHEIGHT'")
    for side, v, lo, hi in (("width", w, MIN_SIZE[0], MAX_SIZE[0]),
                            ("height", h, MIN_SIZE[1], MAX_SIZE[1])):
        if not lo <= v <= hi:
            raise ValueError(f"{side} {v} is outside {lo}..{hi}")
        if v % 16 and not (side == "height" and v in STANDARD_HEIGHTS):
            down, up = v - v % 16, v - v % 16 + 16
            raise ValueError(
                f"{side} {v} is not divisible by 16 (the codec works in 16-pixel blocks); "
                f"use {down} or {up}"
            )
    return w, h


class AudioParams(StrictModel):
    """The audio written into the films: sample rate (Hz) and an integrated-loudness target
    in LUFS (None = keep the source level)."""

    sample_rate: int = Field(default=48000, ge=8000, le=192000)
    normalization: float | None = Field(default=None, ge=-70.0, le=-1.0)

    @field_validator("sample_rate")
    @classmethod
    def _aac(cls, v: int) -> int:
        return check_aac_rate(v)


class TempoSyncOverride(StrictModel):
    """render.yaml's ``controller.tempo_sync``: overrides the preset's when given."""

    enabled: bool | None = None
    subdivision: float | None = None

    @field_validator("subdivision")
    @classmethod
    def _sub(cls, v: float | None) -> float | None:
        return None if v is None else check_subdivision(v)


class ControllerParams(StrictModel):
    """Album-wide controller settings.

    preset: a preset name (see ``presets.list_presets()``), a YAML path, or ``auto``: each
    track gets the preset that suits its analysis best (``motion/choice.py``).
    smoothing_alpha / tempo_sync: when set, override every track's preset.
    wander_seed: seed of the latent wander (None = the global seed).
    preset_overrides: a partial preset dict merged over every track's preset.
    """

    preset: str = "default"
    smoothing_alpha: float | None = Field(default=None, ge=0.0, lt=1.0)
    wander_seed: int | None = Field(default=None, ge=0)
    tempo_sync: TempoSyncOverride = Field(default_factory=TempoSyncOverride)
    preset_overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str, info: ValidationInfo) -> str:
        return check_preset_name(v, info)


class RenderSettings(StrictModel):
    """chunk_frames: frames per resumable chunk; duration: render at most this many seconds
    per track (previews; None = whole tracks); keep_frames: also write PNG frames."""

    chunk_frames: int = Field(default=240, ge=1, le=100_000)
    duration: float | None = Field(default=None, gt=0.0)
    keep_frames: bool = False


class TrimParams(StrictModel):
    """Seconds of the source to use; end None = to the end of the track."""

    start: float = Field(default=0.0, ge=0.0)
    end: float | None = Field(default=None, gt=0.0)

    @field_validator("end")
    @classmethod
    def _after_start(cls, v: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start")
        if v is not None and start is not None and v <= start:
            raise ValueError(f"trim end {v} must be after trim start {start}")
        return v


class SectionConfig(StrictModel):
    """A section of a track with its own look, from one of its markers on: ``marker`` (its
    number, 1 = the first marker, or its label) or ``at`` (seconds into the track); its
    ``preset`` (default: the track's), ``preset_overrides`` and ``postfx`` layered like a
    track's; reached by a crossfade of ``crossfade_beats`` beats (0 = a cut)."""

    marker: int | str | None = None
    at: float | None = Field(default=None, ge=0.0)
    preset: str | None = None
    preset_overrides: dict[str, Any] = Field(default_factory=dict)
    postfx: dict[str, Any] = Field(default_factory=dict)
    crossfade_beats: float = Field(default=2.0, ge=0.0, le=64.0)

    @model_validator(mode="after")
    def _where(self) -> SectionConfig:
        if (self.marker is None) == (self.at is None):
            raise ValueError("give the section's start as either marker (its number or "
                             "label) or at (seconds)")
        if isinstance(self.marker, int) and self.marker < 1:
            raise ValueError(f"marker {self.marker}: markers are numbered from 1")
        return self

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else check_preset_name(v, info)


class TrackConfig(StrictModel):
    """One track's settings. ``src`` replaces the tracklist's audio file (relative to the
    album folder); ``preset`` replaces the album preset; ``seed`` the global seed;
    ``sections``: looks of their own from some of its markers on (``render/sections.py``)."""

    id: str
    src: str | None = None
    preset: str | None = None
    trim: TrimParams = Field(default_factory=TrimParams)
    seed: int | None = Field(default=None, ge=0)
    preset_overrides: dict[str, Any] = Field(default_factory=dict)
    postfx: dict[str, Any] = Field(default_factory=dict)
    mixer: MixerRenderSpec | None = None
    sections: list[SectionConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    @field_validator("id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        return safe_name(v, "track id")

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else check_preset_name(v, info)


def check_preset_name(name: str, info: ValidationInfo) -> str:
    """A preset must exist (by name, or as a file relative to the config's folder), or be
    ``auto`` (chosen per track from its analysis)."""
    if name == AUTO:
        return name
    base = (info.context or {}).get("base_dir")
    try:
        preset_path(name, base_dir=Path(base) if base else project_root())
    except ConfigError as err:
        raise ValueError(err.detail) from None
    return name


def check_scheduler(value: str) -> str:
    """A Dask scheduler to render on: ``'tcp://host:8786'`` (also ``tls://``, ``ws://``,
    ``wss://``, ``inproc://``), or ``'local'`` / ``'local:N'`` for a LocalCluster of N
    worker processes started for the run."""
    v = value.strip()
    if re.fullmatch(r"local(:[1-9][0-9]{0,2})?", v):
        return v
    if re.fullmatch(r"(tcp|tls|ws|wss|inproc|ucx)://[^\s/]+(:[0-9]{1,5})?/?", v):
        return v
    raise ValueError(
        f"scheduler {value!r} is neither a Dask scheduler address ('tcp://host:8786') nor "
        "'local' / 'local:N' (a LocalCluster of N worker processes)"
    )


class RenderConfig(StrictModel):
    """The whole of render.yaml; see the module docstring for layering and paths."""

    output_root: str = "renders"
    run_id: str | None = None
    album_dir: str = "album"
    model_dir: str = "models"
    frame_rate: float = Field(default=24.0, ge=24.0, le=120.0)
    resolution: tuple[int, int] = (1280, 720)
    seed: int = Field(default=0, ge=0)
    audio: AudioParams = Field(default_factory=AudioParams)
    controller: ControllerParams = Field(default_factory=ControllerParams)
    decoder: DecoderParams = Field(default_factory=DecoderParams)
    postfx: PostFXParams = Field(default_factory=PostFXParams)
    encode: EncodeParams = Field(default_factory=EncodeParams, validate_default=True)
    render: RenderSettings = Field(default_factory=RenderSettings)
    tracks: list[TrackConfig] = Field(default_factory=list)
    mixer: MixerRenderSpec | None = None
    scheduler: str | None = None
    shared_storage: bool | None = None

    _base_dir: Path = PrivateAttr(default_factory=project_root)
    _source: str | None = PrivateAttr(default=None)
    _notes: list[str] = PrivateAttr(default_factory=list)

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, v: Any) -> tuple[int, int]:
        return parse_resolution(v)

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str | None) -> str | None:
        return None if v is None else check_scheduler(v)

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, v: str | None) -> str | None:
        return None if v is None else safe_name(v, "run id")

    @field_validator("tracks")
    @classmethod
    def _unique(cls, v: list[TrackConfig]) -> list[TrackConfig]:
        seen: dict[str, int] = {}
        for i, t in enumerate(v):
            if t.id in seen:
                raise ValueError(f"track id {t.id!r} at tracks[{i}] repeats tracks[{seen[t.id]}]")
            seen[t.id] = i
        return v

    @field_validator("encode")
    @classmethod
    def _audio_rate(cls, v: EncodeParams, info: ValidationInfo) -> EncodeParams:
        # audio.sample_rate is the one place to set it; encode follows unless set too.
        audio = info.data.get("audio")
        if audio is None:
            return v
        if "audio_sample_rate" in v.model_fields_set:
            if "sample_rate" in audio.model_fields_set and (
                v.audio_sample_rate != audio.sample_rate
            ):
                raise ValueError(
                    f"audio_sample_rate {v.audio_sample_rate} contradicts audio.sample_rate "
                    f"{audio.sample_rate}; set only audio.sample_rate"
                )
            return v
        out = v.model_copy(update={"audio_sample_rate": audio.sample_rate})
        out.model_fields_set.discard("audio_sample_rate")
        return out

    # --- construction --------------------------------------------------------------

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str | Path | None = None,
        base_dir: str | Path | None = None,
    ) -> RenderConfig:
        """Validate a config dict; errors become one ConfigError naming each field."""
        base = Path(base_dir).resolve() if base_dir is not None else project_root()
        try:
            cfg = cls.model_validate(dict(data), context={"base_dir": str(base)})
        except ValidationError as err:
            raise validation_error(source or "render config", err, RenderConfig) from None
        cfg._base_dir = base
        cfg._source = str(source) if source is not None else None
        return cfg

    # --- paths ---------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """The folder relative paths resolve against."""
        return self._base_dir

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def notes(self) -> list[str]:
        """What loading decided that the user should know (e.g. a track list set aside)."""
        return list(self._notes)

    def resolve(self, path: str | os.PathLike) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    @property
    def album_path(self) -> Path:
        return self.resolve(self.album_dir)

    @property
    def model_path(self) -> Path:
        return self.resolve(self.model_dir)

    @property
    def output_path(self) -> Path:
        return self.resolve(self.output_root)

    # --- per-track views -----------------------------------------------------------

    def track_config(self, track_id: str) -> TrackConfig:
        """The track's settings (a bare entry when render.yaml does not list it)."""
        for t in self.tracks:
            if t.id == track_id:
                return t
        return TrackConfig(id=track_id)

    def track_ids(self, album: Any) -> list[str]:
        """The tracks to render: render.yaml's list, or every track of the album."""
        if self.tracks:
            return [t.id for t in self.tracks]
        return [track_id_of(t) for t in album.tracks]

    def seed_for(self, track_id: str, purpose: str = "controller") -> int:
        """The seed of a track: its own ``seed``, else (for the controller)
        ``controller.wander_seed``, else the global seed."""
        t = self.track_config(track_id)
        if t.seed is not None:
            return t.seed
        if purpose == "controller" and self.controller.wander_seed is not None:
            return self.controller.wander_seed
        return self.seed

    def time_span(self, track_id: str, track_duration: float) -> tuple[float, float]:
        """(start, end) in track seconds to render: the trim, clipped to the track, then
        cut to ``render.duration`` seconds when that is set."""
        trim = self.track_config(track_id).trim
        start = min(float(trim.start), track_duration)
        end = track_duration if trim.end is None else min(float(trim.end), track_duration)
        if self.render.duration is not None:
            end = min(end, start + float(self.render.duration))
        return start, end

    def track_audio(self, album: Any, track_id: str) -> tuple[Path, float]:
        """(audio file, its duration in seconds) of a track: the tracklist's file, or the
        ``src`` render.yaml gives it (relative to the album folder)."""
        track = album.track(track_id)
        src = self.track_config(track_id).src
        if src is None:
            return Path(track.audio_path), float(track.duration)
        path = Path(src) if Path(src).is_absolute() else Path(album.root) / src
        return path, float(audio_info(path).duration)

    def preset_name_for(self, track_id: str) -> str:
        """The track's preset as configured: its own, else the album's (may be ``auto``)."""
        return self.track_config(track_id).preset or self.controller.preset

    def preset_origin(self, track_id: str) -> str:
        """Where the track's configured preset comes from, for the run record."""
        if self.track_config(track_id).preset:
            return f"tracks[{track_id}].preset"
        return "controller.preset"

    def preset_layers(self, track_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (album, track) layers render.yaml puts over a track's preset: the
        ``controller`` settings (``preset_overrides``, ``smoothing_alpha``, ``tempo_sync``),
        then the track's ``preset_overrides``."""
        album_layer: dict[str, Any] = dict(self.controller.preset_overrides)
        if self.controller.smoothing_alpha is not None:
            album_layer = deep_merge(
                album_layer, {"motion": {"smoothing_alpha": self.controller.smoothing_alpha}}
            )
        ts = self.controller.tempo_sync.model_dump(exclude_none=True)
        if ts:
            album_layer = deep_merge(album_layer, {"tempo_sync": ts})
        return album_layer, dict(self.track_config(track_id).preset_overrides)

    def preset_for(self, track_id: str, base: Preset | str | None = None) -> Preset:
        """The merged preset of a track: ``base`` (a Preset, or a preset name or file;
        default: the track's configured preset) → :meth:`preset_layers`."""
        if isinstance(base, Preset):
            preset, name = base, base.name
        else:
            name = base or self.preset_name_for(track_id)
            if name == AUTO:
                raise ConfigError(self._source or "render config", "controller.preset",
                                  f"track {track_id!r}: 'auto' is chosen from the track's "
                                  "analysis; resolve it with RenderContext.job")
            preset = load_preset(name, base_dir=self._base_dir)
        album_layer, track_layer = self.preset_layers(track_id)
        where = f"{self._source or 'render config'} (preset {name!r} for track {track_id!r})"
        return merge_preset_layers(preset, album_layer, track_layer, source=where)

    def postfx_for(self, track_id: str, preset: Preset | None = None) -> PostFXParams:
        """Post-FX of a track: defaults → the preset's ``postfx`` → the keys render.yaml
        sets under ``postfx`` → the track's ``postfx``."""
        preset = preset if preset is not None else self.preset_for(track_id)
        merged = deep_merge(preset.postfx, self.postfx.model_dump(mode="json", exclude_unset=True))
        merged = deep_merge(merged, self.track_config(track_id).postfx)
        try:
            return PostFXParams.model_validate(merged)
        except ValidationError as err:
            raise validation_error(
                f"{self._source or 'render config'} (post-FX for track {track_id!r})",
                err, PostFXParams,
            ) from None

    def mixer_for(self, track_id: str) -> MixerRenderSpec | None:
        """The track's mixer spec (``tracks[i].mixer``), else the run's ``mixer``."""
        tc = self.track_config(track_id)
        return tc.mixer if tc.mixer is not None else self.mixer

    def to_meta(self) -> dict[str, Any]:
        """A JSON-able dict of the resolved config for meta.json (paths resolved)."""
        data = self.model_dump(mode="json")
        data["resolved_paths"] = {
            "base_dir": str(self._base_dir),
            "album_dir": str(self.album_path),
            "model_dir": str(self.model_path),
            "output_root": str(self.output_path),
        }
        data["source"] = self._source
        return data


# --- loading -------------------------------------------------------------------------


def load_render_config(
    path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None
) -> RenderConfig:
    """Read render.yaml (None = all defaults, paths relative to the project root), apply
    dotted ``overrides`` and validate. Raises ConfigError naming the file, line (for YAML
    syntax errors) or field."""
    if path is None:
        raw: Any = {}
        source: str | Path = "render config (defaults)"
        base = project_root()
    else:
        p = Path(path).expanduser().resolve()
        raw = read_yaml(p, "render config")
        source, base = p, p.parent
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(
                p, None, "render.yaml must be a mapping of sections (frame_rate: ...)"
            )
    raw, notes = _tracks_for_this_album(raw, overrides, base)
    data = apply_overrides(raw, overrides, known=list(RenderConfig.model_fields))
    cfg = RenderConfig.from_dict(data, source=source, base_dir=base)
    cfg._notes = notes
    return cfg


def _tracks_for_this_album(
    raw: dict[str, Any], overrides: Mapping[str, Any] | None, base: Path
) -> tuple[dict[str, Any], list[str]]:
    """The rule for a config's per-track list when another album is rendered: the list
    describes the album the same file names (``album_dir``), so when ``--album`` (or the
    notebook's ``album_dir``) points elsewhere, the list is set aside and every track of
    that album renders with the album-wide settings — noted in the run record. A config
    written for the album it names keeps its list, and an id there that the album lacks is
    an error naming the closest match."""
    given = (overrides or {}).get("album_dir")
    tracks = raw.get("tracks")
    if given is None or not tracks or "tracks" in (overrides or {}):
        return raw, []
    own = (base / Path(str(raw.get("album_dir", "album"))).expanduser()).resolve()
    other = (base / Path(str(given)).expanduser()).resolve()
    if other == own:
        return raw, []
    ids = [t.get("id") if isinstance(t, dict) else t for t in tracks]
    note = (f"render.yaml's track list describes the album {own} ({', '.join(map(str, ids))});"
            f" rendering every track of {other} with the album-wide settings instead")
    log.info(note)
    return {**raw, "tracks": []}, [note]


def track_id_of(track: Any) -> str:
    """The id of an album track (a Track, or anything with ``id`` or ``entry.id``)."""
    tid = getattr(track, "id", None)
    if tid is None:
        tid = track.entry.id
    return str(tid)
