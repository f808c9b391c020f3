"""Review 51 of the movie maker, as a group editor meets it (real portal on loopback with a real SQLite file, the
real photo checker and renderer, photos made with Pillow):

- a caption with an emoji, a circled number or an old-style kanji (髙, 﨑) was accepted and came out in the movie as
  empty boxes (tofu: the vendored Noto Sans JP subset has no glyph for them), in a movie played in the lobby: the
  form now names those characters beside the caption, with the typing and the photos kept;
- two editors on one draft: one publishes it, the other (on a page loaded before) presses Discard and read "Not
  allowed: your role does not allow this page or item", which blamed their role; now the movie's page says it was
  published meanwhile and kept;
- a movie interrupted by a portal restart (or stopped after 30 minutes) said "try again, or with other photos":
  not the photos' fault, so it now says to try again and whom to tell, as for the renderer's own error.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from photos import photo
from sync_helpers import PASSWORD, movie_maker_page, needs_chromium, staff_session

from server_sync import catalog, glyphs, mediajobs, movies
from server_sync.db import media_info, media_jobs, writing
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (192, 108)
CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{"id": "proj-a", "group_id": "group-a", "title": "Aのプロジェクト", "area": "green",
                         "goal_yen": 1000}]}


@pytest.fixture
def op(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", media_size=SIZE, movie_size=SIZE,
                          spool_dir=str(tmp_path / "spool"))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, CATALOG)
    add_user(engine, "editor-a", PASSWORD, "editor", "group-a")
    add_user(engine, "editor-a2", PASSWORD, "editor", "group-a")
    yield handle
    handle.stop()


def _send(s: requests.Session, url: str, token: str, files: dict[str, Path], captions: dict[int, str]
          ) -> requests.Response:
    parts = {k: (v.name, v.read_bytes(), "image/jpeg") for k, v in files.items()}
    data = {"csrf": token, "project": "proj-a", **{f"caption{i}": c for i, c in captions.items()}}
    return s.post(url + "/staff/movies", data=data, files=parts, timeout=120, headers={"Accept": "application/json"})


def test_the_portal_reads_the_same_letters_the_renderer_draws_captions_with() -> None:
    """The form's check reads the letters of the very font files the renderer draws captions with (bold and
    regular), not some other copy."""
    from fontTools.ttLib import TTFont

    from kiosk.player.moviemaker import FONT, FONT_REGULAR

    letters = glyphs.font_letters()
    assert letters is not None and len(letters) > 6000
    assert letters == set(TTFont(str(FONT)).getBestCmap()) == set(TTFont(str(FONT_REGULAR)).getBestCmap())


def test_what_the_check_refuses_is_drawn_as_a_box_and_what_it_lets_through_is_not() -> None:
    """Drawn by the renderer's own caption code: each refused character is an empty box (the font's .notdef, the
    same picture for all of them), each accepted one (♪, 〜, a space of any width, an emoji's invisible
    variation selector) is not."""
    from kiosk.player.moviemaker import caption_band

    def ink(text: str) -> bytes:
        band, _ = caption_band(text, (640, 360))
        return band.tobytes()

    box = ink("\U0001f389")
    for ch in ("❤", "髙", "①", "ｱ", "©", "\U00020bb7"):
        assert glyphs.undrawable(f"あ{ch}い") == [ch]
        assert ink(ch) == box, ch
    for text in ("ありがとう♪〜", "あ\u00a0い", "あ\u3000い", "あ\ufe0fい", "あ\u200dい", "Ｔシャツ ＆ ☆★"):
        assert glyphs.undrawable(text) == [], text
    assert ink("♪") != box and ink("〜") != box


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_caption_with_emoji_or_a_rare_kanji_is_refused_naming_them(op, tmp_path: Path, lang: str) -> None:
    s, token = staff_session(op.url, "editor-a", lang=lang)
    files = {f"photo{i}": photo(tmp_path / f"g{i}.jpg", i, size=(400, 300)) for i in range(3)}
    captions = {0: "夏祭り🎉楽しかった❤️", 1: "髙橋さんのあいさつ①", 2: "みんなでカレー♪〜"}
    r = _send(s, op.url, token, files, captions)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert set(errors) == {"caption0", "caption1"}  # ♪ and 〜 are in the movie's letters
    if lang == "ja":
        assert errors["caption0"].startswith("このムービーでは次の文字を表示できません：🎉 ❤。絵文字")
        assert errors["caption1"].startswith("このムービーでは次の文字を表示できません：髙 ①。")
        assert "髙は高に" in errors["caption1"]
    else:
        assert errors["caption0"].startswith("The movie cannot show these characters: 🎉 ❤. Emoji")
    assert not list((tmp_path / "spool").glob("*"))  # nothing kept on the portal: the editor's page keeps it all
    assert movies.movie_jobs(op.app.state.engine, None) == []


@needs_chromium
def test_the_emoji_message_appears_beside_the_caption_with_the_typing_and_photos_kept(editor_site, browser,
                                                                                       tmp_path: Path) -> None:
    pics = [photo(tmp_path / f"p{i}.jpg", i, size=(400, 300)) for i in range(3)]
    page = movie_maker_page(browser, editor_site.url)
    captions = ["畑で野菜を育てました", "収穫😊できた", "ありがとう"]
    for i, (pic, caption) in enumerate(zip(pics, captions, strict=True)):
        page.set_input_files(f"#f-photo{i}", str(pic))
        page.fill(f"#f-caption{i}", caption)
    page.click("#movie-send")
    page.wait_for_selector("p.err[data-for=caption1]", timeout=60_000)
    assert page.locator("p.err[data-for=caption1]").inner_text().startswith(
        "このムービーでは次の文字を表示できません：😊。")
    assert page.locator("p.err").count() == 1
    assert page.input_value("#f-caption1") == captions[1]
    assert page.evaluate("[0, 1, 2].map(i => document.querySelector('#f-photo' + i).files.length)") == [1, 1, 1]


def _wait(s: requests.Session, url: str, job: str) -> dict:
    for _ in range(1200):
        j = s.get(f"{url}/staff/movies/{job}/job", timeout=10).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.05)
    raise AssertionError("movie job did not finish")


def test_discard_after_another_editor_published_says_so_and_keeps_the_movie(op, tmp_path: Path) -> None:
    a, token_a = staff_session(op.url, "editor-a")
    b, token_b = staff_session(op.url, "editor-a2")
    files = {f"photo{i}": photo(tmp_path / f"g{i}.jpg", i, size=(400, 300)) for i in range(3)}
    r = _send(a, op.url, token_a, files, {0: "一枚目"})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert _wait(a, op.url, job)["status"] == "done"
    draft = b.get(f"{op.url}/staff/movies/{job}", timeout=10).text  # B has the draft open, Discard on it
    assert f'action="/staff/movies/{job}/discard"' in draft
    assert a.post(f"{op.url}/staff/movies/{job}/publish", data={"csrf": token_a}, timeout=10).status_code == 200
    r = b.post(f"{op.url}/staff/movies/{job}/discard", data={"csrf": token_b}, timeout=10)
    assert r.status_code == 200, r.status_code
    assert "ロールでは" not in r.text and "許可" not in r.text
    assert ("このムービーは削除されませんでした。その間に公開されて（同じグループの別の編集者が公開したのかも"
            "しれません）、プロジェクトの公開ページに載っています。") in r.text
    assert r.url.endswith(f"/staff/movies/{job}?done=not_discarded") and 'id="preview"' in r.text
    with op.app.state.engine.connect() as conn:
        assert conn.execute(media_info.select()).first() is not None
    assert op.app.state.jobs.get(job)["status"] == "done"


@pytest.mark.parametrize("why", [mediajobs.INTERRUPTED, mediajobs.TOO_LONG])
def test_a_movie_interrupted_or_stopped_does_not_suggest_other_photos(op, why: str) -> None:
    now = time.time_ns() // 1_000_000
    job_id = "e" * 24
    with writing(op.app.state.engine) as conn:
        conn.execute(media_jobs.insert().values(id=job_id, status="failed", progress=40, message=why, name="m",
                                                group_id="group-a", project_id="proj-a", uploaded_by="editor-a",
                                                kind="movie", created_ms=now, updated_ms=now))
    s, _ = staff_session(op.url, "editor-a")
    said = s.get(f"{op.url}/staff/movies/{job_id}/job", timeout=10).json()["message"]
    assert "別の写真" not in said, said
    assert said.startswith("ムービーを作れませんでした（") and said.endswith(
        "何も保存されていません。もう一度お試しください。"
        "くり返し起きるときは、センターの職員にお知らせください。"), said
    assert said in s.get(f"{op.url}/staff/movies/{job_id}", timeout=10).text
