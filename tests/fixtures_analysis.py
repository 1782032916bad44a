"""A numpy stand-in for an album analysis (librosa's first import costs tens of seconds).

:class:`FakeAnalysis` has ``AlbumAnalysis.frame_features``: per-frame loudness and onsets
from the audio, a beat grid (at ``bpm``, or each track's tracklist bpm), the album's markers
and, with ``stems=True``, stem envelopes and onsets derived from the loudness; and a
``character`` for ``controller.preset: auto``. Deterministic numpy only.
"""

from __future__ import annotations

import numpy as np

from stratum_kernel.audio.files import load_audio
from stratum_kernel.core.timeline import STEM_NAMES, FrameFeatures, frame_count, frame_times


class FakeAnalysis:
    STEMS = False
    BPM: float | None = None

    def __init__(self, album, *, stems: bool | None = None, bpm: float | None = None):
        self.album = album
        self.with_stems = self.STEMS if stems is None else stems
        self.bpm = self.BPM if bpm is None else bpm

    def frame_features(self, track_id, *, fps, start=0.0, end=None, album_normalised=True):
        track = self.album.track(track_id)
        y, sr = load_audio(track.audio_path, mono=True)
        y = y[0]
        end = len(y) / sr if end is None else end
        n = frame_count(end - start, fps)
        t = frame_times(n, fps, start)
        idx = np.clip((t * sr).astype(int), 0, len(y) - 1)
        win = max(1, int(sr / fps))
        rms = np.array([np.sqrt(np.mean(y[i : i + win] ** 2) + 1e-12) for i in idx])
        rms = (rms / rms.max()).astype(np.float32)
        onset = np.clip(np.diff(rms, prepend=rms[:1]) * 4, 0, 1).astype(np.float32)
        values = {
            "rms": rms, "onset": onset, "harmonic": rms * 0.7, "percussive": onset,
            "centroid": (0.5 + 0.3 * np.sin(t)).astype(np.float32),
            "flatness": np.full(n, 0.2, np.float32),
            "chroma": np.abs(np.sin(np.outer(np.arange(1, 13), t))).astype(np.float32),
            "mfcc": np.cos(np.outer(np.arange(13), t)).astype(np.float32),
        }
        stems = {}
        if self.with_stems:
            stems = {s: {"envelope": np.roll(rms, k).astype(np.float32),
                         "onset": np.roll(onset, k).astype(np.float32)}
                     for k, s in enumerate(STEM_NAMES)}
        bpm = self.bpm or track.bpm or 120.0
        markers = tuple(track.marker_times)
        return FrameFeatures(
            track_id=track_id, fps=fps, start=start, n_frames=n, values=values, stems=stems,
            beat_frames=np.flatnonzero(np.diff(np.floor(t * bpm / 60), prepend=-1) > 0),
            tempo=float(bpm), markers=markers,
            section=np.searchsorted(np.asarray(markers), t, side="right").astype(np.int32),
        )


    def character(self, track_id):
        """A TrackCharacter from the audio's level and onsets (brightness and shares fixed:
        the stand-in has no spectrum)."""
        from stratum_kernel.analysis.character import onset_peaks
        from stratum_kernel.core.character import TrackCharacter

        y, sr = load_audio(self.album.track(track_id).audio_path, mono=True)
        ff = self.frame_features(track_id, fps=24.0)
        level = float(np.sqrt(np.mean(y[0].astype(np.float64) ** 2)) + 1e-12)
        shares = {"vocals": 0.25, "drums": 0.25} if self.with_stems else {}
        return TrackCharacter(
            tempo=float(ff.tempo), onset_rate=len(onset_peaks(ff.values["onset"], 24.0))
            / max(y.shape[1] / sr, 1e-3), loudness=20 * np.log10(level), dynamics=10.0,
            brightness=1000.0, percussive=0.2, beat_strength=0.5, **shares)


class NumpyAnalysis(FakeAnalysis):
    """Loudness and onsets from the audio, a 120 bpm beat grid, the album's markers."""

    BPM = 120.0


class StudioAnalysis(FakeAnalysis):
    """Loudness, onsets and stem envelopes from the audio, each track's bpm, its markers."""

    STEMS = True
