"""Rate limits over real HTTP on loopback (server_sync/ratelimit.py, the `limits` package): staff sign-in is
slowed and then locked out per account and per client address, and receipts and /me/ pages answer 429 with
Retry-After past their limit. Small limits keep the tests quick; the rules are the production ones."""

from __future__ import annotations

import os

import pytest
import requests

from server_sync.embedded import start_portal
from server_sync.ratelimit import RateLimits, client_address
from server_sync.staff import add_user

PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
LIMITS = RateLimits(login_slow="3/minute", login_lockout="6/hour", login_ip_slow="100/minute",
                    login_ip_lockout="1000/hour", receipts="5/minute", me="4/minute")


@pytest.fixture
def limited(db_url: str):
    handle = start_portal(db_url, rate_limits=LIMITS)
    add_user(handle.app.state.engine, "admin", PASSWORD)
    add_user(handle.app.state.engine, "other", PASSWORD, "staff")
    yield handle
    handle.stop()


def _login(url: str, user: str, password: str) -> requests.Response:
    return requests.post(url + "/staff/login", data={"username": user, "password": password}, timeout=10,
                         allow_redirects=False)


def test_login_brute_force_is_slowed_then_locked_out(limited):
    url = limited.url
    # Three wrong passwords are answered normally (401) ...
    for _ in range(3):
        assert _login(url, "admin", "wrong-guess").status_code == 401
    # ... the fourth must wait: 429, Retry-After, a Japanese message, and no password was checked.
    r = _login(url, "admin", "wrong-guess")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "秒待ってから" in r.text
    # Even the right password waits while slowed.
    assert _login(url, "admin", PASSWORD).status_code == 429
    # Another account from the same address is not affected (the address limit is higher).
    assert _login(url, "other", PASSWORD).status_code == 303

    # A flood while slowed is refused without hashing a single password.
    assert all(_login(url, "admin", "wrong-guess").status_code == 429 for _ in range(20))
    # Case does not open a second set of counters.
    assert _login(url, "ADMIN", "wrong-guess").status_code == 429


def test_lockout_after_the_hours_failures_even_for_the_right_password(db_url):
    handle = start_portal(db_url, rate_limits=RateLimits(login_slow="100/minute", login_lockout="5/hour",
                                                         login_ip_slow="100/minute", login_ip_lockout="1000/hour"))
    try:
        add_user(handle.app.state.engine, "admin", PASSWORD)
        for _ in range(5):
            assert _login(handle.url, "admin", "wrong-guess").status_code == 401
        r = _login(handle.url, "admin", PASSWORD)
        assert r.status_code == 429
        assert "ロックしています" in r.text
        assert int(r.headers["Retry-After"]) > 60 * 50  # the rest of the hour
    finally:
        handle.stop()


def test_lockout_per_client_address_across_accounts(db_url):
    handle = start_portal(db_url, rate_limits=RateLimits(login_slow="100/minute", login_lockout="100/hour",
                                                         login_ip_slow="100/minute", login_ip_lockout="4/hour"))
    try:
        add_user(handle.app.state.engine, "admin", PASSWORD)
        for i in range(4):  # spraying one password over many accounts
            assert _login(handle.url, f"user{i}", "wrong-guess").status_code == 401
        r = _login(handle.url, "admin", PASSWORD)
        assert r.status_code == 429 and "Retry-After" in r.headers
    finally:
        handle.stop()


def test_successful_login_resets_the_slow_counter(limited):
    for _ in range(2):
        assert _login(limited.url, "admin", "typo").status_code == 401
    assert _login(limited.url, "admin", PASSWORD).status_code == 303
    for _ in range(3):
        assert _login(limited.url, "admin", "typo").status_code == 401


