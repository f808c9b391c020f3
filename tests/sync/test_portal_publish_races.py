"""Publishing the configuration kiosks run, by several people or processes at once (SQLite and PostgreSQL).

Every staff page that changes a part of the config (the playlist, the volunteer activities, the point rules, the
sponsor pools; kiosks asking for a card's points refill pools and publish too) makes a new version from the one
before it. These tests make two publishes overlap at the exact moment that matters (races.py: the first request
is held right after a chosen SQL statement, on the real portal over HTTP on loopback) and check that the version
kiosks then run carries both changes, or that the one refused was told and published nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from races import overlap, staff_portal
from sync_helpers import needs_chromium, staff_page, staff_session

from server_sync import catalog, configstore, pointrules, totals
from server_sync.db import create_schema, make_engine, media_info, writing
from tests.portal_db import PG_ENV, fresh_db, pg_url

CATALOG = {
    "groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
    "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children", "goal_yen": 5000},
                 {"id": "midori", "group_id": "group-a", "title": "雑木林を守ろう", "area": "green", "goal_yen": 8000}],
}
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CHANGED_JA = "ほかの人がこのプレイリストを変更しました"
# The statement configstore.republish reads the version it builds on with.
READS_BASE = r"FROM portal_configs.*ORDER BY portal_configs\.version DESC"


@pytest.fixture
def op(db_url: str, tmp_path: Path):
    with staff_portal(db_url, tmp_path, CATALOG) as handle:
        yield handle
    eng = make_engine(db_url)
    try:
        assert totals.check(eng) == []
    finally:
        eng.dispose()


def seed_media(engine: Any, name: str) -> str:
    sha = configstore.add_media(engine, name.encode() * 100, "video/mp4")
    with writing(engine) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name=name, group_id="group-a", project_id="kodomo",
                                                created_ms=int(time.time() * 1000)))
    return sha


def playlist_form(token: str, sha: str, repeat: int = 1, slide: str = "") -> dict[str, Any]:
    form: dict[str, Any] = {"csrf": token, "target": "all", "i0_clip": sha, "i0_project": "kodomo",
                            "i0_repeat": str(repeat), "i0_days": ALL_DAYS, "i0_start": "", "i0_end": ""}
    if slide:
        form.update({"s0_title": slide, "s0_date": "2026-08-01", "s0_time": "10:00", "s0_place": "広場",
                     "s0_note": "", "s0_days": ALL_DAYS, "s0_start": "", "s0_end": ""})
    return form


def activities_form(token: str, aid: str, title: str) -> dict[str, Any]:
    return {"csrf": token, "a0_id": aid, "a0_title": title, "a0_title_en": "", "a0_points": "10",
            "a0_max_points": "50"}


def running(engine: Any) -> dict[str, Any]:
    """The version all kiosks run: ``{version, config, ...}``."""
    with engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    assert cur is not None
    return cur


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


# --- two pages publishing different parts of the config at the same moment -----------------------------------------
def test_activities_saved_while_a_playlist_is_published_are_not_dropped_from_what_kiosks_run(op):
    """Staff 1 publishes the playlist, staff 2 the volunteer activities, at the same moment. Both pages say
    "公開しました". The version kiosks then run must carry both: each page changes only its own part."""
    engine = op.app.state.engine
    sha = seed_media(engine, "lobby.mp4")
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    assert s1.post(op.url + "/staff/playlists", data=playlist_form(t1, sha), timeout=10).url.endswith("published")

    # Staff 1's publish reads the version it builds on; staff 2 publishes meanwhile.
    r1, r2 = overlap(engine, READS_BASE,
                     lambda: s1.post(op.url + "/staff/playlists", data=playlist_form(t1, sha, repeat=3), timeout=60),
                     lambda: s2.post(op.url + "/staff/volunteer", data=activities_form(t2, "park-cleanup", "公園清掃"),
                                     timeout=60))
    assert r1.url.endswith("done=published") and r2.url.endswith("done=published"), (r1.text[:300], r2.text[:300])

    cur = running(engine)
    assert cur["config"]["playlist"][0]["repeat"] == 3, "staff 1's playlist"
    assert [a["id"] for a in cur["config"].get("activities") or []] == ["park-cleanup"], (
        f"staff 2's activities, published and confirmed, are gone from the version kiosks run (v{cur['version']})")


def test_two_pool_saves_at_once_both_reach_the_kiosks(op):
    """Two administrators each add a sponsor pool at the same moment; both are told "saved". The config kiosks
    run must carry both pools (a pool missing there is money kiosks cannot hand out)."""
    engine = op.app.state.engine
    a1, k1 = staff_session(op.url, "admin")
    a2, k2 = staff_session(op.url, "admin2")

    def pool(token: str, pid: str, sponsor: str) -> dict[str, Any]:
        return {"csrf": token, "id": pid, "sponsor": sponsor, "sponsor_en": "", "funded_yen": "100000",
                "yen_per_point": "1", "per_kiosk_yen": "5000", "areas": ["children"], "start": "", "end": ""}

    # Admin 1's pool is stored; its publish then reads the config it builds on, while admin 2 saves another.
    r1, r2 = overlap(engine, READS_BASE,
                     lambda: a1.post(op.url + "/staff/pools", data=pool(k1, "bank-a", "A銀行"), timeout=60),
                     lambda: a2.post(op.url + "/staff/pools", data=pool(k2, "shop-b", "B商店"), timeout=60))
    assert r1.url.endswith("done=pool_saved") and r2.url.endswith("done=pool_saved"), (r1.text[:300], r2.text[:300])
    ids = sorted(p["id"] for p in running(engine)["config"].get("pools") or [])
    assert ids == ["bank-a", "shop-b"], f"kiosks run pools {ids}; both administrators were told their pool was saved"


# --- two administrators saving the point rules at once ---------------------------------------------------------------
def rules_form(token: str, aid: str, title: str, points: int) -> dict[str, Any]:
    return {"csrf": token, "points_per_100_yen": "1", "r0_id": aid, "r0_title": title, "r0_title_en": "",
            "r0_points": str(points), "r0_description": f"{title}をします", "r0_description_en": ""}


def test_point_rules_refused_as_a_clash_are_not_what_the_kiosks_run(op):
    """Two administrators save the point rules at once; the one whose save found the same next version as the
    other's is told "another administrator saved the point rules at the same moment". The rules the kiosks then
    run (and grant points by) must be the rules the portal shows as in force, not the refused ones."""
    engine = op.app.state.engine
    a1, k1 = staff_session(op.url, "admin")
    a2, k2 = staff_session(op.url, "admin2")
    with engine.connect() as conn:
        before = configstore.newest_version(conn)
    r1, r2 = overlap(engine, r"max\(portal_point_rules\.version\)",
                     lambda: a1.post(op.url + "/staff/point-rules", data=rules_form(k1, "park", "公園清掃", 10),
                                     timeout=60),
                     lambda: a2.post(op.url + "/staff/point-rules", data=rules_form(k2, "river", "川の清掃", 30),
                                     timeout=60))
    assert r2.url.endswith("done=saved"), r2.text[:500]
    # In the staff member's words (tests/sync/test_staff_words.py), not the publisher's English.
    assert r1.status_code == 422 and "ほかの管理者が同時にポイント規程を保存しました" in r1.text, r1.text[:500]

    with engine.connect() as conn:
        shown = pointrules.current(conn)
        versions = [v["version"] for v in pointrules.history(conn)]
    assert shown is not None and versions == [1]
    cur = running(engine)
    sent = cur["config"]["points_rules"]
    public = requests.get(op.url + "/points/rules", timeout=10).text
    assert "川の清掃" in public and "公園清掃" not in public
    assert (sent["version"], [a["id"] for a in sent["activities"]]) == (1, ["river"]), (
        f"kiosks run point rules v{sent['version']} = {[a['id'] for a in sent['activities']]}, while the portal "
        f"shows v{shown['version']} = {[a['id'] for a in shown['activities']]} as in force")
    assert cur["version"] == before + 1, "the refused save published a config version of its own"


# --- a form saved over someone else's newer change -----------------------------------------------------------------
def test_a_playlist_form_opened_before_a_colleagues_publish_does_not_silently_undo_it(op):
    """Two staff open the playlist of all kiosks. Staff 2 adds the festival slide and publishes. Staff 1, on the
    page opened before, changes the plays in a row and publishes: staff 1 is told (409, in Japanese) that the
    playlist changed since the page was opened and shown the current one; nothing of staff 1's is published."""
    engine = op.app.state.engine
    sha = seed_media(engine, "lobby.mp4")
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    assert s1.post(op.url + "/staff/playlists", data=playlist_form(t1, sha), timeout=10).url.endswith("published")
    page1 = s1.get(op.url + "/staff/playlists?target=all", timeout=10).text  # staff 1 opens the page...
    hidden = hidden_fields(page1)
    assert hidden.get("base") == str(running(engine)["version"])
    r = s2.post(op.url + "/staff/playlists", data=playlist_form(t2, sha, slide="夏まつり"), timeout=10)
    assert r.url.endswith("published")
    published = running(engine)
    assert [s["title"] for s in published["config"]["slides"]] == ["夏まつり"]

    # ...and sends it back with what the page held (its hidden fields too), the plays in a row changed.
    form = {**{k: v for k, v in hidden.items() if k not in ("csrf", "target")}, **playlist_form(t1, sha, repeat=2)}
    r = s1.post(op.url + "/staff/playlists", data=form, timeout=10)
    assert r.status_code == 409, f"staff 1's save answered {r.status_code} {r.url}"
    assert CHANGED_JA in r.text and 'value="夏まつり"' in r.text, "the page says so and shows the current playlist"
    assert hidden_fields(r.text).get("base") == str(published["version"]), "saved again, it is published"
    after = running(engine)
    assert after["version"] == published["version"], "nothing of staff 1's stale page was published"

    # Staff 1 makes the change again on the page shown: published, the slide kept.
    again = {**hidden_fields(r.text), **playlist_form(t1, sha, repeat=2, slide="夏まつり")}
    assert s1.post(op.url + "/staff/playlists", data=again, timeout=10).url.endswith("done=published")
    cfg = running(engine)["config"]
    assert (cfg["playlist"][0]["repeat"], [s["title"] for s in cfg["slides"]]) == (2, ["夏まつり"])

    en, tk = staff_session(op.url, "staff1", lang="en")
    stale = {**hidden, **playlist_form(tk, sha, repeat=4)}
    r = en.post(op.url + "/staff/playlists", data=stale, timeout=10)
    assert r.status_code == 409 and "Someone else changed this playlist" in r.text


