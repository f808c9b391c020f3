"""A bad config as the terminal prints it (``kiosk doctor``, ``kiosk run`` started by hand): Japanese first.

Whoever installs or fixes a kiosk at a center is often the center's staff, not an engineer. The lobby's fault
screen already said each problem in plain Japanese (kiosk/config/problems.py); the terminal said it in English
only. Now the header and every problem come first in the fault screen's words (from the same catalog, never a
second copy), each problem's English line under it, every problem at once, the "did you mean" kept in both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import ConfigError, load_config
from kiosk.ui.i18n import gettext_for

ROOT = Path(__file__).resolve().parents[1]

BAD = """[kiosk]
id = "k-1"
timezon = "Asia/Tokyo"

[reader]
backend = "pcs"

[player]
widht = 1280

[staff]
pin_hash = "258013"
"""

# (Japanese line, English line) of each problem of BAD, in the file's order.
EXPECTED = [
    ("[kiosk] の timezon という設定項目はありません。正しくは timezone かもしれません。",
     "kiosk.timezon: unknown key (did you mean 'timezone'?)"),
    ('[reader] の backend は次のどれかにしてください："sim" / "nfcpy" / "pcsc"。いまは "pcs" と書かれています。'
     '正しくは "pcsc" かもしれません。',
     "reader.backend: Input should be 'sim', 'nfcpy' or 'pcsc' (got 'pcs'; did you mean 'pcsc'?)"),
    ("[player] の widht という設定項目はありません。正しくは width かもしれません。",
     "player.widht: unknown key (did you mean 'width'?)"),
]


def _kiosk(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    """The ``kiosk`` command in a child, as typed at a terminal (no ``$NOTIFY_SOCKET``: not the lobby screen)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "KIOSK_CONFIG")}
    env.update(PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    cmd = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "kiosk", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_doctor_and_run_by_hand_say_every_problem_in_japanese_first_with_the_english_under_it(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(BAD, "utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    pin = [p for p in err.value.details if p.loc == ("staff", "pin_hash")]
    assert len(err.value.details) == 4 and len(pin) == 1
    expected = [f"設定ファイル：{cfg}  見つかった問題：4件", f"config {cfg}: 4 problems"]
    for ja, en in EXPECTED:
        expected += [f"  - {ja}", f"    {en}"]
    doctor = _kiosk("doctor", "--config", str(cfg))
    assert doctor.returncode == 2 and doctor.stdout == "", doctor.stdout + doctor.stderr
    lines = doctor.stderr.splitlines()
    assert lines[:-2] == expected, doctor.stderr
    # The PIN hash key's problem, last: in the fault screen's words (the same catalog, not a second copy), and
    # the value (it may be the PIN itself) repeated in neither language.
    assert lines[-2] == "  - " + pin[0].say(gettext_for("ja")) and lines[-2].startswith("  - [staff] の pin_hash")
    assert lines[-1] == f"    {pin[0].text}" and "258013" not in doctor.stderr
    # `kiosk run` started by hand prints the same report, and nothing of the screens is started.
    run = _kiosk("run", "--config", str(cfg))
    assert run.returncode == 2 and run.stdout == "" and run.stderr == doctor.stderr, run.stderr


def test_a_check_of_keys_against_each_other_names_both_keys_and_what_to_change(tmp_path, capsys):
    """The README's example ("Bad files"): ``default_yen`` not among ``presets_yen`` beside two mistyped keys."""
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[kiosk]\nid = "k-1"\ntimezon = "Asia/Tokyo"\n\n[donation]\npresets_yen = [100, 500, 1000]\n'
                   "default_yen = 300\npoints_per_100_yn = 1\n", "utf-8")
    assert main(["doctor", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"設定ファイル：{cfg}  見つかった問題：3件",
        f"config {cfg}: 3 problems",
        "  - [kiosk] の timezon という設定項目はありません。正しくは timezone かもしれません。",
        "    kiosk.timezon: unknown key (did you mean 'timezone'?)",
        "  - [donation] の points_per_100_yn という設定項目はありません。正しくは points_per_100_yen かもしれません。",
        "    donation.points_per_100_yn: unknown key (did you mean 'points_per_100_yen'?)",
        "  - [donation] の default_yen（いまは 300）は presets_yen [100, 500, 1000] のどれかにしてください。",
        "    donation: default_yen 300 is not one of presets_yen [100, 500, 1000]",
    ]


def test_a_missing_file_says_the_near_name_in_japanese_and_keeps_the_did_you_mean(tmp_path, capsys, monkeypatch):
    (tmp_path / "kiosk.toml.txt").write_text(BAD, "utf-8")  # an editor's extension
    missing = tmp_path / "kiosk.toml"
    assert main(["doctor", "--config", str(missing)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"設定ファイル：{missing}  見つかった問題：1件",
        f"config {missing}: 1 problem",
        "  - 設定ファイルが見つかりません。同じフォルダーに、名前の似た kiosk.toml.txt があります。"
        "名前の打ち間違いかもしれません。",
        f"    file does not exist (did you mean {tmp_path / 'kiosk.toml.txt'}?)",
    ]
    # No file named at all: no path to show, the count and the problem in Japanese, the English fix under it.
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    assert main(["doctor"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "見つかった問題：1件" and lines[1] == "config (none): 1 problem", lines
    assert lines[2].startswith("  - キオスクの設定ファイルが指定されていません。"), lines
    assert lines[3] == "    no config file given: pass --config FILE or set KIOSK_CONFIG", lines


def test_without_the_compiled_catalog_the_english_report_is_printed_as_before(tmp_path: Path):
    """A checkout never installed has no .mo: the report must still be printed (in English), never a traceback."""
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[kiosk]\nid = "k-1"\ntimezon = "Asia/Tokyo"\n', "utf-8")
    script = ("import sys, kiosk.ui.i18n as i; i.LOCALE_DIR = i.Path(sys.argv[1]); from kiosk.cli import main; "
              "sys.exit(main(sys.argv[2:]))")
    r = _kiosk(str(tmp_path / "no-locale"), "doctor", "--config", str(cfg), script=script)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"config {cfg}: 1 problem\n  - kiosk.timezon: unknown key (did you mean 'timezone'?)\n"


def test_a_good_config_still_prints_the_doctor_report_as_before(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[kiosk]\nid = "k-1"\ndata_dir = "data"\ndemo = true\n', "utf-8")
    r = _kiosk("doctor", "--config", str(cfg))
    assert r.returncode in (0, 1) and r.stderr == "", r.stderr  # the exit code follows this machine's units
    lines = r.stdout.splitlines()
    assert lines[0] == f"[OK  ] config: {cfg} is valid", r.stdout
    assert lines[-2] == "" and lines[-1].endswith(" warnings") and " checks: " in lines[-1], r.stdout
    assert "設定ファイル" not in r.stdout
