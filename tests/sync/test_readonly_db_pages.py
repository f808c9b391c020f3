"""A staff member saving a form while the portal's SQLite database cannot take it: its disk turned read-only under
the running portal (a real ext4 on a loop device that the kernel remounts read-only on an error), its disk full (a
real small tmpfs), or the database busy (another writer holding SQLite's write lock). The browser gets a page in
plain Japanese that says what happened and what to do, with the status the portal's storage faults use (503
read-only, 507 full, 503 busy), and shows back what was typed with a button that sends it again; the kiosks and the
pages' scripts (JSON callers) keep their JSON answers and machine codes. Not the short JSON "database busy or
unreachable; retry" for a disk that will not come back by itself.

Real HTTP on loopback, real headless Chromium (Playwright), real file systems; mounting needs root (CI has it),
elsewhere the tests are skipped, saying so.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sync"))  # the portal tests' helpers

from staff_words_check import assert_plain_japanese, messages  # noqa: E402
from sync_helpers import CHROMIUM, CHROMIUM_ARGS, PASSWORD, needs_chromium, staff_page, staff_session  # noqa: E402

from server_sync import catalog, mediajobs  # noqa: E402
from server_sync.db import projects  # noqa: E402
from server_sync.embedded import PortalHandle, start_portal  # noqa: E402
from server_sync.staff import add_user  # noqa: E402
from tests.mounts import failing_ext4, fill, small_tmpfs  # noqa: E402

pytestmark = needs_chromium

TITLE = "田んぼの学校 (土曜の朝)"  # what the staff member typed, with characters HTML must escape
SUMMARY = "稲刈り & 収穫祭\n<みんなで> \"雨天決行\""
BUSY_JSON = {"error": "unavailable", "reason": "database busy or unreachable; retry"}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _portal(db: Path, spool: Path) -> PortalHandle:
    handle = start_portal(f"sqlite:///{db}", spool_dir=str(spool))
    engine = handle.app.state.engine
    catalog.import_catalog(engine, {"groups": [{"id": "group-a", "name": "Aの会"}], "projects": []})
    add_user(engine, "staff1", PASSWORD, "staff")
    return handle


def _fill_form(page: Any, url: str, project_id: str) -> None:
    page.goto(url + "/staff/projects/new")
    page.fill("#f-id", project_id)
    page.fill("#f-title", TITLE)
    page.fill("#f-summary", SUMMARY)
    page.select_option("#f-group_id", "group-a")
    page.select_option("#f-area", "green")
    page.fill("#f-goal_yen", "30000")


def _submit(page: Any) -> Any:
    with page.expect_navigation() as nav:
        page.click("#project-form button[type=submit]")
    return nav.value


def _form(token: str, project_id: str) -> dict[str, str]:
    return {"csrf": token, "editing": "", "id": project_id, "title": TITLE, "summary": SUMMARY,
            "group_id": "group-a", "area": "green", "goal_yen": "30000", "active": "1"}


def _stored(handle: PortalHandle, project_id: str) -> Any:
    with handle.app.state.engine.connect() as conn:
        row = conn.execute(select(projects.c.title, projects.c.summary).where(projects.c.id == project_id)).first()
    return None if row is None else (row.title, row.summary.replace("\r\n", "\n"))


def _shown_back(page: Any) -> None:
    """What was typed is on the page, as typed (escaped, both lines), and the password never is; the page's
    problem messages are plain Japanese (no English, no path, no field name)."""
    assert_plain_japanese(messages(page.content()))
    typed = page.locator("#db-fault dl.typed").inner_text().replace("\r\n", "\n")
    assert TITLE in typed and SUMMARY in typed, typed
    assert PASSWORD not in page.content()


def test_a_disk_gone_read_only_under_the_portal_gives_the_staff_member_a_plain_page(tmp_path: Path,
                                                                                   browser: Any) -> None:
    """The kernel turns the database's disk read-only while the portal runs (SQLite then says only "disk I/O
    error"): saving a project in the browser shows a 503 page that says the portal cannot save, that nothing was
    saved, that the disk may be read-only and to tell the administrator, not to retry now; what was typed is shown
    back. A script or kiosk asking for JSON gets the storage fault's JSON ("no_room", 503), not "busy; retry"."""
    with failing_ext4(tmp_path / "data") as trigger:
        handle = _portal(tmp_path / "data" / "portal.db", tmp_path / "spool")
        try:
            page = staff_page(browser, handle.url, "staff1")
            s, token = staff_session(handle.url, "staff1")
            _fill_form(page, handle.url, "tanbo")
            trigger.write_text("test: the portal's disk is failing\n")
            resp = _submit(page)
            assert resp.status == mediajobs.READ_ONLY == 503, (resp.status, page.content()[:500])
            assert "text/html" in resp.headers["content-type"] and resp.headers.get("retry-after")
            box = page.locator("#db-fault")
            assert box.get_attribute("data-kind") == "read_only"
            text = box.inner_text()
            assert "保存できません" in text and "何も保存されていません" in text, text
            assert "読み取り専用" in text and "管理者" in text and "すぐにやり直しても保存できません" in text, text
            assert "混み合って" not in text and "busy" not in page.content(), text
            assert page.locator("html").get_attribute("lang") == "ja"
            _shown_back(page)
            for accept in ("application/json", "*/*"):  # the pages' scripts, and clients that name no type
                r = s.post(handle.url + "/staff/projects", data=_form(token, "tanbo2"), timeout=10,
                           headers={"Accept": accept}, allow_redirects=False)
                assert (r.status_code, r.json()["error"]) == (503, "no_room"), r.text
                assert r.headers["content-type"].startswith("application/json")
            assert _stored(handle, "tanbo") is None
        finally:
            handle.stop()


