"""The operator UI end to end, in headless Chromium, with a real kiosk process (on SQLite and PostgreSQL).

An administrator creates a group, a group editor and a center-staff user, and an enrollment code; the
editor adds a project (after a bad goal is refused in Japanese, with what they typed kept) and uploads
a movie that the portal transcodes in the background; staff put it in the playlist for all kiosks and
publish. A real ``kiosk run`` process (headless, simulated reader on a socket) enrolls with the code,
syncs, adopts the config, plays the new movie and shows the new title: both read from its own screen
capture (SIGUSR1 → DATA_DIR/screen.png), the title by comparing with the attract screen drawn by the
kiosk's renderer with that title (and not with the old one). A card tapped there gives to the new
project, and the portal's public project page shows it with its title and policy area.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from movies import solid_movie

from server_sync import queries
from server_sync.embedded import start_portal
from server_sync.staff import add_user

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SIZE = (320, 180)
MAGENTA = (230, 20, 200)
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _login(browser, url: str, user: str):  # noqa: ANN001, ANN202
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")  # a phone
    page = ctx.new_page()
    page.goto(url + "/staff/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff")
    return page


def _wait(pred, timeout_s: float, what: str, proc: subprocess.Popen | None = None):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the kiosk exited ({proc.returncode}) while waiting for {what}")
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _sim(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode() + b"\n")
        return s.makefile().readline().strip()


def _kiosk_config(tmp_path: Path, portal_url: str, sim_port: int) -> Path:
    from kiosk.config import load_config
    from kiosk.ops.local_files import ensure_secrets
    from kiosk.player import ensure_demo_media

    data = tmp_path / "kiosk-data"
    path = tmp_path / "kiosk.toml"
    path.write_text(f'''[kiosk]
id = "e2e-kiosk-1"
data_dir = "{data}"

[player]
display = "headless"
width = {SIZE[0]}
height = {SIZE[1]}

[reader]
backend = "sim"
sim_socket = "tcp:127.0.0.1:{sim_port}"
poll_interval_ms = 10
cooldown_ms = 0

[portal]
url = "{portal_url}"
sync_interval_s = 5

[[projects]]
id = "old-project"
title = "古いプロジェクト"
area = "town"

[[player.playlist]]
project = "old-project"
''', "utf-8")
    cfg = load_config(path)
    ensure_secrets(cfg)  # the kiosk's key, which enrollment registers
    ensure_demo_media(cfg, size=SIZE, seconds=0.5)  # something to play before the portal says otherwise
    return path


def _attract(title: str, backdrop_rgb: tuple[int, int, int], project_id: str, default_yen: int):  # noqa: ANN202
    """The attract screen as the kiosk draws it over a frame of the (one-colour) movie."""
    import pygame

    from kiosk.donation import flow
    from kiosk.ui.screens import ProjectInfo, ScreenContext, render

    pygame.font.init()
    s = pygame.Surface(SIZE)
    s.fill(backdrop_rgb)
    ctx = ScreenContext(projects={project_id: ProjectInfo(project_id, title, "", "子ども応援団", "children", 50_000)},
                        totals_yen={project_id: 0})
    render(flow.AttractScreen(project_id, default_yen, True, "ja"), s, 0, ctx=ctx)
    return s


def test_admin_editor_staff_and_a_real_kiosk(db_url, tmp_path, browser):
    import pygame

    from kiosk.ui import widgets as ui

    portal = start_portal(db_url, media_size=SIZE, spool_dir=str(tmp_path / "spool"), next_sync_s=5)
    kiosk = None
    try:
        url, engine = portal.url, portal.app.state.engine
        add_user(engine, "admin", PASSWORD)  # `kiosk-portal staff-add` makes the first administrator

        # --- the administrator: a group, its editor, a center-staff user, an enrollment code -------
        admin = _login(browser, url, "admin")
        assert admin.locator("html").get_attribute("lang") == "ja" and "ダッシュボード" in admin.content()
        admin.goto(url + "/staff/groups")
        admin.fill("#f-id", "kodomo-club")
        admin.fill("#f-name", "子ども応援団")
        admin.fill("#f-contact", "090-0000-1111")
        admin.click("#group-form button[type=submit]")
        admin.wait_for_url("**/staff/groups?done=saved")
        admin.goto(url + "/staff/users")
        for user, role in (("editor1", "editor"), ("staff1", "staff")):
            admin.fill("#f-username", user)
            admin.fill("#f-password", PASSWORD)
            admin.select_option("#f-role", role)
            admin.select_option("#f-group_id", "kodomo-club" if role == "editor" else "")
            admin.click("#user-form button[type=submit]")
            admin.wait_for_url("**/staff/users?done=saved")
        assert admin.locator("#users tr[data-user=editor1]").inner_text().count("団体編集者") == 1
        admin.goto(url + "/staff/kiosks")
        admin.fill("#f-kiosk_id", "e2e-kiosk-1")
        admin.click("form[action='/staff/kiosks/code'] button[type=submit]")
        code = admin.locator("#code").inner_text()
        assert len(code) == 14

        # --- the group editor: a project (a bad goal first), then a movie ------------------------------
        editor = _login(browser, url, "editor1")
        assert editor.locator("a[href='/staff/users']").count() == 0  # not an administrator's menu
        editor.goto(url + "/staff/projects/new")
        editor.fill("#f-id", "kodomo-shokudo")
        editor.fill("#f-title", "みんなのこども食堂")
        editor.fill("#f-summary", "毎週土曜の食堂です")
        editor.select_option("#f-area", "children")
        editor.fill("#f-goal_yen", "たくさん")
        editor.click("#project-form button[type=submit]")
        assert editor.locator("p.err[data-for=goal_yen]").inner_text() == "目標金額を1円以上の整数で入力してください。"
        assert editor.input_value("#f-title") == "みんなのこども食堂"  # nothing typed is lost
        assert editor.input_value("#f-summary") == "毎週土曜の食堂です"
        editor.fill("#f-goal_yen", "５０,０００")  # full-width digits and a comma, as typed on a Japanese phone
        editor.click("#project-form button[type=submit]")
        editor.wait_for_url("**/staff/projects?done=saved")
        assert "みんなのこども食堂" in editor.locator("#projects").inner_text()
        for path in ("/staff", "/staff/projects", "/staff/projects/new", "/staff/media"):
            editor.goto(url + path)  # a phone: the page never scrolls sideways (wide tables scroll in their box)
            assert editor.evaluate("document.documentElement.scrollWidth") <= 390, path

        movie = solid_movie(tmp_path / "kodomo.mp4", MAGENTA, size=(640, 360), seconds=2.0)
        editor.goto(url + "/staff/media")
        editor.select_option("#u-project", "kodomo-shokudo")
        editor.set_input_files("#u-file", str(movie))
        editor.click("#u-send")
        editor.wait_for_url("**/staff/media", timeout=120_000)  # the page moves on once the job is done
        editor.wait_for_selector("#media tr[data-sha]")
        sha = editor.locator("#media tr[data-sha]").first.get_attribute("data-sha")
        assert sha and len(sha) == 64 and "kodomo.mp4" in editor.locator("#media").inner_text()
        assert not list((tmp_path / "spool").glob("job-*"))  # spooled upload and output cleaned up

        # --- center staff: the playlist for all kiosks, published ------------------------------------
        staffer = _login(browser, url, "staff1")
        staffer.goto(url + "/staff/playlists")
        staffer.click("tr[data-target=all] a")
        staffer.select_option("#f-i0_clip", sha)
        staffer.select_option("#f-i0_project", "kodomo-shokudo")
        staffer.click("#publish")
        staffer.wait_for_url("**/staff/playlists?done=published")
        published = staffer.locator("tr[data-target=all] td").nth(1).inner_text()
        assert published.startswith("v")
        version = int(published[1:])

        # --- a real kiosk process: enroll with the code, run, sync, adopt ----------------------------
        sim_port = _free_port()
        config = _kiosk_config(tmp_path, url, sim_port)
        env = {**os.environ, "PYTHONPATH": os.getcwd(), "SDL_AUDIODRIVER": "dummy"}
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
        staffer.goto(url + "/staff/kiosks")
        assert f"v{version}（最新）" in staffer.locator("tr[data-kiosk='e2e-kiosk-1'] td.config").inner_text()
        # The running kiosk's heartbeat carries its terminal's own report (issue #13), here the simulator's.
        pay = staffer.locator("tr[data-kiosk='e2e-kiosk-1'] td.payment").inner_text()
        assert "使えます" in pay and "(sim)" in pay, pay
        for path in ("/staff", "/staff/kiosks", "/staff/playlists?target=all", "/staff/volunteer"):
            staffer.goto(url + path)
            assert staffer.evaluate("document.documentElement.scrollWidth") <= 390, path
        staffer.click("#lang")  # the English switch
        assert staffer.locator("html").get_attribute("lang") == "en" and "Kiosks" in staffer.content()

        # --- its screen: the new movie, the new title ------------------------------------------------
        screen = tmp_path / "kiosk-data" / "screen.png"
        reference = old = None
        for _ in range(60):
            screen.unlink(missing_ok=True)
            kiosk.send_signal(signal.SIGUSR1)
            _wait(screen.exists, 10, "a screen capture", kiosk)
            shot = pygame.image.load(str(screen))
            corner = shot.get_at((3, 3))[:3]  # above the attract band: the movie itself
            if all(abs(a - b) <= 40 for a, b in zip(corner, MAGENTA, strict=True)):
                reference = _attract("みんなのこども食堂", corner, "kodomo-shokudo", 100)
                old = _attract("古いプロジェクト", corner, "kodomo-shokudo", 100)
                if ui.compare_images(shot, reference).ok:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the kiosk never showed the new movie with the new title (last corner {corner})")
        assert not ui.compare_images(shot, old).ok  # the comparison can tell titles apart

        # --- a donation there reaches the project's public page and moves the dashboard's chart -----------
        staffer.goto(url + "/staff")
        chart_before = int(staffer.locator("#chart-daily").get_attribute("data-total-yen"))
        assert _sim(sim_port, "tap suica idm=0123456789abcdef balance=5000 hold=2.5").startswith("ok")

        def given() -> dict | None:
            p = next((p for p in queries.projects(engine) if p["id"] == "kodomo-shokudo"), None)
            return p if p and p["count"] == 1 else None
        p = _wait(given, 60, "the donation to reach the portal", kiosk)
        assert p["total_yen"] == 100 and p["area"] == "children"
        staffer.reload()
        assert int(staffer.locator("#chart-daily").get_attribute("data-total-yen")) == chart_before + 100
        today = staffer.locator("#chart-daily g.bar").last  # the kiosk's clock is the machine's: today's bar
        assert int(today.get_attribute("data-yen")) >= 100
        assert staffer.locator("#chart-goals g.goal[data-key=kodomo-shokudo]").get_attribute("data-total-yen") == "100"
        public = browser.new_page()
        public.goto(url + "/p/kodomo-shokudo")
        assert public.locator("h2").first.inner_text() == "みんなのこども食堂"
        assert public.locator("#area").inner_text() == "子ども・未来"
        assert public.locator("#group").inner_text() == "子ども応援団"
        assert "¥100" in public.content() and "毎週土曜の食堂です" in public.content()
        public.goto(url + "/")
        assert "みんなのこども食堂" in public.content()
    finally:
        if kiosk is not None:
            kiosk.terminate()
            try:
                assert kiosk.wait(30) == 0, (tmp_path / "kiosk.log").read_text()[-3000:]
            finally:
                if kiosk.poll() is None:
                    kiosk.kill()
        portal.stop()
