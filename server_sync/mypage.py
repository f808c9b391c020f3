"""My page: a donor's own history and points, only by consent (docs/privacy.md).

- ``GET /me/new`` — where the kiosk's one-time QR code points (``/me/new#<request>``). The signed request
  (:mod:`server_sync.wire.mypage`) is in the fragment, which the browser never sends; the page's script
  (``/me/claim.js``) posts it to ``POST /me/claim``.
- ``POST /me/claim`` — checks the kiosk's signature, the expiry (corrected by that kiosk's known clock
  offset) and that the nonce was never redeemed, then makes a private page and answers its link. A claim
  whose card already has open pages (a token in common) adds its tokens to them too: asking again after a
  pepper rotation, or at a kiosk that still had its own pepper, makes the older links whole.
- ``GET /me/<secret>`` — the card's gifts and points on every kiosk of the city, across pepper epochs.
- ``POST /me/<secret>/revoke`` — closes the page for good; the link then answers 404 like any unknown one.

Only SHA-256 of a secret is stored. The secret is in no log line: server_sync/logfilter.py shortens
every path under ``/me/`` to ``/me/…`` in every record the process makes, uvicorn's access log included
(a reverse proxy in front of the portal must do the same: docs/privacy.md). Answers carry
``Cache-Control: no-store`` and ``Referrer-Policy: same-origin``; the rate limit on ``/me/`` is
server_sync/ratelimit.py's.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from kiosk.ledger.keys import public_from_raw
from server_sync import kiosk_keys, logfilter, pages, pointrules, pools, queries
from server_sync.db import entries, kiosks, mypage_claims, mypage_tokens, mypages, writing
from server_sync.errors import PortalError
from server_sync.wire import mypage as W

PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Robots-Tag": "noindex"}
"""``same-origin``: a link to another site never carries the page's address (its secret) as the referrer, while
the page's own form still sends an Origin the cross-site check (server_sync/security.py) accepts (with
``no-referrer`` a browser sends ``Origin: null`` and the form would be refused)."""
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
FUTURE_SLACK_MS = 5 * 60_000
"""A request may say it was made this far in the portal's future (an unsynced kiosk clock) and still count."""
PRIVATE_PATH = logfilter.MY_PAGE_PATH
"""A path under /me/ that may hold a secret; server_sync/logfilter.py shortens it to ``/me/…`` in every log
record of the process."""


def _now() -> int:
    return time.time_ns() // 1_000_000


