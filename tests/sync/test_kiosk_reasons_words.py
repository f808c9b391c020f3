"""The staff kiosks page says why a kiosk is suspended and what each alarm means in plain Japanese, with what to do,
and keeps the text the portal stored on a small "詳細（管理者向け）" line for the administrator (docs/portal.md,
"The kiosks page").

Before, it showed the stored English as it was: 「停止中: equivocation at seq=6」, 「停止中: suspended by 鈴木」,
「quarantine #7: seq=7 quarantined: amount: ¥9007199254729791 is over the kiosk's maximum ¥1000」, the alarm's kind
(``equivocation``, ``ledger_behind``) first. Center staff read Japanese and are not engineers.

The page words them from the alarm's kind and the fixed formats of the reasons the portal's own code writes, at
render time, so rows stored by an older release read the same (a rolling upgrade, docs/deploy.md "Upgrading"); a
reason or kind it does not know is said honestly, pointing to the details line.

Real parts: a real portal over HTTP on loopback, real kiosk ledgers and keys, a real equivocation through ingest,
a real ledger-behind heartbeat, a real quarantine, the Suspend button pressed in headless Chromium, the CLI.
"""

from __future__ import annotations

import ast
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert
from staff_words_check import PLAIN_LATIN, assert_plain_japanese
from sync_helpers import PASSWORD, enrolled, fake_idm, needs_chromium, signed_post, staff_page, staff_session

from server_sync import ingest, operator
from server_sync.db import alarms, make_engine
from server_sync.embedded import PortalHandle
from server_sync.portal_cli import main as portal_cli
from server_sync.staff import add_user
from server_sync.wire import protocol as P

ABSURD_YEN = 9_007_199_254_729_791
ENGINEER_WORDS = re.compile(r"equivocation|ledger_behind|quarantine|suspended by|seq=|portal already holds|ledgers")


def _row(page: Any, url: str, kid: str) -> Any:
    page.goto(url + "/staff/kiosks")
    return page.locator(f'tr[data-kiosk="{kid}"]')


def _said(row: Any) -> tuple[str, str]:
    """(the suspension's plain line, its details line) as the staff member reads them."""
    box = row.locator(".suspended")
    return box.locator("strong").inner_text(), box.locator(".detail").inner_text()


def _alarms(row: Any) -> dict[str, tuple[str, str]]:
    """{alarm kind: (its plain line, its details line)} of the newest alarm of each kind; each box reads its plain
    line first."""
    out = {}
    for i in range(row.locator(".alarm").count()):
        box = row.locator(".alarm").nth(i)
        words, detail, whole = box.locator("strong").inner_text(), box.locator(".detail").inner_text(), box.inner_text()
        assert whole.index(words) < whole.index(detail), whole
        out.setdefault(box.get_attribute("data-kind"), (words, detail))  # the newest of a kind: shown first
    return out


def _plain(text: str, allowed: frozenset[str] = PLAIN_LATIN) -> None:
    assert not ENGINEER_WORDS.search(text), text
    assert_plain_japanese([text], allowed)


def _honest(portal: PortalHandle, rig: Any) -> Any:
    rig.donate(5)
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    return up


def _admin(portal: PortalHandle, name: str = "admin") -> str:
    add_user(portal.app.state.engine, name, PASSWORD)
    return name


@needs_chromium
def test_an_equivocation_and_its_suspension_are_said_in_plain_japanese(portal, rig, browser) -> None:
    """The kiosk's key signs a second, different entry at a seq the portal holds (a copied SD card): ingest alarms
    and suspends the kiosk. The page says so in Japanese, with what to do, and the stored text as details."""
    from kiosk.ledger import keys
    from kiosk.ledger.encoding import entry_hash

    _honest(portal, rig)
    sk = keys.load_private(rig.cfg.private_key_path)
    held = next(e for e in rig.ledger.iter_entries() if e.type == "donation")
    other = held.body.replace(b'"provider_ref":"', b'"provider_ref":"x')
    doc = P.batch_document(rig.kiosk_id, [(held.seq, other, sk.sign(entry_hash(other)))], None, 0, [])
    r = signed_post(portal.url, rig, f"/api/v1/kiosks/{rig.kiosk_id}/batches",
                    json.dumps(doc, separators=(",", ":")).encode(), "equivocate")
    assert r.status_code == 409 and r.json()["error"] == "equivocation", r.text

    row = _row(staff_page(browser, portal.url, _admin(portal)), portal.url, rig.kiosk_id)
    words, detail = _said(row)
    assert words.startswith("停止中: この端末の鍵が食い違う2つの台帳に署名したため")
    assert f"（記録番号 {held.seq}）" in words and "ポータルが自動で集計を止めました" in words
    assert "管理者に連絡してください" in words and "「集計を再開する」は押さないでください" in words
    _plain(words.removeprefix("停止中: "))
    assert detail == f"詳細（管理者向け）: equivocation at seq={held.seq}"
    said = _alarms(row)
    assert list(said) == ["equivocation"]
    words, detail = said["equivocation"]
    assert "食い違う2つの台帳に署名しました" in words and "管理者に連絡してください" in words
    _plain(words, PLAIN_LATIN | {"SD"})
    assert detail.startswith(f"詳細（管理者向け）: equivocation #{held.seq}: kiosk signed a different entry at "
                             f"seq={held.seq}, which the portal already holds (")


