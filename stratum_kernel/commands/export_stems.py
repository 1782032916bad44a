"""``stratum export-stems``: a track's stem mix as WAV and its stems as a ZIP, gains applied.

    stratum export-stems --album album --track track1 --gain drums=-3 --mute vocals \\
        --wav out/mix.wav --zip out/stems.zip --format flac

The stems are the album's bundled ones, or separated (and cached) when the album has none.
``--state mixer.json`` starts from a saved mixer state (the dashboard's export, a stem ZIP's
``mixer.json``, or a meta.json's ``mixer`` record); ``--gain``/``--mute``/``--solo``/
``--master`` then change it. Solo and mute follow the mixer's rule (see
``stratum_kernel/mixer.py``): when any stem is soloed only soloed stems sound, and a muted
stem never sounds.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.mixer import (
    MixerState,
    export_mix_wav,
    export_stems_zip,
    load_mixer_state,
)
from stratum_kernel.audio.stems import load_stems
from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.paths import default_album_dir
from stratum_kernel.core.timeline import STEM_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--album", default=None,
                        help="album folder (default: the project's album/)")
    parser.add_argument("--track", required=True, help="track id (see tracklist.json)")
    parser.add_argument("--state", default=None, metavar="JSON",
                        help="start from this saved mixer state")
    parser.add_argument("--gain", action="append", default=[], metavar="STEM=DB",
                        help="fader of a stem in dB, -60..12 (repeatable), e.g. drums=-3")
    parser.add_argument("--mute", action="append", default=[], metavar="STEM",
                        help="mute a stem (repeatable)")
    parser.add_argument("--solo", action="append", default=[], metavar="STEM",
                        help="solo a stem (repeatable); only soloed stems sound")
    parser.add_argument("--master", type=str, default=None, metavar="DB",
                        help="master gain in dB, -60..12")
    parser.add_argument("--wav", default=None, metavar="OUT.wav", help="write the mix here")
    parser.add_argument("--zip", default=None, metavar="OUT.zip",
                        help="write the stems (gains applied) and mixer.json here")
    parser.add_argument("--format", choices=("flac", "wav"), default="flac",
                        help="file type of the stems in the ZIP (default flac)")
    parser.add_argument("--bits", choices=("16", "24", "float"), default="24",
                        help="sample format: 16/24-bit PCM, or float (WAV only; never clips)")
    parser.add_argument("--normalize", type=str, default=None, metavar="DBFS",
                        help="scale the mix so its peak is DBFS (e.g. -1); off by default")
    parser.add_argument("--backend", choices=("auto", "dsp", "demucs"), default="auto",
                        help="separation backend when the album has no stems (default auto)")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="stem cache folder (default: the project's cache/)")


def _stem(flag: str, name: str) -> str:
    name = name.strip()
    if name not in STEM_NAMES:
        raise ConfigError(
            flag, None, f"unknown stem {name!r}; the stems are {', '.join(STEM_NAMES)}"
        )
    return name


def _db(flag: str, text: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(flag, None, f"{text!r} is not a number of dB; write e.g. {example}")
    return value


def parse_gain(text: str) -> tuple[str, float]:
    """``'drums=-3'`` → ``('drums', -3.0)``; a :class:`ConfigError` naming ``--gain``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(
            "--gain", None, f"{text!r} is not STEM=DB; write e.g. --gain drums=-3 "
            f"(stems: {', '.join(STEM_NAMES)})"
        )
    return _stem("--gain", name), _db("--gain", value.strip(), "--gain drums=-3")


def state_from_args(args: argparse.Namespace):
    """The mixer state the flags describe, on top of ``--state`` (if given)."""
    state = load_mixer_state(args.state) if args.state else MixerState()
    doc = state.model_dump()
    for text in args.gain:
        stem, db = parse_gain(text)
        doc[stem]["gain_db"] = db
    for name in args.mute:
        doc[_stem("--mute", name)]["mute"] = True
    for name in args.solo:
        doc[_stem("--solo", name)]["solo"] = True
    if args.master is not None:
        doc["master_db"] = _db("--master", args.master, "--master -3")
    return MixerState.parse(doc, "command line (--gain/--master)")


def _subtype(args: argparse.Namespace) -> tuple[str, str]:
    """(WAV subtype, ZIP subtype) from --bits; FLAC holds at most 24-bit integers."""
    wav = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}[args.bits]
    if args.format == "flac" and wav == "FLOAT":
        if args.zip:
            raise ConfigError(
                "--bits", None, "FLAC cannot hold float samples; use --bits 24 or --format wav"
            )
        return wav, "PCM_24"
    return wav, wav


def run(args: argparse.Namespace) -> int:

    if not args.wav and not args.zip:
        raise ConfigError(
            "export-stems", None, "nothing to write; give --wav OUT.wav and/or --zip OUT.zip"
        )
    state = state_from_args(args)
    wav_subtype, zip_subtype = _subtype(args)
    normalize = None if args.normalize is None else _db("--normalize", args.normalize,
                                                        "--normalize -1")
    album = load_album(Path(args.album) if args.album else default_album_dir())
    track = album.track(args.track)
    stem_set = load_stems(track, cache_root=args.cache, backend=args.backend)
    print(f"{track.id}: {stem_set.source} stems, {stem_set.sr} Hz")
    if args.wav:
        report = export_mix_wav(stem_set.stems, stem_set.sr, state, args.wav,
                                subtype=wav_subtype, normalize_dbfs=normalize)
        print(f"mix   {report.summary()}")
    if args.zip:
        report = export_stems_zip(
            stem_set.stems, stem_set.sr, state, args.zip, fmt=args.format,
            subtype=zip_subtype, normalize_dbfs=normalize, folder=track.id,
            extra={"track": track.id, "stems_source": str(stem_set.source)},
        )
        print(f"stems {report.summary()}")
    return 0
