"""My page on the kiosk (the flow's my_page state and the service's signed request), and city pepper epochs:
the balance and the daily limit see a card's tokens under every epoch the kiosk holds (docs/privacy.md)."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from kiosk.donation import flow
from kiosk.donation.flow import AskMyPage, Cancel, MyPageFailed, MyPageIssued, Tap, Tick, Touch, step
from kiosk.ledger.pepper import CITY_FIRST_EPOCH, Pepper, PepperError
from kiosk.reader.events import CardPresented, TapRecord
from server_sync.wire.mypage import parse_request
from tests.donation.conftest import settings, token

MP = settings(my_page_ms=180_000)
IDM = hashlib.sha256(b"city-card").digest()[:8]


def _thanks(s: flow.FlowSettings = MP) -> flow.FlowState:
    st = flow.initial(s, 0)
    st, (ci,) = step(st, Tap(now_ms=0, donor=token(1), family="suica", balance_yen=5000), s)
    st, (ch,) = step(st, flow.IntentCommitted(now_ms=1, attempt=ci.attempt, intent_seq=5, idem="i"), s)
    st, (rd,) = step(st, flow.ChargeAnswered(now_ms=2, attempt=ci.attempt, outcome="approved", provider_ref="p"), s)
    st, _ = step(st, flow.DonationRecorded(now_ms=3, attempt=ci.attempt, receipt=flow.Receipt(6, b"h", b"s", "C"),
                                           new_total_yen=100, points_balance=1), s)
    assert st.name == "thanks"
    return st


def test_the_thank_you_offers_my_page_only_when_it_is_on():
    assert flow.screen_for(_thanks(), MP).my_page is True
    off = settings()
    st = _thanks(off)
    assert flow.screen_for(st, off).my_page is False
    st2, eff = step(st, AskMyPage(now_ms=10), off)
    assert (st2.name, eff) == ("thanks", ())


def test_my_page_asks_for_a_tap_then_shows_a_code_for_the_card_tapped_until_it_expires():
    st, eff = step(_thanks(), AskMyPage(now_ms=100), MP)
    assert (st.name, eff, flow.screen_for(st, MP).request) == ("my_page", (), None)
    st, eff = step(st, Touch(now_ms=200), MP)  # a touch keeps "tap your card" up, it does not dismiss
    assert st.name == "my_page" and eff == ()
    st, eff = step(st, Tap(now_ms=300, donor=token(2), family="suica", balance_yen=None), MP)
    assert eff == (flow.IssueMyPage(token(2)),), "the card tapped, not the one just thanked, decides"
    st, eff = step(st, MyPageIssued(now_ms=400, request="REQ"), MP)
    scr = flow.screen_for(st, MP)
    assert (scr.screen, scr.request, scr.valid_s) == ("my_page", "REQ", 180)
    st, _ = step(st, Touch(now_ms=180_000), MP)  # a phone held up to the code: no extension
    st, _ = step(st, Tick(now_ms=400 + 179_999), MP)
    assert st.name == "my_page"
    st, _ = step(st, Tick(now_ms=400 + 180_000), MP)
    assert st.name == "attract" and st.my_page is None


def test_switching_the_language_does_not_keep_a_code_past_its_validity():
    """Found by test_flow_properties (hypothesis): 日本語 / English on the code's screen restarted its timeout."""
    st, _ = step(_thanks(), AskMyPage(now_ms=100), MP)
    st, _ = step(st, flow.ToggleLanguage(now_ms=150), MP)  # waiting for the tap: activity, as a touch is
    assert flow.deadline_ms(st, MP) == 150 + MP.tap_card_idle_ms
    st, _ = step(st, Tap(now_ms=300, donor=token(2), family="suica", balance_yen=None), MP)
    st, _ = step(st, MyPageIssued(now_ms=400, request="REQ"), MP)
    lang = st.lang
    st, _ = step(st, flow.ToggleLanguage(now_ms=90_000), MP)
    assert st.lang != lang and flow.screen_for(st, MP).request == "REQ"
    assert flow.deadline_ms(st, MP) == 400 + 180_000
    st, _ = step(st, Tick(now_ms=400 + 180_000), MP)
    assert st.name == "attract" and st.my_page is None


def test_waiting_for_the_tap_times_out_and_close_goes_back():
    st, _ = step(_thanks(), AskMyPage(now_ms=100), MP)
    st2, _ = step(st, Tick(now_ms=100 + MP.tap_card_idle_ms), MP)
    assert st2.name == "attract"
    st3, _ = step(st, Cancel(now_ms=150), MP)
    assert st3.name == "attract"


def test_a_failed_code_is_an_error_and_a_stale_answer_is_ignored():
    st, _ = step(_thanks(), AskMyPage(now_ms=100), MP)
    st, _ = step(st, Tap(now_ms=110, donor=token(1), family="suica", balance_yen=None), MP)
    err, _ = step(st, MyPageFailed(now_ms=120, reason="no key"), MP)
    assert (err.name, err.error.hint) == ("error", "my_page_unavailable")
    loop = flow.initial(MP, 0)
    assert step(loop, MyPageIssued(now_ms=5, request="late"), MP)[0] == loop