@pytest.mark.parametrize("path,limit", [("/api/v1/receipts/AAAA-BBBB", 5), ("/r/AAAA-BBBB", 5), ("/me/x", 4)])
def test_receipts_and_my_pages_are_limited_per_address(limited, path, limit):
    s = requests.Session()
    codes = [s.get(limited.url + path, timeout=10).status_code for _ in range(limit)]
    assert 429 not in codes
    r = s.get(limited.url + path, timeout=10)
    assert r.status_code == 429
    wait = int(r.headers["Retry-After"])
    assert wait >= 1
    if path.startswith("/api/"):
        assert r.json()["error"] == "rate_limited"
    else:  # a citizen's phone: plain Japanese, and the page reloads itself when the wait is over
        assert r.headers["content-type"].startswith("text/html") and "rate_limited" not in r.text
        assert "アクセスが集中しています" in r.text and f"{wait}秒ほどたつと" in r.text
        assert f'<meta http-equiv="refresh" content="{wait}">' in r.text
    # Public pages are not limited.
    assert s.get(limited.url + "/api/v1/totals", timeout=10).status_code == 200


def _enroll(url: str, sk, kiosk_id: str, code: str) -> requests.Response:  # noqa: ANN001
    from kiosk.ledger.keys import public_raw
    from server_sync.wire.framing import b64, enroll_message

    pub = public_raw(sk.public_key()).hex()
    return requests.post(url + "/api/v1/enroll", json={"kiosk_id": kiosk_id, "code": code, "public_key": pub,
                                                       "signature": b64(sk.sign(enroll_message(kiosk_id, code, pub)))},
                         timeout=10)


def test_guessing_enrollment_codes_is_limited_per_address(db_url):
    """Failed redemptions (a wrong code) count per client address; past the limit a 429 with Retry-After comes
    before any code is looked up. A kiosk retrying with its good code fails nothing and is never held back."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    handle = start_portal(db_url, rate_limits=RateLimits(enroll="5/minute"))
    try:
        sk = Ed25519PrivateKey.generate()
        good = handle.issue_code("kiosk-a")
        for _ in range(12):  # the answer was lost, again and again: idempotent, and not a failure
            assert _enroll(handle.url, sk, "kiosk-a", good).status_code == 200
        codes = [_enroll(handle.url, sk, "victim-1", f"ABCD-EFGH-JK{a}{b}").status_code
                 for a, b in zip("23456789", "98765432", strict=True)]
        assert codes[:5] == [404] * 5 and codes[5:] == [429] * 3, codes
        r = _enroll(handle.url, sk, "kiosk-a", good)  # the address is held back, even with a good code
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"] == "rate_limited" and "too many failed enrollments" in r.json()["reason"]
    finally:
        handle.stop()


def test_the_enroll_limit_is_configurable_like_the_others():
    assert RateLimits().enroll == "10/minute"
    assert RateLimits.from_env({"KIOSK_PORTAL_RATE_ENROLL": "3/hour"}).enroll == "3/hour"
    with pytest.raises(ValueError, match="KIOSK_PORTAL_RATE_ENROLL"):
        RateLimits.from_env({"KIOSK_PORTAL_RATE_ENROLL": "lots"})


def test_client_address_believes_forwarded_for_only_from_a_trusted_proxy():
    scope = {"client": ("10.0.0.5", 1234), "headers": [(b"x-forwarded-for", b"1.2.3.4, 203.0.113.9")]}
    assert client_address(scope) == "10.0.0.5"
    assert client_address(scope, ["10.0.0.0/8"]) == "203.0.113.9"
    # A client cannot pose as the proxy by adding addresses on the left.
    assert client_address(scope, ["10.0.0.0/8", "203.0.113.9"]) == "1.2.3.4"


def test_bad_limits_are_refused_at_start():
    with pytest.raises(ValueError, match="KIOSK_PORTAL_RATE_LOGIN_SLOW"):
        RateLimits.from_env({"KIOSK_PORTAL_RATE_LOGIN_SLOW": "lots"})


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")
def test_in_chromium_the_locked_sign_in_page_says_so_in_japanese(limited):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page(locale="ja-JP")
            statuses = []
            page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/staff/login") and
                    r.request.method == "POST" else None)
            for _ in range(4):  # LIMITS: three failures are answered, the fourth waits
                page.goto(limited.url + "/staff/login")
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", "wrong-guess")
                page.click("button[type=submit]")
                page.wait_for_load_state()
            assert statuses == [401, 401, 401, 429]
            alert = page.get_by_role("alert").inner_text()
            assert "サインインの失敗が続いています" in alert and "秒待ってから" in alert
        finally:
            b.close()
