"""Compose the bundled album: render every song's four stems, sum them to the mix, write
16-bit FLAC files and ``tracklist.json``.

    python album/compose.py            # regenerate everything in album/
    python album/compose.py --only sodium-lights --out /tmp/album

Stems are computed in float64, the mix is their sum, then each file is quantised on its
own, so the stems add up to the mix within rounding (at most 2 LSB). Every random draw is
keyed by (track, purpose, index) and every effect is causal, so re-running gives the same
samples, and rendering an excerpt gives the start of the full render.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `album` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from album.arrangement import STEMS, Renderer, Session, Song
from album.songs import ALBUM
from album.synth import SR, db, limiter_gain, reverb_ir

ALBUM_DIR = Path(__file__).resolve().parent
ARTIST = "stratum"
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS
LIMIT_CEILING = 10 ** (-1.2 / 20)  # the limiter's target (true peak), room for rounding
FADE_OUT = 1.5  # seconds, at the very end of the tail


def halls(song: Song, sr: int) -> dict[str, np.ndarray]:
    """The reverb response of each stem: a short room for drums, a hall for the rest."""
    room = reverb_ir(sr, rt60=0.7, seed_key=f"{song.id}-room", predelay=0.006, damping_hz=5000.0)
    hall = reverb_ir(sr, rt60=1.8, seed_key=f"{song.id}-hall", predelay=0.02, damping_hz=3000.0)
    return {"drums": room, "bass": room, "other": hall, "vocals": hall}


def render_stems(
    song: Song, renderer: Renderer, *, sr: int = SR, seconds: float | None = None
) -> dict[str, np.ndarray]:
    """{stem: float64 [2, n]} for ``song`` at its master gain; with ``seconds`` only the
    first ``seconds`` are rendered (identical to the start of the full render)."""
    ss = Session(song, sr, seconds)
    renderer(ss)
    stems = ss.finish(halls(song, sr), echo_time=0.75 * song.beat)
    drive = db(song.gain_db)
    limit = limiter_gain(mixdown(stems) * drive, sr, ceiling=LIMIT_CEILING, true_peak=True)
    t = np.arange(ss.n) / sr
    fade = np.clip((song.duration - t) / FADE_OUT, 0.0, 1.0) ** 2
    gain = drive * limit * fade
    return {s: stems[s] * gain for s in STEMS}


def mixdown(stems: dict[str, np.ndarray]) -> np.ndarray:
    """float64 [2, n]: the mix, the plain sum of the stems."""
    return sum(stems[s] for s in STEMS)


def quantise(x: np.ndarray) -> np.ndarray:
    """float64 [2, n] in [-1, 1) -> int16 [n, 2] (round to nearest, scale 32768)."""
    return np.clip(np.round(x.T * 32768.0), -32768, 32767).astype(np.int16)


def write_flac(path: Path, pcm: np.ndarray, sr: int) -> None:
    """Write int16 [n, 2] as 16-bit FLAC under a temporary name, then rename (atomic)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        sf.write(tmp, pcm, sr, format="FLAC", subtype="PCM_16", compression_level=1.0)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def track_entry(song: Song) -> dict:
    """The tracklist entry of ``song``: markers are the starts of build, peak, breakdown
    and outro, in seconds."""
    starts = song.section_starts()
    return {
        "id": song.id,
        "src": f"{song.id}.flac",
        "title": song.title,
        "artist": ARTIST,
        "bpm": song.bpm,
        "key": song.key,
        "markers": [start for _, start in starts[1:]],
        "sections": [{"name": name, "start": start} for name, start in starts],
    }


def compose_track(song: Song, renderer: Renderer, out: Path, sr: int = SR) -> dict:
    """Render one song, check its peak, write the mix and stems; returns a summary."""
    t0 = time.perf_counter()
    stems = render_stems(song, renderer, sr=sr)
    mix = mixdown(stems)
    peak = float(np.abs(mix).max())
    if peak > PEAK_CEILING:
        raise SystemExit(
            f"{song.id}: mix peaks at {20 * np.log10(peak):.2f} dBFS, above -1 "
            f"dBFS; lower gain_db in album/songs.py"
        )
    write_flac(out / f"{song.id}.flac", quantise(mix), sr)
    for s in STEMS:
        write_flac(out / "stems" / song.id / f"{s}.flac", quantise(stems[s]), sr)
    return {
        "id": song.id,
        "seconds": round(mix.shape[1] / sr, 2),
        "peak_dbfs": round(20 * np.log10(peak), 2),
        "render_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ALBUM_DIR, help="output folder")
    parser.add_argument("--only", action="append", help="render only this track id")
    args = parser.parse_args(argv)
    known = {song.id for song, _ in ALBUM}
    for only in args.only or []:
        if only not in known:
            parser.error(f"--only {only!r}: no such track; choose from {sorted(known)}")
    for song, renderer in ALBUM:
        if args.only and song.id not in args.only:
            continue
        print(json.dumps(compose_track(song, renderer, args.out)), flush=True)
    if not args.only:
        write_json(args.out / "tracklist.json", [track_entry(song) for song, _ in ALBUM])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
