"""`kiosk ledger verify` says its Japanese verdict first (as `kiosk receipt verify` does), with what was found and
what to do when it fails, then the English line a script reads; `kiosk ledger report` counts an export in the
same pass that verifies it (the file is read once, and the totals are of the bytes that were verified).

Real files throughout: a ledger written by the project's own Ledger, exported by `write_export`, changed on disk."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.cli import main
from kiosk.ledger import write_export
from kiosk.ledger.clock import FixedClock
from tests.conftest import build_sample


@pytest.fixture
def export(tmp_path: Path, signing_key: Ed25519PrivateKey, pepper: Any) -> Path:  # noqa: ANN401
    led = build_sample(tmp_path / "ledger.db", signing_key, pepper, FixedClock())
    led.close()
    out = tmp_path / "ledger.jsonl"
    write_export(tmp_path / "ledger.db", out)
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    return path


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["ledger", "verify", *argv])
    return code, capsys.readouterr().out.splitlines()


def test_a_sound_export_says_its_japanese_verdict_first(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(capsys, str(export))
    assert code == 0
    assert out[0].startswith("判定：正しい台帳です。端末 test-kiosk-1 の記録 "), out
    assert out[1].startswith("OK: ") and len(out) == 2, out


def test_a_changed_export_says_what_was_found_and_what_to_do_first(export: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(export)
    donation = next(x for x in lines[1:] if b'"type":"donation"' in base64.b64decode(x["body"]))
    body = base64.b64decode(donation["body"]).replace(b'"amount_yen":500', b'"amount_yen":900')
    donation["body"] = base64.b64encode(body).decode()
    code, out = _verify(capsys, str(_write(export.with_name("changed.jsonl"), lines)))
    seq = donation["seq"]
    assert code == 1
    assert out[0] == (f"判定：正しくありません。{seq}番目の記録で問題が見つかりました："
                      "記録の中身が、署名されたときから変わっています（書き換えられたおそれ）。"), out
    # What to do, in plain words: keep the file and its card or stick as they are, and tell the center and the city.
    assert out[1].startswith("  対応：このファイルを消したり上書きしたりせず、そのまま保管してください"), out
    assert "SDカード" in out[1] and "USBメモリ" in out[1] and "センターと市の担当者" in out[1], out
    assert out[2] == f"INVALID at seq={seq}: entry_hash does not match the body", out


def test_another_kiosks_key_is_not_called_a_tampered_ledger(export: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The auditor gave the wrong kiosk's key: the ledger is not called wrong, and it says to check the key file."""
    other = tmp_path / "other.pub"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, out = _verify(capsys, str(export), "--pubkey", str(other))
    assert code == 1
    assert out[0].startswith("判定：正しいかどうか確かめきれませんでした。") and "--pubkey" in out[0], out
    assert out[1].startswith("  対応：公開鍵のファイルがこの端末のもの"), out
    assert out[2].startswith("INVALID at seq=1: ledger was created by another kiosk key"), out


def test_nothing_checked_says_so_first_and_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(capsys, str(tmp_path / "ledgr.jsonl"))
    assert code == 1
    assert out[0].startswith("判定：何も確かめていません。") and "下の英語の行" in out[0], out
    assert out[1].startswith("  対応：指定したファイル"), out
    assert out[2].startswith(f"NOT CHECKED: {tmp_path / 'ledgr.jsonl'} does not exist"), out


def test_an_export_header_whose_entry_count_is_not_a_number_is_invalid_not_a_traceback(
        export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`worth_parallel` compared the header's `entries` with a number: "x" raised TypeError out of `kiosk ledger
    verify` (and report), a traceback for the auditor instead of a verdict."""
    lines = _lines(export)
    lines[0]["entries"] = "x"
    bad = _write(export.with_name("header.jsonl"), lines)
    code, out = _verify(capsys, str(bad))
    assert code == 1 and out[-1] == f"INVALID at seq={len(lines)}: export header promises x entries, found " \
                                    f"{len(lines) - 1}", out
    assert main(["ledger", "report", str(bad)]) == 1
    assert "the export does not verify: INVALID" in capsys.readouterr().err


# --- `kiosk ledger report` of an export: one read -----------------------------------------------------------

_opens: list[str] | None = None  # while a test watches: each opening of the watched file that read_export made


def _watch(event: str, args: tuple[Any, ...]) -> None:
    if _opens is None or event != "open" or not str(args[0]).endswith("watched.jsonl"):
        return
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "read_export" and f.f_globals.get("__name__") == "kiosk.ledger.export":
            _opens.append(str(args[0]))
            return
        f = f.f_back


sys.addaudithook(_watch)  # audit hooks stay for the process: _watch does nothing unless _opens is a list


@pytest.fixture
def opens() -> Iterator[list[str]]:
    global _opens
    _opens = []
    try:
        yield _opens
    finally:
        _opens = None


def test_report_reads_the_export_once_and_counts_what_it_verified(export: Path, opens: list[str],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    watched = export.with_name("watched.jsonl")
    watched.write_bytes(export.read_bytes())
    assert main(["ledger", "report", str(watched), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert len(opens) == 1, f"the export was read {len(opens)} times"
    # The same figures as the kiosk's own database gives (build_sample: 500 voided, 1000 settled).
    assert main(["ledger", "report", str(export.with_name("ledger.db")), "--json"]) == 0
    db = json.loads(capsys.readouterr().out)
    assert {k: rep[k] for k in db} == db
    assert (rep["count"], rep["total_yen"], rep["voided"], rep["kiosk_id"]) == (1, 1000, 1, "test-kiosk-1")
    assert rep["verified"].startswith("OK: ")


def test_report_prints_no_totals_when_the_last_entry_fails(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Counting goes along with the check now: an export whose every donation was counted before its last entry's
    signature was found bad still prints nothing but why."""
    lines = _lines(export)
    lines[-1]["signature"] = base64.b64encode(bytes(64)).decode()
    bad = _write(export.with_name("lastsig.jsonl"), lines)
    assert main(["ledger", "report", str(bad), "--json"]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.startswith(f"kiosk ledger report: nothing counted: the export does not verify: "
                              f"INVALID at seq={len(lines) - 1}: bad signature"), cap.err
