"""Payments across midnight in the staff reconciliation (server_sync/reconcile.py): the kiosk's clock decides a
donation's business day, the provider's file dates its payment by the provider's own clock, and near midnight (or
with a kiosk clock a few minutes off) the two are different days. Such a payment is matched to its donation on
the donation's day and is no red "only in the provider's file" row on its own date; its own day's page says where
it was matched (「前日の寄付 #N と照合済み」), and the month's figures count it once. Real portal on loopback (SQLite
and PostgreSQL), the kiosk's real ledger and uploader, a staff sign-in and the Square CSV upload over HTTP. The days
are the last of last month and the first of this one, so the month's CSV is read on both sides of its edge.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import date, datetime, timedelta

from sqlalchemy.engine import Engine
from sync_helpers import PASSWORD, PROJECTS, enrolled
from test_reconcile import SQUARE_HEADER, TOKYO, give, login, square_csv, upload

from server_sync import reconcile
from server_sync.configstore import publish
from server_sync.staff import add_user


def _edge() -> tuple[date, date]:
    """(the last day of last month, the first of this month), in Japan."""
    first = datetime.now(TOKYO).date().replace(day=1)
    return first - timedelta(days=1), first


def _at(day: date, hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, s, tzinfo=TOKYO).timestamp() * 1000)


def _gift(rig, day: date, hms: str, project: str, yen: int, ref: str):  # noqa: ANN001, ANN202
    rig.clock.wall = _at(day, hms)
    return give(rig, project, yen, ref)


def _paid(rig, ref: str, yen: int, day: date, hms: str) -> list[str]:  # noqa: ANN001
    """Square's row for a payment, dated and timed by Square's clock."""
    row = dict.fromkeys(SQUARE_HEADER, "")
    row.update({"Date": day.isoformat(), "Time": hms, "Time Zone": "Tokyo", "Gross Sales": f"¥{yen:,}",
                "Partial Refunds": "¥0", "Total Collected": f"¥{yen:,}", "Transaction ID": "tx-" + ref,
                "Payment ID": ref, "Device Name": rig.kiosk_id, "Event Type": "Payment"})
    return [row[h] for h in SQUARE_HEADER]


def _start(portal, rig):  # noqa: ANN001, ANN202
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    return engine


def _months(s, url: str, days: tuple[date, date]) -> list[dict[str, str]]:  # noqa: ANN001
    """The accounting CSV's rows of both months the days fall in."""
    out = []
    for month in sorted({f"{d:%Y-%m}" for d in days}):
        r = s.get(url + "/staff/reconciliation.csv", params={"month": month}, timeout=10)
        assert r.status_code == 200
        out += list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    return out


def _day_page(s, url: str, kiosk_id: str, day: date) -> str:  # noqa: ANN001
    r = s.get(f"{url}/staff/reconciliation/{kiosk_id}/{day}", timeout=10)
    assert r.status_code == 200
    return html.unescape(r.text)


def _kiosk_days(engine: Engine, days: tuple[date, date]) -> list[dict]:
    return [x for d in days for x in reconcile.kiosk_days(engine, d.replace(day=1), d) if x["business_date"] == str(d)]


