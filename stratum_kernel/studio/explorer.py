"""The preset explorer: tune a preset against live, exact frames (JupyterLab and Voila).

::

    from stratum_kernel.studio.explorer import PresetExplorer
    explorer = PresetExplorer.from_config("render.yaml", preview="448x256")
    explorer                      # displays the widget

Pick a track; scrub or play the timeline over its feature plot; every preset parameter is a
control in the right-hand form (generated from the Preset model). Each change asks the
preview worker (:class:`~stratum_kernel.studio.preview.LatestWins`) for the frame at the
playhead: the newest request wins, so dragging a slider never builds a queue. Pane A shows
the preset being edited, pane B (A/B compare) another preset — the preset as loaded, or any
named one — at the same moment. Below, a strip of neighbouring frames.

Save writes the edited preset (validated) to ``presets/<name>.yaml`` and refuses to replace
a file until the overwrite is confirmed; load and reset bring a preset back. Frames are made
by :class:`~stratum_kernel.studio.preview.PreviewEngine`, so a render with the saved preset
gives exactly the frames the preview showed (at the same output size).
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.core.errors import ConfigError, StratumError
from stratum_kernel.core.paths import project_root, safe_name
from stratum_kernel.motion.presets import (
    Preset,
    list_presets,
    load_preset,
    preset_from_dict,
    save_preset,
    user_presets_dir,
)
from stratum_kernel.render.config import RenderConfig, load_render_config
from stratum_kernel.studio.preset_form import PresetForm
from stratum_kernel.studio.preview import (
    LatestWins,
    PreviewEngine,
    Stopwatch,
    encode_image,
    fields_set_by_config,
    preview_config,
    scaled_resolution,
    strip_indices,
)
from stratum_kernel.studio.sections_editor import SectionsEditor
from stratum_kernel.studio.transport import Timeline

log = logging.getLogger(__name__)
AS_LOADED = "(as loaded)"


@dataclass(frozen=True)
class PreviewRequest:
    """One pane's frame: track, frame index, base preset, and the neighbour strip."""

    pane: str
    track_id: str
    frame: int
    preset: Preset
    strip: int = 0
    strip_step: int = 6
    image_format: str = "bmp"


@dataclass
class PreviewResult:
    """What the worker hands back: kind 'draft' | 'frame' | 'strip'."""

    pane: str
    kind: str
    request: PreviewRequest
    frames: np.ndarray  # uint8 [n, H, W, 3]
    indices: list[int]
    images: list[bytes]
    ms: dict[str, float] = field(default_factory=dict)


def render_request(engine: PreviewEngine, req: PreviewRequest, ticket: Any) -> None:
    """The worker's job for one request: draft (when needed), exact frame, then strip,
    stopping between stages when a newer request arrived."""
    sw = Stopwatch()
    with sw("plan"):
        job = engine.job(req.track_id, req.preset)
    i = int(np.clip(req.frame, 0, job.n_frames - 1))

    def draft(frame: np.ndarray) -> None:
        ticket.publish(PreviewResult(req.pane, "draft", req, frame[None], [i],
                                     [encode_image(frame, req.image_format)],
                                     {"total": sw.total()}))

    with sw("frame"):
        out = engine.frames(req.track_id, i, i + 1, job=job, ticket=ticket, on_draft=draft)
    with sw("encode"):
        data = encode_image(out[0], req.image_format)
    ticket.publish(PreviewResult(req.pane, "frame", req, out, [i], [data],
                                 {**sw.ms, "total": sw.total()}))
    idx = strip_indices(i, job.n_frames, req.strip, req.strip_step)
    if not idx:
        return
    thumbs = []
    for j in idx:
        ticket.check()
        thumbs.append(engine.frames(req.track_id, j, j + 1, job=job, ticket=ticket)[0])
    stack = np.stack(thumbs)
    ticket.publish(PreviewResult(req.pane, "strip", req, stack, idx,
                                 [encode_image(_thumb(f), "jpeg") for f in stack],
                                 {"total": sw.total()}))


def _thumb(frame: np.ndarray, width: int = 160) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    if w <= width:
        return frame
    return cv2.resize(frame, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA)


