"""A project with a long title on the public pages: the goals chart (an SVG, whose text never wraps by itself)
cut it off at the drawing's edge mid-word, with nothing to show it went on (「…多世代交流」 of a 64-character title).
Now the name takes a second line and ends in "…"; each line is measured in Chromium with the real Japanese font at
a phone's width, and the bars below it move down with it."""

from __future__ import annotations

from sync_helpers import enrolled, needs_chromium

from server_sync import charts
from server_sync.catalog import import_catalog
from server_sync.db import make_engine

LONG = ("地域の子どもたちと高齢者が一緒に参加できる多世代交流型のこども食堂とフードパントリーと"
        "学習支援の拠点づくりプロジェクト2026年度版（第三期）")
LONG_EN = ("A community cafeteria where children and older neighbours eat, learn and grow together, "
           "with a food pantry and homework help (third year)")


def _text(message: str, **kw: object) -> str:
    return message % kw


def test_a_long_name_takes_two_lines_and_ends_in_an_ellipsis():
    rows = [{"key": "long", "label": LONG, "total_yen": 100, "goal_yen": 5000},
            {"key": "short", "label": "音楽祭", "total_yen": 0, "goal_yen": 3000}]
    lines = charts.wrap_label(LONG, charts.PROGRESS_WIDTH - 4, 13)
    assert len(lines) == 2 and lines[1].endswith("…")
    assert (lines[0] + lines[1][:-1]) == LONG[:len(lines[0]) + len(lines[1]) - 1]  # nothing dropped in between
    assert charts.wrap_label("音楽祭", 336, 13) == ["音楽祭"]
    en = charts.wrap_label(LONG_EN, 336, 13)
    assert len(en) == 2 and not en[0].endswith(" ") and en[0].split()[-1] in LONG_EN.split()  # at a space
    svg = str(charts.progress_bars("g", "goals", rows, "ja", _text))
    short = charts.progress_bars("g", "goals", [{**rows[0], "label": "短い"}, rows[1]], "ja", _text)
    assert 'class="label"' in svg and svg.count("<tspan") == 3
    height = int(svg.split('viewBox="0 0 340 ')[1].split('"')[0])
    assert height == int(str(short).split('viewBox="0 0 340 ')[1].split('"')[0]) + 17  # one line more


@needs_chromium
def test_the_goals_chart_keeps_a_long_title_inside_a_phone_screen(portal, rig, browser):
    engine = make_engine(portal.db_url)
    try:
        import_catalog(engine, {"projects": [
            {"id": "kodomo", "title": LONG, "title_en": LONG_EN, "area": "children", "goal_yen": 5000, "group": "団体"},
            {"id": "ongaku", "title": "音楽祭", "title_en": "Music festival", "area": "culture", "goal_yen": 3000,
             "group": "団体"}]})
    finally:
        engine.dispose()
    up = enrolled(rig, portal, pepper=rig.pepper)
    rig.donate(3)
    assert up.sync_once().ok
    page = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP").new_page()
    for path in ("/", "/a/children", "/?lang=en"):
        page.goto(portal.url + path)
        got = page.evaluate("""() => {
            const svg = document.getElementById('chart-goals');
            const width = svg.viewBox.baseVal.width;
            const g = [...svg.querySelectorAll('g.goal')].find(e => e.dataset.key === 'kodomo');
            const label = g.querySelector('text');  // the project's name: the group's first text
            const spans = label.querySelectorAll('tspan').length ? [...label.querySelectorAll('tspan')] : [label];
            const bar = g.querySelector('rect').getBBox();
            const name = label.getBBox();
            return {width, lines: spans.map(s => s.textContent),
                    widths: spans.map(s => s.getComputedTextLength()), gap: bar.y - (name.y + name.height),
                    page: document.documentElement.scrollWidth};
        }""")
        assert max(got["widths"]) <= got["width"] - 4, (path, got)  # every line inside the drawing
        assert len(got["lines"]) == 2 and got["lines"][1].endswith("…"), (path, got)
        assert got["gap"] >= 0, (path, got)  # the bar starts under the name, not over its second line
        assert got["page"] <= 390
