"""Follow-ups of the auditor's walkthrough (tests/test_auditor_walkthrough.py), done the same way: a real
`kiosk demo` writes a ledger and fills a real portal, and the real `kiosk` and `kiosk-portal` commands run as
processes on the files an auditor is handed.

1. An export whose tail was cut and whose header checkpoint was set to null verified OK (with only a note
   that nothing vouches against a cut tail), though its entries hold checkpoint entries: an honest export
   always carries the newest one in its header.
2. `kiosk ledger verify --pubkey FILE` with a hex key, the private key or garbage printed cryptography's own
   message with a link to its FAQ, on stderr, and no NOT CHECKED verdict (nor JSON with --json).
3. `kiosk demo` printed each donation's seq but no receipt, so nobody trying the demo could try a receipt.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import Ledger
from kiosk.ledger.clock import FixedClock
from server_sync.wire.receipt import receipt_code_of
from tests.auditor_files import ENV, body, english, kiosk, read_export, write_export

# The demo, run with every log record (DEBUG, every logger) written to a file: what the demo logs is there,
# what it prints is on stdout.
DEMO_WITH_LOG = ("import logging, sys\n"
                 "logging.basicConfig(level=logging.DEBUG, filename=sys.argv[1], "
                 "format='%(levelname)s %(name)s %(message)s')\n"
                 "from kiosk.cli import main\n"
                 "sys.exit(main(sys.argv[2:]))\n")




@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("followups")
    data = root / "demo"
    log_file = root / "demo.log"
    r = subprocess.run([sys.executable, "-c", DEMO_WITH_LOG, str(log_file), "demo", "--headless", "--taps", "3",
                        "--data-dir", str(data)], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    export = root / "ledger.jsonl"
    e = kiosk("ledger", "export", str(data / "ledger.db"), "--out", str(export))
    assert e.returncode == 0, e.stderr
    header, entries = read_export(export)
    return {"root": root, "data": data, "run": r, "log": log_file.read_text(), "export": export, "header": header,
            "entries": entries}


# --- 1. a cut export whose header checkpoint was set to null -----------------------------------------------

def test_a_cut_export_with_its_header_checkpoint_nulled_is_invalid(demo):
    header, entries = demo["header"], demo["entries"]
    checkpoints = [e["seq"] for e in entries if body(e)["type"] == "checkpoint"]
    assert header["checkpoint"] is not None and len(checkpoints) >= 2
    kept = entries[:checkpoints[-1] - 1]  # the newest checkpoint entry and all after it cut; older ones stay
    assert any(body(e)["type"] == "checkpoint" for e in kept)
    bad = write_export(demo["root"] / "cut-nulled.jsonl", dict(header, entries=len(kept), checkpoint=None), kept)
    r = kiosk("ledger", "verify", str(bad))
    assert r.returncode == 1, r.stdout + r.stderr
    newest_left = max(e["seq"] for e in kept if body(e)["type"] == "checkpoint")
    assert english(r.stdout).startswith(f"INVALID at seq={len(kept) + 1}: export header has no checkpoint, yet its "
                                        f"entries hold checkpoint entries (the newest at seq={newest_left})"), r.stdout
    assert "cut from the end" in r.stdout
    r = kiosk("ledger", "verify", "--json", str(bad))
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["ok"] is False and doc["bad_seq"] == len(kept) + 1


def test_an_export_whose_header_holds_an_older_checkpoint_of_its_own_is_invalid(demo):
    """The whole export, with the header's note swapped for an older (genuine) checkpoint entry's: not what an
    export writes, so the header was changed."""
    header, entries = demo["header"], demo["entries"]
    checkpoints = [e for e in entries if body(e)["type"] == "checkpoint"]
    older = body(checkpoints[-2])["data"]["note"]
    assert older != header["checkpoint"]
    bad = write_export(demo["root"] / "older-note.jsonl", dict(header, checkpoint=older), entries)
    r = kiosk("ledger", "verify", str(bad))
    assert r.returncode == 1, r.stdout + r.stderr
    assert english(r.stdout).startswith("INVALID at seq=0: export header's checkpoint is not the note of its newest "
                               f"checkpoint entry (seq={checkpoints[-1]['seq']})"), r.stdout


def test_honest_exports_and_the_database_still_verify(demo, tmp_path):
    r = kiosk("ledger", "verify", str(demo["export"]))
    assert r.returncode == 0 and english(r.stdout).startswith("OK: "), r.stdout + r.stderr
    assert "export's own signed checkpoint of size" in r.stdout
    r = kiosk("ledger", "verify", str(demo["data"] / "ledger.db"))
    assert r.returncode == 0 and english(r.stdout).startswith("OK: "), r.stdout + r.stderr
    # A ledger that never wrote a checkpoint entry: its honest export has a null header checkpoint and verifies.
    led = Ledger.open(tmp_path / "young.db", Ed25519PrivateKey.generate(), "young-kiosk", clock=FixedClock(),
                      boot=False)
    led.close(checkpoint=False)
    out = tmp_path / "young.jsonl"
    e = kiosk("ledger", "export", str(tmp_path / "young.db"), "--out", str(out))
    assert e.returncode == 0, e.stderr
    assert read_export(out)[0]["checkpoint"] is None
    r = kiosk("ledger", "verify", str(out))
    assert r.returncode == 0 and english(r.stdout).startswith("OK: 1 entries of kiosk young-kiosk"), r.stdout + r.stderr
    assert "carries no signed checkpoint" in r.stdout


# --- 2. --pubkey that is not a PEM public key --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["hex", "private", "garbage"])
def test_a_pubkey_file_of_the_wrong_kind_is_named_and_nothing_is_checked(demo, kind):
    root = demo["root"]
    if kind == "hex":  # the kiosk's key as the portal shows it (and as the export header holds it)
        path = root / "key.hex"
        path.write_text(demo["header"]["public_key"] + "\n")
        what = "holds a key written as 64 hex digits"
    elif kind == "private":
        path = demo["data"] / "keys" / "kiosk.key"
        what = "is a private signing key"
    else:
        path = root / "garbage.pub"
        path.write_bytes(b"\x00\x01 not a key \xff")
        what = "is not a public key file"
    r = kiosk("ledger", "verify", str(demo["export"]), "--pubkey", str(path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert english(r.stdout).startswith(f"NOT CHECKED: --pubkey {path} {what}"), r.stdout + r.stderr
    assert "-----BEGIN PUBLIC KEY-----" in r.stdout and "kiosk keygen" in r.stdout and "kiosk.pub" in r.stdout
    assert "INVALID" not in r.stdout + r.stderr
    assert "cryptography.io" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    r = kiosk("ledger", "verify", "--json", str(demo["export"]), "--pubkey", str(path))
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["checked"] is False and doc["error"].startswith(f"--pubkey {path} {what}")


def test_the_kiosks_own_public_key_file_is_taken(demo):
    r = kiosk("ledger", "verify", str(demo["export"]), "--pubkey", str(demo["data"] / "keys" / "kiosk.pub"))
    assert r.returncode == 0 and english(r.stdout).startswith("OK: "), r.stdout + r.stderr


# --- 3. the demo prints each donation's receipt ------------------------------------------------------------

def test_the_demo_prints_each_receipt_link_and_logs_none(demo):
    out = demo["run"].stdout
    portal = re.search(r"kiosk demo: portal at (http://127\.0\.0\.1:\d+) ", out)
    assert portal, out
    lines = out.splitlines()
    given = [(i, int(m.group(1))) for i, ln in enumerate(lines) if (m := re.fullmatch(r"donation seq=(\d+) .*", ln))]
    assert len(given) == 3, out
    by_seq = {e["seq"]: e for e in demo["entries"]}
    key_id = demo["header"]["key_id"]
    codes = []
    for i, seq in given:
        e = by_seq[seq]
        assert body(e)["type"] == "donation"
        code = receipt_code_of(base64.b64decode(e["body"]), base64.b64decode(e["signature"]))
        # the link the thank-you QR code holds: the portal's address, /r/<code>, and the kiosk's key id
        assert lines[i + 1] == f"  receipt: {portal.group(1)}/r/{code}#k={key_id}", out
        codes.append(code)
    assert "kiosk-portal serve --db sqlite:///" in out and "/r/<code>" in out
    # A receipt code lets its holder see the gift: the demo's terminal only, never its log.
    assert demo["log"].strip(), "the demo wrote no log at all: the check below would prove nothing"
    for code in codes:
        assert code not in demo["log"] and code not in demo["run"].stderr

    # The link works: the demo's portal database, served again, answers each code with its gift.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
        proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db",
                                 f"sqlite:///{demo['data'] / 'portal.db'}", "--fd", str(s.fileno()), "--log-level",
                                 "warning"], pass_fds=[s.fileno()], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        for (_, seq), code in zip(given, codes, strict=True):
            page = requests.get(f"{base}/r/{code}", timeout=10)
            assert page.status_code == 200
            ans = requests.get(f"{base}/api/v1/receipts/{code}", timeout=10)
            assert ans.status_code == 200 and ans.json()["donation"]["seq"] == seq, ans.text
    finally:
        proc.terminate()
        proc.wait(15)
