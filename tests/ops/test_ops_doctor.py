"""`kiosk doctor` names every fault of a broken set-up with its fix, and passes a good one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kiosk.cli import main as kiosk_main
from kiosk.config import load_config
from kiosk.ledger import Pepper, keys
from kiosk.ledger.clock import FixedClock
from kiosk.ops.checks import Check
from kiosk.ops.doctor import collect, run_doctor
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.ui.i18n import catalog_checks

from .conftest import fill_two_days, idm, write_config

pytest.importorskip("pytest_httpserver")
from werkzeug.wrappers import Request, Response  # noqa: E402  (pytest-httpserver's own dependency)


def make_site(directory: Path, portal_url: str) -> Path:
    path = write_config(directory, f'\n[portal]\nurl = "{portal_url}"\n')
    cfg = load_config(path)
    ensure_secrets(cfg)
    clock = FixedClock()
    led = open_ledger(cfg, clock=clock)
    fill_two_days(led, Pepper.load(cfg.pepper_path), clock, [idm(n) for n in range(3)])
    led.close()
    return path


def install_units(root: Path) -> None:
    etc = root / "etc/systemd/system"
    for unit, wants in (("kiosk.service", "multi-user.target.wants"), ("kiosk-sync.timer", "timers.target.wants"),
                        ("kiosk-closeout.timer", "timers.target.wants"), ("kiosk-sync.service", None),
                        ("kiosk-closeout.service", None)):
        (etc / unit).parent.mkdir(parents=True, exist_ok=True)
        (etc / unit).write_text("[Unit]\n")
        if wants:
            (etc / wants).mkdir(exist_ok=True)
            (etc / wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    rules = root / "etc/polkit-1/rules.d/50-kiosk-power.rules"
    rules.parent.mkdir(parents=True)
    rules.write_text("// test\n")


def hermetic_reader(tmp_path: Path) -> dict:
    (tmp_path / "modules").write_text("")
    return {"proc_modules": tmp_path / "modules", "sysfs_root": tmp_path / "no-usb"}


def fake_portal(httpserver, kiosk_id: str, pub_path: Path, enrolled: bool = True) -> None:  # noqa: ANN001
    """/healthz and a signed config endpoint that really checks the kiosk's signature."""
    from server_sync.wire import protocol as P

    pub = keys.load_public(pub_path)

    def config(request: Request) -> Response:
        h = request.headers
        base = P.signature_base("GET", request.path, h[P.H_DIGEST], "", h[P.H_KIOSK], int(h[P.H_CREATED]))
        if not enrolled:
            body = {"error": "unknown_kiosk", "reason": "not enrolled"}
            return Response(json.dumps(body), 401, content_type="application/json")
        if h[P.H_DIGEST] != P.content_digest(b"") or not P.verify_request_signature(pub, h[P.H_SIGNATURE], base):
            return Response(json.dumps({"error": "bad_request_signature"}), 401, content_type="application/json")
        return Response(json.dumps({"error": "no_config", "reason": "none yet"}), 404, content_type="application/json")

    httpserver.expect_request("/healthz").respond_with_json({"status": "ok"})
    httpserver.expect_request(f"/api/v1/kiosks/{kiosk_id}/config").respond_with_handler(config)


def render(checks) -> str:  # noqa: ANN001
    return "\n".join(c.render() for c in checks)


