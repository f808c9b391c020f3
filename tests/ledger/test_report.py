"""The close-out basis, `kiosk ledger report` (kiosk/ledger/report.py): what a dated report counts."""

from __future__ import annotations

import json
from datetime import timedelta

from kiosk.cli import main
from kiosk.ledger import Ledger
from kiosk.ledger.clock import FixedClock
from tests.conftest import fake_idm


def test_dated_report_counts_only_that_days_voids(tmp_path, signing_key, pepper, capsys):  # noqa: ANN001
    """Day 1: a gift, voided the same day. Day 2: a gift, nothing voided. Day 2's report says `voided: 0`, and
    day 1's `voided: 1` beside no settled gift."""
    clock = FixedClock()
    led = Ledger.open(tmp_path / "ledger.db", signing_key, "audit-kiosk", clock=clock, checkpoint_every=1000)
    it = led.record_intent("kodomo", 1000, "sim", pepper.token(fake_idm(1)), "idem-1")
    d1 = led.record_donation(it.seq, "ref-1", 10)
    led.void(d1.seq, "wrong amount")
    day1 = led.business_date()
    clock.advance(86_400_000)
    it = led.record_intent("kodomo", 500, "sim", pepper.token(fake_idm(2)), "idem-2")
    led.record_donation(it.seq, "ref-2", 5)
    day2 = led.business_date()
    assert day2 == day1 + timedelta(days=1)
    led.close(checkpoint=False)

    def report(*args: str) -> dict:
        assert main(["ledger", "report", str(tmp_path / "ledger.db"), *args, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    rep = report("--date", day2.isoformat())
    assert (rep["count"], rep["total_yen"], rep["voided"]) == (1, 500, 0)
    rep = report("--date", day1.isoformat())
    assert (rep["count"], rep["total_yen"], rep["voided"]) == (0, 0, 1)
    rep = report()
    assert (rep["count"], rep["total_yen"], rep["voided"]) == (1, 500, 1)
