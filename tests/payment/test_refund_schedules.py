"""Random sessions of staff refunding gifts through Square: the bank's answers, lost answers, double taps, restarts.

The real maintenance menu (touched like a finger would) on a real ledger, the Square adapter with the
``squareup`` SDK against the fake Square API on loopback. Hypothesis draws: gifts paid on the terminal;
staff picking a gift on the refund page and pressing what the page offers (refund, check again, or a new
request after a refused one), sometimes twice; what the bank answers each new refund (PENDING, COMPLETED,
REJECTED, FAILED) and how it later decides a PENDING one; refund requests or their answers lost, or Square
answering 5xx; the kiosk restarting (the menu's memory gone, the ledger reopened from its file).

Throughout, a gift never has two live refunds (PENDING or COMPLETED) at Square, each refund carries the key
of its attempt (a new attempt, with a new key, only after the one before was refused or failed), and the
ledger never voids a gift whose money Square has not returned. At the end the link heals, staff check every
gift with a refund under way once more, and then the ledger and Square agree: a gift is voided exactly when
Square completed a refund of it, once, naming that refund.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kiosk.ledger.clock import FixedClock
from kiosk.staff.refund import refund_key
from tests.payment.fake_square import Fault
from tests.payment.test_refund_retry import restart
from tests.payment.test_refund_status import donate, provider, voids

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "menu"))
from tests.menu.conftest import Rig, build_rig  # noqa: E402

STATUSES = ["PENDING", "COMPLETED", "REJECTED", "FAILED"]
LIVE = ("PENDING", "COMPLETED")

OPS = st.one_of(
    st.tuples(st.just("give")),
    st.tuples(st.just("press"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("press"), st.integers(0, 5), st.booleans()),
    # What the bank answers each new refund, a step each time it is asked (it stays at the last).
    st.tuples(st.just("bank"), st.sampled_from([("PENDING",), ("PENDING",), ("COMPLETED",), ("REJECTED",), ("FAILED",),
                                                ("PENDING", "COMPLETED"), ("REJECTED", "PENDING"),
                                                ("FAILED", "COMPLETED"), ("PENDING", "FAILED")])),
    st.tuples(st.just("bank"), st.lists(st.sampled_from(STATUSES), min_size=1, max_size=3)),
    st.tuples(st.just("decide"), st.sampled_from(["COMPLETED", "REJECTED", "FAILED"])),
    st.tuples(st.just("fault"), st.sampled_from(["refund", "refund_get"]),
              st.lists(st.sampled_from(["drop", "drop_after", "500"]), min_size=1, max_size=3)),
    st.tuples(st.just("restart")),
)
FAULTS = {"drop": Fault("drop"), "drop_after": Fault("drop_after"), "500": Fault("status", 500)}


class _Session:
    def __init__(self, rig: Rig, p) -> None:  # noqa: ANN001
        self.rig, self.p = rig, p
        self.cards = 0
        self.signed_in = False  # a new menu (at start, after a restart) is locked until staff sign in
        self.give()

    def run(self, op: tuple) -> None:
        getattr(self, op[0])(*op[1:])
        self.check_live()

    # --- the operations ---------------------------------------------------------------------------
    def give(self) -> None:
        self.cards += 1
        donate(self.rig, self.p, self.cards)

    def press(self, pick: int, twice: bool) -> None:
        rig = self.rig
        if not self.signed_in:
            rig.open()
            self.signed_in = True
        rig.menu.model.press("go", "home")
        rig.touch("go", "refund")
        listed = rig.menu.model.refundables
        if not listed:
            return
        rig.touch("refund_pick", pick % len(listed))
        offered = [b.action for b in rig.view().all_buttons if b.action in ("refund_run", "refund_new")]
        if not offered:
            return
        rig.touch(offered[0])
        if twice and offered[0] in [b.action for b in rig.view().all_buttons]:
            rig.touch(offered[0])

    def bank(self, statuses: list[str] | tuple[str, ...]) -> None:
        self.p.steps(*statuses)

    def decide(self, status: str) -> None:
        for rid, st_ in self.p.refunds():
            if st_ == "PENDING":
                self.p.decide(rid, status)

    def fault(self, route: str, kinds: list[str]) -> None:
        self.p.fake.fault(route, *(FAULTS[k] for k in kinds))

    def restart(self) -> None:
        restart(self.rig)
        self.signed_in = False

    # --- what must hold -----------------------------------------------------------------------------
    def by_payment(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        with self.p.fake.lock:
            for key, r in self.p.fake.refunds.items():  # in the order they were made
                out.setdefault(r["payment_id"], []).append({**r, "key": key})
        return out

    def check_live(self) -> None:
        refunds = self.by_payment()
        for pid, rs in refunds.items():
            assert sum(r["status"] in LIVE for r in rs) <= 1, f"payment {pid}: two live refunds {rs}"
        done = {pid for pid, rs in refunds.items() if any(r["status"] == "COMPLETED" for r in rs)}
        donations = {e.seq: e for e in self.rig.ledger.iter_entries() if e.type == "donation"}
        kid = self.rig.services.kiosk_id
        for d in donations.values():
            rs = refunds.get(d.data["provider_ref"], [])
            # Attempt n's key, in order; a new attempt only after the one before was refused or failed.
            assert [r["key"] for r in rs] == [refund_key(kid, d.seq, n) for n in range(1, len(rs) + 1)], rs
            assert all(r["status"] in ("REJECTED", "FAILED") for r in rs[:-1]), f"seq={d.seq}: {rs}"
        for v in voids(self.rig):
            assert donations[v.data["voids_seq"]].data["provider_ref"] in done, "voided, the money not returned"

    def finish(self) -> None:
        with self.p.fake.lock:
            self.p.fake.faults.clear()
        self.restart()
        refunds = self.by_payment()
        donations = [e for e in self.rig.ledger.iter_entries() if e.type == "donation"]
        for i, d in enumerate(reversed(donations)):  # the refund page lists the newest first
            if any(r["status"] in LIVE for r in refunds.get(d.data["provider_ref"], [])):
                self.press(i, False)  # "check again": the void is written once Square says COMPLETED
        self.check_live()
        refunds = self.by_payment()
        voided = [v.data["voids_seq"] for v in voids(self.rig)]
        assert len(voided) == len(set(voided)), "a gift voided twice"
        for d in donations:
            done = [r for r in refunds.get(d.data["provider_ref"], []) if r["status"] == "COMPLETED"]
            mine = [v for v in voids(self.rig) if v.data["voids_seq"] == d.seq]
            assert len(done) == len(mine) <= 1, f"seq={d.seq}: Square completed {done}, the ledger voided {mine}"
            if done:
                assert done[0]["id"] in mine[0].data["reason"]
        event(f"voids={min(len(voided), 2)}")
        event(f"refunds at Square={min(sum(len(rs) for rs in refunds.values()), 3)}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=3, max_size=20))
def test_random_refund_sessions_never_refund_twice_and_void_only_what_was_returned(ops: list) -> None:
    with tempfile.TemporaryDirectory(prefix="kiosk-refunds-") as tmp:
        root = Path(tmp)
        rig = build_rig(root / "kiosk")
        try:
            with provider("square", root, FixedClock()) as p:
                rig.services.refund, rig.services.refund_method = p.term.refund, p.term.method
                s = _Session(rig, p)
                for op in ops:
                    s.run(op)
                s.finish()
        finally:
            rig.ledger.close(checkpoint=False)
