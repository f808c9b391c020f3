"""Rate limits for the portal, on the PyPI ``limits`` package (moving windows): docs/portal.md, "Rate limits".

Three kinds:

- **by path** (:class:`RateLimitMiddleware`): every request under ``/api/v1/receipts/``, the receipt page
  ``/r/`` and every path under ``/me/`` (the donors' own pages) counts against its client address; over
  the limit is a 429 with ``Retry-After`` before any handler (or database) runs (:func:`too_many`: a page in
  plain Japanese for a citizen's browser, JSON for the API). A new page under one
  of these prefixes is limited without touching this module.
- **staff login** (:class:`LoginGuard`): failed sign-ins are counted per account and per client address.
  A few failures are free; past the *slow* limit an attempt must wait (429 + ``Retry-After``, no password
  is checked, so a flood costs no hashing); past the *lockout* limit the account (or the address) is
  locked until the window has passed, even for the right password. A successful sign-in clears the
  account's slow counter, never its lockout. A wrong *current password* on a signed-in user's own-password page
  (``/staff/password``) is a failed sign-in of that account too, counted and refused by the same guard (its
  account counters only: the user is known): a stolen session, a staff PC left unlocked, gets no more guesses at
  the password there than the sign-in page gives anyone.
- **kiosk enrollment** (:class:`EnrollGuard`): failed redemptions of ``/api/v1/enroll`` (an unknown,
  spent or expired code, or one for another kiosk) are counted per client address; past the limit
  the address must wait (429 + ``Retry-After``) before any code is looked up. A kiosk retrying with a
  good code fails nothing, so it is never held back.

Counters live in ``storage`` (a ``limits`` storage URI). The default ``memory://`` keeps them in each
portal worker process: with N workers behind one proxy an attacker gets up to N times each limit
(connections land on workers at random) and a restart forgets them. Point every worker at one shared
storage (``redis://host:6379``, ``memcached://host:11211``: the ``limits`` extras) to make them exact.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LIMITED_PREFIXES = ("/api/v1/receipts/", "/r/", "/me/")
"""Paths limited per client address (``/me`` itself too)."""


@dataclass(frozen=True)
class RateLimits:
    """Every limit, in the ``limits`` notation ("5/minute", "20 per hour"). Env: KIOSK_PORTAL_RATE_<FIELD>."""

    receipts: str = "60/minute"
    """Receipt lookups (JSON and page) per client address."""
    me: str = "60/minute"
    """Requests under /me/ (a donor's own pages) per client address."""
    login_slow: str = "5/minute"
    """Failed sign-ins per account before each further attempt waits."""
    login_lockout: str = "20/hour"
    """Failed sign-ins per account within which the account is locked (until the hour has passed)."""
    login_ip_slow: str = "20/minute"
    """Failed sign-ins per client address (several staff may share one) before attempts wait."""
    login_ip_lockout: str = "100/hour"
    """Failed sign-ins per client address that lock that address out."""
    enroll: str = "10/minute"
    """Failed kiosk enrollments (a wrong, spent or expired code) per client address before attempts wait."""
    storage: str = "memory://"
    """Where counters live: memory:// is per worker process (see the module docstring)."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RateLimits:
        env = dict(os.environ if env is None else env)
        kw = {f.name: env[f"KIOSK_PORTAL_RATE_{f.name.upper()}"] for f in fields(cls)
              if env.get(f"KIOSK_PORTAL_RATE_{f.name.upper()}")}
        limits = cls(**kw)
        limits.check()
        return limits

    def check(self) -> None:
        """Raise ValueError naming the first limit that does not parse."""
        for f in fields(self):
            if f.name == "storage":
                continue
            try:
                parse(getattr(self, f.name))
            except ValueError:
                raise ValueError(f"KIOSK_PORTAL_RATE_{f.name.upper()}={getattr(self, f.name)!r}: "
                                 "write a limit like 5/minute or 20 per hour") from None


def client_address(scope: Scope, trusted_proxies: Iterable[str] = ()) -> str:
    """The client's address: the socket peer, or the last untrusted hop of ``X-Forwarded-For`` when the peer
    is one of ``trusted_proxies`` (addresses or networks; the reverse proxy in front of the workers)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    nets = networks(trusted_proxies)
    if not nets or not in_networks(peer, nets):
        return str(peer)
    xff = ""
    for k, v in scope.get("headers") or []:
        if k == b"x-forwarded-for":
            xff += ("," if xff else "") + v.decode("latin-1")
    hops = [h.strip() for h in xff.split(",") if h.strip()]
    for hop in reversed(hops):  # the right-most hop a trusted proxy did not add is the client
        if not in_networks(hop, nets):
            return hop[:64]
    return str(peer)


Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def networks(trusted: Iterable[str]) -> Networks:
    """Parse proxy addresses or networks ("127.0.0.1", "10.0.0.0/8"); ValueError names a bad one."""
    return [ipaddress.ip_network(p, strict=False) for p in trusted]


def in_networks(addr: str, nets: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in nets)


class Limiter:
    """A moving-window limiter over one ``limits`` storage."""

    def __init__(self, storage: str = "memory://"):
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage))

    def hit(self, item: RateLimitItem, *keys: str) -> float | None:
        """Count one request; None if allowed, else the seconds until the next one is."""
        if self._limiter.hit(item, *keys):
            return None
        return self.retry_after(item, *keys)

    def allowed(self, item: RateLimitItem, *keys: str) -> float | None:
        """None if one more hit would be allowed (counting nothing), else seconds to wait."""
        if self._limiter.test(item, *keys):
            return None
        return self.retry_after(item, *keys)

    def retry_after(self, item: RateLimitItem, *keys: str) -> float:
        stats = self._limiter.get_window_stats(item, *keys)
        return max(1.0, stats.reset_time - time.time())

    def clear(self, item: RateLimitItem, *keys: str) -> None:
        self._limiter.clear(item, *keys)


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