def test_a_full_database_disk_gives_a_507_page_and_the_typed_form_is_saved_once_there_is_room(
        tmp_path: Path, browser: Any) -> None:
    """The disk under the database is full: a 507 page that says the disk is full (not "busy"), with what was
    typed; once the administrator has made room, the page's "send it again" button saves exactly what was typed."""
    with small_tmpfs(tmp_path / "db", "8m") as dbdir:
        handle = _portal(dbdir / "portal.db", tmp_path / "spool")
        try:
            page = staff_page(browser, handle.url, "staff1")
            s, token = staff_session(handle.url, "staff1")
            _fill_form(page, handle.url, "tanbo")
            with handle.app.state.engine.connect() as conn:  # every later write needs new room
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(dbdir)
            resp = _submit(page)
            assert resp.status == mediajobs.FULL == 507, (resp.status, page.content()[:500])
            box = page.locator("#db-fault")
            assert box.get_attribute("data-kind") == "full"
            text = box.inner_text()
            assert "いっぱい" in text and "管理者" in text and "何も保存されていません" in text, text
            _shown_back(page)
            r = s.post(handle.url + "/staff/projects", data=_form(token, "tanbo2"), timeout=10,
                       headers={"Accept": "application/json"}, allow_redirects=False)
            assert (r.status_code, r.json()["error"]) == (507, "no_room"), r.text
            filler.unlink()
            with page.expect_navigation():
                page.click("#send-again button")
            assert re.search(r"/staff/projects\?done=saved$", page.url), page.url
            assert _stored(handle, "tanbo") == (TITLE, SUMMARY)
        finally:
            handle.stop()


def test_a_busy_database_gives_browsers_a_retry_page_and_kiosks_the_same_json(tmp_path: Path, browser: Any) -> None:
    """Another writer holds SQLite's write lock longer than the portal waits: the browser's page says the portal is
    busy and to try again in a minute (not that the disk is broken), with Retry-After: 2 and what was typed; a JSON
    caller keeps {"error": "unavailable"}. Once the lock is gone, "send it again" saves what was typed."""
    handle = _portal(tmp_path / "portal.db", tmp_path / "spool")
    engine = handle.app.state.engine

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn: Any, _rec: Any) -> None:  # the portal waits 30 s for the lock; this test 0.3 s
        dbapi_conn.execute("PRAGMA busy_timeout=300")

    engine.dispose()
    try:
        page = staff_page(browser, handle.url, "staff1")
        s, token = staff_session(handle.url, "staff1")
        _fill_form(page, handle.url, "tanbo")
        other = sqlite3.connect(tmp_path / "portal.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process writing
            resp = _submit(page)
            assert resp.status == 503 and resp.headers.get("retry-after") == "2", (resp.status, page.content()[:500])
            box = page.locator("#db-fault")
            assert box.get_attribute("data-kind") == "busy"
            text = box.inner_text()
            assert "混み合って" in text and "もう一度お試しください" in text and "保存されませんでした" in text, text
            assert "読み取り専用" not in text and "いっぱい" not in text, text
            _shown_back(page)
            for accept in ("application/json", "*/*"):  # the pages' scripts, and clients that name no type
                r = s.post(handle.url + "/staff/projects", data=_form(token, "tanbo2"), timeout=10,
                           headers={"Accept": accept}, allow_redirects=False)
                assert (r.status_code, r.json(), r.headers.get("Retry-After")) == (503, BUSY_JSON, "2"), r.text
        finally:
            other.execute("ROLLBACK")
            other.close()
        with page.expect_navigation():
            page.click("#send-again button")
        assert re.search(r"/staff/projects\?done=saved$", page.url), page.url
        assert _stored(handle, "tanbo") == (TITLE, SUMMARY)
        assert _stored(handle, "tanbo2") is None
    finally:
        handle.stop()
