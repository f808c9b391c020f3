"""Payment terminals behind one small seam (see :mod:`kiosk.payment.base` for adapters).

Public API::

    PaymentTerminal            charge(amount_yen, idempotency_key) / lookup(idempotency_key)
    ChargeResult               approved | declined | unknown | not_found
    TerminalUnavailable        raised by lookup() when the provider cannot be asked
    SimulatedTerminal(path, mode=..., slow_ms=...)   the durable simulator (default)
    SquareTerminal(...)        a Square Terminal through the Terminal API (kiosk.payment.square)
    open_terminal(cfg)         the terminal a KioskConfig names
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiosk.payment.base import (
    ChargeResult,
    ChargeStatus,
    PaymentTerminal,
    RefundRefused,
    RefundResult,
    TerminalProgress,
    TerminalUnavailable,
)
from kiosk.payment.sim import SIM_MODES, SimMode, SimulatedTerminal

if TYPE_CHECKING:
    from kiosk.config.payment import PaymentConfig

__all__ = [
    "SIM_MODES", "ChargeResult", "ChargeStatus", "PaymentConfig", "PaymentTerminal", "RefundRefused", "RefundResult",
    "SimMode",
    "SimulatedTerminal", "TerminalProgress", "TerminalUnavailable", "open_terminal", "payment_config",
    "square_device_id",
]



def __getattr__(attr: str) -> Any:
    # The [payment] section's model, re-exported on first use: importing it imports pydantic, which `kiosk run`
    # restarted with an unchanged config never does (it runs on the config's plain copy; cold start, #16).
    if attr == "PaymentConfig":
        from kiosk.config.payment import PaymentConfig

        return PaymentConfig
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")

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
    if pc.terminal == "square":
        from kiosk.payment.square import SquareTerminal, read_token  # the SDK loads only when it is used

        sq = pc.square
        return SquareTerminal(
            base_url=sq.base_url, token=read_token(cfg.resolve(sq.access_token_file)), location_id=sq.location_id,
            device_id=square_device_id(cfg), journal=cfg.resolve(sq.journal), payment_type=sq.payment_type,
            deadline_s=sq.deadline_s, answer_grace_s=sq.answer_grace_s, poll_interval_ms=sq.poll_interval_ms,
            request_timeout_s=sq.request_timeout_s, note=sq.note, reference_prefix=cfg.kiosk.id)
    raise ValueError(f"unknown payment terminal {pc.terminal!r}")


def square_device_id(cfg: Any) -> str:
    """``[payment.square] device_id``, else the id ``kiosk payment pair`` stored in ``device_file`` ('' if none)."""
    sq = payment_config(cfg).square
    if sq.device_id:
        return str(sq.device_id)
    try:
        return cfg.resolve(sq.device_file).read_text("utf-8").strip()
    except OSError:
        return ""
