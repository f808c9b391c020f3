"""City-wide donor tokens and my pages, end to end: real kiosk ledgers syncing over loopback HTTP to one
portal (SQLite, and PostgreSQL when KIOSK_TEST_PG_URL is set), the city's pepper sealed to each kiosk,
one-time my-page requests redeemed on the portal, revocation, expiry (docs/privacy.md)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sync_helpers import Rig, enrolled, fake_idm, make_rig

from kiosk.ledger import keys
from kiosk.ledger.pepper import CITY_FIRST_EPOCH, Pepper
from server_sync.db import kiosks, peppers
from server_sync.portal_cli import main as portal_main
from server_sync.wire import mypage as W

CARD = 7


def _uploader(rig: Rig, url: str, **kw: Any):  # noqa: ANN202
    return rig.uploader(url, pepper=rig.pepper, **kw)


def _give(rig: Rig, n: int, card: int = CARD) -> None:
    """``n`` gifts by ``card`` with the token of the kiosk's current epoch (as a tap would make it)."""
    rig.donate(n, card=card)


def _request(rig: Rig, card: int = CARD, ttl_ms: int = 180_000, issued_ms: int | None = None) -> str:
    """What the kiosk shows as a QR code after ``card`` was tapped on its my-page screen."""
    sk = keys.load_private(rig.cfg.private_key_path)
    token = rig.pepper.card_token(fake_idm(card))
    return W.make_request(sk, rig.kiosk_id, token.all_hexes,
                          rig.clock.wall_ms() if issued_ms is None else issued_ms, ttl_ms)


def _claim(url: str, request: str) -> requests.Response:
    return requests.post(url + "/me/claim", json={"request": request}, timeout=10)


def _page(url: str, path: str) -> requests.Response:
    return requests.get(url + path, timeout=10)


def _points_on(html: str) -> int:
    m = re.search(r'id="points">(\d+)<', html)
    assert m, html[:500]
    return int(m.group(1))


def _card_points(rigs: list[Rig], card: int = CARD) -> int:
    """The card's points in the kiosks' own ledgers, under every epoch each kiosk holds."""
    total = 0
    for r in rigs:
        hexes = set(r.pepper.card_token(fake_idm(card)).all_hexes)
        total += sum(e.data["points"] for e in r.ledger.iter_entries() if e.type == "donation"
                     and e.data["donor"] in hexes)
    return total


def test_a_card_tapped_at_two_kiosks_shows_one_balance_on_its_my_page(portal, tmp_path):
    a = make_rig(tmp_path, "center-1f")
    b = make_rig(tmp_path, "city-hall")
    # Kiosk A is an older kiosk: enrolled, with gifts, before it knew of city peppers (its own pepper only).
    old = a.uploader(portal.url, pepper_path=None)
    old.enroll(portal.issue_code(a.kiosk_id))
    _give(a, 2)
    assert old.sync_once().ok
    own_token = a.pepper.card_token(fake_idm(CARD))
    assert own_token.epoch == 1 and a.pepper.domain is None
    # Upgraded, its next sync round adopts the city's pepper (the heartbeat names the epoch); kiosk B gets it
    # at enrollment. Neither ever sends a pepper: only its seal key.
    up_a = _uploader(a, portal.url)
    assert up_a.sync_once().ok
    up_b = enrolled(b, portal, pepper=b.pepper)
    assert a.pepper.domain == b.pepper.domain and a.pepper.epoch == b.pepper.epoch == CITY_FIRST_EPOCH
    assert a.pepper.card_token(fake_idm(CARD)).hex == b.pepper.card_token(fake_idm(CARD)).hex, "one city token"
    assert a.pepper.card_token(fake_idm(CARD)).older == (own_token.hex,), "A keeps its own epoch for old gifts"
    with portal.app.state.engine.connect() as conn:
        held = dict(conn.execute(select(peppers.c.epoch, peppers.c.pepper)).all())
        seal_keys = dict(conn.execute(select(kiosks.c.id, kiosks.c.seal_key)).all())
    assert held[CITY_FIRST_EPOCH] == a.pepper._peppers[CITY_FIRST_EPOCH] == b.pepper._peppers[CITY_FIRST_EPOCH]
    assert all(seal_keys[k] is not None for k in ("center-1f", "city-hall"))
    # The same card gives at both kiosks (and another card too), both sync.
    _give(a, 3)
    _give(b, 4)
    _give(b, 2, card=8)
    assert up_a.sync_once().ok and up_b.sync_once().ok

    r = _claim(portal.url, _request(a))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    link = r.json()["url"]
    page = _page(portal.url, link)
    assert page.status_code == 200 and page.headers["referrer-policy"] == "same-origin"
    expected = _card_points([a, b])
    assert expected == sum(e.data["points"] for e in a.ledger.iter_entries() if e.type == "donation") \
        + sum(e.data["points"] for e in b.ledger.iter_entries() if e.type == "donation" and e.data["donor"]
              == b.pepper.card_token(fake_idm(CARD)).hex)
    assert _points_on(page.text) == expected, "one balance for the card across both kiosks and both epochs"
    assert page.text.count('<li class="donation') == 2 + 3 + 4
    assert "center-1f" in page.text and "city-hall" in page.text
    # A request made at kiosk B (which never knew A's own pepper) reaches A's old gifts through the page the
    # card already opened: the same card, asking again, links what it linked before.
    r2 = _claim(portal.url, _request(b))
    assert _points_on(_page(portal.url, r2.json()["url"]).text) == expected


