"""The auditor's walkthrough (docs/receipts.md, "An auditor's walkthrough"), done as an auditor would:
the real `kiosk demo` writes a ledger and fills a real portal, the real `kiosk` and `kiosk-portal` commands
run as processes, and the files an auditor is handed are tampered with the way a dishonest party would."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time

import pytest
import requests

from server_sync.wire.receipt import receipt_code_of
from tests.auditor_files import body, english, kiosk, read_export, write_export


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """A demo run, its export, and the portal (`kiosk-portal serve` on the demo's database) an auditor asks."""
    root = tmp_path_factory.mktemp("audit")
    demo = root / "demo"
    r = kiosk("demo", "--headless", "--taps", "4", "--data-dir", str(demo))
    assert r.returncode == 0, r.stderr
    export = root / "ledger.jsonl"
    r = kiosk("ledger", "export", str(demo / "ledger.db"), "--out", str(export))
    assert r.returncode == 0, r.stderr
    header, entries = read_export(export)
    donations = [e for e in entries if body(e)["type"] == "donation"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db",
                                 f"sqlite:///{demo / 'portal.db'}", "--fd", str(s.fileno()), "--log-level",
                                 "warning"], pass_fds=[s.fileno()], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        # The donor's receipt link, as the thank-you QR shows it: the code is computed from the signed entry.
        first = donations[0]
        code = receipt_code_of(base64.b64decode(first["body"]), base64.b64decode(first["signature"]))
        saved = root / "receipt.json"
        ans = requests.get(f"{base}/api/v1/receipts/{code}", timeout=10)
        assert ans.status_code == 200
        saved.write_text(ans.text)
        yield {"root": root, "demo": demo, "export": export, "header": header, "entries": entries,
               "donations": donations, "base": base, "url": f"{base}/r/{code}#k={header['key_id']}",
               "saved": saved}
    finally:
        proc.terminate()
        proc.wait(15)


def test_the_portals_totals_are_the_sum_of_the_ledger(audit):
    r = kiosk("ledger", "verify", str(audit["export"]))
    assert r.returncode == 0 and english(r.stdout).startswith("OK: "), r.stdout + r.stderr
    said = r.stdout.splitlines()[0]  # first, the verdict in plain Japanese (as `kiosk receipt verify` says it)
    assert said.startswith(f"判定：正しい台帳です。端末 {audit['header']['kiosk_id']} の記録 "
                           f"{len(audit['entries'])}件すべての署名とつながりを確かめ"), said
    r = kiosk("ledger", "report", str(audit["export"]), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["verified"].startswith(f"OK: {len(audit['entries'])} entries"), rep["verified"]
    portal = requests.get(f"{audit['base']}/api/v1/totals", timeout=10).json()
    assert (portal["count"], portal["total_yen"]) == (rep["count"], rep["total_yen"])
    assert portal["projects"] == rep["projects"]
    assert rep["count"] == len(audit["donations"]) == 4


def test_the_receipt_verifies_online_and_from_the_saved_answer(audit):
    amount = body(audit["donations"][0])["data"]["amount_yen"]
    for extra in ([], ["--file", str(audit["saved"])]):
        r = kiosk("receipt", "verify", audit["url"], *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        # Japanese first (判定：…), then the English line a script reads (docs/receipts.md).
        assert r.stdout.startswith("判定：この寄付は確認できました。"), r.stdout
        assert f"\nVERIFIED: ¥{amount:,} to " in r.stdout, r.stdout


def test_a_saved_receipt_with_its_amount_changed_is_not_verified(audit):
    doc = json.loads(audit["saved"].read_text())
    doc["donation"]["amount_yen"] += 100
    bad = audit["root"] / "receipt-amount.json"
    bad.write_text(json.dumps(doc))
    r = kiosk("receipt", "verify", audit["url"], "--file", str(bad))
    assert r.returncode == 1 and r.stdout.startswith("判定：この寄付は確認できませんでした。"), r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].startswith("NOT VERIFIED: "), r.stdout


def test_the_receipts_checkpoint_holds_the_export(audit):
    """`--checkpoint` takes the saved receipt answer itself: its signed checkpoint is what the receipt was
    proved against, and the export must reach it and give its root. Before, the JSON was read as a note and
    refused as "INVALID at seq=0: checkpoint file: note needs exactly one blank line ..."."""
    r = kiosk("ledger", "verify", str(audit["export"]), "--checkpoint", str(audit["saved"]))
    assert r.returncode == 0, r.stdout + r.stderr
    size = json.loads(audit["saved"].read_text())["verification"]["checkpoint_size"]
    assert f"consistent with checkpoint of size {size}" in r.stdout


def test_an_export_cut_back_to_an_earlier_checkpoint_is_caught_with_the_receipts_checkpoint(audit):
    """Cut the export's tail back to an earlier checkpoint entry and put that entry's (genuine, signed) note in
    the header: every entry and the header still check, so the file alone cannot tell (docs/ledger.md, "Export
    format"). The checkpoint of a receipt the auditor holds can."""
    header, entries = audit["header"], audit["entries"]
    cut = max(e["seq"] for e in entries[:-3] if body(e)["type"] == "checkpoint")
    note = body(entries[cut - 1])["data"]["note"]
    bad = write_export(audit["root"] / "cut.jsonl", dict(header, entries=cut, checkpoint=note), entries[:cut])
    alone = kiosk("ledger", "verify", str(bad))
    assert alone.returncode == 0, alone.stdout  # the limitation the docs now state
    r = kiosk("ledger", "verify", str(bad), "--checkpoint", str(audit["saved"]))
    assert r.returncode == 1, r.stdout + r.stderr
    assert english(r.stdout).startswith(f"INVALID at seq={cut + 1}: ledger truncated"), r.stdout


@pytest.mark.parametrize("tamper", ["amount", "drop", "tail"])
def test_a_tampered_export_names_what_is_wrong(audit, tamper):
    header, entries = audit["header"], [dict(e) for e in audit["entries"]]
    d = audit["donations"][1]["seq"]
    if tamper == "amount":
        b = body(entries[d - 1])
        b["data"]["amount_yen"] = 1000 if b["data"]["amount_yen"] != 1000 else 100
        entries[d - 1]["body"] = base64.b64encode(
            json.dumps(b, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()).decode()
        want = f"INVALID at seq={d}: entry_hash does not match the body"
    elif tamper == "drop":
        del entries[d - 1]
        header = dict(header, entries=len(entries))
        want = f"INVALID at seq={d}: entry missing"
    else:
        entries = entries[:-2]
        header = dict(header, entries=len(entries))
        want = f"INVALID at seq={len(entries) + 1}: ledger truncated"
    bad = write_export(audit["root"] / f"{tamper}.jsonl", header, entries)
    r = kiosk("ledger", "verify", str(bad))
    assert r.returncode == 1 and english(r.stdout).startswith(want), r.stdout + r.stderr
    bad_seq = int(want.split("seq=")[1].split(":")[0])
    said = r.stdout.splitlines()[0]
    assert said.startswith(f"判定：正しくありません。{bad_seq}番目の記録で問題が見つかりました"), r.stdout
    # The report verifies an export before it counts anything: no totals from a changed file.
    r = kiosk("ledger", "report", str(bad))
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert r.stderr.startswith(f"kiosk ledger report: nothing counted: the export does not verify: {want}"), r.stderr


def test_a_ledger_file_that_is_not_there_is_not_called_invalid(audit):
    """A mistyped path used to print "INVALID at seq=0: … does not exist": the word an auditor reads as a
    tampered ledger. Nothing was checked, and the verdict line says so."""
    missing = audit["root"] / "ledgr.jsonl"
    r = kiosk("ledger", "verify", str(missing))
    assert r.returncode == 1
    assert "INVALID" not in r.stdout + r.stderr
    assert english(r.stdout).startswith(f"NOT CHECKED: {missing} does not exist")
    assert r.stdout.startswith("判定：何も確かめていません。"), r.stdout
    r = kiosk("ledger", "verify", "--json", str(missing))  # a script gets JSON that says the same
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["checked"] is False and doc["error"].startswith(f"{missing} does not exist")


@pytest.mark.parametrize("kind", ["missing", "other json"])
def test_a_checkpoint_file_of_the_wrong_kind_is_named(audit, kind):
    path = audit["root"] / f"cp-{kind.replace(' ', '-')}.json"
    if kind == "other json":
        path.write_text(json.dumps({"count": 1}))
    r = kiosk("ledger", "verify", str(audit["export"]), "--checkpoint", str(path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "INVALID" not in r.stdout and "Traceback" not in r.stderr
    assert english(r.stdout).startswith(f"NOT CHECKED: --checkpoint {path}")
