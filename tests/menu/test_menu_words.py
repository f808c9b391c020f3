"""Issue #15 (items 8, 14, 15 and the golden review): what staff read on the menu pages, checked in the strings
each page actually draws (``widgets.measure_text``), in both languages.

- In Japanese, no English words: the USB-export page printed "exported to …" and "note: … is not closed yet",
  the Z page named a payment method by its raw id ("suica-terminal"), the status page a card family by its
  ("suica"). Allowed: units and acronyms staff know (USB, QR, PIN, IC, ID, CSV, Wi-Fi…), card brands, and
  data that has no translation (file and folder names, ids with digits, the stick's own label).
- In English, counts are plural-aware (the Z page said "1 donations").
- Every payment method is shown by a plain label from one mapping (``closeout.METHOD_NAMES``); the CSV keeps
  the raw id for machines.
- No text below 3 % of the screen height, the floor the citizen screens keep (readable from two metres).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pygame
import pytest

from kiosk.payment import RefundRefused, RefundResult, TerminalUnavailable
from kiosk.staff.closeout import closeout_csv, summary_lines, x_report
from kiosk.staff.menu import model as m
from kiosk.staff.menu.status_text import FAMILY_NAMES
from kiosk.staff.usb_export import UsbExportError, export_day
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import translations

from .conftest import STATUS, Rig, build_rig
from .test_menu_golden import SETUPS, _refunds

ALLOWED = frozenset({"USB", "QR", "PIN", "IC", "ID", "CSV", "Wi-Fi", "LAN", "MB", "GB", "KB", "ms", "pt",
                     "Square", "English", *FAMILY_NAMES.values()})
"""ASCII words a Japanese staff page may show: units, acronyms, brands, and "English" (the language button
names each language in itself)."""

WORD = re.compile(r"[A-Za-z]{3,}")
TOKEN = re.compile(r"[A-Za-z0-9._/\-]+")


def english_words(text: str, data: frozenset[str] = frozenset()) -> list[str]:
    """ASCII words of 3+ letters in ``text`` that are neither allowed nor data.

    A token with a digit, a dot or a slash is data (a file or folder name, a path, a refund number, a clip
    id); so is anything between backticks (a command to type) and the strings in ``data``."""
    text = re.sub(r"`[^`]*`", " ", text)
    for d in data:
        text = text.replace(d, " ")
    found = []
    for token in TOKEN.findall(text):
        if token in ALLOWED or re.search(r"[0-9./]", token):
            continue
        found += [w for w in WORD.findall(token) if w not in ALLOWED]
    return found


def drawn(rig: Rig, size: tuple[int, int] = (1280, 720)) -> list[tuple[int, str]]:
    surface = pygame.Surface(size)
    with ui.measure_text() as strings:
        rig.menu.render(surface, 0)
    return list(strings)


def _page(tmp_path: Path, name: str, lang: str, size: tuple[int, int] = (1280, 720)) -> list[tuple[int, str]]:
    rig = build_rig(tmp_path / f"{name}-{lang}-{size[0]}")
    try:
        rig.machine.language = lang
        SETUPS[name](rig)
        return drawn(rig, size)
    finally:
        rig.ledger.close(checkpoint=False)


# --- more states than the goldens show ---------------------------------------------------------------------
def _status_unknown(rig: Rig) -> None:
    rig.services.status_inputs = lambda: dataclasses.replace(STATUS, network_up=None, portal_reachable=None,
                                                             enrolled=None, uptime_s=86400 + 60, pending_entries=1)
    rig.open()
    rig.menu.model.press("go", "status")


def _status_unknown_item(rig: Rig) -> None:
    _status_unknown(rig)
    worst = next(i for i, item in enumerate(rig.menu.model.status) if item.value == "unknown")
    rig.menu.model.press("status_item", worst)


def _x_after_close(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500, "square")
    rig.open()
    for action, *value in (("go", "z_confirm"), ("z_run",), ("back",)):
        rig.menu.model.press(action, *value)
    rig.donate(2, "midori", 1000, "felica")
    rig.donate(3, "midori", 100, "some-new-terminal")
    rig.menu.model.press("go", "x_report")


def _usb_real(rig: Rig) -> None:
    """A real export onto the rig's stick directory, with a log source that fails (journalctl missing)."""
    def no_journal(start: int, end: int) -> list[str]:
        raise UsbExportError("journalctl not found")

    rig.donate(1, "kodomo", 500)
    led, cfg = rig.ledger, rig.cfg
    rig.services.export = lambda path: export_day(path, led.path, kiosk_id=cfg.kiosk.id,
                                                  timezone=cfg.kiosk.timezone, logs=no_journal)
    rig.open()
    rig.menu.model.press("go", "usb")
    rig.menu.model.press("usb_export", 0)


