"""The kiosk shows "use your points" only when the applied config has a pool it can give from (kiosk/app/points.py
``PointsOffer``, which ``kiosk run`` asks; docs/points.md, "At the kiosk").

Two ways a pool is in the pushed config and yet no exchange can ever pass at this kiosk: the portal handed all of
it to other kiosks (this one's allocation is 0), or its last day has passed (a pool is pushed for 7 days after it).
The button was shown then, and every citizen who pressed it, tapped a card and chose a gift was refused. Real
portal over loopback HTTP, real kiosk ledgers and the signed config they apply.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sync_helpers import PROJECTS, enrolled, make_rig

from kiosk.app.points import PointsOffer
from kiosk.donation.exchange import pools_for
from kiosk.donation.flow import FlowSettings
from kiosk.sync.configapply import load_applied
from server_sync import catalog, pools


def button(rig, today: dt.date | None = None) -> bool:  # noqa: ANN001
    """Whether ``kiosk run`` would show the button on ``today`` (default: today in Japan), as it decides it: the
    pools of the applied config, what this kiosk's ledger gave from them, the projects and amounts on offer."""
    day = today or dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
    offer = PointsOffer(rig.cfg, load_applied(rig.cfg.data_dir))
    return offer.apply(FlowSettings.from_config(rig.cfg), rig.ledger, day).points_exchange


POOL = {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": 200,
        "yen_per_point": 10, "per_kiosk_yen": 200, "areas": [], "start": None, "end": None}


def test_no_points_button_without_a_share_of_a_pool_or_after_its_last_day(portal, tmp_path) -> None:  # noqa: ANN001
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    a, b = make_rig(tmp_path, "center-1f"), make_rig(tmp_path, "city-hall")
    try:
        up_a, up_b = enrolled(a, portal), enrolled(b, portal)
        pools.save_pool(eng, POOL)  # all ¥200 to the first kiosk, none left for the second
        assert up_a.sync_once().ok and up_b.sync_once().ok
        pa, pb = (pools_for(load_applied(r.cfg.data_dir), r.kiosk_id) for r in (a, b))
        assert [p.allocation_yen for p in pa] == [200] and [p.allocation_yen for p in pb] == [0]
        assert button(a)
        assert not button(b), "city-hall has nothing of the pool to give"

        # The sponsor's campaign ended yesterday (in Japan): still pushed for a week, no longer usable.
        yesterday = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date() - dt.timedelta(days=1)
        with eng.connect() as conn:
            seen = pools.list_pools(conn)[0]["version"]
        pools.save_pool(eng, {**POOL, "end": yesterday.isoformat()}, new=False, seen=seen)
        assert up_a.sync_once().ok
        ended = pools_for(load_applied(a.cfg.data_dir), a.kiosk_id)
        assert [(p.end, p.allocation_yen) for p in ended] == [(yesterday.isoformat(), 200)]
        assert not button(a), "the pool ended yesterday"
        # On its last day it was still offered.
        assert button(a, yesterday)
    finally:
        for r in (a, b):
            r.ledger.close(checkpoint=False)
