"""Browser-facing protections of every portal response: security headers and the cross-site check on forms
(docs/portal.md, "Security").

:class:`SecurityMiddleware` is pure ASGI and wraps the whole app, so a page or form added later by any
module gets the same treatment without doing anything:

- **headers** on every response (a handler's own value wins, e.g. the receipt page's ``no-referrer``):
  ``Content-Security-Policy`` (scripts only from the portal itself: no inline script, no CDN),
  ``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``, ``Referrer-Policy``,
  ``X-Content-Type-Options: nosniff``, and ``Strict-Transport-Security`` when the request arrived over
  TLS (directly, or per ``X-Forwarded-Proto`` from a trusted proxy) or ``hsts="always"``;
- **cross-site check**: a POST/PUT/PATCH/DELETE outside the signed kiosk API (``/api/``) whose ``Origin``
  (or, without one, ``Referer``) is not the portal's own origin is refused with 403 before any handler
  runs. Browsers send ``Origin`` on every cross-site POST; a request with neither header (a script,
  curl) is left to the per-session CSRF token every staff form carries (server_sync/staff.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server_sync.ratelimit import in_networks, networks

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
"""Inline styles stay allowed (the layout's <style> and progress-bar widths); inline script never is."""

DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "img-src 'self' data: https://fastapi.tiangolo.com; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
"""Only for FastAPI's generated API pages (/docs, /redoc), which load Swagger UI from a CDN; they hold no data."""
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
"""Exactly these addresses: a prefix would give the looser policy to any page whose address began so."""

HSTS = "max-age=31536000"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSED = ("<!doctype html><meta charset=utf-8><title>403</title><p>別のサイトから送られたフォームは受け付けません。"
           "ポータルのページを開き直して、もう一度送ってください。</p><p>A form sent from another site is refused: "
           "open the portal's page again and resend it.</p>")


def _origin_of(url: str) -> str | None:
    try:
        u = urlsplit(url)
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or not u.hostname:
        return None
    port = u.port
    default = {"http": 80, "https": 443}[u.scheme]
    host = u.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{u.scheme}://{host}" + (f":{port}" if port and port != default else "")


class SecurityMiddleware:
    """Security headers on every response and the Origin/Referer check on unsafe methods."""

    def __init__(self, app: ASGIApp, trusted_proxies: Iterable[str] = (), hsts: str = "auto"):
        if hsts not in ("auto", "always", "never"):
            raise ValueError("hsts must be auto, always or never")
        self.app = app
        self.nets = networks(trusted_proxies)
        self.hsts = hsts

    def _https(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if scope.get("scheme") == "https":
            return True
        peer = (scope.get("client") or ("", 0))[0]
        if self.nets and in_networks(peer, self.nets):
            proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
            return proto == "https"
        return False

    def own_origin(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        host = headers.get(b"host", b"").decode("latin-1")
        scheme = "https" if self._https(scope, headers) else "http"
        return _origin_of(f"{scheme}://{host}/") if host else None

    def cross_site(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        """True when the request names another site as its origin (or an opaque one)."""
        claimed = headers.get(b"origin")
        if claimed is None:
            ref = headers.get(b"referer")
            if ref is None:
                return False  # not from a browser form, or stripped: the CSRF token decides
            claimed_origin = _origin_of(ref.decode("latin-1"))
        else:
            claimed_origin = _origin_of(claimed.decode("latin-1"))  # "null" parses to None: refused
        own = self.own_origin(scope, headers)
        if claimed_origin is None or own is None:
            return True
        c_scheme, c_host = claimed_origin.split("://", 1)
        # The same host is the same site; its https page may post to a portal that sees plain http (a proxy
        # that does not say X-Forwarded-Proto), never the other way round.
        return not (c_host == own.split("://", 1)[1] and (c_scheme == "https" or own.startswith("http://")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for k, v in scope.get("headers") or []:
            headers.setdefault(k.lower(), v)
        path = scope.get("path", "")
        https = self._https(scope, headers)
        docs = path in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for name, value in (("Content-Security-Policy", DOCS_CSP if docs else CSP),
                                    ("X-Frame-Options", "DENY"),
                                    ("Referrer-Policy", "strict-origin-when-cross-origin"),
                                    ("X-Content-Type-Options", "nosniff"),
                                    ("Cross-Origin-Opener-Policy", "same-origin")):
                    if name not in h:
                        h[name] = value
                if self.hsts == "always" or (self.hsts == "auto" and https):
                    h.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        if scope.get("method") in UNSAFE and not path.startswith("/api/") and self.cross_site(scope, headers):
            await HTMLResponse(REFUSED, status_code=403)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
