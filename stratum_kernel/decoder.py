"""Decoding latents into frames: ONNX Runtime (CUDA when it really works, else CPU) or torch.

``FrameDecoder(model, params).decode(latents)`` turns float32 [B, 8, 16, 16] latents into
uint8 [B, H, W, 3] frames. Batches are split to ``params.batch_size``; a batch that fails
(out of memory, a provider error) is retried in halves down to one frame, never dropped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DecoderParams(BaseModel):
    """How latents are decoded.

    batch_size: frames per ONNX Runtime call (1 is as fast as any on CPU; larger helps GPUs).
    execution_provider: 'auto' (CUDA if it really initialises, else CPU), 'cpu', 'cuda'
        (CUDA or an error), 'torch' (the PyTorch generator with the EMA weights, for GPUs whose
        ONNX Runtime has no CUDA provider; CUDA if torch sees a GPU, else CPU).
    threads: intra-op threads for the CPU provider / torch; 0 lets the runtime choose.
        One thread is fastest end to end on a 2-core machine, where x264 needs the other.
    """

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=8, ge=1, le=1024)
    execution_provider: Literal["auto", "cpu", "cuda", "torch"] = "auto"
    threads: int = Field(default=1, ge=0, le=256)
