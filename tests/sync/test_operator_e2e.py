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

import time

import pytest
from movies import solid_movie
from sync_helpers import (
    E2E_KIOSK,
    PASSWORD,
    e2e_kiosk_config,
    free_port,
    needs_chromium,
    screen_capture,
    sim_line,
    staff_page,
    start_kiosk,
    stop_kiosk,
    wait_adopted,
    wait_for,
)

from server_sync import queries
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (320, 180)
MAGENTA = (230, 20, 200)

pytestmark = needs_chromium


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


@pytest.mark.slow
def test_admin_editor_staff_and_a_real_kiosk(db_url, tmp_path, browser):
    import pygame

    from kiosk.ui import widgets as ui

    portal = start_portal(db_url, media_size=SIZE, spool_dir=str(tmp_path / "spool"), next_sync_s=5)
    kiosk = None
    try:
        url, engine = portal.url, portal.app.state.engine
        add_user(engine, "admin", PASSWORD)  # `kiosk-portal staff-add` makes the first administrator

        # --- the administrator: a group, its editor, a center-staff user, an enrollment code -------
        admin = staff_page(browser, url, "admin")
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
        admin.fill("#f-kiosk_id", E2E_KIOSK)
        admin.click("form[action='/staff/kiosks/code'] button[type=submit]")
        code = admin.locator("#code").inner_text()
        assert len(code) == 14

        # --- the group editor: a project (a bad goal first), then a movie ------------------------------
        editor = staff_page(browser, url, "editor1")
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
        staffer = staff_page(browser, url, "staff1")
        staffer.goto(url + "/staff/playlists")
        staffer.click("tr[data-target=all] a")
        staffer.select_option("#f-i0_clip", sha)
        staffer.select_option("#f-i0_project", "kodomo-shokudo")
        staffer.click("#publish")
        staffer.wait_for_url("**/staff/playlists?done=published")
        published = staffer.locator("tr[data-target=all]")
        assert "さんが公開" in published.inner_text()  # when and by whom, not a version number
        version = int(published.get_attribute("data-version") or 0)

        # --- a real kiosk process: enroll with the code, run, sync, adopt ----------------------------
        sim_port = free_port()
        config = e2e_kiosk_config(tmp_path, url, sim_port, SIZE)
        kiosk = start_kiosk(config, url, code, tmp_path / "kiosk.log")
        wait_adopted(engine, version, kiosk)
        staffer.goto(url + "/staff/kiosks")
        assert staffer.locator(f"tr[data-kiosk='{E2E_KIOSK}'] td.config [data-config]").inner_text() == \
            "最新のプレイリストで動いています"
        # The running kiosk's heartbeat carries its terminal's own report (issue #13), here the simulator's.
        pay = staffer.locator(f"tr[data-kiosk='{E2E_KIOSK}'] td.payment").inner_text()
        assert "使えます" in pay and "(sim)" in pay, pay
        for path in ("/staff", "/staff/kiosks", "/staff/playlists?target=all", "/staff/volunteer"):
            staffer.goto(url + path)
            assert staffer.evaluate("document.documentElement.scrollWidth") <= 390, path
        staffer.click("#lang")  # the English switch
        assert staffer.locator("html").get_attribute("lang") == "en" and "Kiosks" in staffer.content()

        # --- its screen: the new movie, the new title ------------------------------------------------
        reference = old = None
        for _ in range(60):
            shot = pygame.image.load(str(screen_capture(kiosk, tmp_path)))
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
        assert sim_line(sim_port, "tap suica idm=0123456789abcdef balance=5000 hold=2.5").startswith("ok")

        def given() -> dict | None:
            p = next((p for p in queries.projects(engine) if p["id"] == "kodomo-shokudo"), None)
            return p if p and p["count"] == 1 else None
        p = wait_for(given, 60, "the donation to reach the portal", kiosk)
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
        stop_kiosk(kiosk, tmp_path / "kiosk.log")
        portal.stop()
