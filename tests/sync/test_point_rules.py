"""Written point rules (issue #17, docs/points.md): administrators write them on the operator UI, citizens
read them on a public page, kiosks receive them in the signed config and grant only what they say, and
the portal quarantines a grant that matches no rule of the version the kiosk ran.

A real portal over HTTP on loopback (SQLite and PostgreSQL), a real kiosk ledger and uploader.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, staff_session

from kiosk.ledger.writer import InlineWriter
from kiosk.staff.volunteer import VolunteerError, grant
from kiosk.sync.adopt import overlay
from server_sync import catalog, configstore, policy
from server_sync.db import entries, make_engine
from server_sync.staff import add_user

RULES_FORM = {
    "points_per_100_yen": "1",
    "r0_id": "event-shift", "r0_title": "イベントの受付（2時間）", "r0_title_en": "Event shift (2 hours)",
    "r0_points": "10", "r0_description": "センターの催しで2時間、受付や案内をする",
    "r0_description_en": "Two hours at the reception of a center event",
    "r1_id": "park-cleanup", "r1_title": "公園の清掃", "r1_title_en": "", "r1_points": "5",
    "r1_description": "月に一度の公園清掃に参加する", "r1_description_en": "",
}


def _save_rules(portal, form: dict[str, str]) -> requests.Response:  # noqa: ANN001
    s, token = staff_session(portal.url, "admin")
    return s.post(portal.url + "/staff/point-rules", data={**form, "csrf": token}, timeout=10)


@pytest.fixture
def site(portal):  # noqa: ANN001
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    return portal


def test_administrators_write_the_rules_citizens_read_them_and_kiosks_receive_them(site):
    r = requests.get(site.url + "/points/rules", timeout=10)
    assert r.status_code == 200 and 'id="no-rules"' in r.text
    # Center staff may not write the rules; a form without its session's token is refused.
    s, token = staff_session(site.url, "staff1")
    assert s.get(site.url + "/staff/point-rules", timeout=10).status_code == 403
    assert s.post(site.url + "/staff/point-rules", data={**RULES_FORM, "csrf": token}, timeout=10).status_code == 403
    admin, _ = staff_session(site.url, "admin")
    assert admin.post(site.url + "/staff/point-rules", data=RULES_FORM, timeout=10).status_code == 403
    # A bad form comes back with what was typed and a message beside the field; nothing is stored.
    bad = _save_rules(site, {**RULES_FORM, "r1_points": "0", "r1_description": ""})
    assert bad.status_code == 422 and 'data-for="r1_points"' in bad.text and 'data-for="r1_description"' in bad.text
    assert "イベントの受付" in bad.text
    with site.app.state.engine.connect() as conn:
        assert (configstore.current(conn) or {"config": {}})["config"].get("points_rules") is None
    ok = _save_rules(site, RULES_FORM)
    assert ok.status_code == 200 and 'id="notice"' in ok.text and "第 1 版" in ok.text
    with site.app.state.engine.connect() as conn:
        cur = configstore.current(conn)
    assert cur is not None
    rules = cur["config"]["points_rules"]
    assert rules["version"] == 1 and [(a["id"], a["points"]) for a in rules["activities"]] == [
        ("event-shift", 10), ("park-cleanup", 5)]
    # The activities the document carries are the rules' own, each fixed (points = most points).
    assert [(a["id"], a["points"], a["max_points"]) for a in cur["config"]["activities"]] == [
        ("event-shift", 10, 10), ("park-cleanup", 5, 5)]
    page = requests.get(site.url + "/points/rules", timeout=10).text
    assert "センターの催しで2時間、受付や案内をする" in page and "寄付 100 円ごとに 1 ポイント" in page
    en = requests.get(site.url + "/points/rules?lang=en", timeout=10).text
    assert "Two hours at the reception of a center event" in en and "Event shift (2 hours)" in en
    assert "月に一度の公園清掃に参加する" in en  # no English description: the Japanese one, not nothing
    # The older volunteer page cannot publish activities that differ from the rules in force.
    s, token = staff_session(site.url, "staff1")
    r = s.post(site.url + "/staff/volunteer", data={"csrf": token, "a0_id": "karaoke", "a0_title": "カラオケ",
                                                    "a0_points": "50", "a0_max_points": "50"}, timeout=10)
    assert r.status_code == 422 and "ポイント規程" in r.text and "differ from the point rules" not in r.text
    with site.app.state.engine.connect() as conn:
        assert configstore.current(conn)["config"]["points_rules"]["version"] == 1


def test_a_grant_that_matches_no_rule_is_refused_on_the_device_and_quarantined_at_the_portal(site, rig):
    up = enrolled(rig, site)
    rig.donate(2)
    assert _save_rules(site, RULES_FORM).status_code == 200
    assert up.sync_once().ok  # uploads, pulls the config with the rules, records its config_change
    with site.app.state.engine.connect() as conn:
        pushed = configstore.current(conn, rig.kiosk_id)
    cfg = overlay(rig.cfg, pushed["config"])
    vol = cfg.volunteer
    assert vol.rules_version == 1 and [(a.id, a.points, a.max_points) for a in vol.activities] == [
        ("event-shift", 10, 10), ("park-cleanup", 5, 5)]
    writer = InlineWriter(rig.ledger)
    card = rig.pepper.token(fake_idm(7))
    before = rig.ledger.size
    # On the device: a number other than the rule's, or an activity the rules do not have, is refused
    # and nothing is written.
    with pytest.raises(VolunteerError, match="point rules v1 give 10 points"):
        grant(writer, vol, "event-shift", 7, card)
    with pytest.raises(VolunteerError, match="no rule of the point rules v1"):
        grant(writer, vol, "karaoke", 10, card)
    assert rig.ledger.size == before
    honest = grant(writer, vol, "event-shift", 10, card)
    assert honest.data["rules"] == 1 and honest.data["points"] == 10
    # A doctored kiosk signs what the device refuses; the portal keeps it but quarantines it.
    rig.clock.advance(policy.GRACE_MS + 1000)
    forged = [rig.ledger.grant_points(card, 7, "event-shift", 1),  # not the rule's points
              rig.ledger.grant_points(card, 10, "karaoke", 1),  # no such rule
              rig.ledger.grant_points(card, 10, "event-shift"),  # names no rules version
              rig.ledger.grant_points(card, 10, "event-shift", 2)]  # a version not in force
    assert up.sync_once().ok
    eng = make_engine(site.db_url)
    try:
        with eng.connect() as conn:
            q = dict(conn.execute(select(entries.c.seq, entries.c.quarantine).where(
                entries.c.kiosk_id == rig.kiosk_id, entries.c.type == "points_grant")).all())
    finally:
        eng.dispose()
    assert q[honest.seq] is None
    for e in forged:
        assert q[e.seq] is not None and q[e.seq].startswith("rules:"), (e.seq, q)
    assert "give 10" in q[forged[0].seq] and "no activity 'karaoke'" in q[forged[1].seq]
    assert "v1" in q[forged[3].seq]