_WAIT_PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{s}"><title>しばらくお待ちください</title>
<style>body{{font-family:sans-serif;font-size:1.25rem;line-height:1.7;max-width:36rem;margin:2rem auto;padding:0 1rem}}
h1{{font-size:1.6rem}} .en{{color:#555;font-size:1rem;margin-top:2rem}}</style></head>
<body><h1>アクセスが集中しています</h1>
<p>{s}秒ほどたつと、このページを自動で読み込み直します。そのままお待ちください。</p>
<p class="en" lang="en">Too many requests from this network just now. This page reloads by itself in {s} seconds.</p>
</body></html>
"""


def too_many(path: str, wait: float) -> Response:
    """The 429 for a client over a limit. A citizen's page (``/r/…`` opened from a receipt's QR code, ``/me/…``)
    gets a page in plain Japanese that reloads itself when the wait is over: JSON there showed a phone
    ``{"error":"rate_limited",…}`` in English (a lobby's phones, or a carrier's, may share one address). The API
    keeps its JSON error, which the receipt page's own check reads."""
    headers = retry_after_header(wait)
    if path.startswith("/api/"):
        return JSONResponse({"error": "rate_limited", "reason": f"too many requests; retry in {math.ceil(wait)} s"},
                            status_code=429, headers=headers)
    return HTMLResponse(_WAIT_PAGE.format(s=headers["Retry-After"]), status_code=429,
                        headers={**headers, "Cache-Control": "no-store"})


class RateLimitMiddleware:
    """Pure ASGI middleware: 429 + Retry-After for a client over the limit of a limited path."""

    def __init__(self, app: ASGIApp, limiter: Limiter, limits: RateLimits, trusted_proxies: Iterable[str] = ()):
        self.app = app
        self.limiter = limiter
        self.rules: list[tuple[tuple[str, ...], str, RateLimitItem]] = [
            (("/api/v1/receipts/", "/r/"), "receipts", parse(limits.receipts)),
            (("/me/",), "me", parse(limits.me)),
        ]
        self.trusted = list(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            for prefixes, name, item in self.rules:
                if path.startswith(prefixes) or path == prefixes[0].rstrip("/"):
                    wait = self.limiter.hit(item, name, client_address(scope, self.trusted))
                    if wait is not None:
                        await too_many(path, wait)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


@dataclass
class LoginVerdict:
    """Why a sign-in attempt may not go ahead: ``locked`` (lockout) or only slowed, and for how long."""

    locked: bool
    wait_s: float


class LoginGuard:
    """Failed staff sign-ins per account and per client address (see the module docstring). ``ip`` None: the
    account's counters only (the own-password page, whose user is signed in)."""

    def __init__(self, limiter: Limiter, limits: RateLimits):
        self.limiter = limiter
        self.slow, self.lockout = parse(limits.login_slow), parse(limits.login_lockout)
        self.ip_slow, self.ip_lockout = parse(limits.login_ip_slow), parse(limits.login_ip_lockout)

    def _pairs(self, user: str, ip: str | None) -> list[tuple[RateLimitItem, tuple[str, ...], bool]]:
        if ip is None:
            return [(self.lockout, ("login-user", user), True), (self.slow, ("login-user", user), False)]
        return [(self.lockout, ("login-user", user), True), (self.ip_lockout, ("login-ip", ip), True),
                (self.slow, ("login-user", user), False), (self.ip_slow, ("login-ip", ip), False)]

    def check(self, user: str, ip: str | None) -> LoginVerdict | None:
        """None if this attempt may check a password; else how long to wait (before any hashing)."""
        for item, keys, is_lockout in self._pairs(user.lower(), ip):
            wait = self.limiter.allowed(item, *keys)
            if wait is not None:
                return LoginVerdict(is_lockout, wait)
        return None

    def failed(self, user: str, ip: str | None, tries: int = 1) -> None:
        """Count a refused attempt that checked ``tries`` passwords: one failure each (one at a time: a hit of
        several that would pass the limit is not counted at all by ``limits``)."""
        for _ in range(tries):
            for item, keys, _lockout in self._pairs(user.lower(), ip):
                self.limiter.hit(item, *keys)

    def succeeded(self, user: str) -> None:
        # The right password ends a run of typos; the hour's lockout count stays, so guessing between
        # one's own successful sign-ins gains nothing.
        self.limiter.clear(self.slow, "login-user", user.lower())


class EnrollGuard:
    """Failed enrollment-code redemptions per client address (see the module docstring)."""

    FAILURES = frozenset({"unknown_code", "code_used", "code_expired", "code_for_other_kiosk", "already_enrolled"})
    """The refusals that count: what a guessed code (or a guessed kiosk id) is answered."""

    def __init__(self, limiter: Limiter, limits: RateLimits):
        self.limiter = limiter
        self.item = parse(limits.enroll)

    def check(self, ip: str) -> float | None:
        """None if this attempt may look a code up; else the seconds to wait."""
        return self.limiter.allowed(self.item, "enroll-ip", ip)

    def failed(self, ip: str) -> None:
        self.limiter.hit(self.item, "enroll-ip", ip)


def login_message(verdict: LoginVerdict) -> str:
    """What the sign-in page says to a refused attempt: plain Japanese first, then English."""
    if verdict.locked:
        minutes = max(1, math.ceil(verdict.wait_s / 60))
        return (f"サインインの失敗が続いたため、一時的にロックしています。{minutes}分後にもう一度お試しください。"
                f" / Too many failed sign-ins: locked for now. Try again in {minutes} min.")
    secs = max(1, math.ceil(verdict.wait_s))
    return (f"サインインの失敗が続いています。{secs}秒待ってからもう一度お試しください。"
            f" / Several failed sign-ins: wait {secs} s and try again.")
