"""``kiosk closeout``, ``kiosk staff …``, ``kiosk export usb`` and ``kiosk status``.

Registered through ``kiosk.cli.PLUGINS``. Errors are one line on stderr;
exit codes follow kiosk.cli (0 ok, 1 failed, 2 bad config or usage).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from kiosk import __version__
from kiosk.config import KioskConfig, load_config


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM-DD") from None


def _titles(cfg: KioskConfig) -> dict[str, str]:
    return {p.id: p.title for p in cfg.projects}


def _refuse_root_writer(cfg: KioskConfig) -> str | None:
    """Root writing the kiosk's ledger would leave root-owned WAL files the kiosk user cannot open."""
    try:
        owner = cfg.ledger_path.stat().st_uid
    except OSError:
        return None
    if os.geteuid() == 0 and owner != 0:
        return f"run this as the ledger's owner, e.g. `sudo -u kiosk kiosk closeout --config …` ({cfg.ledger_path})"
    return None


# --- closeout -------------------------------------------------------------------------------------
def closeout_command(args: argparse.Namespace) -> int:
    from kiosk.config.staff import ops_settings
    from kiosk.ledger.writer import InlineWriter
    from kiosk.ops.local_files import open_ledger
    from kiosk.staff.closeout import AlreadyClosed, auto_close, summary_lines, x_report, z_days, z_report

    cfg = load_config(args.config)
    if not cfg.ledger_path.exists():
        print(f"kiosk closeout: no ledger at {cfg.ledger_path} (the kiosk has not run yet)", file=sys.stderr)
        return 1
    if not args.x:
        problem = _refuse_root_writer(cfg)
        if problem:
            print(f"kiosk closeout: {problem}", file=sys.stderr)
            return 1
    settings = ops_settings(cfg).closeout
    led = open_ledger(cfg, boot=False)
    writer = InlineWriter(led)  # a single-threaded process: it appends in its own thread
    out: list[dict[str, Any]] = []
    timer_run = not args.x and args.date is None and settings.auto
    try:
        if args.x:
            out.append(x_report(led, args.date))
        elif timer_run:
            # The timer's run: close every ended day left open, then nothing else.
            out += [{**e.data, "seq": e.seq} for e in auto_close(writer, settings.lookback_days)]
        else:
            # Without --date, the day staff mean (closeout.z_days), as the menu's Z page: just after midnight, the
            # day that has just ended, not the new empty one.
            day = args.date or z_days(led, lookback_days=settings.lookback_days)[0]
            try:
                e = z_report(writer, day, force=args.force, trigger="cli")
            except AlreadyClosed as exc:
                print(f"kiosk closeout: {exc}", file=sys.stderr)
                return 1
            out.append({**e.data, "seq": e.seq})
    finally:
        # No shutdown checkpoint: the kiosk process (the ledger's usual writer) writes its own.
        led.close(checkpoint=False)
    if args.json:
        # The timer's run may close several days (a list); a single report is one object.
        print(json.dumps(out if timer_run else out[0], ensure_ascii=False))
    elif not out:
        print("nothing to close: every ended business day with donations has a close-out that holds it")
    else:
        for rep in out:
            print("\n".join(summary_lines(rep, _titles(cfg)))
                  + (f"\nwritten as seq={rep['seq']}" if "seq" in rep else ""))
    return 0


# --- staff ----------------------------------------------------------------------------------------
def read_new_pin(stdin: TextIO, prompt: Callable[[str], str] | None) -> str:
    """The PIN, typed twice on a terminal (without echo), or one line from a pipe."""
    from kiosk.staff.pin import PinError, check_pin_format

    if prompt is not None:
        first = prompt("new PIN (4-8 digits): ")
        if prompt("again: ") != first:
            raise PinError("the two PINs differ")
        return check_pin_format(first)
    return check_pin_format(stdin.readline().strip())


