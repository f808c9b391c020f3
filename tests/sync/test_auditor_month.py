"""An auditor checks a month's donations (docs/receipts.md, "An auditor's walkthrough", step 4): two kiosks gave
gifts on both sides of a month's end, one voided, and synced to a real portal on loopback; the auditor holds each
kiosk's export (the real `kiosk ledger export` process) against the portal's month CSV (`/staff/reconciliation.csv`,
handed over by the center's staff) with the real `kiosk ledger report --month` process.

1. `kiosk ledger report` had only `--date` (one day) or all dates: a month meant 31 runs a kiosk, and its text
   named neither the kiosk nor the voided gifts, while the month CSV has one `total` row per kiosk and day.
2. A file of the wrong kind from the same USB stick (the month CSV, the portal's database, a saved receipt) was
   "INVALID at seq=0" for `kiosk ledger verify` (the word for a tampered ledger), and a traceback for
   `kiosk ledger export` and `kiosk ledger report`.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from sync_helpers import enrolled, make_rig, staff_session

from kiosk.ledger.clock import FixedClock
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from tests.auditor_files import english, kiosk

JST = ZoneInfo("Asia/Tokyo")


def _ms(m: int, d: int, h: int) -> int:
    return int(datetime(2026, m, d, h, tzinfo=JST).timestamp() * 1000)


@pytest.fixture
def site(db_url: str, tmp_path: Path):
    yield from _site(db_url, tmp_path)


@pytest.fixture
def sqlite_site(tmp_path: Path):
    yield from _site(f"sqlite:///{tmp_path}/portal.db", tmp_path)


def _site(db_url: str, tmp_path: Path):
    """Kiosk "lobby": 3 gifts on 30 November, 20:00 JST; 4 on 2 December, the first voided. Kiosk "2f": 3 on
    1 December, 4 on 2 December, the first voided. Both synced; the auditor's USB stick holds their exports and
    the portal's CSVs of November and December."""
    portal = start_portal(db_url)
    add_user(portal.app.state.engine, "staff1", "correct horse battery", "staff")
    stick = tmp_path / "usb"
    stick.mkdir()
    try:
        for kid, start in (("lobby", _ms(11, 30, 20)), ("2f", _ms(12, 1, 9))):
            rig = make_rig(tmp_path, kid, clock=FixedClock(wall_ms=start), checkpoint_every=5)
            rig.donate(3)
            rig.clock.wall = _ms(12, 2, 10)
            rig.ledger.void(rig.donate(4)[0].seq, "wrong amount")
            up = enrolled(rig, portal)
            assert up.sync_once().ok
            up.close()
            rig.ledger.close(checkpoint=True)
            r = kiosk("ledger", "export", str(rig.cfg.ledger_path), "--out", str(stick / f"{kid}.jsonl"))
            assert r.returncode == 0, r.stderr
        s, _ = staff_session(portal.url, "staff1", password="correct horse battery")
        for month in ("2026-11", "2026-12"):
            r = s.get(f"{portal.url}/staff/reconciliation.csv", params={"month": month}, timeout=10)
            assert r.status_code == 200
            (stick / f"reconciliation-{month}.csv").write_bytes(r.content)
        yield stick, portal, tmp_path
    finally:
        portal.stop()


