"""My page through a real App (screens, reader, service worker, ledger), then a real portal: the thank-you's
button, a tap of the card, a one-time QR code the portal redeems for a page with that card's gift."""

from __future__ import annotations

import re

import requests

from kiosk.app.runtime import App, target_center
from kiosk.ui.screens import chrome
from kiosk.ui.screens.mypage import my_page_url
from server_sync.wire.mypage import parse_request
from tests.app.drive import card_on_reader, entries, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401 - the module's demo clips fixture


def test_the_thank_you_button_a_tap_and_a_qr_code_the_portal_redeems(tmp_path, media):  # noqa: F811
    from kiosk.sync.uploader import sync_kiosk
    from server_sync.embedded import start_portal

    cfg = _cfg(tmp_path / "data", media)
    assert cfg.portal.my_page_qr_s == 60  # on by default (a minute: docs/privacy.md)
    portal = start_portal(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        with App(cfg, sound=False, receipt_base_url=portal.url) as app:
            run_until(app, lambda p: p.screen.screen == "attract")
            with card_on_reader(app, "suica"):  # key 1's card, on the reader until the thank-you is up
                p = run_until(app, lambda p: p.screen.screen == "thanks")
            assert p.screen.my_page
            app.touch_at(target_center(p.targets, chrome.MY_PAGE))
            p = run_until(app, lambda p: p.screen.screen == "my_page" and p.screen.request is None)
            app.touch_at((5, cfg.player.height // 2))  # a stray touch: still waiting for the card
            # The same card again: the first tap's card has left the reader (the reader saw it go), this is a new tap.
            with card_on_reader(app, "suica"):
                p = run_until(app, lambda p: p.screen.screen == "my_page" and p.screen.request is not None)
            request = p.screen.request
            assert my_page_url(app.ctx, request) == f"{portal.url}/me/new#{request}"
            req = parse_request(request)
            assert req.kiosk_id == cfg.kiosk.id and req.expires_ms - req.issued_ms == 60_000
            gift = [e for e in entries(app) if e.type == "donation"][-1]
            assert gift.data["donor"] in req.tokens
            assert sum(e.type == "donation_intent" for e in entries(app)) == 1, "the my page charged nothing"
            app.touch_at(target_center(p.targets, chrome.CANCEL))
            run_until(app, lambda p: p.screen.screen == "attract")
        # The kiosk enrolls afterwards (it takes the city's pepper then; its own epoch stays for this gift).
        assert sync_kiosk(cfg, portal.url, code=portal.issue_code(cfg.kiosk.id)).ok
        link = requests.post(portal.url + "/me/claim", json={"request": request}, timeout=10).json()["url"]
        page = requests.get(portal.url + link, timeout=10).text
        assert re.search(r'id="points">1<', page), page[-1500:]
    finally:
        portal.stop()
