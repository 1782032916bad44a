"""The dashboard server's Host rule (the server itself runs in test_dashboard_browser.py)."""

from __future__ import annotations

import pytest

from stratum_kernel.studio.serve import host_allowed, listens_beyond_loopback, split_host


@pytest.mark.parametrize("header, name", [
    ("localhost:8866", "localhost"), ("[::1]:8866", "::1"), ("LocalHost.", "localhost"),
    ("127.0.0.1", "127.0.0.1"), ("a:b:c", ""), ("[::1", ""), ("", ""),
])
def test_split_host(header, name):
    assert split_host(header) == name


@pytest.mark.parametrize("header, local, exposed, named", [
    ("localhost:8866", True, True, True),
    ("127.0.0.1:8866", True, True, True),
    ("127.3.2.1", True, True, True),
    ("[::1]:8866", True, True, True),
    ("evil.example", False, False, False),
    ("evil.example:8866", False, False, False),
    ("localhost.evil.example", False, False, False),
    ("192.168.1.4:8866", False, True, False),  # an address the user typed (exposed only)
    ("studio.lan:8866", False, False, True),
    ("", False, False, False),
])
def test_host_rule(header, local, exposed, named):
    assert host_allowed(header) is local
    assert host_allowed(header, exposed=True) is exposed
    assert host_allowed(header, ["Studio.LAN"]) is named


def test_what_counts_as_exposed():
    assert not listens_beyond_loopback("127.0.0.1")
    assert not listens_beyond_loopback("localhost")
    assert not listens_beyond_loopback("::1")
    assert listens_beyond_loopback("0.0.0.0") and listens_beyond_loopback("")
    assert listens_beyond_loopback("studio.lan")
