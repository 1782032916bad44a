"""The test suite runs offline: sockets may only reach loopback (Jupyter, Voila, browsers).

Loaded as a pytest plugin by the root conftest. At session start it wraps
``socket.socket.connect`` / ``connect_ex`` / ``sendto`` and ``socket.getaddrinfo`` /
``socket.create_connection`` so that any non-loopback address raises :class:`NetworkBlocked`
(an ``OSError``, so well-behaved libraries report "network unreachable" instead of hanging).
Unix-domain sockets (Jupyter kernels over IPC, Chromium's own pipes) are untouched.

``STRATUM_ALLOW_NETWORK=1`` switches the block off (e.g. a one-off manual check).
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                            "ip6-loopback", ""})


class NetworkBlocked(OSError):
    """A test (or the code under test) tried to reach a non-loopback address."""


def is_loopback_host(host: object) -> bool:
    """True for loopback names and addresses (127.0.0.0/8, ::1, 0.0.0.0 for binding)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return False
    if addr.is_loopback or addr.is_unspecified:
        return True
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(mapped is not None and mapped.is_loopback)


def _check_address(address: object) -> None:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return
    if isinstance(address, tuple) and address:
        if not is_loopback_host(address[0]):
            raise NetworkBlocked(f"network access blocked in tests: {address[0]!r} "
                                 "(only loopback is allowed)")
        return


_originals: dict[str, object] = {}


def block_network() -> None:
    """Install the loopback-only guards (idempotent)."""
    if _originals:
        return
    sock = socket.socket
    _originals.update(connect=sock.connect, connect_ex=sock.connect_ex, sendto=sock.sendto,
                      getaddrinfo=socket.getaddrinfo,
                      create_connection=socket.create_connection)

    def _family_checked(s: socket.socket, address: object) -> None:
        if s.family in (socket.AF_INET, socket.AF_INET6):
            _check_address(address)

    def connect(self, address):
        _family_checked(self, address)
        return _originals["connect"](self, address)

    def connect_ex(self, address):
        _family_checked(self, address)
        return _originals["connect_ex"](self, address)

    def sendto(self, data, *args):
        _family_checked(self, args[-1])
        return _originals["sendto"](self, data, *args)

    own = {socket.gethostname().lower()}  # resolved from /etc/hosts (Dask, ZMQ ask this)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if not is_loopback_host(host) and str(name).lower() not in own:
            raise NetworkBlocked(f"name lookup blocked in tests: {host!r} (only loopback)")
        return _originals["getaddrinfo"](host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        _check_address(address)
        return _originals["create_connection"](address, *args, **kwargs)

    sock.connect = connect
    sock.connect_ex = connect_ex
    sock.sendto = sendto
    socket.getaddrinfo = getaddrinfo
    socket.create_connection = create_connection


def unblock_network() -> None:
    """Restore the original socket functions."""
    if not _originals:
        return
    socket.socket.connect = _originals["connect"]
    socket.socket.connect_ex = _originals["connect_ex"]
    socket.socket.sendto = _originals["sendto"]
    socket.getaddrinfo = _originals["getaddrinfo"]
    socket.create_connection = _originals["create_connection"]
    _originals.clear()


def network_blocked() -> bool:
    return bool(_originals)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("STRATUM_ALLOW_NETWORK") != "1":
        block_network()


def pytest_unconfigure(config: pytest.Config) -> None:
    unblock_network()
