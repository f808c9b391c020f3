"""Volunteer points on a busy day: a grant that is written is shown as made, whatever happens after it.

The grant's balance read-back is for the screen only. When the ledger's reads fail right after the grant (a dying
SD card answers writes from the page cache and fails reads), the menu said 「台帳に書き込めなかったため、何も変わって
いません。もう一度押してください。」: staff then tap the card again and the volunteer gets the points twice.
Real parts: the menu rig's real ledger; SQLite itself refuses the reads (its authorizer, the lowest seam).
"""

from __future__ import annotations

from tests.donation.conftest import LedgerOutage

from .conftest import Rig


def _grants(rig: Rig) -> list[int]:
    return [e.seq for e in rig.ledger.iter_entries() if e.type == "points_grant"]


def test_a_grant_whose_balance_cannot_be_read_back_is_shown_granted_and_never_granted_twice(rig: Rig) -> None:
    rig.open()
    for action, *value in (("go", "volunteer"), ("activity", "park-cleanup"), ("points_ok",)):
        rig.menu.model.press(action, *value)
    outage = LedgerOutage(rig.ledger)
    outage.set(False, reads=True)  # the grant's own job still writes; reading the balance back fails
    try:
        rig.tap(5)
    finally:
        outage.set(False)
    assert len(_grants(rig)) == 1  # the grant is in the ledger
    view = rig.view()
    assert view.notice_level == "green", f"a written grant shown as failed: {view.notice}"
    assert view.notice == "ポイントを付与しました。"
    text = "\n".join(view.lines)
    assert "読み取れませんでした" in text and "None" not in text, text
    # Staff go to the next volunteer: a different card gets its own grant; nothing is granted twice to card 5.
    rig.menu.model.press("tap_again")
    rig.tap(6)
    donors = [e.data["donor"] for e in rig.ledger.iter_entries() if e.type == "points_grant"]
    assert len(donors) == 2 and donors[0] != donors[1]
    assert rig.ledger.donor_points(list(rig.token(5).all_hexes)) == 10
