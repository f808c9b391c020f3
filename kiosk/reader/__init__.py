"""Card readers: nfcpy, PC/SC and simulated readers behind one interface.

Typical use::

    from kiosk.reader import open_reader, CardPresented
    reader = open_reader(cfg, pepper.token).start()
    event = reader.get_event(timeout=1.0)
    if isinstance(event, CardPresented):
        record = event.record          # TapRecord: family, balance, DonorToken ...
    reader.stop()

The raw IDm never leaves a poll: events carry the keyed donor token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.reader.base import CardReader, ReaderFault, Tokenizer
from kiosk.reader.events import (
    AnyEvent,
    CardPresented,
    CardRemoved,
    EventQueue,
    ReaderConnected,
    ReaderDisconnected,
    ReaderEvent,
    ReadError,
    TapRecord,
)
from kiosk.reader.supervisor import ReaderSupervisor, State
from kiosk.reader.transit import AttributeInfo, HistoryRecord, parse_attribute_block, parse_history_block

if TYPE_CHECKING:
    from kiosk.config.reader import ReaderConfig

__all__ = [
    "AnyEvent", "AttributeInfo", "CardPresented", "CardReader", "CardRemoved", "EventQueue", "HistoryRecord",
    "ReadError", "ReaderConfig", "ReaderConnected", "ReaderDisconnected", "ReaderEvent", "ReaderFault",
    "ReaderSupervisor", "State", "TapRecord", "make_reader", "open_reader", "parse_attribute_block",
    "parse_history_block",
]



def __getattr__(attr: str) -> Any:
    # The [reader] section's model, re-exported on first use: importing it imports pydantic, which `kiosk run`
    # restarted with an unchanged config never does (it runs on the config's plain copy; cold start, #16).
    if attr == "ReaderConfig":
        from kiosk.config.reader import ReaderConfig

        return ReaderConfig
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")

def make_reader(
    config: ReaderConfig,
    tokenizer: Tokenizer,
    *,
    base_dir: Path | None = None,
    events: EventQueue | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CardReader:
    """The backend named in ``config`` (imports nfcpy / pyscard only when chosen)."""
    if config.backend == "sim":
        from kiosk.reader.sim import SimReader

        sim = SimReader(config, tokenizer, clock=clock, events=events)
        if config.sim_script:
            path = Path(config.sim_script)
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            sim.load_script(path.read_text("utf-8"))
        if config.sim_socket:
            sim.serve(config.sim_socket)
        return sim
    if config.backend == "nfcpy":
        from kiosk.reader.nfcpy_backend import NfcpyReader

        return NfcpyReader(config, tokenizer, clock=clock, events=events)
    if config.backend == "pcsc":
        from kiosk.reader.pcsc_backend import PcscReader

        return PcscReader(config, tokenizer, clock=clock, events=events)
    raise ValueError(f"unknown reader backend {config.backend!r}")


def open_reader(cfg: Any, tokenizer: Tokenizer, *, events: EventQueue | None = None) -> ReaderSupervisor:
    """A supervised reader for a ``KioskConfig`` (or a bare ``ReaderConfig``); call ``.start()`` on it."""
    config: ReaderConfig = cfg.reader if hasattr(cfg, "reader") else cfg
    base_dir = getattr(cfg, "base_dir", None)
    return ReaderSupervisor(make_reader(config, tokenizer, base_dir=base_dir, events=events))
