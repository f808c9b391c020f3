"""No my-page secret, one-time request or donor token in any log of a real portal process (``kiosk-portal
serve`` at log level debug, uvicorn's access log on), while a kiosk enrolls with ``kiosk enroll`` (a real
process: it receives the city's pepper sealed), syncs, and a donor opens, reads and closes a my page."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import requests
from sync_helpers import fake_idm

from kiosk.ledger import Pepper, keys
from kiosk.ledger.pepper import CITY_FIRST_EPOCH
from server_sync.wire import mypage as W
from tests.loopback import free_port


def test_no_my_page_secret_or_request_reaches_the_portal_logs(db_url, rig, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    log_path = tmp_path / "portal.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "server_sync.portal_cli", "serve", "--db", db_url, "--port",
                                   str(port), "--log-level", "debug"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    secrets_seen: list[str] = []
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        code = subprocess.run([sys.executable, "-m", "server_sync.portal_cli", "enroll-code", "--db", db_url,
                               "--kiosk-id", rig.kiosk_id], capture_output=True, text=True, env=env, check=True
                              ).stdout.strip()
        r = subprocess.run([sys.executable, "-m", "kiosk", "enroll", "--config", str(rig.config_path), "--portal", url,
                            "--code", code], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        rig.pepper = Pepper.load(rig.cfg.pepper_path)  # `kiosk enroll` adopted the city's pepper into the file
        assert rig.pepper.epoch == CITY_FIRST_EPOCH
        rig.donate(3, card=5)
        r = subprocess.run([sys.executable, "-m", "kiosk", "sync", "--config", str(rig.config_path), "--once"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr

        token = rig.pepper.card_token(fake_idm(5))
        request = W.make_request(keys.load_private(rig.cfg.private_key_path), rig.kiosk_id, token.all_hexes,
                                 int(time.time() * 1000), 180_000)  # `kiosk sync` told the portal: system clock
        assert requests.get(f"{url}/me/new#{request}", timeout=10).status_code == 200
        link = requests.post(url + "/me/claim", json={"request": request}, timeout=10).json()["url"]
        secret = link.rsplit("/", 1)[1]
        secrets_seen.append(secret)
        assert requests.get(url + link + "?lang=en", timeout=10).status_code == 200
        assert requests.post(url + link + "/revoke", timeout=10).status_code == 200  # followed to /me/closed
        assert requests.get(url + link, timeout=10).status_code == 404
        assert requests.post(url + "/me/claim", json={"request": request}, timeout=10).status_code == 410
    finally:
        server.terminate()
        server.wait(15)
    text = log_path.read_text("utf-8", "replace")
    assert "/me/…" in text and "/me/claim" in text, f"the access log was not on, or not as expected:\n{text[-2000:]}"
    for needle in [*secrets_seen, request, request[:40], *token.all_hexes, *(h[:16] for h in token.all_hexes)]:
        assert needle not in text, f"{needle[:12]}… is in the portal's log"
    pepper_hex = rig.pepper._peppers[CITY_FIRST_EPOCH].hex()
    assert pepper_hex not in text


def test_a_my_page_path_is_redacted_whichever_logger_makes_the_record(tmp_path, caplog):
    """Not only the loggers the access log uses: a record made by any module (a child logger propagates to the
    root's handlers without passing its ancestors' logger filters) is redacted as it is made."""
    import logging

    from server_sync.app import create_app

    create_app(f"sqlite:///{tmp_path / 'portal.db'}")
    caplog.set_level(logging.DEBUG)
    secret = "Zq3" + "x" * 38 + "-_"
    for name in ("server_sync.ingest", "server_sync.mypage", "httpx", "some.library"):
        logging.getLogger(name).warning("GET /me/%s?lang=en HTTP/1.1", secret)
        logging.getLogger(name).warning(f"POST http://127.0.0.1/me/{secret}/revoke")
    assert secret not in caplog.text and caplog.text.count("/me/…") == 8
    logging.getLogger("server_sync.x").info("GET /me/new and /me/claim and /me/closed")  # the fixed pages stay
    assert "/me/new and /me/claim and /me/closed" in caplog.text