def _sync_reload(rig: Rig) -> None:
    rig.open()
    rig.menu.model.press("go", "playlist")
    rig.menu.model.press("playlist_reload")


# --- the errors of the ledger writer, the uploader and the payment provider (they came in their own English) --
def _refund_failing(exc: Exception) -> Callable[[Rig], None]:
    def setup(rig: Rig) -> None:
        def refund(ref: str, yen: int, key: str, reason: str) -> RefundResult:
            raise exc

        rig.donate(1, "kodomo", 500, "square")
        rig.services.refund, rig.services.refund_method = refund, "square"
        rig.open()
        for action, *value in (("go", "refund"), ("refund_pick", 0), ("refund_run",)):
            rig.menu.model.press(action, *value)
    return setup


def _refund_answer(status: str) -> Callable[[Rig], None]:
    def setup(rig: Rig) -> None:
        rig.donate(1, "kodomo", 500, "square")
        rig.services.refund = lambda ref, yen, key, reason: RefundResult("R3fUnDgOlDeN000002", status)
        rig.services.refund_method = "square"
        rig.open()
        for action, *value in (("go", "refund"), ("refund_pick", 0), ("refund_run",)):
            rig.menu.model.press(action, *value)
    return setup


def _refund_new_confirm(rig: Rig) -> None:
    """The provider refused the first request; staff come back to the gift: the page offers a new request."""
    _refund_answer("REJECTED")(rig)
    for action, *value in (("back",), ("go", "refund"), ("refund_pick", 0)):
        rig.menu.model.press(action, *value)


def _refund_ledger_down(rig: Rig) -> None:
    """The provider refunded (COMPLETED) and the void cannot be written: SQLite refuses every INSERT."""
    from tests.donation.conftest import LedgerOutage

    rig.donate(1, "kodomo", 500, "square")
    rig.services.refund = lambda ref, yen, key, reason: RefundResult("R3fUnDgOlDeN000003", "COMPLETED")
    rig.services.refund_method = "square"
    rig.open()
    rig.menu.model.press("go", "refund")
    rig.menu.model.press("refund_pick", 0)
    outage = LedgerOutage(rig.ledger)
    outage.set(True)
    rig.menu.model.press("refund_run")
    outage.set(False)


def _sync_failed(rig: Rig) -> None:
    from kiosk.sync.uploader import SyncError

    def sync() -> str:
        raise SyncError("portal answered 503: Service Unavailable (retry after 30 s)")

    rig.services.sync_now = sync
    rig.open()
    rig.menu.model.press("go", "sync")
    rig.menu.model.press("sync_run")


def _reload_failed(rig: Rig) -> None:
    import httpx

    def reload() -> list:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    rig.services.reload_playlist = reload
    rig.open()
    rig.menu.model.press("go", "playlist")
    rig.menu.model.press("playlist_reload")


def _find_missing(rig: Rig) -> None:
    _refunds(rig)
    rig.open()
    for action, *value in (("go", "refund"), ("go", "refund_find"), ("ref_digit", "9"), ("ref_digit", "9"),
                           ("ref_ok",)):
        rig.menu.model.press(action, *value)


ERRORS = {
    "refund_unreachable": _refund_failing(TerminalUnavailable(
        "Square did not answer the refund; try again (it is never made twice)")),
    "refund_refused": _refund_failing(RefundRefused(
        "Square refused the refund: REFUND_AMOUNT_INVALID: refund exceeds the payment")),
    "refund_unexpected": _refund_failing(RuntimeError("refund: unexpected answer from provider")),
    "refund_rejected": _refund_answer("REJECTED"),
    "refund_failed": _refund_answer("FAILED"),
    "refund_pending": _refund_answer("PENDING"),
    "refund_ledger_down": _refund_ledger_down,
    "sync_failed": _sync_failed,
    "playlist_reload_failed": _reload_failed,
    "refund_find_missing": _find_missing,
}
"""Error states staff can meet on the menu, each with the error's own English words (issue #15 items 8, 12)."""