def test_a_tap_carries_the_card_token_under_every_epoch_and_adoption_keeps_old_ones(tmp_path):
    path = tmp_path / "pepper.json"
    own = Pepper.create(path)
    before = own.card_token(IDM)
    assert before.epoch == 1 and before.older == ()
    city = {CITY_FIRST_EPOCH: secrets.token_bytes(32)}
    assert own.adopt(path, "city-test", city) == [CITY_FIRST_EPOCH]
    t = own.card_token(IDM)
    assert t.epoch == CITY_FIRST_EPOCH and t.older == (before.hex,)
    again = Pepper.load(path)  # the file holds both, and the domain
    assert again.card_token(IDM) == t and again.card_token(IDM).all_hexes == t.all_hexes
    assert again.domain == "city-test" and again.city_epoch == CITY_FIRST_EPOCH
    # Another city, or a different key for an epoch held, is refused and nothing is written.
    with pytest.raises(PepperError, match="domain"):
        again.adopt(path, "other-city", city)
    with pytest.raises(PepperError, match="different pepper"):
        again.adopt(path, "city-test", {CITY_FIRST_EPOCH: secrets.token_bytes(32)})
    assert Pepper.load(path).card_token(IDM).all_hexes == t.all_hexes
    with pytest.raises(PepperError):
        again.rotate(path)  # a kiosk in a city does not rotate on its own
    assert "DonorToken(" in repr(t) and t.older[0] not in repr(t)


def _tap(pepper: Pepper) -> CardPresented:
    rec = TapRecord(reader_id="r", family="suica", system_code=3, token=pepper.card_token(IDM), balance_yen=5000,
                    last_transaction=None, read_ms=1.0)
    return CardPresented(reader_id="r", at=0.0, record=rec)


def test_balance_and_daily_limit_span_a_rotation_and_the_my_page_request_names_every_token(kiosk, tmp_path):
    path = tmp_path / "pepper.json"
    pepper = Pepper.create(path)
    requests: list[tuple[str, ...]] = []

    def sign(donor):  # noqa: ANN001, ANN202
        from server_sync.wire.mypage import make_request

        requests.append(donor.all_hexes)
        return make_request(kiosk.sk, "donation-test-1", donor.all_hexes, kiosk.clock.wall_ms(), 180_000)

    led, term, svc = kiosk.open(flow=settings(my_page_ms=180_000, daily_limit_per_card_yen=1500),
                                my_page_request=sign)
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=1000))
    assert svc.reader_event(_tap(pepper)).name == "thanks"
    assert svc.state.thanks.points_balance == 10
    svc.handle(flow.Cancel(now_ms=svc.now_ms()))

    pepper.adopt(path, "city-test", {CITY_FIRST_EPOCH: secrets.token_bytes(32)})  # the city's pepper arrives
    # The ¥1,000 given under the old epoch still counts today (limit ¥1,500): another ¥1,000 is refused.
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=1000))
    st = svc.reader_event(_tap(pepper))
    assert (st.name, st.error.kind, st.error.remaining_yen) == ("error", "limit_reached", 500)
    svc.handle(flow.Cancel(now_ms=svc.now_ms()))
    svc.handle(flow.Touch(now_ms=svc.now_ms()))
    svc.handle(flow.ChooseAmount(now_ms=svc.now_ms(), amount_yen=500))
    st = svc.reader_event(_tap(pepper))
    assert st.name == "thanks"
    assert st.thanks.points_balance == 15, "the balance is the card's under both epochs"
    donations = [e for e in led.iter_entries() if e.type == "donation"]
    assert [d.data["pepper_epoch"] for d in donations] == [1, CITY_FIRST_EPOCH]

    svc.handle(flow.AskMyPage(now_ms=svc.now_ms()))
    st = svc.reader_event(_tap(pepper))
    assert st.name == "my_page" and st.my_page is not None
    req = parse_request(st.my_page.request)
    assert req.verify(kiosk.sk.public_key())
    assert set(req.tokens) == {d.data["donor"] for d in donations} == set(requests[0])
    assert req.expires_ms - req.issued_ms == 180_000
    assert len([e for e in led.iter_entries() if e.type == "donation_intent"]) == 2, "a my page writes nothing"


def test_a_staff_card_and_volunteer_points_survive_the_city_pepper_arriving(kiosk, tmp_path):
    from kiosk.config.staff import Activity, StaffSection, VolunteerSection
    from kiosk.ledger.writer import InlineWriter
    from kiosk.staff.gate import StaffGate
    from kiosk.staff.volunteer import balance, grant

    path = tmp_path / "pepper.json"
    pepper = Pepper.create(path)
    staff_idm, volunteer_idm = b"\x01" * 8, b"\x02" * 8
    registered = pepper.card_token(staff_idm).hex  # as `kiosk staff card` printed it, before the city
    led, _term, _svc = kiosk.open()
    writer = InlineWriter(led)
    acts = VolunteerSection(activities=[Activity(id="park", title="公園清掃", points=20, max_points=50)],
                            daily_limit_per_card=60)
    grant(writer, acts, "park", 40, pepper.card_token(volunteer_idm))
    pepper.adopt(path, "city-test", {CITY_FIRST_EPOCH: secrets.token_bytes(32)})
    gate = StaffGate(writer, StaffSection(staff_tokens=[registered]))
    assert gate.open_with_card(pepper.card_token(staff_idm)) is not None
    assert gate.open_with_card(pepper.card_token(volunteer_idm)) is None
    now = pepper.card_token(volunteer_idm)
    assert balance(led, now) == 40
    with pytest.raises(Exception, match="20 more points"):
        grant(writer, acts, "park", 30, now)  # the day's limit counts the grant under the old epoch
