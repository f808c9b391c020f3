"""Touch hit-testing: a finger on a drawn button becomes exactly that button's flow event."""

from __future__ import annotations

import dataclasses

import pygame
import pytest
from app_samples import CTX, backdrop, screens

from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import ProjectInfo, actions, chrome, render


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def targets_of(data: flow.Screen, size: tuple[int, int]) -> list[ui.Target]:
    return render(data, backdrop(size), 0, ctx=CTX)


def center(targets: list[ui.Target], action: str, value: object = None) -> tuple[int, int]:
    t = [t for t in targets if t.action == action and (value is None or t.value == value)]
    assert len(t) == 1, (action, value, targets)
    return t[0].rect.center


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (1920, 1080)])
def test_amount_buttons_cancel_and_toggle_on_choose_amount(size):
    targets = targets_of(screens()["choose_amount"], size)
    for amount in (100, 500, 1000):
        ev = actions.touch(targets, center(targets, chrome.AMOUNT, amount), 5)
        assert ev == flow.ChooseAmount(now_ms=5, amount_yen=amount)
    assert isinstance(actions.touch(targets, center(targets, chrome.LANG), 5), flow.ToggleLanguage)
    assert isinstance(actions.touch(targets, center(targets, chrome.CANCEL), 5), flow.Cancel)
    # Between buttons: just a touch (keeps the screen awake), never an amount.
    assert actions.touch(targets, (size[0] // 2, 2), 5) == flow.Touch(now_ms=5)


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)])
def test_every_button_is_finger_sized_and_buttons_do_not_overlap(size):
    for name, data in screens().items():
        targets = targets_of(data, size)
        buttons = [t for t in targets if t.rect != pygame.Rect((0, 0), size)]
        for t in buttons:
            assert t.rect.height >= ui.THEME.min_target(pygame.Surface(size)), (name, t)
            assert pygame.Rect((0, 0), size).contains(t.rect), (name, t)
        for i, a in enumerate(buttons):
            for b in buttons[i + 1:]:
                assert not a.rect.colliderect(b.rect), (name, a, b)


def test_every_screen_has_the_language_toggle_top_right():
    for lang, _label_lang in (("ja", "en"), ("en", "ja")):
        for name, data in screens(lang).items():
            targets = targets_of(data, (1280, 720))
            toggle = [t for t in targets if t.action == chrome.LANG]
            assert len(toggle) == 1, name
            assert toggle[0].rect.right > 1000 and toggle[0].rect.top < 100, name
            # The topmost target at the toggle is the toggle, also where a whole-screen touch target lies under it.
            assert ui.hit(targets, toggle[0].rect.center).action == chrome.LANG


def test_tap_card_keeps_the_amounts_for_a_change_of_mind():
    targets = targets_of(screens()["tap_card"], (1280, 720))
    assert (actions.touch(targets, center(targets, chrome.AMOUNT, 1000), 9)
            == flow.ChooseAmount(now_ms=9, amount_yen=1000))


def test_a_touch_on_the_loop_opens_the_amounts_for_the_project_on_screen():
    targets = targets_of(screens()["attract"], (1280, 720))
    assert actions.touch(targets, (300, 300), 1) == flow.Touch(now_ms=1, project="kodomo-shokudo")


@pytest.mark.parametrize("name", ["thanks", "error_declined", "error_unavailable"])
def test_thanks_and_errors_dismiss_on_any_touch(name):
    targets = targets_of(screens()[name], (1280, 720))
    assert isinstance(actions.touch(targets, (640, 400), 1), flow.Touch)
    assert isinstance(actions.touch(targets, (10, 700), 1), flow.Touch)


def test_charging_offers_nothing_but_the_language():
    targets = targets_of(screens()["charging"], (1280, 720))
    assert [t.action for t in targets] == [chrome.LANG]
    assert actions.touch(targets, (640, 400), 1) == flow.Touch(now_ms=1)  # ignored by the flow while charging


def test_touches_drive_the_real_flow_from_loop_to_tap_card_in_english():
    settings = flow.FlowSettings(projects=("kodomo-shokudo", "mimamori"))
    state = flow.initial(settings, 0)
    for action, value in ((chrome.TOUCH, None), (chrome.LANG, None), (chrome.AMOUNT, 500)):
        targets = targets_of(flow.screen_for(state, settings), (1280, 720))
        pos = (300, 300) if action == chrome.TOUCH else center(targets, action, value)
        state, _ = flow.step(state, actions.touch(targets, pos, 10), settings)
    assert (state.name, state.lang, state.amount_yen, state.project) == ("tap_card", "en", 500, "kodomo-shokudo")


def test_receipt_qr_encodes_the_portal_receipt_url():
    import segno

    from kiosk.config import validate_config
    from kiosk.ui.screens import DEFAULT_RECEIPT_BASE, ScreenContext
    from kiosk.ui.screens.receipt import FIXED_MASK, QUIET, receipt_qr

    base = {"kiosk": {"id": "qr-test"}, "projects": [{"id": "p", "title": "t", "area": "town"}]}
    assert ScreenContext.from_config(validate_config(base)).receipt_url("abc") == f"{DEFAULT_RECEIPT_BASE}/r/abc"
    cfg = validate_config({**base, "portal": {"url": "https://portal.example.jp/"}})
    url = ScreenContext.from_config(cfg).receipt_url("k7q2m9x4c8d1abcd")
    assert url == "https://portal.example.jp/r/k7q2m9x4c8d1abcd"
    assert ScreenContext.from_config(cfg, receipt_base_url="http://10.0.0.2:8080").receipt_url("x") == \
        "http://10.0.0.2:8080/r/x"
    # With the ledger's key id (App sets it once the ledger is open) the fragment names the kiosk's key.
    keyed = ScreenContext.from_config(cfg, receipt_key_id="0123456789abcdef").receipt_url("CODE")
    assert keyed == "https://portal.example.jp/r/CODE#k=0123456789abcdef"
    assert segno.make(keyed, error="m").is_micro is False
    surf = receipt_qr(url, 200)
    matrix = [list(r) for r in segno.make(url, error="m", micro=False, mask=FIXED_MASK).matrix]
    scale = surf.get_width() // (len(matrix) + 2 * QUIET)
    assert scale >= 2 and surf.get_width() <= 200
    for y, row in enumerate(matrix):
        for x, bit in enumerate(row):
            px = surf.get_at(((x + QUIET) * scale + scale // 2, (y + QUIET) * scale + scale // 2))[:3]
            assert (px == (0, 0, 0)) == bool(bit)


@pytest.mark.parametrize("title", ["こども\x00食堂", "\u202e", "\u200b"], ids=["nul", "rtl-override-only", "zwsp-only"])
def test_the_attract_screen_draws_any_project_title(title: str) -> None:
    """A portal title with a NUL, or of invisible characters only, raised in pygame on every frame: the player
    swallowed the error and the donation overlay was never drawn."""
    ctx = dataclasses.replace(CTX, projects={**CTX.projects, "p": ProjectInfo("p", title, "", "", "children", 50_000)})
    s = pygame.Surface((1280, 720))
    targets = render(flow.AttractScreen("p", 100, True, "ja"), s, 0, ctx=ctx)
    assert targets
