"""The kiosk's side of a card's spendable points (docs/points.md): ask the portal, keep its last word.

``POST /api/v1/kiosks/{id}/points/allot`` (signed like every sync request) hands this kiosk the card's
points no kiosk holds yet and answers the cumulative points this kiosk holds for the card. The answer is
kept in ``<data_dir>/points-allotted.json`` (written atomically: it must survive a power cut, because it
is what the kiosk may spend offline). When the portal cannot be reached the last answer stands; a card
the portal has never answered for here has nothing to spend here (fail closed).

The newest answer is the last word, lower or higher: the portal lowers it when a gift whose points it
handed out was refunded (server_sync/pools.py, ``allot``). The kiosk asks on one thread
(kiosk/app/runtime.py), so answers are kept in the order the portal gave them. An answer covers every token
of the card, so it replaces what is kept under the card's older tokens (a pepper epoch ago).

A file that cannot be written (the data partition full or read-only) does not undo an answer the portal gave:
the portal has already handed those points to this kiosk, so the kiosk keeps the answer in memory, the lookup
shows it and a spend is checked against it, and the file is left as it was (the atomic write leaves no half of
it) until a later answer can be written. A restart before then forgets the answer: the file's older word stands,
which is what the kiosk would have had offline (docs/points.md, "A full disk").

A gift refunded at this kiosk (staff's refund writes a ``void`` into its ledger) after the portal answered still
counts in that answer until the void reaches the portal and the kiosk asks again. So each answer is kept with
how far this kiosk's ledger had gone when it was given (docs/points.md, "A refund at the same kiosk"): ``lo``, what
the portal had acknowledged holding before the ask (``sync-state.json``), and ``hi``, this ledger's size when the
answer came. The portal's answer counted no gift after ``hi`` and every void up to ``lo``; so the points of the
card's gifts up to ``hi`` voided after ``lo`` (:func:`refunded_since`) are taken off the word here, and once a later
answer covers the void (its ``lo`` is past it) they are not taken off again. An answer kept by an older release has
no such marks: it counts as it did then (nothing taken off).

An ask whose answer is lost (docs/points.md, "A lost answer") may have changed the card's figure at the portal: the
portal commits what it hands this kiosk before it answers, and a lower figure (a take-back) hands the difference to
the card's other kiosks. So when the ask was sent and no valid answer came back (a read timeout, the connection
dropped or reset after sending, an answer cut off or malformed, a 5xx), the card's kept word here is unknown: it is
dropped from the file under every token of the card (:func:`forget`), and nothing of the card is spendable here
until a later ask is answered. Only an ask that surely never reached the portal (the uploader's ``SyncError``
marked ``never_sent``: connection refused, the name not found, a connect timeout) or that the portal refused (a
4xx: it refuses before anything is linked or moved) leaves the last word standing. A file that cannot be written
when a word is lowered or dropped is removed instead (:func:`_save`): a restart must not bring the older, higher
figure back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from kiosk.ledger import DonorToken
from kiosk.ledger.durable import fsync_dir, write_atomic

log = logging.getLogger(__name__)

FILE = "points-allotted.json"

MARKS = "ledger_seq"
"""The file's key for what each answer covers: ``{token: [lo, hi]}`` beside the answers ``{token: points}``. Not
a number, so a release before it reads the answers and leaves the marks out (and writes none back)."""

Covers = tuple[int, int]
"""(``lo``, ``hi``): the ledger seqs an answer is known to count every void up to, and no gift after."""


class Answer(NamedTuple):
    """The portal's answer to an ask (:func:`ask`), as kept."""

    allotted: int
    """The points this kiosk holds for the card (kept as its last word)."""
    balance: int
    """The card's balance, as the portal knows it."""
    covers: Covers
    """The ledger seqs kept with the answer (see :data:`Covers`): what :func:`refunded_since` takes off it."""

# What the file should hold but could not be written, per data dir: the whole of it, newer than the file.
_unwritten: dict[Path, tuple[dict[str, int], dict[str, Covers]]] = {}
_lock = threading.Lock()


def _load(data_dir: Path) -> tuple[dict[str, int], dict[str, Covers]]:
    """The kept answers and what each covers (an answer kept without marks has none)."""
    with _lock:
        pending = _unwritten.get(Path(data_dir).absolute())
    if pending is not None:
        return dict(pending[0]), dict(pending[1])
    path = Path(data_dir) / FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError) as exc:  # unreadable: spend nothing from it rather than guess
        log.error("%s is unreadable (%s); no card may spend points here until the portal answers again", path, exc)
        return {}, {}
    held = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, int) and v >= 0}
    marks = raw.get(MARKS)
    covers = {k: (int(v[0]), int(v[1])) for k, v in (marks.items() if isinstance(marks, dict) else ())
              if k in held and isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v)}
    return held, covers


