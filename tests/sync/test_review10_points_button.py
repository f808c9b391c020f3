"""The kiosk's "use your points" button is decided again while it runs (kiosk/app/points.py ``PointsOffer``;
docs/points.md, "At the kiosk"): when this kiosk has given its whole share of a pool, and when a pool's last day
passes. Before, it was decided at start-up and at pushes only: the button stayed on, and every exchange a citizen
tried was refused. A real headless App on a real ledger and the applied config, as ``kiosk run`` starts it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.app.runtime import App
from kiosk.ledger.clock import FixedClock
from tests.app.drive import run_until
from tests.app.test_app_pushed_config_restart import _apply, _back_to_the_loop, _kiosk, _points_body

TOKYO = ZoneInfo("Asia/Tokyo")


def _started(tmp_path: Path, pool: dict) -> App:  # noqa: ANN001
    doc, cfg, clips, cache = _kiosk(tmp_path)
    _apply(cfg, cache, _points_body(doc, clips[0], [{**pool, "allocations": {cfg.kiosk.id: 500}}]), 4)
    app = App(cfg, sound=False)
    app.start(movie=False)
    return app


def test_the_button_goes_when_this_kiosk_has_given_its_whole_share(tmp_path: Path) -> None:
    app = _started(tmp_path, {"id": "city", "sponsor": "市", "yen_per_point": 10})
    try:
        assert run_until(app, lambda p: p.screen.screen == "attract").screen.points_exchange
        project = app.cfg.projects[0].id
        # A citizen's exchange gives the kiosk's whole ¥500 (on the ledger's writer, as the exchange records it).
        assert app.worker is not None and app.pepper is not None
        card = app.pepper.token(bytes(range(8)))
        app.worker.call(lambda svc: svc.ledger.spend_points(card, 50, project, 500, "city")).result(10)
        p = _back_to_the_loop(app, 100)
        assert not p.screen.points_exchange, "the loop offers points though nothing of the pool is left here"
    finally:
        app.close()


def test_the_button_goes_when_the_pools_last_day_passes_while_the_kiosk_runs(tmp_path: Path) -> None:
    today = dt.datetime.now(TOKYO).date()
    app = _started(tmp_path, {"id": "city", "sponsor": "市", "yen_per_point": 10, "end": today.isoformat()})
    try:
        assert run_until(app, lambda p: p.screen.screen == "attract").screen.points_exchange
        # Midnight in Tokyo passes while the loop is on screen (the ledger's clock: the kiosk's business day).
        after = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0, 5), tzinfo=TOKYO)
        assert app.worker is not None
        midnight = FixedClock(wall_ms=int(after.timestamp() * 1000))
        app.worker.call(lambda svc: setattr(svc.ledger, "clock", midnight)).result(10)
        p = run_until(app, lambda p: p.screen.screen == "attract" and not p.screen.points_exchange, seconds=3)
        assert not p.screen.points_exchange
    finally:
        app.close()
