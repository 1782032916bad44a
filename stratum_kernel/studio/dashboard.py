"""The Voila dashboard: the studio on one page (``voila notebooks/dashboard.ipynb``).

Layout: a header row, then two columns::

    album · track · preset (load, reset, save, A/B)                       (wraps)
    ┌ preview A | B (the column's width) [enlarge] ┐ ┌ stems: mixer ───────┐
    │ neighbour strip                               │ │ preview clip: ▶ ▒▒  │
    │ play · frame slider · features                │ │ parameters: preset │
    │ stem waveform · loudness (pixel-exact)        │ │ | waveform | loud. │
    └───────────────────────────────────────────────┘ └─────────────────────┘

The left column takes what the window leaves beside the fixed :data:`SIDE_PX` right
column, and the preview fills it, so it is the largest thing on the page at any width
from 1280 to 1920 px and beyond; *enlarge* gives it the page's whole width (the side
column steps aside), up to the window's height. Nothing has a
width that can push a control out of view (rows wrap), which the browser test measures.

Everything is the explorer's (:mod:`stratum_kernel.studio.explorer`) plus: an album picker
(the config's album and any others given), the visualization views of the current track
with their shared, persisted parameter panels (``viz``), the stem mixer
(:class:`~stratum_kernel.studio.mixer_widget.StemMixer`) on the timeline's clock — the frame
slider, play button, feature plot, mixer and waveform playhead are linked in the browser —
and a clip panel that renders a short clip with sound in the background.
"""

from __future__ import annotations

import html
import logging
import threading
from pathlib import Path
from typing import Any

from stratum_kernel.core.errors import StratumError
from stratum_kernel.studio.clip import ClipPanel, ClipRenderer
from stratum_kernel.studio.explorer import PresetExplorer, make_engine
from stratum_kernel.studio.mixer_widget import StemMixer
from stratum_kernel.viz.album_data import AlbumViewData
from stratum_kernel.viz.panel import panel_for
from stratum_kernel.viz.showcase import track_views

log = logging.getLogger(__name__)

VIEWS = ("stem_waveform", "loudness")
SIDE_PX = 420
#: the page's own rules: flexible columns, the preview at its column's width, enlarged over
#: the window on demand
CSS = f"""<style>
.stratum-dashboard {{ width: 100%; box-sizing: border-box; }}
.stratum-dashboard .widget-hbox {{ flex-wrap: wrap; }}
.stratum-dashboard .stratum-columns {{ flex-wrap: nowrap !important; gap: 16px; }}
.stratum-dashboard .stratum-main {{ flex: 1 1 0; min-width: 0; }}
.stratum-dashboard .stratum-side {{ flex: 0 0 {SIDE_PX}px; width: {SIDE_PX}px; min-width: 0; }}
.stratum-dashboard img.stratum-preview-a, .stratum-dashboard img.stratum-preview-b {{
  width: 100%; max-width: 100%; height: auto; max-height: 72vh; object-fit: contain; }}
.stratum-dashboard .stratum-enlarged .stratum-side {{ display: none !important; }}
.stratum-dashboard .stratum-enlarged img.stratum-preview-a {{
  width: auto; max-width: 100%; max-height: calc(100vh - 24px); margin: 0 auto;
  display: block; }}
.stratum-dashboard .stratum-side .stratum-mixer {{ width: 100%; }}
</style>"""


