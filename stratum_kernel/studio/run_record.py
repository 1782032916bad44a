"""The papermill run record: what ``notebooks/render_album.ipynb`` shows about a run.

``make render`` executes that notebook with papermill and writes the executed copy into
the run folder (``renders/<run-id>/render_album.ipynb``), next to the films and meta.json:
the resolved config, the album analysis and feature plots, the previews, and a summary
table with timings and digests. The notebook only calls the helpers here.

Timings and digests come from the run's typed record (``meta.json``,
:class:`~stratum_kernel.render.record.RunRecord`): each track's frame-phase timing, the
sha256 of the frames before encoding — the determinism proof — of the frames decoded back
from each film, and of the files.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stratum_kernel.render.record import RunRecord
from stratum_kernel.studio.transport import LANE_COLORS


def config_yaml(config: Any) -> str:
    """The resolved config (what meta.json records) as YAML, after the notes loading it
    made (e.g. a track list set aside for another album) as comments."""
    notes = "".join(f"# note: {n}\n" for n in getattr(config, "notes", []))
    return notes + yaml.safe_dump(config.to_meta(), sort_keys=False, width=96)


def preset_text(choice: Mapping[str, Any] | None, name: str) -> str:
    """'pulse (auto: tempo 120 bpm …)' / 'bloom (tracks[a].preset)' for tables."""
    if not choice:
        return name
    if choice.get("by") == "analysis":
        reasons = [r.split(" (suits")[0] for r in choice.get("reasons", [])
                   if not r.startswith("next best")]
        return f"{name} (auto: {', '.join(reasons[:3])})" if reasons else f"{name} (auto)"
    return f"{name} ({choice.get('by')})"


def summary_rows(record: RunRecord, seconds: float | None = None) -> list[dict[str, Any]]:
    """One row per track and one for the album film: frames, length, preset, seed, render
    time and speed of the frame phase, and the digests (first 12 hex digits).
    ``seconds``: the whole run's wall time, for the album row."""
    rows = []
    for t in record.tracks:
        tm = t.timing
        timed = tm is not None and tm.frames_rendered > 0
        rows.append({
            "track": t.id, "preset": preset_text(t.preset_choice, t.preset),
            "seed": "" if t.seed is None else t.seed,
            "frames": t.frames, "length s": round(float(t.duration), 2),
            "render s": round(tm.frames_seconds, 2) if timed else "",
            "fps": round(tm.fps, 2) if timed else "",
            "× real time": round(tm.fps / t.fps, 2) if timed else "",
            "frames sha256": t.frames_sha256[:12],
            "decoded sha256": (t.decoded_sha256 or "")[:12],
            "film sha256": t.film.sha256[:12],
        })
    album = record.album
    rows.append({
        "track": "album.mp4", "preset": "", "seed": "",
        "frames": album.frames if album else "",
        "length s": round(float(album.duration), 2) if album else "",
        "render s": round(seconds, 2) if seconds else "", "fps": "", "× real time": "",
        "frames sha256": "", "decoded sha256": "",
        "film sha256": album.sha256[:12] if album else "",
    })
    return rows


def html_table(rows: Sequence[Mapping[str, Any]], *, caption: str = "") -> str:
    """A plain HTML table (no pandas needed): one column per key of the first row."""
    if not rows:
        return "<p><i>(nothing)</i></p>"
    cols = list(rows[0])
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(str(c))}</th>"
                   for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px;font-family:monospace'>"
                         f"{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows)
    cap = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def feature_figure(features: Mapping[str, Any], *, width: float = 11.0):
    """A matplotlib figure: per track, its frame-timeline features (loudness, onsets,
    brightness and the stem envelopes), the beat grid and the section markers."""
    import matplotlib.pyplot as plt

    n = max(1, len(features))
    fig, axes = plt.subplots(n, 1, figsize=(width, 2.2 * n), squeeze=False)
    for ax, (tid, ff) in zip(axes[:, 0], features.items(), strict=False):
        t = ff.times()
        for name in ("rms", "onset", "centroid"):
            if name in ff.values:
                ax.plot(t, ff.values[name], lw=0.8, label=name, color=LANE_COLORS[name])
        for stem, series in ff.stems.items():
            if "envelope" in series:
                ax.plot(t, series["envelope"], lw=0.7, alpha=0.8, label=stem,
                        color=LANE_COLORS.get(stem, "#777"))
        for b in np.asarray(ff.beat_frames):
            ax.axvline(ff.start + b / ff.fps, ymax=0.06, color="#8a8578", lw=0.6)
        for m in ff.markers:
            ax.axvline(m, color="#e0245e", lw=1.0, ls="--")
        ax.set_title(f"{tid} · {ff.tempo:.1f} bpm · {ff.n_frames} frames", fontsize=9,
                     loc="left")
        ax.set_xlim(t[0] if len(t) else 0, t[-1] if len(t) else 1)
        ax.set_ylim(0, 1.05)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, ncol=7, loc="upper right", frameon=False)
    axes[-1, 0].set_xlabel("track time (s)", fontsize=8)
    fig.tight_layout()
    return fig


def _thumb_uri(path: Path, width: int) -> str:
    from PIL import Image

    with Image.open(path) as im:
        if path.suffix.lower() == ".gif":
            return "data:image/gif;base64," + base64.b64encode(path.read_bytes()).decode()
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, max(1, round(im.height * width / im.width))),
                           Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def previews_html(run_dir: str | Path, record: RunRecord, *, width: int = 240,
                  per_track: int = 6) -> str:
    """The run's preview stills (as small JPEG thumbnails) and GIFs, one row per track."""
    run_dir = Path(run_dir)
    parts = []
    for t in record.tracks:
        names = list(t.previews)
        stills = [n for n in names if not n.endswith(".gif")][:per_track]
        gifs = [n for n in names if n.endswith(".gif")]
        cells = []
        for name in stills + gifs:
            p = run_dir / "previews" / name
            if p.is_file():
                label = html.escape(name.removeprefix(t.id + "_").rsplit(".", 1)[0])
                cells.append(f"<figure style='display:inline-block;margin:2px'>"
                             f"<img src='{_thumb_uri(p, width)}' width='{width}'>"
                             f"<figcaption style='font-size:10px'>{label}</figcaption></figure>")
        parts.append(f"<div><b>{html.escape(t.id)}</b><br>{''.join(cells)}</div>")
    return "".join(parts)
