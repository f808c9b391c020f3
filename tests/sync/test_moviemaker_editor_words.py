"""What a group editor (not an engineer, reading Japanese) is told on the movie maker's pages, in headless
Chromium against a real portal (SQLite, loopback HTTP, the real photo checker and renderer):

- once the photos are sent (the bar at 100 %) and the portal is still checking them, the page says so
  (写真を確かめています…), not "sending 100 %" for seconds;
- a caption is never cut silently: each caption box counts down the characters left (あと N 文字) and says
  when there are too many; one that still arrives too long (no script) comes back with a message beside it
  and the typing kept;
- a movie made again from the same photos and captions (the same file) says it is the same as the movie
  already published, with a link to it, instead of "this movie is published" on a draft just made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from photos import photo
from sync_helpers import PASSWORD, movie_maker_page, needs_chromium, staff_link

from server_sync import movies

CAPTIONS = ["畑で野菜を育てました", "子どもたちと一緒に収穫", "ありがとうございました"]
PHONE = (390, 844)

pytestmark = needs_chromium


@pytest.fixture
def portal(editor_site):  # noqa: ANN001, ANN201 - conftest's portal of one group and its editor
    return editor_site


def choose(page, pics: list[Path], captions: list[str]) -> None:
    for i, (pic, caption) in enumerate(zip(pics, captions, strict=True)):
        page.set_input_files(f"#f-photo{i}", str(pic))
        page.fill(f"#f-caption{i}", caption)


# Every text the status line shows, kept in the tab's sessionStorage so that it survives the move to the movie's page.
RECORD_STATUS = """
document.addEventListener("DOMContentLoaded", function () {
  var text = document.getElementById("movie-text");
  if (!text || !document.getElementById("movie-form")) return;
  new MutationObserver(function () {
    var seen = JSON.parse(sessionStorage.getItem("said") || "[]");
    if (seen[seen.length - 1] !== text.textContent) { seen.push(text.textContent); }
    sessionStorage.setItem("said", JSON.stringify(seen));
  }).observe(text, {childList: true, characterData: true, subtree: true});
});
"""


def test_once_the_photos_are_sent_the_page_says_they_are_being_checked(portal, browser, tmp_path):
    # Large photos: the portal's check decodes each one in full, which takes a moment after the upload ends.
    pics = [photo(tmp_path / f"p{i}.jpg", i, size=(4000, 3000)) for i in range(3)]
    page = movie_maker_page(browser, portal.url)
    page.add_init_script(RECORD_STATUS)
    page.reload()
    choose(page, pics, CAPTIONS)
    page.click("#movie-send")
    page.wait_for_url("**/staff/movies/*", timeout=60_000)
    said = json.loads(page.evaluate("sessionStorage.getItem('said') || '[]'"))
    assert said and said[0] == "写真を送信中… 0%", said
    assert "写真を送信中… 100%" in said, said
    # After the upload and until the portal answered, the last thing said is that the photos are being checked.
    assert said[-1] == "写真を確かめています…", said
    assert said.index("写真を確かめています…") > said.index("写真を送信中… 100%"), said


def test_a_caption_box_counts_down_and_never_cuts_the_typing(portal, browser, tmp_path):
    pics = [photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    page = movie_maker_page(browser, portal.url)
    counter = page.locator("#f-caption0-left")
    assert counter.inner_text() == f"あと {movies.MAX_CAPTION} 文字"
    choose(page, pics, CAPTIONS)
    assert counter.inner_text() == f"あと {movies.MAX_CAPTION - len(CAPTIONS[0])} 文字"
    # A long text pasted into the box: all of it stays, and the box says how many characters too many.
    long = "みんなで育てた野菜を収穫して、こども食堂でカレーにして食べました。" * 2 + "とてもおいしかった"
    assert len(long) > movies.MAX_CAPTION
    page.fill("#f-caption0", "")
    page.focus("#f-caption0")
    page.keyboard.insert_text(long)
    assert page.input_value("#f-caption0") == long
    over = len(long) - movies.MAX_CAPTION
    assert counter.inner_text() == f"{over} 文字多すぎます。{movies.MAX_CAPTION} 文字までにしてください。"
    assert "bad" in (counter.get_attribute("class") or "")
    assert page.get_attribute("#f-caption0", "aria-describedby") == "f-caption0-left"
    # Sent anyway: the portal's message beside the caption, the photos and the typing kept.
    page.click("#movie-send")
    page.wait_for_selector("p.err[data-for=caption0]", timeout=60_000)
    assert page.locator("p.err[data-for=caption0]").inner_text() == (
        f"長すぎます。{movies.MAX_CAPTION} 文字までにしてください。")
    assert page.input_value("#f-caption0") == long
    assert page.evaluate("document.querySelector('#f-photo1').files.length") == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]


def test_without_a_script_a_too_long_caption_comes_back_with_a_message_and_the_typing(portal, browser, tmp_path):
    pics = [photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    page = browser.new_page(viewport={"width": PHONE[0], "height": PHONE[1]}, locale="ja-JP",
                            java_script_enabled=False)
    page.goto(portal.url + "/staff/login")
    page.fill("input[name=username]", "editor1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    page.goto(portal.url + "/staff/movies")
    long = "あ" * (movies.MAX_CAPTION + 5)
    choose(page, pics, [CAPTIONS[0], long, CAPTIONS[2]])
    page.click("#movie-send")
    page.wait_for_load_state()
    err = page.locator("#f-caption1 ~ p.err")
    assert err.inner_text() == f"長すぎます。{movies.MAX_CAPTION} 文字までにしてください。"
    assert page.input_value("#f-caption1") == long  # what was typed, all of it, to shorten
    assert page.input_value("#f-caption0") == CAPTIONS[0]
    assert movies.movie_jobs(portal.app.state.engine, None) == []
    assert page.locator("#f-caption1-left").inner_text() == f"{movies.MAX_CAPTION} 文字まで"


def make_movie(page, pics: list[Path], name: str) -> str:
    staff_link(page, "/staff/movies")
    page.wait_for_url("**/staff/movies")
    choose(page, pics, CAPTIONS)
    page.fill("#f-name", name)
    page.click("#movie-send")
    page.wait_for_url("**/staff/movies/*", timeout=60_000)
    page.wait_for_selector("#preview, #same-as, #movie-failed", timeout=180_000)
    return page.url.rsplit("/", 1)[1]


def test_the_same_movie_made_again_says_it_is_the_published_one_with_a_link(portal, browser, tmp_path):
    pics = [photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    page = movie_maker_page(browser, portal.url)
    first = make_movie(page, pics, "秋の収穫")
    page.click("#publish")
    page.wait_for_url(f"**/staff/movies/{first}?done=published")

    again = make_movie(page, pics, "秋の収穫（もう一度）")
    assert again != first
    said = page.locator("#same-as").inner_text()
    assert said.startswith("このムービーは、公開済みのムービー「秋の収穫」とまったく同じです"), said
    assert "もう一度公開する必要はありません" in said
    assert "このムービーは公開済みです" not in page.locator("main").inner_text()
    # The way to the published one, and a way to remove this copy.
    page.click("#same-as a")
    page.wait_for_url(f"**/staff/movies/{first}")
    assert "このムービーは公開済みです" in page.locator("p.hint").inner_text()
    page.goto(f"{portal.url}/staff/movies")
    assert page.locator(f"tr[data-movie='{first}'] td").nth(1).inner_text() == "公開済み"
    assert page.locator(f"tr[data-movie='{again}'] td").nth(1).inner_text() == "公開済みのムービーと同じ"
    page.goto(f"{portal.url}/staff/movies/{again}")
    page.click("#discard")  # nothing is lost: the published movie stays
    page.wait_for_url("**/staff/movies?done=discarded")
    assert page.locator(f"tr[data-movie='{again}']").count() == 0
    assert page.locator(f"tr[data-movie='{first}'] td").nth(1).inner_text() == "公開済み"
    # The published movie is still there for the public pages.
    assert movies.published_movie(portal.app.state.engine, "kodomo-shokudo") is not None
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