class Dashboard:
    """The dashboard's widgets over a RenderConfig (see the module docstring).

    albums: extra album folders for the album picker. preview: the preview size (see
    :func:`~stratum_kernel.studio.explorer.make_engine`). views: visualization types shown
    under the timeline. mixer: show the stem mixer. analysis: an album analysis to reuse
    for the config's album (tests; default: the cached librosa analysis). background: load
    each track's stems and visualizations in a thread (``wait_ready()`` waits for them).
    """

    def __init__(self, config: Any, *, albums: list[str | Path] | None = None,
                 preview: Any = None, views: tuple[str, ...] = VIEWS, mixer: bool = True,
                 clip_seconds: float = 2.0, presets_dir: str | Path | None = None,
                 analysis: Any = None, width: int = 760, background: bool = True):
        import ipywidgets as w

        self.config = config
        self.preview = preview
        self.views_wanted = tuple(views)
        self.want_mixer = mixer
        self.clip_seconds = clip_seconds
        self.presets_dir = presets_dir
        self.width = int(width)
        self._analysis = {str(config.album_path): analysis} if analysis is not None else {}
        dirs = [str(config.album_path), *(str(Path(a).resolve()) for a in albums or [])]
        self.album_pick = w.Dropdown(options=list(dict.fromkeys(dirs)), value=dirs[0],
                                     description="album", layout=w.Layout(width="340px"))
        self.album_pick.observe(lambda c: self.set_album(c["new"]), names="value")
        self.status = w.HTML()
        self.body = w.VBox()
        self.widget = w.VBox([self.body, self.status])
        self.widget.add_class("stratum-dashboard")
        self.explorer = None
        self.mixer = None
        self.views: list[Any] = []
        self.links: list[Any] = []  # browser-side links: playheads and the mixer's clock
        self.background = background
        self._generation = 0
        self._ready = threading.Event()
        self._build(dirs[0])

    # ---- building -----------------------------------------------------------------
    def _config_for(self, album_dir: str):
        if album_dir == str(self.config.album_path):
            return self.config
        # another album: render.yaml's track list names the bundled album's tracks
        return self.config.model_copy(update={"album_dir": album_dir, "tracks": []}, deep=True)

    def _build(self, album_dir: str) -> None:
        import ipywidgets as w

        engine = make_engine(self._config_for(album_dir), preview=self.preview,
                             analysis=self._analysis.get(album_dir))
        ex = PresetExplorer(engine, presets_dir=self.presets_dir,
                            plot_width=self.width, display_width="100%")
        if self.explorer is not None:  # only once the new album has opened
            self.explorer.close()
        self.engine, self.explorer = engine, ex
        self.clip = ClipPanel(ClipRenderer(engine), self._clip_source,
                              seconds=self.clip_seconds, width=SIDE_PX - 16)
        self.views_box = w.VBox(layout=w.Layout(max_width="100%", overflow_x="auto"))
        self.mixer_box = w.VBox(layout=w.Layout(width="100%"))
        self.panel_tabs = w.Tab(layout=w.Layout(width="100%"))
        ex.track_pick.observe(lambda c: self._track_parts(c["new"]), names="value")
        self.enlarge = w.ToggleButton(description="enlarge", icon="expand",
                                      tooltip="show the preview over the whole window",
                                      layout=w.Layout(width="96px"))
        self.enlarge.add_class("stratum-enlarge-button")
        preview = w.VBox([ex.previews(), self.enlarge], layout=w.Layout(width="100%"))
        left = w.VBox([preview, ex.timeline.widget, ex.sections.widget, self.views_box])
        left.add_class("stratum-main")
        side = w.VBox([w.HTML("<b>stems</b>"), self.mixer_box,
                       w.HTML("<b>preview clip</b>"), self.clip.widget,
                       w.HTML("<b>parameters</b>"), self.panel_tabs])
        side.add_class("stratum-side")
        columns = w.HBox([left, side], layout=w.Layout(width="100%",
                                                        align_items="flex-start"))
        columns.add_class("stratum-columns")
        self.enlarge.observe(lambda c: self._enlarged(columns, c["new"]), names="value")
        self.body.children = [w.HTML(CSS), w.HBox([self.album_pick]), ex.header(), columns]
        self._track_parts(ex.track_id)

    def _enlarged(self, columns: Any, on: bool) -> None:
        """Enlarge: the preview takes the page's whole width (the side column steps
        aside), up to the window's height; again: back."""
        if on:
            columns.add_class("stratum-enlarged")
            self.enlarge.description = "smaller"
        else:
            columns.remove_class("stratum-enlarged")
            self.enlarge.description = "enlarge"

    def _clip_source(self):
        ex = self.explorer
        return ex.track_id, ex.preset, ex.timeline.frame

    def _track_parts(self, track_id: str) -> None:
        """The mixer and the visualizations of the current track: loaded in a background
        thread (stems, envelopes, loudness take seconds), so the preview is usable at once."""
        import ipywidgets as w

        self._generation += 1
        self._ready.clear()
        self.views, self.mixer = [], None
        self.views_box.children = [w.HTML("<i>loading the visualizations…</i>")]
        self.mixer_box.children = [w.HTML("<i>loading the stems…</i>")]
        self.panel_tabs.children = [self.explorer.form.widget]
        self.panel_tabs.titles = ("preset",)
        args = (self.explorer, track_id, self._generation)
        if self.background:
            threading.Thread(target=self._load_track_parts, args=args, daemon=True,
                             name="stratum-dashboard-track").start()
        else:
            self._load_track_parts(*args)

    def _load_track_parts(self, ex: Any, track_id: str, generation: int) -> None:
        import ipywidgets as w

        try:
            views, panels, links = [], [], []
            try:

                data = getattr(self, "_view_data", None)
                if data is None or data.album is not ex.engine.album:
                    data = self._view_data = AlbumViewData(ex.engine.album)
                for kind in self.views_wanted:
                    views += track_views(kind, data, width=self.width, height=120,
                                         track_ids=[track_id])
                    panels.append((kind, panel_for(kind).widget))
            except (StratumError, OSError) as err:
                self._say(f"visualizations unavailable: {err}")
            mixer, note = None, ""
            if self.want_mixer:
                try:
                    mixer = StemMixer.from_track(ex.engine.album.track(track_id))
                except (StratumError, OSError) as err:
                    note = f"no stems: {html.escape(str(err))}"
            if generation != self._generation:
                return  # another track was picked meanwhile
            links = [w.jslink((ex.timeline.plot, "seconds"), (v, "playhead"))
                     for v in views if hasattr(v, "playhead")]
            if mixer is not None:
                links += ex.timeline.link_mixer(mixer)
            self.views, self.mixer, self.links = views, mixer, links
            self.views_box.children = list(views)
            self.panel_tabs.children = [ex.form.widget, *(p for _, p in panels)]
            self.panel_tabs.titles = ("preset", *(k.replace("_", " ") for k, _ in panels))
            self.mixer_box.children = [mixer] if mixer is not None else [w.HTML(note)]
        except Exception as err:  # a thread has no caller to raise to: show it
            log.exception("loading the track's visualizations failed")
            self._say(f"loading {track_id} failed: {type(err).__name__}: {err}")
        finally:
            if generation == self._generation:
                self._ready.set()

    def wait_ready(self, timeout: float | None = 60.0) -> bool:
        """Block until the current track's mixer and visualizations are in place."""
        return self._ready.wait(timeout)

    def set_album(self, album_dir: str) -> None:
        """Switch to another album folder (its tracks, analysis and stems)."""
        try:
            self._build(album_dir)
        except StratumError as err:
            self._say(f"cannot open {album_dir}: {err}")

    def _say(self, text: str) -> None:
        self.status.value = f"<span style='color:#b3261e'>{html.escape(text)}</span>"

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)