@needs_chromium
def test_a_suspension_from_the_kiosks_page_names_who_and_says_how_to_resume(portal, rig, browser) -> None:
    """An administrator presses Suspend in the browser: the page says who stopped counting and what resumes it, in
    Japanese; in English for a staff member who chose English."""
    _honest(portal, rig)
    name = _admin(portal, "鈴木")
    page = staff_page(browser, portal.url, name)
    row = _row(page, portal.url, rig.kiosk_id)
    with page.expect_navigation():
        row.locator("button[value=suspend]").click()
    row = page.locator(f'tr[data-kiosk="{rig.kiosk_id}"]')
    words, detail = _said(row)
    assert words == ("停止中: 鈴木 さんがこのページでこの端末の集計を止めました。だれかが「集計を再開する」を押すまで、"
                     "この端末から届く記録は保留し、集計に入れません。")
    assert detail == "詳細（管理者向け）: suspended by 鈴木"
    assert row.locator("button[value=resume]").inner_text() == "集計を再開する"  # the button the words name

    s, _ = staff_session(portal.url, name, lang="en")
    en = s.get(portal.url + "/staff/kiosks", timeout=10).text
    assert "suspended: 鈴木 stopped counting this kiosk on this page. What it sends is held and not counted" in en

    with page.expect_navigation():
        row.locator("button[value=resume]").click()
    assert page.locator(f'tr[data-kiosk="{rig.kiosk_id}"] .suspended').count() == 0


