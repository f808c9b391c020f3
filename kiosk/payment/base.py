"""The payment seam: what the donation service needs from a payment terminal.

Why a seam at all: debiting transit e-money (Suica, PASMO, ICOCA …) needs the
issuers' keys inside a certified terminal with a secure element. Neither nfcpy
nor PC/SC can do it, so this project never talks to the e-money on the card
itself. A real kiosk uses a certified terminal through its provider's API; the
simulator (:mod:`kiosk.payment.sim`) stands in for one everywhere else.

Writing an adapter for a certified terminal
-------------------------------------------
Subclass :class:`PaymentTerminal` and map the provider's API onto two calls:

- ``charge(amount_yen, idempotency_key)``: create the payment with the key as
  the provider's idempotency key (so a retry after a crash can never create a
  second payment), wait for the outcome, and return ``approved`` with the
  provider's payment id, ``declined`` with its reason, or ``unknown`` when the
  answer did not arrive in time. Never raise for a network problem: that is
  ``unknown``. A provider that refuses the request itself (credentials, device,
  location: before any card was asked for) answers ``declined`` with
  ``unavailable=True``, and only when that refusal proves nothing was created:
  the donor is then told to try later, not to try another card.
- ``lookup(idempotency_key, brief=False)``: ask the provider what became of that key:
  ``approved``, ``declined`` or ``not_found``. Raise
  :class:`TerminalUnavailable` when the provider cannot be asked right now; the
  ledger intent then stays open and is resolved at the next start-up.

Square's Terminal API is the real example (:mod:`kiosk.payment.square`): a
Terminal checkout with the e-money payment type ``FELICA_TRANSPORTATION_GROUP``
(the transit family) and the request's ``idempotency_key``; lookup re-sends the
identical create while Square surely still holds the key, which returns the same
checkout, and past that searches the terminal's checkouts instead of creating
again. Several providers' terms
require staff to be present for e-money payments (docs/payment.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

ChargeStatus = Literal["approved", "declined", "unknown", "not_found"]


class TerminalSetupError(Exception):
    """The terminal cannot be used as configured (no credentials, not paired). ``str()`` says what to do;
    the CLI prints it on one line and exits 1."""


class TerminalUnavailable(Exception):
    """The terminal or its provider cannot be asked right now (``lookup`` only)."""


@dataclass(frozen=True)
class ChargeResult:
    """What a terminal said about one idempotency key.

    ``charge`` answers ``approved``, ``declined`` or ``unknown`` (timeout: the
    charge may or may not have been applied); ``lookup`` answers ``approved``,
    ``declined`` or ``not_found`` (never applied).
    """

    status: ChargeStatus
    provider_ref: str | None = None
    reason: str | None = None
    canceled: bool = False
    """A ``declined`` that was a cancel (the donor, the kiosk or the terminal's deadline), not a refusal."""
    unavailable: bool = False
    """A ``declined`` that was the provider refusing the request itself for the terminal's setup (a bad or expired
    token, an unknown device, a location mismatch), before any card was asked for: nothing was created under the
    key, and another card would fail the same way. The donor is told to try later; :meth:`PaymentTerminal.health`
    says ``error`` with the cause for staff."""

    @classmethod
    def approved(cls, provider_ref: str) -> ChargeResult:
        return cls("approved", provider_ref=provider_ref)

    @classmethod
    def declined(cls, reason: str, provider_ref: str | None = None, *, canceled: bool = False,
                 unavailable: bool = False) -> ChargeResult:
        return cls("declined", provider_ref=provider_ref, reason=reason, canceled=canceled, unavailable=unavailable)

    @classmethod
    def unknown(cls, reason: str = "timeout") -> ChargeResult:
        return cls("unknown", reason=reason)

    @classmethod
    def not_found(cls) -> ChargeResult:
        return cls("not_found")


@dataclass(frozen=True)
class TerminalProgress:
    """What a separate terminal is doing during a charge (the donor's screen shows it)."""

    state: str | None
    """Provider state (Square: CREATING, PENDING, IN_PROGRESS, CANCEL_REQUESTED, COMPLETED, CANCELED, UNREACHABLE)."""
    cancel_requested: bool = False
    cancel_refused: bool = False


@dataclass(frozen=True)
class RefundResult:
    """The provider's answer to a refund: its id and status (Square: PENDING, COMPLETED …)."""

    refund_id: str
    status: str


class RefundRefused(Exception):
    """The provider answered and will not refund (already refunded, too old, unknown payment …)."""


class PaymentTerminal:
    """Base class of payment terminals. ``method`` is what the ledger records as the payment method."""

    on_live: Callable[[Any], None] | None = None
    """Set by the app: called on the charging thread whenever :meth:`progress` changes."""

    method: str = "terminal"
    external: bool = False
    """The donor presents the card on the terminal itself, not on the kiosk's reader (a certified terminal)."""

    def charge(self, amount_yen: int, idempotency_key: str, *, reference: str | None = None) -> ChargeResult:
        """Charge the card on the terminal. The same key again must not charge again: it returns the first answer.

        ``reference`` names the ledger intent (its seq) for the provider's records; a terminal may ignore it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement charge()")

    def lookup(self, idempotency_key: str, *, brief: bool = False) -> ChargeResult:
        """Resolve an earlier charge: approved, declined or not_found. Raises :class:`TerminalUnavailable`.

        ``brief``: the caller cannot wait (the retry between donors, on the thread that answers taps). A terminal
        that would follow a payment still under way for a while raises :class:`TerminalUnavailable` after a
        glance instead; the intent stays open and is asked about again later."""
        raise NotImplementedError(f"{type(self).__name__} does not implement lookup()")

    def card_seen(self, token_hex: str | None, balance_yen: int | None) -> None:
        """The kiosk's reader saw this card (``None``: it was taken away).

        A certified terminal reads the card itself and ignores this; the
        simulator uses it to know which simulated card it is debiting.
        """

    can_refund: bool = False
    """Whether :meth:`refund` works (the maintenance menu shows its refund page only then)."""

    def refund(self, provider_ref: str, amount_yen: int, idempotency_key: str, reason: str) -> RefundResult:
        """Return ``amount_yen`` of the payment ``provider_ref`` to the donor. The same key again is the same
        refund, never a second one. Raises :class:`RefundRefused` or :class:`TerminalUnavailable`."""
        raise NotImplementedError(f"{type(self).__name__} cannot refund")

    def health(self) -> tuple[str, str]:
        """``(state, detail)`` for the status page: state ``ready``, ``busy``, ``offline`` or ``error``.
        Never blocks on the network (any thread)."""
        return "ready", ""

    def progress(self) -> TerminalProgress | None:
        """The live state of a separate terminal (``None``: nothing to show, e.g. the simulator)."""
        return None

    def request_cancel(self) -> None:
        """The donor pressed やめる during a charge. Any thread; a terminal that cannot cancel ignores it."""

    def close(self) -> None:
        """Release files or connections."""
