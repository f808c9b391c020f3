"""The staff pages say which playlist runs in words, not version numbers (docs/portal.md, "Playlists and targets").

Before, the playlist page said 「現在: v2（… 公開）」 and the kiosks page 「v1（v3 を待っています）」: version
numbers staff do not know. Now the playlist pages say when and by whom the playlist was published (「… に yamada
さんが公開したもの」), and the kiosks page and the dashboard whether each kiosk runs the newest playlist published
for it (「最新のプレイリストで動いています」, 「まだ古いプレイリストです（次の通信で届きます）」, 「未公開」), the
number kept only on a small details line for the administrator. Real kiosk ledgers enroll and sync over loopback
HTTP with a real portal (they fetch and apply what is published); the pages are read in headless Chromium.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sync_helpers import PASSWORD, enrolled, make_rig, needs_chromium, seed_playlist_center, staff_page, staff_session

from server_sync import pages
from server_sync.db import configs
from server_sync.embedded import start_portal
from server_sync.operator import words_text
from server_sync.staff import add_user

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
VERSION_TAG = re.compile(r"\bv\d|版")


def _publish(url: str, user: str, target: str, sha: str, repeat: str = "1") -> None:
    s, token = staff_session(url, user)
    r = s.post(url + "/staff/playlists", timeout=10, data={
        "csrf": token, "target": target, "i0_clip": sha, "i0_project": "proj-a", "i0_repeat": repeat,
        "i0_days": ALL_DAYS, "i0_start": "", "i0_end": ""})
    assert r.url.endswith("done=published"), r.text[-2000:]


def _published_ms(engine, version: int) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return int(conn.execute(select(configs.c.created_ms).where(configs.c.version == version)).scalar_one())


@pytest.fixture
def fleet(tmp_path):  # noqa: ANN001
    """Three synced kiosks. yamada published for all kiosks (v1; all three run it). center-3f was in kiosk group
    hall and got its playlist (v2), then left the group. suzuki published for center-2f alone (v3), which has not
    called since."""
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    eng = handle.app.state.engine
    sha = seed_playlist_center(eng)
    rigs = {kid: make_rig(tmp_path, kid) for kid in ("center-1f", "center-2f", "center-3f")}
    try:
        ups = {kid: enrolled(rig, handle) for kid, rig in rigs.items()}
        _publish(handle.url, "yamada", "all", sha)
        s, token = staff_session(handle.url, "yamada")
        assert s.post(handle.url + "/staff/kiosks/center-3f/group", data={"csrf": token, "kiosk_group": "hall"},
                      timeout=10).url.endswith("done=saved")
        _publish(handle.url, "yamada", "group:hall", sha, repeat="2")
        for up in ups.values():
            assert up.sync_once().ok
        assert s.post(handle.url + "/staff/kiosks/center-3f/group", data={"csrf": token, "kiosk_group": ""},
                      timeout=10).url.endswith("done=saved")
        _publish(handle.url, "suzuki", "kiosk:center-2f", sha, repeat="3")
        assert ups["center-1f"].sync_once().ok and ups["center-3f"].sync_once().ok
    finally:
        for rig in rigs.values():
            rig.ledger.close(checkpoint=False)
    yield handle
    handle.stop()


@needs_chromium
def test_the_pages_say_which_playlist_runs_in_words(fleet, browser, tmp_path) -> None:  # noqa: ANN001
    eng = fleet.app.state.engine
    v1, v3 = (pages.when(_published_ms(eng, v)) for v in (1, 3))
    page = staff_page(browser, fleet.url, "yamada", size=(1100, 900))

    # The kiosks page: whether each kiosk runs the newest playlist for it, the number only on the details line.
    page.goto(fleet.url + "/staff/kiosks")
    page.screenshot(path=str(tmp_path / "kiosks.png"), full_page=True)

    def config(kid: str) -> tuple[str, str, str]:
        cell = page.locator(f'tr[data-kiosk="{kid}"] td.config')
        said = cell.locator("[data-config]")
        assert said.count() == 1, cell.inner_text()
        return said.inner_text().strip(), said.get_attribute("data-config") or "", cell.inner_text()

    words, state, cell = config("center-1f")
    assert (words, state) == ("最新のプレイリストで動いています", "ok"), cell
    words, state, cell = config("center-2f")
    assert (words, state) == ("まだ古いプレイリストです（次の通信で届きます）", "waiting"), cell
    words, state, cell = config("center-3f")
    assert state == "other" and words.startswith("前の端末グループのプレイリストのままです"), cell
    for kid in ("center-1f", "center-2f", "center-3f"):
        said = config(kid)[0]
        assert not VERSION_TAG.search(said), said
    assert "v1" in page.locator('tr[data-kiosk="center-2f"] td.config .detail').inner_text()
    assert "設定の版" not in page.locator("#kiosks tr").first.inner_text()

    # The dashboard: the same words.
    page.goto(fleet.url + "/staff")
    row = page.locator('#fleet tr[data-kiosk="center-2f"]').inner_text()
    assert "まだ古いプレイリストです（次の通信で届きます）" in row and not VERSION_TAG.search(row), row
    assert "最新のプレイリストで動いています" in page.locator('#fleet tr[data-kiosk="center-1f"]').inner_text()

    # The playlists page: when and by whom each was published, no version column.
    page.goto(fleet.url + "/staff/playlists")
    page.screenshot(path=str(tmp_path / "playlists.png"), full_page=True)
    table = page.locator("#targets").inner_text()
    assert not VERSION_TAG.search(table), table
    assert page.locator('tr[data-target="all"]').inner_text().count(f"{v1} に yamada さんが公開") == 1
    assert f"{v3} に suzuki さんが公開" in page.locator('tr[data-target="kiosk:center-2f"]').inner_text()
    assert "まだ公開していません" in page.locator('tr[data-target="kiosk:center-1f"]').inner_text()

    # One target's page: what runs now, in words.
    page.goto(fleet.url + "/staff/playlists?target=kiosk:center-2f")
    page.screenshot(path=str(tmp_path / "schedule.png"), full_page=True)
    now = page.locator("#now-running").inner_text()
    assert now == f"いま公開中のプレイリスト: {v3} に suzuki さんが公開したもの", now
    # A kiosk with none of its own: what the form starts from, and that nothing is published for it yet.
    page.goto(fleet.url + "/staff/playlists?target=kiosk:center-1f")
    now = page.locator("#now-running").inner_text()
    assert now.startswith("この対象向けにはまだ公開していません。") and f"{v1} に yamada さんが公開" in now, now
    assert not VERSION_TAG.search(now) and "現在" not in now, now

    # English with the switch.
    page.goto(fleet.url + "/staff/lang?to=en&next=/staff/kiosks")
    assert config("center-2f")[0] == "Still on an older playlist (the new one arrives at its next contact)"
    assert config("center-1f")[0] == "Runs the newest playlist"


def test_a_portal_with_nothing_published_says_so(tmp_path) -> None:  # noqa: ANN001
    handle = start_portal(f"sqlite:///{tmp_path}/portal.db")
    try:
        add_user(handle.app.state.engine, "yamada", PASSWORD, "staff")
        rig = make_rig(tmp_path, "center-1f")
        try:
            assert enrolled(rig, handle).sync_once().ok
        finally:
            rig.ledger.close(checkpoint=False)
        s, _ = staff_session(handle.url, "yamada")
        body = s.get(handle.url + "/staff/kiosks", timeout=10).text
        cell = re.search(r'<td class="config">(.*?)</td>', body, re.S)
        assert cell is not None and 'data-config="none"' in cell[1] and "未公開" in cell[1], cell
        assert not VERSION_TAG.search(re.sub(r"<[^>]+>", "", cell[1]))
    finally:
        handle.stop()


@pytest.mark.parametrize(("applied", "current", "state", "ja"), [
    (0, 0, "none", "未公開"),
    (4, 4, "ok", "最新のプレイリストで動いています"),
    (3, 4, "waiting", "まだ古いプレイリストです（次の通信で届きます）"),
    (0, 4, "waiting", "まだプレイリストが届いていません（次の通信で届きます）"),
    (5, 4, "other", "前の端末グループのプレイリストのままです。"),
])
def test_config_words(applied: int, current: int, state: str, ja: str) -> None:
    from server_sync.operator import config_words

    words, got = config_words(applied, current)
    assert got == state
    assert words_text(words, "ja").startswith(ja)
