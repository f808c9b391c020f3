"""A kiosk that runs for weeks without the network, on a Pi with no real-time clock (docs/ledger.md, docs/points.md,
docs/sync.md).

Real parts only: a real kiosk ledger (tests/sync/sync_helpers.py ``make_rig``), the real uploader, a real portal on
loopback (``server_sync.embedded.start_portal``) on a real SQLite file. Time is moved through the project's own seam,
:class:`kiosk.ledger.clock.FixedClock`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sync_helpers import PROJECTS, enrolled, fake_idm, make_rig

from kiosk.ledger.clock import FixedClock
from kiosk.ledger.writer import InlineWriter
from server_sync import catalog, citypepper, configstore, pools
from server_sync.db import entries, make_engine
from server_sync.embedded import start_portal

JST = dt.timezone(dt.timedelta(hours=9))
DAY_MS = 86_400_000


@pytest.fixture
def portal(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    yield handle
    handle.stop()


def _quarantined(db_url: str, kid: str) -> dict[int, str]:
    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            return dict(conn.execute(select(entries.c.seq, entries.c.quarantine).where(
                entries.c.kiosk_id == kid, entries.c.quarantine.is_not(None))).all())
    finally:
        eng.dispose()


def _sync_until_done(up: Any, rounds: int = 10) -> None:
    for _ in range(rounds):
        r = up.sync_once()
        if r.ok and not r.pending:
            return
    raise AssertionError(f"the uploader did not catch up: {r}")


def test_three_weeks_offline_every_gift_counts_once_under_its_own_config(portal, tmp_path):
    """Three weeks of gifts offline while the portal rotated the city pepper, published new amounts, ended a project
    and let a pool expire: when the network returns every gift counts once, nothing is quarantined, and the kiosk
    runs the newest config."""
    now = int(time.time() * 1000)
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    citypepper.rotate(eng)
    start = dt.datetime.fromtimestamp((now - 23 * DAY_MS) / 1000, JST).date()
    pools.save_pool(eng, {"id": "winter", "sponsor": "市", "sponsor_en": "The city", "funded_yen": 1000,
                          "yen_per_point": 1, "per_kiosk_yen": 500, "areas": [], "start": start.isoformat(),
                          "end": (start + dt.timedelta(days=5)).isoformat()})
    clock = FixedClock(wall_ms=now - 22 * DAY_MS)
    rig = make_rig(tmp_path, clock=clock)
    try:
        up = enrolled(rig, portal)
        _sync_until_done(up)
        v1 = max(e.data["version"] for e in rig.ledger.iter_entries() if e.type == "config_change")
        # offline from here: the kiosk takes gifts every day
        for day in range(21):
            clock.advance(DAY_MS)
            rig.donate(3, card=day % 3)
            if day == 5:
                configstore.publish(eng, {"projects": PROJECTS, "presets_yen": [200, 500], "default_yen": 200,
                                          "points_per_100_yen": 2})
            if day == 9:
                citypepper.rotate(eng)
            if day == 12:
                configstore.publish(eng, {"projects": PROJECTS[:2], "presets_yen": [300], "default_yen": 300})
        rig.ledger.checkpoint()
        _sync_until_done(up)
        _sync_until_done(up)
        q = _quarantined(portal.db_url, rig.kiosk_id)
        assert q == {}, q
        got = requests.get(portal.url + "/api/v1/totals", timeout=10).json()
        want = rig.expected_totals()
        assert (got["count"], got["total_yen"]) == (want["count"], want["total_yen"])
        newest = max(e.data["version"] for e in rig.ledger.iter_entries() if e.type == "config_change")
        assert newest > v1
    finally:
        rig.ledger.close(checkpoint=False)


def test_gifts_dated_by_a_clock_far_behind_are_closed_by_the_nightly_closeout(tmp_path):
    """A Pi without an RTC boots offline at the time fake-hwclock last saved (here 40 days behind: it stood
    switched off over the holidays) and takes gifts before NTP sets its clock. Nobody runs the Z that evening. The
    nightly `kiosk closeout` (``auto_close``) must still close the day those gifts are dated on, or they are in no
    Z report at all: not in the accountant's books, and "not closed" on a reconciliation page of a month long past."""
    from kiosk.staff.closeout import auto_close, closed_dates

    real_now = int(dt.datetime(2026, 1, 20, 10, 0, tzinfo=JST).timestamp() * 1000)
    clock = FixedClock(wall_ms=real_now - 40 * DAY_MS, synced=False)
    rig = make_rig(tmp_path, clock=clock)
    try:
        gifts = rig.donate(4)
        gift_day = rig.ledger.business_date(gifts[0].obj["wall_ms"])
        clock.wall = real_now + 3_600_000  # NTP steps the clock to the truth; the gifts keep their signed dates
        clock.is_synced = True
        clock.set_wall(dt.datetime(2026, 1, 21, 2, 0, tzinfo=JST))  # the nightly timer, after midnight
        auto_close(InlineWriter(rig.ledger), lookback_days=31)
        assert gift_day in closed_dates(rig.ledger), (
            f"the {len(gifts)} gifts dated {gift_day} by the unsynced clock are in no Z report; closed days: "
            f"{sorted(closed_dates(rig.ledger))}")
    finally:
        rig.ledger.close(checkpoint=False)


