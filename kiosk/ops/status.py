"""The status page model: plain measurements in, green/yellow/red items out.

:func:`status_items` is pure, so the menu screen, ``kiosk status`` and tests
all get the same verdicts. The small ``read_*`` probes gather the system
measurements; every path they read is a parameter. Other parts (reader,
payment, sync, player) feed their own numbers into :class:`StatusInputs`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from kiosk.config.staff import StatusSection


Level = Literal["green", "yellow", "red"]
ReaderState = Literal["connected", "lost", "fault", "missing"]
PaymentState = Literal["ready", "busy", "offline", "error"]
"""What ``PaymentTerminal.health()`` answers (kiosk/payment/base.py)."""
PaymentUnused = Literal["ledger_failed", "no_terminal"]
"""Why the payment terminal is not asked at all (:data:`PAYMENT_UNUSED`)."""
LedgerFailure = Literal["ledger", "software"]
"""Why the kiosk failed closed (:data:`LEDGER_FAILURES`)."""
_RANK = {"green": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class StatusItem:
    key: str
    """Stable id, e.g. ``reader``; screens look up their label text by it."""
    level: Level
    value: str
    """What was measured, one short line."""
    hint: str = ""
    """What staff should do when not green."""
    cause: str = ""
    """Stable id of what is wrong when the value's words do not say it in a way staff can act on: the kind of the
    uploader's last error (:data:`SYNC_ERRORS`), why the payment terminal is not asked (:data:`PAYMENT_UNUSED`), or
    why the kiosk failed closed (:data:`LEDGER_FAILURES`, on the ledger row).
    Screens say the value and the what-to-do by it."""
    detail: str = ""
    """The technical words behind the value (the uploader's own error, the payment adapter's or the reader's
    words, English), for the technician: the value holds them (``; last error: …``, ``error: Square refused …``:
    what `kiosk status` prints); the menu shows them apart, on a details line (:func:`measured`)."""
    short: str = ""
    """The value without :attr:`detail` when the value does not simply end with ``; last error: <detail>``: the
    state word of the payment terminal (``error`` of ``error: Square refused …``) and of the reader (``fault``,
    whose value is the fix to type), with ``; last tap …``. What screens say in words (:func:`measured`)."""


@dataclass
class StatusInputs:
    """Everything the status page shows. ``None`` means "not known" and shows yellow, except where noted."""

    reader_state: ReaderState | None = None
    """``lost`` is being retried; ``fault``/``missing`` need a fix (from ReaderDisconnected.fault)."""
    reader_detail: str = ""
    """Why the reader was lost or is not working, in its own words (``ReaderDisconnected.reason``)."""
    reader_fix: str = ""
    """For a setup fault, the fix to type (``ReaderDisconnected.fix``: shell lines); shown after the reason."""
    last_family: str | None = None
    """Family of the last tap (suica, pasmo, …); None before the first tap."""
    payment_state: PaymentState | None = None
    payment_detail: str = ""
    payment_unused: PaymentUnused | None = None
    """Set when the terminal is not asked (:data:`PAYMENT_UNUSED`): the kiosk failed closed, or has no terminal.
    The payment row then says that, with its own advice, whatever :attr:`payment_state` says."""
    portal_configured: bool = False
    """False for an offline kiosk: network and sync items are then green "not used"."""
    network_up: bool | None = None
    portal_reachable: bool | None = None
    enrolled: bool | None = None
    last_sync_age_s: float | None = None
    """Seconds since the last successful upload; None if never."""
    pending_entries: int | None = None
    ledger_ok: bool | None = None
    """False after a LedgerUnavailable or a failed verify."""
    ledger_failure: LedgerFailure | None = None
    """With ``ledger_ok`` False, why, when known (:data:`LEDGER_FAILURES`): the running kiosk's donation worker
    stopped on an error of its ledger or disk, or on any other (a fault in the program)."""
    ledger_entries: int | None = None
    last_seq: int | None = None
    ledger_bytes: int | None = None
    disk_free_bytes: int | None = None
    disk_writable: bool | None = None
    """False when the data partition cannot be written (remounted read-only after an error, a failing card)."""
    ledger_mismatch: bool = False
    """The portal holds another history of this ledger (the uploader's ``ledger_mismatch``: its data dir restored
    from an old backup after it had synced, docs/sync.md): gifts taken now can never reach the portal."""
    sync_error: str | None = None
    """The uploader's last error, local ones included (a sync-state.json it could not save, a pushed config it
    could not adopt): staff see it here, not only in the log."""
    sync_error_kind: str | None = None
    """The kind of :attr:`sync_error` (:data:`SYNC_ERRORS`), as the uploader saved it beside the error
    (``SyncState.last_error_kind``; "config" for a pushed config it could not adopt). None when it was not saved:
    a sync-state.json of an older release (the kind is then read from the words, :func:`error_kind`)."""
    soc_temp_c: float | None = None
    uptime_s: float | None = None
    version: str = ""
    dropped_frames_per_min: float | None = None
    switch_gap_ms: float | None = None
    """Worst gap between the last frame of one clip and the first of the next, recent window."""
    extra: list[StatusItem] = field(default_factory=list)
    """Items contributed by other parts, shown after these."""


def _mb(n: int) -> str:
    return f"{n / 1_048_576:,.0f} MB"


def _duration(s: float) -> str:
    s = int(s)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    return f"{d}d {h}h {m}m" if d else (f"{h}h {m}m" if h else f"{m}m")


LAST_ERROR = "; last error: "
"""How a value ends with its :attr:`StatusItem.detail`."""

SYNC_ERRORS: dict[str, tuple[str, str]] = {
    "network": ("cannot reach the portal",
                "Check the LAN cable or Wi-Fi. Donations are kept on the kiosk and are sent once the portal can be "
                "reached."),
    "portal_busy": ("the portal is not answering for now",
                    "Donations are kept on the kiosk. Wait a few minutes, then press Sync now. If it goes on for "
                    "hours, call the portal administrator."),
    "not_enrolled": ("this kiosk is not registered with the portal",
                     "Donations are kept on the kiosk, but none can be sent until it is registered. Call the portal "
                     "administrator: they register it again with a new enrollment code."),
    "state_unreadable": ("the kiosk's sync record cannot be read",
                         "The ledger is safe and no donation is lost, but none can be sent until the kiosk is "
                         "registered again. Call the portal administrator: they register it again with a new "
                         "enrollment code."),
    "local_save": ("the sync record cannot be saved on the kiosk",
                   "The kiosk's disk may be full or failing. Look at Disk free on the status page. Restart the "
                   "kiosk; if this stays, call the maintainer."),
    "refused": ("the portal refused this kiosk's data",
                "Donations are kept on the kiosk. Pressing Sync now will not fix this: call the portal "
                "administrator and tell them the details."),
    "bad_answer": ("the portal's answer is not right",
                   "The portal address may be wrong, or another page (such as a Wi-Fi login page) answered. "
                   "Donations are kept on the kiosk. Call the maintainer and tell them the details."),
    "mismatch": ("this kiosk's records do not match the portal's",
                 "This kiosk's data was probably put back from an old backup. Stop taking donations at this kiosk "
                 "and call the administrator. Do not press Sync now: it cannot fix this."),
    "config": ("settings from the portal could not be applied",
               "Donations are still sent, and the kiosk keeps its current settings. Call the portal administrator "
               "and tell them the details."),
    "other": ("sync failed",
              "Donations are kept on the kiosk. Press Sync now; if it fails again, call the maintainer and tell "
              "them the details."),
}
"""Kind of the uploader's last error -> (what happened, what to do), in English: what `kiosk status` prints and
the msgids the menu says in the staff's language (``kiosk.staff.menu.status_text``)."""

