"""A group editor (no IT skills, reading Japanese) makes a movie, in headless Chromium on a phone.

- Several wrong files at once (a zero-byte photo, a PDF renamed .jpg, an iPhone HEIC photo): every one is named
  beside its photo in one answer, the empty one with what to do; before, the empty file hid the others, so the
  editor sent every photo again to learn of the next problem.
- Publish puts the movie on the project's public page (on the internet) at once: the page says so before the
  button is pressed (ask the people in the photos first) and after, with a link to that page; before, it only said
  "not on the kiosks yet", as if nobody could see it.
- Once the center staff put the movie in a kiosk playlist, its page and the list of movies say it plays on the
  kiosks; before, they said "published" whether or not it was ever put there, and the editor could not tell.
"""

from __future__ import annotations

import pytest
from photos import photo
from sync_helpers import movie_maker_page, needs_chromium

from server_sync import configstore, movies

PHONE = (390, 844)

pytestmark = needs_chromium


@pytest.fixture
def portal(editor_site):  # noqa: ANN001, ANN201 - conftest's portal of one group and its editor
    return editor_site


def test_every_wrong_photo_is_named_in_one_answer(portal, browser, tmp_path):
    empty = tmp_path / "IMG_0001.jpg"
    empty.write_bytes(b"")  # a copy that did not work (a cloud placeholder, a card pulled out too early)
    pdf = tmp_path / "chirashi.jpg"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\n" + b"0" * 3000 + b"\n%%EOF\n")  # a flyer renamed .jpg
    body = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    heic = tmp_path / "IMG_0412.HEIC"
    heic.write_bytes(len(body).to_bytes(4, "big") + body + b"\x00" * 4000)
    good = photo(tmp_path / "ok.jpg", 1, size=(400, 300))
    page = movie_maker_page(browser, portal.url)
    for i, f in enumerate([empty, pdf, heic, good]):
        page.set_input_files(f"#f-photo{i}", str(f))
        page.fill(f"#f-caption{i}", f"一言{i + 1}")
    page.click("#movie-send")
    page.wait_for_selector("p.err[data-for=photo0]", timeout=60_000)
    said = {e.get_attribute("data-for"): e.inner_text() for e in page.locator("p.err").all()}
    assert set(said) == {"photo0", "photo1", "photo2"}, said
    assert said["photo0"].startswith("写真1は中身が空のファイル（0バイト）で"), said["photo0"]
    assert "選ぶか、別の写真を選んでください" in said["photo0"]
    assert said["photo1"].startswith("写真2は、ポータルで読める写真ではありません"), said["photo1"]
    assert said["photo2"].startswith("写真3はiPhoneの「HEIC」形式の写真で"), said["photo2"]
    assert page.input_value("#f-caption3") == "一言4"  # the typing is kept
    assert movies.movie_jobs(portal.app.state.engine, None) == []
    assert list((tmp_path / "spool").glob("job-*")) == []  # nothing kept


def test_publish_says_the_movie_goes_on_the_public_page_before_and_after(portal, browser, tmp_path):
    page = movie_maker_page(browser, portal.url)
    for i in range(3):
        page.set_input_files(f"#f-photo{i}", str(photo(tmp_path / f"p{i}.jpg", i, size=(400, 300))))
        page.fill(f"#f-caption{i}", f"夏まつり{i + 1}")
    page.click("#movie-send")
    page.wait_for_url("**/staff/movies/*", timeout=60_000)
    job = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#publish", timeout=180_000)
    before = page.locator("#publish-note").inner_text()
    assert before.startswith("「公開する」を押すと、このムービーはすぐにプロジェクトの公開ページに載り"), before
    assert "だれでも見られる" in before and "了解を得てから" in before and "プレイリスト" in before
    note, button = page.locator("#publish-note").bounding_box(), page.locator("#publish").bounding_box()
    assert note and button and note["y"] < button["y"]  # read before the button, not after
    page.click("#publish")
    page.wait_for_url(f"**/staff/movies/{job}?done=published")
    notice = page.locator("#notice").inner_text()
    assert notice.startswith("公開しました。プロジェクトの公開ページに載り、だれでも見られるようになりました。"), notice
    assert "まだ端末では流れていません" in notice
    assert page.locator("#publish-note").count() == 0
    page.click("#public-page")
    page.wait_for_url("**/p/kodomo-shokudo")
    assert page.locator("video#movie").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]

    # Not in a playlist yet: the list says published, the page who to tell.
    page.goto(f"{portal.url}/staff/movies")
    assert page.locator(f"tr[data-movie='{job}'] td").nth(1).inner_text() == "公開済み"
    # The center staff put it in the playlist all kiosks run.
    eng = portal.app.state.engine
    sha = portal.app.state.jobs.get(job)["sha256"]
    configstore.republish(eng, playlist=[{"sha256": sha, "name": "夏まつり", "project": "kodomo-shokudo"}])
    page.reload()
    assert page.locator(f"tr[data-movie='{job}'] td").nth(1).inner_text() == "公開済み・端末で流れています"
    page.goto(f"{portal.url}/staff/movies/{job}")
    said = page.locator("#on-kiosks").inner_text()
    assert said == "このムービーは公開済みで、端末のプレイリストに入っています。端末で流れます。", said
    assert "職員にお知らせください" not in page.locator("main").inner_text()
