"""A Toxiproxy-compatible proxy server, for machines where no Toxiproxy binary can be installed.

`ProxyServer` runs it in background threads; `python -m harness.proxy` runs it on its own. Any Toxiproxy
client (the harness uses `toxiproxy-python`) drives it through the same HTTP API. See README.md.
"""

from __future__ import annotations

from harness.proxy.errors import ProxyError
from harness.proxy.server import VERSION, ProxyServer

__all__ = ["VERSION", "ProxyError", "ProxyServer"]
