"""``stratum init FOLDER``: a starting tracklist.json and render.yaml for a folder of songs.

Reads every audio file of the folder (hidden files aside), analyses it (cached, as
``analyze`` and ``render`` do) and writes:

- ``tracklist.json``: per track its id (from the file name), ``src``, title and artist
  (from the file's tags, else the file name), ``bpm`` (the tempo estimate), ``key``
  (Krumhansl–Schmuckler on the chroma, ``analysis/key.py``) and ``markers`` at the detected
  section changes (``analysis/sections.py``). In track-number order when every file has a
  track tag, else in name order. Everything in it is a starting point to edit.
- ``render.yaml``: the project's shipped render.yaml for this folder — ``album_dir: .``, the
  project's model, runs under ``FOLDER/renders`` — with one entry per track saying which
  preset ``auto`` chose for it and why; set ``preset:`` on a track to choose another.

It never overwrites either file without ``--force``. Then render with
``stratum render --config FOLDER/render.yaml`` (or ``make render ALBUM=FOLDER``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from stratum_kernel.audio.album import TRACKLIST_NAME, load_album
from stratum_kernel.audio.tags import read_tags, track_number
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import project_root, write_text_atomic

CONFIG_NAME = "render.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="a folder of audio files")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing tracklist.json / render.yaml")
    parser.add_argument("--no-separate", action="store_true",
                        help="do not separate stems (faster; presets then ignore stem shares)")
    parser.add_argument("--stems-backend", choices=("auto", "dsp", "demucs"), default="auto")


def _entry(track: Any, tf: Any, tags: dict[str, str]) -> tuple[dict[str, Any], dict]:
    """(the tracklist entry, what was estimated: key confidence, preset choice)."""
    from stratum_kernel.analysis.key import estimate_key
    from stratum_kernel.analysis.sections import estimate_sections

    key = estimate_key(tf)
    sections = estimate_sections(tf)
    entry: dict[str, Any] = {
        "id": track.id,
        "src": Path(track.audio_path).relative_to(track.album_dir).as_posix(),
        "title": tags.get("title") or track.title,
    }
    if tags.get("artist"):
        entry["artist"] = tags["artist"]
    entry["bpm"] = round(float(tf.tempo_estimate), 1)
    if key is not None:
        entry["key"] = key.name
    entry["markers"] = [{"time": t, "label": f"section {i + 2}"} for i, t in enumerate(sections)]
    return entry, {"key_confidence": None if key is None else round(key.confidence, 3)}


def _ordered(album: Any, tags: dict[str, dict[str, str]]) -> list[Any]:
    numbers = {t.id: track_number(tags[t.id]) for t in album.tracks}
    if all(n is not None for n in numbers.values()) and len(set(numbers.values())) == len(numbers):
        return sorted(album.tracks, key=lambda t: numbers[t.id])
    return list(album.tracks)


def render_yaml_for(folder: Path, tracks: list[tuple[str, str, list[str]]]) -> str:
    """The shipped render.yaml made for ``folder``: its album, the project's model, runs in
    ``folder/renders``, and ``tracks`` — (id, auto preset, reasons) — listed with the
    choice as a comment."""
    shipped = (project_root() / CONFIG_NAME).read_text(encoding="utf-8")
    head = shipped.split("\ntracks:", 1)[0].rstrip().split("\n")
    while head and head[-1].startswith("#"):  # the shipped list's own comment
        head.pop()
    head = "\n".join(head).rstrip() + "\n"
    models = (project_root() / "models").resolve()
    head = re.sub(r"(?m)^album_dir: .*$", "album_dir: .", head)
    head = re.sub(r"(?m)^model_dir: .*$", f"model_dir: {json.dumps(str(models))}", head)
    head = re.sub(r"(?m)^# render\.yaml — .*$",
                  f"# render.yaml for {folder.name} — written by `stratum init`; edit freely.",
                  head)
    lines = ["", "# The tracks, in album order. `auto` chose each one's preset from its "
             "analysis (why:", "# meta.json, `stratum analyze`); write `preset: NAME` on a "
             "track to choose another.", "tracks:"]
    for tid, preset, reasons in tracks:
        why = "; ".join(r.split(" (suits")[0] for r in reasons if not r.startswith("next"))
        lines.append(f"  - id: {tid}")
        lines.append(f"    # auto: {preset} ({why})" if why else f"    # auto: {preset}")
    return head + "\n".join(lines) + "\n"


def init_album(folder: Path, *, force: bool = False, separate: bool = True,
               stems_backend: str = "auto", progress: bool | str = True) -> dict[str, Any]:
    """Write ``folder/tracklist.json`` and ``folder/render.yaml`` (module docstring);
    returns what was written and estimated."""
    from stratum_kernel.analysis.cache import analyze_album
    from stratum_kernel.motion.choice import choose_preset
    from stratum_kernel.render.config import load_render_config
    from stratum_kernel.render.jobs import available_presets

    folder = Path(folder).resolve()
    targets = [folder / TRACKLIST_NAME, folder / CONFIG_NAME]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(existing[0], None,
                          f"already exists ({', '.join(p.name for p in existing)}); "
                          "`stratum init --force` replaces it")
    album = load_album(folder, files_only=True)
    analysis = analyze_album(album, separate_missing=separate, stems_backend=stems_backend,
                             progress=progress)
    presets = available_presets()
    tags = {t.id: read_tags(t.audio_path) for t in album.tracks}
    entries, rows, choices = [], [], []
    for track in _ordered(album, tags):
        tf = analysis.tracks[track.id]
        entry, extra = _entry(track, tf, tags[track.id])
        choice = choose_preset(analysis.character(track.id), presets)
        entries.append(entry)
        choices.append((track.id, choice.name, list(choice.reasons)))
        rows.append({**entry, **extra, "preset": choice.name, "reasons": list(choice.reasons)})
    config_text = render_yaml_for(folder, choices)
    write_text_atomic(targets[0], json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(targets[1], config_text)
    load_render_config(targets[1])  # what was written loads (and names its tracks)
    load_album(folder)
    return {"folder": str(folder), "tracklist": str(targets[0]), "config": str(targets[1]),
            "tracks": rows}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"wrote {report['tracklist']}", f"wrote {report['config']}", ""]
    for r in report["tracks"]:
        key = r.get("key", "-")
        if r.get("key_confidence") is not None and r["key_confidence"] < 0.05:
            key += " (unsure)"
        lines.append(f"  {r['id']}: {r['title']!r} · {r['bpm']:g} bpm · {key} · "
                     f"{len(r['markers'])} section change(s) · preset {r['preset']}")
    lines += ["", "Edit them as you like, then render:",
              f"  stratum render --config {Path(report['config'])}",
              f"  make render ALBUM={report['folder']}"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = init_album(args.folder, force=args.force, separate=not args.no_separate,
                        stems_backend=args.stems_backend, progress=True)
    print(format_report(report))
    return 0
