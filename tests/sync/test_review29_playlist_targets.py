"""The playlist pages say which playlist a kiosk group or a kiosk really plays (docs/portal.md, "Playlists and
targets"), read in headless Chromium on a real portal over loopback HTTP.

Each kiosk plays the newest playlist published for all kiosks, its kiosk group or itself. Before:
- a group's or a kiosk's own playlist that a later publish for all kiosks (or for the kiosk's group) replaced still
  read 「いま公開中のプレイリスト: …」 on its page, and nothing on the list said it was out of use, although its kiosks
  played the newer one;
- a kiosk with no playlist of its own in a kiosk group showed all kiosks' playlist (or an empty form, when all
  kiosks had none), not its group's that it plays;
- volunteer activities published later brought such a replaced playlist back (published again, it became the newest);
- a kiosk group no kiosk was in any more vanished from the playlists list, its playlist with it, although kiosks
  given that group again play it.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from sqlalchemy import select
from sync_helpers import needs_chromium, seed_playlist_center, staff_page, staff_session

from server_sync import configstore, movies, pages
from server_sync.db import configs, kiosks, writing
from server_sync.embedded import start_portal

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def center(tmp_path: Any):
    """A portal (SQLite) with kiosks lobby-1 and lobby-2 in kiosk group lobby, hall-1 in none, and one stored video."""
    handle = open_center(f"sqlite:///{tmp_path}/portal.db")
    yield handle
    handle.stop()


@pytest.fixture
def center_db(db_url: str):
    """The same on SQLite and PostgreSQL."""
    handle = open_center(db_url)
    yield handle
    handle.stop()


def open_center(db_url: str) -> Any:
    handle = start_portal(db_url)
    eng = handle.app.state.engine
    sha = seed_playlist_center(eng)
    with writing(eng) as conn:
        for kid in ("hall-1", "lobby-1", "lobby-2"):  # enrolled kiosks (their keys play no part here)
            conn.execute(kiosks.insert().values(id=kid, public_key=b"\0" * 32, key_id="0" * 16,
                                                enrolled_ms=int(time.time() * 1000), tip=b"\0" * 32))
    for kid in ("lobby-1", "lobby-2"):
        set_group(handle.url, kid, "lobby")
    handle.sha = sha  # type: ignore[attr-defined]
    return handle


SESSIONS: dict[tuple[str, str], tuple[Any, str]] = {}


def session(url: str, user: str) -> tuple[Any, str]:
    """One signed-in session per portal and user (signing in hashes the password: slow on purpose)."""
    if (url, user) not in SESSIONS:
        SESSIONS[url, user] = staff_session(url, user)
    return SESSIONS[url, user]


def set_group(url: str, kiosk_id: str, group: str) -> None:
    s, token = session(url, "yamada")
    r = s.post(f"{url}/staff/kiosks/{kiosk_id}/group", data={"csrf": token, "kiosk_group": group}, timeout=10)
    assert r.url.endswith("done=saved"), r.text[-1000:]


def publish(handle: Any, user: str, target: str, repeat: str) -> int:
    """Publishes one video ``repeat`` times in a row for ``target`` as ``user``; returns its published time."""
    s, token = session(handle.url, user)
    r = s.post(handle.url + "/staff/playlists", timeout=10, data={
        "csrf": token, "target": target, "i0_clip": handle.sha, "i0_project": "proj-a", "i0_repeat": repeat,
        "i0_days": ALL_DAYS, "i0_start": "", "i0_end": ""})
    assert r.url.endswith("done=published"), r.text[-2000:]
    with handle.app.state.engine.connect() as conn:
        return int(conn.execute(configs.select().order_by(configs.c.version.desc()).limit(1)).first().created_ms)


def plays(handle: Any, kiosk_id: str) -> int:
    """The version the portal hands ``kiosk_id`` (what it plays after its next contact)."""
    with handle.app.state.engine.connect() as conn:
        return configstore.current_version(conn, kiosk_id)


def version_of(page: Any, target: str) -> int:
    return int(page.locator(f'tr[data-target="{target}"]').get_attribute("data-version"))


@needs_chromium
def test_a_playlist_replaced_by_a_later_one_for_all_kiosks_says_so(center, browser, tmp_path) -> None:  # noqa: ANN001
    page = staff_page(browser, center.url, "yamada", size=(1100, 900))
    v1 = pages.when(publish(center, "suzuki", "kiosk:lobby-2", repeat="3"))
    v2 = pages.when(publish(center, "yamada", "group:lobby", repeat="2"))

    # lobby-2's own playlist is replaced by its group's, published later: lobby-2 plays the group's.
    assert plays(center, "lobby-2") == 2
    page.goto(center.url + "/staff/playlists?target=kiosk:lobby-2")
    now = page.locator("#now-running")
    assert now.get_attribute("data-replaced-by") == "group:lobby"
    assert now.inner_text() == (
        f"この端末向けのプレイリスト（{v1} に suzuki さんが公開）は、いまは使われていません。"
        f"そのあと、この端末が入っている端末グループ lobby 向けのプレイリストが公開されたため"
        f"（{v2} に yamada さんが公開）、この端末はいまそちらを流しています。下は、この端末向けのプレイリストです。"
        "もう一度この端末で流すには、必要なら直してから「端末に公開」を押してください。")
    assert page.input_value('input[name="i0_repeat"]') == "3"  # its own playlist, to publish again
    # lobby-1 has none of its own: the page starts from its group's, which it plays (not from an empty form).
    page.goto(center.url + "/staff/playlists?target=kiosk:lobby-1")
    assert page.locator("#now-running").inner_text() == (
        f"この端末向けにはまだ公開していません。下は、この端末がいま流している端末グループ lobby 向けのプレイリスト"
        f"（{v2} に yamada さんが公開）です。")
    assert page.input_value('input[name="i0_repeat"]') == "2"

    publish(center, "suzuki", "kiosk:hall-1", repeat="4")
    v4 = pages.when(publish(center, "yamada", "all", repeat="1"))
    assert [plays(center, k) for k in ("hall-1", "lobby-1", "lobby-2")] == [4, 4, 4]

    # The list: which own playlists are out of use, and why.
    page.goto(center.url + "/staff/playlists")
    page.screenshot(path=str(tmp_path / "playlists.png"), full_page=True)
    for target in ("group:lobby", "kiosk:lobby-2", "kiosk:hall-1"):
        note = page.locator(f'tr[data-target="{target}"] [data-replaced-by]')
        assert note.get_attribute("data-replaced-by") == "all", target
        assert note.inner_text() == ("いまは使われていません"
                                     "（あとで公開された全端末向けのプレイリストに置き換わりました）")
    assert page.locator('tr[data-target="all"] [data-replaced-by]').count() == 0
    assert page.locator('tr[data-target="kiosk:lobby-1"] [data-replaced-by]').count() == 0  # none of its own

    # The group's page: not 「いま公開中」, but out of use since the publish for all kiosks, with when and who.
    page.click('tr[data-target="group:lobby"] a')
    page.screenshot(path=str(tmp_path / "group.png"), full_page=True)
    now = page.locator("#now-running")
    assert now.inner_text() == (
        f"この端末グループ向けのプレイリスト（{v2} に yamada さんが公開）は、いまは使われていません。"
        f"そのあと、全端末向けのプレイリストが公開されたため（{v4} に yamada さんが公開）、"
        "このグループの端末はいまそちらを流しています。下は、このグループ向けのプレイリストです。"
        "もう一度このグループの端末で流すには、必要なら直してから「端末に公開」を押してください。")
    assert "いま公開中" not in page.locator("main").inner_text()
    assert page.input_value('input[name="i0_repeat"]') == "2"

    # Publishing it again from its page: the group's kiosks play it, and the page says it is in use.
    page.click("#publish")
    page.wait_for_url("**/staff/playlists?done=published")
    assert version_of(page, "group:lobby") == 5 and plays(center, "lobby-1") == 5
    assert page.locator('tr[data-target="group:lobby"] [data-replaced-by]').count() == 0
    page.goto(center.url + "/staff/playlists?target=group:lobby")
    assert page.locator("#now-running").inner_text().startswith("いま公開中のプレイリスト: ")
    assert page.locator("#now-running").get_attribute("data-replaced-by") is None

    # English with the switch.
    page.goto(center.url + "/staff/lang?to=en&next=/staff/playlists%3Ftarget%3Dkiosk%3Ahall-1")
    said = page.locator("#now-running").inner_text()
    assert said.startswith("This kiosk's own playlist (published ") and "for all kiosks was published" in said, said


@needs_chromium
def test_a_kiosk_group_with_no_kiosks_left_stays_on_the_list(center, browser, tmp_path) -> None:  # noqa: ANN001
    page = staff_page(browser, center.url, "yamada", size=(1100, 900))
    published = pages.when(publish(center, "yamada", "group:lobby", repeat="2"))
    for kid in ("lobby-1", "lobby-2"):
        set_group(center.url, kid, "")

    page.goto(center.url + "/staff/playlists")
    page.screenshot(path=str(tmp_path / "playlists.png"), full_page=True)
    row = page.locator('tr[data-target="group:lobby"]')
    assert row.count() == 1, page.locator("#targets").inner_text()
    assert row.locator("[data-empty]").inner_text() == "端末がありません"
    assert f"{published} に yamada さんが公開" in row.inner_text()
    assert page.locator("[data-empty]").count() == 1  # all kiosks and single kiosks: no such note

    page.click('tr[data-target="group:lobby"] a')
    assert page.locator("#no-kiosks").inner_text() == (
        "いま、この端末グループに入っている端末はありません。ここで公開したプレイリストは、「端末」ページでこのグループを"
        "付けた端末で流れます。")
    assert page.input_value('input[name="i0_repeat"]') == "2"

    # A kiosk given the group again plays its playlist, and the note goes.
    set_group(center.url, "hall-1", "lobby")
    page.goto(center.url + "/staff/playlists")
    assert plays(center, "hall-1") == version_of(page, "group:lobby") == 1
    assert page.locator("[data-empty]").count() == 0
    page.goto(center.url + "/staff/playlists?target=group:lobby")
    assert page.locator("#no-kiosks").count() == 0


def doc_of(handle: Any, version: int) -> dict[str, Any]:
    with handle.app.state.engine.connect() as conn:
        return json.loads(conn.execute(select(configs.c.document).where(configs.c.version == version)).scalar_one())


def test_activities_published_later_leave_a_replaced_playlist_replaced(center_db) -> None:  # noqa: ANN001
    """Volunteer activities are published again for every target, each keeping its own playlist. A group's own
    playlist that a later one for all kiosks replaced is left as it is: before, it was published again too, became
    the newest, and the group's kiosks silently went back to the playlist staff had replaced. Publishing the
    group's playlist again from its page takes the activities its kiosks have now, not those it had then."""
    publish(center_db, "yamada", "group:lobby", repeat="2")  # v1
    publish(center_db, "yamada", "all", repeat="1")  # v2: every kiosk plays it
    s, token = session(center_db.url, "yamada")
    r = s.post(center_db.url + "/staff/volunteer", timeout=10, data={
        "csrf": token, "base": "2", "a0_id": "seisou", "a0_title": "公園の清掃", "a0_title_en": "Park cleanup",
        "a0_points": "10", "a0_max_points": "100"})
    assert r.url.endswith("done=published"), r.text[-2000:]
    newest = plays(center_db, "lobby-1")
    assert plays(center_db, "hall-1") == newest
    kept = doc_of(center_db, newest)
    assert [i["repeat"] for i in kept["playlist"]] == [1]  # all kiosks' playlist, not the replaced group's
    assert [a["id"] for a in kept["activities"]] == ["seisou"]
    body = s.get(center_db.url + "/staff/playlists", timeout=10).text
    row = re.search(r'<tr data-target="group:lobby".*?</tr>', body, re.S)
    assert row is not None and 'data-replaced-by="all"' in row[0], row

    publish(center_db, "suzuki", "group:lobby", repeat="5")  # from the group's page: in use again
    again = plays(center_db, "lobby-1")
    assert again > newest and [i["repeat"] for i in doc_of(center_db, again)["playlist"]] == [5]
    assert [a["id"] for a in doc_of(center_db, again).get("activities") or []] == ["seisou"]  # not those it had


