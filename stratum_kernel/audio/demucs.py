"""The Demucs stem-separation backend: a model from local files, applied with demucs' own
code. torch and the ``demucs`` package are imported when a model is loaded, so importing this
module is cheap; :func:`stratum_kernel.audio.stems.separate` chooses it when weights are on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stratum_kernel.audio.files import check_audio
from stratum_kernel.audio.resampling import resample
from stratum_kernel.core.errors import ModelError
from stratum_kernel.core.paths import atomic_path
from stratum_kernel.core.timeline import STEM_NAMES

#: Where the Demucs weights are, when no path is given (nothing is ever downloaded).
WEIGHTS_ENV = "STRATUM_DEMUCS_WEIGHTS"


class DemucsSeparator:
    """A Demucs model loaded from local files, applied with ``demucs.apply.apply_model``.

    weights: a serialised model (``.th``, as written by Demucs' training or
    :func:`save_demucs_model`; loaded with ``demucs.states.load_model``) or a folder of
    pretrained files with their ``<name>.yaml`` (loaded with
    ``demucs.pretrained.get_model(model_name, repo=folder)``). Nothing is downloaded.
    The model's sources map onto stratum's four stems; extra ones (guitar, piano) are
    added to ``other``.
    """

    def __init__(
        self,
        weights: str | Path,
        *,
        model_name: str = "htdemucs",
        device: str = "cpu",
        shifts: int = 0,
        overlap: float = 0.25,
        segment: float | None = None,
    ):
        import warnings

        path = Path(weights).expanduser()
        if not path.exists():
            raise ModelError(
                f"{path}: Demucs weights not found; set {WEIGHTS_ENV} to a local .th file "
                "or model folder, or use --backend dsp"
            )
        try:
            import torch  # noqa: F401
            from demucs.states import load_model
        except ImportError as err:
            raise ModelError(
                f"the Demucs backend needs the 'demucs' package ({err}); install it with "
                "`pip install -e .[separation]` or use the 'dsp' backend"
            ) from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if path.is_dir():
                    from demucs.pretrained import get_model

                    model = get_model(model_name, repo=path)
                else:
                    model = load_model(path)
        except Exception as err:  # torch/pickle/demucs raise many kinds for a bad file
            raise ModelError(f"{path}: could not load a Demucs model ({err})") from None
        self.path = path
        self.model = model.to(device).eval()
        self.device = device
        self.shifts = shifts
        self.overlap = overlap
        self.segment = segment
        self.sources: list[str] = list(model.sources)
        self.samplerate = int(model.samplerate)
        self.audio_channels = int(model.audio_channels)

    def __call__(self, y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """{stem: float32 [channels, samples]} for ``y`` [channels, samples] at ``sr``."""
        import torch
        from demucs.apply import apply_model

        y = check_audio(y)
        channels, n = y.shape
        x = resample(y, sr, self.samplerate)
        if self.audio_channels == 2 and channels == 1:
            x = np.repeat(x, 2, axis=0)
        elif self.audio_channels == 1 and channels > 1:
            x = x.mean(axis=0, keepdims=True)
        elif channels > self.audio_channels:
            x = x[: self.audio_channels]
        wav = torch.from_numpy(np.ascontiguousarray(x))
        # One normalisation for the whole mix (as demucs' own CLI does): every stem is
        # scaled back by the same factor, so their levels stay comparable.
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std().clamp_min(1e-8)
        with torch.inference_mode():
            est = apply_model(
                self.model,
                ((wav - mean) / std)[None],
                shifts=self.shifts,
                split=True,
                overlap=self.overlap,
                segment=self.segment,
                progress=False,
                device=self.device,
            )[0]
        est = (est * std + mean / len(self.sources)).cpu().numpy()
        out = {s: np.zeros((channels, n), dtype=np.float32) for s in STEM_NAMES}
        for i, source in enumerate(self.sources):
            stem = source if source in STEM_NAMES else "other"
            part = resample(np.ascontiguousarray(est[i], dtype=np.float32), self.samplerate, sr)
            if part.shape[0] != channels:  # a mono model on stereo audio, or the reverse
                part = np.repeat(part.mean(axis=0, keepdims=True), channels, axis=0)
            m = min(n, part.shape[1])
            out[stem][:, :m] += part[:, :m]
        return out


def save_demucs_model(model: Any, path: str | Path) -> Path:
    """Write ``model`` (a Demucs model built with its ``capture_init`` constructor) as a
    package ``demucs.states.load_model`` reads: {klass, args, kwargs, state}."""
    import torch
    from demucs.states import get_state

    path = Path(path)
    args, kwargs = model._init_args_kwargs
    package = {
        "klass": model.__class__,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=False),
        "training_args": {},
    }
    with atomic_path(path) as tmp:
        torch.save(package, tmp)
    return path
