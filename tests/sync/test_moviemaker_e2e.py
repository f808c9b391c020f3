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

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from photos import photo
from test_operator_e2e import ARGS, CHROMIUM, PASSWORD, _free_port, _kiosk_config, _login, _sim, _wait

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

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def movie_frames(data: bytes, tmp_path: Path) -> np.ndarray:
    """Every frame of the movie as RGB, shape (n, h, w, 3)."""
    import av

    path = tmp_path / "published.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


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
        editor = _login(browser, url, "editor1")
        editor.click("a[href='/staff/movies']")
        editor.wait_for_url("**/staff/movies")
        editor.select_option("#f-project", "kodomo-shokudo")
        for i in range(6):
            editor.set_input_files(f"#f-photo{i}", str(pics[i]))
            editor.fill(f"#f-caption{i}", CAPTIONS[i])
        editor.set_input_files("#f-photo5", str(heavy))  # the size is checked before anything is sent
        editor.click("#movie-send")
        assert editor.locator("p.err[data-for=photo5]").inner_text() == "写真6が大きすぎます。写真1枚25 MBまでです。"
        editor.set_input_files("#f-photo5", str(pics[5]))
        editor.set_input_files("#f-photo3", str(wide))  # this one only the portal can judge
        editor.click("#movie-send")
        editor.wait_for_selector("p.err[data-for=photo3]")
        refused = editor.locator("p.err[data-for=photo3]").inner_text()
        assert refused.startswith("写真4が大きすぎます（10,000 × 300 ピクセル）")
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
        _wait(lambda: editor.evaluate("document.getElementById('preview').readyState >= 2"), 30, "the preview to load")
        assert abs(editor.evaluate("document.getElementById('preview').duration") - 27.0) < 0.1
        editor.evaluate("document.getElementById('preview').play()")
        _wait(lambda: editor.evaluate("document.getElementById('preview').currentTime > 1.0"), 30,
              "the preview to play")
        editor.click("#publish")
        editor.wait_for_url(f"**/staff/movies/{job}?done=published")
        assert "公開しました" in editor.locator("#notice").inner_text()
        pub = movies.published_movie(engine, "kodomo-shokudo")
        assert pub is not None and pub["poster_url"]
        sha = pub["sha256"]
        assert not list((tmp_path / "spool").glob("job-*"))

        # --- center staff: the movie in the playlist for all kiosks ------------------------------------------
        staffer = _login(browser, url, "staff1")
        staffer.goto(url + "/staff/playlists?target=all")
        staffer.select_option("#f-i0_clip", sha)
        staffer.select_option("#f-i0_project", "kodomo-shokudo")
        staffer.click("#publish")
        staffer.wait_for_url("**/staff/playlists?done=published")
        version = int(staffer.locator("tr[data-target=all] td").nth(1).inner_text()[1:])

        # --- a real kiosk process adopts it and plays it -------------------------------------------------------
        sim_port = _free_port()
        config = _kiosk_config(tmp_path, url, sim_port)
        env = {**os.environ, "PYTHONPATH": os.getcwd(), "SDL_AUDIODRIVER": "dummy"}
        code = enroll.issue_code(engine, "e2e-kiosk-1", 1)
        r = subprocess.run([sys.executable, "-m", "kiosk", "enroll", "--config", str(config), "--portal", url,
                            "--code", code], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        log = open(tmp_path / "kiosk.log", "w")  # noqa: SIM115 - closed in finally
        kiosk = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config)], env=env,
                                 stdout=log, stderr=subprocess.STDOUT)

        def applied() -> bool:
            k = next((k for k in queries.fleet(engine) if k["id"] == "e2e-kiosk-1"), None)
            return k is not None and k["config_applied"] == version
        _wait(applied, 90, f"the kiosk to adopt config v{version}", kiosk)

        data, _ = configstore.get_media(engine, sha)  # type: ignore[misc]
        frames = movie_frames(data, tmp_path)[:, :VISIBLE_ROWS].astype(np.int16)
        assert len(frames) == 27 * 30
        screen = tmp_path / "kiosk-data" / "screen.png"
        best = None
        for _ in range(60):
            screen.unlink(missing_ok=True)
            kiosk.send_signal(signal.SIGUSR1)
            _wait(screen.exists, 10, "a screen capture", kiosk)
            shot = pygame.surfarray.array3d(pygame.image.load(str(screen))).transpose(1, 0, 2)
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
        assert _sim(sim_port, "tap suica idm=0123456789abcdef balance=5000 hold=2.5").startswith("ok")

        def given() -> dict | None:
            p = next((p for p in queries.projects(engine) if p["id"] == "kodomo-shokudo"), None)
            return p if p and p["count"] == 1 else None
        p = _wait(given, 60, "the donation to reach the portal", kiosk)
        assert p["total_yen"] == 100
        public = browser.new_page()
        public.goto(url + "/p/kodomo-shokudo")
        assert "¥100" in public.content()
        assert public.locator("video#movie").get_attribute("src") == pub["url"]
        assert public.locator("video#movie").get_attribute("poster") == pub["poster_url"]
    finally:
        if kiosk is not None:
            kiosk.terminate()
            try:
                assert kiosk.wait(30) == 0, (tmp_path / "kiosk.log").read_text()[-3000:]
            finally:
                if kiosk.poll() is None:
                    kiosk.kill()
        portal.stop()