PAYMENT_SETUP_HINT = ("The payment service refused this kiosk's payment settings (the access token, or the "
                      "pairing of the payment terminal). Checking cables will not fix it, and card donations cannot "
                      "be taken until it is fixed. Ask the person who set up the kiosk to check the settings: "
                      "`kiosk doctor` shows which one is wrong, `kiosk payment pair` pairs the terminal again, and "
                      "`kiosk payment test` checks the result.")
"""What to do when the payment terminal's state is ``error``: the provider refused its setup (Square: a token
refused, a device not paired, a location that does not match; ``SquareLive.setup_error``), which donors see as
"temporarily unavailable". The English `kiosk status` prints, and the msgid the menu says in the staff's language
(``kiosk.staff.menu.status_text``)."""

PAYMENT_UNUSED: dict[str, tuple[str, str]] = {
    "ledger_failed": ("stopped: the ledger failed",
                      "Card donations are stopped because the kiosk cannot write its ledger. The payment terminal is "
                      "not what is wrong: checking its power and cables will not help. Look at the Ledger row on "
                      "this page and do what it says."),
    "no_terminal": ("no payment terminal set up",
                    "No payment terminal is set up on this kiosk, so card donations cannot be taken. Checking cables "
                    "will not fix it. Ask the person who set up the kiosk to check the payment settings: "
                    "`kiosk doctor` shows what is missing."),
}
"""Why the payment terminal is not asked (:attr:`StatusInputs.payment_unused`) -> (the payment row's value, what to
do), in English: what `kiosk status` prints and the msgids the menu says in the staff's language, chosen by the
key (the item's ``cause``), never by reading the words. ``ledger_failed``: the kiosk failed closed (its ledger
writer stopped: ``App.failed``), which the ledger row shows and says what to do about; ``no_terminal``: none is
set up, a matter for whoever set up the kiosk. Before, both read "offline" with "check the payment terminal's
power and cable"."""

