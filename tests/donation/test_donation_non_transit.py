"""Issue #15 item 3: a non-transit FeliCa card (WAON, Edy, nanaco) gets the "not a transit IC card" screen
with the default reader config, through the simulated reader's real polling and the donation service."""

from __future__ import annotations

import pytest

from kiosk.config.reader import ReaderConfig
from kiosk.donation import flow
from kiosk.reader.sim import SimReader
from tests.donation.conftest import PEPPER, entries_of


class StepClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


@pytest.mark.parametrize("preset", ["waon", "edy", "nanaco"])
def test_a_non_transit_card_gets_the_not_transit_screen_by_default(kiosk, preset):
    led, term, svc = kiosk.open()
    svc.handle(flow.ProjectShown(now_ms=svc.now_ms(), project="midori"))
    clock = StepClock()
    reader = SimReader(ReaderConfig(), PEPPER.token, clock=clock, sleep=clock.sleep)  # the shipped defaults
    reader.open()
    reader.tap(preset)
    for _ in range(20):  # one second of polls, as the supervisor does them
        reader.poll()
        for ev in reader.events.drain():
            svc.reader_event(ev)
        clock.sleep(0.05)
    screen = svc.screen
    assert isinstance(screen, flow.ErrorScreen), screen
    assert (screen.kind, screen.hint) == ("not_transit", "not_transit")
    assert entries_of(led, "donation_intent") == [] and term.charges() == []  # nothing was started
