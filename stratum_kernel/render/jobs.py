"""A render config resolved into per-track jobs, and the frames of a job.

:class:`RenderContext` loads once what a run needs (album, model, analysis, decoder) and
builds each track's :class:`TrackJob` — the one place a job is assembled, for a render, the
studio's live preview, a preview clip and a distributed chunk alike: the track's time span,
its frame features (with the mixer's per-stem weights), seeds, the layered preset, its
controller plan, post-FX and overlay painters. Plans are remembered per (track, controller
key): a change that only touches post-FX re-plans nothing.

:class:`PersistenceWindow` post-processes a job's frames in order and keeps the decoded
frames that persistence (frame feedback) needs for the next call; a call that does not
continue the previous one decodes its history afresh. Every path that makes frames goes
through it, so a frame is the same pixels whichever path made it and however the track was
cut into calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from stratum_kernel.analysis.cache import analyze_album
from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.mixer import MixerRenderSpec, apply_reactive_weights
from stratum_kernel.core.errors import ConfigError, RenderError
from stratum_kernel.core.schema import validation_error
from stratum_kernel.core.timeline import FrameFeatures, frame_count
from stratum_kernel.motion.choice import AUTO, PresetChoice, choose_preset
from stratum_kernel.motion.controller import LatentController, TrackPlan
from stratum_kernel.motion.presets import (
    Preset,
    deep_merge,
    list_presets,
    load_preset,
    merge_preset_layers,
)
from stratum_kernel.picture.decoder import FrameDecoder
from stratum_kernel.picture.model import load_model
from stratum_kernel.picture.postfx import (
    PostFXParams,
    apply_postfx,
    history_frames,
    window_frames,
)
from stratum_kernel.render.album_checks import section_start, validate_against_album
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.sections import SectionedPlan, SectionLook, blend_looks
from stratum_kernel.viz.overlay import build_overlay

log = logging.getLogger(__name__)

Decode = Callable[[int, int], np.ndarray]


def controller_key(preset: Preset) -> str:
    """What the latent controller sees of a preset (not post-FX, name or description)."""
    data = preset.model_dump(mode="json", exclude={"postfx", "name", "description"})
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrackJob:
    """Everything needed to make one track's frames: times, plan, post-FX, seeds.

    Frame i of the film shows track time ``start + i / fps``; ``n_frames`` =
    round((end - start) × fps).
    """

    track_id: str
    audio_path: Path
    start: float
    end: float
    fps: float
    n_frames: int
    seed: int
    postfx_seed: int
    preset: Preset
    postfx: PostFXParams
    features: FrameFeatures
    plan: TrackPlan
    painters: list = field(default_factory=list)
    mixer: MixerRenderSpec | None = None  # per-stem weights (picture) and soundtrack
    controller_key: str = ""
    preset_choice: dict | None = None  # how the preset was chosen (meta.json)
    looks: list[SectionLook] | None = None  # sections with their own looks (the first: own)

    @property
    def modulated_persistence(self) -> bool:
        """Whether the audio can switch a trail on (persistence or feedback modulated)."""
        return bool({"persistence", "feedback"} & set(self.plan.modulation))

    @property
    def all_postfx(self) -> list[PostFXParams]:
        return [lk.postfx for lk in self.looks] if self.looks else [self.postfx]

    def history_count(self, first_frame: int) -> int:
        """Decoded frames before ``first_frame`` that post-FX needs for its trails (the most
        any of the track's looks needs)."""
        return max(history_frames(p, first_frame, self.modulated_persistence)
                   for p in self.all_postfx)

    @property
    def window_frames(self) -> int:
        """The longest trail window of the track's looks (decoded frames kept in a run)."""
        return max(window_frames(p) for p in self.all_postfx)

    def frame_at(self, time_s: float) -> int:
        """The index of the frame showing track time ``time_s`` (clamped to the film)."""
        i = int(np.floor((time_s - self.start) * self.fps + 1e-6))
        return int(np.clip(i, 0, self.n_frames - 1))


@dataclass(frozen=True)
class _TrackTimeline:
    """The parts of a job that do not depend on the preset."""

    audio_path: Path
    start: float
    end: float
    n_frames: int
    seed: int
    postfx_seed: int
    features: FrameFeatures
    mixer: MixerRenderSpec | None


def build_painters(job: TrackJob, resolution: tuple[int, int]) -> list:
    """Overlay painters from the post-FX ``overlays`` specs (see ``viz/overlay.py``)."""
    return [
        build_overlay(spec, size=tuple(resolution), features=job.features, fps=job.fps,
                      track_id=job.track_id, audio_path=job.audio_path).paint
        for spec in job.postfx.overlays
    ]


def available_presets() -> list[Preset]:
    """Every bundled and user preset that loads (a broken user preset is skipped, with a
    warning, rather than stopping every ``auto`` choice)."""
    out = []
    for name in list_presets():
        try:
            out.append(load_preset(name))
        except ConfigError as err:
            log.warning("preset %r left out of the automatic choice: %s", name, err)
    return out


class RenderContext:
    """A RenderConfig resolved once: album, model, analysis, decoder and per-track jobs.

    Pass ``album``, ``analysis`` (anything with ``frame_features(track_id, fps=, start=,
    end=)``), ``model`` or ``decoder`` to reuse ones already loaded (the studio, workers,
    tests). ``max_plans``: controller plans remembered (least recently used go first).
    """

    def __init__(self, config: RenderConfig, *, album: Any = None, analysis: Any = None,
                 model: Any = None, decoder: FrameDecoder | None = None,
                 progress: bool = False, max_plans: int = 24):
        self.config = config
        self.progress = progress
        self.max_plans = int(max_plans)
        self._album = album
        self._analysis = analysis
        self._model = model
        self._decoder = decoder
        self._validated = False
        self._timelines: dict[str, _TrackTimeline] = {}
        self._jobs: dict[tuple[str, str], TrackJob] = {}
        self._plans: OrderedDict[tuple[str, str], TrackPlan] = OrderedDict()
        self._painters: dict[tuple[str, str], list] = {}
        self._choices: dict[str, PresetChoice] = {}
        self.counters = {"plans": 0, "plan_hits": 0}

    @property
    def album(self):
        if self._album is None:
            self._album = load_album(self.config.album_path)
        if not self._validated:
            validate_against_album(self.config, self._album)
            self._validated = True
        return self._album

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.config.model_path)
        return self._model

    @property
    def analysis(self):
        if self._analysis is None:
            self._analysis = analyze_album(self.album, progress=self.progress)
        return self._analysis

    @property
    def decoder(self) -> FrameDecoder:
        if self._decoder is None:
            self._decoder = FrameDecoder(self.model, self.config.decoder)
        return self._decoder

    def track_ids(self) -> list[str]:
        return self.config.track_ids(self.album)

    # -- jobs -------------------------------------------------------------------------

    def _timeline(self, track_id: str) -> _TrackTimeline:
        tl = self._timelines.get(track_id)
        if tl is not None:
            return tl
        cfg = self.config
        if track_id not in self.album.ids:
            raise RenderError(
                f"track {track_id!r} is not in the album ({', '.join(self.album.ids)})"
            )
        audio_path, duration = cfg.track_audio(self.album, track_id)
        start, end = cfg.time_span(track_id, duration)
        fps = float(cfg.frame_rate)
        ff = self.analysis.frame_features(track_id, fps=fps, start=start, end=end)
        mixer = cfg.mixer_for(track_id)
        if mixer is not None:
            ff = apply_reactive_weights(ff, mixer)
        n = frame_count(end - start, fps)
        if ff.n_frames != n:
            raise RenderError(f"track {track_id!r}: the features have {ff.n_frames} frames, "
                              f"expected {n}")
        tl = _TrackTimeline(audio_path, start, end, n, cfg.seed_for(track_id),
                            cfg.seed_for(track_id, "postfx"), ff, mixer)
        self._timelines[track_id] = tl
        return tl

    def _plan(self, track_id: str, preset: Preset, tl: _TrackTimeline) -> tuple[TrackPlan, str]:
        key = (track_id, controller_key(preset))
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            self.counters["plan_hits"] += 1
            return plan, key[1]
        plan = LatentController(self.model, preset, seed=tl.seed,
                                track_id=track_id).plan(tl.features)
        if plan.n_frames != tl.n_frames:
            raise RenderError(f"track {track_id!r}: the plan has {plan.n_frames} frames, "
                              f"expected {tl.n_frames}")
        self.counters["plans"] += 1
        self._plans[key] = plan
        while len(self._plans) > self.max_plans:
            self._plans.popitem(last=False)
        return plan, key[1]

    def preset_choice(self, track_id: str) -> PresetChoice:
        """The preset ``auto`` gives the track: the best fit for its character among the
        available presets (``motion/choice.py``)."""
        if track_id not in self._choices:
            character = self.analysis.character(track_id)
            self._choices[track_id] = choose_preset(character, available_presets())
        return self._choices[track_id]

    def _base_preset(self, track_id: str, preset: Preset | str | None):
        """(the base preset to layer, how it was chosen) for :meth:`job`."""
        if preset is not None and preset != AUTO:
            name = preset.name if isinstance(preset, Preset) else preset
            return preset, {"name": name, "by": "caller"}
        configured = AUTO if preset == AUTO else self.config.preset_name_for(track_id)
        if configured != AUTO:
            return configured, {"name": configured, "by": self.config.preset_origin(track_id)}
        choice = self.preset_choice(track_id)
        return choice.name, choice.to_dict()

    def forget_track(self, track_id: str) -> None:
        """Drop the track's kept jobs (after its settings changed; plans stay keyed)."""
        for key in [k for k in self._jobs if k[0] == track_id]:
            del self._jobs[key]

    def _section_looks(self, track_id: str, tl: _TrackTimeline, base: Any, eff: Preset,
                       postfx: PostFXParams, plan: Any) -> list[SectionLook]:
        """The track's own look, then one per section of render.yaml's ``sections`` that
        starts inside the rendered span (a section starting before it replaces the own
        look from the first frame)."""
        cfg = self.config
        track = self.album.track(track_id)
        fps = float(cfg.frame_rate)
        beat_s = 60.0 / max(float(tl.features.tempo), 1e-6)
        looks = [SectionLook(0, 0, eff, postfx, plan, {})]
        for j, sec in enumerate(cfg.track_config(track_id).sections):
            t = section_start(sec, track)
            if t >= tl.end:
                continue
            start = max(0, int(np.floor((t - tl.start) * fps + 1e-6)))
            where = f"{cfg.source or 'render config'} (tracks[{track_id}].sections[{j}])"
            name = sec.preset or (base.name if isinstance(base, Preset) else base)
            preset = merge_preset_layers(cfg.preset_for(track_id, name), sec.preset_overrides,
                                         source=where)
            try:
                look_fx = PostFXParams.model_validate(
                    deep_merge(cfg.postfx_for(track_id, preset).model_dump(mode="json"),
                               sec.postfx))
            except ValidationError as err:
                raise validation_error(f"{where} postfx", err, PostFXParams) from None
            sec_plan, _ = self._plan(track_id, preset, tl)
            fade = round(sec.crossfade_beats * beat_s * fps)
            look = SectionLook(start, fade, preset, look_fx, sec_plan,
                               {**sec.model_dump(mode="json"), "start_s": round(t, 4)})
            if start == 0:
                looks[0] = look
            else:
                looks.append(look)
        return looks

    def job(self, track_id: str, preset: Preset | str | None = None, *,
            sections: bool = True) -> TrackJob:
        """The job of a track with ``preset`` — a Preset or a preset name, layered with
        render.yaml's settings as the configured one is (:meth:`RenderConfig.preset_for`);
        None: the configured preset. The track's ``sections`` apply over it (their own
        presets, or this one), unless ``sections=False``. Jobs of the configured preset and
        of named presets are kept; plans are remembered per controller key."""
        cacheable = preset is None or isinstance(preset, str)
        key = (track_id, preset or "", sections) if cacheable else None
        if cacheable and key in self._jobs:
            return self._jobs[key]
        tl = self._timeline(track_id)
        base, choice = self._base_preset(track_id, preset)
        eff = self.config.preset_for(track_id, base)
        plan, ckey = self._plan(track_id, eff, tl)
        postfx = self.config.postfx_for(track_id, eff)
        looks = None
        if sections and self.config.track_config(track_id).sections:
            looks = self._section_looks(track_id, tl, base, eff, postfx, plan)
            plan = SectionedPlan(looks)
            # the decoded frames depend on every look's plan and where the looks change
            ckey = "+".join([controller_key(looks[0].preset),
                             *(f"{controller_key(lk.preset)}@{lk.start}/{lk.crossfade}"
                               for lk in looks[1:])])
        job = TrackJob(track_id, tl.audio_path, tl.start, tl.end, float(self.config.frame_rate),
                       tl.n_frames, tl.seed, tl.postfx_seed, eff, postfx, tl.features, plan,
                       mixer=tl.mixer, controller_key=ckey, preset_choice=choice, looks=looks)
        pkey = (track_id, json.dumps(postfx.overlays, sort_keys=True))
        if pkey not in self._painters:
            self._painters[pkey] = build_painters(job, self.config.resolution)
        job.painters = self._painters[pkey]
        if cacheable:
            self._jobs[key] = job
        return job

    # -- frames -------------------------------------------------------------------------

    def decode(self, job: TrackJob, start: int, stop: int) -> np.ndarray:
        """Decoded generator frames uint8 [stop - start, h, w, 3]."""
        if stop <= start:
            h, w = self.decoder.frame_size
            return np.zeros((0, h, w, 3), np.uint8)
        return self.decoder.decode(job.plan.latents(start, stop))

    def postfx(self, job: TrackJob, decoded: np.ndarray, start: int,
               history: np.ndarray | None) -> np.ndarray:
        """Output frames uint8 [n, H, W, 3] for decoded frames ``start .. start + n``."""
        stop = start + len(decoded)

        def look(params: PostFXParams, plan: Any) -> np.ndarray:
            k = max(0, len(history) if history is not None else 0)
            need = history_frames(params, start, job.modulated_persistence)
            hist = None if history is None or not need else history[k - need:]
            return apply_postfx(
                decoded, params, frame_indices=range(start, stop), seed=job.postfx_seed,
                track_id=job.track_id, out_size=self.config.resolution,
                modulation=plan.postfx_modulation(start, stop), history=hist,
                overlays=job.painters, fps=job.fps, start_time=job.start,
            )

        if not job.looks:
            return look(job.postfx, job.plan)
        return blend_looks([(w, look(job.looks[k].postfx, job.looks[k].plan))
                            for k, w in job.plan.active(start, stop)])

    def window(self, job: TrackJob, decode: Decode | None = None) -> PersistenceWindow:
        """A :class:`PersistenceWindow` over ``job`` (decoding with ``decode``, default
        :meth:`decode`)."""
        return PersistenceWindow(self, job, decode)

    def frames(self, job: TrackJob, start: int, stop: int) -> np.ndarray:
        """Final frames [start, stop) computed alone: exactly what the render writes."""
        check_range(job, start, stop)
        return self.window(job).frames(start, stop)


