"""`kiosk export usb` (and the menu's export, the same `export_day`) on a ledger file SQLite cannot read (a damaged
file; a dying card that fails on read): before, a raw SQLAlchemy/sqlite3 traceback; now one plain line in staff
words (English for the command, Japanese in the menu's catalog), exit 1, and nothing left on the stick.

Real parts: a real kiosk config and ledger made with the project's own calls, then its file damaged on disk; the
real `kiosk export usb` process; a real directory standing in for the stick."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kiosk.config import load_config
from kiosk.ledger import Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.staff.usb_export import UsbExportError, export_day
from kiosk.ui.i18n import translations
from tests.ops.conftest import DAY1, donate, idm, write_config

ROOT = Path(__file__).resolve().parents[2]


def _damaged_kiosk(tmp_path: Path) -> Path:
    config = write_config(tmp_path / "site")
    cfg = load_config(config)
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    led = open_ledger(cfg, clock=FixedClock())
    for n in range(3):
        donate(led, pepper, idm(n), "kodomo", 500, "sim", f"gift-{n}")
    led.close()
    db = Path(cfg.ledger_path)
    with open(db, "r+b") as f:  # the header and first pages overwritten: "file is not a database"
        f.write(os.urandom(8192))
    return config


def test_an_unreadable_ledger_is_said_in_one_plain_line_and_leaves_nothing(tmp_path: Path) -> None:
    config = _damaged_kiosk(tmp_path)
    stick = tmp_path / "stick"
    stick.mkdir()
    r = subprocess.run([sys.executable, "-m", "kiosk", "export", "usb", "--config", str(config), "--stick",
                        str(stick), "--no-logs", "--date", DAY1.isoformat()], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "sqlalchemy" not in r.stderr.lower(), r.stderr
    assert "the ledger on this kiosk could not be read" in r.stdout + r.stderr
    assert "call the maintainer" in r.stdout + r.stderr
    assert list(stick.iterdir()) == []  # no half export


def test_the_menu_says_it_in_japanese(tmp_path: Path) -> None:
    config = _damaged_kiosk(tmp_path)
    cfg = load_config(config)
    stick = tmp_path / "stick"
    stick.mkdir()
    try:
        export_day(stick, Path(cfg.ledger_path), kiosk_id=cfg.kiosk.id, day=DAY1)
    except UsbExportError as exc:
        said = exc.say(translations("ja").gettext)
    else:
        raise AssertionError("a damaged ledger was exported")
    assert said.startswith("このキオスクの台帳を読み取れませんでした（") and said.endswith("保守担当に連絡してください")
    assert list(stick.iterdir()) == []
