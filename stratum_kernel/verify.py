"""Re-reading a finished run: ``verify_run(run_dir)`` checks it against its meta.json.

For every track film and the album film: the file's sha256, the frame count
(= round(duration × fps)), the video and audio durations, both streams starting at 0, and
the digests of the frames decoded back from the MP4, chunk by chunk (the pre-encode digests
in meta.json prove determinism but cannot be recomputed from a lossy film). Every problem is
collected, so one run of ``stratum verify`` names all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from stratum_kernel.errors import RenderError, StratumError
from stratum_kernel.model_meta import sha256_file

RUN_FORMAT = "stratum-run/1"


@dataclass
class VerifyReport:
    """What was checked and what did not match (empty ``problems`` = the run is intact)."""

    run_dir: Path
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = f"{self.run_dir}: " + ("OK" if self.ok else f"{len(self.problems)} problem(s)")
        lines = [head] + [f"  ok       {c}" for c in self.checked]
        lines += [f"  MISMATCH {p}" for p in self.problems]
        return "\n".join(lines)


def _load_meta(run_dir: Path) -> dict:
    path = run_dir / "meta.json"
    if not path.is_file():
        raise RenderError(f"{path}: not found; is {run_dir} a finished stratum run folder?")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RenderError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from None
    if not isinstance(meta, dict):
        raise RenderError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != RUN_FORMAT:
        raise RenderError(f"{path}: field 'format' is {meta.get('format')!r}, not {RUN_FORMAT!r}")
    tracks = meta.get("tracks", [])
    if not isinstance(tracks, list) or not all(isinstance(t, dict) for t in tracks):
        raise RenderError(f"{path}: field 'tracks' must be a list of track objects "
                          "(the file was edited or damaged)")
    if not isinstance(meta.get("album") or {}, dict):
        raise RenderError(f"{path}: field 'album' must be an object (the file was edited or "
                          "damaged)")
    return meta


def _check_film(report: VerifyReport, path: Path, *, sha: str, frames: int, fps: float,
                audio_duration: float | None, size: tuple[int, int]) -> bool:
    from stratum_kernel.encode import check_film

    if not path.is_file():
        report.problems.append(f"{path.name}: missing")
        return False
    actual = sha256_file(path)
    if actual != sha:
        report.problems.append(
            f"{path.name}: sha256 {actual[:12]}… differs from meta.json ({sha[:12]}…)"
        )
    try:
        check_film(path, frames=frames, fps=fps, audio_duration=audio_duration, size=size)
    except StratumError as err:
        report.problems.append(str(err).replace(str(path), path.name))
        return False
    report.checked.append(f"{path.name}: {frames} frames, streams aligned"
                          + (", sha256" if actual == sha else ""))
    return True


def verify_run(run_dir: str | Path, *, decode: bool = True) -> VerifyReport:
    """Check a run folder against its meta.json; ``decode=False`` skips the frame digests."""
    from stratum_kernel.render_pipeline import decoded_digests, frames_digest

    run_dir = Path(run_dir)
    meta = _load_meta(run_dir)
    report = VerifyReport(run_dir)
    total = 0
    for t in meta.get("tracks", []):
        try:
            tid, fps, n = t["id"], float(t["fps"]), int(t["frames"])
            film = t["film"]
            size = (int(film["width"]), int(film["height"]))
            path = run_dir / Path(film["file"]).name
        except (KeyError, TypeError, ValueError) as err:
            report.problems.append(f"meta.json: track entry is incomplete ({err})")
            continue
        total += n
        ok = _check_film(report, path, sha=film["sha256"], frames=n, fps=fps,
                         audio_duration=t.get("audio", {}).get("duration"), size=size)
        if ok and decode:
            digests = decoded_digests(path, *size)
            bad = [c["index"] for c in t.get("chunks", [])
                   if frames_digest(digests[c["start"]:c["stop"]]) != c["decoded_sha256"]]
            if bad:
                report.problems.append(
                    f"{path.name}: decoded frames differ from meta.json in chunk(s) "
                    f"{', '.join(map(str, bad))}"
                )
            elif frames_digest(digests) != t.get("decoded_sha256"):
                report.problems.append(f"{path.name}: decoded frame digest differs")
            else:
                report.checked.append(f"{path.name}: decoded frames match "
                                      f"{len(t.get('chunks', []))} chunk digest(s)")
        for name in t.get("previews", []):
            if not (run_dir / "previews" / Path(str(name)).name).is_file():
                report.problems.append(f"previews/{name}: missing")
        if tid and t.get("previews"):
            report.checked.append(f"{tid}: {len(t['previews'])} preview file(s)")
    album = meta.get("album")
    if album and meta.get("tracks"):
        try:
            fps = float(meta["tracks"][0]["fps"])
            first = meta["tracks"][0]["film"]
            size = (int(first["width"]), int(first["height"]))
        except (KeyError, TypeError, ValueError) as err:
            report.problems.append(f"meta.json: the album entry cannot be checked ({err!r})")
            return report
        album_film = run_dir / Path(str(album.get("file", "album.mp4"))).name
        _check_film(report, album_film, sha=str(album.get("sha256", "")),
                    frames=total, fps=fps, audio_duration=total / fps, size=size)
    elif not meta.get("tracks"):
        report.problems.append("meta.json: lists no tracks")
    return report
