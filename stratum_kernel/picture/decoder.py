"""Decoding latents into frames: ONNX Runtime (CUDA when it really works, else CPU) or torch.

``FrameDecoder(model, params).decode(latents)`` turns float32 [B, 8, 16, 16] latents into
uint8 [B, H, W, 3] frames. Batches are split to ``params.batch_size``; a batch that fails
(out of memory, a provider error) is retried in halves down to one frame, never dropped.

Why the CUDA probe: onnxruntime-gpu lists ``CUDAExecutionProvider`` as available even when
the CUDA libraries are missing, and silently falls back to CPU when a session is created.
So the session is created with CUDA first and ``session.get_providers()`` tells what really
runs; the answer is cached for the process and logged once.

Precision: ONNX Runtime's CPU provider has no bfloat16 convolutions, but PyTorch runs them
on CPUs with native bf16 (AMX, AVX512-BF16), about twice as fast as ONNX Runtime's float32
here and about one level of uint8 off on average (``stratum bench render --precision``,
BENCHMARKS.md). ``precision: auto`` takes that path where it is fast (torch importable, the
CPU bf16-native, no CUDA in use) and float32 elsewhere; the choice is logged and is part of
``provider`` (``torch:cpu:bfloat16``), which meta.json and a resume's fingerprint record.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stratum_kernel.core.digests import file_sha256
from stratum_kernel.core.errors import ModelError, RenderError
from stratum_kernel.picture.model import GeneratorModel

log = logging.getLogger(__name__)

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


class DecoderParams(BaseModel):
    """How latents are decoded.

    batch_size: frames per decoder call. 1 is fastest on CPU (larger batches spill the
        activations out of cache: 66 vs 80 ms/frame at batch 1 vs 4 here); GPUs want 16-64.
    execution_provider: 'auto' (CUDA if it really initialises, else CPU), 'cpu', 'cuda'
        (CUDA or an error), 'torch' (the PyTorch generator with the EMA weights, for GPUs whose
        ONNX Runtime has no CUDA provider; CUDA if torch sees a GPU, else CPU).
    threads: intra-op threads for the CPU provider / torch; 0 lets the runtime choose.
        One thread is fastest end to end on a 2-core machine, where x264 needs the other.
    head: the size of the frames to decode, one of the model's heads (a model trained to
        256² can carry a 128² head for CPU drafts); None: the model's own output size.
    precision: 'float32'; 'bfloat16' (PyTorch's bf16 autocast; execution_provider 'torch'
        or 'auto'); 'auto': bfloat16 on a CPU that computes it natively when torch is
        installed, the model has its weights file and CUDA is not used; float32 otherwise.
    """

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=1, ge=1, le=1024)
    execution_provider: Literal["auto", "cpu", "cuda", "torch"] = "auto"
    threads: int = Field(default=1, ge=0, le=256)
    head: int | None = Field(default=None, ge=8, le=4096)
    precision: Literal["float32", "bfloat16", "auto"] = "float32"

    @model_validator(mode="after")
    def _bf16_needs_torch(self) -> DecoderParams:
        if self.precision == "bfloat16" and self.execution_provider in ("cpu", "cuda"):
            raise ValueError(
                f"precision 'bfloat16' runs on PyTorch, but execution_provider is "
                f"{self.execution_provider!r} (ONNX Runtime, float32 only); set "
                "execution_provider to 'torch' or 'auto', or precision to 'float32' or 'auto'"
            )
        return self


class Session(Protocol):
    """The slice of ``onnxruntime.InferenceSession`` the decoder uses (tests inject fakes)."""

    def run(self, output_names: Any, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


_cuda_works: bool | None = None
_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        log.info(message)


def _nvidia_device_present() -> bool:
    """Cheap check before probing CUDA: without a driver the probe only prints errors."""
    return Path("/proc/driver/nvidia/version").exists() or any(
        Path("/dev").glob("nvidia[0-9]*")
    )


def native_bf16_cpu() -> bool:
    """Whether torch is importable and this CPU computes bf16 natively (AMX, AVX512-BF16):
    elsewhere bf16 is emulated and slower than float32."""
    try:
        import torch

        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # no torch, or a build without the query
        return False


def _session_options(threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return so


def _cuda_may_work() -> bool:
    """False when ONNX Runtime's CUDA provider surely cannot run here (not in this build, no
    NVIDIA driver, or an earlier probe failed); True when only a session can tell."""
    global _cuda_works
    import onnxruntime as ort

    if CUDA_EP not in ort.get_available_providers():
        return False
    if _cuda_works is None and not _nvidia_device_present():
        _cuda_works = False
    return _cuda_works is not False


def create_session(onnx_path: Path, provider: str, threads: int) -> tuple[Any, str]:
    """An ONNX Runtime session on ``provider`` ('auto' | 'cpu' | 'cuda') and the provider it
    really runs on (``CUDAExecutionProvider`` or ``CPUExecutionProvider``)."""
    global _cuda_works
    import onnxruntime as ort

    so = _session_options(threads)
    if provider in ("auto", "cuda") and _cuda_may_work():
        with contextlib.suppress(Exception):  # best effort; the probe below decides
            ort.preload_dlls()  # CUDA/cuDNN from pip's nvidia-* wheels, when installed
        ort.set_default_logger_severity(4)  # the fallback path logs a scary but harmless error
        why = "ONNX Runtime fell back to its CPU provider"
        try:
            session = ort.InferenceSession(str(onnx_path), so, providers=[CUDA_EP, CPU_EP])
            _cuda_works = session.get_providers()[0] == CUDA_EP
        except Exception as err:  # a CUDA provider that fails hard (driver, cuDNN, memory)
            _cuda_works = False
            why = f"the CUDA provider failed: {type(err).__name__}: {str(err)[:200]}"
        finally:
            ort.set_default_logger_severity(2)
        if _cuda_works:
            return session, CUDA_EP
        if provider == "auto":
            log.warning("decoder: CUDA could not be used (%s); decoding on the CPU", why)
    if provider == "cuda":
        raise RenderError(
            "decoder.execution_provider is 'cuda' but ONNX Runtime could not start its CUDA "
            "provider (no GPU, or CUDA/cuDNN libraries missing); use 'auto' or 'cpu', or "
            "'torch' for a GPU that only torch can use"
        )
    try:
        session = ort.InferenceSession(str(onnx_path), so, providers=[CPU_EP])
    except Exception as err:  # onnxruntime raises its own kinds for a damaged protobuf
        raise ModelError(
            f"{onnx_path}: not a readable ONNX model ({type(err).__name__}: "
            f"{str(err)[:200]}); re-export it with training/export_onnx.py"
        ) from None
    return session, CPU_EP


class _TorchSession:
    """Runs ``picture.generator.Generator`` with the EMA weights behind the Session interface,
    in float32 or under bf16 autocast. One latent per forward pass: oneDNN picks kernels by
    batch size, and float32 results then differ in the last bits (enough to flip a uint8
    rounding now and then), so a frame's pixels would depend on the batch it came in."""

    def __init__(self, model: GeneratorModel, threads: int, size: int,
                 precision: str = "float32"):
        try:
            import torch

            from stratum_kernel.picture.generator import load_generator_safetensors
        except ImportError as err:
            raise RenderError(
                f"decoder.execution_provider is 'torch' but {err.name or err} cannot be "
                "imported; install the train extra (pip install -e '.[train]') or use 'auto'"
            ) from None

        meta = model.meta
        if meta.weights is None:
            raise ModelError(
                f"{model.directory / 'meta.json'}: field 'weights' is missing, so the torch "
                "backend has no EMA weights to load; re-export the model or use 'auto'"
            )
        weights = model.directory / meta.weights.file
        if not weights.is_file():
            raise ModelError(f"{weights}: the weights file named in meta.json is missing")
        if file_sha256(weights) != meta.weights.sha256:
            raise ModelError(
                f"{weights}: sha256 does not match meta.json field 'weights.sha256'; the "
                "weights belong to another export; re-export the model"
            )
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        net = load_generator_safetensors(str(weights))
        try:
            self.levels = net.levels_for(size)
        except ValueError as err:
            raise ModelError(f"{weights}: {err} (meta.json output_shape)") from None
        self.net = net.eval().to(self.device)
        if precision == "auto":  # bf16 where the CPU computes it natively
            precision = "bfloat16" if self.device == "cpu" and native_bf16_cpu() else "float32"
        elif precision == "bfloat16" and self.device == "cpu" and not native_bf16_cpu():
            log.warning("decoder: this CPU has no native bfloat16; precision 'bfloat16' is "
                        "emulated and slower than 'float32' here")
        self.precision = precision
        if precision == "bfloat16":  # oneDNN's bf16 convolutions want NHWC (≈1.6× here)
            self.net = self.net.to(memory_format=torch.channels_last)
        self._torch = torch

    def run(self, output_names: Any, input_feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        (z,) = input_feed.values()
        outs = []
        with torch.inference_mode(), torch.autocast(
            self.device, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"
        ):
            for i in range(len(z)):
                out = self.net(torch.from_numpy(z[i : i + 1]).to(self.device),
                               levels=self.levels)
                outs.append(out.float().cpu().numpy())
        return [np.concatenate(outs)]


def to_uint8(images: np.ndarray, output_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """float [B, 3, H, W] in ``output_range`` -> uint8 [B, H, W, 3], rounded half to even.

    For the default range this is ``rint((x + 1) * 127.5)`` clipped to 0..255.
    """
    lo, hi = output_range
    scale = np.float32(255.0 / (hi - lo))
    x = (images.astype(np.float32, copy=False) - np.float32(lo)) * scale
    np.clip(x, 0.0, 255.0, out=x)
    np.rint(x, out=x)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).astype(np.uint8)


class FrameDecoder:
    """Decodes latents with one model on one backend.

    ``provider`` says what really runs: 'CUDAExecutionProvider', 'CPUExecutionProvider',
    'torch:cuda' or 'torch:cpu' (':bfloat16' appended under bf16 autocast); ``precision``
    what it computes in. ``session`` (optional) replaces the runtime session with any
    object that has ``run(None, {input: z}) -> [image]`` (for tests).
    """

    def __init__(
        self,
        model: GeneratorModel,
        params: DecoderParams | None = None,
        *,
        session: Session | None = None,
    ):
        self.model = model
        self.params = params or DecoderParams()
        self.onnx_path, self._frame_size = model.head(self.params.head)
        self.input_name = model.meta.onnx.input
        self.batch_size = self.params.batch_size
        self.retries = 0
        if session is not None:
            self._session, self.provider, self.precision = session, "injected", "float32"
        else:
            self._session, self.provider, self.precision = self._open(model)
            self.probe()
        _log_once(
            f"decoder: {model.meta.name} on {self.provider} "
            f"(asked for {self.params.execution_provider}, {self.params.threads or 'auto'} "
            f"threads, pid {os.getpid()})"
        )

    def _open(self, model: GeneratorModel) -> tuple[Any, str, str]:
        """(session, provider, precision) as the params ask, resolved on this machine."""
        p = self.params
        provider = p.execution_provider
        if p.precision != "float32" and provider == "auto":
            session, really = None, CPU_EP
            if _cuda_may_work():  # only a session tells whether CUDA really runs
                session, really = create_session(self.onnx_path, "auto", p.threads)
                if really == CUDA_EP:
                    return session, really, "float32"
            if p.precision == "auto" and (not native_bf16_cpu() or model.meta.weights is None):
                if session is None:  # the CPU session the CUDA probe fell back to, or one now
                    session, really = create_session(self.onnx_path, "cpu", p.threads)
                return session, really, "float32"
            provider = "torch"  # the CPU, where bf16 pays: PyTorch instead
        if provider == "torch":
            ts = _TorchSession(model, p.threads, self._frame_size[0], p.precision)
            name = f"torch:{ts.device}" + (":bfloat16" if ts.precision == "bfloat16" else "")
            return ts, name, ts.precision
        session, really = create_session(self.onnx_path, provider, p.threads)
        return session, really, "float32"

    def probe(self) -> None:
        """Decode one fixed latent and check what comes out: the shape meta.json promises,
        finite values inside the output range. A model that fails (a diverged training
        gives NaN, a wrong export another size) is refused here, naming the file, instead
        of rendering a black or broken film."""
        shape = tuple(self.model.latent_shape)
        z = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
        try:
            (image,) = self._session.run(None, {self.input_name: z})[:1]
        except Exception as err:
            raise ModelError(f"{self.onnx_path}: the model fails on a test latent "
                             f"({type(err).__name__}: {str(err)[:200]})") from None
        h, w = self.frame_size
        image = np.asarray(image)
        if image.shape != (1, 3, h, w):
            raise ModelError(
                f"{self.onnx_path}: decodes a latent to shape {list(image.shape)}, but "
                f"meta.json promises [1, 3, {h}, {w}]; re-export the model (its meta.json "
                "and ONNX file belong together)"
            )
        if not np.isfinite(image).all():
            raise ModelError(
                f"{self.onnx_path}: decodes a test latent to NaN or infinite values (a "
                "diverged training?); export an earlier checkpoint"
            )
        lo, hi = self.model.meta.output_range
        margin = 0.01 * (hi - lo)
        if image.min() < lo - margin or image.max() > hi + margin:
            raise ModelError(
                f"{self.onnx_path}: outputs {image.min():.3g}..{image.max():.3g}, outside "
                f"meta.json's output_range [{lo:g}, {hi:g}]; re-export the model"
            )

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of decoded frames."""
        return self._frame_size

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """latents: float32 [B, 8, 16, 16] -> frames uint8 [B, H, W, 3].

        Deterministic: the same latents give the same pixels whatever the batch size.
        """
        z = np.ascontiguousarray(latents, dtype=np.float32)
        shape = tuple(self.model.latent_shape)
        if z.ndim != 4 or tuple(z.shape[1:]) != shape:
            raise RenderError(
                f"decoder: latents must be float32 [B, {', '.join(map(str, shape))}], "
                f"got shape {list(z.shape)}"
            )
        if not np.isfinite(z).all():
            raise RenderError("decoder: latents contain NaN or infinity (controller bug?)")
        h, w = self.frame_size
        out = np.empty((len(z), h, w, 3), dtype=np.uint8)
        pos = 0
        while pos < len(z):
            n = min(self.batch_size, len(z) - pos)
            out[pos : pos + n] = self._decode_retrying(z[pos : pos + n])
            pos += n
        return out

    def _run(self, z: np.ndarray) -> np.ndarray:
        (image,) = self._session.run(None, {self.input_name: z})[:1]
        if image.shape[0] != len(z):
            raise RenderError(f"decoder: model returned {image.shape[0]} frames for {len(z)}")
        return to_uint8(image, tuple(self.model.meta.output_range))

    def _decode_retrying(self, z: np.ndarray) -> np.ndarray:
        """Run one batch; on failure halve it (and remember the smaller size) down to 1."""
        try:
            return self._run(z)
        except RenderError:
            raise
        except Exception as err:
            if len(z) == 1:
                raise RenderError(
                    f"decoder: a single frame failed to decode on {self.provider}: "
                    f"{type(err).__name__}: {err}"
                ) from err
            half = (len(z) + 1) // 2
            self.retries += 1
            if half < self.batch_size:
                log.warning(
                    "decoder: batch of %d failed (%s: %s); retrying with batches of %d",
                    len(z), type(err).__name__, str(err)[:200], half,
                )
                self.batch_size = half
            return np.concatenate(
                [self._decode_retrying(z[:half]), self._decode_retrying(z[half:])]
            )

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> FrameDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

