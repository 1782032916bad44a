"""Regenerate the look book: every shipped preset at the same four moments of a bundled track.

    .venv/bin/python scripts/make_look_book.py                      # docs/media/look-book.jpg
    .venv/bin/python scripts/make_look_book.py --track glass-meridian --size 320x180

One row per preset (name and its one-line description beside it), one column per moment
(the same track times in every row), each frame exactly what a render with that preset
gives there (``RenderContext.frames``: the trails' history decoded as in the film). Also
writes ``docs/LOOKBOOK.md``: the picture and a table of the presets — what each looks like,
the music it suits (its ``suits`` ranges, which ``controller.preset: auto`` reads). The
picture stays small: a JPEG of about 200 KB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import stratum_kernel  # noqa: F401 - numba's cache before librosa

ROOT = Path(__file__).resolve().parents[1]
MOMENTS = (0.2, 0.4, 0.6, 0.8)  # fractions of the track
LABEL_W = 260


def _label(text: str, sub: str, size: tuple[int, int]) -> np.ndarray:
    import cv2

    w, h = size
    img = np.full((h, w, 3), 18, np.uint8)
    cv2.putText(img, text, (12, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (235, 235, 235), 2,
                cv2.LINE_AA)
    words, line, y = sub.split(), "", 60
    for word in words:  # wrap the description
        trial = f"{line} {word}".strip()
        if cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, 0.38, 1)[0][0] > w - 24:
            cv2.putText(img, line, (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (170, 170, 170), 1,
                        cv2.LINE_AA)
            line, y = word, y + 15
            if y > h - 8:
                break
        else:
            line = trial
    if line and y <= h - 8:
        cv2.putText(img, line, (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (170, 170, 170), 1,
                    cv2.LINE_AA)
    return img


def look_rows(track: str, size: tuple[int, int], model: Path | None = None
              ) -> tuple[list[tuple[str, np.ndarray]], list]:
    """[(preset, uint8 [h, 4*w, 3])], and the moments in seconds. Each row is its preset
    alone: render.yaml's per-track ``sections`` (another look from a marker on) are left
    out, or every row would show the section's look there."""
    from stratum_kernel.motion.presets import list_presets, load_preset
    from stratum_kernel.render.config import load_render_config
    from stratum_kernel.render.jobs import RenderContext

    over = {"resolution": f"{size[0]}x{size[1]}", "tracks": [track]}
    if model is not None:
        over["model_dir"] = str(model.resolve())
    cfg = load_render_config(ROOT / "render.yaml", over)
    ctx = RenderContext(cfg, progress=True)
    rows, times = [], []
    for name in list_presets():
        job = ctx.job(track, load_preset(name), sections=False)
        frames = [min(job.n_frames - 1, round(m * job.n_frames)) for m in MOMENTS]
        times = [job.start + f / job.fps for f in frames]
        row = np.concatenate([ctx.frames(job, f, f + 1)[0] for f in frames], axis=1)
        rows.append((name, row))
        print(f"  {name}: frames {frames}", file=sys.stderr)
    return rows, times


def write_book(rows, times, track: str, size: tuple[int, int], out: Path, md: Path) -> None:
    import cv2

    from stratum_kernel.motion.choice import _range_text
    from stratum_kernel.motion.presets import load_preset

    w, h = size
    header = np.full((28, LABEL_W + 4 * w, 3), 18, np.uint8)
    for i, t in enumerate(times):
        cv2.putText(header, f"{track} at {t:.1f} s", (LABEL_W + i * w + 8, 19),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 200, 200), 1, cv2.LINE_AA)
    parts = [header]
    for name, row in rows:
        preset = load_preset(name)
        parts.append(np.concatenate([_label(name, preset.description, (LABEL_W, h)), row],
                                    axis=1))
    book = np.concatenate(parts, axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(book, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 82])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(out)
    lines = [
        "# Look book", "",
        f"Every shipped preset at the same four moments of the bundled track `{track}`, as a "
        "render with that preset gives them (regenerate with "
        "`.venv/bin/python scripts/make_look_book.py`).", "",
        f"![look book]({out.relative_to(md.parent).as_posix()})", "",
        "| preset | what it looks like, and the music it suits | `auto` chooses it for |",
        "|---|---|---|",
    ]
    for name, _ in rows:
        p = load_preset(name)
        suits = ", ".join(f"{k} {_range_text(lo, hi)}" for k, (lo, hi) in p.suits.items())
        lines.append(f"| `{name}` | {p.description} | {suits or '(the fallback)'} |")
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) and {md}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--track", default="sodium-lights")
    ap.add_argument("--size", default="256x144", help="one frame, WxH (each a multiple of 16)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "media" / "look-book.jpg")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "LOOKBOOK.md")
    ap.add_argument("--model", type=Path, default=None,
                    help="a model folder other than render.yaml's model_dir (to compare)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    rows, times = look_rows(args.track, (w, h), args.model)
    write_book(rows, times, args.track, (w, h), args.out, args.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
