"""The public pages worth sharing: the top page (``/``), a page per policy area (``/a/{area}``) and per project
(``/p/{id}``), with charts (server_sync/charts.py), each project's movie and its poster frame; and the
charts of the staff dashboard.

Japanese first, ``?lang=en`` for English (the layout's language link). Donations are shown anonymously:
a date and an amount (and, on the top and area pages, the project), never a time to the minute, a kiosk,
a token or a receipt code.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Engine

from server_sync import catalog, charts, movies, pages, pools, queries
from server_sync.i18n import N_
from server_sync.wire.numbers import decimal

DAYS = 14
WEEKS = 12
RECENT = 10


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def project_movies(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each project's newest published movie, ``{project: {"sha256", "url", "poster_url", ...}}``, as the movie
    maker publishes them (server_sync/movies.py); ``poster_url`` None for a video stored before posters."""
    return movies.published_movies(engine)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one byte range of a ``Range: bytes=a-b`` header (``a-``, ``-n`` too) as (first, last) inclusive,
    or None if it cannot be served (several ranges, past the end, not bytes). Browsers fetch movies in ranges
    to seek, and Safari on a phone plays a video only from a server that answers them."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec or "-" not in spec or size == 0:
        return None
    a, _, b = (x.strip() for x in spec.partition("-"))
    # ASCII digits only (server_sync/wire/numbers.py): "bytes=²-" is a range nobody can serve, not a 500.
    if not a:
        n = decimal(b, leading_zeros=True)
        if not n:
            return None
        return max(0, size - n), size - 1
    first_n, last_n = decimal(a, leading_zeros=True), decimal(b, leading_zeros=True) if b else size - 1
    if first_n is None or last_n is None:
        return None
    first, last = first_n, min(last_n, size - 1)
    return (first, last) if first <= last else None


