"""Charts (server_sync/charts.py) and the public pages (server_sync/public.py) on a real portal (SQLite and
PostgreSQL): every number a chart draws equals the queries', the charts can be read without colour, a donation
moves the staff dashboard's chart (in Chromium), and the top, area and project pages show what they promise,
the project's movie playing in the browser.
"""

from __future__ import annotations

import re
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from zoneinfo import ZoneInfo

import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, fake_idm, needs_chromium, staff_page

from server_sync import charts, queries
from server_sync.catalog import AREAS
from server_sync.configstore import publish, store_media
from server_sync.db import media_info, writing
from server_sync.staff import add_user

SVG = "{http://www.w3.org/2000/svg}"
TOKYO = ZoneInfo("Asia/Tokyo")


def svgs(html: str) -> dict[str, ET.Element]:
    """Every chart on a page, parsed as XML, by its id."""
    out = {}
    for m in re.finditer(r'<svg class="chart[^"]*" id="([^"]+)".*?</svg>', html, re.S):
        out[m.group(1)] = ET.fromstring(m.group(0))
    return out


def bars(svg: ET.Element) -> dict[str, dict[str, int]]:
    """bucket -> series -> yen, as drawn."""
    out: dict[str, dict[str, int]] = {}
    for g in svg.iter(SVG + "g"):
        if g.get("class") == "bar":
            out[g.get("data-bucket")] = {r.get("data-series"): int(r.get("data-yen")) for r in g.iter(SVG + "rect")}
            assert sum(out[g.get("data-bucket")].values()) == int(g.get("data-yen"))
    return out


