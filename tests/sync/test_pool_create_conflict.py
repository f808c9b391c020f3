"""Two administrators adding a sponsor pool under the same ID (SQLite, the real portal on loopback, real Chromium).

The pools form says what a save does: "add a new pool" (the default) or "change an existing pool", never guessed
from whether the ID is taken when the save arrives. An add of an ID a colleague's pool already has is refused in
plain words and changes nothing: the colleague's pool (its sponsor, money, rate and the config published to the
kiosks) stays as it is, and what the second administrator typed comes back in the form. The refusal is made by the
database (``INSERT … ON CONFLICT (id) DO NOTHING`` in ``pools.save_pool``), so two adds at the same moment give one
pool and one refusal. Before, the second add silently replaced the colleague's pool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from races import overlap, staff_portal
from sync_helpers import needs_chromium, staff_page, staff_session

from server_sync import configstore, pools
from server_sync.db import sponsor_pools
from tests.portal_db import fresh_db

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会", "contact": "a@example.jp"}],
           "projects": [{"id": "kodomo", "group_id": "group-a", "title": "こども食堂", "area": "children",
                         "goal_yen": 5000}]}
TAKEN_JA = ("shoutenkai というIDの基金はすでにあります（少し前にほかの人が追加したのかもしれません）。"
            "何も追加・変更していません。その基金を変更するときは「一覧にある基金を変更」を選んでください。")
TAKEN_EN = "A pool with the ID shoutenkai already exists (someone may have added it a moment ago)"
MISSING_JA = "nanohana というIDの基金はありません。何も変更していません。"
INSERTS_POOL = r"INSERT INTO portal_sponsor_pools"


@pytest.fixture
def op(tmp_path: Path):
    with staff_portal(fresh_db("sqlite", tmp_path), tmp_path, CATALOG) as handle:
        yield handle


def pool_form(token: str, sponsor: str, funded: str, action: str | None = "add", pid: str = "shoutenkai",
              **more: str) -> dict[str, Any]:
    form = {"csrf": token, "id": pid, "sponsor": sponsor, "sponsor_en": "", "funded_yen": funded,
            "yen_per_point": "1", "per_kiosk_yen": "3000", "start": "", "end": "", **more}
    if action is not None:
        form["action"] = action
    return form


def stored_pool(op: Any, pid: str = "shoutenkai") -> dict[str, Any] | None:
    with op.app.state.engine.connect() as conn:
        return next((p for p in pools.list_pools(conn) if p["id"] == pid), None)


def published_pools(op: Any) -> list[dict[str, Any]]:
    """The pools of the config all kiosks are sent now."""
    with op.app.state.engine.connect() as conn:
        cur = configstore.current(conn, target="all")
    return list((cur or {}).get("config", {}).get("pools") or [])


def error_of(html: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">([^<]*)</p>', html)
    return m.group(1) if m else ""


# --- in the browser: two administrators, each with the pools page open ---------------------------------------------
@needs_chromium
def test_adding_a_pool_under_an_id_a_colleague_has_just_added_is_refused_and_keeps_the_typing(op, browser):
    """Administrators A and B open the pools page. B adds "shoutenkai" (駅前商店会, ¥10,000). A, on the page opened
    before, adds "shoutenkai" too (みどり銀行, ¥50,000, one area, dates). A is told in Japanese, beside the ID, that
    the ID is taken and nothing was saved; everything A typed is still in the form; B's pool and what the kiosks are
    sent are unchanged. Then A deliberately chooses "change an existing pool" and the change is saved."""
    url = op.url
    one, two = staff_page(browser, url, "admin"), staff_page(browser, url, "admin2")
    one.goto(url + "/staff/pools")
    two.goto(url + "/staff/pools")

    two.fill("#f-id", "shoutenkai")
    two.fill("#f-sponsor", "駅前商店会")
    two.fill("#f-funded_yen", "10000")
    two.click("#pool button[type=submit]")
    two.wait_for_url("**/staff/pools?done=pool_saved")
    before, sent = stored_pool(op), published_pools(op)
    assert before is not None and before["sponsor"] == "駅前商店会"
    assert [p["sponsor"] for p in sent] == ["駅前商店会"]

    one.fill("#f-id", "shoutenkai")
    one.fill("#f-sponsor", "みどり銀行")
    one.fill("#f-sponsor_en", "Midori Bank")
    one.fill("#f-funded_yen", "50,000")
    one.fill("#f-yen_per_point", "2")
    one.fill("#f-per_kiosk_yen", "4000")
    one.check("input[name=areas][value=green]")
    one.fill("#f-start", "2026-04-01")
    one.fill("#f-end", "2027-03-31")
    with one.expect_navigation():
        one.click("#pool button[type=submit]")
    assert "done=" not in one.url, f"A's add of a taken ID was saved: {one.url}"
    said = one.locator("p.bad.err[data-for=id]")
    assert said.count() == 1 and said.is_visible(), "no message beside the ID"
    assert said.inner_text().startswith(TAKEN_JA), said.inner_text()
    kept = {f: one.input_value(f"#f-{f}") for f in ("id", "sponsor", "sponsor_en", "funded_yen", "yen_per_point",
                                                     "per_kiosk_yen", "start", "end")}
    assert kept == {"id": "shoutenkai", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": "50,000",
                    "yen_per_point": "2", "per_kiosk_yen": "4000", "start": "2026-04-01", "end": "2027-03-31"}
    assert one.is_checked("input[name=areas][value=green]")
    assert one.is_checked("#f-action-add"), "adding a new pool is what the form does unless changed"
    assert stored_pool(op) == before, "B's pool was changed by A's add"
    assert published_pools(op) == sent, "the kiosks were sent A's pool in place of B's"
    assert one.locator("#pools tr[data-id=shoutenkai] td").nth(1).inner_text() == "駅前商店会"

    one.check("#f-action-change")  # a deliberate change of B's pool, with what A typed
    one.click("#pool button[type=submit]")
    one.wait_for_url("**/staff/pools?done=pool_saved")
    after = stored_pool(op)
    assert after is not None and (after["sponsor"], after["funded_yen"], after["areas"]) == ("みどり銀行", 50000,
                                                                                            ["green"])
    assert after["created_ms"] == before["created_ms"], "a change keeps the pool, it does not make another"


# --- over HTTP ------------------------------------------------------------------------------------------------------
def test_two_adds_of_one_pool_id_at_once_give_one_pool_and_one_clear_refusal(op):
    """Two administrators add "shoutenkai" at the same moment (the first add held right after it wrote the pool,
    uncommitted, holding the database). One is saved, the other refused in plain words, and the pool is the saved
    one's: never both "saved" with the later silently replacing the earlier."""
    a, ka = staff_session(op.url, "admin")
    b, kb = staff_session(op.url, "admin2")
    r1, r2 = overlap(op.app.state.engine, INSERTS_POOL,
                     lambda: a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "10000"), timeout=60),
                     lambda: b.post(op.url + "/staff/pools", data=pool_form(kb, "みどり銀行", "50000"), timeout=60))
    answers = sorted((r.status_code, r.url.endswith("done=pool_saved")) for r in (r1, r2))
    assert answers == [(200, True), (422, False)], f"answers {answers}: {r1.text[:200]} | {r2.text[:200]}"
    won, lost = (r1, r2) if r1.url.endswith("done=pool_saved") else (r2, r1)
    assert error_of(lost.text, "id").startswith(TAKEN_JA), error_of(lost.text, "id") or lost.text[:500]
    sponsor, funded = ("駅前商店会", 10000) if won is r1 else ("みどり銀行", 50000)
    pool = stored_pool(op)
    assert pool is not None and (pool["sponsor"], pool["funded_yen"]) == (sponsor, funded)
    assert [p["sponsor"] for p in published_pools(op)] == [sponsor]


