"""Re-reading a finished run: ``verify_run(run_dir)`` checks it against its meta.json.

For every track film and the album film: the file's sha256, the frame count
(= round(duration × fps)), the video and audio durations, both streams starting at 0, and
the digests of the frames decoded back from the MP4, chunk by chunk (the pre-encode digests
in meta.json prove determinism but cannot be recomputed from a lossy film). Every problem is
collected, so one run of ``stratum verify`` names all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stratum_kernel.core.digests import file_sha256, frames_digest
from stratum_kernel.core.errors import StratumError
from stratum_kernel.film.streams import check_film, decoded_digests
from stratum_kernel.render.record import RunRecord


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


def _check_film(report: VerifyReport, path: Path, *, sha: str, frames: int, fps: float,
                audio_duration: float | None, size: tuple[int, int]) -> bool:
    if not path.is_file():
        report.problems.append(f"{path.name}: missing")
        return False
    actual = file_sha256(path)
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
    run_dir = Path(run_dir)
    record = RunRecord.load(run_dir / "meta.json")
    report = VerifyReport(run_dir)
    total = 0
    for t in record.tracks:
        size = (t.film.width, t.film.height)
        path = run_dir / Path(t.film.file).name
        total += t.frames
        ok = _check_film(report, path, sha=t.film.sha256, frames=t.frames, fps=t.fps,
                         audio_duration=t.audio.duration, size=size)
        if ok and decode:
            digests = decoded_digests(path, *size)
            bad = [c.index for c in t.chunks
                   if frames_digest(digests[c.start:c.stop]) != c.decoded_sha256]
            if bad:
                report.problems.append(
                    f"{path.name}: decoded frames differ from meta.json in chunk(s) "
                    f"{', '.join(map(str, bad))}"
                )
            elif frames_digest(digests) != t.decoded_sha256:
                report.problems.append(f"{path.name}: decoded frame digest differs")
            else:
                report.checked.append(f"{path.name}: decoded frames match "
                                      f"{len(t.chunks)} chunk digest(s)")
        for name in t.previews:
            if not (run_dir / "previews" / Path(name).name).is_file():
                report.problems.append(f"previews/{name}: missing")
        if t.previews:
            report.checked.append(f"{t.id}: {len(t.previews)} preview file(s)")
    if not record.tracks:
        report.problems.append("meta.json: lists no tracks")
    elif record.album is not None:
        first = record.tracks[0]
        fps = first.fps
        album_film = run_dir / Path(record.album.file).name
        _check_film(report, album_film, sha=record.album.sha256, frames=total, fps=fps,
                    audio_duration=total / fps, size=(first.film.width, first.film.height))
    return report
