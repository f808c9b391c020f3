"""Config sections for staff operations: ``[staff]``, ``[closeout]``, ``[volunteer]``, ``[export]``, ``[status]``.

They are :class:`~kiosk.config.base.Section` models the root :class:`~kiosk.config.KioskConfig` holds like
any other section; :func:`ops_settings` (in :mod:`kiosk.config.plain`, re-exported here) gathers them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidatorFunctionWrapHandler, field_validator

from kiosk.config import problems as pk
from kiosk.config.base import Section, check_items, cross_check
from kiosk.config.plain import OpsSettings, VolunteerRules, ops_settings

__all__ = ["Activity", "CloseoutSection", "ExportSection", "OpsSettings", "StaffSection", "StatusSection",
           "VolunteerSection", "ops_settings"]

TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
PIN_HASH_RE = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")


class StaffSection(Section):
    pin_hash: str = ""
    """Salted scrypt hash of the menu PIN, the line printed by ``kiosk staff set-pin``. Never the PIN itself. Empty: the hidden gesture asks for no PIN and the menu opens only with a staff card."""

    staff_tokens: list[str] = Field(default_factory=list)
    """Donor tokens (32 hex digits) of the staff cards that open the menu, as printed by ``kiosk staff card``. A card registered under an older pepper epoch still counts (every epoch the kiosk holds is checked)."""

    free_attempts: int = Field(3, ge=1, le=10)
    """Wrong PINs allowed before the menu locks."""

    lockout_base_s: int = Field(30, ge=1, le=3600)
    """First lock after ``free_attempts`` wrong PINs, in seconds; each further wrong PIN doubles it."""

    lockout_max_s: int = Field(900, ge=1, le=86400)
    """Longest lock, in seconds."""

    idle_timeout_s: int = Field(300, ge=30, le=3600)
    """The menu closes itself (back to the attract loop) after this many seconds without a touch or key."""

    @field_validator("pin_hash")
    @classmethod
    def _pin_hash(cls, v: str) -> str:
        if v and not PIN_HASH_RE.match(v):
            raise ValueError("pin_hash must be the scrypt$... line printed by `kiosk staff set-pin`, "
                             "never the PIN itself")
        return v

    @field_validator("staff_tokens")
    @classmethod
    def _tokens(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not TOKEN_RE.match(t)]
        if bad:
            raise ValueError(f"staff tokens are 32 lowercase hex digits (from `kiosk staff card`), got {bad}")
        return v

    @cross_check("lockout_base_s", "lockout_max_s")  # reported beside any other mistake (kiosk/config/base.py)
    def _lockout_order(self) -> None:
        if self.lockout_max_s < self.lockout_base_s:
            raise pk.CheckFailed(pk.LOCKOUT_ORDER,
                                 f"lockout_max_s {self.lockout_max_s} is below lockout_base_s {self.lockout_base_s}",
                                 base=self.lockout_base_s, max=self.lockout_max_s)


class CloseoutSection(Section):
    auto: bool = True
    """``kiosk closeout`` without ``--date`` (the nightly timer) writes a Z report for every ended business day that has donations and no close-out yet."""

    lookback_days: int = Field(31, ge=1, le=366)
    """How many ended business days the automatic close-out looks back for days left open (kiosk switched off at night)."""


class Activity(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    """Activity identifier recorded in the ``points_grant`` entry, e.g. ``park-cleanup``."""

    title: str = Field(min_length=1)
    """Japanese name shown on the menu."""

    title_en: str = ""
    """English name (falls back to ``title``)."""

    points: int = Field(10, ge=1)
    """Points offered by default for this activity."""

    max_points: int = Field(100, ge=1)
    """Most points one grant for this activity may give."""

    @cross_check("points", "max_points")  # reported beside any other mistake (kiosk/config/base.py)
    def _default_within_max(self) -> None:
        if self.points > self.max_points:
            raise pk.CheckFailed(pk.POINTS_OVER_MAX, f"points {self.points} exceeds max_points {self.max_points}",
                                 points=self.points, max=self.max_points)


class VolunteerSection(VolunteerRules, Section):
    activities: list[Activity] = Field(default_factory=list)
    """Volunteer activities staff can grant points for ([[volunteer.activities]] tables). Empty: the menu item is hidden."""

    daily_limit_per_card: int = Field(300, ge=1)
    """Most volunteer points one card (donor token) may receive per business day."""

    rules_version: int = Field(0, ge=0)
    """Version of the portal's written point rules the activities come from (set by a pushed config; 0: this
    file's own activities). Under rules, each activity's points are fixed and each grant records the version."""

    @field_validator("activities", mode="wrap")
    @classmethod
    def _unique(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> list[Activity]:
        # Wrapped (kiosk/config/base.py): duplicates are reported beside a mistake in another activity too.
        return check_items(v, handler, Activity, ("id",), _unique_activity_ids)


def _unique_activity_ids(activities: list[Any]) -> None:
    repeats = pk.repeats(activities)  # None in the list: an entry whose id is itself wrong (check_items)
    if repeats:
        raise pk.CheckFailed(pk.DUPLICATE_IDS, f"duplicate activity ids: {sorted({r[2] for r in repeats})}",
                             repeats=repeats)


class ExportSection(Section):
    mount_roots: list[str] = Field(default_factory=lambda: ["/media", "/run/media"])
    """Where USB sticks get mounted; a stick is a removable-filesystem mount point below one of these."""

    journal_unit: str = "kiosk.service"
    """systemd unit whose journal is exported as the day's log (card IDs redacted)."""


class StatusSection(Section):
    min_free_mb: int = Field(200, ge=1)
    """Disk free below this is red on the status page (and a ``kiosk doctor`` failure)."""

    warn_free_mb: int = Field(1024, ge=1)
    """Disk free below this is yellow."""

    warn_temp_c: int = Field(70, ge=30, le=110)
    """SoC temperature (°C) from which the status page shows yellow."""

    max_temp_c: int = Field(80, ge=30, le=110)
    """SoC temperature (°C) from which it shows red; the Pi throttles at 80–85 °C."""

    sync_stale_min: int = Field(60, ge=1)
    """Minutes since the last successful sync, with entries pending, before the sync item turns yellow; four times this turns it red."""