def _csv_days(path: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    """The month CSV's `total` rows: (kiosk, day) → (count, total_yen, voided_count)."""
    rows = csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig")))
    return {(r["kiosk_id"], r["business_date"]): (int(r["count"]), int(r["total_yen"]), int(r["voided_count"]))
            for r in rows if r["row"] == "total"}


def test_a_months_report_of_each_export_matches_the_portals_month_csv(site):
    stick, portal, _ = site
    for month in ("2026-11", "2026-12"):
        from_ledgers = {}
        for kid in ("lobby", "2f"):
            r = kiosk("ledger", "report", str(stick / f"{kid}.jsonl"), "--month", month, "--json")
            assert r.returncode == 0, r.stderr
            rep = json.loads(r.stdout)
            assert rep["kiosk_id"] == kid and rep["from"] == f"{month}-01"
            assert rep["count"] == sum(d["count"] for d in rep["days"])
            assert rep["total_yen"] == sum(d["total_yen"] for d in rep["days"])
            from_ledgers |= {(kid, d["date"]): (d["count"], d["total_yen"], d["voided"]) for d in rep["days"]}
        assert from_ledgers == _csv_days(stick / f"reconciliation-{month}.csv")
    # The figures themselves, so that a shared mistake in both cannot hide.
    assert _csv_days(stick / "reconciliation-2026-11.csv") == {("lobby", "2026-11-30"): (3, 300, 0)}
    dec = kiosk("ledger", "report", str(stick / "2f.jsonl"), "--month", "2026-12")
    assert dec.returncode == 0, dec.stderr
    lines = dec.stdout.splitlines()
    assert "端末 kiosk: 2f" in lines and "期間 period: 2026-12-01 〜 2026-12-31" in lines
    assert "件数 count: 6   合計 total: ¥2,800   ポイント points: 28" in lines
    assert "取り消された寄付（数えていません） voided, not counted: 1" in lines
    assert [x.split() for x in lines[lines.index("日ごと by day:") + 1:]] == [
        ["2026-12-01", "3件", "¥", "300"], ["2026-12-02", "3件", "¥", "2,500", "取り消し", "voided", "1件"]]
    # And every month's report adds up to the whole ledger's, which is the portal's public total.
    public = requests.get(f"{portal.url}/api/v1/totals", timeout=10).json()
    whole = [json.loads(kiosk("ledger", "report", str(stick / f"{k}.jsonl"), "--json").stdout) for k in ("lobby", "2f")]
    assert public["count"] == sum(w["count"] for w in whole)
    assert public["total_yen"] == sum(w["total_yen"] for w in whole)


def test_a_month_that_is_not_one_is_refused(tmp_path):
    stick = tmp_path
    for bad in ("2026-13", "2026-12-01"):
        r = kiosk("ledger", "report", str(stick / "2f.jsonl"), "--month", bad)
        assert r.returncode == 2 and "YYYY-MM" in r.stderr and "Traceback" not in r.stderr


def test_a_file_of_the_wrong_kind_is_named_never_invalid_and_never_a_traceback(sqlite_site):
    stick, portal, tmp_path = sqlite_site
    receipt = stick / "receipt.json"
    receipt.write_text(json.dumps({"amount_yen": 500, "verification": {"checkpoint": "x"}}))
    portal_db = portal.db_url.removeprefix("sqlite:///")
    csv_file = stick / "reconciliation-2026-12.csv"
    files = {csv_file: "it looks like a CSV file", receipt: "it is a saved receipt answer", stick: "is a folder",
             Path(portal_db): "is an SQLite database but not a kiosk ledger"}
    for path, what in files.items():
        r = kiosk("ledger", "verify", str(path))
        assert r.returncode == 1 and "INVALID" not in r.stdout, r.stdout
        assert english(r.stdout).startswith(f"NOT CHECKED: {path} ") and what in r.stdout, r.stdout
    r = kiosk("ledger", "verify", str(csv_file), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["checked"] is False
    for path in (csv_file, Path(portal_db)):  # report and export used to end in a traceback on these
        what = files[path]
        for args, said in ((("report", str(path)), "nothing counted"),
                           (("export", str(path), "--out", str(tmp_path / "out.jsonl")), "nothing exported")):
            r = kiosk("ledger", *args)
            assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
            assert r.stderr.startswith(f"kiosk ledger {args[0]}: {said}: {path} ") and what in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "out.jsonl").exists()
    # An export given to `export`: it takes the database.
    r = kiosk("ledger", "export", str(stick / "2f.jsonl"), "--out", str(tmp_path / "out.jsonl"))
    assert r.returncode == 1 and "is already an export" in r.stderr and "Traceback" not in r.stderr
