"""Golden images of every menu page at 1280×720 and 1920×1080, in Japanese and English.

The framework is ``tests/goldenkit.py`` (regenerate with KIOSK_UPDATE_GOLDEN=1, then look at every changed
image in tests/golden/menu/<W>x<H>/ before committing it). The language is the menu's own setting.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pygame
import pytest

from kiosk.staff.menu import PAGES
from kiosk.staff.usb_export import ExportResult
from kiosk.ui.widgets import compare_images
from tests import goldenkit

from .conftest import PIN, Rig, build_rig

SIZE = goldenkit.SIZES[0]


def _donations(rig: Rig) -> None:
    rig.donate(1, "kodomo", 500, "suica-terminal")
    rig.donate(2, "midori", 1000)
    rig.donate(1, "kodomo", 100)


def _to(*steps: tuple) -> Callable[[Rig], None]:
    def setup(rig: Rig) -> None:
        rig.open()
        for action, *value in steps:
            rig.menu.model.press(action, *value)
    return setup


def _pin(rig: Rig) -> None:
    for _ in range(5):
        rig.menu.hidden_gesture((3, 3), 0)
    rig.menu.key("2")
    rig.menu.key("4")


def _pin_locked(rig: Rig) -> None:
    _pin(rig)
    for _ in range(3):
        for d in "1111":
            rig.menu.key(d)
        rig.menu.key("enter")


def _status_item(rig: Rig) -> None:
    rig.open()
    rig.menu.model.press("go", "status")
    worst = next(i for i, item in enumerate(rig.menu.model.status) if item.level != "green")
    rig.menu.model.press("status_item", worst)


def _x(rig: Rig) -> None:
    _donations(rig)
    _to(("go", "x_report"))(rig)


def _z_done(rig: Rig) -> None:
    _donations(rig)
    _to(("go", "z_confirm"), ("z_run",))(rig)


def _z_again(rig: Rig) -> None:
    _z_done(rig)
    for action, *value in (("back",), ("go", "z_confirm"), ("z_run",)):
        rig.menu.model.press(action, *value)


def _volunteer_tap(rig: Rig) -> None:
    _to(("go", "volunteer"), ("activity", "park-cleanup"), ("points", 5), ("points_ok",))(rig)


def _volunteer_done(rig: Rig) -> None:
    _volunteer_tap(rig)
    rig.tap(7)


def _reader_card(rig: Rig) -> None:
    _to(("go", "reader_test"))(rig)
    rig.tap(3, family="pasmo", balance=2480, read_ms=112.6)


def _usb_done(rig: Rig) -> None:
    rig.services.export = lambda path: ExportResult(
        Path("/media/kiosk/KIOSK-USB/kiosk-test-kiosk-1-20251121-134000"),
        files=[("ledger.jsonl", 48_213), ("closeout-2025-11-21.csv", 412), ("MANIFEST.txt", 390)], entries=41,
        business_date="2025-11-21", notes=["2025-11-21 is not closed yet: the CSV holds the running (X) totals"],
        running_totals=True)
    _to(("go", "usb"), ("usb_export", 0))(rig)


def _refunds(rig: Rig, status: str = "PENDING") -> None:
    # Drawing only: the refund itself runs through the Square adapter in tests/payment/test_square_refund.py.
    from kiosk.payment import RefundResult

    rig.services.refund = lambda ref, yen, key, reason: RefundResult("R3fUnDgOlDeN000001", status)
    rig.services.refund_method = "square"
    rig.donate(1, "kodomo", 500, "square")
    rig.donate(2, "midori", 1000, "square")
    rig.donate(3, "kodomo", 100, "sim")  # another terminal's gift: not offered


def _refund_to(*steps: tuple, status: str = "PENDING") -> Callable[[Rig], None]:
    def setup(rig: Rig) -> None:
        _refunds(rig, status)
        _to(("go", "refund"), *steps)(rig)
    return setup


def _busy(rig: Rig) -> None:
    rig.services.background = lambda fn: Future()  # never finishes: the page stays on "working"
    _to(("go", "sync"), ("sync_run",))(rig)


def _volunteer_tap_rules(rig: Rig) -> None:
    """Under the portal's written point rules (issue #17): the activity's points are fixed, so choosing the
    activity goes straight to the tap page, which names the rules' version."""
    rig.open()
    rig.menu.model.s.ops.volunteer.rules_version = 3
    rig.menu.model.press("go", "volunteer")
    rig.menu.model.press("activity", "event-help")


