"""The per-track render loop: chunks, the three-stage pipeline, resumable state, digests.

A track's frames are cut into chunks of ``render.chunk_frames``; each chunk is split into
decoder batches ("units"). Three stages run side by side on those units::

    decode thread ──q1──▶ post-FX thread ──q2──▶ calling thread (encode, digest, state)

On a machine of two cores decoding on the CPU, decode and post-FX share one thread instead
(``fused``): x264 already keeps both cores busy, and a third busy Python thread only takes
turns with it (the frames 4–5 % faster fused at 720p with the bf16 decoder, ``bench
render``); with a GPU decoding, or more cores, the stages overlap.

Queues are bounded, so memory stays flat and the slowest stage sets the pace. A failure in
any stage stops the others and is re-raised in the caller; an encoder left open is aborted
(its temporary file removed). When a chunk's segment is complete it is checked and recorded
in ``state.json`` (written atomically): a resumed run skips recorded chunks whose segment
file still has the recorded sha256. The segment's decoded picture (digests and previews) is
taken on a fourth thread (:class:`ChunkChecker`) while the next chunks render.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.audio.files import write_audio
from stratum_kernel.audio.mixer import soundtrack_mix
from stratum_kernel.audio.stems import load_stems
from stratum_kernel.core.background import Behind
from stratum_kernel.core.digests import file_sha256, frame_digest, frames_digest
from stratum_kernel.core.errors import RenderError
from stratum_kernel.core.paths import atomic_path, write_text_atomic
from stratum_kernel.film.encode import EncodeParams, VideoEncoder
from stratum_kernel.film.mux import PreparedAudio, concat_segments, prepare_audio
from stratum_kernel.film.stills import PreviewCollector
from stratum_kernel.film.streams import (
    check_film,
    raw_frame_blocks,
    read_frames,
    yuv420p_to_rgb,
)
from stratum_kernel.render.fingerprint import section_records
from stratum_kernel.render.jobs import PersistenceWindow, RenderContext, TrackJob
from stratum_kernel.render.progress import RenderProgress, reporter
from stratum_kernel.render.record import (
    AudioRecord,
    ChunkRecord,
    FilmRecord,
    TrackRecord,
    TrackTiming,
)

log = logging.getLogger(__name__)

#: A run's unfinished parts live in ``<run>/.work/`` (one folder per track), removed at the end.
WORK = ".work"

_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


@dataclass(frozen=True)
class Unit:
    """Frames [start, stop) of chunk ``chunk`` (which ends at ``chunk_stop``)."""

    chunk: int
    start: int
    stop: int
    chunk_stop: int


def plan_units(chunks: Sequence[tuple[int, int, int]], batch: int) -> list[Unit]:
    """Decoder-sized units that never cross a chunk boundary."""
    out = []
    for ci, a, b in chunks:
        for u in range(a, b, batch):
            out.append(Unit(ci, u, min(u + batch, b), b))
    return out


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


def fuse_stages(provider: str, cores: int | None = None) -> bool:
    """Whether decode and post-FX should share one thread: a CPU decoder on ≤ 2 cores."""
    cores = os.cpu_count() if cores is None else cores
    return (cores or 1) <= 2 and "cuda" not in provider.lower()


def run_pipeline(units: Sequence[Unit], decode: Callable[[Unit], np.ndarray],
                 postfx: Callable[[Unit, np.ndarray], np.ndarray],
                 consume: Callable[[Unit, np.ndarray], None], *, depth: int = 3,
                 fused: bool = False) -> None:
    """Run decode → post-FX → consume over ``units`` with the first two stages in worker
    threads (one thread for both when ``fused``); ``postfx`` sees units in order (it may
    keep state, e.g. persistence history).
    """
    q1: queue.Queue = queue.Queue(depth)
    q2: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def source_worker(make: Callable[[Unit], np.ndarray], out: queue.Queue) -> None:
        """``make`` each unit in order into ``out`` (decode, or decode + post-FX fused)."""
        try:
            for u in units:
                if stop.is_set() or not _put(out, (u, make(u)), stop):
                    return
            _put(out, _END, stop)
        except BaseException as err:  # handed to the caller
            _put(out, _Failed(err), stop)

    def postfx_worker() -> None:
        try:
            while True:
                item = _get(q1, stop)
                if item is _END or isinstance(item, _Failed):
                    _put(q2, item, stop)
                    return
                u, frames = item
                if not _put(q2, (u, postfx(u, frames)), stop):
                    return
        except BaseException as err:
            _put(q2, _Failed(err), stop)

    if fused:
        threads = [threading.Thread(target=source_worker, name="stratum-frames", daemon=True,
                                    args=(lambda u: postfx(u, decode(u)), q2))]
    else:
        threads = [threading.Thread(target=source_worker, name="stratum-decode", daemon=True,
                                    args=(decode, q1)),
                   threading.Thread(target=postfx_worker, name="stratum-postfx", daemon=True)]
    for t in threads:
        t.start()
    try:
        while True:
            item = q2.get()
            if item is _END:
                break
            if isinstance(item, _Failed):
                raise item.exc
            consume(*item)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


# ------------------------------------------------------------------------------ tracks


class TrackRun:
    """One track of a run: its job, work folder (segments, audio, state) and outputs."""

    def __init__(self, ctx: RenderContext, job: TrackJob, run_dir: Path):
        self.ctx, self.job, self.run_dir = ctx, job, run_dir
        self.work = run_dir / WORK / job.track_id
        self.work.mkdir(parents=True, exist_ok=True)
        self.state_path = self.work / "state.json"
        cf = ctx.config.render.chunk_frames
        n = job.n_frames
        self.chunks = [(i, a, min(a + cf, n)) for i, a in enumerate(range(0, n, cf))]
        self.state = self._load_state()
        self.timing = TrackTiming()
        self.checker: ChunkChecker | None = None  # made by the first chunk rendered here

    def _load_state(self) -> dict:
        fresh = {"track": self.job.track_id, "n_frames": self.job.n_frames,
                 "chunk_frames": self.ctx.config.render.chunk_frames, "chunks": {}}
        if not self.state_path.exists():
            return fresh
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("%s: unreadable, starting the track again", self.state_path)
            return fresh
        if any(state.get(k) != fresh[k] for k in ("track", "n_frames", "chunk_frames")):
            return fresh
        return state

    def save_state(self) -> None:
        write_text_atomic(self.state_path, json.dumps(self.state))

    def segment(self, chunk: int) -> Path:
        return self.work / f"seg_{chunk:05d}.mp4"

    def finished_chunks(self) -> set[int]:
        done = set()
        for key, rec in self.state["chunks"].items():
            seg = self.segment(int(key))
            if seg.is_file() and file_sha256(seg) == rec["segment_sha256"]:
                done.add(int(key))
        return done


#: Frames up to this size are checked from x264's reconstruction (``dump-yuv``, a
#: temporary 1.4 MB a frame at 720p); larger ones are decoded back from the segment.
RECON_MAX_AREA = 1920 * 1080


def _recon_blocks(path: Path, width: int, height: int):
    """uint8 [n, H·W·3/2] blocks of x264's raw yuv420p reconstruction, removed afterwards."""
    frame_bytes = width * height * 3 // 2
    try:
        with open(path, "rb") as f:
            yield from raw_frame_blocks(f, frame_bytes, (frame_bytes,),
                                        what=f"{path}: x264's reconstruction")
    finally:
        path.unlink(missing_ok=True)


