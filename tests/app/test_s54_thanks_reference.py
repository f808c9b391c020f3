"""s54: the thank-you shows the gift's 受付番号, the number the staff menu's refund page finds a gift by
("受付番号は、寄付した方が見たお礼の画面に出ています。"). It showed only the 26-character receipt code, so after a
normal gift (the wrong amount pressed) the staff could not find it from anything the donor had.

Drawn at every golden size, the 640×360 demo and the other panels: the number is there, small, clear of every
other text, button and the receipt card, and clear of the card reader's place at every ``[reader] position``."""

from __future__ import annotations

import pygame
import pytest
from app_samples import CTX, backdrop, screens

from kiosk.app.demo import card_spec
from kiosk.app.runtime import App
from kiosk.ui import widgets as ui
from kiosk.ui.screens import chrome, render
from kiosk.ui.screens.thanks import receipt_card_rect
from tests.app.drive import card_on_reader, entries, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)
from tests.panels import layout_problems

SIZES = [(640, 360), (1280, 720), (1920, 1080), (1080, 1920)]
NAMES = ["thanks", "thanks_no_points", "thanks_points"]
WORD = {"ja": "受付番号", "en": "Reference"}


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_thank_you_shows_the_reference_number_clear_of_everything(size: tuple[int, int], lang: str) -> None:
    for name in NAMES:
        data = screens(lang)[name]
        assert data.reference is not None and data.reference != data.receipt_seq  # the intent's, not the receipt's
        s = backdrop(size)
        with ui.measure_boxes() as boxes:
            targets = render(data, s, 0, ctx=CTX)
        drawn = list(boxes)
        ref = [d for d in drawn if d.text == f"{WORD[lang]} {data.reference}"]
        assert len(ref) == 1, (name, [d.text for d in drawn])
        r = ref[0].rect
        assert not layout_problems(size, targets, drawn), name
        assert ref[0].size < max(d.size for d in drawn), name  # secondary to the thanks
        for d in drawn:
            assert d is ref[0] or not r.colliderect(d.rect), (name, d.text, d.rect, r)
        for t in targets:
            assert not r.colliderect(t.rect), (name, t.action, t.rect, r)
        area = ui.layout_rect(size)
        card = receipt_card_rect(s.subsurface(area)).move(area.topleft)
        assert not r.colliderect(card), (name, card, r)
        for position in chrome.READER_POSITIONS:
            assert not r.colliderect(chrome.reader_pointer_rect(s, position, lang)), (name, position)


def test_a_real_gift_s_thank_you_number_is_the_one_the_refund_page_finds_it_by(tmp_path, media) -> None:  # noqa: F811
    """A real kiosk, a real card, a real ledger: the number on the thank-you is the donation's ``ref_seq`` (its
    intent), which ``kiosk.staff.refund.find_refundable`` looks up, not the receipt's own seq."""
    app = App(_cfg(tmp_path / "data", media))
    app.start()
    try:
        run_until(app, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
        with card_on_reader(app, card_spec(0)):
            shown = run_until(app, lambda p: p.screen.screen == "thanks").screen
        gifts = [e for e in entries(app) if e.type == "donation"]
    finally:
        app.close()
    assert [(g.seq, g.data["intent_seq"]) for g in gifts] == [(shown.receipt_seq, shown.reference)]
    assert shown.reference != shown.receipt_seq
