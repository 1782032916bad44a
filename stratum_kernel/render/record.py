"""A run's record, ``meta.json``: one typed model, written and read through it.

``render_album`` writes it when a run is finished; ``stratum verify``, the papermill run
record, ``--resume`` of a finished run and the studio read it back through
:meth:`RunRecord.load`, which turns a damaged or edited file into a
:class:`~stratum_kernel.core.errors.RenderError` naming the field (never a ``KeyError``).

What it holds: the resolved config, library versions, the model's sha256, the decoder
provider, the x264 settings, per track its seeds, preset and post-FX as resolved, the audio
(source file's sha256, trim, gain), per chunk the sha256 of the frames before encoding (the
determinism proof) and of the frames decoded back from the film (what ``verify``
re-checks), the film's sha256 and stream facts, previews and timings; then the album film.
The fields ``verify`` needs are required; the rest have defaults, so an older or partial
record still reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stratum_kernel.core.errors import ConfigError, RenderError
from stratum_kernel.core.paths import write_text_atomic
from stratum_kernel.core.schema import read_json, validation_error

#: meta.json's format. 2: decoded-frame digests are over the yuv420p planes (1: over RGB).
RUN_FORMAT = "stratum-run/2"


class _Record(BaseModel):
    # extra="allow": a record written by a newer version keeps what this one does not know
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class ChunkRecord(_Record):
    index: int = Field(ge=0)
    start: int = Field(ge=0)
    stop: int = Field(ge=0)
    frames_sha256: str = ""
    decoded_sha256: str
    worker: str | None = None


class FilmRecord(_Record):
    file: str
    sha256: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    video_frames: int | None = None
    audio_duration: float | None = None


class AudioRecord(_Record):
    """The film's soundtrack: the source file and how it was trimmed and levelled."""

    file: str = ""
    sha256: str = ""
    start: float = 0.0
    end: float | None = None
    sample_rate: int | None = None
    samples: int | None = None
    duration: float | None = None
    gain_db: float = 0.0
    loudness_lufs: float | None = None
    target_lufs: float | None = None
    mixer: dict[str, Any] | None = None
    mixed_sha256: str | None = None
    source_channels: int | None = None
    downmix: str = "none"  # how a surround (or mono) source became the film's channels


class TrackTiming(_Record):
    """Seconds spent on a track in the session that finished it (not part of the output)."""

    frames_rendered: int = 0
    frames_seconds: float = 0.0
    finish_seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames_rendered / self.frames_seconds if self.frames_seconds else 0.0


class TrackRecord(_Record):
    id: str
    fps: float = Field(gt=0)
    frames: int = Field(ge=0)
    film: FilmRecord
    start: float = 0.0
    end: float | None = None
    duration: float = 0.0
    audio: AudioRecord = Field(default_factory=AudioRecord)
    seed: int | None = None
    postfx_seed: int | None = None
    preset: str = ""
    preset_choice: dict[str, Any] | None = None  # how: configured where, or chosen and why
    preset_resolved: dict[str, Any] = Field(default_factory=dict)
    postfx: dict[str, Any] = Field(default_factory=dict)
    sections: list[dict[str, Any]] = Field(default_factory=list)  # looks after the first
    controller_notes: list[str] = Field(default_factory=list)
    chunk_frames: int | None = None
    chunks: list[ChunkRecord] = Field(default_factory=list)
    frames_sha256: str = ""
    decoded_sha256: str | None = None
    previews: list[str] = Field(default_factory=list)
    provider: str = ""
    mixer: dict[str, Any] | None = None
    timing: TrackTiming | None = None


class AlbumRecord(_Record):
    file: str = "album.mp4"
    sha256: str
    frames: int = Field(default=0, ge=0)
    duration: float = 0.0


class RunRecord(_Record):
    """The whole of ``meta.json``."""

    format: str
    run_id: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)  # what loading the config decided
    versions: dict[str, str] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    decoder: dict[str, Any] = Field(default_factory=dict)
    encode: dict[str, Any] = Field(default_factory=dict)
    seeds: dict[str, int | None] = Field(default_factory=dict)
    tracks: list[TrackRecord] = Field(default_factory=list)
    album: AlbumRecord | None = None
    mixer: dict[str, Any] | None = None
    distributed: dict[str, Any] | None = None

    @field_validator("format")
    @classmethod
    def _known(cls, v: str) -> str:
        if v == "stratum-run/1":
            raise ValueError(f"is {v!r}, from an older stratum (its decoded-frame digests "
                             "are over RGB, today's over the decoded yuv420p planes); "
                             "render the run again to verify it")
        if v != RUN_FORMAT:
            raise ValueError(f"is {v!r}, not {RUN_FORMAT!r}: not a stratum run record")
        return v

    def track(self, track_id: str) -> TrackRecord:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise KeyError(track_id)

    def write(self, path: str | Path) -> Path:
        """Write as sorted, indented JSON, atomically."""
        data = self.model_dump(mode="json", exclude_none=False)
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read a ``meta.json``; a RenderError naming the file and field when it is not a
        readable run record."""
        path = Path(path)
        if not path.is_file():
            raise RenderError(f"{path}: not found; is {path.parent} a finished stratum run "
                              "folder?")
        try:
            doc = read_json(path, "run record")
        except ConfigError as err:
            raise RenderError(str(err)) from None
        if not isinstance(doc, dict):
            raise RenderError(f"{path}: expected a JSON object, got {type(doc).__name__}")
        try:
            return cls.model_validate(doc)
        except ValidationError as err:
            raise RenderError(
                f"{validation_error(path, err, cls)} (the file was edited or damaged)"
            ) from None
