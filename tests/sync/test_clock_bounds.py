"""Clocks you can trust (docs/sync.md, "Clocks: what a claim can move"): a kiosk's clock claim, true or
forged, never re-times an entry beyond what the portal's own clock supports.

The rule (server_sync/clockfix.py): an entry's corrected time lies in ``[its own wall_ms, the portal's
receive time]`` (unsynced) or is ``min(wall_ms, receive time)`` (synced), whatever epoch its boot has;
and once an honest heartbeat reached the portal, the boot's epoch stays within minutes of the truth,
because a claim outside the interval the heartbeats proved is not taken.

Hypothesis drives BootClock with an honest kiosk (every time comes out exact, or within the heartbeat
delay when the clock never synced), then hands the kiosk's key to an attacker who may send anything;
the SQL that re-times stored rows is checked against the Python rule on SQLite and PostgreSQL; and the
concrete attacks run end to end over HTTP against a real portal.
"""

from __future__ import annotations

import random
import time

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sync_helpers import batch_body, enrolled, signed_post

from server_sync.clockfix import CLAIM_TOLERANCE_MS, HEARTBEAT_DELAY_MS, BootClock, bounded
from server_sync.db import create_schema, entries, make_engine
from server_sync.ingest import _RETIME, _bounded_sql

DAY = 86_400_000


# --- an honest kiosk, then a thief with its key --------------------------------------------------------
@st.composite
def honest_run(draw: st.DrawFn) -> dict:
    """One boot of an honest kiosk as the portal sees it: events in the order they reach the portal.

    True epoch ``E``; the unsynced clock reads ``lag`` behind (it restarted from a saved time); from
    event ``sync_at`` on it is NTP-synced. Entries reach the portal after they are written (any upload
    delay, batches); a heartbeat is made and sent at once, and one the portal would get later than
    HEARTBEAT_DELAY_MS after it was made is refused as a stale request (so it never reaches BootClock).
    """
    e = draw(st.integers(1_600_000_000_000, 1_900_000_000_000))
    lag = draw(st.integers(0, 400 * DAY))
    n = draw(st.integers(1, 25))
    sync_at = draw(st.one_of(st.none(), st.integers(0, n)))
    mono, portal = draw(st.integers(0, 10 * DAY)), 0
    events = []
    for i in range(n):
        mono += draw(st.integers(0, 3 * DAY))
        true = e + mono
        synced = sync_at is not None and i >= sync_at
        wall = true if synced else true - lag
        if draw(st.booleans()):
            portal = max(portal, true + draw(st.integers(0, HEARTBEAT_DELAY_MS)))
            if portal - true <= HEARTBEAT_DELAY_MS:
                events.append(("hb", mono, wall, synced, portal, true))
        else:
            portal = max(portal, true + draw(st.one_of(st.integers(0, 60_000), st.integers(0, 30 * DAY))))
            events.append(("entry", mono, wall, synced, portal, true))
    return {"epoch": e, "events": events, "portal": portal}


def _observe(c: BootClock, ev: tuple) -> None:
    kind, mono, wall, synced, at = ev[:5]
    if kind == "hb":
        c.observe_heartbeat(mono, wall, synced, at)
    else:
        c.observe_entry(mono, wall, synced, at)


@settings(max_examples=400, deadline=None)
@given(honest_run())
def test_an_honest_kiosks_times_come_out_right(run: dict) -> None:
    c = BootClock()
    for ev in run["events"]:
        _observe(c, ev)
    synced_seen = any(ev[3] for ev in run["events"])
    heartbeats = any(ev[0] == "hb" for ev in run["events"])
    for kind, mono, wall, synced, received, true in run["events"]:
        if kind != "entry":
            continue
        t, fixed = c.time_of(mono, wall, synced, received)
        if synced_seen:  # an honest claim is always inside what the heartbeats proved: exact
            assert (t, fixed) == (true, True), (c, mono)
        elif heartbeats:  # the portal's estimate: never early, late by at most the heartbeat's delay
            assert fixed and 0 <= t - true <= HEARTBEAT_DELAY_MS, (c, mono, t - true)
        else:
            assert (t, fixed) == (min(wall, received), False)


