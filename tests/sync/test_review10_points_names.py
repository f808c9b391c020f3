"""Staff read the points pages by the names they know, and an auditor can check the points CSV without the web page
(docs/points.md, "Reports" and "Where sponsor money shows").

A real kiosk ledger gives, is granted volunteer points under the written rules and exchanges points for a sponsor's
yen; it syncs over loopback HTTP to a real portal (SQLite and PostgreSQL), and the staff pages and the CSV are read as
a browser gets them. Before: the reconciliation's sponsor table showed the project's ID (``kodomo``), the points
report the activity's and the pool's IDs; the CSV's ``pool_balance`` row put the points spent under ``points`` and the
yen *left* under ``yen`` (where an ``exchanged`` row has the yen spent), with no funded or spent yen at all.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, make_rig, staff_session

from kiosk.donation.exchange import exchange, hexes_of, pools_for
from kiosk.sync import pointsync
from kiosk.sync.configapply import load_applied
from server_sync import catalog, pointrules, pools
from server_sync.staff import add_user

CARD = 5
POOL = {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": 1000,
        "yen_per_point": 10, "per_kiosk_yen": 500, "areas": [], "start": None, "end": None}
ACTIVITY = {"id": "event-shift", "title": "イベントの受付（2時間）", "title_en": "Event reception (2 hours)",
            "points": 10}


@pytest.fixture
def exchanged(portal, tmp_path) -> str:  # noqa: ANN001
    """A ¥1,000 gift (10 points), a volunteer grant (10 points) and two exchanges of 6 and 4 points (¥60 and ¥40 of
    the sponsor's, to こども食堂) at one kiosk, synced; returns this month (YYYY-MM, Japan)."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "staff1", PASSWORD, "staff")
    pointrules.save(eng, 1, [ACTIVITY])
    rig = make_rig(tmp_path, "center-1f")
    try:
        up = enrolled(rig, portal)
        rig.donate(1, card=CARD, amounts=(1000,))
        token = rig.pepper.token(fake_idm(CARD))
        rig.ledger.grant_points(token, 10, "event-shift", 1)
        assert up.sync_once().ok
        pools.save_pool(eng, POOL)
        assert up.sync_once().ok  # the allocation, in the signed config
        pointsync.ask(up, token, hexes_of(token), 0)
        day = rig.ledger.business_date()
        for pts in (6, 4):
            exchange(rig.ledger, token, pts, "kodomo", "children", pools_for(load_applied(rig.cfg.data_dir),
                     rig.kiosk_id), pointsync.last_word(rig.cfg.data_dir, hexes_of(token)), day)
        assert up.sync_once().ok
        return f"{day:%Y-%m}"
    finally:
        rig.ledger.close(checkpoint=False)


def _text(cell: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", cell).split())


def _cells(html: str, table: str) -> list[list[str]]:
    """The text of each data row's cells of the table ``id=table`` (tags dropped: the name and the ID under it)."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [[_text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S) if "<td" in row]


def test_the_reconciliation_names_the_sponsor_and_the_project(exchanged, portal) -> None:  # noqa: ANN001
    s, _ = staff_session(portal.url, "staff1")
    ja = s.get(f"{portal.url}/staff/reconciliation?month={exchanged}", timeout=10).text
    assert _cells(ja, "sponsor-money")[0] == ["みどり銀行 midori-bank", "こども食堂 kodomo", "10", "¥100"]
    s, _ = staff_session(portal.url, "staff1", lang="en")
    en = s.get(f"{portal.url}/staff/reconciliation?month={exchanged}", timeout=10).text
    assert _cells(en, "sponsor-money")[0] == ["Midori Bank midori-bank", "Kids cafeteria kodomo", "10", "¥100"]


def test_the_points_report_names_activities_and_pools(exchanged, portal) -> None:  # noqa: ANN001
    s, _ = staff_session(portal.url, "staff1")
    page = s.get(portal.url + "/staff/points-report", timeout=10).text
    issued = {r[1]: r[2] for r in _cells(page, "issued")}
    assert issued["イベントの受付（2時間） event-shift"] == "10", issued
    assert _cells(page, "exchanged") == [[exchanged, "みどり銀行 midori-bank", "10", "¥100"]]
    assert _cells(page, "balances") == [["みどり銀行 midori-bank", "¥1,000", "¥100", "¥900"]]
    s, _ = staff_session(portal.url, "staff1", lang="en")
    en = s.get(portal.url + "/staff/points-report", timeout=10).text
    assert "Event reception (2 hours) event-shift" in [r[1] for r in _cells(en, "issued")]
    assert _cells(en, "balances")[0][0] == "Midori Bank midori-bank"


def test_the_points_csv_can_be_checked_without_the_page(exchanged, portal) -> None:  # noqa: ANN001
    s, _ = staff_session(portal.url, "staff1")
    text = s.get(portal.url + "/staff/points-report.csv", timeout=10).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    header = text.splitlines()[0].split(",")
    assert header[:5] == ["kind", "month", "what", "points", "yen"], "older readers find the first five columns"
    assert {"name", "funded_yen", "spent_yen", "left_yen"} <= set(header)
    by = {(r["kind"], r["what"]): r for r in rows}
    assert by[("issued", "volunteer:event-shift")]["name"] == "イベントの受付（2時間）"
    assert by[("issued", "giving")]["points"] == "10"
    ex = [r for r in rows if r["kind"] == "exchanged"]
    bal = by[("pool_balance", "pool:midori-bank")]
    assert bal["name"] == "みどり銀行" and all(r["name"] == "みどり銀行" for r in ex)
    # The auditor's check, from the CSV alone: the pool's exchanged rows add up to its balance row, and what was
    # funded minus what was spent is what is left.
    assert sum(int(r["points"]) for r in ex) == int(bal["points"]) == 10
    assert sum(int(r["yen"]) for r in ex) == int(bal["spent_yen"]) == 100
    assert (int(bal["funded_yen"]), int(bal["left_yen"])) == (1000, 900)
    assert bal["yen"] == "", "the yen left is under left_yen now, never under the column the exchanges' yen use"