EXTRA = {"status_unknown": _status_unknown, "status_unknown_item": _status_unknown_item,
         "x_after_close": _x_after_close, "usb_real": _usb_real, "playlist_reloaded": _sync_reload,
         "refund_new_confirm": _refund_new_confirm, **ERRORS}
ALL = {**SETUPS, **EXTRA}


def _render(tmp_path: Path, name: str, lang: str, size: tuple[int, int] = (1280, 720)) -> tuple[Rig, list]:
    rig = build_rig(tmp_path / f"{name}-{lang}-{size[0]}")
    rig.machine.language = lang
    ALL[name](rig)
    return rig, drawn(rig, size)


@pytest.fixture
def render(tmp_path: Path):
    rigs: list[Rig] = []

    def go(name: str, lang: str, size: tuple[int, int] = (1280, 720)) -> tuple[Rig, list[tuple[int, str]]]:
        rig, strings = _render(tmp_path, name, lang, size)
        rigs.append(rig)
        return rig, strings

    yield go
    for rig in rigs:
        rig.ledger.close(checkpoint=False)


@pytest.mark.parametrize("name", sorted(ALL))
def test_a_japanese_menu_page_draws_no_english_words(render, name):
    rig, strings = render(name, "ja")
    assert strings, name
    data = frozenset({rig.stick.name})  # the stick's own volume label, as staff see it on the stick
    found = {text: words for _, text in strings if (words := english_words(text, data))}
    assert not found, f"{name}: English on a Japanese page: {found}"


def test_the_word_check_catches_what_staff_saw():
    """The check itself: the old USB-export and Z lines fail it, units, brands and file names pass."""
    assert english_words("exported to /media/kiosk/KIOSK-USB/kiosk-1-20251121") == ["exported"]
    assert english_words("note: 2025-11-21 is not closed yet: the CSV holds the running (X) totals")
    assert english_words("suica-terminal：1 件・¥500") == ["suica", "terminal"]
    assert english_words("この日はすでに締めています（seq 11）") == ["seq"]
    assert not english_words("台帳：ledger.jsonl（48,213バイト）・USBメモリ・Suica・空き 7.1 GB・`kiosk doctor`")


def test_the_usb_export_result_is_japanese_in_japanese_mode(render):
    _, strings = render("usb_real", "ja")
    text = "\n".join(t for _, t in strings)
    assert "exported to" not in text and "note:" not in text and "bytes" not in text, text
    assert "USBメモリのフォルダ：kiosk-test-kiosk-1-" in text
    assert "はまだ日計前です" in text and "ログは書き出せませんでした" in text, text
    _, strings = render("usb_real", "en")
    text = "\n".join(t for _, t in strings)
    assert "Folder on the stick: kiosk-test-kiosk-1-" in text and "is not closed yet" in text, text
    assert "The log could not be exported" in text


def test_the_usb_page_shows_free_space_not_the_device(render):
    for lang, free in (("ja", "空き 7.1 GB"), ("en", "7.1 GB free")):
        _, strings = render("usb", lang)
        text = "\n".join(t for _, t in strings)
        assert free in text and "/dev/" not in text and "vfat" not in text, text


ONE_PLURAL = re.compile(r"(?<![\d,.])1 (donations|entries|points|bytes|clips|frames|days)\b")


@pytest.mark.parametrize("name", sorted(ALL))
def test_english_counts_agree_with_their_number(render, name):
    _, strings = render(name, "en")
    bad = [t for _, t in strings if ONE_PLURAL.search(t)]
    assert not bad, f"{name}: {bad}"


def test_the_z_page_says_1_donation_in_english(render):
    """Item 15: "1 donations" on the close-out page."""
    _, strings = render("z_done", "en")
    text = "\n".join(t for _, t in strings)
    assert "Save the woods: 1 donation, ¥1,000" in text, text
    assert "Children's cafeteria: 2 donations, ¥600" in text, text
    assert "3 donations, ¥1,600, 16 points" in text, text


