"""The power-cut campaign as a test: ≥200 cuts of a real kiosk process in CI (POWERCUT_CUTS to change).

See campaign.py for what runs and what is checked after every cut. The JSON line it prints is the
result: cuts, acknowledged donations checked, losses (must be 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from campaign import DEFAULT_CUTS, run_campaign
from powercutfs import fuse_unavailable


@pytest.mark.slow
def test_power_cut_campaign_loses_nothing_acknowledged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    why = fuse_unavailable()
    if why:
        pytest.skip(why)
    cuts = int(os.environ.get("POWERCUT_CUTS", DEFAULT_CUTS))
    report = run_campaign(tmp_path, cuts, seed=int(os.environ.get("POWERCUT_SEED", "1")))
    with capsys.disabled():
        print("\npower-cut campaign: " + report.line())
    assert report.losses == 0, report.problems
    assert report.portal_totals_match
    assert report.cuts >= cuts
    # It reached every path it claims to test: cuts at start-up and while working, and each kind of write
    # was acknowledged (and so checked) at least once.
    phases = report.cut_phases
    assert phases["running"] > 0 and sum(n for p, n in phases.items() if p != "running") > 0, phases
    assert report.acknowledged_donations_checked > 0 and report.acknowledged_closeouts_checked > 0
    assert report.acknowledged_grants_checked > 0 and report.configs_adopted > 0 and report.charges_checked > 0
    assert report.unsynced_dropped["files"] > 0  # the cuts did throw unsynced writes away
    assert report.snapshots_opened > 0  # the kiosk wrote state snapshots, and cuts came after them
