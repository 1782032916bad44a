"""The feature disk cache and analysing a whole album.

``cache/features/<track>-<key>.npz`` holds one track's :class:`TrackFeatures`; ``key``
hashes the SHA-256 of the audio file's bytes, the stems' identity (bundled stem files'
hashes, or the separation backend) and :meth:`FeatureParams.digest`. A changed file or
parameter gives another key, so it is recomputed; a damaged file fails its checksum on
load and is recomputed, never trusted. File digests are remembered under
``<cache>/features/hashes`` (see :mod:`stratum_kernel.core.digests`).

Computing reads the files a block at a time: the mix, and the stems (bundled files, or
separated ones through their cache, separated from the file in blocks when missing), so
memory does not grow with the track's length.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stratum_kernel.analysis.character import describe_track
from stratum_kernel.analysis.features import (
    FeatureCacheError,
    FeatureParams,
    TrackFeatures,
    features_from_blocks,
)
from stratum_kernel.analysis.frames import AlbumReference, album_reference, frame_features
from stratum_kernel.audio.album import Album, Track, load_album
from stratum_kernel.audio.files import audio_blocks
from stratum_kernel.audio.stems import StemSet, separation_key, stem_streams
from stratum_kernel.core.character import TrackCharacter
from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import cache_dir
from stratum_kernel.core.progress import PREFIX, resolve_mode
from stratum_kernel.core.timeline import STEM_NAMES, FrameFeatures

log = logging.getLogger(__name__)

StemsChoice = Literal["auto", "bundled", "none"]


class FeatureCache:
    """Track features on disk under ``root`` (default ``<cache>/features``).

    Separated stems go to ``stems_root`` (default: ``stems`` next to ``root``), file
    digests to ``root/hashes``.
    """

    def __init__(self, root: str | Path | None = None, *, stems_root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "features"
        self.stems_root = Path(stems_root) if stems_root is not None else self.root.parent / "stems"

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    def digest(self, path: str | Path) -> str:
        """SHA-256 of a file's bytes (remembered under ``root/hashes``)."""
        return file_sha256(path, memo_dir=self.root / "hashes")

    def path_for(self, track_id: str, key: str) -> Path:
        return self.root / f"{track_id}-{key}.npz"

    def _stem_plan(
        self, track: Track, stems: StemSet | StemsChoice, backend: str
    ) -> tuple[str, str]:
        """(what to do for stems, their identity in the cache key)."""
        if not isinstance(stems, str):
            return "given", f"given:{stems.source}:{stems.key}"
        if stems not in ("auto", "bundled", "none"):
            raise ValueError(f"stems must be 'auto', 'bundled', 'none' or a StemSet: {stems!r}")
        if stems == "none":
            return "none", "none"
        if track.stem_paths:
            files = ",".join(f"{s}={self.digest(p)}" for s, p in sorted(track.stem_paths.items()))
            return "load", f"bundled:{files}"
        if stems == "bundled":
            return "none", "none"
        return "load", f"separated:{separation_key(backend)}"

    def key(self, track: Track, params: FeatureParams, stems_key: str) -> str:
        """16 hex digits naming (audio bytes, stems, parameters, track id)."""
        text = "\x1f".join((track.id, self.digest(track.audio_path), stems_key, params.digest()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def load_or_compute(
        self,
        track: Track,
        params: FeatureParams | None = None,
        *,
        stems: StemSet | StemsChoice = "auto",
        stems_backend: str = "auto",
        store: bool = True,
    ) -> TrackFeatures:
        """The features of ``track``: from the cache when an intact entry for this audio,
        these stems and these parameters exists, else computed (loading the audio and the
        stems) and stored. ``store=False`` computes them now and neither reads nor writes
        the cache.

        stems: 'auto' (bundled stems, else separated with ``stems_backend``), 'bundled'
        (bundled stems or none), 'none', or a :class:`~stratum_kernel.audio.stems.StemSet`.
        """
        params = params or FeatureParams()
        plan, stems_key = self._stem_plan(track, stems, stems_backend)
        path = self.path_for(track.id, self.key(track, params, stems_key)) if store else None
        if path is not None and path.exists():
            try:
                cached = TrackFeatures.load(path)
                if cached.params_digest == params.digest() and cached.track_id == track.id:
                    return cached
                log.warning("%s: belongs to other parameters; recomputing", path)
            except FeatureCacheError as err:
                log.warning("%s; recomputing", err)
            path.unlink(missing_ok=True)
        # The mix and the stems are read a block at a time, so memory does not grow with
        # the track's length (separated stems go through their cache files).
        sr, _, blocks = audio_blocks(track.audio_path)
        stem_blocks, stems_sr, source = None, None, None
        if plan == "given":
            assert isinstance(stems, StemSet)
            stem_blocks = {s: iter([a]) for s, a in stems.stems.items()}
            stems_sr, source = stems.sr, stems.source
        elif plan == "load":
            streams = stem_streams(track, cache_root=self.stems_root, backend=stems_backend)
            stem_blocks = {s: _lazy(streams.blocks, s) for s in STEM_NAMES}
            stems_sr, source = streams.sr, streams.source
        tf = features_from_blocks(
            blocks,
            sr,
            params=params,
            bpm_prior=track.bpm,
            stems=stem_blocks,
            stems_sr=stems_sr,
            stem_source=source,
            track_id=track.id,
        )
        if path is not None:
            tf.save(path)
        return tf


def _lazy(open_blocks, name: str):
    """The blocks of ``open_blocks(name)``, opened when first read (one file open at a
    time)."""
    yield from open_blocks(name)


@dataclass
class AlbumAnalysis:
    """Every track's features and the album-wide reference that scales them.

    tracks: id -> TrackFeatures, in album order; stem_sources: id -> 'bundled', 'dsp',
    'demucs' or 'none'; markers: id -> section start times in seconds.
    """

    tracks: dict[str, TrackFeatures]
    reference: AlbumReference
    stem_sources: dict[str, str]
    markers: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def frame_features(
        self,
        track_id: str,
        *,
        fps: float,
        start: float = 0.0,
        end: float | None = None,
        album_normalised: bool = True,
    ) -> FrameFeatures:
        """:func:`frame_features` of one track with this album's reference and markers."""
        if track_id not in self.tracks:
            raise ConfigError(
                None, "track", f"no analysed track {track_id!r}; have {', '.join(self.tracks)}"
            )
        return frame_features(
            self.tracks[track_id],
            fps=fps,
            start=start,
            end=end,
            reference=self.reference if album_normalised else None,
            markers=self.markers.get(track_id, ()),
        )

    def character(self, track_id: str) -> TrackCharacter:
        """What the track is like (:func:`~stratum_kernel.analysis.character.describe_track`),
        the measure ``controller.preset: auto`` chooses by."""
        if track_id not in self.tracks:
            raise ConfigError(
                None, "track", f"no analysed track {track_id!r}; have {', '.join(self.tracks)}"
            )
        return describe_track(self.tracks[track_id])

    def summary(self) -> list[dict[str, Any]]:
        """One row per track: id, duration, tempo estimate and tempo used, beats, stems."""
        return [
            {
                "id": tid,
                "duration": round(tf.duration, 3),
                "tempo_estimate": round(tf.tempo_estimate, 2),
                "tempo": round(tf.tempo, 2),
                "beats": len(tf.beats),
                "stems": tf.stem_source,
            }
            for tid, tf in self.tracks.items()
        ]


def analyze_album(
    album: Album | str | Path,
    *,
    params: FeatureParams | None = None,
    cache: FeatureCache | Literal[False] | None = None,
    stems_backend: str = "auto",
    separate_missing: bool = True,
    progress: bool | str = True,
) -> AlbumAnalysis:
    """Features of every track of ``album`` (an :class:`~stratum_kernel.audio.album.Album` or
    its folder) and their album reference.

    cache: a :class:`FeatureCache` (None: the project's; False: features are computed and
    not stored, though separated stems still go to the project's stem cache).
    Tracks with bundled stems use them; the others are separated with ``stems_backend``
    when ``separate_missing``, else analysed without stem series. progress: as
    :func:`~stratum_kernel.core.progress.resolve_mode` (a bar, or a line per track).
    """
    if isinstance(album, str | Path):
        album = load_album(album)
    params = params or FeatureParams()
    store = cache if isinstance(cache, FeatureCache) else FeatureCache()
    choice: StemsChoice = "auto" if separate_missing else "bundled"
    tracks: dict[str, TrackFeatures] = {}
    items: Iterable[Track] = album.tracks
    mode = resolve_mode(progress)
    if mode == "bar":
        from tqdm.auto import tqdm

        items = tqdm(album.tracks, desc="analysing", unit="track")
    for i, track in enumerate(items):
        t0 = time.perf_counter()
        tracks[track.id] = store.load_or_compute(
            track, params, stems=choice, stems_backend=stems_backend, store=cache is not False
        )
        if mode == "lines":
            print(f"{PREFIX} analysed track {i + 1}/{len(album.tracks)} {track.id} "
                  f"({track.duration:.0f} s of audio) in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr, flush=True)
    return AlbumAnalysis(
        tracks=tracks,
        reference=album_reference(list(tracks.values())),
        stem_sources={tid: tf.stem_source for tid, tf in tracks.items()},
        markers={t.id: tuple(t.marker_times) for t in album.tracks},
    )
