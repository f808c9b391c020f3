"""One Square payment counts once in the whole fleet's reconciliation (server_sync/reconcile.py), and each day read
alone says what it says in its month, also for a payment on another kiosk's terminal whose gift is days away.

- One payment named by gifts on two kiosks (a terminal that answered with a stale payment id): the gift on the kiosk
  whose terminal took it counts it; the other gift is 「<kiosk> の寄付 #N と同じ決済です」, a difference, on its day
  read alone and in the month. With no gift of that kiosk, the first by (kiosk id, seq) counts it.
- A gift of kiosk B naming a payment on kiosk A's terminal that Square dates more than LENT_DAYS from the gift: the
  same answer read alone or in the month (not matched: a difference on both sides), so the days never sum to more
  provider money than the file holds.

Real portal on loopback (SQLite and PostgreSQL), the kiosks' real ledgers and uploaders, a staff sign-in and the
Square CSV upload over HTTP.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sync_helpers import PASSWORD, enrolled, make_rig
from test_reconcile import login, square_csv, upload
from test_s34h5_reconcile_far import _gift, _last_month, _page, _paid, _row, _words
from test_s54hb_reconcile_swapped import _csv_is_the_page, _same_alone_as_in_month

from server_sync import reconcile
from server_sync.staff import add_user


def _synced(portal, *rigs) -> None:  # noqa: ANN001
    for r in rigs:
        r.ledger.checkpoint()
        assert enrolled(r, portal).sync_once().ok


def _status(x: dict) -> list[tuple[int, str]]:
    return [(r["seq"], r["provider"]["status"]) for r in x["rows"]]


def test_one_payment_named_on_two_kiosks_counts_once_with_the_terminals_own_kiosk(portal, two):
    a, b = two
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    L = _last_month()
    d4, d5, d6 = L + timedelta(days=3), L + timedelta(days=4), L + timedelta(days=5)
    mine = _gift(a, d5, "10:00:00", "kodomo", 300, "sq-x")
    stale = _gift(b, d5, "10:05:00", "kodomo", 300, "sq-x")  # b's terminal answered with a's payment id
    early = _gift(b, d4, "16:00:00", "midori", 500, "sq-y")  # b's gift first, a's the next day: a's terminal, a's
    late = _gift(a, d6, "09:00:00", "midori", 500, "sq-y")
    _synced(portal, a, b)
    s = login(portal.url)
    body = square_csv([_paid("sq-x", 300, d5, "10:00:01", a.kiosk_id), _paid("sq-y", 500, d6, "09:00:01", a.kiosk_id)])
    assert upload(s, portal.url, body).status_code == 200

    ra, rb = reconcile.kiosk_day(engine, a.kiosk_id, d5), reconcile.kiosk_day(engine, b.kiosk_id, d5)
    assert ra is not None and ra["ok"] and _status(ra) == [(mine.seq, "ok")]
    assert rb is not None and not rb["ok"] and _status(rb) == [(stale.seq, "twice")]
    assert (rb["rows"][0]["provider"]["kiosk"], rb["rows"][0]["provider"]["seq"]) == (a.kiosk_id, mine.seq)
    assert (rb["provider"]["count"], rb["provider"]["net_yen"], rb["provider"]["differences"]) == (0, 0, 1)
    row = _row(_page(s, portal.url, f"/staff/reconciliation/{b.kiosk_id}/{d5}"), f'<tr data-seq="{stale.seq}">')
    assert f"{a.kiosk_id} の寄付 #{mine.seq} と同じ決済です" in row
    assert f'href="/staff/reconciliation/{a.kiosk_id}/{d5}"' in row

    r4 = reconcile.kiosk_day(engine, b.kiosk_id, d4)
    assert r4 is not None and _status(r4) == [(early.seq, "twice")]
    assert (r4["rows"][0]["provider"]["kiosk"], r4["rows"][0]["provider"]["day"]) == (a.kiosk_id, d6)
    assert _status(reconcile.kiosk_day(engine, a.kiosk_id, d6)) == [(late.seq, "ok")]  # type: ignore[arg-type]

    rows = _csv_is_the_page(s, portal.url, f"{L:%Y-%m}")
    assert sum(int(x["provider_net_yen"] or 0) for x in rows) == 300 + 500  # the file's money, once
    assert [(x["kiosk_id"], x["business_date"], x["status"]) for x in rows] == [
        (b.kiosk_id, str(d4), "difference"), (a.kiosk_id, str(d5), "see notes"), (b.kiosk_id, str(d5), "difference"),
        (a.kiosk_id, str(d6), "see notes")]
    _same_alone_as_in_month(engine, [a.kiosk_id, b.kiosk_id], L, d6 + timedelta(days=1))


def test_a_lent_payment_named_on_two_other_kiosks_counts_once_with_the_first_kiosk(portal, two, tmp_path: Path):
    a, b = two
    c = make_rig(tmp_path, "library-2f")
    c.pepper = a.pepper
    try:
        engine = portal.app.state.engine
        add_user(engine, "clerk", PASSWORD)
        L = _last_month()
        d5 = L + timedelta(days=4)
        own = _gift(a, d5, "09:00:00", "kodomo", 100, "sq-a")
        lib = _gift(c, d5, "10:00:00", "kodomo", 400, "sq-l")  # "library-2f" > "city-hall": city-hall's counts
        hall = _gift(b, d5, "10:30:00", "kodomo", 400, "sq-l")
        _synced(portal, a, b, c)
        s = login(portal.url)
        body = square_csv([_paid("sq-a", 100, d5, "09:00:01", a.kiosk_id),
                           _paid("sq-l", 400, d5, "10:00:01", a.kiosk_id)])
        assert upload(s, portal.url, body).status_code == 200
        rb, rc = reconcile.kiosk_day(engine, b.kiosk_id, d5), reconcile.kiosk_day(engine, c.kiosk_id, d5)
        assert rb is not None and rb["ok"] and _status(rb) == [(hall.seq, "ok")]
        assert rc is not None and not rc["ok"] and _status(rc) == [(lib.seq, "twice")]
        assert (rc["rows"][0]["provider"]["kiosk"], rc["rows"][0]["provider"]["seq"]) == (b.kiosk_id, hall.seq)
        ra = reconcile.kiosk_day(engine, a.kiosk_id, d5)
        assert ra is not None and _status(ra) == [(own.seq, "ok")]
        assert [(p["payment_id"], p["kiosk"], p["seq"]) for p in ra["provider_elsewhere"]] == [
            ("sq-l", b.kiosk_id, hall.seq)]
        rows = _csv_is_the_page(s, portal.url, f"{L:%Y-%m}")
        assert sum(int(x["provider_net_yen"] or 0) for x in rows) == 500
        _same_alone_as_in_month(engine, [a.kiosk_id, b.kiosk_id, c.kiosk_id], L, d5 + timedelta(days=1))
    finally:
        c.ledger.close(checkpoint=False)


def _lent_far_away(portal, two, gap: int) -> None:  # noqa: ANN001
    """b's gift names sq-l, a payment on a's terminal that Square dates ``gap`` days later (b's clock was wrong)."""
    a, b = two
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    L = _last_month()
    gift_day, paid_day = L + timedelta(days=1), L + timedelta(days=1 + gap)
    own = _gift(a, paid_day, "09:00:00", "kodomo", 100, "sq-a")
    far = _gift(b, gift_day, "10:05:00", "kodomo", 400, "sq-l")
    _synced(portal, a, b)
    s = login(portal.url)
    body = square_csv([_paid("sq-a", 100, paid_day, "09:00:01", a.kiosk_id),
                       _paid("sq-l", 400, paid_day, "10:00:01", a.kiosk_id)])
    assert upload(s, portal.url, body).status_code == 200

    # Read alone and in the month alike: the payment is too far from b's gift to be its (a's days could not find the
    # gift); a difference on both sides, and the provider's money counted once, on a's day.
    rb = reconcile.kiosk_day(engine, b.kiosk_id, gift_day)
    assert rb is not None and not rb["ok"] and _status(rb) == [(far.seq, "far_terminal")]
    assert (rb["provider"]["count"], rb["provider"]["net_yen"], rb["provider"]["differences"]) == (0, 0, 1)
    ra = reconcile.kiosk_day(engine, a.kiosk_id, paid_day)
    assert ra is not None and _status(ra) == [(own.seq, "ok")]
    assert [p["payment_id"] for p in ra["provider_only"]] == ["sq-l"]
    assert (ra["provider"]["count"], ra["provider"]["net_yen"]) == (2, 500)
    row = _row(_page(s, portal.url, f"/staff/reconciliation/{b.kiosk_id}/{gift_day}"), f'<tr data-seq="{far.seq}">')
    assert f"{_words(paid_day)} に {a.kiosk_id} の決済端末で受けた決済" in row and "照合していません" in row

    rows = _csv_is_the_page(s, portal.url, f"{L:%Y-%m}")
    assert sum(int(x["provider_net_yen"] or 0) for x in rows) == 500  # the file's money, not more
    assert [(x["kiosk_id"], x["status"]) for x in rows] == [(b.kiosk_id, "difference"), (a.kiosk_id, "difference")]
    _same_alone_as_in_month(engine, [a.kiosk_id, b.kiosk_id], L, paid_day + timedelta(days=1))


def test_a_lent_payment_9_days_from_its_gift_is_the_same_alone_and_in_the_month(portal, two):
    _lent_far_away(portal, two, 9)


def test_a_lent_payment_23_days_from_its_gift_is_the_same_alone_and_in_the_month(portal, two):
    _lent_far_away(portal, two, 23)