@needs_chromium
def test_a_kiosk_restored_from_a_backup_and_a_quarantined_gift_are_said_in_plain_japanese(
        portal, rig, browser, monkeypatch) -> None:
    """A heartbeat reports fewer records than the portal holds (the kiosk's data put back from an old backup), and
    a gift over the kiosk's maximum arrives (quarantined): two alarms, each in Japanese with the rule it broke."""
    from kiosk.ledger import keys

    up = _honest(portal, rig)
    intent = rig.ledger.record_intent("kodomo", ABSURD_YEN, "sim", rig.pepper.token(fake_idm(0)), uuid.uuid4().hex)
    rig.clock.advance(700)
    forged = rig.ledger.record_donation(intent.seq, f"sim-{intent.seq}", 1)
    assert up.sync_once().ok
    held = rig.ledger.size

    monkeypatch.setattr(ingest, "BEHIND_GRACE_MS", 0)  # the entries it lacks were held long ago
    sk = keys.load_private(rig.cfg.private_key_path)
    path = f"/api/v1/kiosks/{rig.kiosk_id}/heartbeat"
    body = json.dumps({"boot": 1, "mono_ms": 1, "wall_ms": int(time.time() * 1000), "clock_synced": True,
                       "ledger_size": 3}).encode()
    r = requests.post(portal.url + path, data=body, timeout=10, headers={
        **P.sign_request(sk, rig.kiosk_id, "POST", path, body, int(time.time())), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text

    said = _alarms(_row(staff_page(browser, portal.url, _admin(portal)), portal.url, rig.kiosk_id))
    assert sorted(said) == ["ledger_behind", "quarantine"]
    words, detail = said["ledger_behind"]
    assert "古いバックアップから戻された可能性があります" in words and "管理者に連絡してください" in words
    _plain(words)
    assert detail.startswith(f"詳細（管理者向け）: ledger_behind #{held}: kiosk reports a ledger of 3 entries; "
                             f"the portal already holds {held}")
    words, detail = said["quarantine"]  # the newer of the two quarantined entries (intent and donation)
    assert words == (f"記録番号 {forged.seq} の記録は、集計に入れずに別にしてあります。理由: 金額が、端末の設定で選べる"
                     "金額ではありません。端末の設定が古いか、記録が書き換えられた可能性があります。管理者に連絡してください。")
    assert detail.startswith(f"詳細（管理者向け）: quarantine #{forged.seq}: seq={forged.seq} quarantined: amount: "
                             f"¥{ABSURD_YEN} is over")

    # The dashboard's list of alarms says the same words first, with the kiosk's name, and the stored text below.
    page = staff_page(browser, portal.url, "admin")  # signed in, on the dashboard
    boxes = page.locator("#alarms .alarm")
    shown = {boxes.nth(i).get_attribute("data-kind"): boxes.nth(i) for i in reversed(range(boxes.count()))}
    assert sorted(shown) == ["ledger_behind", "quarantine"]
    for kind, (words, detail) in said.items():
        strong, small = shown[kind].locator("strong").inner_text(), shown[kind].locator(".detail").inner_text()
        assert strong == f"{rig.kiosk_id}: {words}", strong
        assert small.startswith(detail.split(" (")[0][:60]), (small, detail)


@needs_chromium
def test_a_reason_or_an_alarm_the_page_cannot_word_is_said_honestly(portal, rig, browser) -> None:
    """`kiosk-portal kiosk suspend --reason TEXT` stores the administrator's own words, and an alarm row of a kind
    this release does not know (one a newer release wrote, during a rolling upgrade): the page does not pretend to
    know; it says where the reason is and whom to ask, and shows the stored text. The CLI's own default reason is
    worded."""
    _honest(portal, rig)
    assert portal_cli(["kiosk", "suspend", "--db", portal.db_url, rig.kiosk_id, "--reason", "stolen at the fair"]) == 0
    eng = make_engine(portal.db_url)
    try:
        with eng.begin() as conn:
            conn.execute(insert(alarms).values(kiosk_id=rig.kiosk_id, kind="clock_jump", seq=None,
                                               detail="wall clock jumped 3 days", created_ms=int(time.time() * 1000)))
    finally:
        eng.dispose()

    page = staff_page(browser, portal.url, _admin(portal))
    row = _row(page, portal.url, rig.kiosk_id)
    words, detail = _said(row)
    assert words == ("停止中: 下の「詳細」に書かれた理由で、この端末の集計が止められています。"
                     "再開するまで、この端末から届く記録は保留し、集計に入れません。理由がわからないときは、"
                     "管理者に確かめてください。")
    assert detail == "詳細（管理者向け）: stolen at the fair"
    said = _alarms(row)
    assert list(said) == ["clock_jump"]
    words, detail = said["clock_jump"]
    assert words == ("ポータルがこの端末について問題を記録しましたが、このページではわかりやすい言葉で"
                     "表示できない種類のものです。管理者に連絡して、下の「詳細」を伝えてください。")
    assert detail.startswith("詳細（管理者向け）: clock_jump: wall clock jumped 3 days (")

    assert portal_cli(["kiosk", "resume", "--db", portal.db_url, rig.kiosk_id]) == 0
    assert portal_cli(["kiosk", "suspend", "--db", portal.db_url, rig.kiosk_id]) == 0
    words, detail = _said(_row(page, portal.url, rig.kiosk_id))
    assert words.startswith("停止中: 管理者がポータルのコマンドでこの端末の集計を止めました。")
    assert detail == "詳細（管理者向け）: suspended by an administrator"


# --- every reason and alarm the portal's code writes has its words ------------------------------------------------
SOURCES = Path(operator.__file__).parent


def _sample(node: ast.expr) -> str | None:
    """A value the expression can take: an f-string's holes filled with a number, the literal of ``x or "..."``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "7" for v in node.values)
    if isinstance(node, ast.BoolOp):
        return next((s for s in map(_sample, node.values) if s is not None), None)
    return None


def test_every_reason_and_alarm_kind_the_portal_writes_is_worded() -> None:
    """Read from the source: each ``suspend(conn, kid, REASON)`` and each alarm kind written (``_alarm(kid, KIND``,
    ``{"kind": KIND`` rows) gets its own words, not the wording for a reason or kind the page does not know. A new
    one added without words fails here."""
    unknown_reason = operator.suspension_words("")[0]
    unknown_kind = operator.alarm_words("", None, "")[0]
    reasons, kinds = [], []
    for src in sorted(SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(src.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "suspend" \
                    and len(node.args) == 3:
                reasons.append((src.name, _sample(node.args[2])))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "_alarm" and len(node.args) == 4:
                kinds.append((src.name, _sample(node.args[1])))
            elif isinstance(node, ast.Dict):
                kinds += [(src.name, v.value) for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value == "kind" and isinstance(v, ast.Constant)
                          and src.name == "ingest.py"]
    assert {w for w, _ in reasons} >= {"ingest.py", "operator.py", "portal_cli.py"}, reasons
    assert {k for _, k in kinds} >= {"equivocation", "ledger_behind", "quarantine"}, kinds
    for where, reason in reasons:
        assert reason is not None and operator.suspension_words(reason)[0] != unknown_reason, (where, reason)
    for where, kind in kinds:
        assert kind is not None and operator.alarm_words(kind, 7, "seq=7 quarantined: amount: x")[0] != unknown_kind, \
            (where, kind)
