"""The menu's state machine: which page is up, what has focus, what staff typed, and what each press does.

No pygame here. Input arrives as ``press(action, value)`` (a touched target
or the focused button), ``key(name)``, ``card(record)`` and ``tick()``; the
page comes out as a :class:`~kiosk.ui.menu.view.View` (built in
:mod:`kiosk.staff.menu.pages`). Every staff action goes through the ops
session, so it lands in the ledger as an ``admin_action`` entry.

Slow actions (reports, sync, export, grants) run through
``services.background``; until their future is done the page shows
"working…" and ignores input, so a second press cannot start a second Z.

Threads: presses arrive on the render thread and taps on the reader
thread, so what they record is queued to the ledger writer
(``session.record``) and never waited for. The background jobs may wait
(``session.action``/``record_wait``, :func:`z_report`, the volunteer
grant), and show the writer's failure if the entry could not be made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from kiosk.config.player import PlaylistItem
from kiosk.ledger import DonorToken
from kiosk.ops.status import StatusItem, overall, status_items
from kiosk.payment.base import RefundRefused, TerminalSetupError
from kiosk.staff.closeout import (
    AlreadyClosed,
    Catalog,
    closed_dates,
    refunded_after_close,
    summary_lines,
    x_report,
    z_days,
    z_report,
)
from kiosk.staff.gate import StaffSession
from kiosk.staff.menu import days, status_text
from kiosk.staff.menu.services import MenuServices
from kiosk.staff.refund import (
    ENDED,
    AlreadyRefunded,
    Refundable,
    current,
    find_refundable,
    refund_donation,
    refund_key,
    refundable,
)
from kiosk.staff.usb_export import READ_ONLY, ExportResult, Stick, UsbExportError, export_lines
from kiosk.staff.volunteer import VolunteerError, check_grant
from kiosk.staff.volunteer import balance as points_balance
from kiosk.staff.volunteer import grant as volunteer_grant
from kiosk.staff.words import REFUND_SETTINGS_NOTE, StaffMessage, detail, staff_error
from kiosk.ui.i18n import yen
from kiosk.ui.menu.view import Level, View

log = logging.getLogger(__name__)

PIN = "pin"
HOME = "home"
STATUS = "status"
STATUS_ITEM = "status_item"
X_REPORT = "x_report"
Z_CONFIRM = "z_confirm"
Z_AGAIN = "z_again"
Z_DONE = "z_done"
VOLUNTEER = "volunteer"
VOL_POINTS = "volunteer_points"
VOL_TAP = "volunteer_tap"
VOL_DONE = "volunteer_done"
SYNC = "sync"
READER = "reader_test"
PLAYLIST = "playlist"
VOLUME = "volume"
LANGUAGE = "language"
POWER = "power"
POWER_CONFIRM = "power_confirm"
USB = "usb"
USB_DONE = "usb_done"
REFUND = "refund"
REFUND_CONFIRM = "refund_confirm"
REFUND_DONE = "refund_done"
REFUND_FIND = "refund_find"

PAGES = (PIN, HOME, STATUS, STATUS_ITEM, X_REPORT, Z_CONFIRM, Z_AGAIN, Z_DONE, VOLUNTEER, VOL_POINTS, VOL_TAP,
         VOL_DONE, SYNC, READER, PLAYLIST, VOLUME, LANGUAGE, POWER, POWER_CONFIRM, USB, USB_DONE, REFUND,
         REFUND_CONFIRM, REFUND_DONE, REFUND_FIND)

PARENT = {
    STATUS: HOME, STATUS_ITEM: STATUS, X_REPORT: HOME, Z_CONFIRM: HOME, Z_AGAIN: HOME, Z_DONE: HOME,
    VOLUNTEER: HOME, VOL_POINTS: VOLUNTEER, VOL_TAP: VOL_POINTS, VOL_DONE: HOME, SYNC: HOME, READER: HOME,
    PLAYLIST: HOME, VOLUME: HOME, LANGUAGE: HOME, POWER: HOME, POWER_CONFIRM: POWER, USB: HOME, USB_DONE: HOME,
    REFUND: HOME, REFUND_CONFIRM: REFUND, REFUND_DONE: HOME, REFUND_FIND: REFUND,
}
"""Where Back (Esc) goes; Back on the home page or the keypad closes the menu."""

PIN_ACTIONS = frozenset({"digit", "pin_del", "pin_ok", "back", "close"})
PIN_IDLE_S = 60
"""The keypad goes away sooner than an open menu: nobody is signed in yet."""
PIN_MAX = 8
LINES_PER_PAGE = 8
STATUS_PER_PAGE = 12
PLAYLIST_PER_PAGE = 4
POINT_STEPS = (-10, -1, 1, 10)
REFUND_STATUS = {
    "PENDING": "The payment service is returning the money (this can take a few days). Press Check the refund "
               "later: the donation leaves the totals when it is finished.",
    "COMPLETED": "The money has been returned.",
    "REJECTED": "The payment service did not return the money: call it with the refund number.",
    "FAILED": "The payment service did not return the money: call it with the refund number.",
}
"""The provider's refund status (Square's words) as a sentence for staff (English msgids)."""
REFUND_UNKNOWN = "Refund status: ask the payment service"
REFUND_NEW = ("You can send a new refund request. The earlier request will never pay out, so the money is "
              "never returned twice.")
"""Why the new-attempt button is safe, in staff's words (English msgid)."""
REFUND_REFUSED = ("Not refunded: the payment service refused this refund, and pressing Refund again will not "
                  "change that. The donation still counts.")