def test_a_playlist_page_opened_before_other_parts_were_published_still_publishes(op):
    """Kiosks asking for points, the volunteer page, the point rules and pools publish new versions all day; a
    playlist page opened before one of those is no clash (its playlist and slides did not change): it publishes,
    and the other part stays as published."""
    engine = op.app.state.engine
    sha = seed_media(engine, "lobby.mp4")
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    assert s1.post(op.url + "/staff/playlists", data=playlist_form(t1, sha), timeout=10).url.endswith("published")
    hidden = hidden_fields(s1.get(op.url + "/staff/playlists?target=all", timeout=10).text)
    shown = running(engine)["version"]
    assert s2.post(op.url + "/staff/volunteer", data=activities_form(t2, "park-cleanup", "公園清掃"),
                   timeout=10).url.endswith("done=published")
    assert running(engine)["version"] > shown

    form = {**hidden, **playlist_form(t1, sha, repeat=2)}
    r = s1.post(op.url + "/staff/playlists", data=form, timeout=10)
    assert r.url.endswith("done=published"), f"{r.status_code}: {r.text[:300]}"
    cfg = running(engine)["config"]
    assert cfg["playlist"][0]["repeat"] == 2 and [a["id"] for a in cfg["activities"]] == ["park-cleanup"]


@needs_chromium
def test_the_stale_playlist_page_in_a_browser_says_what_happened(op, browser):
    """In Chromium: staff 1 has the playlist page open; staff 2 publishes a slide; staff 1 changes the plays in a
    row and taps publish. The page says, in Japanese, that someone else changed the playlist and shows it."""
    engine = op.app.state.engine
    sha = seed_media(engine, "lobby.mp4")
    s2, t2 = staff_session(op.url, "staff2")
    assert s2.post(op.url + "/staff/playlists", data=playlist_form(t2, sha), timeout=10).url.endswith("published")
    page = staff_page(browser, op.url, "staff1")
    page.goto(op.url + "/staff/playlists?target=all")
    assert s2.post(op.url + "/staff/playlists", data=playlist_form(t2, sha, slide="夏まつり"),
                   timeout=10).url.endswith("published")
    version = running(engine)["version"]
    page.fill("input[name=i0_repeat]", "5")
    with page.expect_navigation() as nav:
        page.click("#publish")
    response = nav.value
    assert response is not None and response.status == 409
    assert CHANGED_JA in page.locator("#form-changed").inner_text()
    assert page.input_value("#f-s0_title") == "夏まつり" and page.input_value("input[name=i0_repeat]") == "1"
    assert running(engine)["version"] == version


