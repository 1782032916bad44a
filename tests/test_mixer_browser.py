"""The browser mixer (static/mixer.js) in headless Chromium: the audio graph's gains follow
solo, mute and gain; offline renders equal the Python mix; the widget's controls drive the
graph and the synced traits; no console errors.

A static page on 127.0.0.1 imports the same ES module the anywidget loads; the widget view
runs against a small stand-in of anywidget's model (get/set/on/off/save_changes/send).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.mixer import MixerState, effective_gains, mix
from stratum_kernel.core.timeline import STEM_NAMES
from stratum_kernel.studio.mixer_widget import STATIC, encode_preview

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
SR = 22050
DURATION = 1.0
FREQS = dict(zip(STEM_NAMES, (110.0, 220.0, 330.0, 440.0), strict=True))

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>stratum mixer test</title>
<link rel="icon" href="data:,"></head>
<body><div id="host"></div>
<script type="module">
import * as mixer from "./mixer.js";
window.mixerModule = mixer;
// A stand-in of anywidget's model: attributes, change events, custom messages.
window.fakeModel = (attrs) => {
  const handlers = {};
  const fire = (ev, ...args) => (handlers[ev] || []).slice().forEach((f) => f(...args));
  return {
    attrs, sent: [], saves: 0,
    get(k) { return attrs[k]; },
    set(k, v) {
      const same = JSON.stringify(attrs[k]) === JSON.stringify(v);
      attrs[k] = v;
      if (!same) fire("change:" + k);
    },
    on(ev, f) { (handlers[ev] = handlers[ev] || []).push(f); },
    off(ev, f) { handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); },
    save_changes() { this.saves += 1; },
    send(msg) { this.sent.push(msg); },
    emit: fire,
    listeners() { return Object.values(handlers).reduce((n, l) => n + l.length, 0); },
  };
};
window.fetchStems = async (suffix) => {
  const names = mixer.STEM_NAMES;
  return Promise.all(names.map(async (n) => new DataView(
    await (await fetch(`${n}.${suffix}`)).arrayBuffer())));
};
// Float32Array -> base64 of its little-endian bytes (far faster to hand to Python than JSON)
window.floatsToBase64 = (floats) => {
  const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
};
window.pageReady = true;
</script></body></html>
"""


