"""The public totals are kept as they change (server_sync/totals.py), on SQLite and PostgreSQL: they equal the
kiosk's own totals through voids in the same batch and in a later one, `kiosk-portal totals --check` finds a
kept row that differs from the entries and `--recount` puts it right, and a portal that did not keep them
counts every kiosk once at its first start. (Every test with a portal also checks, at its end, that the
kept totals are the count of the entries: tests/sync/conftest.py.)"""

from __future__ import annotations

import requests
from sqlalchemy import delete, update
from sync_helpers import PROJECTS, enrolled

from server_sync import totals
from server_sync.configstore import publish
from server_sync.db import create_schema, make_engine, project_totals, settings, writing
from server_sync.portal_cli import main as portal_main


def _public(portal) -> dict:  # noqa: ANN001
    return requests.get(portal.url + "/api/v1/totals", timeout=10).json()


def test_voids_in_the_same_batch_and_a_later_one_take_their_donation_back(portal, rig):  # noqa: ANN001
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(6)
    rig.ledger.void(gifts[4].seq, "the card was charged twice")  # voided in the batch that carries it
    rig.ledger.checkpoint()
    up = enrolled(rig, portal)
    assert up.sync_once().ok
    assert _public(portal) == rig.expected_totals()
    assert _public(portal)["count"] == 5
    rig.ledger.void(gifts[0].seq, "refunded at the desk")  # a donation an earlier batch carried
    more = rig.donate(2)
    rig.ledger.void(more[1].seq, "wrong amount")
    rig.ledger.checkpoint()
    assert up.sync_once().ok
    assert _public(portal) == rig.expected_totals()
    assert _public(portal)["count"] == 5
    assert totals.check(portal.app.state.engine) == []


def test_the_check_names_a_kept_row_the_entries_do_not_give(portal, rig, capsys):  # noqa: ANN001
    publish(portal.app.state.engine, {"projects": PROJECTS})
    rig.donate(3)
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    assert portal_main(["totals", "--db", portal.db_url, "--check"]) == 0
    assert "equal a count of the entries" in capsys.readouterr().err
    eng = portal.app.state.engine
    with writing(eng) as conn:
        conn.execute(update(project_totals).where(project_totals.c.kiosk_id == rig.kiosk_id)
                     .values(total_yen=project_totals.c.total_yen + 100))
    assert portal_main(["totals", "--db", portal.db_url, "--check"]) == 1
    out = capsys.readouterr()
    assert rig.kiosk_id in out.out and "1 differences" in out.err
    assert portal_main(["totals", "--db", portal.db_url, "--recount"]) == 0  # the entries are the truth
    assert portal_main(["totals", "--db", portal.db_url, "--check"]) == 0
    assert _public(portal) == rig.expected_totals()


def test_a_portal_that_did_not_keep_totals_counts_every_kiosk_at_its_first_start(portal, rig):  # noqa: ANN001
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(5)
    rig.ledger.void(gifts[2].seq, "refund")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    want = rig.expected_totals()
    eng = make_engine(portal.db_url)
    try:
        with writing(eng) as conn:  # what an older portal's database holds: entries, no kept totals
            conn.execute(delete(project_totals))
            conn.execute(delete(settings).where(settings.c.name == "project_totals_v1"))
        assert totals.check(eng) != []
        create_schema(eng)  # every portal start runs it
        assert totals.check(eng) == []
        with writing(eng) as conn:  # counted once: a later start leaves the kept rows alone
            conn.execute(update(project_totals).values(count=project_totals.c.count + 1))
        create_schema(eng)
        assert totals.check(eng) != []
        with writing(eng) as conn:
            conn.execute(update(project_totals).values(count=project_totals.c.count - 1))
    finally:
        eng.dispose()
    assert _public(portal) == want
