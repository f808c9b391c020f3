"""Two kinds of payment the staff reconciliation (server_sync/reconcile.py) used to count twice.

- A payment Square files under kiosk A's terminal whose gift is in kiosk B's ledger (staff paired A's terminal to
  B for a day, or swapped two terminals): matched once, to B's gift that names it, counted on B's day with a plain
  note that it came through A's terminal; A's day says where it went instead of a red 「明細にだけ」, and A gets no
  day of its own for it. Also when Square dates it days from the gift.
- Two gifts of one kiosk naming one payment, the first dated days away by a clock wrong for that gift alone: the
  first counts it, the second is the difference (「寄付 #N と同じ決済です」), also when its day is read alone.

Real portal on loopback (SQLite and PostgreSQL), the kiosks' real ledgers and uploaders, a staff sign-in and the
Square CSV upload over HTTP. The month's sums are the sum of its days, its CSV says what its page says, and each
day read alone says what it says in its month.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from sync_helpers import PASSWORD, PROJECTS, enrolled
from test_reconcile import login, square_csv, upload
from test_s34h5_reconcile_far import _gift, _last_month, _month_csv, _page, _paid, _row, _words

from server_sync import reconcile
from server_sync.configstore import publish
from server_sync.staff import add_user


def _same_alone_as_in_month(engine, kiosk_ids: list[str], first: date, last: date) -> None:  # noqa: ANN001
    month = {(x["kiosk_id"], x["business_date"]): x for x in reconcile.kiosk_days(engine, first, last)}
    for k in kiosk_ids:
        d = first
        while d <= last:
            alone = reconcile.kiosk_day(engine, k, d)
            if alone is None:
                assert (k, str(d)) not in month, (k, d)
            else:
                there = month[(k, str(d))]
                assert alone["provider"] == there["provider"], (k, d)
                assert alone["provider_elsewhere"] == there["provider_elsewhere"], (k, d)
                assert [x["provider"] for x in alone["rows"]] == [x["provider"] for x in there["rows"]], (k, d)
            d += timedelta(days=1)


def _csv_is_the_page(s, url: str, month: str) -> list[dict[str, str]]:  # noqa: ANN001
    rows = [x for x in _month_csv(s, url, month) if x["row"] == "total"]
    page = _page(s, url, f"/staff/reconciliation?month={month}")
    for x in rows:
        cell = _row(page, f'<tr data-kiosk="{x["kiosk_id"]}" data-day="{x["business_date"]}">')
        got = re.search(r'<td class="provider">(\d+) 件 / ¥([\d,]+)</td>', cell)
        assert got is not None and (got[1], got[2].replace(",", "")) == (x["provider_count"], x["provider_net_yen"])
    return rows


def test_a_payment_on_another_kiosks_terminal_is_matched_once_to_the_gift_that_names_it(portal, two):
    a, b = two
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    L = _last_month()
    d5, d8, d11 = L + timedelta(days=4), L + timedelta(days=7), L + timedelta(days=10)
    own = _gift(a, d5, "10:00:00", "kodomo", 500, "sq-a1")
    lent = _gift(b, d5, "11:00:00", "midori", 300, "sq-b1")  # b's gift, paid on a's terminal
    b_own = _gift(b, d5, "12:00:00", "ongaku", 1000, "sq-b2")
    late = _gift(b, d8, "15:00:00", "kodomo", 700, "sq-b3")  # a's terminal again, Square dates it three days later
    for r in (a, b):
        r.ledger.checkpoint()
        assert enrolled(r, portal).sync_once().ok
    s = login(portal.url)
    body = square_csv([_paid("sq-a1", 500, d5, "10:00:01", a.kiosk_id),
                       _paid("sq-b1", 300, d5, "11:00:01", a.kiosk_id),
                       _paid("sq-ghost", 200, d5, "13:00:00", a.kiosk_id),  # no gift anywhere: stays a difference
                       _paid("sq-b2", 1000, d5, "12:00:01", b.kiosk_id),
                       _paid("sq-b3", 700, d11, "09:00:00", a.kiosk_id)])
    assert upload(s, portal.url, body).status_code == 200

    # b's day: both gifts matched, counted there; the one that came through a's terminal says so in plain words.
    rb = reconcile.kiosk_day(engine, b.kiosk_id, d5)
    assert rb is not None and rb["ok"], rb["problems"]
    assert [(x["seq"], x["provider"]["status"]) for x in rb["rows"]] == [(lent.seq, "ok"), (b_own.seq, "ok")]
    assert (rb["provider"]["count"], rb["provider"]["net_yen"]) == (2, 1300)

    # a's day: its own payment and the ghost; b's payment is no 「明細にだけ」 but where it was matched, with a link.
    ra = reconcile.kiosk_day(engine, a.kiosk_id, d5)
    assert ra is not None and [(x["seq"], x["provider"]["status"]) for x in ra["rows"]] == [(own.seq, "ok")]
    assert [p["payment_id"] for p in ra["provider_only"]] == ["sq-ghost"]
    assert (ra["provider"]["count"], ra["provider"]["net_yen"], ra["provider"]["differences"]) == (2, 700, 1)
    [there] = ra["provider_elsewhere"]
    assert (there["payment_id"], there["kiosk"], there["seq"], there["day"]) == ("sq-b1", b.kiosk_id, lent.seq, d5)
    page = _page(s, portal.url, f"/staff/reconciliation/{a.kiosk_id}/{d5}")
    row = _row(page, '<tr class="provider-elsewhere" data-payment="sq-b1">')
    assert f"{b.kiosk_id} の {_words(d5)} の寄付 #{lent.seq} と照合済み" in row and "明細にだけ" not in row
    assert f'href="/staff/reconciliation/{b.kiosk_id}/{d5}"' in row
    assert "決済事業者の明細にだけあります" in _row(page, '<tr class="provider-only" data-payment="sq-ghost">')
    page = _page(s, portal.url, f"/staff/reconciliation/{b.kiosk_id}/{d5}")
    assert f"{a.kiosk_id} の決済端末で受けた決済です" in _row(page, f'<tr data-seq="{lent.seq}">')
    assert "の決済端末で受けた決済です" not in _row(page, f'<tr data-seq="{b_own.seq}">')

    # Days away and on a's terminal: counted on b's gift's day; a recorded nothing that day, so a has no row for it.
    r8 = reconcile.kiosk_day(engine, b.kiosk_id, d8)
    assert r8 is not None and r8["ok"] and r8["rows"][0]["seq"] == late.seq
    assert r8["rows"][0]["provider"]["status"] == "ok" and r8["rows"][0]["provider"]["other_kiosk"] == a.kiosk_id
    assert reconcile.kiosk_day(engine, a.kiosk_id, d11) is None

    # The month: every payment of the file once, only the ghost a difference; the CSV is the page; days alone agree.
    rows = _csv_is_the_page(s, portal.url, f"{L:%Y-%m}")
    assert sum(int(x["provider_count"]) for x in rows) == 5
    assert sum(int(x["provider_net_yen"]) for x in rows) == 500 + 300 + 200 + 1000 + 700
    assert [(x["kiosk_id"], x["business_date"], x["status"]) for x in rows] == [
        (a.kiosk_id, str(d5), "difference"), (b.kiosk_id, str(d5), "see notes"), (b.kiosk_id, str(d8), "see notes")]
    _same_alone_as_in_month(engine, [a.kiosk_id, b.kiosk_id], L, d11 + timedelta(days=1))


def test_a_payment_named_by_a_gift_dated_days_away_and_by_a_later_gift_is_counted_once(portal, rig):
    """The kiosk's clock was days slow for one gift (the day's first, after a quiet day): Square dates its payment
    the real day, and the next gift recorded the same payment. The first gift counts it; the second is the
    difference on its own day, read alone or in the month, and the month counts the payment once."""
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    k, L = rig.kiosk_id, _last_month()
    d3, d7, d10 = L + timedelta(days=2), L + timedelta(days=6), L + timedelta(days=9)
    before = _gift(rig, d7, "16:00:00", "ongaku", 100, "sq-before")
    wrong = _gift(rig, d3, "10:00:00", "kodomo", 500, "sq-dup")  # really d10 10:00, the clock said d3
    again = _gift(rig, d10, "10:02:00", "midori", 500, "sq-dup")  # the terminal answered with the last payment
    after = _gift(rig, d10, "11:00:00", "midori", 300, "sq-after")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    body = square_csv([_paid("sq-before", 100, d7, "16:00:01", k), _paid("sq-dup", 500, d10, "10:00:01", k),
                       _paid("sq-after", 300, d10, "11:00:01", k)])
    assert upload(s, portal.url, body).status_code == 200

    r3 = reconcile.kiosk_day(engine, k, d3)
    assert r3 is not None and r3["ok"] and r3["rows"][0]["seq"] == wrong.seq
    assert r3["rows"][0]["provider"]["status"] == "ok" and (r3["provider"]["count"], r3["provider"]["net_yen"]) == \
        (1, 500)
    r10 = reconcile.kiosk_day(engine, k, d10)
    assert r10 is not None and not r10["ok"]
    assert [(x["seq"], x["provider"]["status"]) for x in r10["rows"]] == [(again.seq, "twice"), (after.seq, "ok")]
    assert (r10["rows"][0]["provider"]["seq"], r10["rows"][0]["provider"]["day"]) == (wrong.seq, d3)
    assert (r10["provider"]["count"], r10["provider"]["net_yen"], r10["provider"]["differences"]) == (1, 300, 1)
    row = _row(_page(s, portal.url, f"/staff/reconciliation/{k}/{d10}"), f'<tr data-seq="{again.seq}">')
    assert f"寄付 #{wrong.seq} と同じ決済です" in row and _words(d3) in row
    assert reconcile.kiosk_day(engine, k, d7)["ok"] and before.seq  # type: ignore[index]

    rows = _csv_is_the_page(s, portal.url, f"{L:%Y-%m}")
    assert [(x["business_date"], x["provider_count"], x["provider_net_yen"], x["status"]) for x in rows] == [
        (str(d3), "1", "500", "see notes"), (str(d7), "1", "100", "see notes"), (str(d10), "1", "300", "difference")]
    _same_alone_as_in_month(engine, [k], L, d10 + timedelta(days=1))
