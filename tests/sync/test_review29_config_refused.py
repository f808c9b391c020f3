"""A playlist the kiosk refuses is said on the staff kiosks page (docs/portal.md, "Playlists and targets";
docs/sync.md, "Upload protocol"), on SQLite and PostgreSQL.

Before, a kiosk that fetched the newest playlist and refused it (a movie that did not arrive intact, a document
its checks refuse) kept it in its own sync state only, and the kiosks page said
「まだ古いプレイリストです（次の通信で届きます）」 for ever: staff waited for a playlist that would never arrive.
Now the kiosk's heartbeat says which version it refused and why (``config_refused``), the portal stores it on
the kiosk row, and the page says, in plain Japanese, that the kiosk could not take the playlist published then,
why, and what to do; a good publish clears it. A real kiosk ledger and uploader sync over loopback HTTP with a
real portal; the page is the real app's HTML.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import MetaData, Table, inspect, select, update
from sync_helpers import ONE_PROJECT_CATALOG, PASSWORD, enrolled, make_rig, signed_post, staff_session

from kiosk.sync.uploader import CONFIG_REFUSED_DETAIL, CONFIG_REFUSED_REASONS
from server_sync import catalog, configstore, pages
from server_sync.db import configs, create_schema, drop_schema, kiosks, make_engine, media, metadata, writing
from server_sync.embedded import start_portal
from server_sync.operator import _REFUSED, config_words, words_text
from server_sync.portal_cli import main as portal_cli
from server_sync.staff import add_user
from server_sync.wire import protocol as P

KID = "center-1f"
WAITING = "次の通信で届きます"
REFUSED = "に公開したプレイリストを、この端末は受け取れませんでした。"
_SESSIONS: dict[tuple[str, str], requests.Session] = {}
"""The kiosks page's reader, signed in once a language (a password check is slow on purpose)."""


@pytest.fixture
def portal(db_url: str):
    handle = start_portal(db_url)
    eng = handle.app.state.engine
    catalog.import_catalog(eng, ONE_PROJECT_CATALOG)
    add_user(eng, "yamada", PASSWORD, "staff")
    _SESSIONS.clear()  # signed in to an earlier portal, perhaps on the same port
    yield handle
    handle.stop()


def _publish(eng, data: bytes) -> tuple[int, int]:  # noqa: ANN001
    """A playlist of one movie for the kiosk, published: (version, when it was published)."""
    sha = configstore.add_media(eng, data, "video/mp4")
    out = configstore.publish(eng, {"playlist": [{"sha256": sha, "name": "a.mp4", "project": "proj-a"}]},
                              target=f"kiosk:{KID}", by="yamada")
    with eng.connect() as conn:
        return out["version"], int(conn.execute(select(configs.c.created_ms)
                                                 .where(configs.c.version == out["version"])).scalar_one())


def _row(url: str, lang: str = "ja") -> tuple[str, str, str]:
    """The kiosk's playlist cell on the kiosks page: (its words, its state, the whole cell's HTML)."""
    if (url, lang) not in _SESSIONS:
        _SESSIONS[(url, lang)] = staff_session(url, "yamada", lang=lang)[0]
    page = _SESSIONS[(url, lang)].get(url + "/staff/kiosks", timeout=10).text
    row = re.search(rf'<tr data-kiosk="{KID}">.*?</tr>', page, re.S)
    assert row is not None, page[-3000:]
    cell = re.search(r'<td class="config">(.*?)</td>', row.group(0), re.S)
    assert cell is not None, row.group(0)
    said = re.search(r'<span class="([^"]*)" data-config="([^"]*)">([^<]*)</span>', cell.group(1))
    assert said is not None, cell.group(1)
    return said.group(3), said.group(2) + (" bad" if "bad" in said.group(1) else ""), cell.group(1)


def _stored(eng) -> tuple:  # noqa: ANN001
    with eng.connect() as conn:
        return tuple(conn.execute(select(kiosks.c.config_refused_version, kiosks.c.config_refused_reason,
                                         kiosks.c.config_refused_detail).where(kiosks.c.id == KID)).one())


