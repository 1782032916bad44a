"""The data every view of an album draws from, and one track drawn headless.

:class:`AlbumViewData` loads what each view needs, lazily and once per track (mix audio,
stems, loudness, dynamics, spectral data, beats and markers); :func:`render_track` draws
one track's view of any registered type with the project's saved parameters (for papermill
runs and reports). The widgets that show them live in :mod:`stratum_kernel.viz.showcase`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.analysis.cache import analyze_album
from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.files import load_audio
from stratum_kernel.audio.stems import load_stems
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.viz.dynamics import compute_dynamics
from stratum_kernel.viz.loudness_view import compute_loudness
from stratum_kernel.viz.params import ViewParams
from stratum_kernel.viz.registry import view_kind
from stratum_kernel.viz.settings import current_params
from stratum_kernel.viz.spectral import compute_spectral
from stratum_kernel.viz.waveform import StemEnvelope


class AlbumViewData:
    """Per-track data for the views, computed on first use and kept for the session.

    album: an :class:`~stratum_kernel.audio.album.Album` (or its folder). stems_backend: how to
    get stems for tracks without bundled ones (see ``stems.load_stems``). analysis: an
    ``AlbumAnalysis`` for beats (optional; without it the spectral view shows no beat grid
    unless ``beats=True`` asks for the analysis to run).
    """

    def __init__(self, album: Any, *, stems_backend: str = "auto", analysis: Any = None,
                 beats: bool = False):
        if isinstance(album, str | Path):
            album = load_album(album)
        self.album = album
        self.stems_backend = stems_backend
        self.analysis = analysis
        self.want_beats = beats
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def track_ids(self) -> list[str]:
        return [t.id for t in self.album.tracks]

    def track(self, track_id: str):
        for t in self.album.tracks:
            if t.id == track_id:
                return t
        raise ConfigError(None, "track", f"no track {track_id!r} in the album; have "
                          f"{', '.join(self.track_ids)}")

    def _get(self, what: str, track_id: str, make):
        key = (what, track_id)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def audio(self, track_id: str) -> tuple[np.ndarray, int]:
        """The mix: (float32 [channels, samples], sr)."""
        return self._get("audio", track_id, lambda: load_audio(self.track(track_id).audio_path))

    def envelope(self, track_id: str):
        def make():
            stem_set = load_stems(self.track(track_id), backend=self.stems_backend,
                                  audio=self.audio(track_id))
            return StemEnvelope.from_stems(stem_set.stems, stem_set.sr)

        return self._get("envelope", track_id, make)

    def loudness(self, track_id: str):
        return self._get("loudness", track_id, lambda: compute_loudness(*self.audio(track_id)))

    def dynamics(self, track_id: str):
        y, sr = self.audio(track_id)
        return self._get("dynamics", track_id,
                         lambda: compute_dynamics(y, sr, self.loudness(track_id)))

    def spectral(self, track_id: str, kind: str):
        return self._get(f"spectral-{kind}", track_id,
                         lambda: compute_spectral(*self.audio(track_id), kind=kind))

    def markers(self, track_id: str) -> tuple[float, ...]:
        return tuple(self.track(track_id).marker_times)

    def beats(self, track_id: str) -> np.ndarray:
        if self.analysis is None and self.want_beats:
            self.analysis = analyze_album(self.album, stems_backend=self.stems_backend,
                                          progress=False)
        if self.analysis is None or track_id not in self.analysis.tracks:
            return np.zeros(0)
        return np.asarray(self.analysis.tracks[track_id].beats, dtype=np.float64)

    def duration(self, track_id: str) -> float:
        return float(self.track(track_id).duration)

    # ---- album-wide references (album-relative scaling) ---------------------------
    def album_reference(self, kind: str, params: ViewParams, width: int) -> Any:
        return view_kind(kind).album_reference(self, params, width)


def render_track(kind: str, data: AlbumViewData, track_id: str,
                 params: ViewParams | None = None, *, width: int = 1200, height: int = 200,
                 t0: float = 0.0, t1: float | None = None, playhead: float | None = None,
                 ) -> np.ndarray:
    """uint8 [height, width, 3]: one track's view with ``params`` (default: the saved ones)."""
    vk = view_kind(kind)
    params = params or current_params(kind)
    ref = vk.album_reference(data, params, width) if params.album_relative else None
    return vk.show(data, track_id, params, album_reference=ref, width=width, height=height,
                   t0=t0, t1=t1, playhead=playhead)
