"""The months of the points report and of the reconciliation's sponsor money are Japan's, on a server whose own time
zone is not (docs/points.md, "Reports"; a city's server, or its container, often runs in UTC).

A citizen gives and exchanges points at a kiosk in Tokyo at 08:30 on 1 December: that is still 30 November in UTC.
The kiosk's own ledger dates both on 1 December (its business day), and so does the reconciliation's list of
kiosk-days; the points report and the month's sponsor money must say December too, or an auditor holding the
report against the kiosks' ledgers, and staff closing the month, find a gift in the wrong month. Real kiosk ledger,
real portal over loopback HTTP (SQLite and PostgreSQL), the staff pages as a browser gets them.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, make_rig, staff_session

from kiosk.donation.exchange import exchange, hexes_of, pools_for
from kiosk.ledger.clock import FixedClock
from kiosk.sync import pointsync
from kiosk.sync.configapply import load_applied
from server_sync import catalog, pools
from server_sync.staff import add_user

JST = ZoneInfo("Asia/Tokyo")
GIFT_AT = dt.datetime(2026, 12, 1, 8, 30, tzinfo=JST)  # 2026-11-30 23:30 UTC
CARD = 4


@pytest.fixture
def server_in_utc(server_zone) -> None:  # noqa: ANN001
    """The portal's process in UTC (the server's local time); put back after."""
    server_zone("UTC")


def _gift_and_exchange_at_0830_on_the_first(portal, tmp_path) -> None:  # noqa: ANN001
    """A ¥1,000 gift (10 points) and 6 of its points exchanged for ¥60 of a sponsor's, at 08:30 on 1 December in
    Tokyo, synced to the portal."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "staff1", PASSWORD, "staff")
    rig = make_rig(tmp_path, "center-1f", clock=FixedClock(wall_ms=int(GIFT_AT.timestamp() * 1000)))
    try:
        up = enrolled(rig, portal)
        rig.donate(1, card=CARD, amounts=(1000,))  # 10 points
        assert up.sync_once().ok
        pools.save_pool(eng, {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank",
                              "funded_yen": 1000, "yen_per_point": 10, "per_kiosk_yen": 500, "areas": [],
                              "start": None, "end": None})
        assert up.sync_once().ok  # the allocation, in the signed config
        token = rig.pepper.token(fake_idm(CARD))
        pointsync.ask(up, token, hexes_of(token), 0)
        spent = exchange(rig.ledger, token, 6, "kodomo", "children", pools_for(load_applied(rig.cfg.data_dir),
                         rig.kiosk_id), pointsync.last_word(rig.cfg.data_dir, hexes_of(token)), GIFT_AT.date())
        assert up.sync_once().ok
        # The kiosk's own ledger dates the exchange on 1 December (its business day).
        assert rig.ledger.business_date(spent.obj["wall_ms"]) == dt.date(2026, 12, 1)
    finally:
        rig.ledger.close(checkpoint=False)


def test_the_reconciliation_counts_the_sponsor_money_of_the_first_in_that_month(server_in_utc, portal,  # noqa: ANN001
                                                                                tmp_path) -> None:  # noqa: ANN001
    _gift_and_exchange_at_0830_on_the_first(portal, tmp_path)
    s, _ = staff_session(portal.url, "staff1")
    dec = s.get(portal.url + "/staff/reconciliation?month=2026-12", timeout=10).text
    assert 'href="/staff/reconciliation/center-1f/2026-12-01"' in dec  # the kiosk-day, as the kiosk dates it
    assert re.search(r'id="sponsor-total">¥60<', dec), "December's sponsor money lacks the gift of 1 December"
    nov = s.get(portal.url + "/staff/reconciliation?month=2026-11", timeout=10).text
    assert 'id="sponsor-money"' not in nov, "November's sponsor money holds a gift made on 1 December"


def test_the_points_report_counts_the_first_of_the_month_in_that_month(server_in_utc, portal,  # noqa: ANN001
                                                                       tmp_path) -> None:  # noqa: ANN001
    _gift_and_exchange_at_0830_on_the_first(portal, tmp_path)
    s, _ = staff_session(portal.url, "staff1")
    rows = s.get(portal.url + "/staff/points-report.csv", timeout=10).content.decode("utf-8-sig").splitlines()
    assert "issued,2026-12,giving,10,,寄付,,," in rows, rows
    assert "exchanged,2026-12,pool:midori-bank,6,60,みどり銀行,,," in rows, rows
    assert not [r for r in rows if ",2026-11," in r], rows
    page = s.get(portal.url + "/staff/points-report", timeout=10).text
    assert "2026-11" not in page and page.count("<td>2026-12</td>") == 2
