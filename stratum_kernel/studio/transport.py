"""The studio's timeline: a frame slider with play/pause over a feature plot with a playhead.

:func:`feature_lanes` draws a track's features on the frame timeline as stacked lanes
(loudness, onsets, brightness, each stem's envelope, the beat grid, section markers): a
pure renderer, data → uint8 RGB, no antialiasing, drawn once per track.

:class:`TimelinePlot` (anywidget) shows that image and draws the playhead in the browser, so
scrubbing and playback move it with no kernel round trip; clicking or dragging on the plot
seeks. It holds the moment twice — ``frame`` (int, the slider's unit) and ``seconds``
(float track time, the stem mixer's unit) — and keeps them consistent in the browser,
which is what lets ``jslink`` join an integer frame slider to the mixer's clock.

:class:`Timeline` puts them together: ``ipywidgets.Play`` jslinked to an ``IntSlider`` of
frames, jslinked to the plot; :meth:`Timeline.link_mixer` joins a
:class:`~stratum_kernel.studio.mixer_widget.StemMixer` (position and play/pause, in the browser).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import numpy as np
import traitlets

from stratum_kernel.core.timeline import STEM_NAMES, FrameFeatures
from stratum_kernel.viz.raster import draw_text, encode_png, parse_hex, text_size

BACKGROUND = "#f7f6f3"
GRID = "#d9d6cf"
LANE_COLORS = {"rms": "#3a3a3a", "onset": "#d2691e", "centroid": "#2f6db5",
               "drums": "#26222b", "bass": "#6b3fa0", "other": "#2d8f8f", "vocals": "#c74882"}
MARKER_COLOR = "#1f1f1f"  # section markers: dotted, dark (the playhead is red)
BEAT_COLOR = "#8a8578"


def column_peaks(values: np.ndarray, width: int) -> np.ndarray:
    """float32 [width]: the maximum of ``values`` [n] over each pixel column's frames."""
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    n = len(v)
    if n == 0:
        return np.zeros(width, np.float32)
    starts = np.minimum(np.floor(np.arange(width) * n / width).astype(np.int64), n - 1)
    # reduceat: max over [starts[i], starts[i+1]); a repeated start gives v[start] itself
    return np.maximum.reduceat(v, starts).astype(np.float32)


