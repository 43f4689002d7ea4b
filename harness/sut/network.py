"""Network links through a Toxiproxy API: workers -> Postgres (`db`), orchestrator -> services (`tsa`,
`ledger`), so network faults can cut, slow or reset any of them.

The links are driven with `toxiproxy-python`, the client a team uses against a real Toxiproxy server. Where
none runs (the `HARNESS_TOXIPROXY` variable names one as host:port), the harness starts its own
Toxiproxy-compatible server (`harness.proxy`), so the same scenario runs either way.
"""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit

import toxiproxy
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from toxiproxy.api import APIConsumer

from harness.errors import HarnessError
from harness.proxy import ProxyServer


class Network:
    """Owns the proxy server (when it started one) and the links; closing removes both."""

    def __init__(self) -> None:
        self.server: ProxyServer | None = None
        self.links: dict[str, toxiproxy.Proxy] = {}

    def start(self) -> None:
        external = os.environ.get("HARNESS_TOXIPROXY")
        if external:
            host, _, port = external.rpartition(":")
            APIConsumer.host, APIConsumer.port = host or "127.0.0.1", int(port)
        else:
            self.server = ProxyServer(host="127.0.0.1", port=0)
            self.server.__enter__()
            APIConsumer.host, APIConsumer.port = self.server.host, self.server.port
        self.client = toxiproxy.Toxiproxy()
        if not self.client.running():
            raise HarnessError(
                f"no Toxiproxy API answers at {APIConsumer.host}:{APIConsumer.port}; "
                "unset HARNESS_TOXIPROXY to use the built-in one"
            )

    def link(self, name: str, upstream: str) -> str:
        """A proxy to `upstream` (host:port); returns the address to connect to instead."""
        existing = self.client.get_proxy(name)
        if existing is not None:
            existing.destroy()
        proxy = self.client.create(upstream=upstream, name=name, listen="127.0.0.1:0")
        self.links[name] = proxy
        return proxy.listen

    def link_dsn(self, dsn: str) -> str:
        params = conninfo_to_dict(dsn)
        listen = self.link("db", f"{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}")
        host, _, port = listen.rpartition(":")
        return make_conninfo(dsn, host=host, port=port)

    def link_url(self, name: str, url: str) -> str:
        parts = urlsplit(url)
        listen = self.link(name, parts.netloc)
        return parts._replace(netloc=listen).geturl()

    def get(self, name: str) -> toxiproxy.Proxy:
        if name not in self.links:
            raise HarnessError(f"no network link {name!r}; links: {', '.join(self.links) or 'none'}")
        return self.links[name]

    def close(self) -> None:
        for proxy in self.links.values():
            with contextlib.suppress(Exception):
                proxy.destroy()
        self.links.clear()
        if self.server is not None:
            self.server.__exit__(None, None, None)
            self.server = None
