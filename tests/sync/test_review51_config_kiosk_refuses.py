"""A pushed config the portal's checks pass but this kiosk cannot run is refused before anything is written
(docs/sync.md, "Config push").

A document from an older portal carries no ``max_per_transaction_yen``: the kiosk keeps its own (¥1,000 by
default), and a preset above it makes the kiosk's own config invalid. The applier wrote ``portal-config.json``,
recorded the version in the ledger (so the portal judged every later gift by presets the kiosk never showed) and
only then built the kiosk's config, which raised: the round ended there, every round after it too, and not one
more gift reached the portal. Now the kiosk checks that it can run the document first: refused as ``invalid``
(said to the portal's kiosks page), the old config kept, nothing recorded, and the gifts uploaded.

A real portal over loopback HTTP, behind a tiny forwarding server that answers the config request with the older
portal's document; the kiosk's real ledger, uploader and config overlay.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from sync_helpers import PROJECTS, enrolled, make_rig, portal_entry_count

from kiosk.sync.adopt import overlay
from kiosk.sync.configapply import APPLIED
from kiosk.sync.uploader import CONFIG_REFUSED
from server_sync import catalog, configstore
from server_sync.wire import configdoc
from tests.loopback import Handler, LoopbackServer


def _forwarding(upstream: str, config_answer: dict[str, Any]) -> type[Handler]:
    """Every request forwarded to ``upstream``, but the config request answered with ``config_answer``."""

    class Forward(Handler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command == "GET" and self.path.endswith("/config"):
                self.answer(200, json.dumps(config_answer).encode())
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            req = urllib.request.Request(upstream + self.path, data=body or None, headers=headers,
                                         method=self.command)
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    self.answer(resp.status, resp.read(), resp.headers.get("Content-Type", ""))
            except urllib.error.HTTPError as exc:
                self.answer(exc.code, exc.read(), exc.headers.get("Content-Type", ""))

        do_GET = do_POST = _forward  # noqa: N815

    return Forward


def test_a_config_the_kiosk_cannot_run_is_refused_and_the_gifts_still_go(portal, db_url: str,  # noqa: ANN001
                                                                         tmp_path: Path) -> None:
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    version = configstore.publish(eng, {"presets_yen": [100, 500, 1000], "default_yen": 100})["version"]
    # The older portal's document of that version: no max_per_transaction_yen, a ¥3,000 button.
    older = configdoc.normalised(configdoc.validate({"projects": PROJECTS, "presets_yen": [100, 500, 3000],
                                                     "default_yen": 100}))
    answer = {"version": version, "digest": configdoc.digest(older), "config": older}
    rig = make_rig(tmp_path, "old-portal-doc")
    told: list[dict[str, Any]] = []

    def on_config(record: dict[str, Any]) -> None:  # as `kiosk run` adopts one (kiosk/app/staffside.py)
        told.append(record)
        overlay(rig.cfg, record["config"])

    up = enrolled(rig, portal, on_config=on_config)
    try:
        rig.donate(3)
        held = rig.ledger.size
        with LoopbackServer(_forwarding(portal.url, answer)) as front:
            up.state.portal_url = front.url
            st = up.sync_once(max_attempts=1)
            # The gifts reached the portal; the round is clean of upload errors.
            assert portal_entry_count(db_url, rig.kiosk_id) == (held, held)
            assert st.last_error is None and st.pending == 0, st
            # The config was refused whole: nothing written, nothing recorded, the kiosk not told.
            assert st.config_applied == 0
            assert st.extra[CONFIG_REFUSED]["reason"] == "invalid", st.extra
            assert "max_per_transaction_yen" in st.extra["config_error"], st.extra
            assert not (rig.cfg.data_dir / APPLIED).exists()
            assert rig.ledger.last_of_type("config_change") is None
            assert told == []
            # And the next round, with a new gift, is the same: refused again, uploaded again.
            rig.donate(1)
            st = up.sync_once(max_attempts=1)
            assert portal_entry_count(db_url, rig.kiosk_id) == (held + 2, held + 2)
            assert st.last_error is None and st.config_applied == 0 and told == []
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)


def test_a_failing_adoption_never_stops_the_uploads(portal, db_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    """Whatever goes wrong while the running kiosk takes up a config it recorded (here its on_config raises, as
    adopting a document written by a release without the check above did every round), the config is reported
    refused and the gifts still go, round after round."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    configstore.publish(eng, {"presets_yen": [100, 500, 1000], "default_yen": 100})
    rig = make_rig(tmp_path, "adopt-fails")
    calls: list[int] = []

    def on_config(record: dict[str, Any]) -> None:
        calls.append(record["version"])
        raise ValueError("the screens could not take it")

    up = enrolled(rig, portal, on_config=on_config, check_config=None)
    try:
        for n in (1, 2):
            rig.donate(2)
            st = up.sync_once(max_attempts=1)
            assert portal_entry_count(db_url, rig.kiosk_id) == (rig.ledger.size, rig.ledger.size)
            assert st.last_error is None and st.pending == 0, st
            assert st.extra[CONFIG_REFUSED]["reason"] == "other", st.extra
            assert "the screens could not take it" in st.extra["config_error"]
            assert len(calls) == n  # told again each round (it was not taken up), never recorded twice
        assert [e.data["version"] for e in rig.ledger.entries_of("config_change")] == calls[:1]
    finally:
        up.close()
        rig.ledger.close(checkpoint=False)
