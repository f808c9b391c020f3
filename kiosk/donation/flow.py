"""The donation flow: a pure state machine, from the movie loop to a thank-you or a clear error.

``step(state, event, settings) -> (state, effects)`` does no I/O. Every event
carries ``now_ms`` from the caller's clock, so idle timeouts are plain
arithmetic and tests drive time by hand. The effects it returns
(:class:`CommitIntent`, :class:`Charge`, :class:`RecordDonation`,
:class:`RecordFailure`) are carried out by :class:`kiosk.donation.service.DonationService`,
which feeds the outcome back as an event. Because the ledger order is encoded
here as phases, a charge can only be asked for after its intent was committed,
and the thank-you only appears after the donation entry was committed.

States (each names one screen; :func:`screen_for` gives its data)::

    attract ──touch──▶ choose_amount ──amount──▶ tap_card ──tap──▶ charging ──▶ thanks
       │ tap (default amount, project on screen)                     │
       └──────────────────────────────────────────────────────────▶ charging ──▶ error
    every screen but charging times out back to attract; attract itself only when a visitor switched its
    language (back to the kiosk's own after choose_amount_idle_ms untouched).

    thanks ──"my page" button──▶ my_page (tap your card) ──tap──▶ my_page (one-time QR code)
    my_page (code) ──another card──▶ charging (the next citizen's Express gift; the code is gone at once)

My page (docs/privacy.md): on the thank-you screen a donor may ask for their own page. The kiosk asks
for a tap first (the card in hand, not whoever touches the screen next, decides whose page it is), then
shows a one-time QR code for ``settings.my_page_ms`` (the :class:`IssueMyPage` effect signs it; the
card's tokens under every pepper epoch go in it). The lobby screen is public, so the code leaves it as soon
as it is not needed: the 終わる button, the timeout, or a card other than the code's own. That card is the
next citizen's, and does what a tap on the loop does (an Express gift): they never see the code, and no
page is made for a card whose holder did not ask for one. The code's own card (or the card just thanked)
again makes a new code for it. A touch on the code does nothing (a phone held up to it touches the screen)
and does not keep it up.

Charging never times out: leaving it while a charge is in flight could strand
an approved payment. The terminal's own timeout bounds it (an ``unknown``
answer), and the service always answers every effect with an event.

With a separate certified terminal (``settings.pay_on_terminal``, e.g. a Square
Terminal) the donor presents the card or QR code on that terminal, not on our
reader. Our reader then only identifies the donor for points, and only if they
want: on tap_card a tap on the kiosk's reader starts the donation with their
token (points), and the "pay on the terminal" button (:class:`PayOnTerminal`)
starts it without one (no points; the ledger records ``donor: null``). The
balance our reader saw is not checked then: the donor may pay with another card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal, TypedDict, TypeVar, Unpack

import msgspec
from msgspec.structs import replace as replace  # re-exported: callers make changed copies with flow.replace

from kiosk.ledger.pepper import DonorToken

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

StateName = Literal["attract", "choose_amount", "choose_project", "tap_card", "charging", "thanks", "error", "my_page",
                    "points"]
STATES: tuple[StateName, ...] = ("attract", "choose_amount", "choose_project",
                                 "tap_card", "charging", "thanks", "error", "my_page",
                                 "points")

ErrorKind = Literal["card_unreadable", "not_transit", "balance_low", "limit_reached", "declined",
                    "reader_offline", "unavailable"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("card_unreadable", "not_transit", "balance_low", "limit_reached",
                                      "declined", "reader_offline", "unavailable")

Hint = Literal["card_unreadable", "not_transit", "balance_low", "balance_low_none", "limit_reached",
               "limit_reached_amount", "declined", "canceled", "not_charged", "reader_offline", "unavailable",
               "unavailable_charged", "unavailable_pending", "my_page_unavailable"]
"""The keys of :data:`HINTS` (every :data:`ErrorKind` is one)."""

HINTS: dict[Hint, str] = {
    # What-to-do text per error screen, keyed by ErrorInfo.hint. The English is the gettext msgid.
    # The screen's title already says what happened (kiosk.ui.screens.error.TITLES): these never repeat it.
    "card_unreadable": "Hold your card flat on the reader until it beeps, then tap again.",
    "not_transit": "Please use Suica, PASMO, ICOCA or another transit card.",
    "balance_low": "Choose a smaller amount or use another card.",
    "balance_low_none": "Please charge the card or use another card.",
    "limit_reached": "Thank you! This card can give again tomorrow.",
    "limit_reached_amount": "Choose a smaller amount.",
    "declined": "You have not been charged. Please try another card.",
    "canceled": "You have not been charged.",
    "not_charged": "You have not been charged. Please tap again.",
    "reader_offline": "Please tell the center staff.",
    "unavailable": "You have not been charged. Please try again later.",
    "unavailable_charged": ("The receipt cannot be shown right now; your gift will be recorded automatically. "
                            "Please do not tap again."),
    "unavailable_pending": ("If you were charged, it will be recorded automatically. Please do not tap again. "
                            "For questions, show the number below to the center staff."),
    "my_page_unavailable": "Your page cannot be made right now. Please try again later.",
}

UNKNOWN_FAMILY = "unknown"
"""A tap whose card answered no transit system (see kiosk.reader)."""


# --- value classes -----------------------------------------------------------------------

class _Value(msgspec.Struct, frozen=True):
    """The flow's immutable value classes (states, screens, events, commands): msgspec Structs.

    A frozen ``@dataclass`` compiles its ``__init__``, ``__setattr__`` and ``__delattr__`` from Python source,
    for every class, at every start of the kiosk: for this module's ~55 classes that was about a tenth of
    a restart's dark screen at a quarter of a core (cold start, #16). A Struct class is built in C in a few
    microseconds and keeps what the flow relies on (tests/donation/test_flow_values.py holds it to it):
    equal only to an instance of the same class with equal fields, hashable when its fields are, immutable
    (``AttributeError``), ``Name(field=value, ...)`` as its repr, and :func:`replace` for a changed copy.
    Events are keyword-only (``kw_only=True`` on each class: it applies to the fields a class adds).
    """


# --- settings ---------------------------------------------------------------------------

class FlowSettings(_Value, frozen=True):
    """Everything the flow decides with. Build it from a KioskConfig with :meth:`from_config`."""

    projects: tuple[str, ...]
    presets_yen: tuple[int, ...] = (100, 500, 1000)
    default_yen: int = 100
    max_per_transaction_yen: int = 1000
    daily_limit_per_card_yen: int = 3000
    points_per_100_yen: int = 1
    method: str = "sim"
    language: str = "ja"
    choose_amount_idle_ms: int = 20_000
    tap_card_idle_ms: int = 20_000
    thanks_ms: int = 20_000
    error_ms: int = 8_000
    pay_on_terminal: bool = False
    """The card is presented on a separate certified terminal; our reader is optional (points only)."""
    express_cancel_ms: int = 0
    """How long an Express gift (a tap without choosing an amount) waits, intent committed and the card held on
    the reader, before it is charged: lifting the card or やめる in that time gives nothing. 0: charged at once."""
    my_page_ms: int = 0
    """How long a my-page QR code is valid and shown; 0: no my-page button."""
    points_exchange: bool = False
    """Offer "use your points" (docs/points.md): on when the pushed config has sponsor pools."""
    points_presets: tuple[int, ...] = (10, 50, 100, 300)
    """The point amounts a citizen may choose from (those above what the card may spend are not offered)."""
    points_room: tuple[tuple[str, int], ...] | None = None
    """Per project, the most points the sponsor pools can give to it here now: this kiosk's share left of each pool
    open today that gives to the project's area, in points (``kiosk/donation/exchange.py`` ``room_by_project``;
    the app sets it with ``points_exchange``). Amounts and projects beyond it are not offered (every one would be
    refused). ``None``: not known, the card alone limits the choice."""

    def points_room_for(self, project: str | None) -> int | None:
        """The points the pools can give to ``project`` here (0 for one they give nothing to); ``None``: unknown."""
        if self.points_room is None:
            return None
        return dict(self.points_room).get(project or "", 0)

    @classmethod
    def from_config(cls, cfg: KioskConfig, *, method: str = "sim", pay_on_terminal: bool = False) -> FlowSettings:
        """From a KioskConfig."""
        flow = cfg.flow
        d = cfg.donation
        return cls(
            projects=tuple(p.id for p in cfg.projects), presets_yen=tuple(d.presets_yen), default_yen=d.default_yen,
            max_per_transaction_yen=d.max_per_transaction_yen, daily_limit_per_card_yen=d.daily_limit_per_card_yen,
            points_per_100_yen=d.points_per_100_yen, method=method, language=cfg.kiosk.language,
            choose_amount_idle_ms=flow.choose_amount_idle_ms, tap_card_idle_ms=flow.tap_card_idle_ms,
            thanks_ms=flow.thanks_ms, error_ms=flow.error_ms, pay_on_terminal=pay_on_terminal,
            express_cancel_ms=flow.express_cancel_ms,
            my_page_ms=cfg.portal.my_page_qr_s * 1000,
        )

    def points_for(self, amount_yen: int) -> int:
        """Social contribution points for a gift: whole hundreds of yen times the rate."""
        return amount_yen // 100 * self.points_per_100_yen

    def timeout_ms(self, name: StateName) -> int | None:
        return {"choose_amount": self.choose_amount_idle_ms, "choose_project": self.choose_amount_idle_ms,
                "tap_card": self.tap_card_idle_ms,
                "thanks": self.thanks_ms, "error": self.error_ms}.get(name)

    def amount_ok(self, amount_yen: int) -> bool:
        return amount_yen in self.presets_yen and amount_yen <= self.max_per_transaction_yen


# --- state ------------------------------------------------------------------------------

Phase = Literal["intent", "hold", "charge", "record"]
Outcome = Literal["approved", "declined", "not_charged", "unknown"]


class Donation(_Value, frozen=True):
    """The donation being made (kept on the thanks/error screen that ends it)."""

    attempt: int
    """Counter of donations started; effects and their answers carry it, so a stale answer is ignored."""
    project: str
    amount_yen: int
    donor: DonorToken | None
    """``None``: paid on the terminal without identifying a card (no points)."""
    phase: Phase = "intent"
    intent_seq: int | None = None
    idem: str | None = None
    outcome: Outcome | None = None
    provider_ref: str | None = None
    reason: str | None = None
    canceled: bool = False
    """The terminal's checkout was canceled (by the donor, the kiosk or its deadline), not refused."""
    unavailable: bool = False
    """The terminal's provider refused the charge for the terminal's setup, before any card was asked for: not
    charged, and the error screen says "try again later", never "try another card"."""
    hold_until_ms: int | None = None
    """An Express gift (one tap, no amount chosen): the charge waits until then, its intent already durable and
    the card held on the reader, so an accidental tap (a card lifted, or やめる) moves no money (docs/donation.md)."""
    hold_from_ms: int | None = None
    """When the Express window opened (the tap), so a screen can show how much of it is left."""
    withdrawn: bool = False
    """やめる during the hold: the committed intent is closed as not charged, and nothing is charged."""


