"""Audio features on a fixed hop, their disk cache, and album-wide normalisation.

Everything here is computed from one mel spectrogram at 22.05 kHz (see
:func:`compute_features`); the heavy libraries (librosa, numba) are imported inside the
functions that need them so that ``import stratum_kernel`` stays fast.
"""

from __future__ import annotations


def warm_numba_cache() -> None:
    """Run every numba-compiled librosa path the analysis uses on a tiny signal.

    ``import stratum_kernel`` points ``NUMBA_CACHE_DIR`` at ``<root>/cache/numba``; running
    the kernels once here writes their compiled code there, so later processes load it
    instead of compiling (tens of seconds on a small machine).
    """
    import librosa
    import numpy as np

    import stratum_kernel  # noqa: F401  (sets NUMBA_CACHE_DIR before numba loads)

    sr = 22050
    t = np.arange(sr * 2, dtype=np.float32) / sr
    y = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    y[:: sr // 2] += 1.0
    for dtype in (np.float32, np.float64):
        yy = y.astype(dtype)
        mel = librosa.feature.melspectrogram(y=yy, sr=sr, n_fft=2048, hop_length=512)
        env = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr)
        librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=512, start_bpm=120.0)
        librosa.util.localmax(env)
        librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=512)
        librosa.decompose.hpss(mel, margin=1.0)
        librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=512)
        librosa.feature.rms(y=yy)
        librosa.feature.chroma_stft(y=yy, sr=sr)
        librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
        librosa.resample(yy, orig_sr=sr, target_sr=16000)
