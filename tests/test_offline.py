"""Offline: the suite runs with non-loopback sockets blocked (tests/fixtures_offline.py, a
plugin of the root conftest), loopback and Unix sockets still work (Jupyter, Voila,
browsers), and analysis + rendering make no network call at all (not even an attempt that
the block would stop: every INET connect and name lookup is recorded here)."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures_offline import NetworkBlocked, is_loopback_host, network_blocked

needs_block = pytest.mark.skipif(
    os.environ.get("STRATUM_ALLOW_NETWORK") == "1",
    reason="STRATUM_ALLOW_NETWORK=1 switched the network block off")


@needs_block
def test_the_block_is_active():
    assert network_blocked()


@pytest.mark.parametrize("call", [
    lambda: socket.create_connection(("93.184.216.34", 80), timeout=1),
    lambda: socket.getaddrinfo("example.com", 443),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("10.1.2.3", 443)),
    lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).connect_ex(("2001:db8::1", 80)),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)),
], ids=["create_connection", "getaddrinfo", "connect", "connect_ex_v6", "udp_sendto"])
@needs_block
def test_non_loopback_is_refused(call):
    with pytest.raises(NetworkBlocked, match="blocked"):
        call()


@needs_block
def test_urllib_fails_fast():
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen("http://example.com/", timeout=2)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.3.4.5", "0.0.0.0",
                                  "::ffff:127.0.0.1"])
def test_loopback_names(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "example.com", "10.0.0.1", "::ffff:8.8.8.8",
                                  "192.168.1.1", 42])
def test_non_loopback_names(host):
    assert not is_loopback_host(host)


def test_loopback_and_unix_sockets_work():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def echo():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(16).upper())

    t = threading.Thread(target=echo)
    t.start()
    with socket.create_connection(("localhost", port), timeout=5) as c:
        c.sendall(b"ping")
        assert c.recv(16) == b"PING"
    t.join(5)
    server.close()
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"unix")
        assert b.recv(8) == b"unix"


@pytest.fixture
def no_network_at_all(monkeypatch):
    """Record every INET connect / lookup attempt (loopback included) and refuse it."""
    attempts: list = []
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(("connect", address))
            raise NetworkBlocked(f"unexpected connection to {address!r}")
        return real_connect(self, address)

    def lookup(host, *args, **kwargs):
        attempts.append(("getaddrinfo", host))
        raise NetworkBlocked(f"unexpected name lookup {host!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return attempts


def test_analysis_and_rendering_never_touch_the_network(no_network_at_all, make_album,
                                                        tiny_model_dir, tmp_path):
    """The real librosa analysis (with DSP stem separation) and a real render, both with
    every INET socket refused."""
    from stratum_kernel.analysis.cache import FeatureCache, analyze_album
    from stratum_kernel.audio.album import load_album
    from stratum_kernel.render.config import RenderConfig
    from stratum_kernel.render.jobs import RenderContext
    from stratum_kernel.render.run import render_album

    album = load_album(make_album(1, duration=1.0, stems=False))
    analysis = analyze_album(album, cache=FeatureCache(tmp_path / "cache" / "features"),
                             stems_backend="dsp", progress=False)
    cfg = RenderConfig.from_dict({
        "album_dir": str(album.root), "model_dir": str(tiny_model_dir),
        "output_root": str(tmp_path / "renders"), "run_id": "offline", "resolution": [64, 64],
        "render": {"duration": 0.5, "chunk_frames": 12}, "decoder": {"threads": 1},
    })
    ctx = RenderContext(cfg, album=album, analysis=analysis)
    result = render_album(cfg, progress=False, context=ctx)
    assert result.record.album.frames == 12
    assert no_network_at_all == []


# ------------------------------------------------------------------------------ serving


def _make_dry_run(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["make", "-n", "-o", ".venv/.stratum-setup", "dashboard", *args],
                         cwd=root, capture_output=True, text=True, timeout=30, check=True)
    return " ".join(out.stdout.split())


def test_dashboard_binds_loopback_by_default():
    cmd = _make_dry_run()
    assert "--Voila.ip=127.0.0.1" in cmd and "0.0.0.0" not in cmd
    assert "-m stratum_kernel.studio.serve" in cmd and "--no-browser" in cmd


@pytest.mark.parametrize(("args", "token_flag"), [
    (("EXPOSE=1",), "--Voila.auto_token=True"),
    (("EXPOSE=1", "TOKEN=s3cret"), "--Voila.token=s3cret"),
])
def test_exposing_the_dashboard_needs_a_token(args, token_flag):
    cmd = _make_dry_run(*args)
    assert "--Voila.ip=0.0.0.0" in cmd and token_flag in cmd
    assert "--Voila.ip=127.0.0.1" not in cmd
    assert "allow_hosts" not in cmd


def test_an_exposed_dashboard_can_answer_to_a_name():
    cmd = _make_dry_run("EXPOSE=1", "HOST=studio.lan")
    assert "--StratumVoila.allow_hosts=studio.lan" in cmd


@pytest.mark.slow
def test_voila_with_a_token_refuses_requests_without_it(tmp_path):
    """What EXPOSE=1 relies on: Voila with a token redirects token-less requests to its
    login page and serves the dashboard with the token (on loopback here)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# hello")]
    nbformat.write(nb, tmp_path / "page.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "stratum_kernel.studio.serve",
                             "--no-browser", "--Voila.ip=127.0.0.1",
                             f"--port={port}", "--Voila.token=s3cret", "page.ipynb"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status = get("/")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "voila did not start"
                time.sleep(0.5)
        assert status in (302, 401, 403)
        assert get("/?token=wrong") in (302, 401, 403)
        assert get("/?token=s3cret") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
