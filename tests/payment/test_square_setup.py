"""Installation day with a Square Terminal: `kiosk payment pair`, `kiosk payment test`, and `kiosk doctor`'s
payment checks, against the fake Square API on loopback through the real SDK."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.ops.doctor import payment_checks
from tests.payment.fake_square import DEVICE, LOCATION, TOKEN, FakeSquare


def write_config(tmp: Path, *, terminal: str = "square", url: str = "http://127.0.0.1:9", device: str = DEVICE,
                 demo: bool = False, token: str | None = TOKEN, token_mode: int = 0o600) -> Path:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    if token is not None:
        (data / "square-token").write_text(token + "\n")
        (data / "square-token").chmod(token_mode)
    cfg = tmp / "kiosk.toml"
    square = (f'\n[payment.square]\nbase_url = "{url}"\nlocation_id = "{LOCATION}"\ndevice_id = "{device}"\n'
              'deadline_s = 30\nanswer_grace_s = 5\npoll_interval_ms = 100\n') if terminal == "square" else ""
    cfg.write_text(f'[kiosk]\nid = "setup-test-1"\ndata_dir = "{data}"\ndemo = {str(demo).lower()}\n\n'
                   f'[payment]\nterminal = "{terminal}"\n{square}\n'
                   '[[projects]]\nid = "kodomo"\ntitle = "こども食堂"\narea = "children"\n', "utf-8")
    return cfg


def checks(path: Path) -> dict[str, object]:
    return {c.name: c for c in payment_checks(load_config(path), str(path))}


def test_doctor_fails_on_the_simulator_outside_a_demo(tmp_path):
    c = checks(write_config(tmp_path / "real", terminal="sim"))["payment"]
    assert c.status == "fail" and "simulator" in c.detail and 'terminal = "square"' in c.fix
    assert checks(write_config(tmp_path / "demo", terminal="sim", demo=True))["payment"].status == "ok"


def test_doctor_square_token_missing_or_readable_by_others(tmp_path):
    c = checks(write_config(tmp_path / "a", token=None))["payment.square.token"]
    assert c.status == "fail" and "does not exist" in c.detail
    c = checks(write_config(tmp_path / "b", token_mode=0o644))["payment.square.token"]
    assert c.status == "fail" and "readable by others" in c.detail and "chmod 600" in c.fix


def test_doctor_square_device(tmp_path):
    with FakeSquare() as fake:
        c = checks(write_config(tmp_path / "ok", url=fake.url))
        assert c["payment.square.token"].status == "ok" and c["payment.square.device"].status == "ok"
        c = checks(write_config(tmp_path / "none", url=fake.url, device=""))["payment.square.device"]
        assert c.status == "fail" and "no Square Terminal is paired" in c.detail and "kiosk payment pair" in c.fix
        c = checks(write_config(tmp_path / "gone", url=fake.url, device="device:OTHER"))["payment.square.device"]
        assert c.status == "fail" and "kiosk payment pair" in c.fix
        c = checks(write_config(tmp_path / "tok", url=fake.url, token="revoked"))["payment.square.device"]
        assert c.status == "fail" and "access token" in c.detail
    c = checks(write_config(tmp_path / "down", url=fake.url))["payment.square.device"]  # the server is gone
    assert c.status == "fail" and "no answer" in c.detail and "base_url" in c.fix


def test_pair_prints_the_code_waits_and_stores_the_device_id(tmp_path, capsys):
    with FakeSquare() as fake:
        cfg = write_config(tmp_path, url=fake.url, device="")

        def staff_enters_the_code() -> None:
            for _ in range(200):
                if fake.device_codes:
                    fake.pair_terminal(next(iter(fake.device_codes)), "device:PAIRED-1")
                    return
                time.sleep(0.02)

        t = threading.Thread(target=staff_enters_the_code)
        t.start()
        rc = main(["payment", "pair", "--config", str(cfg), "--wait", "20", "--poll", "0.1"])
        t.join()
        out = capsys.readouterr().out
        [code] = fake.device_codes.values()
        assert rc == 0 and code["code"] in out and code["location_id"] == LOCATION
        assert (tmp_path / "data" / "square-device-id").read_text().strip() == "device:PAIRED-1"
        # the kiosk now uses the stored id, and doctor agrees it is paired
        assert checks(cfg)["payment.square.device"].status == "ok"


def test_pair_that_nobody_completes_fails_clearly(tmp_path, capsys):
    with FakeSquare() as fake:
        cfg = write_config(tmp_path, url=fake.url, device="")
        assert main(["payment", "pair", "--config", str(cfg), "--wait", "0.3", "--poll", "0.1"]) == 1
        assert "not paired within" in capsys.readouterr().err
        assert not (tmp_path / "data" / "square-device-id").exists()


@pytest.mark.parametrize("plan,rc,words", [
    (["tap", "complete"], 0, ["outcome: approved", "refunded:"]),
    (["cancel"], 1, ["outcome: declined", "BUYER_CANCELED"]),
])
def test_payment_test_makes_one_checkout_and_refunds_it(tmp_path, capsys, plan, rc, words):
    with FakeSquare() as fake:
        fake.plan = plan
        cfg = write_config(tmp_path, url=fake.url)
        assert main(["payment", "test", "--config", str(cfg), "--amount", "100"]) == rc
        out = capsys.readouterr().out
        assert all(w in out for w in words), out
        co = fake.only()
        assert co.request["amount_money"] == {"amount": 100, "currency": "JPY"}
        assert len(fake.refunds) == (1 if rc == 0 else 0)
        if rc == 0:
            [ref] = fake.refunds.values()
            assert ref["payment_id"] == co.payment_ids[0]


def test_kiosk_run_without_the_token_says_what_to_do_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    cfg = write_config(tmp_path, token=None)
    with cfg.open("a", encoding="utf-8") as f:
        f.write('\n[player]\ndisplay = "headless"\nwidth = 320\nheight = 180\n')
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    r = subprocess.run([sys.executable, "-m", "kiosk", "run", "--config", str(cfg), "--seconds", "1"],
                       capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "Square access token file" in r.stderr and "docs/payment.md" in r.stderr