def _page_id(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def claim(engine: Engine, text: str, now_ms: int | None = None) -> str:
    """Redeem a kiosk's one-time request; returns the new page's secret. Raises :class:`PortalError`."""
    now = _now() if now_ms is None else now_ms
    try:
        req = W.parse_request(text)
    except W.MyPageRequestError as exc:
        raise PortalError(400, "malformed_request", f"not a my-page request: {exc}") from None
    with engine.connect() as conn:
        k = conn.execute(select(kiosks.c.public_key, kiosks.c.clock_skew_ms, kiosks.c.suspended_ms)
                         .where(kiosks.c.id == req.kiosk_id)).first()
    if k is None:
        raise PortalError(404, "unknown_kiosk", "the kiosk that made this code is not enrolled here")
    if not req.verify(public_from_raw(bytes(k[0]))):
        raise PortalError(403, "bad_signature", "this code was not signed by the kiosk it names")
    kiosk_keys.refuse_revoked_request_key(engine, req.kiosk_id, bytes(k[0]))  # a stolen kiosk's key opens no page
    if k[2] is not None:
        raise PortalError(403, "kiosk_suspended", "the kiosk that made this code is suspended")
    if req.expires_ms - req.issued_ms > W.MAX_TTL_MS or req.expires_ms <= req.issued_ms:
        raise PortalError(400, "bad_lifetime", "a my-page code lives at most 15 minutes")
    skew = int(k[1] or 0)  # kiosk wall clock minus the portal's, from its last heartbeat
    if req.issued_ms - skew > now + FUTURE_SLACK_MS:
        raise PortalError(400, "from_the_future", "this code is dated ahead of the portal's clock")
    if req.expires_ms - skew < now:
        raise PortalError(410, "expired", "this code has expired: ask the kiosk for a new one")
    secret = secrets.token_urlsafe(32)
    tokens = sorted(set(req.tokens))
    try:
        with writing(engine) as conn:
            conn.execute(mypage_claims.insert().values(kiosk_id=req.kiosk_id, nonce=req.nonce.hex(),
                                                       expires_ms=req.expires_ms - skew, used_ms=now))
            # The same card's open pages (a token in common) and the new one all get every token any of them
            # holds: the card, asking again, links what it linked before (across kiosks and epochs).
            # (portal_mypage_tokens holds only open pages' tokens: found by index, not by reading every page.)
            union = set(tokens)
            held: dict[str, set[str]] = {}
            for pid, toks in conn.execute(
                    select(mypages.c.id, mypages.c.tokens).where(mypages.c.id.in_(
                        select(mypage_tokens.c.page_id).where(mypage_tokens.c.token.in_(tokens))))).all():
                held[pid] = set(json.loads(toks))
                union |= held[pid]
            doc = json.dumps(sorted(union))
            page_id = _page_id(secret)
            conn.execute(mypages.insert().values(id=page_id, tokens=doc, kiosk_id=req.kiosk_id, created_ms=now))
            rows = [{"page_id": page_id, "token": t} for t in sorted(union)]
            for pid, have in held.items():
                conn.execute(update(mypages).where(mypages.c.id == pid).values(tokens=doc))
                rows += [{"page_id": pid, "token": t} for t in sorted(union - have)]
            conn.execute(mypage_tokens.insert(), rows)
    except IntegrityError:
        raise PortalError(410, "used", "this code was already used: ask the kiosk for a new one") from None
    return secret


def page_tokens(engine: Engine, secret: str) -> list[str] | None:
    """The card's tokens behind an open page, ``None`` for an unknown or revoked one."""
    if not SECRET_RE.match(secret):
        return None
    with engine.connect() as conn:
        row = conn.execute(select(mypages.c.tokens).where(mypages.c.id == _page_id(secret),
                                                          mypages.c.revoked_ms.is_(None))).first()
    return json.loads(row[0]) if row else None


def revoke(engine: Engine, secret: str) -> bool:
    if not SECRET_RE.match(secret):
        return False
    with writing(engine) as conn:
        n = conn.execute(update(mypages).where(mypages.c.id == _page_id(secret), mypages.c.revoked_ms.is_(None))
                         .values(revoked_ms=_now(), tokens="[]")).rowcount
        conn.execute(delete(mypage_tokens).where(mypage_tokens.c.page_id == _page_id(secret)))
    return bool(n)


def history(engine: Engine, tokens: list[str]) -> dict[str, Any]:
    """The card's gifts and points granted, newest first, on every kiosk: the donor's own view."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(entries.c.kiosk_id, entries.c.seq, entries.c.type, entries.c.time_ms, entries.c.project,
                   entries.c.amount_yen, entries.c.points, entries.c.voided, entries.c.body)
            .where(entries.c.donor.in_(tokens), entries.c.type.in_(("donation", "points_grant", "points_spent")),
                   entries.c.quarantine.is_(None))
            .order_by(entries.c.time_ms.desc(), entries.c.kiosk_id, entries.c.seq.desc())).all()
        sponsors = pools.sponsor_names(conn)  # points exchanged for sponsor gifts (docs/points.md)
        activities = pointrules.activity_titles(conn)  # a grant's activity in words, even one retired since
    items: list[dict[str, Any]] = []
    balance = given = count = 0
    kiosks_seen: set[str] = set()
    for kid, seq, kind, t, project, amount, pts, voided, body in rows:
        item: dict[str, Any] = {"type": kind, "kiosk_id": kid, "seq": seq, "time_ms": t, "points": pts or 0,
                                "voided": bool(voided)}
        if kind == "donation":
            item.update(project=project, amount_yen=amount)
            if not voided:
                balance += pts or 0
                given += amount or 0
                count += 1
        elif kind == "points_spent":  # points turned into a sponsor's gift (docs/points.md)
            pool = json.loads(body)["data"].get("pool", "")
            item.update(project=project, amount_yen=amount, sponsor=sponsors.get(pool, (pool, ""))[0],
                        sponsor_en=sponsors.get(pool, (pool, ""))[1])
            balance -= pts or 0
        else:
            try:
                activity = str(json.loads(body)["data"].get("activity", ""))
            except (ValueError, KeyError, TypeError, AttributeError):
                activity = ""
            # The rules' title (the public rules page's and the kiosk menu's words); the id only for an activity
            # no saved version of the rules names.
            title, title_en = activities.get(activity, (activity, ""))
            item.update(activity=activity, activity_title=title, activity_title_en=title_en or title)
            balance += pts or 0
        kiosks_seen.add(kid)
        items.append(item)
    return {"points_balance": balance, "given_yen": given, "gifts": count, "kiosks": sorted(kiosks_seen),
            "items": items}


def behind(engine: Engine, secret: str, shown: list[str]) -> dict[str, Any]:
    """Which kiosks have told the portal (in a heartbeat) of more ledger entries than it holds: their newest
    records, gifts perhaps among them, have not arrived. Only kiosks the page already names (``shown``, those of
    the card's history) are named; the kiosk the page was made at is said as such (``here``), never by its id
    when the page does not name it already (docs/privacy.md, "My page, step by step")."""
    with engine.connect() as conn:
        made_at = conn.execute(select(mypages.c.kiosk_id).where(mypages.c.id == _page_id(secret))).scalar()
        ask = set(shown) | ({made_at} if made_at else set())
        late = {kid for (kid,) in conn.execute(select(kiosks.c.id).where(
            kiosks.c.id.in_(sorted(ask)), kiosks.c.reported_size > kiosks.c.size))} if ask else set()
    return {"named": sorted(late & set(shown)), "here": made_at in late and made_at not in shown}


def install(app: FastAPI, engine: Engine) -> None:
    logfilter.install()  # create_app has; this page alone must not depend on it

    def _lang(lang: str | None) -> str:
        return "en" if lang == "en" else "ja"

    @app.get("/me/new", response_class=HTMLResponse, tags=["pages"], summary="Where a kiosk's my-page QR code points")
    def mypage_new(lang: str | None = None) -> HTMLResponse:
        return HTMLResponse(pages._render("mypage_new.html", _lang(lang), "/me/new"), headers=PRIVATE)

    @app.get("/me/claim.js", include_in_schema=False)
    def mypage_script() -> Response:
        return Response(CLAIM_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.post("/me/claim", tags=["pages"], summary="Redeem a one-time my-page request for a private link")
    async def mypage_claim(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > 4096:
            raise PortalError(413, "too_large", "request body over 4096 bytes")
        try:
            text = json.loads(raw)["request"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            raise PortalError(400, "malformed_json", 'body must be {"request": "<the code after #>"}') from None
        secret = await run_in_threadpool(claim, engine, text)
        return JSONResponse({"url": f"/me/{secret}"}, headers=PRIVATE)

    @app.get("/me/closed", response_class=HTMLResponse, tags=["pages"], summary="After a my page was closed")
    def mypage_closed(lang: str | None = None) -> HTMLResponse:
        return HTMLResponse(pages._render("mypage_gone.html", _lang(lang), "/me/closed", closed=True),
                            headers=PRIVATE)

    @app.get("/me/{secret}", response_class=HTMLResponse, tags=["pages"], responses={404: {}},
             summary="A donor's own page (private link)")
    def mypage_show(secret: str, lang: str | None = None) -> HTMLResponse:
        lg = _lang(lang)
        tokens = page_tokens(engine, secret)
        if tokens is None:
            return HTMLResponse(pages._render("mypage_gone.html", lg, "/", closed=False), status_code=404,
                                headers=PRIVATE)
        titles = {p["id"]: pages._title(p, lg) for p in queries.projects(engine)}
        h = history(engine, tokens)
        return HTMLResponse(pages._render("mypage.html", lg, f"/me/{secret}", h=h, titles=titles, secret=secret,
                                          late=behind(engine, secret, h["kiosks"])), headers=PRIVATE)

    @app.post("/me/{secret}/revoke", tags=["pages"], responses={404: {}}, summary="Close a my page for good")
    def mypage_revoke(secret: str, lang: str | None = None) -> Response:
        if not revoke(engine, secret):
            return HTMLResponse(pages._render("mypage_gone.html", _lang(lang), "/", closed=False),
                                status_code=404, headers=PRIVATE)
        return RedirectResponse(f"/me/closed?lang={_lang(lang)}", status_code=303, headers=PRIVATE)


CLAIM_JS = """\
// Posts the one-time request from the URL's fragment (never sent to any server by the browser itself)
// and replaces this page with the private link. The fragment is cleared first, so it is not kept in history.
// A second code opened in the same tab (only the fragment changes: no reload) is handled the same way.
(function () {
  var out = document.getElementById("status");
  function say(key) { out.textContent = out.dataset[key] || out.dataset.failed; out.className = "bad"; }
  function run() {
    var req = location.hash.slice(1);
    history.replaceState(null, "", location.pathname + location.search);
    out.className = "";
    if (!req) { say("missing"); return; }
    fetch("/me/claim", {method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({request: req}), credentials: "omit", cache: "no-store"})
      .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
      .then(function (a) {
        if (a[0] === 200 && a[1].url) {
          var lang = new URLSearchParams(location.search).get("lang");
          location.replace(a[1].url + (lang ? "?lang=" + encodeURIComponent(lang) : ""));
        } else { say(a[1].error === "expired" ? "expired" : a[1].error === "used" ? "used" : "failed"); }
      })
      .catch(function () { say("failed"); });
  }
  window.addEventListener("hashchange", run);
  run();
})();
"""