def set_pin_command(args: argparse.Namespace) -> int:
    from kiosk.staff.pin import PinError, hash_pin

    if args.config:
        load_config(args.config)  # a typo'd path is better caught now than after the PIN is typed
    interactive = sys.stdin.isatty()
    try:
        pin = read_new_pin(sys.stdin, getpass.getpass if interactive else None)
    except PinError as exc:
        print(f"kiosk staff set-pin: {exc}", file=sys.stderr)
        return 2
    line = f'pin_hash = "{hash_pin(pin)}"'
    where = args.config or "the kiosk config"
    if interactive:
        print(f"Put this line in the [staff] section of {where}, then restart the kiosk:", file=sys.stderr)
    print(line)
    return 0


def staff_card_command(args: argparse.Namespace) -> int:
    """Wait for a tap and print the card's token for [staff] staff_tokens."""
    from kiosk.ledger import Pepper
    from kiosk.reader import CardPresented, open_reader
    from kiosk.reader.nodump import forbid_memory_images

    cfg = load_config(args.config)
    if cfg.reader.backend != "sim":
        forbid_memory_images()  # a real card's IDm and the pepper are in memory: no core dump of them
    pepper = Pepper.load(cfg.pepper_path)
    print("tap the staff card…", file=sys.stderr)
    with open_reader(cfg, pepper.token).start() as reader:
        import time

        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            ev = reader.get_event(timeout=0.5)
            if isinstance(ev, CardPresented):
                print(f'staff_tokens = ["{ev.record.token.hex}"]   # add to [staff]; {ev.record.family} card')
                return 0
    print(f"kiosk staff card: no card within {args.timeout:g} s", file=sys.stderr)
    return 1


# --- export ---------------------------------------------------------------------------------------
def export_usb_command(args: argparse.Namespace) -> int:
    from kiosk.config.staff import ops_settings
    from kiosk.staff.usb_export import UsbExportError, export_day, find_sticks, journal_lines, result_json

    cfg = load_config(args.config)
    settings = ops_settings(cfg).export
    device = None  # --stick DIR: the folder given is written to as it is
    if args.stick:
        stick = Path(args.stick)
    else:
        sticks = find_sticks(mount_roots=settings.mount_roots)
        if not sticks:
            print("kiosk export usb: no USB stick mounted under " + ", ".join(settings.mount_roots)
                  + " (insert one; or pass --stick DIR)", file=sys.stderr)
            return 1
        stick, device = sticks[0].path, sticks[0].device  # still mounted there when written: checked again
    try:
        r = export_day(stick, cfg.ledger_path, kiosk_id=cfg.kiosk.id, timezone=cfg.kiosk.timezone, day=args.date,
                       titles=_titles(cfg), logs=None if args.no_logs else journal_lines(settings.journal_unit),
                       device=device)
    except UsbExportError as exc:
        print(f"kiosk export usb: {exc}", file=sys.stderr)
        return 1
    print(result_json(r) if args.json else r.summary())
    return 0


