"""The status page model: measurements in, green/yellow/red out."""

from __future__ import annotations

from kiosk.ops.status import (
    StatusInputs,
    StatusItem,
    ledger_figures,
    overall,
    read_disk_free,
    read_soc_temp,
    read_uptime,
    status_items,
)

GOOD = dict(reader_state="connected", last_family="suica", payment_state="ready", portal_configured=True,
            network_up=True, portal_reachable=True, enrolled=True, last_sync_age_s=30, pending_entries=0,
            ledger_ok=True, ledger_entries=1234, last_seq=1234, ledger_bytes=5_000_000,
            disk_free_bytes=8 * 2**30, soc_temp_c=52.5, uptime_s=3 * 86400 + 3600, version="0.1.0",
            dropped_frames_per_min=0, switch_gap_ms=12)


def by_key(items: list[StatusItem]) -> dict[str, StatusItem]:
    return {i.key: i for i in items}


def test_all_green():
    items = status_items(StatusInputs(**GOOD))
    assert [i.key for i in items] == ["reader", "payment", "network", "sync", "ledger", "disk", "temperature",
                                      "uptime", "version", "player"]
    assert overall(items) == "green", [i for i in items if i.level != "green"]
    k = by_key(items)
    assert "suica" in k["reader"].value and "1234 entries, last seq 1234" in k["ledger"].value
    assert k["uptime"].value == "3d 1h 0m"


def test_each_fault_turns_its_item():
    cases = [
        (dict(reader_state="lost", reader_detail="ENODEV"), "reader", "yellow"),
        (dict(reader_state="fault", reader_detail="permission denied"), "reader", "red"),
        (dict(payment_state="offline"), "payment", "red"),
        (dict(network_up=False), "network", "red"),
        (dict(portal_reachable=False), "network", "yellow"),
        (dict(enrolled=False), "network", "red"),
        (dict(pending_entries=40, last_sync_age_s=2 * 3600), "sync", "yellow"),
        (dict(pending_entries=40, last_sync_age_s=5 * 3600), "sync", "red"),
        (dict(pending_entries=40, last_sync_age_s=None), "sync", "red"),
        (dict(ledger_ok=False), "ledger", "red"),
        (dict(disk_free_bytes=100 * 2**20), "disk", "red"),
        (dict(disk_free_bytes=500 * 2**20), "disk", "yellow"),
        (dict(soc_temp_c=75), "temperature", "yellow"),
        (dict(soc_temp_c=82), "temperature", "red"),
        (dict(dropped_frames_per_min=5), "player", "yellow"),
        (dict(switch_gap_ms=800), "player", "red"),
    ]
    for change, key, level in cases:
        items = status_items(StatusInputs(**{**GOOD, **change}))
        item = by_key(items)[key]
        assert item.level == level, (change, item)
        assert overall(items) == level
        assert item.hint or item.value == "unknown"


def test_offline_kiosk_network_is_green():
    k = by_key(status_items(StatusInputs(**{**GOOD, "portal_configured": False, "network_up": False})))
    assert k["network"].level == "green" and k["sync"].level == "green"


def test_probes_read_injected_files(tmp_path, site):
    (tmp_path / "temp").write_text("48312\n")
    (tmp_path / "uptime").write_text("12345.67 40000.00\n")
    assert read_soc_temp(tmp_path / "temp") == 48.312
    assert read_soc_temp(tmp_path / "none") is None
    assert read_uptime(tmp_path / "uptime") == 12345.67
    assert read_disk_free(tmp_path / "not/yet/made") > 0
    fig = ledger_figures(site.ledger)
    assert fig["last_seq"] == site.ledger.size and fig["ledger_bytes"] > 0


def test_status_cli(site, capsys):
    import json

    from kiosk.cli import main

    capsys.readouterr()
    assert main(["status", "--config", str(site.config_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    items = {i["key"]: i for i in out["items"]}
    assert items["ledger"]["value"].startswith(f"{site.ledger.size} entries, last seq {site.ledger.size}")
    assert items["network"]["level"] == "green"  # no portal configured
    assert out["overall"] in ("green", "yellow", "red")
