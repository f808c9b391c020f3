"""The center's own contact: its name, its phone number and a short note (opening hours, where to ask), which
administrators set on ``/staff/center`` and citizens read where a page tells them to ask the center (the receipt
page, when a receipt does not check: docs/portal.md, "The center's contact").

Kept as one row of ``portal_settings`` (JSON, with the time it was saved and by whom), so that a save is one
write and a form opened before a colleague's save is caught (its hidden ``seen``). Text only: shown escaped, never
put in a link or an address. Nothing is set on a new portal, and the pages then leave the line out.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from server_sync import pages, staff
from server_sync.db import settings, writing
from server_sync.i18n import N_
from server_sync.movies import has_control
from server_sync.operator import Errors, StaffUI, _seen, _text, stale_rows, tr

SETTING = "center_contact"
FIELDS = ("name", "phone", "note")
MAX_LEN = {"name": 100, "phone": 30, "note": 200}
# The form's fields as the stale box names them (gettext ids), in the form's order.
LABELS = [("name", N_("Name of the center")), ("phone", N_("Phone number")),
          ("note", N_("Opening hours, or how else to reach the center"))]
PHONE_CHARS = frozenset("0123456789+-() ")
# Digits, hyphens, brackets and spaces as a Japanese keyboard types them, read as their plain forms.
_WIDE = str.maketrans("０１２３４５６７８９＋（）　‐－−ー―", "0123456789+() -----")
PHONE_BAD = N_("Use digits and hyphens only, e.g. 03-1234-5678.")
CONTROL_BAD = N_("Line breaks, tabs and invisible control characters cannot be used: write it on one line.")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _parse(raw: str | None) -> dict[str, Any]:
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    out: dict[str, Any] = {k: str(doc.get(k) or "")[:MAX_LEN[k]] for k in FIELDS}
    out["updated_ms"] = doc.get("updated_ms") if isinstance(doc.get("updated_ms"), int) else 0
    out["by"] = str(doc.get("by") or "")
    return out


def read(conn: Connection) -> dict[str, Any]:
    """The stored contact: ``name``, ``phone``, ``note`` ("" when not set), ``updated_ms`` (0: never saved), ``by``."""
    return _parse(conn.execute(select(settings.c.value).where(settings.c.name == SETTING)).scalar())


def contact(engine: Engine) -> dict[str, str] | None:
    """What citizens' pages show: the fields that are set, or None when none is (the pages leave the line out)."""
    with engine.connect() as conn:
        c = read(conn)
    shown = {k: c[k] for k in FIELDS}
    return shown if any(shown.values()) else None


def check(form: dict[str, list[str]]) -> tuple[dict[str, str], Errors]:
    """The form's fields, trimmed (a phone number typed with full-width digits read as plain ones), and what is
    wrong with each. All may be empty: an empty form takes the contact off the citizens' pages."""
    e: Errors = {}
    v = {k: _text(form, k, e, max_len=MAX_LEN[k]) for k in FIELDS}
    for k in FIELDS:
        if k not in e and has_control(v[k]):
            e[k] = (CONTROL_BAD, {})
    phone = " ".join(v["phone"].translate(_WIDE).split())
    if "phone" not in e and phone and (not set(phone) <= PHONE_CHARS or not any(ch.isdigit() for ch in phone)):
        e["phone"] = (PHONE_BAD, {})
    v["phone"] = phone
    return v, e


class Changed(Exception):
    """Another administrator saved the contact after the form was opened; ``now``: what is stored now."""

    def __init__(self, now: dict[str, Any]):
        super().__init__("changed")
        self.now = now


def save(engine: Engine, values: dict[str, str], by: str, seen: int | None) -> None:
    """Store ``values`` (checked by :func:`check`). ``seen``: the ``updated_ms`` the form was opened at (None: a
    form without it, saved over whatever is stored). The same content sent twice (a double tap, a resent request)
    is saved once and is no change; a colleague's save since ``seen`` raises :class:`Changed`, nothing saved."""
    with writing(engine) as conn:
        # The row first (a no-op when it is there), then read it locked: two saves at once are taken in turn.
        ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(settings)
        conn.execute(ins.values(name=SETTING, value="{}").on_conflict_do_nothing(index_elements=["name"]))
        raw = conn.execute(select(settings.c.value).where(settings.c.name == SETTING).with_for_update()).scalar()
        now = _parse(raw)
        if all(now[k] == values[k] for k in FIELDS):
            return  # already so: this form's first copy, or the same words typed twice
        if seen is not None and seen != now["updated_ms"]:
            raise Changed(now)
        doc = {**{k: values[k] for k in FIELDS}, "updated_ms": max(_now_ms(), now["updated_ms"] + 1), "by": by[:64]}
        conn.execute(settings.update().where(settings.c.name == SETTING)
                     .values(value=json.dumps(doc, ensure_ascii=False, sort_keys=True)))


NOTICES = {"saved": N_("Saved. The receipt pages show the center's contact as it is now."),
           "cleared": N_("Saved. No contact is set: the receipt pages say to ask at the center, without a phone "
                         "number.")}


def install(app: FastAPI, engine: Engine) -> None:
    """``GET/POST /staff/center`` (administrators), through the operator UI's helpers (sign-in, role, CSRF)."""
    ui: StaffUI = app.state.staff_ui

    def center_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]] | None = None,
                    errors: Errors | None = None, notice: str = "",
                    stale: list[dict[str, str]] | None = None) -> str:
        with engine.connect() as conn:
            now = read(conn)
        if form is None:
            form = {k: [now[k]] for k in FIELDS}
            form["seen"] = [str(now["updated_ms"])]
        return pages.staff_page("staff_center.html", lang, form=form, now=now, notice=notice, stale=stale,
                                errors=tr(lang, errors or {}),
                                max_len=MAX_LEN, nav="center", **c)

    @app.get("/staff/center", response_class=HTMLResponse, tags=["staff"])
    def center_settings(request: Request) -> Response:
        def render(who: staff.Who, lang: str, c: dict[str, Any]) -> str:
            key = request.query_params.get("done", "")
            return center_page(who, lang, c, notice=pages.staff_text(NOTICES[key], lang) if key in NOTICES else "")
        return ui.page(request, "admin", render)

    @app.post("/staff/center", response_class=HTMLResponse, tags=["staff"])
    async def center_settings_save(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            values, e = check(form)
            if e:
                return center_page(who, lang, c, form, e)
            try:
                save(engine, values, who.name, _seen(form))
            except Changed as changed:
                # A colleague saved since this page was opened: the form shows what is stored now (and its version);
                # what was typed stays beside it, to copy. Saving again is a deliberate choice.
                now = {k: [changed.now[k]] for k in FIELDS} | {"seen": [str(changed.now["updated_ms"])]}
                typed = {**form, "phone": [values["phone"]]}
                rows = stale_rows(LABELS, typed, now, lang)
                return ui.html(center_page(who, lang, c, now, stale=rows), 409)
            return ui.done("/staff/center", "saved" if any(values.values()) else "cleared")
        return await ui.post(request, "admin", handle)
