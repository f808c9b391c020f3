"""Point rules on the portal (issue #17, docs/points.md).

- ``GET /points/rules``: the written rules in force, public, in words a citizen can read (``?lang=en``);
- ``GET /staff/point-rules``: administrators edit them: points per ¥100 given, and the volunteer activity
  types with their fixed points and a description; the versions so far;
- ``POST /staff/point-rules``: checked whole, through the operator UI's form helper (CSRF, roles); a saved
  version is published to every kiosk in the signed config (server_sync/pointrules.py).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Engine

from server_sync import pages, pointrules, staff
from server_sync.i18n import N_
from server_sync.operator import BLANK_ROWS, Errors, StaffUI, _int, _one, _slug, _text
from server_sync.wire.configdoc import ConfigDocError

NOTICES = {"saved": N_("Saved. Kiosks follow the new point rules at their next sync.")}


def check_rules(form: dict[str, list[str]]) -> tuple[int | None, list[dict[str, Any]], Errors]:
    """The rules form, field by field: (points per ¥100, activities, errors)."""
    e: Errors = {}
    rate = _int(form, "points_per_100_yen", e, 0, 1000, N_("Enter a number from %(lo)s to %(hi)s."))
    out: list[dict[str, Any]] = []
    i = 0
    while f"r{i}_id" in form:
        p = f"r{i}_"
        i += 1
        if not any(_one(form, p + k) for k in ("id", "title", "points", "description")):
            continue
        aid = _slug(form, p + "id", e)
        title = _text(form, p + "title", e, required=True, required_msg=N_("Enter the activity's name."))
        pts = _int(form, p + "points", e, 1, 10_000, N_("Enter a number from %(lo)s to %(hi)s."))
        desc = _text(form, p + "description", e, required=True, max_len=1000,
                     required_msg=N_("Say in a sentence what a volunteer does for these points."))
        out.append({"id": aid, "title": title, "title_en": _text(form, p + "title_en", e), "points": pts or 1,
                    "description": desc, "description_en": _text(form, p + "description_en", e, max_len=1000)})
    ids = [a["id"] for a in out]
    for n, a in enumerate(out):
        if ids.count(a["id"]) > 1:
            e.setdefault(f"r{n}_id", (N_("This ID is used twice."), {}))
    return rate, out, e


def install(app: FastAPI, engine: Engine) -> None:
    ui: StaffUI = app.state.staff_ui

    def tr(lang: str, errors: Errors) -> dict[str, str]:
        return {k: pages.staff_text(m, lang, **v) for k, (m, v) in errors.items()}

    def rules_page(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]] | None = None,
                   errors: Errors | None = None, notice: str = "") -> str:
        with engine.connect() as conn:
            cur = pointrules.current(conn)
            versions = pointrules.history(conn)
        if form is None:
            form = {"points_per_100_yen": [str(cur["points_per_100_yen"] if cur else 1)]}
            for i, a in enumerate((cur or {}).get("activities", [])):
                form.update({f"r{i}_{k}": [str(a.get(k, ""))]
                             for k in ("id", "title", "title_en", "points", "description", "description_en")})
        n = sum(1 for k in form if re.fullmatch(r"r\d+_id", k))
        return pages.staff_page("staff_point_rules.html", lang, form=form, errors=tr(lang, errors or {}),
                                rows=range(n + BLANK_ROWS), current=cur, versions=versions, notice=notice,
                                nav="point_rules", **c)

    def notice_of(request: Request, lang: str) -> str:
        key = request.query_params.get("done", "")
        return pages.staff_text(NOTICES[key], lang) if key in NOTICES else ""

    @app.get("/staff/point-rules", response_class=HTMLResponse, tags=["staff"])
    def point_rules(request: Request) -> Response:
        return ui.page(request, "admin", lambda w, lg, c: rules_page(w, lg, c, notice=notice_of(request, lg)))

    @app.post("/staff/point-rules", response_class=HTMLResponse, tags=["staff"])
    async def point_rules_save(request: Request) -> Response:
        def handle(who: staff.Who, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            rate, acts, e = check_rules(form)
            if not e and rate is not None:
                try:
                    pointrules.save(engine, rate, acts, by=who.name)
                except ConfigDocError as exc:
                    e["rules"] = (N_("Could not publish: %(reason)s"), {"reason": str(exc)})
            if e:
                return rules_page(who, lang, c, form, e)
            return ui.done("/staff/point-rules", "saved")
        return await ui.post(request, "admin", handle)

    @app.get("/points/rules", response_class=HTMLResponse, tags=["pages"])
    def public_rules(lang: str | None = None) -> HTMLResponse:
        lg = "en" if lang == "en" else "ja"
        with engine.connect() as conn:
            cur = pointrules.current(conn)
        body = pages._render("point_rules.html", lg, "/points/rules", rules=cur)
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})