"""A final refusal (:class:`~kiosk.payment.base.RefundRefused`), as against one that can change (the network, a
busy terminal: :class:`~kiosk.payment.base.TerminalUnavailable`, which offers Refund again) (English msgid). The
line below it says what to do: look at the payment on the Square Dashboard (``words.PAYMENT_REFUSED``)."""
REFUND_SETTINGS_REFUSED = ("Not refunded: the payment service did not accept this kiosk's payment settings. "
                           "The donation still counts.")
"""A refund refused because of the kiosk's payment settings (a RefundRefused that is a
:class:`~kiosk.payment.base.TerminalSetupError`: Square refusing the access token), not the payment: pressing Refund
again now gets the same answer, but once the settings are fixed it goes through (English msgid). The line below it
says whom to ask (``words.REFUND_SETTINGS``)."""
REF_MAX = 9
"""Digits of a 受付番号 staff may type (the intent's seq)."""
VOLUME_STEPS = (-10, -1, 1, 10)
PLAYLIST_CHANGED = "The portal has just changed the playlist. This page now shows the new list: every clip on it plays."
"""Said when a push changed the playlist while its page was up (English msgid): the player plays all of it."""
PLAYLIST_CHANGED_OFF = ("The portal has just changed the playlist. This page now shows the new list: every clip on it "
                        "plays, except the one you stopped. Changes start after the current clip.")
"""Said when staff stopped a clip and a push had just changed the list: their clip stopped in the new one."""
PLAYLIST_GONE = ("The portal has just changed the playlist, and the clip you pressed is no longer on it. This page now "
                 "shows the new list: every clip on it plays. Nothing else was changed.")
"""Said when staff pressed a clip the push has just taken off the list (English msgid)."""


@dataclass(frozen=True)
class ReaderResult:
    """What the reader test shows: copied out of the TapRecord so the menu never keeps a card's token."""

    family: str
    balance_yen: int | None
    read_ms: float
    mobile: bool
    history: int


@dataclass
class _Pending:
    future: Future[Any]
    done: Callable[[Any, BaseException | None], None]
    label: str