LEDGER_FAILURES: dict[str, str] = {
    "ledger": "donations are stopped: the ledger could not be read or written (is the disk full or failing?); run "
              "`kiosk doctor` and call the portal operator",
    "software": "donations are stopped by an unexpected error in the kiosk's program (its traceback is in "
                "`journalctl -u kiosk`); the kiosk restarts by itself: if it stops again, report the traceback",
}
"""Why the kiosk failed closed (:attr:`StatusInputs.ledger_failure`) -> what `kiosk status` says to do. The menu
says it in plain words by the key (the ledger row's ``cause``; ``kiosk.staff.menu.status_text``)."""

SQUARE_ATTENTION = re.compile(r"device \S+ \((?P<category>OFFLINE|NEEDS_ATTENTION)\)")
"""The start of the Square adapter's detail for a paired terminal that Square itself says is off or not on the
network (``OFFLINE``) or needs a look (``NEEDS_ATTENTION``) (kiosk/payment/square.py ``check_device``): its state is
``ready`` (the kiosk can ask it), but a donor's card payment may not go through, so the row is yellow, not green,
for `kiosk status` and the menu alike."""
SQUARE_ATTENTION_HINTS = {
    "OFFLINE": "Square says the card terminal is off or not on the network: check that it is switched on, charged "
               "and connected",
    "NEEDS_ATTENTION": "Square says the card terminal needs attention: read the message on its screen",
}

PORTAL_UNREACHED = frozenset({"network", "portal_busy"})
"""Kinds that say the portal could not be reached or did not answer: the only ones for which the status page says
"portal unreachable" (:func:`portal_reached`)."""
PORTAL_ANSWERED = frozenset({"refused", "config", "local_save", "mismatch"})
"""Kinds that say the portal answered (or the failure was the kiosk's own, after the portal answered): not a sign
of an unreachable portal."""
NOT_ENROLLED = frozenset({"not_enrolled", "state_unreadable"})
"""Kinds that say the kiosk cannot sync until it is enrolled (again)."""

_HTTP_STATUS = re.compile(r"HTTP (\d{3})\b")
_BUSY_CODES = re.compile(r"HTTP \d{3} (in_flight|conflict|stale_request)\b")
_MISMATCH_CODES = re.compile(r"HTTP \d{3} (equivocation|bad_consistency_proof)\b")


def error_kind(error: str | None, kind: str | None) -> str:
    """The kind (:data:`SYNC_ERRORS`) of the uploader's error ``error``, "" for none: ``kind``, as the uploader
    saved it beside the error (``SyncError.kind``, ``SyncState.last_error_kind``), whatever the error's words say.

    Only when no kind was saved, a ``sync-state.json`` written by a release before ``last_error_kind``, is the kind
    read from the words (:func:`sync_error_kind`). A kind this release does not know (a newer release's, after a
    downgrade) is "other"."""
    if not error:
        return ""
    if kind is None:
        return sync_error_kind(error)  # an older release's sync-state.json: its kind was never saved
    return kind if kind in SYNC_ERRORS else "other"