class ChunkChecker:
    """Takes each finished segment's decoded picture, on a background thread while the next
    chunks render: the per-frame digests of the picture as it plays (``decoded_sha256`` in
    meta.json) and the preview stills and GIF, cut from those decoded frames.

    A track film is its segments joined by stream copy, and every segment starts with an
    IDR frame (closed GOPs), so a segment decodes to exactly the frames it shows inside
    the film; ``stratum verify`` decodes the film itself and compares. Up to
    :data:`RECON_MAX_AREA`, the frames are x264's own reconstruction, written beside the
    segment as it encodes (bit for bit what a decoder gives, by the H.264 standard; checked
    in tests against ffmpeg's decoder), so no decoding is needed. Chunks rendered by an
    earlier, interrupted attempt (or on Dask workers) are decoded at :meth:`finish`.
    """

    def __init__(self, run: TrackRun):
        self.run = run
        self.size = run.ctx.config.resolution
        self.collector = PreviewCollector(run.job.track_id, run.job.features,
                                          run.run_dir / "previews")
        self.decoded: dict[int, list[bytes]] = {}
        self.previews: list[str] | None = None
        self._behind = Behind(pending=2, name="stratum-check")

    def submit(self, index: int, start: int, stop: int, recon: Path | None = None) -> None:
        """Check chunk ``index`` (frames [start, stop)) once its segment is complete;
        ``recon``: x264's reconstructed frames of it (read instead of decoding, removed)."""
        self._behind.submit(self._check, index, start, stop, recon)

    def _check(self, index: int, start: int, stop: int, recon: Path | None = None) -> None:
        seg = self.run.segment(index)
        width, height = self.size
        digests: list[bytes] = []
        if recon is not None:
            blocks = _recon_blocks(recon, width, height)
        else:
            blocks = read_frames(seg, width, height, pix_fmt="yuv420p")
        for block in blocks:
            first = start + len(digests)
            for j in self.collector.wanted(first, len(block)):
                self.collector.feed(first + j, yuv420p_to_rgb(block[j], width, height)[None])
            digests.extend(frame_digest(f) for f in block)
        if len(digests) != stop - start:
            raise RenderError(f"{seg}: decoded {len(digests)} frames, expected {stop - start}")
        self.decoded[index] = digests
        if self.previews is None and self.collector.complete:
            self.previews = self.collector.finish()  # written while the next chunks render

    def finish(self) -> tuple[list[bytes], list[str]]:
        """(every frame's decoded digest in order, the preview file names)."""
        try:
            self._behind.wait()
        finally:
            self._behind.close()
        for i, a, b in self.run.chunks:
            if i not in self.decoded:
                self._check(i, a, b)
        decoded = [d for i, _, _ in self.run.chunks for d in self.decoded[i]]
        if self.previews is None:
            self.previews = self.collector.finish()
        return decoded, self.previews

    def close(self) -> None:
        """Stop the thread after a failure (what it was doing is dropped)."""
        self._behind.close()