def test_the_report_pages_do_not_repeat_their_title(render):
    """Golden review: the X and Z pages' first line repeated the page title ("日計 (Z)" under "日計 (Z)")."""
    for name, title in (("x_report", "途中集計 (X)"), ("z_done", "日計 (Z)")):
        _, strings = render(name, "ja")
        texts = [t for _, t in strings]
        assert texts.count(title) == 1 and not any(t.startswith(title + " ") for t in texts), texts
        assert "営業日：11月21日(金)" in texts, texts  # the day as staff say it, not 2025-11-21 (review 11)


def test_counted_phrases_in_both_catalogs():
    """ngettext reaches the Japanese catalog (one form) and English plural rules (two)."""
    rep = {"kind": "X", "date": "2025-11-21", "count": 1, "total_yen": 100, "points": 1,
           "projects": [{"id": "kodomo", "count": 1, "total_yen": 100}],
           "methods": [{"method": "sim", "count": 1, "total_yen": 100}], "clock_unsynced": 1}
    en = summary_lines(rep, {}, translations("en"))
    assert en[1] == "1 donation, ¥100, 1 point", en
    assert en[-1] == "※ Clock not synced on this day (1 donation): the date may be off", en
    ja = summary_lines(rep, {}, translations("ja"))
    assert ja[1] == "1 件・¥100・1 ポイント", ja
    assert ja[-1].startswith("※ 時計未同期の日（寄付 1 件）"), ja


def test_status_values_have_plurals_and_brand_names(render):
    rig, strings = render("status_unknown", "en")
    text = "\n".join(t for _, t in strings)
    assert "1 day 0 h 1 min" in text and "1 entry waiting" in text, text
    assert "last card: Suica" in text and "suica" not in text, text
    assert "41 entries, <1 MB" in text, text  # a 180 KB ledger is not "0 MB"


def test_the_x_page_names_every_method_with_a_label_in_both_languages(render):
    """Item 8 / golden review: the X and Z pages showed "suica-terminal" as it is stored."""
    rig, strings = render("x_after_close", "ja")
    text = "\n".join(t for _, t in strings)
    for label in ("Square 端末", "ICカードリーダー", "その他の決済"):
        assert label in text, (label, text)
    assert "some-new-terminal" not in text and "square" not in text and "felica" not in text
    assert "その後に 2 件の寄付があります" in text, text
    rig.machine.language = "en"
    rig.menu.model.press("back")
    rig.menu.model.press("go", "x_report")
    text = "\n".join(t for _, t in drawn(rig))
    for label in ("Square Terminal: 1 donation", "IC card reader: 1 donation", "Other payment method: 1 donation"):
        assert label in text, (label, text)
    assert "Closed, but 2 donations came after the close-out" in text, text
    # The close-out CSV for machines keeps the raw ids.
    csv_text = closeout_csv(x_report(rig.ledger))
    assert ",method,some-new-terminal," in csv_text and ",method,square," in csv_text


@pytest.mark.parametrize("lang,label", [("ja", "交通系ICカード（端末）"), ("en", "Transit IC card (terminal)")])
def test_the_z_page_shows_the_transit_terminal_by_its_label(render, lang, label):
    _, strings = render("z_done", lang)
    text = "\n".join(t for _, t in strings)
    assert label in text and "suica-terminal" not in text, text


def test_the_close_again_question_shows_no_ledger_seq(render):
    for lang in ("ja", "en"):
        _, strings = render("z_again", lang)
        text = "\n".join(t for _, t in strings)
        assert "seq" not in text, text


def test_a_refund_result_is_plain_words(render):
    """Golden review: "refund R3f… (PENDING)" and "void seq=11" on the refund result."""
    _, strings = render("refund_done", "ja")
    text = "\n".join(t for _, t in strings)
    assert "返金番号：R3fUnDgOlDeN000001" in text and "手続き中" in text, text
    assert "PENDING" not in text and "seq" not in text and "void" not in text, text
    _, strings = render("refund_done", "en")
    text = "\n".join(t for _, t in strings)
    assert "Refund number: R3fUnDgOlDeN000001" in text and "PENDING" not in text and "seq" not in text


