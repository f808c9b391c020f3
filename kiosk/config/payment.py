"""The ``[payment]`` config section: which terminal, the simulator's knobs, and ``[payment.square]``."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from kiosk.config import problems as pk
from kiosk.config.base import Section, cross_check

SQUARE_PRODUCTION_URL = "https://connect.squareup.com"
SQUARE_SANDBOX_URL = "https://connect.squareupsandbox.com"

SquarePaymentType = Literal["FELICA_TRANSPORTATION_GROUP", "FELICA_ALL", "QR_CODE", "CARD_PRESENT"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SquareConfig(Section):
    """Square Terminal API (docs/payment.md). Used only when ``[payment] terminal = "square"``."""

    base_url: str = Field(SQUARE_PRODUCTION_URL, pattern=r"^https?://[^\s/]+(:[0-9]+)?/?$")
    """Square API base URL: production ``https://connect.squareup.com``; the sandbox is ``https://connect.squareupsandbox.com``. Must be ``https://`` (the access token goes with every request); ``http://`` only to a test API on this machine (loopback)."""

    @field_validator("base_url")
    @classmethod
    def _tls_off_this_machine(cls, v: str) -> str:
        # The access token goes with every request: over plain HTTP anyone on the way could read it and take or
        # refund money. Plain HTTP only reaches a test API on this machine (a fake Square on loopback).
        if v.startswith("http://") and not _loopback(urlsplit(v).hostname or ""):
            raise ValueError("must start with https:// (production https://connect.squareup.com, sandbox "
                             "https://connect.squareupsandbox.com): over http:// the access token would be sent "
                             "unencrypted")
        return v

    access_token_file: Path = Path("square-token")
    """File holding the Square access token (one line, mode 0600; ``kiosk doctor`` checks). Relative to data_dir."""

    location_id: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,64}$")
    """Square location id of this center (Square Dashboard → Locations, or the Locations API)."""

    device_id: str = Field("", pattern=r"^[A-Za-z0-9_:-]{0,128}$")
    """Paired Square Terminal's device id. ``kiosk payment pair`` fills it in (it is stored in ``device_file``)."""

    device_file: Path = Path("square-device-id")
    """Where ``kiosk payment pair`` stores the paired device id; used when ``device_id`` is empty. Relative to data_dir."""

    payment_type: SquarePaymentType = "FELICA_TRANSPORTATION_GROUP"
    """What the terminal asks the donor for: ``FELICA_TRANSPORTATION_GROUP`` (Suica, PASMO, ICOCA…), ``FELICA_ALL`` (the donor picks the e-money brand), ``QR_CODE`` (PayPay and other wallets) or ``CARD_PRESENT``."""

    deadline_s: int = Field(120, ge=10, le=300)
    """Seconds the terminal waits for the donor (Square's ``deadline_duration``, at most 5 minutes); a checkout still PENDING then is canceled as TIMED_OUT."""

    answer_grace_s: int = Field(30, ge=0, le=300)
    """After the deadline, how long the kiosk keeps following a checkout already IN_PROGRESS before calling the outcome unknown."""

    poll_interval_ms: int = Field(1000, ge=100, le=10_000)
    """Pause between GetTerminalCheckout polls while the donor pays."""

    request_timeout_s: float = Field(10.0, gt=0, le=60)
    """Timeout of one HTTP request to Square."""

    journal: Path = Path("square-journal.db")
    """The adapter's own SQLite file: each create request before it is sent, and what Square answered. Relative to data_dir."""

    note: str = Field("寄付 / donation", max_length=500)
    """Note shown on the terminal and in Square's records for each checkout."""


class PaymentConfig(Section):
    terminal: Literal["sim", "square"] = "sim"
    """Payment terminal: ``sim`` (simulated, the default) or ``square`` (a Square Terminal through the Terminal API; see docs/payment.md)."""

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

    square: SquareConfig = Field(default_factory=SquareConfig)
    """Square Terminal API settings (``[payment.square]``)."""

    @cross_check("terminal", "square.location_id")  # reported beside any other mistake (kiosk/config/base.py)
    def _square_complete(self) -> None:
        if self.terminal == "square" and not self.square.location_id:
            raise pk.CheckFailed(pk.SQUARE_NO_LOCATION, "terminal = \"square\" needs [payment.square] location_id")
