"""``kiosk receipt verify URL``: check a donation receipt as an auditor would, trusting nothing the portal says.

``URL`` is what the kiosk's thank-you QR code holds, ``https://portal/r/CODE#k=KEYID``: the fragment
names the kiosk's ledger key. The command fetches ``/api/v1/receipts/CODE`` (or reads a saved answer
with ``--file``, with no network at all) and runs the same checks as the receipt page's script
(server_sync/wire/receipt.py ``check_receipt``): the entry body and signature give the link's receipt
code (so the answer is that donation's, not another gift's relabelled), the key is that key id's, the
entry body hashes to the leaf and carries the kiosk's signature, the checkpoint is signed by the same
key for that kiosk's log, the inclusion proof reaches its root, and the amount and project shown are
the signed body's. Redirects are followed, on purpose (a portal that moved to https, or to a new address,
keeps the links printed on old receipts working): nothing here trusts the host that answers, only the
signatures and the code recomputed from what was served. `kiosk doctor` and the uploader, which do trust
the configured address, refuse redirects.

Exit codes: 0 verified; 1 not verified (or the portal could not be reached, or the code is unknown or
expired); 2 bad usage (a URL with no receipt code, no key id).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from server_sync.wire.receipt import check_receipt, normalise


def split_url(url: str) -> tuple[str, str, str | None]:
    """``(portal base URL, receipt code, key id or None)`` of a receipt link; ValueError if it is not one."""
    parts = urlsplit(url.strip())
    head, sep, code = parts.path.rpartition("/r/")
    c = normalise(code) if sep else None
    if not parts.scheme or not parts.netloc or c is None:
        raise ValueError(f"{url!r} is not a receipt link (https://PORTAL/r/CODE#k=KEYID)")
    keys = parse_qs(parts.fragment).get("k")
    key = keys[0] if keys else None
    return f"{parts.scheme}://{parts.netloc}{head}", c, key


def _fetch(base: str, code: str) -> tuple[dict[str, Any] | None, str]:
    import requests

    try:
        r = requests.get(f"{base}/api/v1/receipts/{code}", timeout=20)
    except requests.RequestException as exc:
        return None, f"cannot reach the portal at {base}: {type(exc).__name__}"
    if r.status_code == 404:
        return None, "the portal does not know this receipt code (not sent yet, or no longer shown)"
    if r.status_code != 200:
        return None, f"the portal answered HTTP {r.status_code}"
    try:
        return r.json(), ""
    except ValueError:
        return None, "the portal's answer is not JSON"


def _verify(args: argparse.Namespace) -> int:
    try:
        base, code, key = split_url(args.url)
    except ValueError as exc:
        print(f"kiosk receipt verify: {exc}", file=sys.stderr)
        return 2
    key = args.key_id or key
    if not key:
        print("kiosk receipt verify: no key id: the link has no #k=... part; pass --key-id (the kiosk's key id, "
              "`kiosk keygen` prints it)", file=sys.stderr)
        return 2
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                doc: Any = json.load(f)
        except (OSError, ValueError) as exc:
            print(f"kiosk receipt verify: cannot read {args.file}: {exc}", file=sys.stderr)
            return 1
    else:
        doc, why = _fetch(base, code)
        if doc is None:
            print(f"NOT VERIFIED: {why}")
            return 1
    # The code in the link is the one checked: the answer's body and signature must give it
    # (its "receipt" field is only the portal's word).
    res = check_receipt(doc, key, code=code)
    if not res.ok or res.body is None:
        print(f"NOT VERIFIED: {res.reason}")
        return 1
    body, data = res.body, res.body["data"]
    t = datetime.fromtimestamp(body["wall_ms"] / 1000, ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    clock = "" if body.get("clock_synced") else " (kiosk clock not set at the time)"
    print(f"VERIFIED: ¥{data['amount_yen']:,} to {data['project']}, {t} JST{clock}")
    print(f"  kiosk {body['kiosk']}, entry {body['seq']}, key {res.key_id}")
    print(f"  signed by that key, and in its signed checkpoint of {res.checkpoint_size} entries (inclusion proof)")
    if doc["donation"].get("voided"):
        print("  note: the portal says this donation was later voided (a separate ledger entry)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("receipt", help="check a donation receipt (for auditors)")
    rsub = r.add_subparsers(dest="receipt_command", metavar="ACTION")
    rsub.required = True
    v = rsub.add_parser("verify", help="verify a receipt link without trusting the portal")
    v.add_argument("url", help="the receipt link from the thank-you QR code, https://PORTAL/r/CODE#k=KEYID")
    v.add_argument("--key-id", help="the kiosk's key id, when the link has no #k= part")
    v.add_argument("--file", help="a saved /api/v1/receipts/CODE answer: check it offline, without the network")
    v.set_defaults(func=_verify)
