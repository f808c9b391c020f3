"""The ``[payment]`` config section: which terminal, and the simulator's knobs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from kiosk.config.base import Section


class PaymentConfig(Section):
    terminal: Literal["sim"] = "sim"
    """Payment terminal: ``sim`` (simulated, the default). Certified-terminal adapters plug in here (see docs/donation.md)."""

    sim_state: Path = Path("payment-sim.db")
    """The simulated terminal's own SQLite file (its charges and card balances). Relative to data_dir."""

    sim_mode: Literal["approve", "decline", "timeout_applied", "timeout_lost", "offline"] = "approve"
    """Simulator behaviour: ``approve``; ``decline`` every charge; ``timeout_applied`` (charged, answer lost); ``timeout_lost`` (not charged, no answer); ``offline`` (no answer, lookups fail)."""

    sim_decline_reason: str = "declined by the card issuer"
    """Reason the simulator gives in ``decline`` mode (recorded in donation_failed entries)."""

    sim_slow_ms: int = Field(0, ge=0, le=60_000)
    """Extra delay before the simulator answers a charge, after the charge is durable."""

    sim_default_balance_yen: int = Field(2000, ge=0, le=20_000)
    """Balance a simulated card starts with when the reader could not read one."""

    lookup_attempts: int = Field(3, ge=1, le=20)
    """After a charge times out, how many times to ask the terminal what became of it before leaving it to start-up."""

    lookup_interval_ms: int = Field(200, ge=0, le=10_000)
    """Pause between those lookups."""
