"""A mistyped or missing ``--db`` file (review s54): ``kiosk-portal`` never answers from a database it just made.

Before, ``kiosk-portal totals --check`` in a folder without portal.db (or with ``--db sqlite:///…/portl.db``) made
an empty database there and said "the kept totals equal a count of the entries", exit 0; ``kiosks`` printed
nothing, ``totals`` ¥0. Now the commands that read or change a portal's data stop (exit 2, the path named,
Japanese first, nothing created); those that set a portal up (``serve``, ``staff-add``, …) say once that they
create a new empty database there, and go on. Real files, real argv, real processes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from server_sync.portal_cli import main as portal_main

# Every command of kiosk-portal that needs an existing portal: it only reads, or changes data a portal already
# holds (a kiosk's suspension, its key, its card links, the pepper's next epoch, the kept totals).
NEEDS_A_PORTAL = (["totals"], ["totals", "--check"], ["totals", "--recount"], ["kiosks"], ["kiosks", "--json"],
                  ["catalog"], ["kiosk", "suspend", "k1"], ["kiosk", "resume", "k1"],
                  ["kiosk", "revoke", "k1", "--from-seq", "3"], ["cards", "links", "--kiosk", "k1"],
                  ["cards", "unlink", "--kiosk", "k1"], ["pepper", "status"], ["pepper", "rotate"])


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _portal(folder: Path) -> str:
    """A real portal database in ``folder`` (portal.db), made as an administrator does: staff-add."""
    url = f"sqlite:///{folder / 'portal.db'}"
    assert portal_main(["staff-add", "--db", url, "--user", "yamada"]) == 0
    return url


@pytest.fixture(autouse=True)
def _password(monkeypatch):
    monkeypatch.setenv("KIOSK_PORTAL_PASSWORD", "a long enough password")
    monkeypatch.delenv("KIOSK_PORTAL_DB", raising=False)


def test_totals_check_in_an_empty_folder_refuses_and_creates_nothing(tmp_path):
    """The reviewer's first step, as a real process: no --db, no portal.db here. It used to say all is fine."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_PORTAL_DB"}
    env["PYTHONPATH"] = os.getcwd()
    r = subprocess.run([sys.executable, "-m", "server_sync.portal_cli", "totals", "--check"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    ja, en = r.stderr.splitlines()
    where = str(tmp_path / "portal.db")
    assert ja.startswith("kiosk-portal totals: データベースのファイル") and where in ja and "何も作っていません" in ja
    assert en.startswith(f"kiosk-portal totals: no database file {where}") and "--db" in en, en
    assert "$KIOSK_PORTAL_DB" in en and "equal" not in r.stderr and "Traceback" not in r.stderr
    assert _files(tmp_path) == []


def test_a_mistyped_db_is_refused_with_did_you_mean(tmp_path, capsys):
    _portal(tmp_path)
    capsys.readouterr()
    typo = tmp_path / "portl.db"
    for argv in NEEDS_A_PORTAL:
        assert portal_main([*argv, "--db", f"sqlite:///{typo}"]) == 2, argv
        out = capsys.readouterr()
        assert out.out == "", argv
        ja, en = out.err.splitlines()
        assert ja.startswith(f"kiosk-portal {argv[0]}: ") and re.search(r"[ぁ-んァ-ン一-龥]", ja), ja
        assert str(typo) in ja and "portal.db のことですか" in ja, ja
        assert f"no database file {typo} (did you mean {tmp_path / 'portal.db'}?)" in en, en
        assert [n for n in _files(tmp_path) if n.startswith("portl.")] == [], argv  # no portl.db, -wal, -shm


def test_kiosk_portal_db_from_the_environment_is_named_as_such(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KIOSK_PORTAL_DB", f"sqlite:///{tmp_path / 'nope.db'}")
    assert portal_main(["kiosks"]) == 2
    err = capsys.readouterr().err
    assert "$KIOSK_PORTAL_DB の指定" in err and "(from $KIOSK_PORTAL_DB)" in err
    assert _files(tmp_path) == []


def test_a_missing_folder_or_a_folder_is_refused_by_every_command(tmp_path, capsys):
    for argv in (["totals"], ["staff-add", "--user", "yamada"], ["serve", "--port", "0"]):
        assert portal_main([*argv, "--db", f"sqlite:///{tmp_path / 'no' / 'such' / 'portal.db'}"]) == 2, argv
        ja, en = capsys.readouterr().err.splitlines()
        assert f"フォルダー {tmp_path / 'no'} がありません" in ja and f"there is no folder {tmp_path / 'no'}" in en
        assert portal_main([*argv, "--db", f"sqlite:///{tmp_path}"]) == 2, argv
        ja, en = capsys.readouterr().err.splitlines()
        assert "フォルダーです" in ja and "is not a database file (it is a folder)" in en
    assert _files(tmp_path) == []


def test_setting_up_a_portal_says_once_that_it_creates_the_database(tmp_path, capsys):
    """staff-add, enroll-code, catalog-import, media-add, config-set, pepper status --domain: a new portal starts
    with them, so they go on, but say where the new database is (a typo is seen); on an existing file, nothing."""
    (tmp_path / "catalog.json").write_text('{"groups": [], "projects": []}', "utf-8")
    (tmp_path / "clip.mp4").write_bytes(b"not a movie")
    for argv in (["staff-add", "--user", "yamada"], ["enroll-code", "--kiosk-id", "k1"],
                 ["catalog-import", str(tmp_path / "catalog.json")], ["media-add", str(tmp_path / "clip.mp4")],
                 ["pepper", "status", "--domain", "tsurugashima"]):
        db = tmp_path / f"{argv[0]}.db"
        assert portal_main([*argv, "--db", f"sqlite:///{db}"]) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert err.count("新しい空のデータベースを作ります") == 1 and err.count("creating a new empty database") == 1
        assert err.index("新しい空の") < err.index("creating"), err
        assert f"creating a new empty database at {db}" in err and db.is_file()
        assert portal_main([*argv, "--db", f"sqlite:///{db}"]) == 0
        assert "creating" not in capsys.readouterr().err
    # Near an existing portal: the notice says which file was perhaps meant.
    assert portal_main(["enroll-code", "--kiosk-id", "k1", "--db", f"sqlite:///{tmp_path / 'staff-ad.db'}"]) == 0
    assert f"(did you mean {tmp_path / 'staff-add.db'}?)" in capsys.readouterr().err
    # A command that sets up a portal but stops before it touches the database creates nothing and says nothing.
    bad = tmp_path / "config.json"
    bad.write_text("{not json", "utf-8")
    assert portal_main(["config-set", str(bad), "--db", f"sqlite:///{tmp_path / 'cfg.db'}"]) == 2
    assert "creating" not in capsys.readouterr().err and not (tmp_path / "cfg.db").exists()
    # The portal made above answers the reading commands.
    assert portal_main(["totals", "--check", "--db", f"sqlite:///{tmp_path / 'staff-add.db'}"]) == 0


def test_serve_on_a_mistyped_db_says_it_creates_a_new_empty_one_and_serves(tmp_path):
    """`kiosk-portal serve` as a real process (on a socket it inherits, as `kiosk demo` starts it)."""
    _portal(tmp_path)
    typo = tmp_path / "portl.db"
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_PORTAL_DB"}
    env.update(PYTHONPATH=os.getcwd(), KIOSK_PORTAL_SECRET_FILE=str(tmp_path / "secret"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", f"sqlite:///{typo}",
                                 "--fd", str(s.fileno()), "--log-level", "warning"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, pass_fds=[s.fileno()])
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the portal did not answer"
            time.sleep(0.05)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert err.count("新しい空のデータベースを作ります") == 1, err
    assert err.count(f"creating a new empty database at {typo} (did you mean {tmp_path / 'portal.db'}?)") == 1, err
    assert typo.is_file()


@pytest.mark.skipif(not os.environ.get("KIOSK_TEST_PG_URL"), reason="KIOSK_TEST_PG_URL not set")
def test_a_postgresql_database_that_does_not_exist_is_two_lines_without_a_traceback(capsys):
    url = os.environ["KIOSK_TEST_PG_URL"].rsplit("/", 1)[0] + "/no_such_portal_s54"
    assert portal_main(["totals", "--db", url]) == 1
    ja, en = capsys.readouterr().err.splitlines()
    assert ja == ("kiosk-portal totals: データベースがありません。PostgreSQL にデータベースを作ってから（createdb）、"
                  "やり直してください。")
    assert en.startswith("kiosk-portal totals: database: ") and "no_such_portal_s54" in en and "does not exist" in en