def test_a_gift_just_before_midnight_paid_just_after_is_no_difference_on_either_day(portal, rig):
    engine = _start(portal, rig)
    eve, first = _edge()
    a = _gift(rig, eve, "23:40:00", "kodomo", 100, "sq-eve")
    b = _gift(rig, eve, "23:59:58", "midori", 500, "sq-mid")  # the kiosk's day: eve
    c = _gift(rig, first, "00:10:00", "ongaku", 300, "sq-next")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    body = square_csv([_paid(rig, "sq-eve", 100, eve, "23:40:01"),
                       _paid(rig, "sq-mid", 500, first, "00:00:03"),  # Square's day: the first
                       _paid(rig, "sq-next", 300, first, "00:10:01")])
    assert upload(s, portal.url, body).status_code == 200

    before = reconcile.kiosk_day(engine, rig.kiosk_id, eve)
    assert before is not None and [r["provider"]["status"] for r in before["rows"]] == ["ok", "ok"]
    p = before["provider"]
    assert (p["count"], p["net_yen"], p["differences"]) == (2, 600, 0)
    after = reconcile.kiosk_day(engine, rig.kiosk_id, first)
    assert after is not None and after["provider_only"] == [] and after["ok"], after["problems"]
    assert [r["provider"]["status"] for r in after["rows"]] == ["ok"]
    assert (after["provider"]["count"], after["provider"]["net_yen"], after["provider"]["differences"]) == (1, 300, 0)
    [there] = after["provider_elsewhere"]
    assert (there["payment_id"], there["seq"], there["day"]) == ("sq-mid", b.seq, eve)

    # The day's pages: no red row on the first; it says where the payment went, in Japanese.
    page = _day_page(s, portal.url, rig.kiosk_id, first)
    assert "決済事業者の明細にだけあります" not in page and "差異" not in page
    row = page[page.index('<tr class="provider-elsewhere" data-payment="sq-mid">'):]
    row = row[:row.index("</tr>")]
    assert f"前日の寄付 #{b.seq} と照合済み" in row and "¥500" in row
    assert "ほかに 1 件（¥500）の決済がこの日の日付です。前日か翌日の寄付と照合済み" in page  # Square's day total
    page = _day_page(s, portal.url, rig.kiosk_id, eve)
    row = page[page.index(f'<tr data-seq="{b.seq}">'):]
    row = row[:row.index("</tr>")]
    assert "✓" in row and f"明細の日付: {first.year}年{first.month}月{first.day}日" in row
    assert "差異" not in page

    # The month's figures, across the month's edge: every payment counted once, no difference anywhere.
    rows = _months(s, portal.url, (eve, first))
    totals = [x for x in rows if x["row"] == "total"]
    assert {(x["business_date"], x["provider_count"], x["provider_net_yen"], x["status"]) for x in totals} == \
        {(str(eve), "2", "600", "see notes"), (str(first), "1", "300", "see notes")}  # not closed: notes
    assert not [x for x in rows if x["row"] == "provider_only"]
    assert all(x["ok"] for x in _kiosk_days(engine, (eve, first)))
    assert (a.seq, c.seq) == (before["rows"][0]["seq"], after["rows"][0]["seq"])


def test_a_kiosk_clock_ahead_puts_the_gift_after_midnight_and_its_payment_before(portal, rig):
    """The kiosk's clock is a minute fast: its gift at 00:00:30 is the first's, Square's payment 23:59:40 the day
    before, when the kiosk recorded nothing. No kiosk-day appears for that day just to show a false difference."""
    engine = _start(portal, rig)
    eve, first = _edge()
    g = _gift(rig, first, "00:00:30", "kodomo", 700, "sq-early")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    assert upload(s, portal.url, square_csv([_paid(rig, "sq-early", 700, eve, "23:59:40")])).status_code == 200

    assert reconcile.kiosk_day(engine, rig.kiosk_id, eve) is None
    assert [x["business_date"] for x in _kiosk_days(engine, (eve, first))] == [str(first)]
    r = reconcile.kiosk_day(engine, rig.kiosk_id, first)
    assert r is not None and r["ok"] and [x["provider"]["status"] for x in r["rows"]] == ["ok"]
    assert (r["provider"]["count"], r["provider"]["net_yen"]) == (1, 700) and r["rows"][0]["seq"] == g.seq
    assert s.get(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{eve}", timeout=10).status_code == 404
    rows = _months(s, portal.url, (eve, first))
    assert [(x["business_date"], x["provider_count"]) for x in rows if x["row"] == "total"] == [(str(first), "1")]
    assert not [x for x in rows if x["row"] == "provider_only"]


def test_one_payment_recorded_for_gifts_on_both_sides_of_midnight_is_counted_once(portal, rig):
    """The terminal answered the first gift after midnight with the payment of the last gift before it: the kiosk
    recorded sq-dup on two days. The provider collected it once; the second record is a difference on its own row,
    naming the first donation, and the month counts the payment once."""
    engine = _start(portal, rig)
    eve, first = _edge()
    a = _gift(rig, eve, "23:59:50", "kodomo", 1000, "sq-dup")
    b = _gift(rig, first, "00:00:20", "midori", 1000, "sq-dup")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    assert upload(s, portal.url, square_csv([_paid(rig, "sq-dup", 1000, first, "00:00:05")])).status_code == 200

    before = reconcile.kiosk_day(engine, rig.kiosk_id, eve)
    assert before is not None and before["ok"] and before["rows"][0]["provider"]["status"] == "ok"
    after = reconcile.kiosk_day(engine, rig.kiosk_id, first)
    assert after is not None and not after["ok"] and after["provider_only"] == []
    assert (after["rows"][0]["provider"]["status"], after["rows"][0]["provider"]["seq"]) == ("twice", a.seq)
    assert after["provider"]["differences"] == 1 and after["provider"]["count"] == 0
    page = _day_page(s, portal.url, rig.kiosk_id, first)
    row = page[page.index(f'<tr data-seq="{b.seq}">'):]
    assert f"寄付 #{a.seq} と同じ決済です" in row[:row.index("</tr>")]
    rows = _months(s, portal.url, (eve, first))
    assert sum(int(x["provider_count"] or 0) for x in rows if x["row"] == "total") == 1
