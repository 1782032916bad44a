"""``python -m stratum_kernel <command>`` (also installed as ``stratum``).

Each command lives in ``stratum_kernel/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``run(args) -> int``; only the chosen command's module is
imported, so ``stratum --help`` is instant. Errors a user can fix are printed on one line
to stderr with exit status 1; ``--debug`` shows the traceback. Exit status 2 is a usage
error, 130 an interrupt (Ctrl-C, SIGINT), 143 a termination request (SIGTERM): both stop
the same clean way (workers stopped, ffmpeg aborted, temporary files removed, the run
resumable).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence

# command name -> (module under stratum_kernel.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "write a starting tracklist.json and render.yaml for a folder of songs"),
    "analyze": ("analyze", "analyse an album: durations, tempo, key, loudness, stems, preset"),
    "render": ("render", "render an album (or some tracks) to films"),
    "verify": ("verify", "re-read a render folder and check it against its meta.json"),
    "export-stems": ("export_stems", "export a track's stem mix as WAV and its stems as ZIP"),
    "bench": ("bench", "measure speed: bench analysis|render|preview|postfx|viz|scale|all"),
    "warmup": ("warmup", "fill the numba cache so that later runs start fast"),
}


def _load_command(name: str):
    module_name, _ = COMMANDS[name]
    return importlib.import_module(f"stratum_kernel.commands.{module_name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stratum", description="stratum: audio-reactive album films."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        # SUPPRESS keeps `stratum --debug <command>` from being reset by the subparser
        sp.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        if name == command:
            _load_command(name).add_arguments(sp)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signum}")


def _install_sigterm():
    """Turn SIGTERM into :class:`Terminated`; returns the previous handler (or None)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):  # not allowed here (embedded interpreters)
        return None


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_message(err: OSError, args: argparse.Namespace) -> str:
    """What to say when a write failed because the disk (or quota) is full."""
    where = f" while writing {err.filename}" if err.filename else ""
    msg = f"no space left on device{where}: free some space"
    run_id = getattr(args, "run_id", None)
    if getattr(args, "command", None) == "render":
        msg += " (or choose another --output-root)"
        if run_id:
            msg += f", then continue the run with --resume --run-id {run_id}"
        else:
            msg += ", then continue the run with --resume --run-id <the id in renders/>"
    return msg + "; finished files were kept, nothing half-written has a final name"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen_command(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from stratum_kernel.core.errors import StratumError

    previous = _install_sigterm()
    try:
        return int(_load_command(args.command).run(args) or 0)
    except Terminated:
        print("stratum: terminated (SIGTERM); stopped cleanly", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("stratum: interrupted", file=sys.stderr)
        return 130
    except StratumError as err:
        if args.debug:
            raise
        print(f"stratum: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if args.debug or err.errno not in _DISK_FULL:
            if args.debug:
                raise
            print(f"stratum: error: {type(err).__name__}: {err} (run with --debug for details)",
                  file=sys.stderr)
            return 1
        print(f"stratum: error: {disk_full_message(err, args)}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug, or a library failure we did not anticipate
        if args.debug:
            raise
        print(
            f"stratum: error: {type(err).__name__}: {err} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
