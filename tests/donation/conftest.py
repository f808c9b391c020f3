"""Donation test helpers: real ledgers and simulated terminals in temp dirs, and a real ledger outage.

Nothing of our own is mocked. The ledger outage is SQLite itself refusing the
write (an authorizer that denies INSERT), which takes the ledger's real
fail-closed path exactly as a full or dying disk does.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.donation.flow import ChooseAmount, FlowSettings, Touch
from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, Pepper
from kiosk.ledger.clock import FixedClock
from kiosk.ledger.pepper import DonorToken
from kiosk.payment import SimulatedTerminal
from kiosk.reader.events import CardPresented, TapRecord

KIOSK_ID = "donation-test-1"
PROJECTS = ("kodomo", "midori", "machi")
PEPPER = Pepper({1: hashlib.sha256(b"donation-tests").digest()})


def settings(**kw: Any) -> FlowSettings:
    base: dict[str, Any] = dict(projects=PROJECTS, presets_yen=(100, 500, 1000), default_yen=100,
                                max_per_transaction_yen=1000, daily_limit_per_card_yen=1500, points_per_100_yen=1,
                                choose_amount_idle_ms=20_000, tap_card_idle_ms=20_000, thanks_ms=6_000,
                                error_ms=8_000)
    base.update(kw)
    return FlowSettings(**base)


def token(n: int) -> DonorToken:
    return PEPPER.token(hashlib.sha256(f"card-{n}".encode()).digest()[:8])


def card(n: int, *, balance: int | None = 5000, family: str = "suica") -> CardPresented:
    """A reader event for simulated card ``n``."""
    rec = TapRecord(reader_id="reader-1", family=family, system_code=0x0003, token=token(n), balance_yen=balance,
                    last_transaction=None, read_ms=3.0)
    return CardPresented(reader_id="reader-1", at=0.0, record=rec)


class LedgerOutage:
    """While ``down``, every INSERT on the ledger's SQLite connections is refused by SQLite
    (and with ``reads_down`` every read too, as when the medium is gone)."""

    def __init__(self, ledger: Ledger):
        self.down = False
        self.reads_down = False
        self._conns: list[sqlite3.Connection] = []
        ledger._engine.on_connect.append(self._on_connect)
        ledger._drop_writer()  # new connections from here on carry the authorizer
        ledger._engine.dispose()

    def _on_connect(self, dbapi_conn: sqlite3.Connection) -> None:
        self._conns.append(dbapi_conn)
        dbapi_conn.set_authorizer(self._authorize)

    def _authorize(self, action: int, *_args: Any) -> int:
        if (self.down and action == sqlite3.SQLITE_INSERT) or (self.reads_down and action == sqlite3.SQLITE_READ):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def set(self, down: bool, *, reads: bool = False) -> None:
        self.down, self.reads_down = down, reads
        # The authorizer is consulted when a statement is prepared; setting it again expires cached ones.
        for c in self._conns:
            try:
                c.set_authorizer(self._authorize)
            except sqlite3.ProgrammingError:  # closed
                pass


@dataclass
class Kiosk:
    """One kiosk's files. :meth:`open` is a (re)start: a new ledger, terminal and service on the same files."""

    dir: Path
    sk: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    clock: FixedClock = field(default_factory=FixedClock)
    opened: list[Any] = field(default_factory=list)

    @property
    def ledger_path(self) -> Path:
        return self.dir / "ledger.db"

    @property
    def sim_path(self) -> Path:
        return self.dir / "payment-sim.db"

    def open(self, *, start: bool = True, flow: FlowSettings | None = None, mode: str = "approve",
             slow_ms: int = 0, **kw: Any) -> tuple[Ledger, SimulatedTerminal, DonationService]:
        led = Ledger.open(self.ledger_path, self.sk, KIOSK_ID, clock=self.clock, checkpoint_every=1000)
        term = SimulatedTerminal(self.sim_path, mode=mode, slow_ms=slow_ms)  # type: ignore[arg-type]
        kw.setdefault("lookup_interval_ms", 0)
        svc = DonationService(led, term, flow or settings(), clock=self.clock, **kw)
        self.opened += [led, term]
        if start:
            svc.start()
        return led, term, svc

    def close(self) -> None:
        for thing in reversed(self.opened):
            try:
                thing.close(checkpoint=False) if isinstance(thing, Ledger) else thing.close()
            except Exception:
                pass
        self.opened.clear()