def portal_reached(error: str | None, kind: str | None) -> bool:
    """Whether the portal answered the uploader's last round (its last error ``error``, of ``kind``): not for a
    network error or a portal too busy to answer, but for any other error, or none (a refused request, a kiosk not
    enrolled, a sync record the kiosk cannot save: the portal is not what is wrong)."""
    return error_kind(error, kind) not in PORTAL_UNREACHED


def sync_error_kind(error: str | None) -> str:
    """The kind (:data:`SYNC_ERRORS`) of an uploader's error read from its words, "" for none: only for a
    ``sync-state.json`` written by a release before the uploader saved its errors' kind (``last_error_kind``;
    :func:`error_kind` says when).

    Those releases kept only the message, so the kind is read from the fixed forms they wrote them in:
    ``network: …`` (``_network``), ``HTTP <status> <code>: …`` (``_fail``, ``_call_once``), the not-enrolled and
    unreadable-state messages, ``cannot write …``, ``config v<N>: …``. Rewording a message now changes nothing
    of what staff are told (tests/sync/test_sync_error_kinds.py)."""
    if not error:
        return ""
    e = error.strip()
    if e.startswith("network: ") or "took longer than" in e:
        return "network"  # refused, reset, DNS, timed out, an answer cut by the deadline
    if e.startswith(("kiosk is not enrolled", "no portal URL")):
        return "not_enrolled"
    if " is unreadable (" in e and "enroll" in e:
        return "state_unreadable"
    if e.startswith("cannot write "):
        return "local_save"
    if re.match(r"config v\d+: ", e):
        return "config"
    if _MISMATCH_CODES.match(e) or "restored from an old backup" in e or e.startswith("portal expects entries"):
        return "mismatch"
    if e.startswith("internal: "):
        return "other"
    if e.startswith("portal answer") or "redirects" in e or "not valid JSON" in e or " is longer than " in e:
        return "bad_answer"
    m = _HTTP_STATUS.match(e)
    if m:
        status = int(m.group(1))
        if status >= 500 or status == 429 or _BUSY_CODES.match(e):
            return "portal_busy"
        return "bad_answer" if status < 400 else "refused"
    return "other"


def measured(item: StatusItem) -> str:
    """The item's value without its :attr:`~StatusItem.detail` (what a screen says in words, the detail apart)."""
    if item.short:
        return item.short
    return item.value.removesuffix(LAST_ERROR + item.detail) if item.detail else item.value


DISK_HINTS: dict[tuple[str, bool], str] = {
    ("red", True): "donations stop when it is full; the movies (media/) take the most room: take the videos this "
                   "kiosk no longer shows out of its playlists on the portal (it then deletes them); clips imported "
                   "by hand stay till removed (`kiosk media list` marks each clip by the playlist the kiosk runs, "
                   "`kiosk media remove SHA` deletes one it does not name), `du -sh DATA_DIR/*` shows the rest",
    ("yellow", True): "free some space soon: the movies (media/) take the most room; take the videos this kiosk no "
                      "longer shows out of its playlists on the portal (it then deletes them)",
    ("red", False): "donations stop when it is full; the movies (media/) take the most room: remove the clips the "
                    "kiosk's playlist does not name (`kiosk media list` marks them -, `kiosk media remove SHA` "
                    "deletes one); `du -sh DATA_DIR/*` shows the rest",
    ("yellow", False): "free some space soon: the movies (media/) take the most room; remove the clips the kiosk's "
                       "playlist does not name (`kiosk media list`, then `kiosk media remove SHA`)",
}
"""What `kiosk status` says of a disk filling up, by (level, a portal configured); the menu says it to staff in
plain words (``kiosk.staff.menu.status_text``)."""


