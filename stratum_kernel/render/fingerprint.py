"""What a resumed run must share with the interrupted one: its picture and its sound.

A run folder keeps ``.work/fingerprint.json``: the digests of everything that shaped its
output so far, in two parts, each with its components so that a refused resume can say
*what* changed.

- **picture**: what changes a frame or a video segment's bytes — the config (without where
  chunks run, the decoder's batch size and threads, and the sound settings), the sha256 of
  the model head, the decoder that really runs (provider and precision), the libraries
  that shape pixels and x264 bytes, stratum's own code that turns features into pixels
  (the sources of ``motion`` and ``picture``), and per track the digest of its frame
  features (so the content of its audio and stems, its tracklist entry — bpm, markers —
  and the album-wide scaling), its span and seeds, its resolved preset, post-FX, sections
  and the pixels of its overlay strips (the saved panel values included).
- **sound**: what changes the films' audio and nothing else — the ``audio`` settings, the
  AAC settings, the content of each track's audio file and the mixer's soundtrack.

Finished chunks survive a resume only when the picture is unchanged; a changed sound only
remakes the audio and joins the films again (no frame is rendered twice).
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.core.digests import file_sha256
from stratum_kernel.film.encode import ffmpeg_version
from stratum_kernel.render.jobs import RenderContext, TrackJob

# config sections that only change the sound (their effect is in the "sound" part)
SOUND_CONFIG = ("audio",)
SOUND_ENCODE = ("audio_codec", "audio_bitrate", "audio_sample_rate", "audio_channels")
PIXEL_LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "opencv-python-headless")


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _arrays_sha(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype}:{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def features_digest(job: TrackJob) -> str:
    """The digest of a job's frame features: every series, the beats, markers, sections."""
    ff = job.features
    arrays = {f"v/{k}": v for k, v in ff.values.items()}
    arrays.update({f"s/{s}/{k}": v for s, d in ff.stems.items() for k, v in d.items()})
    arrays["beats"] = np.asarray(ff.beat_frames, dtype=np.int64)
    arrays["section"] = np.asarray(ff.section, dtype=np.int32)
    arrays["markers"] = np.asarray(ff.markers, dtype=np.float64)
    return _arrays_sha(arrays)


def _overlays_digest(job: TrackJob) -> str:
    strips = {}
    for i, paint in enumerate(job.painters):
        overlay = getattr(paint, "__self__", None)
        if overlay is not None and hasattr(overlay, "strip"):
            strips[str(i)] = overlay.strip
    return _arrays_sha(strips)


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "ffmpeg": ffmpeg_version()}
    for dist in PIXEL_LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


PICTURE_CODE = ("motion", "picture")  # the subpackages that turn features into pixels


def code_digest(root: Path, subpackages: tuple[str, ...]) -> str:
    """sha256 over the names and bytes of every ``*.py`` under ``root/<subpackage>``."""
    h = hashlib.sha256()
    for sub in subpackages:
        for path in sorted((root / sub).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def picture_code_digest() -> str:
    """The digest of stratum's own picture code (the latent controller, the decoder,
    post-FX): a run resumed by changed code would mix two pictures in one film."""
    return code_digest(Path(__file__).resolve().parents[1], PICTURE_CODE)


def run_fingerprint(ctx: RenderContext, jobs: Mapping[str, TrackJob]) -> dict[str, Any]:
    """{"picture": {component: digest}, "sound": {component: digest}} of a run whose
    tracks are ``jobs`` (see the module docstring)."""
    cfg = ctx.config
    data = cfg.to_meta()
    for key in ("run_id", "scheduler", "shared_storage", "source", *SOUND_CONFIG):
        data.pop(key, None)
    data.get("decoder", {}).pop("batch_size", None)
    data.get("decoder", {}).pop("threads", None)
    for key in SOUND_ENCODE:
        data.get("encode", {}).pop(key, None)
    # the mixer reaches the picture only through the features (its per-stem weights) and
    # the sound through the soundtrack: both are digested per track below
    data.pop("mixer", None)
    for track in data.get("tracks", []):
        track.pop("mixer", None)
    data.pop("resolved_paths", None)  # the same album moved elsewhere renders the same
    picture: dict[str, Any] = {
        "config": _sha(data),
        "model": file_sha256(ctx.decoder.onnx_path),
        # what really decodes (ONNX Runtime CPU / CUDA, PyTorch, bf16): `auto` resolves
        # per machine, and each gives its own last bits
        "decoder": ctx.decoder.provider,
        "libraries": _sha(_versions()),
        "code": picture_code_digest(),
    }
    sound: dict[str, Any] = {
        "audio": _sha(cfg.audio.model_dump(mode="json")),
        "encode": _sha({k: getattr(cfg.encode, k) for k in SOUND_ENCODE}),
    }
    for tid, job in jobs.items():
        picture[f"tracks.{tid}.features"] = features_digest(job)
        picture[f"tracks.{tid}.span"] = _sha([job.start, job.end, job.n_frames, job.seed,
                                              job.postfx_seed])
        picture[f"tracks.{tid}.preset"] = _sha(job.preset.model_dump(mode="json"))
        picture[f"tracks.{tid}.postfx"] = _sha(job.postfx.model_dump(mode="json"))
        picture[f"tracks.{tid}.overlays"] = _overlays_digest(job)
        picture[f"tracks.{tid}.sections"] = _sha(section_records(job))
        sound[f"tracks.{tid}.audio"] = file_sha256(job.audio_path)
        sound[f"tracks.{tid}.mixer"] = _sha(None if job.mixer is None else job.mixer.to_meta())
    return {"picture": picture, "sound": sound}


def section_records(job: TrackJob) -> list[dict[str, Any]]:
    """What each section look of a job is (for meta.json and the fingerprint): its start
    and crossfade in frames, the config entry, the preset and post-FX as resolved."""
    return [{"start_frame": lk.start, "crossfade_frames": lk.crossfade, "spec": lk.spec,
             "preset": lk.preset.name, "preset_resolved": lk.preset.model_dump(mode="json"),
             "postfx": lk.postfx.model_dump(mode="json")} for lk in (job.looks or [])[1:]]


def digest(part: Mapping[str, Any]) -> str:
    return _sha(dict(part))


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The components that differ between two parts (added or removed ones too)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


WHAT_CHANGED = {
    "config": "render.yaml or the overrides",
    "model": "the generator model",
    "decoder": "the decoder that runs (ONNX Runtime or PyTorch, CPU or CUDA, the precision)",
    "libraries": "a library that shapes pixels (numpy, onnxruntime, opencv, ffmpeg)",
    "code": "stratum's picture code (stratum_kernel/motion or picture: another version)",
    "features": "the audio, the stems or the tracklist entry (bpm, markers)",
    "span": "the track's trim or length",
    "preset": "the preset (its file or render.yaml's layers)",
    "postfx": "the post-FX settings",
    "overlays": "an overlay (its settings or the saved panel values)",
    "sections": "the track's sections (render.yaml's tracks[].sections: starts, presets, "
                "crossfades)",
}


def explain(components: list[str]) -> str:
    """'tracks.a.preset' → "track a: the preset (…)" for each changed component."""
    parts = []
    for c in components:
        if c.startswith("tracks."):
            tid, what = c[len("tracks."):].rsplit(".", 1)
            parts.append(f"track {tid}: {WHAT_CHANGED.get(what, what)}")
        else:
            parts.append(WHAT_CHANGED.get(c, c))
    return "; ".join(parts)
