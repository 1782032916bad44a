"""ffmpeg: frames through a pipe into H.264 MP4s, segment concat, audio mux, stream checks.

ffmpeg comes from imageio-ffmpeg. Frames travel as rgb24 over stdin (no frame files);
every output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow",
]


class EncodeParams(BaseModel):
    """Encoder settings shared by every track of a run (so the album concat needs no re-encode).

    crf / preset: None = chosen by resolution (see ``resolve_x264``). threads: x264 threads;
    fixed so that identical frames give identical bytes. keyint: maximum GOP in frames
    (None = 2 s). audio_bitrate: AAC bitrate in kbit/s; audio_sample_rate in Hz.
    """

    model_config = ConfigDict(extra="forbid")

    codec: Literal["h264"] = "h264"
    crf: int | None = Field(default=None, ge=0, le=51)
    preset: X264Preset | None = None
    pix_fmt: Literal["yuv420p"] = "yuv420p"
    keyint: int | None = Field(default=None, ge=1, le=1000)
    threads: int = Field(default=2, ge=1, le=64)
    audio_codec: Literal["aac"] = "aac"
    audio_bitrate: int = Field(default=192, ge=32, le=512)
    audio_sample_rate: int = Field(default=48000, ge=8000, le=192000)
    audio_channels: int = Field(default=2, ge=1, le=2)
