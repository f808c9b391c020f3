"""More of what a staff member reads when the portal refuses, in the staff member's language (docs/portal.md,
"Refusals in the staff member's words"; tests/sync/test_staff_words.py has the first part):

- a sponsor pool's two refusals (funded below what kiosks hold; too many pools) carry a code, and the pools page
  words them from it, never from the English nor from balances read again after the refusal;
- the videos page's script follows a conversion through ``/staff/media-jobs/{id}``: when that is refused (signed
  out meanwhile, a job no longer the uploader's) the page says why in Japanese and stops. Before, the answer's
  missing progress broke the script and the page said "the connection was lost, nothing was saved, try again"
  while the conversion went on (and the video was saved): an uploader would send it a second time;
- revoking a kiosk's key: a number that cannot be revoked comes back beside the form in Japanese (before: the
  "your role does not allow this" page), an unknown kiosk is "not found", and a done revocation says what it did.

Real portals over HTTP on loopback (SQLite, and PostgreSQL when $KIOSK_TEST_PG_URL is set), real kiosks' ledgers,
real uploads probed by the real child process, headless Chromium for the videos page.
"""

from __future__ import annotations

import ast
import html
import re
import threading
from pathlib import Path

import pytest
import requests
from movies import solid_movie
from sqlalchemy import select
from staff_words_check import PLAIN_LATIN, messages
from staff_words_check import assert_plain_japanese as plain_japanese
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_session

from server_sync import catalog, pages, points_ui, pools
from server_sync.db import key_events
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from server_sync.wire.configdoc import ConfigDocError

ALLOWED_LATIN = PLAIN_LATIN | {"seq"}  # "seq": the record number's name on the kiosks page, explained beside it
GROUPS = [{"id": "group-a", "name": "Aの会"}, {"id": "group-b", "name": "Bの会"}]
CLIPS = [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green", "goal_yen": 1000},
         {"id": "proj-b", "group_id": "group-b", "title": "Bのプロジェクト", "area": "green", "goal_yen": 1000}]


@pytest.fixture
def center(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, spool_dir=str(tmp_path / "spool"), secret_file=tmp_path / "secret",
                          media_size=(192, 108))
    eng = handle.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    catalog.import_catalog(eng, {"groups": GROUPS, "projects": CLIPS})
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "editor-a", PASSWORD, "editor", "group-a")
    add_user(eng, "editor-b", PASSWORD, "editor", "group-b")
    yield handle
    handle.stop()


def post_as(portal, path: str, form: dict, *, lang: str = "ja", user: str = "admin") -> requests.Response:  # noqa: ANN001
    s, token = staff_session(portal.url, user, lang=lang)
    return s.post(portal.url + path, data={**form, "csrf": token}, timeout=60, allow_redirects=False)


# --- sponsor pools --------------------------------------------------------------------------------------------
POOL = {"id": "shoutenkai", "sponsor": "駅前商店会", "funded_yen": "10000", "yen_per_point": "1",
        "per_kiosk_yen": "3000"}


def _pool(i: int) -> dict:
    return {"id": f"pool-{i}", "sponsor": f"協賛{i}", "sponsor_en": "", "funded_yen": 1000, "yen_per_point": 1,
            "per_kiosk_yen": 100, "areas": [], "start": None, "end": None}


def test_a_pool_funded_below_what_kiosks_hold_is_refused_with_its_code_and_the_amount(center, rig):
    enrolled(rig, center)
    assert post_as(center, "/staff/pools", POOL).status_code == 303
    eng = center.app.state.engine
    with pytest.raises(ConfigDocError) as refused:
        pools.save_pool(eng, {**_pool(0), "id": "shoutenkai", "funded_yen": 1000})
    assert refused.value.code == "pool_below_handed" and refused.value.params == {"handed": 3000}
    assert "3,000" in str(refused.value)  # the English stays, for the log
    r = post_as(center, "/staff/pools", {**POOL, "funded_yen": "1000"})
    assert r.status_code == 422 and 'data-for="funded_yen"' in r.text
    plain_japanese(messages(r.text), ALLOWED_LATIN)
    assert any("3,000" in t for t in messages(r.text)), messages(r.text)
    en = post_as(center, "/staff/pools", {**POOL, "funded_yen": "1000"}, lang="en")
    assert en.status_code == 422 and "¥3,000 of this pool is already handed to the kiosks" in en.text