# --- status ---------------------------------------------------------------------------------------
def status_command(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from kiosk.config.staff import ops_settings
    from kiosk.ledger.store import read_only_engine
    from kiosk.ops.status import (
        SYNC_STATE_FILE,
        StatusInputs,
        overall,
        read_disk_free,
        read_disk_writable,
        read_saved_sync,
        read_soc_temp,
        read_uptime,
        saved_sync_figures,
        status_items,
    )

    cfg = load_config(args.config)
    x = StatusInputs(version=__version__, disk_free_bytes=read_disk_free(cfg.data_dir),
                     disk_writable=read_disk_writable(cfg.data_dir), soc_temp_c=read_soc_temp(), uptime_s=read_uptime())
    if cfg.ledger_path.exists():
        eng = read_only_engine(cfg.ledger_path)
        try:
            with eng.connect() as conn:
                x.last_seq = conn.execute(text("SELECT max(seq) FROM entries")).scalar()
            x.ledger_entries = x.last_seq or 0
            x.ledger_bytes = sum(p.stat().st_size for p in (cfg.ledger_path, Path(f"{cfg.ledger_path}-wal"))
                                 if p.exists())
        finally:
            eng.dispose()
    state = cfg.data_dir / SYNC_STATE_FILE
    # A kiosk syncs with the config's portal, or with the one `kiosk enroll --portal` joined (the state file).
    x.portal_configured = bool(cfg.portal.url) or state.exists()
    if x.portal_configured:
        # What the running kiosk's sync thread last saved (a shell has no thread to ask): without it every
        # `kiosk status` over ssh said "last sync never; ? pending" in red, however well the kiosk synced.
        saved, unreadable = read_saved_sync(state)  # None, None: never enrolled nor synced ("unknown", "never")
        if unreadable is not None:
            # As the uploader finds it (SyncState.load): kept as it is, never written over, and the kiosk cannot
            # sync until it is enrolled again (not "the next round writes it again": no round does).
            x.sync_error = (f"{state} is unreadable ({unreadable}); it is kept as it is and the kiosk cannot sync "
                            "until it is enrolled again (`kiosk sync --status` says how)")
            x.sync_error_kind = "state_unreadable"
        # The error's kind as the sync thread saved it beside the error (sync_error_kind), with the rest.
        for k, v in saved_sync_figures(saved, x.last_seq or 0, int(time.time() * 1000)).items():
            setattr(x, k, v)
    items = status_items(x, ops_settings(cfg).status)
    if args.json:
        print(json.dumps({"overall": overall(items), "items": [i.__dict__ for i in items]}, ensure_ascii=False))
    else:
        print(f"overall: {overall(items)}")
        for i in items:
            print(f"  {i.level:<6} {i.key:<12} {i.value}" + (f"  ({i.hint})" if i.hint and i.level != "green" else ""))
    return 0


def register(subparsers: Any) -> None:
    c = subparsers.add_parser("closeout", help="daily close-out (Z report), or --x for running totals",
                              description="Write the signed close_out entry (日計). Without --date, closes every "
                                          "ended business day still open, and closes again (a superseding Z of the "
                                          "whole day) every ended day with gifts or refunds after its Z "
                                          "([closeout] auto): what the timer runs.")
    c.add_argument("--config", metavar="FILE", help="kiosk config (default $KIOSK_CONFIG)")
    c.add_argument("--date", type=_date, metavar="YYYY-MM-DD",
                   help="close this business date (default with [closeout] auto = false: the day the menu's Z "
                        "report offers, the newest ended day still open, e.g. yesterday just after midnight)")
    c.add_argument("--x", action="store_true", help="X report: print running totals, write nothing")
    c.add_argument("--force", action="store_true", help="write a superseding Z for a date already closed")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=closeout_command)

    s = subparsers.add_parser("staff", help="maintenance-menu access: PIN hash and staff cards")
    ssub = s.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    sp = ssub.add_parser("set-pin", help="read a new PIN (stdin or prompt) and print its pin_hash line for [staff]")
    sp.add_argument("--config", metavar="FILE", help="the config the line is for (checked, not changed)")
    sp.set_defaults(func=set_pin_command)
    sc = ssub.add_parser("card", help="tap a card and print its token for [staff] staff_tokens")
    sc.add_argument("--config", metavar="FILE")
    sc.add_argument("--timeout", type=float, default=60.0, metavar="S")
    sc.set_defaults(func=staff_card_command)

    e = subparsers.add_parser("export", help="export for the city")
    esub = e.add_subparsers(dest="export_command", metavar="TARGET", required=True)
    u = esub.add_parser("usb", help="ledger, the day's close-out CSV and logs (no card IDs) to a USB stick")
    u.add_argument("--config", metavar="FILE")
    u.add_argument("--date", type=_date, metavar="YYYY-MM-DD",
                   help="business date (default: the newest day with donations or a close-out)")
    u.add_argument("--stick", metavar="DIR", help="write here instead of the detected stick")
    u.add_argument("--no-logs", action="store_true", help="skip the journal")
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=export_usb_command)

    st = subparsers.add_parser("status", help="the status page as text: green/yellow/red per item")
    st.add_argument("--config", metavar="FILE")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=status_command)
