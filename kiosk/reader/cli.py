"""``kiosk reader probe``: wait for taps and print what each card says.

The IDm is printed only with ``--show-idm`` (for matching a card to a
complaint at the desk); everything else shows the donor token. The card's
trips (the days its holder travelled, the balance after each) only with
``--show-trips``: by default the probe says how many it read, which is what a
reader check needs (docs/readers.md, "Privacy rule").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from kiosk.config.reader import ReaderConfig
from kiosk.ledger.pepper import DonorToken, Pepper, PepperError
from kiosk.reader import make_reader
from kiosk.reader.events import CardPresented, CardRemoved, ReaderConnected, ReaderDisconnected, ReaderEvent, ReadError
from kiosk.reader.fixes import no_reader_report
from kiosk.reader.supervisor import ReaderSupervisor

DEFAULT_SIM_SOCKET = "tcp:127.0.0.1:0"


def register(subparsers: Any) -> None:
    reader = subparsers.add_parser("reader", help="card reader tools", description="Card reader tools.")
    sub = reader.add_subparsers(dest="reader_command", metavar="COMMAND", required=True)
    probe = sub.add_parser(
        "probe",
        help="wait for taps and print family, balance, read time and how many trips could be read",
        description="Wait for taps and print each card's family, balance, read time and how many of its trips "
        "could be read (the trips themselves with --show-trips). "
        "Without --config the simulated reader is used with a throwaway pepper.",
    )
    probe.add_argument("--config", metavar="FILE", help="kiosk config (needed for real readers, to find the pepper)")
    probe.add_argument("--backend", choices=("nfcpy", "pcsc", "sim"), help="override [reader] backend")
    probe.add_argument("--show-idm", action="store_true", help="also print the raw card IDm (never stored or logged)")
    probe.add_argument("--show-trips", action="store_true",
                       help="also print the card's last trips (days and balances: the card holder's travel; "
                            "by default only how many were read)")
    probe.add_argument("--count", type=int, metavar="N", help="stop after N taps (exit 1 if --timeout comes first)")
    probe.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    probe.add_argument("--sim-socket", metavar="ADDR",
                       help=f"simulator control socket (default {DEFAULT_SIM_SOCKET}; the bound address is printed)")
    probe.add_argument("--sim-script", metavar="FILE", help="simulator script to play")
    probe.set_defaults(func=probe_command)


def _yen(v: int | None) -> str:
    return "balance unreadable" if v is None else f"¥{v:,}"


def format_event(event: ReaderEvent, taps: int, idm_by_token: dict[str, bytes] | None = None,
                 show_trips: bool = False) -> str:
    if isinstance(event, CardPresented):
        r = event.record
        kind = f"{r.family} (phone)" if r.mobile else r.family
        lines = [
            f"tap {taps}: {kind}  {_yen(r.balance_yen)}  read {r.read_ms:.2f} ms  "
            f"token {r.token.hex[:8]}… (epoch {r.token.epoch})  system {r.system_code:04X}"
        ]
        if idm_by_token is not None:
            idm = idm_by_token.pop(r.token.hex, None)
            lines.append(f"  IDm {idm.hex().upper() if idm else '(not seen)'}")
        if r.history and not show_trips:
            # Where and when the card's holder travelled is theirs: a check of the reader needs only to know the
            # history could be read. The probe runs at the desk on citizens' cards, and its output is copied.
            lines.append(f"  {len(r.history)} trips read (not shown; --show-trips to print them)")
        for h in r.history if show_trips else ():
            lines.append(
                f"  {h.date.isoformat()}  {h.terminal_name:<15} {h.process_name:<16} {_yen(h.balance_yen):>8}"
                f"  #{h.transaction_number}"
            )
        return "\n".join(lines)
    if isinstance(event, CardRemoved):
        return "card removed"
    if isinstance(event, ReadError):
        return f"read error ({event.kind}): {event.detail}"
    if isinstance(event, ReaderConnected):
        return f"reader {event.reader_id} connected: {event.description}"
    if isinstance(event, ReaderDisconnected):
        text = f"reader {event.reader_id}: {event.reason}"
        if event.fix:
            text += "\n  fix: " + event.fix.replace("\n", "\n       ")
        return text
    return repr(event)


def probe_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from kiosk.config import load_config  # ConfigError propagates: the top-level main turns it into exit 2
    from kiosk.reader.nodump import forbid_memory_images

    cfg = load_config(args.config) if args.config else None
    rc = cfg.reader if cfg is not None else ReaderConfig()
    backend = args.backend or rc.backend
    updates: dict[str, Any] = {"backend": backend}
    if backend == "sim":
        updates["sim_socket"] = args.sim_socket or rc.sim_socket or DEFAULT_SIM_SOCKET
        if args.sim_script:
            updates["sim_script"] = str(Path(args.sim_script).absolute())
    rc = ReaderConfig.model_validate({**rc.model_dump(), **updates})

    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if cfg is not None:
            try:
                pepper = Pepper.load(cfg.pepper_path)
            except PepperError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        elif backend == "sim":
            tmp = tempfile.TemporaryDirectory(prefix="kiosk-probe-")
            pepper = Pepper.create(Path(tmp.name) / "pepper.json")
        else:
            print(f"error: the {backend} backend needs --config FILE (to find the donor-token pepper)", file=sys.stderr)
            return 2

        if backend != "sim":
            forbid_memory_images()  # real cards' IDms (kept for --show-idm) and the pepper: no core dump of them
        idm_by_token: dict[str, bytes] | None = {} if args.show_idm else None

        def tokenizer(idm: bytes) -> DonorToken:
            token = pepper.token(idm)
            if idm_by_token is not None:
                idm_by_token.pop(token.hex, None)
                idm_by_token[token.hex] = bytes(idm)  # memory only, printed once, then dropped
                while len(idm_by_token) > 16:
                    idm_by_token.pop(next(iter(idm_by_token)))
            return token

        try:
            reader = make_reader(rc, tokenizer, base_dir=cfg.base_dir if cfg is not None else None)
        except (OSError, ValueError) as exc:  # unreadable or bad simulator script, socket in use
            print(f"error: cannot start the {backend} reader: {exc}", file=sys.stderr)
            return 2
        sup = ReaderSupervisor(reader)
        address = getattr(reader, "control_address", "")
        if address:
            print(f"simulator listening on {address} (send lines such as 'tap suica'; keys: 1-5)", file=out, flush=True)
        return _wait_for_taps(sup, args, out, idm_by_token)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _wait_for_taps(sup: ReaderSupervisor, args: argparse.Namespace, out: TextIO,
                   idm_by_token: dict[str, bytes] | None) -> int:
    deadline = time.monotonic() + args.timeout if args.timeout else None
    taps = 0
    connected = False
    fault: str | None = None  # the last disconnection's, for the closing words
    sup.start()
    try:
        while args.count is None or taps < args.count:
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0:
                break
            event = sup.get_event(timeout=wait)
            if event is None:
                continue
            if isinstance(event, ReaderConnected):
                connected = True
            if isinstance(event, ReaderDisconnected):
                fault = event.fault
            if isinstance(event, CardPresented):
                taps += 1
            print(format_event(event, taps, idm_by_token, args.show_trips), file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sup.stop()
        if idm_by_token is not None:
            idm_by_token.clear()
    if not connected:
        # Probing a reader that never answered is a failed probe, not a quiet one (the fix, if the
        # backend knows it, was printed with the disconnection above). What to do, in words: Japanese first when
        # the command gave the screens' catalog (kiosk/cli.py, kiosk/reader/__main__.py: this package has no UI).
        ja = getattr(args, "ja_gettext", None)
        print(no_reader_report(fault, sup.reader.backend, ja() if ja is not None else None, args.config),
              file=sys.stderr)
        return 1
    return 0 if args.count is None or taps >= args.count else 1