def test_movies_on_the_kiosks_are_those_of_playlists_in_force(center_db) -> None:  # noqa: ANN001
    """The movie maker's 「端末で流れています」 (movies.on_kiosks) counts only playlists some kiosk plays: not a
    group's own that a later one for all kiosks replaced, nor one of a group no kiosk is in any more. Before, it
    counted the newest playlist of every target, so an editor read that a movie plays where it plays nowhere."""
    eng = center_db.app.state.engine
    publish(center_db, "yamada", "group:lobby", repeat="2")  # the group's playlist: the stored video
    with eng.connect() as conn:
        assert movies.on_kiosks(conn) == {center_db.sha}
    other = configstore.add_media(eng, b"other" * 100, "video/mp4")
    configstore.republish(eng, playlist=[{"sha256": other, "name": "b", "project": "proj-a"}])  # all kiosks, later
    with eng.connect() as conn:
        assert movies.on_kiosks(conn) == {other}

    publish(center_db, "yamada", "group:lobby", repeat="3")  # the group's again: its kiosks play it
    with eng.connect() as conn:
        assert movies.on_kiosks(conn) == {center_db.sha, other}  # hall-1 (no group) still plays all kiosks'
    for kid in ("lobby-1", "lobby-2"):
        set_group(center_db.url, kid, "")
    with eng.connect() as conn:
        assert movies.on_kiosks(conn) == {other}  # the group has no kiosks: its playlist plays nowhere