SETUPS: dict[str, Callable[[Rig], None]] = {
    "pin": _pin,
    "pin_locked": _pin_locked,
    "home": _to(),
    "status": _to(("go", "status")),
    "status_item": _status_item,
    "x_report": _x,
    "z_confirm": _to(("go", "z_confirm")),
    "z_again": _z_again,
    "z_done": _z_done,
    "volunteer": _to(("go", "volunteer")),
    "volunteer_points": _to(("go", "volunteer"), ("activity", "event-help"), ("points", 10)),
    "volunteer_tap": _volunteer_tap,
    "volunteer_done": _volunteer_done,
    "volunteer_tap_rules": _volunteer_tap_rules,
    "sync": _to(("go", "sync")),
    "reader_test": _to(("go", "reader_test")),
    "reader_test_card": _reader_card,
    "playlist": _to(("go", "playlist"), ("toggle", 1)),
    "volume": _to(("go", "volume"), ("volume", 10)),
    "language": _to(("go", "language")),
    "power": _to(("go", "power")),
    "power_confirm": _to(("go", "power"), ("power", "poweroff")),
    "usb": _to(("go", "usb")),
    "usb_done": _usb_done,
    "busy": _busy,
    "refund": _refund_to(),
    "refund_confirm": _refund_to(("refund_pick", 0)),
    "refund_done": _refund_to(("refund_pick", 0), ("refund_run",)),
    "refund_find": _refund_to(("go", "refund_find"), ("ref_digit", "1"), ("ref_digit", "2")),
    # The bank refused the refund: nothing voided, and a new request (attempt 2, its own key) is offered.
    "refund_rejected": _refund_to(("refund_pick", 0), ("refund_run",), status="REJECTED"),
    "refund_confirm_new": _refund_to(("refund_pick", 0), ("refund_run",), ("go", "refund"), ("refund_pick", 0),
                                     status="REJECTED"),
}


def render_page(tmp_path: Path, name: str, size: tuple[int, int] = SIZE,
                lang: str = "ja") -> tuple[pygame.Surface, str | None]:
    rig = build_rig(tmp_path / f"{name}-{size[0]}-{lang}")
    try:
        rig.machine.language = lang
        SETUPS[name](rig)
        surface = pygame.Surface(size)
        rig.menu.render(surface, 0)
        return surface, rig.menu.page
    finally:
        rig.ledger.close(checkpoint=False)


def golden(name: str, lang: str = "ja") -> pygame.Surface:
    return pygame.image.load(str(goldenkit.path_for("menu", SIZE, name, lang)))


def test_every_page_has_a_golden():
    pages = {name for name in SETUPS}
    assert set(PAGES) <= pages | {"pin"}, set(PAGES) - pages
    for (size, lang), names in goldenkit.names_on_disk("menu").items():
        assert names == set(SETUPS), f"{size} {lang}: missing {set(SETUPS) - names}, stale {names - set(SETUPS)}"


@pytest.mark.parametrize("name,size,lang", goldenkit.cases(sorted(SETUPS)))
def test_page_matches_golden(tmp_path, name, size, lang):
    surface, page = render_page(tmp_path, name, size, lang)
    assert page is not None
    if name in PAGES:
        assert page == name  # the setup reached the page the image is named after
    goldenkit.check(surface, "menu", name, lang)


def test_a_different_page_does_not_match(tmp_path):
    """The comparison can fail: each page's render differs from the golden of every other page."""
    if goldenkit.UPDATE:
        pytest.skip("regenerating goldens")
    names = sorted(SETUPS)
    surface, _ = render_page(tmp_path, "home")
    for other in names:
        if other == "home":
            continue
        assert not compare_images(surface, golden(other)).ok, f"home matches {other}"
    english, _ = render_page(tmp_path, "home", lang="en")
    assert not compare_images(english, golden("home")).ok, "the English home matches the Japanese golden"
    # A small change on one page (one more PIN digit) is caught too.
    surface, _ = render_page(tmp_path / "more", "pin")
    rig = build_rig(tmp_path / "pin3")
    try:
        _pin(rig)
        rig.menu.key(PIN[2])
        changed = pygame.Surface(SIZE)
        rig.menu.render(changed, 0)
    finally:
        rig.ledger.close(checkpoint=False)
    assert compare_images(surface, golden("pin")).ok
    assert not compare_images(changed, golden("pin"), changed_tol=0.001).ok