@pytest.mark.parametrize("boot_wall", ["fake-hwclock-40-days-behind", "1970"])
def test_a_kiosk_booted_with_a_wrong_clock_still_lets_points_be_spent_inside_the_pools_period(tmp_path, boot_wall):
    """A kiosk that boots offline with its clock behind (fake-hwclock's last save, or 1970 without one): a citizen
    wants to use points in a pool that is open today. The portal would accept the exchange (unsynced: judged by
    when it arrives, server_sync/policy.py), but the kiosk judges the pool's period by its wrong clock and
    refuses."""
    from kiosk.donation.exchange import ExchangeRefused, exchange, pools_for

    real_now = int(time.time() * 1000)
    clock = FixedClock(wall_ms=real_now)
    rig = make_rig(tmp_path, clock=clock)
    try:
        today = rig.ledger.business_date()
        doc = {"pools": [{"id": "p", "sponsor": "市", "yen_per_point": 1, "areas": [],
                          "start": (today - dt.timedelta(days=3)).isoformat(),
                          "end": (today + dt.timedelta(days=30)).isoformat(),
                          "allocations": {rig.kiosk_id: 1000}}]}
        terms = pools_for(doc, rig.kiosk_id)
        # the kiosk ran, synced, with this pool; then it reboots offline and the clock starts at the epoch
        clock.wall = 5_000 if boot_wall == "1970" else real_now - 40 * DAY_MS
        clock.is_synced = False
        token = rig.pepper.token(fake_idm(7))
        try:
            # The day the donation service judges the pool on (DonationService._spend_points).
            entry = exchange(rig.ledger, token, 10, "kodomo", "children", terms, allotted=50,
                             day=rig.ledger.business_date_at_least())
        except ExchangeRefused as e:
            pytest.fail(f"refused inside the pool's period ({today}) because the unsynced clock says "
                        f"{rig.ledger.business_date()}: {e}")
        assert entry.data["points"] == 10
    finally:
        rig.ledger.close(checkpoint=False)


def test_a_receipt_printed_offline_says_not_yet_received_then_verifies_after_sync(portal, tmp_path):
    """A citizen scans the QR of a gift made while the kiosk was offline (clock 40 days behind, unsynced). Before
    the kiosk syncs the page must not call the receipt forged; after the sync it checks, and its time is the
    portal's corrected one (not 40 days back)."""
    from server_sync.wire.receipt import check_receipt, receipt_code

    now = int(time.time() * 1000)
    clock = FixedClock(wall_ms=now - 40 * DAY_MS, synced=False)
    rig = make_rig(tmp_path, clock=clock)
    try:
        up = enrolled(rig, portal)
        gift = rig.donate(1)[0]
        rig.ledger.checkpoint()
        code = receipt_code(gift)
        page = requests.get(f"{portal.url}/r/{code}", timeout=10)
        assert page.status_code == 404
        assert "偽" not in page.text and "送信" in page.text, page.text
        _sync_until_done(up)
        doc = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10).json()
        chk = check_receipt(doc, gift.obj["key_id"], code=code)
        assert chk.ok, chk.reason
        assert doc["donation"]["time_ms"] > now - DAY_MS, (doc["donation"]["time_ms"], now)
    finally:
        rig.ledger.close(checkpoint=False)


def test_weeks_of_catch_up_through_a_flaky_link_and_power_cuts_between_batches(portal, tmp_path):
    """Three weeks of gifts uploaded in batches through a link that drops requests mid-way, with the kiosk's
    power cut (ledger reopened from disk, a fresh uploader) between rounds: every entry reaches the portal once."""
    from fault_proxy import FaultProxy
    from sync_helpers import portal_entry_count

    from kiosk.ops.local_files import open_ledger

    now = int(time.time() * 1000)
    clock = FixedClock(wall_ms=now - 22 * DAY_MS)
    rig = make_rig(tmp_path, clock=clock)
    try:
        for _day in range(21):
            clock.advance(DAY_MS)
            rig.donate(12)
        with FaultProxy(portal.url, rate=0.0, seed=11, faults=("drop_before", "drop_after", "cut_body")) as proxy:
            rig.uploader(proxy.url).enroll(portal.issue_code(rig.kiosk_id))
            proxy.rate = 0.5
            for _cut in range(6):
                up = rig.uploader(proxy.url, batch_entries=40)
                up.sync_once(max_attempts=3)
                rig.ledger.close(checkpoint=False)  # the power goes; the kiosk starts again
                rig.ledger = open_ledger(rig.cfg, clock=clock)
            up = rig.uploader(proxy.url, batch_entries=40)
            st = up.sync_once(max_attempts=200)
            assert st.ok, (st.last_error, proxy.counts)
            assert proxy.counts["drop_after"] + proxy.counts["cut_body"] > 0, proxy.counts
        got = requests.get(portal.url + "/api/v1/totals", timeout=10).json()
        assert got == rig.expected_totals()
        rows, distinct = portal_entry_count(portal.db_url, rig.kiosk_id)
        assert rows == distinct == rig.ledger.size
    finally:
        rig.ledger.close(checkpoint=False)