def test_broken_setup_names_each_fault_with_its_fix(tmp_path, capsys):
    path = make_site(tmp_path / "site", "http://127.0.0.1:9")  # nothing listens on the discard port
    cfg = load_config(path)
    cfg.private_key_path.chmod(0o644)                     # bad key mode
    cfg.pepper_path.unlink()                              # missing pepper
    con = sqlite3.connect(cfg.ledger_path)                # tampered ledger: one amount changed in a body
    con.execute("DROP TRIGGER entries_no_update")
    con.execute("UPDATE entries SET body = CAST(replace(CAST(body AS TEXT), '\"amount_yen\":1000', "
                "'\"amount_yen\":9000') AS BLOB) WHERE seq = (SELECT min(seq) FROM entries WHERE type='donation' "
                "AND amount_yen = 1000)")
    con.commit()
    con.close()
    kw = dict(root=tmp_path / "empty-root", min_free_bytes=1 << 62, clock_synced=lambda: False,
              reader_kw=hermetic_reader(tmp_path))
    checks = {c.name: c for c in collect(str(path), **kw)}
    expected = {
        "keys.private_key": ("readable by others", f"chmod 600 {cfg.private_key_path}"),
        "keys.pepper": ("does not exist", "restore it from the backup"),
        "ledger": ("INVALID", "kiosk ledger verify"),
        "disk": ("MB free", "free space"),
        "portal": ("unreachable", "ping -c3 127.0.0.1"),
        "systemd.kiosk.service": ("not installed", "install.sh"),
        "systemd.kiosk-closeout.timer": ("not installed", "install.sh"),
        "systemd.kiosk-sync.timer": ("not installed", "install.sh"),
    }
    for name, (detail, fix) in expected.items():
        c = checks[name]
        assert c.status == "fail", c
        assert detail in c.detail and fix in c.fix, c
    assert checks["clock"].status == "warn"
    assert run_doctor(str(path), **kw) == 1
    out = capsys.readouterr().out
    for name in expected:
        assert f"[FAIL] {name}:" in out
    assert out.count("fix: ") >= len(expected)


def test_good_setup_passes_with_warnings_allowed(tmp_path, httpserver, capsys):
    path = make_site(tmp_path / "site", httpserver.url_for("/").rstrip("/"))
    cfg = load_config(path)
    fake_portal(httpserver, cfg.kiosk.id, cfg.public_key_path)
    root = tmp_path / "root"
    install_units(root)
    kw = dict(root=root, min_free_bytes=1, clock_synced=lambda: False, reader_kw=hermetic_reader(tmp_path))
    checks = {c.name: c for c in collect(str(path), **kw)}
    assert checks["portal"].status == "ok" and checks["portal.enrolled"].status == "ok", checks["portal.enrolled"]
    assert checks["ledger"].status == "ok"
    assert not [c for c in checks.values() if c.status == "fail"], render(checks.values())
    assert run_doctor(str(path), **kw) == 0
    assert "0 failed" in capsys.readouterr().out


def test_reachable_portal_that_does_not_know_the_kiosk(tmp_path, httpserver):
    path = make_site(tmp_path / "site", httpserver.url_for("/").rstrip("/"))
    cfg = load_config(path)
    fake_portal(httpserver, cfg.kiosk.id, cfg.public_key_path, enrolled=False)
    checks = {c.name: c for c in collect(str(path), root=tmp_path, min_free_bytes=1,
                                         reader_kw=hermetic_reader(tmp_path))}
    c = checks["portal.enrolled"]
    assert c.status == "fail" and "not enrolled" in c.detail
    assert "kiosk enroll --config" in c.fix and "kiosk-portal enroll-code --kiosk-id test-kiosk-1" in c.fix


