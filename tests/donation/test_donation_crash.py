"""A kiosk process SIGKILLed at each step of a donation, then restarted on the same files.

The child is a fork that opens the ledger and the simulated terminal itself,
as a kiosk does at boot, and is killed by a real SIGKILL: at the service's
crash points, or from outside while the terminal holds its answer back. The
restart (this process: new ledger and terminal objects on the same files)
must end with exactly one donation and one charge, or none and none when the
process died before anything was charged.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import time

import pytest

from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, verify_path
from kiosk.payment import SimulatedTerminal
from tests.donation.conftest import KIOSK_ID, Kiosk, approved_charges, card, entries_of, settings, token

# point -> (terminal mode, charged?)
CASES = {
    "before_intent": ("approve", False),
    "after_intent": ("approve", False),
    "during_charge": ("approve", True),  # applied, answer not yet back
    "during_charge_unapplied": ("timeout_lost", False),  # the request never reached the provider
    "after_charge": ("approve", True),
    "after_donation": ("approve", True),
}


def _child(k: Kiosk, point: str, mode: str, fd: int) -> None:
    def crash(p: str) -> None:
        if p == "after_intent" and point.startswith("during_charge"):
            os.write(fd, b"charging\n")  # the parent kills us while the terminal works
        if p == point:
            os.kill(os.getpid(), signal.SIGKILL)

    led = Ledger.open(k.ledger_path, k.sk, KIOSK_ID, clock=k.clock)
    slow = 30_000 if point.startswith("during_charge") else 0
    term = SimulatedTerminal(k.sim_path, mode=mode, slow_ms=slow)  # type: ignore[arg-type]
    svc = DonationService(led, term, settings(), clock=k.clock, crash_point=crash)
    svc.start()
    svc.reader_event(card(1, balance=1000))
    os._exit(0 if svc.state.name == "thanks" else 3)


def _charge_row_exists(path) -> bool:  # noqa: ANN001
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM charges").fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _run_and_kill(k: Kiosk, point: str, mode: str) -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            _child(k, point, mode, w)
        finally:
            os._exit(4)
    os.close(w)
    try:
        if point.startswith("during_charge"):
            ready, _, _ = select.select([r], [], [], 20)
            assert ready and os.read(r, 100) == b"charging\n"
            deadline = time.monotonic() + 20
            if mode == "approve":  # wait until the charge is durable at the "provider", then cut the power
                while not _charge_row_exists(k.sim_path):
                    assert time.monotonic() < deadline, "the terminal never applied the charge"
                    time.sleep(0.005)
            else:
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child did not die at {point}: {status}"


@pytest.mark.parametrize("point", list(CASES))
def test_crash_at_each_step_then_restart_gives_one_donation_and_one_charge_or_none(kiosk, point):
    mode, charged = CASES[point]
    _run_and_kill(kiosk, point, mode)

    led, term, svc = kiosk.open(start=False)  # the restart
    resolutions = svc.start()
    intents = entries_of(led, "donation_intent")
    donations = entries_of(led, "donation")
    charges = approved_charges(term)
    assert led.unresolved_intents() == []
    if charged:
        assert len(donations) == 1 and len(charges) == 1
        assert donations[0].data["idem"] == charges[0]["idem"] == intents[0].data["idem"]
        assert donations[0].data["provider_ref"] == charges[0]["provider_ref"]
        assert term.balance(token(1).hex) == 900
        expect = [] if point == "after_donation" else ["donation"]
    else:
        assert donations == [] and charges == []
        assert term.balance(token(1).hex) in (None, 1000)
        expect = [] if point == "before_intent" else ["failed"]
        assert len(entries_of(led, "donation_failed")) == len(expect) == len(intents)
    assert [r.outcome for r in resolutions] == expect
    assert svc.start() == []  # a second restart changes nothing

    # the restarted kiosk takes the next gift normally, from the same card
    svc.reader_event(card(1, balance=1000))
    assert svc.state.name == "thanks"
    assert len(entries_of(led, "donation")) == len(donations) + 1
    assert len(approved_charges(term)) == len(charges) + 1
    led.close()
    assert verify_path(kiosk.ledger_path).ok


def test_killed_twice_at_the_worst_moment_still_charges_once(kiosk):
    """Charge applied, answer lost; the kiosk dies again before the restart resolves anything new."""
    _run_and_kill(kiosk, "after_charge", "approve")
    _run_and_kill(kiosk, "before_intent", "approve")  # the second boot resolves, then dies at the next tap
    led, term, svc = kiosk.open()
    assert len(entries_of(led, "donation")) == 1 and len(approved_charges(term)) == 1
    assert led.unresolved_intents() == []