def kept(data_dir: Path, hexes: Sequence[str]) -> tuple[int, Covers | None]:
    """The portal's last answer for the card (``hexes``: its tokens) and the ledger seqs it covers (None: kept by an
    older release, which did not say). :func:`remember` keeps one per card; a file written before it did may hold
    answers under two of its tokens, of which the larger was the newer."""
    held, covers = _load(data_dir)
    words = [(held[h], h) for h in hexes if h in held]
    if not words:
        return 0, None
    best = max(w for w, _ in words)
    marks = [covers.get(h) for w, h in words if w == best]
    if any(m is None for m in marks):
        return best, None
    # Two tokens holding the same word (a file of an older release): the lower marks take off more, never less.
    return best, (min(m[0] for m in marks if m), min(m[1] for m in marks if m))


def last_word(data_dir: Path, hexes: list[str]) -> int:
    """The portal's last answer for the card (``hexes``: its tokens), as kept (see :func:`kept`)."""
    return kept(data_dir, hexes)[0]


def remember(data_dir: Path, hex_: str, allotted: int, hexes: Sequence[str] = (), covers: Covers | None = None) -> None:
    """Keep ``allotted`` as the card's last word under its token ``hex_``, dropping what is kept under its other
    tokens ``hexes`` (the answer covers them all). ``covers``: the ledger seqs (``lo``, ``hi``) the answer counts
    (see the module's doc); None keeps it without them, as an older release did."""
    key = Path(data_dir).absolute()
    held, marks = _load(data_dir)
    others = [h for h in hexes if h != hex_ and h in held]
    with _lock:
        behind = key in _unwritten  # the file is older than what is held: write even an unchanged answer
    if held.get(hex_) == allotted and marks.get(hex_) == covers and not others and not behind:
        return
    before = max((held[h] for h in {hex_, *hexes} if h in held), default=0)
    for h in others:
        del held[h]
        marks.pop(h, None)
    held[hex_] = allotted
    if covers is None:
        marks.pop(hex_, None)
    else:
        marks[hex_] = covers
    _save(data_dir, held, marks, lowered=allotted < before)


def forget(data_dir: Path, hexes: Sequence[str]) -> None:
    """The card's (``hexes``: its tokens) kept word here is unknown: an ask was sent and no valid answer came back,
    and the portal may have lowered it (see the module's doc). Dropped under every token, marks too, so nothing of
    the card is spendable here (:func:`kept` says 0, as for a card never answered) until :func:`remember` keeps a
    later answer. A release before this one reads the file the same way."""
    key = Path(data_dir).absolute()
    held, marks = _load(data_dir)
    gone = [h for h in hexes if h in held]
    with _lock:
        behind = key in _unwritten  # the file may still hold the word (an earlier change could not be written)
    if not gone and not behind:
        return
    for h in gone:
        del held[h]
        marks.pop(h, None)
    log.warning("points: the portal's answer for a card was lost after the ask was sent; nothing of the card is "
                "spendable here until the portal answers again")
    _save(data_dir, held, marks, lowered=True)


def _save(data_dir: Path, held: dict[str, int], marks: dict[str, Covers], lowered: bool) -> None:
    """Write the file whole (atomic). When it cannot be written, what it should hold is kept in memory (the portal
    has handed those points here already: losing a higher answer would leave them spendable nowhere), and the file
    is left as it was: its older word is what the kiosk would have had offline, as long as it is not higher than
    the truth. When ``lowered`` (a word lowered or dropped), it may be: the file is removed instead (a full disk
    still lets a file go), so a restart before the next write finds no word for any card (none spendable here until
    each is asked for again) rather than the older, higher figure."""
    key = Path(data_dir).absolute()
    path = Path(data_dir) / FILE
    doc: dict[str, object] = dict(held)
    if marks:
        doc[MARKS] = {h: list(m) for h, m in marks.items()}
    try:
        write_atomic(path, json.dumps(doc, sort_keys=True).encode())
    except OSError as exc:
        # The portal has handed these points to this kiosk already: losing its answer here would leave them
        # spendable nowhere (other kiosks cannot have them) and show the citizen an older word. Kept in memory.
        with _lock:
            _unwritten[key] = (held, marks)
        log.error("points: %s could not be written (%s); the portal's answer is kept in memory until it can be",
                  path, exc.strerror or exc)
        if lowered:
            try:
                os.unlink(path)
                fsync_dir(path.parent)
            except FileNotFoundError:
                pass
            except OSError as gone:
                log.error("points: %s could not be removed either (%s); a restart before it is written would "
                          "bring back a card's older, higher word", path, gone.strerror or gone)
            else:
                log.error("points: %s removed: after a restart before the next answer is kept, no card may spend "
                          "points here until the portal answers for it again", path)
        return
    with _lock:
        _unwritten.pop(key, None)


