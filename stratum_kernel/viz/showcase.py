"""Every track of an album in one view type, under one shared panel.

:class:`AlbumViewData` loads what each view needs, lazily and once per track (mix audio,
stems, loudness, dynamics, spectral data, beats and markers) and the album-wide references
used by album-relative scaling. :func:`render_track` draws one track headless with the
project's saved parameters (for papermill runs and reports); :func:`showcase` builds the
notebook / Voila widget: one view per track on the left, the type's panel on the right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.viz import VIEW_KINDS
from stratum_kernel.viz.params import _ViewParams, current_params, params_model


class AlbumViewData:
    """Per-track data for the views, computed on first use and kept for the session.

    album: an :class:`~stratum_kernel.album.Album` (or its folder). stems_backend: how to
    get stems for tracks without bundled ones (see ``stems.load_stems``). analysis: an
    ``AlbumAnalysis`` for beats (optional; without it the spectral view shows no beat grid
    unless ``beats=True`` asks for the analysis to run).
    """

    def __init__(self, album: Any, *, stems_backend: str = "auto", analysis: Any = None,
                 beats: bool = False):
        if isinstance(album, str | Path):
            from stratum_kernel.album import load_album

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
        from stratum_kernel.errors import ConfigError

        raise ConfigError(None, "track", f"no track {track_id!r} in the album; have "
                          f"{', '.join(self.track_ids)}")

    def _get(self, what: str, track_id: str, make):
        key = (what, track_id)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def audio(self, track_id: str) -> tuple[np.ndarray, int]:
        """The mix: (float32 [channels, samples], sr)."""
        from stratum_kernel.audio_io import load_audio

        return self._get("audio", track_id, lambda: load_audio(self.track(track_id).audio_path))

    def envelope(self, track_id: str):
        def make():
            from stratum_kernel.stems import load_stems
            from stratum_kernel.viz.waveform import StemEnvelope

            stem_set = load_stems(self.track(track_id), backend=self.stems_backend,
                                  audio=self.audio(track_id))
            return StemEnvelope.from_stems(stem_set.stems, stem_set.sr)

        return self._get("envelope", track_id, make)

    def loudness(self, track_id: str):
        from stratum_kernel.viz.loudness_view import compute_loudness

        return self._get("loudness", track_id, lambda: compute_loudness(*self.audio(track_id)))

    def dynamics(self, track_id: str):
        from stratum_kernel.viz.dynamics import compute_dynamics

        y, sr = self.audio(track_id)
        return self._get("dynamics", track_id,
                         lambda: compute_dynamics(y, sr, self.loudness(track_id)))

    def spectral(self, track_id: str, kind: str):
        from stratum_kernel.viz.spectral import compute_spectral

        return self._get(f"spectral-{kind}", track_id,
                         lambda: compute_spectral(*self.audio(track_id), kind=kind))

    def markers(self, track_id: str) -> tuple[float, ...]:
        return tuple(self.track(track_id).marker_times)

    def beats(self, track_id: str) -> np.ndarray:
        if self.analysis is None and self.want_beats:
            from stratum_kernel.feature_cache import analyze_album

            self.analysis = analyze_album(self.album, stems_backend=self.stems_backend,
                                          progress=False)
        if self.analysis is None or track_id not in self.analysis.tracks:
            return np.zeros(0)
        return np.asarray(self.analysis.tracks[track_id].beats, dtype=np.float64)

    def duration(self, track_id: str) -> float:
        return float(self.track(track_id).duration)

    # ---- album-wide references (album-relative scaling) ---------------------------
    def album_reference(self, kind: str, params: _ViewParams, width: int) -> Any:
        ids = self.track_ids
        if kind == "stem_waveform":
            from stratum_kernel.viz.waveform import album_reference_q

            return album_reference_q([self.envelope(t) for t in ids], width, params.level)
        if kind == "loudness":
            from stratum_kernel.viz.loudness_view import album_loudness_ceiling

            return album_loudness_ceiling([self.loudness(t) for t in ids])
        if kind == "dynamics":
            from stratum_kernel.viz.dynamics import album_dynamics_ranges

            return album_dynamics_ranges([self.dynamics(t) for t in ids])
        from stratum_kernel.viz.spectral import album_max_db

        return album_max_db([self.spectral(t, params.kind) for t in ids])


def render_track(kind: str, data: AlbumViewData, track_id: str,
                 params: _ViewParams | None = None, *, width: int = 1200, height: int = 200,
                 t0: float = 0.0, t1: float | None = None, playhead: float | None = None,
                 ) -> np.ndarray:
    """uint8 [height, width, 3]: one track's view with ``params`` (default: the saved ones)."""
    if kind not in VIEW_KINDS:
        params_model(kind)  # raises the clear error
    params = params or current_params(kind)
    ref = data.album_reference(kind, params, width) if params.album_relative else None
    common = dict(width=width, height=height, t0=t0, t1=t1, playhead=playhead)
    if kind == "stem_waveform":
        from stratum_kernel.viz.waveform import stem_waveform_image

        return stem_waveform_image(data.envelope(track_id), params, album_reference=ref,
                                   **common)
    if kind == "loudness":
        from stratum_kernel.viz.loudness_view import render_loudness

        return render_loudness(data.loudness(track_id), params, album_ceiling=ref, **common)
    if kind == "dynamics":
        from stratum_kernel.viz.dynamics import render_dynamics

        return render_dynamics(data.dynamics(track_id), params, album_ranges=ref, **common)
    from stratum_kernel.viz.spectral import render_spectral

    return render_spectral(data.spectral(track_id, params.kind), params, album_max=ref,
                           markers=data.markers(track_id), beats=data.beats(track_id),
                           **common)


