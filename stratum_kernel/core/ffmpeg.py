"""The ffmpeg binary: the one imageio-ffmpeg ships (or ``$IMAGEIO_FFMPEG_EXE``), checked.

One place finds it for everything that runs ffmpeg — decoding audio, reading tags,
encoding and muxing films — so every caller reports a missing or broken binary the same
way, each in its own error kind.
"""

from __future__ import annotations

import os
import shutil

from stratum_kernel.core.errors import StratumError


def ffmpeg_exe(error: type[StratumError] = StratumError, purpose: str = "") -> str:
    """The path of the ffmpeg binary; ``error`` (naming ``purpose``) when there is none."""
    why = f" to {purpose}" if purpose else ""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as err:  # ImportError or its RuntimeError when no binary is found
        raise error(f"ffmpeg is needed{why} but is not available ({err}); install "
                    "imageio-ffmpeg (pip install imageio-ffmpeg)") from None
    # imageio-ffmpeg trusts $IMAGEIO_FFMPEG_EXE without checking it
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)) and shutil.which(exe) is None:
        env = os.environ.get("IMAGEIO_FFMPEG_EXE")
        where = f" (from IMAGEIO_FFMPEG_EXE={env!r})" if env else ""
        raise error(
            f"ffmpeg not found: {exe!r}{where} is not an executable file; point "
            "IMAGEIO_FFMPEG_EXE at an ffmpeg binary, or unset it to use imageio-ffmpeg's own"
        )
    return exe