class PresetExplorer:
    """Widgets and logic of the preset explorer (see the module docstring).

    engine: a PreviewEngine (its config's resolution is the preview size). track_id: the
    first track (default: the first of the config). strip / strip_step: neighbouring
    frames shown under the preview and their spacing in frames. presets_dir: where save
    writes (default ``<project>/presets``). display_width: on-screen width of a pane
    (pixels, or a CSS width such as ``'100%'``: the pane then follows its column).
    lazy_form: make each section of the parameter form when it is first opened.
    """

    def __init__(self, engine: PreviewEngine, *, track_id: str | None = None, strip: int = 4,
                 strip_step: int = 6, presets_dir: str | Path | None = None,
                 display_width: int | str = 384, plot_width: int = 800,
                 lazy_form: bool = True):
        import ipywidgets as w

        self.engine = engine
        self.strip_count, self.strip_step = int(strip), int(strip_step)
        self.presets_dir = Path(presets_dir) if presets_dir is not None else user_presets_dir()
        self.last: dict[str, PreviewResult] = {}
        self.errors: list[str] = []
        ids = engine.track_ids()
        self.track_id = track_id or ids[0]
        self.loaded = engine.file_preset(self.track_id)

        lay = w.Layout
        self.track_pick = w.Dropdown(options=self._track_options(), value=self.track_id,
                                     description="track", layout=lay(width="280px"))
        self.preset_pick = w.Dropdown(options=self._preset_names(), value=self.loaded.name,
                                      description="preset", layout=lay(width="240px"))
        self.load_button = w.Button(description="load", layout=lay(width="70px"),
                                    tooltip="load the chosen preset into the editor")
        self.reset_button = w.Button(description="reset", layout=lay(width="70px"),
                                     tooltip="back to the preset as loaded")
        self.save_name = w.Text(value=self.loaded.name, description="save as",
                                layout=lay(width="240px"), continuous_update=True)
        self.save_button = w.Button(description="save", button_style="primary",
                                    layout=lay(width="70px"))
        self.overwrite_button = w.Button(description="overwrite", button_style="danger",
                                         layout=lay(width="90px"))
        self.cancel_button = w.Button(description="cancel", layout=lay(width="70px"))
        self.confirm_box = w.HBox([self.overwrite_button, self.cancel_button],
                                  layout=lay(display="none"))
        self.message = w.HTML()
        self.compare = w.Checkbox(value=False, description="A/B compare", indent=False,
                                  layout=lay(width="120px"))
        self.b_pick = w.Dropdown(options=[AS_LOADED, *self._preset_names()], value=AS_LOADED,
                                 description="B", layout=lay(width="220px"),
                                 style={"description_width": "20px"})

        self.timeline = Timeline(width=plot_width)
        width = display_width if isinstance(display_width, str) else f"{int(display_width)}px"
        self.image_a = w.Image(format="bmp", layout=lay(width=width, border="1px solid #ccc"))
        self.image_a.add_class("stratum-preview-a")
        self.image_b = w.Image(format="bmp", layout=lay(width=width, border="1px solid #ccc"))
        self.image_b.add_class("stratum-preview-b")
        self.label_a, self.label_b = w.HTML(), w.HTML()
        # the two panes share the row (A/B compare) and shrink with the window
        self.pane_a = w.VBox([self.image_a, self.label_a],
                             layout=lay(flex="1 1 0", min_width="0"))
        self.pane_b = w.VBox([self.image_b, self.label_b],
                             layout=lay(display="none", flex="1 1 0", min_width="0"))
        self.strip_images = [w.Image(format="jpeg", layout=lay(width="120px"))
                             for _ in range(self.strip_count)]
        # shown with the first strip: an Image with no bytes draws as a broken picture
        self.strip_box = w.HBox(self.strip_images, layout=lay(display="none"))
        self.info = w.HTML()

        model = engine.model
        self.form = PresetForm(self.loaded, anchors=sorted(model.anchors),
                               n_axes=int(np.asarray(model.pca_axes).shape[0]),
                               overrides=fields_set_by_config(engine.config, self.track_id),
                               on_change=lambda _p: self.request(), lazy=lazy_form)
        self.worker = LatestWins(self._work, on_result=self._on_result, on_error=self._on_error,
                                 name="stratum-explorer")

        self.track_pick.observe(lambda c: self.set_track(c["new"]), names="value")
        self.load_button.on_click(lambda _b: self.load(self.preset_pick.value))
        self.reset_button.on_click(lambda _b: self.reset())
        self.save_button.on_click(lambda _b: self.save())
        self.overwrite_button.on_click(lambda _b: self.save(overwrite=True))
        self.cancel_button.on_click(lambda _b: self._hide_confirm("not saved"))
        self.compare.observe(self._toggle_compare, names="value")
        self.b_pick.observe(lambda _c: self.request(panes=("b",)), names="value")
        self.timeline.observe(lambda _f: self.request())
        self.timeline.set_track(engine.base_job(self.track_id).features)
        self.sections = SectionsEditor(engine, self.track_id, on_change=self.request)
        self.request()

    # ---- construction helpers -----------------------------------------------------
    @classmethod
    def from_config(cls, config: Any = None, *, preview: Any = None, overrides: Any = None,
                    **kwargs: Any) -> PresetExplorer:
        """An explorer over render.yaml (a path, a RenderConfig or None for the project's
        ``render.yaml``); preview: the preview size ('448x256'; default: the film's aspect
        at 256 rows)."""
        engine = make_engine(config, preview=preview, overrides=overrides)
        return cls(engine, **kwargs)

    def _track_options(self) -> list[tuple[str, str]]:
        out = []
        for tid in self.engine.track_ids():
            title = getattr(self.engine.album.track(tid), "title", "") or tid
            out.append((f"{title} ({tid})" if title != tid else tid, tid))
        return out

    def _preset_names(self) -> list[str]:
        return list_presets(self.presets_dir)

    # ---- requests -----------------------------------------------------------------
    @property
    def preset(self) -> Preset:
        """The preset being edited (the last valid state of the form)."""
        return self.form.preset

    def preset_b(self) -> Preset:
        name = self.b_pick.value
        if name == AS_LOADED:
            return self.loaded
        return load_preset(name, user_dir=self.presets_dir)

    def request(self, panes: tuple[str, ...] = ("a", "b")) -> None:
        """Ask for the frames at the playhead (pane B only when comparing)."""
        frame = self.timeline.frame
        for pane in panes:
            if pane == "b" and not self.compare.value:
                continue
            try:
                preset = self.preset if pane == "a" else self.preset_b()
            except StratumError as err:
                self._say(str(err), error=True)
                continue
            strip = self.strip_count if pane == "a" else 0
            self.worker.submit(PreviewRequest(pane, self.track_id, frame, preset, strip,
                                              self.strip_step), key=pane)

    def _work(self, req: PreviewRequest, ticket: Any) -> None:
        render_request(self.engine, req, ticket)

    def _on_result(self, _key: Any, _seq: int, res: PreviewResult) -> None:
        if res.kind == "strip":
            for img, data in zip(self.strip_images, res.images, strict=False):
                img.value = data
            for img in self.strip_images[len(res.images):]:
                img.layout.display = "none"
            self.strip_box.layout.display = "flex"
            self.last["strip"] = res
            return
        image, label = ((self.image_a, self.label_a) if res.pane == "a"
                        else (self.image_b, self.label_b))
        image.value = res.images[0]
        self.last[res.pane if res.kind == "frame" else f"{res.pane}-draft"] = res
        i = res.indices[0]
        t = self.timeline.start + i / self.timeline.fps
        name = html.escape(res.request.preset.name)
        state = "draft (history decoding…)" if res.kind == "draft" else "exact"
        label.value = (f"<span style='font:12px monospace'>{res.pane.upper()}: {name} · "
                       f"frame {i} · {t:.2f} s · {state}</span>")
        if res.pane == "a":
            ms = res.ms
            info = self.engine.cache_info()
            self.info.value = (
                f"<span style='font:11px monospace;color:#555'>{ms.get('total', 0):.0f} ms "
                f"(plan {ms.get('plan', 0):.0f}, frame {ms.get('frame', 0):.0f}, image "
                f"{ms.get('encode', 0):.0f}) · decoded {info['decoded']} · cached "
                f"{info['frames_cached']} frames, {info['plans_cached']} plans</span>")

    def _on_error(self, _key: Any, _seq: int, err: BaseException) -> None:
        text = str(err) if isinstance(err, StratumError) else f"{type(err).__name__}: {err}"
        self.errors.append(text)
        self._say(f"preview failed: {text}", error=True)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the preview worker is idle (tests, scripts)."""
        return self.worker.wait_idle(timeout)

    # ---- tracks, presets ----------------------------------------------------------
    def set_track(self, track_id: str) -> None:
        """Show another track with its configured preset."""
        if track_id == self.track_id:
            return
        self.track_id = track_id
        if self.track_pick.value != track_id:
            self.track_pick.value = track_id
        self.loaded = self.engine.file_preset(track_id)
        self.form.set_overrides(fields_set_by_config(self.engine.config, track_id))
        self.timeline.set_track(self.engine.base_job(track_id).features)
        self.sections.set_track(track_id)
        self._set_loaded(self.loaded)

    def _set_loaded(self, preset: Preset) -> None:
        self.loaded = preset
        self.save_name.value = preset.name
        if preset.name in self.preset_pick.options:
            self.preset_pick.value = preset.name
        self.form.set_preset(preset)  # notifies: requests the frames

    def load(self, name_or_path: str | os.PathLike) -> Preset:
        """Load a preset (name or YAML path) into the editor."""
        try:
            preset = load_preset(name_or_path, user_dir=self.presets_dir)
        except ConfigError as err:
            self._say(str(err), error=True)
            raise
        self._set_loaded(preset)
        self._say(f"loaded {preset.name}")
        return preset

    def reset(self) -> None:
        """Discard the edits: back to the preset as loaded."""
        self.form.set_preset(self.loaded)
        self._say(f"reset to {self.loaded.name} as loaded")

    def save(self, name: str | None = None, *, overwrite: bool = False) -> Path | None:
        """Save the edited preset as ``<presets_dir>/<name>.yaml`` (validated). An existing
        file is not replaced unless ``overwrite`` (the overwrite button); returns the path,
        or None when confirmation is needed."""
        name = (name or self.save_name.value or "").strip()
        try:
            safe_name(name, "preset name")
        except ValueError as err:
            self._say(str(err), error=True)
            return None
        preset = preset_from_dict({**self.preset.model_dump(mode="json"), "name": name},
                                  source="preset explorer")
        path = self.presets_dir / f"{name}.yaml"
        if path.exists() and not overwrite:
            self.confirm_box.layout.display = "flex"
            self._say(f"{path} exists — overwrite it?", error=True)
            return None
        saved = save_preset(preset, path, overwrite=overwrite)
        self._hide_confirm(f"saved {saved}")
        self.loaded = preset
        for pick in (self.preset_pick, self.b_pick):
            names = self._preset_names()
            pick.options = names if pick is self.preset_pick else [AS_LOADED, *names]
        self.preset_pick.value = name
        return saved

    def _hide_confirm(self, text: str) -> None:
        self.confirm_box.layout.display = "none"
        self._say(text)

    def _toggle_compare(self, change) -> None:
        self.pane_b.layout.display = "flex" if change["new"] else "none"
        if change["new"]:
            self.request(panes=("b",))

    def _say(self, text: str, *, error: bool = False) -> None:
        color = "#b3261e" if error else "#2e6b2e"
        self.message.value = (f"<span style='color:{color};font-size:12px'>"
                              f"{html.escape(text)}</span>")

    # ---- layout -------------------------------------------------------------------
    def header(self):
        import ipywidgets as w

        return w.VBox([
            w.HBox([self.track_pick, self.preset_pick, self.load_button, self.reset_button]),
            w.HBox([self.save_name, self.save_button, self.confirm_box, self.compare,
                    self.b_pick]),
            self.message,
        ])

    def previews(self):
        import ipywidgets as w

        return w.VBox([w.HBox([self.pane_a, self.pane_b],
                              layout=w.Layout(width="100%", grid_gap="8px")),
                       self.strip_box, self.info], layout=w.Layout(width="100%"))

    @property
    def widget(self):
        """The explorer laid out for JupyterLab: header, previews and timeline on the
        left, the parameter form on the right."""
        import ipywidgets as w

        if getattr(self, "_widget", None) is None:
            left = w.VBox([self.header(), self.previews(), self.timeline.widget,
                           self.sections.widget],
                          layout=w.Layout(flex="1 1 auto"))
            right = w.VBox([w.HTML("<b>preset parameters</b>"), self.form.widget],
                           layout=w.Layout(width="380px", min_width="340px"))
            self._widget = w.HBox([left, right], layout=w.Layout(align_items="flex-start"))
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        self.worker.close()


def make_engine(config: Any = None, *, preview: Any = None, overrides: Any = None,
                album: Any = None, analysis: Any = None, model: Any = None) -> PreviewEngine:
    """A PreviewEngine over render.yaml (path / RenderConfig / None) at ``preview`` size
    (default: the film's aspect at 256 rows; 'film' = the film's own size)."""

    if not isinstance(config, RenderConfig):
        path = config
        if path is None and (project_root() / "render.yaml").is_file():
            path = project_root() / "render.yaml"
        config = load_render_config(path, overrides)
    if preview != "film":
        size = preview if preview is not None else scaled_resolution(config.resolution, 256)
        config = preview_config(config, size)
    return PreviewEngine(config, album=album, analysis=analysis, model=model)
