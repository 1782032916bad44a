"""The stem mixer: per-stem gain, mute and solo, and what they do to the sound and the picture.

A :class:`MixerState` holds one :class:`StemChannel` per stem (``gain_db`` in −60 … +12 dB,
``mute``, ``solo``) and a master gain. Which stems sound follows the usual mixing-desk rule:

- with no stem soloed, every stem that is not muted sounds;
- as soon as one stem is soloed, only soloed stems sound (solo wins over the others'
  mute switches, which no longer matter);
- a stem that is both soloed and muted is silent (mute always silences its own stem).

A sounding stem is scaled by ``10 ** (gain_db / 20)``; −60 dB is the fader's floor (0.001,
not silence — use mute for silence). :func:`mix` sums the scaled stems times the master
gain; at unity (every fader at 0 dB, nothing muted or soloed) it returns the plain sum of
the stems, which for bundled stems is the track's mix.

The state can steer a render (:class:`MixerRenderSpec`): ``applies_to='reactivity'`` makes
the picture ignore (or weigh) stems while the soundtrack keeps the original mix;
``'soundtrack'`` changes only the audio of the film (an instrumental film that still moves
with the vocals); ``'both'`` does both. The render orchestrator calls
:func:`reactive_stem_weights` / :func:`apply_reactive_weights` for the picture and
:func:`soundtrack_mix` for the audio, and writes :meth:`MixerRenderSpec.to_meta` into
meta.json.

Exports (:func:`export_mix_wav`, :func:`export_stems_zip`) apply the same gains, guard
against clipping (integer formats are clipped, never wrapped, and the report says how many
samples were) and write atomically. The browser mixer (``studio/mixer_widget.py`` with
``static/mixer.js``) implements the same rule in JavaScript.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stratum_kernel import __version__
from stratum_kernel.core.errors import AudioError, ConfigError
from stratum_kernel.core.paths import write_bytes_atomic
from stratum_kernel.core.schema import read_json, validation_error
from stratum_kernel.core.timeline import STEM_NAMES, FrameFeatures

log = logging.getLogger(__name__)

GAIN_DB_MIN, GAIN_DB_MAX = -60.0, 12.0
# Levels below this are reported as this many dBFS (silence has no finite level).
SILENCE_DBFS = -120.0
MIXER_STATE_FORMAT = "stratum-mixer/1"
Stems = Mapping[str, np.ndarray]


def db_to_linear(db: float) -> float:
    """Amplitude factor of ``db`` decibels: ``10 ** (db / 20)`` (0 dB → 1.0, −6 dB → 0.501)."""
    return float(10.0 ** (float(db) / 20.0))


def linear_to_db(gain: float) -> float:
    """Decibels of an amplitude factor; 0 (or below) gives ``-inf``."""
    return float(20.0 * math.log10(gain)) if gain > 0 else float("-inf")


def level_dbfs(peak_or_rms: float) -> float:
    """A level in dBFS for display and JSON, with silence at :data:`SILENCE_DBFS`."""
    return max(SILENCE_DBFS, linear_to_db(peak_or_rms)) if peak_or_rms > 0 else SILENCE_DBFS


# --------------------------------------------------------------------------- state


class StemChannel(BaseModel):
    """One stem's strip: ``gain_db`` in −60 … +12 dB, ``mute``, ``solo``.

    A plain number stands for its gain (``vocals: -6`` in YAML is ``{gain_db: -6}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    gain_db: float = Field(0.0, ge=GAIN_DB_MIN, le=GAIN_DB_MAX)
    mute: bool = False
    solo: bool = False

    @model_validator(mode="before")
    @classmethod
    def _number_is_gain(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"gain_db": value}
        return value


class MixerState(BaseModel):
    """The whole mixer: one :class:`StemChannel` per stem of ``STEM_NAMES`` and a master gain.

    Unknown keys are refused (a typo such as ``vocal`` names the field). JSON form:
    ``{"drums": {"gain_db": 0.0, "mute": false, "solo": false}, ..., "master_db": 0.0}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    drums: StemChannel = StemChannel()
    bass: StemChannel = StemChannel()
    other: StemChannel = StemChannel()
    vocals: StemChannel = StemChannel()
    master_db: float = Field(0.0, ge=GAIN_DB_MIN, le=GAIN_DB_MAX)

    def channel(self, stem: str) -> StemChannel:
        """The strip of ``stem``; a :class:`ConfigError` for a name not in ``STEM_NAMES``."""
        if stem not in STEM_NAMES:
            raise ConfigError(
                None, "stem", f"unknown stem {stem!r}; the stems are {', '.join(STEM_NAMES)}"
            )
        return getattr(self, stem)

    def channels(self) -> dict[str, StemChannel]:
        """{stem: StemChannel} in ``STEM_NAMES`` order."""
        return {s: getattr(self, s) for s in STEM_NAMES}

    def with_stem(self, stem: str, **changes: Any) -> MixerState:
        """A copy with ``stem``'s strip changed (``gain_db=-3``, ``mute=True``, ...), validated."""
        merged = {**self.channel(stem).model_dump(), **changes}
        return MixerState.model_validate({**self.model_dump(), stem: merged})

    @property
    def master_gain(self) -> float:
        return db_to_linear(self.master_db)

    @property
    def is_unity(self) -> bool:
        """True when the mixer changes nothing: every fader and the master at 0 dB, no
        mute, no solo."""
        return self.master_db == 0.0 and all(
            c.gain_db == 0.0 and not c.mute and not c.solo for c in self.channels().values()
        )

    @classmethod
    def parse(cls, data: Any, source: str | Path | None = None) -> MixerState:
        """Validate ``data`` (a dict, or a MixerState) with a :class:`ConfigError` naming
        ``source`` and the field on failure."""
        if isinstance(data, MixerState):
            return data
        try:
            return cls.model_validate(data if data is not None else {})
        except ValidationError as err:
            raise validation_error(source or "mixer state", err) from None


def sounding(state: MixerState) -> dict[str, bool]:
    """{stem: True when it is heard}: the solo/mute rule of the module docstring."""
    chans = state.channels()
    any_solo = any(c.solo for c in chans.values())
    return {s: (not c.mute) and (c.solo or not any_solo) for s, c in chans.items()}


def effective_gains(state: MixerState) -> dict[str, float]:
    """{stem: linear amplitude factor} after mute, solo and fader; 0.0 for a silent stem.

    The master gain is not included (see :attr:`MixerState.master_gain`), so these are also
    the picture's per-stem weights.
    """
    on = sounding(state)
    return {s: db_to_linear(c.gain_db) if on[s] else 0.0 for s, c in state.channels().items()}


def _check_stems(stems: Stems) -> tuple[int, int]:
    """Validate a stem mapping; returns (channels, samples) of the output."""
    if not stems:
        raise ValueError("no stems given")
    unknown = [s for s in stems if s not in STEM_NAMES]
    if unknown:
        raise ValueError(f"unknown stem(s) {unknown}; the stems are {', '.join(STEM_NAMES)}")
    shapes = {s: np.shape(y) for s, y in stems.items()}
    bad = {s: sh for s, sh in shapes.items() if len(sh) != 2 or sh[0] < 1}
    if bad:
        raise ValueError(f"stems must be float [channels, samples]; got shapes {bad}")
    chans = {sh[0] for sh in shapes.values()}
    if len(chans - {1}) > 1:
        raise AudioError(
            f"stems have different channel counts {shapes}; give every stem the same "
            "number of channels (mono stems are spread to all channels)"
        )
    return max(chans), max(sh[1] for sh in shapes.values())


def _fit(y: np.ndarray, channels: int, samples: int) -> np.ndarray:
    """float32 [channels, samples]: mono spread to every channel, short stems zero-padded."""
    y = np.asarray(y, dtype=np.float32)
    if y.shape[0] != channels:
        y = np.repeat(y, channels, axis=0)
    if y.shape[1] < samples:
        y = np.pad(y, ((0, 0), (0, samples - y.shape[1])))
    return y


def apply_gains(stems: Stems, state: MixerState) -> dict[str, np.ndarray]:
    """Each stem times its effective gain and the master gain: {stem: float32 [ch, n]}.

    All outputs share one shape (mono stems spread, short stems zero-padded to the longest),
    and they sum to :func:`mix`.
    """
    channels, samples = _check_stems(stems)
    gains = effective_gains(state)
    master = state.master_gain
    out = {}
    for s, y in stems.items():
        g = np.float32(gains[s] * master)
        out[s] = _fit(y, channels, samples) * g
    return out


def mix(stems: Stems, state: MixerState | None = None) -> np.ndarray:
    """The mixed audio: float32 [channels, samples], the sum of :func:`apply_gains`.

    With ``state`` None or at unity this is the plain sum of the stems, in ``STEM_NAMES``
    order (so stems that sum to a mix give that mix back). May exceed [-1, 1] when faders
    are raised; exports guard against clipping.
    """
    state = state or MixerState()
    scaled = apply_gains(stems, state)
    out = None
    for s in STEM_NAMES:
        if s in scaled:
            out = scaled[s].copy() if out is None else out + scaled[s]
    return out


@dataclass(frozen=True)
class StemLevel:
    """A stem's level over the whole track: peak and RMS in dBFS (all channels together)."""

    peak_dbfs: float
    rms_dbfs: float


def stem_levels(stems: Stems) -> dict[str, StemLevel]:
    """{stem: StemLevel}: shows in the mixer beside each fader, so separated and bundled
    stems compare on one scale (dBFS of the stem as it sits in the mix)."""
    out = {}
    for s, y in stems.items():
        flat = np.asarray(y, dtype=np.float32).ravel()
        if not flat.size:
            out[s] = StemLevel(SILENCE_DBFS, SILENCE_DBFS)
            continue
        peak = max(float(flat.max()), -float(flat.min()))
        # the dot product accumulates in float32 pairwise blocks; float64 for the division
        rms = math.sqrt(float(np.dot(flat, flat)) / flat.size)
        out[s] = StemLevel(level_dbfs(peak), level_dbfs(rms))
    return out


# --------------------------------------------------------------------------- renders

MixerTarget = Literal["reactivity", "soundtrack", "both"]


class MixerRenderSpec(BaseModel):
    """How a mixer state steers a render: ``state`` and what it ``applies_to``.

    - ``reactivity``: the picture follows the mixed stems (a muted stem moves nothing);
      the film's soundtrack is the original mix.
    - ``soundtrack``: the film's audio is the mix of the stems; the picture follows the
      original stems.
    - ``both``: both.

    In YAML the state may be written flat: ``{applies_to: soundtrack, vocals: {mute: true}}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: MixerState = MixerState()
    applies_to: MixerTarget = "reactivity"

    @model_validator(mode="before")
    @classmethod
    def _flat_state(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            flat = {k: v for k, v in value.items() if k in MixerState.model_fields}
            if flat:
                rest = {k: v for k, v in value.items() if k not in flat}
                state = dict(rest.get("state") or {})
                return {**rest, "state": {**state, **flat}}
        return value

    @property
    def affects_reactivity(self) -> bool:
        return self.applies_to in ("reactivity", "both") and not self.state.is_unity

    @property
    def affects_soundtrack(self) -> bool:
        return self.applies_to in ("soundtrack", "both") and not self.state.is_unity

    def to_meta(self) -> dict[str, Any]:
        """The JSON-ready record for meta.json: the state, its target, and what it did."""
        return {
            "applies_to": self.applies_to,
            "state": self.state.model_dump(mode="json"),
            "reactive_weights": reactive_stem_weights(self),
            "soundtrack_gains": (
                {s: g * self.state.master_gain for s, g in effective_gains(self.state).items()}
                if self.affects_soundtrack
                else None
            ),
        }


def reactive_stem_weights(spec: MixerRenderSpec) -> dict[str, float]:
    """{stem: weight} for the picture: the effective gains when the spec applies to
    reactivity, else 1.0 for every stem. Multiply each stem's feature series by it."""
    if spec.affects_reactivity:
        return effective_gains(spec.state)
    return {s: 1.0 for s in STEM_NAMES}


def apply_reactive_weights(ff: FrameFeatures, spec: MixerRenderSpec) -> FrameFeatures:
    """``ff`` with every per-stem series (``envelope``, ``onset``) scaled by
    :func:`reactive_stem_weights` and clipped to [0, 1]; unchanged when the spec leaves
    the picture alone. Mix-level features are untouched (for those, analyse
    :func:`reactive_mix` instead of the track's mix)."""
    if not spec.affects_reactivity:
        return ff
    weights = reactive_stem_weights(spec)
    stems = {
        s: {k: np.clip(v * np.float32(weights.get(s, 1.0)), 0.0, 1.0).astype(np.float32)
            for k, v in series.items()}
        for s, series in ff.stems.items()
    }
    return dataclasses.replace(ff, stems=stems)


def reactive_mix(stems: Stems, spec: MixerRenderSpec) -> np.ndarray | None:
    """The audio the picture should be analysed from (float32 [ch, n]), or None when the
    spec leaves the picture on the original mix."""
    return mix(stems, spec.state) if spec.affects_reactivity else None


def soundtrack_mix(stems: Stems, spec: MixerRenderSpec) -> np.ndarray | None:
    """The film's audio (float32 [ch, n], the stems' sample rate), or None when the spec
    leaves the soundtrack alone — then mux the track's own audio file unchanged."""
    return mix(stems, spec.state) if spec.affects_soundtrack else None


# --------------------------------------------------------------------------- files


def load_mixer_state(path: str | Path) -> MixerState:
    """Read a mixer state from JSON: a bare state, or any document with a ``state`` key (the
    ``mixer.json`` of a stem ZIP, a meta.json ``mixer`` record)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(path, None, "mixer state file not found (check the --state path)")
    doc = read_json(path, "mixer state")
    if isinstance(doc, dict) and isinstance(doc.get("mixer"), dict):
        doc = doc["mixer"]
    if isinstance(doc, dict) and isinstance(doc.get("state"), dict):
        doc = doc["state"]
    return MixerState.parse(doc, path)


def state_document(state: MixerState, **extra: Any) -> dict[str, Any]:
    """The JSON document written beside exports: format tag, state, gains, plus ``extra``."""
    return {
        "format": MIXER_STATE_FORMAT,
        "stratum_version": __version__,
        "state": state.model_dump(mode="json"),
        "effective_gains": effective_gains(state),
        "master_gain": state.master_gain,
        **extra,
    }


@dataclass
class ExportReport:
    """What an export wrote: peak of the output (linear and dBFS), samples clipped by an
    integer format, the normalisation gain applied (dB, 0 when off), per-stem peaks for
    ZIPs."""

    path: Path | None
    kind: str
    sample_rate: int
    channels: int
    frames: int
    subtype: str
    peak: float
    clipped_samples: int = 0
    normalize_gain_db: float = 0.0
    stem_peaks_dbfs: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0

    @property
    def peak_dbfs(self) -> float:
        return level_dbfs(self.peak)

    def summary(self, label: str | None = None) -> str:
        """One line for the command line and the dashboard, starting with ``label`` (default:
        the path, or the kind of export)."""
        where = label or (str(self.path) if self.path else self.kind)
        text = (
            f"{where}: {self.frames / self.sample_rate:.2f} s, {self.channels} ch, "
            f"{self.sample_rate} Hz, {self.subtype}, peak {self.peak_dbfs:.1f} dBFS"
        )
        if self.normalize_gain_db:
            text += f", normalised {self.normalize_gain_db:+.1f} dB"
        if self.clipped_samples:
            text += (
                f", {self.clipped_samples} samples CLIPPED (lower the gains or use "
                "normalisation or a float format)"
            )
        return text


_SUBTYPES = {"wav": ("PCM_16", "PCM_24", "FLOAT"), "flac": ("PCM_16", "PCM_24")}


def _check_subtype(fmt: str, subtype: str) -> str:
    subtype = subtype.upper()
    if subtype == "24":
        subtype = "PCM_24"
    elif subtype == "16":
        subtype = "PCM_16"
    elif subtype in ("32F", "FLOAT32"):
        subtype = "FLOAT"
    if subtype not in _SUBTYPES[fmt]:
        raise ConfigError(
            None,
            "subtype",
            f"{fmt.upper()} cannot be written as {subtype!r}; use one of "
            + ", ".join(_SUBTYPES[fmt]),
        )
    return subtype


def encode_audio(y: np.ndarray, sr: int, fmt: str, subtype: str) -> tuple[bytes, int]:
    """Encode float32 [ch, n] as WAV or FLAC bytes; returns (bytes, samples clipped).

    Integer subtypes clip to [-1, 1] (never wrap); FLOAT keeps values as they are.
    """
    import soundfile as sf

    subtype = _check_subtype(fmt, subtype)
    data = np.asarray(y, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        raise AudioError("refusing to export audio containing NaN or infinite samples")
    clipped = 0
    if subtype != "FLOAT":
        over = np.abs(data) > 1.0
        clipped = int(np.count_nonzero(over))
        if clipped:
            data = np.clip(data, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, data.T, int(sr), subtype=subtype, format=fmt.upper())
    return buf.getvalue(), clipped


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through ``<name>.tmp-<pid>`` and ``os.replace``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as err:
        raise AudioError(f"{path}: could not write ({err.strerror})") from None
    return path


def _normalise(peak: float, normalize_dbfs: float | None) -> float:
    """The gain that brings ``peak`` to ``normalize_dbfs`` (1.0 when off or silent)."""
    if normalize_dbfs is None or peak <= 0:
        return 1.0
    if not -60.0 <= normalize_dbfs <= 0.0:
        raise ConfigError(
            None, "normalize", f"target peak {normalize_dbfs} dBFS is outside -60 … 0 dBFS"
        )
    return db_to_linear(normalize_dbfs) / peak


def mix_wav_bytes(
    stems: Stems, sr: int, state: MixerState, *, subtype: str = "PCM_24",
    normalize_dbfs: float | None = None,
) -> tuple[bytes, ExportReport]:
    """The mix as WAV bytes and its :class:`ExportReport` (``path`` None)."""
    y = mix(stems, state)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    g = _normalise(peak, normalize_dbfs)
    if g != 1.0:
        y = y * np.float32(g)
    data, clipped = encode_audio(y, sr, "wav", subtype)
    report = ExportReport(
        None, "wav", int(sr), y.shape[0], y.shape[1], _check_subtype("wav", subtype),
        peak * g, clipped, linear_to_db(g) if g != 1.0 else 0.0, size_bytes=len(data),
    )
    if clipped:
        log.warning("mix export: %s", report.summary())
    return data, report


def export_mix_wav(
    stems: Stems, sr: int, state: MixerState, path: str | Path, *, subtype: str = "PCM_24",
    normalize_dbfs: float | None = None,
) -> ExportReport:
    """Write the mix of ``stems`` under ``state`` to the WAV file ``path`` (atomically).

    subtype: ``'PCM_24'`` (default), ``'PCM_16'`` or ``'FLOAT'`` (never clips).
    normalize_dbfs: scale so the peak lands there (e.g. -1.0); None (default) leaves the
    level alone. Returns the report with ``peak`` and ``clipped_samples``.
    """
    data, report = mix_wav_bytes(stems, sr, state, subtype=subtype, normalize_dbfs=normalize_dbfs)
    report.path = write_atomic(path, data)
    return report


def stems_zip_bytes(
    stems: Stems, sr: int, state: MixerState, *, fmt: str = "flac", subtype: str = "PCM_24",
    normalize_dbfs: float | None = None, folder: str = "stems",
    extra: Mapping[str, Any] | None = None,
) -> tuple[bytes, ExportReport]:
    """A ZIP of ``<folder>/<stem>.<fmt>`` (gains applied, one file per stem, all the same
    length) and ``<folder>/mixer.json`` (:func:`state_document`); the files sum to the mix.

    normalize_dbfs scales every stem by the factor that brings the *mix* peak there, so
    the balance is kept. Returns (bytes, report); the report's peak is the mix's.
    """
    fmt = fmt.lower()
    if fmt not in _SUBTYPES:
        raise ConfigError(None, "format", f"unknown stem format {fmt!r}; use flac or wav")
    subtype = _check_subtype(fmt, subtype)
    scaled = apply_gains(stems, state)
    total = mix(stems, state)
    peak = float(np.max(np.abs(total))) if total.size else 0.0
    g = _normalise(peak, normalize_dbfs)
    buf = io.BytesIO()
    clipped, stem_peaks, files = 0, {}, {}
    with zipfile.ZipFile(buf, "w") as zf:
        for s in STEM_NAMES:
            if s not in scaled:
                continue
            y = scaled[s] * np.float32(g)
            data, n_clip = encode_audio(y, sr, fmt, subtype)
            clipped += n_clip
            stem_peaks[s] = level_dbfs(float(np.max(np.abs(y))) if y.size else 0.0)
            name = f"{folder}/{s}.{fmt}"
            files[s] = name
            # FLAC is already compressed; deflating it again only costs time
            method = zipfile.ZIP_STORED if fmt == "flac" else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
        doc = state_document(
            state, sample_rate=int(sr), format_stems=fmt, subtype=subtype, files=files,
            peak_dbfs=level_dbfs(peak * g), stem_peaks_dbfs=stem_peaks,
            normalize_gain_db=linear_to_db(g) if g != 1.0 else 0.0, **(extra or {}),
        )
        zf.writestr(f"{folder}/mixer.json", json.dumps(doc, indent=2) + "\n",
                    compress_type=zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    report = ExportReport(
        None, "zip", int(sr), total.shape[0], total.shape[1], subtype, peak * g, clipped,
        linear_to_db(g) if g != 1.0 else 0.0, stem_peaks, len(data),
    )
    if clipped:
        log.warning("stem export: %s", report.summary())
    return data, report


def export_stems_zip(
    stems: Stems, sr: int, state: MixerState, path: str | Path, *, fmt: str = "flac",
    subtype: str = "PCM_24", normalize_dbfs: float | None = None, folder: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Write :func:`stems_zip_bytes` to ``path`` atomically; the folder inside the ZIP is
    ``folder`` or the file's name without suffix."""
    path = Path(path)
    data, report = stems_zip_bytes(
        stems, sr, state, fmt=fmt, subtype=subtype, normalize_dbfs=normalize_dbfs,
        folder=folder or path.stem or "stems", extra=extra,
    )
    report.path = write_atomic(path, data)
    return report
