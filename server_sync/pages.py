"""Server-rendered HTML: Japanese first (``?lang=en`` for English), small, no scripts.

Rendering is plain Python with :func:`html.escape` on every value, so the portal needs no template
engine; each page is a function of the read models in :mod:`server_sync.queries`.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from importlib import resources
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from server_sync.queries import AREAS

TZ = ZoneInfo("Asia/Tokyo")
CSS = resources.files("server_sync").joinpath("static/portal.css").read_text("utf-8")

T = {
    "ja": {
        "site": "市民活動 寄付ポータル", "total": "みんなの寄付", "donations": "件", "areas": "政策分野ごとの合計",
        "projects": "プロジェクト", "recent": "最近の寄付（匿名）", "goal": "目標", "none": "まだ寄付はありません",
        "receipt": "寄付の受領証", "verified": "検証済み", "verified_long": "端末 {k} の台帳に記録され、署名付きチェックポイント"
        "（{n} 件）への包含証明で確認しました。", "pending": "端末の次のチェックポイントを待っています（記録は受信済み）。",
        "notverified": "検証できませんでした", "history": "このカードの匿名の履歴", "points": "ポイント残高",
        "voided": "取消", "grant": "ボランティア", "unknown": "見つかりません", "back": "トップへ",
        "amount": "金額", "when": "日時", "project": "プロジェクト", "kiosk": "端末", "lang": "English",
        "not_found_receipt": "この受領証コードは見つかりません。端末から送信されるまでしばらくかかることがあります。",
        "area": "分野",
    },
    "en": {
        "site": "Civic donation portal", "total": "Given by our city", "donations": "donations",
        "areas": "Totals by policy area", "projects": "Projects", "recent": "Recent donations (anonymous)",
        "goal": "goal", "none": "No donations yet", "receipt": "Donation receipt", "verified": "Verified",
        "verified_long": "Recorded in kiosk {k}'s ledger, checked with an inclusion proof against its signed "
        "checkpoint of {n} entries.", "pending": "Waiting for the kiosk's next checkpoint (the entry is received).",
        "notverified": "Could not verify", "history": "This card's anonymous history", "points": "Point balance",
        "voided": "voided", "grant": "volunteering", "unknown": "Not found", "back": "Home", "amount": "Amount",
        "when": "When", "project": "Project", "kiosk": "Kiosk", "lang": "日本語",
        "not_found_receipt": "This receipt code is not known. A kiosk may take a while to send it.", "area": "Area",
    },
}


def when(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, TZ).strftime("%Y-%m-%d %H:%M")


def yen(v: int | None) -> str:
    return f"¥{(v or 0):,}"


def _bar(progress: float | None) -> str:
    if progress is None:
        return ""
    return f'<div class="bar" role="progressbar" aria-valuenow="{round(progress * 100)}" aria-valuemin="0" ' \
           f'aria-valuemax="100"><span style="width:{progress * 100:.1f}%"></span></div>'


def page(title: str, body: str, lang: str = "ja", path: str = "/", staff: bool = False) -> str:
    other = "en" if lang == "ja" else "ja"
    t = T[lang]
    nav = (f'<nav><a href="/?lang={lang}">{escape(t["back"])}</a> · '
           f'<a href="{escape(path)}?lang={other}" hreflang="{other}">{escape(t["lang"])}</a></nav>')
    if staff:
        nav = ('<nav><a href="/staff">fleet</a> · <a href="/staff/reconciliation">reconciliation</a> · '
               '<a href="/staff/points">points</a> · <form method="post" action="/staff/logout" '
               'style="display:inline"><button>logout</button></form></nav>')
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{escape(title)}</title><style>{CSS}</style></head><body>'
            f'<header><h1>{escape(t["site"] if not staff else "Portal staff")}</h1>{nav}</header>'
            f'<main>{body}</main></body></html>')


def _title(p: dict[str, Any], lang: str) -> str:
    return p["title_en"] if lang == "en" else p["title"]


def _recent(items: Iterable[dict[str, Any]], titles: dict[str, str], t: dict[str, str]) -> str:
    rows = "".join(f"<li>{escape(when(r['time_ms']))} · {escape(titles.get(r['project'], r['project'] or ''))} · "
                   f"<strong>{escape(yen(r['amount_yen']))}</strong></li>" for r in items)
    return f'<ul class="plain">{rows}</ul>' if rows else f'<p class="muted">{escape(t["none"])}</p>'


def index(tot: dict[str, Any], areas: list[dict[str, Any]], projects: list[dict[str, Any]],
          recent: list[dict[str, Any]], lang: str) -> str:
    t = T[lang]
    titles = {p["id"]: _title(p, lang) for p in projects}
    area_rows = "".join(
        f'<li><strong>{escape(a["title_en"] if lang == "en" else a["title"])}</strong> '
        f'{escape(yen(a["total_yen"]))} <span class="muted">({a["count"]} {escape(t["donations"])})</span>'
        f'{_bar(a["progress"])}</li>' for a in areas)
    proj_rows = "".join(
        f'<li><a href="/p/{escape(p["id"])}?lang={lang}"><strong>{escape(_title(p, lang))}</strong></a> '
        f'<span class="muted">{escape(p["group"])}</span><br>{escape(yen(p["total_yen"]))}'
        + (f' / {escape(t["goal"])} {escape(yen(p["goal_yen"]))}' if p["goal_yen"] else "")
        + f' <span class="muted">({p["count"]} {escape(t["donations"])})</span>{_bar(p["progress"])}</li>'
        for p in projects)
    body = (f'<section><h2>{escape(t["total"])}</h2><div class="big" id="total">{escape(yen(tot["total_yen"]))}</div>'
            f'<div class="muted">{tot["count"]} {escape(t["donations"])}</div></section>'
            f'<section><h2>{escape(t["areas"])}</h2><ul class="plain">{area_rows}</ul></section>'
            f'<section><h2>{escape(t["projects"])}</h2><ul class="plain" id="projects">{proj_rows}</ul></section>'
            f'<section><h2>{escape(t["recent"])}</h2>{_recent(recent, titles, t)}</section>')
    return page(t["site"], body, lang, "/")


def project_page(p: dict[str, Any], recent: list[dict[str, Any]], lang: str) -> str:
    t = T[lang]
    area = AREAS.get(p["area"] or "", ("", ""))
    body = (f'<section><h2>{escape(_title(p, lang))}</h2><p class="muted">{escape(p["group"])} · '
            f'{escape(t["area"])}: {escape(area[1] if lang == "en" else area[0])}</p>'
            f'<div class="big">{escape(yen(p["total_yen"]))}</div>'
            + (f'<div class="muted">{escape(t["goal"])} {escape(yen(p["goal_yen"]))}</div>' if p["goal_yen"] else "")
            + f'{_bar(p["progress"])}<p class="muted">{p["count"]} {escape(t["donations"])}</p></section>'
            f'<section><h2>{escape(t["recent"])}</h2>{_recent(recent, {p["id"]: _title(p, lang)}, t)}</section>')
    return page(_title(p, lang), body, lang, f"/p/{p['id']}")


def receipt_page(r: dict[str, Any] | None, code: str, titles: dict[str, str], lang: str) -> str:
    t = T[lang]
    if r is None:
        return page(t["unknown"], f'<section><h2>{escape(t["unknown"])}</h2>'
                                  f'<p>{escape(t["not_found_receipt"])}</p></section>', lang, f"/r/{code}")
    d, v = r["donation"], r["verification"]
    if v.get("verified"):
        status = (f'<p class="ok" id="verified">✓ {escape(t["verified"])}</p><p>'
                  f'{escape(t["verified_long"].format(k=d["kiosk_id"], n=v["checkpoint_size"]))}</p>'
                  f'<p class="muted">root <code>{escape(v["checkpoint_root"])}</code></p>')
    elif v.get("status") == "awaiting_checkpoint":
        status = f'<p class="muted" id="verified">{escape(t["pending"])}</p>'
    else:
        status = f'<p class="bad" id="verified">{escape(t["notverified"])} ({escape(v.get("status", ""))})</p>'
    rows = []
    for h in r["history"]:
        if h["type"] == "donation":
            what = escape(titles.get(h["project"], h["project"] or "")) + (
                f' <span class="bad">{escape(t["voided"])}</span>' if h["voided"] else "")
            amount = escape(yen(h["amount_yen"]))
        else:
            what, amount = escape(f'{t["grant"]}: {h.get("activity", "")}'), ""
        cls = ' class="this"' if h["this"] else ""
        rows.append(f'<tr{cls}><td>{escape(when(h["time_ms"]))}</td><td>{what}</td><td>{amount}</td>'
                    f'<td>+{h["points"]}</td></tr>')
    body = (f'<section><h2>{escape(t["receipt"])}</h2>'
            f'<div class="big" id="amount">{escape(yen(d["amount_yen"]))}</div>'
            f'<p>{escape(titles.get(d["project"], d["project"] or ""))}<br>'
            f'<span class="muted">{escape(when(d["time_ms"]))} · {escape(t["kiosk"])} {escape(d["kiosk_id"])} '
            f'#{d["seq"]}</span></p>'
            + (f'<p class="bad">{escape(t["voided"])}</p>' if d["voided"] else "")
            + f'{status}</section>'
            f'<section><h2>{escape(t["points"])}</h2><div class="big" id="points">{r["points_balance"]}</div></section>'
            f'<section><h2>{escape(t["history"])}</h2><table id="history"><tr><th>{escape(t["when"])}</th>'
            f'<th>{escape(t["project"])}</th><th>{escape(t["amount"])}</th><th>pt</th></tr>{"".join(rows)}</table>'
            f'</section>')
    return page(t["receipt"], body, lang, f"/r/{code}")


# --- staff ------------------------------------------------------------------------------------------
def login_page(error: str | None = None) -> str:
    msg = f'<p class="bad">{escape(error)}</p>' if error else ""
    body = (f'<section><h2>Staff login / 職員ログイン</h2>{msg}<form method="post" action="/staff/login">'
            '<label>User <input name="username" autocomplete="username" required></label>'
            '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>'
            '<button type="submit">Log in</button></form></section>')
    return page("Staff login", body)


def fleet_page(kiosks: list[dict[str, Any]], user: str) -> str:
    rows = []
    for k in kiosks:
        alarm = "".join(f'<div class="bad">{escape(a["kind"])} seq={a["seq"]}: {escape(a["detail"])}</div>'
                        for a in k["alarms"]) or ('<span class="ok">none</span>' if not k["alarm"] else "")
        clock = ("synced" if k["clock_synced"] else "UNSYNCED" if k["clock_synced"] is False else "–")
        if k["clock_skew_ms"] is not None:
            clock += f' ({k["clock_skew_ms"] / 1000:+.0f} s)'
        if k["untimed_entries"]:
            clock += f', {k["untimed_entries"]} entries without a fixed time'
        rows.append(f'<tr><td>{escape(k["id"])}</td><td>{escape(when(k["last_seen_ms"]))}</td><td>{k["last_seq"]}</td>'
                    f'<td>{k["pending"]}</td><td>{escape(clock)}</td>'
                    f'<td>{k["config_applied"]}/{k["config_current"]}</td><td>{alarm}</td></tr>')
    body = (f'<section><h2>Kiosk fleet</h2><p class="muted">signed in as {escape(user)}</p><table id="fleet">'
            '<tr><th>kiosk</th><th>last seen</th><th>last seq</th><th>pending</th><th>clock</th><th>config</th>'
            f'<th>alarms</th></tr>{"".join(rows)}</table></section>')
    return page("Fleet", body, staff=True)


def reconciliation_page(items: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td>{escape(i["kiosk_id"])}</td><td>{escape(i["business_date"])}</td><td>#{i["seq"]}</td>'
        f'<td>{i["kiosk"]["count"]} / {escape(yen(i["kiosk"]["total_yen"]))}</td>'
        f'<td>{i["portal"]["count"]} / {escape(yen(i["portal"]["total_yen"]))}</td>'
        + (f'<td class="ok">match</td>' if i["match"] else
           f'<td class="bad mismatch">MISMATCH: {escape("; ".join(i["differences"]))}</td>') + "</tr>"
        for i in items)
    body = ('<section><h2>Reconciliation (close-outs vs. portal)</h2><table id="reconciliation"><tr><th>kiosk</th>'
            '<th>date</th><th>entry</th><th>kiosk close-out</th><th>portal recomputed</th><th></th></tr>'
            f'{rows}</table></section>')
    return page("Reconciliation", body, staff=True)


def points_page(items: list[dict[str, Any]]) -> str:
    rows = "".join(f'<tr><td>{escape(when(i["time_ms"]))}</td><td>{escape(i["kiosk_id"])}</td>'
                   f'<td>{escape(i["activity"])}</td><td>{i["points"]}</td><td><code>{escape(i["donor"])}…</code></td></tr>'
                   for i in items)
    body = ('<section><h2>Points granted for volunteering</h2><table id="points"><tr><th>when</th><th>kiosk</th>'
            f'<th>activity</th><th>points</th><th>token</th></tr>{rows}</table></section>')
    return page("Points", body, staff=True)
