"""The thank-you's caches (issue #16): the fast receipt QR is segno's code exactly, and the cached text, wrap,
fitted sizes and QR never show a previous gift's language, size, amount, project or receipt code."""

from __future__ import annotations

import os
import random
import string

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame
import pytest
import segno

from kiosk.donation.flow import ThanksScreen, replace
from kiosk.ui import widgets as ui
from kiosk.ui.screens import ProjectInfo, ScreenContext, chrome, render
from kiosk.ui.screens import receipt as rq

ALPHABET = string.ascii_uppercase + "234567"  # a receipt code's letters (base32)


def segno_modules(url: str) -> bytes:
    return bytes(v for row in segno.make(url, error="m", micro=False, mask=rq.FIXED_MASK).matrix for v in row)


def code(rng: random.Random, n: int = 26) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


@pytest.mark.parametrize(("base", "key", "length"), [
    ("http://127.0.0.1:8080", "0123456789abcdef", 26),   # the embedded portal, a real code (version 4-5)
    ("https://kifu.city.example.lg.jp/portal/", "", 26),  # no key fragment
    ("https://portal.example.jp", "k" * 40, 26),           # a longer URL: more blocks
    ("https://x.example.org/" + "p" * 200, "abc", 40),      # version >= 10: a 16-bit character count
    ("https://a.jp", "", 7),
])
def test_fast_qr_matrix_is_segnos_code(base: str, key: str, length: int) -> None:
    rng = random.Random(f"{base}{key}{length}")
    for _ in range(25):
        c = code(rng, length)
        url = f"{base.rstrip('/')}/r/{c}" + (f"#k={key}" if key else "")
        width, modules = rq.qr_matrix(url, c)
        assert modules == segno_modules(url), url
        assert width * width == len(modules)


@pytest.mark.parametrize(("base", "key", "length"), [
    ("http://127.0.0.1:8080", "0123456789abcdef", 26), ("https://x.example.org/" + "p" * 200, "abc", 40)])
def test_a_receipt_link_gets_its_template_not_the_slow_fallback(base: str, key: str, length: int) -> None:
    # The comparison above holds through segno's own code too: this is what says the fast path is taken.
    rq._template.cache_clear()
    try:
        t = rq._template(f"{base}/r/", f"#k={key}", length)
        assert t is not None and t.width * t.width == len(t.matrix)
    finally:
        rq._template.cache_clear()


def test_qr_matrix_falls_back_to_segno_outside_the_template() -> None:
    url = "http://127.0.0.1:8080/r/ABCDEFGH#k=k1"
    assert rq.qr_matrix(url, "NOT-IN-URL")[1] == segno_modules(url)
    assert rq.qr_matrix(url, None)[1] == segno_modules(url)
    ja = "http://127.0.0.1:8080/r/ABCDEFGH#k=寄付"  # not ASCII: segno decides the encoding
    assert rq.qr_matrix(ja, "ABCDEFGH")[1] == segno_modules(ja)


def test_a_segno_without_the_encoder_module_the_template_reads_still_gives_its_code(monkeypatch) -> None:
    # The template reads segno.encoder, which is not segno's public API: a segno that moved it must not take
    # the QR off the thank-you screen. (Here the template sees an encoder module without the functions it reads.)
    import types

    from segno import consts

    # segno.encoder as a later segno might have it: without the functions the template reads
    monkeypatch.setattr(rq, "_segno_internals", lambda: (consts, types.SimpleNamespace()))
    rq._template.cache_clear()
    try:
        url = "http://127.0.0.1:8080/r/QWERTYUIOPASDFGHJKLZXCVBNM#k=k9"
        assert rq.qr_matrix(url, "QWERTYUIOPASDFGHJKLZXCVBNM")[1] == segno_modules(url)
    finally:
        rq._template.cache_clear()


