"""The Square adapter against a fake Square API on loopback, through the real ``squareup`` SDK and httpx.

Time is a FixedClock shared by the adapter and the fake: the adapter's polls and
backoff sleeps move it, the fake's checkout deadlines read it. So a 2-minute
deadline takes milliseconds, and the waits the adapter chose can be checked.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, verify_path
from kiosk.ledger.clock import FixedClock
from kiosk.payment import RefundRefused, SimulatedTerminal, TerminalUnavailable
from kiosk.payment.square import SquareTerminal, pair
from tests.donation.conftest import KIOSK_ID, card, entries_of, settings
from tests.payment.fake_square import DEVICE, LOCATION, TOKEN, FakeSquare, Fault


class SleepLog(FixedClock):
    """A FixedClock that remembers every sleep (the adapter's chosen waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


@pytest.fixture
def clk() -> SleepLog:
    return SleepLog()


@pytest.fixture
def fake(clk: SleepLog):
    with FakeSquare(clock=clk.monotonic) as f:
        yield f


def terminal(fake: FakeSquare, clk: FixedClock, tmp_path: Path, **kw) -> SquareTerminal:  # noqa: ANN003
    args = dict(base_url=fake.url, token=TOKEN, location_id=LOCATION, device_id=DEVICE,
                journal=tmp_path / "square-journal.db", deadline_s=60, answer_grace_s=20, poll_interval_ms=1000,
                request_timeout_s=5.0, note="寄付", reference_prefix=KIOSK_ID, clock=clk)
    args.update(kw)
    return SquareTerminal(**args)


@pytest.fixture
def term(fake: FakeSquare, clk: SleepLog, tmp_path: Path):
    t = terminal(fake, clk, tmp_path)
    yield t
    t.close()


IDEM = "0123456789abcdef0123456789abcdef"


def test_completed_checkout_is_approved_with_the_payment_id(fake, term):
    fake.plan = ["wait", "tap", "complete"]
    r = term.charge(500, IDEM, reference="42")
    co = fake.only()
    assert r.status == "approved" and r.provider_ref == co.payment_ids[0]
    assert co.idem == IDEM
    assert co.request["amount_money"] == {"amount": 500, "currency": "JPY"}
    assert co.request["reference_id"] == f"{KIOSK_ID}-42"
    assert co.request["device_options"]["device_id"] == DEVICE
    assert co.request["payment_type"] == "FELICA_TRANSPORTATION_GROUP"
    assert co.request["deadline_duration"] == "PT60S"
    assert term.live.status == "COMPLETED" and term.live.last_outcome == "approved"
    # the same key again is the same checkout and the same payment, never a second one
    assert term.charge(500, IDEM, reference="42") == r
    assert fake.count_by_idem() == {IDEM: 1}


@pytest.mark.parametrize("ptype", ["FELICA_ALL", "QR_CODE", "CARD_PRESENT"])
def test_payment_type_is_sent_as_configured(fake, clk, tmp_path, ptype):
    t = terminal(fake, clk, tmp_path, payment_type=ptype)
    fake.plan = ["complete"]
    assert t.charge(100, IDEM).status == "approved"
    assert fake.only().request["payment_type"] == ptype
    t.close()


def test_buyer_cancels_on_the_terminal_is_declined_with_the_reason(fake, term):
    fake.plan = ["tap", "cancel"]
    r = term.charge(100, IDEM)
    assert r.status == "declined" and "BUYER_CANCELED" in r.reason
    assert fake.only().status == "CANCELED"


def test_deadline_passes_with_nobody_at_the_terminal(fake, term, clk):
    r = term.charge(100, IDEM)  # the fake keeps it PENDING until its deadline_duration runs out
    assert r.status == "declined" and "TIMED_OUT" in r.reason
    assert 60 <= clk.monotonic() - 1 <= 62  # it followed the checkout to Square's deadline, not beyond


def test_no_final_answer_by_the_deadline_is_unknown_then_lookup_settles_it(fake, term, clk):
    fake.plan = ["tap"]  # the donor is at the terminal for ever
    start = clk.monotonic()
    r = term.charge(100, IDEM)
    assert r.status == "unknown" and "IN_PROGRESS" in r.reason
    assert clk.monotonic() - start == pytest.approx(80, abs=1.5)  # deadline_s + answer_grace_s
    with pytest.raises(TerminalUnavailable):  # still in progress: the intent stays open
        term.lookup(IDEM)
    fake.buyer(fake.only().id, "complete")
    found = term.lookup(IDEM)
    assert found.status == "approved" and found.provider_ref == fake.only().payment_ids[0]
    assert fake.count_by_idem() == {IDEM: 1}


def test_429_with_retry_after_is_honoured(fake, term, clk):
    fake.fault("create", Fault("status", 429, retry_after="7"), Fault("status", 429, retry_after="3"))
    fake.plan = ["complete"]
    r = term.charge(100, IDEM)
    assert r.status == "approved"
    assert clk.sleeps[0] >= 7 and clk.sleeps[1] >= 3  # never sooner than Square asked
    assert sum(1 for m, p in fake.requests if m == "POST" and p == "/v2/terminals/checkouts") == 3
    assert fake.count_by_idem() == {IDEM: 1}


def test_500_then_success(fake, term):
    fake.fault("create", Fault("status", 500))
    fake.fault("get", Fault("status", 503), Fault("status", 500))
    fake.plan = ["tap", "complete"]
    assert term.charge(100, IDEM).status == "approved"
    assert fake.count_by_idem() == {IDEM: 1}


def test_connection_dropped_after_the_create_was_stored(fake, term):
    fake.fault("create", Fault("drop_after"))
    fake.plan = ["complete"]
    r = term.charge(100, IDEM)
    assert r.status == "approved"
    creates = [1 for m, p in fake.requests if m == "POST" and p == "/v2/terminals/checkouts"]
    assert len(creates) == 2 and fake.count_by_idem() == {IDEM: 1}  # the retry found the stored one


def test_a_completed_checkout_whose_answer_never_arrived(fake, term):
    fake.plan = ["complete"]
    fake.fault("get", *[Fault("drop_after")] * 500)  # every answer about it is lost until the deadline
    r = term.charge(100, IDEM)
    assert r.status == "unknown"
    co = fake.only()
    assert co.status == "COMPLETED"
    fake.faults.clear()
    found = term.lookup(IDEM)
    assert found.status == "approved" and found.provider_ref == co.payment_ids[0]
    assert fake.count_by_idem() == {IDEM: 1}


def test_network_down_is_unknown_never_an_exception(clk, tmp_path):
    with FakeSquare(clock=clk.monotonic) as gone:
        url = gone.url
    t = SquareTerminal(base_url=url, token=TOKEN, location_id=LOCATION, device_id=DEVICE,
                       journal=tmp_path / "j.db", deadline_s=30, answer_grace_s=5, clock=clk)
    r = t.charge(100, IDEM)
    assert r.status == "unknown"
    assert t.live.status == "UNREACHABLE"
    with pytest.raises(TerminalUnavailable):
        t.lookup(IDEM)
    t.close()


def test_refused_create_is_declined_without_retrying(fake, clk, tmp_path):
    t = terminal(fake, clk, tmp_path, token="wrong")
    r = t.charge(100, IDEM)
    assert r.status == "declined" and r.unavailable and "UNAUTHORIZED" in r.reason
    assert len(fake.requests) == 1 and fake.checkouts == {}
    t.close()


@pytest.mark.parametrize("fault", [Fault("status_after", 408, code="REQUEST_TIMEOUT"), Fault("garble_after")],
                         ids=["408", "unreadable-2xx"])
def test_a_stored_create_answered_with_a_timeout_or_an_unreadable_body_is_asked_again_never_declined(
        fake, term, fault):
    # Square made the checkout, and the donor pays it. Its REQUEST_TIMEOUT says nothing about whether the checkout
    # was made, and the SDK reports a 2xx whose body is not JSON as ApiError(status_code=200): read as refusals,
    # the intent would close as not charged while the terminal took the money.
    fake.fault("create", fault)
    fake.plan = ["complete"]
    r = term.charge(100, IDEM)
    assert r.status == "approved" and r.provider_ref == fake.only().payment_ids[0]
    assert fake.count_by_idem() == {IDEM: 1}


def test_unreadable_successes_until_the_deadline_are_unknown_and_lookup_settles_it(fake, term):
    fake.fault("create", *[Fault("garble_after")] * 500)
    assert term.charge(100, IDEM).status == "unknown"  # never declined: the checkout exists...
    fake.buyer(fake.only().id, "complete")  # ...and the donor pays it on the terminal
    fake.faults.clear()
    found = term.lookup(IDEM)
    assert found.status == "approved" and found.provider_ref == fake.only().payment_ids[0]


def test_a_refusal_after_an_unanswered_try_is_unknown_and_lookup_settles_it(fake, term):
    # The first create was carried out and its answer lost; the retry is refused (a token revoked meanwhile, say).
    # The refusal proves nothing about the first try, so the intent must stay open.
    fake.fault("create", Fault("drop_after"), Fault("status", 401, code="UNAUTHORIZED"))
    r = term.charge(100, IDEM)
    assert r.status == "unknown" and "UNAUTHORIZED" in r.reason
    fake.buyer(fake.only().id, "complete")  # the donor pays the checkout the first try made
    found = term.lookup(IDEM)
    assert found.status == "approved" and fake.count_by_idem() == {IDEM: 1}


@pytest.mark.parametrize("status,code", [(400, "INVALID_VALUE"), (404, "NOT_FOUND"), (403, "FORBIDDEN")])
def test_a_first_refusal_that_proves_nothing_was_made_is_declined(fake, term, status, code):
    fake.fault("create", Fault("status", status, code=code))
    r = term.charge(100, IDEM)
    assert r.status == "declined" and r.unavailable and code in r.reason
    assert fake.checkouts == {}


@pytest.mark.parametrize("status,code", [(409, "CONFLICT"), (422, "UNPROCESSABLE_ENTITY")])
def test_a_refusal_that_does_not_prove_nothing_was_made_is_unknown(fake, term, status, code):
    fake.fault("create", Fault("status_after", status, code=code))
    assert term.charge(100, IDEM).status == "unknown"
    fake.buyer(fake.only().id, "complete")
    assert term.lookup(IDEM).status == "approved"


def test_an_answer_httpx_cannot_decode_is_retried_and_lookup_says_unavailable(fake, term):
    # A Content-Encoding the body does not match (a broken proxy): httpx.DecodingError, not a TransportError.
    fake.fault("create", Fault("bad_encoding"))
    fake.plan = ["complete"]
    assert term.charge(100, IDEM).status == "approved"  # asked again under the same key
    fake.fault("get", *[Fault("bad_encoding")] * 500)
    with pytest.raises(TerminalUnavailable):  # never an exception the donation service does not expect
        term.lookup(IDEM)
    fake.faults.clear()
    assert term.lookup(IDEM).status == "approved"


def test_lookup_of_a_key_never_sent_asks_nobody(fake, term):
    assert term.lookup("never-sent").status == "not_found"
    assert fake.requests == []


def test_lookup_after_a_crash_after_create_resends_the_identical_create_and_cancels_the_orphan(
        fake, clk, tmp_path):
    first = terminal(fake, clk, tmp_path)
    body = first.journal.put(IDEM, first.checkout_body(300, "7"))  # what charge() does before sending
    first._create(IDEM, body, clk.monotonic() + 10)  # Square stored it; the kiosk died before the answer
    first.close()
    again = terminal(fake, clk, tmp_path)  # the restart: a new process on the same journal
    found = again.lookup(IDEM)  # same key, same body -> the same checkout; PENDING -> canceled
    assert found.status == "declined" and "SELLER_CANCELED" in found.reason
    assert fake.count_by_idem() == {IDEM: 1}
    assert fake.only().request["reference_id"] == f"{KIOSK_ID}-7"
    assert again.lookup(IDEM) == found  # asking again changes nothing
    again.close()


def test_lookup_when_the_create_never_arrived_makes_the_one_checkout_and_cancels_it(fake, clk, tmp_path):
    first = terminal(fake, clk, tmp_path)
    first.journal.put(IDEM, first.checkout_body(300, "7"))  # journaled; the kiosk died before sending
    first.close()
    again = terminal(fake, clk, tmp_path)
    assert again.lookup(IDEM).status == "declined"
    assert fake.count_by_idem() == {IDEM: 1} and fake.only().cancel_reason == "SELLER_CANCELED"
    again.close()


def test_create_unanswered_until_the_deadline_is_unknown_and_lookup_settles_it(fake, term):
    fake.fault("create", Fault("drop_after"), *[Fault("drop")] * 500)  # stored, then Square is unreachable
    assert term.charge(300, IDEM).status == "unknown"
    fake.faults.clear()
    assert term.lookup(IDEM).status == "declined"  # timed out at Square meanwhile: nothing charged
    assert fake.count_by_idem() == {IDEM: 1}


def test_lookup_of_an_in_progress_orphan_follows_it_to_completion(fake, term):
    fake.fault("create", Fault("drop_after"), *[Fault("drop")] * 500)
    fake.plan = ["tap", "wait", "complete"]
    assert term.charge(100, IDEM).status == "unknown"
    fake.faults.clear()
    fake.buyer(fake.only().id, "tap")  # a donor is paying right now: not canceled, followed
    assert term.lookup(IDEM).status == "approved"


def test_donor_presses_cancel_while_the_terminal_waits(fake, clk, tmp_path):
    fake.plan = ["wait"] * 10
    seen: list[str] = []

    def on_live(live) -> None:  # noqa: ANN001
        seen.append(live.status)
        if live.status == "PENDING" and not live.cancel_requested:
            threading.Thread(target=t.request_cancel).start()  # the UI thread's button

    t = terminal(fake, clk, tmp_path, on_live=on_live)
    r = t.charge(100, IDEM)
    assert r.status == "declined" and "SELLER_CANCELED" in r.reason
    assert ("POST", f"/v2/terminals/checkouts/{fake.only().id}/cancel") in fake.requests
    assert seen[0] == "CREATING" and "PENDING" in seen
    t.close()


def test_emoney_cancel_refused_after_a_terminal_error_keeps_following(fake, clk, tmp_path):
    fake.plan = ["error", "wait", "wait", "wait", "complete"]
    t = terminal(fake, clk, tmp_path)
    orig = t._set_live

    def set_live(**kw):  # noqa: ANN003
        orig(**kw)
        if kw.get("status") == "IN_PROGRESS" and not t.live.cancel_requested:
            t.request_cancel()

    t._set_live = set_live  # the donor presses やめる once the terminal shows its error
    r = t.charge(100, IDEM)
    assert t.live.cancel_refused
    assert r.status == "approved"  # the donor finished on the terminal; the gift is not lost
    t.close()


def test_a_donation_through_the_service_records_the_square_payment(fake, clk, tmp_path, signing_key):
    led = Ledger.open(tmp_path / "ledger.db", signing_key, KIOSK_ID, clock=clk)
    t = terminal(fake, clk, tmp_path)
    svc = DonationService(led, t, settings(method=t.method), clock=clk)
    svc.start()
    fake.plan = ["tap", "complete"]
    svc.reader_event(card(1))
    assert svc.state.name == "thanks"
    [d] = entries_of(led, "donation")
    co = fake.only()
    assert d.data["provider_ref"] == co.payment_ids[0] and d.data["method"] == "square"
    assert co.idem == d.data["idem"] and co.request["reference_id"] == f"{KIOSK_ID}-{d.data['intent_seq']}"
    # a second donor cancels on the terminal: donation_failed, nothing charged
    fake.plan = ["cancel"]
    svc.reader_event(card(2))
    assert svc.state.name == "error" and len(entries_of(led, "donation_failed")) == 1
    led.close()
    t.close()
    assert verify_path(tmp_path / "ledger.db").ok


def test_an_open_intent_waits_for_its_own_terminal_across_a_switch_to_the_simulator(fake, clk, tmp_path, signing_key):
    # docs/payment.md: staff switch the kiosk to the simulator when the desk is not staffed. A Square gift left
    # open (the donor still paying at the kiosk's deadline) must not be "looked up" in the simulator, which has
    # never heard of its key: it would close as not charged a checkout the donor then pays.
    path = tmp_path / "ledger.db"
    led = Ledger.open(path, signing_key, KIOSK_ID, clock=clk)
    sq = terminal(fake, clk, tmp_path)
    svc = DonationService(led, sq, settings(method=sq.method), clock=clk, lookup_interval_ms=0, lookup_attempts=1)
    svc.start()
    fake.plan = ["tap"]  # at the terminal for ever, as far as the kiosk can see
    svc.reader_event(card(1))
    [intent] = led.unresolved_intents()
    fake.buyer(fake.only().id, "complete")  # ...then the donor's payment goes through at Square
    led.close()
    sq.close()

    led = Ledger.open(path, signing_key, KIOSK_ID, clock=clk)
    sim = SimulatedTerminal(tmp_path / "payment-sim.db")
    svc = DonationService(led, sim, settings(method=sim.method), clock=clk, lookup_interval_ms=0)
    assert [r.outcome for r in svc.start()] == ["other_terminal"]
    svc.reader_event(card(2))  # the simulator's own gifts go on meanwhile
    assert svc.state.name == "thanks"
    assert [i["seq"] for i in led.unresolved_intents()] == [intent["seq"]]
    assert entries_of(led, "donation_failed") == []
    led.close()
    sim.close()

    led = Ledger.open(path, signing_key, KIOSK_ID, clock=clk)
    sq = terminal(fake, clk, tmp_path)
    svc = DonationService(led, sq, settings(method=sq.method), clock=clk, lookup_interval_ms=0)
    assert [r.outcome for r in svc.start()] == ["donation"]  # back on Square: settled by its lookup
    donations = entries_of(led, "donation")
    assert [d.data["method"] for d in donations] == ["sim", "square"]
    assert donations[-1].data["provider_ref"] == fake.only().payment_ids[0]
    assert led.unresolved_intents() == [] and entries_of(led, "donation_failed") == []
    led.close()
    sq.close()
    assert verify_path(path).ok


def test_refund_is_idempotent(fake, term):
    fake.plan = ["complete"]
    fake.refund_steps = ["PENDING"]  # the bank has not answered yet
    pid = term.charge(1000, IDEM).provider_ref
    a = term.refund(pid, 1000, "refund-key-1", "mistaken amount")
    b = term.refund(pid, 1000, "refund-key-1", "mistaken amount")
    assert a == b and a.status == "PENDING" and len(fake.refunds) == 1
    assert fake.refunds["refund-key-1"]["amount_money"] == {"amount": 1000, "currency": "JPY"}
    with pytest.raises(RefundRefused):
        term.refund(pid, 1000, "refund-key-2", "again")  # more than the payment: refused, said plainly
    fake.set_refund(a.refund_id, "COMPLETED")
    c = term.refund(pid, 1000, "refund-key-1", "mistaken amount")  # asked again: the same refund, its status now
    assert (c.refund_id, c.status) == (a.refund_id, "COMPLETED") and len(fake.refunds) == 1


def test_refund_without_an_answer_is_unavailable_and_safe_to_repeat(fake, term):
    fake.plan = ["complete"]
    pid = term.charge(500, IDEM).provider_ref
    fake.fault("refund", Fault("drop_after"), *[Fault("drop")] * 500)
    with pytest.raises(TerminalUnavailable):
        term.refund(pid, 500, "refund-key-3", "mistaken")
    fake.faults.clear()
    assert term.refund(pid, 500, "refund-key-3", "mistaken").refund_id == fake.refunds["refund-key-3"]["id"]
    assert len(fake.refunds) == 1


def test_pairing_waits_for_paired_and_returns_the_device_id(fake, clk):
    from square import Square

    shown: list[str] = []

    def show(line: str) -> None:
        shown.append(line)
        code_id = next(iter(fake.device_codes))
        threading.Timer(0, fake.pair_terminal, (code_id, "device:NEW-1")).start()

    client = Square(base_url=fake.url, token=TOKEN)
    import time as _t

    class RealSleep(FixedClock):
        def sleep(self, s: float) -> None:
            _t.sleep(0.05)
            super().sleep(s)

    dev = pair(client, LOCATION, "kiosk-1", wait_s=60, clock=RealSleep(), show=show, poll_s=1)
    assert dev == "device:NEW-1" and "device code" in shown[0]


def test_device_status(fake, term, clk, tmp_path):
    assert term.device_status()[0] == "ok"
    other = terminal(fake, clk, tmp_path, device_id="device:GONE", journal=tmp_path / "j2.db")
    assert other.device_status()[0] == "unpaired"
    other.close()
    bad = terminal(fake, clk, tmp_path, token="wrong", journal=tmp_path / "j3.db")
    assert bad.device_status()[0] == "unauthorized"
    bad.close()


def test_health_reports_the_terminal_real_state(fake, term, clk, tmp_path):
    state, detail = term.health(wait=True)
    assert state == "ready" and DEVICE in detail and "no checkout yet" in detail
    fake.plan = ["complete"]
    term.charge(100, IDEM)
    assert term.health() == ("ready", f"device {DEVICE} (AVAILABLE); last checkout: approved")
    fake.plan = ["cancel"]
    term.charge(100, "another-key")
    assert "last checkout: declined" in term.health()[1]
    gone = terminal(fake, clk, tmp_path, device_id="device:GONE", journal=tmp_path / "j4.db")
    assert gone.health(wait=True)[0] == "error"
    gone.close()


def test_health_while_paying_is_busy_and_offline_when_square_does_not_answer(clk, tmp_path):
    with FakeSquare(clock=clk.monotonic) as fake:
        states: list[tuple[str, str]] = []
        t = terminal(fake, clk, tmp_path, on_live=lambda live: states.append(t.health()))
        fake.plan = ["tap", "complete"]
        t.charge(100, IDEM)
        assert ("busy", "checkout in_progress") in states
        fake.fault("device", *[Fault("drop")] * 50)  # Square stops answering
        state, detail = t.health(wait=True)
        assert state == "offline" and "no answer" in detail
    t.close()