class Receipt(_Value, frozen=True):
    """The committed donation entry a receipt code is derived from."""

    seq: int
    entry_hash: bytes
    signature: bytes
    code: str


class ThanksInfo(_Value, frozen=True):
    project: str
    amount_yen: int
    new_total_yen: int
    """The project's total on this kiosk's ledger, this gift included."""
    points_earned: int
    points_balance: int
    """The donor token's balance derived from this ledger (the portal's figure joins it later)."""
    receipt: Receipt


class ErrorInfo(_Value, frozen=True):
    kind: ErrorKind
    hint: Hint
    """Key into :data:`HINTS`: what the citizen should do next."""
    project: str | None = None
    amount_yen: int | None = None
    balance_yen: int | None = None
    remaining_yen: int | None = None
    retry: bool = False
    """A tap on this screen tries again with the same project and amount."""
    reference: int | None = None
    """The donation intent's ledger seq when one was committed: the number a citizen shows the staff."""
    express: bool = False
    """The gift that failed was an Express gift (one tap, no amount chosen): a retry is one again, window and all.
    Above all on 取り消しました (a card lifted, or やめる, in the window): the bag that brushed the reader once
    brushes it again, and that brush must be held for the window as the first was, not charged at once."""
    at_ms: int = 0
    """When this outcome came (the flow's clock). Two errors alike in all else (a card pulled away too soon,
    twice) are two outcomes, each with its failure cue; a language switch or a touch on the screen is not one."""


class MyPageInfo(_Value, frozen=True):
    request: str
    """The signed one-time request (server_sync.wire.mypage), shown as ``{portal}/me/new#{request}``."""
    donor: DonorToken | None = None
    """The card the code is for (``None``: not known, so every card tapped is someone else's)."""


class FlowState(_Value, frozen=True):
    name: StateName
    since_ms: int
    """When this screen was entered or last touched: the idle timeout counts from here."""
    lang: str
    loop_project: str | None
    """The project the movie loop is showing: a tap during attract gives to it."""
    project: str | None = None
    amount_yen: int | None = None
    reader_online: bool = True
    attempts: int = 0
    donation: Donation | None = None
    thanks: ThanksInfo | None = None
    error: ErrorInfo | None = None
    my_page: MyPageInfo | None = None
    """On my_page: the QR code's request once a card was tapped (``None``: waiting for the tap)."""
    points: PointsInfo | None = None
    """On points: the exchange under way (docs/points.md)."""


def initial(settings: FlowSettings, now_ms: int) -> FlowState:
    return FlowState("attract", now_ms, settings.language, settings.projects[0] if settings.projects else None)


