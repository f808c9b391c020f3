"""Refund a mistaken donation: the provider returns the money, the ledger gets a ``void`` entry.

Staff do it from the maintenance menu (PIN or staff card, then a confirmation
page). Order, and why it is safe to repeat:

1. RefundPayment at the provider with an idempotency key derived from this
   kiosk, the donation's seq and the attempt (below), so pressing Refund again
   (after a crash, a lost answer, a ledger outage) is the same refund, never a
   second one;
2. only when the provider says the refund is ``COMPLETED``: a ``void`` entry
   naming the donation and the provider's refund id, through the ledger
   writer. The original entry stays; totals, the X/Z reports, the USB export
   and the portal (which marks the donation ``voided``) all drop it.

The provider's other answers write no void (money fails closed: the ledger
never says a gift was returned while the center still holds it):

- ``PENDING`` (Square: the money is on its way back, which can take days): the
  staff action is recorded as an ``admin_action`` ``refund`` with
  ``refund_status: PENDING`` (signed, in the same ledger), and the refund page
  marks the gift 返金手続き中. Asking again (the same button) sends the same
  idempotency key, so the provider answers with *that* refund and its status
  now; the void is written the first time it says ``COMPLETED``. No new entry
  type is needed, so old ledgers and the portal's ingest are unchanged.
- ``REJECTED`` / ``FAILED`` (terminal at the provider: that refund will never
  complete): nothing is voided and the menu says so in plain words; the gift
  still counts, because the center still holds the money. The page then offers
  a *new* refund request (もう一度、新しく返金を申し込む): attempt ``n + 1``,
  with its own idempotency key (:func:`refund_key`).

Attempts, and why a new key never makes a second live refund: every refund
``admin_action`` names its ``refund_attempt`` and ``refund_key`` (additive data
keys; an older record without them is attempt 1). The attempt to use is the
highest attempt whose last recorded status is ``REJECTED``/``FAILED``, plus one
(:func:`refund_trail`), read from the signed trail at the moment staff press the
button, so it survives restarts. A new key is thus used only once the previous
attempt is recorded as terminal-unsuccessful; while an attempt is ``PENDING``,
its answer was lost (a record without a status), or nothing of it reached the
ledger (a power cut after the request), the same attempt number, so the same
key, is sent again, and the provider answers with the refund it already has.

Across a power cut: if the kiosk dies after the provider accepted the refund
and before the ledger heard of it, the donation is simply still listed as
refundable (maybe without its 手続き中 mark). Pressing Refund replays the same
key: the provider returns the refund it already has (never a second one), and
the void follows once it is ``COMPLETED``. If the void cannot be written, the
money is back with the donor and the donation still counts: the menu says so
in red and Refund again finishes the job (step 1 replays, step 2 is written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from kiosk.ledger import Entry, Ledger
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.schema import entries
from kiosk.ledger.store import read_only_engine
from kiosk.ledger.writer import LedgerWriter, call
from kiosk.payment.base import RefundResult
from kiosk.staff.words import StaffMessage

REASON = "mistaken donation (refunded by staff from the maintenance menu)"
SCAN = 200
"""How many of the newest donations the refund page looks through."""
COMPLETED = "COMPLETED"
"""The only provider status that writes the ``void`` (Square Refunds API: PENDING, COMPLETED, REJECTED, FAILED)."""
ENDED = frozenset({"REJECTED", "FAILED"})
"""Terminal and unsuccessful: that refund will never complete, so (only) then a new attempt gets a new key."""

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
    reference: int = 0
    """The donor's 受付番号: the intent's seq, shown on the thank-you and error screens (not the donation's seq)."""
    refund_status: str | None = None
    """The provider's status at the last refund staff asked for (``PENDING``, ``REJECTED``, ``FAILED``), from the
    ``admin_action`` trail; ``None``: never asked."""
    refund_id: str = ""
    refund_attempt: int = 1
    """The refund attempt the next press sends (its key: :func:`refund_key`), from the ``admin_action`` trail."""
    refund_new: bool = False
    """The previous attempt ended ``REJECTED``/``FAILED`` and attempt :attr:`refund_attempt` was never recorded:
    the page offers a new refund request (``refund_status`` is then the previous attempt's)."""


class AlreadyRefunded(StaffMessage):
    """The donation was voided since the page was drawn: nothing to do."""


@dataclass(frozen=True)
class RefundTrail:
    """What the signed trail says about one donation's refunds (:func:`refund_trail`)."""

    attempt: int = 1
    status: str | None = None
    refund_id: str = ""
    new: bool = False


def _read(ledger: Ledger, *queries: Any) -> list[list[Any]]:
    engine = read_only_engine(ledger.path)
    try:
        with engine.connect() as conn:
            return [list(conn.execute(q).all()) for q in queries]
    finally:
        engine.dispose()


def _attempt(d: dict[str, Any]) -> int:
    n = d.get("refund_attempt")
    return n if type(n) is int and n >= 1 else 1  # noqa: E721 - a bool is not an attempt; older records: 1


def refund_trail(records: list[dict[str, Any]]) -> RefundTrail:
    """One donation's refund ``admin_action`` data, oldest first, as the attempt to send next and its state.

    The attempt is the highest one whose last recorded status is ``REJECTED``/``FAILED``, plus one (attempts are
    made in order, so this is their count). Records without a status (the answer was lost, the provider could
    not be asked) say the attempt was tried: it is sent again with the same key, never replaced by a new one."""
    last: dict[int, tuple[str, str]] = {}
    tried: set[int] = set()
    for d in records:
        n = _attempt(d)
        tried.add(n)
        if d.get("refund_status"):
            last[n] = (str(d["refund_status"]).upper(), str(d.get("refund_id") or ""))
    ended = [n for n, (st, _) in last.items() if st in ENDED]
    attempt = max(ended, default=0) + 1
    if attempt in tried:
        status, refund_id = last.get(attempt, (None, ""))
        return RefundTrail(attempt, status, refund_id)
    if attempt > 1:
        status, refund_id = last[attempt - 1]
        return RefundTrail(attempt, status, refund_id, new=True)
    return RefundTrail()


def _refund_states(ledger: Ledger, after_seq: int) -> dict[int, RefundTrail]:
    """``donation seq -> RefundTrail`` from the signed ``admin_action`` trail after ``after_seq`` (a refund is
    always recorded after its donation)."""
    q = (select(entries.c.body).where(entries.c.type == "admin_action", entries.c.seq > after_seq,
                                       entries.c.seq <= ledger.view.size).order_by(entries.c.seq))
    records: dict[int, list[dict[str, Any]]] = {}
    for (body,) in _read(ledger, q)[0]:
        if b'"refund"' not in body:  # cheap filter before parsing: most staff actions are not refunds
            continue
        d = parse_body(body)["data"]
        if d.get("action") == "refund" and type(d.get("donation_seq")) is int:  # noqa: E721
            records.setdefault(d["donation_seq"], []).append(d)
    return {seq: refund_trail(recs) for seq, recs in records.items()}


def _refundable(obj: dict[str, Any], seq: int, method: str) -> Refundable | None:
    d = obj["data"]
    if d["method"] != method or not d.get("provider_ref"):
        return None
    return Refundable(seq, d["project"], d["amount_yen"], obj["wall_ms"], d["provider_ref"], d["method"],
                      int(d.get("intent_seq") or 0))


def _with_state(items: list[Refundable], ledger: Ledger) -> list[Refundable]:
    if not items:
        return items
    states = _refund_states(ledger, min(r.seq for r in items))
    return [replace(r, refund_status=t.status, refund_id=t.refund_id, refund_attempt=t.attempt, refund_new=t.new)
            if (t := states.get(r.seq)) is not None else r for r in items]


def refundable(ledger: Ledger, method: str, limit: int = 6) -> list[Refundable]:
    """The newest refundable donations, newest first (bounded by the published view, like every reader)."""
    view = ledger.view
    q = (select(entries.c.seq, entries.c.body).where(entries.c.type == "donation", entries.c.seq <= view.size)
         .order_by(entries.c.seq.desc()).limit(SCAN))
    out: list[Refundable] = []
    for seq, body in _read(ledger, q)[0]:
        if seq in view.voided:
            continue
        r = _refundable(parse_body(body), seq, method)
        if r is None:
            continue
        out.append(r)
        if len(out) >= limit:
            break
    return _with_state(out, ledger)


def find_refundable(ledger: Ledger, method: str, reference: int) -> Refundable:
    """The donation the donor's 受付番号 ``reference`` names. Raises :class:`StaffMessage` saying why it cannot
    be refunded here (no such gift, already voided, or taken by another terminal)."""
    view = ledger.view
    q = select(entries.c.seq, entries.c.body).where(entries.c.type == "donation", entries.c.ref_seq == reference,
                                                    entries.c.seq <= view.size)
    rows = _read(ledger, q)[0]
    if not rows:
        raise StaffMessage("No donation with reference number {ref} on this kiosk.", ref=reference)
    seq, body = rows[0]
    if seq in view.voided:
        raise StaffMessage("The donation with reference number {ref} is already refunded.", ref=reference)
    r = _refundable(parse_body(body), seq, method)
    if r is None:
        raise StaffMessage("The donation with reference number {ref} was not paid on this payment terminal: "
                           "refund it where it was paid.", ref=reference)
    return _with_state([r], ledger)[0]


def current(ledger: Ledger, d: Refundable) -> Refundable:
    """``d`` as the ledger has it now (its refund state read again from the trail), so the attempt sent is the
    durable one, never a page's stale copy. Raises :class:`AlreadyRefunded` when it was voided meanwhile."""
    if d.seq in ledger.view.voided:
        raise AlreadyRefunded("The donation with reference number {ref} is already refunded.", ref=d.reference)
    return _with_state([replace(d, refund_status=None, refund_id="", refund_attempt=1, refund_new=False)],
                       ledger)[0]


def refund_key(kiosk_id: str, seq: int, attempt: int = 1) -> str:
    """The refund's idempotency key, at most 45 characters (Square's limit): one per donation and attempt.
    Attempt 1 keeps the key kiosks have always sent (``kiosk:seq``), so older ledgers and providers agree."""
    name = f"{kiosk_id}:{seq}" if attempt == 1 else f"{kiosk_id}:{seq}:{attempt}"
    return "rf-" + hashlib.sha256(name.encode()).hexdigest()[:40]


def refund_donation(writer: LedgerWriter, refund: Refund, kiosk_id: str, d: Refundable,
                    reason: str = REASON) -> tuple[RefundResult, Entry | None]:
    """Ask the provider to refund ``d`` with the key of attempt ``d.refund_attempt`` (the same key each time for
    the same attempt), and write its ``void`` only when the provider says ``COMPLETED``; for PENDING, REJECTED
    and FAILED the entry is ``None``. Raises what either step raised."""
    result = refund(d.provider_ref, d.amount_yen, refund_key(kiosk_id, d.seq, d.refund_attempt), reason)
    if result.status.upper() != COMPLETED:
        return result, None
    why = f"refunded: {result.refund_id} ({result.status}); {reason}"
    entry = call(writer, lambda led: led.void(d.seq, why))
    return result, entry