def read_modules(surf: pygame.Surface, width: int) -> bytes:
    scale = surf.get_width() // (width + 2 * rq.QUIET)
    return bytes(1 if surf.get_at(((x + rq.QUIET) * scale + scale // 2,
                                   (y + rq.QUIET) * scale + scale // 2))[:3] == (0, 0, 0) else 0
                 for y in range(width) for x in range(width))


def test_receipt_qr_surface_follows_the_code() -> None:
    rng = random.Random(7)
    seen = set()
    for _ in range(6):  # one after the other, as gifts come: each QR shows its own code
        c = code(rng)
        url = f"http://127.0.0.1:8080/r/{c}#k=0123"
        surf = rq.receipt_qr(url, 240, c)
        width, _ = rq.qr_matrix(url)
        assert read_modules(surf, width) == segno_modules(url)
        seen.add(read_modules(surf, width))
    assert len(seen) == 6


def cold(fn):
    """Run ``fn`` with every cache of the drawing path emptied first."""
    ui.clear_text_cache()
    chrome.fitted_size.cache_clear()
    rq.receipt_qr.cache_clear()
    rq._template.cache_clear()
    return fn()


CTX = ScreenContext({"kodomo": ProjectInfo("kodomo", "こども食堂に温かいごはんを", "Warm meals for children",
                                           "みなみ子ども会", "children", 300_000),
                     "midori": ProjectInfo("midori", "まちの緑を守る", "Green streets", "緑の会", "green", 50_000)},
                    {}, "http://127.0.0.1:8080", (100, 500, 1000), receipt_key_id="0123456789abcdef")

BASE = ThanksScreen("kodomo", 100, 12_300, 1, 41, "ZHMWMD2CPFYYABCDEFGHJKLMNP", 120, "ja", True, True, False)
VARIANTS = {
    "base": (BASE, (640, 360)),
    "lang": (replace(BASE, lang="en"), (640, 360)),
    "size": (BASE, (960, 540)),
    "amount": (replace(BASE, amount_yen=500, new_total_yen=12_700), (640, 360)),
    "project": (replace(BASE, project="midori"), (640, 360)),
    "receipt": (replace(BASE, receipt_code="Q7RSTUVWXYZ234567ABCDEFGHJ"), (640, 360)),
    "points": (replace(BASE, points_earned=5, points_balance=77), (640, 360)),
}


def draw(data: ThanksScreen, size: tuple[int, int]) -> bytes:
    surf = pygame.Surface(size)
    surf.fill((30, 60, 90))
    render(data, surf, 0, ctx=CTX)
    return pygame.image.tobytes(surf, "RGB")


def qr_on_screen(rgb: bytes, size: tuple[int, int], width: int) -> bytes:
    """The modules of the QR code drawn on a screen: pure black appears nowhere else on the thank-you."""
    import numpy as np

    img = np.frombuffer(rgb, dtype=np.uint8).reshape(size[1], size[0], 3)
    ys, xs = np.nonzero((img == 0).all(axis=2))
    x0, y0 = xs.min(), ys.min()
    scale = (xs.max() - x0 + 1) // width  # the finder patterns sit in three corners: the black box is the symbol
    assert (ys.max() - y0 + 1) == width * scale
    return bytes(int((img[y0 + r * scale + scale // 2, x0 + c * scale + scale // 2] == 0).all())
                 for r in range(width) for c in range(width))


def test_thank_you_caches_show_the_gift_on_screen() -> None:
    """Each variant drawn right after the others (warm caches) is pixel for pixel what a cold draw gives; a cache
    keyed without the language, size, amount, project, points or receipt code would draw the previous one."""
    pygame.font.init()
    fresh = {name: cold(lambda d=d, s=s: draw(d, s)) for name, (d, s) in VARIANTS.items()}
    assert len(set(fresh.values())) == len(VARIANTS)  # every variant changes the picture: the test can fail
    cold(lambda: None)
    for _ in range(2):  # every order of neighbours, twice: each draw follows a different one
        for name, (d, s) in VARIANTS.items():
            shown = draw(d, s)
            assert shown == fresh[name], name
            # And read back, independently of any cache: the QR names this gift's receipt.
            want = segno_modules(CTX.receipt_url(d.receipt_code))
            assert qr_on_screen(shown, s, int(len(want) ** 0.5)) == want, name


def test_cached_text_is_keyed_by_colour_size_weight_and_width() -> None:
    pygame.font.init()
    surf = pygame.Surface((400, 200))

    def one(colour, size, bold, width):
        surf.fill((0, 0, 0))
        ui.text(surf, "ありがとうございます Thank you for giving", (0, 0), size, colour, bold=bold, max_width=width)
        return pygame.image.tobytes(surf, "RGB")

    cases = [((255, 196, 0), 24, True, 380), ((46, 204, 113), 24, True, 380), ((46, 204, 113), 30, True, 380),
             ((46, 204, 113), 30, False, 380), ((46, 204, 113), 30, False, 200)]
    fresh = [cold(lambda c=c: one(*c)) for c in cases]
    assert len(set(fresh)) == len(cases)
    cold(lambda: None)
    for _ in range(2):
        assert [one(*c) for c in cases] == fresh


def test_screens_that_cover_the_movie_draw_the_same_pixels_over_any_movie() -> None:
    """The render loop skips the movie frame under these screens (``COVERS_MOVIE``): that is only right while
    each of them paints the whole screen. A screen made see-through later fails here, naming itself."""
    from app_samples import CTX as SAMPLE_CTX
    from app_samples import backdrop, screens

    from kiosk.ui.screens import COVERS_MOVIE

    pygame.font.init()
    size = (640, 360)
    assert "attract" not in COVERS_MOVIE and "thanks" in COVERS_MOVIE and "charging" in COVERS_MOVIE

    def over(data, background):  # noqa: ANN001, ANN202
        surf = background.copy()
        render(data, surf, 1234, ctx=SAMPLE_CTX)
        return pygame.image.tobytes(surf, "RGB")

    movie_a, movie_b = backdrop(size, "children"), backdrop(size, "green")
    movie_b.fill((255, 0, 255), pygame.Rect(0, 0, 640, 40))
    covered = {name: d for name, d in screens("ja").items() if d.screen in COVERS_MOVIE}
    assert {d.screen for d in covered.values()} == set(COVERS_MOVIE)  # a sample of every one
    for name, data in covered.items():
        assert over(data, movie_a) == over(data, movie_b), name
    attract = screens("ja")["attract"]
    assert over(attract, movie_a) != over(attract, movie_b)  # the loop's band is over a visible movie


def test_the_line_cache_is_bounded_by_bytes() -> None:
    pygame.font.init()
    ui.clear_text_cache()
    f = ui.font(120, True)
    for i in range(400):  # large lines, all different: far more than the budget
        ui.rendered_line(f, f"ありがとうございます {i}", (255, 255, 255))
    assert 0 < ui._lines_bytes <= ui.LINE_CACHE_BYTES
    assert ui._lines_bytes == sum(s.get_pitch() * s.get_height() for s in ui._lines.values())
    newest = ui.rendered_line(f, "ありがとうございます 399", (255, 255, 255))
    assert ui.rendered_line(f, "ありがとうございます 399", (255, 255, 255)) is newest  # kept
    ui.clear_text_cache()
