"""A group editor (not an engineer, reading Japanese) makes a movie for the lobby kiosks from a few photos,
following only what the pages say, in headless Chromium at a laptop size and at a phone size.

- An iPhone's HEIC photo copied to a PC is named as such, with what to do, not "not a photo".
- After Publish the editor is told the movie is not on the kiosks yet and that the center staff put it
  in a kiosk playlist (tell them), and the list of movies says 公開済み, not a column heading.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from photos import photo
from sync_helpers import needs_chromium, staff_link, staff_page

LAPTOP, PHONE = (1280, 800), (390, 844)

pytestmark = needs_chromium


@pytest.fixture
def portal(editor_site):  # noqa: ANN001, ANN201 - conftest's portal of one group and its editor
    return editor_site


def heic(path: Path) -> Path:
    """The start of an iPhone's HEIC file (ISO-BMFF, major brand ``heic``): what Pillow cannot read."""
    body = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    path.write_bytes(len(body).to_bytes(4, "big") + body + b"\x00" * 4000)
    return path


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_an_iphone_heic_photo_is_named_with_what_to_do(portal, browser, tmp_path, size):
    pics = [photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    page = staff_page(browser, portal.url, "editor1", size=size)
    staff_link(page, "/staff/movies")
    page.wait_for_url("**/staff/movies")
    page.set_input_files("#f-photo0", str(pics[0]))
    page.set_input_files("#f-photo1", str(heic(tmp_path / "IMG_0412.HEIC")))
    page.set_input_files("#f-photo2", str(pics[2]))
    page.fill("#f-caption1", "畑で野菜を育てました")
    page.click("#movie-send")
    page.wait_for_selector("p.err[data-for=photo1]", timeout=60_000)
    said = page.locator("p.err[data-for=photo1]").inner_text()
    assert said.startswith("写真2はiPhoneの「HEIC」形式の写真で"), said
    assert "JPEG" in said and "選んでください" in said
    assert page.locator("p.err").count() == 1
    assert page.input_value("#f-caption1") == "畑で野菜を育てました"  # the typing is kept
    assert page.evaluate("document.documentElement.scrollWidth") <= size[0]


def test_after_publishing_the_editor_is_told_how_the_movie_reaches_the_kiosks(portal, browser, tmp_path):
    pics = [photo(tmp_path / f"p{i}.jpg", i) for i in range(3)]
    page = staff_page(browser, portal.url, "editor1", size=PHONE)
    staff_link(page, "/staff/movies")
    page.wait_for_url("**/staff/movies")
    for i, caption in enumerate(["畑で野菜を育てました", "子どもたちと一緒に収穫", "ありがとうございました"]):
        page.set_input_files(f"#f-photo{i}", str(pics[i]))
        page.fill(f"#f-caption{i}", caption)
    page.fill("#f-name", "秋の収穫")
    page.click("#movie-send")
    page.wait_for_url("**/staff/movies/*", timeout=60_000)
    job = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#publish", timeout=180_000)
    page.click("#publish")
    page.wait_for_url(f"**/staff/movies/{job}?done=published")
    notice = page.locator("#notice").inner_text()
    assert notice.startswith("公開しました。"), notice
    assert "まだ端末では流れていません" in notice and "職員にお知らせください" in notice
    hint = page.locator("p.hint").inner_text()
    assert "端末で流れます" in hint and "職員にお知らせください" in hint
    staff_link(page, "/staff/movies")
    page.wait_for_url("**/staff/movies")
    assert page.locator(f"tr[data-movie='{job}'] td").nth(1).inner_text() == "公開済み"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
