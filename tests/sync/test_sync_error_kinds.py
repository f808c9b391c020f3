"""The kind of the uploader's last error (what staff are told: kiosk.ops.status.SYNC_ERRORS) is set where the error
is built and saved beside it in sync-state.json (``last_error_kind``), never read back out of its English words.

Before, the uploader saved only the message and the status page sorted it by its prefix ("network: ", "HTTP 503",
"kiosk is not enrolled"...): rewording a message silently changed what staff were told, the running kiosk took any
error for "portal unreachable", and "Sync now" raised a RuntimeError the menu said as a bug (予期しないエラー).

Each kind is made here by the real uploader against real loopback servers (a refused port, servers answering 503,
403, a redirect, a lying heartbeat, a config it cannot take), a real portal on a real full disk, and a real
sync-state.json; the status page is read through `kiosk status` (its own process's code: the real CLI) and the
running kiosk's StaffSide (a real App).
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # the App tests below: no window, no sound card
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import dataclasses  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from sync_helpers import Rig, make_rig  # noqa: E402

from kiosk.cli import main as kiosk_main  # noqa: E402
from kiosk.ops.status import SYNC_ERRORS, StatusInputs, saved_sync_figures, status_items, sync_error_kind  # noqa: E402
from kiosk.sync.uploader import SyncError, SyncState  # noqa: E402
from kiosk.ui.i18n import gettext_for  # noqa: E402
from tests.loopback import Handler, LoopbackServer, answering, refused_port  # noqa: E402

# --- the uploader's failures, each of one kind ----------------------------------------------------------------

def _heartbeat_answering(kiosk_id: str, held_more: int, config_version: int) -> type[Handler]:
    """A server that answers the heartbeat as a portal would, holding ``held_more`` entries more than the kiosk's
    ledger, announcing config ``config_version``; its config answer is v0 (not newer than anything applied)."""
    class Portalish(Handler):
        def do_POST(self) -> None:  # noqa: N802
            sent = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            size = int(sent.get("ledger_size", 0)) + held_more
            self.answer(200, json.dumps({"kiosk_id": kiosk_id, "accepted_through_seq": size, "checkpoint_size": 0,
                                         "config_version": config_version}).encode())

        def do_GET(self) -> None:  # noqa: N802
            self.answer(200, json.dumps({"version": 0, "config": {}}).encode())

    return Portalish


def _enrolled_with(rig: Rig, url: str) -> None:
    """A sync-state.json as `kiosk enroll` leaves it (the enrollment itself is the portal's business)."""
    SyncState(portal_url=url, kiosk_id=rig.kiosk_id, key_id="key-1", enrolled_ms=int(time.time() * 1000)).save(
        rig.cfg.data_dir / "sync-state.json")


def _round(rig: Rig, url: str = "") -> SyncState:
    up = rig.uploader(url)
    try:
        return up.sync_once(max_attempts=1)
    finally:
        up.close()


def _served(handler: Callable[[Rig], type[Handler]]) -> Callable[[Rig], SyncState]:
    def make(rig: Rig) -> SyncState:
        with LoopbackServer(handler(rig)) as server:
            _enrolled_with(rig, server.url)
            return _round(rig)
    return make


def _network(rig: Rig) -> SyncState:
    with refused_port() as port:
        _enrolled_with(rig, f"http://127.0.0.1:{port}")
        return _round(rig)


def _not_enrolled(rig: Rig) -> SyncState:
    with refused_port() as port:
        return _round(rig, f"http://127.0.0.1:{port}")


SAVED: dict[str, Callable[[Rig], SyncState]] = {
    "network": _network,
    "portal_busy": _served(lambda r: answering(503, b'{"error": "unavailable", "reason": "Service Unavailable"}')),
    "refused": _served(lambda r: answering(403, b'{"error": "forbidden", "reason": "kiosk revoked"}')),
    "bad_answer": _served(lambda r: answering(302, b"", {"Location": "http://wifi.example/login"})),
    "mismatch": _served(lambda r: _heartbeat_answering(r.kiosk_id, held_more=5, config_version=0)),
    "not_enrolled": _not_enrolled,
}
"""Failures whose round saves sync-state.json: kind -> how the real uploader meets it."""


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    r.donate(3)
    yield r
    r.ledger.close(checkpoint=False)


def _saved(rig: Rig) -> dict[str, Any]:
    return json.loads((rig.cfg.data_dir / "sync-state.json").read_text("utf-8"))


def _status(rig: Rig, capsys: Any) -> dict[str, dict[str, Any]]:
    """`kiosk status --json`, the real CLI (what staff read over ssh): its items by key."""
    capsys.readouterr()
    assert kiosk_main(["status", "--config", str(rig.config_path), "--json"]) == 0
    return {i["key"]: i for i in json.loads(capsys.readouterr().out)["items"]}


@pytest.mark.parametrize("kind", sorted(SAVED))
def test_each_kind_is_saved_in_sync_state_beside_the_error(kiosk: Rig, kind: str, capsys: Any) -> None:
    state = SAVED[kind](kiosk)
    saved = _saved(kiosk)
    assert saved["last_error"] and saved["last_error_kind"] == kind, saved
    assert state.last_error_kind == kind
    assert SyncState.load(kiosk.cfg.data_dir / "sync-state.json").last_error_kind == kind  # read back as saved
    items = _status(kiosk, capsys)
    if kind == "mismatch":  # its own row (extra["ledger_mismatch"]): stop taking gifts, whatever the error says
        assert items["sync"]["value"].startswith("ledger does not match"), items["sync"]
        assert items["network"]["value"] == "portal reachable, enrolled", items["network"]
        return
    assert items["sync"]["cause"] == kind and items["sync"]["hint"] == SYNC_ERRORS[kind][1], items["sync"]


def test_an_unreadable_sync_record_is_its_own_kind(kiosk: Rig) -> None:
    """Not saved (the unreadable file is kept as it is: SyncState.save refuses), so the kind is the running
    kiosk's to show (BackgroundSync.status() is the state's to_json)."""
    path = kiosk.cfg.data_dir / "sync-state.json"
    path.write_bytes(b"")  # a power cut on an SD card that lied about its writes
    state = _round(kiosk)
    assert state.last_error_kind == "state_unreadable" and state.to_json()["last_error_kind"] == "state_unreadable"
    assert path.read_bytes() == b""


def test_a_full_disk_is_the_local_save_kind(tmp_path: Path) -> None:
    """A real portal, and the kiosk's own disk full (a real tmpfs): the round cannot save its state."""
    from server_sync.embedded import start_portal
    from tests.mounts import fill, small_tmpfs

    with small_tmpfs(tmp_path / "data", size="8m") as d:
        rig = make_rig(d)
        portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
        try:
            up = rig.uploader(portal.url)
            up.enroll(portal.issue_code(rig.kiosk_id))
            rig.donate(3)
            filler = fill(d)
            st = up.sync_once(max_attempts=1)
            assert st.last_error and "No space left on device" in st.last_error, st.last_error
            assert st.last_error_kind == "local_save"
            filler.unlink()
            up.close()
        finally:
            portal.stop()
            rig.ledger.close(checkpoint=False)


def test_a_config_the_kiosk_cannot_take_is_the_config_kind(kiosk: Rig, capsys: Any) -> None:
    """The portal announces config v1 and then answers v0: refused (it would roll the kiosk back), recorded in
    extra["config_error"], and the round goes on (donations first). Its kind is "config" whatever it says."""
    with LoopbackServer(_heartbeat_answering(kiosk.kiosk_id, held_more=0, config_version=1)) as server:
        _enrolled_with(kiosk, server.url)
        state = _round(kiosk)
    assert state.last_error is None and state.extra.get("config_error"), state
    figures = saved_sync_figures(_saved(kiosk), kiosk.ledger.size, int(time.time() * 1000))
    assert figures["sync_error_kind"] == "config" and figures["portal_reachable"] is True
    items = _status(kiosk, capsys)
    assert items["sync"]["cause"] == "config" and items["network"]["value"] == "portal reachable, enrolled", items


# --- what staff are told does not hang on the words ------------------------------------------------------------
def _sync_item(error: str, kind: str | None) -> Any:
    x = StatusInputs(portal_configured=True, network_up=True, portal_reachable=True, enrolled=True,
                     pending_entries=3, last_sync_age_s=60.0, sync_error=error, sync_error_kind=kind)
    return {i.key: i for i in status_items(x)}


@pytest.mark.parametrize("kind", ["network", "portal_busy", "refused", "not_enrolled"])
def test_rewording_an_error_changes_nothing_staff_are_told(kind: str) -> None:
    """The same kind in other words: the status page and the menu's Japanese say the same; only the details line
    (the words themselves) differs. By the words alone each of these would have been told as another kind."""
    reworded = SyncError(f"something else entirely went wrong ({kind}, worded anew)", kind=kind)
    assert sync_error_kind(str(reworded)) != kind  # the words no longer say it: the old reading would have erred
    from kiosk.staff.menu import status_text

    ja = gettext_for("ja")
    usual = {"network": "network: ConnectionError: [Errno 111] Connection refused",
             "portal_busy": "HTTP 503 unavailable: Service Unavailable",
             "refused": "HTTP 403 forbidden: kiosk revoked",
             "not_enrolled": "kiosk is not enrolled with this portal: run `kiosk enroll`"}[kind]
    before, after = _sync_item(usual, kind), _sync_item(str(reworded), reworded.kind)
    for key in ("sync", "network"):
        assert (after[key].level, after[key].cause, after[key].hint) == (before[key].level, before[key].cause,
                                                                         before[key].hint), key
    assert after["sync"].cause == kind
    said = [status_text.value(after["sync"], ja), status_text.item_hint(after["sync"], ja)]
    assert said == [status_text.value(before["sync"], ja), status_text.item_hint(before["sync"], ja)]
    assert status_text.last_error_lines(str(reworded), ja, kind)[:2] == status_text.last_error_lines(usual, ja,
                                                                                                     kind)[:2]


def test_a_reworded_error_in_a_saved_state_is_still_told_by_its_kind(kiosk: Rig, capsys: Any) -> None:
    """A real network failure saved by the uploader, its words changed on disk (a later release's rewording): `kiosk
    status` still says the network, and the portal unreachable."""
    _network(kiosk)
    path = kiosk.cfg.data_dir / "sync-state.json"
    saved = _saved(kiosk)
    saved["last_error"] = "Die Verbindung wurde abgelehnt"  # no "network: " prefix
    path.write_text(json.dumps(saved), "utf-8")
    items = _status(kiosk, capsys)
    assert items["sync"]["cause"] == "network", items["sync"]
    assert items["network"]["value"] == "network up, portal unreachable", items["network"]


# --- a sync-state.json of an older release ---------------------------------------------------------------------
def test_an_older_sync_state_without_the_kind_loads_and_is_told_by_its_words(kiosk: Rig, capsys: Any) -> None:
    SAVED["portal_busy"](kiosk)
    path = kiosk.cfg.data_dir / "sync-state.json"
    older = _saved(kiosk)
    del older["last_error_kind"]  # as a release before it wrote the file
    path.write_text(json.dumps(older, indent=1), "utf-8")
    st = SyncState.load(path)
    assert st.unreadable is None and st.enrolled_ms is not None and st.last_error_kind is None
    assert st.last_error and st.last_error.startswith("HTTP 503")
    items = _status(kiosk, capsys)
    assert items["sync"]["cause"] == "portal_busy", items["sync"]  # read from the words: the only way for it
    assert items["network"]["value"] == "network up, portal unreachable"
    # A kind the release does not know (a newer one's, after a downgrade) is told as "other", not guessed.
    newer = {**older, "last_error_kind": "a_kind_of_tomorrow"}
    path.write_text(json.dumps(newer), "utf-8")
    assert _status(kiosk, capsys)["sync"]["cause"] == "other"


def test_kiosk_status_says_an_unreadable_sync_record_needs_a_new_enrollment(kiosk: Rig, capsys: Any) -> None:
    """`kiosk status` said "the next sync round writes it again" (no round does: the uploader keeps the file and
    cannot sync until enrolled again) and sorted it as "other" (press Sync now)."""
    _network(kiosk)
    (kiosk.cfg.data_dir / "sync-state.json").write_bytes(b"\x00" * 40)
    items = _status(kiosk, capsys)
    assert items["sync"]["cause"] == "state_unreadable", items["sync"]
    assert "writes it again" not in items["sync"]["value"]
    assert items["network"]["value"] == "kiosk not registered with the portal"


# --- the running kiosk: its status page and Sync now ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["refused", "network"])
def test_the_running_kiosk_passes_the_kind_and_sync_now_says_it(tmp_path: Path, kind: str) -> None:
    """StaffSide (a real App, its real sync thread): the status page gets the saved kind, the portal is
    "unreachable" only for a network error, and a failed Sync now is said by the kind (it raised a RuntimeError,
    which the menu says as a bug: 「予期しないエラーが起きました」)."""
    from kiosk.app.runtime import App
    from kiosk.staff.words import staff_error
    from tests.app.drive import headless_cfg

    data = tmp_path / "data"
    data.mkdir()
    cfg = headless_cfg(data, (320, 180))
    with refused_port() as port, LoopbackServer(answering(403, b'{"error": "forbidden", "reason": "revoked"}')) as s:
        url = s.url if kind == "refused" else f"http://127.0.0.1:{port}"
        SyncState(portal_url=url, kiosk_id=cfg.kiosk.id, key_id="key-1", enrolled_ms=1).save(
            data / "sync-state.json")
        app = App(cfg)
        try:
            app.start()
            assert app.staff is not None and app.staff.sync is not None
            with pytest.raises(Exception) as failed:
                app.staff._sync_now()  # what the menu's "Sync now" button calls, on the menu's worker
            err = failed.value
            assert getattr(err, "kind", None) == kind and not isinstance(err, RuntimeError), repr(err)
            said = staff_error(err, "portal")
            ja, en = said.say(gettext_for("ja")), said.say(gettext_for("en"))
            assert ja == "同期できませんでした・" + gettext_for("ja")(SYNC_ERRORS[kind][0]), ja
            assert "予期しない" not in ja and en.startswith("Sync failed; " + SYNC_ERRORS[kind][0]), en
            assert "HTTP 403" in str(err) if kind == "refused" else "network" in str(err)  # the trail keeps the words

            x = app.staff.status_inputs()
            assert x.sync_error_kind == kind and x.portal_reachable is (kind != "network"), x
            network = next(i for i in status_items(dataclasses.replace(x, network_up=True)) if i.key == "network")
            assert network.value == ("network up, portal unreachable" if kind == "network"
                                     else "portal reachable, enrolled"), network
        finally:
            app.close()
