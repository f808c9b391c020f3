"""The ``[reader]`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from kiosk.config.base import Section


class ReaderConfig(Section):
    backend: Literal["sim", "nfcpy", "pcsc"] = "sim"
    """Which card reader to use: ``sim`` (simulated), ``nfcpy`` (Sony RC-S380/S370) or ``pcsc`` (RC-S300, ACR1252U via pcscd)."""

    device: str = "usb"
    """nfcpy device path (``usb``, ``usb:054c:06c3``) or a PC/SC reader-name substring for ``pcsc``."""

    cooldown_ms: int = Field(3000, ge=0, le=60000)
    """A card re-tapped within this many milliseconds of when it was last on the reader counts as the same tap."""

    position: Literal["below-right", "below-center", "below-left", "right", "left"] = "below-right"
    """Where the card reader sits on the cabinet, seen by a citizen facing the screen: the screens point
    there with "ここにタッチ" and an arrow. ``below-*``: under the screen; ``right``/``left``: beside it."""

    reader_id: str = Field("reader-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
    """Name of this reader in tap records and logs (useful when a kiosk has two)."""

    poll_interval_ms: int = Field(50, ge=10, le=1000)
    """Time between polls. A poll takes about 2 ms on air; 50 ms keeps taps snappy without hogging USB."""

    removal_misses: int = Field(3, ge=1, le=50)
    """A card counts as removed only after this many polls in a row miss it (cards at the edge flicker)."""

    extra_system_codes: list[int] = Field(default_factory=lambda: [0xFE00], max_length=4)
    """Other FeliCa systems to poll (on one idle cycle in four) after 0x0003 finds nothing. The default 0xFE00 (the common area of WAON, Edy, nanaco) lets a non-transit card get the "not a transit IC card" screen instead of no response; ``[]`` turns that off. Taps on them have family ``unknown``. Wildcards (0xFFFF) are refused: they wake phone wallets."""

    history_blocks: int = Field(3, ge=0, le=20)
    """How many recent history entries (service 0x090F) to read per tap; 0 reads only the balance."""

    detect_family: bool = True
    """Send one Request Service to tell Suica, PASMO, ICOCA … apart (best effort; adds about 3 ms)."""

    sim_socket: str = ""
    """Simulator control socket: ``tcp:127.0.0.1:PORT`` (PORT 0 picks one) or ``unix:/path``. Empty: none."""

    sim_script: str = ""
    """Simulator script file (one ``SECONDS ACTION ARGS`` line per event), played from start-up. Empty: none."""

    @field_validator("extra_system_codes")
    @classmethod
    def _no_wildcards(cls, v: list[int]) -> list[int]:
        for sc in v:
            if not 0 <= sc <= 0xFFFF:
                raise ValueError(f"system code {sc} is not 16 bits")
            if (sc >> 8) == 0xFF or (sc & 0xFF) == 0xFF:
                raise ValueError(f"system code 0x{sc:04X} is a wildcard; it wakes phone wallets")
            if sc == 0x0003:
                raise ValueError("0x0003 is always polled first; do not list it")
        if len(set(v)) != len(v):
            raise ValueError("duplicate system codes")
        return v

    @field_validator("sim_socket")
    @classmethod
    def _socket_form(cls, v: str) -> str:
        if v and not (v.startswith("tcp:") or v.startswith("unix:")):
            raise ValueError("use tcp:127.0.0.1:PORT or unix:/path")
        if v.startswith("tcp:"):
            host, _, port = v[4:].rpartition(":")
            if host not in ("127.0.0.1", "localhost") or not port.isdigit():
                raise ValueError("the simulator socket only listens on loopback: tcp:127.0.0.1:PORT")
        return v
