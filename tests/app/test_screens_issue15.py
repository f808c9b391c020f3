"""Issue #15: what citizens saw on the donation screens, each checked on real pygame surfaces.

Item numbers are the issue's; the golden images (tests/goldenkit.py) show the same screens."""

from __future__ import annotations

import dataclasses
import unicodedata

import pygame
import pytest
from app_samples import CTX, backdrop, screens

from kiosk.config import validate_config
from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import ScreenContext, actions, attract, chrome, error, render
from kiosk.ui.screens.context import ProjectInfo

SIZE = (1280, 720)


@pytest.fixture(autouse=True, scope="module")
def _pg():
    pygame.font.init()
    yield


def drawn(data: flow.Screen, ctx: ScreenContext = CTX) -> tuple[list[str], list[ui.Target]]:
    s = backdrop(SIZE)
    with ui.measure_text() as texts:
        targets = render(data, s, 0, ctx=ctx)
    return [t for _, t in texts], targets


def centre(targets: list[ui.Target], action: str, value: object = None) -> tuple[int, int]:
    return next(t for t in targets if t.action == action and (value is None or t.value == value)).rect.center


def test_item11_an_offline_reader_does_not_invite_a_tap():
    offline = screens("ja")["attract_offline"]
    assert "Tap your IC card to give" not in [line.msgid for line in attract.call_to_action(offline)]
    texts, _ = drawn(offline)
    ja = chrome.tr("ja")
    assert ja("Tap your IC card to give") not in texts and ja("Card reader is offline") in texts
    online, _ = drawn(screens("ja")["attract"])
    assert ja("Tap your IC card to give") in online  # the invitation is there when a tap can work


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_item14_error_texts_do_not_repeat_their_title(lang: str):
    _ = chrome.tr(lang)
    for hint, text in flow.HINTS.items():
        title = _(error.TITLES[hint])
        assert title.rstrip("!！。.") not in _(text), (hint, title, _(text))


def test_item14_group_names_are_not_japanese_in_english():
    def japanese(s: str) -> bool:
        return any(unicodedata.east_asian_width(c) in "WF" for c in s)

    ctx = dataclasses.replace(CTX, projects={**CTX.projects, "mimamori": dataclasses.replace(
        CTX.projects["mimamori"], group_en="")})
    for name in ("attract", "attract_offline", "choose_amount", "tap_card"):
        texts, _ = drawn(screens("en")[name], ctx)
        assert not [t for t in texts if japanese(t) and t != "日本語"], (name, texts)
    texts, _ = drawn(screens("en")["choose_amount"])
    assert "Tsurugashima Children's Support Group" in texts  # group_en when the config has one
    texts, _ = drawn(screens("ja")["choose_amount"])
    assert "つるがしま子ども応援団" in texts


def test_item12_payment_not_confirmed_names_amount_and_reference():
    data = screens("ja")["error_unavailable_pending"]
    lines = error.details(data)
    assert "金額 ¥100" in lines and f"受付番号 {data.reference}" in lines
    texts, _ = drawn(data)
    assert f"受付番号 {data.reference}" in texts
    assert "職員" in chrome.tr("ja")(flow.HINTS["unavailable_pending"])  # where to ask


def test_item4_the_thank_you_has_a_close_button_and_no_full_screen_touch():
    _, targets = drawn(screens("ja")["thanks"])
    assert not [t for t in targets if t.action == chrome.TOUCH]
    qr_card = pygame.Rect(int(SIZE[0] * 0.7), int(SIZE[1] * 0.4), 10, 10)
    assert actions.touch(targets, qr_card.center, 5) == flow.Touch(now_ms=5)  # the flow ignores it on thanks
    assert actions.touch(targets, centre(targets, chrome.CANCEL), 5) == flow.Cancel(now_ms=5)


def test_the_picker_is_opened_by_a_touch_and_a_project_touch_opens_its_amounts():
    _, targets = drawn(screens("ja")["attract"])
    assert actions.touch(targets, centre(targets, chrome.PICKER), 1) == flow.OpenPicker(now_ms=1)
    _, targets = drawn(screens("ja")["choose_amount"])
    assert actions.touch(targets, centre(targets, chrome.PICKER), 1) == flow.OpenPicker(now_ms=1)
    _, targets = drawn(screens("ja")["choose_project"])
    picks = [t for t in targets if t.action == chrome.PICK_PROJECT]
    assert {t.value for t in picks} == set(CTX.projects)
    assert all(t.rect.height >= ui.THEME.min_target(pygame.Surface(SIZE)) for t in picks)  # finger-sized
    for t in picks:
        assert actions.touch(targets, t.rect.center, 2) == flow.PickProject(now_ms=2, project=t.value)


