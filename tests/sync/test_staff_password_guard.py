"""The staff sign-in's two guards around a user's own password, against a real portal on loopback (SQLite, and
PostgreSQL when KIOSK_TEST_PG_URL is set; docs/portal.md, "A user's own password"):

- wrong current passwords on /staff/password count as failed sign-ins of that account (server_sync/ratelimit.py's
  LoginGuard): a stolen session (a staff PC left unlocked) cannot try the "current password" box without limit;
  past the limit the page says in plain Japanese how long to wait (429, Retry-After) and checks and changes nothing;
- a password change gives the browser that made it a NEW session id: the cookie it had (perhaps copied, or the
  stolen one) signs nobody in afterwards;
- signing in always starts a new session, never the one whose cookie the browser brought (session fixation).

The per-account sign-in limits themselves are in test_portal_ratelimit.py; the page's own mistakes and the other
sessions ending are in test_review29_staff_account.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from sync_helpers import PASSWORD, staff_session

from server_sync import staff
from server_sync.embedded import start_portal
from server_sync.ratelimit import RateLimits
from server_sync.staff import add_user

NEW = "a new one only I know"


@pytest.fixture
def guarded(db_url: str) -> Iterator[Callable[[RateLimits], Any]]:
    """Starts a portal with the given limits (small ones keep the tests quick) and two staff users, ``ed`` and
    ``other``; stopped after the test."""
    handles: list[Any] = []

    def start(limits: RateLimits) -> Any:
        handles.append(start_portal(db_url, rate_limits=limits))
        add_user(handles[-1].app.state.engine, "ed", PASSWORD, "staff")
        add_user(handles[-1].app.state.engine, "other", PASSWORD, "staff")
        return handles[-1]

    yield start
    for handle in handles:
        handle.stop()


def _error(html: str) -> str:
    m = re.search(r'<p class="bad err" data-for="current">([^<]+)</p>', html)
    return m[1] if m else ""


def _change(url: str, s: requests.Session, token: str, current: str) -> requests.Response:
    return s.post(url + "/staff/password", data={"csrf": token, "current": current, "new": NEW, "again": NEW},
                  headers={"Origin": url}, timeout=10, allow_redirects=False)


def _as(url: str, cookie: str) -> requests.Response:
    """/staff with only ``cookie`` (a copy of a session's cookie, as another browser would bring it)."""
    return requests.get(url + "/staff", headers={"Cookie": f"{staff.COOKIE}={cookie}"}, timeout=10,
                        allow_redirects=False)


def test_guessing_the_current_password_in_a_stolen_session_is_slowed_and_changes_nothing(guarded):
    portal = guarded(RateLimits(login_slow="3/minute", login_lockout="100/hour"))
    url, eng = portal.url, portal.app.state.engine
    thief, token = staff_session(url, "ed")  # the staff PC left signed in
    # Each wrong try is two guesses (the current password, and the new one: the same form sent twice is answered
    # as done), so with 3 a minute the second wrong try is the last one checked.
    for guess in ("guess one", "guess two"):
        r = _change(url, thief, token, guess)
        assert r.status_code == 422 and _error(r.text) == "いま使っているパスワードと違います。もう一度入れてください。"
    r = _change(url, thief, token, PASSWORD)  # even the right one now waits: nothing is checked
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    secs = int(r.headers["Retry-After"])
    assert _error(r.text) == f"いまのパスワードの間違いが続いています。{secs}秒待ってから、もう一度入れてください。"
    assert "guess" not in r.text and NEW not in r.text
    assert staff.login(eng, "ed", PASSWORD) and not staff.login(eng, "ed", NEW)  # nothing changed
    assert thief.get(url + "/staff", timeout=10, allow_redirects=False).status_code == 200
    # The same account's counter as the sign-in page: guesses there and here add up.
    r = requests.post(url + "/staff/login", data={"username": "ed", "password": PASSWORD}, timeout=10,
                      allow_redirects=False)
    assert r.status_code == 429
    # A colleague is not held back, on either page.
    colleague, ctoken = staff_session(url, "other")
    assert _change(url, colleague, ctoken, PASSWORD).status_code == 303


def test_past_the_hours_wrong_current_passwords_the_account_is_locked(guarded):
    portal = guarded(RateLimits(login_slow="100/minute", login_lockout="4/hour"))
    url, eng = portal.url, portal.app.state.engine
    thief, token = staff_session(url, "ed", lang="en")
    for guess in ("guess one", "guess two"):
        assert _change(url, thief, token, guess).status_code == 422
    r = _change(url, thief, token, PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 50 * 60  # the rest of the hour
    minutes = -(-int(r.headers["Retry-After"]) // 60)
    assert _error(r.text) == (f"You typed a wrong password too many times, so it is locked for now. Try again in "
                              f"{minutes} minutes.")
    thief.get(url + "/staff/lang?to=ja", timeout=10)
    r = _change(url, thief, token, PASSWORD)
    assert r.status_code == 429
    assert _error(r.text) == (f"パスワードの間違いが続いたため、一時的にロックしています。{minutes}分たってから、"
                              "もう一度お試しください。")
    assert staff.login(eng, "ed", PASSWORD) and not staff.login(eng, "ed", NEW)


def test_a_password_change_gives_the_browser_a_new_session_and_the_old_cookie_signs_nobody_in(guarded):
    portal = guarded(RateLimits())
    url, eng = portal.url, portal.app.state.engine
    here, token = staff_session(url, "ed")
    old = here.cookies[staff.COOKIE]
    assert _as(url, old).status_code == 200  # a copy of it (taken from the unlocked PC) works ... until the change
    r = _change(url, here, token, PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/staff/password?done=password"
    set_cookie = r.headers["set-cookie"]
    assert f"{staff.COOKIE}=" in set_cookie and "HttpOnly" in set_cookie and "Path=/staff" in set_cookie
    assert "SameSite=strict" in set_cookie and f"Max-Age={staff.SESSION_S}" in set_cookie
    fresh = here.cookies[staff.COOKIE]
    assert fresh != old and fresh.split(".")[0] != old.split(".")[0]  # a new session id, not a new MAC
    assert staff.user_from_cookie(eng, fresh) == "ed" and staff.user_from_cookie(eng, old) is None
    assert _as(url, old).status_code == 303  # the old cookie signs nobody in: to the sign-in page
    page = here.get(url + r.headers["location"], timeout=10)  # this browser carries on, with the new form token
    assert "パスワードを変えました" in page.text
    assert f'name="csrf" value="{staff.csrf_token(eng, fresh)}"' in page.text
    # The form sent again from the old cookie (a resent request): the sign-in page, nothing more changes.
    r = requests.post(url + "/staff/password", data={"csrf": token, "current": PASSWORD, "new": "yet another one",
                                                     "again": "yet another one"},
                      headers={"Origin": url, "Cookie": f"{staff.COOKIE}={old}"}, timeout=10, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login"
    assert staff.login(eng, "ed", NEW)
    # A double tap's second copy, whose session was checked before the first copy was saved: done, not "wrong
    # password", and it carries on in a session of its own too (it typed the password now).
    again = staff.change_own_password(eng, "ed", PASSWORD, NEW)
    assert staff.user_from_cookie(eng, again) == "ed" and again != fresh and staff.login(eng, "ed", NEW)


def test_signing_in_never_takes_over_the_session_the_browser_brought(guarded):
    portal = guarded(RateLimits())
    url, eng = portal.url, portal.app.state.engine
    # An attacker signs in themselves and plants their cookie (or one they made up) in the center's browser.
    attacker, _ = staff_session(url, "other")
    planted = attacker.cookies[staff.COOKIE]
    for brought in (planted, "made-up-id.0123456789abcdef0123456789abcdef"):
        r = requests.post(url + "/staff/login", data={"username": "ed", "password": PASSWORD}, timeout=10,
                          headers={"Cookie": f"{staff.COOKIE}={brought}"}, allow_redirects=False)
        assert r.status_code == 303
        got = r.cookies[staff.COOKIE]
        assert got.split(".")[0] != brought.split(".")[0]  # a session id of its own
        assert staff.user_from_cookie(eng, got) == "ed"
    assert staff.user_from_cookie(eng, planted) is None  # and the session it named ended with the sign-in


def test_signing_in_on_a_shared_pc_ends_the_session_it_was_still_signed_in_with(guarded):
    portal = guarded(RateLimits())
    url, eng = portal.url, portal.app.state.engine
    # "other" left the center's PC signed in; "ed" signs in on it. Other's session ends (its cookie, copied or
    # not, signs nobody in), other's sessions elsewhere stay, and ed's is new.
    pc, _ = staff_session(url, "other")
    phone, _ = staff_session(url, "other")
    left = pc.cookies[staff.COOKIE]
    r = pc.post(url + "/staff/login", data={"username": "ed", "password": PASSWORD}, timeout=10,
                allow_redirects=False)
    assert r.status_code == 303 and staff.user_from_cookie(eng, r.cookies[staff.COOKIE]) == "ed"
    assert staff.user_from_cookie(eng, left) is None and _as(url, left).status_code == 303
    assert staff.user_from_cookie(eng, phone.cookies[staff.COOKIE]) == "other"
