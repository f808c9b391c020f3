"""The auditor's walkthrough, step 5 (docs/receipts.md, "Which keys signed"): a kiosk whose key was lost and replaced
by an administrator's announcement needs `kiosk ledger verify --trust-key SEQ:HEX`, and the walkthrough sends the
auditor to the kiosks page for it. Before, the auditor's role answered 403 there, and the page showed only the key's
short id, never the 64 hex digits `--trust-key` takes, so no one could follow the step from the portal.

Now the auditor opens /staff/kiosks read only (staff.PAGE_ROLES ``audit``): no form, no button, no enrollment code;
every POST of theirs is still the 403 page (operator.ReadOnlyRoles, and each route's own check). An announced key's
event carries the whole option to copy. A real portal on loopback (SQLite, and PostgreSQL with KIOSK_TEST_PG_URL),
the real `kiosk rekey --old-key-lost` and `kiosk-portal kiosk rekey`, headless Chromium for the page as the auditor
sees it, and the real `kiosk ledger export` / `verify` on the copied option.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sync_helpers import PASSWORD, enrolled, lose_key, needs_chromium, staff_page, staff_session

from kiosk.cli import main as kiosk_main
from kiosk.ledger import keys
from server_sync.db import enroll_codes, key_events, kiosk_info, kiosks
from server_sync.staff import add_user

REFUSED = "あなたの役割ではこのページまたは項目を扱えません"


def _lost_key_kiosk(portal, rig, capsys) -> tuple[re.Match[str], str]:  # noqa: ANN001
    """Three gifts synced, the kiosk's key lost and replaced by an administrator's announcement, two more gifts
    synced with the new key; an auditor ``kansa``. Returns the printed rekey line's match and the kiosk's first
    public key as the auditor holds it (a copy of keys/kiosk.pub, PEM)."""
    pub = rig.cfg.data_dir / "kiosk.pub"
    keys.write_public(keys.load_private(rig.cfg.private_key_path), pub)
    rig.donate(3)
    assert enrolled(rig, portal).sync_once().ok
    m = lose_key(rig, portal, capsys)
    rig.donate(2)
    state = rig.uploader(portal.url).sync_once()
    assert state.ok, state.last_error
    add_user(portal.app.state.engine, "kansa", PASSWORD, "auditor")
    add_user(portal.app.state.engine, "clerk", PASSWORD, "staff")
    return m, str(pub)


def test_an_auditor_reads_the_kiosks_page_with_no_form_and_every_post_is_still_refused(portal, rig, capsys):
    m, _pub = _lost_key_kiosk(portal, rig, capsys)
    auditor, token = staff_session(portal.url, "kansa")
    r = auditor.get(portal.url + "/staff/kiosks", timeout=10)
    assert r.status_code == 200, r.text[:300]
    main = r.text.split("<main", 1)[1]
    assert "<form" not in main and "<button" not in main and "<input" not in main, main[:2000]
    assert 'data-kiosk="' + rig.kiosk_id + '"' in main
    assert f'data-trust-key="{m.group(3)}:{m.group(2)}"' in main
    assert "登録コード" not in main  # the enrollment section is staff's
    # Staff still have their forms and the enrollment section on the same page.
    clerk, _ = staff_session(portal.url, "clerk")
    staff_view = clerk.get(portal.url + "/staff/kiosks", timeout=10).text
    assert 'action="/staff/kiosks/code"' in staff_view and f'action="/staff/kiosks/{rig.kiosk_id}/group"' in staff_view
    assert f'data-trust-key="{m.group(3)}:{m.group(2)}"' in staff_view
    # Whatever the page shows, the auditor's posts change nothing: no code made, no group, no suspension, no key event.
    eng = portal.app.state.engine
    with eng.connect() as conn:
        events_before = conn.execute(select(func.count()).select_from(key_events)).scalar()
    own = {"Origin": portal.url}
    for path, form in (("/staff/kiosks/code", {"kiosk_id": "k9", "days": "7"}),
                       (f"/staff/kiosks/{rig.kiosk_id}/group", {"kiosk_group": "g"}),
                       (f"/staff/kiosks/{rig.kiosk_id}/suspension", {"action": "suspend"}),
                       (f"/staff/kiosks/{rig.kiosk_id}/revocation", {"from_seq": "99"})):
        r = auditor.post(portal.url + path, data={"csrf": token, **form}, headers=own, timeout=10,
                         allow_redirects=False)
        assert r.status_code == 403 and REFUSED in r.text, (path, r.status_code)
    with eng.connect() as conn:
        assert conn.execute(select(func.count()).select_from(enroll_codes)
                            .where(enroll_codes.c.kiosk_id == "k9")).scalar() == 0
        assert conn.execute(select(kiosks.c.suspended_ms).where(kiosks.c.id == rig.kiosk_id)).scalar() is None
        assert conn.execute(select(func.count()).select_from(kiosk_info)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(key_events)).scalar() == events_before


@needs_chromium
def test_in_chromium_an_auditor_copies_the_trust_key_and_the_export_verifies_with_it(portal, rig, capsys, browser,
                                                                                     tmp_path):
    m, pub = _lost_key_kiosk(portal, rig, capsys)
    # The auditor signs in, opens the menu and 「端末」, and finds the kiosk's key event (docs/receipts.md, step 5).
    page = staff_page(browser, portal.url, "kansa")
    page.click("header summary")  # on a phone the staff menu opens under 「メニュー」 (base.html)
    page.click("nav.staffnav a[href='/staff/kiosks']")
    page.wait_for_url("**/staff/kiosks")
    assert page.locator("main form, main button, main input").count() == 0
    row = page.locator(f'tr[data-kiosk="{rig.kiosk_id}"]')
    event = row.locator(".keyevent").filter(has=page.locator("code"))
    assert event.count() == 1
    said = re.search(r"鍵 ([0-9a-f]{16}) を seq (\d+) から使用", event.inner_text())
    assert said is not None and said[2] == m.group(3), event.inner_text()
    copied = event.locator("code").inner_text().strip()
    assert copied == f"--trust-key {m.group(3)}:{m.group(2)}", copied
    assert event.locator("code").is_visible()
    # The kiosk's export, verified as the walkthrough says: without the option it cannot vouch for the new key,
    # with the copied one it passes.
    exp = tmp_path / "ledger.jsonl"
    assert kiosk_main(["ledger", "export", str(rig.cfg.ledger_path), "--out", str(exp)]) == 0
    capsys.readouterr()
    assert kiosk_main(["ledger", "verify", str(exp), "--pubkey", pub]) == 1
    assert "--trust-key" in capsys.readouterr().out
    assert kiosk_main(["ledger", "verify", str(exp), "--pubkey", pub, *copied.split()]) == 0
    out = capsys.readouterr().out
    assert "OK: " in out and f"signing key {said[1]} from seq=" in out, out
    assert f"signing key {said[1]} from seq={m.group(3)} (vouched for by an administrator)" in out, out