def feature_lanes(ff: FrameFeatures, *, width: int = 900, lane_height: int = 16,
                  label_scale: int = 1) -> np.ndarray:
    """uint8 [H, width, 3]: one lane per feature (filled from the lane's floor, value 1.0
    fills it), then a beat row; section markers as vertical lines through every lane.
    Lanes: rms, onset, centroid, then each stem's envelope that ``ff`` has."""
    lanes = [(name, ff.values[name]) for name in ("rms", "onset", "centroid")
             if name in ff.values]
    lanes += [(s, ff.stems[s]["envelope"]) for s in STEM_NAMES
              if s in ff.stems and "envelope" in ff.stems[s]]
    beat_h = max(4, lane_height // 3)
    height = len(lanes) * lane_height + beat_h
    img = np.empty((height, width, 3), np.uint8)
    img[:] = parse_hex(BACKGROUND)
    grid = parse_hex(GRID)
    for k, (name, series) in enumerate(lanes):
        top = k * lane_height
        floor = top + lane_height - 1
        img[floor, :] = grid
        peaks = np.clip(column_peaks(series, width), 0.0, 1.0)
        fill = np.floor(peaks * (lane_height - 3) + 0.5).astype(np.int64)
        rows = np.arange(lane_height - 1)[:, None]  # 0 = lane top
        mask = rows >= (lane_height - 1 - fill)[None, :]
        block = img[top:floor]
        block[mask] = parse_hex(LANE_COLORS.get(name, "#555555"))
        th, tw = text_size(name.upper(), label_scale)
        img[top + 1: top + th + 3, 1: tw + 5] = parse_hex(BACKGROUND)
        draw_text(img, 3, top + 2, name.upper(), (70, 70, 70), scale=label_scale)
    n = max(1, ff.n_frames)
    beat_top = len(lanes) * lane_height
    for b in np.asarray(ff.beat_frames, dtype=np.int64):
        x = int(b * width // n)
        if 0 <= x < width:
            img[beat_top:height, x] = parse_hex(BEAT_COLOR)
    for t in ff.markers:
        i = int(np.floor((t - ff.start) * ff.fps + 1e-6))
        if 0 <= i < ff.n_frames:
            img[::2, int(i * width // n)] = parse_hex(MARKER_COLOR)
    return img


_ESM = r"""
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "stratum-timeline-plot";
  root.style.cssText = "position:relative;cursor:pointer;user-select:none;max-width:100%";
  const img = document.createElement("img");
  img.draggable = false;
  img.style.cssText = "display:block;width:100%;image-rendering:pixelated";
  const head = document.createElement("div");
  head.style.cssText = "position:absolute;top:0;bottom:0;width:2px;margin-left:-1px;" +
    "background:#e0245e;pointer-events:none";
  root.append(img, head);
  el.append(root);
  let url = null;
  const setImage = () => {
    const data = model.get("image");
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([data], { type: "image/png" }));
    img.src = url;
    root.style.width = model.get("width") + "px";
  };
  const n = () => Math.max(1, model.get("n_frames"));
  const place = () => {
    head.style.left = (100 * (model.get("frame") + 0.5) / n()) + "%";
  };
  const secondsOf = (f) => model.get("offset") + f / model.get("fps");
  const onFrame = () => {
    place();
    const s = secondsOf(model.get("frame"));
    if (Math.abs(model.get("seconds") - s) >= 0.5 / model.get("fps")) {
      model.set("seconds", s);
      model.save_changes();
    }
  };
  const onSeconds = () => {
    const fps = model.get("fps");
    let f = Math.floor((model.get("seconds") - model.get("offset")) * fps + 1e-6);
    f = Math.max(0, Math.min(n() - 1, f));
    if (f !== model.get("frame")) {
      model.set("frame", f);
      model.save_changes();
      place();
    }
  };
  const seekTo = (ev) => {
    const r = root.getBoundingClientRect();
    const x = Math.max(0, Math.min(r.width - 1, ev.clientX - r.left));
    model.set("frame", Math.floor(x / r.width * n()));
    model.save_changes();
    onFrame();
  };
  let dragging = false;
  root.addEventListener("pointerdown", (ev) => { dragging = true; seekTo(ev); });
  window.addEventListener("pointerup", () => { dragging = false; });
  root.addEventListener("pointermove", (ev) => { if (dragging) seekTo(ev); });
  model.on("change:image", setImage);
  model.on("change:frame", onFrame);
  model.on("change:seconds", onSeconds);
  model.on("change:n_frames", place);
  setImage();
  place();
  return () => { if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""


class TimelinePlot(anywidget.AnyWidget):
    """A feature plot (PNG) with a client-side playhead; ``frame`` ↔ ``seconds`` in the
    browser (seconds = offset + frame / fps)."""

    _esm = _ESM
    image = traitlets.Bytes(b"").tag(sync=True)
    width = traitlets.Int(900).tag(sync=True)
    n_frames = traitlets.Int(1).tag(sync=True)
    fps = traitlets.Float(24.0).tag(sync=True)
    offset = traitlets.Float(0.0).tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)
    seconds = traitlets.Float(0.0).tag(sync=True)

    @traitlets.observe("frame")
    def _frame_to_seconds(self, change) -> None:
        # the same rule as the browser, for changes made in Python
        s = self.offset + change["new"] / self.fps
        if abs(self.seconds - s) >= 0.5 / self.fps:
            self.seconds = s


class Timeline:
    """Play + frame slider + feature plot, linked in the browser.

    ``observe(fn)``: fn(frame) on every frame change (from the slider, the play button, a
    click on the plot, or a linked mixer). ``time_s`` is the track time of the frame.
    """

    def __init__(self, ff: FrameFeatures | None = None, *, width: int = 900,
                 lane_height: int = 16):
        import ipywidgets as w

        self.width = int(width)
        self.lane_height = int(lane_height)
        self.slider = w.IntSlider(value=0, min=0, max=1, description="frame",
                                  continuous_update=True, layout=w.Layout(flex="1 1 auto"),
                                  style={"description_width": "48px"})
        self.slider.add_class("stratum-frame-slider")
        self.play = w.Play(value=0, min=0, max=1, step=1, interval=42, show_repeat=False,
                           description="play")
        self.label = w.HTML(layout=w.Layout(width="150px"))
        self.plot = TimelinePlot(width=self.width)
        self._links = [w.jslink((self.play, "value"), (self.slider, "value")),
                       w.jslink((self.plot, "frame"), (self.slider, "value"))]
        self._mixer_links: list[Any] = []
        self._observers: list[Callable[[int], None]] = []
        self.fps = 24.0
        self.start = 0.0
        self.n_frames = 1
        self.slider.observe(self._changed, names="value")
        self.widget = w.VBox([w.HBox([self.play, self.slider, self.label],
                                     layout=w.Layout(align_items="center")), self.plot])
        self.widget.add_class("stratum-timeline")
        if ff is not None:
            self.set_track(ff)

    def set_track(self, ff: FrameFeatures, frame: int = 0) -> None:
        """Show a track: its feature plot, frame range and clock."""
        self.fps, self.start, self.n_frames = float(ff.fps), float(ff.start), int(ff.n_frames)
        image = encode_png(feature_lanes(ff, width=self.width, lane_height=self.lane_height))
        frame = int(np.clip(frame, 0, self.n_frames - 1))
        self.play.playing = False
        with self.plot.hold_sync():
            self.plot.image = image
            self.plot.n_frames = self.n_frames
            self.plot.fps = self.fps
            self.plot.offset = self.start
        self.play.interval = max(10, round(1000 / self.fps))
        for wdg in (self.slider, self.play):
            wdg.max = max(1, self.n_frames - 1)
        self.slider.value = frame
        self.plot.frame = frame
        self._update_label(frame)

    @property
    def frame(self) -> int:
        return int(self.slider.value)

    @frame.setter
    def frame(self, value: int) -> None:
        self.slider.value = int(np.clip(value, 0, self.n_frames - 1))

    @property
    def time_s(self) -> float:
        return self.start + self.frame / self.fps

    def observe(self, fn: Callable[[int], None]) -> None:
        self._observers.append(fn)

    def _update_label(self, frame: int) -> None:
        t = self.start + frame / self.fps
        self.label.value = (f"<span style='font:12px monospace'>{int(t // 60)}:{t % 60:05.2f}"
                            f" · {frame}/{self.n_frames - 1}</span>")

    def _changed(self, change) -> None:
        frame = int(change["new"])
        self._update_label(frame)
        for fn in list(self._observers):
            fn(frame)

    def link_mixer(self, mixer: Any) -> list:
        """Share the clock with a StemMixer in the browser: the plot's ``seconds`` with the
        mixer's ``position`` and the play button with its ``playing``."""
        import ipywidgets as w

        for link in self._mixer_links:
            link.unlink()
        self._mixer_links = [w.jslink((self.plot, "seconds"), (mixer, "position")),
                             w.jslink((self.play, "playing"), (mixer, "playing"))]
        return self._mixer_links
