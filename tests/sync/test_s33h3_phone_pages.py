"""Session 33 (h3): the pages added lately, looked at on a phone (375×667, headless Chromium, a real portal on
loopback with a real SQLite file): removing a video and the page after it, a failed movie's page with
「もう一度作る」 and 「一言を直してから作る」 and its caption form, and the receipt check with the line shown when the
portal's page printed other facts than the signed ones.

- None of them scrolls sideways on a phone.
- The removal page's Cancel is a finger high and apart from 「削除する」, which cannot be undone (it sat touching it,
  a small link).
- A failed movie whose photos and captions are kept does not say 「何も保存されていません。もう一度お試しください」
  right above 「選んだ写真と一言は…まで残してあります」.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, needs_chromium, staff_page, staff_session
from test_receipt_browser import Malicious, _check
from test_review51_media_takedown import CATALOG, _clip, _item
from test_review51_movie_retry import _kept_failure

from server_sync import catalog, configstore
from server_sync.configstore import publish
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from server_sync.wire.receipt import receipt_code

PHONE = (375, 667)
KEPT, GONE = "a" * 24, "b" * 24  # failed movies: one with its photos and captions kept, one without
SIDEWAYS = "document.documentElement.scrollWidth"


@pytest.fixture
def center(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", spool_dir=str(tmp_path / "spool"),
                          media_size=(96, 54), movie_size=(96, 54))
    eng = handle.app.state.engine
    catalog.import_catalog(eng, CATALOG)
    add_user(eng, "editor-a", PASSWORD, "editor", "group-a")
    add_user(eng, "staff1", PASSWORD, "staff")
    now = time.time_ns() // 1_000_000
    _kept_failure(handle, tmp_path / "spool", KEPT, now)
    _kept_failure(handle, tmp_path / "spool", GONE, now)
    for f in (tmp_path / "spool").glob(f"job-{GONE}.*"):  # as the clean-up leaves it after its time
        f.unlink()
    yield handle
    handle.stop()


@needs_chromium
def test_the_new_pages_do_not_scroll_sideways_on_a_phone_and_cancel_is_apart_from_remove(center, rig, browser):
    url, eng = center.url, center.app.state.engine
    sha = _clip(eng, 1, "夏祭りの様子 みんなで踊りました", "group-a", "proj-a", time.time_ns() // 1_000_000)
    configstore.republish(eng, "all", "staff1", playlist=[_item(sha, "proj-a")])
    wide: dict[str, int] = {}
    page = staff_page(browser, url, "editor-a", size=PHONE)
    for path in (f"/staff/movies/{KEPT}", f"/staff/movies/{KEPT}/edit", f"/staff/media/{sha}/remove"):
        page.goto(url + path)
        if page.evaluate(SIDEWAYS) > PHONE[0]:
            wide[path] = page.evaluate(SIDEWAYS)
    yes = page.locator("#remove-yes").bounding_box()
    cancel = page.locator("#remove-cancel").bounding_box()
    assert yes and cancel
    assert cancel["height"] >= 44, cancel
    assert cancel["x"] - (yes["x"] + yes["width"]) >= 8 or cancel["y"] - (yes["y"] + yes["height"]) >= 8, (yes, cancel)
    page.click("#remove-yes")
    page.wait_for_url("**/staff/media?done=*")
    if page.evaluate(SIDEWAYS) > PHONE[0]:
        wide["/staff/media?done=…"] = page.evaluate(SIDEWAYS)
    page.close()

    publish(eng, {"projects": PROJECTS})
    gift = rig.donate(2, card=1)[1]
    rig.ledger.checkpoint()
    assert enrolled(rig, center).sync_once().ok
    code, kid = receipt_code(gift), rig.ledger.key_id
    page = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]}, locale="ja-JP")
    mal = Malicious(url)
    try:
        assert _check(page, f"{url}/r/{code}#k={kid}")[0] == "ok"
        page.locator("#details summary").click()  # the key and the checkpoint root: long hex
        if page.evaluate(SIDEWAYS) > PHONE[0]:
            wide["/r/ (checked)"] = page.evaluate(SIDEWAYS)
        mal.page_edit = lambda html: html.replace(f'<span id="kiosk">{rig.kiosk_id}</span>',
                                                  '<span id="kiosk">other-kiosk-with-a-long-name-9</span>')
        assert _check(page, f"{mal.url}/r/{code}#k={kid}")[0] == "ok"
        assert page.locator("#mismatch").is_visible()
        page.locator("#details summary").click()
        if page.evaluate(SIDEWAYS) > PHONE[0]:
            wide["/r/ (mismatch)"] = page.evaluate(SIDEWAYS)
    finally:
        mal.close()
        page.close()
    assert wide == {}, wide


def test_a_failed_movie_whose_photos_are_kept_does_not_say_nothing_was_saved(center):
    url = center.url
    s, _ = staff_session(url, "editor-a")
    page = s.get(f"{url}/staff/movies/{KEPT}", timeout=10).text
    said = ("ムービーを作れませんでした（ポータルの再起動で中断しました）。"
            "くり返し起きるときは、センターの職員にお知らせください。")
    assert said in page and "まで残してあります" in page and ">もう一度作る</button>" in page
    assert "何も保存されていません" not in page and "もう一度お試しください" not in page
    assert s.get(f"{url}/staff/movies/{KEPT}/job", timeout=10).json()["message"] == said  # the page's words
    # Once they are no longer kept, nothing is: the page says so, and to try again from the photos.
    gone = s.get(f"{url}/staff/movies/{GONE}", timeout=10).text
    assert "何も保存されていません。もう一度お試しください。" in gone and "もうポータルに残っていません" in gone
    e, _ = staff_session(url, "editor-a", lang="en")
    assert ("The movie could not be made: interrupted (the portal restarted). If it happens again, tell the center "
            "staff.") in e.get(f"{url}/staff/movies/{KEPT}", timeout=10).text
    assert requests.get(f"{url}/staff/movies/{KEPT}/job", timeout=10).status_code == 404  # signed out: nothing
