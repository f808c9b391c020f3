"""The value axis of the donation charts says its unit on every mark (SQLite, the real portal on loopback, real
Chromium at phone size).

The public and staff charts' value axis used to read "¥0, 1,000, 2,000, 1.0万": only the lowest mark had the ¥, so a
citizen looking at the chart could not tell the other marks were yen. Every mark now carries it (¥1,000, ¥1.5万;
in English ¥15k), and the marks are written on both sides of the chart: on a phone the chart opens scrolled to its
right end (the newest days), where the left side's marks are out of sight. All the series charts are in yen (the
goal bars have no value axis); there is no chart of counts.

Checked in Chromium as drawn: every mark is inside the drawing, clear of the bars' area, of every other text, and
(on a 390 px phone, as the page opens) a whole set of marks is in view in the chart's box.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, needs_chromium, staff_page

from server_sync import charts
from server_sync.configstore import publish
from server_sync.embedded import start_portal
from server_sync.staff import add_user
from tests.portal_db import fresh_db

UNITS = {"万": 10_000, "億": 100_000_000, "k": 1_000, "M": 1_000_000}

# Every text of a series chart's drawing with its box (page pixels), its anchor and whether it is a value-axis mark:
# a text straight in the <svg> (not a bar's) that is not centred under a bar.
TEXTS_JS = """svg => {
  const r = svg.getBoundingClientRect();
  const plot = svg.closest('.plot');
  const box = plot ? plot.getBoundingClientRect() : r;
  const lines = [...svg.querySelectorAll(':scope > line')].map(l => l.getBoundingClientRect());
  return {svg: [r.left, r.right, r.top, r.bottom], box: [box.left, box.right],
          plot: [Math.min(...lines.map(b => b.left)), Math.max(...lines.map(b => b.right))],
          texts: [...svg.querySelectorAll('text')].map(t => {
            const b = t.getBoundingClientRect();
            return {s: t.textContent, l: b.left, r: b.right, t: b.top, b: b.bottom, y: t.getAttribute('y'),
                    mark: t.parentElement === svg && t.getAttribute('text-anchor') !== 'middle'};
          })};
}"""


def value_of(mark: str) -> int:
    """What a mark says, read as a reader would: "¥1,000" 1000, "¥1.5万" 15000, "¥15k" 15000."""
    assert mark.startswith("¥"), f"the mark {mark!r} does not say it is yen"
    body = mark[1:].replace(",", "")
    if body and body[-1] in UNITS:
        return round(float(body[:-1]) * UNITS[body[-1]])
    return int(body)


def check_drawing(found: dict[str, Any], where: str) -> None:
    """Every mark has the ¥ and reads as 0, s, 2s, 3s, 4s from the bottom; every mark is inside the drawing and
    outside the bars' area; no two texts of the drawing overlap; a whole set of marks is in view in the chart's box
    (on a phone the box scrolls)."""
    left, right, top, bottom = found["svg"]
    marks = [t for t in found["texts"] if t["mark"]]
    assert marks, f"{where}: no value-axis marks"
    by_height: dict[str, list[dict[str, Any]]] = {}
    for t in marks:
        by_height.setdefault(t["y"], []).append(t)
    sides = {len(v) for v in by_height.values()}
    assert len(sides) == 1, f"{where}: not every gridline has the same marks"
    for column in range(sides.pop()):
        values = [value_of(by_height[y][column]["s"]) for y in sorted(by_height, key=float, reverse=True)]
        assert values[0] == 0 and values[1] > 0 and values == [values[1] * k for k in range(len(values))], (
            f"{where}: the marks read {values}")
    for t in marks:
        assert left - 0.5 <= t["l"] and t["r"] <= right + 0.5 and top - 0.5 <= t["t"] and t["b"] <= bottom + 0.5, (
            f"{where}: the mark {t['s']!r} is cut at the drawing's edge")
        assert t["r"] <= found["plot"][0] + 0.5 or t["l"] >= found["plot"][1] - 0.5, (
            f"{where}: the mark {t['s']!r} runs into the bars' area")
    texts = found["texts"]
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            apart = a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"]
            assert apart, f"{where}: {a['s']!r} and {b['s']!r} overlap"
    seen_left, seen_right = found["box"]
    in_view = [t for t in marks if t["l"] >= seen_left - 0.5 and t["r"] <= seen_right + 0.5]
    assert len(in_view) >= len(by_height), f"{where}: the value axis is out of sight in the chart's box"


def series(top: int, days: int) -> list[dict[str, Any]]:
    """Two series whose highest day gives ``top`` in all."""
    first = [top // 3 if i % 2 else top // 5 for i in range(days)]
    second = [0] * days
    second[-1] = top - first[-1]
    return [{"key": "children", "label": "子ども・未来", "yen": first, "count": [1] * days},
            {"key": "green", "label": "みどり・環境", "yen": second, "count": [1] * days}]


def test_every_mark_says_yen():
    """Drawn from numbers: from a few hundred yen to ten million, every mark of the value axis has the ¥."""
    for lang in ("ja", "en"):
        for top in (300, 2_600, 12_000, 27_000, 160_000, 900_000, 3_100_000, 60_000_000, 700_000_000):
            svg = str(charts.stacked_bars("c", "t", [f"12/{d}" for d in range(1, 15)], series(top, 14), lang,
                                          lambda m, **kw: m % kw))
            marks = [m for m in svg.split('text-anchor="end" fill="#5b6770">')[1:]]
            assert marks, svg[:400]
            for m in marks:
                value_of(m.split("<", 1)[0])


@needs_chromium
def test_the_marks_fit_and_do_not_overlap_as_chromium_draws_them(browser):
    """Every magnitude the axis can reach, both languages, 14 days and 12 weeks, drawn by Chromium at its size on a
    phone (the chart's own 480 px): the marks have the ¥, are inside the drawing, clear of the bars and of each
    other."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    for lang in ("ja", "en"):
        for buckets in (14, 12):
            for top in (300, 2_600, 7_400, 12_000, 27_000, 160_000, 740_000, 3_100_000, 60_000_000, 700_000_000):
                labels = [f"12/{d}" if buckets == 14 else f"11/{d}〜" for d in range(10, 10 + buckets)]
                svg = charts.stacked_bars("c", "t", labels, series(top, buckets), lang, lambda m, **kw: m % kw)
                page.set_content(f'<!doctype html><meta charset="utf-8"><body style="margin:0">'
                                 f'<div style="width:480px">{svg}</div>')
                check_drawing(page.eval_on_selector("svg", TEXTS_JS), f"{lang} {buckets} buckets up to ¥{top:,}")
    page.close()


# --- the real portal ------------------------------------------------------------------------------------------------
@pytest.fixture
def portal(tmp_path: Path):
    handle = start_portal(fresh_db("sqlite", tmp_path))
    yield handle
    handle.stop()


@pytest.fixture
def rig(tmp_path: Path):
    from sync_helpers import make_rig

    r = make_rig(tmp_path)
    yield r
    r.ledger.close(checkpoint=False)


def give(rig: Any, portal: Any) -> None:
    """Donations on three days (the kiosk's clock moved back): ¥12,000 today, so the axis runs past ¥10,000."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    card = 0
    for back_days, project, amount, times in [(9, "midori", 1000, 2), (2, "ongaku", 700, 3), (0, "kodomo", 1000, 7),
                                              (0, "midori", 1000, 5)]:
        rig.clock.wall -= back_days * 86_400_000
        for _ in range(times):
            card += 1
            intent = rig.ledger.record_intent(project, amount, "sim", rig.pepper.token(fake_idm(card)),
                                              uuid.uuid4().hex)
            rig.clock.advance(700)
            rig.ledger.record_donation(intent.seq, f"sim-{intent.seq}", amount // 100)
        rig.clock.wall += back_days * 86_400_000
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok


def check_page(page: Any, where: str) -> int:
    charts_drawn = page.locator("svg.chart:not(.progress)")
    assert charts_drawn.count() >= 2, f"{where}: no series charts"
    for i in range(charts_drawn.count()):
        svg = charts_drawn.nth(i)
        svg.scroll_into_view_if_needed()
        check_drawing(svg.evaluate(TEXTS_JS), f"{where} #{svg.get_attribute('id')}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{where} scrolls sideways"
    return int(charts_drawn.count())


@needs_chromium
def test_public_and_staff_charts_at_phone_size(portal, rig, browser):
    """A citizen on a 390 px phone opens the top page, an area page and a project page, and staff their dashboard:
    on every donation chart each mark of the value axis says ¥, a whole set is in view as the page opens (scrolled
    to the newest days), and no text of a chart overlaps another or is cut."""
    give(rig, portal)
    add_user(portal.app.state.engine, "clerk", PASSWORD)
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP", is_mobile=True, has_touch=True)
    for path in ("/", "/a/children", "/p/kodomo", "/?lang=en"):
        assert (answer := page.goto(portal.url + path)) is not None and answer.status == 200, path
        check_page(page, path)
    top = page.goto(portal.url + "/")
    assert top is not None
    daily = page.locator("#chart-daily")
    assert int(daily.get_attribute("data-total-yen") or 0) == 2_000 + 2_100 + 12_000
    assert any(m.endswith("万") for m in daily.locator(":scope > text[text-anchor=end]").all_text_contents()), (
        "the axis should run past ¥10,000 here")
    page.close()
    staff = staff_page(browser, portal.url, "clerk")
    check_page(staff, "/staff")
    staff.close()