def _caption(kind: str, data: AlbumViewData, track_id: str) -> str:
    if kind != "loudness":
        return ""
    nums = data.loudness(track_id).to_dict()

    def f(v, unit):
        return "–" if v is None else f"{v:.1f} {unit}"

    return (f"<span style='font:12px monospace'>integrated {f(nums['integrated_lufs'], 'LUFS')}"
            f" · LRA {f(nums['loudness_range_lu'], 'LU')} · true peak "
            f"{f(nums['true_peak_dbtp'], 'dBTP')}</span>")


def track_views(kind: str, data: AlbumViewData, *, width: int = 1200, height: int = 160,
                panel=None, track_ids: list[str] | None = None) -> list[Any]:
    """One widget per track, all following ``panel`` (default: ``panel_for(kind)``)."""
    from stratum_kernel.viz.panel import panel_for
    from stratum_kernel.viz.widgets import ImageView, StemWaveformView

    panel = panel or panel_for(kind)
    ids = track_ids or data.track_ids
    views = []
    if kind == "stem_waveform":
        from stratum_kernel.viz.waveform import album_reference_q

        envelopes = [data.envelope(t) for t in data.track_ids]

        def album_ref(w: int, mode: str) -> int:
            return album_reference_q(envelopes, w, mode)

        for tid in ids:
            title = f"{data.track(tid).title} ({tid})"
            views.append(StemWaveformView(data.envelope(tid), panel=panel, width=width,
                                          height=height, title=title, album_reference=album_ref))
        return views
    for tid in ids:
        def render(params, tid=tid):
            return render_track(kind, data, tid, params, width=width, height=height)

        views.append(ImageView(kind, render, panel=panel, title=f"{data.track(tid).title} "
                               f"({tid})", caption=_caption(kind, data, tid)))
    return views


def showcase(kind: str, data: AlbumViewData | Any, *, width: int = 1200, height: int = 160,
             panel=None):
    """The album in one view type: every track on the left, the one shared panel right."""
    from stratum_kernel.viz.panel import layout, panel_for

    if not isinstance(data, AlbumViewData):
        data = AlbumViewData(data)
    panel = panel or panel_for(kind)
    return layout(track_views(kind, data, width=width, height=height, panel=panel), panel)
