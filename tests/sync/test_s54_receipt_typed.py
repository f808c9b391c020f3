"""A receipt number typed by hand, and the clock note on a receipt opened without the QR's key, against a real portal
on loopback (and headless Chromium on a 375 px phone where the page's script matters).

- The kiosk's thank-you screen shows the code in groups of four (kiosk/ui/screens/thanks.py ``spaced_code``:
  「DTRO KM7A ZMUY …」). A donor whose phone did not scan the QR code types it as shown: spaces, hyphens, small
  letters, a Japanese keyboard's full-width letters and spaces, 0 for O. /r/ with that used to answer 「この受領証コード
  は見つからないか…」; now it goes on to the code's own address, /r/CODE. A form at /r/ takes the number too, from
  the receipt's "not found" page and the top page; it counts against the receipts' rate limit like /r/CODE.
- A gift the kiosk signed with its clock not set showed 「（端末の時計が合っていなかったため、ポータルの推定です）」
  only when the script had checked it (the link with #k=...); at a typed /r/CODE the same time was shown without it.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from urllib.parse import quote

import requests
from sync_helpers import PROJECTS, enrolled, needs_chromium
from test_accessibility import violations

from server_sync.app import typed_receipt_code
from server_sync.configstore import publish
from server_sync.embedded import start_portal
from server_sync.ratelimit import RateLimits
from server_sync.wire.receipt import receipt_code

PHONE = {"width": 375, "height": 812}
NOTE = "端末の時計が合っていなかったため、ポータルの推定です"


def _groups(code: str) -> list[str]:
    """As the kiosk shows it (kiosk/ui/screens/thanks.py spaced_code, not imported: it needs pygame)."""
    return [code[i:i + 4] for i in range(0, len(code), 4)]


def _fullwidth(s: str) -> str:
    """What a Japanese keyboard in full-width mode types: ＤＴＲＯ　ＫＭ７Ａ …"""
    return "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in s)


def _gifts(portal, rig) -> tuple[str, str, str]:  # noqa: ANN001
    """Two gifts of one kiosk, synced with their checkpoint: one with its clock set, one without. Their codes and
    the kiosk's key id."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    synced = rig.donate(1)[0]
    rig.clock.is_synced = False  # a Pi booted without the network: its clock not set
    unsynced = rig.donate(1)[0]
    assert unsynced.obj["clock_synced"] is False and synced.obj["clock_synced"] is True
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    return receipt_code(synced), receipt_code(unsynced), rig.ledger.key_id