def deadline_ms(state: FlowState, settings: FlowSettings) -> int | None:
    """When this screen times out (``None``: never), so a UI knows when to send a Tick."""
    if state.name == "points":
        return _points_deadline(state, settings)
    if state.name == "attract":
        # The loop never times out, but a language a visitor chose there is theirs, not the next citizen's: left
        # alone for as long as the amounts wait (choose_amount_idle_ms), the loop goes back to the kiosk's own.
        return None if state.lang == settings.language else state.since_ms + settings.choose_amount_idle_ms
    if state.name == "my_page":
        t: int | None = settings.my_page_ms if state.my_page is not None else settings.tap_card_idle_ms
    else:
        t = settings.timeout_ms(state.name)
    if state.name == "charging" and state.donation is not None and state.donation.phase == "hold":
        return state.donation.hold_until_ms
    return None if t is None else state.since_ms + t


# --- events ------------------------------------------------------------------------------

class Event(_Value, frozen=True, kw_only=True):
    now_ms: int


class Tick(Event, frozen=True, kw_only=True):
    """Time passed (idle timeouts)."""


class ProjectShown(Event, frozen=True, kw_only=True):
    """The movie loop moved on to this project."""
    project: str


class Touch(Event, frozen=True, kw_only=True):
    """A touch on the screen. On attract it opens choose_amount (for ``project`` or the one on screen);
    on error it dismisses; on thanks nothing (its close button sends Cancel); elsewhere it only keeps
    the screen awake."""
    project: str | None = None


class CardLifted(Event, frozen=True, kw_only=True):
    """The card left the reader. Inside an Express gift's window it withdraws the gift, as やめる does: the
    donor holds the card for the window (as e-money terminals ask), and a card that only brushed the reader
    gives nothing."""


class OpenPicker(Event, frozen=True, kw_only=True):
    """The "choose a project" button: the projects by policy area, instead of waiting for a project's movie."""


class PickProject(Event, frozen=True, kw_only=True):
    """A project chosen on the picker: its amounts come next."""
    project: str


class ChooseAmount(Event, frozen=True, kw_only=True):
    amount_yen: int


class Cancel(Event, frozen=True, kw_only=True):
    """The back / cancel button."""


class ToggleLanguage(Event, frozen=True, kw_only=True):
    """The visible 日本語 / English toggle."""


class Tap(Event, frozen=True, kw_only=True):
    """A card was read. ``given_today_yen`` is what the token has given this business day
    (the service looks it up, so the flow can apply the daily limit without I/O)."""
    donor: DonorToken
    family: str
    balance_yen: int | None
    given_today_yen: int | None = 0
    """``None``: the ledger could not be read, so the limit cannot be checked (fail closed)."""


class AskMyPage(Event, frozen=True, kw_only=True):
    """The "my page" button on the thank-you screen."""


class MyPageIssued(Event, frozen=True, kw_only=True):
    """The service signed a one-time my-page request for the card tapped."""
    request: str
    donor: DonorToken | None = None
    """The card it is for (:attr:`IssueMyPage.donor`): a tap of another card while it is shown is the next
    citizen's, never a reason to keep it up."""


class MyPageFailed(Event, frozen=True, kw_only=True):
    """No request could be made (no portal yet, the key unreadable)."""
    reason: str = ""


class PayOnTerminal(Event, frozen=True, kw_only=True):
    """With a separate terminal: pay there without tapping the kiosk's reader first (no points)."""


class CardUnreadable(Event, frozen=True, kw_only=True):
    """The reader saw a card but could not read it (``not_transit``: it is not a transit card)."""
    not_transit: bool = False
    detail: str = ""


class ReaderOffline(Event, frozen=True, kw_only=True):
    reason: str = ""


class ReaderOnline(Event, frozen=True, kw_only=True):
    pass


class IntentCommitted(Event, frozen=True, kw_only=True):
    attempt: int
    intent_seq: int
    idem: str


class ChargeAnswered(Event, frozen=True, kw_only=True):
    """The terminal's final word (after any lookups): ``not_charged`` means a timeout that lookup showed was
    never applied; ``unknown`` means nobody can tell yet (the intent stays open for start-up)."""
    attempt: int
    outcome: Outcome
    provider_ref: str | None = None
    reason: str | None = None
    canceled: bool = False
    """A ``declined`` that was a cancel on a separate terminal (the error screen says "canceled")."""
    unavailable: bool = False
    """A ``declined`` that was the terminal's setup refused by its provider, nothing created (the error screen is
    "temporarily unavailable": another card would fail the same way)."""


class DonationRecorded(Event, frozen=True, kw_only=True):
    attempt: int
    receipt: Receipt
    new_total_yen: int
    points_balance: int


class FailureRecorded(Event, frozen=True, kw_only=True):
    attempt: int


class LedgerDown(Event, frozen=True, kw_only=True):
    """The ledger raised LedgerUnavailable at ``stage``: nothing was written."""
    attempt: int
    stage: Literal["intent", "record"]


ServiceEvent = IntentCommitted | ChargeAnswered | DonationRecorded | FailureRecorded | LedgerDown
_SERVICE_EVENTS = (IntentCommitted, ChargeAnswered, DonationRecorded, FailureRecorded, LedgerDown)


# --- effects -----------------------------------------------------------------------------

class CommitIntent(_Value, frozen=True):
    """Step 1: commit a donation_intent (the service mints the idempotency key)."""
    attempt: int
    project: str
    amount_yen: int
    method: str
    donor: DonorToken | None


class Charge(_Value, frozen=True):
    """Step 2: charge, with the committed intent's idem as the idempotency key."""
    attempt: int
    intent_seq: int
    idem: str
    amount_yen: int


class RecordDonation(_Value, frozen=True):
    """Step 3, approved: commit the donation entry."""
    attempt: int
    intent_seq: int
    provider_ref: str
    points: int


class RecordFailure(_Value, frozen=True):
    """Step 3, not charged: commit donation_failed."""
    attempt: int
    intent_seq: int
    reason: str
    provider_ref: str | None = None


class IssueMyPage(_Value, frozen=True):
    """Sign a one-time my-page request naming the card's tokens under every epoch (``donor.all_hexes``);
    answered by :class:`MyPageIssued` or :class:`MyPageFailed`. Writes nothing to the ledger."""
    donor: DonorToken


# --- points exchanged for a sponsor-matched gift (issue #17, docs/points.md) -------------------------------
#
#    attract/thanks ──"use points"──▶ points: tap ──tap──▶ asking ──▶ choose (project, points) ──confirm──▶
#    spending ──▶ done (thank-you: points, the sponsor's yen, the project)
#
# What the card may spend here comes from the LookupPoints effect (the portal's word when it answers, else its
# last word, minus this ledger's spending); SpendPoints checks the card and the pool again on the ledger
# writer's thread and records one points_spent entry. No money is charged. Asking and spending never time out
# (the service answers every effect, as for charging); the other phases do.

PointsPhase = Literal["tap", "asking", "choose", "spending", "done"]
PointsRefusal = Literal["card", "pool", "pool_empty", "points", "unavailable"]


