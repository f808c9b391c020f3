"""The raw IDm never reaches a log, an event, a repr or the probe output."""

from __future__ import annotations

import logging

import pytest
from reader_fakes import FakeNfcDevice, frontend_with

from kiosk.reader import nfcpy_backend
from kiosk.reader.cli import format_event
from kiosk.reader.events import CardPresented
from kiosk.reader.nfcpy_backend import NfcpyReader
from kiosk.reader.sim import SimReader, make_card
from kiosk.reader.supervisor import ReaderSupervisor

IDMS = [bytes.fromhex(h) for h in ("0123456789ABCDEF", "01A0B1C2D3E4F5A6", "0101FEDCBA987654", "0114A5A5A5A5A5A5")]


def forms(idm: bytes) -> list[str]:
    hx = idm.hex()
    return [hx, hx.upper(), idm.hex(" "), idm.hex(" ").upper(), idm.hex(":"), repr(idm)[2:-1], idm.decode("latin-1")]


def leaks(text: str) -> list[str]:
    return [f for idm in IDMS for f in forms(idm) if f in text]


def drive(sup, clock, seconds):
    end = clock.now + seconds
    while clock.now < end:
        clock.advance(max(sup.step(), 0.001))


def everything_said(events, caplog) -> str:
    parts = [caplog.text] + [r.getMessage() for r in caplog.records]
    taps = 0
    for e in events:
        parts += [repr(e), str(e)]
        if isinstance(e, CardPresented):
            taps += 1
            parts += [repr(e.record), str(e.record), repr(e.record.token)]
        parts.append(format_event(e, taps))
    return "\n".join(parts)


def test_sim_reader_never_leaks_the_idm(rconf, pepper, clock, caplog):
    caplog.set_level(logging.DEBUG)
    r = SimReader(rconf(cooldown_ms=0), pepper.token, clock=clock, sleep=clock.sleep)
    sup = ReaderSupervisor(r)
    a, b, c, d = IDMS
    drive(sup, clock, 0.1)
    r.tap(make_card(f"suica idm={a.hex()}"))
    drive(sup, clock, 1.0)
    r.tap(make_card(f"iphone idm={b.hex()}"))
    drive(sup, clock, 1.0)
    r.tap(make_card(f"pasmo idm={c.hex()} error=01A6"))
    drive(sup, clock, 1.0)
    r.tap(make_card(f"icoca idm={d.hex()} drop=0"))
    drive(sup, clock, 1.0)
    r.place(make_card(f"suica idm={a.hex()}"))
    r.place(make_card(f"pasmo idm={c.hex()}"))
    drive(sup, clock, 0.5)
    r.remove()
    r.place(make_card(f"suica idm={a.hex()}"))
    drive(sup, clock, 0.2)
    r.unplug()
    drive(sup, clock, 1.0)
    r.replug()
    drive(sup, clock, 1.0)
    events = sup.events.drain()
    kinds = {type(e).__name__ for e in events}
    assert {"CardPresented", "ReadError", "CardRemoved", "ReaderDisconnected", "ReaderConnected"} <= kinds
    assert leaks(everything_said(events, caplog)) == []
    # and the sessions/cards that do hold the IDm keep it out of their repr
    assert leaks(repr(r.field)) == []


def test_nfcpy_path_never_leaks_the_idm_even_at_debug(rconf, pepper, clock, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="nfc")
    card = make_card(f"suica idm={IDMS[0].hex()}")
    dev = FakeNfcDevice(card.answer)
    r = NfcpyReader(rconf(backend="nfcpy"), pepper.token, opener=lambda p: frontend_with(dev), clock=clock)
    sup = ReaderSupervisor(r)
    drive(sup, clock, 0.5)
    dev.card = make_card(f"suica idm={IDMS[1].hex()} error=01A6").answer
    drive(sup, clock, 0.5)
    dev.unplugged = True
    drive(sup, clock, 0.5)
    events = sup.events.drain()
    assert any(isinstance(e, CardPresented) for e in events)
    assert leaks(everything_said(events, caplog)) == []


def test_the_nfcpy_filter_is_what_keeps_the_idm_out(rconf, pepper, clock, caplog):
    """Proof the test above can fail: without our filter nfcpy logs the IDm."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="nfc")
    tt3 = logging.getLogger("nfc.tag.tt3")
    tt3.removeFilter(nfcpy_backend._DROP_DEBUG)
    try:
        dev = FakeNfcDevice(make_card(f"suica idm={IDMS[0].hex()}").answer)
        r = NfcpyReader(rconf(backend="nfcpy"), pepper.token, opener=lambda p: frontend_with(dev), clock=clock)
        r.open()
        r.poll()
        assert leaks(caplog.text) != []
    finally:
        nfcpy_backend.quiet_nfcpy_logs()


@pytest.mark.parametrize("show", [False, True])
def test_probe_prints_the_idm_only_with_show_idm(tmp_path, show, capsys):
    import argparse

    from kiosk.reader.cli import register

    script = tmp_path / "s.txt"
    script.write_text(f"0.1 tap suica idm={IDMS[2].hex()}\n")
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    argv = ["reader", "probe", "--count", "1", "--timeout", "10", "--sim-script", str(script)]
    args = p.parse_args(argv + (["--show-idm"] if show else []))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "tap 1: suica" in out
    if show:
        assert f"IDm {IDMS[2].hex().upper()}" in out
    else:
        assert leaks(out) == []


@pytest.mark.parametrize("command", [["-m", "kiosk.reader", "reader", "probe"], ["-m", "kiosk", "staff", "card"]],
                         ids=["reader probe", "staff card"])
def test_tools_that_read_real_cards_can_leave_no_core_dump(tmp_path, command):
    """`kiosk reader probe` (holding IDms for --show-idm) and `kiosk staff card` on a real reader switch core
    dumps off first thing (kiosk/reader/nodump.py): RLIMIT_CORE 0, whatever limit they were started with."""
    import os
    import resource
    import subprocess
    import sys
    import time
    from pathlib import Path

    from kiosk.config import load_config
    from kiosk.ops.local_files import ensure_secrets

    cfg_path = tmp_path / "kiosk.toml"
    cfg_path.write_text(f'[kiosk]\nid = "probe-1"\ndata_dir = "{tmp_path / "data"}"\n\n[reader]\nbackend = "nfcpy"\n'
                        '\n[[projects]]\nid = "kodomo"\ntitle = "こども食堂"\narea = "children"\n')
    ensure_secrets(load_config(cfg_path))

    def allow_cores() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        pytest.skip("this process may not raise RLIMIT_CORE: a child could not start with core dumps on")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, *command, "--config", str(cfg_path), "--timeout", "30"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=allow_cores)
    try:
        limit = None
        deadline = time.monotonic() + 60  # liveness only: the child's start-up, slow on a loaded CI host
        while time.monotonic() < deadline and proc.poll() is None:
            lines = Path(f"/proc/{proc.pid}/limits").read_text().splitlines()
            limit = next(ln.split()[4] for ln in lines if ln.startswith("Max core file size"))
            if limit == "0":
                break
            time.sleep(0.1)
        assert limit == "0", f"core dumps still allowed (soft limit {limit})"
    finally:
        proc.terminate()
        proc.wait(10)
