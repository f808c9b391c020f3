"""Everything the menu acts on, injected by the app: the ledger writer and staff gate, and one callable per
machine action.

The menu reads the ledger on its own threads but appends only through ``writer`` (in ``kiosk run`` the
service worker; in tests an :class:`~kiosk.ledger.writer.InlineWriter`).

The menu never reaches into the app, the player or the uploader itself, so
the same screens run in tests with fakes, and nothing here can reboot a
developer's machine: commands go through ``run_command``, which tests replace.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol, TypeVar

from kiosk.config.player import PlaylistItem
from kiosk.config.staff import OpsSettings
from kiosk.ledger import Ledger
from kiosk.ledger.writer import LedgerWriter
from kiosk.ops.status import (
    StatusInputs,
    ledger_figures,
    read_disk_free,
    read_disk_writable,
    read_soc_temp,
    read_uptime,
)
from kiosk.payment.base import RefundResult
from kiosk.staff.gate import StaffGate
from kiosk.staff.usb_export import ExportResult, Stick, export_day, find_sticks, journal_lines, newest_day

T = TypeVar("T")

POWER_COMMANDS: dict[str, list[str]] = {
    "reboot": ["systemctl", "reboot"],
    "poweroff": ["systemctl", "poweroff"],
}
"""Allowed for the ``kiosk`` user by systemd/50-kiosk-power.rules (polkit), and nothing else."""


class SyncInfo(Protocol):
    """The part of the uploader's ``SyncState`` the sync page shows."""

    last_success_ms: int | None
    last_error: str | None

    @property
    def pending(self) -> int | None: ...


def run_inline(fn: Callable[[], T]) -> Future[T]:
    """Run ``fn`` now and hand back a finished future (the default; tests rely on it being synchronous)."""
    fut: Future[T] = Future()
    try:
        fut.set_result(fn())
    except Exception as exc:  # the menu shows it; it must not escape into the render loop
        fut.set_exception(exc)
    return fut


def run_command(argv: list[str]) -> None:
    """Run a power command; a refusal (polkit, missing systemctl) raises, so the menu can show it."""
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


@dataclass
class MenuServices:
    writer: LedgerWriter
    """Appends go through here; reads use :attr:`ledger` (the writer's ledger)."""
    gate: StaffGate
    ops: OpsSettings
    titles: dict[str, str] = field(default_factory=dict)
    """Project id -> Japanese title, for reports and the playlist."""
    titles_en: dict[str, str] = field(default_factory=dict)
    language: Callable[[], str] = lambda: "ja"
    """The kiosk's current default language; the menu follows it."""
    set_language: Callable[[str], None] | None = None
    status_inputs: Callable[[], StatusInputs] | None = None
    """Fresh measurements for the status page; None: the ledger and system probes only."""
    sync_now: Callable[[], str] | None = None
    """Upload now; returns one short line for the screen (raise on failure). None hides the page."""
    sync_state: Callable[[], SyncInfo | None] | None = None
    playlist: Callable[[], Sequence[PlaylistItem]] = lambda: ()
    """The full configured playlist (``cfg.player.playlist``), disabled clips included."""
    apply_playlist: Callable[[list[PlaylistItem]], None] | None = None
    """Play exactly these items from the next clip boundary (the app calls ``Player.reload``)."""
    reload_playlist: Callable[[], Sequence[PlaylistItem]] | None = None
    """Fetch the playlist from the portal and return it. None hides the button."""
    volume: Callable[[], int] = lambda: 80
    set_volume: Callable[[int], None] | None = None
    restart_app: Callable[[], None] | None = None
    """End the process so systemd (Restart=always) starts it again. None hides the button."""
    run_command: Callable[[list[str]], None] = run_command
    commands: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in POWER_COMMANDS.items()})
    find_sticks: Callable[[], list[Stick]] | None = None
    export: Callable[[Path], ExportResult] | None = None
    """Write the day's export onto a stick's mount point. None: export_day with this ledger."""
    refund: Callable[[str, int, str, str], RefundResult] | None = None
    """The payment terminal's refund (``PaymentTerminal.refund``). None hides the refund page."""
    refund_method: str = ""
    """The ledger ``method`` of donations that terminal took: only those can be refunded through it."""
    kiosk_id: str = "kiosk"
    timezone: str = "Asia/Tokyo"
    version: str = ""
    data_dir: Path | None = None
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    background: Callable[[Callable[[], Any]], Future[Any]] = run_inline
    """Runs slow actions (reports, sync, export, grants). The app may pass an executor's ``submit``
    so the movie keeps playing; the menu shows "working…" until the future is done."""

    @property
    def ledger(self) -> Ledger:
        return self.writer.ledger

    def sticks(self) -> list[Stick]:
        if self.find_sticks is not None:
            return self.find_sticks()
        # Read-only sticks too: staff who inserted one are told why it cannot be used, not "no stick found".
        return find_sticks(mount_roots=self.ops.export.mount_roots, include_read_only=True)

    def export_to(self, stick: Path, device: str | None = None) -> ExportResult:
        """Export onto ``stick``; with ``device`` (the stick as listed), only while that device is still mounted
        read-write there (:func:`~kiosk.staff.usb_export.check_stick`)."""
        if self.export is not None:
            return self.export(stick)
        return export_day(stick, self.ledger.path, kiosk_id=self.kiosk_id, timezone=self.timezone,
                          titles=self.titles, logs=journal_lines(self.ops.export.journal_unit), device=device)

    def export_day(self) -> date | None:
        """The business day the export holds (:func:`~kiosk.staff.usb_export.newest_day`; None: today, the
        ledger has no donation or close-out yet), for the page."""
        return newest_day(self.ledger.path, self.timezone)

    def measure(self) -> StatusInputs:
        """The status page's inputs: the app's when given, else what the menu can measure itself."""
        if self.status_inputs is not None:
            return self.status_inputs()
        x = StatusInputs(ledger_ok=True, version=self.version, soc_temp_c=read_soc_temp(), uptime_s=read_uptime())
        for k, v in ledger_figures(self.ledger).items():
            setattr(x, k, v)
        if self.data_dir is not None:
            x.disk_free_bytes = read_disk_free(self.data_dir)
            x.disk_writable = read_disk_writable(self.data_dir)  # a disk gone read-only is the red line here too
        return x


def services_from_config(cfg: Any, writer: LedgerWriter, gate: StaffGate | None = None,
                         **overrides: Any) -> MenuServices:
    """Services filled from a :class:`~kiosk.config.KioskConfig`; pass the app's callables as ``overrides``."""
    from kiosk import __version__
    from kiosk.config.staff import ops_settings

    ops = ops_settings(cfg)
    base: dict[str, Any] = dict(
        writer=writer, gate=gate or StaffGate(writer, ops.staff), ops=ops,
        titles={p.id: p.title for p in cfg.projects},
        titles_en={p.id: p.title_en or p.title for p in cfg.projects},
        language=lambda: cfg.kiosk.language,
        playlist=lambda: list(cfg.player.playlist),
        kiosk_id=cfg.kiosk.id, timezone=cfg.kiosk.timezone, version=__version__,
        data_dir=Path(cfg.data_dir),
    )
    base.update(overrides)
    return MenuServices(**base)
