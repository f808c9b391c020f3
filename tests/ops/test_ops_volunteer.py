"""Volunteer points land in the donor's balance; staff cards open the menu; every action is audited."""

from __future__ import annotations

import pytest

from kiosk.config.staff import Activity, StaffSection, VolunteerSection
from kiosk.staff.gate import StaffError, StaffGate
from kiosk.staff.volunteer import VolunteerError, balance, grant

SETTINGS = VolunteerSection(
    activities=[Activity(id="park-cleanup", title="公園清掃", points=20, max_points=50),
                Activity(id="festival", title="音楽祭スタッフ", points=30, max_points=100)],
    daily_limit_per_card=120,
)


def test_granted_points_join_the_donation_points(site):
    led, pepper = site.ledger, site.pepper
    volunteer = pepper.token(site.idms[0])
    i = led.record_intent("kodomo", 500, "sim", volunteer, "idem-v")
    led.record_donation(i.seq, "ref", 5)
    assert balance(led, volunteer) == 5
    entry = grant(site.writer, SETTINGS, "park-cleanup", 20, volunteer)
    assert entry.type == "points_grant" and entry.data["activity"] == "park-cleanup"
    assert led.donor_points([volunteer.hex]) == 25 == balance(led, volunteer)
    assert balance(led, pepper.token(site.idms[1])) == 0


def test_limits(site):
    led, token = site.ledger, site.pepper.token(site.idms[1])
    with pytest.raises(VolunteerError, match="unknown activity"):
        grant(site.writer, SETTINGS, "karaoke", 10, token)
    with pytest.raises(VolunteerError, match="at most 50"):
        grant(site.writer, SETTINGS, "park-cleanup", 51, token)
    with pytest.raises(VolunteerError, match="positive"):
        grant(site.writer, SETTINGS, "park-cleanup", 0, token)
    grant(site.writer, SETTINGS, "festival", 100, token)
    with pytest.raises(VolunteerError, match="20 more points today"):
        grant(site.writer, SETTINGS, "park-cleanup", 30, token)
    grant(site.writer, SETTINGS, "park-cleanup", 20, token)
    site.clock.advance(24 * 3600_000)  # a new business day resets the daily limit
    grant(site.writer, SETTINGS, "park-cleanup", 50, token)
    assert balance(led, token) == 170


def test_staff_card_session_audits_each_action(site):
    staff_card = site.pepper.token(site.idms[2])
    gate = StaffGate(site.writer, StaffSection(staff_tokens=[staff_card.hex]))
    assert gate.open_with_card(site.pepper.token(site.idms[0])) is None  # an ordinary donor
    session = gate.open_with_card(staff_card)
    assert session is not None
    volunteer = site.pepper.token(site.idms[0])
    grant(site.writer, SETTINGS, "festival", 30, volunteer, session=session)
    with session.action("volume", level=7):
        pass
    with pytest.raises(RuntimeError):
        with session.action("sync_now"):
            raise RuntimeError("portal down")
    with pytest.raises(StaffError):
        session.record("format_disk")
    session.close("idle")
    audit = [e.data for e in site.ledger.iter_entries() if e.type == "admin_action"]
    assert [a["action"] for a in audit] == ["menu_open", "points_grant", "volume", "sync_now", "menu_close"]
    assert all(a["by"] == f"card:{staff_card.hex}" for a in audit)
    opened = next(e.seq for e in site.ledger.iter_entries() if e.type == "admin_action")
    assert all(a["session_seq"] == opened for a in audit[1:])
    assert audit[2]["outcome"] == "ok" and audit[2]["level"] == 7
    assert audit[3]["outcome"].startswith("failed: RuntimeError: portal down")
    assert audit[4]["reason"] == "idle"
