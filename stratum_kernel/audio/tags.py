"""The tags of an audio file (title, artist, album, track number), as ffmpeg reads them.

ffmpeg understands the tags of every format stratum reads (ID3 in MP3, Vorbis comments in
FLAC and Ogg, RIFF INFO in WAV, iTunes atoms in M4A), so one reader covers them all:
``ffmpeg -i FILE -f ffmetadata -`` prints ``key=value`` lines (``=``, ``;``, ``#``, ``\\``
and line breaks escaped with a backslash). A file without tags, or one ffmpeg cannot read,
gives an empty mapping: tags are a convenience, the file name is the fallback. Ogg files
keep their tags on the audio stream, which is read when the file itself has none.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from stratum_kernel.core.errors import AudioError
from stratum_kernel.core.ffmpeg import ffmpeg_exe

KEYS = ("title", "artist", "album", "track", "date", "genre")


def parse_ffmetadata(text: str) -> dict[str, str]:
    """{key (lower case): value} of an ffmetadata document's global section."""
    out: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("[") or line.startswith(";") or "=" not in line:
            if line.startswith("["):  # a [STREAM] or [CHAPTER] section: global tags end
                break
            continue
        while line.endswith("\\") and not line.endswith("\\\\") and i < len(lines):
            line = line[:-1] + "\n" + lines[i]  # an escaped line break
            i += 1
        key, value = re.split(r"(?<!\\)=", line, maxsplit=1)
        unescape = re.sub(r"\\(.)", r"\1", value, flags=re.S)
        out[re.sub(r"\\(.)", r"\1", key).strip().lower()] = unescape.strip()
    return out


def read_tags(path: str | Path) -> dict[str, str]:
    """The tags of :data:`KEYS` that ``path`` carries (module docstring)."""
    try:
        exe = ffmpeg_exe(AudioError, "read tags")
    except AudioError:
        return {}
    tags: dict[str, str] = {}
    # the file's own tags, then the audio stream's (Ogg keeps its Vorbis comments there)
    for extra in ([], ["-map_metadata", "0:s:a:0"]):
        proc = subprocess.run([exe, "-v", "error", "-i", str(path), *extra, "-f", "ffmetadata",
                               "-"], capture_output=True, timeout=60)
        if proc.returncode == 0:
            found = parse_ffmetadata(proc.stdout.decode("utf-8", errors="replace"))
            tags = {**found, **tags}
        if any(tags.get(k) for k in ("title", "artist")):
            break
    return {k: tags[k] for k in KEYS if tags.get(k)}


def track_number(tags: dict[str, str]) -> int | None:
    """The track number of a ``track`` tag ('3', '03/12'); None when absent or odd."""
    m = re.match(r"\s*(\d{1,4})", tags.get("track", ""))
    return int(m.group(1)) if m else None
