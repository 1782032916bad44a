"""``stratum verify renders/<run-id>``: re-read a run and check it against its meta.json."""

from __future__ import annotations

import argparse
import sys

from stratum_kernel.render.verify import verify_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a render folder (renders/<run-id>)")
    parser.add_argument("--no-decode", action="store_true",
                        help="skip decoding the films (file hashes and stream checks only)")


def run(args: argparse.Namespace) -> int:
    report = verify_run(args.run_dir, decode=not args.no_decode)
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1
