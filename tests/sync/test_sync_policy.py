"""Policy on ingest (docs/sync.md): a stolen kiosk key forges entries that verify, and the portal
keeps them (its mirror stays exact) but quarantines them: not counted, shown to staff, alarmed.

Every forged entry here is written by a real kiosk ledger and signed with that kiosk's own key, then
uploaded over HTTP on loopback by the real uploader, on SQLite and PostgreSQL. Before each forgery
the kiosk makes honest donations; the public totals must stay exactly the honest ones.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import requests
from sqlalchemy import select
from sync_helpers import (
    PASSWORD,
    PROJECTS,
    enrolled,
    fake_idm,
    make_rig,
    portal_entry_count,
    signed_post,
    staff_session,
)

from server_sync import catalog, policy, pools, queries
from server_sync.db import alarms, entries, make_engine
from server_sync.wire import protocol as P

ABSURD_YEN = 9_007_199_254_729_791
ABSURD_POINTS = 2**53 - 1


def _totals(portal) -> dict:  # noqa: ANN001
    return requests.get(portal.url + "/api/v1/totals", timeout=10).json()


def _held(portal, kid: str) -> tuple[dict[int, str], list[tuple[str, int]]]:  # noqa: ANN001
    """({seq: quarantine reason}, [(alarm kind, seq)]) the portal stores for ``kid``."""
    eng = make_engine(portal.db_url)
    try:
        with eng.connect() as conn:
            q = dict(conn.execute(select(entries.c.seq, entries.c.quarantine).where(
                entries.c.kiosk_id == kid, entries.c.quarantine.is_not(None))).all())
            a = [(k, s) for k, s in conn.execute(select(alarms.c.kind, alarms.c.seq).where(alarms.c.kiosk_id == kid))]
    finally:
        eng.dispose()
    return q, a


def _forge_donation(rig, project: str, amount: int, points: int, card: int = 0):  # noqa: ANN001, ANN202
    intent = rig.ledger.record_intent(project, amount, "sim", rig.pepper.token(fake_idm(card)), uuid.uuid4().hex)
    rig.clock.advance(700)
    return intent, rig.ledger.record_donation(intent.seq, f"sim-{intent.seq}", points)


def _honest_then(portal, rig):  # noqa: ANN001, ANN202
    rig.donate(5)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    honest = rig.expected_totals()
    assert _totals(portal) == honest
    return up, honest


def _assert_contained(portal, rig, up, honest, seqs, word):  # noqa: ANN001
    """The forged entries are stored (mirror exact), quarantined, alarmed, and counted nowhere."""
    assert up.sync_once().ok  # accepted (200): the kiosk is not stuck re-sending its ledger
    assert portal_entry_count(portal.db_url, rig.kiosk_id) == (rig.ledger.size, rig.ledger.size)
    q, a = _held(portal, rig.kiosk_id)
    for s in seqs:
        assert s in q and word in q[s], (s, q)
        assert ("quarantine", s) in a, a
    assert _totals(portal) == honest
    eng = make_engine(portal.db_url)
    try:  # what the staff kiosks page shows
        k = next(k for k in queries.fleet(eng) if k["id"] == rig.kiosk_id)
    finally:
        eng.dispose()
    assert k["alarm"] and k["quarantined_entries"] == len(q)
    assert any(al["kind"] == "quarantine" for al in k["alarms"])


def test_an_absurd_amount_is_quarantined(portal, rig):
    up, honest = _honest_then(portal, rig)
    intent, don = _forge_donation(rig, "kodomo", ABSURD_YEN, ABSURD_YEN // 100)
    _assert_contained(portal, rig, up, honest, [intent.seq, don.seq], "amount")
    # The donor's receipt page shows nothing of it: the forged donation has no receipt.
    from server_sync.wire.receipt import receipt_code_of
    r = requests.get(portal.url + f"/api/v1/receipts/{receipt_code_of(don.body, don.signature)}", timeout=10)
    assert r.status_code == 404


def test_absurd_points_to_a_real_donors_token_are_quarantined(portal, rig):
    up, honest = _honest_then(portal, rig)
    victim = rig.ledger.iter_entries(1, None)
    donation = next(e for e in victim if e.type == "donation" and e.data["donor"] == rig.pepper.token(fake_idm(0)).hex)
    from server_sync.wire.receipt import receipt_code_of
    code = receipt_code_of(donation.body, donation.signature)
    before = requests.get(portal.url + f"/api/v1/receipts/{code}", timeout=10).json()
    grant = rig.ledger.grant_points(rig.pepper.token(fake_idm(0)), ABSURD_POINTS, "park-cleanup")
    # And points over the formula on an ordinary ¥100 gift.
    _, greedy = _forge_donation(rig, "kodomo", 100, 50)
    _assert_contained(portal, rig, up, honest, [grant.seq, greedy.seq], "points")
    after = requests.get(portal.url + f"/api/v1/receipts/{code}", timeout=10).json()
    assert after == before  # the victim's history and balance did not gain the grant


def test_an_unknown_project_is_quarantined_once_the_portal_has_a_catalog(portal, rig):
    from server_sync import catalog

    eng = make_engine(portal.db_url)
    try:
        catalog.import_catalog(eng, {"projects": PROJECTS})
    finally:
        eng.dispose()
    up, honest = _honest_then(portal, rig)
    intent, don = _forge_donation(rig, "no-such-project", 100, 1)
    _assert_contained(portal, rig, up, honest, [intent.seq, don.seq], "project")


def test_another_kiosks_id_in_the_body_is_quarantined(portal, tmp_path):
    victim_named = make_rig(tmp_path / "a", "demo-center-1")
    try:
        victim_named.donate(3)
        up = victim_named.uploader(portal.url)
        up.kiosk_id = "attacker-2"  # enrolled as attacker-2 with this key; its ledger claims demo-center-1
        up.enroll(portal.issue_code("attacker-2"))
        # Without a checkpoint note (a note's origin names the kiosk and is checked already).
        rows = [(e.seq, e.body, e.signature) for e in victim_named.ledger.iter_entries()]
        doc = P.batch_document("attacker-2", rows, None, 0, [])
        r = signed_post(portal.url, victim_named, "/api/v1/kiosks/attacker-2/batches",
                        json.dumps(doc, separators=(",", ":")).encode(), "forged-id", kiosk_id="attacker-2")
        assert r.status_code == 200, r.text
        q, a = _held(portal, "attacker-2")
        assert set(q) == set(range(1, victim_named.ledger.size + 1)) and all("kiosk" in r for r in q.values())
        assert ("quarantine", 1) in a
        assert _totals(portal)["count"] == 0
    finally:
        victim_named.ledger.close(checkpoint=False)


def test_a_wild_synced_timestamp_is_quarantined_and_retimes_nothing(portal, rig):
    rig.clock.is_synced = False  # the honest gifts of this boot wait for a clock to fix their time
    up, honest = _honest_then(portal, rig)
    times = _times(portal, rig.kiosk_id)
    real = rig.clock.wall
    rig.clock.wall, rig.clock.is_synced = 0, True  # one signed "clock_synced": true at 1970
    _, don = _forge_donation(rig, "kodomo", 100, 1)
    honest_donation = next(e for e in rig.ledger.iter_entries() if e.type == "donation")
    void = rig.ledger.void(honest_donation.seq, "forged")  # a void carried by a quarantined entry
    _assert_contained(portal, rig, up, honest, [don.seq, void.seq], "time")
    after = _times(portal, rig.kiosk_id)
    # The forged clock re-timed none of the boot's entries. (The round's honest heartbeat may refine the
    # portal's estimate by the real time between two heartbeats less the 700 ms the kiosk clock moved.)
    assert all(abs(after[s] - times[s]) < 60_000 for s in times), (times, after)
    assert all(t > real - 86_400_000 for t in times.values())


def _times(portal, kid: str) -> dict[int, int]:  # noqa: ANN001
    eng = make_engine(portal.db_url)
    try:
        with eng.connect() as conn:
            return dict(conn.execute(select(entries.c.seq, entries.c.time_ms).where(entries.c.kiosk_id == kid)).all())
    finally:
        eng.dispose()


def test_the_policy_passes_honest_entries_and_names_each_rule():
    ctx = policy.Context.build("k", 10**12 + 5 * 86_400_000, {"kodomo"}, None)
    ok = {"kiosk": "k", "type": "donation", "clock_synced": True, "wall_ms": 10**12,
          "data": {"project": "kodomo", "amount_yen": 1000, "points": 10, "donor": "ab"}}
    assert policy.violation(ok, ctx) is None
    assert policy.violation({**ok, "data": {**ok["data"], "donor": None, "points": 0}}, ctx) is None
    assert "amount" in policy.violation({**ok, "data": {**ok["data"], "amount_yen": 1_000_001}}, ctx)
    assert "points" in policy.violation({**ok, "data": {**ok["data"], "points": 11}}, ctx)
    assert "project" in policy.violation({**ok, "data": {**ok["data"], "project": "x"}}, ctx)
    assert "kiosk" in policy.violation({**ok, "kiosk": "other"}, ctx)
    assert "time" in policy.violation({**ok, "wall_ms": 10**12 + 7 * 86_400_000}, ctx)
    assert policy.violation({**ok, "clock_synced": False, "wall_ms": 0}, ctx) is None  # unsynced: re-timed, not judged
    # A pushed config that lists activities bounds grants by their max_points; without one, the ceiling.
    grant = {"kiosk": "k", "type": "points_grant", "clock_synced": False, "wall_ms": 0,
             "data": {"donor": "ab", "points": 100, "activity": "park"}}
    assert policy.violation(grant, ctx) is None
    cfg = policy.Context.build("k", 0, set(), {"projects": [{"id": "kodomo"}],
                                              "activities": [{"id": "park", "max_points": 50}]})
    assert "points" in policy.violation(grant, cfg)
    assert policy.violation({**grant, "data": {**grant["data"], "points": 50}}, cfg) is None


def _cli(*args: str) -> int:
    from server_sync.portal_cli import main as portal_main

    return portal_main(list(args))


def test_a_suspended_kiosks_uploads_are_held_until_resumed(portal, rig, capsys):
    up, honest = _honest_then(portal, rig)
    assert _cli("kiosk", "suspend", "--db", portal.db_url, rig.kiosk_id, "--reason", "stolen") == 0
    size0 = rig.ledger.size
    rig.donate(3)
    _, forged = _forge_donation(rig, "kodomo", ABSURD_YEN, 1)
    first = next(e for e in rig.ledger.iter_entries() if e.type == "donation")
    rig.ledger.void(first.seq, "refund")  # held too: it applies only at resume
    assert up.sync_once().ok  # stored (the mirror stays exact) ...
    assert portal_entry_count(portal.db_url, rig.kiosk_id) == (rig.ledger.size, rig.ledger.size)
    assert _totals(portal) == honest  # ... but not counted
    q, _ = _held(portal, rig.kiosk_id)
    assert set(q) == set(range(size0 + 1, rig.ledger.size + 1))
    assert "amount" in q[forged.seq]  # a policy breach is named as such, not merely "held"
    eng = make_engine(portal.db_url)
    try:
        k = next(k for k in queries.fleet(eng) if k["id"] == rig.kiosk_id)
    finally:
        eng.dispose()
    assert k["suspended_ms"] and k["suspended_reason"] == "stolen"
    # Staff see both on the kiosks page (Japanese by default).
    from server_sync.staff import add_user

    add_user(portal.app.state.engine, "admin", "correct horse battery")
    s = requests.Session()
    assert s.post(portal.url + "/staff/login", data={"username": "admin", "password": "correct horse battery"},
                  timeout=10).status_code == 200
    page = s.get(portal.url + "/staff/kiosks", timeout=10).text
    assert "停止中: 下の「詳細」に書かれた理由で" in page and "詳細（管理者向け）: stolen" in page
    assert f"保留中の記録 {len(q)} 件（集計に含めません）" in page
    capsys.readouterr()
    assert _cli("kiosk", "resume", "--db", portal.db_url, rig.kiosk_id) == 0
    out = capsys.readouterr().out  # the forged intent and donation stay quarantined
    q2, _ = _held(portal, rig.kiosk_id)
    assert set(q2) == {forged.seq - 1, forged.seq}
    assert f"{len(q) - 2} held" in out
    want = rig.expected_totals()  # the kiosk's own totals include the forgery; the portal's must not
    assert _totals(portal)["count"] == want["count"] - 1
    assert _totals(portal)["total_yen"] == want["total_yen"] - ABSURD_YEN
    assert _cli("kiosk", "suspend", "--db", portal.db_url, "no-such-kiosk") == 1
    assert _cli("kiosk", "resume", "--db", portal.db_url, "no-such-kiosk") == 1


def test_an_equivocation_suspends_the_kiosk(portal, rig):
    from kiosk.ledger import keys
    from kiosk.ledger.encoding import entry_hash

    up, honest = _honest_then(portal, rig)
    sk = keys.load_private(rig.cfg.private_key_path)
    held = next(e for e in rig.ledger.iter_entries() if e.type == "donation")
    other = held.body.replace(b'"provider_ref":"', b'"provider_ref":"x')
    doc = P.batch_document(rig.kiosk_id, [(held.seq, other, sk.sign(entry_hash(other)))], None, 0, [])
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches",
                    json.dumps(doc, separators=(",", ":")).encode(), "equivocate")
    assert r.status_code == 409 and r.json()["error"] == "equivocation", r.text
    rig.donate(2)
    assert up.sync_once().ok
    assert _totals(portal) == honest  # held while suspended
    eng = make_engine(portal.db_url)
    try:
        k = next(k for k in queries.fleet(eng) if k["id"] == rig.kiosk_id)
    finally:
        eng.dispose()
    assert k["suspended_ms"] and "equivocation" in k["suspended_reason"]
    assert _cli("kiosk", "resume", "--db", portal.db_url, rig.kiosk_id) == 0
    assert _totals(portal) == rig.expected_totals()


def test_an_administrator_suspends_and_resumes_a_kiosk_on_the_kiosks_page(portal, rig):
    from server_sync.staff import add_user

    up, honest = _honest_then(portal, rig)
    add_user(portal.app.state.engine, "admin", PASSWORD)
    add_user(portal.app.state.engine, "clerk", PASSWORD, "staff")
    url = portal.url + f"/staff/kiosks/{rig.kiosk_id}/suspension"
    clerk, ctoken = staff_session(portal.url, "clerk")
    assert clerk.post(url, data={"csrf": ctoken, "action": "suspend"}, timeout=10).status_code == 403
    admin, token = staff_session(portal.url, "admin")
    assert admin.post(url, data={"action": "suspend"}, timeout=10).status_code == 403  # no CSRF token
    page = admin.get(portal.url + "/staff/kiosks", timeout=10).text
    assert 'value="suspend"' in page and 'value="resume"' not in page
    assert admin.post(url, data={"csrf": token, "action": "suspend"}, timeout=10).status_code == 200
    page = admin.get(portal.url + "/staff/kiosks", timeout=10).text
    assert "停止中: admin さんがこのページでこの端末の集計を止めました" in page and 'value="resume"' in page
    assert "詳細（管理者向け）: suspended by admin" in page
    rig.donate(2)
    assert up.sync_once().ok and _totals(portal) == honest
    assert admin.post(url, data={"csrf": token, "action": "resume"}, timeout=10).status_code == 200
    assert _totals(portal) == rig.expected_totals()


def test_amounts_and_points_are_judged_at_the_config_version_the_kiosk_ran(portal, rig):
    """The pushed config states presets, the maximum and the points rate; the kiosk adopts them (its
    config_change entry marks the version), and the portal judges each gift by the version in force."""
    from kiosk.sync.adopt import overlay
    from server_sync import configstore

    up, honest = _honest_then(portal, rig)  # version 0: the kiosk's own file (¥100/500/1000, 1 point)
    _, five_hundred = _forge_donation(rig, "kodomo", 500, 5)  # fine before any pushed config
    eng = make_engine(portal.db_url)
    try:
        out = configstore.publish(eng, {"projects": PROJECTS, "presets_yen": [200, 300, 700], "default_yen": 300,
                                        "max_per_transaction_yen": 700, "points_per_100_yen": 2})
    finally:
        eng.dispose()
    assert out["config"]["max_per_transaction_yen"] == 700 and out["config"]["points_per_100_yen"] == 2
    assert up.sync_once().ok  # uploads the ¥500, pulls v1 and records its config_change
    change = [e for e in rig.ledger.iter_entries() if e.type == "config_change"][-1]
    assert change.data["version"] == out["version"]
    adopted = overlay(rig.cfg, out["config"]).donation
    assert (adopted.presets_yen, adopted.max_per_transaction_yen, adopted.points_per_100_yen) == ([200, 300, 700],
                                                                                                  700, 2)
    honest = _totals(portal)
    assert honest["count"] == rig.expected_totals()["count"]  # the ¥500 under version 0 counts
    rig.clock.advance(policy.GRACE_MS + 1000)  # past the moments when the old screen may still be up
    ok = [_forge_donation(rig, "kodomo", 700, 14)[1], _forge_donation(rig, "kodomo", 300, 6)[1]]
    i1, not_preset = _forge_donation(rig, "kodomo", 500, 10)  # under the maximum, but no longer a preset
    i2, over_max = _forge_donation(rig, "kodomo", 1000, 20)
    _, old_rate = _forge_donation(rig, "kodomo", 200, 2)  # version 0's points rate
    bad = [i1.seq, not_preset.seq, i2.seq, over_max.seq, old_rate.seq]
    want = {"count": honest["count"] + 2, "total_yen": honest["total_yen"] + 1000}
    assert up.sync_once().ok
    q, a = _held(portal, rig.kiosk_id)
    assert set(q) == set(bad), q
    assert "presets" in q[not_preset.seq] and f"v{out['version']}" in q[not_preset.seq]
    assert "maximum ¥700" in q[over_max.seq] and "formula gives 4" in q[old_rate.seq]
    assert all(("quarantine", s) in a for s in bad)
    t = _totals(portal)
    assert (t["count"], t["total_yen"]) == (want["count"], want["total_yen"])
    assert five_hundred.seq not in q and all(d.seq not in q for d in ok)


def test_points_spent_outside_a_pools_period_are_quarantined(portal, rig):
    """The kiosk spends from a pool only within its period (PoolTerms.open_on); a forged exchange dated before
    it opened or after it closed is quarantined and alarmed like any other policy breach."""
    catalog.import_catalog(portal.app.state.engine, {"projects": PROJECTS})
    up, honest = _honest_then(portal, rig)
    day = dt.datetime.fromtimestamp(rig.clock.wall / 1000, policy.TZ).date()  # the kiosk's (synced) day

    def d(n: int) -> str:
        return (day + dt.timedelta(days=n)).isoformat()

    for pid, start, end in (("open", d(0), d(0)), ("later", d(1), None), ("over", None, d(-1))):
        pools.save_pool(portal.app.state.engine, {
            "id": pid, "sponsor": "市", "sponsor_en": "The city", "funded_yen": 1000, "yen_per_point": 1,
            "per_kiosk_yen": 100, "areas": [], "start": start, "end": end})
    assert up.sync_once().ok  # the kiosk now runs the config naming all three
    token = rig.pepper.token(fake_idm(1))
    ok = rig.ledger.spend_points(token, 5, "kodomo", 5, "open")
    early = rig.ledger.spend_points(token, 5, "kodomo", 5, "later")
    late = rig.ledger.spend_points(token, 5, "kodomo", 5, "over")
    _assert_contained(portal, rig, up, honest, [early.seq, late.seq], "period")
    q, _ = _held(portal, rig.kiosk_id)
    assert ok.seq not in q
    assert f"runs {d(1)} to …" in q[early.seq] and f"runs … to {d(-1)}" in q[late.seq]


def test_a_pools_period_judges_synced_entries_by_their_day_and_unsynced_ones_by_arrival():
    jst = policy.TZ
    noon = int(dt.datetime(2026, 12, 3, 12, tzinfo=jst).timestamp() * 1000)
    cfg = {"pools": [{"id": "dec", "yen_per_point": 1, "areas": [], "start": "2026-12-01", "end": "2026-12-31"}]}
    spent = {"kiosk": "k", "type": "points_spent", "clock_synced": True, "wall_ms": noon,
             "data": {"pool": "dec", "points": 5, "amount_yen": 5, "project": "p", "donor": "ab"}}
    at = policy.Context.build("k", noon + 3_600_000, set(), cfg)
    assert policy.violation(spent, at) is None
    first = int(dt.datetime(2026, 12, 1, 0, 0, 1, tzinfo=jst).timestamp() * 1000)  # the first second, in Tokyo
    assert policy.violation({**spent, "wall_ms": first}, at) is None
    assert "period" in policy.violation({**spent, "wall_ms": first - 2_000}, at)  # 23:59:59 the day before
    last = int(dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=jst).timestamp() * 1000)
    assert policy.violation({**spent, "wall_ms": last}, policy.Context.build("k", last, set(), cfg)) is None
    assert "period" in policy.violation({**spent, "wall_ms": last + 2_000},
                                        policy.Context.build("k", last + 2_000, set(), cfg))
    # Unsynced: made before it arrived. Arriving before the pool opened is outside it; arriving after it
    # closed may be a spend made offline in time.
    unsynced = {**spent, "clock_synced": False, "wall_ms": 0}
    assert "period" in policy.violation(unsynced, policy.Context.build("k", first - 2_000, set(), cfg))
    assert policy.violation(unsynced, policy.Context.build("k", last + 30 * 86_400_000, set(), cfg)) is None


def test_a_gift_chosen_on_the_old_screen_just_after_a_config_change_passes():
    old = policy.Context.build("k", 10**12, set(), {"projects": [{"id": "p"}], "presets_yen": [100, 500],
                                                   "max_per_transaction_yen": 500, "points_per_100_yen": 1}, 1)
    new = policy.Context.build("k", 10**12, set(), {"projects": [{"id": "p"}], "presets_yen": [200],
                                                   "max_per_transaction_yen": 200, "points_per_100_yen": 1}, 2)
    new.after_change(old, boot=3, mono_ms=50_000)
    gift = {"kiosk": "k", "type": "donation", "clock_synced": False, "wall_ms": 0, "boot": 3, "mono_ms": 60_000,
            "data": {"project": "p", "amount_yen": 500, "points": 5, "donor": "ab"}}
    assert policy.violation(gift, new) is None  # fits version 1, moments after the change
    late = {**gift, "mono_ms": 50_000 + policy.GRACE_MS + 1}
    assert "v2" in policy.violation(late, new)
    assert "v2" in policy.violation({**gift, "boot": 4}, new)  # another boot: no grace
    # Fits neither version: the reason named is the current version's.
    assert "maximum ¥200" in policy.violation({**gift, "data": {**gift["data"], "points": 50}}, new)


def test_the_1969_attack_by_heartbeat_retimes_nothing(portal, rig):
    """A signed heartbeat claiming a synced clock at Unix 0 contradicts the portal's own clock: it is taken
    as an unsynced heartbeat (the portal's estimate), never as the boot's epoch (server_sync/clockfix.py)."""
    from server_sync.clockfix import CLAIM_TOLERANCE_MS, BootClock

    rig.clock.is_synced = False
    up, honest = _honest_then(portal, rig)
    times = _times(portal, rig.kiosk_id)
    boot = rig.ledger.boot_count
    for wall in (0, rig.clock.wall - 30 * 86_400_000):  # 1970, and a plausible month ago
        body = json.dumps({"boot": boot, "mono_ms": rig.clock.mono + 1000, "wall_ms": wall, "clock_synced": True,
                           "ledger_size": rig.ledger.size}).encode()
        r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat", body)
        assert r.status_code == 200, r.text
        after = _times(portal, rig.kiosk_id)
        assert after == times or all(abs(after[s] - times[s]) < CLAIM_TOLERANCE_MS for s in times), (wall, after)
        assert min(after.values()) > rig.clock.wall - 86_400_000
    assert _totals(portal) == honest
    # An entry written, by its own claim, after the portal received it sets no epoch either.
    c = BootClock()
    c.observe_entry(5_000, 10**12 + 3_600_000, True, received_ms=10**12)
    assert c.epoch_ms is None and not c.changed
    c.observe_entry(5_000, 10**12 - 1000, True, received_ms=10**12)
    assert c.epoch_ms == 10**12 - 6_000 and c.source == "ntp"