def film_audio(ctx: RenderContext, job: TrackJob, wav: Path) -> tuple[PreparedAudio, Path]:
    """Write a track's film audio to ``wav`` as the render does: its own audio, or the
    mixer's mix of its stems when the mixer changes the soundtrack (written beside ``wav``),
    trimmed, resampled and loudness-normalised. Returns it and the file it was made from."""
    cfg = ctx.config
    src = Path(job.audio_path)
    spec = job.mixer
    if spec is not None and spec.affects_soundtrack:
        stem_set = load_stems(ctx.album.track(job.track_id))
        y = soundtrack_mix(stem_set.stems, spec)
        src = Path(write_audio(wav.with_name(f"{wav.stem}.mixer-source.wav"),
                               np.ascontiguousarray(y, dtype=np.float32), stem_set.sr,
                               subtype="FLOAT"))
    pa = prepare_audio(src, wav, start=job.start, end=job.end,
                       sample_rate=cfg.audio.sample_rate, channels=cfg.encode.audio_channels,
                       target_lufs=cfg.audio.normalization)
    return pa, src


def prepare_track_audio(run: TrackRun) -> AudioRecord:
    """The track's film audio in ``<work>/audio.wav`` (made once; kept across a resume while
    the mixer spec is the same), recorded in the track's state."""
    cfg, job = run.ctx.config, run.job
    wav = run.work / "audio.wav"
    rec = run.state.get("audio")
    mixer = None if job.mixer is None else job.mixer.to_meta()
    if (rec and rec.get("mixer") == mixer and wav.is_file()
            and file_sha256(wav) == rec["wav_sha256"]):
        return AudioRecord.model_validate({k: v for k, v in rec.items() if k != "wav_sha256"})
    pa, src = film_audio(run.ctx, job, wav)
    audio = AudioRecord(
        file=str(job.audio_path), sha256=file_sha256(job.audio_path), start=job.start,
        end=job.end, sample_rate=pa.sample_rate, samples=pa.samples, duration=pa.duration,
        gain_db=round(pa.gain_db, 6),
        loudness_lufs=None if pa.loudness_lufs is None else round(pa.loudness_lufs, 6),
        target_lufs=cfg.audio.normalization, mixer=mixer,
        mixed_sha256=file_sha256(src) if src != Path(job.audio_path) else None,
        source_channels=pa.source_channels, downmix=pa.downmix)
    run.state["audio"] = {**audio.model_dump(mode="json"), "wav_sha256": file_sha256(wav)}
    run.save_state()
    return audio


