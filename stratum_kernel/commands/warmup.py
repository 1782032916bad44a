"""``stratum warmup``: compile librosa's numba kernels once, into the project's cache."""

from __future__ import annotations

import argparse
import time

from stratum_kernel.analysis.features import warm_numba_cache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()

    warm_numba_cache()
    if not args.quiet:
        print(f"numba cache warm ({time.perf_counter() - t0:.1f} s)")
    return 0
