"""Portal hardening over real HTTP on loopback, on SQLite and PostgreSQL: sessions that end at sign-out, at a
new password and with their user; the session secret outside the database; every staff form refuses a
cross-site post (walked over the routes the app has, so forms added later are covered); security headers
on every answer; Argon2id hashes that replace old scrypt ones at sign-in. The browser side (the policy does
not break the pages, a cross-site form in a real browser is refused) runs in Chromium via Playwright."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import secrets
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from fastapi.routing import APIRoute
from sqlalchemy import select

from server_sync import catalog, staff
from server_sync.db import settings, staff_sessions, staff_users, writing
from server_sync.embedded import start_portal
from server_sync.portal_cli import main as portal_main
from server_sync.security import SecurityMiddleware
from server_sync.staff import SecretError, add_user, load_secret
from tests.loopback import free_port

PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
EVIL = "https://evil.example"


@pytest.fixture
def sec(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, secret_file=tmp_path / "secret", spool_dir=str(tmp_path / "spool"))
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"groups": [{"id": "g", "name": "G"}],
                                 "projects": [{"id": "p1", "group_id": "g", "title": "P", "area": "green",
                                               "goal_yen": 1000}]})
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "clerk", PASSWORD, "staff")
    yield handle
    handle.stop()


def login(url: str, user: str, password: str = PASSWORD) -> tuple[requests.Session, str]:
    s = requests.Session()
    r = s.post(url + "/staff/login", data={"username": user, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    token = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert token is not None
    return s, token.group(1)


def signed_in(s: requests.Session, url: str) -> bool:
    r = s.get(url + "/staff", timeout=10, allow_redirects=False)
    return r.status_code == 200


def copy_of(s: requests.Session) -> requests.Session:
    """Another client holding the same cookie (a stolen or copied session)."""
    c = requests.Session()
    c.cookies.update(s.cookies)
    return c


# --- sessions -----------------------------------------------------------------------------------------
def test_a_session_ends_at_logout_everywhere(sec):
    s, token = login(sec.url, "clerk")
    thief = copy_of(s)
    assert signed_in(thief, sec.url)
    r = s.post(sec.url + "/staff/logout", data={"csrf": token}, timeout=10, allow_redirects=False)
    assert r.status_code == 303
    assert not signed_in(thief, sec.url)  # the copied cookie is dead, not just deleted from one browser


def test_a_session_ends_at_a_password_reset(sec):
    victim, _ = login(sec.url, "clerk")
    other_device, _ = login(sec.url, "clerk")
    admin, token = login(sec.url, "admin")
    r = admin.post(sec.url + "/staff/users", data={"csrf": token, "username": "clerk", "role": "staff",
                                                   "password": "a new password 1"}, timeout=10,
                   allow_redirects=False)
    assert r.status_code == 303, r.text
    assert not signed_in(victim, sec.url) and not signed_in(other_device, sec.url)
    assert signed_in(admin, sec.url)  # other users' sessions live on
    # A reset from the command line (staff-add over an existing user) ends sessions too.
    s, _ = login(sec.url, "clerk", "a new password 1")
    add_user(sec.app.state.engine, "clerk", "a third password", "staff")
    assert not signed_in(s, sec.url)


def test_a_session_ends_when_its_user_is_removed(sec):
    victim, _ = login(sec.url, "clerk")
    admin, token = login(sec.url, "admin")
    r = admin.post(sec.url + "/staff/users/clerk/delete", data={"csrf": token}, timeout=10, allow_redirects=False)
    assert r.status_code == 303
    assert not signed_in(victim, sec.url)
    with sec.app.state.engine.connect() as conn:
        assert conn.execute(select(staff_sessions).where(staff_sessions.c.username == "clerk")).first() is None
    # Making a user of the same name again does not bring the old session back.
    add_user(sec.app.state.engine, "clerk", PASSWORD, "staff")
    assert not signed_in(victim, sec.url)


def test_a_forged_or_expired_cookie_is_refused(sec):
    s, _ = login(sec.url, "clerk")
    cookie = s.cookies.get(staff.COOKIE)
    sid, mac = cookie.rsplit(".", 1)
    # The changed session id must differ from the real one: a fixed "A" in its place was the real id
    # itself whenever the random id already ended in "A" (one login in 64), and that run failed.
    other = "B" if sid.endswith("A") else "A"
    for bad in (f"{sid}.{'0' * len(mac)}", f"{sid[:-1]}{other}.{mac}", "x" * 300, "", "no-dot"):
        c = requests.Session()
        c.cookies.set(staff.COOKIE, bad, path="/staff")
        assert not signed_in(c, sec.url)
    with writing(sec.app.state.engine) as conn:
        conn.execute(staff_sessions.update().values(expires_ms=1))
    assert not signed_in(s, sec.url)


# --- the secret -----------------------------------------------------------------------------------------
def test_the_session_secret_is_not_in_the_database(sec, tmp_path):
    with sec.app.state.engine.connect() as conn:
        names = {r[0] for r in conn.execute(select(settings.c.name))}
        rows = [r[0] for r in conn.execute(select(settings.c.value))]
    assert "session_secret" not in names
    secret = (tmp_path / "secret").read_text().strip()
    assert all(secret not in v for v in rows)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600


def test_a_world_readable_secret_file_is_refused(tmp_path, monkeypatch, capsys):
    f = tmp_path / "secret"
    f.write_text(secrets.token_hex(32))
    f.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_secret(f)
    monkeypatch.setenv("KIOSK_PORTAL_SECRET_FILE", str(f))
    monkeypatch.delenv("KIOSK_PORTAL_SESSION_SECRET", raising=False)
    assert portal_main(["serve", "--db", f"sqlite:///{tmp_path / 'p.db'}", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "chmod 600" in err and "Traceback" not in err
    f.chmod(0o600)
    assert load_secret(f) == f.read_text().strip().encode()


def test_the_secret_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KIOSK_PORTAL_SESSION_SECRET", "s" * 40)
    assert load_secret(tmp_path / "never-made") == b"s" * 40
    assert not (tmp_path / "never-made").exists()
    monkeypatch.setenv("KIOSK_PORTAL_SESSION_SECRET", "short")
    with pytest.raises(SecretError, match="32"):
        load_secret(tmp_path / "never-made")


def test_kiosk_portal_serve_first_run_creates_the_secret_file_0600(tmp_path):
    f = tmp_path / "state" / "session-secret"
    port = free_port()
    env = {**os.environ, "KIOSK_PORTAL_SECRET_FILE": str(f)}
    env.pop("KIOSK_PORTAL_SESSION_SECRET", None)
    proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db",
                             f"sqlite:///{tmp_path / 'p.db'}", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            raise AssertionError("kiosk-portal serve did not answer")
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert len(f.read_text().strip()) == 64
    finally:
        proc.terminate()
        proc.wait(20)


# --- CSRF: every staff form ---------------------------------------------------------------------------
def _staff_posts(app) -> list[str]:  # noqa: ANN001
    """Every POST route the app has under /staff, parameters filled in: forms added later are walked too."""
    out = []
    for r in app.routes:
        if isinstance(r, APIRoute) and "POST" in r.methods and r.path.startswith("/staff"):
            out.append(re.sub(r"\{[^}]+\}", "x", r.path))
    return sorted(set(out))


def test_every_staff_form_refuses_a_cross_site_post(sec):
    paths = _staff_posts(sec.app)
    assert {"/staff/login", "/staff/logout", "/staff/users", "/staff/projects", "/staff/media-upload"} <= set(paths)
    admin, token = login(sec.url, "admin")
    own = sec.url
    users_before = {u["username"] for u in staff.list_users(sec.app.state.engine)}
    for path in paths:
        form = {"csrf": token, "username": "admin", "password": PASSWORD}
        # With the session and its valid token, but from another site: refused before any handler runs.
        for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Referer": EVIL + "/attack.html"},
                        {"Origin": own.replace("127.0.0.1", "localhost")}):
            r = admin.post(own + path, data=form, headers=headers, timeout=10, allow_redirects=False)
            assert r.status_code == 403, (path, headers, r.status_code)
            assert "別のサイト" in r.text
        # From the portal itself but without the token (a page of another site cannot read it): refused, as
        # a plain form and as a multipart one (file uploads).
        if path != "/staff/login":
            r = admin.post(own + path, data={"username": "admin"}, headers={"Origin": own}, timeout=10,
                           allow_redirects=False)
            assert 400 <= r.status_code < 500, (path, r.status_code)
            r = admin.post(own + path, data={"username": "admin"}, files={"file": ("a.txt", b"x")},
                           headers={"Origin": own}, timeout=10, allow_redirects=False)
            assert 400 <= r.status_code < 500, (path, r.status_code)
    # Nothing any of those posts carried was stored.
    assert {u["username"] for u in staff.list_users(sec.app.state.engine)} == users_before
    assert signed_in(admin, own)  # nothing above signed the administrator out
    # The same forms from the portal's own origin with the token work (the check is not just "refuse all").
    r = admin.post(own + "/staff/groups", data={"csrf": token, "editing": "", "id": "g2", "name": "G2"},
                   headers={"Origin": own, "Referer": own + "/staff/groups"}, timeout=10, allow_redirects=False)
    assert r.status_code == 303, r.text
    # A login posted from another site is refused too (login CSRF).
    r = requests.post(own + "/staff/login", data={"username": "admin", "password": PASSWORD},
                      headers={"Origin": EVIL}, timeout=10, allow_redirects=False)
    assert r.status_code == 403


def test_the_kiosk_api_is_not_subject_to_the_browser_origin_check(sec):
    r = requests.post(sec.url + "/api/v1/enroll", data=b"{}", headers={"Origin": EVIL,
                                                                       "Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 422  # refused for its content, by the API itself


# --- headers ----------------------------------------------------------------------------------------------
def _check_headers(r: requests.Response) -> None:
    csp = r.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, (r.url, csp)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert r.headers.get("X-Frame-Options") == "DENY"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("Referrer-Policy")


def test_security_headers_on_every_answer(sec):
    s, _ = login(sec.url, "admin")
    for path in ("/", "/p/p1", "/p/nope", "/r/AAAA", "/api/v1/totals", "/api/v1/receipts/AAAA", "/staff/login",
                 "/staff", "/staff/users", "/staff/media", "/healthz", "/no-such-page", "/openapi.json"):
        r = s.get(sec.url + path, timeout=10)
        _check_headers(r)
        assert "Strict-Transport-Security" not in r.headers  # plain http: no HSTS
    _check_headers(requests.post(sec.url + "/staff/login", data={"username": "x", "password": "y"}, timeout=10))
    _check_headers(requests.post(sec.url + "/staff/users", headers={"Origin": EVIL}, timeout=10))
    # The receipt page keeps its own stricter referrer rule.
    assert s.get(sec.url + "/r/AAAA", timeout=10).headers["Referrer-Policy"] == "no-referrer"


def test_hsts_behind_a_trusted_tls_proxy_only(db_url, tmp_path):
    trusting = start_portal(db_url, secret_file=tmp_path / "s", trusted_proxies=("127.0.0.1",))
    try:
        r = requests.get(trusting.url + "/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert r.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Strict-Transport-Security" not in requests.get(trusting.url + "/", timeout=10).headers
        # Behind the proxy the browser's origin is https://host: its forms are the portal's own.
        add_user(trusting.app.state.engine, "admin", PASSWORD)
        host = trusting.url.split("://", 1)[1]
        r = requests.post(trusting.url + "/staff/login", data={"username": "admin", "password": PASSWORD},
                          headers={"X-Forwarded-Proto": "https", "Origin": f"https://{host}"}, timeout=10,
                          allow_redirects=False)
        assert r.status_code == 303
    finally:
        trusting.stop()
    # Anyone can send the header; only a trusted proxy's is believed. (Over loopback uvicorn's own
    # --proxy-headers trusts 127.0.0.1 as well, so this half is checked on the middleware's decision.)
    mw = SecurityMiddleware(None, trusted_proxies=("10.0.0.1",))  # type: ignore[arg-type]
    fwd = {b"x-forwarded-proto": b"https"}
    assert not mw._https({"scheme": "http", "client": ("203.0.113.5", 1)}, fwd)
    assert mw._https({"scheme": "http", "client": ("10.0.0.1", 1)}, fwd)


# --- passwords ----------------------------------------------------------------------------------------------
def test_argon2id_at_owasp_parameters_and_old_scrypt_hashes_rehashed_at_sign_in(sec):
    eng = sec.app.state.engine
    with eng.connect() as conn:
        h = conn.execute(select(staff_users.c.password_hash).where(staff_users.c.username == "admin")).scalar()
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert staff.check_password(h, PASSWORD) and not staff.check_password(h, PASSWORD + "x")
    # A user made by an older portal (scrypt N=2^14).
    salt = os.urandom(16)
    old = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    with writing(eng) as conn:
        conn.execute(staff_users.update().where(staff_users.c.username == "clerk")
                     .values(password_hash=f"scrypt$16384$8$1${salt.hex()}${old.hex()}"))
    bad = requests.post(sec.url + "/staff/login", data={"username": "clerk", "password": "wrong"}, timeout=10)
    assert bad.status_code == 401
    with eng.connect() as conn:  # a failed sign-in changes nothing
        assert conn.execute(select(staff_users.c.password_hash).where(
            staff_users.c.username == "clerk")).scalar().startswith("scrypt$")
    login(sec.url, "clerk")
    with eng.connect() as conn:
        new = conn.execute(select(staff_users.c.password_hash).where(staff_users.c.username == "clerk")).scalar()
    assert new.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    login(sec.url, "clerk")  # and the new hash works
    # A tampered hash asking for absurd memory is a failed sign-in, not an allocation.
    assert not staff.check_password("$argon2id$v=19$m=9999999,t=2,p=1$" + "A" * 22 + "$" + "A" * 43, PASSWORD)


# --- in a real browser --------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")
def test_in_chromium_the_policy_breaks_no_page_and_a_cross_site_form_is_refused(sec):
    from playwright.sync_api import sync_playwright

    # An attacker's page on another origin (another port), posting to the portal's users form.
    attack = (f'<!doctype html><form id=f method=post action="{sec.url}/staff/users">'
              '<input name=username value=mallory><input name=role value=admin>'
              '<input name=password value="mallory password"></form>'
              '<script>document.getElementById("f").submit()</script>').encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(attack)

        def log_message(self, *a: object) -> None:
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page()
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(sec.url + "/staff/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/staff")
            for path in ("/staff", "/staff/media", "/staff/users", "/staff/projects/new", "/staff/playlists?target=all",
                         "/", "/p/p1"):
                page.goto(sec.url + path)
            # The videos page's script (a file now, not inline) runs under the policy: choosing no file and
            # pressing send shows its message.
            page.goto(sec.url + "/staff/media")
            page.click("#u-send")
            page.wait_for_selector("#u-text:not(:empty)")
            assert page.locator("#u-text").inner_text()
            assert violations == [], violations
            # The attack: the browser sends Origin: http://127.0.0.1:<other port>; the portal refuses it.
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            page.wait_for_load_state()
            assert "別のサイト" in page.content() or "staff/login" in page.url
        finally:
            b.close()
            evil.shutdown()
    assert "mallory" not in {u["username"] for u in staff.list_users(sec.app.state.engine)}