def status_items(x: StatusInputs, limits: StatusSection | None = None) -> list[StatusItem]:
    if limits is None:
        from kiosk.config.staff import StatusSection  # the defaults; the running kiosk passes its own section

        limits = StatusSection()
    lim = limits
    items: list[StatusItem] = []
    add = items.append

    fam = f"; last tap {x.last_family}" if x.last_family else ""
    # The reader's own words (why it was lost, the fix to type for a fault) are for the technician: kept in the
    # value `kiosk status` prints, and apart from the state the menu says in words (short, detail). The reason
    # comes first, then the fix: staff read it out on the phone, and the menu's details line is cut at its end.
    said = "; fix: ".join(w for w in (x.reader_detail, x.reader_fix) if w)
    if x.reader_state == "connected":
        add(StatusItem("reader", "green", f"connected{fam}"))
    elif x.reader_state == "lost":
        add(StatusItem("reader", "yellow", f"reconnecting {said}".strip() + fam,
                       "check the reader's USB cable", detail=said, short=f"reconnecting{fam}"))
    elif x.reader_state in ("fault", "missing"):
        add(StatusItem("reader", "red", (said or x.reader_state) + fam,
                       "run `kiosk doctor` for the exact fix", detail=said, short=x.reader_state + fam))
    else:
        add(StatusItem("reader", "yellow", "unknown", "the reader has not reported yet"))

    levels: dict[str, Level] = {"ready": "green", "busy": "green", "offline": "red", "error": "red"}
    pay = levels.get(x.payment_state or "", "yellow")
    # "error" is the provider refusing the setup (Square: the token, the device's pairing, the location): no cable
    # fixes that. Cables are for a terminal or service that does not answer ("offline") or has not said ("unknown").
    # The adapter's detail is its own English (Square's answer, "last checkout: approved"): the menu says the state
    # in words and shows the detail apart, for the technician (short, detail).
    if x.payment_unused is not None:
        # Not asked: a failed ledger (the ledger row's problem) or no terminal (a setup matter), not the cables.
        what, todo = PAYMENT_UNUSED[x.payment_unused]
        add(StatusItem("payment", "red", what, todo, cause=x.payment_unused))
    else:
        hint = ("" if pay == "green" else PAYMENT_SETUP_HINT if x.payment_state == "error"
                else "check the payment terminal's power and cable")
        attention = SQUARE_ATTENTION.match(x.payment_detail) if x.payment_state == "ready" else None
        if attention:  # ready to be asked, but Square says the terminal itself is off or needs a look
            pay, hint = "yellow", SQUARE_ATTENTION_HINTS[attention["category"]]
        add(StatusItem("payment", pay,
                       (x.payment_state or "unknown") + (f": {x.payment_detail}" if x.payment_detail else ""),
                       hint, detail=x.payment_detail, short=x.payment_state or "unknown"))

    if not x.portal_configured:
        add(StatusItem("network", "green", "offline kiosk (no portal configured)"))
        add(StatusItem("sync", "green", "not used"))
    else:
        kind = error_kind(x.sync_error, x.sync_error_kind)
        # Inputs that take any last error for "portal not reachable" (the running kiosk and `kiosk status` pass
        # portal_reached): not when the error itself says the portal answered, or that nothing was sent because the
        # kiosk is not enrolled.
        reachable = True if x.portal_reachable is False and kind in PORTAL_ANSWERED else x.portal_reachable
        if x.network_up is False:
            add(StatusItem("network", "red", "no network", "check the LAN cable or Wi-Fi"))
        elif kind in NOT_ENROLLED:
            add(StatusItem("network", "red", "kiosk not registered with the portal", SYNC_ERRORS[kind][1],
                           cause=kind))
        elif reachable is False:
            add(StatusItem("network", "yellow", "network up, portal unreachable",
                           "the portal may be down; entries wait"))
        elif x.enrolled is False:
            add(StatusItem("network", "red", "portal reachable, kiosk not enrolled",
                           "enroll the kiosk (see `kiosk doctor`)"))
        elif reachable and x.enrolled:
            add(StatusItem("network", "green", "portal reachable, enrolled"))
        else:
            add(StatusItem("network", "yellow", "unknown"))
        pending = x.pending_entries
        age = x.last_sync_age_s
        ago = "never" if age is None else f"{_duration(age)} ago"
        value = f"last sync {ago}; {pending if pending is not None else '?'} pending"
        stale = lim.sync_stale_min * 60
        if x.ledger_mismatch or kind == "mismatch":
            # Not "press Sync now": no sync can mend it, and every gift taken from here is lost to the portal. Also
            # for an error of the mismatch kind without the uploader's mark (a sync-state.json of a release whose
            # "portal expects entries this ledger does not have" was saved without it): the same red row.
            add(StatusItem("sync", "red", "ledger does not match the portal's copy (restored from an old backup?)",
                           "stop taking donations at this kiosk and call the administrator"))
        elif x.sync_error:
            # Said by its kind, with what to do; the uploader's own words stay at the end for the technician.
            add(StatusItem("sync", "yellow" if pending == 0 else "red", f"{value}{LAST_ERROR}{x.sync_error}",
                           SYNC_ERRORS[kind][1], cause=kind, detail=x.sync_error))
        elif pending == 0:
            add(StatusItem("sync", "green", value))
        elif age is None or pending is None or age >= 4 * stale:
            add(StatusItem("sync", "red" if age is None or age >= 4 * stale else "yellow", value,
                           "entries are safe on the kiosk; check the network, then press Sync now"))
        elif age >= stale:
            add(StatusItem("sync", "yellow", value, "press Sync now"))
        else:
            add(StatusItem("sync", "green", value))

    size = f"{x.ledger_entries} entries, last seq {x.last_seq}" if x.ledger_entries is not None else "unknown"
    if x.ledger_bytes is not None:
        size += f", {_mb(x.ledger_bytes)}"
    if x.ledger_ok is False:
        why = x.ledger_failure if x.ledger_failure in LEDGER_FAILURES else None
        add(StatusItem("ledger", "red", size,
                       LEDGER_FAILURES[why] if why else
                       "donations are stopped; run `kiosk doctor` and call the portal operator", cause=why or ""))
    else:
        add(StatusItem("ledger", "green" if x.ledger_ok else "yellow", size))

    if x.disk_writable is False:
        add(StatusItem("disk", "red", "read-only: nothing can be saved",
                       "donations are stopped; restart the kiosk, and if this stays, call the operator (the SD card "
                       "may be failing)"))
    elif x.disk_free_bytes is None:
        add(StatusItem("disk", "yellow", "unknown"))
    elif x.disk_free_bytes < lim.warn_free_mb * 1_048_576:
        # What fills a kiosk's data partition is its movies (DATA_DIR/media): a USB export goes to the stick and
        # leaves nothing behind, the ledger grows by a few MB a year, the journal (when kept there) is capped.
        # Pushed movies that no playlist of this kiosk names any more are deleted by the kiosk itself.
        red = x.disk_free_bytes < lim.min_free_mb * 1_048_576
        add(StatusItem("disk", "red" if red else "yellow", f"{_mb(x.disk_free_bytes)} free",
                       DISK_HINTS[("red" if red else "yellow", x.portal_configured)]))
    else:
        add(StatusItem("disk", "green", f"{_mb(x.disk_free_bytes)} free"))

    if x.soc_temp_c is None:
        # Many machines expose no SoC sensor: nothing to do about it, so it must not keep the overall yellow.
        add(StatusItem("temperature", "green", "not measured on this machine"))
    else:
        t = f"{x.soc_temp_c:.0f} °C"
        if x.soc_temp_c >= lim.max_temp_c:
            add(StatusItem("temperature", "red", t, "the Pi is throttling: give the case air, check the fan"))
        elif x.soc_temp_c >= lim.warn_temp_c:
            add(StatusItem("temperature", "yellow", t, "keep the case's vents clear"))
        else:
            add(StatusItem("temperature", "green", t))

    add(StatusItem("uptime", "green", _duration(x.uptime_s) if x.uptime_s is not None else "unknown"))
    add(StatusItem("version", "green", x.version or "unknown"))

    if x.dropped_frames_per_min is None:
        add(StatusItem("player", "yellow", "no playback figures yet"))
    else:
        gap = f", switch gap {x.switch_gap_ms:.0f} ms" if x.switch_gap_ms is not None else ""
        value = f"{x.dropped_frames_per_min:.0f} dropped frames/min{gap}"
        bad_gap = x.switch_gap_ms is not None and x.switch_gap_ms >= 400
        if x.dropped_frames_per_min >= 60 or bad_gap:
            add(StatusItem("player", "red", value, "re-import the clips at the panel size (`kiosk media import`)"))
        elif x.dropped_frames_per_min >= 1 or (x.switch_gap_ms or 0) >= 100:
            add(StatusItem("player", "yellow", value, "if it persists, re-import the clips at the panel size"))
        else:
            add(StatusItem("player", "green", value))

    items.extend(x.extra)
    return items


