"""`kiosk-portal` and `kiosk enroll` / `kiosk sync`, in-process and as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import requests

from kiosk.cli import main as kiosk_main
from server_sync.portal_cli import main as portal_main
from tests.loopback import free_port, refused_port


def test_enroll_code_enroll_and_sync_once(portal, rig, db_url, capsys):
    rig.donate(5)
    assert portal_main(["enroll-code", "--db", db_url, "--kiosk-id", rig.kiosk_id]) == 0
    code = capsys.readouterr().out.strip()
    assert len(code) == 14 and code.count("-") == 2
    cfg = str(rig.config_path)
    assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url, "--code", code]) == 0
    assert "enrolled kiosk test-kiosk-1" in capsys.readouterr().out
    # Again with the same code (the first answer could have been lost): idempotent, still enrolled.
    assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url, "--code", code]) == 0
    assert "enrolled kiosk test-kiosk-1" in capsys.readouterr().out
    assert kiosk_main(["enroll", "--config", cfg, "--portal", portal.url, "--code", "ZZZZ-ZZZZ-ZZZZ"]) == 1
    assert "unknown enrollment code" in capsys.readouterr().err

    # The config has no [portal] url: `kiosk sync` uses the portal it enrolled with.
    assert kiosk_main(["sync", "--config", cfg, "--once"]) == 0
    out = capsys.readouterr().out
    assert f"acknowledged through seq={rig.ledger.size} of {rig.ledger.size}; pending 0" in out
    assert kiosk_main(["sync", "--config", cfg, "--status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["ok"] and status["pending"] == 0 and status["last_error"] is None

    assert portal_main(["totals", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out) == rig.expected_totals()
    assert portal_main(["kiosks", "--db", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["last_seq"] == rig.ledger.size

    # Portal unreachable: exit 1 with the error; the new donation stays pending. How many in all is not known (the
    # portal may come back from a backup without what it acknowledged): at least the 2 entries sent since.
    rig.donate(1)
    portal.stop()
    assert kiosk_main(["sync", "--config", cfg, "--once", "--attempts", "2"]) == 1
    err = capsys.readouterr().err
    assert "pending unknown (at least 2 since the portal last answered)" in err and "network" in err
    # A portal it never enrolled with: refused before sending anything.
    with refused_port() as port:
        other = f"http://127.0.0.1:{port}"
        assert kiosk_main(["sync", "--config", cfg, "--once", "--portal", other, "--attempts", "1"]) == 1
    assert "not enrolled" in capsys.readouterr().err


def test_sync_once_exits_1_when_a_pushed_config_could_not_be_taken(portal, rig, capsys):
    """The entries went up, but the kiosk did not get the config the portal pushed: not a success."""
    from sync_helpers import PROJECTS, enrolled

    from server_sync.configstore import add_media, publish

    engine = portal.app.state.engine
    sha = add_media(engine, b"\x00fake movie bytes" * 100, "video/mp4")
    publish(engine, {"projects": PROJECTS[:2], "presets_yen": [100, 300], "default_yen": 100,
                     "playlist": [{"sha256": sha, "name": "kodomo.mp4", "project": PROJECTS[0]["id"]}]})
    rig.donate(2)
    enrolled(rig, portal).close()
    media = rig.cfg.data_dir / "media"
    media.write_bytes(b"")  # a file where the media directory belongs: the clip cannot be stored
    cfg = str(rig.config_path)
    assert kiosk_main(["sync", "--config", cfg, "--once", "--attempts", "1"]) == 1
    err = capsys.readouterr().err
    assert "pending 0" in err and "config v1" in err
    media.unlink()
    assert kiosk_main(["sync", "--config", cfg, "--once", "--attempts", "1"]) == 0
    assert "v1 staged" in capsys.readouterr().out


def test_sync_once_with_apply_config_records_the_pushed_config_inline(portal, rig, capsys):
    """With `kiosk run` stopped, `kiosk sync --once --apply-config` is the ledger's only writer: it appends the
    config_change entry itself, in its own (single) thread, through an InlineWriter."""
    from sync_helpers import PROJECTS, enrolled

    from kiosk.ledger import verify_path
    from server_sync.configstore import add_media, publish

    engine = portal.app.state.engine
    sha = add_media(engine, b"\x00fake movie bytes" * 100, "video/mp4")
    out = publish(engine, {"projects": PROJECTS[:2], "presets_yen": [100, 300], "default_yen": 100,
                           "playlist": [{"sha256": sha, "name": "kodomo.mp4", "project": PROJECTS[0]["id"]}]})
    rig.donate(1)
    enrolled(rig, portal).close()
    cfg = str(rig.config_path)
    assert kiosk_main(["sync", "--config", cfg, "--once", "--apply-config", "--attempts", "2"]) == 0
    assert "config applied v1" in capsys.readouterr().out
    changes = [e.data for e in rig.ledger.iter_entries() if e.type == "config_change"]
    assert changes == [{"version": out["version"], "digest": out["digest"], "source": "portal"}]
    assert verify_path(rig.ledger.path).ok


def test_portal_admin_commands(db_url, tmp_path, capsys, monkeypatch):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"movie" * 10)
    assert portal_main(["media-add", "--db", db_url, str(clip)]) == 0
    sha = capsys.readouterr().out.strip()
    doc = tmp_path / "config.json"
    doc.write_text(json.dumps({"projects": [{"id": "kodomo", "title": "こども食堂", "area": "children"}],
                               "playlist": [{"sha256": sha, "name": "clip.mp4"}]}), "utf-8")
    assert portal_main(["config-set", "--db", db_url, str(doc)]) == 0
    assert "published config version 1" in capsys.readouterr().out
    doc.write_text(json.dumps({"projects": []}), "utf-8")
    assert portal_main(["config-set", "--db", db_url, str(doc)]) == 2
    assert "invalid config" in capsys.readouterr().err
    monkeypatch.setenv("KIOSK_PORTAL_PASSWORD", "short")
    assert portal_main(["staff-add", "--db", db_url, "--user", "clerk"]) == 2
    monkeypatch.setenv("KIOSK_PORTAL_PASSWORD", "long enough password")
    assert portal_main(["staff-add", "--db", db_url, "--user", "clerk"]) == 0
    assert portal_main(["enroll-code", "--db", db_url, "--kiosk-id", "Bad Id"]) == 2


def test_enroll_code_days_are_bounded(db_url, capsys):
    """A code born expired (0 or fewer days) or valid for ever (a huge number: OverflowError) is refused."""
    from server_sync.db import create_schema, enroll_codes, make_engine

    create_schema(made := make_engine(db_url))
    made.dispose()  # a portal that exists (on a new file, enroll-code first says it makes one)
    for days in ("0", "-3", "366", "300000000000"):
        assert portal_main(["enroll-code", "--db", db_url, "--kiosk-id", "k1", "--days", days]) == 2
        out = capsys.readouterr()
        assert out.out == "" and out.err == f"kiosk-portal enroll-code: a code stays valid 1 to 365 days, not {days}\n"
    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            assert conn.execute(enroll_codes.select()).all() == []  # nothing issued
        assert portal_main(["enroll-code", "--db", db_url, "--kiosk-id", "k1", "--days", "365"]) == 0
        with eng.connect() as conn:
            (created, expires), = conn.execute(enroll_codes.select().with_only_columns(
                enroll_codes.c.created_ms, enroll_codes.c.expires_ms)).all()
        assert expires - created == 365 * 86_400_000
    finally:
        eng.dispose()


def test_a_malformed_db_url_is_one_line_without_the_password(capsys, monkeypatch):
    """A port that is not a number: one line naming --db, exit 2, and the URL (its password) is not echoed."""
    url = "postgresql://staff:s3cret-pw@db.example:notaport/portal"
    for args in (["kiosks"], ["totals"], ["catalog"], ["enroll-code", "--kiosk-id", "k1"], ["serve"]):
        assert portal_main([*args, "--db", url]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"kiosk-portal {args[0]}: --db: not a database URL") and err.count("\n") == 1, err
        assert "s3cret" not in err and "notaport" not in err and "db.example" not in err, err
    monkeypatch.setenv("KIOSK_PORTAL_DB", url)  # the same when the URL comes from the environment
    assert portal_main(["kiosks"]) == 2
    assert "s3cret" not in capsys.readouterr().err


def test_staff_add_without_a_password_or_a_terminal_says_so(tmp_path):
    """A script or a systemd unit (no controlling terminal, stdin empty) and no $KIOSK_PORTAL_PASSWORD: one line
    naming the variable, exit 2. A password piped on stdin still works."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_PORTAL_PASSWORD"}
    env["PYTHONPATH"] = os.getcwd()
    cmd = [sys.executable, "-m", "server_sync.portal_cli", "staff-add", "--db", f"sqlite:///{tmp_path / 'p.db'}",
           "--user", "bob"]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env, capture_output=True, text=True, timeout=60,
                       start_new_session=True)  # a new session: no controlling terminal, as under systemd
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert r.stderr == ("kiosk-portal staff-add: no password: set $KIOSK_PORTAL_PASSWORD (or run it in a "
                        "terminal)\n"), r.stderr
    r = subprocess.run(cmd, input="long enough password\n", env=env, capture_output=True, text=True, timeout=60,
                       start_new_session=True)
    assert r.returncode == 0 and r.stdout == "staff user bob saved\n", (r.returncode, r.stdout, r.stderr)


def test_serve_and_sync_once_as_real_processes(rig, tmp_path):
    """What systemd runs: `kiosk-portal serve` and a `kiosk sync --once` timer, while the kiosk keeps writing."""
    db = f"sqlite:///{tmp_path / 'served.db'}"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", db, "--port",
                               str(port), "--log-level", "warning"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        code = subprocess.run([sys.executable, "-m", "server_sync.portal_cli", "enroll-code", "--db", db,
                               "--kiosk-id", rig.kiosk_id], capture_output=True, text=True, env=env, check=True
                              ).stdout.strip()
        kiosk = [sys.executable, "-m", "kiosk"]
        r = subprocess.run(kiosk + ["enroll", "--config", str(rig.config_path), "--portal", url, "--code", code],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        rig.donate(7)  # the kiosk process (this one) holds the ledger open and keeps writing
        r = subprocess.run(kiosk + ["sync", "--config", str(rig.config_path), "--once"], capture_output=True,
                           text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert requests.get(url + "/api/v1/totals", timeout=5).json() == rig.expected_totals()
    finally:
        server.terminate()
        server.wait(10)