def track_already_done(run: TrackRun) -> TrackRecord | None:
    """The track's record when an earlier attempt finished it (film intact)."""
    done_rec = run.state.get("done")
    film = run.run_dir / f"{run.job.track_id}.mp4"
    if done_rec and film.is_file() and file_sha256(film) == done_rec["film"]["sha256"]:
        log.info("%s: already rendered", run.job.track_id)
        return TrackRecord.model_validate(done_rec)
    return None


def record_chunk(run: TrackRun, index: int, start: int, stop: int, digests: Sequence[bytes],
                 segment: Path, worker: str | None = None) -> None:
    """Check a finished chunk's segment and record it in ``state.json`` (atomically)."""
    width, height = run.ctx.config.resolution
    check_film(segment, frames=len(digests), fps=run.job.fps, size=(width, height))
    rec = {"start": start, "stop": stop, "frame_digests": [d.hex() for d in digests],
           "segment_sha256": file_sha256(segment)}
    if worker is not None:
        rec["worker"] = worker
    run.state["chunks"][str(index)] = rec
    run.save_state()
    log.info("%s: chunk %d (frames %d-%d) done%s", run.job.track_id, index, start, stop - 1,
             f" on {worker}" if worker else "")


def encode_range(window: PersistenceWindow, start: int, stop: int, segment: Path, *,
                 width: int, height: int, fps: float, params: EncodeParams, batch: int,
                 on_batch: Callable[[int], None] | None = None) -> list[bytes]:
    """Frames [start, stop) of a window's job, made in batches of ``batch`` and encoded into
    the video segment ``segment`` (written under a temporary name, renamed when complete);
    returns the per-frame digests. ``on_batch(frames_done)`` runs after each batch (progress,
    cancellation by raising, fault injection)."""
    digests: list[bytes] = []
    with VideoEncoder(segment, width=width, height=height, fps=fps, params=params) as enc:
        for a in range(start, stop, batch):
            b = min(a + batch, stop)
            frames = window.frames(a, b)
            enc.write(frames)
            digests.extend(frame_digest(f) for f in frames)
            if on_batch is not None:
                on_batch(b - start)
    return digests


def render_chunk(ctx: RenderContext, job: TrackJob, start: int, stop: int, segment: Path, *,
                 hook: Callable[[int], None] | None = None) -> list[bytes]:
    """Render frames [start, stop) of ``job`` on their own into the video segment
    ``segment``; returns the per-frame digests. Idempotent: running it twice writes the
    same bytes. This is the unit of work of a distributed render: its persistence history
    is decoded again, so the frames equal the sequential pipeline's."""
    cfg = ctx.config
    width, height = cfg.resolution
    return encode_range(ctx.window(job), start, stop, segment, width=width, height=height,
                        fps=job.fps, params=cfg.encode, batch=cfg.decoder.batch_size,
                        on_batch=hook)


