"""A portal answer to a card's points ask that never reaches the kiosk (docs/points.md, "A lost answer").

After a gift is refunded elsewhere, the portal LOWERS what it hands this kiosk for the card (a take-back) and
commits that before it answers. When the answer was lost (the connection dropped after the request was sent, the
answer cut, a 500 from the portal's pool top-up that ran after the commit), the kiosk kept its older, higher last
word and could spend it, now (the desk falls back to the last word) or offline later, while the portal had already
handed the taken-back points to the card's other kiosks: up to the refunded points were spent twice.

Now an ask whose outcome is unknown (sent, no valid answer) leaves nothing of the card spendable at this kiosk, kept
so in points-allotted.json (a restart does not bring the older word back), until a later ask succeeds; an ask that
surely never reached the portal (connection refused) leaves the last word standing, as before. And the portal
answers the allotment it committed even when the pool top-up after it fails.

Real kiosks (ledgers, keys, pepper), a real portal on loopback (SQLite and PostgreSQL), the kiosk's own points desk
(kiosk/app/points.py) and donation service; between kiosk A and the portal a tiny forwarding HTTP server (real
sockets) that forwards the ask, lets the portal commit, and then loses the answer.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fault_proxy import forward
from sqlalchemy import text
from sync_helpers import PROJECTS, Rig, enrolled, fake_idm, make_rig, points_screen, points_service

from kiosk.app.points import points_desk
from kiosk.donation.exchange import ExchangeRefused, PointsDesk, exchange
from kiosk.payment import open_terminal
from kiosk.sync import pointsync
from kiosk.sync.uploader import SyncError
from server_sync import catalog, pools

CARD = 21


class Between:
    """A forwarding HTTP server between a kiosk and the portal. ``mode`` says what happens to a points ask (other
    requests pass): ``pass``; ``drop`` (forwarded, the portal commits, the connection is closed without an answer);
    ``500`` (forwarded, then a 500 answered); ``cut`` (forwarded, half the portal's answer sent, closed); ``late``
    (forwarded, no answer until the test ends: the kiosk's read times out). Every answer closes its connection, so a
    closed server is a refused connection for the next request."""

    def __init__(self, upstream: str):
        u = urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.mode = "pass"
        self.forwarded = 0  # points asks the portal received through here
        self.done = threading.Event()
        between = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                status, rheaders, rbody = between.forward(self.command, self.path, body, headers)
                self.close_connection = True
                mode = between.mode if self.path.endswith("/points/allot") else "pass"
                if self.path.endswith("/points/allot"):
                    between.forwarded += 1
                if mode == "drop":
                    return
                if mode == "late":
                    between.done.wait(10)
                    return
                if mode == "500":
                    status, rheaders, rbody = 500, {"Content-Type": "text/plain"}, b"Internal Server Error"
                self.send_response(status)
                for k, v in rheaders.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(rbody)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(rbody[: len(rbody) // 2] if mode == "cut" else rbody)
                self.wfile.flush()

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
        return forward(self.host, self.port, method, path, body, headers)

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()  # from now on a connection to it is refused


@pytest.fixture
def pair(portal, tmp_path: Path):  # noqa: ANN001, ANN201
    """Kiosk A (center-1f) talks to the portal through :class:`Between`; kiosk B (city-hall) directly. One card
    token at both (the city's pepper). The card earned 10 points at A and 20 at B; a pool is funded."""
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    a, b = make_rig(tmp_path, "center-1f"), make_rig(tmp_path, "city-hall")
    b.pepper = a.pepper
    between = Between(portal.url)
    up_a = a.uploader(between.url)
    up_a.enroll(portal.issue_code(a.kiosk_id))  # A's sync-state names the server between: its desk asks there too
    up_b = enrolled(b, portal)
    terminal = open_terminal(a.cfg)
    try:
        a.donate(1, card=CARD, amounts=(1000,))
        gifts_b = b.donate(2, card=CARD, amounts=(1000,))
        assert up_a.sync_once().ok and up_b.sync_once().ok
        pools.save_pool(eng, {"id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "Midori Bank",
                              "funded_yen": 10_000, "yen_per_point": 10, "per_kiosk_yen": 2_000, "areas": [],
                              "start": None, "end": None})
        assert up_a.sync_once().ok and up_b.sync_once().ok  # the signed config hands each kiosk ¥2,000
        yield a, b, up_a, up_b, between, gifts_b, terminal, eng
    finally:
        between.close()
        terminal.close()
        for up in (up_a, up_b):
            up.close()
        for r in (a, b):
            r.ledger.close(checkpoint=False)


def _spend(rig: Rig, desk: PointsDesk, token, points: int):  # noqa: ANN001, ANN202
    """The writer's own check and entry, as the service makes them (against the kept word)."""
    return exchange(rig.ledger, token, points, "kodomo", "children", desk.pools(), desk.last_word(token),
                    rig.ledger.business_date_at_least())


def test_a_lost_take_back_answer_leaves_nothing_of_the_card_spendable_until_the_next_answer(pair):  # noqa: ANN001
    a, b, up_a, up_b, between, gifts_b, terminal, eng = pair
    token = a.pepper.card_token(fake_idm(CARD))
    desk = points_desk(a.cfg)
    svc = points_service(a, terminal, desk)
    assert points_screen(svc, token).spendable == 30  # the portal hands A all 30 points of the card

    b.ledger.void(gifts_b[0].seq, "refunded: test")  # city hall refunds one of its gifts: 10 points never earned
    assert up_b.sync_once().ok

    # A asks; the portal takes the 10 back from A (30 -> 20) and commits, and the answer is lost on the way.
    between.mode = "drop"
    assert points_screen(svc, token).spendable == 0  # before: 30, the older word
    assert between.forwarded == 2
    # The portal's word: the card earns 10 more at B, and B is handed the 10 taken back from A with them.
    b.donate(1, card=CARD, amounts=(1000,))
    assert up_b.sync_once().ok
    assert points_desk(b.cfg).ask(b.pepper.card_token(fake_idm(CARD)), 0) == (10, 30)

    # A cannot spend the card's points: not on the writer, not offline, not after a restart.
    with pytest.raises(ExchangeRefused) as refused:
        _spend(a, desk, token, 10)
    assert refused.value.reason == "card" and a.ledger.points_spent(list(token.all_hexes))[0] == 0
    assert points_desk(a.cfg).last_word(token) == 0  # kiosk run again: the file keeps it unknown
    kept = json.loads((a.cfg.data_dir / pointsync.FILE).read_text())
    assert not set(token.all_hexes) & set(kept) and not set(token.all_hexes) & set(kept.get(pointsync.MARKS, {}))

    # The next ask that is answered shows the portal's figure: 20 at A (30 earned, 10 of them handed to B).
    between.mode = "pass"
    assert points_screen(svc, token).spendable == 20
    assert _spend(a, desk, token, 20).data["points"] == 20
    with pytest.raises(ExchangeRefused):
        _spend(a, desk, token, 1)


def test_every_way_of_losing_the_answer_makes_the_word_unknown_and_a_refused_connection_does_not(pair):  # noqa: ANN001
    a, b, up_a, up_b, between, gifts_b, terminal, eng = pair
    token = a.pepper.card_token(fake_idm(CARD))
    hexes = list(token.all_hexes)
    desk = points_desk(a.cfg)
    assert desk.ask(token, 0) == (30, 30)
    # A 500 after the portal committed, an answer cut half-way, an answer that never comes (a short read timeout
    # here; the desk's is 3 s), a connection dropped: each leaves nothing spendable, the next answer restores it.
    quick = a.uploader(between.url, timeout=(2.0, 0.3))
    for mode in ("500", "cut", "late", "drop"):
        between.mode = mode
        if mode == "late":
            with pytest.raises(SyncError):
                pointsync.ask(quick, token, hexes, 0)
        else:
            assert desk.ask(token, 0) == (0, None), mode
        assert desk.last_word(token) == 0, mode
        between.mode = "pass"
        assert desk.ask(token, 0) == (30, 30), mode
    quick.close()
    assert between.forwarded == 9  # every lost ask reached the portal

    # The portal cannot be reached at all (nothing listens: connection refused): nothing was sent, nothing
    # committed, the last word stands, as before.
    between.close()
    assert desk.ask(token, 0) == (30, None)
    assert points_desk(a.cfg).last_word(token) == 30
    assert _spend(a, desk, token, 30).data["points"] == 30


def test_a_refusal_by_the_portal_leaves_the_last_word(pair):  # noqa: ANN001
    """A 4xx is the portal's own refusal, made before anything moved (here: a suspended kiosk, 403): the last word
    stands, as offline (docs/points.md, "A suspended kiosk")."""
    a, b, up_a, up_b, between, gifts_b, terminal, eng = pair
    token = a.pepper.card_token(fake_idm(CARD))
    desk = points_desk(a.cfg)
    assert desk.ask(token, 0) == (30, 30)
    with eng.begin() as conn:
        conn.execute(text("UPDATE portal_kiosks SET suspended_ms = 1 WHERE id = :k"), {"k": a.kiosk_id})
    assert desk.ask(token, 0) == (30, None)
    assert desk.last_word(token) == 30


def _refuse_allocation_changes(eng) -> None:  # noqa: ANN001
    """The database refuses any change of a pool's allocations (as a failing disk or a bug in the top-up would
    make it fail): the pool top-up after an allotment fails, for real."""
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            # OR REPLACE: a function outlives the tables fresh_db drops, so an earlier run's may be there.
            conn.execute(text("CREATE OR REPLACE FUNCTION no_top_up() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'no top-up'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER no_top_up BEFORE UPDATE OF allocations ON portal_sponsor_pools "
                              "FOR EACH ROW EXECUTE FUNCTION no_top_up()"))
        else:
            conn.execute(text("CREATE TRIGGER no_top_up BEFORE UPDATE OF allocations ON portal_sponsor_pools "
                              "BEGIN SELECT RAISE(ABORT, 'no top-up'); END"))


def test_the_portal_answers_its_allotment_when_the_pool_top_up_after_it_fails(pair, portal, tmp_path):  # noqa: ANN001
    a, b, up_a, up_b, between, gifts_b, terminal, eng = pair
    token = a.pepper.card_token(fake_idm(CARD))
    desk = points_desk(a.cfg)
    assert desk.ask(token, 0) == (30, 30)
    b.ledger.void(gifts_b[0].seq, "refunded: test")
    assert up_b.sync_once().ok
    # A new kiosk joins: the next ask's top-up would hand it its share of the pool; the database refuses that.
    c = make_rig(tmp_path, "library")
    up_c = enrolled(c, portal)
    _refuse_allocation_changes(eng)

    assert desk.ask(token, 0) == (20, 20)  # before: a 500 after the take-back was committed
    assert desk.last_word(token) == 20
    with eng.connect() as conn:
        assert "library" not in pools.list_pools(conn)[0]["allocations"]
    # The top-up is tried again at the next ask, and then hands the new kiosk its share.
    with eng.begin() as conn:
        conn.execute(text("DROP TRIGGER no_top_up" + (" ON portal_sponsor_pools" if eng.dialect.name ==
                                                       "postgresql" else "")))
        if eng.dialect.name == "postgresql":
            conn.execute(text("DROP FUNCTION no_top_up()"))
    assert desk.ask(token, 0) == (20, 20)
    with eng.connect() as conn:
        assert pools.list_pools(conn)[0]["allocations"]["library"] == 2_000
    up_c.close()
    c.ledger.close(checkpoint=False)


def _after_restart(data: Path, *hexes: str) -> int:
    """The card's word as a new process (kiosk run again) reads it: only the file."""
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from kiosk.sync import pointsync; "
                            "print(pointsync.last_word(Path(sys.argv[1]), sys.argv[2:]))", str(data), *hexes],
                           capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert fresh.returncode == 0, fresh.stderr
    return int(fresh.stdout)


def test_an_unknown_word_is_kept_in_the_file_beside_the_other_cards_and_their_marks(tmp_path: Path):
    """The file stays as older releases and 6d9b433's marks read it: the card's entries are gone, the others kept."""
    card, other = ["aa" * 16, "cc" * 16], "bb" * 16
    pointsync.remember(tmp_path, card[0], 30, card, (4, 9))
    pointsync.remember(tmp_path, other, 12, [other], (2, 7))
    pointsync.forget(tmp_path, card)
    doc = json.loads((tmp_path / pointsync.FILE).read_text())
    assert doc == {other: 12, pointsync.MARKS: {other: [2, 7]}}
    assert pointsync.kept(tmp_path, card) == (0, None) and pointsync.kept(tmp_path, [other]) == (12, (2, 7))
    assert _after_restart(tmp_path, *card) == 0
    pointsync.remember(tmp_path, card[0], 20, card, (10, 12))  # the next answer: the true figure again
    assert pointsync.kept(tmp_path, card) == (20, (10, 12))


def test_on_a_full_disk_a_lowered_or_unknown_word_never_comes_back_higher_after_a_restart(tmp_path: Path):
    """The file cannot be written (the data partition full): a higher answer leaves the file's older, lower word (as
    before); a lowered or unknown one removes the file (a full disk still lets it go), so a restart finds no word."""
    from tests.mounts import fill, small_tmpfs

    card, other = ["aa" * 16, "cc" * 16], ["bb" * 16]
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        data = disk / "data"
        data.mkdir()
        pointsync.remember(data, card[0], 30, card)
        pointsync.remember(data, other[0], 12, other)
        filler = fill(disk)
        pointsync.remember(data, card[0], 40, card)  # higher: the file's 30 may stand after a restart
        assert pointsync.last_word(data, card) == 40 and _after_restart(data, *card) == 30
        pointsync.forget(data, card)  # the next ask's answer was lost
        assert pointsync.last_word(data, card) == 0 and pointsync.last_word(data, other) == 12  # this process
        assert not (data / pointsync.FILE).exists()
        assert _after_restart(data, *card) == 0 and _after_restart(data, *other) == 0  # not 30; 12 when asked again
        filler.unlink()
        pointsync.remember(data, card[0], 20, card)  # room again: the next answer writes all that is held
        assert json.loads((data / pointsync.FILE).read_text()) == {card[0]: 20, other[0]: 12}
        filler = fill(disk)
        pointsync.remember(data, card[0], 10, card)  # a take-back that cannot be written: not 20 after a restart
        assert pointsync.last_word(data, card) == 10 and _after_restart(data, *card) == 0
        filler.unlink()
