"""The movie maker end to end, in headless Chromium, with a real kiosk process (SQLite and PostgreSQL).

A group editor makes a movie from six photos with captions: a 10,000-pixel-wide photo and a 26 MB one
are refused beside their own fields first, without losing the other photos or the captions; they watch
the preview play and publish it. Center staff put it in the playlist for all kiosks. A real ``kiosk run``
process (headless, simulated reader on a socket) enrolls, adopts the config and plays the movie: a frame
of its screen capture (SIGUSR1 → DATA_DIR/screen.png), above the attract band, matches a frame of the
movie and not the frames far from it. A card tapped there gives to the project, and its public page
shows the donation and the movie with its poster frame.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from photos import photo
from sync_helpers import (
    E2E_KIOSK,
    PASSWORD,
    e2e_kiosk_config,
    free_port,
    needs_chromium,
    screen_capture,
    sim_line,
    staff_link,
    staff_page,
    start_kiosk,
    stop_kiosk,
    wait_adopted,
    wait_for,
)

from server_sync import catalog, configstore, enroll, movies, queries
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (320, 180)
VISIBLE_ROWS = int(SIZE[1] * 0.5)  # above the attract screen's opaque band (kiosk/ui/screens/attract.py)
CAPTIONS = ["畑で野菜を育てました", "子どもたちと一緒に収穫", "みんなで食べるとおいしい！", "地域の皆さんに感謝",
            "次は秋のお祭りです", "ありがとうございました"]
CATALOG = {"groups": [{"id": "kodomo-club", "name": "子ども応援団"}],
           "projects": [{"id": "kodomo-shokudo", "group_id": "kodomo-club", "title": "みんなのこども食堂",
                         "summary": "毎週土曜の食堂です", "area": "children", "goal_yen": 50000}]}

pytestmark = needs_chromium


def movie_frames(data: bytes, tmp_path: Path) -> np.ndarray:
    """Every frame of the movie as RGB, shape (n, h, w, 3)."""
    import av

    path = tmp_path / "published.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.mark.slow
def test_an_editor_makes_a_movie_staff_play_it_on_a_real_kiosk_and_a_gift_there_shows(db_url, tmp_path, browser):
    import pygame

    portal = start_portal(db_url, media_size=SIZE, movie_size=SIZE, spool_dir=str(tmp_path / "spool"), next_sync_s=5)
    kiosk = None
    try:
        url, engine = portal.url, portal.app.state.engine
        catalog.import_catalog(engine, CATALOG)
        add_user(engine, "editor1", PASSWORD, "editor", "kodomo-club")
        add_user(engine, "staff1", PASSWORD, "staff")
        pics = [photo(tmp_path / f"p{i}.jpg", i, size=(1600, 1000) if i != 2 else (900, 1200)) for i in range(6)]
        wide = photo(tmp_path / "wide.png", 7, size=(10_000, 300), fmt="PNG")
        heavy = tmp_path / "heavy.jpg"
        with open(heavy, "wb") as f:
            f.write(pics[0].read_bytes())
            f.truncate(26 * 1024 * 1024)

        # --- the group editor: six photos with captions; two bad ones first ------------------------------
        editor = staff_page(browser, url, "editor1")
        staff_link(editor, "/staff/movies")
        editor.wait_for_url("**/staff/movies")
        editor.select_option("#f-project", "kodomo-shokudo")
        for i in range(6):
            editor.set_input_files(f"#f-photo{i}", str(pics[i]))
            editor.fill(f"#f-caption{i}", CAPTIONS[i])
        editor.set_input_files("#f-photo5", str(heavy))  # the size is checked before anything is sent
        editor.click("#movie-send")
        too_large = editor.locator("p.err[data-for=photo5]").inner_text()
        assert too_large.startswith("写真6が大きすぎます。写真1枚25 MBまでです。"
                                    "スマートフォンやパソコンで小さくしてから、もう一度選んでください。"), too_large
        editor.set_input_files("#f-photo5", str(pics[5]))
        editor.set_input_files("#f-photo3", str(wide))  # this one only the portal can judge
        editor.click("#movie-send")
        editor.wait_for_selector("p.err[data-for=photo3]")
        refused = editor.locator("p.err[data-for=photo3]").inner_text()
        assert refused.startswith("写真4は細長すぎます（10,000 × 300 ピクセル）")
        assert editor.locator("p.err").count() == 1
        assert editor.evaluate("document.getElementById('f-photo0').files.length") == 1  # nothing chosen is lost
        assert editor.input_value("#f-caption3") == CAPTIONS[3]
        assert not list((tmp_path / "spool").glob("job-*"))
        editor.set_input_files("#f-photo3", str(pics[3]))
        editor.click("#movie-send")
        editor.wait_for_url("**/staff/movies/*", timeout=60_000)
        job = editor.url.rsplit("/", 1)[1]
        editor.wait_for_selector("#preview", timeout=180_000)  # the page follows the job, then shows the preview
        assert editor.evaluate("document.documentElement.scrollWidth") <= 390  # a phone: no sideways scrolling

        # --- the preview plays in the browser ----------------------------------------------------------------
        # (evaluate, not wait_for_function: the staff pages' CSP forbids the eval that one uses)
        wait_for(lambda: editor.evaluate("document.getElementById('preview').readyState >= 2"), 30,
                 "the preview to load")
        assert abs(editor.evaluate("document.getElementById('preview').duration") - 27.0) < 0.1
        editor.evaluate("document.getElementById('preview').play()")
        wait_for(lambda: editor.evaluate("document.getElementById('preview').currentTime > 1.0"), 30,
              "the preview to play")
        editor.click("#publish")
        editor.wait_for_url(f"**/staff/movies/{job}?done=published")
        assert "公開しました" in editor.locator("#notice").inner_text()
        pub = movies.published_movie(engine, "kodomo-shokudo")
        assert pub is not None and pub["poster_url"]
        sha = pub["sha256"]
        assert not list((tmp_path / "spool").glob("job-*"))

        # --- center staff: the movie in the playlist for all kiosks ------------------------------------------
        staffer = staff_page(browser, url, "staff1")
        staffer.goto(url + "/staff/playlists?target=all")
        staffer.select_option("#f-i0_clip", sha)
        staffer.select_option("#f-i0_project", "kodomo-shokudo")
        staffer.click("#publish")
        staffer.wait_for_url("**/staff/playlists?done=published")
        version = int(staffer.locator("tr[data-target=all]").get_attribute("data-version") or 0)

        # --- a real kiosk process adopts it and plays it -------------------------------------------------------
        sim_port = free_port()
        config = e2e_kiosk_config(tmp_path, url, sim_port, SIZE)
        kiosk = start_kiosk(config, url, enroll.issue_code(engine, E2E_KIOSK, 1), tmp_path / "kiosk.log")
        wait_adopted(engine, version, kiosk)

        data, _ = configstore.get_media(engine, sha)  # type: ignore[misc]
        frames = movie_frames(data, tmp_path)[:, :VISIBLE_ROWS].astype(np.int16)
        assert len(frames) == 27 * 30
        best = None
        for _ in range(60):
            shot = pygame.surfarray.array3d(pygame.image.load(str(screen_capture(kiosk, tmp_path)))).transpose(1, 0, 2)
            top = shot[:VISIBLE_ROWS].astype(np.int16)
            diffs = np.abs(frames - top).mean(axis=(1, 2, 3))
            i = int(diffs.argmin())
            far = np.r_[diffs[: max(0, i - 45)], diffs[i + 45:]]  # frames more than 1.5 s away
            if diffs[i] < 8 and far.min() > 3 * diffs[i] + 4:
                best = (i, float(diffs[i]), float(far.min()))
                break
            time.sleep(0.5)
        assert best is not None, f"the kiosk's screen never matched a frame of the movie (last: {i}, {diffs[i]:.1f})"

        # --- a donation there reaches the project's public page, with the movie ----------------------------
        assert sim_line(sim_port, "tap suica idm=0123456789abcdef balance=5000 hold=2.5").startswith("ok")

        def given() -> dict | None:
            p = next((p for p in queries.projects(engine) if p["id"] == "kodomo-shokudo"), None)
            return p if p and p["count"] == 1 else None
        p = wait_for(given, 60, "the donation to reach the portal", kiosk)
        assert p["total_yen"] == 100
        public = browser.new_page()
        public.goto(url + "/p/kodomo-shokudo")
        assert "¥100" in public.content()
        assert public.locator("video#movie").get_attribute("src") == pub["url"]
        assert public.locator("video#movie").get_attribute("poster") == pub["poster_url"]
    finally:
        stop_kiosk(kiosk, tmp_path / "kiosk.log")
        portal.stop()