def test_one_pool_too_many_is_refused_with_its_code_in_plain_words(center):
    eng = center.app.state.engine
    for i in range(pools.MAX_PUSHED):
        pools.save_pool(eng, _pool(i))
    with pytest.raises(pools.TooManyPools) as refused:
        pools.save_pool(eng, _pool(pools.MAX_PUSHED))
    assert refused.value.code == "too_many_pools"
    assert refused.value.params == {"max": pools.MAX_PUSHED, "days": pools.KEEP_ENDED_DAYS}
    r = post_as(center, "/staff/pools", POOL)
    assert r.status_code == 422 and 'data-for="id"' in r.text
    shown = messages(r.text)
    plain_japanese(shown, ALLOWED_LATIN)
    assert any(str(pools.MAX_PUSHED) in t and str(pools.KEEP_ENDED_DAYS) in t for t in shown), shown
    with eng.connect() as conn:
        assert len(pools.list_pools(conn)) == pools.MAX_PUSHED


def test_every_refusal_of_saving_a_pool_has_a_code_the_pools_page_words():
    """Every ConfigDocError (or subclass) raised in server_sync/pools.py names its code, and the pools page has words
    for it beside a field of its form."""
    tree = ast.parse(Path(pools.__file__).read_text("utf-8"))
    codes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name in ("ConfigDocError", "TooManyPools"):
                code = [k.value for k in node.exc.keywords if k.arg == "code"] or node.exc.args[1:2]
                assert code and isinstance(code[0], ast.Constant), f"pools.py:{node.lineno}: a refusal without a code"
                codes.add(code[0].value)
    assert codes == {"pool_below_handed", "too_many_pools"}
    assert codes <= set(points_ui.POOL_REFUSALS)
    for code in codes:
        errors = points_ui.pool_refusal(ConfigDocError("English for the log", code, handed=3000, max=50, days=7),
                                        "ja")
        [(field, (message, values))] = errors.items()
        assert field in ("funded_yen", "id")
        plain_japanese([pages.staff_text(message, "ja", **values)], ALLOWED_LATIN)
    # Another publishing refusal is said in the publisher's words, not the English.
    [(field, (message, values))] = points_ui.pool_refusal(
        ConfigDocError("catalog has no running project", "no_running_project"), "ja").items()
    assert field == "pool" and "catalog" not in pages.staff_text(message, "ja", **values)


# --- the videos page following a conversion -------------------------------------------------------------------
def _hold_conversions(center) -> threading.Event:  # noqa: ANN001
    """Occupy the portal's one conversion worker (as a long video ahead in the queue does): an upload stays queued
    until the returned event is set."""
    gate = threading.Event()
    center.app.state.jobs._pool.submit(gate.wait, 60)
    return gate


def _upload(center, tmp_path: Path, user: str, project: str) -> str:  # noqa: ANN001
    clip = solid_movie(tmp_path / f"{user}.mp4", (10, 120, 10), size=(192, 108), seconds=0.5)
    s, token = staff_session(center.url, user)
    r = s.post(center.url + "/staff/media-upload", data=clip.read_bytes(), timeout=60, headers={
        "X-CSRF-Token": token, "X-Project": project, "X-File-Name": clip.name, "Content-Type": "video/mp4"})
    assert r.status_code == 202, r.text
    return str(r.json()["job"])


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_refused_job_status_says_why_in_the_staff_members_words(center, tmp_path, lang):
    gate = _hold_conversions(center)
    try:
        job = _upload(center, tmp_path, "editor-a", "proj-a")
        other, _ = staff_session(center.url, "editor-b", lang=lang)
        r = other.get(center.url + f"/staff/media-jobs/{job}", timeout=10)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        gone = requests.get(center.url + f"/staff/media-jobs/{job}", timeout=10,
                            cookies={pages.STAFF_LANG_COOKIE: lang})
        assert gone.status_code == 401 and gone.json()["error"] == "signed_out"
        for answer in (r, gone):
            reason = answer.json()["reason"]
            assert "/staff/login" not in reason and "no such job" not in reason, reason
            if lang == "ja":
                plain_japanese([reason], ALLOWED_LATIN)
            else:
                assert "Videos page" in reason, reason
        assert "ログイン" in gone.json()["reason"] or lang == "en"
    finally:
        gate.set()