def test_a_portal_url_that_redirects_fails_and_is_not_followed(tmp_path, httpserver, capsys):
    """[portal] url answers 308 to a real, enrolled portal: doctor does not go there (the uploader would not
    either, so the kiosk would never sync), fails the check with the address to correct, and sends its
    signed request nowhere. The same for a portal whose /healthz answers but whose config endpoint redirects."""
    from tests.loopback import Handler, LoopbackServer

    redirected = {"/healthz"}

    class Moved(Handler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path not in redirected:
                return self.answer(200, b'{"status": "ok"}')
            self.send_response(308)
            self.send_header("Location", httpserver.url_for(self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

    with LoopbackServer(Moved) as moved:
        path = make_site(tmp_path / "site", moved.url)
        cfg = load_config(path)
        fake_portal(httpserver, cfg.kiosk.id, cfg.public_key_path)
        kw = dict(root=tmp_path, min_free_bytes=1, reader_kw=hermetic_reader(tmp_path))
        checks = {c.name: c for c in collect(str(path), **kw)}
        c = checks["portal"]
        assert c.status == "fail", c
        assert c.detail == f"{moved.url}/healthz answered HTTP 308, a redirect to {httpserver.url_for('/healthz')}: " \
                           "not followed", c
        assert f"correct [portal] url in {path}" in c.fix and \
            f'url = "{httpserver.url_for("/").rstrip("/")}"' in c.fix, c
        assert "portal.enrolled" not in checks
        assert run_doctor(str(path), **kw) == 1
        assert f"[FAIL] portal: {c.detail}\n       fix: {c.fix}" in capsys.readouterr().out

        redirected = {f"/api/v1/kiosks/{cfg.kiosk.id}/config"}
        checks = {c.name: c for c in collect(str(path), **kw)}
        assert checks["portal"].status == "ok"
        c = checks["portal.enrolled"]
        assert c.status == "fail" and "answered HTTP 308, a redirect to" in c.detail, c
        assert f"correct [portal] url in {path}" in c.fix, c
    assert httpserver.log == []  # neither /healthz nor the signed request went to where the redirects pointed


def test_missing_or_damaged_screen_catalogs_are_named_with_the_fix(tmp_path, capsys):
    path = write_config(tmp_path / "site")
    ensure_secrets(load_config(path))
    kw = dict(root=tmp_path, min_free_bytes=1, reader_kw=hermetic_reader(tmp_path))
    locale = tmp_path / "locale"

    def catalogs(**kw2: object) -> Check:
        return {c.name: c for c in collect(str(path), more=(lambda: catalog_checks(**kw2),), **kw)}["catalogs"]

    assert catalogs().status == "ok"  # the installed package's
    c = catalogs(locale_dir=locale)
    assert c.status == "fail" and "kiosk.mo is missing" in c.detail and "pip install -e ." in c.fix, c
    (locale / "ja" / "LC_MESSAGES").mkdir(parents=True)
    (locale / "ja" / "LC_MESSAGES" / "kiosk.mo").write_bytes(b"not a catalog")
    c = catalogs(locale_dir=locale)
    assert c.status == "fail" and "cannot be read" in c.detail and "install the package again" in c.fix, c
    # The whole command's report has the line (its exit code follows this machine's units and the like).
    assert kiosk_main(["doctor", "--config", str(path)]) in (0, 1)
    assert "[OK  ] catalogs: screen text compiled for ja, en" in capsys.readouterr().out


def test_offline_kiosk_needs_no_portal_or_sync_timer(tmp_path):
    path = write_config(tmp_path / "site")
    cfg = load_config(path)
    ensure_secrets(cfg)
    checks = {c.name: c for c in collect(str(path), root=tmp_path, min_free_bytes=1,
                                         reader_kw=hermetic_reader(tmp_path))}
    assert checks["portal"].status == "ok" and "offline" in checks["portal"].detail
    assert "systemd.kiosk-sync.timer" not in checks


def test_the_enrollment_fix_really_enrolls_the_kiosk(tmp_path, capsys):
    """Issue #15 item 13: the two commands doctor prints, run as printed against a real portal, enroll the kiosk."""
    import re
    import shlex

    pytest.importorskip("uvicorn")
    from kiosk.cli import main as kiosk_main
    from server_sync.embedded import start_portal
    from server_sync.portal_cli import main as portal_main

    db_url = f"sqlite:///{tmp_path / 'portal.db'}"
    with start_portal(db_url) as portal:
        path = make_site(tmp_path / "site", portal.url)
        kw = dict(root=tmp_path, min_free_bytes=1, reader_kw=hermetic_reader(tmp_path))
        c = {c.name: c for c in collect(str(path), **kw)}["portal.enrolled"]
        assert c.status == "fail" and "not enrolled" in c.detail, c
        on_portal, on_kiosk = re.findall(r"`([^`]+)`", c.fix)
        argv = shlex.split(on_portal)
        assert argv[0] == "kiosk-portal"
        capsys.readouterr()
        # The portal operator's shell has KIOSK_PORTAL_DB (or passes --db); here it is the test's database.
        assert portal_main(argv[1:] + ["--db", db_url]) == 0, capsys.readouterr().err
        code = capsys.readouterr().out.strip()
        argv = shlex.split(on_kiosk.replace("CODE", code))
        assert argv[:3] == ["sudo", "-u", "kiosk"] and argv[3] == "kiosk"
        assert kiosk_main(argv[4:]) == 0, capsys.readouterr().err
        c = {c.name: c for c in collect(str(path), **kw)}["portal.enrolled"]
        assert c.status == "ok", c