def test_a_new_refund_request_is_offered_and_explained_in_both_languages(render):
    """After the provider refused a refund, the gift's page offers a new request, says why it is safe, and which
    request it will be; the result page right after the refusal offers it too."""
    for name in ("refund_rejected", "refund_new_confirm"):
        _, strings = render(name, "ja")
        text = "".join(t for _, t in strings)  # a long line is drawn wrapped, in pieces
        assert "もう一度、新しく返金を申し込む" in text, (name, text)
        assert "前の申し込みでお金が戻ることはないので、二重に返金されることはありません。" in text, (name, text)
    assert "これは2回目の返金の申し込みです。" in text and "返金を断られました" in text, text
    _, strings = render("refund_new_confirm", "en")
    text = " ".join(t for _, t in strings)
    assert "Send a new refund request" in text and "This will be refund request number 2." in text, text
    assert "REJECTED" not in text, text


def test_the_playlist_names_a_clip_as_a_clip(render):
    for lang, word in (("ja", "動画 a1b2c3d4"), ("en", "clip a1b2c3d4")):
        _, strings = render("playlist", lang)
        assert any(word in t for _, t in strings), (lang, strings)
    _, strings = render("playlist_reloaded", "en")
    assert any("Playlist reloaded from the portal: 4 clips." == t for _, t in strings), strings


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["720p", "1080p"])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_menu_text_below_the_floor(tmp_path, size, lang):
    """Readable from two metres: 3 % of the screen height, as on the citizen screens (the status rows'
    values were 21 px at 720p)."""
    floor = round(0.03 * size[1])
    too_small = {}
    for name in sorted(SETUPS):
        smallest = min(_page(tmp_path, name, lang, size))
        if smallest[0] < floor:
            too_small[name] = smallest
    assert not too_small, f"text below {floor} px: {too_small}"


def test_every_reachable_page_is_covered():
    assert set(m.PAGES) <= set(ALL)


STATES = [
    dict(reader_state="lost", reader_detail="", last_family="pasmo", payment_state="offline", payment_detail=""),
    dict(reader_state="missing", reader_detail="", last_family=None, payment_state="error", payment_detail=""),
    dict(reader_state="fault", reader_detail="", last_family="icoca", payment_state="busy", network_up=False),
    dict(reader_state=None, payment_state=None, portal_reachable=False),
    dict(enrolled=False, last_sync_age_s=None, pending_entries=1, ledger_ok=False, disk_free_bytes=10 * 1_048_576),
    dict(sync_error="HTTP 503", pending_entries=0, last_sync_age_s=90_000, ledger_ok=None),
    dict(ledger_mismatch=True, sync_error="HTTP 503", pending_entries=3, last_sync_age_s=600),
    dict(ledger_entries=None, disk_free_bytes=None, soc_temp_c=None, uptime_s=None, version="",
         dropped_frames_per_min=None),
    dict(portal_configured=False, disk_writable=False, soc_temp_c=85.0, dropped_frames_per_min=1.0,
         switch_gap_ms=None),
    # Review 51: the words of the payment adapter and the reader, as they come (kiosk/payment/square.py and sim.py
    # health(), kiosk/app/staffside.py, the reader's ReaderDisconnected reason or fix).
    dict(payment_state="error", payment_detail="Square refused the last checkout (HTTP 401: UNAUTHORIZED: This "
         "request could not be authorized.); Square refused the access token (HTTP 401)",
         reader_state="lost", reader_detail="reader unplugged or not found (ENODEV)", last_family="suica"),
    dict(payment_state="ready", payment_detail="device device:TEST-1 (AVAILABLE); last checkout: approved",
         reader_state="fault", reader_detail="sudo tee -a /etc/udev/rules.d/99-kiosk-readers.rules <<'EOF'\n"
         'SUBSYSTEM=="usb", ATTRS{idVendor}=="054c", GROUP="plugdev"\nEOF', last_family=None),
    dict(payment_state="ready", payment_detail="simulated terminal (approve): no real money",
         reader_state="missing", reader_detail="reader error: ValueError"),
    dict(payment_state="offline", payment_detail="Square unreachable (ConnectError)"),
    dict(payment_state="offline", payment_detail="the kiosk failed closed"),
    dict(payment_state="busy", payment_detail="checkout in_progress"),
]


