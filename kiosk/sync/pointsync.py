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
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiosk.ledger import DonorToken
from kiosk.ledger.durable import write_atomic

log = logging.getLogger(__name__)

FILE = "points-allotted.json"


# What the file should hold but could not be written, per data dir: the whole of it, newer than the file.
_unwritten: dict[Path, dict[str, int]] = {}
_lock = threading.Lock()


def _load(data_dir: Path) -> dict[str, int]:
    with _lock:
        pending = _unwritten.get(Path(data_dir).absolute())
    if pending is not None:
        return dict(pending)
    path = Path(data_dir) / FILE
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # unreadable: spend nothing from it rather than guess
        log.error("%s is unreadable (%s); no card may spend points here until the portal answers again", path, exc)
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, int) and v >= 0}


def last_word(data_dir: Path, hexes: list[str]) -> int:
    """The portal's last answer for the card (``hexes``: its tokens). :func:`remember` keeps one per card; a file
    written before it did may hold answers under two of its tokens, of which the larger was the newer."""
    held = _load(data_dir)
    return max((held.get(h, 0) for h in hexes), default=0)


def remember(data_dir: Path, hex_: str, allotted: int, hexes: Sequence[str] = ()) -> None:
    """Keep ``allotted`` as the card's last word under its token ``hex_``, dropping what is kept under its other
    tokens ``hexes`` (the answer covers them all)."""
    key = Path(data_dir).absolute()
    held = _load(data_dir)
    others = [h for h in hexes if h != hex_ and h in held]
    with _lock:
        behind = key in _unwritten  # the file is older than what is held: write even an unchanged answer
    if held.get(hex_) == allotted and not others and not behind:
        return
    for h in others:
        del held[h]
    held[hex_] = allotted
    try:
        write_atomic(Path(data_dir) / FILE, json.dumps(held, sort_keys=True).encode())
    except OSError as exc:
        # The portal has handed these points to this kiosk already: losing its answer here would leave them
        # spendable nowhere (other kiosks cannot have them) and show the citizen an older word. Kept in memory.
        with _lock:
            _unwritten[key] = held
        log.error("points: %s could not be written (%s); the portal's answer is kept in memory until it can be",
                  Path(data_dir) / FILE, exc.strerror or exc)
        return
    with _lock:
        _unwritten.pop(key, None)


def ask(uploader: Any, token: DonorToken, hexes: list[str], spent: int | None = None) -> dict[str, int]:
    """Ask the portal (``uploader``: a :class:`kiosk.sync.uploader.Uploader`) and keep its answer. ``spent``:
    the points this kiosk's ledger has spent for the card, some perhaps not synced yet (a take-back never goes
    below them: docs/points.md).

    Raises the uploader's :class:`~kiosk.sync.uploader.SyncError` when the portal refuses; the caller then
    uses :func:`last_word`."""
    doc: dict[str, Any] = {"donors": [token.hex, *[h for h in hexes if h != token.hex]]}
    if spent is not None:
        doc["spent"] = spent
    body = json.dumps(doc).encode()
    status, data, resp = uploader._call("POST", f"/api/v1/kiosks/{uploader.kiosk_id}/points/allot", body)
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("allotted"), int) \
            or data["allotted"] < 0:
        raise uploader._fail(status, data, resp)
    remember(uploader_data_dir(uploader), token.hex, data["allotted"], hexes)
    return {"allotted": data["allotted"], "balance": int(data.get("balance", 0))}


def uploader_data_dir(uploader: Any) -> Path:
    """Where the uploader keeps its files (its config applier's directory: the kiosk's data dir)."""
    return Path(uploader.applier.data_dir)
