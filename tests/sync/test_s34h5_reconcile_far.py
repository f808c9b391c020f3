"""Payments the provider dates two or more days from their donation, in the staff reconciliation
(server_sync/reconcile.py): a kiosk offline for days, a kiosk clock that was wrong, a payment settled by a later
lookup. The payment id matches its donation whatever the distance: it is counted once, on the donation's day
(「明細の日付: …」), and its own date's page says where it went (「…の寄付 #N と照合済み」) instead of a red
「決済事業者の明細にだけあります」; a payment no donation anywhere names stays that red row. The month's page and its
CSV agree, and the month counts every payment once. Real portal on loopback (SQLite and PostgreSQL), the kiosk's
real ledger and uploader, a staff sign-in and the Square CSV upload over HTTP.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, datetime, timedelta

from sync_helpers import PASSWORD, PROJECTS, enrolled
from test_reconcile import SQUARE_HEADER, TOKYO, give, login, square_csv, upload

from server_sync import reconcile
from server_sync.configstore import publish
from server_sync.staff import add_user


def _last_month() -> date:
    """The first of last month, in Japan: every day of the test is in the past and in one month."""
    return (datetime.now(TOKYO).date().replace(day=1) - timedelta(days=1)).replace(day=1)


def _at(day: date, hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, s, tzinfo=TOKYO).timestamp() * 1000)


def _gift(rig, day: date, hms: str, project: str, yen: int, ref: str):  # noqa: ANN001, ANN202
    rig.clock.wall = _at(day, hms)
    return give(rig, project, yen, ref)


def _paid(ref: str, yen: int, day: date, hms: str, device: str) -> list[str]:
    """Square's row for a payment, dated and timed by Square's clock, on the device Square names."""
    row = dict.fromkeys(SQUARE_HEADER, "")
    row.update({"Date": day.isoformat(), "Time": hms, "Time Zone": "Tokyo", "Gross Sales": f"¥{yen:,}",
                "Partial Refunds": "¥0", "Total Collected": f"¥{yen:,}", "Transaction ID": "tx-" + ref,
                "Payment ID": ref, "Device Name": device, "Event Type": "Payment"})
    return [row[h] for h in SQUARE_HEADER]


def _month_csv(s, url: str, month: str) -> list[dict[str, str]]:  # noqa: ANN001
    r = s.get(url + "/staff/reconciliation.csv", params={"month": month}, timeout=10)
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))


def _page(s, url: str, path: str) -> str:  # noqa: ANN001
    r = s.get(url + path, timeout=10)
    assert r.status_code == 200, path
    return html.unescape(r.text)


def _row(page: str, start: str) -> str:
    row = page[page.index(start):]
    return row[:row.index("</tr>")]


def _words(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def test_a_payment_dated_days_from_its_donation_is_matched_once_and_a_stray_one_stays_a_difference(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    k, L = rig.kiosk_id, _last_month()
    d3, d6, d7, d10 = (L + timedelta(days=n - 1) for n in (3, 6, 7, 10))
    late = _gift(rig, d3, "10:00:00", "kodomo", 500, "sq-late")  # Square settled it three days later
    norm = _gift(rig, d6, "10:00:00", "midori", 300, "sq-norm")
    early = _gift(rig, d10, "10:00:00", "ongaku", 1000, "sq-early")  # the kiosk's clock was three days fast
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    body = square_csv([_paid("sq-late", 500, d6, "09:00:00", k), _paid("sq-norm", 300, d6, "10:00:01", k),
                       _paid("sq-ghost", 700, d6, "11:00:00", k),  # no donation anywhere: a real difference
                       _paid("sq-early", 1000, d7, "10:00:00", k)])
    assert upload(s, portal.url, body).status_code == 200

    # The donation's day: matched, counted there, dated by Square three days later.
    r3 = reconcile.kiosk_day(engine, k, d3)
    assert r3 is not None and r3["ok"] and [x["provider"]["status"] for x in r3["rows"]] == ["ok"]
    assert (r3["provider"]["count"], r3["provider"]["net_yen"]) == (1, 500)
    assert f"明細の日付: {_words(d6)}" in _row(_page(s, portal.url, f"/staff/reconciliation/{k}/{d3}"),
                                               f'<tr data-seq="{late.seq}">')

    # The payment's own day: not 「明細にだけ」 (that is only the ghost), not in the day's provider column.
    r6 = reconcile.kiosk_day(engine, k, d6)
    assert r6 is not None and [p["payment_id"] for p in r6["provider_only"]] == ["sq-ghost"]
    [there] = r6["provider_elsewhere"]
    assert (there["payment_id"], there["seq"], there["day"], there["far"]) == ("sq-late", late.seq, d3, True)
    assert (r6["provider"]["count"], r6["provider"]["net_yen"], r6["provider"]["differences"]) == (2, 1000, 1)
    assert r6["rows"][0]["seq"] == norm.seq and r6["rows"][0]["provider"]["status"] == "ok"
    page = _page(s, portal.url, f"/staff/reconciliation/{k}/{d6}")
    row = _row(page, '<tr class="provider-elsewhere" data-payment="sq-late">')
    assert f"{_words(d3)} の寄付 #{late.seq} と照合済み（その日の分として数えています）" in row
    assert f'href="/staff/reconciliation/{k}/{d3}"' in row and "明細にだけ" not in row
    assert "決済事業者の明細にだけあります" in _row(page, '<tr class="provider-only" data-payment="sq-ghost">')
    assert "ほかに 1 件（¥500）の決済がこの日の日付です。ほかの日の寄付と照合済み" in page

    # A day on which the kiosk recorded nothing and whose only payment is a donation's three days later: no row.
    assert reconcile.kiosk_day(engine, k, d7) is None
    r10 = reconcile.kiosk_day(engine, k, d10)
    assert r10 is not None and r10["ok"] and r10["rows"][0]["seq"] == early.seq
    assert r10["rows"][0]["provider"]["status"] == "ok"

    # The month: every payment of the file counted once, the ghost once as a difference; the CSV says what the
    # page says, day by day, and a day alone says what it says in its month.
    month = f"{L:%Y-%m}"
    rows = [x for x in _month_csv(s, portal.url, month) if x["row"] == "total"]
    assert sum(int(x["provider_count"]) for x in rows) == 4
    assert sum(int(x["provider_net_yen"]) for x in rows) == 500 + 300 + 700 + 1000
    assert [x["business_date"] for x in rows] == [str(d) for d in (d3, d6, d10)]
    assert {x["business_date"]: x["status"] for x in rows}[str(d6)] == "difference"
    page = _page(s, portal.url, f"/staff/reconciliation?month={month}")
    for x in rows:
        cell = _row(page, f'<tr data-kiosk="{k}" data-day="{x["business_date"]}">')
        got = re.search(r'<td class="provider">(\d+) 件 / ¥([\d,]+)</td>', cell)
        assert got is not None and (got[1], got[2].replace(",", "")) == (x["provider_count"], x["provider_net_yen"])
    days = {x["business_date"]: x for x in reconcile.kiosk_days(engine, L, d10)}
    for d in (d3, d6, d7, d10):
        alone = reconcile.kiosk_day(engine, k, d)
        if alone is None:
            assert str(d) not in days
            continue
        assert alone["provider"] == days[str(d)]["provider"]
        assert alone["provider_elsewhere"] == days[str(d)]["provider_elsewhere"]
        assert [x["provider"] for x in alone["rows"]] == [x["provider"] for x in days[str(d)]["rows"]]


def test_one_payment_recorded_for_friday_and_for_monday_is_counted_once(portal, rig):
    """The terminal answered Monday's first gift with Friday's payment: the kiosk recorded sq-fri three days apart.
    Square collected it once, on Friday: Monday's record names Friday's donation and is a difference (also when
    the imported file ends before Monday), and the month counts the payment once."""
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    k, L = rig.kiosk_id, _last_month()
    fri_day, mon_day = L + timedelta(days=11), L + timedelta(days=14)
    fri = _gift(rig, fri_day, "17:00:00", "kodomo", 2000, "sq-fri")
    mon = _gift(rig, mon_day, "09:00:00", "midori", 2000, "sq-fri")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    assert upload(s, portal.url, square_csv([_paid("sq-fri", 2000, fri_day, "17:00:01", k)])).status_code == 200

    r = reconcile.kiosk_day(engine, k, fri_day)
    assert r is not None and r["ok"] and r["rows"][0]["provider"]["status"] == "ok"
    r = reconcile.kiosk_day(engine, k, mon_day)
    assert r is not None and not r["ok"] and r["rows"][0]["seq"] == mon.seq
    assert (r["rows"][0]["provider"]["status"], r["rows"][0]["provider"]["seq"]) == ("twice", fri.seq)
    assert (r["provider"]["count"], r["provider"]["differences"]) == (0, 1)
    row = _row(_page(s, portal.url, f"/staff/reconciliation/{k}/{mon_day}"), f'<tr data-seq="{mon.seq}">')
    assert f"寄付 #{fri.seq} と同じ決済です" in row and _words(fri_day) in row
    rows = [x for x in _month_csv(s, portal.url, f"{L:%Y-%m}") if x["row"] == "total"]
    assert [(x["business_date"], x["provider_count"], x["provider_net_yen"], x["status"]) for x in rows] == \
        [(str(fri_day), "1", "2000", "see notes"), (str(mon_day), "0", "0", "difference")]


def test_a_payment_days_away_across_the_month_edge_on_a_device_no_kiosk_is_named_is_counted_once(portal, rig):
    """The gift is on the 29th (say) of last month, Square's file dates its payment the 2nd of this month and names
    the terminal by a nickname no kiosk has: this month shows no 「どの端末の寄付とも合わない」 row for it, last
    month counts it on the gift's day."""
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    first = datetime.now(TOKYO).date().replace(day=1)
    eve3, day2 = first - timedelta(days=3), first + timedelta(days=1)
    g = _gift(rig, eve3, "15:00:00", "kodomo", 800, "sq-edge")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    body = square_csv([_paid("sq-edge", 800, day2, "08:00:00", "受付のレジ"),
                       _paid("sq-lost", 400, day2, "09:00:00", "受付のレジ")])  # matches nothing: stays
    assert upload(s, portal.url, body).status_code == 200

    r = reconcile.kiosk_day(engine, rig.kiosk_id, eve3)
    assert r is not None and r["ok"] and r["rows"][0]["seq"] == g.seq and r["rows"][0]["provider"]["status"] == "ok"
    before = [x for x in _month_csv(s, portal.url, f"{eve3:%Y-%m}") if x["business_date"] == str(eve3)]
    assert [(x["row"], x["provider_count"], x["provider_net_yen"]) for x in before if x["row"] == "total"] == \
        [("total", "1", "800")]
    now = _month_csv(s, portal.url, f"{first:%Y-%m}")
    assert [(x["row"], x["provider_net_yen"], x["status"]) for x in now] == \
        [("provider_only", "400", "payment sq-lost matches no kiosk")]
    page = _page(s, portal.url, f"/staff/reconciliation?month={first:%Y-%m}")
    assert "sq-lost" in page and "sq-edge" not in page
