"""The diagnostic entry points report a bad config as ``kiosk`` does: Japanese first, every problem at once.

``python -m kiosk.reader reader probe`` (check the card reader) and ``python -m kiosk.player`` (check the screen)
are run on the kiosk by center staff and installers, often the same people who read `kiosk doctor`. They printed
a bad config in English only; now they print the main CLI's report (kiosk/cli.py, ``config_report``, the same
function, not a copy) and exit 2 as it does. Each is the real module in a child process with a real file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BAD = """[kiosk]
id = "k-1"
timezon = "Asia/Tokyo"

[reader]
backend = "pcs"

[player]
widht = 1280
"""

ENTRY_POINTS = {
    "reader": ("kiosk.reader", "reader", "probe", "--timeout", "1"),
    "player": ("kiosk.player", "--headless", "--seconds", "1"),
}


def _python_m(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "KIOSK_CONFIG")}
    env.update(PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_a_bad_config_is_reported_as_kiosk_doctor_reports_it(tmp_path: Path, name: str):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(BAD, "utf-8")
    module, *args = ENTRY_POINTS[name]
    got = _python_m(module, *args, "--config", str(cfg))
    doctor = _python_m("kiosk", "doctor", "--config", str(cfg))
    assert doctor.returncode == 2 and doctor.stderr.startswith(f"設定ファイル：{cfg}  見つかった問題：3件\n")
    assert (got.returncode, got.stdout, got.stderr) == (2, "", doctor.stderr), got.stdout + got.stderr
    lines = got.stderr.splitlines()
    assert lines[2] == "  - [kiosk] の timezon という設定項目はありません。正しくは timezone かもしれません。"
    assert lines[-2] == "  - [player] の widht という設定項目はありません。正しくは width かもしれません。"
    assert lines[-1] == "    player.widht: unknown key (did you mean 'width'?)"


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_a_missing_file_names_the_near_name_in_japanese(tmp_path: Path, name: str):
    (tmp_path / "kiosk.toml.txt").write_text(BAD, "utf-8")  # saved by an editor that added its extension
    missing = tmp_path / "kiosk.toml"
    module, *args = ENTRY_POINTS[name]
    got = _python_m(module, *args, "--config", str(missing))
    assert got.returncode == 2, got.stderr
    assert got.stderr.splitlines() == [
        f"設定ファイル：{missing}  見つかった問題：1件",
        f"config {missing}: 1 problem",
        "  - 設定ファイルが見つかりません。同じフォルダーに、名前の似た kiosk.toml.txt があります。"
        "名前の打ち間違いかもしれません。",
        f"    file does not exist (did you mean {tmp_path / 'kiosk.toml.txt'}?)",
    ]