def test_a_change_of_a_pool_no_one_has_adds_nothing_and_an_old_form_still_saves(op):
    """"Change an existing pool" for an ID no pool has adds nothing and says so; the English page words the taken
    ID too. A form without the choice (a script, a page of an older portal) creates or changes, as before."""
    a, ka = staff_session(op.url, "admin")
    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "菜の花基金", "8000", action="change", pid="nanohana"),
               timeout=10)
    assert r.status_code == 422 and error_of(r.text, "id").startswith(MISSING_JA), error_of(r.text, "id")
    assert stored_pool(op, "nanohana") is None and published_pools(op) == []

    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "10000", action=None), timeout=10)
    assert r.url.endswith("done=pool_saved") and stored_pool(op)["funded_yen"] == 10000
    r = a.post(op.url + "/staff/pools", data=pool_form(ka, "駅前商店会", "12000", action=None), timeout=10)
    assert r.url.endswith("done=pool_saved") and stored_pool(op)["funded_yen"] == 12000

    en, ke = staff_session(op.url, "admin2", lang="en")
    r = en.post(op.url + "/staff/pools", data=pool_form(ke, "Midori Bank", "50000"), timeout=10)
    assert r.status_code == 422 and error_of(r.text, "id").startswith(TAKEN_EN), error_of(r.text, "id")
    assert stored_pool(op)["sponsor"] == "駅前商店会"


def test_save_pool_add_refuses_a_taken_id_in_the_database(op):
    """``pools.save_pool(..., new=True)`` on a taken ID raises ``PoolExists`` (code ``pool_id_taken``) and leaves
    the row and the published config as they were; the row count stays one."""
    engine = op.app.state.engine
    v = {"id": "shoutenkai", "sponsor": "駅前商店会", "sponsor_en": "", "funded_yen": 10000, "yen_per_point": 1,
         "per_kiosk_yen": 3000, "areas": [], "start": None, "end": None}
    pools.save_pool(engine, v, new=True)
    before, sent = stored_pool(op), published_pools(op)
    with pytest.raises(pools.PoolExists) as refused:
        pools.save_pool(engine, {**v, "sponsor": "みどり銀行", "funded_yen": 1}, new=True)
    assert refused.value.code == "pool_id_taken" and refused.value.params == {"id": "shoutenkai"}
    assert stored_pool(op) == before and published_pools(op) == sent
    with engine.connect() as conn:
        assert len(conn.execute(sponsor_pools.select()).all()) == 1
