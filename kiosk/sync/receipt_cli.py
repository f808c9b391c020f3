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

Every answer is said in plain Japanese first, for the city's accountant and the donor (a 「判定：…」 line, as
`kiosk ledger verify` says its verdict, and what to do), then the English lines as before: the one that starts
``VERIFIED:`` or ``NOT VERIFIED:`` is the line a script reads. The Japanese comes from the screens' gettext
catalog (kiosk/ui/locale); without a compiled catalog (a checkout never installed) the English alone.

Exit codes: 0 verified; 1 not verified (or the portal could not be reached, or the code is unknown or
expired); 2 bad usage (a URL with no receipt code, no key id).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from kiosk.ui.i18n import gettext_or_none
from server_sync.wire.receipt import check_receipt, normalise

# --- what the auditor reads, in Japanese: English msgids of the screens' catalog (kiosk/ui/locale) ----------------
# The verdict heads the first line (「判定：…」). "Not checked yet" is said apart from "could not be confirmed": a
# portal that cannot be reached says nothing against the gift.
VERDICT_OK = "Verdict: this donation has been confirmed. {amount} to {project}, {time} Japan time."
VERDICT_NOT_CHECKED = "Verdict: nothing has been checked yet."
VERDICT_FAILED = "Verdict: this donation could not be confirmed."
CLOCK_NOT_SET = "The kiosk clock was not set at the time, so the date and time may be off."
WHERE = "Kiosk {kiosk}, record #{seq}, signing key (key id) {key}."
HOW = ("Checked without trusting the portal: the kiosk key signed this record, and it is in the kiosk's signed "
       "summary of {size} records.")
VOIDED = "Note: the portal says this donation was later canceled and the money returned (a separate record)."
TELL = ("What to do: keep this output and the receipt link, and tell the center where the kiosk stands and the "
        "city's person in charge.")

UNREACHABLE = "The portal at {portal} could not be reached. Check the network and the address, then run this again."
HTTP_ERROR = "The portal answered with an error (HTTP {status}). Wait a moment and run this again."
NOT_JSON = "The portal's answer is not a receipt. Check the address in the link."
FILE_UNREADABLE = "The saved answer {file} could not be read (no such file, or not a receipt answer)."
UNKNOWN_CODE = ("The portal does not know this receipt code: the kiosk may not have sent it yet, or its time to be "
                "shown has passed. Try again later; if it stays so for days, tell the center.")
NOT_A_LINK = ("This is not a receipt link. A receipt link looks like https://PORTAL/r/CODE#k=KEYID (the link in the "
              "kiosk's QR code).")
NO_KEY_ID = ("The link has no kiosk key id (the #k=... part). Use the link from the kiosk's QR code, or give the key "
             "id with --key-id.")

# check_receipt's steps (ReceiptCheck.why), in a reader's words; the English reason follows on its own line.
REASONS = {
    "incomplete": ("The receipt does not carry its signed record and proof yet (the kiosk's next signed record may "
                   "not have arrived). Try again later."),
    "other_receipt": "The portal answered with another donation's record, not the one this receipt code names.",
    "bad_key": "The key in the answer is not the kiosk key named in the receipt link.",
    "wrong_key": "The key in the answer is not the kiosk key named in the receipt link.",
    "no_key_id": NO_KEY_ID,
    "bad_code": NOT_A_LINK,
    "bad_signature": "The record is not signed by the kiosk key.",
    "not_an_entry": "The signed record is not this donation.",
    "not_this_donation": "The signed record is not this donation.",
    "bad_checkpoint": "The kiosk's signed summary of its records does not check (its signature or its form is wrong).",
    "other_log": "The summary of records is another kiosk's.",
    "not_included": "The record is not in the kiosk's signed summary of records (the proof does not hold).",
    "key_change": "The change of the kiosk's key in the answer does not check.",
    "admin_key_change": ("The kiosk key was replaced on an administrator's word, which only the portal vouches for: "
                         "this receipt cannot be checked without trusting the portal."),
    "shown_amount_yen": "The amount the portal shows is not the signed one.",
    "shown_project": "The project the portal shows is not the signed one.",
    "shown_seq": "The kiosk or the record number the portal shows is not the signed one.",
    "shown_kiosk_id": "The kiosk or the record number the portal shows is not the signed one.",
}
NOT_CHECKED = frozenset({"incomplete"})
"""check_receipt steps that mean the answer could not be checked yet, not that it failed."""


