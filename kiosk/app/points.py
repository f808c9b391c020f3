"""Wiring the points exchange into ``kiosk run`` (docs/points.md): the donation service's :class:`PointsDesk`.

- the card: ask the portal (kiosk/sync/pointsync.py) with a short timeout, through an uploader of its own
  (the sync thread's HTTP session is not shared across threads), else the portal's last word. ``ask`` runs
  on the service worker's side thread (``ServiceWorker.off_writer``), never on the ledger writer. An ask that was
  sent but not answered leaves the card nothing here until a later answer (``pointsync.ask`` forgets its word); one
  that never reached the portal (connection refused) leaves the last word. Both the answer
  and the last word are less the points of the card's gifts refunded here that the portal's answer still counts
  (``pointsync.refunded_since``, read from this kiosk's ledger on a read-only connection of the desk's own:
  docs/points.md, "A refund at the same kiosk");
- the pools: those of the pushed config this kiosk applied, re-read at each exchange (a new config with new
  allocations counts at once);
- the areas: the projects of the running config, read at each exchange (a project a push added has its area
  at once: ``adopt_config`` replaces ``cfg.projects``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from kiosk.donation import flow
from kiosk.donation.exchange import PointsDesk, PoolTerms, hexes_of, pools_for, room_by_project
from kiosk.ledger import DonorToken, Ledger
from kiosk.sync import pointsync
from kiosk.sync.configapply import load_applied

log = logging.getLogger(__name__)


def points_desk(cfg: Any) -> PointsDesk:
    uploader: list[Any] = []
    reader: list[Any] = []  # a read-only engine on this kiosk's ledger, made at the first refund check

    def refunded(hexes: list[str], covers: pointsync.Covers | None) -> int:
        if covers is None:
            return 0
        if not reader:
            from kiosk.ledger.store import read_only_engine

            reader.append(read_only_engine(cfg.ledger_path))
        return pointsync.refunded_since(reader[0], hexes, covers)

    def last_word(token: DonorToken) -> int:
        hexes = hexes_of(token)
        try:
            allotted, covers = pointsync.kept(cfg.data_dir, hexes)
            return max(0, allotted - refunded(hexes, covers))
        except Exception as exc:  # noqa: BLE001 - the ledger unreadable here: nothing to spend (fail closed)
            log.error("points: the kept word could not be checked against this kiosk's refunds (%s)", exc)
            return 0

    def ask(token: DonorToken, spent: int) -> tuple[int, int | None]:
        hexes = hexes_of(token)
        try:
            if not uploader:
                from kiosk.sync.uploader import Uploader

                uploader.append(Uploader.from_config(cfg, timeout=(2.0, 3.0)))
            answer = pointsync.ask(uploader[0], token, hexes, spent)
            less = refunded(hexes, answer.covers)  # what the answer just kept covers
            return max(0, answer.allotted - less), answer.balance  # the balance: as the portal knows it
        except Exception as exc:  # noqa: BLE001 - offline or refused: the last word stands (fail closed)
            # pointsync.ask has dropped the card's word already when the ask may have reached the portal (an answer
            # lost: docs/points.md, "A lost answer"): then the last word is none.
            log.info("points: the portal did not answer (%s); using its last word, if it still stands", exc)
            return last_word(token), None

    def pools() -> list[PoolTerms]:
        return pools_for(load_applied(cfg.data_dir), cfg.kiosk.id)

    return PointsDesk(ask=ask, last_word=last_word, pools=pools, areas=_LiveAreas(cfg))


class _LiveAreas(Mapping[str, str]):
    """Project id → policy area of the running config's projects, as they are now. A dict made at start kept
    the start's projects: a project a push added had no area, and a pool given only to some areas refused it
    until a restart."""

    def __init__(self, cfg: Any):
        self._cfg = cfg

    def _now(self) -> dict[str, str]:
        return {p.id: p.area for p in self._cfg.projects}

    def __getitem__(self, project: str) -> str:
        return self._now()[project]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._cfg.projects)


class PointsOffer:
    """The "use your points" button and the amounts it offers, decided again whenever they matter (docs/points.md, "At
    the kiosk"): the app calls :meth:`apply` when the loop or a thank-you comes on screen, when the business day
    changes while it waits, and with every pushed config. Decided once at start-up and at pushes, the button stayed
    on after a pool's last day passed while the kiosk ran, or after this kiosk had given its whole share, and every
    exchange a citizen tried was refused.

    Cheap: the pools are those of the applied config kept in memory (:meth:`use`, not portal-config.json read each
    time), and what this kiosk gave from each comes from its ledger (``pool_left``: one indexed read per pool open
    today and handed to this kiosk)."""

    def __init__(self, cfg: Any, applied: dict[str, Any] | None):
        self._cfg = cfg
        self._pools: list[PoolTerms] = []
        self.day: dt.date | None = None
        """The business day of the last decision (the app decides again when it changes)."""
        self.use(applied)

    def use(self, applied: dict[str, Any] | None) -> None:
        """The pools of the applied config (read at start, or a push just applied)."""
        self._pools = pools_for(applied, self._cfg.kiosk.id)

    def apply(self, settings: flow.FlowSettings, ledger: Ledger, day: dt.date) -> flow.FlowSettings:
        """``settings`` with the button on when some project on offer can take the smallest amount, and each
        project's room (``points_room``: what the choose screen offers)."""
        room = room_by_project(ledger, self._pools, {p.id: p.area for p in self._cfg.projects}, day)
        smallest = min(settings.points_presets, default=1)
        on = any(room.get(pid, 0) >= smallest for pid in settings.projects)
        self.day = day
        return flow.replace(settings, points_exchange=on, points_room=tuple(sorted(room.items())))
