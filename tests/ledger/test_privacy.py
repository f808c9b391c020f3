"""The raw card ID never reaches storage, exports or logs: only the keyed token does."""

from __future__ import annotations

import logging

from kiosk.cli import main
from kiosk.ledger import Ledger, write_export
from kiosk.ledger.clock import FixedClock
from tests.conftest import fake_idm

IDMS = [fake_idm(n) for n in range(8)] + [bytes.fromhex("0123456789abcdef"), bytes.fromhex("012e4cd2a3b4c5d6")]


def _needles(idm: bytes) -> list[bytes]:
    return [idm, idm.hex().encode(), idm.hex().upper().encode(), idm.hex(":").encode(), idm.hex(" ").encode()]


def _assert_absent(blob: bytes, where: str) -> None:
    for idm in IDMS:
        for needle in _needles(idm):
            assert needle not in blob, f"IDm {idm.hex()} found in {where}"


def test_no_idm_in_database_wal_export_or_logs(tmp_path, signing_key, pepper, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "ledger.db"
    led = Ledger.open(path, signing_key, "k-1", clock=FixedClock(), checkpoint_every=7)
    tokens = []
    for i, idm in enumerate(IDMS * 3):
        tok = pepper.token(idm)
        tokens.append(tok.hex)
        intent = led.record_intent("p", 100, "sim", tok, f"idem-{i}")
        led.record_donation(intent.seq, f"ref-{i}", 1)
    led.grant_points(pepper.token(IDMS[0]), 5, "volunteer")
    led.spend_points(pepper.token(IDMS[1]), 3, "p", 30, "city")  # points exchanged for a sponsor's gift (#17)
    # Look at the WAL while it still holds the recent pages, then at the merged file.
    wal = (tmp_path / "ledger.db-wal").read_bytes()
    assert len(wal) > 0
    _assert_absent(wal, "WAL")
    assert tokens[0].encode() in wal or tokens[0].encode() in path.read_bytes()  # the token is what is kept
    led.close()
    _assert_absent(path.read_bytes(), "database")
    for extra in ("ledger.db-wal", "ledger.db-shm"):
        if (tmp_path / extra).exists():
            _assert_absent((tmp_path / extra).read_bytes(), extra)
    write_export(path, tmp_path / "export.jsonl")
    _assert_absent((tmp_path / "export.jsonl").read_bytes(), "export")
    assert main(["ledger", "report", str(path), "--json"]) == 0
    assert main(["ledger", "verify", str(path), "--json"]) == 0
    assert main(["ledger", "export", str(path), "--out", str(tmp_path / "e2.jsonl")]) == 0
    out = capsys.readouterr()
    _assert_absent((out.out + out.err).encode(), "CLI output")
    _assert_absent("\n".join(r.getMessage() + repr(r.args) for r in caplog.records).encode(), "logs")
    # The pepper lives apart from the ledger: the export must not carry it either.
    pepper_hex = next(iter(pepper._peppers.values())).hex().encode()
    assert pepper_hex not in (tmp_path / "export.jsonl").read_bytes()
    assert pepper_hex not in path.read_bytes()


def test_token_repr_is_short():
    from kiosk.ledger import Pepper

    tok = Pepper({1: bytes(32)}).token(IDMS[0])
    assert tok.hex not in repr(tok)
