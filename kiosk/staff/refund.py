"""Refund a mistaken donation: the provider returns the money, the ledger gets a ``void`` entry.

Staff do it from the maintenance menu (PIN or staff card, then a confirmation
page). Order, and why it is safe to repeat:

1. RefundPayment at the provider with an idempotency key derived from this
   kiosk and the donation's seq, so pressing Refund again (after a crash, a
   lost answer, a ledger outage) is the same refund, never a second one;
2. a ``void`` entry naming the donation and the provider's refund id, through
   the ledger writer. The original entry stays; totals, the X/Z reports, the
   USB export and the portal (which marks the donation ``voided``) all drop it.

If step 1 succeeds and step 2 cannot be written, the money is back with the
donor and the donation still counts: the menu says so in red and Refund again
finishes the job (step 1 replays, step 2 is written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from kiosk.ledger import Entry, Ledger
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.schema import entries
from kiosk.ledger.store import read_only_engine
from kiosk.ledger.writer import LedgerWriter, call
from kiosk.payment.base import RefundResult

REASON = "mistaken donation (refunded by staff from the maintenance menu)"
SCAN = 200
"""How many of the newest donations the refund page looks through."""

Refund = Callable[[str, int, str, str], RefundResult]
"""``(provider_ref, amount_yen, idempotency_key, reason) -> RefundResult`` (``PaymentTerminal.refund``)."""


@dataclass(frozen=True)
class Refundable:
    """A settled, not voided donation the terminal in use took (so it can give the money back)."""

    seq: int
    project: str
    amount_yen: int
    wall_ms: int
    provider_ref: str
    method: str


def refundable(ledger: Ledger, method: str, limit: int = 6) -> list[Refundable]:
    """The newest refundable donations, newest first (bounded by the published view, like every reader)."""
    view = ledger.view
    q = (select(entries.c.seq, entries.c.body).where(entries.c.type == "donation", entries.c.seq <= view.size)
         .order_by(entries.c.seq.desc()).limit(SCAN))
    out: list[Refundable] = []
    engine = read_only_engine(ledger.path)
    try:
        with engine.connect() as conn:
            rows = conn.execute(q).all()
    finally:
        engine.dispose()
    for seq, body in rows:
        if seq in view.voided:
            continue
        obj = parse_body(body)
        d = obj["data"]
        if d["method"] != method or not d.get("provider_ref"):
            continue
        out.append(Refundable(seq, d["project"], d["amount_yen"], obj["wall_ms"], d["provider_ref"], d["method"]))
        if len(out) >= limit:
            break
    return out


def refund_key(kiosk_id: str, seq: int) -> str:
    """The refund's idempotency key: one per donation, at most 45 characters (Square's limit)."""
    return "rf-" + hashlib.sha256(f"{kiosk_id}:{seq}".encode()).hexdigest()[:40]


def refund_donation(writer: LedgerWriter, refund: Refund, kiosk_id: str, d: Refundable,
                    reason: str = REASON) -> tuple[RefundResult, Entry]:
    """Refund ``d`` at the provider, then write its ``void``. Raises what either step raised."""
    result = refund(d.provider_ref, d.amount_yen, refund_key(kiosk_id, d.seq), reason)
    why = f"refunded: {result.refund_id} ({result.status}); {reason}"
    entry = call(writer, lambda led: led.void(d.seq, why))
    return result, entry
