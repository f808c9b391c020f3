"""The retry between donors only glances at a checkout still under way.

An intent left open (an ``unknown`` answer, an outage) is retried at the loop screen every ``retry_open_ms``, on the
thread that also answers the next citizen's tap. Start-up follows a checkout still IN_PROGRESS for
``answer_grace_s`` (a donor may be paying right now); done between donors, that held the kiosk for
``answer_grace_s`` (30 s by default) out of every minute while a checkout nobody was finishing stayed open (a
donor who walked away from an e-money error the API cannot cancel; a cancel Square leaves at CANCEL_REQUESTED for
hours). Now the retry between donors asks with ``lookup(brief=True)``: a glance, and the intent stays open for the
next retry, never closed as not charged.

Real parts: the ledger, the donation service, the Square adapter and SDK against the fake Square API on loopback.
Time is a FixedClock shared by all of them.
"""

from __future__ import annotations

from pathlib import Path

from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger
from kiosk.ledger.clock import FixedClock
from tests.donation.conftest import KIOSK_ID, card, entries_of, settings
from tests.payment.fake_square import FakeSquare
from tests.payment.test_square_terminal import terminal


def test_between_donors_a_checkout_still_in_progress_does_not_hold_the_kiosk(tmp_path: Path, signing_key) -> None:  # noqa: ANN001
    # A donor walked away from a checkout the terminal still shows as in progress (an e-money error the API may
    # not cancel, or a cancel Square leaves at CANCEL_REQUESTED for hours). Start-up follows such a checkout for
    # answer_grace_s; the retry between donors must only glance at it, or every retry_open_ms the kiosk stops
    # answering taps for answer_grace_s while the worker polls a checkout nobody is paying.
    clk = FixedClock()
    with FakeSquare(clock=clk.monotonic) as fake:
        led = Ledger.open(tmp_path / "ledger.db", signing_key, KIOSK_ID, clock=clk)
        term = terminal(fake, clk, tmp_path)  # answer_grace_s=20
        svc = DonationService(led, term, settings(method=term.method), clock=clk, lookup_interval_ms=0,
                              lookup_attempts=1)
        svc.start()
        fake.plan = ["tap"]  # in progress for ever, as far as the kiosk can see
        svc.reader_event(card(1))
        assert svc.state.name == "error" and len(led.unresolved_intents()) == 1
        clk.advance(10_000)  # the error screen times out: back at the loop, the open intent is due for a retry
        start = clk.monotonic()
        svc.tick()
        assert svc.state.name == "attract"
        assert clk.monotonic() - start <= 3, "the retry between donors held the kiosk"
        assert len(led.unresolved_intents()) == 1  # still open: asked again later, never closed as not charged
        fake.buyer(fake.only().id, "complete")  # the donor's payment goes through at Square after all
        clk.advance(31_000)
        svc.tick()
        assert led.unresolved_intents() == [] and len(entries_of(led, "donation")) == 1
        led.close()
        term.close()