class PointsInfo(_Value, frozen=True):
    phase: PointsPhase
    donor: DonorToken | None = None
    spendable: int = 0
    """Points this card may spend on this kiosk (fail closed: never more than the portal handed it)."""
    balance: int | None = None
    """The card's balance as the portal last said (``None``: the portal was not reached)."""
    project: str | None = None
    points: int | None = None
    yen: int = 0
    sponsor: str = ""
    refused: PointsRefusal | None = None
    """Why the last try was refused (shown on the choose screen)."""
    pool_refused: tuple[tuple[str, int], ...] = ()
    """For this visit: each project the pools refused (``refused="pool"``: its pools' room here used up, or no pool
    gives to its area), with the fewest points refused for it. Such a project is not offered again for that many
    points or more, so the give button does not lead straight back to the same refusal."""


class OpenPoints(Event, frozen=True, kw_only=True):
    """The "use your points" button."""


class PointsLooked(Event, frozen=True, kw_only=True):
    donor_hex: str
    spendable: int
    balance: int | None = None


class ChoosePointsProject(Event, frozen=True, kw_only=True):
    project: str


class ChoosePoints(Event, frozen=True, kw_only=True):
    points: int


class ConfirmPoints(Event, frozen=True, kw_only=True):
    pass


class PointsSpent(Event, frozen=True, kw_only=True):
    points: int
    yen: int
    sponsor: str
    spendable: int
    """What the card may still spend here."""


class PointsRefused(Event, frozen=True, kw_only=True):
    reason: PointsRefusal


class LookupPoints(_Value, frozen=True):
    """What ``donor`` may spend here; answered by :class:`PointsLooked` (never fails: offline, the last word)."""
    donor: DonorToken


class SpendPoints(_Value, frozen=True):
    """Check and record one exchange; answered by :class:`PointsSpent` or :class:`PointsRefused`."""
    donor: DonorToken
    points: int
    project: str


class PointsScreen(_Value, frozen=True):
    screen: ClassVar[str] = "points"
    phase: PointsPhase
    spendable: int
    balance: int | None
    projects: tuple[str, ...]
    project: str | None
    points: int | None
    presets: tuple[int, ...]
    """The point amounts offered: the settings' presets the card can afford."""
    yen: int
    sponsor: str
    refused: PointsRefusal | None
    lang: str


def _points_deadline(state: FlowState, settings: FlowSettings) -> int | None:
    phase = _req(state.points).phase
    t = {"tap": settings.tap_card_idle_ms, "choose": settings.choose_amount_idle_ms,
         "done": settings.thanks_ms}.get(phase)
    return None if t is None else state.since_ms + t


def _room(settings: FlowSettings, p: PointsInfo, project: str | None) -> int | None:
    """The most points the pools can give here to ``project`` (``None``: not known): the app's reading of their room,
    less what they refused for it during this visit."""
    room = settings.points_room_for(project)
    refused = dict(p.pool_refused).get(project or "")
    if refused is not None:
        room = refused - 1 if room is None else min(room, refused - 1)
    return room


def _pools_room(settings: FlowSettings, p: PointsInfo) -> int | None:
    """The most points the pools can give here to any of the projects on offer (``None``: not known)."""
    if settings.points_room is None and not p.pool_refused:
        return None
    rooms = [_room(settings, p, pid) for pid in settings.projects]
    if any(r is None for r in rooms):
        return None
    return max((r or 0 for r in rooms), default=0)


def _points_screen(state: FlowState, settings: FlowSettings) -> PointsScreen:
    """The choices offered are those an exchange can pass: point amounts the card can afford and some project's pools
    can give, and the projects whose pools can give the amount chosen (or the smallest offered). When the card could
    afford the smallest amount but the pools here have less than it left, nothing is offered and the screen says the
    sponsor's gifts here are used up (``refused="pool_empty"``), not that the card has no points, nor (as the
    refusal of one project's pool says) to choose another project."""
    p = _req(state.points)
    affordable = tuple(x for x in settings.points_presets if x <= p.spendable)
    best = _pools_room(settings, p)
    presets = affordable if best is None else tuple(x for x in affordable if x <= best)
    need = p.points or (presets[0] if presets else 1)
    projects = tuple(pid for pid in settings.projects if _room_ok(settings, p, pid, need))
    project = p.project if p.project in projects else None
    refused = p.refused
    if best is not None and affordable and not presets and refused in (None, "pool") and p.phase == "choose":
        refused = "pool_empty"  # nothing left to choose: not "choose another project" (e.g. every one refused)
    return PointsScreen(p.phase, p.spendable, p.balance, projects, project, p.points, presets, p.yen,
                        p.sponsor, refused, state.lang)


def _room_ok(settings: FlowSettings, p: PointsInfo, project: str | None, points: int) -> bool:
    room = _room(settings, p, project)
    return room is None or points <= room


def _refused(settings: FlowSettings, p: PointsInfo, reason: PointsRefusal) -> tuple[PointsInfo, Effects]:
    """Back to choosing after a refused exchange, with what the refusal says no longer chosen, so one tap on give
    does not bring the same refusal again."""
    p = replace(p, phase="choose", refused=reason)
    if reason == "pool" and p.project is not None and p.points is not None:
        # This project's pools cannot give that many here (used up, or none gives to its area): unchosen, and not
        # offered again for that many points in this visit. The points stay chosen: another project may take them.
        refused = dict(p.pool_refused)
        refused[p.project] = min(p.points, refused.get(p.project, p.points))
        p = replace(p, project=None, pool_refused=tuple(sorted(refused.items())))
        best = _pools_room(settings, p)
        return (p if best is None or p.points is None or p.points <= best else replace(p, points=None)), NO_EFFECTS
    if reason == "card" and p.donor is not None:
        # The card may spend fewer points here than the screen was told (a refund, a lost answer): the amount is
        # unchosen and the card looked up again, so only what it may spend now is offered. The project stays.
        return replace(p, phase="asking", points=None), (LookupPoints(p.donor),)
    if reason == "points":
        return replace(p, points=None), NO_EFFECTS
    return p, NO_EFFECTS  # "unavailable": nothing wrong with the choice; trying again later may pass


