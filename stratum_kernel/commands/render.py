"""``stratum render --config render.yaml [overrides]``: render an album into films.

Overrides (``--album --model-dir --output-root --run-id --preset --fps --resolution --tracks
--duration --batch-size --chunk-frames --seed --scheduler``, one table:
:data:`stratum_kernel.render.overrides.OVERRIDES`) replace render.yaml's values; ``--scheduler
tcp://host:8786`` renders the chunks on a Dask cluster (``local:N``: a LocalCluster of N
worker processes; see docs/SCALE_OUT.md); ``--resume`` continues an
interrupted run (same config and ``--run-id``); ``--keep-frames`` also writes the frames as
PNGs; ``--no-progress`` hides the progress bars.
"""

from __future__ import annotations

import argparse

from stratum_kernel.render.config import load_render_config
from stratum_kernel.render.distributed import describe
from stratum_kernel.render.overrides import add_override_arguments, overrides_from_cli
from stratum_kernel.render.run import render_album


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", default=None,
                        help="render.yaml (default: the built-in defaults)")
    add_override_arguments(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run named by --run-id")
    parser.add_argument("--keep-frames", action="store_true",
                        help="also write every frame as PNG under <run>/frames/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--shared-storage", choices=["yes", "no", "auto"], default="auto",
                        help="whether workers see the output folder (auto: detected)")


def run(args: argparse.Namespace) -> int:

    overrides = overrides_from_cli(args)
    if args.keep_frames:
        overrides["render.keep_frames"] = True
    shared = getattr(args, "shared_storage", "auto")
    if shared != "auto":
        overrides["shared_storage"] = shared == "yes"
    config = load_render_config(args.config, overrides)
    result = render_album(config, progress=not args.no_progress, resume=args.resume)
    frames = sum(t.frames for t in result.tracks.values())
    print(f"rendered {len(result.tracks)} track(s), {frames} frames, into {result.run_dir}")
    print(f"  album film: {result.album}")
    if result.record.distributed is not None:
        print(f"  {describe(result.record.distributed)}")
    if result.seconds:
        print(f"  {result.seconds:.1f} s ({frames / result.seconds:.2f} fps)")
    return 0
