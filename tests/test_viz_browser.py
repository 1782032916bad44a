"""The browser canvas draws the same pixels as the Python renderer (headless Chromium).

A small static page served on 127.0.0.1 imports ``static/stem_waveform.js`` (the module the
anywidget view loads), draws into a canvas and returns ``getImageData``; the result must
equal ``render_stem_waveform`` exactly. The widget front end is also driven with a stand-in
model: it draws, mirrors the params in localStorage, and adopts stored values after a
reload when the project has none.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from stratum_kernel.viz.params import StemWaveformParams
from stratum_kernel.viz.waveform import (
    Q_ONE,
    quantize_levels,
    reference_units,
    render_stem_waveform,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
JS = Path(__file__).resolve().parents[1] / "stratum_kernel" / "viz" / "static" / "stem_waveform.js"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

PAGE = """<!doctype html><html><body><canvas id="c"></canvas><div id="w"></div>
<script type="module">
import { renderStemWaveform } from './stem_waveform.js';
import widget from './stem_waveform.js';
const b64 = (d) => {
  let s = '';
  for (let i = 0; i < d.length; i += 8192) {
    s += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
  }
  return btoa(s);
};
window.drawCase = (j) => {
  const c = document.getElementById('c');
  c.width = j.width; c.height = j.height;
  const rgba = renderStemWaveform(j.levels, j.names.length, j.width, j.height, j.params, j.ref,
                                  j.x, j.names);
  const ctx = c.getContext('2d');
  ctx.putImageData(new ImageData(rgba, j.width, j.height), 0, 0);
  return b64(ctx.getImageData(0, 0, j.width, j.height).data);
};
// a stand-in for the anywidget model: get/set/on/save_changes
window.mountWidget = (state) => {
  const handlers = {};
  const saved = [];
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; (handlers['change:' + k] || []).forEach(f => f()); },
    on: (ev, f) => { (handlers[ev] = handlers[ev] || []).push(f); },
    save_changes: () => saved.push(JSON.parse(JSON.stringify(state.params))),
  };
  const el = document.getElementById('w');
  el.innerHTML = '';
  widget.render({ model, el });
  window.widgetModel = model;
  window.widgetSaved = saved;
  return true;
};
window.widgetPixels = () => {
  const c = document.querySelector('#w canvas');
  return b64(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
};
window.ready = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    shutil.copy(JS, root / "stem_waveform.js")
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 (the base class's attribute, extended)**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript"}

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API allows one at a time)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install --no-install-recommends "
                    "chromium, as scripts/setup.sh does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(server, browser):
    pg = browser.new_page()
    pg.goto(server)
    pg.wait_for_function("window.ready === true", timeout=20000)
    yield pg
    pg.close()


def _pixels(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.uint8)


CASES = [
    dict(width=120, height=40, smoothing=0, gain=1.0, opacity=100, mirror=True),
    dict(width=333, height=77, smoothing=6, gain=1.63, opacity=45, mirror=True),
    dict(width=1, height=1, smoothing=20, gain=1.0, opacity=100, mirror=True),
    dict(width=97, height=50, smoothing=20, gain=4.21, opacity=10, mirror=False),
    dict(width=640, height=121, smoothing=2, gain=0.77, opacity=88, mirror=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['width']}x{c['height']}")
def test_canvas_pixels_equal_python(page, case):
    rng = np.random.default_rng(case["width"] * 7 + case["height"])
    levels = rng.random((4, case["width"])) ** 2
    levels[:, rng.random(case["width"]) < 0.1] = 0
    q = quantize_levels(levels)
    params = StemWaveformParams(smoothing=case["smoothing"], gain=case["gain"],
                                opacity=case["opacity"], mirror=case["mirror"])
    ref = reference_units(q) * 9 // 10
    x = case["width"] // 3
    expected = render_stem_waveform(q / Q_ONE, params, height=case["height"], reference_q=ref,
                                    playhead_x=x, alpha=True)
    job = dict(levels=q.ravel().tolist(), names=["drums", "bass", "other", "vocals"],
               width=case["width"], height=case["height"],
               params=params.model_dump(mode="json"), ref=ref, x=x)
    got = _pixels(page.evaluate("(j) => drawCase(j)", job))
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def test_local_storage_survives_reload(page, server):
    page.evaluate("localStorage.setItem('stratum.test', JSON.stringify({smoothing: 7}))")
    page.reload()
    page.wait_for_function("window.ready === true", timeout=20000)
    assert json.loads(page.evaluate("localStorage.getItem('stratum.test')")) == {"smoothing": 7}
    page.evaluate("localStorage.clear()")


def _widget_state(envelope_view):
    v = envelope_view
    return dict(levels=list(v.levels), names=list(v.names), width=v.width, height=v.height,
                reference_q=v.reference_q, album_reference_q=v.album_reference_q,
                params=v.params, t0=v.t0, t1=v.t1, playhead=v.playhead, title=v.title,
                storage_key=v.storage_key, adopt_local=v.adopt_local)


def test_widget_front_end_draws_mirrors_and_adopts(page, tmp_path, monkeypatch):
    from stratum_kernel.viz.panel import clear_panels
    from stratum_kernel.viz.waveform import StemEnvelope
    from stratum_kernel.viz.widgets import StemWaveformView

    monkeypatch.setenv("STRATUM_SETTINGS", str(tmp_path / "s.yaml"))
    clear_panels()
    rng = np.random.default_rng(11)
    stems = {n: (rng.standard_normal((1, 4000)) * (i + 1) * 0.1).astype(np.float32)
             for i, n in enumerate(("drums", "bass", "other", "vocals"))}
    view = StemWaveformView(StemEnvelope.from_stems(stems, 4000, block_rate=400), width=150,
                            height=45, playhead=0.5)
    page.evaluate("localStorage.clear()")
    # JS wants the levels as a DataView: build it in the page from the byte list
    mount = """(s) => { s.levels = new DataView(new Uint8Array(s.levels).buffer);
                        return mountWidget(s); }"""
    page.evaluate(mount, _widget_state(view))
    got = _pixels(page.evaluate("widgetPixels()")).reshape(45, 150, 4)
    np.testing.assert_array_equal(got, view.python_render())
    # a change through the params trait redraws and is mirrored in localStorage
    changed = {**view.params, "smoothing": 9, "opacity": 30}
    page.evaluate("(p) => widgetModel.set('params', p)", changed)
    view.panel.update(smoothing=9, opacity=30)
    got = _pixels(page.evaluate("widgetPixels()")).reshape(45, 150, 4)
    np.testing.assert_array_equal(got, view.python_render())
    stored = json.loads(page.evaluate("localStorage.getItem('stratum.viz.stem_waveform')"))
    assert stored["smoothing"] == 9 and stored["opacity"] == 30
    # after a reload, a project with no stored values adopts the browser's
    page.reload()
    page.wait_for_function("window.ready === true", timeout=20000)
    state = _widget_state(view)
    state["params"] = StemWaveformParams().model_dump(mode="json")
    state["adopt_local"] = True
    page.evaluate(mount, state)
    saved = page.evaluate("widgetSaved")
    assert saved and saved[-1]["smoothing"] == 9 and saved[-1]["opacity"] == 30
    # ... but not when the project's settings file already holds values
    state["adopt_local"] = False
    page.evaluate(mount, state)
    assert page.evaluate("widgetSaved") == []
    clear_panels()


VOILA_NB_SOURCE = """\
import numpy as np
from stratum_kernel.viz.waveform import StemEnvelope
from stratum_kernel.viz.widgets import StemWaveformView, show
rng = np.random.default_rng(5)
stems = {n: (rng.standard_normal((2, 16000)) * 0.1 * (i + 1)).astype(np.float32)
         for i, n in enumerate(("drums", "bass", "other", "vocals"))}
env = StemEnvelope.from_stems(stems, 8000, block_rate=400)
views = [StemWaveformView(env, width=240, height=60, title=f"view {i}") for i in range(2)]
show(views)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # starts Voila and a kernel
def test_voila_panel_change_redraws_every_canvas(browser, tmp_path, monkeypatch):
    """In the Voila dashboard: untick 'mirror' in the shared panel; both canvases redraw
    with exactly the Python renderer's pixels, the settings file and localStorage follow."""
    import subprocess
    import sys
    import time
    import urllib.request

    import nbformat
    import yaml

    settings = tmp_path / "stratum_settings.yaml"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(VOILA_NB_SOURCE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "dash.ipynb")
    port = _free_port()
    env = {**__import__("os").environ, "STRATUM_SETTINGS": str(settings)}
    voila = Path(sys.executable).with_name("voila")
    proc = subprocess.Popen(
        [str(voila), str(tmp_path / "dash.ipynb"), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        page = browser.new_page()
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=120000)
            page.wait_for_function(
                "document.querySelectorAll('.stratum-stem-waveform canvas').length == 2",
                timeout=120000)
            read = """() => Array.from(document.querySelectorAll('.stratum-stem-waveform canvas'))
                .map(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height)
                .data; let s = ''; for (let i = 0; i < d.length; i += 8192)
                { s += String.fromCharCode.apply(null, d.subarray(i, i + 8192)); }
                return [btoa(s), Number(c.dataset.drawn)]; })"""
            before = page.evaluate(read)
            page.get_by_role("checkbox", name="mirror").click()
            page.wait_for_function(
                "Array.from(document.querySelectorAll('.stratum-stem-waveform canvas'))"
                ".every(c => Number(c.dataset.drawn) >= 2)", timeout=60000)
            after = page.evaluate(read)
            stored = json.loads(page.evaluate(
                "localStorage.getItem('stratum.viz.stem_waveform')"))
        finally:
            page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert all(a[0] != b[0] for a, b in zip(after, before, strict=True))
    assert stored["mirror"] is False
    saved = yaml.safe_load(settings.read_text())["visualizations"]["stem_waveform"]
    assert saved["mirror"] is False
    # the same view built here renders the pixels the browser drew
    from stratum_kernel.viz.panel import clear_panels
    from stratum_kernel.viz.waveform import StemEnvelope
    from stratum_kernel.viz.widgets import StemWaveformView

    monkeypatch.setenv("STRATUM_SETTINGS", str(settings))
    clear_panels()
    rng = np.random.default_rng(5)
    stems = {n: (rng.standard_normal((2, 16000)) * 0.1 * (i + 1)).astype(np.float32)
             for i, n in enumerate(("drums", "bass", "other", "vocals"))}
    view = StemWaveformView(StemEnvelope.from_stems(stems, 8000, block_rate=400), width=240,
                            height=60)
    assert view.params["mirror"] is False
    np.testing.assert_array_equal(_pixels(after[0][0]).reshape(60, 240, 4),
                                  view.python_render())
    clear_panels()