def test_rotating_the_pepper_keeps_a_my_page_whole(portal, tmp_path):
    a = make_rig(tmp_path, "center-1f")
    b = make_rig(tmp_path, "city-hall")
    up_a, up_b = enrolled(a, portal, pepper=a.pepper), enrolled(b, portal, pepper=b.pepper)
    _give(a, 2)
    _give(b, 1)
    assert up_a.sync_once().ok and up_b.sync_once().ok
    first = _claim(portal.url, _request(a)).json()["url"]
    before = _card_points([a, b])
    assert _points_on(_page(portal.url, first).text) == before

    assert portal_main(["pepper", "rotate", "--db", portal.db_url]) == 0
    assert up_a.sync_once().ok and up_b.sync_once().ok  # the heartbeat names the new epoch: both adopt it
    assert a.pepper.epoch == b.pepper.epoch == CITY_FIRST_EPOCH + 1
    new_tok = a.pepper.card_token(fake_idm(CARD))
    assert len(new_tok.older) == 2  # its own epoch 1 and the city's first
    _give(a, 1)
    _give(b, 3)
    assert up_a.sync_once().ok and up_b.sync_once().ok
    after = _card_points([a, b])
    assert after > before
    # A new request (any kiosk: each knows every epoch) shows the whole balance, and makes the card's older
    # link whole too; the old link alone never learned the new token, and nothing was lost from it.
    assert _points_on(_page(portal.url, first).text) == before
    second = _claim(portal.url, _request(b)).json()["url"]
    assert _points_on(_page(portal.url, second).text) == after
    assert _points_on(_page(portal.url, first).text) == after
    # The kiosk's own balance saw every epoch too (the thank-you's figure): a's ledger, both epochs.
    assert a.ledger.donor_points(list(new_tok.all_hexes)) == _card_points([a])


