"""Regenerate the README's pictures in docs/media/: a still grid and a short GIF cut from the
bundled album's film, and a screenshot of the Voila dashboard.

    .venv/bin/python scripts/make_readme_media.py              # all three
    .venv/bin/python scripts/make_readme_media.py --no-screenshot

The film is rendered the way ``make render`` renders it (render.yaml: each track's preset,
the bundled model), only shorter and smaller: ``--seconds`` of every track at ``--size``.
The stills and the GIF are frames decoded from that album film. The screenshot serves
``notebooks/dashboard.ipynb`` with Voila on 127.0.0.1 and photographs it with headless
Chromium (/usr/bin/chromium, driven by Playwright). Files stay small (≤ ~1.5 MB in all):
JPEG stills, a 256-colour GIF, a palette PNG screenshot.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import stratum_kernel  # noqa: F401 - numba's cache before librosa

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def render_film(seconds: float, size: str, work: Path):
    """A short render of the bundled album: (album film path, per-track frame counts, run
    record)."""
    from stratum_kernel.render.config import load_render_config
    from stratum_kernel.render.run import render_album

    cfg = load_render_config(ROOT / "render.yaml", {
        "output_root": str(work), "run_id": "readme-media", "render.duration": seconds,
        "resolution": size})
    result = render_album(cfg, progress=True)
    counts = [t.frames for t in result.record.tracks]
    return result.album, counts, cfg.resolution, result.record


def album_frames(film: Path, size: tuple[int, int], wanted: set[int]) -> dict[int, np.ndarray]:
    from stratum_kernel.film.streams import read_frames

    out, i = {}, 0
    for block in read_frames(film, *size):
        for f in block:
            if i in wanted:
                out[i] = f.copy()
            i += 1
    return out


def _resize(frame: np.ndarray, width: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    return cv2.resize(frame, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def still_grid(film: Path, counts: list[int], size, out: Path, *, tile: int = 320,
               per_track: int = 3, gap: int = 4) -> Path:
    """One row per track, ``per_track`` moments each (10 % … 90 % of its span)."""
    from PIL import Image

    starts = np.cumsum([0, *counts[:-1]])
    picks = [[int(s + c * f) for f in np.linspace(0.1, 0.9, per_track)]
             for s, c in zip(starts, counts, strict=True)]
    frames = album_frames(film, size, {i for row in picks for i in row})
    tiles = [[_resize(frames[i], tile) for i in row] for row in picks]
    th = tiles[0][0].shape[0]
    grid = np.full((len(tiles) * (th + gap) - gap, per_track * (tile + gap) - gap, 3), 16,
                   np.uint8)
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            grid[r * (th + gap): r * (th + gap) + th, c * (tile + gap): c * (tile + gap) + tile] = t
    Image.fromarray(grid).save(out, quality=84, optimize=True, progressive=True)
    return out


def film_gif(film: Path, counts: list[int], size, fps: float, out: Path, *,
             seconds: float = 3.0, gif_fps: float = 12.0, width: int = 320) -> Path:
    """``seconds`` from the middle of the album film's second track (or the first)."""
    from PIL import Image

    starts = np.cumsum([0, *counts[:-1]])
    k = 1 if len(counts) > 1 else 0
    n = min(counts[k], round(seconds * fps))
    first = int(starts[k] + (counts[k] - n) // 2)
    step = max(1, round(fps / gif_fps))
    idx = list(range(first, first + n, step))
    frames = album_frames(film, size, set(idx))
    small = [_resize(frames[i], width) for i in idx]
    palette = Image.fromarray(np.concatenate(small[::3])).quantize(
        colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in small]
    images[0].save(out, save_all=True, append_images=images[1:], loop=0,
                   duration=round(1000 * step / fps),
                   optimize=True)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_screenshot(out: Path, *, preview: str = "448x256", width: int = 1280,
                         timeout: float = 300.0, preheat: bool = True,
                         settle: float = 0.0) -> Path:
    """Serve the dashboard with Voila (a pre-heated kernel, as ``make dashboard`` does) and
    photograph it once the preview has drawn."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "STRATUM_NB_PREVIEW": preview}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / "cache" / "pycache"))
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1",
         f"--port={port}", f"--preheat_kernel={preheat}",
         str(ROOT / "notebooks" / "dashboard.ipynb")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.3)
        time.sleep(settle)  # time for a pre-heated kernel to run the notebook
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1560, "height": 1000})
            t0 = time.monotonic()
            page.goto(f"http://127.0.0.1:{port}/", timeout=int(timeout * 1000))
            page.wait_for_function(
                "() => { const i = document.querySelector('img.stratum-preview-a');"
                " return i && i.naturalWidth > 0; }", timeout=int(timeout * 1000))
            print(f"dashboard: first preview {time.monotonic() - t0:.1f} s after the request")
            page.wait_for_selector(".stratum-mixer", timeout=int(timeout * 1000))
            page.wait_for_selector(".stratum-dashboard canvas", timeout=int(timeout * 1000))
            page.locator(".stratum-frame-slider .noUi-handle").first.focus()
            for _ in range(120):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(  # the strip of neighbouring frames follows the playhead
                "() => [...document.querySelectorAll('.stratum-dashboard img')]"
                ".filter(i => i.naturalWidth === 160).length >= 4",
                timeout=int(timeout * 1000))
            time.sleep(1.0)
            shot = Path(tempfile.mkstemp(suffix=".png")[1])
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    with Image.open(shot) as im:
        im = im.convert("RGB")
        im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
        im.quantize(colors=192, method=Image.Quantize.MEDIANCUT,
                    dither=Image.Dither.NONE).save(out, optimize=True)
    shot.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of each track")
    parser.add_argument("--size", default="480x272", help="film size WxH (divisible by 16)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "media")
    parser.add_argument("--no-screenshot", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stratum-media-") as tmp:
        film, counts, size, record = render_film(args.seconds, args.size, Path(tmp))
        fps = float(record.config["frame_rate"])
        made = [still_grid(film, counts, size, args.out / "stills.jpg"),
                film_gif(film, counts, size, fps, args.out / "film.gif")]
    if not args.no_screenshot:
        made.append(dashboard_screenshot(args.out / "dashboard.png"))
    model = f"{record.model['name']} {record.model['version']}"
    total = sum(p.stat().st_size for p in made)
    for p in made:
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size / 1024:.0f} KiB")
    print(f"total {total / 1024:.0f} KiB · model {model} · {len(counts)} tracks × "
          f"{args.seconds:g} s at {args.size}")
    return 0 if total <= 1.6 * 2**20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