def _on_points(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    now = ev.now_ms
    if state.name != "points":  # OpenPoints elsewhere: only from the loop or a thank-you, reader working
        if state.name in ("attract", "thanks") and settings.points_exchange and state.reader_online:
            project = state.project or state.loop_project
            return replace(state, name="points", since_ms=now, points=PointsInfo("tap", project=project)), NO_EFFECTS
        return state, NO_EFFECTS
    p = _req(state.points)
    if isinstance(ev, Cancel):
        return _attract(state, now, settings), NO_EFFECTS
    if p.phase in ("asking", "spending"):  # waiting for the service: only its answer moves on
        if isinstance(ev, PointsLooked) and p.phase == "asking" and p.donor is not None \
                and ev.donor_hex == p.donor.hex:
            return replace(state, since_ms=now, points=replace(p, phase="choose", spendable=max(0, ev.spendable),
                                                               balance=ev.balance)), NO_EFFECTS
        if isinstance(ev, PointsSpent) and p.phase == "spending":
            return replace(state, since_ms=now, points=replace(p, phase="done", points=ev.points, yen=ev.yen,
                                                               sponsor=ev.sponsor, spendable=ev.spendable,
                                                               refused=None)), NO_EFFECTS
        if isinstance(ev, PointsRefused) and p.phase == "spending":
            info, effects = _refused(settings, p, ev.reason)
            return replace(state, since_ms=now, points=info), effects
        return state, NO_EFFECTS
    if isinstance(ev, Tap) and p.phase in ("tap", "choose"):  # the card in hand decides whose points these are
        info = PointsInfo("asking", ev.donor, project=p.project, pool_refused=p.pool_refused)  # the pools': kept
        return replace(state, since_ms=now, points=info), (LookupPoints(ev.donor),)
    if p.phase == "choose":
        # Only what an exchange can pass (the screen offers nothing else): the pools' room here, as the app last
        # read it (settings.points_room), besides the card's points.
        if isinstance(ev, ChoosePointsProject) and ev.project in settings.projects \
                and _room_ok(settings, p, ev.project, p.points or 1):
            return replace(state, since_ms=now, points=replace(p, project=ev.project, refused=None)), NO_EFFECTS
        best = _pools_room(settings, p)
        if isinstance(ev, ChoosePoints) and 1 <= ev.points <= p.spendable and (best is None or ev.points <= best):
            # A project whose pools cannot give that many is no longer chosen: the citizen picks one that can.
            project = p.project if _room_ok(settings, p, p.project, ev.points) else None
            return replace(state, since_ms=now, points=replace(p, points=ev.points, project=project,
                                                               refused=None)), NO_EFFECTS
        if isinstance(ev, ConfirmPoints) and p.project is not None and p.points is not None and p.donor is not None \
                and 1 <= p.points <= p.spendable and _room_ok(settings, p, p.project, p.points):
            return (replace(state, since_ms=now, points=replace(p, phase="spending")),
                    (SpendPoints(p.donor, p.points, p.project),))
    if p.phase == "done" and isinstance(ev, Touch):
        return _attract(state, now, settings), NO_EFFECTS
    if isinstance(ev, (Touch, CardUnreadable)):
        return _awake(state, now), NO_EFFECTS
    return state, NO_EFFECTS


Effect = CommitIntent | Charge | RecordDonation | RecordFailure | IssueMyPage | LookupPoints | SpendPoints
Effects = tuple[Effect, ...]


# --- screens: a pure function of the state --------------------------------------------------

class AttractScreen(_Value, frozen=True):
    screen: ClassVar[str] = "attract"
    project: str | None
    default_yen: int
    reader_online: bool
    lang: str
    points_exchange: bool = False
    """Show "use your points" (settings.points_exchange, docs/points.md)."""


class ChooseAmountScreen(_Value, frozen=True):
    screen: ClassVar[str] = "choose_amount"
    project: str
    presets_yen: tuple[int, ...]
    default_yen: int
    lang: str


class ChooseProjectScreen(_Value, frozen=True):
    screen: ClassVar[str] = "choose_project"
    projects: tuple[str, ...]
    """Every project, in config order (the renderer groups them by policy area)."""
    current: str | None
    """The project the donor came from (highlighted)."""
    lang: str


class TapCardScreen(_Value, frozen=True):
    screen: ClassVar[str] = "tap_card"
    project: str
    amount_yen: int
    lang: str
    on_terminal: bool = False
    """Pay on a separate terminal: the kiosk's reader is optional (points), a button pays without it."""


class ChargingScreen(_Value, frozen=True):
    screen: ClassVar[str] = "charging"
    project: str
    amount_yen: int
    lang: str
    on_terminal: bool = False
    """The donor pays on a separate terminal: say so, show its state, offer やめる."""
    terminal_state: str | None = None
    """The terminal's live state (the app fills it in: CREATING, PENDING, IN_PROGRESS, CANCEL_REQUESTED,
    COMPLETED, CANCELED, UNREACHABLE), ``None`` before it is known."""
    cancel_requested: bool = False
    cancel_refused: bool = False
    """The provider would not cancel from the kiosk: the donor finishes or cancels on the terminal."""
    can_withdraw: bool = False
    """An Express gift inside its cancel window: やめる is offered, nothing has been charged yet."""
    withdraw_until_ms: int | None = None
    """When the window closes (the flow's clock), for a countdown."""
    withdraw_from_ms: int | None = None
    """When the window opened (the flow's clock): the countdown's full length is ``until - from``."""


class ThanksScreen(_Value, frozen=True):
    screen: ClassVar[str] = "thanks"
    project: str
    amount_yen: int
    new_total_yen: int
    points_earned: int
    points_balance: int
    receipt_code: str
    receipt_seq: int
    lang: str
    has_donor: bool = True
    """``False``: paid on the terminal without a card on our reader, so there are no points to show."""
    my_page: bool = False
    """Show the "my page" button (settings.my_page_ms > 0)."""
    points_exchange: bool = False
    """Show "use your points" (settings.points_exchange, docs/points.md)."""
    reference: int | None = None
    """The donor's 受付番号: the intent's ledger seq (not ``receipt_seq``), what the staff menu finds a gift by."""


class ErrorScreen(_Value, frozen=True):
    screen: ClassVar[str] = "error"
    kind: ErrorKind
    hint: Hint
    text: str
    """English what-to-do text (gettext msgid) for ``hint``."""
    project: str | None
    amount_yen: int | None
    balance_yen: int | None
    remaining_yen: int | None
    lang: str
    reference: int | None = None
    """The intent's ledger seq (money may have moved, or a question about it): shown for the staff."""


class MyPageScreen(_Value, frozen=True):
    screen: ClassVar[str] = "my_page"
    request: str | None
    """``None``: "tap your card"; else the one-time request for the QR code."""
    valid_s: int
    """How long the QR code is valid, to say so on screen."""
    lang: str
    until_ms: int | None = None
    """When the code leaves the screen (the flow's clock), for its countdown; ``None``: ``valid_s`` from now."""


Screen = (AttractScreen | ChooseAmountScreen | ChooseProjectScreen | TapCardScreen | ChargingScreen
          | ThanksScreen | ErrorScreen | MyPageScreen | PointsScreen)


def screen_for(state: FlowState, settings: FlowSettings) -> Screen | PointsScreen:
    """What to draw for ``state``: the screen's name is ``.screen``, the rest is its data."""
    if state.name == "points":
        return _points_screen(state, settings)
    lang = state.lang
    if state.name == "attract":
        return AttractScreen(state.loop_project, settings.default_yen, state.reader_online, lang,
                             points_exchange=settings.points_exchange)
    if state.name == "choose_amount":
        return ChooseAmountScreen(_req(state.project), settings.presets_yen, settings.default_yen, lang)
    if state.name == "choose_project":
        return ChooseProjectScreen(settings.projects, state.project, lang)
    if state.name == "tap_card":
        return TapCardScreen(_req(state.project), _req(state.amount_yen), lang, settings.pay_on_terminal)
    if state.name == "charging":
        d = _req(state.donation)
        hold = d.hold_until_ms is not None and d.phase in ("intent", "hold") and not d.withdrawn
        return ChargingScreen(d.project, d.amount_yen, lang, settings.pay_on_terminal, can_withdraw=hold,
                              withdraw_until_ms=d.hold_until_ms if hold else None,
                              withdraw_from_ms=d.hold_from_ms if hold else None)
    if state.name == "thanks":
        t = _req(state.thanks)
        d = _req(state.donation)
        return ThanksScreen(t.project, t.amount_yen, t.new_total_yen, t.points_earned, t.points_balance,
                            t.receipt.code, t.receipt.seq, lang, d.donor is not None, settings.my_page_ms > 0,
                            points_exchange=settings.points_exchange, reference=d.intent_seq)
    if state.name == "my_page":
        code = state.my_page
        return MyPageScreen(code.request if code else None, settings.my_page_ms // 1000, lang,
                            until_ms=state.since_ms + settings.my_page_ms if code else None)
    e = _req(state.error)
    return ErrorScreen(e.kind, e.hint, HINTS[e.hint], e.project, e.amount_yen, e.balance_yen, e.remaining_yen, lang,
                       e.reference)


_T = TypeVar("_T")


def _req(v: _T | None) -> _T:
    if v is None:
        raise ValueError("flow state is missing data its screen needs")
    return v


# --- transitions -----------------------------------------------------------------------------

NO_EFFECTS: Effects = ()


def step(state: FlowState, event: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    """Advance by one event. An overdue screen first times out, exactly as if a Tick had come in time."""
    now = event.now_ms
    state = _expire(state, now, settings)
    if isinstance(event, ProjectShown):
        if event.project in settings.projects:
            state = replace(state, loop_project=event.project)
        return state, NO_EFFECTS
    if isinstance(event, ToggleLanguage):
        toggled = replace(state, lang="en" if state.lang == "ja" else "ja")
        if state.name == "my_page" and state.my_page is not None:
            return toggled, NO_EFFECTS  # the code's screen time is its validity: no language switch extends it
        return _awake(toggled, now), NO_EFFECTS
    if isinstance(event, ReaderOnline):
        state = replace(state, reader_online=True)
        if state.name == "error" and state.error and state.error.kind == "reader_offline":
            return _attract(state, now, settings), NO_EFFECTS
        return state, NO_EFFECTS
    if isinstance(event, ReaderOffline):
        state = replace(state, reader_online=False)
        if state.name in ("choose_amount", "choose_project", "tap_card") or (
                state.name == "error" and state.error and state.error.kind != "unavailable"):
            return _error(state, now, "reader_offline", "reader_offline"), NO_EFFECTS
        return state, NO_EFFECTS  # attract shows a banner; charging and thanks finish first
    if state.name == "points" or isinstance(event, OpenPoints):
        return _on_points(state, event, settings)
    return _HANDLERS[state.name](state, event, settings)


def _expire(state: FlowState, now: int, settings: FlowSettings) -> FlowState:
    if state.name == "charging":  # never times out (its deadline, if any, is the end of an Express hold)
        return state
    due = deadline_ms(state, settings)
    return _attract(state, now, settings) if due is not None and now >= due else state


def _awake(state: FlowState, now: int) -> FlowState:
    """Activity on a screen restarts its idle timeout (charging has none; attract only in another language)."""
    return replace(state, since_ms=max(state.since_ms, now))


def _attract(state: FlowState, now: int, settings: FlowSettings) -> FlowState:
    # Back to the loop: the next citizen starts fresh, in the kiosk's own language.
    return FlowState("attract", now, settings.language, state.loop_project, reader_online=state.reader_online,
                     attempts=state.attempts)


class _ErrorDetails(TypedDict, total=False):
    """The optional fields of :class:`ErrorInfo`, as :func:`_error` takes them."""

    project: str | None
    amount_yen: int | None
    balance_yen: int | None
    remaining_yen: int | None
    retry: bool
    reference: int | None
    express: bool


class _Gift(TypedDict):
    """The gift an error screen is about (spread into :func:`_error` with further details)."""

    project: str
    amount_yen: int


class _GiftRef(_Gift):
    reference: int | None


class _RetryableGift(_Gift):
    retry: bool
    express: bool


def _error(state: FlowState, now: int, kind: ErrorKind, hint: Hint, **info: Unpack[_ErrorDetails]) -> FlowState:
    return replace(state, name="error", since_ms=now, error=ErrorInfo(kind, hint, at_ms=now, **info), thanks=None)


def _project_or_first(state: FlowState, settings: FlowSettings, wanted: str | None = None) -> str | None:
    if wanted in settings.projects:
        return wanted
    return state.loop_project or (settings.projects[0] if settings.projects else None)


def _start(state: FlowState, ev: Tap, project: str, amount: int, settings: FlowSettings, *,
           express: bool = False) -> tuple[FlowState, Effects]:
    """A card was tapped for ``amount`` to ``project``: check it, then commit the intent."""
    now = ev.now_ms
    state = replace(state, reader_online=True)
    ctx: _RetryableGift = {"project": project, "amount_yen": amount, "retry": True, "express": express}
    if ev.family == UNKNOWN_FAMILY and not settings.pay_on_terminal:  # on a terminal any card may earn points
        return _error(state, now, "not_transit", "not_transit", **ctx), NO_EFFECTS
    if ev.given_today_yen is None:
        return _error(state, now, "unavailable", "unavailable", project=project, amount_yen=amount), NO_EFFECTS
    remaining = max(0, settings.daily_limit_per_card_yen - max(0, ev.given_today_yen))
    if amount > settings.max_per_transaction_yen or amount > remaining:
        hint: Hint = "limit_reached" if remaining < min(settings.presets_yen) else "limit_reached_amount"
        return _error(state, now, "limit_reached", hint, remaining_yen=remaining, **ctx), NO_EFFECTS
    if ev.balance_yen is not None and ev.balance_yen < amount and not settings.pay_on_terminal:
        # "Choose a smaller amount" only when a smaller preset would go through.
        low: Hint = "balance_low" if ev.balance_yen >= min(settings.presets_yen) else "balance_low_none"
        return _error(state, now, "balance_low", low, balance_yen=ev.balance_yen, **ctx), NO_EFFECTS
    return _begin(state, now, project, amount, ev.donor, settings, express=express)


def _begin(state: FlowState, now: int, project: str, amount: int, donor: DonorToken | None,
           settings: FlowSettings, *, express: bool = False) -> tuple[FlowState, Effects]:
    attempt = state.attempts + 1
    # Only for our own reader: on a separate terminal the donor confirms the payment on the terminal itself.
    hold = (now + settings.express_cancel_ms if express and settings.express_cancel_ms > 0
            and not settings.pay_on_terminal else None)
    donation = Donation(attempt, project, amount, donor, hold_until_ms=hold, hold_from_ms=now if hold else None)
    state = replace(state, name="charging", since_ms=now, project=project, amount_yen=amount, attempts=attempt,
                    donation=donation, thanks=None, error=None)
    return state, (CommitIntent(attempt, project, amount, settings.method, donor),)


def _unreadable(state: FlowState, ev: CardUnreadable, project: str | None, amount: int, *,
                express: bool = False) -> FlowState:
    kind: ErrorKind = "not_transit" if ev.not_transit else "card_unreadable"
    return _error(state, ev.now_ms, kind, kind, project=project, amount_yen=amount, retry=project is not None,
                  express=express)


def _on_attract(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    now = ev.now_ms
    if isinstance(ev, Touch):
        if not state.reader_online:
            return _error(state, now, "reader_offline", "reader_offline"), NO_EFFECTS
        project = _project_or_first(state, settings, ev.project)
        if project is None:
            return state, NO_EFFECTS
        return replace(state, name="choose_amount", since_ms=now, project=project, amount_yen=None), NO_EFFECTS
    if isinstance(ev, OpenPicker):
        if not state.reader_online:
            return _error(state, now, "reader_offline", "reader_offline"), NO_EFFECTS
        return _picker(state, now, _project_or_first(state, settings))
    if isinstance(ev, Tap):  # Express: one tap gives the default, after the cancel window
        project = _project_or_first(state, settings)
        return _start(state, ev, project, settings.default_yen, settings, express=True) if project else (
            state, NO_EFFECTS)
    if isinstance(ev, CardUnreadable):
        return _unreadable(state, ev, _project_or_first(state, settings), settings.default_yen,
                           express=True), NO_EFFECTS
    return state, NO_EFFECTS


def _on_choose_amount(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    now, project = ev.now_ms, _req(state.project)
    if isinstance(ev, ChooseAmount):
        if not settings.amount_ok(ev.amount_yen):
            return _awake(state, now), NO_EFFECTS
        return replace(state, name="tap_card", since_ms=now, amount_yen=ev.amount_yen), NO_EFFECTS
    if isinstance(ev, Cancel):
        return _attract(state, now, settings), NO_EFFECTS
    if isinstance(ev, Touch):
        return _awake(state, now), NO_EFFECTS
    if isinstance(ev, OpenPicker):
        return _picker(state, now, project)
    if isinstance(ev, Tap):  # tapped before choosing: one tap is enough, the default amount it is
        return _start(state, ev, project, settings.default_yen, settings, express=True)
    if isinstance(ev, CardUnreadable):
        return _unreadable(state, ev, project, settings.default_yen, express=True), NO_EFFECTS
    return state, NO_EFFECTS


def _picker(state: FlowState, now: int, project: str | None) -> tuple[FlowState, Effects]:
    return replace(state, name="choose_project", since_ms=now, project=project, amount_yen=None), NO_EFFECTS


def _on_choose_project(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    now = ev.now_ms
    if isinstance(ev, PickProject):
        if ev.project not in settings.projects:
            return _awake(state, now), NO_EFFECTS
        return replace(state, name="choose_amount", since_ms=now, project=ev.project, amount_yen=None), NO_EFFECTS
    if isinstance(ev, Cancel):
        return _attract(state, now, settings), NO_EFFECTS
    if isinstance(ev, Touch):
        return _awake(state, now), NO_EFFECTS
    project = state.project or _project_or_first(state, settings)
    if isinstance(ev, Tap) and project is not None:  # a card before choosing: the project shown last, as on attract
        return _start(state, ev, project, settings.default_yen, settings, express=True)
    if isinstance(ev, CardUnreadable):
        return _unreadable(state, ev, project, settings.default_yen, express=True), NO_EFFECTS
    return state, NO_EFFECTS


def _on_tap_card(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    now, project, amount = ev.now_ms, _req(state.project), _req(state.amount_yen)
    if isinstance(ev, Tap):
        return _start(state, ev, project, amount, settings)
    if isinstance(ev, PayOnTerminal) and settings.pay_on_terminal:  # no card on our reader: no points
        return _begin(state, now, project, amount, None, settings)
    if isinstance(ev, ChooseAmount):  # the amounts stay on screen: a change of mind
        if settings.amount_ok(ev.amount_yen):
            state = replace(state, amount_yen=ev.amount_yen)
        return _awake(state, now), NO_EFFECTS
    if isinstance(ev, Cancel):
        return _attract(state, now, settings), NO_EFFECTS
    if isinstance(ev, Touch):
        return _awake(state, now), NO_EFFECTS
    if isinstance(ev, CardUnreadable):
        return _unreadable(state, ev, project, amount), NO_EFFECTS
    return state, NO_EFFECTS


def _on_charging(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    # Taps and touches are ignored here: the same card re-tapped must not start a second charge. Cancel counts
    # only inside an Express gift's window, before anything was charged.
    d = _req(state.donation)
    now = ev.now_ms
    in_window = d.hold_until_ms is not None and d.phase in ("intent", "hold") and not d.withdrawn
    if isinstance(ev, (Cancel, CardLifted)) and in_window:
        d = replace(d, withdrawn=True, canceled=True, outcome="declined")
        if d.phase == "hold":  # the intent is durable: close it as not charged (the answer shows "canceled")
            d = replace(d, phase="record")
            return replace(state, donation=d), (RecordFailure(d.attempt, _req(d.intent_seq), WITHDRAWN),)
        return replace(state, donation=d), NO_EFFECTS  # still committing: closed as soon as it is
    if d.phase == "hold" and d.hold_until_ms is not None and now >= d.hold_until_ms:
        d = replace(d, phase="charge")  # the window is over: charge, with the committed intent's key
        return replace(state, donation=d), (Charge(d.attempt, _req(d.intent_seq), _req(d.idem), d.amount_yen),)
    if not isinstance(ev, _SERVICE_EVENTS) or ev.attempt != d.attempt:
        return state, NO_EFFECTS
    ctx: _GiftRef = {"project": d.project, "amount_yen": d.amount_yen, "reference": d.intent_seq}
    if d.phase == "intent":
        if isinstance(ev, IntentCommitted):
            if d.withdrawn:  # やめる came while the intent was being committed: close it, charge nothing
                d = replace(d, phase="record", intent_seq=ev.intent_seq, idem=ev.idem)
                return replace(state, donation=d), (RecordFailure(d.attempt, ev.intent_seq, WITHDRAWN),)
            if d.hold_until_ms is not None and ev.now_ms < d.hold_until_ms:
                d = replace(d, phase="hold", intent_seq=ev.intent_seq, idem=ev.idem)
                return replace(state, donation=d), NO_EFFECTS
            d = replace(d, phase="charge", intent_seq=ev.intent_seq, idem=ev.idem)
            return replace(state, donation=d), (Charge(d.attempt, ev.intent_seq, ev.idem, d.amount_yen),)
        if isinstance(ev, LedgerDown) and ev.stage == "intent":  # fail closed: nothing written, nothing charged
            return _error(state, now, "unavailable", "unavailable", **ctx), NO_EFFECTS
        return state, NO_EFFECTS
    if d.phase == "charge":
        if not isinstance(ev, ChargeAnswered):
            return state, NO_EFFECTS
        seq = _req(d.intent_seq)
        d = replace(d, outcome=ev.outcome, provider_ref=ev.provider_ref, reason=ev.reason, canceled=ev.canceled,
                    unavailable=ev.unavailable and ev.outcome == "declined")
        if ev.outcome == "approved":
            d = replace(d, phase="record")
            points = settings.points_for(d.amount_yen) if d.donor is not None else 0
            return replace(state, donation=d), (RecordDonation(d.attempt, seq, _req(ev.provider_ref), points),)
        if ev.outcome in ("declined", "not_charged"):
            d = replace(d, phase="record")
            said = "declined" if ev.outcome == "declined" and not d.unavailable else "not charged"
            reason = f"{said}: {ev.reason or 'no reason given'}"
            return replace(state, donation=d), (RecordFailure(d.attempt, seq, reason, ev.provider_ref),)
        # unknown: nobody can say whether money moved; the open intent is resolved by lookup later
        ctx["reference"] = seq
        return _error(replace(state, donation=d), now, "unavailable", "unavailable_pending", **ctx), NO_EFFECTS
    # phase == "record"
    if d.outcome == "approved":
        if isinstance(ev, DonationRecorded):
            earned = settings.points_for(d.amount_yen) if d.donor is not None else 0
            t = ThanksInfo(d.project, d.amount_yen, ev.new_total_yen, earned, ev.points_balance, ev.receipt)
            return replace(state, name="thanks", since_ms=now, thanks=t, error=None), NO_EFFECTS
        if isinstance(ev, LedgerDown) and ev.stage == "record":  # charged, not yet on the ledger
            return _error(state, now, "unavailable", "unavailable_charged", **ctx), NO_EFFECTS
        return state, NO_EFFECTS
    if isinstance(ev, FailureRecorded) or (isinstance(ev, LedgerDown) and ev.stage == "record"):
        # Not charged either way; an unrecorded failure is settled by lookup at start-up.
        if d.unavailable:  # the terminal cannot take money as set up: no retry, no "another card"
            return _error(state, now, "unavailable", "unavailable", **ctx), NO_EFFECTS
        hint: Hint = ("canceled" if d.canceled else "declined") if d.outcome == "declined" else "not_charged"
        # An Express gift's retry is Express again (see _on_error): a withdrawn one above all.
        return _error(state, now, "declined", hint, retry=True, express=d.hold_until_ms is not None,
                      **ctx), NO_EFFECTS
    return state, NO_EFFECTS


def _on_thanks(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    # Only the close button (Cancel) ends it early: a finger pointing at the QR code, or a phone held
    # up to scan it, touches the screen, and must not take the receipt away.
    if isinstance(ev, Cancel):
        return _attract(state, ev.now_ms, settings), NO_EFFECTS
    if isinstance(ev, AskMyPage) and settings.my_page_ms > 0:
        return replace(state, name="my_page", since_ms=ev.now_ms, my_page=None), NO_EFFECTS
    if isinstance(ev, Tap):
        d = _req(state.donation)
        if d.donor is not None and ev.donor.hex == d.donor.hex:  # the same card again: the gift just thanked for
            return state, NO_EFFECTS
        return _start(state, ev, d.project, settings.default_yen, settings, express=True)  # the next citizen
    return state, NO_EFFECTS


def _on_error(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    e = _req(state.error)
    if isinstance(ev, (Touch, Cancel)):
        return _attract(state, ev.now_ms, settings), NO_EFFECTS
    if e.retry and e.project is not None and e.amount_yen is not None:
        # A retry is the gift that failed, tried again, with the protection it had: an Express gift (a tap with no
        # amount chosen) is Express again, held for its window. Without that, 取り消しました after a card in a bag
        # brushed the reader and left would charge that bag's next brush at once: the one screen that says the
        # kiosk took nothing would be the one where a brush takes money with no window and no やめる.
        if isinstance(ev, Tap):
            return _start(state, ev, e.project, e.amount_yen, settings, express=e.express)
        if isinstance(ev, CardUnreadable):
            return _unreadable(state, ev, e.project, e.amount_yen, express=e.express), NO_EFFECTS
    return state, NO_EFFECTS


def _on_my_page(state: FlowState, ev: Event, settings: FlowSettings) -> tuple[FlowState, Effects]:
    now = ev.now_ms
    code = state.my_page
    thanked = state.donation.donor if state.donation is not None else None
    if isinstance(ev, Tap) and (code is None or _same_card(code.donor, ev.donor) or _same_card(thanked, ev.donor)):
        return state, (IssueMyPage(ev.donor),)  # whoever holds the card decides whose page it is: a new code
    if isinstance(ev, (Tap, CardUnreadable)) and code is not None:
        # A card other than the code's own, on the lobby's public screen: the next citizen. The code goes at once
        # (they must never see it, nor a page be made for a card whose holder did not ask), and their tap does
        # what it does on the loop: an Express gift, window and all.
        gone = replace(state, my_page=None)
        project = state.donation.project if state.donation is not None else _project_or_first(state, settings)
        if project is None:
            return _attract(state, now, settings), NO_EFFECTS
        if isinstance(ev, CardUnreadable):
            return _unreadable(gone, ev, project, settings.default_yen, express=True), NO_EFFECTS
        return _start(gone, ev, project, settings.default_yen, settings, express=True)
    if isinstance(ev, MyPageIssued):
        return replace(state, since_ms=now, my_page=MyPageInfo(ev.request, ev.donor)), NO_EFFECTS
    if isinstance(ev, MyPageFailed):
        return _error(replace(state, my_page=None), now, "unavailable", "my_page_unavailable"), NO_EFFECTS
    if isinstance(ev, Cancel):
        return _attract(state, now, settings), NO_EFFECTS
    if isinstance(ev, (Touch, CardUnreadable)) and state.my_page is None:
        return _awake(state, now), NO_EFFECTS  # a code on screen is not kept past its validity
    return state, NO_EFFECTS


def _same_card(owner: DonorToken | None, tapped: DonorToken) -> bool:
    """``tapped`` is the card ``owner`` names (under any pepper epoch either holds)."""
    return owner is not None and not set(owner.all_hexes).isdisjoint(tapped.all_hexes)


WITHDRAWN = "not charged: withdrawn in the Express window (やめる, or the card lifted before the charge)"
"""The donation_failed reason of an Express gift undone with やめる (its intent was durable, no charge was sent)."""

_Handler = Callable[[FlowState, Event, FlowSettings], tuple[FlowState, Effects]]

_HANDLERS: dict[StateName, _Handler] = {
    "attract": _on_attract, "choose_amount": _on_choose_amount, "choose_project": _on_choose_project,
    "tap_card": _on_tap_card,
    "charging": _on_charging, "thanks": _on_thanks, "error": _on_error, "my_page": _on_my_page,
}
