"""Undoing the card links one kiosk made (docs/points.md, "Undoing a kiosk's links").

The portal keeps each kiosk's points ask as a list (``portal_card_links``: kiosk, the list's lowest token, each
token), and a card of ``portal_card_tokens`` is a connected component of the lists. ``kiosk-portal cards unlink
--kiosk ID`` deletes a kiosk's lists (one whose key was stolen) and makes its cards again from the lists that
remain, under each card's lock as an ask takes it; allotments stay per token and kiosk, so the take-back of
``pools.allot`` gives back what a card no longer has. Real kiosks (ledgers, peppers, uploaders), a real portal over
loopback HTTP and the real ``kiosk-portal`` command, SQLite and PostgreSQL; the storm at the end runs on
PostgreSQL only.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sync_helpers import PROJECTS, Rig, enrolled, fake_idm, make_rig

from kiosk.donation.exchange import card_spendable, exchange, hexes_of, pools_for
from kiosk.ledger import DonorToken
from kiosk.sync import pointsync
from kiosk.sync.configapply import load_applied
from kiosk.sync.uploader import SyncError
from server_sync import catalog, pools
from server_sync.db import card_links, card_tokens, create_schema, point_allotments
from server_sync.embedded import start_portal
from server_sync.portal_cli import main as portal_main

KIOSKS = ("center-1f", "city-hall", "rogue-1")
A, B = 1, 2  # two cards
AREA = {p["id"]: p["area"] for p in PROJECTS}


# --- what the tables hold --------------------------------------------------------------------------------------
def cards(eng: Engine) -> dict[str, frozenset[str]]:
    """{card key: its tokens}."""
    out: dict[str, set[str]] = {}
    with eng.connect() as conn:
        for token, card in conn.execute(select(card_tokens.c.token, card_tokens.c.card)):
            out.setdefault(card, set()).add(token)
    return {k: frozenset(v) for k, v in out.items()}


def lists(eng: Engine) -> dict[tuple[str, str], frozenset[str]]:
    """{(kiosk, list key): its tokens}."""
    out: dict[tuple[str, str], set[str]] = {}
    with eng.connect() as conn:
        for kid, name, token in conn.execute(select(card_links.c.kiosk_id, card_links.c.list_key, card_links.c.token)):
            out.setdefault((kid, name), set()).add(token)
    return {k: frozenset(v) for k, v in out.items()}


def components(groups: list[frozenset[str]]) -> set[frozenset[str]]:
    """The connected components of token sets (a plain fixpoint, independent of pools._split)."""
    parts: list[set[str]] = []
    for g in groups:
        joined = set(g)
        for p in [p for p in parts if p & joined]:
            joined |= p
            parts.remove(p)
        parts.append(joined)
    return {frozenset(p) for p in parts}


def assert_cards_are_the_lists_components(eng: Engine) -> None:
    """The invariant unlink relies on and keeps: the cards are exactly the connected components of the kept lists
    (every token of one table is in the other), each card's key is one of its tokens, and each list lies in one
    card."""
    got, kept = cards(eng), lists(eng)
    assert set(got.values()) == components(list(kept.values()))
    assert all(key in toks for key, toks in got.items())
    assert all(any(members <= toks for toks in got.values()) for members in kept.values())
    assert all(name == min(members) for (_, name), members in kept.items())


def tok(s: str) -> str:
    """A made-up token: 32 hex digits, sorting as ``s`` does."""
    return s + "0" * (32 - len(s))


# --- kiosks ----------------------------------------------------------------------------------------------------
@pytest.fixture
def three(portal, tmp_path) -> Iterator[tuple[list[Rig], list[Any]]]:  # noqa: ANN001
    """The center's kiosk, city hall's and a third one whose key is stolen, enrolled, with the city's pepper."""
    catalog.import_catalog(portal.app.state.engine, {"projects": PROJECTS})
    rigs = [make_rig(tmp_path, k) for k in KIOSKS]
    ups = [enrolled(r, portal, pepper=r.pepper) for r in rigs]
    for up in ups:
        assert up.sync_once().ok  # each adopts the city's pepper
    yield rigs, ups
    for up in ups:
        up.close()
    for r in rigs:
        r.ledger.close(checkpoint=False)


