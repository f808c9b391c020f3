"""The my-page QR code on the lobby's public screen (docs/privacy.md, "My page"): it leaves the screen as soon
as it is not needed. Another card tapped while it is shown is the next citizen's: the code is gone in that
very step and their tap is an Express gift, never a page made for their card. The code's own card (or the
card just thanked) makes a new code. The default time on screen is 60 s.

The pure flow, then the real service over a real ledger (the signer is asked once, for the card that asked)."""

from __future__ import annotations

from kiosk.config.portal import PortalSection
from kiosk.donation import flow
from kiosk.donation.flow import (
    AskMyPage,
    Cancel,
    CardUnreadable,
    CommitIntent,
    IntentCommitted,
    MyPageIssued,
    Tap,
    Touch,
    step,
)
from tests.donation.conftest import card, settings, token

MP = settings(my_page_ms=60_000, express_cancel_ms=1_000)


def _tap(n: int, now: int) -> Tap:
    return Tap(now_ms=now, donor=token(n), family="suica", balance_yen=5000)


def _thanks(donor: int = 1) -> flow.FlowState:
    st, _ = step(flow.initial(MP, 0), Touch(now_ms=0), MP)
    st, _ = step(st, flow.ChooseAmount(now_ms=0, amount_yen=500), MP)
    st, (ci,) = step(st, _tap(donor, 0), MP)
    st, _ = step(st, IntentCommitted(now_ms=1, attempt=ci.attempt, intent_seq=5, idem="i"), MP)
    st, _ = step(st, flow.ChargeAnswered(now_ms=2, attempt=ci.attempt, outcome="approved", provider_ref="p"), MP)
    st, _ = step(st, flow.DonationRecorded(now_ms=3, attempt=ci.attempt, receipt=flow.Receipt(6, b"h", b"s", "C"),
                                           new_total_yen=500, points_balance=5), MP)
    assert st.name == "thanks"
    return st


def _code_for(owner: int, *, thanked: int = 1) -> flow.FlowState:
    """The code on screen for card ``owner`` (who asked for it at 100 and tapped at 200), after a gift by
    card ``thanked``."""
    st, _ = step(_thanks(thanked), AskMyPage(now_ms=100), MP)
    st, (eff,) = step(st, _tap(owner, 200), MP)
    assert eff == flow.IssueMyPage(token(owner))
    st, _ = step(st, MyPageIssued(now_ms=210, request=f"REQ-{owner}", donor=token(owner)), MP)
    assert flow.screen_for(st, MP).request == f"REQ-{owner}"
    return st


def test_another_card_while_the_code_is_shown_takes_it_away_and_is_the_next_citizens_express_gift():
    st = _code_for(1)
    st, effects = step(st, _tap(2, 5_000), MP)
    assert st.name == "charging" and st.my_page is None, "the previous donor's code is off the screen at once"
    assert effects == (CommitIntent(st.attempts, "kodomo", MP.default_yen, "sim", token(2)),)
    assert not any(isinstance(e, flow.IssueMyPage) for e in effects), "no page for a card that did not ask"
    scr = flow.screen_for(st, MP)
    assert scr.screen == "charging" and scr.can_withdraw, "an Express gift: its window and やめる, as on the loop"
    # やめる in the window: nothing charged, and the code does not come back.
    st, _ = step(st, Cancel(now_ms=5_100), MP)
    assert st.my_page is None


def test_another_card_that_cannot_give_still_takes_the_code_away():
    st = _code_for(1)
    tap = Tap(now_ms=5_000, donor=token(2), family="unknown", balance_yen=None)
    st, effects = step(st, tap, MP)
    assert (st.name, st.error.kind, st.my_page, effects) == ("error", "not_transit", None, ())
    st2, _ = step(_code_for(1), CardUnreadable(now_ms=5_000), MP)  # someone else's card, not read through
    assert (st2.name, st2.error.kind, st2.error.express, st2.my_page) == ("error", "card_unreadable", True, None)
    st3, _ = step(st2, Touch(now_ms=5_100), MP)
    assert st3.name == "attract" and st3.my_page is None


def test_the_codes_own_card_or_the_card_just_thanked_makes_a_new_code_not_a_gift():
    st = _code_for(2, thanked=1)
    for n in (2, 1):
        after, effects = step(st, _tap(n, 5_000), MP)
        assert (after.name, effects) == ("my_page", (flow.IssueMyPage(token(n)),))
    after, effects = step(st, _tap(3, 5_000), MP)
    assert after.name == "charging" and after.my_page is None


def test_a_code_whose_card_is_not_known_is_taken_away_by_any_card():
    st, _ = step(_thanks(), AskMyPage(now_ms=100), MP)
    st, _ = step(st, _tap(2, 200), MP)
    st, _ = step(st, MyPageIssued(now_ms=210, request="REQ"), MP)  # an answer that does not name its card
    st, effects = step(st, _tap(3, 300), MP)
    assert st.name == "charging" and st.my_page is None and isinstance(effects[0], CommitIntent)


def test_the_default_is_a_minute_on_screen_and_the_screen_counts_it_down():
    assert PortalSection().my_page_qr_s == 60
    st = _code_for(1)
    assert flow.deadline_ms(st, MP) == 210 + 60_000
    scr = flow.screen_for(st, MP)
    assert (scr.valid_s, scr.until_ms) == (60, 210 + 60_000)
    assert step(st, Touch(now_ms=59_000), MP)[0].since_ms == 210, "a phone held up to the code keeps nothing up"
    assert step(st, flow.Tick(now_ms=210 + 60_000), MP)[0].name == "attract"


def test_the_service_signs_once_for_the_card_that_asked_and_the_next_card_gives(kiosk):
    asked: list[str] = []

    def sign(donor):  # noqa: ANN001, ANN202 - the lowest seam: the key's signature
        asked.append(donor.hex)
        return f"REQ-{len(asked)}"

    led, term, svc = kiosk.open(flow=MP, my_page_request=sign)
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=500))
    assert svc.reader_event(card(1)).name == "thanks"
    svc.handle(AskMyPage(now_ms=svc.now_ms()))
    st = svc.reader_event(card(1))
    assert (st.name, st.my_page.request, st.my_page.donor) == ("my_page", "REQ-1", token(1))
    st = svc.reader_event(card(2))  # the next citizen
    assert st.name == "charging" and st.my_page is None
    assert flow.screen_for(st, svc.settings).screen == "charging"
    assert asked == [token(1).hex], "no my-page request was made for the next citizen's card"
