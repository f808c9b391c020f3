"""What a staff member reads when the portal refuses a save, in the staff member's language, in plain words.

The publisher of the kiosks' configuration (server_sync/configstore.py, server_sync/pointrules.py, the document's
own checks in server_sync/wire/configdoc.py) refuses in English for the log and the command line, with a stable
code and its variables; the staff pages say the code's words (server_sync/pages.py ``REFUSALS``). Each test here
makes one refusal happen on a real portal over HTTP on loopback (SQLite, and PostgreSQL when
$KIOSK_TEST_PG_URL is set), signed in as a staff member who reads Japanese (the default), and reads the page's
messages: Japanese, no English, no field paths. The English switch gets plain English, never the publisher's.
docs/portal.md, "Refusals in the staff member's words".
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
import requests
from staff_words_check import assert_plain_japanese, messages
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_page, staff_session

from server_sync import catalog, configstore, pages, pointrules, pools
from server_sync.db import media_info, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from server_sync.wire import configdoc

# Words a Japanese message may carry as they are: names of file formats, not English.

RULES_FORM = {"points_per_100_yen": "1", "r0_id": "seisou", "r0_title": "公園の清掃", "r0_points": "10",
              "r0_description": "公園を1時間清掃します"}


@pytest.fixture
def center(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, spool_dir=str(tmp_path / "spool"), secret_file=tmp_path / "secret")
    eng = handle.app.state.engine
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    yield handle
    handle.stop()


@pytest.fixture
def running(center):  # noqa: ANN001
    """The center with three running projects."""
    catalog.import_catalog(center.app.state.engine, {"projects": PROJECTS})
    return center


def post_as(portal, path: str, form: dict, *, lang: str = "ja", user: str = "admin") -> requests.Response:  # noqa: ANN001
    s, token = staff_session(portal.url, user, lang=lang)
    return s.post(portal.url + path, data={**form, "csrf": token}, timeout=30, allow_redirects=False)


def seed_clip(engine, project: str) -> str:  # noqa: ANN001
    sha = configstore.add_media(engine, b"not really a movie" * 50, "video/mp4")
    with writing(engine) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name="紹介動画", group_id=None, project_id=project,
                                                created_ms=int(time.time() * 1000)))
    return sha


# --- before the first project ------------------------------------------------------------------------------
@pytest.mark.parametrize("path, form", [
    ("/staff/point-rules", RULES_FORM),
    ("/staff/pools", {"id": "shoutenkai", "sponsor": "駅前商店会", "funded_yen": "10000", "yen_per_point": "1",
                      "per_kiosk_yen": "5000"}),
    ("/staff/volunteer", {"a0_id": "seisou", "a0_title": "公園の清掃", "a0_points": "10", "a0_max_points": "100"}),
])
def test_saving_before_any_project_runs_says_so_in_the_staff_members_words(center, path, form):
    r = post_as(center, path, form)
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any("プロジェクト" in t for t in messages(r.text)), messages(r.text)
    en = post_as(center, path, form, lang="en")
    assert en.status_code == 422 and "Projects page" in en.text and "catalog has no running project" not in en.text


def test_the_publishers_english_stays_for_the_log_and_the_command_line_and_its_code_travels_with_it(center):
    with pytest.raises(configdoc.ConfigDocError) as refused:
        configstore.publish(center.app.state.engine, {})
    exc = refused.value
    assert exc.code == "no_running_project" and "no running project" in str(exc)  # the CLI prints str(exc)
    ja, en = pages.refusal(exc, "ja"), pages.refusal(exc, "en")
    assert "プロジェクト" in ja and str(exc) not in ja and "Projects page" in en and str(exc) not in en
    # The words follow the code, not the English: a reworded message still reaches staff in their words.
    reworded = configdoc.ConfigDocError("no project is running at the moment", "no_running_project")
    assert pages.refusal(reworded, "ja") == ja


# --- volunteer activities while point rules are in force -------------------------------------------------------
def test_changing_volunteer_activities_the_point_rules_fix_points_to_the_point_rules_page(running):
    assert post_as(running, "/staff/point-rules", RULES_FORM).status_code == 303
    form = {"a0_id": "seisou", "a0_title": "公園の清掃", "a0_points": "20", "a0_max_points": "100"}
    r = post_as(running, "/staff/volunteer", form)
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any("ポイント規程" in t for t in messages(r.text)), messages(r.text)
    en = post_as(running, "/staff/volunteer", form, lang="en")
    assert en.status_code == 422 and "Point rules page" in en.text and "differ from the point rules" not in en.text
    with running.app.state.engine.connect() as conn:  # nothing was published over the rules
        assert (configstore.current(conn) or {})["config"]["activities"][0]["points"] == 10


# --- two administrators saving the point rules at the same moment --------------------------------------------
def test_point_rules_saved_by_two_administrators_at_once_tell_the_later_one_in_plain_words(running):
    """A form without the version it was opened at (a page of an older portal): both saves take the same next
    version, and the second to store it is refused (server_sync/pointrules.py). It is told in Japanese."""
    from races import overlap

    add_user(running.app.state.engine, "admin2", PASSWORD)
    a1, k1 = staff_session(running.url, "admin")
    a2, k2 = staff_session(running.url, "admin2")
    r1, r2 = overlap(running.app.state.engine, r"max\(portal_point_rules\.version\)",
                     lambda: a1.post(running.url + "/staff/point-rules", data={**RULES_FORM, "csrf": k1}, timeout=60),
                     lambda: a2.post(running.url + "/staff/point-rules",
                                     data={**RULES_FORM, "r0_points": "30", "csrf": k2}, timeout=60))
    assert r2.url.endswith("done=saved"), r2.text[:500]
    assert r1.status_code == 422
    assert_plain_japanese(messages(r1.text))
    assert any("ほかの管理者" in t for t in messages(r1.text)), messages(r1.text)


# --- more than a kiosk takes -------------------------------------------------------------------------------
def test_a_playlist_longer_than_a_kiosk_takes_is_refused_in_plain_words(running):
    sha = seed_clip(running.app.state.engine, "kodomo")
    limit = configdoc.schema_bound(configdoc.PushedConfig, "playlist", "max_length")
    form = {"target": "all"}
    for i in range(limit + 1):
        form.update({f"i{i}_clip": sha, f"i{i}_project": "kodomo", f"i{i}_repeat": "1"})
    r = post_as(running, "/staff/playlists", form, user="staff1")
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any(str(limit) in t for t in messages(r.text)), messages(r.text)
    en = post_as(running, "/staff/playlists", form, lang="en", user="staff1")
    assert en.status_code == 422 and "List should have" not in en.text and "videos" in " ".join(messages(en.text))


def test_more_event_slides_than_a_kiosk_takes_are_refused_in_plain_words(running):
    sha = seed_clip(running.app.state.engine, "kodomo")
    limit = configdoc.schema_bound(configdoc.PushedConfig, "slides", "max_length")
    form = {"target": "all", "i0_clip": sha, "i0_project": "kodomo", "i0_repeat": "1"}
    for i in range(limit + 1):
        form.update({f"s{i}_title": f"催し{i}", f"s{i}_date": "2030-04-01"})
    r = post_as(running, "/staff/playlists", form, user="staff1")
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any("催しのお知らせ" in t and str(limit) in t for t in messages(r.text)), messages(r.text)


def test_more_volunteer_activities_than_a_kiosk_takes_are_refused_in_plain_words(running):
    limit = configdoc.schema_bound(configdoc.PushedConfig, "activities", "max_length")
    form = {}
    for i in range(limit + 1):
        form.update({f"a{i}_id": f"act-{i}", f"a{i}_title": f"活動{i}", f"a{i}_points": "1", f"a{i}_max_points": "1"})
    r = post_as(running, "/staff/volunteer", form, user="staff1")
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any("ボランティア" in t and str(limit) in t for t in messages(r.text)), messages(r.text)


def test_more_point_rule_activities_than_a_kiosk_takes_are_refused_in_plain_words(running):
    limit = configdoc.schema_bound(configdoc.PointRules, "activities", "max_length")
    form = {"points_per_100_yen": "1"}
    for i in range(limit + 1):
        form.update({f"r{i}_id": f"act-{i}", f"r{i}_title": f"活動{i}", f"r{i}_points": "1",
                     f"r{i}_description": "1時間の手伝い"})
    r = post_as(running, "/staff/point-rules", form)
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any(str(limit) in t for t in messages(r.text)), messages(r.text)
    with running.app.state.engine.connect() as conn:
        assert pointrules.current(conn) is None


# --- a sponsor pool funded below what the kiosks hold -------------------------------------------------------
def test_funding_a_pool_below_what_kiosks_already_hold_says_how_much_in_plain_words(running, rig):
    enrolled(rig, running)  # a kiosk to hand a share of the pool to
    form = {"id": "shoutenkai", "sponsor": "駅前商店会", "funded_yen": "10000", "yen_per_point": "1",
            "per_kiosk_yen": "3000"}
    assert post_as(running, "/staff/pools", form).status_code == 303
    with running.app.state.engine.connect() as conn:
        assert pools.list_pools(conn)[0]["allocations"] == {rig.kiosk_id: 3000}
    r = post_as(running, "/staff/pools", {**form, "funded_yen": "1000"})
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert any("3,000" in t for t in messages(r.text)), messages(r.text)
    assert 'data-for="funded_yen"' in r.text  # beside the field to change
    with running.app.state.engine.connect() as conn:
        assert pools.list_pools(conn)[0]["funded_yen"] == 10000


# --- the provider's settlement file ------------------------------------------------------------------------
def test_a_provider_file_with_a_quote_left_open_is_refused_in_plain_words(running):
    # A stray " near the top makes the rest of a large export one cell, longer than the CSV reader takes.
    raw = ("Date,Time,Payment ID,Gross Sales\n2026-12-01,10:00:00,\"abc,¥100\n" + "x" * 140_000 + "\n").encode()
    s, token = staff_session(running.url, "staff1")
    r = s.post(running.url + "/staff/reconciliation/provider", data={"csrf": token, "provider": "square"},
               files={"file": ("square.csv", raw, "text/csv")}, timeout=30)
    assert r.status_code == 422
    assert_plain_japanese(messages(r.text))
    assert "field larger" not in r.text


# --- every refusal the publisher can give has words -------------------------------------------------------
def _codes_raised() -> set[str]:
    """The ``code`` of every ConfigDocError the wire document and the portal's publishers raise, read from source
    (but in ``configdoc.check``, which passes on the code of the refusal it was given)."""
    root = Path(pages.__file__).parent
    found: set[str] = set()
    for f in [root / "wire" / "configdoc.py", *(root / n for n in ("configstore.py", "pointrules.py", "catalog.py"))]:
        tree = ast.parse(f.read_text("utf-8"))
        passing_on = {id(n) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) and fn.name == "check"
                      for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == (
                    "ConfigDocError") and id(node) not in passing_on:
                code = [k.value for k in node.keywords if k.arg == "code"] or node.args[1:2]
                assert code and isinstance(code[0], ast.Constant), f"{f.name}:{node.lineno}: a refusal without a code"
                found.add(code[0].value)
    return found


def test_every_refusal_code_has_words_in_both_languages():
    codes = _codes_raised()
    assert {"no_running_project", "activities_differ_from_rules", "media_missing"} <= codes
    missing = codes - set(pages.REFUSALS) - {"too_many"}  # too_many: words per list (pages.TOO_MANY)
    assert not missing, f"refusal codes the staff pages have no words for: {missing}"
    for code in sorted(codes | {"too_many", "invalid", "something-new"}):
        exc = configdoc.ConfigDocError("an English reason for the log", code, what="playlist", max=500)
        ja, en = pages.refusal(exc, "ja"), pages.refusal(exc, "en")
        assert_plain_japanese([ja])
        assert "English reason" not in en and en != ja


def test_every_refusal_of_a_group_or_project_save_has_words_beside_a_field():
    from server_sync import operator

    tree = ast.parse(Path(catalog.__file__).read_text("utf-8"))
    codes = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and fn.name in ("save_group", "save_project", "_name_taken"):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "CatalogError":
                    assert len(node.args) > 1 and isinstance(node.args[1], ast.Constant), f"line {node.lineno}"
                    codes.add(node.args[1].value)
    assert codes == {"group_name_taken", "group_id_taken", "project_id_taken", "no_group"}
    assert codes <= set(operator.CATALOG_REFUSALS)
    for code in codes:
        field, message = operator.CATALOG_REFUSALS[code]
        assert_plain_japanese([pages.staff_text(message, "ja")])


# --- in a browser -------------------------------------------------------------------------------------------
@needs_chromium
def test_the_volunteer_page_in_a_browser_says_where_the_activities_are_changed(running, browser):
    assert post_as(running, "/staff/point-rules", RULES_FORM).status_code == 303
    page = staff_page(browser, running.url, "staff1")
    page.goto(running.url + "/staff/volunteer")
    page.fill("#f-a0_points", "5")
    page.locator("main form#activities button[type=submit]").click()
    page.wait_for_load_state()
    shown = [t.strip() for t in page.locator("main p.bad").all_inner_texts() if t.strip()]
    assert_plain_japanese(shown)
    assert any("ポイント規程" in t for t in shown), shown
    assert page.input_value("#f-a0_points") == "5"  # what was typed is kept


# --- two people adding the same group or project at once -------------------------------------------------------
@pytest.mark.parametrize("first, second, field", [
    ({"id": "kodomo-club", "name": "子ども応援団"}, {"id": "kodomo-2", "name": "子ども応援団"}, "name"),
    ({"id": "kodomo-club", "name": "子ども応援団"}, {"id": "kodomo-club", "name": "こども応援団"}, "id"),
])
def test_a_group_a_colleague_added_a_moment_ago_is_refused_beside_the_field_not_with_an_error_page(
        center, first, second, field):
    """Both forms passed their checks before either was saved; the later save is refused by the catalog (its check
    or the database's unique name or id), and the page says so in Japanese instead of an error page."""
    from races import overlap

    s1, k1 = staff_session(center.url, "admin")
    s2, k2 = staff_session(center.url, "staff1")
    r1, r2 = overlap(center.app.state.engine, r"INSERT INTO portal_groups",
                     lambda: s1.post(center.url + "/staff/groups", data={**first, "editing": "", "csrf": k1},
                                     timeout=60, allow_redirects=False),
                     lambda: s2.post(center.url + "/staff/groups", data={**second, "editing": "", "csrf": k2},
                                     timeout=60, allow_redirects=False))
    assert r1.status_code == 303, r1.text[:300]
    assert r2.status_code == 422, r2.text[:300]
    assert_plain_japanese(messages(r2.text))
    assert f'data-for="{field}"' in r2.text
    assert f'value="{second["name"]}"' in r2.text  # what was typed is kept
    with center.app.state.engine.connect() as conn:
        assert [(g["id"], g["name"]) for g in catalog.list_groups(conn)] == [(first["id"], first["name"])]


def test_a_project_id_a_colleague_took_a_moment_ago_is_refused_beside_the_field_not_with_an_error_page(running):
    from races import overlap

    catalog.import_catalog(running.app.state.engine, {"groups": [{"id": "bouhan", "name": "防犯の会"}]})
    form = {"id": "yoru-patrol", "group_id": "bouhan", "area": "town", "goal_yen": "5000", "active": "1",
            "editing": ""}
    s1, k1 = staff_session(running.url, "admin")
    s2, k2 = staff_session(running.url, "staff1")
    r1, r2 = overlap(running.app.state.engine, r"INSERT INTO portal_projects",
                     lambda: s1.post(running.url + "/staff/projects", data={**form, "title": "夜回り", "csrf": k1},
                                     timeout=60, allow_redirects=False),
                     lambda: s2.post(running.url + "/staff/projects", data={**form, "title": "夜の見回り", "csrf": k2},
                                     timeout=60, allow_redirects=False))
    assert r1.status_code == 303, r1.text[:300]
    assert r2.status_code == 422, r2.text[:300]
    assert_plain_japanese(messages(r2.text))
    assert 'data-for="id"' in r2.text and "夜の見回り" in r2.text
    with running.app.state.engine.connect() as conn:
        assert catalog.project(conn, "yoru-patrol")["title"] == "夜回り"
