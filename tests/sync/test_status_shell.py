"""`kiosk status` over ssh (a process of its own, beside `kiosk run`) says what the menu's status page says about
sync: it reads the sync state the running kiosk's sync thread saves after every round (sync-state.json), and the
ledger's newest entry, instead of "last sync never; ? pending" in red for a kiosk that synced a minute ago.

Real kiosk ledger and keys, a real portal on loopback, the real CLI."""

from __future__ import annotations

import json

from kiosk.app.runtime import App
from kiosk.cli import main as kiosk_main
from kiosk.ops.status import LEDGER_MISMATCH
from kiosk.sync import uploader
from server_sync.portal_cli import main as portal_main
from tests.app.drive import headless_cfg
from tests.loopback import refused_port


def _status(cfg: str, capsys) -> dict[str, dict]:  # noqa: ANN001
    capsys.readouterr()
    assert kiosk_main(["status", "--config", cfg, "--json"]) == 0
    return {i["key"]: i for i in json.loads(capsys.readouterr().out)["items"]}


def test_status_from_a_shell_reads_what_the_sync_thread_saved(portal, rig, db_url, capsys):
    rig.donate(3)
    cfg = str(rig.config_path)  # no [portal] url: the kiosk syncs with the portal it enrolled with
    assert portal_main(["enroll-code", "--db", db_url, "--kiosk-id", rig.kiosk_id]) == 0
    code = capsys.readouterr().out.strip()
    assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url, "--code", code]) == 0
    assert kiosk_main(["sync", "--config", cfg, "--once"]) == 0

    items = _status(cfg, capsys)
    assert items["network"]["level"] == "green" and items["network"]["value"] == "portal reachable, enrolled"
    assert items["sync"]["level"] == "green" and items["sync"]["value"].endswith("; 0 pending"), items["sync"]
    assert "never" not in items["sync"]["value"]
    assert items["disk"]["level"] == "green"

    # Gifts taken since the last round are pending (their intents and donations: entries), though the saved
    # state predates them.
    acknowledged = rig.ledger.size
    rig.donate(2)
    assert rig.ledger.size - acknowledged >= 4
    items = _status(cfg, capsys)
    assert items["sync"]["value"].endswith(f"; {rig.ledger.size - acknowledged} pending"), items["sync"]

    # The portal is down: the round's error is shown, and how many are pending is not known (it may have come
    # back from a backup), never 0.
    portal.stop()
    assert kiosk_main(["sync", "--config", cfg, "--once", "--attempts", "1"]) == 1
    items = _status(cfg, capsys)
    assert items["network"]["level"] == "yellow" and items["network"]["value"] == "network up, portal unreachable"
    assert items["sync"]["level"] == "red" and "last error:" in items["sync"]["value"], items["sync"]
    assert "? pending" in items["sync"]["value"]

    # A state file a power cut left unreadable: said, not taken for "never synced".
    state = rig.cfg.data_dir / "sync-state.json"
    state.write_bytes(b"\x00" * 40)
    items = _status(cfg, capsys)
    assert items["sync"]["level"] == "red" and "sync-state.json is unreadable" in items["sync"]["value"]


def test_status_from_a_shell_shows_a_ledger_the_portal_does_not_hold_as_red(rig, tmp_path, capsys):
    state = rig.cfg.data_dir / "sync-state.json"
    st = uploader.SyncState(portal_url="http://127.0.0.1:9", kiosk_id=rig.kiosk_id, enrolled_ms=1, local_size=1,
                            accepted_through_seq=1, last_success_ms=1, last_error="ledger mismatch",
                            extra={uploader.LEDGER_MISMATCH: "the portal holds another history"})
    st.save(state)
    rig.donate(1)
    items = _status(str(rig.config_path), capsys)
    assert items["sync"]["level"] == "red" and "does not match the portal" in items["sync"]["value"]
    assert uploader.LEDGER_MISMATCH == LEDGER_MISMATCH  # kiosk.ops states the sync thread's key itself


def test_the_menu_of_a_kiosk_enrolled_without_a_portal_in_its_config_shows_its_sync(tmp_path):
    """`kiosk enroll --portal URL` on a config with no [portal] url: the kiosk syncs with that portal, so the
    status page must show its sync, not "offline kiosk (no portal configured)" in green."""
    data = tmp_path / "data"
    data.mkdir()
    cfg = headless_cfg(data, (320, 180))
    assert not cfg.portal.url
    with refused_port() as port:
        uploader.SyncState(portal_url=f"http://127.0.0.1:{port}", kiosk_id=cfg.kiosk.id, enrolled_ms=1,
                           last_error="network: connection refused").save(data / "sync-state.json")
        app = App(cfg)
        try:
            app.start()
            assert app.staff is not None and app.staff.sync is not None  # it does sync
            x = app.staff.status_inputs()
            assert x.portal_configured
        finally:
            app.close()
