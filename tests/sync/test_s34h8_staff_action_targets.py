"""The staff actions record (docs/portal.md, "Staff actions record"): what an upload, the movie maker and a provider
file import were done to, and groups, pools and jobs shown by their names.

An uploaded video, a movie started in the movie maker and a provider (Square) file imported were recorded with an
empty "on what": an administrator could not tell which. Now the upload and the movie name their media job (the
portal's own ID, never the file's name or a caption), the import its provider and the days the file covers (never its
name nor a row of it). A group and a sponsor pool were shown by their ID (``midori-kai``); now by their name while the
portal has it, beside the ID, as a job is (by its video's name, as renamed since).

The real portal on loopback HTTP, SQLite and PostgreSQL, with real conversion and rendering (at a small size).
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from movies import solid_movie
from photos import photo
from sqlalchemy import select
from sync_helpers import PASSWORD, seed_playlist_center, staff_session

from server_sync import staff_actions
from server_sync.db import staff_actions as actions_table
from server_sync.embedded import start_portal
from server_sync.staff import add_user

SIZE = (192, 108)
SQUARE_HEADER = ["Date", "Time", "Time Zone", "Gross Sales", "Partial Refunds", "Total Collected", "Transaction ID",
                 "Payment ID", "Device Name", "Event Type"]


@pytest.fixture
def site(db_url: str, tmp_path: Path):
    handle = start_portal(db_url, media_size=SIZE, movie_size=SIZE, spool_dir=str(tmp_path / "spool"))
    yield handle
    handle.stop()


def rows(engine: Any) -> list[tuple[str, str, str, int]]:
    with engine.connect() as conn:
        got = conn.execute(select(actions_table.c.username, actions_table.c.action, actions_table.c.target,
                                  actions_table.c.status).order_by(actions_table.c.id)).all()
    return [(r[0], r[1], r[2], r[3]) for r in got]


def table_lines(page: str) -> list[str]:
    return re.findall(r"<tr data-action=.*?</tr>", page[page.index('<table id="actions">'):], flags=re.S)


def square_file() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(SQUARE_HEADER)
    for day, pid in (("2026-12-01", "sq-pay-secret-1"), ("2026-12-03", "sq-pay-secret-2")):
        w.writerow([day, "10:00:00", "Tokyo", "¥500", "¥0", "¥500", "tx-" + pid, pid, "center-1f", "Payment"])
    return ("\ufeff" + buf.getvalue()).encode()


def wait_done(s: requests.Session, url: str, job: str) -> dict[str, Any]:
    for _ in range(600):
        j: dict[str, Any] = s.get(f"{url}/staff/media-jobs/{job}", timeout=10).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.05)
    raise AssertionError("the upload's conversion did not finish")


def test_uploads_movies_and_imports_name_what_they_made_and_the_page_names_groups_and_pools(site, tmp_path):
    eng, url = site.app.state.engine, site.url
    seed_playlist_center(eng, users=())
    add_user(eng, "kanri", PASSWORD, "admin")
    s, token = staff_session(url, "kanri")

    group = s.post(url + "/staff/groups", data={"csrf": token, "editing": "", "id": "midori-kai", "name": "みどりの会",
                                                "description": "", "contact": ""}, allow_redirects=False, timeout=10)
    pool = s.post(url + "/staff/pools", data={
        "id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": "10000",
        "yen_per_point": "1", "per_kiosk_yen": "3000", "areas": ["green"], "start": "2026-04-01", "end": "",
        "action": "add", "csrf": token}, allow_redirects=False, timeout=10)
    assert (group.status_code, pool.status_code) == (303, 303)

    clip = solid_movie(tmp_path / "natsumatsuri-secret.mp4", (200, 40, 40), size=SIZE, seconds=0.5)
    head = {"X-CSRF-Token": token, "X-File-Name": clip.name, "Content-Type": "video/mp4"}
    no_project = s.post(url + "/staff/media-upload", data=clip.read_bytes(), headers=head, timeout=30)
    upload = s.post(url + "/staff/media-upload", data=clip.read_bytes(), headers={**head, "X-Project": "proj-a"},
                    timeout=30)
    assert (no_project.status_code, upload.status_code) == (422, 202), upload.text
    uploaded = upload.json()["job"]
    done = wait_done(s, url, uploaded)
    assert done["status"] == "done", done
    renamed = s.post(f"{url}/staff/media/{done['sha256']}", data={"csrf": token, "name": "夏まつりの記録",
                                                                   "project_id": "proj-a"},
                     allow_redirects=False, timeout=10)
    assert renamed.status_code == 303

    photos = {f"photo{i}": (f"p{i}.jpg", photo(tmp_path / f"p{i}.jpg", i, size=(320, 240)).read_bytes(),
                            "image/jpeg") for i in range(3)}
    form = {"csrf": token, "project": "proj-a", "name": "畑の一年", "caption0": "秘密のキャプション"}
    json_answer = {"Accept": "application/json"}
    too_few = s.post(url + "/staff/movies", data=form, files={"photo0": photos["photo0"]}, headers=json_answer,
                     timeout=30)
    movie = s.post(url + "/staff/movies", data=form, files=photos, headers=json_answer, timeout=30)
    assert (too_few.status_code, movie.status_code) == (422, 202), movie.text
    made = movie.json()["job"]

    imported = s.post(url + "/staff/reconciliation/provider", data={"csrf": token, "provider": "square"},
                      files={"file": ("square-export-secret.csv", square_file(), "text/csv")},
                      allow_redirects=False, timeout=10)
    assert imported.status_code == 303, imported.text[:500]

    got = rows(eng)[1:]  # after kanri's sign-in
    assert got == [("kanri", "/staff/groups", "midori-kai", 303), ("kanri", "/staff/pools", "midori-bank", 303),
                   ("kanri", "/staff/media-upload", "", 422), ("kanri", "/staff/media-upload", uploaded, 202),
                   ("kanri", "/staff/media/{sha}", done["sha256"], 303), ("kanri", "/staff/movies", "", 422),
                   ("kanri", "/staff/movies", made, 202),
                   ("kanri", staff_actions.PROVIDER_IMPORT, "square 2026-12-01 2026-12-03", 303)]
    stored = repr(rows(eng))
    for secret in ("natsumatsuri", "夏まつり", "畑の一年", "秘密", "square-export", "sq-pay-secret", "みどり", token):
        assert secret not in stored

    staff_actions.record(eng, "kanri", "/staff/groups", "kieta-kai", 303)  # a group the portal no longer has
    page = s.get(url + "/staff/actions", timeout=10).text
    gone, provider, movie_row, _, _, upload_row, _, pool_row, group_row = table_lines(page)[:9]  # newest first
    assert ">みどりの会</span> <code>midori-kai</code>" in group_row
    assert ">みどり銀行</span> <code>midori-bank</code>" in pool_row
    assert f">夏まつりの記録</span> <code>{uploaded}</code>" in upload_row  # its video's name, as renamed
    assert f">畑の一年</span> <code>{made}</code>" in movie_row  # the movie's name (being made: its job's)
    assert "Square 2026年12月1日 – 2026年12月3日" in provider and "<code>" not in provider
    assert "<td><code>kieta-kai</code></td>" in gone  # its ID alone

    english = staff_actions.shown(staff_actions.newest(eng), eng, "en")
    said = {(r["action"], r["target"]): r["target_name"] for r in english}
    assert said[("/staff/pools", "midori-bank")] == "Midori Bank"
    assert said[(staff_actions.PROVIDER_IMPORT, "square 2026-12-01 2026-12-03")] == "Square 1 Dec 2026 – 3 Dec 2026"
