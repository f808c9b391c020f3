"""Setting a kiosk up from the README: a config file with the mistakes an installer makes, read by what they run
(``kiosk doctor --config FILE``: exit 2, every problem on stderr at once, each located, with a "did you mean").

Each case was a defect: a misspelt value got no suggestion; ids and times were explained by a regular
expression; ``[projects]`` instead of ``[[projects]]`` said "Input should be a valid list"; a portal address
without ``https://`` was accepted (every upload failed, and doctor blamed the network); a PIN written where its
hash goes was repeated in the report, which ``kiosk run`` sends to the journal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.cli import main
from tests.config_report import english_problems


def _problems(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str) -> list[str]:
    path = tmp_path / "kiosk.toml"
    path.write_text(body, "utf-8")
    assert main(["doctor", "--config", str(path)]) == 2
    # Japanese first (the file, the count, each problem as the fault screen says it), each English line under it
    return english_problems(capsys.readouterr().err, path)


def test_an_installers_file_with_many_mistakes_gets_every_one_with_what_to_write(tmp_path, capsys):
    body = """
[kiosk]
id = "Center 1"
timezon = "Asia/Tokyo"
language = "jp"
log_level = "info"

[reader]
backend = "pcs"
position = "bottom-right"

[portal]
url = "portal.example.jp"

[projects]
id = "kodomo"
title = "こども食堂"
area = "children"

[[player.playlist]]
project = "kodomo"
[[player.playlist.windows]]
days = ["mon", "tues", "Sat"]
start = "9:00"
"""
    problems = _problems(tmp_path, capsys, body)
    assert sorted(problems) == sorted([
        "kiosk.id: must be 2-40 characters: lowercase letters a-z, digits and dashes, starting with a letter or "
        "digit (e.g. 'tsurugashima-center-1') (got 'Center 1'; did you mean 'center-1'?)",
        "kiosk.timezon: unknown key (did you mean 'timezone'?)",
        "kiosk.language: Input should be 'ja' or 'en' (got 'jp'; did you mean 'ja'?)",
        "kiosk.log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (got 'info'; did you mean 'INFO'?)",
        "reader.backend: Input should be 'sim', 'nfcpy' or 'pcsc' (got 'pcs'; did you mean 'pcsc'?)",
        "reader.position: Input should be 'below-right', 'below-center', 'below-left', 'right' or 'left' "
        "(got 'bottom-right'; did you mean 'below-right'?)",
        "portal.url: must start with https:// (or http://): did you mean 'https://portal.example.jp'? "
        "(got 'portal.example.jp')",
        "projects: write [[projects]] with double brackets, once above each entry "
        "(a single [projects] is one table, not a list)",
        "player.playlist[0].windows[0].days[1]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun' "
        "(got 'tues'; did you mean 'tue'?)",
        "player.playlist[0].windows[0].days[2]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun' "
        "(got 'Sat'; did you mean 'sat'?)",
        "player.playlist[0].windows[0].start: must be a time as HH:MM with two digits each, from 00:00 to 24:00 "
        "(e.g. '09:00') (got '9:00'; did you mean '09:00'?)",
    ])
    assert not any("pattern" in p or "^" in p for p in problems), problems  # no regular expression shown


@pytest.mark.parametrize("url,problem", [
    ("portal.example.jp", "portal.url: must start with https:// (or http://): did you mean "
                          "'https://portal.example.jp'? (got 'portal.example.jp')"),
    ("htps://portal.example.jp/", "portal.url: must start with https:// (or http://): did you mean "
                                  "'https://portal.example.jp/'? (got 'htps://portal.example.jp/')"),
    ("https://", "portal.url: must be the portal's web address, e.g. 'https://portal.example.jp' (got 'https://')"),
    ("http://192.0.2.1:80x", "portal.url: must be the portal's web address, e.g. 'https://portal.example.jp' "
                             "(got 'http://192.0.2.1:80x')"),
])
def test_a_portal_address_the_uploader_cannot_use_is_a_config_error(tmp_path, capsys, url, problem):
    assert _problems(tmp_path, capsys, f'[kiosk]\nid = "k-1"\n[portal]\nurl = "{url}"\n') == [problem]


@pytest.mark.parametrize("url", ["", "https://portal.example.jp", "http://127.0.0.1:8080", "https://x.example/base/"])
def test_portal_addresses_that_work_still_load(tmp_path, url):
    from kiosk.config import load_config

    path = tmp_path / "kiosk.toml"
    path.write_text(f'[kiosk]\nid = "k-1"\n[portal]\nurl = "{url}"\n', "utf-8")
    assert load_config(path).portal.url == url


def test_a_section_given_as_one_value_says_it_must_be_a_table(tmp_path, capsys):
    body = 'reader = "nfcpy"\n[kiosk]\nid = "k-1"\ndata_dir = 5\n'
    assert _problems(tmp_path, capsys, body) == [
        "kiosk.data_dir: must be a file or folder path in quotes, e.g. \"/var/lib/kiosk\" (got 5)",
        "reader: must be a [reader] section (a table of keys), not a single value",
    ]


def test_the_pin_written_where_its_hash_goes_is_never_repeated(tmp_path, capsys):
    problems = _problems(tmp_path, capsys, '[kiosk]\nid = "k-1"\n[staff]\npin_hash = "258013"\n')
    assert problems == ["staff.pin_hash: pin_hash must be the scrypt$... line printed by `kiosk staff set-pin`, "
                        "never the PIN itself"]


def _doctor_checks(tmp_path: Path, donation: str) -> dict[str, object]:
    from kiosk.ops.doctor import collect

    path = tmp_path / "kiosk.toml"
    path.write_text(f'[kiosk]\nid = "k-1"\ndata_dir = "data"\ndemo = true\n[donation]\n{donation}', "utf-8")
    return {c.name: c for c in collect(str(path), root=tmp_path, clock_synced=lambda: True)}


def test_an_amount_button_above_the_daily_limit_fails_doctor_with_the_number_to_write(tmp_path):
    """presets_yen [100, 500, 1000] with daily_limit_per_card_yen = 500: the ¥1,000 button told every card,
    on its first gift of the day, that it had reached its limit; the file loaded and doctor said nothing."""
    c = _doctor_checks(tmp_path, "presets_yen = [100, 500, 1000]\ndaily_limit_per_card_yen = 500\n")["donation"]
    assert c.status == "fail", c
    assert "1000 yen can never be used" in c.detail and "daily_limit_per_card_yen is 500" in c.detail
    assert "daily_limit_per_card_yen to at least 1000" in c.fix and str(tmp_path / "kiosk.toml") in c.fix


def test_amounts_within_the_daily_limit_pass_doctor(tmp_path):
    c = _doctor_checks(tmp_path, "presets_yen = [100, 500]\ndaily_limit_per_card_yen = 500\n")["donation"]
    assert c.status == "ok", c
