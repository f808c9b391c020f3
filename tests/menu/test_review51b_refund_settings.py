"""Review 51b: a refund Square refuses because of the kiosk's payment settings (the access token refused, HTTP 401,
or not allowed to refund, HTTP 403) is said as that, not as "the payment service refused the refund".

The refund page said 「決済サービスがこの返金を断りました。もう一度「返金」を押しても変わりません」 and sent staff to
the Square Dashboard: the payment is fine there, and nothing on the Dashboard mends a revoked token. Now it says that
the payment settings were not accepted, that the donation still counts, whom to ask (the person who set up the
kiosk, with `kiosk doctor`), and that once fixed the refund can be made from the refund page (it is never made
twice).

Real parts: the ledger, the menu, the Square adapter and SDK against the fake Square API on loopback (its accepted
token changed under the kiosk, as when the token is revoked or rotated), as tests/payment/test_square_refund.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.payment.base import RefundRefused, TerminalSetupError
from tests.donation.conftest import card
from tests.payment import fake_square
from tests.payment.fake_square import Fault
from tests.payment.test_square_refund import square_kiosk

from .conftest import Rig, build_rig
from .test_menu_words import english_words


@pytest.fixture
def paid(tmp_path: Path) -> Iterator[tuple[Rig, Any, Any]]:
    """A ¥ gift Square really took, and the menu's refund page on the real adapter."""
    rig = build_rig(tmp_path / "kiosk")
    with square_kiosk(rig, tmp_path) as (fake, term, svc):
        fake.plan = ["complete"]
        svc.reader_event(card(1))
        assert [e.type for e in rig.ledger.iter_entries()].count("donation") == 1
        rig.services.refund, rig.services.refund_method = term.refund, term.method
        yield rig, fake, term
        term.close()
    rig.ledger.close(checkpoint=False)


def _refund(rig: Rig, lang: str = "ja") -> str:
    rig.machine.language = lang
    rig.open()
    for action, *value in (("go", "refund"), ("refund_pick", 0), ("refund_run",)):
        rig.touch(action, *value)
    assert rig.menu.page == "refund_done"
    view = rig.view()
    return "\n".join([view.notice, *view.lines])


def _not_refunded(rig: Rig, fake: Any) -> None:
    assert not fake.refunds and not [e for e in rig.ledger.iter_entries() if e.type == "void"]


def test_a_refused_token_is_said_as_the_kiosks_payment_settings(paid, monkeypatch):
    rig, fake, _term = paid
    good = fake_square.TOKEN
    monkeypatch.setattr(fake_square, "TOKEN", "EAAA-rotated")  # Square no longer accepts the kiosk's token
    text = _refund(rig)
    view = rig.view()
    assert view.notice_level == "red"
    # Not "the payment service refused this refund … check the Square Dashboard": the settings, and whom to ask.
    assert "断りました" not in text and "ダッシュボード" not in text, text
    assert "決済の設定" in text and "設定をした担当者" in text, text
    # s54: the command is the technician's, on the details line; the staff's lines name none.
    *staff, tech = text.split("\n")
    assert tech.startswith("詳細（保守担当者向け）：") and "`kiosk doctor`" in tech, text
    assert not any("kiosk" in t for t in staff), text
    assert "寄付は集計に残っています" in text and "二重に返金されることはありません" in text, text
    assert not english_words(text), text
    # Pressing Refund now cannot work: no retry button; nothing was refunded, nothing voided.
    assert not any(b.action in ("refund_run", "refund_new") for b in view.all_buttons), view.all_buttons
    _not_refunded(rig, fake)
    assert ("POST", "/v2/refunds") in fake.requests  # Square was asked, and said 401
    [act] = [d for d in rig.admin() if d["action"] == "refund"]
    assert "HTTP 401" in act["outcome"], act  # the technician's words stay in the trail

    # Once the token is fixed, the same donation is refunded from the refund page: once.
    monkeypatch.setattr(fake_square, "TOKEN", good)
    rig.touch("back")
    text = _refund(rig)
    assert rig.view().notice_level == "green", text
    assert len(fake.refunds) == 1 and sum(e.type == "void" for e in rig.ledger.iter_entries()) == 1


def test_a_token_not_allowed_to_refund_is_said_the_same_way(paid):
    """HTTP 403 (the token's permissions, INSUFFICIENT_SCOPES): the settings too."""
    rig, fake, _term = paid
    fake.fault("refund", Fault("status", status=403, code="INSUFFICIENT_SCOPES"))
    text = _refund(rig)
    assert "設定をした担当者" in text and "ダッシュボード" not in text and not english_words(text), text
    _not_refunded(rig, fake)


def test_the_english_menu_says_it_with_squares_words_in_brackets(paid, monkeypatch):
    rig, fake, _term = paid
    monkeypatch.setattr(fake_square, "TOKEN", "EAAA-rotated")
    text = _refund(rig, "en")
    assert "payment settings" in text and "Square Dashboard" not in text, text
    assert "HTTP 401" in text and "UNAUTHORIZED" in text, text  # for the maintainer on the phone
    _not_refunded(rig, fake)


def test_a_refusal_for_the_payment_itself_still_goes_to_the_dashboard(paid):
    """Square refusing the refund itself (already refunded, too much): final, and the Dashboard, as before."""
    rig, fake, _term = paid
    fake.fault("refund", Fault("status", status=400, code="REFUND_AMOUNT_INVALID"))
    text = _refund(rig)
    assert "ダッシュボード" in text and "変わりません" in text and "設定をした担当者" not in text, text


def test_the_adapter_raises_its_own_kind_also_when_asking_for_a_checkouts_payment(paid, monkeypatch):
    """A gift recorded under ``checkout:<id>`` is refunded after asking Square which payment it made: a refused
    token there is the settings too (it said "Square does not know checkout …")."""
    _rig, _fake, term = paid
    monkeypatch.setattr(fake_square, "TOKEN", "EAAA-rotated")
    with pytest.raises(RefundRefused) as got:
        term.refund("checkout:CO-unknown", 500, "kiosk:refund-1", "test")
    assert isinstance(got.value, TerminalSetupError), got.value  # a RefundRefused of the settings kind
    assert "HTTP 401" in str(got.value) and "payment settings" in str(got.value), got.value
    assert "does not know" not in str(got.value), got.value