# --- the same, across two real worker processes on PostgreSQL ------------------------------------------------------
WORKER = r"""
import sys, time
from server_sync import configstore
from server_sync.db import make_engine
eng = make_engine(sys.argv[1]); key = sys.argv[2]; n = int(sys.argv[3])
start = float(sys.argv[4])
while time.time() < start: time.sleep(0.001)
for i in range(n):
    configstore.republish_everywhere(eng, by=key, **{key: [{"id": f"{key}-{i}", "title": key, "points": 1,
                                                          "max_points": 1}]} if key == "activities" else
                                     {"slides": [{"title": f"{key}-{i}", "date": "2026-08-01", "windows": []}]})
print("done")
"""


@pytest.fixture
def pg_processes_url(tmp_path: Path) -> str:
    url = pg_url()
    if url is None:
        pytest.skip(f"PostgreSQL only (several worker processes): set {PG_ENV}")
    url = fresh_db(url, tmp_path)
    eng = make_engine(url)
    try:
        create_schema(eng)
        catalog.import_catalog(eng, CATALOG)
        configstore.publish(eng, {})
    finally:
        eng.dispose()
    return url


def test_two_worker_processes_publishing_different_parts_keep_both(pg_processes_url):
    """Two processes on one PostgreSQL (as two portal workers would) publish in a loop different parts of the
    config (one the volunteer activities, the other the event slides). After both stop, the version kiosks run
    must hold the last activities and the last slides each of them published."""
    url = pg_processes_url
    n = 40
    start = time.time() + 2
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, key, str(n), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).resolve().parents[2]))
             for key in ("activities", "slides")]
    for p in procs:
        so, se = p.communicate(timeout=120)
        assert p.returncode == 0 and "done" in so, se[-2000:]
    eng = make_engine(url)
    try:
        cfg = running(eng)["config"]
    finally:
        eng.dispose()
    got = ([a["id"] for a in cfg.get("activities") or []], [s["title"] for s in cfg.get("slides") or []])
    assert got == ([f"activities-{n - 1}"], [f"slides-{n - 1}"]), (
        f"after both workers finished, kiosks run activities={got[0]} slides={got[1]}: one worker's last publish "
        "undid the other's")