def test_a_code_typed_as_the_kiosk_shows_it_goes_to_its_receipt(portal, rig):
    code, _, _ = _gifts(portal, rig)
    spaced = " ".join(_groups(code))
    assert _fullwidth("AB 2") == "ＡＢ\u3000２" and unicodedata.normalize("NFKC", _fullwidth(spaced)) == spaced
    typed = [spaced, "-".join(_groups(code)), spaced.lower(), " " + spaced + " ", "\u3000".join(_groups(code)),
             _fullwidth(spaced), "ー".join(_groups(code)),
             " ".join(_groups(code)[:4]) + "\n" + " ".join(_groups(code)[4:])]  # copied over the screen's two lines
    # 0 for O and 8 for B, where this random code has an O or a B (the mapping itself is checked on its own below)
    typed += [code.replace("O", "0").replace("B", "8")] if {"O", "B"} & set(code) else []
    assert typed_receipt_code("0" * 13 + "8" * 13) == "O" * 13 + "B" * 13 and typed_receipt_code("1" * 26) is None
    for t in typed:
        r = requests.get(f"{portal.url}/r/{quote(t)}", allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"] == f"/r/{code}", (t, r.status_code)
        assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
        page = requests.get(f"{portal.url}/r/{quote(t)}", timeout=10)
        assert page.status_code == 200 and "寄付の受領証" in page.text, t
    r = requests.get(f"{portal.url}/r/{quote(spaced)}?lang=en", allow_redirects=False, timeout=10)
    assert r.headers["location"] == f"/r/{code}?lang=en"
    # The code itself and its lower case answer at once, as before (the QR's link costs no redirect).
    for same in (code, code.lower()):
        assert requests.get(f"{portal.url}/r/{same}", allow_redirects=False, timeout=10).status_code == 200
    # 1 could be I or L (both in the alphabet): never guessed. A group left out is not a code.
    for wrong in (code[:-1] + "1", " ".join(_groups(code)[:-1])):
        r = requests.get(f"{portal.url}/r/{quote(wrong)}", allow_redirects=False, timeout=10)
        assert r.status_code == 404, wrong
        assert 'href="/r/?lang=ja" id="type-code"' in r.text  # the way to type it again


def test_the_form_takes_the_number_and_says_what_is_wrong(portal, rig):
    code, _, kid = _gifts(portal, rig)
    url = f"{portal.url}/r/"
    form = requests.get(url, timeout=10)
    assert form.status_code == 200 and 'method="post" action="/r/"' in form.text and 'name="code"' in form.text
    assert form.headers["cache-control"] == "no-store"
    assert 'href="/r/?lang=ja"' in requests.get(portal.url + "/", timeout=10).text  # the top page links to it

    def post(typed: str, query: str = "") -> requests.Response:
        return requests.post(url + query, data={"code": typed}, allow_redirects=False, timeout=10)

    r = post(_fullwidth(" ".join(_groups(code)).lower()))
    assert r.status_code == 303 and r.headers["location"] == f"/r/{code}"
    assert post("-".join(_groups(code)), "?lang=en").headers["location"] == f"/r/{code}?lang=en"
    # A whole link pasted in: its code, and the kiosk key it names, for the page's check.
    assert post(f"https://portal.example/r/{code}#k={kid}").headers["location"] == f"/r/{code}#k={kid}"
    unknown = " ".join(_groups("A" * 25 + "Q"))
    r = post(unknown)
    assert r.status_code == 404 and "この受領証コードは見つからない" in r.text
    assert f'value="{unknown}"' in r.text  # kept in the box, to correct a letter
    r = post("DTRO KM7A")
    assert r.status_code == 400 and 'id="lookup-error"' in r.text and 'aria-invalid="true"' in r.text
    assert post("   ").status_code == 400
    # A form posted from another site is refused, as every form of the portal (server_sync/security.py).
    assert requests.post(url, data={"code": code}, headers={"Origin": "https://evil.example"},
                         allow_redirects=False, timeout=10).status_code == 403


def test_the_form_counts_against_the_receipts_rate_limit(tmp_path: Path):
    handle = start_portal(f"sqlite:///{tmp_path / 'portal.db'}", rate_limits=RateLimits(receipts="3/minute"))
    try:
        guesses = [" ".join(_groups(c * 26)) for c in "ACDE"]
        answers = [requests.post(f"{handle.url}/r/", data={"code": g}, allow_redirects=False, timeout=10).status_code
                   for g in guesses]
        assert answers == [404, 404, 404, 429]
        # One bucket with /r/CODE: the form is no way around the limit, nor /r/ a way around the form's.
        assert requests.get(f"{handle.url}/r/{'F' * 26}", timeout=10).status_code == 429
    finally:
        handle.stop()


def test_the_clock_note_is_on_the_page_without_the_key(portal, rig):
    synced, unsynced, _ = _gifts(portal, rig)
    page = requests.get(f"{portal.url}/r/{unsynced}", timeout=10).text
    assert '<span id="time-note">' in page and NOTE in page
    assert '<span id="time-note" hidden>' in requests.get(f"{portal.url}/r/{synced}", timeout=10).text


@needs_chromium
def test_on_a_phone_typed_then_checked_and_the_note_once(portal, rig, browser):
    synced, unsynced, kid = _gifts(portal, rig)
    page = browser.new_context(viewport=PHONE, locale="ja-JP").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # From the top page to the form, the number typed as the screen shows it (full-width, a Japanese keyboard).
        page.goto(portal.url + "/")
        page.locator("#receipt-lookup a").click()
        page.wait_for_url(f"{portal.url}/r/?lang=ja")
        box = page.locator("#code")
        assert box.bounding_box()["width"] >= 250
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert violations(page) == []  # WCAG 2.1 AA (axe), as the other citizen pages
        box.fill("DTRO KM7A")  # a line of the code left out: said, and the text kept to correct
        page.locator("#lookup-go").click()
        page.locator("#lookup-error").wait_for()
        assert box.input_value() == "DTRO KM7A" and violations(page) == []
        box.fill(_fullwidth(" ".join(_groups(unsynced))))
        page.locator("#lookup-go").click()
        page.wait_for_url(f"{portal.url}/r/{unsynced}")
        page.locator("#check[data-result=nokey]").wait_for()
        note = page.locator("#time-note")
        assert note.is_visible() and NOTE in note.inner_text()  # the portal's estimate, said without the key
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # The QR's link typed with its groups: the key id stays with the browser across the redirect, and the page
        # checks; the note is said once, not twice.
        page.goto("about:blank")
        page.goto(f"{portal.url}/r/{'-'.join(_groups(unsynced))}#k={kid}")
        page.locator("#check[data-result=ok]").wait_for()
        assert page.url == f"{portal.url}/r/{unsynced}#k={kid}"
        line = page.locator("#time").locator("xpath=..").inner_text()
        assert line.count(NOTE) == 1 and page.locator("#time-note").is_visible(), line

        # A gift with the clock set: no note, checked or not.
        for link in (f"/r/{synced}", f"/r/{synced}#k={kid}"):
            page.goto("about:blank")
            page.goto(portal.url + link)
            page.locator("#check[data-result]").wait_for()
            assert NOTE not in page.locator("#facts").inner_text() and not page.locator("#time-note").is_visible()

        # A mistyped number: the receipt's "not found" page leads back to the form.
        page.goto(f"{portal.url}/r/{unsynced[:-1]}1")
        page.locator("#type-code").click()
        page.wait_for_url(f"{portal.url}/r/?lang=ja")
    finally:
        page.close()
    assert errors == []