def test_a_refused_playlist_is_said_on_the_kiosks_page_until_a_good_one_is_applied(portal, tmp_path: Path,
                                                                                    capsys) -> None:  # noqa: ANN001
    eng = portal.app.state.engine
    rig = make_rig(tmp_path, KID)
    up = enrolled(rig, portal)
    try:
        assert up.sync_once().ok
        v1, published = _publish(eng, b"clip-a" * 100)
        with writing(eng) as conn:  # the stored movie is damaged: the kiosk finds it does not match its checksum
            conn.execute(update(media).where(media.c.sha256 == json.loads(conn.execute(
                select(configs.c.document).where(configs.c.version == v1)).scalar_one())["playlist"][0]["sha256"])
                .values(data=b"not the movie"))

        # The round that fetches it refuses it; its heartbeat was sent before, so the portal hears of it next round.
        assert up.sync_once().ok and up.state.config_applied == 0
        assert up.state.extra["config_refused"]["version"] == v1
        assert up.state.extra["config_refused"]["reason"] == "media"
        assert WAITING in _row(portal.url)[0]
        assert up.sync_once().ok
        assert _stored(eng)[:2] == (v1, "media")

        words, state, cell = _row(portal.url)
        assert state == "refused bad", cell
        assert words == (f"{pages.when(published)} に公開したプレイリストを、この端末は受け取れませんでした。"
                         "プレイリストの動画がうまく届かなかったためです。このままでは届きません。プレイリストの動画を"
                         "確かめて、もう一度「端末に公開」を押してください。"), words
        assert WAITING not in cell and not re.search(r"\bv\d", words)
        assert "content does not match its checksum" in cell  # the kiosk's own words, on the details line only
        assert portal_cli(["kiosks", "--db", portal.db_url]) == 0  # the administrator's listing says it too
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(KID))
        assert f"config=0/{v1} REFUSED(v{v1} media: " in line and "does not match its checksum" in line, line
        en_words = _row(portal.url, "en")[0]
        assert en_words.startswith("This kiosk could not take the playlist published ") and "movie" in en_words

        # A good publish: the kiosk takes it, the page says so at once, and its next heartbeat clears the refusal.
        v2, _ = _publish(eng, b"clip-b" * 100)
        assert up.sync_once().ok and up.state.config_applied == v2 and "config_refused" not in up.state.extra
        words, state, cell = _row(portal.url)
        assert (words, state) == ("最新のプレイリストで動いています", "ok"), cell
        assert up.sync_once().ok
        assert _stored(eng) == (None, None, None)
        assert REFUSED not in _row(portal.url)[2]
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)


def test_a_document_the_kiosk_cannot_read_says_to_check_and_call_the_administrator(portal, tmp_path: Path) -> None:
    """A portal newer than the kiosk's software publishes what the kiosk's checks refuse: the page says so, and that
    publishing a newer playlist the kiosk has not tried yet is waited for, not called refused."""
    eng = portal.app.state.engine
    rig = make_rig(tmp_path, KID)
    up = enrolled(rig, portal)
    try:
        v1, published = _publish(eng, b"clip-a" * 100)
        with writing(eng) as conn:  # a key this kiosk's software does not know
            doc = json.loads(conn.execute(select(configs.c.document).where(configs.c.version == v1)).scalar_one())
            conn.execute(update(configs).where(configs.c.version == v1)
                         .values(document=json.dumps({**doc, "future_feature": True})))
        assert up.sync_once().ok and up.sync_once().ok and up.state.config_applied == 0
        words, state, cell = _row(portal.url)
        assert state == "refused bad" and words.startswith(f"{pages.when(published)} {REFUSED}"), cell
        assert "読み取れなかった" in words and "動画と時間帯を確かめて" in words and "管理者に連絡" in words, words
        assert "future_feature" in cell  # the kiosk's own words, for the administrator

        # A newer version the kiosk has not fetched yet: that one is waited for (the refusal named the older one).
        with writing(eng) as conn:
            conn.execute(update(configs).where(configs.c.version == v1).values(document=json.dumps(doc)))
        _publish(eng, b"clip-b" * 100)
        assert WAITING in _row(portal.url)[0]
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)


