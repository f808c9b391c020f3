"""Review 51 of the catalog, as center staff meet it (the real portal on loopback with a real SQLite file; the
import through ``kiosk-portal catalog-import`` in this process):

The movie maker's form refuses a caption with characters the movie's font (the vendored Noto Sans JP subset) has
no letter for, but the movie's title cards also draw the group's name and the project's title, and the kiosks'
donation screens draw the titles (Japanese and English) and the group's name with the same letters. Those came from
the staff's catalog forms and the catalog import, which took any character: a group called 「髙橋の会」, a project
「①こども食堂」 or 「Café」 showed empty boxes in the lobby. The forms now refuse them beside the field, naming the
characters and how to write them (高 for 髙); the import refuses the whole file, naming every such entry.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from races import staff_portal
from sqlalchemy import select
from staff_words_check import assert_plain_japanese
from sync_helpers import staff_session

from server_sync import catalog, glyphs, portal_cli
from server_sync.db import create_schema, groups, make_engine, projects

CATALOG = {"groups": [{"id": "midori-kai", "name": "みどりの会"}],
           "projects": [{"id": "kodomo", "group_id": "midori-kai", "title": "こども食堂", "title_en": "Kids' Kitchen",
                         "area": "children", "goal_yen": 5000}]}


@pytest.fixture
def op(tmp_path: Path):
    with staff_portal(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path, CATALOG) as handle:
        yield handle


def error_of(page: str, field: str) -> str:
    m = re.search(rf'<p class="bad err" data-for="{field}">(.*?)</p>', page, re.S)
    return html.unescape(m.group(1)) if m else ""


def value_of(page: str, field: str) -> str:
    m = re.search(rf'<input id="f-{field}" name="{field}" type="text" value="([^"]*)"', page)
    return html.unescape(m.group(1)) if m else ""


def stored(op, table) -> dict[str, dict]:
    with op.app.state.engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(select(table)).mappings()}


def test_a_group_name_with_a_letter_the_kiosks_cannot_draw_is_refused_beside_it_with_the_usual_letter(op):
    s, token = staff_session(op.url, "staff1")
    r = s.post(op.url + "/staff/groups", timeout=10,
               data={"csrf": token, "editing": "", "id": "takahashi", "name": "髙橋の会🌱", "description": ""})
    assert r.status_code == 422, r.text[:300]
    said = error_of(r.text, "name")
    assert_plain_japanese([said])
    assert "髙 🌱" in said and "髙は高に" in said and "「説明」" in said, said
    assert value_of(r.text, "name") == "髙橋の会🌱", "what was typed is kept"
    assert "takahashi" not in stored(op, groups)
    # Written as signage writes it, with the exact spelling in the description: saved.
    r = s.post(op.url + "/staff/groups", timeout=10,
               data={"csrf": token, "editing": "", "id": "takahashi", "name": "高橋の会", "description": "髙橋の会"})
    assert r.status_code == 200 and r.url.endswith("/staff/groups?done=saved"), r.text[:300]
    assert stored(op, groups)["takahashi"]["name"] == "高橋の会"


def test_a_project_title_either_language_with_such_letters_is_refused_beside_each_and_nothing_is_saved(op):
    s, token = staff_session(op.url, "staff1", lang="en")
    opened = s.get(op.url + "/staff/projects/kodomo", timeout=10)
    seen = re.search(r'name="seen" value="([^"]*)"', opened.text)
    form = {"csrf": token, "editing": "kodomo", "seen": seen.group(1) if seen else "", "group_id": "midori-kai",
            "area": "children", "goal_yen": "5000", "active": "1", "summary": "髙橋さんの食堂",
            "title": "①こども食堂", "title_en": "Kids' Café"}
    r = s.post(op.url + "/staff/projects", data=form, timeout=10)
    assert r.status_code == 422, r.text[:300]
    assert "cannot show these characters: ①." in error_of(r.text, "title")
    assert "cannot show these characters: é." in error_of(r.text, "title_en")
    assert 'data-for="summary"' not in r.text, "the summary, which no kiosk draws, takes any letter"
    assert stored(op, projects)["kodomo"]["title"] == "こども食堂"
    s.get(op.url + "/staff/lang?to=ja", timeout=10)
    r = s.post(op.url + "/staff/projects", data=form, timeout=10)
    assert_plain_japanese([error_of(r.text, "title"), error_of(r.text, "title_en")])
    assert "①は1に" in error_of(r.text, "title") and "「概要」" in error_of(r.text, "title")
    r = s.post(op.url + "/staff/projects", data={**form, "title": "こども食堂 1", "title_en": "Kids' Cafe"},
               timeout=10)
    assert r.status_code == 200 and r.url.endswith("/staff/projects?done=saved"), r.text[:300]
    assert stored(op, projects)["kodomo"]["title_en"] == "Kids' Cafe"


def test_the_kiosk_screens_draw_with_the_letters_the_forms_check() -> None:
    """The donation screens' fonts (regular and bold) have exactly the letters the check reads."""
    from fontTools.ttLib import TTFont

    from kiosk.ui.widgets import FONT_DIR

    for name in ("NotoSansJP-Regular-subset.otf", "NotoSansJP-Bold-subset.otf"):
        cmap = TTFont(str(FONT_DIR / name), lazy=True).getBestCmap()
        assert frozenset(c for c, g in cmap.items() if g != ".notdef") == glyphs.font_letters(), name


BAD_FILE = {"groups": [{"id": "takahashi", "name": "髙橋の会"}, {"id": "ok-kai", "name": "よい会"}],
            "projects": [{"id": "a", "group_id": "ok-kai", "title": "まつり", "title_en": "Matsuri ©", "area": "town"},
                         {"id": "b", "group": "﨑の会", "title": "ふつう", "area": "green"},
                         {"id": "c", "group_id": "ok-kai", "title": "ok", "area": "green"}]}


def test_an_import_with_such_letters_imports_nothing_and_names_every_entry(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    create_schema(eng)
    with pytest.raises(catalog.CatalogError) as got:
        catalog.import_catalog(eng, BAD_FILE)
    said = str(got.value)
    assert got.value.code == "undrawable"
    assert "3 names or titles" in said
    assert "groups[0] (id takahashi) name '髙橋の会': 髙" in said
    assert "projects[0] (id a) title_en 'Matsuri ©': ©" in said
    assert "projects[1] (id b) group '﨑の会': 﨑" in said
    assert "(id ok-kai)" not in said and "(id c)" not in said
    with eng.connect() as conn:
        assert conn.execute(select(groups)).first() is None and conn.execute(select(projects)).first() is None


def test_the_import_command_says_so_and_a_fixed_file_imports(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'portal.db'}"
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps(BAD_FILE, ensure_ascii=False), "utf-8")
    assert portal_cli.main(["catalog-import", "--db", db, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("creating a new empty database at") == 1, err  # a new file: said first (review s54)
    err = err[err.find("kiosk-portal catalog-import: nothing"):]
    assert err.startswith("kiosk-portal catalog-import: nothing imported: 3 names or titles"), err
    assert "groups[0] (id takahashi)" in err and "高 for 髙" in err
    fixed = json.loads(bad.read_text("utf-8"))
    fixed["groups"][0]["name"] = "高橋の会"
    fixed["projects"][0]["title_en"] = "Matsuri (C)"
    fixed["projects"][1]["group"] = "崎の会"
    bad.write_text(json.dumps(fixed, ensure_ascii=False), "utf-8")
    assert portal_cli.main(["catalog-import", "--db", db, str(bad)]) == 0, capsys.readouterr().err
    assert "imported 2 groups and 3 projects" in capsys.readouterr().out
