"""Every track of an album in one view type, under one shared panel (notebooks, Voila).

:func:`track_views` builds one widget per track for a registered view type — drawn in the
browser for client-side types, rendered in Python otherwise — all following the type's one
shared :class:`~stratum_kernel.viz.panel.ParamPanel`; :func:`showcase` lays them out with
the panel on the right.
"""

from __future__ import annotations

from typing import Any

from stratum_kernel.viz.album_data import AlbumViewData, render_track
from stratum_kernel.viz.panel import layout, panel_for
from stratum_kernel.viz.registry import view_kind
from stratum_kernel.viz.waveform import album_reference_q
from stratum_kernel.viz.widgets import ImageView, StemWaveformView


def track_views(kind: str, data: AlbumViewData, *, width: int = 1200, height: int = 160,
                panel=None, track_ids: list[str] | None = None) -> list[Any]:
    """One widget per track, all following ``panel`` (default: ``panel_for(kind)``)."""
    vk = view_kind(kind)
    panel = panel or panel_for(kind)
    ids = track_ids or data.track_ids
    if vk.client_side:  # the stem waveform: its exact JS port draws it in the browser
        envelopes = [data.envelope(t) for t in data.track_ids]

        def album_ref(w: int, mode: str) -> int:
            return album_reference_q(envelopes, w, mode)

        return [StemWaveformView(data.envelope(tid), panel=panel, width=width, height=height,
                                 title=f"{data.track(tid).title} ({tid})",
                                 album_reference=album_ref) for tid in ids]
    views = []
    for tid in ids:
        def render(params, tid=tid):
            return render_track(kind, data, tid, params, width=width, height=height)

        caption = vk.caption(data, tid) if vk.caption is not None else ""
        views.append(ImageView(kind, render, panel=panel, title=f"{data.track(tid).title} "
                               f"({tid})", caption=caption))
    return views


def showcase(kind: str, data: AlbumViewData | Any, *, width: int = 1200, height: int = 160,
             panel=None):
    """The album in one view type: every track on the left, the one shared panel right."""
    if not isinstance(data, AlbumViewData):
        data = AlbumViewData(data)
    panel = panel or panel_for(kind)
    return layout(track_views(kind, data, width=width, height=height, panel=panel), panel)