# --- point rules and volunteer activities pages opened before a colleague's save -----------------------------------
RULES_CHANGED_JA = "このページを開いた後に、ほかの人がポイントのルールを保存しました"
ACTIVITIES_CHANGED_JA = "このページを開いた後に、ほかの人がボランティア活動を変更しました"


def test_a_point_rules_page_opened_before_a_colleagues_save_does_not_silently_replace_it(op):
    """Two administrators open the point rules. Admin 2 adds river cleaning and saves. Admin 1, on the page opened
    before, changes the points per ¥100 and saves: admin 1 is told (409, in Japanese) that the rules changed and
    shown the rules in force; admin 2's rules stay in force and are what the kiosks run."""
    engine = op.app.state.engine
    a1, k1 = staff_session(op.url, "admin")
    a2, k2 = staff_session(op.url, "admin2")
    assert a1.post(op.url + "/staff/point-rules", data=rules_form(k1, "park", "公園清掃", 10),
                   timeout=10).url.endswith("done=saved")
    hidden = hidden_fields(a1.get(op.url + "/staff/point-rules", timeout=10).text)  # admin 1 opens the page...
    colleague = {**rules_form(k2, "park", "公園清掃", 10), "r1_id": "river", "r1_title": "川の清掃", "r1_title_en": "",
                 "r1_points": "30", "r1_description": "川をきれいにします", "r1_description_en": "",
                 **{k: v for k, v in hidden_fields(a2.get(op.url + "/staff/point-rules", timeout=10).text).items()
                    if k != "csrf"}}
    assert a2.post(op.url + "/staff/point-rules", data=colleague, timeout=10).url.endswith("done=saved")
    published = running(engine)

    # ...and saves what it held (its hidden fields too), the points per ¥100 changed.
    form = {**{k: v for k, v in hidden.items() if k != "csrf"}, **rules_form(k1, "park", "公園清掃", 10),
            "points_per_100_yen": "2"}
    r = a1.post(op.url + "/staff/point-rules", data=form, timeout=10)
    assert r.status_code == 409, f"admin 1's save answered {r.status_code} {r.url}: admin 2's rules replaced"
    assert hidden.get("base") == "1", "the page carries the version it showed"
    assert RULES_CHANGED_JA in r.text and 'value="川の清掃"' in r.text, "the page says so and shows the rules now"
    assert hidden_fields(r.text).get("base") == "2"
    with engine.connect() as conn:
        now = pointrules.current(conn)
    assert now is not None and (now["version"], now["points_per_100_yen"]) == (2, 1)
    assert [a["id"] for a in now["activities"]] == ["park", "river"], "admin 2's rules are still in force"
    assert running(engine)["version"] == published["version"], "nothing of admin 1's stale page was published"

    # Saved again from the page shown: it is a deliberate choice, and it is saved.
    again = {**colleague, **hidden_fields(r.text), "csrf": k1, "points_per_100_yen": "2"}
    assert a1.post(op.url + "/staff/point-rules", data=again, timeout=10).url.endswith("done=saved")
    sent = running(engine)["config"]["points_rules"]
    assert (sent["version"], sent["points_per_100_yen"], len(sent["activities"])) == (3, 2, 2)

    en, ke = staff_session(op.url, "admin", lang="en")
    r = en.post(op.url + "/staff/point-rules", data={**form, "csrf": ke}, timeout=10)
    assert r.status_code == 409 and "Someone else saved the point rules" in r.text
    # A form without the field (a script, a page of an older portal) saves as before.
    r = a1.post(op.url + "/staff/point-rules", data=rules_form(k1, "park", "公園清掃", 20), timeout=10)
    assert r.url.endswith("done=saved")


