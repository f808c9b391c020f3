"""The embedded portal (`start_portal`: tests, `kiosk demo`, bench/sync.py's catch-up) answers without
Nagle's algorithm, like `kiosk-portal serve` does.

uvicorn writes an answer's head and body in two writes. asyncio turns TCP_NODELAY on only for a socket
whose ``proto`` is IPPROTO_TCP, and a listening socket made as ``socket(AF_INET, SOCK_STREAM)`` has proto 0,
so its connections kept Nagle on: the body waited for the client's delayed ACK, some 40 ms an answer
(over a second of a 10,000-entry catch-up).
"""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from server_sync.embedded import start_portal


def test_the_embedded_portals_connections_have_tcp_nodelay(tmp_path: Path) -> None:
    portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        with requests.Session() as s:
            assert s.get(portal.url + "/healthz", timeout=10).ok  # keep-alive: the connection stays open
            conns = list(portal.server.server_state.connections)
            assert conns, "the kept-alive connection is not listed"
            for proto in conns:
                sock = proto.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        portal.stop()
