"""The Voila dashboard in a real browser: Voila on 127.0.0.1 serving notebooks/dashboard.ipynb
as ``make dashboard`` does (a pre-heated kernel; tiny album and model through STRATUM_NB_*
variables), driven by headless Chromium.

The page loads with no errors and fetches nothing from outside (no failed request, every
request to the server itself), moving the frame slider changes the preview's pixels, the
clip button yields a playable video; at 1280, 1600 and 1920 px wide no control is clipped
or overlapped and the preview is the largest element, and *enlarge* shows it over the
window (the preview gets the page's width, up to the window's height). Screenshots are kept
in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_notebooks import NOTEBOOKS, ROOT, ensure_stratum_kernel, notebook_env
from tests.test_studio_preview import write_studio_album

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (1280, 1600, 1920)
#: the boxes that must neither overlap nor leave the window (the selector's first match)
BOXES = {
    "preview": "img.stratum-preview-a",
    "enlarge": ".stratum-enlarge-button",
    "timeline": ".stratum-timeline-plot",
    "waveform": ".stratum-main canvas",
    "mixer": ".stratum-mixer",
    "clip": "button.stratum-clip-button",
    "parameters": ".stratum-side .widget-tab",
    "track": ".stratum-dashboard .widget-dropdown",
}
LAYOUT = """(boxes) => {
  const out = {};
  for (const [name, sel] of Object.entries(boxes)) {
    const el = document.querySelector(sel);
    if (!el) { out[name] = null; continue; }
    const r = el.getBoundingClientRect();
    out[name] = [r.left, r.top, r.right, r.bottom];
  }
  // every control inside the mixer (buttons, sliders, readouts) inside the mixer's box
  const mixer = document.querySelector('.stratum-mixer');
  const m = mixer && mixer.getBoundingClientRect();
  out.mixer_outside = mixer ? [...mixer.querySelectorAll('button, input, select, span')]
    .filter(e => { const r = e.getBoundingClientRect();
                   return r.width > 0 && (r.right > m.right + 1 || r.left < m.left - 1); })
    .map(e => e.textContent || e.className) : ['no mixer'];
  out.viewport = [window.innerWidth, window.innerHeight];
  out.scroll_x = document.documentElement.scrollWidth > window.innerWidth + 1;
  return out;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila(tmp_path_factory, tiny_model_dir):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (scripts/setup.sh installs it)")
    pytest.importorskip("playwright.sync_api")
    ensure_stratum_kernel()
    tmp = tmp_path_factory.mktemp("voila")
    album = write_studio_album(tmp / "album")
    port = free_port()
    log = open(tmp / "voila.log", "w")  # noqa: SIM115 - closed at teardown
    env = notebook_env(tmp, album, tiny_model_dir, STRATUM_NB_CLIP_SECONDS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratum_kernel.studio.serve", "--no-browser",
         "--Voila.ip=127.0.0.1",
         f"--port={port}", "--show_tracebacks=True", "--preheat_kernel=True",
         str(NOTEBOOKS / "dashboard.ipynb")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"voila exited: {(tmp / 'voila.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.3)
        else:
            pytest.fail("voila did not start within 60 s")
        yield url, tmp / "voila.log"
    finally:  # also when starting failed: never leave a server behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _raw_request(port: int, host: str, path: str = "/", *, upgrade: bool = False) -> str:
    """The status line of a plain HTTP/1.1 request with this Host header."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_only_requests_for_this_machine_are_answered(voila):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
    `Host: evil.example`. Voila answered it (200, and 101 for a kernel websocket)."""
    url, log = voila
    port = int(url.rsplit(":", 1)[1].strip("/"))
    assert _raw_request(port, f"127.0.0.1:{port}").split()[1] == "200"
    assert _raw_request(port, f"localhost:{port}").split()[1] == "200"
    for host in ("evil.example", f"evil.example:{port}", "192.168.7.7", ""):
        assert _raw_request(port, host).split()[1] == "403", host
    ws = "/api/kernels/00000000-0000-0000-0000-000000000000/channels"
    assert _raw_request(port, "evil.example", ws, upgrade=True).split()[1] == "403"
    assert "refused a request for Host 'evil.example'" in log.read_text()


PIXELS = """(sel) => new Promise((resolve) => {
  const img = document.querySelector(sel);
  if (!img || !img.src) { resolve(null); return; }
  const probe = new Image();
  probe.onload = () => {
    const c = document.createElement('canvas');
    c.width = probe.naturalWidth; c.height = probe.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(probe, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 7) { h = (h * 31 + d[i]) >>> 0; }
    resolve([c.width, c.height, h]);
  };
  probe.onerror = () => resolve(null);
  probe.src = img.src;
})"""


def test_dashboard_in_chromium(voila):
    from playwright.sync_api import sync_playwright

    url, log = voila
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})

        def console(msg):
            if msg.type == "error":
                where = (msg.location or {}).get("url", "")
                errors.append(f"console: {msg.text} @ {where}")

        requests: list[str] = []
        page.on("console", console)
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} "
                                                          f"({r.failure})"))
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        t0 = time.monotonic()
        page.goto(url, wait_until="domcontentloaded", timeout=90_000)
        preview = "img.stratum-preview-a"
        try:
            page.wait_for_function(
                f"() => {{ const i = document.querySelector('{preview}');"
                " return i && i.src && i.src.startsWith('blob:') && i.naturalWidth > 0; }",
                timeout=90_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "dashboard-failed.png"), full_page=True)
            raise AssertionError(f"no preview; voila log:\n{log.read_text()[-3000:]}"
                                 f"\nerrors: {errors}") from None
        ready_s = time.monotonic() - t0
        print(f"dashboard: first preview {ready_s:.1f} s after the request")
        first = page.evaluate(PIXELS, preview)
        assert first is not None and first[:2] == [96, 64], first

        # move the frame slider with the keyboard: its handle takes focus
        handle = page.locator(".stratum-frame-slider .noUi-handle").first
        handle.focus()
        for _ in range(20):
            handle.press("ArrowRight")
        page.wait_for_function(
            "(sel) => { const i = document.querySelector(sel); return i && i.src; }",
            arg=preview)
        deadline = time.monotonic() + 30
        moved = first
        while time.monotonic() < deadline and moved == first:
            time.sleep(0.2)
            moved = page.evaluate(PIXELS, preview)
        assert moved is not None and moved != first, "the preview did not change"

        # the mixer and the stem waveform arrive from a background thread
        page.wait_for_selector(".stratum-mixer", timeout=60_000)
        page.wait_for_selector(".stratum-dashboard canvas", timeout=60_000)
        assert page.locator(".stratum-timeline-plot img").count() == 1

        # render a clip: a playable <video> with data
        page.locator("button.stratum-clip-button").click()
        page.wait_for_function(
            "() => { const v = document.querySelector('video.stratum-clip-video');"
            " return v && v.src && v.src.startsWith('blob:') && v.readyState >= 1"
            " && v.duration > 0; }", timeout=90_000)
        duration = page.evaluate(
            "() => document.querySelector('video.stratum-clip-video').duration")
        assert 0.5 < duration < 2.0  # a 1 s clip
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        layouts = {}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000})
            page.wait_for_timeout(400)
            layouts[width] = page.evaluate(LAYOUT, BOXES)
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}.png"), full_page=True)
        page.locator(".stratum-enlarge-button button, button.stratum-enlarge-button").first.click()
        page.wait_for_timeout(400)
        enlarged = page.evaluate(LAYOUT, {"preview": BOXES["preview"]})
        page.screenshot(path=str(ARTIFACTS / "dashboard-enlarged.png"))
        browser.close()
    assert not errors, "\n".join(errors)
    outside = [u for u in requests if not u.startswith((url, "blob:", "data:"))]
    assert not outside, f"requests outside the server: {outside}"
    for width, box in layouts.items():
        _check_layout(width, box)
    left, top, right, bottom = enlarged["preview"]
    vw, vh = enlarged["viewport"]
    normal = layouts[WIDTHS[-1]]["preview"]
    grown = (right - left) * (bottom - top) / ((normal[2] - normal[0]) * (normal[3] - normal[1]))
    # the whole width, or the window's height (a wide window): bigger than before
    assert right - left >= 0.9 * vw or bottom - top >= 0.9 * vh, enlarged
    assert grown > 1.3, (grown, enlarged, normal)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    assert ready_s < 90


def _check_layout(width: int, box: dict) -> None:
    """At ``width`` px: every box present, inside the window, no two overlapping, the
    preview the largest, nothing of the mixer cut off, no sideways scrolling."""
    named = {k: v for k, v in box.items() if k in BOXES}
    missing = [k for k, v in named.items() if v is None]
    assert not missing, (width, missing)
    for name, (left, _top, right, _bottom) in named.items():
        assert left >= -1 and right <= width + 1, (width, name, named[name])
    names = list(named)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            la, ta, ra, ba = named[a]
            lb, tb, rb, bb = named[b]
            overlap = min(ra, rb) - max(la, lb) > 1 and min(ba, bb) - max(ta, tb) > 1
            assert not overlap, (width, a, named[a], b, named[b])

    def area(k):
        left, top, right, bottom = named[k]
        return (right - left) * (bottom - top)

    assert all(area("preview") >= area(k) for k in named), (width, named)
    assert named["preview"][2] - named["preview"][0] >= 0.45 * width, (width, named)
    assert not box["mixer_outside"], (width, box["mixer_outside"])
    assert not box["scroll_x"], width
