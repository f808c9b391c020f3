"""Exactly once through a hostile network: after the fault proxy, the portal equals the ledger."""

from __future__ import annotations

import requests
from fault_proxy import FAULTS, FaultProxy
from sync_helpers import enrolled, portal_entry_count


def test_exactly_once_through_dropped_delayed_failed_duplicated_and_cut_requests(portal, rig, db_url):
    up = enrolled(rig, portal, batch_entries=6)  # enroll directly; then everything goes through the proxy
    with FaultProxy(portal.url, rate=0.55, seed=7) as proxy:
        up.state.portal_url = proxy.url
        for round_ in range(4):
            d = rig.donate(9)
            if round_ == 2:
                rig.ledger.void(d[0].seq, "correction")
            st = up.sync_once(max_attempts=60)
            assert st.ok, (st.last_error, proxy.counts)
    # Every kind of fault actually happened.
    assert all(proxy.counts[f] > 0 for f in FAULTS), proxy.counts
    got = requests.get(portal.url + "/api/v1/totals", timeout=10).json()
    assert got == rig.expected_totals()
    rows, distinct = portal_entry_count(db_url, rig.kiosk_id)
    assert rows == distinct == rig.ledger.size  # no duplicates, nothing missing