@needs_chromium
def test_signing_out_in_another_tab_while_a_video_converts_tells_the_uploader_in_japanese(center, tmp_path,
                                                                                          browser):
    clip = solid_movie(tmp_path / "clip.mp4", (10, 120, 10), size=(192, 108), seconds=0.5)
    gate = _hold_conversions(center)
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
        page = context.new_page()
        page.goto(center.url + "/staff/login")
        page.fill("input[name=username]", "editor-a")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/staff")
        page.goto(center.url + "/staff/media")
        page.select_option("#u-project", "proj-a")
        page.set_input_files("#u-file", str(clip))
        page.click("#u-send")
        page.locator("#u-text", has_text="変換").wait_for(timeout=30_000)  # converting (queued behind the other)
        # The same browser, another tab: the staff member signs out there.
        other = context.new_page()
        other.goto(center.url + "/staff")
        other.click("header summary")  # on a phone the staff menu opens under 「メニュー」 (base.html)
        other.click("form[action='/staff/logout'] button")
        other.wait_for_url("**/staff/login?out=1")
        text = page.locator("#u-text.bad")
        text.wait_for(timeout=15_000)
        shown = text.inner_text()
        assert "undefined" not in shown
        plain_japanese([shown], ALLOWED_LATIN)
        assert "ログイン" in shown and "変換は続いています" in shown, shown
        assert page.is_enabled("#u-send")
        # It stopped asking: the status is asked no more once it was refused.
        asked: list[str] = []
        page.on("request", lambda req: asked.append(req.url) if "/staff/media-jobs/" in req.url else None)
        page.wait_for_timeout(1500)
        assert asked == []
    finally:
        gate.set()


# --- revoking a kiosk's key -----------------------------------------------------------------------------------
@pytest.fixture
def synced(center, rig):  # noqa: ANN001
    rig.donate(2)
    assert enrolled(rig, center).sync_once().ok
    return rig


def _revocations(center) -> list:  # noqa: ANN001
    with center.app.state.engine.connect() as conn:
        return conn.execute(select(key_events.c.seq).where(key_events.c.kind == "revoke")).all()


@pytest.mark.parametrize("typed", ["1", "0", "", "abc", "-5"])
def test_a_number_that_cannot_be_revoked_is_said_beside_the_form_in_japanese(center, synced, typed):
    kid = synced.kiosk_id
    r = post_as(center, f"/staff/kiosks/{kid}/revocation", {"from_seq": typed})
    assert r.status_code == 422, r.status_code
    assert "id=\"forbidden\"" not in r.text  # not the "your role does not allow this" page
    assert f'data-for="revoke_{kid}"' in r.text
    shown = messages(r.text)
    plain_japanese(shown, ALLOWED_LATIN)
    assert any("記録番号" in t and "2" in t for t in shown), shown
    row = re.search(rf'<tr data-kiosk="{kid}">.*?</tr>', r.text, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "<details class=\"confirm\" open>" in row  # the form stays open
    assert f'name="from_seq" inputmode="numeric" value="{html.escape(typed)}"' in row  # as typed
    assert _revocations(center) == []


def test_a_revocation_typed_with_full_width_digits_is_taken_and_says_what_it_did(center, synced):
    kid = synced.kiosk_id
    seq = synced.ledger.size + 1
    typed = str(seq).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    s, token = staff_session(center.url, "admin")
    r = s.post(center.url + f"/staff/kiosks/{kid}/revocation", data={"from_seq": typed, "csrf": token}, timeout=30)
    assert r.status_code == 200 and r.url.endswith("done=revoked"), (r.status_code, r.url)
    notice = re.search(r'<p class="notice" id="notice">(.*?)</p>', r.text, flags=re.S)
    assert notice is not None and "鍵を無効にしました" in notice.group(1), r.text[:500]
    assert [tuple(x) for x in _revocations(center)] == [(seq,)]
    assert "記録番号（seq）" in r.text  # the form says what "seq" is


def test_revoking_the_key_of_a_kiosk_the_portal_does_not_know_is_not_found(center, synced):
    r = post_as(center, "/staff/kiosks/no-such-kiosk/revocation", {"from_seq": "5"})
    assert r.status_code == 404 and "/staff/kiosks" in r.text and "id=\"forbidden\"" not in r.text
    assert _revocations(center) == []


def test_the_staff_page_words_every_refusal_of_the_revocation_form():
    """KeyEventError names its code where it is raised; the page says ``from_seq_too_low`` beside the form and
    answers a kiosk it does not know as not found."""
    from server_sync import kiosk_keys

    tree = ast.parse(Path(kiosk_keys.__file__).read_text("utf-8"))
    codes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(
                node.exc.func, "id", "") == "KeyEventError":
            assert len(node.exc.args) > 1 and isinstance(node.exc.args[1], ast.Constant), f"line {node.lineno}"
            codes.add(node.exc.args[1].value)
    assert {"from_seq_too_low", "no_kiosk"} <= codes
    plain_japanese([pages.staff_text(kiosk_keys.TOO_LOW, "ja")], ALLOWED_LATIN)