def _stems() -> dict[str, np.ndarray]:
    """Four stereo sines (one frequency per stem, amplitude 0.2, right channel half level)."""
    t = np.arange(round(DURATION * SR)) / SR
    out = {}
    for s, f in FREQS.items():
        y = 0.2 * np.sin(2 * np.pi * f * t)
        out[s] = np.stack([y, 0.5 * y]).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Serve mixer.js, the test page and the stems (FLAC and WAV) on a free local port."""
    root = tmp_path_factory.mktemp("mixer_site")
    shutil.copy(STATIC / "mixer.js", root / "mixer.js")
    (root / "index.html").write_text(PAGE)
    stems = _stems()
    decoded = {}
    for s, y in stems.items():
        for enc in ("flac", "wav"):
            data = encode_preview(y, SR, preview_sr=SR, encoding=enc)
            (root / f"{s}.{enc}").write_bytes(data)
        decoded[s] = sf.read(root / f"{s}.flac", dtype="float32", always_2d=True)[0].T

    class Quiet(http.server.SimpleHTTPRequestHandler):
        extensions_map: ClassVar[dict[str, str]] = {
            **http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/index.html",
           "stems": decoded}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    """A fresh page on the test site; fails the test on any page error or console error."""
    context = browser.new_context()
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    pg.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
          if msg.type == "error" else None)
    pg.goto(site["url"])
    pg.wait_for_function("window.pageReady === true", timeout=10_000)
    yield pg
    context.close()
    assert problems == [], problems


STATES = [
    {},
    {"bass": {"solo": True}},
    {"bass": {"solo": True}, "drums": {"mute": True}, "vocals": {"solo": True}},
    {"bass": {"solo": True, "mute": True}},
    {"vocals": {"mute": True}, "drums": {"gain_db": -6.0}, "master_db": -3.0},
    {"other": {"gain_db": 12.0}, "bass": {"gain_db": -60.0}},
]


def test_js_gain_rule_matches_python(page):
    got = page.evaluate(
        "(states) => states.map((s) => window.mixerModule.effectiveGains(s))", STATES)
    for state, gains in zip(STATES, got, strict=True):
        expected = effective_gains(MixerState.parse(state))
        assert gains == pytest.approx(expected, rel=1e-12), state


@pytest.mark.parametrize("encoding", ["flac", "wav"])
def test_offline_render_equals_the_python_mix(page, site, encoding):
    rendered = page.evaluate(
        """async ([states, suffix, sr]) => {
          const m = window.mixerModule;
          const encoded = await window.fetchStems(suffix);
          const decoder = new OfflineAudioContext(1, 1, sr);
          const buffers = await m.decodeStems(decoder, encoded, m.STEM_NAMES);
          const out = [];
          for (const state of states) {
            const n = buffers.drums.length;
            const ctx = new OfflineAudioContext(2, n, sr);
            const mixer = m.createMixer(ctx, buffers, state);
            mixer.play(0);
            const gains = mixer.nodeGains();
            const result = await ctx.startRendering();
            out.push({gains, left: window.floatsToBase64(result.getChannelData(0)),
                      right: window.floatsToBase64(result.getChannelData(1))});
          }
          return out;
        }""",
        [STATES, encoding, SR],
    )
    stems = site["stems"]
    for state, got in zip(STATES, rendered, strict=True):
        st = MixerState.parse(state)
        expected = mix(stems, st)
        node_gains = {k: v for k, v in got["gains"].items() if k != "master"}
        assert node_gains == pytest.approx(effective_gains(st), rel=1e-6, abs=1e-9)
        assert got["gains"]["master"] == pytest.approx(st.master_gain, rel=1e-6)
        audio = np.stack([np.frombuffer(base64.b64decode(got[k]), dtype="<f4")
                          for k in ("left", "right")])
        assert audio.shape == expected.shape
        # Chromium's decoders map 16-bit samples to float a little differently from
        # libsndfile (1/32767 scaling, half-step offsets): allow 1.5 steps per sounding stem
        lsb = 2.0**-15 * sum(effective_gains(st).values()) * st.master_gain
        np.testing.assert_allclose(audio, expected, rtol=0, atol=1.5 * lsb + 1e-6,
                                   err_msg=json.dumps(state))
        assert np.abs(audio - expected).max() < 0.01 * max(np.abs(expected).max(), 1e-3)


def test_live_graph_follows_state_and_seeks(page):
    result = page.evaluate(
        """async (sr) => {
          const m = window.mixerModule;
          const encoded = await window.fetchStems("flac");
          const ctx = new AudioContext();
          await ctx.resume();
          const buffers = await m.decodeStems(ctx, encoded, m.STEM_NAMES);
          const mixer = m.createMixer(ctx, buffers, {});
          const wait = (ms) => new Promise((r) => setTimeout(r, ms));
          const before = mixer.nodeGains();
          mixer.play(0);
          // the audio clock starts late on a loaded machine: poll (20 ms steps, 3 s at
          // most) rather than trusting one fixed sleep
          await wait(200);
          for (let i = 0; i < 150 && mixer.position() <= 0.05; i++) await wait(20);
          const pos1 = mixer.position();
          mixer.setState({drums: {solo: true}});
          const targets = mixer.gains();
          await wait(150);
          const soloed = mixer.nodeGains();
          mixer.setState({drums: {solo: true, gain_db: -6}, vocals: {solo: true}});
          await wait(150);
          const two = mixer.nodeGains();
          mixer.seek(0.6);
          const pos2 = mixer.position();
          mixer.pause();
          const paused = mixer.position();
          await wait(100);
          const stillPaused = mixer.position();
          mixer.dispose();
          await ctx.close();
          return {state: ctx.state, before, pos1, targets, soloed, two, pos2, paused,
                  stillPaused, duration: mixer.duration};
        }""",
        SR,
    )
    assert result["before"] == {"master": 1, "drums": 1, "bass": 1, "other": 1, "vocals": 1}
    assert 0.05 < result["pos1"] < 0.6
    assert result["targets"] == {"drums": 1, "bass": 0, "other": 0, "vocals": 0, "master": 1}
    assert result["soloed"] == pytest.approx(result["targets"], abs=1e-3)
    assert result["two"] == pytest.approx(
        {"drums": 10 ** (-6 / 20), "bass": 0, "other": 0, "vocals": 1, "master": 1}, abs=1e-3)
    assert 0.6 <= result["pos2"] < 0.65
    assert result["paused"] == result["stillPaused"]
    assert result["duration"] == pytest.approx(DURATION, abs=1e-3)


def _gains(page) -> dict:
    return json.loads(page.get_attribute(".stratum-mixer", "data-gains"))


def test_widget_view_controls_and_sync(page):
    page.evaluate(
        """async ([sr, duration]) => {
          const audio = await window.fetchStems("flac");
          const state = {master_db: 0};
          for (const n of window.mixerModule.STEM_NAMES)
            state[n] = {gain_db: 0, mute: false, solo: false};
          window.model = window.fakeModel({
            names: window.mixerModule.STEM_NAMES, audio, sample_rate: sr, duration, state,
            playing: false, position: 0, loop: false, sync_ms: 50, seek_tolerance: 0.2,
            levels: {bass: {peak_dbfs: -14.0, rms_dbfs: -17.0}}, colors: {bass: "#6b3fa0"},
            title: "track1", export_status: ""});
          window.cleanup = window.mixerModule.default.render(
            {model: window.model, el: document.getElementById("host")});
        }""",
        [SR, DURATION],
    )
    page.wait_for_selector('.stratum-mixer[data-ready="1"]', timeout=10_000)
    assert page.text_content(".sm-title") == "track1"
    assert "rms -17.0 dBFS" in page.text_content('[data-stem="bass"] .sm-level')
    assert _gains(page) == {s: 1 for s in (*STEM_NAMES, "master")}

    page.click('[data-stem="bass"] button[data-kind="solo"]')
    assert _gains(page) == {"drums": 0, "bass": 1, "other": 0, "vocals": 0, "master": 1}
    state = page.evaluate("window.model.attrs.state")
    assert state["bass"]["solo"] is True and page.evaluate("window.model.saves") >= 1
    assert page.get_attribute('[data-stem="bass"] button[data-kind="solo"]',
                              "aria-pressed") == "true"
    page.click('[data-stem="bass"] button[data-kind="mute"]')  # a muted soloed stem is silent
    assert _gains(page) == {"drums": 0, "bass": 0, "other": 0, "vocals": 0, "master": 1}
    page.click('[data-stem="bass"] button[data-kind="mute"]')
    page.click('[data-stem="bass"] button[data-kind="solo"]')
    page.eval_on_selector('[data-stem="drums"] input.sm-gain',
                          "(el) => { el.value = '-6'; el.dispatchEvent(new Event('input')); }")
    assert _gains(page)["drums"] == pytest.approx(10 ** (-6 / 20))
    assert page.text_content('[data-stem="drums"] .sm-db') == "-6.0 dB"
    assert page.evaluate("window.model.attrs.state.drums.gain_db") == -6

    # play: a live AudioContext is created and the graph carries the state
    page.click('button[data-kind="play"]')
    page.wait_for_function("window.__stratumMixer.mixer && window.__stratumMixer.mixer.playing")
    assert page.evaluate("window.model.attrs.playing") is True
    page.wait_for_function("window.model.attrs.position > 0.1", timeout=5_000)
    # the kernel solos vocals (a state change arriving from Python)
    page.evaluate("""() => window.model.set("state", {...window.model.attrs.state,
                     vocals: {gain_db: 0, mute: false, solo: true}})""")
    page.wait_for_timeout(120)
    live = page.evaluate("window.__stratumMixer.mixer.nodeGains()")
    assert live == pytest.approx({"drums": 0, "bass": 0, "other": 0, "vocals": 1, "master": 1},
                                 abs=1e-3)
    assert page.get_attribute('[data-stem="vocals"] button[data-kind="solo"]',
                              "aria-pressed") == "true"
    # the timeline seeks (position set from outside, far from the playhead)
    target = page.evaluate("""() => {
        const t = window.__stratumMixer.mixer.position() > 0.5 ? 0.0 : 0.8;
        window.model.set('position', t);
        return t;
    }""")
    assert page.evaluate("window.__stratumMixer.mixer.position()") == pytest.approx(target,
                                                                                    abs=0.08)
    # ... but a nearby value (a linked slider's rounding echo) does not interrupt playback
    near = page.evaluate("""() => {
        const m = window.__stratumMixer.mixer;
        const t = m.position() + 0.15;
        window.model.set('position', t);
        return {pos: m.position(), t};
    }""")
    assert near["pos"] == pytest.approx(near["t"] - 0.15, abs=0.05)
    # the timeline pauses
    page.evaluate("() => window.model.set('playing', false)")
    assert page.evaluate("window.__stratumMixer.mixer.playing") is False
    assert page.get_attribute(".stratum-mixer", "data-playing") == "0"
    # play to the end: playing goes back to false and position lands on the duration
    page.evaluate("() => window.model.set('position', 0.7)")
    page.evaluate("() => window.model.set('playing', true)")
    page.wait_for_function("window.model.attrs.playing === false", timeout=5_000)
    assert page.evaluate("window.model.attrs.position") == pytest.approx(DURATION, abs=1e-3)

    # export buttons ask the kernel; its reply becomes a download and a status line
    page.click('button[data-kind="export-wav"]')
    page.select_option('select[data-kind="zip-format"]', "wav")
    page.click('button[data-kind="export-zip"]')
    assert page.evaluate("window.model.sent") == [
        {"type": "export", "what": "wav"}, {"type": "export", "what": "zip", "format": "wav"}]
    with page.expect_download() as dl:
        page.evaluate("""() => window.model.emit("msg:custom",
            {type: "export_ready", name: "track1-mix.wav", mime: "audio/wav",
             summary: "track1-mix.wav: peak -6.0 dBFS"}, [new DataView(new ArrayBuffer(8))])""")
    assert dl.value.suggested_filename == "track1-mix.wav"
    assert page.text_content(".sm-status") == "track1-mix.wav: peak -6.0 dBFS"
    page.evaluate("""() => window.model.emit("msg:custom",
        {type: "export_error", message: "disk full"}, [])""")
    assert page.text_content(".sm-status") == "export failed: disk full"

    # reset, then tear the view down: listeners and debug hooks go away
    page.click('button[data-kind="reset"]')
    assert _gains(page) == {s: 1 for s in (*STEM_NAMES, "master")}
    page.evaluate("() => window.cleanup()")
    assert page.evaluate("window.model.listeners()") == 0
    assert page.evaluate("(window.__stratumMixers || []).length") == 0


VOILA_NB_SOURCE = """\
import ipywidgets as w
import numpy as np
from stratum_kernel.studio.mixer_widget import StemMixer
t = np.arange(2 * 8000) / 8000
stems = {n: np.stack([0.2 * np.sin(2 * np.pi * f * t)] * 2).astype(np.float32)
         for n, f in (("drums", 110), ("bass", 220), ("other", 330), ("vocals", 440))}
