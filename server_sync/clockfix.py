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
only when its ``wall_ms`` is at most :data:`HEARTBEAT_DELAY_MS` before, and :data:`CLAIM_TOLERANCE_MS`
after, the portal's receive time (else it is an unsynced heartbeat: ``portal``); an entry was written
before the portal received it, so a synced entry whose ``wall - mono`` puts mono 0 after
``received - mono`` (more than the tolerance) is not used for the boot's epoch. Heartbeats also give
the epoch a floor (a heartbeat reaches the portal within :data:`HEARTBEAT_DELAY_MS` of being made), and
a synced claim outside ``[floor, portal estimate]`` (with the tolerance) is not taken: after one honest
heartbeat, no later claim moves a boot's epoch by more than minutes. One signed entry with
``clock_synced: true, wall_ms: 0`` is also quarantined by the policy on ingest (server_sync/policy.py),
and a quarantined entry's clock is never observed.

**The bound** (docs/sync.md, "Clocks: what a claim can move"). Whatever a boot's epoch says, an entry's
corrected time is clamped by what the portal saw and what the entry itself said when it was signed
(:func:`bounded`): never after the portal received it (``received_ms``), and, for an unsynced entry,
never before its own ``wall_ms``: an unsynced kiosk clock restarts from a saved time and only runs
behind real time, so a later correction may move an entry forward, toward its receipt, never back
past its own reading. So a later clock claim, true or forged, moves an unsynced entry only inside
``[wall_ms, received_ms]`` and a synced one not at all (its time is ``min(wall_ms, received_ms)``).

Not a clock: nothing here tells the time. The kiosk's time source is ``kiosk.ledger.clock.Clock``
(what an entry records when it is written); this module is the portal's later judgement of those
recorded values, per boot, and so stays on the portal side.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far a synced kiosk clock may disagree with the portal's (the signed-request window, protocol.py).
CLAIM_TOLERANCE_MS = 300_000
# How long before the portal receives a heartbeat its body (its mono_ms) was made, at most: the signed
# request's Kiosk-Created lies within 300 s of the portal's clock (protocol.MAX_CLOCK_SKEW_S), and the
# kiosk's idea of the portal's clock (the offset it keeps from answers) may be off by as much again.
HEARTBEAT_DELAY_MS = 2 * CLAIM_TOLERANCE_MS


@dataclass
class BootClock:
    """What the portal knows of one (kiosk, boot)'s epoch: ``epoch_ms`` (the value used) learned from
    ``source``, and ``floor_ms``, the earliest the epoch can be by the portal's own clock (from the
    heartbeats: see :meth:`observe_heartbeat`). With ``source == "portal"``, ``epoch_ms`` is also the
    latest it can be. A claim outside ``[floor_ms, epoch_ms]`` (with the tolerance) is contradicted by
    what the portal saw first, and changes nothing."""

    epoch_ms: int | None = None
    source: str | None = None
    max_mono_ms: int = 0
    floor_ms: int | None = None
    changed: bool = False  # epoch learned or improved: re-time stored unsynced entries of this boot

    def observe_entry(self, mono_ms: int, wall_ms: int, synced: bool, received_ms: int | None = None) -> None:
        self.max_mono_ms = max(self.max_mono_ms, mono_ms)
        if synced and self.source != "ntp":
            if received_ms is not None and wall_ms > received_ms + CLAIM_TOLERANCE_MS:
                return  # written after the portal received it: a claim the portal's clock contradicts
            self._claim(wall_ms - mono_ms)

    def observe_heartbeat(self, mono_ms: int, wall_ms: int, synced: bool, portal_ms: int) -> None:
        """A heartbeat made at the kiosk's ``mono_ms`` reached the portal at ``portal_ms``: the epoch is at most
        ``portal_ms - mono_ms`` (the kiosk had been up that long) and at least that minus
        :data:`HEARTBEAT_DELAY_MS`. A heartbeat whose interval misses the one the portal already holds
        (a forged mono, or a later OS boot) is ignored whole."""
        if mono_ms < self.max_mono_ms or self.source == "ntp":
            return
        high = portal_ms - mono_ms
        low = high - HEARTBEAT_DELAY_MS
        if (self.floor_ms is not None and high < self.floor_ms) or (
                self.source == "portal" and self.epoch_ms is not None and low > self.epoch_ms):
            return
        self.max_mono_ms = mono_ms
        if self.floor_ms is None or low > self.floor_ms:
            self.floor_ms = low
        if synced and -CLAIM_TOLERANCE_MS <= portal_ms - wall_ms <= HEARTBEAT_DELAY_MS \
                and self._claim(wall_ms - mono_ms):
            return
        if self.epoch_ms is None or high < self.epoch_ms:
            self._set(high, "portal")

    def _claim(self, epoch: int) -> bool:
        """A synced clock's epoch, taken only inside what the portal's clock allows (with the tolerance)."""
        if self.floor_ms is not None and epoch < self.floor_ms - CLAIM_TOLERANCE_MS:
            return False  # earlier than a heartbeat proved the boot had already started
        if self.source == "portal" and self.epoch_ms is not None and epoch > self.epoch_ms + CLAIM_TOLERANCE_MS:
            return False  # later than a heartbeat proved the kiosk was already up
        self._set(epoch, "ntp")
        return True

    def _set(self, epoch: int, source: str) -> None:
        if (epoch, source) != (self.epoch_ms, self.source):
            self.epoch_ms, self.source, self.changed = epoch, source, True

    def time_of(self, mono_ms: int, wall_ms: int, synced: bool,
                received_ms: int | None = None) -> tuple[int, bool]:
        """(corrected time, whether it is known to be right), within :func:`bounded` when ``received_ms``
        (the portal's receive time of the entry) is given."""
        if synced:
            t, fixed = wall_ms, True
        elif self.epoch_ms is not None:
            t, fixed = self.epoch_ms + mono_ms, True
        else:
            t, fixed = wall_ms, False
        return (t if received_ms is None else bounded(t, wall_ms, synced, received_ms)), fixed


def bounded(t: int, wall_ms: int, synced: bool, received_ms: int) -> int:
    """``t`` (a corrected time) clamped to what an entry's own record and its receipt allow.

    Upper: the portal's receive time (an entry is written before it is sent). Lower, for an unsynced
    entry: its own ``wall_ms`` (an unsynced clock runs from a saved time, behind real time). The upper
    bound wins when the two cross (an unsynced clock ahead of the portal's). ingest.py re-times stored
    rows with the same rule in SQL (``_bounded_sql``); the two must agree.
    """
    if not synced and t < wall_ms:
        t = wall_ms
    return min(t, received_ms)
