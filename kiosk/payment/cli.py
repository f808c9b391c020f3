"""``kiosk payment pair`` and ``kiosk payment test``: installation-day commands for the payment terminal.

Registered through ``kiosk.cli.PLUGINS``. Exit codes follow kiosk.cli: 0 done, 1 failed, 2 bad config or usage.

- ``pair`` (Square): CreateDeviceCode for a Terminal API device, print the code for staff to enter on the
  Square Terminal (Sign in → "Use a device code"), wait until Square says PAIRED, and store the device id in
  ``[payment.square] device_file`` (atomically, so a power cut never leaves half an id).
- ``test --amount 100``: one real checkout through the configured terminal, its outcome printed. A test
  payment is not a donation and never enters the ledger, so an approved one is refunded at once (unless
  ``--keep``); if the refund fails the command says so, with the payment id to refund from the Square
  Dashboard, and exits 1. Stop the kiosk first (``systemctl stop kiosk``): a terminal takes one checkout
  at a time.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from kiosk.config import load_config
from kiosk.ledger.durable import write_atomic


def pair_command(args: argparse.Namespace) -> int:
    from square import Square

    from kiosk.payment.square import SquareSetupError, pair, read_token

    cfg = load_config(args.config)
    pc = cfg.payment
    if pc.terminal != "square":
        print('kiosk payment pair: [payment] terminal is not "square"; nothing to pair', file=sys.stderr)
        return 2
    sq = pc.square
    try:
        token = read_token(cfg.resolve(sq.access_token_file))
        client = Square(base_url=sq.base_url.rstrip("/"), token=token, timeout=sq.request_timeout_s)
        device = pair(client, sq.location_id, args.name or cfg.kiosk.id, wait_s=args.wait, poll_s=args.poll)
    except SquareSetupError as exc:
        print(f"kiosk payment pair: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the SDK's errors (refused, unreachable): one line, no traceback
        print(f"kiosk payment pair: Square refused or did not answer: {str(exc).splitlines()[0][:200]}",
              file=sys.stderr)
        return 1
    path = cfg.resolve(sq.device_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, device + "\n", mode=0o644)
    print(f"paired: device id {device}, stored in {path}")
    if sq.device_id and sq.device_id != device:
        print(f"note: [payment.square] device_id = {sq.device_id!r} in the config wins over {path}; "
              "empty it to use the new terminal")
    return 0


def test_command(args: argparse.Namespace) -> int:
    from kiosk.payment import open_terminal
    from kiosk.payment.base import RefundRefused, TerminalUnavailable
    from kiosk.payment.square import SquareSetupError

    cfg = load_config(args.config)
    if args.amount < 1:
        print("kiosk payment test: --amount must be at least 1 (yen)", file=sys.stderr)
        return 2
    try:
        term = open_terminal(cfg)
    except SquareSetupError as exc:
        print(f"kiosk payment test: {exc}", file=sys.stderr)
        return 1
    idem = "test-" + uuid.uuid4().hex
    try:
        print(f"checkout ¥{args.amount} on the {term.method} terminal: present a card or QR code there now…",
              flush=True)
        result = term.charge(args.amount, idem, reference="install-test")
        print(f"outcome: {result.status}" + (f" ({result.reason})" if result.reason else "")
              + (f", payment {result.provider_ref}" if result.provider_ref else ""), flush=True)
        if result.status == "unknown":
            # The checkout may still be waiting on the terminal for a card: settle it before ending, or a tap
            # afterwards takes money that nobody refunds. Lookup cancels a waiting checkout and follows one
            # being paid.
            print("asking the payment service again; a checkout still waiting for a card is canceled…", flush=True)
            try:
                result = term.lookup(idem)
            except TerminalUnavailable as exc:
                print(f"NOT SETTLED: {exc}. The test checkout (reference install-test, ¥{args.amount}) may still be "
                      "open on the terminal: cancel it there, then find it on the Square Dashboard and refund it "
                      "if it was paid.", file=sys.stderr)
                return 1
            print(f"outcome: {result.status}" + (f" ({result.reason})" if result.reason else "")
                  + (f", payment {result.provider_ref}" if result.provider_ref else ""), flush=True)
        if result.status != "approved":
            print("not charged: the test payment was not made")
            return 1
        if args.keep or not term.can_refund:
            print("kept: this test payment is not in the ledger; refund it from the Square Dashboard if needed")
            return 0
        try:
            refund = term.refund(result.provider_ref or "", args.amount, "rf-" + idem[5:45], "kiosk payment test")
        except (RefundRefused, TerminalUnavailable) as exc:
            print(f"NOT refunded: {exc}. Refund payment {result.provider_ref} from the Square Dashboard.",
                  file=sys.stderr)
            return 1
        print(f"refunded: {refund.refund_id} ({refund.status})")
        return 0
    finally:
        term.close()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("payment", help="the payment terminal: pair it, make a test payment")
    psub = p.add_subparsers(dest="payment_command", metavar="ACTION", required=True)
    pr = psub.add_parser("pair", help="pair a Square Terminal (prints a device code, waits until it is entered)")
    pr.add_argument("--config", metavar="FILE", help="kiosk config (default $KIOSK_CONFIG)")
    pr.add_argument("--name", help="device name shown in Square (default: the kiosk id)")
    pr.add_argument("--wait", type=float, default=300.0, metavar="S", help="how long to wait for the code")
    pr.add_argument("--poll", type=float, default=3.0, metavar="S", help=argparse.SUPPRESS)
    pr.set_defaults(func=pair_command)
    t = psub.add_parser("test", help="one real test payment through the configured terminal, then refund it")
    t.add_argument("--config", metavar="FILE", help="kiosk config (default $KIOSK_CONFIG)")
    t.add_argument("--amount", type=int, default=100, metavar="YEN")
    t.add_argument("--keep", action="store_true", help="do not refund the test payment")
    t.set_defaults(func=test_command)
