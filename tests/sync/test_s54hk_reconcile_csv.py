"""The reconciliation's 「会計用 CSV」 as an accountant who has only the CSV reads it, and its addresses as an auditor
scripting downloads types them (server_sync/reconcile.py):

- a day's ``total`` row says *why* it is ``see notes`` or ``difference``: the last column, ``notes``, holds the words
  the month's page shows in the day's status cell (Z report not run, after the close-out, clock not synced, the
  provider's differences), in the staff member's language; the older columns are unchanged;
- a month that is no month (``2026-13``, ``abc``) is refused (400) with the form to write it, on the page and the CSV,
  never answered with this month's figures; a day that is no date on the day's page likewise.

Real portal on loopback (SQLite and PostgreSQL for the CSV), the kiosk's real ledger and uploader, a staff sign-in
and the Square CSV upload over HTTP.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime

import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled
from test_reconcile import TOKYO, login, payment_row, provider_file, square_csv, the_day, upload

from server_sync import reconcile
from server_sync.configstore import publish
from server_sync.pages import STAFF_LANG_COOKIE
from server_sync.staff import add_user

# The columns every accounting tool reads today, in this order (docs/portal.md, "The month's CSV").
OLD_COLUMNS = ["business_date", "kiosk_id", "row", "project_id", "project_title", "group", "area", "count",
               "total_yen", "z_count", "z_total_yen", "after_close_count", "after_close_yen", "voided_count",
               "voided_yen", "provider_count", "provider_net_yen", "status"]


def _csv(s: requests.Session, url: str, month: str) -> list[dict[str, str]]:
    r = s.get(url + "/staff/reconciliation.csv", params={"month": month}, timeout=10)
    assert r.status_code == 200, r.text
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].split(",") == [*OLD_COLUMNS, "notes"]  # one column more, at the end
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _page_status(s: requests.Session, url: str, month: str, kiosk: str, day: str) -> list[str]:
    """The lines of the day's status cell on the month's page, as staff read them."""
    page = s.get(url + "/staff/reconciliation", params={"month": month}, timeout=10).text
    row = page[page.index(f'<tr data-kiosk="{kiosk}" data-day="{day}">'):]
    cell = row[row.index('<td class="status">'):row.index("</tr>")]
    return [html.unescape(x).strip() for x in re.findall(r"<div[^>]*>(.*?)</div>", cell, re.S)]


def test_each_days_total_row_says_why_in_the_words_of_the_page(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    rig.clock.is_synced = False  # the kiosk's clock was not synchronised that day
    d, _ = the_day(rig, portal)  # after the close-out, voided after it; the file below: one payment off
    s = login(portal.url)
    stray = payment_row(d[0], "no-such-device", amount=900, pid="sq-stray")  # a payment no kiosk has
    assert upload(s, portal.url, provider_file(rig, d)).status_code == 200
    assert upload(s, portal.url, square_csv([stray]), name="stray.csv").status_code == 200
    day = rig.ledger.business_date()
    month, k = f"{day:%Y-%m}", rig.kiosk_id

    rows = _csv(s, portal.url, month)
    [total] = [x for x in rows if x["row"] == "total"]
    assert total["status"] == "difference"
    notes = total["notes"].split(" / ")
    assert notes == _page_status(s, portal.url, month, k, str(day))  # the CSV says what the page says
    assert notes[0].startswith("✗ 決済事業者の明細との差異")
    assert "⚠ 締め後の寄付 2 件（¥1,700）: 日計に含まれていません。" in notes, notes
    assert "⚠ 時計未同期の日" in notes
    assert all(x["notes"] == "" for x in rows if x["row"] == "project")
    [only] = [x for x in rows if x["row"] == "provider_only"]
    assert only["notes"].split(" / ") == _page_status(s, portal.url, month, "", only["business_date"])
    assert only["notes"] == "✗ どの端末の寄付とも合わない決済 1 件"

    # Downloaded by a staff member who reads English: the notes in English; the header and status stay as they are.
    s.cookies.set(STAFF_LANG_COOKIE, "en")
    rows = _csv(s, portal.url, month)
    [total] = [x for x in rows if x["row"] == "total"]
    assert total["status"] == "difference"
    assert total["notes"].split(" / ") == _page_status(s, portal.url, month, k, str(day))
    assert "⚠ Clock not synced on this day" in total["notes"] and "after the close-out" in total["notes"]


def test_a_day_not_closed_says_so_in_the_csv(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    rig.donate(2)  # no Z report: the center forgot to close the day
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    s = login(portal.url)
    day = rig.ledger.business_date()
    [total] = [x for x in _csv(s, portal.url, f"{day:%Y-%m}") if x["row"] == "total"]
    assert (total["status"], total["notes"]) == ("see notes", "⚠ まだ締めていません: この日の日計（Z）がありません。")
    # The older columns are as they were, and the library writes the same.
    text = reconcile.month_csv(engine, day.replace(day=1), day)
    assert text.splitlines()[0] == "\ufeff" + ",".join([*OLD_COLUMNS, "notes"])


def _staff1(url: str) -> requests.Session:
    s = requests.Session()
    assert s.post(url + "/staff/login", data={"username": "staff1", "password": PASSWORD}, timeout=10).ok
    return s


BAD_MONTHS = ["2026-13", "abc", "2026-00", "", "2026-4-1", "26-04", "２０２６-04", "2026-04x", "2026",
              "99999999999999999999-1", "2026-12-01"]
BAD_DAYS = ["2026-13-01", "abc", "20261207", "2025-02-30", "2026-W49-1", "2026-1-5", "２０２６-01-05"]


def test_a_month_that_is_no_month_is_refused_with_the_form_to_write_it(staff_site):
    url = staff_site.url
    s = _staff1(url)
    now = datetime.now(TOKYO).date()
    example = f"{now:%Y-%m}（{now.year}年{now.month}月）"
    for bad in BAD_MONTHS:
        r = s.get(url + "/staff/reconciliation.csv", params={"month": bad}, timeout=10)
        assert r.status_code == 400, (bad, r.status_code, r.headers.get("content-disposition"))
        assert r.headers["content-type"].startswith("text/plain") and "content-disposition" not in r.headers
        assert f"「{bad}」は月の指定として正しくありません。{example}のように" in r.text, (bad, r.text)
        r = s.get(url + "/staff/reconciliation", params={"month": bad}, timeout=10)
        assert r.status_code == 400, bad
        text = html.unescape(r.text)
        assert 'id="invalid"' in text and f"「{bad}」は月の指定として正しくありません。{example}のように" in text
        assert 'id="csv"' not in text and 'id="reconciliation"' not in text  # no month's figures in its place
        assert 'href="/staff/reconciliation"' in text
    # A good month, and none (this month), as before.
    r = s.get(url + "/staff/reconciliation.csv", params={"month": "2026-04"}, timeout=10)
    assert r.status_code == 200 and 'filename="reconciliation-2026-04.csv"' in r.headers["content-disposition"]
    r = s.get(url + "/staff/reconciliation.csv", timeout=10)
    assert r.status_code == 200 and f'filename="reconciliation-{now:%Y-%m}.csv"' in r.headers["content-disposition"]
    assert s.get(url + "/staff/reconciliation", params={"month": "2026-04"}, timeout=10).status_code == 200
    assert "2026年4月" in s.get(url + "/staff/reconciliation", params={"month": "2026-4"}, timeout=10).text
    # In English for a staff member who reads English.
    s.cookies.set(STAFF_LANG_COOKIE, "en")
    r = s.get(url + "/staff/reconciliation.csv", params={"month": "2026-13"}, timeout=10)
    assert r.status_code == 400 and "“2026-13” is not a valid month" in r.text and f"like {now:%Y-%m}" in r.text


def test_a_day_that_is_no_date_is_refused_with_the_form_to_write_it(staff_site):
    url = staff_site.url
    s = _staff1(url)
    now = datetime.now(TOKYO).date()
    for bad in BAD_DAYS:
        r = s.get(f"{url}/staff/reconciliation/center-1f/{bad}", timeout=10)
        assert r.status_code == 400, (bad, r.status_code)
        text = html.unescape(r.text)
        words = f"{now.year}年{now.month}月{now.day}日"
        assert f"「{bad}」は日付の指定として正しくありません。{now.isoformat()}（{words}）のように" in text, bad
    # A good date of a kiosk that recorded nothing then is still "not found".
    assert s.get(f"{url}/staff/reconciliation/center-1f/2020-01-01", timeout=10).status_code == 404