def overall(items: list[StatusItem]) -> Level:
    """The worst level, for the one big dot at the top of the page."""
    return max((i.level for i in items), key=_RANK.__getitem__, default="green")


# --- probes: small readers of system facts, every path injectable -----------------------------------

def read_soc_temp(path: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    """SoC temperature in °C (the file holds millidegrees), or None when absent."""
    try:
        return int(path.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def read_uptime(path: Path = Path("/proc/uptime")) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape_mount(field: str) -> str:
    """A mountinfo path field: the kernel writes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_options(path: Path, mountinfo: Path = MOUNTINFO) -> set[str] | None:
    """The options of the mount holding ``path``, the mount's own (``rw``/``ro``, ...) and its file system's
    (ext4's ``emergency_ro``, ``errors=remount-ro``, ...) together, from ``/proc/self/mountinfo``; None when it
    cannot be read (not Linux, no /proc). The mount is the one with the longest mount point above ``path``,
    the last of those mounted there."""
    try:
        real = os.path.realpath(path)
        lines = mountinfo.read_text(errors="replace").splitlines()
    except OSError:
        return None
    best: tuple[int, set[str]] | None = None
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 6 or len(rest) < 3:
            continue
        point = _unescape_mount(fields[4])
        if not (real == point or real.startswith(point.rstrip("/") + "/")):
            continue
        if best is None or len(point) >= best[0]:
            best = (len(point), set(fields[5].split(",")) | set(rest[2].split(",")))
    return None if best is None else best[1]


READ_ONLY_OPTIONS = frozenset({"ro", "emergency_ro"})
"""Mount options that say nothing can be written: ``ro``, and ``emergency_ro``, what ext4 shows (in the file
system's options of /proc/self/mountinfo and in /proc/mounts) once the kernel turned it read-only after an I/O
error (``errors=remount-ro``: a failing SD card) while the mount itself still says ``rw``."""


def read_disk_writable(path: Path, mountinfo: Path = MOUNTINFO) -> bool | None:
    """Whether the data directory can be written now; None when it is not there or cannot be judged.

    ``access(2)`` and ``statvfs`` alone are not enough: an ext4 the kernel turned read-only after an I/O error
    (``errors=remount-ro``, what a failing SD card does) still says "rw" to both, and every write fails with
    EROFS. So the mount's options are read (:func:`mount_options`: ``ro`` or ``emergency_ro``), and then an empty
    probe file is made and removed in ``path`` (no data, no fsync: a metadata change the journal takes). A full
    disk is not read-only: a probe refused for want of room (ENOSPC, EDQUOT) counts as writable, and the free
    space says the rest. Only for the status page and `kiosk doctor`, when asked: never on the tap path."""
    try:
        if not path.is_dir():
            return None
        if not os.access(path, os.W_OK) or os.statvfs(path).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return None
    opts = mount_options(path, mountinfo)
    if opts is not None and opts & READ_ONLY_OPTIONS:
        return False
    probe = path / f".disk-probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        return False if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO) else None
    try:
        probe.unlink()
    except OSError as exc:
        return False if exc.errno in (errno.EROFS, errno.EIO) else None
    return True


def read_disk_free(path: Path) -> int | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


SYNC_STATE_FILE = "sync-state.json"
"""What the running kiosk's sync thread writes after every round (kiosk/sync/uploader.py ``SyncState.to_json``):
how `kiosk status`, a process of its own, knows what the menu's status page knows."""


SYNC_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "portal_url": (str,), "kiosk_id": (str,), "key_id": (str,), "enrolled_ms": (int, type(None)),
    "accepted_through_seq": (int,), "checkpoint_size": (int,), "local_size": (int,),
    "last_success_ms": (int, type(None)), "last_attempt_ms": (int, type(None)), "last_error": (str, type(None)),
    "last_error_kind": (str, type(None)),
    "config_version_seen": (int,), "config_applied": (int,), "config_staged": (int,), "accepted_known": (bool,),
    "extra": (dict,),
}
"""The type of each field of the uploader's ``SyncState`` in :data:`SYNC_STATE_FILE` (``type(v) in ...``: a bool is
no int here). Stated here, below kiosk.sync, so that the uploader (``SyncState.parse``) and `kiosk status` and
`kiosk doctor` (:func:`read_saved_sync`) take the same files for unreadable: :func:`parse_saved_sync`."""


def parse_saved_sync(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """``(state, unreadable)`` of the bytes of a :data:`SYNC_STATE_FILE`: the JSON object, or None and why it is
    not a sync state (empty, zeros, cut off, JSON of another shape, a field of the wrong type:
    :data:`SYNC_STATE_TYPES`). Keys of another release (and the report-only ``pending``, ``ok``) are not judged.
    The uploader's ``SyncState.parse`` and :func:`read_saved_sync` both read the file through this."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one
        return None, ("empty" if not raw else f"{len(raw)} zero bytes" if not raw.strip(b"\0") else
                      f"{len(raw)} bytes, not JSON: {str(exc)[:80]}")
    if not isinstance(data, dict):
        return None, f"JSON {type(data).__name__}, not an object"
    for k, v in data.items():
        kinds = SYNC_STATE_TYPES.get(k)
        if kinds is not None and type(v) not in kinds:
            return None, f"{k} is {repr(v)[:60]}"
    return data, None


def read_saved_sync(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(state, unreadable)``: the parsed :data:`SYNC_STATE_FILE` at ``path`` (None when there is none yet), or
    why it cannot be read (a power cut on an SD card that lied: empty, zeros, cut off, JSON of another shape or
    with a field of the wrong type). The one reader of the file for `kiosk status` and `kiosk doctor`: kiosk.ops
    may not import kiosk.sync, whose ``SyncState.load`` reads it for the uploader; both judge it by
    :func:`parse_saved_sync`, so what the uploader refuses to sync from, `kiosk status` says is unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{exc.strerror or exc}"
    return parse_saved_sync(raw)


LEDGER_MISMATCH = "ledger_mismatch"
"""The key of ``extra`` the uploader sets when the portal holds another history of this ledger (the uploader's
``LEDGER_MISMATCH``: kiosk.sync is a sibling of kiosk.staff, so the name is stated here; a test holds them equal)."""


def saved_sync_figures(saved: object, last_seq: int | None, now_ms: int) -> dict[str, object]:
    """:class:`StatusInputs`' sync fields from a saved sync state (the parsed ``sync-state.json``, or None when
    there is none yet), as the menu's page reads them from the running sync thread (kiosk/app/staffside.py).

    ``last_seq``: the ledger's newest entry now. Entries written since the last round are pending too: the saved
    ``pending`` counts only up to the ``local_size`` of that round (and is None, "not known", when that round had
    no answer from the portal)."""
    if not isinstance(saved, dict):
        return {}
    extra = saved.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    pending = saved.get("pending")
    local = saved.get("local_size")
    if isinstance(pending, int) and isinstance(local, int) and last_seq is not None:
        pending += max(0, last_seq - local)
    last_ok = saved.get("last_success_ms")
    last_error, config_error = saved.get("last_error"), extra.get("config_error")
    error = last_error or config_error
    # The kind as the uploader saved it (None in a file of an older release: status_items reads it from the words).
    saved_kind = saved.get("last_error_kind") if isinstance(saved.get("last_error_kind"), str) else None
    kind = saved_kind if last_error else "config" if config_error else None
    mismatch = LEDGER_MISMATCH in extra
    return {
        "portal_reachable": portal_reached(str(last_error) if last_error else None, saved_kind),
        "enrolled": saved.get("enrolled_ms") is not None,
        "last_sync_age_s": max(0.0, (now_ms - last_ok) / 1000) if isinstance(last_ok, int) else None,
        "pending_entries": pending if isinstance(pending, int) else None,
        "ledger_mismatch": mismatch,
        "sync_error": str(error) if error else None,
        "sync_error_kind": kind,
    }


class LedgerFigures(TypedDict):
    """What :func:`ledger_figures` measures (fields of :class:`StatusInputs`)."""

    ledger_entries: int | None
    last_seq: int | None
    ledger_bytes: int | None


def ledger_figures(ledger: object) -> LedgerFigures:
    """``ledger_entries``, ``last_seq`` and ``ledger_bytes`` for :class:`StatusInputs` from an open Ledger."""
    size = getattr(ledger, "size", None)
    path = Path(getattr(ledger, "path", ""))
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += (path.parent / (path.name + suffix)).stat().st_size
        except OSError:
            pass
    return {"ledger_entries": size, "last_seq": size, "ledger_bytes": total or None}
