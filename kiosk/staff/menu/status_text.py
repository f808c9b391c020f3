"""The status page's values and hints in the staff's language (issue #15 item 8).

``kiosk.ops.status`` builds its items in plain English (it sits below the UI and cannot translate, and
``kiosk status`` prints them for a terminal). The menu shows them to center staff in Japanese first, so
each known phrase is matched here and given through gettext, with its figures kept; a phrase not known
here is shown as it came. The words of others (the uploader's error, the payment adapter's detail such as
Square's answer, the reader's reason or fix) are never part of the sentence: they are the item's ``detail``, shown
on a line of their own labelled for the technician (:func:`details`). The payment adapter's detail is also said in
a plain sentence first, by how it starts (:data:`PAYMENT_DETAILS`, :func:`meaning`). An "unknown" with no hint gets
one: staff are never left with a word and nothing to do. A kiosk that failed closed says so by its ledger row
(:data:`LEDGER_STOPPED`, :func:`failed_closed`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.ops.status import (
    DISK_HINTS,
    LEDGER_FAILURES,
    PAYMENT_SETUP_HINT,
    PAYMENT_UNUSED,
    SYNC_ERRORS,
    StatusItem,
    error_kind,
    measured,
)

Tr = Callable[[str], str]
NTr = Callable[[str, str, int], str]

FAMILY_NAMES = {
    "suica": "Suica", "pasmo": "PASMO", "icoca": "ICOCA", "kitaca": "Kitaca", "toica": "TOICA",
    "manaca": "manaca", "sugoca": "SUGOCA", "nimoca": "nimoca", "hayakaken": "はやかけん", "pitapa": "PiTaPa",
}
"""Card family ids (``TapRecord.family``) as the cards are branded: staff never see the raw id."""

PLURALS: dict[str, tuple[str, str]] = {
    "{n} entries, {mb} MB": ("{n} entry, {mb} MB", "{n} entries, {mb} MB"),
    "Never synced; {pending} entries waiting": ("Never synced; {pending} entry waiting",
                                                "Never synced; {pending} entries waiting"),
    "Last sync {ago} ago; {pending} entries waiting": ("Last sync {ago} ago; {pending} entry waiting",
                                                       "Last sync {ago} ago; {pending} entries waiting"),
    "{n} frames dropped a minute, {gap} ms between clips": ("{n} frame dropped a minute, {gap} ms between clips",
                                                            "{n} frames dropped a minute, {gap} ms between clips"),
    "{n} frames dropped a minute": ("{n} frame dropped a minute", "{n} frames dropped a minute"),
    "{d} days {h} h {m} min": ("{d} day {h} h {m} min", "{d} days {h} h {m} min"),
}
"""Phrases with a count (issue #15: "1 donations"): msgid -> (singular, plural) for ngettext; the count is the
phrase's first figure."""

# --- hints of `kiosk status` that name a command: staff get what they can do at the touch screen instead ----------
# `kiosk status` is the technician's (over ssh): its hints may say a command. The menu is the center staff's, at a
# touch screen with no keyboard: its what-to-do line says a button by its name, the portal's page, or whom to call;
# the command stays, for the technician, on the details line (:func:`maintainer_note`, :func:`technician_details`).
READER_FIX = "run `kiosk doctor` for the exact fix"
ENROLL = "enroll the kiosk (see `kiosk doctor`)"
PLAYER_FIX = "re-import the clips at the panel size (`kiosk media import`)"
PLAYER_SOON = "if it persists, re-import the clips at the panel size"
DISK_TODOS: dict[tuple[str, bool], str] = {
    ("yellow", True):
        "The disk is filling up; donations are not affected yet. The movies take the most room. On the portal, "
        "open Playlists and take out the videos this kiosk no longer needs to show: the kiosk deletes them after "
        "its next sync. If it keeps filling up, call the person who set up the kiosk.",
    ("red", True):
        "The disk is almost full. When it is full, the kiosk stops taking donations. The movies take the most "
        "room. On the portal, open Playlists and take out the videos this kiosk no longer needs to show: the "
        "kiosk deletes them after its next sync. Call the person who set up the kiosk as well.",
    ("yellow", False):
        "The disk is filling up; donations are not affected yet. The movies take the most room. Call the person "
        "who set up the kiosk: they can remove the movies this kiosk no longer shows.",
    ("red", False):
        "The disk is almost full. When it is full, the kiosk stops taking donations. The movies take the most "
        "room. Call the person who set up the kiosk soon: they can remove the movies this kiosk no longer shows.",
}
"""The disk row's what-to-do by (level, a portal configured), for `kiosk status`'s ``DISK_HINTS``: what fills a
kiosk's disk is its movies (a USB export goes to the stick and frees nothing on the kiosk), and the portal's
playlists are how staff take the ones no longer shown off it."""
FOR_MAINTAINER: dict[str, str] = {
    READER_FIX: "`kiosk doctor` shows the exact fix",
    ENROLL: "`kiosk doctor` shows how to enroll the kiosk",
    PLAYER_FIX: "re-import the clips at the panel size (`kiosk media import`)",
    PLAYER_SOON: "re-import the clips at the panel size (`kiosk media import`)",
    **{cli: "`kiosk media list` shows the movies on the kiosk and which ones the playlists use"
       for cli in DISK_HINTS.values()},
    PAYMENT_SETUP_HINT: "the access token or the terminal's pairing: `kiosk doctor` shows which, `kiosk payment "
                        "pair` pairs again, `kiosk payment test` checks",
}
"""`kiosk status`'s hint -> the note for the technician on the row's details line (msgids)."""
UNKNOWN_NOTE = "`kiosk doctor` checks every part of the kiosk"

# The payment terminal's setup refused (``PAYMENT_SETUP_HINT``) and no terminal set up (``PAYMENT_UNUSED``): `kiosk
# status` says the commands that find and fix it; staff are told what they can look at themselves (the card
# terminal's own screen: pairing is signing it in with a code, docs/payment.md "Pairing") and whom to call. Short:
# the row's big line already says the settings were refused, so neither the plain line (:data:`PAYMENT_DETAILS`) nor
# this says it again, and which setting (the access token, the pairing) is the technician's, on the details line.
PAYMENT_SETUP_TODO = (
    "Card donations cannot be taken until it is fixed, and cables will not fix it. Call the person who set up the "
    "kiosk and tell them what the payment terminal's screen shows and the details.")
"""The menu's what-to-do for ``PAYMENT_SETUP_HINT`` (msgid); which setting it may be and the commands are the
technician's note (:data:`FOR_MAINTAINER`, and :data:`PaymentWords.note` beside Square's words on the details line)."""
PAYMENT_UNUSED_TODOS: dict[str, tuple[str, str]] = {
    "no_terminal": (
        "No payment terminal is set up on this kiosk, so card donations cannot be taken. Checking cables will not "
        "fix it. Call the person who set up the kiosk and ask them to set up the payment terminal.",
        "`kiosk doctor` shows what is missing in the payment settings"),
}
"""Why the terminal is not asked (the payment row's ``cause``) -> (the menu's what-to-do, the technician's note),
where `kiosk status`'s advice (``PAYMENT_UNUSED``) names a command; msgids."""
assert set(PAYMENT_UNUSED_TODOS) <= set(PAYMENT_UNUSED)

# (pattern on the English value or hint, msgid with the pattern's named groups). First match wins.
PHRASES: tuple[tuple[str, str], ...] = (
    (r"connected; last tap (?P<family>\S+)", "Connected (last card: {family})"),
    (r"connected", "Connected"),
    (r"reconnecting(?P<rest>.*)", "Reconnecting{rest}"),
    (r"missing", "Not found: is it plugged in?"),
    (r"fault", "Not working"),
    (r"unknown", "Not known yet"),
    (r"ready", "Ready"),
    (r"busy", "Taking a payment"),
    (r"offline kiosk \(no portal configured\)", "No portal set (this kiosk works on its own)"),
    (r"not used", "Not used"),
    (r"offline(?P<rest>: .*)?", "Not reachable{rest}"),
    (r"error(?P<rest>: .*)?", "Error{rest}"),
    (r"no network", "No network"),
    (r"network up, portal unreachable", "Network up, portal not reachable"),
    (r"portal reachable, kiosk not enrolled", "Portal reachable, kiosk not enrolled"),
    (r"portal reachable, enrolled", "Portal reachable, enrolled"),
    (r"kiosk not registered with the portal", "This kiosk is not registered with the portal"),
    (r"ledger does not match the portal's copy \(restored from an old backup\?\)",
     "This kiosk's records do not match the portal's"),
    (r"last sync never; (?P<pending>\S+) pending(?P<error>; last error: .*)?",
     "Never synced; {pending} entries waiting"),
    (r"last sync (?P<ago>.+) ago; (?P<pending>\S+) pending(?P<error>; last error: .*)?",
     "Last sync {ago} ago; {pending} entries waiting"),
    (r"(?P<n>\d+) entries, last seq (?P<seq>\S+), (?P<mb>\S+) MB", "{n} entries, {mb} MB"),
    (r"unknown, (?P<mb>\S+) MB", "Entries not known yet, {mb} MB"),
    (r"read-only: nothing can be saved", "Read-only: nothing can be saved"),
    (r"(?P<mb>[\d,]+) MB free", "{mb} MB free"),
    (r"not measured on this machine", "Not measured on this machine"),
    (r"no playback figures yet", "No playback figures yet"),
    (r"(?P<n>\d+) dropped frames/min, switch gap (?P<gap>\d+) ms",
     "{n} frames dropped a minute, {gap} ms between clips"),
    (r"(?P<n>\d+) dropped frames/min", "{n} frames dropped a minute"),
    (r"(?P<d>\d+)d (?P<h>\d+)h (?P<m>\d+)m", "{d} days {h} h {m} min"),
    (r"(?P<h>\d+)h (?P<m>\d+)m", "{h} h {m} min"),
    (r"(?P<m>\d+)m", "{m} min"),
    # hints
    (r"the reader has not reported yet", "The reader has not reported yet: wait a minute, then Refresh."),
    (r"check the reader's USB cable", "Check the reader's USB cable."),
    (re.escape(READER_FIX), "Check that the card reader's USB cable is plugged in firmly at both ends, then press "
     "Refresh. If it stays, call the person who set up the kiosk and tell them the details."),
    (r"check the payment terminal's power and cable", "Check the payment terminal's power and cable."),
    (re.escape(PAYMENT_SETUP_HINT), PAYMENT_SETUP_TODO),  # the provider refused the setup: not the cables
    (r"check the LAN cable or Wi-Fi", "Check the LAN cable or Wi-Fi."),
    (r"the portal may be down; entries wait", "The portal may be down. Donations are kept on the kiosk."),
    (re.escape(ENROLL), "This kiosk is not registered with the portal yet. Donations are kept on the kiosk, but "
     "none can be sent until it is registered. Call the portal administrator: they give the person who set up the "
     "kiosk an enrollment code."),
    (r"press Sync now", "Press Sync now."),
    (r"stop taking donations at this kiosk and call the administrator",
     "This kiosk's data was probably put back from an old backup. Stop taking donations at this kiosk and call "
     "the administrator. Do not press Sync now: it cannot fix this."),
    (r"entries are safe on the kiosk; check the network, then press Sync now",
     "Donations are kept on the kiosk. Check the network, then press Sync now."),
    (r"entries are safe on the kiosk; fix what the error names, then press Sync now",
     "Donations are kept on the kiosk. Fix what the error names, then press Sync now."),
    *((re.escape(cli), msgid) for cli, msgid in ((DISK_HINTS[k], DISK_TODOS[k]) for k in DISK_HINTS)),
    (r"donations are stopped; restart the kiosk, and if this stays, call the operator \(the SD card may be failing\)",
     "Donations are stopped. Restart the kiosk; if this stays, call the operator (the SD card may be failing)."),
    (r"keep the case's vents clear", "Keep the case's vents clear."),
    (r"the Pi is throttling: give the case air, check the fan",
     "The computer is too hot: give the case air, check the fan."),
    (re.escape(PLAYER_SOON), "Donations are not affected. If the movie keeps stuttering for days, tell the person "
     "who set up the kiosk."),
    (re.escape(PLAYER_FIX), "The movie is not playing smoothly. Donations are not affected. Call the person who set "
     "up the kiosk and tell them the figures on this page."),
)
_COMPILED = tuple((re.compile(p + r"\Z"), msgid) for p, msgid in PHRASES)
_LAST_TAP = re.compile(r"; last tap (?P<family>\S+)\Z")

UNKNOWN_HINT = "Not known yet: press Refresh in a minute. If it stays unknown, call the person who set up the kiosk."


def _count(figure: str) -> int:
    try:
        return int(figure.replace(",", ""))
    except ValueError:
        return 2  # not a whole number ("1.5"): the plural reads right in English


def say(text: str, tr: Tr, ntr: NTr | None = None) -> str:
    """``text`` (a status value or hint) in the staff's language; unknown phrases unchanged.

    ``ntr`` is the catalog's ngettext, for the phrases with a count (without it, English plurals by n != 1)."""
    ntr = ntr or (lambda one, many, n: tr(one if n == 1 else many))
    tail = _LAST_TAP.search(text)
    if tail and not text.startswith("connected;"):
        # "reconnecting …; last tap suica", "fault; last tap suica": the state in words, then the card's brand.
        family = FAMILY_NAMES.get(tail["family"], tail["family"])
        return say(text[:tail.start()], tr, ntr) + tr("; last card: {family}").format(family=family)
    for rx, msgid in _COMPILED:
        m = rx.match(text)
        if m:
            parts = {k: (v or "") for k, v in m.groupdict().items()}
            if parts.get("ago"):
                parts["ago"] = say(parts["ago"], tr, ntr)  # "25m" is a duration of its own
            if parts.get("family"):
                parts["family"] = FAMILY_NAMES.get(parts["family"], parts["family"])
            if parts.get("mb") == "0":
                parts["mb"] = "<1"  # a fresh ledger of 180 KB is not "0 MB"
            if msgid in PLURALS:
                figure = next(v for k, v in parts.items() if k in ("n", "pending", "d"))
                out = ntr(*PLURALS[msgid], _count(figure)).format(**parts)
            else:
                out = tr(msgid).format(**parts)
            if parts.get("error"):
                # The error itself is the uploader's own words (what to quote on the phone); the frame is ours.
                out += tr("; last error: {error}").format(error=parts["error"].removeprefix("; last error: "))
            return out
    return text


def hint(value: str, hint_text: str, tr: Tr, ntr: NTr | None = None) -> str:
    """The what-to-do line: the item's own hint, or one for a value that is not known."""
    if hint_text in _CAUSE_TODOS:
        return tr(hint_text)  # one of ours, a msgid as it is (SYNC_ERRORS)
    if hint_text:
        return say(hint_text, tr, ntr)
    return tr(UNKNOWN_HINT) if value == "unknown" else ""


# --- the uploader's errors, by kind (kiosk.ops.status.SYNC_ERRORS) ---------------------------------------------
# Staff read what happened and what to do in their language, chosen by the error's kind, never its English words;
# those stay on a details line after them, for the technician staff phone (and for `kiosk status`).
_CAUSE_TODOS = frozenset(todo for _what, todo in SYNC_ERRORS.values())
DETAILS = "Details (for the maintainer): {detail}"
DETAIL_CHARS = 160
"""The most of the uploader's words shown on the details line (its unreadable-state message runs to 400)."""


def problem(kind: str, tr: Tr) -> str:
    """What happened, a short phrase for the kind of sync error ("" for none)."""
    return tr(SYNC_ERRORS[kind][0]) if kind in SYNC_ERRORS else ""


def todo(kind: str, tr: Tr) -> str:
    """What to do about the kind of sync error ("" for none)."""
    return tr(SYNC_ERRORS[kind][1]) if kind in SYNC_ERRORS else ""


def details(error: str, tr: Tr) -> str:
    """The details line: the uploader's, the payment adapter's or the reader's own words, labelled for the
    technician, on one line (a reader's fix is shell lines). A payment adapter's detail whose kind has a command
    for the technician (:attr:`PaymentWords.note`: a setup Square refused) is followed by it."""
    error = " ".join(error.split())
    cut = error if len(error) <= DETAIL_CHARS else error[:DETAIL_CHARS - 1] + "…"
    note = next((words.note for rx, words in _PAYMENT_COMPILED if rx.match(error)), "")
    if note:
        cut = tr("{figures}; {note}").format(figures=cut, note=tr(note))
    return tr(DETAILS).format(detail=cut)


# --- the payment adapter's detail, in plain words --------------------------------------------------------------
# ``PaymentTerminal.health()`` answers a state word and a detail in the adapter's own English (kiosk/payment/sim.py
# and square.py: "simulated terminal (approve): no real money", "Square unreachable (ConnectTimeout)", "device …
# (OFFLINE); last checkout: approved"). The detail has no code, so each kind is known here by how it starts, as the
# portal's kiosks page does (server_sync/operator.py ``_PAYMENT_DETAILS``), and said in a plain sentence first;
# the English stays on the details line, for the technician. tests/menu/test_s54_payment_plain.py checks every
# detail the adapters write against this table.


@dataclass(frozen=True)
class PaymentWords:
    """What a kind of payment detail means to staff (msgids of the ``kiosk`` catalog)."""

    meaning: str
    """One plain sentence: what the detail says (shown first on the row's page)."""
    todo: str = ""
    """What to do, instead of the state's own advice ("": the state's). Given when the state's advice is wrong for
    it (Square not reachable over the network is not the terminal's power and cable) or when a green row still asks
    for something (a practice terminal on a kiosk meant for real donations)."""
    row: str = ""
    """The row's value instead of the state word ("": the state word), when the state word alone misleads. (A
    terminal Square says is off is yellow by ``status_items`` itself: `kiosk status` and the menu agree.)"""
    note: str = ""
    """The technician's command for it, after the detail on the details line (:func:`details`): what `kiosk
    status`'s advice says, kept off the staff's what-to-do line."""


PAYMENT_DETAILS: tuple[tuple[str, PaymentWords], ...] = (
    # kiosk/payment/sim.py health()
    (r"simulated terminal \(offline mode\)", PaymentWords(
        "A practice terminal: no real money is taken. It is set to act as if it cannot be reached, for a test.",
        "Checking cables will not help. To take donations again, ask the person who set up the kiosk to change "
        "the practice terminal's setting.")),
    (r"simulated terminal \(", PaymentWords(
        "A practice terminal: no real money is taken.",
        "Nothing to do if this kiosk is for practice or a demonstration. To take real card donations, ask the "
        "person who set up the kiosk to set up the card terminal.",
        row="Ready (practice terminal: no real money)")),
    # kiosk/payment/square.py health() and check_device(); the first match wins
    (r"Square refused the last checkout \(", PaymentWords(
        "Square (the card payment service) refused this kiosk's last card payment.",
        note=FOR_MAINTAINER[PAYMENT_SETUP_HINT])),
    (r"Square knows no device ", PaymentWords(
        "Square (the card payment service) does not know this kiosk's card terminal.",
        note=FOR_MAINTAINER[PAYMENT_SETUP_HINT])),
    (r"Square refused the access token", PaymentWords(
        "Square (the card payment service) refuses card payments from this kiosk.",
        note=FOR_MAINTAINER[PAYMENT_SETUP_HINT])),
    (r"Square unreachable \(|no answer from Square \(|device check failed \(", PaymentWords(
        "The kiosk cannot reach Square (the card payment service) over the network.",
        "Check the kiosk's network connection (LAN cable or Wi-Fi), then press Refresh. If it stays, call the "
        "person who set up the kiosk and tell them the details.")),
    (r"Square answered HTTP ", PaymentWords(
        "Square (the card payment service) answered with an error, so card donations may not go through.",
        "Wait a few minutes, then press Refresh. If it stays, call the person who set up the kiosk and tell them "
        "the details.")),
    (r"device \S+ \(OFFLINE\)", PaymentWords(
        "Square says the card terminal is switched off or not connected to the network.",
        "Check that the card terminal is switched on, charged and connected to the network. Until then, card "
        "donations may not go through.",
        row="The card terminal is off or not connected")),
    (r"device \S+ \(NEEDS_ATTENTION\)", PaymentWords(
        "Square says the card terminal needs attention.",
        "Look at the message on the card terminal's screen and do what it says.",
        row="The card terminal needs a look")),
    (r"device ", PaymentWords("The card terminal is connected to Square (the card payment service).")),
    (r"last checkout: |no checkout yet\Z", PaymentWords(
        "Square (the card payment service) has reported no problem.")),
    (r"checkout ", PaymentWords("A donor is paying at the card terminal now.")),
)
"""The payment adapters' details by their start (a regular expression, matched at the start) -> their words."""
_PAYMENT_COMPILED = tuple((re.compile(p), words) for p, words in PAYMENT_DETAILS)


def payment_words(item: StatusItem) -> PaymentWords | None:
    """The plain words for the payment row's detail; None for another row, a terminal not asked
    (:data:`PAYMENT_UNUSED`), no detail, or a detail not known here (its state word and advice stand alone)."""
    if item.key != "payment" or item.cause or not item.detail:
        return None
    return next((words for rx, words in _PAYMENT_COMPILED if rx.match(item.detail)), None)


def meaning(item: StatusItem, tr: Tr) -> str:
    """The row's page's first line: what the payment adapter's detail means, in plain words ("" for none)."""
    words = payment_words(item)
    return tr(words.meaning) if words is not None else ""


# --- a kiosk that failed closed ------------------------------------------------------------------------------
# The ledger row is red only when the ledger writer stopped (``StatusInputs.ledger_ok`` False: ``App.failed``, the
# kiosk refuses every donation until a restart). Its value was the ledger's size and its advice `kiosk doctor`:
# staff read neither why nor what they can do. Said by the row (its key and level), never by reading words.
LEDGER_STOPPED = (
    "Stopped: donations cannot be recorded safely",
    "The kiosk stopped taking donations because it could not save their record (the ledger) safely: this way no "
    "donation is lost or recorded twice. The kiosk restarts by itself shortly and tries again. If this page says "
    "the same after the restart, put up a notice that this kiosk is not taking donations, and call the operator.")
"""The ledger row of a kiosk that failed closed: (its value, what to do), when why is not known."""
LEDGER_STOPPED_WHY: dict[str, tuple[str, str]] = {
    "ledger": (
        "The kiosk stopped taking donations because it could not save their record (the ledger) on its disk: "
        "this way no donation is lost or recorded twice. The disk may be full or failing: look at Disk free on "
        "this page. The kiosk restarts by itself shortly and tries again. If this page says the same after the "
        "restart, put up a notice that this kiosk is not taking donations, and call the operator.",
        "`kiosk doctor` finds the cause"),
    "software": (
        "The kiosk stopped taking donations because of an unexpected error in its program: this way no donation "
        "is lost or recorded twice. The kiosk restarts by itself shortly and tries again. If this page says the "
        "same after the restart, put up a notice that this kiosk is not taking donations, and call the operator.",
        "the error is in the log (`journalctl -u kiosk`)"),
}
"""Why it failed closed (the ledger row's ``cause``: ``kiosk.ops.status.LEDGER_FAILURES``) -> (what to do, the
technician's note)."""
assert set(LEDGER_STOPPED_WHY) == set(LEDGER_FAILURES)
FAILED_CLOSED_NOTICE = "Donations are stopped. Press Ledger to see why and what to do."
"""The status page's notice while the kiosk has failed closed (:func:`failed_closed`)."""


def _stopped(item: StatusItem) -> bool:
    return item.key == "ledger" and item.level == "red"


def failed_closed(items: list[StatusItem]) -> bool:
    """Whether the kiosk refuses donations because its ledger cannot be trusted (the ledger row is red, or the
    payment row is not asked for that reason)."""
    return any(_stopped(i) or i.cause == "ledger_failed" for i in items)


def maintainer_note(item: StatusItem, tr: Tr) -> str:
    """The technician's note of a row whose `kiosk status` hint names a command ("" for none): the menu's
    what-to-do line says what staff can do instead, and this goes on the details line (:func:`technician_details`)."""
    if _stopped(item):
        return tr(LEDGER_STOPPED_WHY[item.cause][1] if item.cause in LEDGER_STOPPED_WHY
                  else "`kiosk doctor` finds the cause")
    if item.hint in FOR_MAINTAINER:
        return tr(FOR_MAINTAINER[item.hint])
    if item.cause in PAYMENT_UNUSED_TODOS:
        return tr(PAYMENT_UNUSED_TODOS[item.cause][1])
    return tr(UNKNOWN_NOTE) if item.value == "unknown" and not item.hint else ""


def technician_details(item: StatusItem, tr: Tr, ntr: NTr | None = None) -> str:
    """The details line of a row with no words of its own (:attr:`StatusItem.detail`), for the technician ("" for
    none): for the ledger row of a kiosk that failed closed the ledger's figures (what the row said before) and
    where the cause is found; for another row the command its `kiosk status` hint names (:func:`maintainer_note`).
    The status page draws it after the what-to-do line."""
    note = maintainer_note(item, tr)
    if _stopped(item):
        return details(tr("{figures}; {note}").format(figures=say(measured(item), tr, ntr), note=note), tr)
    return details(note, tr) if note else ""


BY_KEY = {("payment", "error"): "Error: the payment settings were refused"}
"""State words said for one item in words of their own: the payment terminal's ``error`` is the provider refusing
its setup (``PAYMENT_SETUP_HINT``), not a bare 「エラー」."""


def value(item: StatusItem, tr: Tr, ntr: NTr | None = None) -> str:
    """The item's value in the staff's language; a sync error by its kind, the payment adapter's and the reader's
    words apart (:attr:`StatusItem.detail`, on the details line), without their English words."""
    if item.cause in PAYMENT_UNUSED:  # the terminal is not asked: said by why (a failed ledger, none set up)
        said = tr(PAYMENT_UNUSED[item.cause][0])
        return said[:1].upper() + said[1:]
    if _stopped(item):
        return tr(LEDGER_STOPPED[0])
    words = payment_words(item)
    if words is not None and words.row:
        return tr(words.row)
    plain = measured(item)
    key = (item.key, plain)
    text = tr(BY_KEY[key]) if key in BY_KEY else say(plain, tr, ntr)
    if item.detail and item.cause in SYNC_ERRORS:
        # The problem first: a row too narrow for the whole value ends in "…", and this is what staff must see.
        said = problem(item.cause, tr)
        text = tr("{problem}; {value}").format(problem=said[:1].upper() + said[1:], value=text)
    return text


def item_hint(item: StatusItem, tr: Tr, ntr: NTr | None = None) -> str:
    """The item's what-to-do line: by its kind when it has one."""
    if item.cause in SYNC_ERRORS:
        return todo(item.cause, tr)
    if item.cause in PAYMENT_UNUSED:
        return tr(PAYMENT_UNUSED_TODOS[item.cause][0] if item.cause in PAYMENT_UNUSED_TODOS
                  else PAYMENT_UNUSED[item.cause][1])
    if _stopped(item):
        return tr(LEDGER_STOPPED_WHY[item.cause][0] if item.cause in LEDGER_STOPPED_WHY else LEDGER_STOPPED[1])
    words = payment_words(item)
    if words is not None and words.todo:
        return tr(words.todo)
    return hint(item.value, item.hint, tr, ntr)


def last_error_lines(error: str | None, tr: Tr, kind: str | None = None) -> list[str]:
    """The Sync now page's lines for the uploader's last error: what happened, what to do, then the details.
    ``kind``: the error's kind as the uploader set it (``SyncState.last_error_kind``; None: read from the words)."""
    kind = error_kind(error, kind)
    if not error or not kind:
        return []
    return [tr("Last error: {error}").format(error=problem(kind, tr)), todo(kind, tr), details(error, tr)]
