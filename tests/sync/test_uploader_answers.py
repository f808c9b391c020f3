"""What the kiosk believes of the portal's answers (docs/sync.md, "What the kiosk believes of the portal's
answers"): the real uploader and a real ledger against portals that lie or misbehave, played by real HTTP servers
on loopback (tests/loopback.py).

An answer for another kiosk, or beyond the batch sent, or of the wrong shape, is not an acknowledgement; an
answer that moves nothing is not resent at once for ever; a redirect is not followed; an answer, headers included,
has a deadline, and its body a size cap; a stale or repeated config document is neither applied nor recorded again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from kiosk.ledger.writer import InlineWriter
from kiosk.sync.configapply import ConfigApplier, load_applied
from kiosk.sync.uploader import ANSWER_MAX_BYTES, SyncState, Uploader
from tests.loopback import Handler, LoopbackServer

Answer = tuple[int, Any]


def answer(kiosk_id: str, accepted: int, **kw: Any) -> dict[str, Any]:
    """A SyncAnswer as the portal builds it (server_sync/wire/protocol.py)."""
    return {"kiosk_id": kiosk_id, "accepted_through_seq": accepted, "checkpoint_size": 0,
            "server_time": int(time.time() * 1000), "config_version": 0, "pepper_epoch": 0, "next_sync_after": 60,
            "duplicates": 0, "accepted": 0, "replayed": False, **kw}


class Lying:
    """A "portal" on loopback answering heartbeats and batches with the test's functions (given the count of
    batches so far); after ``stop_after`` batches it answers 400, so that a loop without end still ends."""

    def __init__(self, heartbeat: Callable[[], Answer], batch: Callable[[int], Answer],
                 get: Callable[[str], Answer] | None = None, stop_after: int = 200):
        self.batches = 0
        self.heartbeats = 0
        outer = self

        class H(Handler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.endswith("/heartbeat"):
                    outer.heartbeats += 1
                    status, doc = heartbeat()
                else:
                    outer.batches += 1
                    status, doc = batch(outer.batches) if outer.batches <= stop_after else \
                        (400, {"error": "enough", "reason": "test stop"})
                self.answer(status, json.dumps(doc).encode())

            def do_GET(self) -> None:
                status, doc = get(self.path) if get else (404, {"error": "not_found", "reason": ""})
                self.answer(status, json.dumps(doc).encode())

        self.server = LoopbackServer(H)
        self.url = self.server.url

    def __enter__(self) -> Lying:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()


def uploader(rig: Any, url: str, **kw: Any) -> Uploader:
    up = rig.uploader(url, **kw)
    up.state.enrolled_ms = 1  # as if enrolled with this "portal"
    return up


def sync(rig: Any, url: str, attempts: int = 1, **kw: Any) -> Any:
    up = uploader(rig, url, **kw)
    try:
        return up.sync_once(max_attempts=attempts)
    finally:
        up.close()


# --- 1. an answer for another kiosk, or beyond the batch, is no acknowledgement -----------------------------
def test_a_heartbeat_for_another_kiosk_is_not_believed(rig):
    rig.donate(3)
    size = rig.ledger.size
    with Lying(lambda: (200, answer("some-other-kiosk", size)), lambda n: (200, answer("some-other-kiosk", size))) \
            as portal:
        st = sync(rig, portal.url)
    assert portal.batches == 0
    assert not st.ok and st.accepted_through_seq == 0 and st.pending == size
    assert "not this kiosk" in st.last_error


def test_a_batch_answer_beyond_the_batch_is_not_believed(rig):
    """A 200 to a batch of seq 1..1 that claims the portal holds the whole ledger (this kiosk's id, even)."""
    rig.donate(5)
    size = rig.ledger.size
    with Lying(lambda: (200, answer(rig.kiosk_id, 0)), lambda n: (200, answer(rig.kiosk_id, size))) as portal:
        st = sync(rig, portal.url, batch_entries=1)
    assert portal.batches == 1
    assert not st.ok and st.accepted_through_seq == 0 and st.pending == size
    assert "portal answer: accepted_through_seq" in st.last_error


def test_a_batch_answer_for_another_kiosk_is_not_believed(rig):
    rig.donate(2)
    size = rig.ledger.size
    with Lying(lambda: (200, answer(rig.kiosk_id, 0)), lambda n: (200, answer("some-other-kiosk", size))) as portal:
        st = sync(rig, portal.url)
    assert portal.batches == 1
    assert not st.ok and st.accepted_through_seq == 0
    assert "not this kiosk" in st.last_error


def test_a_heartbeat_beyond_the_ledger_is_not_believed(rig):
    """The state file (what staff read before wiping a kiosk) keeps the portal's last real word, not the lie."""
    rig.donate(2)
    with Lying(lambda: (200, answer(rig.kiosk_id, 10**6)), lambda n: (500, {})) as portal:
        st = sync(rig, portal.url)
    assert st.accepted_through_seq == 0 and st.pending == rig.ledger.size
    assert st.last_error.startswith("portal answer:")


# --- 2. an answer that moves nothing is not resent at once ----------------------------------------------------
@pytest.mark.parametrize("batch", [
    lambda kid: (200, answer(kid, 0)),                                                       # 200, mark unmoved
    lambda kid: (409, {"error": "gap", "reason": "r", "expected_seq": 1}),                   # the same gap
    lambda kid: (409, {"error": "checkpoint_ack_mismatch", "reason": "r", "checkpoint_size": 0}),  # same ack
], ids=["200-unmoved", "same-gap", "same-checkpoint-mismatch"])
def test_an_answer_that_moves_nothing_is_not_resent_at_once(rig, batch):
    rig.donate(3)
    with Lying(lambda: (200, answer(rig.kiosk_id, 0)), lambda n: batch(rig.kiosk_id)) as portal:
        st = sync(rig, portal.url)
    assert portal.batches == 1, f"one attempt resent the same batch {portal.batches} times without a pause"
    assert "moved nothing" in st.last_error


def test_a_gap_that_moves_back_is_followed_once(rig):
    """A gap is progress once (the portal lost entries: resend from there), not twice at the same place."""
    rig.donate(3)
    with Lying(lambda: (200, answer(rig.kiosk_id, 2)),
               lambda n: (409, {"error": "gap", "reason": "r", "expected_seq": 1})) as portal:
        st = sync(rig, portal.url)
    assert portal.batches == 2 and "moved nothing" in st.last_error


# --- 3. an answer of the wrong shape is a sync error, never a crash --------------------------------------------
@pytest.mark.parametrize("hb", [
    {"status": "ok"},
    [1, 2, 3],
    {"kiosk_id": "K", "accepted_through_seq": "3", "checkpoint_size": 0, "config_version": 0},
    {"kiosk_id": "K", "accepted_through_seq": True, "checkpoint_size": 0, "config_version": 0},
    {"kiosk_id": "K", "accepted_through_seq": 0.0, "checkpoint_size": 0, "config_version": 0},
    {"kiosk_id": "K", "accepted_through_seq": -1, "checkpoint_size": 0, "config_version": 0},
    {"kiosk_id": "K", "accepted_through_seq": 0, "checkpoint_size": 0, "config_version": None},
    {"kiosk_id": "K", "accepted_through_seq": 0, "checkpoint_size": 0, "config_version": 0, "pepper_epoch": "1"},
    {"kiosk_id": 7, "accepted_through_seq": 0, "checkpoint_size": 0, "config_version": 0},
], ids=["no-fields", "a-list", "string-seq", "bool-seq", "float-seq", "negative-seq", "null-config-version",
        "string-pepper-epoch", "int-kiosk-id"])
def test_a_heartbeat_of_the_wrong_shape_is_a_sync_error(rig, hb):
    rig.donate(1)
    hb = {k: (rig.kiosk_id if v == "K" else v) for k, v in hb.items()} if isinstance(hb, dict) else hb
    with Lying(lambda: (200, hb), lambda n: (200, answer(rig.kiosk_id, rig.ledger.size))) as portal:
        st = sync(rig, portal.url)  # documented never to raise
    assert portal.batches == 0
    assert st.last_error.startswith("portal answer malformed:") and st.accepted_through_seq == 0


def test_an_implausible_server_time_is_ignored_not_a_crash(rig):
    rig.donate(1)
    with Lying(lambda: (200, answer(rig.kiosk_id, 0, server_time=10**400)),
               lambda n: (200, answer(rig.kiosk_id, rig.ledger.size, server_time=-5))) as portal:
        up = uploader(rig, portal.url)
        st = up.sync_once(max_attempts=1)
        up.close()
    assert st.ok, st.last_error
    assert up.offset_s == 0.0


def test_a_checkpoint_mismatch_without_its_size_is_a_sync_error(rig):
    rig.donate(1)
    with Lying(lambda: (200, answer(rig.kiosk_id, 0)),
               lambda n: (409, {"error": "checkpoint_ack_mismatch", "reason": "r"})) as portal:
        st = sync(rig, portal.url)
    assert st.last_error.startswith("portal answer malformed: checkpoint_size")


# --- 4. redirects are not followed ----------------------------------------------------------------------------
def test_a_redirect_is_not_followed(rig):
    """A 307/308 would be resent with its method, body and signed headers, and its answer believed."""
    rig.donate(2)
    size = rig.ledger.size
    with Lying(lambda: (200, answer(rig.kiosk_id, size)), lambda n: (200, answer(rig.kiosk_id, size))) as other:
        class Redirect(Handler):
            def do_POST(self) -> None:
                self.send_response(308)
                self.send_header("Location", other.url + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

        with LoopbackServer(Redirect) as srv:
            st = sync(rig, srv.url)
    assert other.heartbeats == 0 and other.batches == 0
    assert not st.ok and st.accepted_through_seq == 0
    assert "HTTP 308" in st.last_error and other.url in st.last_error


def _drip(out: Any, data: bytes) -> None:
    """``data`` one byte every 0.2 s: each read within the kiosk's read timeout, the whole not."""
    try:
        for b in data:
            out.write(bytes([b]))
            out.flush()
            time.sleep(0.2)
    except OSError:
        pass  # the kiosk hung up: as it should


# --- 5. an answer (headers included) has a deadline, its body a size cap ------------------------------------------
def test_a_slow_drip_answer_is_cut_at_its_deadline(rig):
    """One byte every 0.2 s: each read is within the read timeout, the whole answer is not. (Forty bytes of it:
    a test that ends, in 8 s, even where the deadline is missing.)"""
    rig.donate(1)
    body = json.dumps(answer(rig.kiosk_id, 0)).encode()[:40]

    class Drip(Handler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            _drip(self.wfile, body)

    with LoopbackServer(Drip) as srv:
        t0 = time.monotonic()
        st = sync(rig, srv.url, timeout=(1.0, 0.5))
        took = time.monotonic() - t0
    assert took < 2.5, f"timeout=(1.0, 0.5), yet one attempt took {took:.1f} s"
    assert "took longer than" in st.last_error


def test_a_slow_drip_status_line_and_headers_are_cut_at_the_deadline(rig):
    """The status line and headers one byte every 0.2 s: each read is within the read timeout, so requests' own
    timeouts never fire; the deadline covers the whole answer, headers included. Each attempt gives up at it, on a
    fresh connection the next time, after the usual backoff, and nothing is taken as acknowledged. (Forty bytes
    of headers, never finished: a test that ends, in 8 s an attempt, even where the deadline is missing.)"""
    rig.donate(2)
    size = rig.ledger.size
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"[:40]
    clients: list[int] = []  # the kiosk's port of each request

    class DripHeaders(Handler):
        def do_POST(self) -> None:  # noqa: N802
            clients.append(self.client_address[1])
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            _drip(self.wfile, head)
            self.close_connection = True

    waits: list[float] = []
    with LoopbackServer(DripHeaders) as srv:
        t0 = time.monotonic()
        st = sync(rig, srv.url, attempts=2, timeout=(1.0, 0.5), sleep=waits.append)
        took = time.monotonic() - t0
    assert took < 2 * 0.5 + 1.5, f"a deadline of 0.5 s, yet two attempts took {took:.1f} s"
    assert len(set(clients)) == 2 and len(waits) == 1 and waits[0] > 0  # backed off, then on a second connection
    assert "took longer than 0.5 s" in st.last_error and "status line and headers" in st.last_error, st.last_error
    assert not st.ok and st.accepted_through_seq == 0 and st.pending == size
    saved = SyncState.load(rig.cfg.data_dir / "sync-state.json")
    assert saved.accepted_through_seq == 0 and saved.last_error == st.last_error


def test_an_answer_longer_than_the_cap_is_cut(rig):
    rig.donate(1)

    class Huge(Handler):
        def do_POST(self) -> None:  # HTTP/1.0, no Content-Length: the body ends when the server closes
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for _ in range(ANSWER_MAX_BYTES // (1 << 20) + 2):
                    self.wfile.write(b" " * (1 << 20))
            except OSError:
                pass

    with LoopbackServer(Huge) as srv:
        st = sync(rig, srv.url)
    assert "longer than" in st.last_error


# --- 6. a stale or repeated config document is neither applied nor recorded again -----------------------------
def config_doc(version: int, title: str) -> dict[str, Any]:
    from server_sync.wire import configdoc

    cfg = configdoc.validate({"projects": [{"id": "kodomo", "title": title, "area": "children"}],
                              "presets_yen": [100], "default_yen": 100, "max_per_transaction_yen": 1000,
                              "points_per_100_yen": 1})
    norm = configdoc.normalised(cfg)
    return {"version": version, "digest": configdoc.digest(norm), "config": norm}


def config_changes(rig: Any) -> list[dict[str, Any]]:
    return [e.data for e in rig.ledger.iter_entries(1, rig.ledger.size) if e.type == "config_change"]


@pytest.mark.parametrize("served", [2, 5], ids=["older-than-applied", "applied-but-older-than-announced"])
def test_a_stale_config_answer_is_not_applied(rig, served):
    """The heartbeat says v6, the kiosk runs v5, GET /config answers an older document (a cached GET, a lagging
    replica): the kiosk keeps v5, records nothing, and says why."""
    rig.donate(1)
    applier = ConfigApplier(rig.cfg.data_dir, InlineWriter(rig.ledger))
    assert applier.apply(config_doc(5, "current v5"), lambda sha: b"") == "applied"
    before = config_changes(rig)
    with Lying(lambda: (200, answer(rig.kiosk_id, rig.ledger.size, config_version=6)), lambda n: (500, {}),
               get=lambda path: (200, config_doc(served, "stale"))) as portal:
        up = uploader(rig, portal.url)
        up.state.config_applied = 5
        st = up.sync_once(max_attempts=1)
        up.close()
    assert st.config_applied == 5 and load_applied(rig.cfg.data_dir)["version"] == 5
    assert config_changes(rig) == before
    assert f"config answer is v{served}" in st.extra["config_error"]


def test_a_config_already_applied_is_not_recorded_again(rig):
    """The state file lost its config_applied (a wiped or old sync-state.json): the portal announces the version
    the kiosk runs, the kiosk fetches it, and finds it applied: no second config_change, now or next round."""
    rig.donate(1)
    v5 = config_doc(5, "current v5")
    applier = ConfigApplier(rig.cfg.data_dir, InlineWriter(rig.ledger))
    assert applier.apply(v5, lambda sha: b"") == "applied"
    assert applier.apply(v5, lambda sha: b"") == "unchanged"
    assert len(config_changes(rig)) == 1
    with Lying(lambda: (200, answer(rig.kiosk_id, rig.ledger.size, config_version=5)),
               lambda n: (200, answer(rig.kiosk_id, rig.ledger.size)), get=lambda path: (200, v5)) as portal:
        up = uploader(rig, portal.url)
        assert up.state.config_applied == 0
        for _ in range(3):
            st = up.sync_once(max_attempts=1)
        up.close()
    assert len(config_changes(rig)) == 1
    assert st.config_applied == 5 and "config_error" not in st.extra and st.ok, st.last_error


def test_a_config_whose_entry_was_not_written_is_recorded_when_fetched_again(rig):
    """The file was written but its config_change append failed (the kiosk was told nothing): the same document
    fetched again records it once, and the running kiosk is told."""
    from kiosk.sync.configapply import APPLIED

    rig.donate(1)
    v5 = config_doc(5, "current v5")
    (rig.cfg.data_dir / APPLIED).write_text(json.dumps(v5), "utf-8")
    told: list[int] = []
    applier = ConfigApplier(rig.cfg.data_dir, InlineWriter(rig.ledger), lambda doc: told.append(doc["version"]))
    assert applier.apply(v5, lambda sha: b"") == "applied"
    assert applier.apply(v5, lambda sha: b"") == "unchanged"
    assert [c["version"] for c in config_changes(rig)] == [5] and told == [5]