def _say(lines: list[str], english: list[str], file: TextIO | None = None) -> None:
    """The Japanese ``lines`` first, then the ``english`` ones under them (stdout, or ``file``)."""
    for line in [*lines, *english]:
        print(line, file=file or sys.stdout)


def _not_verified(verdict: str, msgid: str, english: str, *, tell: bool = False, **figures: Any) -> int:
    """``判定：…`` and the reason in Japanese, then ``NOT VERIFIED: english``; exit 1."""
    ja = gettext_or_none("ja")
    lines = []
    if ja is not None:
        # gettext("") is the catalog's header, not nothing: a step with no words says the verdict alone.
        lines = [ja(verdict) + (ja(msgid).format(**figures) if msgid else "")]
        if tell:
            lines.append("  " + ja(TELL))
    _say(lines, [f"NOT VERIFIED: {english}"])
    return 1


def _usage(msgid: str, english: str) -> int:
    """Bad usage: the Japanese line, then ``kiosk receipt verify: english``, on stderr; exit 2."""
    ja = gettext_or_none("ja")
    _say([ja(msgid)] if ja is not None else [], [f"kiosk receipt verify: {english}"], sys.stderr)
    return 2


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


def _fetch(base: str, code: str) -> tuple[dict[str, Any] | None, str, str, dict[str, Any]]:
    """``(answer, "", "", {})``, or ``(None, English reason, Japanese msgid, its figures)``."""
    import requests

    try:
        r = requests.get(f"{base}/api/v1/receipts/{code}", timeout=20)
    except requests.RequestException as exc:
        return None, f"cannot reach the portal at {base}: {type(exc).__name__}", UNREACHABLE, {"portal": base}
    if r.status_code == 404:
        return (None, "the portal does not know this receipt code (not sent yet, or no longer shown)",
                UNKNOWN_CODE, {})
    if r.status_code != 200:
        return None, f"the portal answered HTTP {r.status_code}", HTTP_ERROR, {"status": r.status_code}
    try:
        return r.json(), "", "", {}
    except ValueError:
        return None, "the portal's answer is not JSON", NOT_JSON, {}


def _verify(args: argparse.Namespace) -> int:
    try:
        base, code, key = split_url(args.url)
    except ValueError as exc:
        return _usage(NOT_A_LINK, str(exc))
    key = args.key_id or key
    if not key:
        return _usage(NO_KEY_ID, "no key id: the link has no #k=... part; pass --key-id (the kiosk's key id, "
                                 "`kiosk keygen` prints it)")
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                doc: Any = json.load(f)
        except (OSError, ValueError) as exc:
            ja = gettext_or_none("ja")
            _say([ja(VERDICT_NOT_CHECKED) + ja(FILE_UNREADABLE).format(file=args.file)] if ja else [],
                 [f"kiosk receipt verify: cannot read {args.file}: {exc}"], sys.stderr)
            return 1
    else:
        doc, why, msgid, figures = _fetch(base, code)
        if doc is None:
            verdict = VERDICT_FAILED if msgid == UNKNOWN_CODE else VERDICT_NOT_CHECKED
            return _not_verified(verdict, msgid, why, **figures)
    # The code in the link is the one checked: the answer's body and signature must give it
    # (its "receipt" field is only the portal's word).
    res = check_receipt(doc, key, code=code)
    if not res.ok or res.body is None:
        if res.why in NOT_CHECKED:
            return _not_verified(VERDICT_NOT_CHECKED, REASONS[res.why], res.reason)
        # A step with no words of its own yet still says "could not be confirmed", never nothing.
        return _not_verified(VERDICT_FAILED, REASONS.get(res.why, ""), res.reason, tell=True)
    body, data = res.body, res.body["data"]
    t = datetime.fromtimestamp(body["wall_ms"] / 1000, ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    clock = "" if body.get("clock_synced") else " (kiosk clock not set at the time)"
    ja = gettext_or_none("ja")
    if ja is not None:
        lines = [ja(VERDICT_OK).format(amount=f"¥{data['amount_yen']:,}", project=data["project"], time=t)]
        if not body.get("clock_synced"):
            lines.append("  " + ja(CLOCK_NOT_SET))
        lines += ["  " + ja(WHERE).format(kiosk=body["kiosk"], seq=body["seq"], key=res.key_id),
                  "  " + ja(HOW).format(size=res.checkpoint_size)]
        if doc["donation"].get("voided"):
            lines.append("  " + ja(VOIDED))
        _say(lines, [])
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