def ask(uploader: Any, token: DonorToken, hexes: list[str], spent: int | None = None) -> Answer:
    """Ask the portal (``uploader``: a :class:`kiosk.sync.uploader.Uploader`) and keep its answer, which is
    returned with the ledger seqs kept with it (no need to read the file back). ``spent``:
    the points this kiosk's ledger has spent for the card, some perhaps not synced yet (a take-back never goes
    below them: docs/points.md).

    Raises the uploader's :class:`~kiosk.sync.uploader.SyncError` (or what its request raised) when there is no
    answer; the caller then uses :func:`last_word`. Before raising, a card whose ask was sent but not validly
    answered is forgotten (:func:`forget`: its word is unknown); one whose ask surely never reached the portal
    (:func:`never_sent`), or that the portal refused (4xx), keeps its last word. Fail closed: any other failure
    is an outcome unknown."""
    card = [token.hex, *[h for h in hexes if h != token.hex]]
    doc: dict[str, Any] = {"donors": card}
    if spent is not None:
        doc["spent"] = spent
    body = json.dumps(doc).encode()
    lo = _acknowledged(uploader)  # before the ask: the portal held at least this much of the ledger when it answered
    data_dir = uploader_data_dir(uploader)
    try:
        status, data, resp = uploader._call("POST", f"/api/v1/kiosks/{uploader.kiosk_id}/points/allot", body)
    except Exception as exc:
        if not never_sent(exc):
            forget(data_dir, card)
        raise
    if 400 <= status < 500:  # the portal's refusal, made before anything is linked or moved: the last word stands
        raise uploader._fail(status, data, resp)
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("allotted"), int) \
            or data["allotted"] < 0:
        forget(data_dir, card)  # a 5xx (perhaps after the portal committed), a 3xx, a 2xx that is not the answer
        raise uploader._fail(status, data, resp)
    hi = uploader.source.size()  # after the answer: the portal held at most this much
    remember(data_dir, token.hex, data["allotted"], hexes, (lo, hi))
    return Answer(data["allotted"], int(data.get("balance", 0)), (lo, hi))


def never_sent(exc: BaseException) -> bool:
    """Whether a failed ask surely never reached the portal: only a ``SyncError`` the uploader marked so where it
    caught requests' exception (kiosk/sync/uploader.py, ``_call_once``: the connection was never made). Anything
    else (a read timeout, a reset after sending, a cut or malformed answer, a redirect, an error raised elsewhere)
    is an outcome unknown: the safe reading."""
    from kiosk.sync.uploader import SyncError

    return isinstance(exc, SyncError) and exc.never_sent is True


def _acknowledged(uploader: Any) -> int:
    """What the portal last acknowledged holding of this ledger, read from ``sync-state.json`` now (the sync thread
    saves it after each round; the uploader that asks is not the one that uploads). 0 when the file cannot say:
    then every local void counts as one the portal has not seen (fail closed)."""
    from kiosk.sync.uploader import SyncState

    state = SyncState.load(Path(uploader.state_path))
    return max(0, int(state.accepted_through_seq)) if state.unreadable is None else 0


def refunded_since(engine: Any, hexes: Sequence[str], covers: Covers | None) -> int:
    """Points of the card's gifts (``hexes``: its tokens) that an answer covering ``covers`` may still count though
    this ledger has voided them: gifts up to ``hi`` whose void comes after ``lo``. ``engine``: a reader of this
    kiosk's ledger (``kiosk.ledger.store.read_only_engine``). One indexed read of the voids after ``lo`` (a kiosk
    writes a few a month). 0 for an answer without marks (kept by an older release)."""
    if covers is None or not hexes:
        return 0
    from sqlalchemy import func, select

    from kiosk.ledger.schema import entries

    lo, hi = covers
    void, gift = entries.alias("v"), entries.alias("d")
    q = (select(func.coalesce(func.sum(gift.c.points), 0))
         .select_from(void.join(gift, gift.c.seq == void.c.ref_seq))
         .where(void.c.type == "void", void.c.seq > lo, gift.c.type == "donation", gift.c.seq <= hi,
                gift.c.donor.in_(list(hexes))))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def uploader_data_dir(uploader: Any) -> Path:
    """Where the uploader keeps its files (its config applier's directory: the kiosk's data dir)."""
    return Path(uploader.applier.data_dir)