@st.composite
def forged(draw: st.DrawFn, after: int) -> list[tuple]:
    """Anything a thief with the key can make BootClock see, from portal time ``after`` on."""
    out, portal = [], after
    for _ in range(draw(st.integers(1, 8))):
        portal += draw(st.integers(0, 400 * DAY))
        kind = draw(st.sampled_from(["hb", "entry"]))
        mono = draw(st.one_of(st.integers(0, 2**53 - 1), st.integers(0, 400 * DAY)))
        wall = draw(st.one_of(st.just(0), st.integers(-(2**40), 2**53 - 1), st.integers(portal - 400 * DAY, portal)))
        out.append((kind, mono, wall, draw(st.booleans()), portal))
    return out


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_no_forged_claim_moves_an_honest_entry_outside_its_bounds(data: st.DataObject) -> None:
    run = data.draw(honest_run())
    c = BootClock()
    for ev in run["events"]:
        _observe(c, ev)
    c.changed = False
    for ev in data.draw(forged(run["portal"])):
        _observe(c, ev)
    floor_proved = any(ev[0] == "hb" for ev in run["events"])
    for kind, mono, wall, synced, received, true in run["events"]:
        if kind != "entry":
            continue
        t, _ = c.time_of(mono, wall, synced, received)
        assert t <= received  # never dated after the portal had it
        if synced:
            assert t == min(wall, received)  # a synced entry keeps its own signed time
        else:
            assert t >= wall  # never before the kiosk's own reading when it signed the entry
        if floor_proved:  # an honest heartbeat pinned the boot: minutes, not months (let alone 1969)
            assert t >= true - HEARTBEAT_DELAY_MS - CLAIM_TOLERANCE_MS, (c, true - t)


def test_the_1969_claim_itself_moves_nothing_back() -> None:
    """The concrete attack on BootClock alone (the policy on ingest quarantines it earlier anyway): one
    signed entry with clock_synced=true, wall_ms=0, with and without a heartbeat before it."""
    now, mono = 1_796_000_000_000, 3_600_000
    honest = [(mono - 60_000 * i, now - 40 * DAY - 60_000 * i, now - 1000) for i in range(5)]  # (mono, wall, recv)
    bare = BootClock()
    bare.observe_entry(mono + 1000, 0, True, now)
    assert bare.epoch_ms == -(mono + 1000)  # taken (nothing contradicts it), but ...
    for m, w, r in honest:
        assert bare.time_of(m, w, False, r) == (w, True)  # ... no entry goes before its own reading
    pinned = BootClock()
    pinned.observe_heartbeat(mono, now - 40 * DAY, False, now)
    before = pinned.epoch_ms
    pinned.changed = False
    pinned.observe_entry(mono + 1000, 0, True, now + 1000)
    pinned.observe_heartbeat(mono + 10**12, 0, False, now + 2000)  # "up for 31 years": the portal says no
    assert (pinned.epoch_ms, pinned.source, pinned.changed) == (before, "portal", False)
    for m, w, r in honest:
        assert pinned.time_of(m, w, False, r)[0] == min(before + m, r)


# --- the SQL that re-times stored rows is the same rule --------------------------------------------------
def test_retiming_in_sql_agrees_with_the_rule(db_url: str) -> None:
    eng = make_engine(db_url)
    create_schema(eng)
    rnd = random.Random(19)
    rows = []
    for seq in range(1, 301):
        received = 1_796_000_000_000 + rnd.randrange(0, 30 * DAY)
        wall = rnd.choice([0, received - rnd.randrange(0, 500 * DAY), received + rnd.randrange(0, 3 * DAY)])
        rows.append({"kiosk_id": "k", "seq": seq, "body": b"{}", "entry_hash": bytes(32), "signature": bytes(64),
                     "type": "donation", "boot": 1, "mono_ms": rnd.randrange(0, 400 * DAY), "wall_ms": wall,
                     "clock_synced": seq % 7 == 0, "time_ms": wall, "time_fixed": False, "voided": False,
                     "received_ms": received})
    rows.append({**rows[0], "seq": 301, "boot": 2})  # another boot: not this one's to re-time
    try:
        with eng.begin() as conn:
            conn.execute(entries.insert(), rows)
        for epoch in (-(10**13), 0, 1_796_000_000_000 - 100 * DAY, 1_796_000_000_000, 1_900_000_000_000):
            with eng.begin() as conn:  # the statement ingest runs, and the expression alone on every row
                conn.execute(_RETIME, {"kid": "k", "boots": [0, 1], "epoch": epoch})
                retimed = dict(conn.execute(select(entries.c.seq, entries.c.time_ms)).all())
                conn.execute(update(entries).where(entries.c.kiosk_id == "k").values(time_ms=_bounded_sql(epoch)))
                got = dict(conn.execute(select(entries.c.seq, entries.c.time_ms)).all())
                conn.rollback()
            for r in rows:
                want = bounded(epoch + r["mono_ms"], r["wall_ms"], False, r["received_ms"])
                assert got[r["seq"]] == want, (epoch, r)
                touched = not r["clock_synced"] and r["boot"] == 1
                assert retimed[r["seq"]] == (want if touched else r["time_ms"]), (epoch, r)
    finally:
        eng.dispose()


