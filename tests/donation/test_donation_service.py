"""The donation service against a real ledger file and a real simulated terminal."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from kiosk.donation import flow
from kiosk.donation.service import CHECKPOINT_HOLD_MS, DonationService
from kiosk.ledger import verify_path
from kiosk.payment import SimulatedTerminal
from kiosk.reader.events import CardRemoved, ReaderConnected, ReaderDisconnected, ReadError
from server_sync.wire.receipt import receipt_code
from tests.donation.conftest import LedgerOutage, approved_charges, card, entries_of, settings, token


def test_a_tap_on_the_loop_goes_intent_charge_donation_then_thanks(kiosk):
    seen: list[str] = []
    led, term, svc = kiosk.open(on_state=lambda s: seen.append(s.name))
    svc.handle(flow.ProjectShown(now_ms=svc.now_ms(), project="midori"))
    state = svc.reader_event(card(1, balance=2000))
    assert state.name == "thanks" and seen[-2:] == ["charging", "thanks"]
    (intent,) = entries_of(led, "donation_intent")
    (don,) = entries_of(led, "donation")
    (charge,) = term.charges()
    assert intent.data["idem"] == charge["idem"] == don.data["idem"]
    assert intent.seq < don.seq and don.data["intent_seq"] == intent.seq
    assert (don.data["project"], don.data["amount_yen"], don.data["points"], don.data["provider_ref"]) == \
        ("midori", 100, 1, charge["provider_ref"])
    assert term.balance(token(1).hex) == 1900
    scr = svc.screen
    assert scr == flow.ThanksScreen("midori", 100, 100, 1, 1, receipt_code(don), don.seq, "ja",
                                 reference=intent.seq)  # the 受付番号 staff find the gift by
    assert svc.state.thanks.receipt == flow.Receipt(don.seq, don.entry_hash, don.signature, scr.receipt_code)
    assert led.unresolved_intents() == []
    led.close()
    assert verify_path(kiosk.ledger_path).ok


def test_receipt_code_derivation_and_injection(kiosk):
    led, term, svc = kiosk.open()
    svc.reader_event(card(1))
    (don,) = entries_of(led, "donation")
    # By default the code is the portal's (docs/sync.md): base32 of SHA-256(domain || signature || body)[:16].
    want = base64.b32encode(hashlib.sha256(b"civic-kiosk-receipt/v1\x00" + don.signature + don.body).digest()[:16])
    assert svc.screen.receipt_code == want.decode().rstrip("=") == receipt_code(don)
    assert len(svc.screen.receipt_code) == 26 and svc.screen.receipt_code.isalnum()
    kiosk.close()
    led2, term2, svc2 = kiosk.open(receipt_code=lambda e: f"portal-{e.seq}")
    svc2.reader_event(card(2))
    assert svc2.screen.receipt_code == f"portal-{svc2.state.thanks.receipt.seq}"


def test_totals_and_point_balance_grow_from_the_ledger(kiosk):
    led, term, svc = kiosk.open(flow=settings(points_per_100_yen=2, daily_limit_per_card_yen=10_000))
    for n, amount in [(1, 500), (2, 100), (1, 1000)]:
        svc.handle(flow.Touch(now_ms=svc.now_ms(), project="kodomo"))
        svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=amount))
        svc.reader_event(card(n))
        assert svc.state.name == "thanks"
        svc.handle(flow.Cancel(now_ms=svc.now_ms()))  # the thank-you's close button
    assert led.project_total("kodomo") == (1600, 3)
    assert led.donor_points([token(1).hex]) == 30


def test_the_same_card_re_tapped_is_charged_once(kiosk):
    led, term, svc = kiosk.open()
    svc.reader_event(card(1))
    for _ in range(3):
        svc.reader_event(card(1))
        svc.reader_event(CardRemoved(reader_id="r", at=0.0, token=token(1)))
        assert svc.state.name == "thanks"
    assert len(term.charges()) == 1 and len(entries_of(led, "donation")) == 1


def test_daily_limit_counts_the_ledger_and_open_intents(kiosk):
    led, term, svc = kiosk.open(flow=settings(daily_limit_per_card_yen=1000))
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=500))
    svc.reader_event(card(1))
    assert svc.given_today(token(1).hex) == 500
    led.record_intent("midori", 500, "sim", token(1), "left-open")  # an open intent may still settle
    assert svc.given_today(token(1).hex) == 1000
    svc.handle(flow.Cancel(now_ms=svc.now_ms()))
    svc.reader_event(card(1))
    assert svc.screen.kind == "limit_reached" and svc.screen.remaining_yen == 0
    assert len(term.charges()) == 1
    svc.reader_event(card(2))  # another card is fine
    assert svc.state.name == "thanks"


def test_ledger_unavailable_at_the_intent_means_no_charge_and_unavailable(kiosk):
    led, term, svc = kiosk.open()
    outage = LedgerOutage(led)
    outage.set(True)
    size = led.size
    svc.reader_event(card(1))
    assert (svc.screen.kind, svc.screen.hint) == ("unavailable", "unavailable")
    assert term.charges() == [] and led.size == size and led.unresolved_intents() == []
    outage.set(False)
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.reader_event(card(1))
    assert svc.state.name == "thanks" and len(term.charges()) == 1


def test_a_ledger_that_cannot_even_be_read_refuses_the_tap(kiosk):
    led, term, svc = kiosk.open()
    outage = LedgerOutage(led)
    outage.set(True, reads=True)
    svc.reader_event(card(1))
    assert (svc.screen.kind, svc.screen.hint) == ("unavailable", "unavailable")
    assert term.charges() == []
    outage.set(False)
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.reader_event(card(1))
    assert svc.state.name == "thanks"


def test_ledger_failing_after_an_approved_charge_is_settled_by_the_next_start_up(kiosk):
    outages: list[LedgerOutage] = []

    def ledger_dies_after_charge(point: str) -> None:
        if point == "after_charge":
            outages[0].set(True)

    led, term, svc = kiosk.open(crash_point=ledger_dies_after_charge)
    outages.append(LedgerOutage(led))
    svc.reader_event(card(1))
    assert (svc.screen.kind, svc.screen.hint) == ("unavailable", "unavailable_charged")
    (open_intent,) = led.unresolved_intents()
    assert entries_of(led, "donation") == [] and len(approved_charges(term)) == 1
    led.close(checkpoint=False)
    term.close()
    # restart: same files, the disk is fine again
    led2, term2, svc2 = kiosk.open(start=False)
    (res,) = svc2.start()
    assert (res.intent_seq, res.outcome) == (open_intent["seq"], "donation")
    (don,) = entries_of(led2, "donation")
    assert don.data["provider_ref"] == approved_charges(term2)[0]["provider_ref"]
    assert len(term2.charges()) == 1 and term2.balance(token(1).hex) == 4900
    assert svc2.start() == []  # nothing left to do; never twice
    led2.close()
    assert verify_path(kiosk.ledger_path).ok


def test_an_outage_after_charge_is_settled_between_citizens_once_the_ledger_is_back(kiosk):
    outages: list[LedgerOutage] = []
    led, term, svc = kiosk.open(crash_point=lambda p: p == "after_charge" and outages[0].set(True))
    outages.append(LedgerOutage(led))
    svc.reader_event(card(1))
    assert svc.state.error.hint == "unavailable_charged"
    svc.handle(flow.Touch(now_ms=svc.now_ms()))  # back to the loop, ledger still down: stays open
    assert len(led.unresolved_intents()) == 1
    outages[0].set(False)
    kiosk.clock.advance(30_000)
    svc.tick()
    assert led.unresolved_intents() == [] and len(entries_of(led, "donation")) == 1
    assert len(term.charges()) == 1


def test_decline_is_recorded_and_shown(kiosk):
    led, term, svc = kiosk.open(mode="decline")
    svc.reader_event(card(1))
    assert (svc.screen.kind, svc.screen.hint) == ("declined", "declined")
    (fail,) = entries_of(led, "donation_failed")
    assert fail.data["reason"] == "declined: declined by the card issuer"
    assert entries_of(led, "donation") == [] and led.unresolved_intents() == []
    term.mode = "approve"
    svc.reader_event(card(1))  # the error screen takes a retry tap: a new donation, a new key
    assert svc.state.name == "thanks" and len({c["idem"] for c in term.charges()}) == 2


def test_balance_too_low_on_the_terminal_is_a_decline(kiosk):
    led, term, svc = kiosk.open(flow=settings(daily_limit_per_card_yen=10_000))
    for _ in range(2):  # the reader cannot read this card's balance; the simulator starts it at ¥2,000
        svc.handle(flow.Touch(now_ms=svc.now_ms()))
        svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=1000))
        svc.reader_event(card(1, balance=None))
        assert svc.state.name == "thanks"
        svc.handle(flow.Cancel(now_ms=svc.now_ms()))  # close the thank-you
    svc.reader_event(card(1, balance=None))
    assert (svc.screen.kind, svc.screen.hint) == ("declined", "declined")
    (fail,) = entries_of(led, "donation_failed")
    assert fail.data["reason"] == "declined: insufficient balance (¥0)"
    assert term.balance(token(1).hex) == 0 and len(approved_charges(term)) == 2


def test_reader_balance_too_low_never_reaches_the_ledger(kiosk):
    led, term, svc = kiosk.open()
    size = led.size
    svc.reader_event(card(1, balance=40))
    assert svc.screen.kind == "balance_low" and svc.screen.balance_yen == 40
    assert led.size == size and term.charges() == []


def test_timeout_with_the_charge_applied_is_looked_up_into_a_donation(kiosk):
    led, term, svc = kiosk.open(mode="timeout_applied")
    svc.reader_event(card(1))
    assert svc.state.name == "thanks"
    assert len(entries_of(led, "donation")) == 1 and len(term.charges()) == 1


def test_timeout_with_the_request_lost_is_not_charged(kiosk):
    led, term, svc = kiosk.open(mode="timeout_lost")
    svc.reader_event(card(1))
    assert (svc.screen.kind, svc.screen.hint) == ("declined", "not_charged")
    (fail,) = entries_of(led, "donation_failed")
    assert fail.data["reason"].startswith("not charged")
    assert term.charges() == []


def test_terminal_offline_leaves_the_intent_for_start_up(kiosk):
    naps: list[float] = []
    led, term, svc = kiosk.open(mode="offline", lookup_interval_ms=150, sleep=naps.append)
    svc.reader_event(card(1))
    assert (svc.screen.kind, svc.screen.hint) == ("unavailable", "unavailable_pending")
    assert naps == [0.15, 0.15]  # three lookups, paced
    assert len(led.unresolved_intents()) == 1
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    assert len(led.unresolved_intents()) == 1  # still offline: stays open
    term.mode = "approve"
    kiosk.clock.advance(30_000)
    svc.tick()
    (fail,) = entries_of(led, "donation_failed")
    assert fail.data["reason"] == "not charged: no charge found at start-up"


def test_slow_terminal_still_ends_in_thanks(kiosk):
    led, term, svc = kiosk.open(slow_ms=30)
    svc.reader_event(card(1))
    assert svc.state.name == "thanks"


def test_start_up_resolves_every_kind_of_open_intent(kiosk):
    led, term, _ = kiosk.open()
    term.card_seen(token(1).hex, 1000)
    i_ok = led.record_intent("kodomo", 500, "sim", token(1), "charged")
    term.charge(500, "charged")
    i_no = led.record_intent("kodomo", 100, "sim", token(1), "declined")
    term.mode = "decline"
    term.charge(100, "declined")
    i_none = led.record_intent("kodomo", 100, "sim", token(1), "never-sent")
    term.mode = "approve"
    svc = DonationService(led, term, settings(points_per_100_yen=3), clock=kiosk.clock)
    res = {r.intent_seq: r.outcome for r in svc.start()}
    assert res == {i_ok.seq: "donation", i_no.seq: "failed", i_none.seq: "failed"}
    (don,) = entries_of(led, "donation")
    assert don.data["points"] == 15 and don.data["intent_seq"] == i_ok.seq
    assert led.unresolved_intents() == [] and svc.start() == []
    assert term.balance(token(1).hex) == 500
    assert svc.state.name == "attract"


def test_start_up_keeps_intents_open_while_the_terminal_is_unreachable(kiosk):
    led, term, _ = kiosk.open()
    led.record_intent("kodomo", 100, "sim", token(1), "k")
    term.mode = "offline"
    svc = DonationService(led, term, settings(), clock=kiosk.clock)
    assert [r.outcome for r in svc.start()] == ["still_open"]
    assert len(led.unresolved_intents()) == 1


def test_reader_events_map_onto_the_flow(kiosk):
    led, term, svc = kiosk.open()
    svc.reader_event(ReadError(reader_id="r", at=0.0, kind="unsupported", detail="FeliCa Lite"))
    assert svc.screen.kind == "not_transit"
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.reader_event(ReadError(reader_id="r", at=0.0, kind="card-lost", detail="moved away"))
    assert svc.screen.kind == "card_unreadable"
    svc.reader_event(card(1, family="unknown"))
    assert svc.screen.kind == "not_transit"
    svc.reader_event(ReaderDisconnected(reader_id="r", at=0.0, reason="unplugged"))
    assert svc.screen.kind == "reader_offline"
    svc.reader_event(ReaderConnected(reader_id="r", at=0.0, backend="sim", description="sim"))
    assert svc.state.name == "attract"
    svc.reader_event(card(1))
    assert svc.state.name == "thanks"


def test_idle_timeouts_follow_the_service_clock(kiosk):
    led, term, svc = kiosk.open()
    svc.reader_event(card(1))
    kiosk.clock.advance(5_999)
    assert svc.tick().name == "thanks"
    kiosk.clock.advance(1)
    assert svc.tick().name == "attract"


def test_english_chosen_on_the_loop_goes_back_to_japanese_when_nobody_is_there(kiosk):
    led, term, svc = kiosk.open()
    svc.handle(flow.ToggleLanguage(now_ms=svc.now_ms()))  # a visitor touches "English" on the loop, then walks away
    assert svc.screen.screen == "attract" and svc.screen.lang == "en"
    kiosk.clock.advance(60 * 60 * 1000)  # an hour later, nobody has touched the kiosk
    svc.tick()
    assert svc.screen.lang == "ja", "the loop is still in English an hour after the visitor left"


def test_a_second_brush_on_the_canceled_screen_is_not_charged_without_the_window(kiosk):
    """An Express gift withdrawn (the card left the reader in its window): 取り消しました. The same bag brushing the
    reader again while that screen is up gets the same window as the first brush, not a charge at once."""
    led, term, svc = kiosk.open(flow=settings(express_cancel_ms=1_000))
    svc.reader_event(card(1))  # a card in a bag brushes the reader on the loop: Express, held for the window
    assert svc.state.name == "charging" and svc.screen.can_withdraw
    svc.reader_event(CardRemoved(reader_id="reader-1", at=0.0, token=token(1)))  # ... and leaves it: withdrawn
    assert (svc.state.name, svc.state.error.hint) == ("error", "canceled")
    assert not term.charges()
    svc.reader_event(card(1))  # the same bag brushes again while 取り消しました is on screen
    # The same protection as the first brush: a window, やめる, nothing charged yet.
    assert not approved_charges(term), f"charged ¥{approved_charges(term)[0]['amount_yen']} from a brush, no window"
    assert svc.state.name == "charging" and svc.screen.can_withdraw
    svc.reader_event(CardRemoved(reader_id="reader-1", at=0.0, token=token(1)))  # it leaves again: nothing given
    assert (svc.state.name, svc.state.error.hint) == ("error", "canceled") and not term.charges()
    assert [e.data["reason"] for e in entries_of(led, "donation_failed")] == [flow.WITHDRAWN, flow.WITHDRAWN]


def test_for_config_builds_from_a_kiosk_config(tmp_path):
    from kiosk.config import validate_config
    from kiosk.ops.local_files import ensure_secrets, open_ledger

    cfg = validate_config({"kiosk": {"id": "svc-test", "data_dir": str(tmp_path)}, "flow": {"express_cancel_ms": 50},
                           "projects": [{"id": "a", "title": "A", "area": "green"}]})
    ensure_secrets(cfg)
    led = open_ledger(cfg)
    term = SimulatedTerminal(tmp_path / "sim.db")
    svc = DonationService.for_config(cfg, led, term)
    svc.start()
    svc.reader_event(card(1))
    assert svc.state.name == "charging" and svc.screen.can_withdraw  # the Express window, from [flow]
    assert entries_of(led, "donation_intent") and not term.charges()  # durable first, nothing charged yet
    time.sleep(0.06)
    svc.tick()
    assert svc.state.name == "thanks" and svc.screen.project == "a"
    assert entries_of(led, "donation")[0].data["method"] == "sim"
    led.close()
    term.close()


def test_crash_hooks_are_inert_by_default(kiosk):
    led, term, svc = kiosk.open()
    svc.reader_event(card(4))
    assert svc.state.name == "thanks"
    kiosk.close()
    calls: list[str] = []
    led2, term2, svc2 = kiosk.open(crash_point=calls.append)
    svc2.reader_event(card(5))
    assert calls == ["before_intent", "after_intent", "after_charge", "after_donation"]


@pytest.mark.parametrize("points_rate,amount,points", [(1, 100, 1), (1, 1000, 10), (0, 500, 0), (2, 500, 10)])
def test_points_rate(kiosk, points_rate, amount, points):
    led, term, svc = kiosk.open(flow=settings(points_per_100_yen=points_rate))
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=amount))
    svc.reader_event(card(1))
    assert entries_of(led, "donation")[0].data["points"] == points
    assert svc.screen.points_earned == points and svc.screen.points_balance == points


def test_a_deferred_checkpoint_waits_for_the_app_or_the_next_event_and_comes_right_after_the_gift(kiosk):
    """Issue #16: in ``kiosk run`` the checkpoint after a gift is written once the thank-you is on screen
    (``checkpoint_if_due``), or before the next event at the latest; never skipped, never twice."""
    led, _term, svc = kiosk.open()
    svc.defer_checkpoint = True
    before = len(entries_of(led, "checkpoint"))
    assert svc.reader_event(card(1)).name == "thanks"
    assert len(entries_of(led, "checkpoint")) == before  # the thank-you is published; the proof waits
    svc.checkpoint_if_due()
    svc.checkpoint_if_due()  # only once
    cps = entries_of(led, "checkpoint")
    (don,) = entries_of(led, "donation")
    assert len(cps) == before + 1 and cps[-1].seq == don.seq + 1
    # Without the app's call, the next event that has an effect (here the next tap) writes it first.
    assert svc.reader_event(card(2)).name == "thanks"
    (_, don2) = entries_of(led, "donation")
    assert entries_of(led, "checkpoint")[-1].seq < don2.seq
    svc.reader_event(card(3))
    don3 = entries_of(led, "donation")[-1]
    assert [e.seq for e in entries_of(led, "checkpoint")][-1] == don2.seq + 1 < don3.seq
    # And without any effect, an event writes it once it has been held CHECKPOINT_HOLD_MS (the display lost).
    kiosk.clock.advance(CHECKPOINT_HOLD_MS)
    svc.tick()
    assert entries_of(led, "checkpoint")[-1].seq == don3.seq + 1


def test_a_deferred_checkpoint_is_not_pulled_in_front_of_the_thank_you_by_the_card_being_lifted(kiosk):
    """Issue #16: the card lifted (or the idle tick) while the app is still drawing the thank-you appends
    nothing, so it must not write the held checkpoint then: at 1080p that put a signature and a commit on
    the render in the slowest taps of bench/tap.py. The app's call after the flip writes it, once."""
    led, _term, svc = kiosk.open()
    svc.defer_checkpoint = True
    before = len(entries_of(led, "checkpoint"))
    assert svc.reader_event(card(1)).name == "thanks"
    svc.reader_event(CardRemoved(reader_id="r", at=0.0, token=token(1)))
    svc.tick()
    kiosk.clock.advance(CHECKPOINT_HOLD_MS - 1)
    svc.tick()
    assert len(entries_of(led, "checkpoint")) == before
    svc.checkpoint_if_due()
    (don,) = entries_of(led, "donation")
    assert [e.seq for e in entries_of(led, "checkpoint")][before:] == [don.seq + 1]