@pytest.mark.parametrize("n", range(len(STATES)))
def test_every_status_value_and_hint_is_japanese(n):
    """The status rows and their what-to-do lines in every state the ops helpers report (not only the golden's
    healthy one): "unknown", "offline", "; last tap pasmo" were shown in English, and (review 51) the payment
    adapter's and the reader's own words: 「エラー: Square refused the last checkout (HTTP 401…)」."""
    from kiosk.ops.status import status_items
    from kiosk.staff.menu import status_text

    cat = translations("ja")
    label = cat.gettext(status_text.DETAILS).split("{detail}")[0]
    for item in status_items(dataclasses.replace(STATUS, **STATES[n])):
        # What the status page and the item's page draw (pages.status_page, status_item_page).
        for text in (status_text.value(item, cat.gettext, cat.ngettext),
                     status_text.item_hint(item, cat.gettext, cat.ngettext)):
            assert not english_words(text), (item, text)
        if item.detail:
            # The uploader's, the adapter's or the reader's words are quoted as they came (staff read them out on
            # the phone), on one line of their own after a Japanese label.
            line = status_text.details(item.detail, cat.gettext)
            assert line.startswith(label) and "\n" not in line, line
            assert line.removeprefix(label)[:20] == " ".join(item.detail.split())[:20], line


def test_refusals_and_failures_are_in_the_staffs_language(rig):
    """A refused grant and a failed USB export were shown in English on a Japanese menu (``str()`` of the
    error); the CLI and the admin trail keep the English sentence."""
    from kiosk.staff.words import StaffMessage

    rig.open()
    limit = rig.ops.volunteer.daily_limit_per_card
    for _ in range(limit // 100 + 1):  # 100 pt at a time on one card, until the daily limit refuses
        for action, *value in (("go", "home"), ("go", "volunteer"), ("activity", "event-help")):
            rig.menu.model.press(action, *value)
        rig.menu.model.points = 100
        rig.menu.model.press("points_ok")
        rig.tap(6)
    view = rig.view()
    assert view.notice_level == "red" and "今日受け取れるのは、あと" in view.notice, view.notice
    assert not english_words(view.notice), view.notice
    assert "more points today" in rig.admin()[-1]["outcome"]  # the audit trail: the English sentence
    rig.machine.language = "en"
    assert "this card can receive" in rig.menu.model._error(StaffMessage(
        "this card can receive {left} more points today (limit {limit} a day)", left=0, limit=200))

    def full(path: Path) -> None:
        from kiosk.staff.usb_export import UsbExportError
        raise UsbExportError("the stick has {free} MB free; {need} MB needed", free=1, need=3)

    rig.machine.language = "ja"
    rig.services.export = full
    rig.menu.model.press("go", "usb")
    rig.menu.model.press("usb_export", 0)
    notice = rig.view().notice
    assert "空きが足りません（空き 1 MB、必要 3 MB）" in notice and not english_words(notice), notice


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_an_error_says_what_to_do_and_keeps_the_detail_for_english(render, name, caplog):
    """The Japanese page says the class of the failure and what to do, without the error's own words; the English
    page and the log keep them (what the maintainer asks for on the phone)."""
    rig, strings = render(name, "ja")
    notice = rig.view().notice + "\n" + "\n".join(rig.view().lines)
    assert rig.view().notice_level in ("red", "yellow"), (name, notice)
    assert not english_words(notice, frozenset({"R3fUnDgOlDeN000002", "R3fUnDgOlDeN000003"})), notice
    assert any(w in notice for w in ("ください", "含まれ", "ありません")), notice  # says what to do / what holds


DETAIL = {"refund_unreachable": ("Cannot reach the payment service", "Square did not answer the refund"),
          "refund_refused": ("The payment service refused the refund", "REFUND_AMOUNT_INVALID"),
          "refund_unexpected": ("Something went wrong", "RuntimeError: refund: unexpected answer"),
          "refund_ledger_down": ("The ledger could not be written", "Ledger"),
          "sync_failed": ("Cannot reach the portal", "portal answered 503"),
          "playlist_reload_failed": ("Cannot reach the portal", "Connection refused")}


@pytest.mark.parametrize("name", sorted(DETAIL))
def test_the_technical_detail_stays_in_english_mode_and_the_log(render, name, caplog):
    caplog.set_level("WARNING", logger="kiosk.staff.menu.model")
    rig, _ = render(name, "en")
    said, detail = DETAIL[name]
    text = rig.view().notice + "\n" + "\n".join(rig.view().lines)
    assert said in text and detail in text, text
    assert detail in caplog.text, caplog.text