# --- end to end: a real portal, the kiosk's own key ------------------------------------------------------
def _times(portal, kid: str) -> dict[int, tuple[int, int, bool]]:  # noqa: ANN001
    eng = make_engine(portal.db_url)
    try:
        with eng.connect() as conn:
            return {s: (t, r, c) for s, t, r, c in conn.execute(select(
                entries.c.seq, entries.c.time_ms, entries.c.received_ms, entries.c.clock_synced).where(
                entries.c.kiosk_id == kid))}
    finally:
        eng.dispose()


def test_a_plausible_forged_clock_moves_no_receipt_back_months(portal, rig):  # noqa: ANN001
    """A stolen key signs a gift with clock_synced=true and a time 300 days back: inside the policy's
    bounds (so not quarantined), and before this change it re-timed the whole boot 300 days back."""
    rig.clock.is_synced = False
    rig.clock.wall = int(time.time() * 1000) - 40 * DAY  # a Pi that booted at a stale saved time
    rig.donate(4)
    up = enrolled(rig, portal)
    assert up.sync_once().ok  # the heartbeat fixes the boot's epoch with the portal's clock
    honest = _times(portal, rig.kiosk_id)
    real = int(time.time() * 1000)
    for s, (t, r, synced) in honest.items():
        assert t <= r and (synced or abs(t - real) < 120_000), (s, t, real)
    rig.clock.is_synced, rig.clock.wall = True, real - 300 * DAY
    forged_seqs = [d.seq for d in rig.donate(1)]
    assert up.sync_once().ok
    after = _times(portal, rig.kiosk_id)
    assert max(forged_seqs) in after
    for s, (t, _r, _synced) in honest.items():
        assert abs(after[s][0] - t) < 60_000, (s, t, after[s])  # moved by the heartbeat's refinement at most
    # And the receipt page's time of an honest gift is today's, not last winter's.
    code = next(e for e in rig.ledger.iter_entries() if e.type == "donation")
    from server_sync.wire.receipt import receipt_code

    doc = requests.get(f"{portal.url}/api/v1/receipts/{receipt_code(code)}", timeout=10).json()
    assert abs(doc["donation"]["time_ms"] - real) < 180_000, doc["donation"]


def test_without_a_heartbeat_a_forged_clock_still_moves_nothing_back(portal, rig):  # noqa: ANN001
    """No heartbeat ever (batches only): the portal knows no floor for the boot, and a forged synced entry
    is taken as its epoch; even so each stored entry stays within [its own wall_ms, its receipt]."""
    rig.clock.is_synced = False
    rig.clock.wall = int(time.time() * 1000) - 40 * DAY
    rig.donate(3)
    enrolled(rig, portal)  # enrolled, but this test sends its own batches, never a heartbeat
    path = f"/api/v1/kiosks/{rig.kiosk_id}/batches"
    r = signed_post(portal.url, rig, path, batch_body(rig, 1, rig.ledger.size), "b-1")
    assert r.status_code == 200, r.text
    first = rig.ledger.size
    stored = _times(portal, rig.kiosk_id)
    walls = {e.seq: e.obj["wall_ms"] for e in rig.ledger.iter_entries()}
    real = int(time.time() * 1000)
    rig.clock.is_synced, rig.clock.wall = True, real - 300 * DAY  # epoch 300 days back, 260 before the walls
    rig.donate(1)
    r = signed_post(portal.url, rig, path, batch_body(rig, first + 1, rig.ledger.size, old_size=first), "b-2")
    assert r.status_code == 200, r.text
    after = _times(portal, rig.kiosk_id)
    for s, (_t, rcv, synced) in stored.items():
        if not synced:
            assert walls[s] <= after[s][0] <= rcv, (s, walls[s], after[s])
            assert after[s][0] >= real - 41 * DAY  # not 300 days back: its own reading is the floor
