"""The sections of the current track, under the timeline: a look per marker.

One row per marker of the track (its number, label and time): a preset picker — "(the
track's look)" for none — and the crossfade in beats. Every change goes to the preview
engine at once (:meth:`~stratum_kernel.studio.preview.PreviewEngine.set_sections`), so the
preview shows the section change exactly as the render will; the YAML to paste under the
track in render.yaml (``tracks[].sections``) is kept beside it. An invalid choice shows the
error and changes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import yaml

from stratum_kernel.core.errors import StratumError
from stratum_kernel.motion.presets import list_presets

NONE = "(the track's look)"


def sections_yaml(track_id: str, sections: list[dict]) -> str:
    """The render.yaml lines for one track's sections."""
    body = yaml.safe_dump([{"id": track_id, "sections": sections}], sort_keys=False,
                          width=96)
    return "tracks:\n" + "".join(f"  {line}\n" for line in body.splitlines())


class SectionsEditor:
    """The widget (``.widget``) editing one track's sections on ``engine``;
    ``on_change()`` runs after each applied change (the explorer asks for a new frame)."""

    def __init__(self, engine: Any, track_id: str, *,
                 on_change: Callable[[], None] | None = None):
        import ipywidgets as w

        self.engine = engine
        self.on_change = on_change
        self.rows = w.VBox()
        self.yaml = w.HTML()
        self.status = w.HTML()
        self.widget = w.VBox([w.HTML("<b>sections</b> <span style='font-size:12px;color:#666'>"
                                     "a look per marker</span>"), self.rows, self.status,
                              self.yaml])
        self.widget.add_class("stratum-sections")
        self.pickers: list[Any] = []
        self.beats: list[Any] = []
        self.set_track(track_id)

    def set_track(self, track_id: str) -> None:
        import ipywidgets as w

        self.track_id = track_id
        track = self.engine.album.track(track_id)
        configured = self.engine.config.track_config(track_id).sections
        current = {s.marker: s for s in configured if isinstance(s.marker, int)}
        # sections given by label or time are kept as they are (edit them in render.yaml)
        self.kept = [s.model_dump(mode="json", exclude_defaults=True) for s in configured
                     if not isinstance(s.marker, int)]
        self.extra = {i: s.model_dump(mode="json", exclude_defaults=True,
                                      exclude={"marker", "preset", "crossfade_beats"})
                      for i, s in current.items()}
        self.pickers, self.beats, rows = [], [], []
        for i, m in enumerate(track.markers, start=1):
            have = current.get(i)
            pick = w.Dropdown(options=[NONE, *list_presets()],
                              value=(have.preset or NONE) if have else NONE,
                              description=f"{i} {m.label or ''} {m.time:.1f} s".strip(),
                              style={"description_width": "130px"},
                              layout=w.Layout(width="300px"))
            beats = w.BoundedFloatText(value=have.crossfade_beats if have else 2.0, min=0,
                                       max=64, step=0.5, description="beats",
                                       style={"description_width": "40px"},
                                       layout=w.Layout(width="110px"))
            for c in (pick, beats):
                c.observe(lambda _c: self.apply(), names="value")
            self.pickers.append(pick)
            self.beats.append(beats)
            rows.append(w.HBox([pick, beats]))
        if not rows:
            rows = [w.HTML("<i>this track has no markers (add some in tracklist.json)</i>")]
        self.rows.children = rows
        self._show_yaml()

    def sections(self) -> list[dict]:
        """The sections the rows describe (markers given a preset)."""
        rows = [{"marker": i, "preset": p.value, "crossfade_beats": float(b.value),
                 **self.extra.get(i, {})}
                for i, (p, b) in enumerate(zip(self.pickers, self.beats, strict=True), start=1)
                if p.value != NONE]
        track = self.engine.album.track(self.track_id)
        times = {i: m.time for i, m in enumerate(track.markers, start=1)}

        def start(s: dict) -> float:
            if "at" in s:
                return float(s["at"])
            label = s.get("marker")
            return next((m.time for m in track.markers if m.label == label), 0.0) \
                if isinstance(label, str) else times.get(label, 0.0)

        return sorted([*rows, *self.kept], key=start)

    def apply(self) -> bool:
        try:
            self.engine.set_sections(self.track_id, self.sections())
        except StratumError as err:
            self.status.value = (f"<span style='color:#b3261e;font-size:12px'>not applied: "
                                 f"{html.escape(str(err))}</span>")
            return False
        self.status.value = ""
        self._show_yaml()
        if self.on_change:
            self.on_change()
        return True

    def _show_yaml(self) -> None:
        secs = self.sections()
        text = sections_yaml(self.track_id, secs) if secs else "(no sections)"
        self.yaml.value = ("<details><summary style='font-size:12px'>for render.yaml</summary>"
                           f"<pre style='font-size:11px'>{html.escape(text)}</pre></details>")
