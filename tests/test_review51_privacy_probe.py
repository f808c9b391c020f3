"""`kiosk reader probe` does not print a card's trips unless asked (--show-trips).

The probe is run at the desk on a citizen's card (docs/readers.md: --show-idm is "for matching a card to a
complaint at the desk"), and its output is copied into support mails and issue reports. A card's history is
where and when its holder travelled: the probe used to print every trip it read (date, terminal, process,
balance after it, transaction number) on every tap, although checking a reader needs only to know that the
history could be read. Real parts: the simulated reader (the project's own USB-frame stand-in), the probe's own
command, a real pepper.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kiosk.reader.cli import register
from kiosk.reader.sim import make_card
from kiosk.reader.transit import parse_history

# One of the simulated Suica's trips, as the probe printed it: "2024-04-20  gate  fare  ¥2,819  #236833".
SUICA = make_card("suica")


def _trips() -> list[str]:
    """What identifies each trip of the simulated Suica in text: its date and its transaction number."""
    history, bad = parse_history(SUICA.history[:3])
    assert not bad and len(history) == 3
    return [h.date.isoformat() for h in history] + [f"#{h.transaction_number}" for h in history]


def _probe(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    script = tmp_path / "s.txt"
    script.write_text("0.05 tap suica\n")
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(["reader", "probe", "--count", "1", "--timeout", "10", "--sim-script", str(script), *extra])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_probe_keeps_the_cards_trips_to_itself_by_default(tmp_path, capsys):
    out = _probe(tmp_path, capsys)
    assert "tap 1: suica  ¥2,819" in out  # the reader check itself is all there
    shown = [t for t in _trips() if t in out]
    assert shown == [], f"the probe printed the card's trips without being asked: {shown}\n{out}"
    # ... and it still says the history was read (the part of the check the trips were printed for)
    assert "3 trips read" in out and "--show-trips" in out


def test_probe_prints_the_trips_when_asked(tmp_path, capsys):
    out = _probe(tmp_path, capsys, "--show-trips")
    assert all(t in out for t in _trips()), out
    assert "2024-04-20  gate            fare               ¥2,819  #236833" in out