def media_response(range_header: str | None, data: bytes, ctype: str, headers: dict[str, str]) -> Response:
    """A stored movie or picture, whole or in the one byte range asked for (206; 416 when it cannot be served).
    ``headers`` (caching) go on every answer, with ``Accept-Ranges``."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    if range_header:
        span = byte_range(range_header, len(data))
        if span is None:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
        return Response(data[span[0]:span[1] + 1], status_code=206, media_type=ctype,
                        headers={**headers, "Content-Range": f"bytes {span[0]}-{span[1]}/{len(data)}"})
    return Response(data, media_type=ctype, headers=headers)


# --- charts -------------------------------------------------------------------------------------------
def _text(lang: str) -> Any:
    return lambda message, **kw: pages.staff_text(message, lang, **kw)


def _labels(data: dict[str, Any], lang: str) -> tuple[list[str], list[str]]:
    """Axis labels (12/3, or the week's Monday 11/30〜) and full dates for the tooltips."""
    out, tips = [], []
    for s in data["starts"]:
        m, d = int(s[5:7]), int(s[8:10])
        if data["step"] == "day":
            out.append(f"{m}/{d}")
            tips.append(s)
        else:
            out.append(f"{m}/{d}–" if lang == "en" else f"{m}/{d}〜")
            tips.append(pages.staff_text(N_("week from %(day)s"), lang, day=s))
    return out, tips


def _words(lang: str) -> dict[str, str]:
    """The words of a chart's table, in the page's language."""
    return {"table": _tr(lang, N_("The numbers as a table")), "total": _tr(lang, N_("total")),
            "given": _tr(lang, N_("given")), "goal": _tr(lang, N_("goal"))}


def series_chart(chart_id: str, title: str, data: dict[str, Any], lang: str) -> dict[str, Any]:
    labels, tips = _labels(data, lang)
    series = [{"key": s["key"], "label": s["title_en"] if lang == "en" else s["title"], "yen": s["yen"],
               "count": s["count"]} for s in data["series"]]
    svg = charts.stacked_bars(chart_id, title, labels, series, lang, _text(lang), tooltip_labels=tips)
    return {"id": chart_id, "title": title, "svg": svg, "legend": charts.legend(chart_id, series), "kind": "series",
            "labels": tips, "series": series,
            "words": _words(lang),
            "totals": [sum(s["yen"][i] for s in series) for i in range(len(labels))]}


def progress_chart(chart_id: str, title: str, items: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    rows = [{"key": it.get("id") or it.get("area"), "label": pages._title(it, lang), "total_yen": it["total_yen"],
             "goal_yen": it.get("goal_yen") or None, "progress": it.get("progress"), "percent": it.get("percent")}
            for it in items]
    svg = charts.progress_bars(chart_id, title, rows, lang, _text(lang))
    return {"id": chart_id, "title": title, "svg": svg, "kind": "progress", "rows": rows, "words": _words(lang)}


def _tr(lang: str, message: str, **kw: Any) -> str:
    return pages.staff_text(message, lang, **kw)


def dashboard_charts(engine: Engine, lang: str, group_id: str | None = None) -> list[dict[str, Any]]:
    """The staff dashboard's charts; with ``group_id`` (a group editor's) that group's projects only."""
    now = _now_ms()
    project_ids = None
    if group_id is not None:
        with engine.connect() as conn:
            project_ids = [p["id"] for p in catalog.list_projects(conn) if p["group_id"] == group_id]
    daily = queries.donation_series(engine, now, step="day", buckets=DAYS,
                                    by="area" if project_ids is None else "project", project_ids=project_ids)
    weekly = queries.donation_series(engine, now, step="week", buckets=WEEKS, by="project", project_ids=project_ids)
    ps = [p for p in queries.projects(engine) if project_ids is None or p["id"] in project_ids]
    return [series_chart("chart-daily", _tr(lang, N_("Donations per day, last %(n)s days"), n=DAYS), daily, lang),
            series_chart("chart-weekly", _tr(lang, N_("Donations per week by project, last %(n)s weeks"), n=WEEKS),
                         weekly, lang),
            progress_chart("chart-goals", _tr(lang, N_("Progress to each goal")), ps, lang)]


# --- the routes ----------------------------------------------------------------------------------------
def install(app: FastAPI, engine: Engine) -> None:
    def lang_of(lang: str | None) -> str:
        return "en" if lang == "en" else "ja"

    @app.get("/", response_class=HTMLResponse, tags=["pages"])
    def home(lang: str | None = None) -> str:
        lg = lang_of(lang)
        now = _now_ms()
        ps, ars = queries.projects(engine), queries.areas(engine)
        cs = [series_chart("chart-daily", _tr(lg, N_("Donations per day by policy area, last %(n)s days"), n=DAYS),
                           queries.donation_series(engine, now, step="day", buckets=DAYS), lg),
              series_chart("chart-weekly", _tr(lg, N_("Donations per week by policy area, last %(n)s weeks"),
                                               n=WEEKS),
                           queries.donation_series(engine, now, step="week", buckets=WEEKS), lg),
              progress_chart("chart-goals", _tr(lg, N_("Progress to each goal")), ps, lg)]
        return pages.index(queries.totals(engine), ars, ps, queries.recent(engine, limit=RECENT), lg, charts=cs,
                           movies=project_movies(engine))

    @app.get("/a/{area}", response_class=HTMLResponse, tags=["pages"], responses={404: {}})
    def area_html(area: str, lang: str | None = None) -> HTMLResponse:
        lg = lang_of(lang)
        a = next((x for x in queries.areas(engine) if x["area"] == area), None)
        if a is None:
            return HTMLResponse(pages.not_found_page(lg), status_code=404)
        now = _now_ms()
        ps = [p for p in queries.projects(engine) if p["area"] == area]
        ids = [p["id"] for p in ps]
        cs = [series_chart("chart-daily", _tr(lg, N_("Donations per day by project, last %(n)s days"), n=DAYS),
                           queries.donation_series(engine, now, by="project", project_ids=ids), lg),
              series_chart("chart-weekly", _tr(lg, N_("Donations per week by project, last %(n)s weeks"), n=WEEKS),
                           queries.donation_series(engine, now, step="week", buckets=WEEKS, by="project",
                                                   project_ids=ids), lg),
              progress_chart("chart-goals", _tr(lg, N_("Progress to each goal")), ps, lg)]
        return HTMLResponse(pages.area_page(a, ps, queries.recent(engine, ids, limit=RECENT), lg, charts=cs,
                                            movies=project_movies(engine)))

    @app.get("/p/{project_id}", response_class=HTMLResponse, tags=["pages"], responses={404: {}})
    def project_html(project_id: str, lang: str | None = None) -> HTMLResponse:
        lg = lang_of(lang)
        p = next((x for x in queries.projects(engine) if x["id"] == project_id), None)
        if p is None:
            return HTMLResponse(pages.not_found_page(lg), status_code=404)
        now = _now_ms()
        cs = [series_chart("chart-daily", _tr(lg, N_("Donations per day, last %(n)s days"), n=DAYS),
                           queries.donation_series(engine, now, by="project", project_ids=[project_id]), lg),
              series_chart("chart-weekly", _tr(lg, N_("Donations per week, last %(n)s weeks"), n=WEEKS),
                           queries.donation_series(engine, now, step="week", buckets=WEEKS, by="project",
                                                   project_ids=[project_id]), lg)]
        with engine.connect() as conn:  # sponsor money through points, shown apart from cash (docs/points.md)
            p = {**p, "sponsored": pools.project_sponsors(conn, project_id)}
        return HTMLResponse(pages.project_page(p, queries.recent(engine, [project_id], limit=RECENT), lg, charts=cs,
                                               movie=project_movies(engine).get(project_id)))

