"""The donation service: runs the flow's effects against the ledger and the payment terminal.

Ledger order, for every donation (the flow's phases make it impossible to skip a step)::

    1. donation_intent committed        (LedgerUnavailable: error "unavailable", nothing charged)
    2. charge, idempotency key = the intent's idem
    3. donation or donation_failed committed
    4. only then the thank-you
    5. then a signed checkpoint over the ledger (the receipt's proof; docs/receipts.md)

A crash anywhere leaves at most an open intent. :meth:`DonationService.start`
resolves every open intent through ``terminal.lookup(idem)`` before the first
tap: approved becomes a donation, declined or not found a donation_failed. As
the terminal never charges one key twice and the ledger never settles one
intent twice, a crash never loses a charged gift and never charges twice.

Crash points (tests only): ``crash_point`` is called with ``"before_intent"``,
``"after_intent"``, ``"after_charge"`` (answer received, nothing recorded) and
``"after_donation"`` (donation committed, thank-you not yet shown). It is
``None`` by default, which makes the hooks inert; the crash tests pass a
function that SIGKILLs the process there.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from kiosk.donation import flow
from kiosk.donation.exchange import ExchangeRefused, PointsDesk, card_spendable, exchange, hexes_of
from kiosk.donation.flow import FlowSettings, FlowState
from kiosk.ledger import Entry, Ledger, LedgerError, LedgerUnavailable
from kiosk.ledger.clock import Clock
from kiosk.ledger.pepper import DonorToken
from kiosk.payment.base import ChargeResult, PaymentTerminal, TerminalUnavailable
from kiosk.reader.events import (
    CardPresented,
    CardRemoved,
    ReaderConnected,
    ReaderDisconnected,
    ReaderEvent,
    ReadError,
)
from server_sync.wire.receipt import receipt_code  # the portal's definition: the QR must name a code it can find

log = logging.getLogger(__name__)

CHECKPOINT_HOLD_MS = 1000
"""How long a deferred checkpoint (``defer_checkpoint``) may wait for the app's call before any event writes it:
far longer than the thank-you's first frame takes even at a quarter core, short enough that a kiosk whose
display is lost still checkpoints each gift within about a second (the worker's idle tick is 0.25 s)."""

CRASH_POINTS = ("before_intent", "after_intent", "after_charge", "after_donation")


class Resolution(msgspec.Struct, frozen=True):
    """What start-up (or a later retry) did with one open intent."""

    intent_seq: int
    idem: str
    outcome: str
    """``donation``, ``failed``, ``still_open`` (terminal or ledger unavailable: tried again later) or
    ``other_terminal`` (charged through another kind of terminal than this kiosk runs now: left open until it
    runs that one again; only that terminal can say what became of the charge)."""
    entry_seq: int | None = None


class DonationService:
    """Owns the flow state; feed it reader events and UI events, read :attr:`state` to draw.

    Single-threaded by design: each call runs effects to completion, so there
    is never a second charge in flight. ``on_state`` is called after every
    state change (a UI draws "charging" from it while the terminal works).
    """

    def __init__(self, ledger: Ledger, terminal: PaymentTerminal, settings: FlowSettings, *,
                 clock: Clock | None = None,
                 receipt_code: Callable[[Entry], str] = receipt_code,
                 on_state: Callable[[FlowState], None] | None = None,
                 crash_point: Callable[[str], None] | None = None,
                 lookup_attempts: int = 3, lookup_interval_ms: int = 200, retry_open_ms: int = 30_000,
                 sleep: Callable[[float], None] = time.sleep,
                 new_idem: Callable[[], str] = lambda: uuid.uuid4().hex,
                 checkpoint_after_donation: bool = True,
                 my_page_request: Callable[[DonorToken], str] | None = None,
                 points: PointsDesk | None = None,
                 off_writer: Callable[[Callable[[], Any], Callable[[Any], Any]], None] | None = None):
        self.ledger = ledger
        self._points = points
        """What a points exchange needs from the sync side (docs/points.md); None: no exchange on this kiosk."""
        self.off_writer = off_writer
        """How network work leaves the ledger writer's thread: ``off_writer(work, then)`` runs ``work()`` on
        another thread and later ``then(result)`` back on this service's thread, in order with the other jobs.
        The points lookup asks the portal (up to its HTTP timeouts, seconds); on the writer it would hold every
        donation queued behind it. None: ``work`` runs inline (single-threaded processes and tests)."""
        self._my_page_request = my_page_request
        """Signs a one-time my-page request for a card (server_sync.wire.mypage); None: no my pages."""
        self.terminal = terminal
        self.settings = settings
        self._clock = clock or ledger.clock
        self._receipt_code = receipt_code
        self._on_state = on_state
        self._crash_point = crash_point
        self._lookup_attempts = lookup_attempts
        self._lookup_interval_ms = lookup_interval_ms
        self._sleep = sleep
        self._new_idem = new_idem
        self._retry_open_ms = retry_open_ms
        self.checkpoint_after_donation = checkpoint_after_donation
        self.defer_checkpoint = False
        """``True`` in ``kiosk run``: the checkpoint after a gift waits until :meth:`checkpoint_if_due` is called
        (the app calls it once the thank-you frame is on screen), so its signature and commit do not compete
        with drawing the thank-you for the CPU (issue #16). At the latest it is written before the next effect
        (anything that may append), or by any event once it has waited ``CHECKPOINT_HOLD_MS``: events that
        append nothing (the card lifted, the idle tick) do not pull it in front of the thank-you's frame."""
        self._checkpoint_due = False
        self._checkpoint_due_ms = 0
        self.state: FlowState = flow.initial(settings, self.now_ms())
        self._open_intents = True  # until start() has looked
        self._next_retry_ms = 0

    @classmethod
    def for_config(cls, cfg: Any, ledger: Ledger, terminal: PaymentTerminal, **kw: Any) -> DonationService:
        """A service for a KioskConfig: flow settings from [donation]/[flow], lookup pacing from [payment]."""
        from kiosk.payment import payment_config

        pc = payment_config(cfg)
        kw.setdefault("lookup_attempts", pc.lookup_attempts)
        kw.setdefault("lookup_interval_ms", pc.lookup_interval_ms)
        settings = FlowSettings.from_config(cfg, method=terminal.method, pay_on_terminal=terminal.external)
        if settings.my_page_ms > 0:
            kw.setdefault("my_page_request", my_page_signer(cfg, ledger.clock))
        return cls(ledger, terminal, settings, **kw)

    # --- time and hooks -------------------------------------------------------------------
    def now_ms(self) -> int:
        return self._clock.mono_ms()

    def _crash(self, point: str) -> None:
        if self._crash_point is not None:
            self._crash_point(point)

    @property
    def screen(self) -> flow.Screen:
        return flow.screen_for(self.state, self.settings)

    # --- start-up --------------------------------------------------------------------------
    def start(self) -> list[Resolution]:
        """Resolve every open intent (a crash or an outage left them), then show the loop."""
        done = self.resolve_open_intents()
        self._set(flow.initial(self.settings, self.now_ms()))
        return done

    def resolve_open_intents(self, *, brief: bool = False) -> list[Resolution]:
        """Settle open intents through ``lookup``. Safe to call again: both sides are idempotent.

        ``brief`` (the retry between donors): each lookup only glances at a payment still under way
        (``PaymentTerminal.lookup``), so a checkout nobody is finishing never holds the kiosk's taps."""
        self.checkpoint_if_due()  # it may append: a held checkpoint goes first, right after its gift
        out: list[Resolution] = []
        for intent in self.ledger.unresolved_intents():
            seq, idem = intent["seq"], intent["idem"]
            if intent["method"] != self.terminal.method:
                # Staff switch a kiosk between Square and the simulator (docs/payment.md): the simulator has never
                # heard of a Square key and would answer "not found", closing as not charged a checkout the donor
                # may have paid. Not retried here: nothing changes until the kiosk runs that terminal again.
                log.warning("intent seq=%d stays open: it was charged through the %r terminal and this kiosk now "
                            "runs %r; it is settled when the kiosk runs %r again", seq, intent["method"],
                            self.terminal.method, intent["method"])
                out.append(Resolution(seq, idem, "other_terminal"))
                continue
            try:
                found = self.terminal.lookup(idem, brief=brief)
            except TerminalUnavailable as exc:
                log.warning("intent seq=%d stays open: terminal unavailable (%s)", seq, exc)
                out.append(Resolution(seq, idem, "still_open"))
                continue
            try:
                if found.status == "approved":
                    points = self.settings.points_for(intent["amount_yen"]) if intent["donor"] else 0
                    e = self.ledger.record_donation(seq, found.provider_ref or "", points)
                    out.append(Resolution(seq, idem, "donation", e.seq))
                else:
                    why = (f"declined: {found.reason}" if found.status == "declined"
                           else "not charged: no charge found at start-up")
                    e = self.ledger.record_failure(seq, why, found.provider_ref)
                    out.append(Resolution(seq, idem, "failed", e.seq))
            except LedgerUnavailable as exc:
                log.error("intent seq=%d stays open: %s", seq, exc)
                out.append(Resolution(seq, idem, "still_open"))
        if any(r.outcome == "donation" for r in out):
            self._checkpoint()
        self._open_intents = any(r.outcome == "still_open" for r in out)
        self._next_retry_ms = self.now_ms() + self._retry_open_ms
        for r in out:
            log.info("resolved intent seq=%d (%s) -> %s", r.intent_seq, r.idem, r.outcome)
        return out

    # --- input ----------------------------------------------------------------------------
    def reader_event(self, ev: ReaderEvent) -> FlowState:
        """Translate a kiosk.reader event into the flow's terms and handle it."""
        now = self.now_ms()
        if isinstance(ev, CardPresented):
            rec = ev.record
            self.terminal.card_seen(rec.token.hex, rec.balance_yen)
            return self.handle(flow.Tap(now_ms=now, donor=rec.token, family=rec.family,
                                        balance_yen=rec.balance_yen,
                                        given_today_yen=self.given_today(rec.token.all_hexes)))
        if isinstance(ev, CardRemoved):
            self.terminal.card_seen(None, None)
            if self.state.name == "charging":  # inside an Express window, a lifted card withdraws the gift
                return self.handle(flow.CardLifted(now_ms=now))
            return self.tick()
        if isinstance(ev, ReadError):
            return self.handle(flow.CardUnreadable(now_ms=now, not_transit=ev.kind == "unsupported", detail=ev.detail))
        if isinstance(ev, ReaderDisconnected):
            return self.handle(flow.ReaderOffline(now_ms=now, reason=ev.reason))
        if isinstance(ev, ReaderConnected):
            return self.handle(flow.ReaderOnline(now_ms=now))
        return self.tick()

    def tick(self) -> FlowState:
        return self.handle(flow.Tick(now_ms=self.now_ms()))

    def given_today(self, donor_hexes: str | tuple[str, ...]) -> int | None:
        """Settled gifts today plus open intents (they may yet settle): the daily limit errs on the safe side.
        Every epoch's token of the card counts (a pepper rotation during the day does not reset the limit).
        ``None`` when the ledger cannot be read: the flow then refuses the tap (fail closed)."""
        hexes = (donor_hexes,) if isinstance(donor_hexes, str) else donor_hexes
        try:
            given = self.ledger.donor_given(hexes, self.ledger.business_date())
        except (LedgerError, sqlite3.Error) as exc:
            log.error("cannot read the ledger for the daily limit: %s", exc)
            return None
        return given + sum(i["amount_yen"] for i in self.ledger.unresolved_intents() if i["donor"] in hexes)

    def handle(self, event: flow.Event) -> FlowState:
        """Step the flow and carry out its effects until it waits for the outside world again."""
        if self._checkpoint_due and self.now_ms() - self._checkpoint_due_ms >= CHECKPOINT_HOLD_MS:
            self.checkpoint_if_due()  # the app never called (display lost?): not held any longer
        pending: list[flow.Event] = [event]
        recorded = False
        while pending:
            ev = pending.pop(0)
            recorded = recorded or isinstance(ev, flow.DonationRecorded)
            state, effects = flow.step(self.state, ev, self.settings)
            self._set(state)
            for eff in effects:
                # A deferred checkpoint goes before anything an effect appends: it stays right after its gift.
                # (Held across effect-free events, e.g. the card lifted while the thank-you is being drawn:
                # in bench/tap.py at 1080p that put the checkpoint on the render in the slowest taps.)
                self.checkpoint_if_due()
                answer = self._run(eff)
                if answer is not None:  # None: answered later, as a job of its own (see off_writer)
                    pending.append(answer)
        if recorded:
            # After the thank-you is published (on_state above), never before it: the donor's receipt
            # verifies as soon as this reaches the portal (docs/receipts.md).
            if self.defer_checkpoint:
                self._checkpoint_due = True
                self._checkpoint_due_ms = self.now_ms()
            else:
                self._checkpoint()
        if self.state.name == "attract" and self._open_intents and self.now_ms() >= self._next_retry_ms:
            # Something was left open (outage, unknown answer): settle it between citizens, not at every tick,
            # and briefly: this thread answers the next citizen's tap.
            self.resolve_open_intents(brief=True)
        return self.state

    def _mark_open(self) -> None:
        # Retry as soon as the flow is back at the loop; after that, every retry_open_ms.
        self._open_intents = True
        self._next_retry_ms = 0

    def set_language(self, lang: str) -> None:
        """The kiosk's own language (the menu's default-language setting): every return to the loop uses it
        from now on, and the loop on screen switches at once. A donor mid-gift keeps the language they chose."""
        self.settings = flow.replace(self.settings, language=lang)
        if self.state.name == "attract":
            self._set(flow.replace(self.state, lang=lang))

    def _set(self, state: FlowState) -> None:
        changed = state != self.state
        self.state = state
        if changed and self._on_state is not None:
            self._on_state(state)

    # --- effects ----------------------------------------------------------------------------
    def _run(self, eff: flow.Effect) -> flow.Event | None:
        if isinstance(eff, flow.CommitIntent):
            return self._commit_intent(eff)
        if isinstance(eff, flow.Charge):
            return self._charge(eff)
        if isinstance(eff, flow.RecordDonation):
            return self._record_donation(eff)
        if isinstance(eff, flow.RecordFailure):
            return self._record_failure(eff)
        if isinstance(eff, flow.IssueMyPage):
            return self._issue_my_page(eff)
        if isinstance(eff, flow.LookupPoints):
            return self._lookup_points(eff)
        if isinstance(eff, flow.SpendPoints):
            return self._spend_points(eff)
        raise TypeError(f"unknown effect {eff!r}")

    # --- points exchanged for sponsor-matched gifts (kiosk/donation/exchange.py, docs/points.md) --------------
    def _lookup_points(self, eff: flow.LookupPoints) -> flow.Event | None:
        desk, donor = self._points, eff.donor

        def ask() -> tuple[int, int | None]:  # off the writer when it can be: it may wait on the network
            if desk is None:
                return 0, None
            try:
                # What this ledger spent for the card (the published view: any thread may read it).
                return desk.ask(donor, self.ledger.points_spent(hexes_of(donor))[0])
            except Exception as exc:  # noqa: BLE001 - fail closed: nothing to spend, never a stuck screen
                log.error("points lookup failed: %s", exc)
                return 0, None

        def looked(answer: tuple[int, int | None]) -> flow.PointsLooked:
            # On the writer's thread: what this ledger has spent for the card is read here, after the lookup,
            # so a spend recorded while the portal was being asked is counted (and SpendPoints checks again).
            allotted, balance = answer
            return flow.PointsLooked(now_ms=self.now_ms(), donor_hex=donor.hex, balance=balance,
                                     spendable=card_spendable(self.ledger, donor, allotted))

        if desk is None or self.off_writer is None:
            return looked(ask())
        try:
            self.off_writer(ask, lambda answer: self.handle(looked(answer)))
        except RuntimeError as exc:  # the lookup thread is gone (shutting down): the last word, no network
            log.error("points lookup not started: %s", exc)
            return looked((desk.last_word(donor), None))
        return None  # the flow waits in "asking"; PointsLooked arrives as a job (a stale one is ignored)

    def _spend_points(self, eff: flow.SpendPoints) -> flow.Event:
        desk = self._points
        if desk is None:
            return flow.PointsRefused(now_ms=self.now_ms(), reason="unavailable")
        try:
            pools = desk.pools()
            day = desk.today() if desk.today is not None else self.ledger.business_date_at_least()
            entry = exchange(self.ledger, eff.donor, eff.points, eff.project, desk.areas.get(eff.project, ""), pools,
                             desk.last_word(eff.donor), day)
        except ExchangeRefused as exc:
            log.info("points exchange refused: %s", exc)
            return flow.PointsRefused(now_ms=self.now_ms(), reason=exc.reason)  # type: ignore[arg-type]
        except (LedgerUnavailable, LedgerError) as exc:
            log.error("points exchange not recorded: %s", exc)
            return flow.PointsRefused(now_ms=self.now_ms(), reason="unavailable")
        pool = next(p for p in pools if p.id == entry.data["pool"])
        left = card_spendable(self.ledger, eff.donor, desk.last_word(eff.donor))
        return flow.PointsSpent(now_ms=self.now_ms(), points=eff.points, yen=entry.data["amount_yen"],
                                sponsor=pool.sponsor, spendable=left)

    def _issue_my_page(self, eff: flow.IssueMyPage) -> flow.Event:
        # Nothing is written: the request is signed here and redeemed (once) by the portal.
        if self._my_page_request is None:
            return flow.MyPageFailed(now_ms=self.now_ms(), reason="my pages are off on this kiosk")
        try:
            request = self._my_page_request(eff.donor)
        except Exception as exc:  # noqa: BLE001 - a key that cannot be read must not stop the kiosk
            log.error("my-page request not made: %s", exc)
            return flow.MyPageFailed(now_ms=self.now_ms(), reason=str(exc))
        return flow.MyPageIssued(now_ms=self.now_ms(), request=request, donor=eff.donor)

    def _commit_intent(self, eff: flow.CommitIntent) -> flow.Event:
        self._crash("before_intent")
        idem = self._new_idem()
        try:
            entry = self.ledger.record_intent(eff.project, eff.amount_yen, eff.method, eff.donor, idem)
        except LedgerUnavailable as exc:
            log.error("donation refused, ledger unavailable: %s", exc)
            return flow.LedgerDown(now_ms=self.now_ms(), attempt=eff.attempt, stage="intent")
        self._crash("after_intent")
        return flow.IntentCommitted(now_ms=self.now_ms(), attempt=eff.attempt, intent_seq=entry.seq, idem=idem)

    def _charge(self, eff: flow.Charge) -> flow.Event:
        result = self.terminal.charge(eff.amount_yen, eff.idem, reference=str(eff.intent_seq))
        if result.status == "unknown":
            result = self._settle_unknown(eff.idem, result)
        self._crash("after_charge")
        now = self.now_ms()
        if result.status == "approved":
            return flow.ChargeAnswered(now_ms=now, attempt=eff.attempt, outcome="approved",
                                       provider_ref=result.provider_ref)
        if result.status == "declined":
            return flow.ChargeAnswered(now_ms=now, attempt=eff.attempt, outcome="declined",
                                       provider_ref=result.provider_ref, reason=result.reason,
                                       canceled=result.canceled, unavailable=result.unavailable)
        if result.status == "not_found":
            return flow.ChargeAnswered(now_ms=now, attempt=eff.attempt, outcome="not_charged",
                                       reason="timeout, and the terminal has no such charge")
        self._mark_open()
        return flow.ChargeAnswered(now_ms=now, attempt=eff.attempt, outcome="unknown", reason=result.reason)

    def _settle_unknown(self, idem: str, first: ChargeResult) -> ChargeResult:
        """A timed-out charge: ask the terminal what happened, a few times, before giving up to start-up."""
        for i in range(self._lookup_attempts):
            if i and self._lookup_interval_ms:
                self._sleep(self._lookup_interval_ms / 1000)
            try:
                return self.terminal.lookup(idem)
            except TerminalUnavailable as exc:
                log.warning("lookup %s failed (%d/%d): %s", idem, i + 1, self._lookup_attempts, exc)
        return first

    def _record_donation(self, eff: flow.RecordDonation) -> flow.Event:
        try:
            entry = self.ledger.record_donation(eff.intent_seq, eff.provider_ref, eff.points)
        except LedgerUnavailable as exc:
            # Charged but not on the ledger: the intent stays open and lookup settles it later.
            log.error("charged donation not yet recorded (intent seq=%d): %s", eff.intent_seq, exc)
            self._mark_open()
            return flow.LedgerDown(now_ms=self.now_ms(), attempt=eff.attempt, stage="record")
        self._crash("after_donation")
        data: dict[str, Any] = entry.data
        donor = self.state.donation.donor if self.state.donation is not None else None
        try:
            # The card's balance under every pepper epoch this kiosk holds.
            hexes = list(donor.all_hexes) if donor is not None and donor.hex == data["donor"] else [data["donor"]]
            balance = self.ledger.donor_points(hexes) if data["donor"] else 0
        except Exception:  # a read failing must not hide a committed gift's thank-you
            log.exception("could not read the point balance")
            balance = eff.points
        receipt = flow.Receipt(entry.seq, entry.entry_hash, entry.signature, self._receipt_code(entry))
        return flow.DonationRecorded(now_ms=self.now_ms(), attempt=eff.attempt, receipt=receipt,
                                     new_total_yen=data["totals"]["project_yen"], points_balance=balance)

    def checkpoint_if_due(self) -> None:
        """Write the checkpoint a gift left pending (``defer_checkpoint``); nothing when none is."""
        if self._checkpoint_due:
            self._checkpoint_due = False
            self._checkpoint()

    def _checkpoint(self) -> None:
        """A signed checkpoint right after a donation's durable commit: one signature and one commit, so
        a receipt scanned from the thank-you screen carries its proof as soon as it syncs. Failing is
        logged, never raised: the donation itself is already durable, and the next one tries again."""
        if not self.checkpoint_after_donation:
            return
        try:
            self.ledger.checkpoint()
        except (LedgerError, sqlite3.Error) as exc:
            log.error("no checkpoint after the donation: %s", exc)

    def _record_failure(self, eff: flow.RecordFailure) -> flow.Event:
        try:
            self.ledger.record_failure(eff.intent_seq, eff.reason, eff.provider_ref)
        except LedgerUnavailable as exc:
            log.error("failure not recorded (intent seq=%d): %s", eff.intent_seq, exc)
            self._mark_open()
            return flow.LedgerDown(now_ms=self.now_ms(), attempt=eff.attempt, stage="record")
        return flow.FailureRecorded(now_ms=self.now_ms(), attempt=eff.attempt)


def my_page_signer(cfg: Any, clock: Clock) -> Callable[[DonorToken], str]:
    """Signs one-time my-page requests with the kiosk's ledger key: the card's tokens under every pepper
    epoch the kiosk holds, valid for ``[portal] my_page_qr_s`` from the kiosk's wall clock (the portal
    corrects it by the clock offset it learned from heartbeats)."""
    from kiosk.ledger import keys
    from server_sync.wire.mypage import make_request

    sk = keys.load_private(cfg.private_key_path)
    kiosk_id, ttl_ms = cfg.kiosk.id, cfg.portal.my_page_qr_s * 1000

    def sign(donor: DonorToken) -> str:
        return make_request(sk, kiosk_id, donor.all_hexes, clock.wall_ms(), ttl_ms)

    return sign
