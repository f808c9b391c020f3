"""Sample screen data for every screen and error hint, and a deterministic stand-in for a movie frame."""

from __future__ import annotations

from collections.abc import Callable

import pygame

from kiosk.donation import flow
from kiosk.player.slides import AREA_COLOURS
from kiosk.ui.screens import ProjectInfo, ScreenContext

SIZE = (1280, 720)

CTX = ScreenContext(
    projects={
        "kodomo-shokudo": ProjectInfo("kodomo-shokudo", "みんなのこども食堂", "Community children's cafeteria",
                                      "つるがしま子ども応援団", "children", 50_000,
                                      "Tsurugashima Children's Support Group"),
        "mimamori": ProjectInfo("mimamori", "ひとり暮らし高齢者の見守り", "Checking in on seniors living alone",
                                "地域見守りネットワーク", "welfare", 30_000),
        "zokibayashi": ProjectInfo("zokibayashi", "雑木林を守ろう", "Save the woods", "みどりの会", "green", 80_000),
        "hayashi-bayashi": ProjectInfo("hayashi-bayashi", "お囃子を次の世代へ", "Passing on the festival music",
                                       "囃子保存会", "culture", 40_000),
        "shotengai": ProjectInfo("shotengai", "商店街の夜市", "The shopping street night market", "", "town"),
        "kosodate": ProjectInfo("kosodate", "子育てひろば", "A playroom for young families", "", "children", 20_000),
    },
    totals_yen={"kodomo-shokudo": 12_300, "mimamori": 29_500},
    receipt_base_url="http://127.0.0.1:8080",
    presets_yen=(100, 500, 1000),
)

ERROR_SAMPLES: dict[str, flow.ErrorScreen] = {
    hint: flow.ErrorScreen(kind, hint, flow.HINTS[hint], project, amount, balance, remaining, "ja")
    for hint, kind, project, amount, balance, remaining in [
        ("card_unreadable", "card_unreadable", "kodomo-shokudo", 100, None, None),
        ("not_transit", "not_transit", "kodomo-shokudo", 100, None, None),
        ("balance_low", "balance_low", "mimamori", 1000, 480, None),
        ("balance_low_none", "balance_low", "mimamori", 100, 80, None),
        ("limit_reached", "limit_reached", "mimamori", 500, None, 0),
        ("limit_reached_amount", "limit_reached", "mimamori", 1000, None, 500),
        ("declined", "declined", "kodomo-shokudo", 500, None, None),
        ("not_charged", "declined", "kodomo-shokudo", 500, None, None),
        ("reader_offline", "reader_offline", None, None, None, None),
        ("unavailable", "unavailable", "kodomo-shokudo", 100, None, None),
        ("unavailable_charged", "unavailable", "kodomo-shokudo", 100, None, None),
        ("unavailable_pending", "unavailable", "kodomo-shokudo", 100, None, None),
        ("canceled", "declined", "kodomo-shokudo", 500, None, None),
        ("my_page_unavailable", "unavailable", None, None, None, None),
    ]
}