@pytest.mark.parametrize("refused, ja", [
    ({"version": 3, "reason": "disk", "published_ms": 0}, "書き込めないためです。管理者に連絡"),
    ({"version": 3, "reason": "damaged", "published_ms": 0}, "途中でこわれて届いたためです。"),
    ({"version": 3, "reason": "from_a_newer_kiosk", "published_ms": 0}, "受け取れませんでした。このままでは"),
    ({"version": 2, "reason": "media", "published_ms": 0}, WAITING),  # an older version than the newest
    ({"version": 3, "reason": "media", "published_ms": None}, WAITING),  # its publication is not known
])
def test_config_words_of_a_refusal(refused: dict, ja: str) -> None:
    words, _ = config_words(1, 3, refused, "ja")
    assert ja in words_text(words, "ja")
    assert config_words(3, 3, refused, "ja")[1] == "ok"  # the kiosk applied the newest since: no refusal said
    assert set(_REFUSED) == CONFIG_REFUSED_REASONS


def test_the_heartbeat_field_is_bounded(portal, tmp_path: Path) -> None:
    """The portal refuses a report outside the protocol (and stores nothing of it); the kiosk cuts its line."""
    assert CONFIG_REFUSED_DETAIL == P.MAX_CONFIG_REFUSED_DETAIL
    eng = portal.app.state.engine
    rig = make_rig(tmp_path, KID)
    up = enrolled(rig, portal)
    try:
        base = {"boot": 1, "mono_ms": 1000, "wall_ms": int(time.time() * 1000), "clock_synced": True,
                "ledger_size": rig.ledger.size}
        path = f"/api/v1/kiosks/{KID}/heartbeat"
        for bad in ({"version": 1, "reason": "media", "detail": "x" * (P.MAX_CONFIG_REFUSED_DETAIL + 1)},
                    {"version": 2**31, "reason": "media", "detail": ""},
                    {"version": 1, "reason": "Media!", "detail": ""},
                    {"version": 1, "reason": "media", "detail": "a\u0000b"}):
            r = signed_post(portal.url, rig, path, json.dumps({**base, "config_refused": bad}).encode())
            assert r.status_code == 422, (bad, r.text)
        assert _stored(eng) == (None, None, None)
        r = signed_post(portal.url, rig, path, json.dumps({**base, "config_refused": {
            "version": 1, "reason": "media", "detail": "y" * P.MAX_CONFIG_REFUSED_DETAIL}}).encode())
        assert r.status_code == 200, r.text
        assert _stored(eng) == (1, "media", "y" * P.MAX_CONFIG_REFUSED_DETAIL)
        # The kiosk sends its own refusal cut to one line of the limit, and nothing for a version it applied since.
        up.state.extra["config_refused"] = {"version": 5, "reason": "invalid", "detail": "a\nb " + "z" * 500}
        got = up._config_refused()
        assert got is not None and got["detail"].startswith("a b z") and len(got["detail"]) == CONFIG_REFUSED_DETAIL
        up.state.config_applied = 5
        assert up._config_refused() is None
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)


def test_an_older_portal_database_gains_the_column(db_url: str) -> None:
    eng = make_engine(db_url)
    try:
        drop_schema(eng)
        old = MetaData()
        Table("portal_kiosks", old, *[c._copy() for c in kiosks.columns if not c.name.startswith("config_refused")])
        old.create_all(eng)
        create_schema(eng)
        have = {c["name"] for c in inspect(eng).get_columns("portal_kiosks")}
        assert {"config_refused_version", "config_refused_reason", "config_refused_detail"} <= have
    finally:
        metadata.drop_all(eng)
        eng.dispose()
