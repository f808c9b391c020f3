"""The points lookup asks the portal off the ledger writer's thread (docs/points.md, docs/architecture.md).

A real service worker (the ledger's one writer) with the kiosk's real points desk (kiosk/app/points.py), asking a
real loopback HTTP server at the portal's seam that holds its answer on a threading.Event. While it holds it,
the citizen cancels the points screen and gives with a card: the cancel is taken, the donation commits and is
thanked, all before the portal answers. When it does answer, the stale answer changes nothing; a later lookup's
answer reaches the screen, and a spend is still checked on the writer against the portal's kept word.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from kiosk.app.points import points_desk
from kiosk.app.runtime import ServiceWorker
from kiosk.donation import flow
from kiosk.donation.flow import replace
from kiosk.donation.service import DonationService
from kiosk.ledger.pepper import Pepper
from kiosk.ledger.store import iter_entries, read_only_engine
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.payment import open_terminal
from kiosk.reader.events import CardPresented, TapRecord
from kiosk.sync import pointsync
from tests.app.test_app_e2e import _cfg
from tests.conftest import fake_idm
from tests.loopback import Handler, LoopbackServer


class SlowPortal:
    """``POST /api/v1/kiosks/<id>/points/allot``: answers ``allotted`` once ``release`` is set."""

    def __init__(self, allotted: int):
        self.asked = threading.Event()
        self.release = threading.Event()
        self.answered = threading.Event()
        """Set once an answer was sent (or the kiosk had hung up)."""
        self.paths: list[str] = []
        self.bodies: list[bytes] = []
        portal = self

        class Allot(Handler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                portal.bodies.append(bytes(self.headers) + self.rfile.read(int(self.headers.get("Content-Length", 0))))
                portal.paths.append(self.path)
                portal.asked.set()
                portal.release.wait(60)
                body = json.dumps({"allotted": allotted, "balance": allotted}).encode()
                try:
                    self.answer(200, body)
                except OSError:
                    pass  # the kiosk stopped waiting (its HTTP timeout): it used the last word
                finally:
                    portal.answered.set()

        self.http = LoopbackServer(Allot)
        self.url = self.http.url

    def close(self) -> None:
        self.release.set()
        self.http.close()


@pytest.fixture
def portal():
    p = SlowPortal(allotted=30)
    yield p
    p.close()


def test_a_slow_points_lookup_does_not_hold_a_donation(tmp_path: Path, portal: SlowPortal, caplog):  # noqa: ANN001
    cfg = _cfg(tmp_path / "data")
    cfg.portal.url = portal.url
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    ledger, terminal = open_ledger(cfg), open_terminal(cfg)
    seen: list[tuple[str, str | None]] = []  # (state, points phase), in the order the writer set them
    thanked = threading.Event()
    chose = threading.Event()

    def on_state(state: flow.FlowState) -> None:
        seen.append((state.name, state.points.phase if state.points is not None else None))
        if state.name == "thanks":
            # The donation is committed (the thank-you comes only after it): the portal is still holding on.
            seen.append(("portal", "answered" if portal.answered.is_set() else "holding"))
            thanked.set()
        if state.points is not None and state.points.phase == "choose":
            chose.set()

    service = DonationService.for_config(cfg, ledger, terminal, on_state=on_state, points=points_desk(cfg))
    service.settings = replace(service.settings, points_exchange=True)
    worker = ServiceWorker(service, lambda _at: None).start()
    assert worker.started.wait(30)
    idms = [fake_idm(41), fake_idm(42)]
    points_card, giver = (pepper.card_token(i) for i in idms)
    caplog.set_level(logging.DEBUG)

    def tap(card):  # noqa: ANN001, ANN202 - as the reader thread hands a tap over
        rec = TapRecord(reader_id="sim", family="suica", system_code=0x0003, token=card, balance_yen=5_000,
                        last_transaction=None, read_ms=1.0)
        return lambda svc: svc.reader_event(CardPresented(reader_id="sim", at=time.monotonic(), record=rec))

    try:
        worker.submit(lambda svc: svc.handle(flow.OpenPoints(now_ms=svc.now_ms())))
        worker.submit(tap(points_card))
        assert portal.asked.wait(30), "the kiosk never asked the portal"
        # The portal holds its answer; the citizen gives up and gives money with another card meanwhile.
        worker.submit(lambda svc: svc.handle(flow.Cancel(now_ms=svc.now_ms())))
        worker.submit(tap(giver))
        assert thanked.wait(20), repr(seen) + repr(worker.service.state)
        assert ("portal", "holding") in seen
        # No lookup answer (not even an offline fallback) reached the flow before the gift: it did not wait.
        assert ("points", "choose") not in seen[:seen.index(("thanks", None))]
        assert [e.type for e in entries_now(cfg)].count("donation") == 1

        portal.release.set()
        # The first lookup's answer (or, past the kiosk's HTTP timeout, its offline fallback) is for a flow that
        # has moved on: it changes nothing.
        drained = threading.Event()  # behind the first lookup on the side thread, then behind its answer's job
        worker.off_writer(lambda: None, lambda _none: drained.set())
        assert drained.wait(30)
        assert worker.service.state.name == "thanks", "a stale answer moved the screen"

        # A lookup that is answered reaches the screen (off the writer, then back on it).
        worker.submit(lambda svc: svc.handle(flow.OpenPoints(now_ms=svc.now_ms())))
        worker.submit(tap(points_card))
        assert chose.wait(30)
        assert worker.service.state.points is not None and worker.service.state.points.spendable == 30
        assert pointsync.last_word(cfg.data_dir, list(points_card.all_hexes)) == 30  # kept for offline use
        # The spend is checked on the writer against the kept word and the pools: none here, so nothing is spent.
        worker.submit(lambda svc: svc.handle(flow.ChoosePointsProject(now_ms=svc.now_ms(),
                                                                      project=svc.settings.projects[0])))
        worker.submit(lambda svc: svc.handle(flow.ChoosePoints(now_ms=svc.now_ms(), points=10)))
        worker.call(lambda svc: svc.handle(flow.ConfirmPoints(now_ms=svc.now_ms()))).result(30)
        assert worker.service.state.points is not None and worker.service.state.points.refused == "pool"
        assert all(p.endswith(f"/kiosks/{cfg.kiosk.id}/points/allot") for p in portal.paths)
    finally:
        worker.stop()
        terminal.close()
    assert not any(e.type == "points_spent" for e in entries_now(cfg))
    # The raw card ID went nowhere on this path: not to the portal, the kept word, the ledger or the log.
    kept = (cfg.data_dir / pointsync.FILE).read_bytes()
    assert points_card.hex.encode() in kept and points_card.hex.encode() in portal.bodies[0]  # the token did
    logs = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records).encode()
    for blob, where in ((b"".join(portal.bodies), "the lookup"), (kept, pointsync.FILE), (logs, "the log"),
                        (cfg.ledger_path.read_bytes(), "the ledger")):
        for idm in idms:
            for needle in (idm, idm.hex().encode(), idm.hex().upper().encode()):
                assert needle not in blob, f"IDm {idm.hex()} in {where}"


def entries_now(cfg) -> list:  # noqa: ANN001
    eng = read_only_engine(cfg.ledger_path)
    try:
        return list(iter_entries(eng))
    finally:
        eng.dispose()
