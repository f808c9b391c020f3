"""Random schedules of points handed out, spent offline and taken back, against what the ledgers say.

docs/points.md argues that no card spends more than it has, even offline and across kiosks: each kiosk
spends only what the portal handed it, the portal hands out only points no kiosk holds, and a refunded
gift's points are taken back from the next kiosk that asks, never below what it spent. Here hypothesis draws
schedules of two kiosks (one city-wide token per card, as with the city's pepper) and two cards: gifts,
refunds, syncs, asks (with and without the kiosk's entries synced first) and exchanges that the kiosk's own
check allows or refuses. Real ledgers, real uploaders over loopback HTTP, one real portal; SQLite and (with
$KIOSK_TEST_PG_URL) PostgreSQL.

Throughout, a card never spends more points than it ever earned. At the end every kiosk syncs and asks for
every card, and then for each card:

- the portal's balance is what the ledgers say: points of gifts not refunded, minus points spent;
- what the kiosks may still spend together is at most that balance (nothing, when it is below zero);
- what the kiosks hold (``max(handed, spent)`` each) is at most the larger of the points the card has and
  the points it spent: nothing is handed out twice.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sync_helpers import PROJECTS, enrolled, fake_idm, make_rig

from kiosk.donation.exchange import ExchangeRefused, card_spendable, exchange, hexes_of, pools_for
from kiosk.sync import pointsync
from kiosk.sync.configapply import load_applied
from kiosk.sync.uploader import SyncError
from server_sync import catalog, pools
from server_sync.db import point_allotments
from server_sync.embedded import start_portal
from tests.portal_db import fresh_db

N_CARDS = 2
KIOSKS = ("center-1f", "city-hall")
AREA = {p["id"]: p["area"] for p in PROJECTS}
TODAY = dt.date.today()

kiosk_i = st.integers(0, len(KIOSKS) - 1)
card_i = st.integers(0, N_CARDS - 1)
OPS = st.one_of(
    # A kiosk in use syncs within a minute of a gift or a refund: usually right after, in these schedules.
    st.tuples(st.just("give"), kiosk_i, card_i, st.sampled_from([100, 500, 1000]), st.booleans()),
    st.tuples(st.just("refund"), kiosk_i, st.integers(0, 20), st.booleans()),
    st.tuples(st.just("sync"), kiosk_i),
    st.tuples(st.just("ask"), kiosk_i, card_i),
    st.tuples(st.just("ask"), kiosk_i, card_i),
    st.tuples(st.just("ask"), kiosk_i, card_i),
    st.tuples(st.just("spend"), kiosk_i, card_i, st.integers(1, 12), st.sampled_from(["kodomo", "midori"])),
    st.tuples(st.just("spend"), kiosk_i, card_i, st.integers(1, 12), st.sampled_from(["kodomo", "midori"])),
)


class _World:
    def __init__(self, db_url: str, root: Path):
        self.portal = start_portal(db_url)
        self.eng = self.portal.app.state.engine
        catalog.import_catalog(self.eng, {"projects": PROJECTS})
        self.rigs = [make_rig(root, k) for k in KIOSKS]
        self.rigs[1].pepper = self.rigs[0].pepper  # one city-wide token per card
        self.ups = [enrolled(r, self.portal) for r in self.rigs]
        pools.save_pool(self.eng, {"id": "city-fund", "sponsor": "市民基金", "sponsor_en": "City Fund",
                                   "funded_yen": 10**7, "yen_per_point": 1, "per_kiosk_yen": 10**6,
                                   "areas": ["children", "green"], "start": None, "end": None})
        for up in self.ups:
            assert up.sync_once().ok  # the signed config with each kiosk's share of the pool
        self.gifts: list[list[tuple[int, int, int]]] = [[] for _ in KIOSKS]  # (seq, card, points) not refunded
        self.earned_ever = [0] * N_CARDS

    def close(self) -> None:
        for up in self.ups:
            up.close()
        for r in self.rigs:
            r.ledger.close(checkpoint=False)
        self.portal.stop()

    def token(self, card: int):  # noqa: ANN201
        return self.rigs[0].pepper.token(fake_idm(100 + card))

    def run(self, op: tuple) -> None:
        getattr(self, op[0])(*op[1:])
        for c in range(N_CARDS):
            assert self.spent(c) <= self.earned_ever[c], f"card {c} spent points it never earned"

    # --- the operations ---------------------------------------------------------------------------
    def give(self, k: int, card: int, amount: int, then_sync: bool) -> None:
        [d] = self.rigs[k].donate(1, card=100 + card, amounts=(amount,))
        self.gifts[k].append((d.seq, card, d.data["points"]))
        self.earned_ever[card] += d.data["points"]
        if then_sync:
            self.sync(k)

    def refund(self, k: int, pick: int, then_sync: bool) -> None:
        if self.gifts[k]:
            seq, _, _ = self.gifts[k].pop(pick % len(self.gifts[k]))
            self.rigs[k].ledger.void(seq, "refunded at the desk")
            if then_sync:
                self.sync(k)

    def sync(self, k: int) -> None:
        assert self.ups[k].sync_once().ok

    def ask(self, k: int, card: int) -> None:
        t, rig = self.token(card), self.rigs[k]
        try:  # as kiosk run does: telling the portal what this ledger spent for the card
            pointsync.ask(self.ups[k], t, hexes_of(t), rig.ledger.points_spent(hexes_of(t))[0])
        except SyncError as exc:
            raise AssertionError(f"the portal refused an ask: {exc}") from None

    def spend(self, k: int, card: int, points: int, project: str) -> None:
        t, rig = self.token(card), self.rigs[k]
        word = pointsync.last_word(rig.cfg.data_dir, hexes_of(t))
        may = card_spendable(rig.ledger, t, word)
        try:
            exchange(rig.ledger, t, points, project, AREA[project],
                     pools_for(load_applied(rig.cfg.data_dir), rig.kiosk_id), word, TODAY)
        except ExchangeRefused as exc:
            assert exc.reason == "card" and points > may, f"refused: {exc.reason} ({exc})"
        else:
            assert points <= may

    # --- what the ledgers say ---------------------------------------------------------------------
    def spent(self, card: int, k: int | None = None) -> int:
        rigs = self.rigs if k is None else [self.rigs[k]]
        t = self.token(card)
        return sum(r.ledger.points_spent(hexes_of(t))[0] for r in rigs)

    def earned(self, card: int) -> int:
        return sum(p for gifts in self.gifts for _, c, p in gifts if c == card)

    def check(self) -> None:
        for k in range(len(KIOSKS)):
            self.sync(k)
        for card in range(N_CARDS):
            t = self.token(card)
            answers = {}
            for k in range(len(KIOSKS)):
                self.ask(k, card)
                answers[k] = pointsync.last_word(self.rigs[k].cfg.data_dir, hexes_of(t))
            balance = self.earned(card) - self.spent(card)
            assert pools.allot(self.eng, KIOSKS[0], hexes_of(t))["balance"] == balance, f"card {card}: balance"
            spendable = sum(card_spendable(self.rigs[k].ledger, t, answers[k]) for k in answers)
            assert spendable <= max(0, balance), f"card {card}: the kiosks may spend {spendable}, it has {balance}"
            with self.eng.connect() as conn:
                held = {k: int(p) for k, p in conn.execute(
                    point_allotments.select().with_only_columns(point_allotments.c.kiosk_id, point_allotments.c.points)
                    .where(point_allotments.c.donor.in_(hexes_of(t))))}
            assert {KIOSKS[k]: a for k, a in answers.items() if a or KIOSKS[k] in held} == held, \
                f"card {card}: the kiosks keep other answers than the portal gave"
            holds = sum(max(answers[k], self.spent(card, k)) for k in answers)
            assert holds <= max(self.earned(card), self.spent(card)), f"card {card}: points handed out twice"


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=4, max_size=30))
# Two schedules always run besides the drawn ones: a gift's points handed out, then the gift refunded; and a
# kiosk spending offline what it was handed while the gift is refunded at the other kiosk.
@example(ops=[("give", 0, 0, 1000, True), ("ask", 0, 0), ("refund", 0, 0, True)])
@example(ops=[("give", 1, 0, 1000, True), ("ask", 0, 0), ("spend", 0, 0, 8, "kodomo"), ("refund", 1, 0, True),
              ("ask", 0, 0), ("give", 1, 0, 500, True), ("ask", 1, 0), ("spend", 1, 0, 5, "midori")])
def test_any_schedule_of_points_spends_no_more_than_the_card_has(db_url: str, ops: list) -> None:
    with tempfile.TemporaryDirectory(prefix="kiosk-points-") as tmp:
        root = Path(tmp)
        world = _World(fresh_db(db_url, root), root)
        try:
            for op in ops:
                world.run(op)
            world.check()
        finally:
            world.close()
