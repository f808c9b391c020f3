"""Menu PIN: only a salted hash is stored; wrong PINs lock the keypad for growing times."""

from __future__ import annotations

import io
import sys

import pytest
from pydantic import ValidationError

from kiosk.cli import main
from kiosk.config.staff import StaffSection
from kiosk.staff.gate import StaffGate
from kiosk.staff.pin import PinError, PinLock, hash_pin, verify_pin


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


FAST = {"n": 2**10}  # cheaper scrypt for tests; the format records the parameters


def test_hash_is_salted_and_never_holds_the_pin():
    a, b = hash_pin("482916", **FAST), hash_pin("482916", **FAST)
    assert a != b  # fresh salt each time
    for h in (a, b):
        assert h.startswith("scrypt$1024$8$1$") and "482916" not in h
        assert verify_pin("482916", h) and not verify_pin("482917", h)
    # Default cost, as `kiosk staff set-pin` writes it.
    assert hash_pin("1234").startswith("scrypt$16384$8$1$")


def test_config_accepts_only_a_hash_line():
    StaffSection(pin_hash=hash_pin("2468", **FAST))
    with pytest.raises(ValidationError, match="never the PIN itself"):
        StaffSection(pin_hash="2468")


@pytest.mark.parametrize("bad", ["123", "123456789", "12a4", "１２３４", ""])
def test_pin_format(bad):
    with pytest.raises(PinError):
        hash_pin(bad)


def test_lockout_grows_and_clears_with_a_fake_clock():
    clock = FakeClock()
    lock = PinLock(hash_pin("7391", **FAST), free_attempts=3, base_s=30, max_s=100, clock=clock)
    for n in (1, 2):
        r = lock.attempt("0000")
        assert not r.ok and r.locked_for_s == 0 and r.failures == n
    r = lock.attempt("0000")  # third wrong PIN: locked
    assert not r.ok and r.locked_for_s == 30
    clock.t += 29
    r = lock.attempt("7391")  # the right PIN is not even checked while locked
    assert not r.ok and r.refused and r.locked_for_s == pytest.approx(1)
    clock.t += 1
    r = lock.attempt("1111")
    assert r.locked_for_s == 60 and r.failures == 4  # doubled
    clock.t += 60
    assert lock.attempt("2222").locked_for_s == 100  # 120 capped at max_s
    clock.t += 100
    assert lock.attempt("3333").locked_for_s == 100
    clock.t += 100
    r = lock.attempt("7391")
    assert r.ok and r.failures == 0 and lock.locked_for() == 0
    # Back to the free attempts after a success.
    assert lock.attempt("0000").locked_for_s == 0


def test_gate_records_failures_without_the_pin(site):
    clock = FakeClock()
    gate = StaffGate(site.writer, StaffSection(pin_hash=hash_pin("5080", **FAST), free_attempts=1, lockout_base_s=10),
                     clock=clock)
    session, attempt = gate.open_with_pin("9999")
    assert session is None and attempt.locked_for_s == 10
    clock.t += 10
    session, attempt = gate.open_with_pin("5080")
    assert session is not None and session.by == "pin"
    session.close()
    actions = [e.data for e in site.ledger.iter_entries() if e.type == "admin_action"]
    assert [a["action"] for a in actions] == ["pin_failed", "pin_locked", "menu_open", "menu_close"]
    assert not any("9999" in str(a) or "5080" in str(a) for a in actions)


def test_set_pin_cli_reads_stdin_and_prints_the_hash_line(site, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("864213\n"))
    assert main(["staff", "set-pin", "--config", str(site.config_path)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith('pin_hash = "scrypt$') and "864213" not in out
    value = out.split('"')[1]
    assert verify_pin("864213", value)
    StaffSection(pin_hash=value)
    monkeypatch.setattr(sys, "stdin", io.StringIO("12\n"))
    assert main(["staff", "set-pin"]) == 2


def test_staff_card_cli_prints_the_token_of_the_tapped_card(tmp_path, capsys):
    from kiosk.config import load_config
    from kiosk.ledger import Pepper
    from kiosk.ops.local_files import ensure_secrets

    from .conftest import CONFIG

    site = tmp_path / "site"
    site.mkdir()
    (site / "script.txt").write_text("0.1 tap suica idm=0123456789abcdef\n")
    path = site / "kiosk.toml"
    path.write_text(CONFIG.replace('backend = "sim"', 'backend = "sim"\nsim_script = "script.txt"'), "utf-8")
    cfg = load_config(path)
    ensure_secrets(cfg)
    assert main(["staff", "card", "--config", str(path), "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    want = Pepper.load(cfg.pepper_path).token(bytes.fromhex("0123456789abcdef")).hex
    assert out.startswith(f'staff_tokens = ["{want}"]')
    assert "0123456789abcdef" not in out
    StaffSection(staff_tokens=[want])