def test_the_express_window_offers_yameru_only_while_nothing_is_charged():
    _, targets = drawn(screens("ja")["charging_express"])
    assert actions.touch(targets, centre(targets, chrome.CANCEL), 3) == flow.Cancel(now_ms=3)
    _, targets = drawn(screens("ja")["charging"])
    assert not [t for t in targets if t.action == chrome.CANCEL]


@pytest.mark.parametrize("position", ["below-right", "below-center", "below-left", "right", "left"])
def test_the_reader_pointer_goes_where_the_config_says(tmp_path, position: str):
    cfg = validate_config({"kiosk": {"id": "kiosk-a", "data_dir": str(tmp_path)}, "reader": {"position": position},
                           "projects": [{"id": "a", "title": "A", "area": "green"}]})
    ctx = ScreenContext.from_config(cfg)
    assert ctx.reader_position == position
    s = pygame.Surface(SIZE)
    rect = chrome.reader_pointer(s, ctx.reader_position, "ja", 0)
    w, h = SIZE
    if position.startswith("below"):
        assert rect.bottom >= h * 0.98
        expect = {"below-right": rect.centerx > w * 0.75, "below-center": abs(rect.centerx - w / 2) < 2,
                  "below-left": rect.centerx < w * 0.25}[position]
        assert expect, rect
    else:
        assert abs(rect.centery - h / 2) < h * 0.02
        assert (rect.right >= w * 0.98) if position == "right" else (rect.left <= w * 0.02)


def test_a_bad_reader_position_is_a_clear_config_error(tmp_path):
    from kiosk.config import ConfigError

    with pytest.raises(ConfigError) as err:
        validate_config({"kiosk": {"id": "kiosk-a", "data_dir": str(tmp_path)}, "reader": {"position": "above"},
                         "projects": [{"id": "a", "title": "A", "area": "green"}]})
    assert "position" in str(err.value)


def test_item10_the_movie_does_not_show_through_the_panels():
    """The movie's own captions showed through the translucent panels (another project behind the gift)."""
    for name in ("thanks", "error_declined", "choose_amount", "charging", "attract"):
        a, b = backdrop(SIZE, "children"), backdrop(SIZE, "green")
        data = screens("ja")[name]
        render(data, a, 0, ctx=CTX)
        render(data, b, 0, ctx=CTX)
        band = pygame.Rect(0, int(SIZE[1] * 0.6), SIZE[0], int(SIZE[1] * 0.4))  # the panel on every screen
        pa, pb = pygame.image.tobytes(a.subsurface(band), "RGB"), pygame.image.tobytes(b.subsurface(band), "RGB")
        assert pa == pb, name


def test_projectinfo_group_name():
    p = ProjectInfo("x", "X", group="団体", group_en="A group")
    assert (p.group_name("ja"), p.group_name("en")) == ("団体", "A group")
    assert ProjectInfo("x", "X", group="団体").group_name("en") == ""


def test_item2_an_event_slide_is_not_covered_by_the_band():
    from app_samples import EXTRA_SCREENS

    from kiosk.player.slides import SlideRenderer, find_font

    s = pygame.Surface(SIZE)
    targets = EXTRA_SCREENS["attract_slide"](s, "ja")
    import datetime as dt

    from kiosk.config.player import EventSlide

    plain = SlideRenderer(find_font()).event(EventSlide(
        title="子ども食堂まつり", date=dt.date(2026, 12, 12), time="10:00-14:00", place="2階 会議室A",
        note="申込不要・参加無料"), SIZE)
    lower = pygame.Rect(0, int(SIZE[1] * 0.2), SIZE[0], int(SIZE[1] * 0.8))  # date, place and note
    assert pygame.image.tobytes(s.subsurface(lower), "RGB") == pygame.image.tobytes(plain.subsurface(lower), "RGB")
    # No gift to whichever project played last: a touch opens the picker.
    assert actions.touch(targets, (SIZE[0] // 2, SIZE[1] // 2), 1) == flow.OpenPicker(now_ms=1)
