"""Two limits of the portal's web security (real portal on loopback, real HTTP; docs/portal.md, "Security"): the
API docs' looser content security policy applies to those exact pages only, and a chunked form post (no
Content-Length) to the reconciliation import is never spooled past the file limit, by a group editor (not allowed
the page) or by staff."""

from __future__ import annotations

import re
import socket
import tempfile
import time
from pathlib import Path

import pytest
import requests

from server_sync import catalog
from server_sync.embedded import start_portal
from server_sync.reconcile import MAX_FILE_BYTES
from server_sync.security import CSP
from server_sync.staff import add_user

PASSWORD = "correct horse battery"


def _spooled(where: Path) -> list[int]:
    """Sizes of the files this process holds open under ``where`` (Linux makes temporary files unnamed, O_TMPFILE:
    they are seen only through /proc/self/fd)."""
    sizes = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if str(fd.readlink()).startswith(str(where)):
                sizes.append(fd.stat().st_size)
        except OSError:
            continue
    return sizes


@pytest.fixture
def portal(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, secret_file=tmp_path / "secret", spool_dir=str(tmp_path / "spool"))
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "g1", "name": "G1"}],
                                 "projects": [{"id": "p1", "group_id": "g1", "title": "P", "area": "green",
                                               "goal_yen": 1000}]})
    add_user(eng, "ed1", PASSWORD, "editor", "g1")
    add_user(eng, "staff1", PASSWORD, "staff")
    yield handle
    handle.stop()


def _login(url: str, user: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    r = s.post(url + "/staff/login", data={"username": user, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    m = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert m is not None
    return s, m.group(1)


@pytest.mark.parametrize("path", ["/docsearch", "/redoc-anything", "/docs/no-such-page"])
def test_the_loose_api_docs_policy_stays_on_the_api_docs_pages(portal, path):
    """docs/portal.md: "Only FastAPI's generated /docs and /redoc get a looser policy". A portal page at an
    address that merely starts with those letters (here the portal's own 404 page) must get the strict one."""
    r = requests.get(portal.url + path, headers={"Accept": "text/html"}, timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Security-Policy"] == CSP, r.headers["Content-Security-Policy"]


@pytest.mark.parametrize("user", ["ed1", "staff1"], ids=["group-editor", "staff"])
def test_a_chunked_provider_file_is_never_spooled_past_the_limit(portal, monkeypatch, user):
    """POST /staff/reconciliation/provider is for center staff, with a 5 MB file. A chunked post (no
    Content-Length) must not make the portal write more than that to its disk before it is refused: a group
    editor's (not allowed the page at all), nor staff's (a browser always sends the length)."""
    spool = Path(tempfile.mkdtemp(prefix="review-form-"))
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # Starlette's form files roll over here (same process)
    s, token = _login(portal.url, user)
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    host, port = portal.url.removeprefix("http://").split(":")
    sent = 0
    biggest = 0
    target = 3 * MAX_FILE_BYTES
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"POST /staff/reconciliation/provider HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n").encode())
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        block = b"a" * (256 * 1024)
        sock.settimeout(0.5)
        try:
            while sent < target:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                sent += len(block)
                biggest = max([biggest] + _spooled(spool))
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the portal stopped reading: what a bounded form does
        time.sleep(0.5)
        biggest = max([biggest] + _spooled(spool))
    assert biggest <= MAX_FILE_BYTES + 64 * 1024, (
        f"{user} made the portal spool {biggest:,} bytes "
        f"(cap {MAX_FILE_BYTES:,}); {sent:,} bytes accepted")