def test_a_volunteer_page_opened_before_a_colleagues_publish_does_not_silently_replace_it(op):
    """Two staff open the volunteer activities. Staff 2 adds park cleaning and publishes. Staff 1, on the page
    opened before, adds a festival helper and publishes: staff 1 is told (409) and shown the newest activities;
    the kiosks keep staff 2's. A version made meanwhile by another page (a playlist) is no clash."""
    engine = op.app.state.engine
    sha = seed_media(engine, "lobby.mp4")
    s1, t1 = staff_session(op.url, "staff1")
    s2, t2 = staff_session(op.url, "staff2")
    assert s1.post(op.url + "/staff/playlists", data=playlist_form(t1, sha), timeout=10).url.endswith("published")
    shown = running(engine)["version"]
    hidden = hidden_fields(s1.get(op.url + "/staff/volunteer", timeout=10).text)  # staff 1 opens the page...
    assert s2.post(op.url + "/staff/volunteer", data=activities_form(t2, "park-cleanup", "公園清掃"),
                   timeout=10).url.endswith("done=published")
    published = running(engine)

    form = {**{k: v for k, v in hidden.items() if k != "csrf"}, **activities_form(t1, "festival", "祭りの手伝い")}
    r = s1.post(op.url + "/staff/volunteer", data=form, timeout=10)
    assert r.status_code == 409, f"staff 1's publish answered {r.status_code} {r.url}: staff 2's activities replaced"
    assert hidden.get("base") == str(shown), "the page carries the version it showed"
    assert ACTIVITIES_CHANGED_JA in r.text and 'value="公園清掃"' in r.text
    assert hidden_fields(r.text).get("base") == str(published["version"])
    assert running(engine)["version"] == published["version"], "nothing of staff 1's stale page was published"
    assert [a["id"] for a in running(engine)["config"]["activities"]] == ["park-cleanup"]

    # A playlist published meanwhile changes no activity: the page shown publishes over it.
    fresh = hidden_fields(r.text)
    assert s2.post(op.url + "/staff/playlists", data=playlist_form(t2, sha, repeat=2),
                   timeout=10).url.endswith("published")
    r = s1.post(op.url + "/staff/volunteer", data={**fresh, **activities_form(t1, "festival", "祭りの手伝い")},
                timeout=10)
    assert r.url.endswith("done=published"), f"{r.status_code}: {r.text[:300]}"
    cfg = running(engine)["config"]
    assert [a["id"] for a in cfg["activities"]] == ["festival"] and cfg["playlist"][0]["repeat"] == 2

    en, tk = staff_session(op.url, "staff1", lang="en")
    r = en.post(op.url + "/staff/volunteer", data={**form, "csrf": tk}, timeout=10)
    assert r.status_code == 409 and "Someone else changed the volunteer activities" in r.text