def test_revocation_ends_the_link_and_a_new_request_does_not_revive_it(portal, tmp_path):
    a = make_rig(tmp_path, "center-1f")
    up = enrolled(a, portal, pepper=a.pepper)
    _give(a, 2)
    assert up.sync_once().ok
    link = _claim(portal.url, _request(a)).json()["url"]
    assert _page(portal.url, link).status_code == 200
    r = requests.post(portal.url + link + "/revoke", timeout=10, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/me/closed")
    gone = _page(portal.url, link)
    assert gone.status_code == 404 and 'id="points"' not in gone.text
    unknown = _page(portal.url, "/me/" + "A" * 43)
    assert unknown.status_code == 404 and unknown.text.replace("/me/" + "A" * 43, "") == gone.text.replace(link, "")
    assert requests.post(portal.url + link + "/revoke", timeout=10).status_code == 404
    other = _claim(portal.url, _request(a)).json()["url"]
    assert _page(portal.url, other).status_code == 200 and _page(portal.url, link).status_code == 404


def test_the_one_time_code_works_once_expires_and_must_be_the_kiosks(portal, tmp_path):
    a = make_rig(tmp_path, "center-1f")
    up = enrolled(a, portal, pepper=a.pepper)
    _give(a, 1)
    assert up.sync_once().ok  # the heartbeat taught the portal this kiosk's clock (an hour slow here)
    req = _request(a, ttl_ms=60_000)
    assert _claim(portal.url, req).status_code == 200
    again = _claim(portal.url, req)
    assert (again.status_code, again.json()["error"]) == (410, "used")
    # Expired: made by the kiosk's clock more than its lifetime ago (the portal corrects for that clock).
    stale = _request(a, ttl_ms=60_000, issued_ms=a.clock.wall_ms() - 61_000)
    r = _claim(portal.url, stale)
    assert (r.status_code, r.json()["error"]) == (410, "expired")
    fresh = _request(a, ttl_ms=60_000, issued_ms=a.clock.wall_ms() - 50_000)
    assert _claim(portal.url, fresh).status_code == 200
    # Too long a life, another key, a changed token, garbage: refused.
    r = _claim(portal.url, _request(a, ttl_ms=W.MAX_TTL_MS + 1))
    assert (r.status_code, r.json()["error"]) == (400, "bad_lifetime")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = W.make_request(Ed25519PrivateKey.generate(), a.kiosk_id, ["00" * 16], a.clock.wall_ms(), 60_000)
    assert _claim(portal.url, forged).json()["error"] == "bad_signature"
    good = W.parse_request(_request(a))
    raw = bytearray(good.signed + good.signature)
    raw[len(good.signed) - 1] ^= 1  # the last token's last byte
    import base64

    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert _claim(portal.url, changed).json()["error"] == "bad_signature"
    assert _claim(portal.url, "not-a-request").status_code == 400
    assert requests.post(portal.url + "/me/claim", data=b"{", timeout=10).status_code == 400


def test_json_nested_too_deep_is_a_bad_body_not_a_500(portal, tmp_path):
    """json.loads raises RecursionError (not ValueError) on "[[[[...": under the size limits, still a 4xx."""
    r = requests.post(portal.url + "/me/claim", data=b"[" * 4000, timeout=10,
                      headers={"Content-Type": "application/json"})  # 4,000 bytes: under the 4,096-byte limit
    assert (r.status_code, r.json()["error"]) == (400, "malformed_json")
    a = make_rig(tmp_path, "center-1f")
    enrolled(a, portal, pepper=a.pepper)
    from sync_helpers import signed_post

    r = signed_post(portal.url, a, f"/api/v1/kiosks/{a.kiosk_id}/peppers", b"[" * 1000)  # limit 1,024 bytes
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    r = signed_post(portal.url, a, f"/api/v1/kiosks/{a.kiosk_id}/points/allot", b"[" * 4000)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")


def test_the_pepper_never_leaves_the_portal_in_the_clear(portal, tmp_path):
    a = make_rig(tmp_path, "center-1f")
    up = enrolled(a, portal, pepper=a.pepper)
    city = a.pepper._peppers[CITY_FIRST_EPOCH]
    body = json.dumps({"seal_key": "11" * 32}).encode()
    from sync_helpers import signed_post

    ans = signed_post(portal.url, a, f"/api/v1/kiosks/{a.kiosk_id}/peppers", body).json()
    assert city.hex() not in json.dumps(ans) and ans["current_epoch"] == CITY_FIRST_EPOCH
    # Unsigned, or signed by someone else: nothing.
    assert requests.post(portal.url + f"/api/v1/kiosks/{a.kiosk_id}/peppers", data=body, timeout=10).status_code == 401
    # The kiosk made a new seal key (the portal stored the other one): the next ask re-seals to its own.
    assert up.sync_pepper() == [] and up.state.extra.get("pepper_error") is None
    assert Pepper.load(a.cfg.pepper_path).card_token(fake_idm(1)) == a.pepper.card_token(fake_idm(1))
    assert city.hex() not in (a.cfg.data_dir / "sync-state.json").read_text()
    assert all(city.hex() not in json.dumps(e.data) for e in a.ledger.iter_entries())


@pytest.mark.parametrize("ttl", [180_000])
def test_the_kiosk_service_signs_what_the_portal_redeems(portal, tmp_path, ttl):
    """The kiosk's own signer (kiosk.donation.service.my_page_signer) against the real portal."""
    from kiosk.donation.service import my_page_signer

    a = make_rig(tmp_path, "center-1f")
    up = enrolled(a, portal, pepper=a.pepper)
    _give(a, 2)
    assert up.sync_once().ok
    a.cfg.portal.my_page_qr_s = ttl // 1000
    sign = my_page_signer(a.cfg, a.clock)
    link = _claim(portal.url, sign(a.pepper.card_token(fake_idm(CARD)))).json()["url"]
    assert _points_on(_page(portal.url, link).text) == _card_points([a])


def test_kiosk_doctor_says_whether_the_city_pepper_is_held(portal, tmp_path):
    from kiosk.ops.doctor import city_pepper_checks

    a = make_rig(tmp_path, "center-1f")
    before = {c.name: c for c in city_pepper_checks(a.cfg)}
    assert before["pepper.city"].status == "warn" and "kiosk enroll" in before["pepper.city"].fix
    assert "keys.seal" not in before
    enrolled(a, portal, pepper=a.pepper)
    after = {c.name: c for c in city_pepper_checks(a.cfg)}
    assert after["pepper.city"].status == "ok" and str(CITY_FIRST_EPOCH) in after["pepper.city"].detail
    assert after["keys.seal"].status == "ok"
