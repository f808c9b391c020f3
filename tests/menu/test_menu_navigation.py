"""Every page reached and left again, once by touch and once by keyboard alone, headless."""

from __future__ import annotations

from collections.abc import Callable

import pygame

from kiosk.payment import RefundResult
from kiosk.staff.menu import PAGES

from .conftest import PIN, Rig


def walk(rig: Rig, press: Callable[..., None], back: Callable[[], None], enter_pin: Callable[[], None]) -> set[str]:
    """Visit every page with ``press(action, value)`` and ``back()``; returns the pages seen."""
    seen: set[str] = set()

    def at(page: str) -> None:
        assert rig.menu.page == page, f"expected {page}, on {rig.menu.page}: {rig.view().notice}"
        seen.add(page)

    # A terminal that can refund, and one gift it took (the refund itself: tests/payment/test_square_refund.py).
    rig.services.refund = lambda ref, yen, key, reason: RefundResult("refund-1", "PENDING")
    rig.services.refund_method = "square"
    rig.donate(1, "kodomo", 500, "square")

    for _ in range(5):
        rig.menu.hidden_gesture((5, 5), 0)
    at("pin")
    enter_pin()
    at("home")

    press("go", "status"); at("status")
    press("status_item", 0); at("status_item")
    back(); at("status")
    back(); at("home")

    press("go", "x_report"); at("x_report")
    assert any("営業日" in line for line in rig.view().lines)  # the report, with its business day
    back(); at("home")

    press("go", "z_confirm"); at("z_confirm")
    press("z_run"); at("z_done")
    back(); at("home")
    press("go", "z_confirm")
    press("z_run"); at("z_again")
    press("z_force"); at("z_done")
    back(); at("home")

    press("go", "volunteer"); at("volunteer")
    press("activity", "park-cleanup"); at("volunteer_points")
    press("points", 10)
    press("points_ok"); at("volunteer_tap")
    assert rig.tap(4)
    at("volunteer_done")
    press("tap_again"); at("volunteer_tap")
    back(); at("volunteer_points")
    back(); at("volunteer")
    back(); at("home")

    press("go", "sync"); at("sync")
    press("sync_run")
    back(); at("home")

    press("go", "reader_test"); at("reader_test")
    assert rig.tap(3)
    back(); at("home")

    press("go", "playlist"); at("playlist")
    press("toggle", 1)
    back(); at("home")

    press("go", "volume"); at("volume")
    press("volume", 10)
    back(); at("home")

    press("go", "language"); at("language")
    press("lang", "en")
    press("lang", "ja")
    back(); at("home")

    press("go", "power"); at("power")
    press("power", "reboot"); at("power_confirm")
    back(); at("power")
    back(); at("home")

    press("go", "usb"); at("usb")
    press("usb_export", 0); at("usb_done")
    back(); at("home")

    press("go", "refund"); at("refund")
    press("go", "refund_find"); at("refund_find")
    back(); at("refund")
    press("refund_pick", 0); at("refund_confirm")
    back(); at("refund")
    press("refund_pick", 0); at("refund_confirm")
    press("refund_run"); at("refund_done")
    back(); at("home")

    press("close")
    assert not rig.menu.is_open
    return seen


def test_touch_reaches_every_page(rig):
    def enter_pin() -> None:
        for d in PIN:
            rig.touch("digit", d)
        rig.touch("pin_ok")

    seen = walk(rig, rig.touch, lambda: rig.touch("back"), enter_pin)
    assert seen == set(PAGES)
    # The side effects really happened, through the injected fakes.
    assert rig.machine.volume == 80 and rig.machine.language == "ja" and rig.sync.calls == 1
    assert rig.machine.commands == []  # the reboot was only confirmed-then-cancelled


def test_keyboard_alone_reaches_every_page(rig):
    def enter_pin() -> None:
        for d in PIN:
            rig.key(d)
        rig.key("enter")  # typing moves focus to OK, so Enter submits

    seen = walk(rig, rig.key_to, lambda: rig.key("esc"), enter_pin)
    assert seen == set(PAGES)
    assert rig.machine.volume == 80 and rig.sync.calls == 1


def test_arrow_keys_move_through_the_grid_and_into_the_footer(rig):
    rig.open()
    view = rig.view()
    assert view.columns == 4 and rig.menu.model.focus == 0
    rig.key("down")
    assert rig.menu.model.focus == 4
    rig.key("up")
    assert rig.menu.model.focus == 0
    for _ in range(5):
        rig.key("down")
    assert view.all_buttons[rig.menu.model.focus].action == "close"  # the footer, below the grid
    rig.key("enter")
    assert not rig.menu.is_open
    rig.open()
    rig.key("esc")  # Esc on the home page closes too
    assert not rig.menu.is_open


def test_finger_events_hit_the_drawn_buttons_once(rig):
    rig.open()
    t = rig.target("go", "status")
    x, y = t.rect.center
    finger = pygame.event.Event(pygame.FINGERDOWN, x=x / 640, y=y / 360, finger_id=0, touch_id=0)
    synthetic = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1, touch=True)
    assert rig.menu.handle_pygame_event(finger)
    assert rig.menu.page == "status"
    assert rig.menu.handle_pygame_event(synthetic)  # swallowed, not a second press on the status page
    assert rig.menu.page == "status"


def test_events_fall_through_while_closed(rig):
    key = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode="")
    touch = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(320, 200), button=1, touch=False)
    assert not rig.menu.handle_pygame_event(key)
    assert not rig.menu.handle_pygame_event(touch)
    assert rig.menu.render(rig.surface, 0) == []


def test_every_button_is_a_big_target(rig):
    rig.open()
    for page in ("home", "status", "volume", "power"):
        rig.menu.model._go(page)
        for t in rig.render():
            assert t.rect.height >= 0.11 * 360 - 1, (page, t.action, t.rect)
            assert t.rect.width >= 0.11 * 360, (page, t.action, t.rect)


def test_pages_scale_to_a_lobby_tv(rig):
    rig.open()
    for size in ((1280, 720), (1920, 1080)):
        surface = pygame.Surface(size)
        for page in ("home", "status", "pin"):
            rig.menu.model._go(page)
            targets = rig.menu.render(surface, 0)
            assert targets and all(t.rect.height >= 0.11 * size[1] - 1 for t in targets)
            assert all(surface.get_rect().contains(t.rect) for t in targets)