def render_track_chunks(run: TrackRun, *, progress: bool | str | RenderProgress = False,
                        on_chunk: Callable[[str, int], None] | None = None) -> TrackRecord:
    """Render, join, check and digest one track; returns its record. progress: a
    :class:`RenderProgress` (the run's), or True/False/'bar'/'lines' for this track alone."""
    return render_track_frames(run, progress=progress, on_chunk=on_chunk)()


def render_track_frames(run: TrackRun, *, progress: bool | str | RenderProgress = False,
                        on_chunk: Callable[[str, int], None] | None = None
                        ) -> Callable[[], TrackRecord]:
    """Render the frames one track still lacks; returns the call that finishes it (join,
    checks, digests, previews: :func:`finish_track`, or the earlier record of a track an
    earlier attempt finished), which an album render runs beside the next track's frames."""
    progress = reporter(progress, {run.job.track_id: run.job.n_frames})
    done_rec = track_already_done(run)
    if done_rec is not None:
        progress.start_track(run.job.track_id, run.job.n_frames)
        return lambda: done_rec
    audio = prepare_track_audio(run)
    render_missing_chunks(run, progress=progress, on_chunk=on_chunk)
    return functools.partial(finish_track, run, audio)


def render_missing_chunks(run: TrackRun, *, progress: RenderProgress,
                          on_chunk: Callable[[str, int], None] | None = None) -> None:
    """Render the chunks not yet recorded as finished through the three-stage pipeline."""
    ctx, job, cfg = run.ctx, run.job, run.ctx.config
    width, height = cfg.resolution
    fps = job.fps
    finished = run.finished_chunks()
    todo = [c for c in run.chunks if c[0] not in finished]
    units = plan_units(todo, cfg.decoder.batch_size)
    keep = run.run_dir / "frames" / job.track_id if cfg.render.keep_frames else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    progress.start_track(job.track_id, job.n_frames - sum(b - a for _, a, b in todo))
    window = ctx.window(job)

    def decode(u: Unit) -> np.ndarray:
        return ctx.decode(job, u.start, u.stop)

    def postfx(u: Unit, decoded: np.ndarray) -> np.ndarray:
        return window.postfx(u.start, decoded)

    enc: dict[str, Any] = {"encoder": None, "digests": [], "t": time.perf_counter()}
    if run.checker is None:
        run.checker = ChunkChecker(run)
    checker = run.checker

    def consume(u: Unit, frames: np.ndarray) -> None:
        if enc["encoder"] is None:
            enc["encoder"] = VideoEncoder(run.segment(u.chunk), width=width, height=height,
                                          fps=fps, params=cfg.encode,
                                          recon=width * height <= RECON_MAX_AREA)
            enc["digests"] = []
        enc["encoder"].write(frames)
        enc["digests"].extend(frame_digest(f) for f in frames)
        if keep is not None:
            _keep_frames(keep, u.start, frames)
        progress.advance(job.track_id, len(frames))
        if u.stop == u.chunk_stop:
            seg = enc["encoder"].close()
            recon = enc["encoder"].recon_path
            enc["encoder"] = None
            start = u.chunk_stop - len(enc["digests"])
            if on_chunk is not None:
                on_chunk(job.track_id, u.chunk)
            record_chunk(run, u.chunk, start, u.chunk_stop, enc["digests"], seg)
            checker.submit(u.chunk, start, u.chunk_stop, recon)

    t0 = time.perf_counter()
    try:
        run_pipeline(units, decode, postfx, consume,
                     fused=fuse_stages(ctx.decoder.provider))
    except BaseException:
        checker.close()
        run.checker = None
        raise
    finally:
        if enc["encoder"] is not None:
            enc["encoder"].abort()
    rendered = sum(u.stop - u.start for u in units)
    secs = time.perf_counter() - t0
    run.timing = TrackTiming(frames_rendered=rendered, frames_seconds=round(secs, 3))
    if rendered:
        log.info("%s: %d frames in %.2f s (%.2f fps, %.2fx real time)", job.track_id, rendered,
                 secs, rendered / secs, rendered / secs / fps)


