"""Errors staff read on the menu: an English message id and its figures, so the menu can say it in Japanese.

``str()`` of such an error stays the English sentence the CLI prints and the admin trail records
(``refused: …``); the menu calls :meth:`StaffMessage.say` with its gettext instead (issue #15: a refused grant
or a failed USB export was shown in English on a Japanese menu). Figures that come from outside (a title, a
tool's own error text) go in as figures, never into the message id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.ledger.store import LedgerError
from kiosk.payment.base import RefundRefused, TerminalSetupError, TerminalUnavailable


class StaffMessage(Exception):
    def __init__(self, msgid: str, **figures: Any):
        self.msgid, self.figures = msgid, figures
        super().__init__(msgid.format(**figures))

    def say(self, tr: Callable[[str], str]) -> str:
        """The message in the staff's language (``tr``: the menu's gettext)."""
        return tr(self.msgid).format(**self.figures)


# --- errors that are not our own words (issue #15 items 8 and 12) --------------------------------------------
# What staff can meet on the menu when the ledger writer, the uploader or the payment provider fails. The menu
# shows the sentence for its class in the staff's language, with what to do; the technical detail (the error's
# own English words) goes to the log, and is added in brackets in English mode, for whoever staff phone.
LEDGER_FAILED = "The ledger could not be written, so nothing was changed. Press again; if it fails again, " \
    "restart the kiosk and call the maintainer."
LEDGER_BUSY = "The ledger is busy and did not answer in time. Wait a minute, then look again before pressing again."
PAYMENT_UNREACHABLE = "Cannot reach the payment service. Check the network, then press again."
PAYMENT_REFUSED = "The payment service refused the refund. Check the payment on the Square Dashboard, or call " \
    "the payment service."
PAYMENT_SETUP = "The payment terminal is not set up. Call the maintainer."
REFUND_SETTINGS = "The payment itself is not what is wrong, and checking cables will not fix it. Ask the person " \
    "who set up the kiosk to check the payment settings. Once they are fixed, refund it again from this page: it " \
    "is never refunded twice."
"""A refund Square refused because of the kiosk's payment settings (the access token refused, or not allowed to
refund: ``kiosk.payment.square.RefundSetupRefused``, a RefundRefused that is a TerminalSetupError): what to do. Not
``PAYMENT_REFUSED``'s Square Dashboard, where the payment is fine. The command that finds the setting is the
technician's (:data:`REFUND_SETTINGS_NOTE`), on a line of its own: staff at a touch screen type none."""
REFUND_SETTINGS_NOTE = "`kiosk doctor` shows which payment setting is wrong"
"""The refund page's details line, for the technician, after :data:`REFUND_SETTINGS`."""
PORTAL_UNREACHABLE = "Cannot reach the portal. Check the network, then try again."
FILES_FAILED = "A file could not be read or written. Check the USB stick or the disk space, then try again."
COMMAND_FAILED = "The kiosk could not do that. Call the maintainer."
UNEXPECTED = "Something went wrong. The details are in the log: call the maintainer."

BUGS = (TypeError, AttributeError, NameError, AssertionError, RuntimeError)
"""Errors that mean a bug in the kiosk, whatever action raised them (LedgerThreadError is a RuntimeError)."""
SOURCES = ("ledger", "payment", "portal", "files", "command", "")
"""Where a menu action's failure came from, when the error's class alone does not say (any failure of
"sync now" is the portal's)."""


def staff_error(err: BaseException, source: str = "") -> StaffMessage:
    """The :class:`StaffMessage` staff read for ``err`` (our own StaffMessages as they are)."""
    if isinstance(err, StaffMessage):
        return err
    if isinstance(err, TerminalUnavailable):
        return StaffMessage(PAYMENT_UNREACHABLE)
    if isinstance(err, RefundRefused) and isinstance(err, TerminalSetupError):
        return StaffMessage(REFUND_SETTINGS)  # refused for the kiosk's payment settings, not for the payment
    if isinstance(err, RefundRefused):
        return StaffMessage(PAYMENT_REFUSED)
    if isinstance(err, TerminalSetupError):
        return StaffMessage(PAYMENT_SETUP)
    if isinstance(err, LedgerError):
        return StaffMessage(LEDGER_FAILED)
    if isinstance(err, TimeoutError) and source != "portal":  # the writer's wait; the providers wrap their own
        return StaffMessage(LEDGER_BUSY)
    if isinstance(err, BUGS):  # a programming error is not "the network": say it is one, the log has it
        return StaffMessage(UNEXPECTED)
    if source == "portal":  # the uploader's errors (SyncError, an HTTP client's) all mean "the portal did not"
        return StaffMessage(PORTAL_UNREACHABLE)
    if source == "command":
        return StaffMessage(COMMAND_FAILED)
    if isinstance(err, OSError) or source == "files":
        return StaffMessage(FILES_FAILED)
    if source == "ledger":
        return StaffMessage(LEDGER_FAILED)
    return StaffMessage(UNEXPECTED)


def detail(err: BaseException) -> str:
    """The error's own words, for the log and English mode (``TerminalUnavailable: Square did not answer``)."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