def expected(series: dict, step: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i, start in enumerate(series["starts"]):
        m, d = int(start[5:7]), int(start[8:10])
        label = f"{m}/{d}" if step == "day" else f"{m}/{d}〜"
        out[label] = {s["key"]: s["yen"][i] for s in series["series"] if s["yen"][i]}
    return out


def goals(svg: ET.Element) -> dict[str, tuple[int, int | None]]:
    return {g.get("data-key"): (int(g.get("data-total-yen")), int(g.get("data-goal-yen") or 0) or None)
            for g in svg.iter(SVG + "g") if g.get("class") == "goal"}


def donate(rig, project: str, amount: int, card: int = 1):  # noqa: ANN001, ANN201
    intent = rig.ledger.record_intent(project, amount, "sim", rig.pepper.token(fake_idm(card)), uuid.uuid4().hex)
    rig.clock.advance(700)
    return rig.ledger.record_donation(intent.seq, f"sim-{intent.seq}", amount // 100)


def spread(rig, portal):  # noqa: ANN001, ANN201
    """Donations over three weeks (the kiosk's clock moved back), so days and weeks both have several bars."""
    publish(portal.app.state.engine, {"projects": PROJECTS})
    out = []
    for back_days, project, yen in [(20, "kodomo", 1000), (9, "midori", 500), (9, "kodomo", 300), (2, "ongaku", 700),
                                    (0, "kodomo", 100), (0, "midori", 1000)]:
        rig.clock.wall -= back_days * 86_400_000
        out.append(donate(rig, project, yen))
        rig.clock.wall += back_days * 86_400_000
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    return out


def test_every_number_a_chart_draws_is_the_queries(portal, rig):
    engine = portal.app.state.engine
    spread(rig, portal)
    html = requests.get(portal.url + "/", timeout=10).text
    now = int(time.time() * 1000)
    got = svgs(html)
    assert set(got) == {"chart-daily", "chart-weekly", "chart-goals"}
    daily = queries.donation_series(engine, now, step="day", buckets=14)
    weekly = queries.donation_series(engine, now, step="week", buckets=12)
    assert bars(got["chart-daily"]) == expected(daily, "day")
    assert bars(got["chart-weekly"]) == expected(weekly, "week")
    # The 20-day-old gift is outside the 14 days but inside the 12 weeks, which hold every donation.
    assert int(got["chart-weekly"].get("data-total-yen")) == queries.totals(engine)["total_yen"] == 3600
    assert int(got["chart-daily"].get("data-total-yen")) == 3600 - 1000 == daily["total_yen"]
    assert [s["key"] for s in daily["series"]] == list(AREAS)  # all five areas, always in one order
    assert goals(got["chart-goals"]) == {p["id"]: (p["total_yen"], p["goal_yen"]) for p in queries.projects(engine)}

    # Readable without colour: a pattern per series, a name and total in the legend, a value over each bar,
    # a <title> on every shape, an accessible name and summary.
    d = got["chart-daily"]
    assert d.get("role") == "img" and d.get("aria-labelledby") == "chart-daily-t chart-daily-d"
    assert d.find(SVG + "title").text == "政策分野別・日ごとの寄付（最近 14 日）"
    assert d.find(SVG + "desc").text.startswith("合計 ¥2,600、5 件。")
    patterns = [p for p in d.iter(SVG + "pattern")]
    assert len({ET.tostring(p[1]) if len(p) > 1 else b"" for p in patterns}) == len(patterns) == 5
    rects = [r for r in d.iter(SVG + "rect") if r.get("data-series")]
    assert rects and all(r.find(SVG + "title") is not None for r in rects)
    key = html[html.index('<figure class="chart" data-chart="chart-daily">'):]
    key = key[key.index('<ul class="legend">'):key.index("</ul>")]
    legend = dict(re.findall(r'<li data-series="(\w+)".*?<span>(.*?)</span>', key))
    assert legend["children"] == "子ども・未来 ¥400" and legend["green"] == "みどり・環境 ¥1,500"
    values = [t.text for t in d.iter(SVG + "text") if t.get("class") == "value"]
    assert "1,100" in values  # today's bar: ¥100 + ¥1,000, written over it
    goal_text = [t.text for g in got["chart-goals"].iter(SVG + "g") if g.get("data-key") == "kodomo"
                 for t in g.iter(SVG + "text")]
    assert "¥1,400 / 目標 ¥5,000（28%）" in goal_text

    # An area's page: its projects' series; a project's page: that project only.
    area = svgs(requests.get(portal.url + "/a/children", timeout=10).text)
    kodomo = queries.donation_series(engine, now, step="week", buckets=12, by="project", project_ids=["kodomo"])
    assert bars(area["chart-weekly"]) == expected(kodomo, "week")
    assert goals(area["chart-goals"]) == {"kodomo": (1400, 5000)}
    page = svgs(requests.get(portal.url + "/p/midori?lang=en", timeout=10).text)
    assert int(page["chart-weekly"].get("data-total-yen")) == 1500
    assert page["chart-weekly"].find(SVG + "title").text == "Donations per week, last 12 weeks"


def test_the_series_buckets_at_midnight_in_japan():
    """Pure: a bar's day is the Japanese day (UTC+9, no daylight saving), weeks start on Monday."""
    assert charts.compact_yen(12_300, "ja") == "1.2万" and charts.compact_yen(12_300, "en") == "¥12.3k"
    assert charts._ticks(2600) == [0, 1000, 2000, 3000, 4000]


def test_days_and_weeks_end_at_japanese_midnight(portal, rig):
    engine = portal.app.state.engine
    publish(engine, {"projects": PROJECTS})
    # 23:59:59 and 00:00:01 Japan time on either side of a Monday's midnight (2026-11-30 is a Monday).
    before = int(datetime(2026, 11, 29, 23, 59, 59, tzinfo=TOKYO).timestamp() * 1000)
    after = int(datetime(2026, 11, 30, 0, 0, 1, tzinfo=TOKYO).timestamp() * 1000)
    for t, yen in ((before, 100), (after, 500)):
        rig.clock.wall = t
        donate(rig, "kodomo", yen)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    now = int(datetime(2026, 12, 3, 12, tzinfo=TOKYO).timestamp() * 1000)
    day = queries.donation_series(engine, now, step="day", buckets=7, by="project")
    [k] = day["series"]
    assert dict(zip(day["starts"], k["yen"], strict=True))["2026-11-29"] == 100
    assert dict(zip(day["starts"], k["yen"], strict=True))["2026-11-30"] == 500
    week = queries.donation_series(engine, now, step="week", buckets=2, by="project")
    assert week["starts"] == ["2026-11-23", "2026-11-30"] and week["series"][0]["yen"] == [100, 500]


# --- in Chromium ------------------------------------------------------------------------------------------------


def until(page, js: str, timeout_s: float = 20.0) -> None:  # noqa: ANN001
    """Poll from Python: the portal's Content-Security-Policy forbids the eval that wait_for_function uses."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(js):
        assert time.monotonic() < deadline, f"timed out waiting for {js}"
        time.sleep(0.1)


def _bar(page, chart: str, bucket: str) -> int:  # noqa: ANN001
    loc = page.locator(f"#{chart} g.bar[data-bucket='{bucket}']")
    return int(loc.get_attribute("data-yen")) if loc.count() else 0


@needs_chromium
def test_a_donation_moves_the_dashboard_chart(portal, rig, browser):
    engine = portal.app.state.engine
    add_user(engine, "clerk", PASSWORD)
    spread(rig, portal)
    up = enrolled(rig, portal)
    page = staff_page(browser, portal.url, "clerk")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the charts fit a phone
    gift = donate(rig, "ongaku", 1000)
    when = datetime.fromtimestamp(gift.obj["wall_ms"] / 1000, TOKYO)
    bucket = f"{when.month}/{when.day}"
    before = (_bar(page, "chart-daily", bucket), int(page.locator("#chart-daily").get_attribute("data-total-yen")),
              int(page.locator("#chart-goals g.goal[data-key=ongaku]").get_attribute("data-total-yen")))
    label = page.locator("#chart-goals g.goal[data-key=ongaku] text").nth(1).inner_html()
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    page.reload()
    after = (_bar(page, "chart-daily", bucket), int(page.locator("#chart-daily").get_attribute("data-total-yen")),
             int(page.locator("#chart-goals g.goal[data-key=ongaku]").get_attribute("data-total-yen")))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1000, 1000, 1000]
    assert page.locator("#chart-goals g.goal[data-key=ongaku] text").nth(1).inner_html() != label
    assert "¥1,700 / 目標 ¥3,000（56%）" in page.locator("#chart-goals").inner_html()
    # The table under the chart says the same, for anyone who reads numbers rather than bars.
    page.locator("figure[data-chart=chart-daily] summary").click()
    assert "¥1,000" in page.locator("figure[data-chart=chart-daily] table").inner_text()
    page.close()


@needs_chromium
def test_top_area_and_project_pages_with_the_movie_playing(portal, rig, browser, tmp_path):
    from movies import solid_movie

    engine = portal.app.state.engine
    gifts = spread(rig, portal)
    movie = solid_movie(tmp_path / "kodomo.mp4", (230, 20, 200), size=(320, 180), seconds=2.0, codec="libx264")
    older = solid_movie(tmp_path / "ongaku.mp4", (20, 120, 230), size=(320, 180), seconds=1.0, codec="libx264")
    import io

    from PIL import Image

    frame = io.BytesIO()
    Image.new("RGB", (320, 180), (230, 20, 200)).save(frame, "JPEG")
    with writing(engine) as conn:
        sha = store_media(conn, movie.read_bytes(), "video/mp4")
        poster = store_media(conn, frame.getvalue(), "image/jpeg")
        conn.execute(media_info.insert().values(sha256=sha, name="こども食堂の一日", group_id=None, project_id="kodomo",
                                                poster_sha256=poster, created_ms=int(time.time() * 1000)))
        # An older video of another project, stored before poster frames: the page shows its own first frame.
        old = store_media(conn, older.read_bytes(), "video/mp4")
        conn.execute(media_info.insert().values(sha256=old, name="音楽祭", group_id=None, project_id="ongaku",
                                                created_ms=int(time.time() * 1000)))
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page.goto(portal.url + "/")
    assert page.locator("#total").inner_text() == "¥3,600"
    assert page.locator("#areas li").count() == 5
    assert page.locator("#areas li[data-area=children]").inner_text().startswith("子ども・未来 ¥1,400")
    item = page.locator("#projects li[data-project=kodomo]")
    assert item.locator("img.poster").get_attribute("src") == f"/api/v1/media/{poster}"  # its movie's poster frame
    until(page, "document.querySelector('li[data-project=kodomo] img.poster').naturalWidth === 320")
    assert page.locator("#projects li[data-project=ongaku] video.poster").count() == 1
    assert page.locator("#projects li[data-project=midori] .poster").count() == 0  # no movie, no frame
    assert "28%" in item.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Recent donations: a day and an amount, never a time, a kiosk or a token.
    recent = page.locator("#recent").inner_text()
    assert rig.kiosk_id not in recent and not re.search(r"\d\d:\d\d", recent)
    day = datetime.fromtimestamp(gifts[-1].obj["wall_ms"] / 1000, TOKYO).date()
    assert f"{day.year}年{day.month}月{day.day}日" in recent  # the day in Japanese (docs/portal.md, dates)
    assert gifts[-1].data["donor"] not in page.content()

    page.locator("#areas li[data-area=children] a").click()
    page.wait_for_url("**/a/children?lang=ja")
    assert page.locator("h2").first.inner_text() == "子ども・未来"
    assert page.locator("#projects li").count() == 1 and page.locator("#total").inner_text() == "¥1,400"
    page.locator("#projects li[data-project=kodomo] div a").first.click()
    page.wait_for_url("**/p/kodomo?lang=ja")
    assert page.locator("h2").first.inner_text() == "こども食堂"
    assert page.locator("#goal").inner_text() == "目標 ¥5,000 · 目標の 28%"
    assert page.locator("#recent li").count() == 3 and "こども食堂" not in page.locator("#recent").inner_text()
    # The movie plays in the browser: it decodes, and time moves.
    until(page, "document.getElementById('movie').readyState >= 2")
    page.evaluate("document.getElementById('movie').muted = true; document.getElementById('movie').play()")
    until(page, "document.getElementById('movie').currentTime > 0.3")
    assert page.evaluate("document.getElementById('movie').videoWidth") == 320
    assert page.locator("#movie").get_attribute("poster") == f"/api/v1/media/{poster}"
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h2").first.inner_text() == "Kids cafeteria" and "28% of the goal" in page.content()
    missing = requests.get(portal.url + "/a/space", timeout=10)
    assert missing.status_code == 404
    page.close()


def test_movies_are_served_in_byte_ranges_for_seeking(portal):
    """Browsers seek a movie by asking for ranges, and Safari on a phone plays only from a server that answers."""
    from server_sync.public import byte_range

    assert byte_range("bytes=0-99", 1000) == (0, 99)
    assert byte_range("bytes=900-", 1000) == (900, 999)
    assert byte_range("bytes=-100", 1000) == (900, 999)
    assert byte_range("bytes=990-2000", 1000) == (990, 999)
    for bad in ("bytes=1000-", "bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=-0", "bytes=a-b", "bytes"):
        assert byte_range(bad, 1000) is None, bad
    data = bytes(range(256)) * 40
    with writing(portal.app.state.engine) as conn:
        sha = store_media(conn, data, "video/mp4")
    url = f"{portal.url}/api/v1/media/{sha}"
    whole = requests.get(url, timeout=10)
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    part = requests.get(url, headers={"Range": "bytes=100-355"}, timeout=10)
    assert part.status_code == 206 and part.content == data[100:356]
    assert part.headers["content-range"] == f"bytes 100-355/{len(data)}"
    tail = requests.get(url, headers={"Range": "bytes=-10"}, timeout=10)
    assert tail.status_code == 206 and tail.content == data[-10:]
    over = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, timeout=10)
    assert over.status_code == 416 and over.headers["content-range"] == f"bytes */{len(data)}"


def test_a_group_editor_sees_the_charts_of_their_groups_projects_only(portal, rig):
    from server_sync.catalog import import_catalog

    engine = portal.app.state.engine
    import_catalog(engine, {"groups": [{"id": "kodomo-club", "name": "子ども応援団"},
                                       {"id": "mori", "name": "森の会"}],
                            "projects": [{**PROJECTS[0], "group_id": "kodomo-club"},
                                         {**PROJECTS[1], "group_id": "mori"}, {**PROJECTS[2], "group_id": "mori"}]})
    for project, yen in (("kodomo", 300), ("midori", 500), ("ongaku", 700)):
        donate(rig, project, yen)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    add_user(engine, "ed", PASSWORD, role="editor", group_id="kodomo-club")
    s = requests.Session()
    s.post(portal.url + "/staff/login", data={"username": "ed", "password": PASSWORD}, timeout=10)
    html = s.get(portal.url + "/staff", timeout=10).text
    got = svgs(html)
    assert int(got["chart-daily"].get("data-total-yen")) == 300  # their project only, not the city's ¥1,500
    assert set(goals(got["chart-goals"])) == {"kodomo"}
    assert {r.get("data-series") for r in got["chart-weekly"].iter(SVG + "rect") if r.get("data-series")} == {"kodomo"}
    # Reconciliation is the center's job, not a group's.
    assert s.get(portal.url + "/staff/reconciliation", timeout=10).status_code == 403
    assert s.get(portal.url + "/staff/reconciliation.csv", timeout=10).status_code == 403


def test_titles_are_text_in_charts_and_on_the_new_pages(portal, rig):
    """Titles come from the catalog and project ids from kiosks: data, escaped in SVG as in HTML."""
    engine = portal.app.state.engine
    evil = "<script>alert('x')</script>"
    publish(engine, {"projects": [{**PROJECTS[0], "title": evil, "title_en": evil}] + PROJECTS[1:]})
    donate(rig, "kodomo", 500)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    add_user(engine, "clerk", PASSWORD)
    s = requests.Session()
    s.post(portal.url + "/staff/login", data={"username": "clerk", "password": PASSWORD}, timeout=10)
    day = rig.ledger.business_date()
    for url in ("/", "/?lang=en", "/a/children", "/p/kodomo", "/staff", f"/staff/reconciliation/{rig.kiosk_id}/{day}"):
        r = s.get(portal.url + url, timeout=10)
        assert r.status_code == 200, url
        assert "<script>alert" not in r.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in r.text, url
        for svg in svgs(r.text).values():  # each chart still parses as XML, the title in it as text only
            assert not [e for e in svg.iter() if e.tag.endswith("script")], url


def test_the_percent_of_a_goal_is_counted_in_whole_yen_everywhere(portal, rig):
    """¥1,450 of a ¥5,000 goal is 29 %: as a float, 0.29 * 100 is 28.999999999999996, which the pages and the goal
    chart floored to 28 while the bar said 29. One integer figure (charts.percent_of) is printed everywhere."""
    assert [charts.percent_of(t, 50_000) for t in (14_500, 28_500, 29_000, 49_999, 50_000, 90_000)] == [
        29, 57, 58, 99, 100, 100]
    assert charts.percent_of(0, 5_000) == 0 and charts.percent_of(100, None) is None
    from server_sync import catalog

    catalog.import_catalog(portal.app.state.engine, {"projects": PROJECTS})
    for yen in (1000, 300, 100, 50):  # ¥1,450 to kodomo, whose goal is ¥5,000
        donate(rig, "kodomo", yen)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    [p] = [p for p in queries.projects(portal.app.state.engine) if p["id"] == "kodomo"]
    assert (p["total_yen"], p["goal_yen"], p["percent"]) == (1450, 5000, 29)
    project = requests.get(portal.url + "/p/kodomo", timeout=10).text
    assert re.search(r'id="goal">[^<]*目標の 29%', project) and 'aria-valuenow="29"' in project
    home = requests.get(portal.url + "/", timeout=10).text
    item = re.search(r'data-project="kodomo".*?</li>', home, re.S).group(0)  # type: ignore[union-attr]
    assert "(29%)" in item and 'aria-valuenow="29"' in item
    assert re.search(r'<g class="goal" data-key="kodomo"[^>]*data-percent="29%"', home)
