"""``stratum bench <area>``: speed figures measured side by side in one run.

Each area lives in ``stratum_kernel/bench/<area>.py`` with ``add_arguments(parser)``
(optional) and ``run(args) -> int``. Results print as a table and, with ``--json``, are
written as JSON for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib

from stratum_kernel.core.errors import StratumError

AREAS = ("analysis", "render", "encode", "preview", "postfx", "viz", "scale")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("area", choices=(*AREAS, "all"))
    parser.add_argument("--json", dest="json_path", default=None, help="also write results here")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (median)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke tests")
    parser.add_argument("--long", default=None, metavar="MINUTES",
                        help="analysis only: peak memory and speed on synthetic tracks of "
                             "these lengths instead, e.g. 5,20,60")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="render/encode: the generator folder (default: the project's "
                             "models/)")
    parser.add_argument("--size", default=None, metavar="WxH",
                        help="render: the frame size (default 1280x720; --quick 640x352)")
    parser.add_argument("--fps", type=float, default=None, help="render: frame rate (24)")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "auto"), default=None,
                        help="render, preview: the decoder's precision (default float32; "
                             "render's naive loop stays float32, the fixed baseline)")


def run(args: argparse.Namespace) -> int:
    areas = AREAS if args.area == "all" else (args.area,)
    status = 0
    for area in areas:
        try:
            module = importlib.import_module(f"stratum_kernel.bench.{area}")
        except ModuleNotFoundError as err:
            if err.name == f"stratum_kernel.bench.{area}":
                raise StratumError(f"bench area '{area}' is not available yet") from None
            raise
        status |= int(module.run(args) or 0)
    return status
