"""A group editor (no IT skills, reading Japanese) on a phone, in headless Chromium against a real portal:

- a photo over the movie maker's 25 MB limit: the message said only 「写真6が大きすぎます。写真1枚25 MBまでです。」,
  and the editor, who does not know how to make a photo smaller, was stuck; now it says how, on a PC and on a
  phone, and to choose it again (the portal's own refusal, for a page without its script, says the same:
  tests/sync/test_moviemaker.py);
- the projects page said 「変更はプレイリストを次に公開したときに端末へ届きます。」 to an editor, who cannot publish a
  playlist and looked for a button that is not there; now it says the center staff do it. Staff keep their
  wording (they publish it themselves).
"""

from __future__ import annotations

import pytest
from photos import photo
from sync_helpers import PASSWORD, needs_chromium, staff_link, staff_page

from server_sync.staff import add_user

PHONE = (390, 844)
SHOTS = None  # a folder to save screenshots into while looking at the page (None in CI)

pytestmark = needs_chromium


@pytest.fixture
def portal(editor_site):  # noqa: ANN001, ANN201 - conftest's portal of one group and its editor
    return editor_site


def test_a_photo_too_large_says_how_to_make_it_smaller(portal, browser, tmp_path):
    big = tmp_path / "DSC_0042.jpg"
    with open(big, "wb") as f:  # a camera's full-size photo: 26 MB (sparse, so the test writes nothing much)
        f.write(photo(tmp_path / "p.jpg", 1, size=(400, 300)).read_bytes())
        f.truncate(26 * 1024 * 1024)
    page = staff_page(browser, portal.url, "editor1", PASSWORD, size=PHONE)
    staff_link(page, "/staff/movies")
    page.wait_for_url("**/staff/movies")
    page.set_input_files("#f-photo1", str(big))
    page.click("#movie-send")
    said = page.locator("p.err[data-for=photo1]")
    said.wait_for()
    assert said.inner_text() == (
        "写真2が大きすぎます。写真1枚25 MBまでです。スマートフォンやパソコンで小さくしてから、もう一度選んでください。"
        "パソコンなら「ペイント」などの画像ソフトで開いてサイズを小さくし、JPEGで保存し直します。"
        "スマートフォンなら、写真を画面に表示してスクリーンショットを撮り、それを選びます。")
    box = said.bounding_box()
    assert box and box["x"] + box["width"] <= PHONE[0]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    if SHOTS:
        said.scroll_into_view_if_needed()
        page.screenshot(path=f"{SHOTS}/too_large.png")


def test_the_projects_page_tells_an_editor_that_the_center_staff_bring_changes_to_the_kiosks(portal, browser):
    page = staff_page(browser, portal.url, "editor1", PASSWORD, size=PHONE)
    staff_link(page, "/staff/projects")
    page.wait_for_url("**/staff/projects")
    said = page.locator("main").inner_text()
    assert "変更は、センターの職員がプレイリストを次に公開したときに端末へ届きます。" in said, said
    assert "変更はプレイリストを次に公開したときに" not in said  # not as if the editor could publish it
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/projects_editor.png", full_page=True)

    add_user(portal.app.state.engine, "staff1", PASSWORD, "staff")
    page = staff_page(browser, portal.url, "staff1", PASSWORD, size=PHONE)
    page.goto(portal.url + "/staff/projects")
    said = page.locator("main").inner_text()
    assert "変更はプレイリストを次に公開したときに端末へ届きます。" in said and "センターの職員が" not in said
