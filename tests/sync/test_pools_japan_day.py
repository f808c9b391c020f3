"""A sponsor pool's first and last days are Japan's days on the portal too, whatever the server's time zone.

The kiosks judge a pool's ``start`` and ``end`` by their own day in Japan; the portal judged them by the server's
date. On a city's server set to UTC that left a pool starting today unhanded to any kiosk until 09:00 in Japan
(and in a zone west of UTC, most of the day). The test runs the portal's top-up with the process in two zones:
UTC+14 and UTC−12 are never both on Japan's date, so at any moment one of them shows the server's date apart
from Japan's.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sync_helpers import PROJECTS, enrolled, make_rig

from server_sync import catalog, pools

FAR_EAST, FAR_WEST = "Pacific/Kiritimati", "Etc/GMT+12"  # UTC+14 and UTC−12 (POSIX names the sign the other way)


def test_a_pool_of_today_in_japan_is_handed_to_the_kiosks_whatever_the_servers_zone(portal, tmp_path,
                                                                                      server_zone) -> None:
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    rig = make_rig(tmp_path, "center-1f")
    up = enrolled(rig, portal)
    try:
        for n, zone in enumerate((FAR_EAST, FAR_WEST)):
            server_zone(zone)
            today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()
            pid = f"today-{n}"
            # Saving a pool hands it out at once (pools.top_up, on the server's "today").
            pools.save_pool(eng, {"id": pid, "sponsor": "みどり銀行", "sponsor_en": "Midori Bank", "funded_yen": 1000,
                                  "yen_per_point": 10, "per_kiosk_yen": 500, "areas": ["children"], "start": today,
                                  "end": today})
            with eng.connect() as conn:
                got = {p["id"]: p for p in pools.list_pools(conn)}[pid]
                pushed = {p["id"] for p in pools.pushed_pools(conn)}
            assert got["allocations"] == {"center-1f": 500}, (zone, today, got["allocations"])
            assert pid in pushed
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)
