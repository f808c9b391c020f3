"""Exactly once through a hostile network: after the fault proxy, the portal equals the ledger."""

from __future__ import annotations

import time

import pytest
import requests
from fault_proxy import FAULTS, FaultProxy
from sync_helpers import enrolled, portal_entry_count

from kiosk.sync.uploader import SyncError


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


def test_a_connection_idle_past_the_reuse_limit_is_not_reused(portal, rig):
    """A kept-alive connection the server may be closing is never sent on: the next request opens a new one.

    The proxy closes, unanswered, any request that arrives on a connection idle longer than 0.3 s (a server
    whose keep-alive timer fires as the request arrives). With a reuse limit under that, heartbeats 0.5 s
    apart all succeed; the control, a limit above it, meets the dropped request."""
    up = enrolled(rig, portal)
    with FaultProxy(portal.url, rate=0.0, keepalive_s=0.3) as proxy:
        up.state.portal_url = proxy.url
        up.reuse_idle_s = 0.1
        for _ in range(3):
            assert up.heartbeat()["kiosk_id"] == rig.kiosk_id
            time.sleep(0.5)
        up.reuse_idle_s = 0.05
        up.heartbeat()
        up.heartbeat()  # at once: the same connection is still used while fresh
        assert proxy.counts["stale_keepalive"] == 0, proxy.counts
        up.reuse_idle_s = 10.0
        time.sleep(0.5)
        with pytest.raises(SyncError, match="network"):
            up.heartbeat()
        assert proxy.counts["stale_keepalive"] == 1, proxy.counts
    up.close()
