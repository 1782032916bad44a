"""The stem mixer as a notebook / Voila widget (anywidget, Web Audio in the browser).

:class:`StemMixer` sends each stem once, as FLAC (or 16-bit WAV) at a preview rate
(22.05 kHz by default), and the browser mixes them with Web Audio
(``static/mixer.js``): one source per stem, started together, through a gain per stem
and a master gain. Solo, mute and gain change in the browser at once; the server only
hears about the new ``state``. Exports use the full-resolution stems kept in Python.

Synced traits (both ways):

- ``state``: the :class:`~stratum_kernel.audio.mixer.MixerState` as a dict (validated and
  completed on the Python side; read it as ``mixer.mixer_state``).
- ``playing``: bool; ``position``: seconds. While playing, the browser reports
  ``position`` every ``sync_ms`` (250 ms); setting ``position`` from elsewhere seeks,
  unless it is within ``seek_tolerance`` (0.2 s) of where playback already is (so a
  linked slider's rounding echo never stutters the audio).

Sharing the studio's timeline, in the browser with no kernel round trip::

    mixer = StemMixer.from_track(track)
    slider = ipywidgets.FloatSlider(min=0, max=mixer.duration, step=0.05)
    play = ipywidgets.ToggleButton(description="play")
    links = mixer.link_timeline(position=slider, playing=(play, "value"))

or with ``ipywidgets.jslink((mixer, "position"), (slider, "value"))`` directly, or
``mixer.observe(fn, names="position")`` on the Python side (every ``sync_ms`` while
playing). One displayed view per mixer is the intended use: each view plays its own audio.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from stratum_kernel.audio.mixer import (
    MixerRenderSpec,
    MixerState,
    MixerTarget,
    encode_audio,
    export_mix_wav,
    export_stems_zip,
    mix_wav_bytes,
    stem_levels,
    stems_zip_bytes,
    write_atomic,
)
from stratum_kernel.audio.resampling import resample
from stratum_kernel.audio.stems import load_stems
from stratum_kernel.core.errors import ConfigError, StratumError
from stratum_kernel.core.timeline import STEM_NAMES

log = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"
# The stem colours of the stem waveform view (viz/params.py), so the two read together.
STEM_COLORS = {"drums": "#26222b", "bass": "#6b3fa0", "other": "#2d8f8f", "vocals": "#c74882"}
PREVIEW_ENCODINGS = ("flac", "wav")


def encode_preview(
    y: np.ndarray, sr: int, *, preview_sr: int = 22050, mono: bool = False,
    encoding: str = "flac",
) -> bytes:
    """One stem as the browser receives it: float32 [ch, n] at ``sr`` → FLAC or WAV bytes,
    16-bit, at ``preview_sr`` (never upsampled), averaged to mono when ``mono``."""
    if encoding not in PREVIEW_ENCODINGS:
        raise ConfigError(None, "encoding", f"unknown preview encoding {encoding!r}; use "
                          + " or ".join(PREVIEW_ENCODINGS))
    y = np.asarray(y, dtype=np.float32)
    if mono and y.shape[0] > 1:
        y = y.mean(axis=0, keepdims=True, dtype=np.float32)
    rate = min(int(preview_sr), int(sr))
    y = resample(y, int(sr), rate)
    data, _ = encode_audio(y, rate, encoding, "PCM_16")
    return data


def _export_name(title: str, suffix: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.") or "stratum-mix"
    return f"{base}{suffix}"


class StemMixer(anywidget.AnyWidget):
    """Per-stem solo / mute / gain with playback in the browser (see the module docstring).

    stems: {stem: float32 [channels, samples]} at ``sr`` Hz (bundled or separated).
    state: the starting :class:`MixerState` (or its dict). preview_sr, mono, encoding: how
    the audio travels to the browser. export_dir: when set, exports from the widget's
    buttons are also written there (atomically); they are always offered as downloads.
    """

    _esm = STATIC / "mixer.js"

    names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    audio = traitlets.List(traitlets.Bytes()).tag(sync=True)  # encoded stems, ``names`` order
    sample_rate = traitlets.Int(22050).tag(sync=True)  # of ``audio``
    duration = traitlets.Float(0.0).tag(sync=True)
    state = traitlets.Dict().tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    position = traitlets.Float(0.0).tag(sync=True)
    loop = traitlets.Bool(False).tag(sync=True)
    sync_ms = traitlets.Int(250).tag(sync=True)
    seek_tolerance = traitlets.Float(0.2).tag(sync=True)
    levels = traitlets.Dict().tag(sync=True)  # {stem: {"peak_dbfs", "rms_dbfs"}}
    colors = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    export_status = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self, stems: Mapping[str, np.ndarray], sr: int, *,
        state: MixerState | Mapping[str, Any] | None = None, preview_sr: int = 22050,
        mono: bool = False, encoding: str = "flac", title: str = "",
        export_dir: str | Path | None = None, **kwargs: Any,
    ):
        names = [s for s in STEM_NAMES if s in stems]
        unknown = sorted(set(stems) - set(STEM_NAMES))
        if unknown or not names:
            raise ConfigError(None, "stems", f"expected stems named {', '.join(STEM_NAMES)}, "
                              f"got {', '.join(stems) or 'none'}")
        self.stems = {s: np.asarray(stems[s], dtype=np.float32) for s in names}
        self.sr = int(sr)
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.last_export = None
        n = max(y.shape[-1] for y in self.stems.values())
        # resampling and encoding release the GIL: one thread per stem uses every core
        with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1)) as pool:
            audio = list(pool.map(
                lambda s: encode_preview(self.stems[s], self.sr, preview_sr=preview_sr,
                                         mono=mono, encoding=encoding), names))
        levels = {s: {"peak_dbfs": lv.peak_dbfs, "rms_dbfs": lv.rms_dbfs}
                  for s, lv in stem_levels(self.stems).items()}
        super().__init__(
            names=names, audio=audio, sample_rate=min(int(preview_sr), self.sr),
            duration=n / self.sr, state=MixerState.parse(state).model_dump(mode="json"),
            levels=levels, colors={s: STEM_COLORS.get(s, "#888888") for s in names},
            title=title, **kwargs,
        )
        self.on_msg(self._on_custom_msg)

    @classmethod
    def from_track(cls, track, *, cache_root: str | Path | None = None, backend: str = "auto",
                   **kwargs: Any) -> StemMixer:
        """A mixer over ``track``'s stems: bundled ones, else separated (and cached) by
        :func:`stratum_kernel.audio.stems.load_stems`."""
        stem_set = load_stems(track, cache_root=cache_root, backend=backend)
        kwargs.setdefault("title", getattr(track, "title", "") or getattr(track, "id", ""))
        return cls(stem_set.stems, stem_set.sr, **kwargs)

    # ---- state ------------------------------------------------------------------
    @traitlets.validate("state")
    def _valid_state(self, proposal) -> dict:
        try:
            return MixerState.parse(proposal["value"]).model_dump(mode="json")
        except StratumError as err:
            raise traitlets.TraitError(str(err)) from None

    @traitlets.validate("position")
    def _valid_position(self, proposal) -> float:
        return float(min(max(0.0, proposal["value"]), self.duration or 0.0))

    @property
    def mixer_state(self) -> MixerState:
        """The current state as a validated :class:`MixerState`."""
        return MixerState.parse(self.state)

    @mixer_state.setter
    def mixer_state(self, value: MixerState | Mapping[str, Any]) -> None:
        self.state = MixerState.parse(value).model_dump(mode="json")

    def render_spec(self, applies_to: MixerTarget = "reactivity") -> MixerRenderSpec:
        """The current state as a render setting (``config.mixer`` / meta.json)."""
        return MixerRenderSpec(state=self.mixer_state, applies_to=applies_to)

    # ---- timeline ---------------------------------------------------------------
    def link_timeline(self, position=None, playing=None) -> list:
        """jslink ``position`` (a widget, or (widget, trait); default trait ``value``) and
        ``playing`` (same; default trait ``playing``, e.g. ``ipywidgets.Play``) to this
        mixer in the browser. Returns the links (``link.unlink()`` undoes one)."""
        import ipywidgets as w

        links = []
        for target, ours, default in ((position, "position", "value"),
                                      (playing, "playing", "playing")):
            if target is None:
                continue
            widget, trait = target if isinstance(target, tuple) else (target, default)
            links.append(w.jslink((self, ours), (widget, trait)))
        return links

    # ---- exports ----------------------------------------------------------------
    def export_wav(self, path: str | Path, **kwargs: Any):
        """Write the current mix to ``path`` (see ``audio.mixer.export_mix_wav``)."""
        return export_mix_wav(self.stems, self.sr, self.mixer_state, path, **kwargs)

    def export_zip(self, path: str | Path, fmt: str = "flac", **kwargs: Any):
        """Write the stems with the gains applied (see
        :func:`~stratum_kernel.audio.mixer.export_stems_zip`)."""
        kwargs.setdefault("extra", {"track": self.title} if self.title else None)
        return export_stems_zip(self.stems, self.sr, self.mixer_state, path, fmt=fmt, **kwargs)

    def export_bytes(self, what: str, fmt: str = "flac") -> tuple[str, str, bytes, Any]:
        """(file name, MIME type, bytes, report) of an export, as the download buttons get."""
        state = self.mixer_state
        if what == "wav":
            data, report = mix_wav_bytes(self.stems, self.sr, state)
            return _export_name(self.title, "-mix.wav"), "audio/wav", data, report
        if what == "zip":
            folder = _export_name(self.title, "-stems")
            data, report = stems_zip_bytes(
                self.stems, self.sr, state, fmt=fmt, folder=folder,
                extra={"track": self.title} if self.title else None,
            )
            return f"{folder}.zip", "application/zip", data, report
        raise ConfigError(None, "export", f"unknown export {what!r}; use 'wav' or 'zip'")

    def _on_custom_msg(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "export":
            return
        try:
            name, mime, data, report = self.export_bytes(
                str(content.get("what")), str(content.get("format") or "flac")
            )
            if self.export_dir is not None:
                report.path = write_atomic(self.export_dir / name, data)
            summary = report.summary(None if report.path else name)
        except StratumError as err:
            self.export_status = f"export failed: {err}"
            self.send({"type": "export_error", "message": str(err)})
            return
        self.last_export = report
        self.export_status = summary
        self.send({"type": "export_ready", "name": name, "mime": mime, "summary": summary},
                  buffers=[data])