def _ask(rig: Rig, up, token: DonorToken) -> dict[str, int]:  # noqa: ANN001
    """What kiosk run does at the exchange screen: ask with every token it can make for the card and what its ledger
    spent for it; the answer, and what the card may spend here."""
    got = pointsync.ask(up, token, hexes_of(token), rig.ledger.points_spent(hexes_of(token))[0])
    return {"allotted": got.allotted, "balance": got.balance,
            "here": card_spendable(rig.ledger, token, pointsync.last_word(rig.cfg.data_dir, hexes_of(token)))}


def _cli(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = portal_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("spent", [5, 128])
def test_a_stolen_kiosks_merge_is_undone_and_each_card_counts_its_own_points_again(portal, three, capsys, spent):
    """Cards A (center) and B (city hall) are two cards until the stolen kiosk lists both in one ask; the center
    is then handed the merged card's points, B's included, and spends some. Staff revoke the stolen key and undo
    its links: the cards are two again, and the center's next ask for A gives back what A does not have, as far as
    the center holds it unspent (``spent`` = 128: it spent 8 of B's points, which A's balance now owes)."""
    (h, j, r), (uh, uj, ur) = three
    eng, url = portal.app.state.engine, portal.db_url
    pools.save_pool(eng, {"id": "city", "sponsor": "市", "sponsor_en": "The city", "funded_yen": 10_000,
                          "yen_per_point": 1, "per_kiosk_yen": 1000, "areas": ["children", "green"], "start": None,
                          "end": None})
    h.donate(10, card=A, amounts=(1000,))  # 100 points
    j.donate(3, card=B, amounts=(1000,))  # 30 points
    assert uh.sync_once().ok and uj.sync_once().ok
    ta, tb = h.pepper.card_token(fake_idm(A)), j.pepper.card_token(fake_idm(B))
    assert _ask(h, uh, ta)["allotted"] == 100 and _ask(j, uj, tb)["allotted"] == 30
    card_a, card_b = frozenset(hexes_of(ta)), frozenset(hexes_of(tb))
    assert set(cards(eng).values()) == {card_a, card_b}

    # The stolen kiosk lists A's and B's tokens as one card: nothing is free to hand it, but they are one card now.
    ra, rb = r.pepper.card_token(fake_idm(A)), r.pepper.card_token(fake_idm(B))
    rogue = [*hexes_of(ra), *hexes_of(rb)]
    assert pointsync.ask(ur, ra, rogue)[:2] == (0, 130)  # allotted, balance
    assert set(cards(eng).values()) == {card_a | card_b | set(rogue)}
    # Both cards earn more; the center's next ask for A is handed the merged card's free points, B's 10 among them.
    h.donate(2, card=A, amounts=(1000,))
    j.donate(1, card=B, amounts=(1000,))
    assert uh.sync_once().ok and uj.sync_once().ok
    assert _ask(h, uh, ta) == {"allotted": 130, "balance": 160, "here": 130}
    assert exchange(h.ledger, ta, spent, "kodomo", AREA["kodomo"], pools_for(load_applied(h.cfg.data_dir), h.kiosk_id),
                    pointsync.last_word(h.cfg.data_dir, hexes_of(ta)), dt.date.today()).data["points"] == spent
    assert uh.sync_once().ok

    # Staff revoke the stolen key (its asks are refused from now on), look at what it linked, and undo it.
    assert _cli(capsys, "kiosk", "revoke", "--db", url, "rogue-1", "--from-seq", str(r.ledger.size + 1))[0] == 0
    with pytest.raises(SyncError):
        pointsync.ask(ur, ra, rogue)
    code, out, err = _cli(capsys, "cards", "links", "--db", url, "--kiosk", "rogue-1")
    assert code == 0 and err == ""
    assert "rogue-1: 1 list (4 links) in 1 card;" in out
    assert "(6 tokens, lists of 2 other kiosks): 1 list naming 4 tokens" in out
    assert "split it into 2 cards of 2, 2 tokens, and 2 tokens no other kiosk listed would leave it" in out
    code, out2, err = _cli(capsys, "cards", "unlink", "--db", url, "--kiosk", "rogue-1")
    assert code == 0 and err == ""  # revoked: no warning
    assert out2.startswith("rogue-1: 1 list (4 links) removed from 1 card: 1 card split (into 2), 0 cards stayed "
                           "one card, 0 cards named only by this kiosk are no card now; 2 tokens no other kiosk listed "
                           "left their cards\n")
    shown = out + out2
    for t in card_a | card_b | set(rogue):  # staff see tokens shortened, never whole (docs/privacy.md)
        assert t not in shown
    assert pools.short(min(card_a | card_b)) in out

    assert set(cards(eng).values()) == {card_a, card_b}  # the stolen kiosk's own tokens are in no card
    assert_cards_are_the_lists_components(eng)
    with eng.connect() as conn:  # allotments are untouched: per token and kiosk, as they were handed
        held = {(d, k): p for d, k, p in conn.execute(select(point_allotments.c.donor, point_allotments.c.kiosk_id,
                                                             point_allotments.c.points))}
    assert held == {(ta.hex, "center-1f"): 130, (tb.hex, "city-hall"): 30}
    # A counts its own 120 points again: the center gives back the 10 of B's it still holds unspent (all of them
    # when it spent 5; 2 when it spent 128 of the 130, which A's balance now owes: 120 - 128).
    if spent == 5:
        assert _ask(h, uh, ta) == {"allotted": 120, "balance": 115, "here": 115}
    else:
        assert _ask(h, uh, ta) == {"allotted": 128, "balance": -8, "here": 0}
    assert _ask(j, uj, tb) == {"allotted": 40, "balance": 40, "here": 40}  # B's 10 new points are B's again
    if spent == 128:  # A's next 10 points fill its shortfall of 8 first; the center is handed the other 2
        h.donate(1, card=A, amounts=(1000,))
        assert uh.sync_once().ok
        assert _ask(h, uh, ta) == {"allotted": 130, "balance": 2, "here": 2}
    # Nothing is left to undo, and asking again is harmless.
    assert _cli(capsys, "cards", "unlink", "--db", url, "--kiosk", "rogue-1")[1] == \
        "rogue-1: no card links kept; nothing to undo\n"
    assert _cli(capsys, "cards", "links", "--db", url, "--kiosk", "rogue-1")[1] == \
        "rogue-1: no card links kept (its asks have listed no card's tokens)\n"


def test_unlink_keeps_what_other_kiosks_listed(portal, three, capsys):
    """A card falls apart into what the other kiosks' lists join; a token only the undone kiosk listed leaves its
    card; a card only it named is no card; the tokens it listed first are then first listed by the next kiosk.
    Undoing a kiosk whose key is not revoked says that its next ask links again, and it does."""
    eng, url = portal.app.state.engine, portal.db_url
    h, j, r = KIOSKS
    asks = [(h, ["a1", "a2"]), (j, ["a2", "a3"]), (r, ["a3", "b1"]), (r, ["b1", "b2"]), (j, ["b2", "b3"]),
            (r, ["f9"]), (h, ["c1"]), (r, ["c1", "c2"]), (r, ["a3", "b1", "b2"])]
    for kid, names in asks:
        pools.allot(eng, kid, [tok(n) for n in names])
    T = {n: tok(n) for n in ("a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "f9")}
    assert cards(eng) == {T["a1"]: frozenset(T[n] for n in ("a1", "a2", "a3", "b1", "b2", "b3")),
                          T["f9"]: frozenset([T["f9"]]), T["c1"]: frozenset([T["c1"], T["c2"]])}
    # The rogue's two lists with the lowest token a3 are one list (joined through a3 anyway).
    assert lists(eng)[(r, T["a3"])] == {T["a3"], T["b1"], T["b2"]}
    assert_cards_are_the_lists_components(eng)

    preview = pools.kiosk_links(eng, r)
    assert (preview["lists"], preview["links"]) == (4, 8)
    assert [(c["card"], c["tokens"], c["after"], c["dropped"]) for c in preview["cards"]] == [
        (pools.short(T["a1"]), 6, [3, 2], 1), (pools.short(T["c1"]), 2, [1], 1), (pools.short(T["f9"]), 1, [], 1)]
    done = pools.unlink(eng, r)
    assert done == {"lists": 4, "links": 8, "cards": 3, "split": 1, "into": 2, "gone": 1, "dropped": 3, "left": 0}
    assert cards(eng) == {T["a1"]: frozenset(T[n] for n in ("a1", "a2", "a3")),
                          T["b2"]: frozenset([T["b2"], T["b3"]]), T["c1"]: frozenset([T["c1"]])}
    assert_cards_are_the_lists_components(eng)
    with eng.connect() as conn:
        first = {t: k for t, k in conn.execute(select(card_tokens.c.token, card_tokens.c.kiosk_id))}
    assert first == {T["a1"]: h, T["a2"]: h, T["a3"]: j, T["b2"]: j, T["b3"]: j, T["c1"]: h}  # b2: j, not the rogue

    # City hall's key is not revoked: undoing it works, and says its next ask links its lists again.
    code, out, err = _cli(capsys, "cards", "unlink", "--db", url, "--kiosk", j)
    assert code == 0 and out.startswith(f"{j}: 2 lists (4 links) removed from 2 cards: 0 cards split (into 0), "
                                        "1 card stayed one card, 1 card named only by this kiosk is no card now; "
                                        "3 tokens no other kiosk listed left their cards\n")
    assert err.startswith(f"kiosk-portal cards unlink: {j}'s key is not revoked: its next ask for a card links that "
                          "card again; revoke it first")
    assert cards(eng) == {T["a1"]: frozenset([T["a1"], T["a2"]]), T["c1"]: frozenset([T["c1"]])}
    pools.allot(eng, j, [T["a2"], T["a3"]])
    assert cards(eng)[T["a1"]] == {T["a1"], T["a2"], T["a3"]}
    assert_cards_are_the_lists_components(eng)


@pytest.fixture
def server_on_utc(monkeypatch):
    """The portal's process in UTC, as a server in a data centre runs: ``--since`` and the times printed are Japan
    time all the same (a local zone of Asia/Tokyo would hide a mix-up)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_an_undo_since_the_theft_keeps_what_the_kiosk_linked_before(portal, three, capsys, server_on_utc):
    """A kiosk listed a card's city token with its own token for a year, honestly, before its key was stolen; the
    thief then listed that card with another. ``--since`` the theft undoes only the rows kept from then on (the
    lists kept before are the asks made before: a row is kept by the first ask that named it), so the card keeps
    the kiosk's own token and the thief's merge is undone."""
    eng, url = portal.app.state.engine, portal.db_url
    _, j, r = KIOSKS
    T = {n: tok(n) for n in ("a1", "b1", "b2", "e1", "e9")}
    pools.allot(eng, r, [T["a1"], T["e1"]])  # its own epoch's token e1 of card a1
    pools.allot(eng, j, [T["b1"], T["b2"]])
    with eng.connect() as conn:
        since = conn.execute(select(func.max(card_links.c.created_ms))).scalar_one() + 1
    while time.time_ns() // 1_000_000 < since:
        time.sleep(0.001)
    pools.allot(eng, r, [T["a1"], T["b1"], T["e9"]])  # the thief: one list with the same lowest token a1
    assert lists(eng)[(r, T["a1"])] == {T["a1"], T["e1"], T["b1"], T["e9"]}
    japan = dt.datetime.fromtimestamp(since / 1000, ZoneInfo("Asia/Tokyo"))
    when = japan.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")  # as staff type it: Japan time
    assert _cli(capsys, "cards", "unlink", "--db", url, "--kiosk", r, "--since", "yesterday") == (
        2, "", "kiosk-portal cards unlink: --since: not a date and time like 2026-12-06 or '2026-12-06 14:30' "
               "(Japan time)\n")
    code, out, _ = _cli(capsys, "cards", "links", "--db", url, "--kiosk", r, "--since",
                        japan.astimezone(dt.UTC).isoformat())  # its own offset: taken as it says
    assert code == 0 and ": 1 list (2 links) in 1 card;" in out
    code, out, _ = _cli(capsys, "cards", "links", "--db", url, "--kiosk", r, "--since", when)
    assert code == 0 and ": 1 list (2 links) in 1 card;" in out
    assert "split it into 2 cards of 2, 2 tokens, and 1 token no other kiosk listed would leave it" in out
    code, out, err = _cli(capsys, "cards", "unlink", "--db", url, "--kiosk", r, "--since", when)
    assert code == 0 and out.startswith(f"{r} (since {when[:16]}): 1 list (2 links) removed from 1 card: 1 card split")
    assert "is not revoked" in err
    assert set(cards(eng).values()) == {frozenset([T["a1"], T["e1"]]), frozenset([T["b1"], T["b2"]])}
    assert lists(eng)[(r, T["a1"])] == {T["a1"], T["e1"]}
    assert_cards_are_the_lists_components(eng)
    assert pools.unlink(eng, r, since)["cards"] == 0  # nothing kept since then any more


def test_an_unknown_kiosk_is_refused_with_one_line(portal, capsys):
    eng, url = portal.app.state.engine, portal.db_url
    with pytest.raises(pools.UnknownKiosk):
        pools.unlink(eng, "nobody")
    for action in ("links", "unlink"):
        assert _cli(capsys, "cards", action, "--db", url, "--kiosk", "nobody") == (
            1, "", f"kiosk-portal cards {action}: no kiosk 'nobody' is enrolled\n")
    with pytest.raises(SystemExit) as bad:  # --kiosk is required
        portal_main(["cards", "unlink", "--db", url])
    assert bad.value.code == 2
    assert "--kiosk" in capsys.readouterr().err


def test_links_an_older_portal_made_are_kept_as_each_tokens_first_lister_linking_it_to_its_card(portal, three):
    """A portal from before the lists were kept has portal_card_tokens only: the card and the first kiosk to list
    each token. At start the portal keeps each such token as a list of its first lister, with the card's key; a
    merge made then cannot be told apart, so undoing the kiosk that made it undoes only the tokens it listed first.
    A token an older process of a rolling upgrade links later is kept the same way, by the undo itself."""
    eng = portal.app.state.engine
    h, j, r = KIOSKS
    for kid, names in [(h, ["a1", "a2"]), (r, ["a2", "e1"]), (j, ["c1", "c2"]), (r, ["a1", "c1"])]:
        pools.allot(eng, kid, [tok(n) for n in names])
    T = {n: tok(n) for n in ("a1", "a2", "c1", "c2", "e1", "e2", "e3")}
    before = cards(eng)
    assert before == {T["a1"]: frozenset(T[n] for n in ("a1", "a2", "c1", "c2", "e1"))}
    with eng.begin() as conn:  # the older portal had no such table
        card_links.drop(conn)
    create_schema(eng)
    assert cards(eng) == before
    assert lists(eng) == {(h, T["a1"]): {T["a1"], T["a2"]}, (r, T["a1"]): {T["a1"], T["e1"]},
                          (j, T["a1"]): {T["a1"], T["c1"], T["c2"]}}
    assert_cards_are_the_lists_components(eng)
    create_schema(eng)  # the next start finds nothing to fill
    assert len([1 for v in lists(eng).values() for _ in v]) == 7
    # An older process links e2 to the card meanwhile (its first lister: the rogue), without a list; and a start's
    # fill raced an undo that dropped e3, leaving a row of the rogue's for a token in no card.
    with eng.begin() as conn:
        conn.execute(card_tokens.insert().values(token=T["e2"], card=T["a1"], kiosk_id=r, created_ms=1))
        conn.execute(card_links.insert().values(kiosk_id=r, list_key=T["e3"], token=T["e3"], created_ms=1))
    assert pools.kiosk_links(eng, r)["cards"][0]["after"] == [4]
    done = pools.unlink(eng, r)
    assert (done["dropped"], done["links"]) == (2, 4)  # e1 and e2 (and the row of e3); the merge of a and c stays
    assert cards(eng) == {T["a1"]: frozenset(T[n] for n in ("a1", "a2", "c1", "c2"))}
    assert r not in {k for k, _ in lists(eng)}
    assert_cards_are_the_lists_components(eng)


# --- the card's lock --------------------------------------------------------------------------------------------
class Pause:
    """Holds one thread's transaction at the first statement containing ``fragment`` until released: the point
    where it holds the card's lock (a real statement of the real code; nothing is replaced)."""

    def __init__(self, eng: Engine, fragment: str) -> None:
        self.fragment, self.thread = fragment, None
        self.reached, self.release = threading.Event(), threading.Event()
        event.listen(eng, "before_cursor_execute", self._hook)

    def _hook(self, _conn, _cur, statement, _params, _ctx, _many) -> None:  # noqa: ANN001
        if threading.current_thread() is self.thread and self.fragment in statement and not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(60)


class Run(threading.Thread):
    def __init__(self, fn: Callable[[], Any], pause: Pause | None = None) -> None:
        super().__init__(daemon=True)
        self.fn, self.pause, self.result, self.error = fn, pause, None, None

    def run(self) -> None:
        if self.pause:
            self.pause.thread = self
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def wait_blocked(eng: Engine, t: Run) -> None:
    """``t`` is waiting for the card's lock: on PostgreSQL a session waits for an advisory lock; on SQLite, whose
    one writer is the lock, it is still running a moment later."""
    deadline = time.monotonic() + 20
    if eng.dialect.name == "postgresql":
        q = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
        while True:
            with eng.connect() as conn:
                if conn.execute(q).scalar_one():
                    break
            assert time.monotonic() < deadline, "it never waited for the card's lock"
            time.sleep(0.02)
    else:
        time.sleep(0.5)
    assert t.is_alive() and t.result is None and t.error is None


@pytest.fixture
def merged(portal, three):  # noqa: ANN001
    """Cards A (100 points, the center's) and B (30, city hall's), each asked for, merged by the stolen kiosk's ask
    before their points reached the portal; then the points arrive. Nothing of them is handed out yet."""
    (h, j, _), (uh, uj, _) = three
    eng = portal.app.state.engine
    h.donate(10, card=A, amounts=(1000,))
    j.donate(3, card=B, amounts=(1000,))
    ta, tb = h.pepper.card_token(fake_idm(A)), j.pepper.card_token(fake_idm(B))
    assert pools.allot(eng, "center-1f", hexes_of(ta))["allotted"] == 0
    assert pools.allot(eng, "city-hall", hexes_of(tb))["allotted"] == 0
    assert pools.allot(eng, "rogue-1", [ta.hex, tb.hex]) == {"allotted": 0, "balance": 0}
    assert len(cards(eng)) == 1
    assert uh.sync_once().ok and uj.sync_once().ok
    return eng, ta, tb


def test_an_undo_waits_for_an_ask_that_holds_the_card(merged):
    """An ask for B holds the merged card (its lock taken, its points being counted): the undo waits for it, then
    splits the card; city hall, handed the merged card's 130 by that ask, gives back A's 100 at its next ask."""
    eng, ta, tb = merged
    pause = Pause(eng, "FROM portal_point_allotments")
    ask = Run(lambda: pools.allot(eng, "city-hall", hexes_of(tb)), pause)
    ask.start()
    assert pause.reached.wait(20)
    undo = Run(lambda: pools.unlink(eng, "rogue-1"))
    undo.start()
    try:
        wait_blocked(eng, undo)
    finally:
        pause.release.set()
    ask.join(30)
    undo.join(30)
    assert ask.error is None and undo.error is None
    assert ask.result == {"allotted": 130, "balance": 130}  # it counted the merged card: it held it first
    assert undo.result["split"] == 1
    assert set(cards(eng).values()) == {frozenset(hexes_of(ta)), frozenset(hexes_of(tb))}
    assert pools.allot(eng, "city-hall", hexes_of(tb)) == {"allotted": 30, "balance": 30}  # 100 given back
    assert pools.allot(eng, "center-1f", hexes_of(ta)) == {"allotted": 100, "balance": 100}


def test_an_ask_waits_for_the_undo_and_counts_the_card_it_left(merged):
    """The undo holds the merged card (about to delete the stolen kiosk's lists): an ask for B waits for it, then
    finds B a card of its own and is handed B's 30 points, not the merged card's 130."""
    eng, ta, tb = merged
    pause = Pause(eng, "DELETE FROM portal_card_links")
    undo = Run(lambda: pools.unlink(eng, "rogue-1"), pause)
    undo.start()
    assert pause.reached.wait(20)
    ask = Run(lambda: pools.allot(eng, "city-hall", hexes_of(tb)))
    ask.start()
    try:
        wait_blocked(eng, ask)
    finally:
        pause.release.set()
    undo.join(30)
    ask.join(30)
    assert ask.error is None and undo.error is None
    assert ask.result == {"allotted": 30, "balance": 30}
    assert pools.allot(eng, "center-1f", hexes_of(ta)) == {"allotted": 100, "balance": 100}
    assert_cards_are_the_lists_components(eng)


def test_many_asks_during_an_undo_leave_the_cards_the_lists_make(pg_db_url, tmp_path):
    """PostgreSQL: two kiosks ask for forty cards over and over while the stolen kiosk's links between them are
    undone; every card ends as its kiosks' lists make it, and the tables agree."""
    handle = start_portal(pg_db_url)
    eng = handle.app.state.engine
    rigs = [make_rig(tmp_path, k) for k in KIOSKS]
    ups = [enrolled(r, handle) for r in rigs]
    try:
        # Forty cards of the center's (A) and forty of city hall's (B), two tokens each; the stolen kiosk links
        # each A to a B, with a token of its own.
        own = {("a", i): [tok(f"{i:02x}a1"), tok(f"{i:02x}a2")] for i in range(40)} | {
            ("b", i): [tok(f"{i:02x}b1"), tok(f"{i:02x}b2")] for i in range(40)}
        kid = {"a": KIOSKS[0], "b": KIOSKS[1]}
        for (side, _), ts in own.items():
            pools.allot(eng, kid[side], ts)
        for i in range(40):
            pools.allot(eng, KIOSKS[2], [own[("a", i)][1], own[("b", i)][0], tok(f"{i:02x}e")])
        assert len(cards(eng)) == 40
        stop = threading.Event()

        def asking(which: list[tuple[str, int]]) -> int:
            n = 0
            while not stop.is_set() or n < len(which):
                side, i = which[n % len(which)]
                pools.allot(eng, kid[side], own[(side, i)])
                n += 1
            return n

        askers = [Run(lambda: asking([("a", i) for i in range(40)])),
                  Run(lambda: asking([("b", i) for i in reversed(range(40))]))]
        for t in askers:
            t.start()
        done = pools.unlink(eng, KIOSKS[2])
        stop.set()
        for t in askers:
            t.join(60)
            assert t.error is None and t.result
        assert done == {"lists": 40, "links": 120, "cards": 40, "split": 40, "into": 80, "gone": 0, "dropped": 40,
                        "left": 0}
        assert set(cards(eng).values()) == {frozenset(ts) for ts in own.values()}
        assert_cards_are_the_lists_components(eng)
    finally:
        for up in ups:
            up.close()
        for r in rigs:
            r.ledger.close(checkpoint=False)
        handle.stop()


# --- cards are the components of the lists that remain ---------------------------------------------------------
TOKENS = [tok(f"{i:x}") for i in range(1, 9)]
OPS = st.lists(st.one_of(
    st.tuples(st.just("ask"), st.sampled_from(KIOSKS), st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4)),
    st.tuples(st.just("ask"), st.sampled_from(KIOSKS), st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4)),
    st.tuples(st.just("unlink"), st.sampled_from(KIOSKS), st.none() | st.integers(0, 20))), max_size=14)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_cards_are_always_the_components_of_the_lists_that_remain(portal, three, ops):
    """Drawn asks by three kiosks over eight tokens, and undos of a kiosk's links (all of them, or since one of the
    asks before): after each, the cards are exactly the connected components of the asks not undone, and each
    token's first lister is the kiosk of the earliest of them that names it (a model that knows nothing of list
    names, keys or the tables). Each ask is made in a millisecond of its own, so that --since can fall between."""
    eng = portal.app.state.engine
    with eng.begin() as conn:
        for t in (card_links, card_tokens, point_allotments):
            conn.execute(t.delete())
    model: list[tuple[int, str, frozenset[str]]] = []  # (when, kiosk, tokens) of each ask not undone
    marks: list[int] = []  # when each ask was made
    end = 0
    for op, kid, arg in ops:
        if op == "ask":
            while _now_ms() <= end:
                time.sleep(0.0005)
            when = _now_ms()
            pools.allot(eng, kid, arg)
            end = _now_ms()
            marks.append(when)
            model.append((when, kid, frozenset(arg)))
        else:
            since = marks[arg % len(marks)] if arg is not None and marks else 0
            pools.unlink(eng, kid, since)
            model = [(w, k, m) for w, k, m in model if not (k == kid and w >= since)]
        assert set(cards(eng).values()) == components([m for _, _, m in model])
        assert_cards_are_the_lists_components(eng)
        with eng.connect() as conn:
            first = {t: k for t, k in conn.execute(select(card_tokens.c.token, card_tokens.c.kiosk_id))}
        assert first == {t: min((w, k) for w, k, m in model if t in m)[1] for t in first}