def check_range(job: TrackJob, start: int, stop: int) -> None:
    if not 0 <= start < stop <= job.n_frames:
        raise RenderError(f"frames {start}..{stop} are outside track {job.track_id!r} "
                          f"(0..{job.n_frames})")


class PersistenceWindow:
    """Output frames of one job, call after call, with the decoded history persistence needs.

    :meth:`postfx` turns decoded frames ``start .. start + n`` into output frames; when the
    call continues the previous one the history comes from the frames kept then, otherwise
    it is decoded again (so any call gives the frames a whole-track render gives).
    """

    def __init__(self, ctx: RenderContext, job: TrackJob, decode: Decode | None = None):
        self.ctx, self.job = ctx, job
        self.decode: Decode = decode or (lambda a, b: ctx.decode(job, a, b))
        self._stop: int | None = None
        self._kept: np.ndarray | None = None

    def postfx(self, start: int, decoded: np.ndarray) -> np.ndarray:
        job = self.job
        k = job.history_count(start)
        if not k:
            history = None
        elif self._stop == start and self._kept is not None and len(self._kept) >= k:
            history = self._kept[len(self._kept) - k:]
        else:
            history = self.decode(start - k, start)
        out = self.ctx.postfx(job, decoded, start, history)
        joined = decoded if history is None else np.concatenate([history, decoded])
        self._kept = joined[-max(1, job.window_frames):]
        self._stop = start + len(decoded)
        return out

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Decode and post-process frames [start, stop)."""
        return self.postfx(start, self.decode(start, stop))


# ------------------------------------------------------------------------ single frames

_CONTEXTS: dict[str, RenderContext] = {}


def _context_for(config_or_context: Any) -> RenderContext:
    if isinstance(config_or_context, RenderContext):
        return config_or_context
    if not isinstance(config_or_context, RenderConfig):
        raise TypeError("frame_at_time needs a RenderConfig or a RenderContext")
    key = config_or_context.model_dump_json() + str(config_or_context.base_dir)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        if len(_CONTEXTS) >= 2:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        ctx = _CONTEXTS[key] = RenderContext(config_or_context)
    return ctx


def frame_at_time(config_or_context: RenderConfig | RenderContext, track_id: str,
                  time_s: float, *, preset: Preset | str | None = None) -> np.ndarray:
    """The frame the render shows at track time ``time_s``: uint8 [H, W, 3], identical to
    the frame written before encoding (same plan, post-FX, persistence history, grain)."""
    ctx = _context_for(config_or_context)
    job = ctx.job(track_id, preset)
    i = job.frame_at(time_s)
    return ctx.frames(job, i, i + 1)[0]


def frames_at_times(config_or_context: RenderConfig | RenderContext, track_id: str,
                    times: Sequence[float] | None = None, *,
                    frames: tuple[int, int] | None = None,
                    preset: Preset | str | None = None) -> np.ndarray:
    """Several frames at once: at track ``times`` (seconds), or the frame range
    ``frames=(start, stop)``; uint8 [n, H, W, 3]. Consecutive frames are decoded once."""
    ctx = _context_for(config_or_context)
    job = ctx.job(track_id, preset)
    if frames is not None:
        return ctx.frames(job, *frames)
    idx = [job.frame_at(t) for t in (times or [])]
    if not idx:
        h, w = ctx.config.resolution[1], ctx.config.resolution[0]
        return np.zeros((0, h, w, 3), np.uint8)
    lo, hi = min(idx), max(idx) + 1
    if hi - lo <= 4 * len(idx) + 16:
        block = ctx.frames(job, lo, hi)
        return np.stack([block[i - lo] for i in idx])
    return np.stack([ctx.frames(job, i, i + 1)[0] for i in idx])


__all__ = ["PersistenceWindow", "RenderContext", "TrackJob", "build_painters",
           "check_range", "controller_key", "frame_at_time", "frames_at_times"]
