"""USB export into a fake mounted stick: every file there, CSV totals right, no card ID anywhere."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.cli import main
from kiosk.ledger import settled_report, verify_path
from kiosk.staff.closeout import z_report
from kiosk.staff.usb_export import UsbExportError, export_day, find_sticks

from .conftest import DAY1, DAY2, fill_two_days

MOUNTS = """\
/dev/mmcblk0p2 / ext4 ro,noatime 0 0
/dev/mmcblk0p3 /var/lib/kiosk ext4 rw,noatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev 0 0
/dev/sdb1 /media/kiosk/READONLY vfat ro,nosuid 0 0
/dev/sda1 /media/kiosk/sda1 vfat rw,nosuid,nodev,noexec,uid=1001,flush 0 0
/dev/sdc1 /run/media/staff/CITY\\040USB exfat rw,nosuid 0 0
"""


def fake_stick(root: Path) -> tuple[Path, Path]:
    mounts = root / "proc-mounts"
    root.mkdir(parents=True, exist_ok=True)
    mounts.write_text(MOUNTS)
    for d in ("media/kiosk/sda1", "media/kiosk/READONLY", "run/media/staff/CITY USB"):
        (root / d).mkdir(parents=True)
    return root / "media/kiosk/sda1", mounts


def test_find_sticks_reads_proc_mounts(tmp_path):
    stick, mounts = fake_stick(tmp_path / "root")
    found = find_sticks(tmp_path / "root", mounts)
    assert [s.path for s in found] == [stick, tmp_path / "root/run/media/staff/CITY USB"]
    assert found[0].device == "/dev/sda1" and found[0].fstype == "vfat"
    assert find_sticks(tmp_path / "root", tmp_path / "missing") == []


def all_bytes(directory: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(directory.rglob("*")) if p.is_file()]


def assert_no_idm(directory: Path, idms: list[bytes]) -> None:
    for path, data in all_bytes(directory):
        for raw in idms:
            for needle in (raw, raw.hex().encode(), raw.hex().upper().encode()):
                assert needle not in data, f"IDm {raw.hex()} found in {path.name}"
        if path.suffix == ".jsonl":  # bodies are base64 in the export: look inside them too
            import base64

            for line in data.decode().splitlines()[1:]:
                body = base64.b64decode(json.loads(line)["body"])
                assert not any(raw.hex().encode() in body or raw in body for raw in idms)


def test_export_writes_ledger_closeout_csv_and_redacted_log(site, tmp_path):
    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    z = z_report(site.writer, DAY1)
    stick, _ = fake_stick(tmp_path / "root")
    leaked = site.idms[0].hex()
    log_lines = [f"2025-11-21T10:00:00+0900 kiosk: tap from {leaked} ok", "2025-11-21T10:00:01+0900 kiosk: donation ok"]
    seen_window = []

    def logs(start_ms: int, end_ms: int):  # noqa: ANN202
        seen_window.append((start_ms, end_ms))
        return log_lines

    now = datetime(2025, 11, 22, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    r = export_day(stick, site.cfg.ledger_path, kiosk_id="test-kiosk-1", day=DAY1, titles={"kodomo": "こども食堂"},
                   logs=logs, now=now)
    assert r.directory == stick / "kiosk-test-kiosk-1-20251122-090000"
    names = sorted(p.name for p in r.directory.iterdir())
    assert names == ["MANIFEST.txt", "closeout-2025-11-21.csv", "kiosk-2025-11-21.log", "ledger.jsonl"]
    assert not list(r.directory.glob(".*.tmp"))  # no temp file left behind (durable.write_atomic)
    # The ledger export verifies on its own.
    assert r.entries == site.ledger.size and verify_path(r.directory / "ledger.jsonl").ok
    # The CSV is the Z report for the day and adds up to `kiosk ledger report`.
    rows = list(csv.DictReader(io.StringIO((r.directory / "closeout-2025-11-21.csv").read_text("utf-8-sig"))))
    total = next(row for row in rows if row["row"] == "total")
    rep = settled_report(((e.seq, e.obj) for e in site.ledger.iter_entries()), DAY1)
    assert int(total["total_yen"]) == rep["total_yen"] == 1500 and int(total["count"]) == rep["count"]
    assert int(total["close_out_seq"]) == z.seq
    assert sum(int(row["total_yen"]) for row in rows if row["row"] == "project") == 1500
    assert sum(int(row["total_yen"]) for row in rows if row["row"] == "method") == 1500
    # The log covers the business day in JST, and the leaked IDm was redacted.
    lo, hi = site.ledger.day_bounds_ms(DAY1)
    assert seen_window == [(lo, hi)]
    log_text = (r.directory / "kiosk-2025-11-21.log").read_text()
    assert "[IDm]" in log_text and "donation ok" in log_text
    assert_no_idm(r.directory, site.idms)
    manifest = (r.directory / "MANIFEST.txt").read_text()
    assert "ledger.jsonl" in manifest and "business date 2025-11-21" in manifest


def test_unclosed_day_exports_running_totals_and_says_so(site, tmp_path):
    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    stick, _ = fake_stick(tmp_path / "root")
    r = export_day(stick, site.cfg.ledger_path, kiosk_id="test-kiosk-1", day=DAY2)
    assert r.closeout["close_out_seq"] is None and r.closeout["total_yen"] == 1500
    assert any("not closed yet" in n for n in r.notes)
    assert_no_idm(r.directory, site.idms)


def test_export_refuses_a_missing_stick(site, tmp_path):
    with pytest.raises(UsbExportError):
        export_day(tmp_path / "nowhere", site.cfg.ledger_path, kiosk_id="test-kiosk-1")


def test_export_cli(site, tmp_path, capsys):
    fill_two_days(site.ledger, site.pepper, site.clock, site.idms)
    stick, _ = fake_stick(tmp_path / "root")
    capsys.readouterr()
    assert main(["export", "usb", "--config", str(site.config_path), "--stick", str(stick), "--date",
                 DAY1.isoformat(), "--no-logs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f[0] for f in out["files"]] == ["ledger.jsonl", "closeout-2025-11-21.csv", "MANIFEST.txt"]
    assert_no_idm(Path(out["directory"]), site.idms)


def test_export_refuses_a_ledger_holding_an_idm_shaped_value(site, tmp_path):
    # Simulates a future bug that records a raw card ID: the exporter must not carry it off.
    site.ledger.append("admin_action", {"action": "reader_test", "by": "pin", "card": site.idms[0].hex()})
    stick, _ = fake_stick(tmp_path / "root")
    with pytest.raises(UsbExportError, match="IDm-shaped"):
        export_day(stick, site.cfg.ledger_path, kiosk_id="test-kiosk-1", day=DAY1)
    assert list(stick.iterdir()) == []  # no half export left behind
