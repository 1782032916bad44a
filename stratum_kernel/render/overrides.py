"""Overrides of render.yaml: dotted keys, and the one table of command-line flags and
notebook parameters that set them.

``apply_overrides(raw, {"frame_rate": 30, "controller.preset": "pulse", "tracks": ["a"]},
known=...)`` sets values in a raw config dict *before* validation, so a bad value is
reported by its field like any other. :data:`OVERRIDES` lists every value the command line
(``stratum render --fps 30``) and the notebooks (papermill ``-p fps 30``) can set; the
argparse flags (:func:`add_override_arguments`, :func:`overrides_from_cli`) and the notebook
parameters (:func:`overrides_from_params`) are both derived from it, so the two can never
disagree. A preset chosen this way applies to every track (as ``--preset`` always did).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.motion.presets import looks_like_path


@dataclass(frozen=True)
class Override:
    """One render.yaml value settable from outside: its dotted ``key``, the command-line
    ``flag`` (without ``--``; None: notebooks only) and notebook ``param`` (None: command
    line only) that set it, with the flag's help, type and metavar. ``path``: the value is
    a folder, resolved against the folder the user stands in (or the notebook runs in)."""

    key: str
    flag: str | None
    param: str | None
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    path: bool = False

    @property
    def dest(self) -> str | None:
        """The argparse attribute of the flag."""
        return None if self.flag is None else self.flag.replace("-", "_")


OVERRIDES: tuple[Override, ...] = (
    Override("album_dir", "album", "album_dir", "album folder (album_dir)", metavar="DIR",
             path=True),
    Override("model_dir", "model-dir", "model_dir", "generator model folder (model_dir)",
             metavar="DIR", path=True),
    Override("output_root", "output-root", "output_root", "where run folders go",
             metavar="DIR", path=True),
    Override("run_id", "run-id", "run_id", "name of the run folder", metavar="ID"),
    Override("controller.preset", "preset", "preset",
             "preset for every track (overrides track presets)"),
    Override("frame_rate", "fps", "fps", "frame rate, 24-120", type=float),
    Override("resolution", "resolution", "resolution", "output size, e.g. 1280x720",
             metavar="WxH"),
    Override("tracks", "tracks", "tracks", "comma-separated track ids to render",
             metavar="A,B"),
    Override("render.duration", "duration", "duration",
             "render at most this many seconds per track (previews)", type=float,
             metavar="SECONDS"),
    Override("decoder.batch_size", "batch-size", None, "decoder batch size", type=int),
    Override("decoder.precision", "precision", None,
             "decoder precision: float32, bfloat16 (PyTorch), auto (bfloat16 where the CPU "
             "computes it natively)"),
    Override("render.chunk_frames", "chunk-frames", None, "frames per resumable chunk",
             type=int),
    Override("seed", "seed", "seed", "the global seed", type=int),
    Override("scheduler", "scheduler", "scheduler",
             "render on a Dask cluster: tcp://host:8786, or local[:N] for a LocalCluster of "
             "N worker processes (docs/SCALE_OUT.md)", metavar="ADDRESS"),
)


def _track_list(value: Any) -> Any:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return value


def _dotted(values: Mapping[str, Any], name_of: Callable[[Override], str | None],
            resolve_paths: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in OVERRIDES:
        name = name_of(o)
        value = None if name is None else values.get(name)
        if value is None:
            continue
        if o.key == "tracks":
            value = _track_list(value)
        elif resolve_paths and (o.path or (o.key == "controller.preset"
                                            and looks_like_path(value))):
            value = str(Path(value).expanduser().resolve())
        out[o.key] = value
    if "controller.preset" in out:
        out["tracks.*.preset"] = None  # a preset given here applies to every track
    return out


def add_override_arguments(parser: Any) -> None:
    """Add a flag per :data:`OVERRIDES` entry to an argparse parser."""
    for o in OVERRIDES:
        if o.flag is None:
            continue
        kwargs: dict[str, Any] = {"help": o.help, "dest": o.dest}
        if o.type is not None:
            kwargs["type"] = o.type
        if o.metavar is not None:
            kwargs["metavar"] = o.metavar
        parser.add_argument(f"--{o.flag}", **kwargs)


def overrides_from_cli(args: Any) -> dict[str, Any]:
    """Dotted overrides from parsed flags (flags not given are skipped). A folder or preset
    file on the command line is relative to where the user stands (a path inside
    render.yaml stays relative to render.yaml)."""
    return _dotted(vars(args), lambda o: o.dest, resolve_paths=True)


def overrides_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted overrides from notebook parameters that are set (folders and preset files
    resolved against the folder the notebook runs in)."""
    return _dotted(params, lambda o: o.param, resolve_paths=True)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[0] == "tracks" and len(parts) > 2 and parts[1] == "*":
        # tracks.*.field: set on every listed track
        tracks = [_as_track_dict(t) for t in data.get("tracks") or []]
        for t in tracks:
            _set_dotted(t, ".".join(parts[2:]), value)
        data["tracks"] = tracks
        return
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            idx = int(part) if part.isdigit() else -1
            if not 0 <= idx < len(node):
                where = ".".join(parts[:i])
                raise ConfigError("overrides", key, f"no list item {part!r} at {where}")
            node[idx] = _as_track_dict(node[idx]) if parts[0] == "tracks" else node[idx]
            node = node[idx]
            continue
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict | list):
            raise ConfigError("overrides", key, f"{'.'.join(parts[: i + 1])} is not a section")
        node = nxt
    if isinstance(node, list):
        raise ConfigError("overrides", key, "cannot replace a whole list item; name its field")
    node[parts[-1]] = value


def _as_track_dict(t: Any) -> dict[str, Any]:
    return {"id": t} if isinstance(t, str) else dict(t)


def _select_tracks(data: dict[str, Any], ids: Any) -> None:
    """``tracks`` override: keep render.yaml's settings for the chosen ids, in the given
    order; ids render.yaml does not list get bare entries."""
    if isinstance(ids, str):
        ids = [s.strip() for s in ids.split(",") if s.strip()]
    if not isinstance(ids, list):
        raise ConfigError("overrides", "tracks", "give track ids as a list or 'a,b,c'")
    existing = {}
    for t in data.get("tracks") or []:
        td = _as_track_dict(t)
        existing[td.get("id")] = td
    data["tracks"] = [existing.get(i, i) if isinstance(i, str) else i for i in ids]


def apply_overrides(
    data: Mapping[str, Any], overrides: Mapping[str, Any] | None, *, known: Sequence[str]
) -> dict[str, Any]:
    """Dotted-key overrides over a raw config dict (before validation, so that bad values
    are reported by field). ``tracks`` with a list of ids selects tracks;
    ``tracks.*.preset`` sets a field on every listed track."""
    out = copy.deepcopy(dict(data))
    if not overrides:
        return out
    known = list(known)
    for key, value in overrides.items():
        head = key.split(".")[0]
        if head not in known:
            close = difflib.get_close_matches(head, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError("overrides", key, f"unknown key; {hint}known: {', '.join(known)}")
        if key == "tracks" and (
            isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            _select_tracks(out, value)
        else:
            _set_dotted(out, key, value)
    return out


