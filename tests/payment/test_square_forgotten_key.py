"""An open intent whose create answer was lost, looked up after Square may have forgotten its idempotency key.

Square keeps idempotency keys only for a while; the fake Square here forgets them after a day
(``forget_keys_after_s``), as the real one does after some unpublished time. A kiosk that re-sent the identical
create after that got a *second* checkout (PENDING: canceled by the lookup, the intent closed as not charged)
while the first one, which the donor had paid, was never recorded. Past ``IDEM_KEPT_S`` the adapter searches for
the checkout (SearchTerminalCheckouts on the fake, real HTTP on loopback) and never creates again.

Time is one FixedClock for the kiosk (ledger, adapter, journal) and the fake (its monotonic clock and its wall
clock, which stamps ``created_at``), so "the kiosk was down 25 hours" takes no time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, verify_path
from kiosk.ledger.clock import FixedClock
from kiosk.payment import TerminalUnavailable
from kiosk.payment.square import IDEM_KEPT_S, SquareJournal, SquareTerminal
from tests.donation.conftest import KIOSK_ID, card, entries_of, settings
from tests.payment.fake_square import DEVICE, LOCATION, TOKEN, FakeSquare, Fault

DOWN_MS = 25 * 3600 * 1000  # the kiosk is off for 25 hours: longer than the fake Square keeps keys
IDEM = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def clk() -> FixedClock:
    return FixedClock()


@pytest.fixture
def fake(clk: FixedClock):
    with FakeSquare(clock=clk.monotonic, wall=lambda: clk.wall_ms() / 1000) as f:
        f.forget_keys_after_s = 24 * 3600.0
        yield f


def terminal(fake: FakeSquare, clk: FixedClock, tmp_path: Path, **kw) -> SquareTerminal:  # noqa: ANN003
    args = dict(base_url=fake.url, token=TOKEN, location_id=LOCATION, device_id=DEVICE,
                journal=tmp_path / "square-journal.db", deadline_s=60, answer_grace_s=5, poll_interval_ms=1000,
                request_timeout_s=5.0, note="寄付", reference_prefix=KIOSK_ID, clock=clk)
    args.update(kw)
    return SquareTerminal(**args)


def _creates(fake: FakeSquare) -> int:
    with fake.lock:
        return sum(1 for m, p in fake.requests if m == "POST" and p == "/v2/terminals/checkouts")


def _service(fake, clk, tmp_path, signing_key):  # noqa: ANN001, ANN202
    led = Ledger.open(tmp_path / "ledger.db", signing_key, KIOSK_ID, clock=clk)
    t = terminal(fake, clk, tmp_path)
    return led, t, DonationService(led, t, settings(method=t.method), clock=clk, lookup_interval_ms=0,
                                   lookup_attempts=1)


def test_the_paid_checkout_of_a_lost_create_is_found_after_square_forgot_the_key(fake, clk, tmp_path, signing_key):
    fake.page_size = 2  # the search has to read past other gifts' checkouts, page by page
    led, t, svc = _service(fake, clk, tmp_path, signing_key)
    svc.start()
    for n in (1, 2):  # two earlier gifts on the same terminal, same amount and note
        fake.plan = ["tap", "complete"]
        svc.reader_event(card(n))
        assert svc.state.name == "thanks"
    fake.plan = []
    fake.fault("create", Fault("drop_after"), *[Fault("drop")] * 500)  # stored at Square, the answer lost
    svc.reader_event(card(3))
    [intent] = led.unresolved_intents()
    first = fake.only(intent["idem"])
    fake.buyer(first.id, "complete")  # the donor paid on the terminal; the kiosk never heard of it
    led.close()
    t.close()

    clk.advance(DOWN_MS)  # the kiosk is off for longer than Square keeps the key
    fake.faults.clear()
    creates = _creates(fake)
    led, t, svc = _service(fake, clk, tmp_path, signing_key)
    assert [r.outcome for r in svc.start()] == ["donation"]
    assert _creates(fake) == creates  # never created again: a second checkout is what the donor never asked for
    assert fake.count_by_idem()[intent["idem"]] == 1 and len(fake.checkouts) == 3
    with fake.lock:
        assert fake.requests.count(("POST", "/v2/terminals/checkouts/search")) == 2  # two pages of two
    gift = entries_of(led, "donation")[-1]
    assert gift.data["intent_seq"] == intent["seq"] and gift.data["provider_ref"] == first.payment_ids[0]
    assert led.unresolved_intents() == [] and entries_of(led, "donation_failed") == []
    assert t.journal.checkout_id(intent["idem"]) == first.id  # found once: later lookups ask for it by id
    led.close()
    t.close()
    assert verify_path(tmp_path / "ledger.db").ok


def test_a_create_that_never_reached_square_is_not_charged_after_the_key_age(fake, clk, tmp_path, signing_key):
    led, t, svc = _service(fake, clk, tmp_path, signing_key)
    svc.start()
    fake.fault("create", *[Fault("drop")] * 500)  # Square never gets the create: the link is down
    svc.reader_event(card(1))
    [intent] = led.unresolved_intents()
    assert fake.checkouts == {}
    led.close()
    t.close()

    clk.advance(DOWN_MS)
    fake.faults.clear()
    led, t, svc = _service(fake, clk, tmp_path, signing_key)
    assert [r.outcome for r in svc.start()] == ["failed"]
    assert fake.checkouts == {}  # no checkout made now for a gift nobody is standing at the terminal for
    with fake.lock:
        assert ("POST", "/v2/terminals/checkouts/search") in fake.requests
    [failed] = entries_of(led, "donation_failed")
    assert failed.data["intent_seq"] == intent["seq"] and "not charged" in failed.data["reason"]
    led.close()
    t.close()


def test_a_young_lost_create_is_still_resent_under_its_key(fake, clk, tmp_path):
    first = terminal(fake, clk, tmp_path)
    body = first.journal.put(IDEM, first.checkout_body(300, "7"))
    first._create(IDEM, body, clk.monotonic() + 10)  # stored at Square; the answer never reached the kiosk
    first.close()
    clk.advance((IDEM_KEPT_S - 60) * 1000)
    again = terminal(fake, clk, tmp_path)
    assert again.lookup(IDEM).status == "declined"  # the same checkout back, PENDING: canceled
    assert fake.count_by_idem() == {IDEM: 1} and _creates(fake) == 2
    again.close()


def test_an_age_that_cannot_be_told_leaves_the_intent_open_and_sends_nothing(fake, clk, tmp_path):
    first = terminal(fake, clk, tmp_path, boot="boot-1")
    first.journal.put(IDEM, first.checkout_body(300, "7"))  # journaled; the power went before it was sent
    first.close()
    clk.is_synced = False  # after a reboot, before NTP: the wall clock may be days behind
    again = terminal(fake, clk, tmp_path, boot="boot-2")
    with pytest.raises(TerminalUnavailable, match="clock"):
        again.lookup(IDEM)
    assert fake.requests == []
    clk.is_synced = True  # NTP synced: a minute old, so the identical create is sent
    assert again.lookup(IDEM).status == "declined" and fake.count_by_idem() == {IDEM: 1}
    again.close()


def test_a_journal_written_before_the_boot_columns_still_loads(clk, tmp_path):
    path = tmp_path / "old-journal.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE checkouts (idem TEXT PRIMARY KEY, body TEXT NOT NULL, checkout_id TEXT, status TEXT,"
                " payment_id TEXT, cancel_reason TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)")
    con.execute("INSERT INTO checkouts (idem, body, created_ms, updated_ms) VALUES (?, '{}', ?, ?)",
                (IDEM, clk.wall_ms(), clk.wall_ms()))
    con.commit()
    con.close()
    journal = SquareJournal(path, clk, "boot-1")
    when = journal.journaled(IDEM)
    assert when is not None and when.wall_ms == clk.wall_ms() and when.boot_id is None and when.mono_ms is None
    journal.put("another", {"amount_money": {"amount": 1, "currency": "JPY"}})
    assert journal.journaled("another").boot_id == "boot-1"
    journal.close()