def finish_track(run: TrackRun, audio: AudioRecord) -> TrackRecord:
    """Join the track's recorded segments with its audio (no re-encode), check the film,
    digest it and record the track as done; returns its record."""
    job, cfg = run.job, run.ctx.config
    width, height = cfg.resolution
    fps = job.fps
    film = run.run_dir / f"{job.track_id}.mp4"
    t0 = time.perf_counter()
    segments = [run.segment(i) for i, _, _ in run.chunks]
    counts = [b - a for _, a, b in run.chunks]
    try:
        concat_segments(segments, counts, film, fps=fps, params=cfg.encode,
                        audio=run.work / "audio.wav")
        rep = check_film(film, frames=job.n_frames, fps=fps, audio_duration=audio.duration,
                         size=(width, height))
    except BaseException:
        if run.checker is not None:
            run.checker.close()
            run.checker = None
        raise
    record = _track_record(run, film, audio, rep)
    record.timing = run.timing.model_copy(
        update={"finish_seconds": round(time.perf_counter() - t0, 3)})
    run.state["done"] = record.model_dump(mode="json")
    run.save_state()
    return record


def _keep_frames(folder: Path, start: int, frames: np.ndarray) -> None:
    import cv2

    for j, f in enumerate(frames):
        path = folder / f"{start + j:06d}.png"
        ok, png = cv2.imencode(".png", np.ascontiguousarray(f[..., ::-1]))
        if not ok:
            raise RenderError(f"{path}: could not encode the frame as PNG")
        with atomic_path(path) as tmp:
            tmp.write_bytes(png.tobytes())


def _track_record(run: TrackRun, film: Path, audio: AudioRecord, rep: Any) -> TrackRecord:
    ctx, job, cfg = run.ctx, run.job, run.ctx.config
    width, height = cfg.resolution
    checker = run.checker or ChunkChecker(run)
    run.checker = None
    decoded, previews = checker.finish()
    if len(decoded) != job.n_frames:
        raise RenderError(f"{film}: decoded {len(decoded)} frames, expected {job.n_frames}")
    chunks, all_frames = [], []
    for i, a, b in run.chunks:
        rec = run.state["chunks"][str(i)]
        pre = [bytes.fromhex(h) for h in rec["frame_digests"]]
        all_frames.extend(pre)
        chunks.append(ChunkRecord(index=i, start=a, stop=b, frames_sha256=frames_digest(pre),
                                  decoded_sha256=frames_digest(decoded[a:b]),
                                  worker=rec.get("worker")))
    return TrackRecord(
        id=job.track_id, audio=audio, fps=job.fps, start=job.start, end=job.end,
        frames=job.n_frames, duration=job.n_frames / job.fps, seed=job.seed,
        postfx_seed=job.postfx_seed, preset=job.preset.name, preset_choice=job.preset_choice,
        preset_resolved=job.preset.model_dump(mode="json"),
        postfx=job.postfx.model_dump(mode="json"), sections=section_records(job),
        controller_notes=list(job.plan.notes),
        chunk_frames=cfg.render.chunk_frames, chunks=chunks,
        frames_sha256=frames_digest(all_frames), decoded_sha256=frames_digest(decoded),
        film=FilmRecord(file=film.name, sha256=file_sha256(film), video_frames=rep.video_frames,
                        audio_duration=rep.audio_duration, width=width, height=height),
        previews=previews, provider=ctx.decoder.provider,
        mixer=None if job.mixer is None else job.mixer.to_meta(),
    )
