"""``stratum analyze --album DIR``: what stratum sees in an album, as a table (and JSON).

Per track: duration, sample rate, channels, frames at ``--fps``, the tracklist bpm beside
the tempo estimated from the audio, the tracklist key beside the estimated one ("ok" when
they agree, "?" when the estimate is unsure), the tracklist markers beside the number of
section changes detected, integrated loudness (BS.1770, LUFS), loudness range and true
peak, where the stems come from ("bundled", "separated (dsp)", "separated (demucs)" or
"none") and the preset ``auto`` would choose (its reasons and the track's character are in
the JSON); then an album line with the total duration and the album's loudness.
Features and separated stems are cached, so a second run is quick.

Any problem with the album (a bad tracklist field, a damaged file) is a
:class:`~stratum_kernel.core.errors.StratumError`: the command line prints it on one line and
exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from stratum_kernel.analysis.cache import analyze_album
from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.files import audio_blocks
from stratum_kernel.audio.loudness import LoudnessMeter, album_integrated_loudness
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import default_album_dir, write_text_atomic
from stratum_kernel.core.timeline import frame_count

STEM_LABELS = {
    "bundled": "bundled",
    "dsp": "separated (dsp)",
    "demucs": "separated (demucs)",
    "none": "none",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--album",
        type=Path,
        default=None,
        help="album folder (with tracklist.json, or just audio files); default: album/",
    )
    parser.add_argument(
        "--fps", type=float, default=30.0, help="frame rate for the frame counts (default 30)"
    )
    parser.add_argument(
        "--json",
        dest="json_path",
        default=None,
        help="also write the summary as JSON to this file ('-' for stdout instead of a table)",
    )
    parser.add_argument(
        "--no-separate",
        action="store_true",
        help="do not separate stems for tracks without bundled stems",
    )
    parser.add_argument(
        "--stems-backend",
        choices=("auto", "dsp", "demucs"),
        default="auto",
        help="separator for tracks without bundled stems (default: demucs if available)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="compute features afresh and do not store them"
    )


def tempo_agreement(estimate: float | None, listed: float | None) -> str:
    """How the estimated tempo relates to the tracklist bpm: 'ok' (within 4 %), 'double',
    'half', 'differs', or '' when either is unknown."""
    if not estimate or not listed or not math.isfinite(estimate):
        return ""
    ratio = estimate / listed
    for name, target in (("ok", 1.0), ("double", 2.0), ("half", 0.5)):
        if abs(ratio / target - 1.0) <= 0.04:
            return name
    return "differs"


def _finite(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def summarise(album, analysis, loudness: dict[str, Any], fps: float) -> dict[str, Any]:
    """The JSON-ready summary: album facts, one row per track, and the totals."""

    from stratum_kernel.analysis.key import estimate_key
    from stratum_kernel.analysis.sections import estimate_sections
    from stratum_kernel.motion.choice import choose_preset
    from stratum_kernel.render.jobs import available_presets

    presets = available_presets()
    rows = []
    for i, track in enumerate(album.tracks, start=1):
        tf = analysis.tracks[track.id]
        ls = loudness[track.id]
        key = estimate_key(tf)
        choice = choose_preset(analysis.character(track.id), presets)
        source = analysis.stem_sources.get(track.id, tf.stem_source)
        rows.append(
            {
                "index": i,
                "id": track.id,
                "title": track.title,
                "file": str(track.audio_path),
                "format": track.format,
                "duration_s": round(track.duration, 3),
                "sample_rate": track.sample_rate,
                "channels": track.channels,
                "frames": frame_count(track.duration, fps),
                "bpm": track.bpm,
                "tempo_estimate": _finite(tf.tempo_estimate),
                "tempo": _finite(tf.tempo),
                "tempo_agreement": tempo_agreement(tf.tempo_estimate, track.bpm),
                "beats": len(tf.beats),
                "integrated_lufs": _finite(ls.integrated),
                "loudness_range_lu": _finite(ls.loudness_range),
                "true_peak_dbtp": _finite(ls.true_peak),
                "stems": source,
                "stems_label": STEM_LABELS.get(source, source),
                "key": track.key,
                "key_estimate": None if key is None else key.name,
                "key_confidence": None if key is None else round(key.confidence, 3),
                "markers": list(track.marker_times),
                "sections_estimate": estimate_sections(tf),
                "preset_auto": choice.name,
                "preset_reasons": list(choice.reasons),
                "character": analysis.character(track.id).to_dict(),
            }
        )
    peaks = [ls.true_peak for ls in loudness.values() if math.isfinite(ls.true_peak)]
    total = {
        "tracks": len(rows),
        "duration_s": round(album.total_duration, 3),
        "frames": sum(r["frames"] for r in rows),
        "integrated_lufs": _finite(album_integrated_loudness(list(loudness.values()))),
        "true_peak_dbtp": _finite(max(peaks)) if peaks else None,
    }
    return {
        "album": str(album.root),
        "tracklist": str(album.tracklist) if album.tracklist else None,
        "fps": fps,
        "tracks": rows,
        "total": total,
    }


def _clock(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60.0)
    return f"{int(minutes)}:{sec:04.1f}"


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def _key_text(row: dict[str, Any]) -> str:
    est = row["key_estimate"]
    if est is None:
        return "-"
    same = row["key"] is not None and row["key"].casefold() == est.casefold()
    unsure = row["key_confidence"] is not None and row["key_confidence"] < 0.05
    return est + (" ok" if same else "") + (" ?" if unsure else "")


def format_table(summary: dict[str, Any]) -> str:
    """The summary as an aligned text table with an album line."""
    fps = summary["fps"]
    header = ["#", "id", "title", "length", "rate", "ch", f"frames@{fps:g}", "bpm",
              "tempo (est.)", "key", "key (est.)", "markers (est.)", "LUFS", "LRA", "dBTP",
              "stems", "auto preset"]  # fmt: skip
    right = {0, 3, 4, 5, 6, 7, 11, 12, 13, 14}
    lines = [header]
    for r in summary["tracks"]:
        title = r["title"] if len(r["title"]) <= 28 else r["title"][:27] + "…"
        lines.append(
            [
                str(r["index"]),
                r["id"],
                title,
                _clock(r["duration_s"]),
                f"{r['sample_rate'] / 1000:g}k",
                str(r["channels"]),
                str(r["frames"]),
                _num(r["bpm"], "g"),
                f"{_num(r['tempo_estimate'], '.1f'):>5} {r['tempo_agreement']}".rstrip(),
                r["key"] or "-",
                _key_text(r),
                f"{len(r['markers'])} ({len(r['sections_estimate'])})",
                _num(r["integrated_lufs"], ".1f"),
                _num(r["loudness_range_lu"], ".1f"),
                _num(r["true_peak_dbtp"], ".1f"),
                r["stems_label"],
                r["preset_auto"],
            ]
        )
    widths = [max(len(row[c]) for row in lines) for c in range(len(header))]

    def fmt(row: list[str]) -> str:
        cells = [
            v.rjust(w) if c in right else v.ljust(w)
            for c, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    t = summary["total"]
    where = summary["tracklist"] or f"{summary['album']} (no tracklist.json: files in name order)"
    out = [f"album: {where}", fmt(lines[0]), fmt(["-" * w for w in widths])]
    out += [fmt(row) for row in lines[1:]]
    out.append(
        f"total: {t['tracks']} track{'s' if t['tracks'] != 1 else ''}, "
        f"{_clock(t['duration_s'])}, {t['frames']} frames at {fps:g} fps, "
        f"album loudness {_num(t['integrated_lufs'], '.1f', ' LUFS')}, "
        f"max true peak {_num(t['true_peak_dbtp'], '.1f', ' dBTP')}"
    )
    return "\n".join(out)


def _write_json(path: str, summary: dict[str, Any]) -> None:
    text = json.dumps(summary, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, text)


def analyze(
    album_dir: Path, *, fps: float, separate: bool, stems_backend: str, cache: bool
) -> dict[str, Any]:
    """Load, analyse and measure the album in ``album_dir``; returns :func:`summarise`'s
    dict."""

    album = load_album(album_dir)
    analysis = analyze_album(
        album,
        cache=None if cache else False,
        stems_backend=stems_backend,
        separate_missing=separate,
        progress=sys.stderr.isatty(),
    )
    loudness = {}
    for track in album.tracks:  # a block at a time: memory does not grow with the length
        sr, channels, blocks = audio_blocks(track.audio_path)
        meter = LoudnessMeter(sr, channels)
        for block in blocks:
            meter.add(block)
        loudness[track.id] = meter.summary()
    return summarise(album, analysis, loudness, fps)


def run(args: argparse.Namespace) -> int:
    if not (args.fps > 0 and math.isfinite(args.fps)):
        raise ConfigError(
            None, "--fps", f"must be a positive number of frames per second, got {args.fps}"
        )
    album_dir = args.album if args.album is not None else default_album_dir()
    summary = analyze(
        album_dir,
        fps=args.fps,
        separate=not args.no_separate,
        stems_backend=args.stems_backend,
        cache=not args.no_cache,
    )
    if args.json_path != "-":
        print(format_table(summary))
    if args.json_path:
        _write_json(args.json_path, summary)
    return 0
