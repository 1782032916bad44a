"""The dashboard's server: Voila that answers only requests addressed to this machine.

``python -m stratum_kernel.studio.serve [voila options] notebooks/dashboard.ipynb`` (what
``make dashboard`` runs) is Voila with one more rule. Voila serves any ``Host`` header (its
settings hard-code ``allow_remote_access``), which opens the dashboard to DNS rebinding: a
web page the user visits points a name it controls at 127.0.0.1, and the browser then sends
that page's requests — ``Host: evil.example`` — to the dashboard and its kernel, which runs
code. Here every request (pages, static files, kernel websockets) whose Host is not this
machine is answered 403 before it reaches a handler.

It also serves Voila's page template without the two stylesheet links it points at a CDN
(Font Awesome: the widgets bundle their own icon font, so nothing is lost), so a page load
fetches nothing from outside — :func:`offline_template`.

Allowed: loopback names and addresses (``localhost``, ``127.0.0.1``, ``[::1]``); names given
with ``--StratumVoila.allow_hosts=NAME`` (repeatable); and, when the server listens beyond
loopback (``make dashboard EXPOSE=1``, which always asks for a token), this machine's host
names and any IP address literal — a request to an address typed by the user cannot come
from a rebinding page, whose origin is a name.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable
from pathlib import Path

from stratum_kernel.core.paths import cache_dir, write_text_atomic

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_HOST = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<name>[^:]+))(?::\d+)?$")


def split_host(host_header: str) -> str:
    """The name or address of a Host header, lower case, without port or IPv6 brackets
    ('' for a malformed header)."""
    m = _HOST.match(host_header.strip().lower())
    if m is None:
        return ""
    return (m.group("v6") or m.group("name") or "").rstrip(".")


def host_allowed(host_header: str, allowed: Iterable[str] = (), *, exposed: bool = False) -> bool:
    """Whether a request with this Host header may reach the dashboard (module docstring)."""
    host = split_host(host_header)
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in LOOPBACK_NAMES or host in {split_host(a) for a in allowed}
    return address.is_loopback or exposed or host in {split_host(a) for a in allowed}


def listens_beyond_loopback(ip: str | None) -> bool:
    """Whether a server bound to ``ip`` can be reached from other machines ('' and
    0.0.0.0 are every interface; a host name counts as reachable)."""
    if not ip:
        return True
    if ip.lower() in LOOPBACK_NAMES:
        return False
    try:
        return not ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return True


def machine_names() -> set[str]:
    """This machine's host names (short and fully qualified), lower case."""
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    return {n for n in names if n}


EXTERNAL_LINK = re.compile(r'^\s*<link[^>]+href="https?://[^"]+"[^>]*/?>\s*$\n?', re.M)


def offline_template(template_paths: list[str], out_root: Path) -> Path | None:
    """A folder holding the first ``index.html.j2`` of ``template_paths`` with every
    ``<link href="http(s)://…">`` line removed (None when it has none); put it first in the
    template path and Voila renders its page from it."""
    for folder in template_paths:
        src = Path(folder) / "index.html.j2"
        if not src.is_file():
            continue
        text = src.read_text(encoding="utf-8")
        cleaned = EXTERNAL_LINK.sub("", text)
        if cleaned == text:
            return None
        digest = hashlib.sha256(cleaned.encode()).hexdigest()[:12]
        out = out_root / f"voila-template-{digest}"
        if not (out / "index.html.j2").is_file():
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / "index.html.j2", cleaned)
        return out
    return None


def _voila_class():
    import tornado.web
    from traitlets import List, Unicode
    from voila.app import Voila

    class StratumVoila(Voila):
        """Voila refusing requests whose Host is not this machine (module docstring)."""

        allow_hosts = List(Unicode(), config=True,
                           help="more Host names the dashboard answers to")

        def setup_template_dirs(self) -> None:
            super().setup_template_dirs()
            local = offline_template(list(self.template_paths), cache_dir())
            if local is not None:
                self.template_paths.insert(0, str(local))

        def listen(self) -> None:
            exposed = listens_beyond_loopback(self.ip)
            allowed = set(self.allow_hosts) | (machine_names() if exposed else set())
            app = self.app
            find_handler = app.find_handler

            def guarded(request, **kwargs):
                if host_allowed(request.host, allowed, exposed=exposed):
                    return find_handler(request, **kwargs)
                self.log.warning("refused a request for Host %r (not this machine; a web "
                                 "page trying DNS rebinding?)", request.host)
                return app.get_handler_delegate(request, tornado.web.ErrorHandler,
                                                {"status_code": 403})

            app.find_handler = guarded
            super().listen()

    return StratumVoila


def main(argv: list[str] | None = None) -> None:
    _voila_class().launch_instance(argv)


if __name__ == "__main__":
    main()