def my_page_request() -> str:
    """A real one-time my-page request (two epochs' tokens), fixed so its QR code draws the same every time."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from server_sync.wire.mypage import make_request

    return make_request(Ed25519PrivateKey.from_private_bytes(bytes(range(32))), "center-1f",
                        ["3f9c0a51d2e84b7766aa01c4be9f2d10", "a0b1c2d3e4f5061728394a5b6c7d8e9f"],
                        1_796_000_000_000, 180_000, nonce=bytes(range(16)))


TERMINAL_STATES = [  # golden name, terminal state, cancel requested, cancel refused
    ("creating", "CREATING", False, False),
    ("pending", "PENDING", False, False),
    ("in_progress", "IN_PROGRESS", False, False),
    ("canceling", "PENDING", True, False),
    ("cancel_refused", "IN_PROGRESS", True, True),
    ("unreachable", "UNREACHABLE", False, False),
    ("completed", "COMPLETED", False, False),
    ("canceled", "CANCELED", True, False),
]


def screens(lang: str = "ja") -> dict[str, flow.Screen]:
    """One sample per screen (and per error hint), keyed by golden-image name."""
    out: dict[str, flow.Screen] = {
        "attract": flow.AttractScreen("kodomo-shokudo", 100, True, lang),
        "attract_offline": flow.AttractScreen("mimamori", 100, False, lang),
        "choose_amount": flow.ChooseAmountScreen("kodomo-shokudo", (100, 500, 1000), 100, lang),
        "tap_card": flow.TapCardScreen("mimamori", 500, lang),
        "charging": flow.ChargingScreen("kodomo-shokudo", 500, lang),
        # An Express tap inside its cancel window: やめる is offered, nothing is charged yet. Drawn at now_ms=0,
        # 400 ms into a 1 s window: the countdown bar is 60 % full.
        "charging_express": flow.ChargingScreen("kodomo-shokudo", 100, lang, can_withdraw=True,
                                                withdraw_until_ms=600, withdraw_from_ms=-400),
        "choose_project": flow.ChooseProjectScreen(tuple(CTX.projects), "kodomo-shokudo", lang),
        "thanks": flow.ThanksScreen("kodomo-shokudo", 500, 12_800, 5, 17, "ZHMWMD2CPFYYXEFQP5IPXGEOCU", 42, lang,
                                    reference=41),  # 受付番号: the intent, the seq before the donation's
        # A separate payment terminal (Square): the donor pays there; our reader is optional (points).
        "tap_card_terminal": flow.TapCardScreen("mimamori", 500, lang, on_terminal=True),
        "thanks_no_points": flow.ThanksScreen("kodomo-shokudo", 500, 12_800, 0, 0, "ZHMWMD2CPFYYXEFQP5IPXGEOCU", 42,
                                              lang, has_donor=False, reference=41),
        # My page (docs/privacy.md): the thank-you's button, "tap your card", then the one-time QR code.
        "thanks_my_page": flow.ThanksScreen("kodomo-shokudo", 500, 12_800, 5, 17, "ZHMWMD2CPFYYXEFQP5IPXGEOCU", 42,
                                            lang, my_page=True, reference=41),
        "my_page_tap": flow.MyPageScreen(None, 180, lang),
        "my_page_qr": flow.MyPageScreen(my_page_request(), 180, lang),
        # Where "use your points" is offered (a config with sponsor pools, docs/points.md).
        "attract_points": flow.AttractScreen("kodomo-shokudo", 100, True, lang, points_exchange=True),
        "thanks_points": flow.ThanksScreen("kodomo-shokudo", 500, 12_800, 5, 17, "ZHMWMD2CPFYYXEFQP5IPXGEOCU", 42,
                                           lang, my_page=True, points_exchange=True, reference=41),
    }
    # Use your points (issue #17, docs/points.md): tap, choose, refused (the pool is used up here), thank-you.
    ps = tuple(CTX.projects)
    out.update({
        "points_tap": flow.PointsScreen("tap", 0, None, ps, None, None, (), 0, "", None, lang),
        "points_choose": flow.PointsScreen("choose", 85, 120, ps, "kodomo-shokudo", 50, (10, 50), 0, "", None, lang),
        # As the flow leaves it after the pool refusal of 50 points for kodomo-shokudo: that project unchosen and
        # not offered for 50, so "give" waits for another project (tests/donation/test_s54_points_refused.py).
        "points_refused": flow.PointsScreen("choose", 85, None, tuple(p for p in ps if p != "kodomo-shokudo"), None,
                                            50, (10, 50), 0, "", "pool", lang),
        "points_done": flow.PointsScreen("done", 35, 70, ps, "kodomo-shokudo", 50, (10, 50), 500, "みどり銀行", None,
                                         lang),
    })  # type: ignore[dict-item]
    for name, state, requested, refused in TERMINAL_STATES:
        out[f"charging_terminal_{name}"] = flow.ChargingScreen("kodomo-shokudo", 500, lang, on_terminal=True,
                                                               terminal_state=state, cancel_requested=requested,
                                                               cancel_refused=refused)
    for hint, e in ERROR_SAMPLES.items():
        # Where money may have moved or was refused, the screen shows the intent's seq for the staff.
        ref = 42 if hint in ("declined", "not_charged", "canceled", "unavailable_charged",
                             "unavailable_pending") else None
        out[f"error_{hint}"] = flow.ErrorScreen(e.kind, e.hint, e.text, e.project, e.amount_yen, e.balance_yen,
                                                e.remaining_yen, lang, ref)
    return out


def _attract_over_slide(surface: pygame.Surface, lang: str) -> object:
    """The loop on an event slide (issue #15 item 2): the real slide renderer, then the attract overlay."""
    import datetime as dt
    from dataclasses import replace

    from kiosk.config.player import EventSlide
    from kiosk.player.slides import SlideRenderer, find_font
    from kiosk.ui.screens import render

    slide = EventSlide(title="子ども食堂まつり", date=dt.date(2026, 12, 12), time="10:00-14:00",
                       place="2階 会議室A", note="申込不要・参加無料")
    surface.blit(SlideRenderer(find_font()).event(slide, surface.get_size()), (0, 0))
    return render(flow.AttractScreen("kodomo-shokudo", 100, True, lang), surface, 0,
                  ctx=replace(CTX, slide_showing=True))


EXTRA_SCREENS: dict[str, Callable[[pygame.Surface, str], object]] = {"attract_slide": _attract_over_slide}
"""Golden screens that are not a plain ``flow.Screen`` over the backdrop: name → draw(surface, lang)."""


def backdrop(size: tuple[int, int] = SIZE, area: str = "children") -> pygame.Surface:
    """Like a demo title card: area colour with a lighter lower band and a white stripe (a busy frame)."""
    s = pygame.Surface(size)
    w, h = size
    bg = AREA_COLOURS[area]
    s.fill(bg)
    pygame.draw.rect(s, tuple(min(255, c + 40) for c in bg), (0, int(h * 0.72), w, h - int(h * 0.72)))
    pygame.draw.rect(s, (255, 255, 255), (int(w * 0.1), int(h * 0.82), int(w * 0.5), max(2, h // 45)))
    pygame.draw.circle(s, (255, 255, 255), (int(w * 0.3), int(h * 0.62)), max(3, h // 24))
    return s