class ServiceSession:
    """A kiosk's donation service over drawn sessions (the property tests): each :meth:`boot` is a (re)start on
    the same files, with a new ledger, the terminal :meth:`make_terminal` gives and a new service; the ledger
    can be made to refuse writes (``outage``), also right after a charge (``die_after_charge``), and every
    thank-you is checked against the ledger file."""

    def __init__(self, k: Kiosk, flow: FlowSettings):
        self.k, self.flow = k, flow
        self.thanks = 0
        self.boot()

    def make_terminal(self) -> Any:
        raise NotImplementedError

    def boot(self) -> None:
        self.k.close()
        self.led = Ledger.open(self.k.ledger_path, self.k.sk, KIOSK_ID, clock=self.k.clock, checkpoint_every=1000)
        self.term = self.make_terminal()
        self.k.opened += [self.led, self.term]
        self.outage = LedgerOutage(self.led)
        self.die_after_charge = False
        self.svc = DonationService(self.led, self.term, self.flow, clock=self.k.clock, lookup_interval_ms=0,
                                   on_state=self.on_state, crash_point=self.on_point)
        self.resolved = self.svc.start()

    def on_point(self, point: str) -> None:
        if point == "after_charge" and self.die_after_charge:
            self.outage.set(True)

    def on_state(self, s: Any) -> None:
        self.thanks += assert_thanks_on_disk(self.k.ledger_path, s)

    def screen_act(self, a: tuple) -> bool:
        """The donor's drawn actions on the screen (``amount``, ``dismiss``) and time passing (``wait``); whether
        ``a`` was one of them."""
        now = self.svc.now_ms
        if a[0] == "amount":
            self.svc.handle(Touch(now_ms=now()))
            self.svc.handle(ChooseAmount(now_ms=now(), amount_yen=a[1]))
        elif a[0] == "dismiss":
            self.svc.handle(Touch(now_ms=now()))
        elif a[0] == "wait":
            self.k.clock.advance(a[1])
            self.svc.tick()
        else:
            return False
        return True


@pytest.fixture
def kiosk(tmp_path: Path):
    k = Kiosk(tmp_path)
    yield k
    k.close()


def _ledger_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def assert_intent_on_disk(ledger_path: Path, idem: str, amount_yen: int) -> None:
    """What a payment seam checks before it believes in a charge: the intent for ``idem`` is in the ledger *file*
    (read on a connection of its own), for that amount."""
    con = _ledger_ro(ledger_path)
    try:
        row = con.execute("SELECT amount_yen FROM entries WHERE type = 'donation_intent' AND idem = ?",
                          (idem,)).fetchone()
    finally:
        con.close()
    assert row is not None, "charge before its intent was durable"
    assert row[0] == amount_yen, "charge for another amount than the intent"


def assert_thanks_on_disk(ledger_path: Path, state: Any) -> bool:
    """For a service's ``on_state``: if ``state`` thanks a donor, its donation is in the ledger file (the
    thank-you only after a durable commit). Whether it was a thank-you."""
    if state.name != "thanks" or state.thanks is None:
        return False
    con = _ledger_ro(ledger_path)
    try:
        row = con.execute("SELECT type, entry_hash FROM entries WHERE seq = ?", (state.thanks.receipt.seq,)).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == "donation" and bytes(row[1]) == state.thanks.receipt.entry_hash
    return True


def entries_of(led: Ledger, kind: str) -> list[Any]:
    return [e for e in led.iter_entries() if e.type == kind]


def approved_charges(term: SimulatedTerminal) -> list[dict]:
    return [c for c in term.charges() if c["status"] == "approved"]
