"""What a Japanese-reading staff member sees of a failed sync on the maintenance menu.

The reviewer's finding: the status page's sync row, its page and the Sync now page showed the uploader's last
error as it came ("network: ConnectionError: …", "kiosk is not enrolled with this portal: on the portal server
run `kiosk-portal enroll-code …`", "… sync-state.json is unreadable (empty) …", "HTTP 503 …"), and the network
row said "the portal may be down" for errors that say nothing of the sort (not enrolled, a refused request).

Each error here is made by the real uploader (kiosk/sync/uploader.py) against a real loopback server or a real
sync-state.json, read by the menu the way `kiosk status` reads it (``saved_sync_figures``), and checked in the
strings the menu draws: plain Japanese that says what happened and what to do, and the uploader's own English
words only after the 詳細 (details) label, for the technician on the phone; in English mode, English words.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.ops.status import StatusInputs, saved_sync_figures
from kiosk.sync.uploader import SyncState, Uploader
from tests.loopback import LoopbackServer, answering, refused_port
from tests.sync.sync_helpers import make_rig

from .conftest import STATUS, Rig, build_rig
from .test_menu_words import drawn, english_words

DETAILS_JA = "詳細（保守担当者向け）："
DETAILS_EN = "Details (for the maintainer): "


def _enrolled_with(up_dir: Path, kiosk_id: str, url: str) -> None:
    """A sync-state.json as `kiosk enroll` leaves it (the enrollment itself is the portal's business)."""
    SyncState(portal_url=url, kiosk_id=kiosk_id, key_id="key-1", enrolled_ms=int(time.time() * 1000)).save(
        up_dir / "sync-state.json")


def _round(rig, url: str = "") -> SyncState:
    up: Uploader = rig.uploader(url)
    try:
        return up.sync_once(max_attempts=1)
    finally:
        up.close()


def _network(rig) -> SyncState:
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        _enrolled_with(rig.cfg.data_dir, rig.kiosk_id, url)
        return _round(rig)


def _http(status: int, body: bytes, headers: dict[str, str] | None = None) -> Callable[..., SyncState]:
    def make(rig) -> SyncState:
        with LoopbackServer(answering(status, body, headers)) as server:
            _enrolled_with(rig.cfg.data_dir, rig.kiosk_id, server.url)
            return _round(rig)
    return make


def _not_enrolled(rig) -> SyncState:
    with refused_port() as port:
        return _round(rig, f"http://127.0.0.1:{port}")


def _unreadable(rig) -> SyncState:
    (rig.cfg.data_dir / "sync-state.json").write_bytes(b"")  # a power cut on an SD card that lied about its writes
    return _round(rig)


# kind: (how the uploader fails, the short Japanese said on the row, a piece of the Japanese what-to-do)
CASES: dict[str, tuple[Callable[..., SyncState], str, str]] = {
    "network": (_network, "ポータルにつながりません", "LANケーブルかWi-Fi"),
    "portal_busy": (_http(503, b'{"error": "unavailable", "reason": "Service Unavailable"}'),
                    "ポータルが一時的に応答していません", "数分待って"),
    "refused": (_http(403, b'{"error": "forbidden", "reason": "kiosk revoked"}'),
                "ポータルがこの端末のデータを受け付けません", "「今すぐ同期」では直りません"),
    "bad_answer": (_http(302, b"", {"Location": "http://wifi.example/login"}),
                   "ポータルからの返事が正しくありません", "アドレス"),
    "not_enrolled": (_not_enrolled, "この端末はポータルに登録されていません", "登録コード"),
    "state_unreadable": (_unreadable, "同期の記録ファイルが読めません", "台帳は無事"),
}


@pytest.fixture
def failed(tmp_path: Path) -> Iterator[Callable[[str, str], tuple[Rig, SyncState]]]:
    """A menu rig whose status page and Sync now page read a real uploader's state after a failed round."""
    rigs: list = []

    def make(kind: str, lang: str) -> tuple[Rig, SyncState]:
        kiosk = make_rig(tmp_path / f"kiosk-{kind}-{lang}")
        rigs.append(kiosk)
        kiosk.donate(3)
        state = CASES[kind][0](kiosk)
        assert state.last_error, kind
        rig = build_rig(tmp_path / f"menu-{kind}-{lang}")
        rigs.append(rig)
        rig.machine.language = lang
        figures = saved_sync_figures(state.to_json(), kiosk.ledger.size, int(time.time() * 1000))
        rig.services.status_inputs = lambda: dataclasses.replace(STATUS, **figures)  # type: ignore[arg-type]
        rig.services.sync_state = lambda: state
        return rig, state

    yield make
    for r in rigs:
        r.ledger.close(checkpoint=False)


def _row(rig: Rig, key: str) -> int:
    return next(i for i, item in enumerate(rig.menu.model.status) if item.key == key)


def _before_details(strings: list[tuple[int, str]], label: str) -> tuple[str, str]:
    """The drawn text before the details label, and from it on (lines joined as drawn: a long one is drawn
    wrapped, in pieces, and the label may end one piece with the detail starting the next)."""
    text = "".join(t for _, t in strings)
    at = text.find(label)
    return (text, "") if at < 0 else (text[:at], text[at:])


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_uploader_errors_are_classified_by_kind(failed, kind):
    """The real uploader's message for each failure falls in its kind (a test holds the two in line)."""
    from kiosk.ops.status import sync_error_kind

    _, state = failed(kind, "ja")
    assert state.last_error_kind == kind, state.last_error  # set where the error is built, saved beside it
    assert sync_error_kind(state.last_error) == kind, state.last_error  # an older release's file: read from the words


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_sync_row_says_the_error_in_plain_japanese(failed, kind):
    rig, state = failed(kind, "ja")
    rig.open()
    rig.menu.model.press("go", "status")
    text = "\n".join(t for _, t in drawn(rig))
    short = CASES[kind][1]
    assert short in text, text
    assert not english_words(text), (kind, text)
    assert (state.last_error or "")[:12] not in text


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_sync_item_says_what_to_do_and_keeps_the_detail_for_the_technician(failed, kind):
    rig, state = failed(kind, "ja")
    rig.open()
    rig.menu.model.press("go", "status")
    rig.menu.model.press("status_item", _row(rig, "sync"))
    before, after = _before_details(drawn(rig), DETAILS_JA)
    short, todo = CASES[kind][1:]
    assert short in before and "対処：" in before and todo in before, before
    assert not english_words(before), (kind, before)
    error = state.last_error or ""
    assert after.startswith(DETAILS_JA + error[:4]), after  # the uploader's own words, for the phone


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_sync_now_page_says_the_last_error_in_plain_japanese(failed, kind):
    rig, state = failed(kind, "ja")
    rig.open()
    rig.menu.model.press("go", "sync")
    before, after = _before_details(drawn(rig), DETAILS_JA)
    short, todo = CASES[kind][1:]
    assert short in before and todo in before, before
    assert not english_words(before), (kind, before)
    assert after.startswith(DETAILS_JA + (state.last_error or "")[:4]), after


@pytest.mark.parametrize("kind", ["network", "not_enrolled"])
def test_the_english_menu_says_it_in_english_with_the_detail(failed, kind):
    rig, state = failed(kind, "en")
    rig.open()
    rig.menu.model.press("go", "status")
    rig.menu.model.press("status_item", _row(rig, "sync"))
    text = "\n".join(t for _, t in drawn(rig))
    short = {"network": "Cannot reach the portal", "not_enrolled": "not registered with the portal"}[kind]
    assert short in text and "What to do:" in text, text
    assert DETAILS_EN + (state.last_error or "")[:4] in text.replace("\n", ""), text
    assert not any("\u3040" <= ch <= "\u30ff" for ch in text), text  # no kana on the English menu


@pytest.mark.parametrize("kind", ["not_enrolled", "state_unreadable", "refused"])
def test_the_network_row_does_not_blame_the_portal_for_what_it_did_not_do(failed, kind):
    """Not enrolled, an unreadable sync record, a refused request: the network row said "ネットワークは接続、
    ポータルに届きません" and "the portal may be down", sending staff to the wrong fix."""
    rig, _ = failed(kind, "ja")
    rig.open()
    rig.menu.model.press("go", "status")
    rig.menu.model.press("status_item", _row(rig, "network"))
    text = "".join(t for _, t in drawn(rig))
    assert "届きません" not in text and "止まっている" not in text, text
    if kind != "refused":
        assert "登録されていません" in text and "登録コード" in text, text
    assert not english_words(text), text


@pytest.mark.parametrize("error,kind", [
    # The uploader's messages made on paths a loopback test cannot walk as root: a full disk, a pushed config
    # that cannot be applied (kiosk/sync/uploader.py one_round and _pull_config).
    ("cannot write sync-state.json: No space left on device", "local_save"),
    ("config v3: the portal's config answer is v2, not newer than v3 applied: not applied", "config"),
    ("internal: 'NoneType' object has no attribute 'x'", "other"),
])
def test_the_local_failures_are_said_plainly_too(tmp_path, error, kind):
    from kiosk.ops.status import sync_error_kind

    assert sync_error_kind(error) == kind
    rig = build_rig(tmp_path)
    try:
        rig.services.status_inputs = lambda: dataclasses.replace(STATUS, sync_error=error)
        rig.open()
        rig.menu.model.press("go", "status")
        rig.menu.model.press("status_item", _row(rig, "sync"))
        before, after = _before_details(drawn(rig), DETAILS_JA)
        assert not english_words(before) and "対処：" in before, before
        assert after.startswith(DETAILS_JA + error[:4]), after
    finally:
        rig.ledger.close(checkpoint=False)


def test_status_inputs_without_an_error_show_no_details(rig):
    rig.open()
    rig.menu.model.press("go", "status")
    rig.menu.model.press("status_item", _row(rig, "sync"))
    assert DETAILS_JA not in "".join(t for _, t in drawn(rig))
    assert isinstance(rig.services.status_inputs(), StatusInputs)
