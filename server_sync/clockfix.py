"""Correcting kiosk times per boot.

A Pi without an RTC boots at its last saved time and may run unsynchronised for a while. Every entry
carries ``boot``, ``mono_ms`` (time since the OS booted) and ``wall_ms`` with ``clock_synced``.
Within one boot, ``wall - mono`` is constant once the clock is right, so one good observation fixes
the whole boot: ``epoch = real wall time at mono 0`` and ``time = epoch + mono_ms``.

Observations, best first:

- ``ntp``: an entry (or heartbeat) of that boot written with ``clock_synced`` true: ``epoch = wall - mono``.
- ``portal``: a heartbeat of that boot with an unsynced clock: ``epoch = portal time - mono``. The
  network delay only makes this later, so the smallest estimate seen is kept.

A heartbeat whose ``mono_ms`` is below what the boot already reached comes from a later OS boot
that has not written an entry yet, and is ignored. Pure: no I/O.

A clock claim is a signed statement of a kiosk whose key may be stolen, so it re-times nothing the
portal's own clock contradicts: a heartbeat is sent as it is made, so its ``clock_synced`` claim counts
only when its ``wall_ms`` is within :data:`CLAIM_TOLERANCE_MS` of the portal's receive time (else it is
an unsynced heartbeat: ``portal``); an entry was written before the portal received it, so a synced
entry whose ``wall - mono`` puts mono 0 after ``received - mono`` (more than the tolerance) is not used
for the boot's epoch. One signed entry with ``clock_synced: true, wall_ms: 0`` is also quarantined by
the policy on ingest (server_sync/policy.py), and a quarantined entry's clock is never observed.

Not a clock: nothing here tells the time. The kiosk's time source is ``kiosk.ledger.clock.Clock``
(what an entry records when it is written); this module is the portal's later judgement of those
recorded values, per boot, and so stays on the portal side.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far a synced kiosk clock may disagree with the portal's (the signed-request window, protocol.py).
CLAIM_TOLERANCE_MS = 300_000


@dataclass
class BootClock:
    epoch_ms: int | None = None
    source: str | None = None
    max_mono_ms: int = 0
    changed: bool = False  # epoch learned or improved: re-time stored unsynced entries of this boot

    def observe_entry(self, mono_ms: int, wall_ms: int, synced: bool, received_ms: int | None = None) -> None:
        self.max_mono_ms = max(self.max_mono_ms, mono_ms)
        if synced and self.source != "ntp":
            if received_ms is not None and wall_ms > received_ms + CLAIM_TOLERANCE_MS:
                return  # written after the portal received it: a claim the portal's clock contradicts
            self._set(wall_ms - mono_ms, "ntp")

    def observe_heartbeat(self, mono_ms: int, wall_ms: int, synced: bool, portal_ms: int) -> None:
        if mono_ms < self.max_mono_ms or self.source == "ntp":
            return
        self.max_mono_ms = mono_ms
        if synced and abs(wall_ms - portal_ms) <= CLAIM_TOLERANCE_MS:
            self._set(wall_ms - mono_ms, "ntp")
        else:
            candidate = portal_ms - mono_ms
            if self.epoch_ms is None or candidate < self.epoch_ms:
                self._set(candidate, "portal")

    def _set(self, epoch: int, source: str) -> None:
        if (epoch, source) != (self.epoch_ms, self.source):
            self.epoch_ms, self.source, self.changed = epoch, source, True

    def time_of(self, mono_ms: int, wall_ms: int, synced: bool) -> tuple[int, bool]:
        """(corrected time, whether it is known to be right)."""
        if synced:
            return wall_ms, True
        if self.epoch_ms is not None:
            return self.epoch_ms + mono_ms, True
        return wall_ms, False