class MenuModel:
    def __init__(self, services: MenuServices, *, clock: Callable[[], float] = time.monotonic):
        self.s = services
        self.clock = clock
        """Monotonic seconds; give the menu the same clock as the StaffGate, the idle check compares the two."""
        self.session: StaffSession | None = None
        self.page: str | None = None
        self.focus = 0
        self.scroll = 0
        self.notice = ""
        self.notice_level: Level = "yellow"
        self.last_input = clock()
        self._pending: _Pending | None = None
        self._pin: list[str] = []
        self._reset_pages()
        self._playlist: list[PlaylistItem] = []
        self._configured: list[PlaylistItem] | None = None
        """The configured playlist as last read (``services.playlist``): a push shows as a change of it."""
        self._disabled: set[int] = set()
        """Indices into the configured playlist that staff switched off; kept while the app runs."""

    def _reset_pages(self) -> None:
        self.lines: list[str] = []
        self.home_level: Level | None = None
        self.status: list[StatusItem] = []
        self.status_index = 0
        self.z_day: date | None = None
        self.z_today: date | None = None
        self.z_choices: list[date] = []
        """The days the Z page offers, its default first (``closeout.z_days``)."""
        self.z_closed_days: set[date] = set()
        self.z_closed_seq: int | None = None
        self.activity = ""
        self.points = 0
        self.grant_points = 0
        self.balance: int | None = None
        self.reader: ReaderResult | None = None
        self.sync_result = ""
        self.volume = 0
        self.volume_start = 0
        self.power = ""
        self.sticks: list[Stick] = []
        self.usb_day: date | None = None
        self.export: ExportResult | None = None
        self.refundables: list[Refundable] = []
        self.refund_pick: Refundable | None = None
        self.refund_again = ""
        """What the refund result offers: ``again`` (it did not finish), ``check`` (PENDING: ask how it stands),
        ``new`` (REJECTED/FAILED: a new refund request with the next attempt's key)."""
        self.refund_digits = ""

    # --- state -----------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.page is not None

    @property
    def busy(self) -> str:
        """The label of the slow action under way, or ""."""
        return self._pending.label if self._pending else ""

    @property
    def pin_length(self) -> int:
        return len(self._pin)

    @property
    def lang(self) -> str:
        lang = self.s.language()
        return lang if lang in ("ja", "en") else "ja"

    @property
    def playlist(self) -> list[tuple[PlaylistItem, bool]]:
        return [(item, i not in self._disabled) for i, item in enumerate(self._playlist)]

    def view(self) -> View:
        from kiosk.staff.menu.pages import build_view

        return build_view(self)

    # --- opening and closing ---------------------------------------------------------------
    def open_with_card(self, token: DonorToken) -> bool:
        if self.session is not None:
            return False
        session = self.s.gate.open_with_card(token)
        if session is None:
            return False
        self._opened(session)
        return True

    def open_pin(self) -> bool:
        """Show the keypad (after the hidden gesture). Without a configured PIN only staff cards open the menu."""
        if self.is_open or not self.s.gate.pin.configured:
            return False
        self._pin.clear()
        self._go(PIN)
        self.focus = self._ok_index()
        self.last_input = self.clock()
        return True

    def _opened(self, session: StaffSession) -> None:
        self.session = session
        self._pin.clear()
        self.last_input = self.clock()
        self._go(HOME)

    def close(self, reason: str = "staff") -> None:
        if not self.is_open:
            return
        self._leave_volume()
        if self.session is not None:
            self.session.close(reason)
        self.session = None
        self.page = None
        self._pin.clear()
        self._pending = None
        self._reset_pages()

    # --- input -----------------------------------------------------------------------------
    def press(self, action: str, value: Any = None) -> None:
        """A touched target or the focused button."""
        self._poll()
        if not self.is_open or self._pending:
            return
        self.last_input = self.clock()
        if self.session is None and action not in PIN_ACTIONS:
            return  # nobody signed in yet: only the keypad works, whatever a caller presses
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            log.warning("menu: no handler for action %r", action)
            return
        handler(value)
        self._poll()

    def key(self, name: str) -> None:
        """``up`` ``down`` ``left`` ``right`` ``enter`` ``esc`` ``backspace`` or a digit ``0``-``9``."""
        self._poll()
        if not self.is_open or self._pending:
            return
        if self.page == PIN and name.isdigit() and len(name) == 1:
            self.press("digit", name)
            self.focus = self._ok_index()  # so Enter after typing submits
            return
        if self.page == PIN and name == "backspace":
            self.press("pin_del")
            return
        if self.page == REFUND_FIND and name.isdigit() and len(name) == 1:
            self.press("ref_digit", name)
            self.focus = next((i for i, b in enumerate(self.view().all_buttons) if b.action == "ref_ok"), 0)
            return
        if self.page == REFUND_FIND and name == "backspace":
            self.press("ref_del")
            return
        self.last_input = self.clock()
        if name == "esc":
            self.press("back")
        elif name == "enter":
            buttons = self.view().all_buttons
            if 0 <= self.focus < len(buttons) and buttons[self.focus].enabled:
                self.press(buttons[self.focus].action, buttons[self.focus].value)
        elif name in ("up", "down", "left", "right"):
            self._move(name)

    def _move(self, direction: str) -> None:
        v = self.view()
        n_grid, n = len(v.buttons), len(v.all_buttons)
        if n == 0:
            return
        cols = max(1, v.columns)
        f = min(self.focus, n - 1)
        if direction == "left":
            f = (f - 1) % n
        elif direction == "right":
            f = (f + 1) % n
        elif direction == "down":
            if f + cols < n_grid:
                f += cols
            elif f < n_grid and n > n_grid:
                f = n_grid  # from the grid's last row into the footer
            elif f < n_grid:
                f = n_grid - 1
        elif direction == "up":
            if f >= n_grid:
                f = n_grid - 1 if n_grid else (f - 1) % n
            else:
                f = f - cols if f - cols >= 0 else f
        self.focus = f

    def card(self, token: DonorToken, result: ReaderResult) -> bool:
        """A tap while the menu is showing; always consumed so it never becomes a donation."""
        self._poll()
        if not self.is_open:
            return self.open_with_card(token)
        self.last_input = self.clock()
        if self._pending:
            return True
        if self.page == PIN:
            session = self.s.gate.open_with_card(token)
            if session is not None:
                self._opened(session)
        elif self.page == READER and self.session is not None:
            self.reader = result
            self.session.record("reader_test", family=result.family, read_ms=int(round(result.read_ms)),
                                balance_read=result.balance_yen is not None, mobile=result.mobile)
        elif self.page == VOL_TAP:
            self._grant(token)
        return True

    def tick(self) -> None:
        self._poll()
        if not self.is_open or self._pending:
            return  # never close under a running Z or export
        self._playlist_tick()
        if self.session is None:
            if self.clock() - self.last_input >= PIN_IDLE_S:
                self.close("idle")
        elif self.s.gate.idle_expired(self.session, self.last_input):
            self.close("idle")

    # --- navigation ------------------------------------------------------------------------
    def _go(self, page: str, notice: str = "", level: Level = "yellow") -> None:
        self.page, self.focus, self.scroll = page, 0, 0
        self.notice, self.notice_level = notice, level
        enter = getattr(self, f"_enter_{page}", None)
        if enter is not None:
            enter()
        if page in (VOL_POINTS, VOLUME, Z_CONFIRM):
            # Not on "-10": a stray Enter must not change a figure. Next (points) or Back (volume) instead; on the
            # Z page not on another day's date either: Cancel, as when it offers one day only.
            wanted = "points_ok" if page == VOL_POINTS else "back"
            self.focus = next((i for i, b in enumerate(self.view().all_buttons) if b.action == wanted), 0)

    def _say(self, notice: str, level: Level = "yellow") -> None:
        self.notice, self.notice_level = notice, level

    def _t(self, msgid: str) -> str:
        return self.catalog.gettext(msgid)

    def _n(self, singular: str, plural: str, n: int) -> str:
        """A counted phrase in the staff's language ("1 donation", "2 donations"), formatted with ``n``."""
        return self.catalog.ngettext(singular, plural, n).format(n=n)

    @property
    def catalog(self) -> Catalog:
        from kiosk.ui.i18n import translations

        return translations(self.lang)

    def _day(self, iso: str) -> str:
        """A report's ``2025-11-21`` as staff say it, 「11月21日(金)」 / "Fri 21 Nov" (the CLI keeps the ISO day)."""
        return days.plain_iso_day(self.lang, iso, self.s.ledger.business_date())

    def _ok_index(self) -> int:
        return next((i for i, b in enumerate(self.view().all_buttons) if b.action == "pin_ok"), 0)

    def _do_go(self, page: str) -> None:
        self._go(page)

    def _do_back(self, _: Any = None) -> None:
        if self.page in (HOME, PIN) or self.page not in PARENT:
            self.close("staff")
            return
        if self.page == VOLUME:
            self._leave_volume()
        self._go(PARENT[self.page])

    def _do_close(self, _: Any = None) -> None:
        self.close("staff")

    def _do_scroll(self, step: int) -> None:
        self.scroll = max(0, self.scroll + int(step))

    def _job(self, label: str, fn: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        self._pending = _Pending(self.s.background(fn), done, label)
        self._poll()

    def _poll(self) -> None:
        p = self._pending
        if p is None or not p.future.done():
            return
        self._pending = None
        self.last_input = self.clock()  # the idle timeout counts from the result, not from the press
        try:
            value, err = p.future.result(), None
        except Exception as exc:
            value, err = None, exc
        p.done(value, err)

    def _error(self, err: BaseException, source: str = "") -> str:
        """What staff read for ``err``: our own refusals as they are; anything else (the ledger writer's, the
        uploader's, a provider's own English words) as the plain sentence for its class with what to do. The
        error's own words go to the log, and in English mode also in brackets (what the maintainer asks for)."""
        msg = staff_error(err, source)
        if msg is err:
            return msg.say(self._t)
        log.warning("menu: %s failed: %s", source or "action", detail(err))
        text = msg.say(self._t)
        return f"{text} ({detail(err)[:100]})" if self.lang == "en" else text

    # --- PIN -------------------------------------------------------------------------------
    def _do_digit(self, digit: str) -> None:
        if len(self._pin) < PIN_MAX and self.s.gate.pin.locked_for() <= 0:
            self._pin.append(str(digit)[:1])
        self.notice = ""

    def _do_pin_del(self, _: Any = None) -> None:
        if self._pin:
            self._pin.pop()

    def _do_pin_ok(self, _: Any = None) -> None:
        if self.s.gate.pin.locked_for() > 0:
            return
        if len(self._pin) < 4:
            self._say(self._t("Enter 4 to 8 digits"))
            return
        pin = "".join(self._pin)
        self._pin.clear()
        session, attempt = self.s.gate.open_with_pin(pin)
        del pin
        if session is not None:
            self._opened(session)
            return
        self._say(self.wrong_pin_notice(attempt.failures, attempt.locked_for_s), "red")

    def wrong_pin_notice(self, failures: int, locked_for_s: float) -> str:
        """What staff read after a wrong PIN: how many tries are left before the keypad locks (issue: a bare
        「暗証番号が違います」 said neither). While locked, the keypad shows :func:`pages.lock_notice` instead; this
        is what stays once the lock is over: one more wrong PIN locks it again."""
        left = self.s.gate.pin.free_attempts - failures
        if locked_for_s <= 0 and left > 0:
            return self._n("Wrong PIN. Enter it again: after {n} more wrong try, the keypad locks for a while.",
                           "Wrong PIN. Enter it again: after {n} more wrong tries, the keypad locks for a while.",
                           left)
        return self._t("Wrong PIN. The next wrong PIN locks the keypad again, for longer.")

    # --- home and status -------------------------------------------------------------------
    def _measure(self) -> list[StatusItem]:
        try:
            return status_items(self.s.measure(), self.s.ops.status)
        except Exception:  # a broken probe must not keep staff out of the menu
            log.exception("menu: status measurement failed")
            return []

    def _enter_home(self) -> None:
        items = self._measure()
        self.home_level = overall(items) if items else None

    def _enter_status(self) -> None:
        self.status = self._measure()
        if self.session is not None:
            levels = [i.level for i in self.status]
            self.session.record("status_view", overall=overall(self.status), red=levels.count("red"),
                                yellow=levels.count("yellow"))

    def _do_refresh(self, _: Any = None) -> None:
        self._go(STATUS)

    def _do_status_item(self, index: int) -> None:
        self.status_index = int(index)
        self._go(STATUS_ITEM)

    # --- X and Z reports -------------------------------------------------------------------
    def project_titles(self) -> dict[str, str]:
        return self.s.titles_en if self.lang == "en" and self.s.titles_en else self.s.titles

    def _enter_x_report(self) -> None:
        session, ledger = self._session(), self.s.ledger

        def run() -> dict[str, Any]:
            with session.action("x_report") as r:
                rep = x_report(ledger)
                rep["voided_after_close"] = refunded_after_close(ledger, date.fromisoformat(rep["date"]),
                                                                 rep["closed_seq"])
                r.update(count=rep["count"], total_yen=rep["total_yen"])
            return rep

        def done(rep: dict[str, Any] | None, err: BaseException | None) -> None:
            if err is not None or rep is None:
                self._say(self._error(err or StaffMessage("No report: try again."), "ledger"), "red")
                return
            self.lines = summary_lines(rep, self.project_titles(), self.catalog, self._day)
            if rep.get("closed_seq") and (rep.get("after_close") or rep.get("voided_after_close")):
                # Gifts after the Z, or gifts the Z counted and a refund has since voided, make the signed
                # close-out wrong: not a green "closed" (issue #15 item 6). With [closeout] auto the nightly timer
                # closes the whole day again (closeout.stale_dates): said so, as the Z page says it, instead of
                # asking staff to run the Z again after every such gift. Without it, that is their job.
                auto = self.s.ops.closeout.auto
                said = []
                if rep.get("after_close"):
                    said.append(self._n(
                        "Closed, but {n} donation came after the close-out: it is added tonight, when the kiosk "
                        "closes the day again by itself.",
                        "Closed, but {n} donations came after the close-out: they are added tonight, when the kiosk "
                        "closes the day again by itself.", rep["after_close"]) if auto else
                        self._n("Closed, but {n} donation came after the close-out: run the Z report again.",
                                "Closed, but {n} donations came after the close-out: run the Z report "
                                "again.", rep["after_close"]))
                if rep.get("voided_after_close"):
                    said.append(self._n(
                        "Closed, but {n} donation was refunded after the close-out: it is taken out tonight, when "
                        "the kiosk closes the day again by itself.",
                        "Closed, but {n} donations were refunded after the close-out: they are taken out tonight, "
                        "when the kiosk closes the day again by itself.", rep["voided_after_close"]) if auto else
                        self._n("Closed, but {n} donation was refunded after the close-out: run the Z "
                                "report again.",
                                "Closed, but {n} donations were refunded after the close-out: run the Z "
                                "report again.", rep["voided_after_close"]))
                self._say(" ".join(said), "yellow")
            elif rep.get("closed_seq"):
                self._say(self._t("This day is already closed (Z report written)."), "green")

        self._job(self._t("X report (running totals)"), run, done)

    def _enter_z_confirm(self) -> None:
        # The day staff mean, not today by the clock: after midnight, the day that has just ended
        # (closeout.z_days; docs/menu.md, "Which day the Z report closes"). The page names it, and the others.
        ledger = self.s.ledger
        self.z_today = ledger.business_date()
        try:
            self.z_choices = z_days(ledger, self.z_today, self.s.ops.closeout.lookback_days)
            self.z_closed_days = set(closed_dates(ledger))
        except Exception as exc:  # a read failing is shown, never raised into the render loop
            self.z_choices, self.z_closed_days = [self.z_today], set()
            self._say(self._error(exc, "ledger"), "red")
        self._pick_z_day(self.z_choices[0])

    def _pick_z_day(self, day: date) -> None:
        self.z_day = day
        if day in self.z_closed_days:  # said before staff press, not only after (the Z then asks "again?")
            self._say(self._t("This day is already closed (Z report written)."), "green")
        elif self.notice_level != "red":
            self._say("")

    def _do_z_day(self, value: str) -> None:
        day = date.fromisoformat(str(value))
        if day in self.z_choices:
            self._pick_z_day(day)

    def _do_z_run(self, _: Any = None) -> None:
        self._z(force=False)

    def _do_z_force(self, _: Any = None) -> None:
        self._z(force=True)

    def _z(self, *, force: bool) -> None:
        # The date staff confirmed, not "today" at the moment the job runs (it may cross midnight).
        session, writer, day = self._session(), self.s.writer, self.z_day

        def run() -> Any:
            with session.action("z_report", forced=force) as r:
                entry = z_report(writer, day, force=force)
                r.update(close_out_seq=entry.seq, business_date=entry.data["business_date"])
            return entry

        def done(entry: Any, err: BaseException | None) -> None:
            if isinstance(err, AlreadyClosed):
                self._go(Z_AGAIN)
                self.z_closed_seq = err.seq
            elif err is not None:
                self._go(Z_DONE, self._error(err, "ledger"), "red")
            else:
                self._go(Z_DONE, self._t("The day is closed."), "green")
                self.lines = summary_lines(entry.data, self.project_titles(), self.catalog, self._day)

        self._job(self._t("Z report (close the day)"), run, done)

    # --- volunteer points ------------------------------------------------------------------
    def _do_activity(self, activity_id: str) -> None:
        act = self.s.ops.volunteer.activity(activity_id)
        if act is None:
            return
        self.activity, self.points = act.id, act.points
        # Under the portal's written point rules the activity's points are fixed: no number to choose.
        self._go(VOL_TAP if self.s.ops.volunteer.rules_version else VOL_POINTS)

    def _do_points(self, step: int) -> None:
        act = self.s.ops.volunteer.activity(self.activity)
        top = act.max_points if act else 1
        wanted = self.points + int(step)
        self.points = max(1, min(top, wanted))
        self.notice = ""
        if wanted != self.points:  # say why the figure stopped, instead of capping in silence
            self._say(self._t("{lo} to {hi} pt for this activity").format(lo=1, hi=top), "yellow")

    def _do_points_ok(self, _: Any = None) -> None:
        try:
            check_grant(self.s.ops.volunteer, self.activity, self.points)
        except VolunteerError as exc:
            self._say(exc.say(self._t), "red")
            return
        self._go(VOL_TAP)

    def _do_tap_again(self, _: Any = None) -> None:
        self._go(VOL_TAP)

    def _grant(self, token: DonorToken) -> None:
        session, writer, settings = self._session(), self.s.writer, self.s.ops.volunteer
        activity, points = self.activity, self.points

        def run() -> int | None:
            try:
                volunteer_grant(writer, settings, activity, points, token, session)
            except VolunteerError as exc:
                # A refused grant is a staff action too: the trail shows who tried what.
                session.record_wait("points_grant", activity=activity, points=points,
                                    outcome=f"refused: {exc}"[:200])
                raise
            # The grant is written now. Reading the card's balance back is only for the screen: if that read
            # fails, the grant is still made, and a red "nothing was changed" would make staff tap the card
            # again and grant the points twice.
            try:
                return points_balance(writer.ledger, token)
            except Exception as exc:  # noqa: BLE001 - any failure of the read; the grant stands
                log.error("points granted (%s, %d pt), but the card's balance could not be read: %s",
                          activity, points, detail(exc))
                return None

        def done(bal: int | None, err: BaseException | None) -> None:
            if err is not None:
                self._go(VOL_DONE, self._error(err, "ledger"), "red")
                return
            self._go(VOL_DONE, self._t("Points granted."), "green")
            self.grant_points, self.balance = points, bal

        self._job(self._t("Volunteer points"), run, done)

    # --- sync ------------------------------------------------------------------------------
    def _do_sync_run(self, _: Any = None) -> None:
        session, sync = self._session(), self.s.sync_now
        if sync is None:
            return

        def run() -> str:
            with session.action("sync_now") as r:
                result = str(sync())
                r["result"] = result[:80]
            return result

        def done(result: str | None, err: BaseException | None) -> None:
            if err is not None:
                self._say(self._error(err, "portal"), "red")
            else:
                self.sync_result = result or ""  # the uploader's own words stay in the audit trail (admin_action)
                # Staff read plain words, not "0 pending, accepted through seq 27" (issue #15 item 8).
                state = self.s.sync_state() if self.s.sync_state is not None else None
                pending = getattr(state, "pending", None)
                self._say(self._t("Synced.") if pending is None else
                          self._t("Synced. Entries waiting: {count}").format(count=pending), "green")

        self._job(self._t("Sync now"), run, done)

    # --- reader test -----------------------------------------------------------------------
    def _enter_reader_test(self) -> None:
        self.reader = None

    # --- playlist --------------------------------------------------------------------------
    def _enter_playlist(self) -> None:
        self._reread_playlist()

    def _reread_playlist(self) -> bool:
        """Read the configured playlist again; True when it changed since it was last read and the page showed
        another list, which it now replaces.

        A portal push (``App.adopt_config``) hands the player the whole new list, so the page then shows every clip
        of it on: the indices of clips switched off before would name other clips, and the player plays them all.
        A list the page already shows (Reload from the portal, done before the app adopted the push it fetched) is
        kept as it is, switched-off clips included.
        """
        configured = list(self.s.playlist())
        if configured == self._configured:
            return False
        self._configured = configured
        if configured == self._playlist:
            return False
        self._playlist, self._disabled = configured, set()
        return True

    def _playlist_tick(self) -> None:
        """While the page is up: a push that changed the list shows at once, not only after Back."""
        if self.page == PLAYLIST and self._reread_playlist():
            self.focus = self.scroll = 0
            self._say(self._t(PLAYLIST_CHANGED), "yellow")

    def _enabled_items(self) -> list[PlaylistItem]:
        return [item for item, on in self.playlist if on]

    def _do_toggle(self, index: int) -> None:
        i = int(index)
        if not 0 <= i < len(self._playlist) or self.s.apply_playlist is None:
            return
        # What staff pressed: this clip (its n-th time on the list), to be switched on or off. The list is read
        # again first: the player must never be handed a list from before a push (a clip the portal removed,
        # whose file the kiosk deletes, would play again: docs/menu.md, "A push while the playlist page is open").
        item, wanted_on = self._playlist[i], i in self._disabled
        nth = self._playlist[:i].count(item)
        changed = self._reread_playlist()
        if changed:
            self.focus = self.scroll = 0
            same = [j for j, it in enumerate(self._playlist) if it == item]
            if nth >= len(same):
                self._say(self._t(PLAYLIST_GONE), "yellow")
                return
            i = same[nth]
            if wanted_on:  # the new list plays every clip: it is on already
                self._say(self._t(PLAYLIST_CHANGED), "yellow")
                return
        if i in self._disabled:
            self._disabled.discard(i)
            name = "playlist_enable"
        elif len(self._enabled_items()) <= 1:
            self._say(self._t("At least one clip must stay on."), "red")
            return
        else:
            self._disabled.add(i)
            name = "playlist_disable"
        enabled = self._enabled_items()
        self.s.apply_playlist(enabled)
        item = self._playlist[i]
        self._session().record(name, index=i, project=item.project, clip=item.clip[:16] or "newest",
                               playing=len(enabled))
        if changed:
            self._say(self._t(PLAYLIST_CHANGED_OFF), "yellow")
        else:
            self._say(self._t("Changes start after the current clip."), "green")

    def _do_playlist_reload(self, _: Any = None) -> None:
        session, reload, apply = self._session(), self.s.reload_playlist, self.s.apply_playlist
        if reload is None:
            return

        def run() -> list[PlaylistItem]:
            with session.action("playlist_reload") as r:
                items = list(reload())
                r["items"] = len(items)
                if apply is not None and items:
                    apply(items)
            return items

        def done(items: list[PlaylistItem] | None, err: BaseException | None) -> None:
            if err is not None:
                self._say(self._error(err, "portal"), "red")
                return
            self._playlist, self._disabled = list(items or []), set()
            self._say(self._n("Playlist reloaded from the portal: {n} clip.",
                              "Playlist reloaded from the portal: {n} clips.", len(self._playlist)), "green")

        self._job(self._t("Reload from the portal"), run, done)

    # --- volume and language ---------------------------------------------------------------
    def _enter_volume(self) -> None:
        self.volume = self.volume_start = max(0, min(100, int(self.s.volume())))

    def _do_volume(self, step: int) -> None:
        wanted = self.volume + int(step)
        self.volume = max(0, min(100, wanted))
        self._say(self._t("The volume goes from 0 to 100.") if wanted != self.volume else "")
        if self.s.set_volume is not None:
            self.s.set_volume(self.volume)  # at once, so staff hear the level they are choosing

    def _leave_volume(self) -> None:
        # One entry per visit, not one per press: the trail shows the level staff settled on.
        if self.page == VOLUME and self.volume != self.volume_start and self.session is not None:
            self.session.record("volume", level=self.volume, previous=self.volume_start)
            self.volume_start = self.volume

    def _do_lang(self, lang: str) -> None:
        if lang not in ("ja", "en") or self.s.set_language is None:
            return
        self.s.set_language(lang)
        self._session().record("language", lang=lang)
        self._say(self._t("Default language changed."), "green")

    # --- restart, reboot, power off --------------------------------------------------------
    def _do_power(self, what: str) -> None:
        if what in ("restart_app", "reboot", "poweroff"):
            self.power = what
            self._go(POWER_CONFIRM)

    def _do_power_run(self, _: Any = None) -> None:
        session, what = self._session(), self.power
        restart, runner = self.s.restart_app, self.s.run_command
        argv = list(self.s.commands.get(what, []))

        def run() -> None:
            # Recorded first, and waited for: after the command there may be no process left to record anything.
            session.record_wait(what)
            if what == "restart_app":
                if restart is None:
                    raise StaffMessage("Restarting the app is not available here.")
                restart()
            else:
                if not argv:
                    raise StaffMessage("No command is set for this action: see docs/menu.md.")
                runner(argv)

        def done(_: Any, err: BaseException | None) -> None:
            if err is not None:
                self._say(self._error(err, "command"), "red")
            else:
                self.close("staff")

        self._job(self._t("Please wait…"), run, done)

    # --- USB export ------------------------------------------------------------------------
    def _enter_usb(self) -> None:
        try:
            self.sticks = self.s.sticks()
        except OSError as exc:
            self.sticks = []
            self._say(self._error(exc, "files"), "red")
        try:  # which day the CSV will hold, said before staff choose (after midnight it is not today)
            self.usb_day = self.s.export_day()
        except Exception as exc:  # noqa: BLE001 - an unreadable ledger: the export itself says so in words
            log.warning("menu: the export's day could not be read: %s", detail(exc))
            self.usb_day = None

    def _do_usb_scan(self, _: Any = None) -> None:
        self._go(USB)

    def _do_usb_export(self, index: int) -> None:
        if not 0 <= int(index) < len(self.sticks):
            return
        stick, session, export = self.sticks[int(index)], self._session(), self.s.export_to
        if stick.read_only:  # nothing would be written: say why, and what to do, before trying
            self._say(UsbExportError(READ_ONLY, detail="read-only").say(self._t), "red")
            return

        def run() -> ExportResult:
            with session.action("usb_export", device=stick.device) as r:
                res = export(stick.path, stick.device)
                r.update(files=len(res.files), entries=res.entries, business_date=res.business_date)
            return res

        def done(res: ExportResult | None, err: BaseException | None) -> None:
            if err is not None or res is None:
                self._go(USB_DONE, self._error(err or StaffMessage("No result: try again."), "files"), "red")
                return
            self._go(USB_DONE, self._t("Export finished. You may remove the stick."), "green")
            self.export = res
            # The day said plainly in the ※ lines (「11月21日(金) はまだ日計前です」); the file names keep theirs.
            self.lines = export_lines(replace(res, business_date=self._day(res.business_date)), self.catalog)

        self._job(self._t("USB export"), run, done)

    # --- refunds ----------------------------------------------------------------------------
    def _enter_refund(self) -> None:
        self.refund_again = ""
        try:
            self.refundables = refundable(self.s.ledger, self.s.refund_method)
        except Exception as exc:  # a read failing is shown, never raised into the render loop
            self.refundables = []
            self._say(self._error(exc, "ledger"), "red")

    def _enter_refund_find(self) -> None:
        self.refund_digits = ""

    def _do_ref_digit(self, digit: str) -> None:
        if len(self.refund_digits) < REF_MAX:
            self.refund_digits += str(digit)[:1]
        self.notice = ""

    def _do_ref_del(self, _: Any = None) -> None:
        self.refund_digits = self.refund_digits[:-1]

    def _do_ref_ok(self, _: Any = None) -> None:
        """Find the gift by the donor's 受付番号 (the number their thank-you or error screen showed)."""
        if not self.refund_digits:
            return
        try:
            pick = find_refundable(self.s.ledger, self.s.refund_method, int(self.refund_digits))
        except Exception as exc:  # not found / already refunded / another terminal's: said in words
            self._say(self._error(exc, "ledger"), "red")
            return
        self.refund_pick = pick
        self._go(REFUND_CONFIRM)

    def _do_refund_pick(self, index: int) -> None:
        if not 0 <= int(index) < len(self.refundables):
            return
        self.refund_pick = self.refundables[int(index)]
        self._go(REFUND_CONFIRM)

    def refund_line(self, r: Refundable) -> str:
        """``受付番号 12  ¥500  こども食堂``: the number the donor saw, never the ledger's seq of the donation."""
        title = self.project_titles().get(r.project, r.project)
        return f"{self._t('Reference')} {r.reference}  {yen(r.amount_yen)}  {title}"

    def _do_refund_run(self, _: Any = None) -> None:
        pick, refund, session, writer = self.refund_pick, self.s.refund, self._session(), self.s.writer
        if pick is None or refund is None:
            return
        kiosk_id = self.s.kiosk_id
        sent = [pick]

        def run() -> Any:
            # The attempt (and so the key) is read again from the signed trail now, not taken from the page: a
            # new key only after the previous attempt was *recorded* REJECTED/FAILED; PENDING, a lost answer or
            # nothing recorded at all replays the same key (docs/payment.md, "Refunds").
            d = current(writer.ledger, pick)
            sent[0] = d
            with session.action("refund", donation_seq=d.seq, reference=d.reference, amount_yen=d.amount_yen,
                                refund_attempt=d.refund_attempt,
                                refund_key=refund_key(kiosk_id, d.seq, d.refund_attempt)) as r:
                result, entry = refund_donation(writer, refund, kiosk_id, d)
                # The provider's status is in the signed trail: a PENDING one is found again by the refund page.
                r.update(refund_id=result.refund_id, refund_status=result.status)
                if entry is not None:
                    r["void_seq"] = entry.seq
            return result, entry

        def done(value: Any, err: BaseException | None) -> None:
            d = sent[0]
            head = self.refund_line(d)
            if isinstance(err, AlreadyRefunded):  # voided since the page was drawn: nothing was sent
                self.refund_pick, self.refund_again = None, ""
                self._go(REFUND_DONE, err.say(self._t), "green")
                self.lines = [head]
                return
            if isinstance(err, RefundRefused):
                # The provider answered and said no (already refunded there, the payment too old or unknown): that
                # answer will not change, so no "press Refund again", no retry button; nothing was voided.
                # Refused for the kiosk's payment settings (the token): not final for the payment, but no press
                # mends it either: whom to ask, and to refund it from this page once they are fixed.
                settings = isinstance(err, TerminalSetupError)
                self.refund_pick, self.refund_again = None, ""
                self._go(REFUND_DONE, self._t(REFUND_SETTINGS_REFUSED if settings else REFUND_REFUSED), "red")
                self.lines = [head, self._error(err, "payment")]  # the Dashboard, or whom to ask (words.py)
                if settings:  # the command that finds the setting: the technician's, on a line of its own
                    self.lines.append(self._t(status_text.DETAILS).format(detail=self._t(REFUND_SETTINGS_NOTE)))
                return
            if err is not None or value is None:
                # Either step may have failed (the network, a busy terminal, the ledger); both are idempotent, so
                # "again" finishes the job safely.
                self._go(REFUND_DONE, self._t("Not finished: press Refund again (it is never refunded twice)."),
                         "red")
                self.refund_pick, self.refund_again = d, "again"
                self.lines = [head, self._error(err or StaffMessage("No result: try again."), "payment")]
                return
            result, entry = value
            status = result.status.upper()
            # Plain words, not "refund R3f… (PENDING)" and "void seq=11": the refund number is what the
            # payment service's staff ask for; the void's seq stays in the audit trail (admin_action).
            number = self._t("Refund number: {id}").format(id=result.refund_id)
            if entry is not None:
                self.refund_pick, self.refund_again = None, ""
                self._go(REFUND_DONE, self._t("Refunded. The donation is voided in the ledger."), "green")
                self.lines = [head, number, self._t(REFUND_STATUS["COMPLETED"])]
            elif status in ENDED:
                # Nothing voided: the center still holds the money. That refund is over at the provider, so the
                # page offers a new request (the next attempt, with its own key), which the trail now allows.
                self.refund_pick = replace(d, refund_status=status, refund_id=result.refund_id,
                                           refund_attempt=d.refund_attempt + 1, refund_new=True)
                self.refund_again = "new"
                self._go(REFUND_DONE, self._t("Not refunded. The donation still counts."), "red")
                self.lines = [head, number, self._t(REFUND_STATUS[status]), self._t(REFUND_NEW)]
            else:  # PENDING (or a status we do not know): no void until the provider says COMPLETED
                self.refund_pick, self.refund_again = d, "check"
                self._go(REFUND_DONE, self._t("Refund under way. The donation still counts until it is finished."),
                         "yellow")
                self.lines = [head, number, self._t(REFUND_STATUS.get(status, REFUND_UNKNOWN))]

        self._job(self._t("Refund a donation"), run, done)

    _do_refund_new = _do_refund_run
    """The new-request button: the same run, because the attempt it sends is decided by the trail, not the
    button (a press on a stale page replays the recorded attempt instead of opening another refund)."""

    def _session(self) -> StaffSession:
        if self.session is None:
            raise RuntimeError("no staff session: the menu is not open")
        return self.session