mixer = StemMixer(stems, 8000, title="voila mixer")
slider = w.FloatSlider(min=0, max=mixer.duration, step=0.01, description="time")
mixer.link_timeline(position=slider)
kernel_view = w.Label(value="kernel: -")
def show_state(_=None):
    st = mixer.mixer_state
    solo = [s for s, c in st.channels().items() if c.solo]
    kernel_view.value = f"kernel: solo={','.join(solo) or '-'} pos={mixer.position:.2f}"
mixer.observe(show_state, names=["state", "position"])
w.VBox([mixer, slider, kernel_view])
"""


@pytest.mark.slow  # starts Voila and a kernel
def test_voila_mixer_round_trip(tmp_path, browser):
    """In a Voila page: the mixer loads, solo reaches the audio graph and the kernel,
    playback moves the jslinked timeline slider, no errors."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(VOILA_NB_SOURCE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "mixer.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    voila = Path(sys.executable).with_name("voila")
    proc = subprocess.Popen(
        [str(voila), str(tmp_path / "mixer.ipynb"), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1"], cwd=tmp_path, env=dict(os.environ),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    problems: list[str] = []
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        context = browser.new_context()
        page = context.new_page()
        local = f"127.0.0.1:{port}"

        def on_console(msg) -> None:
            url = msg.location.get("url", "")
            # offline, Voila's icon font from a CDN cannot load; every other error counts
            if msg.type == "error" and not (msg.text.startswith("Failed to load resource")
                                            and url and local not in url):
                problems.append(f"console: {msg.text} {url}")

        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", on_console)
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_selector('.stratum-mixer[data-ready="1"]', timeout=120_000)
        page.click('[data-stem="bass"] button[data-kind="solo"]')
        assert _gains(page) == {"drums": 0, "bass": 1, "other": 0, "vocals": 0,
                                "master": 1}
        page.get_by_text("kernel: solo=bass").wait_for(timeout=30_000)
        page.click('button[data-kind="play"]')
        page.wait_for_function(
            "Number(document.querySelector('.widget-readout').textContent) >= 0.3",
            timeout=30_000)
        live = page.evaluate("window.__stratumMixer.mixer.nodeGains()")
        page.get_by_text(re.compile(r"kernel: solo=bass pos=(0\.[3-9]|[12]\.)")).wait_for(
            timeout=30_000)
        context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert live == pytest.approx({"drums": 0, "bass": 1, "other": 0, "vocals": 0, "master": 1},
                                 abs=1e-3)
    assert problems == [], problems
