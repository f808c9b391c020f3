"""Payment terminals behind one small seam (see :mod:`kiosk.payment.base` for adapters).

Public API::

    PaymentTerminal            charge(amount_yen, idempotency_key) / lookup(idempotency_key)
    ChargeResult               approved | declined | unknown | not_found
    TerminalUnavailable        raised by lookup() when the provider cannot be asked
    SimulatedTerminal(path, mode=..., slow_ms=...)   the durable simulator (default)
    open_terminal(cfg)         the terminal a KioskConfig names
"""

from __future__ import annotations

from typing import Any

from kiosk.config.payment import PaymentConfig
from kiosk.payment.base import ChargeResult, ChargeStatus, PaymentTerminal, TerminalUnavailable
from kiosk.payment.sim import SIM_MODES, SimMode, SimulatedTerminal

__all__ = [
    "SIM_MODES", "ChargeResult", "ChargeStatus", "PaymentConfig", "PaymentTerminal", "SimMode",
    "SimulatedTerminal", "TerminalUnavailable", "open_terminal", "payment_config",
]


def payment_config(cfg: Any) -> PaymentConfig:
    """The ``[payment]`` section of a KioskConfig."""
    return cfg.payment


def open_terminal(cfg: Any) -> PaymentTerminal:
    """The terminal named in ``cfg`` (a KioskConfig); its state file is resolved against data_dir."""
    pc = payment_config(cfg)
    if pc.terminal == "sim":
        return SimulatedTerminal(cfg.resolve(pc.sim_state), mode=pc.sim_mode, slow_ms=pc.sim_slow_ms,
                                 decline_reason=pc.sim_decline_reason,
                                 default_balance_yen=pc.sim_default_balance_yen)
    raise ValueError(f"unknown payment terminal {pc.terminal!r}")
