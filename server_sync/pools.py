"""Sponsor pools and a card's points handed to kiosks (issue #17; the design is in docs/points.md).

Two things must never go below zero while kiosks spend offline: a sponsor's pool and a card's points.
Both are handled the same way: the portal hands each kiosk a cumulative amount it may spend, and hands
out no more than exists.

- **Pools:** ``allocations[kiosk]`` (yen, cumulative, in the signed config). A kiosk spends at most its
  own allocation (kiosk/donation/exchange.py); :func:`top_up` raises allocations only from money not yet
  handed to any kiosk, so the sum of allocations never exceeds what the sponsor funded.
- **Cards:** ``portal_point_allotments`` (points, cumulative, per donor token and kiosk). When a kiosk asks
  (``POST /api/v1/kiosks/{id}/points/allot``, signed), the card's points that no kiosk holds yet move to
  that kiosk; the kiosk keeps the answer as the portal's last word and spends at most that minus what its
  own ledger has spent. Points earned since the last answer are not spendable until the portal has seen
  them and the kiosk asks again: fail closed. A refunded gift's points, if they were handed out, are taken
  back from the next kiosk that asks for the card, as far as it holds them unspent (:func:`allot`). A card is
  every token kiosks' asks have linked to it (``portal_card_tokens``), so every kiosk counts the same card;
  the lists that linked them are kept (``portal_card_links``), so that the links one kiosk made can be undone
  (:func:`unlink`, a kiosk whose key was stolen).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, text, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from server_sync import configstore
from server_sync.db import (
    UNLISTED,
    card_links,
    card_tokens,
    entries,
    fill_card_links,
    is_sqlite,
    kiosks,
    point_allotments,
    sponsor_pools,
    unlisted_card_links,
    writing,
)
from server_sync.policy import TZ
from server_sync.wire.configdoc import ConfigDocError, Pool, PushedConfig, schema_bound

_clean = entries.c.quarantine.is_(None)


def japan_today() -> dt.date:
    """Today in Japan (``policy.TZ``, the zone ingest judges a pool's period in): the day a pool's ``start``
    and ``end`` are read against, as the kiosks read
    them. The server's own date (``date.today()``) on a city's server set to UTC left a pool starting today unhanded
    to any kiosk until 09:00, and kept one that ended yesterday running until then."""
    return dt.datetime.now(TZ).date()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _row(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    d["allocations"] = json.loads(d["allocations"] or "{}")
    d["areas"] = [a for a in (d["areas"] or "").split(",") if a]
    return d


def list_pools(conn: Connection) -> list[dict[str, Any]]:
    return [_row(r) for r in conn.execute(select(sponsor_pools).order_by(sponsor_pools.c.created_ms))]


def spent_by_pool(conn: Connection) -> dict[str, dict[str, dict[str, int]]]:
    """{pool: {kiosk: {"points", "yen"}}} of every counted points_spent entry the portal holds."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for kid, pts, yen, body in conn.execute(select(entries.c.kiosk_id, entries.c.points, entries.c.amount_yen,
                                                   entries.c.body).where(entries.c.type == "points_spent", _clean)):
        pool = json.loads(bytes(body))["data"].get("pool", "")
        k = out.setdefault(pool, {}).setdefault(kid, {"points": 0, "yen": 0})
        k["points"] += int(pts or 0)
        k["yen"] += int(yen or 0)
    return out


def balances(conn: Connection) -> list[dict[str, Any]]:
    """Each pool: funded, handed to kiosks, spent (as the portal has seen it), left, and per kiosk."""
    spent = spent_by_pool(conn)
    out = []
    for p in list_pools(conn):
        per = spent.get(p["id"], {})
        used = sum(v["yen"] for v in per.values())
        handed = sum(p["allocations"].values())
        kiosks_ = [{"kiosk_id": k, "allocated_yen": a, "spent_yen": per.get(k, {}).get("yen", 0),
                    "over": per.get(k, {}).get("yen", 0) > a} for k, a in sorted(p["allocations"].items())]
        out.append({**p, "allocated_yen": handed, "spent_yen": used, "left_yen": p["funded_yen"] - used,
                    "unallocated_yen": p["funded_yen"] - handed, "kiosks": kiosks_,
                    "spent_points": sum(v["points"] for v in per.values())})
    return out


MAX_PUSHED = schema_bound(PushedConfig, "pools", "max_length")
"""The most pools one pushed config carries (configdoc.PushedConfig's own bound)."""
KEEP_ENDED_DAYS = 7
"""A pool whose last day is further back than this is no longer pushed: no kiosk may exchange into it (its
period is checked at the kiosk and the portal), and pools are never deleted, so over the years the ended ones
would fill the pushed config's :data:`MAX_PUSHED` and no pool could be published at all. Entries made under
an older config version are judged by that version's document, which still names the pool."""


class TooManyPools(ConfigDocError):
    """Saving this pool would push more than :data:`MAX_PUSHED` pools: nothing is saved. Code ``too_many_pools``
    (``max``, ``days``)."""


class PoolExists(ConfigDocError):
    """An add (``save_pool(..., new=True)``) named an ID a pool already has (perhaps one a colleague added a
    moment ago): nothing is saved, the colleague's pool is unchanged. Code ``pool_id_taken`` (``id``)."""


class PoolChanged(ConfigDocError):
    """A change (``save_pool(..., seen=N)``) made from a page that showed the pool at version ``N``, when someone
    else has changed the pool since (its ``version`` is no longer ``N``), or added it after the page was opened
    (``seen=-1``): nothing is saved, the colleague's pool and the published config are unchanged. Code
    ``pool_changed`` (``id``)."""


class NoSuchPool(ConfigDocError):
    """A change (``save_pool(..., new=False)``) named an ID no pool has: nothing is added. Code
    ``pool_not_found`` (``id``)."""


def pushed_pools(conn: Connection, today: dt.date | None = None) -> list[dict[str, Any]]:
    """The pools as the signed config carries them (configdoc.Pool): every pool but those that ended more than
    :data:`KEEP_ENDED_DAYS` before ``today``."""
    since = ((today or japan_today()) - dt.timedelta(days=KEEP_ENDED_DAYS)).isoformat()
    return [Pool(id=p["id"], sponsor=p["sponsor"], sponsor_en=p["sponsor_en"], yen_per_point=p["yen_per_point"],
                 areas=p["areas"], start=p["start"], end=p["end"], allocations=p["allocations"]
                 ).model_dump(mode="json") for p in list_pools(conn) if not p["end"] or p["end"] >= since]


def _insert_new(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a pool row unless one of its ID exists: one ``INSERT … ON CONFLICT (id) DO NOTHING``, so the
    database itself decides (never a read and then a write). True if the row was inserted."""
    ins = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(sponsor_pools)
    return bool(conn.execute(ins.values(**values).on_conflict_do_nothing(index_elements=["id"])).rowcount)


def save_pool(engine: Engine, v: dict[str, Any], new: bool | None = None, seen: int | None = None) -> None:
    """Create or change a pool (``id``, ``sponsor``, ``sponsor_en``, ``funded_yen``, ``yen_per_point``,
    ``per_kiosk_yen``, ``areas``, ``start``, ``end``), hand out allocations and publish.

    ``new``: True for an add (the pools page's "add a new pool"): a pool of that ID already there is never
    changed, :class:`PoolExists` is raised and nothing is saved; the row is inserted or refused by the database
    in one statement, so two adds of one ID at the same moment give one pool and one refusal. False for a change:
    :class:`NoSuchPool` if no pool has the ID (nothing is added). None (a form without the choice, a script): create
    or change, as before.

    ``seen``: for a change, the pool's ``version`` as the page the change was made on showed it (-1: the page did
    not show the pool at all). The pool is changed only if it is still at that version, checked in the UPDATE
    itself (``WHERE version = :seen``, which makes it one higher), never by a read before it; else
    :class:`PoolChanged` and nothing is saved. None (a script, a page of an older portal): changed whatever its
    version, as before. Every change through here makes the version one higher.

    The funded amount may not go below what is already handed to kiosks (that money may be spent offline):
    ``ConfigDocError`` code ``pool_below_handed`` (``handed``: that yen), the staff page words it from the code.
    Saved, handed out and published in one transaction under the config publishers' lock, so the version kiosks
    run carries the pools as saved: a save or publish made at the same moment waits, and keeps this pool."""
    with writing(engine) as conn:
        configstore.lock(conn)  # before writing a pool row: another publisher may be handing out allocations
        fields = {k: v[k] for k in ("sponsor", "sponsor_en", "funded_yen", "yen_per_point", "per_kiosk_yen",
                                    "start", "end")}
        fields["areas"] = ",".join(v.get("areas") or [])
        row = None if new else conn.execute(select(sponsor_pools).where(sponsor_pools.c.id == v["id"])).first()
        if new:
            if not _insert_new(conn, {"id": v["id"], "allocations": "{}", "created_ms": _now_ms(), **fields}):
                raise PoolExists(f"a pool {v['id']!r} exists already", "pool_id_taken", id=v["id"])
        elif row is None:
            if new is False:
                raise NoSuchPool(f"no pool {v['id']!r}", "pool_not_found", id=v["id"])
            conn.execute(sponsor_pools.insert().values(id=v["id"], allocations="{}", created_ms=_now_ms(), **fields))
        else:
            change = sponsor_pools.update().where(sponsor_pools.c.id == v["id"])
            if seen is not None:  # compare-and-set: a colleague's change since the page was opened matches no row
                change = change.where(sponsor_pools.c.version == seen)
            if not conn.execute(change.values(**fields, version=sponsor_pools.c.version + 1)).rowcount:
                raise PoolChanged(f"pool {v['id']!r} changed since version {seen}", "pool_changed", id=v["id"])
            handed = sum(json.loads(row._mapping["allocations"] or "{}").values())
            if v["funded_yen"] < handed:  # raised inside the transaction: the change above is not saved
                raise ConfigDocError(f"¥{handed:,} of this pool is already handed to kiosks; it cannot be "
                                     f"funded with less", "pool_below_handed", handed=handed)
        if len(pushed_pools(conn)) > MAX_PUSHED:  # raised inside the transaction: the pool is not saved
            raise TooManyPools(f"{MAX_PUSHED} pools are running or ended within {KEEP_ENDED_DAYS} days",
                               "too_many_pools", max=MAX_PUSHED, days=KEEP_ENDED_DAYS)
        _top_up_in(conn, force_publish=True)


def _active(p: dict[str, Any], today: dt.date) -> bool:
    return (not p["start"] or p["start"] <= today.isoformat()) and (not p["end"] or today.isoformat() <= p["end"])


def top_up(engine: Engine, force_publish: bool = False, today: dt.date | None = None) -> bool:
    """Raise each enrolled, unsuspended kiosk's allocation of each running pool back to ``per_kiosk_yen``
    left (as far as the portal has seen its spending), from money not handed out yet; publish when anything
    changed. Returns whether it published."""
    with writing(engine) as conn:
        return _top_up_in(conn, force_publish, today)


def _top_up_in(conn: Connection, force_publish: bool = False, today: dt.date | None = None) -> bool:
    """:func:`top_up` inside the caller's write transaction. The allocations are written and published in it
    under the config publishers' lock (taken first): the pools published are those the transaction commits, and
    a publisher at the same moment (another pool's save, a playlist, the point rules) waits and keeps them."""
    today = today or japan_today()
    configstore.lock(conn)
    changed = False
    live = [r[0] for r in conn.execute(select(kiosks.c.id).where(kiosks.c.suspended_ms.is_(None)))]
    spent = spent_by_pool(conn)
    for p in list_pools(conn):
        if not _active(p, today):
            continue
        alloc = dict(p["allocations"])
        free = p["funded_yen"] - sum(alloc.values())
        for kid in sorted(live):
            left = alloc.get(kid, 0) - spent.get(p["id"], {}).get(kid, {}).get("yen", 0)
            if left * 2 >= p["per_kiosk_yen"] or free <= 0:
                continue
            add = min(p["per_kiosk_yen"] - left, free)
            alloc[kid] = alloc.get(kid, 0) + add
            free -= add
        if alloc != p["allocations"]:
            conn.execute(sponsor_pools.update().where(sponsor_pools.c.id == p["id"])
                         .values(allocations=json.dumps(alloc, sort_keys=True)))
            changed = True
    if changed or force_publish:
        configstore.republish_everywhere_in(conn, by="pools", pools=pushed_pools(conn))
    return changed or force_publish


# --- a card's points ---------------------------------------------------------------------------------
def earned(conn: Connection, donors: list[str]) -> int:
    """Points a card has earned (counted donations not voided, grants), over every token given."""
    q = select(func.coalesce(func.sum(entries.c.points), 0)).where(
        entries.c.donor.in_(donors), _clean,
        or_(entries.c.type == "points_grant", and_(entries.c.type == "donation", entries.c.voided.is_(False))))
    return int(conn.execute(q).scalar_one())


def spent_by_kiosk(conn: Connection, donors: list[str]) -> dict[str, int]:
    """Points a card has spent (over every token given), per kiosk that spent them: quarantined entries too,
    the points left the card."""
    q = select(entries.c.kiosk_id, func.sum(entries.c.points)).where(
        entries.c.donor.in_(donors), entries.c.type == "points_spent").group_by(entries.c.kiosk_id)
    return {k: int(p or 0) for k, p in conn.execute(q)}


class KioskSuspended(Exception):
    """The asking kiosk is suspended (staff suspended it, lost or stolen; or the portal did, for signing two
    histories): it is handed no card's points and its list is not kept. Its uploads are held and counted nowhere,
    so points handed to it would leave the card for the kiosks that work and stay with it for good."""


class _Relinked(Exception):
    """A concurrent ask linked one of the listed tokens to another card (or :func:`unlink` moved or dropped it)
    between reading and locking: try again."""


def _lock_card(conn: Connection, key: str) -> None:
    """The card's lock on PostgreSQL: an advisory transaction lock on its key (asks and :func:`unlink` alike)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "allot:" + key})


def _card(conn: Connection, pg: bool, kiosk_id: str, donors: list[str]) -> list[str]:
    """Take the card's lock and record ``donors`` as its tokens; returns every token of the card (its key first).

    The card's key is the key already recorded for a listed token (the lowest, when the list links several cards:
    they merge into it), else the lowest listed token. A token's key changes only under the lock of its old key
    and a token joins a card only under the card's lock, so once the keys read are locked, and read again the
    same, the card's tokens cannot change until commit. On PostgreSQL the locks are advisory transaction locks
    taken in key order (no deadlock); on SQLite, ``writing`` already holds the one write lock.

    The list itself is kept too (``portal_card_links``, named by the kiosk and its lowest token), the evidence
    :func:`unlink` makes the cards again from when a kiosk's lists are undone."""
    def keys() -> dict[str, str]:
        return {t: c for t, c in conn.execute(select(card_tokens.c.token, card_tokens.c.card)
                                              .where(card_tokens.c.token.in_(donors)))}

    known = keys()
    cards = sorted(set(known.values())) or [min(donors)]
    if pg:
        for k in cards:
            _lock_card(conn, k)
        if keys() != known:
            raise _Relinked
    card = cards[0]
    if len(cards) > 1:  # this list links cards the portal knew apart: one card, under the lowest key
        conn.execute(card_tokens.update().where(card_tokens.c.card.in_(cards[1:])).values(card=card))
    for t in sorted(set(donors) - known.keys()):  # in token order: two asks inserting the same tokens queue
        conn.execute(card_tokens.insert().values(token=t, card=card, kiosk_id=kiosk_id, created_ms=_now_ms()))
    name = min(donors)
    kept = {r[0] for r in conn.execute(select(card_links.c.token).where(card_links.c.kiosk_id == kiosk_id,
                                                                        card_links.c.list_key == name))}
    if not kept.issuperset(donors):  # an ask the kiosk made before adds nothing
        now = _now_ms()
        conn.execute(card_links.insert(), [{"kiosk_id": kiosk_id, "list_key": name, "token": t, "created_ms": now}
                                           for t in sorted(set(donors) - kept)])
    rest = [r[0] for r in conn.execute(select(card_tokens.c.token).where(card_tokens.c.card == card))]
    return [card, *sorted(t for t in rest if t != card)]


def allot(engine: Engine, kiosk_id: str, donors: list[str], spent_here: int | None = None) -> dict[str, int]:
    """Hand ``kiosk_id`` every point of the card (``donors``: its tokens, the first the current one) that no
    kiosk holds yet, or take back from it what the card no longer has. Returns ``{"allotted": cumulative points
    this kiosk holds for the card, "balance": the card's balance as the portal knows it}``. Serialised per card,
    so two kiosks asking at once cannot both receive the same points.

    The card is every token any kiosk's ask has linked to ``donors`` (``portal_card_tokens``: each kiosk lists
    the card's token under each pepper epoch it holds, its own ones too), so every kiosk's ask about one card
    counts the same earned, held and spent points, whichever of the card's tokens it can make.

    A kiosk holds ``max(allotted, spent)`` of the card: what it was handed, or more if it spent more (an entry
    the kiosk could not have made honestly, or made before it learnt of a take-back). Its spent points are the
    larger of what the portal has seen and ``spent_here``, what the asking kiosk says its own ledger has spent
    for the card (entries not synced yet). The card's points that no kiosk holds are its earned points minus
    that, over every kiosk. When that is below zero (a gift whose points were handed out was refunded, or its
    entry is held), the asking kiosk gives back as much of the shortfall as it holds unspent, never below what
    it spent: the card's next points fill the rest of the shortfall before any are handed out again.

    A suspended kiosk is handed nothing (:class:`KioskSuspended`, nothing linked or moved)."""
    donors = list(dict.fromkeys(donors))[:16]
    for attempt in range(8):
        try:
            return _allot(engine, kiosk_id, donors, spent_here)
        except (_Relinked, IntegrityError):  # a concurrent ask or undo changed these tokens first (PostgreSQL only)
            if attempt == 7:
                raise
    raise AssertionError("unreachable")


def _allot(engine: Engine, kiosk_id: str, donors: list[str], spent_here: int | None) -> dict[str, int]:
    with writing(engine) as conn:
        if conn.execute(select(kiosks.c.suspended_ms).where(kiosks.c.id == kiosk_id)).scalar() is not None:
            raise KioskSuspended(f"kiosk {kiosk_id!r} is suspended")  # before anything is linked or moved
        tokens = _card(conn, not is_sqlite(engine), kiosk_id, donors)
        held = {(d, k): int(p) for d, k, p in conn.execute(select(
            point_allotments.c.donor, point_allotments.c.kiosk_id, point_allotments.c.points).where(
            point_allotments.c.donor.in_(tokens)))}
        by_kiosk: dict[str, int] = {}
        for (_, k), p in held.items():
            by_kiosk[k] = by_kiosk.get(k, 0) + p
        spent_by = spent_by_kiosk(conn, tokens)  # as the portal has seen it
        earned_now = earned(conn, tokens)
        balance = earned_now - sum(spent_by.values())  # the card's, from synced entries only
        # The asking kiosk's own figure may be ahead of its synced entries; it counts in this ask alone.
        spent_mine = spent_by[kiosk_id] = max(spent_by.get(kiosk_id, 0), spent_here or 0)
        free = earned_now - sum(max(by_kiosk.get(k, 0), spent_by.get(k, 0)) for k in by_kiosk.keys() | spent_by)
        mine = by_kiosk.get(kiosk_id, 0)
        if free > 0:
            # On top of what it holds: a kiosk that spent more than it was handed (spends before it was ever
            # handed any: a release before allotments, a portal put back from a backup) holds what its ledger
            # spent (``spent_here``; the portal counted it so in ``free``), else the answer less its spends
            # would give it less than ``free`` and leave the rest with nobody until its next ask.
            raise_to = max(mine, spent_here or 0) + free
            _set_allotment(conn, held, donors[0], kiosk_id, held.get((donors[0], kiosk_id), 0) + raise_to - mine)
            mine = raise_to
        elif free < 0 and mine > spent_mine:
            take = min(-free, mine - spent_mine)
            mine -= take
            # From the current token's row first, then the card's other tokens' (another pepper epoch).
            for d in sorted((d for d, k in held if k == kiosk_id), key=lambda d: (d != donors[0], d)):
                cut = min(take, held[(d, kiosk_id)])
                if cut:
                    _set_allotment(conn, held, d, kiosk_id, held[(d, kiosk_id)] - cut)
                    take -= cut
    return {"allotted": mine, "balance": balance}


def _set_allotment(conn: Connection, held: dict[tuple[str, str], int], donor: str, kiosk_id: str, points: int) -> None:
    if (donor, kiosk_id) in held:
        conn.execute(point_allotments.update().where(and_(point_allotments.c.donor == donor,
                                                          point_allotments.c.kiosk_id == kiosk_id))
                     .values(points=points, updated_ms=_now_ms()))
    else:
        conn.execute(point_allotments.insert().values(donor=donor, kiosk_id=kiosk_id, points=points,
                                                      updated_ms=_now_ms()))


# --- undoing the links one kiosk made (docs/points.md, "Undoing a kiosk's links") ----------------------------
class UnknownKiosk(ValueError):
    """No kiosk of that id is enrolled at this portal."""


def short(token: str) -> str:
    """A token as staff tools show it: its first 8 hex digits (docs/privacy.md), enough to tell cards apart."""
    return token[:8] + "…"


Link = tuple[str, str, str, int]
"""A row of ``portal_card_links``: kiosk, list key, token, created_ms."""


def _in_card(card: str) -> Any:
    return select(card_tokens.c.token).where(card_tokens.c.card == card)


def _card_links(conn: Connection, card: str) -> tuple[set[str], list[Link]]:
    """The tokens of ``card`` and the rows of every kept list that names one of them, with
    :func:`db.unlisted_card_links` for tokens an older portal linked."""
    tokens = {r[0] for r in conn.execute(_in_card(card))}
    rows: list[Link] = [(k, n, t, int(ms)) for k, n, t, ms in conn.execute(select(
        card_links.c.kiosk_id, card_links.c.list_key, card_links.c.token, card_links.c.created_ms).where(
        card_links.c.token.in_(_in_card(card))))]
    rows += [(r["kiosk_id"], r["list_key"], r["token"], r["created_ms"]) for r in unlisted_card_links(conn, card)]
    return tokens, rows


def _split(tokens: set[str], rows: list[Link]) -> tuple[list[set[str]], set[str]]:
    """The cards ``tokens`` are when joined by the lists of ``rows`` alone (their connected components, largest
    first), and the tokens no row names (in no card: fail closed, as for a token no kiosk has listed yet)."""
    lists: dict[tuple[str, str], list[str]] = {}
    for kid, name, t, _ in rows:
        if t in tokens:
            lists.setdefault((kid, name), []).append(t)
    parent: dict[str, str] = {}

    def root(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for members in lists.values():
        for t in members:
            parent.setdefault(t, t)
        for t in members[1:]:
            a, b = root(members[0]), root(t)
            if a != b:
                parent[max(a, b)] = min(a, b)
    parts: dict[str, set[str]] = {}
    for t in parent:
        parts.setdefault(root(t), set()).add(t)
    return sorted(parts.values(), key=lambda p: (-len(p), min(p))), tokens - parent.keys()


def _key(card: str, part: set[str]) -> str:
    """The key of a card an undo leaves: the old key for the part that holds it (its lock stays the card's),
    else the part's lowest token (as a new card is keyed)."""
    return card if card in part else min(part)


def _kiosk_cards(conn: Connection, kiosk_id: str, since_ms: int) -> list[str]:
    """The cards that hold a token of ``kiosk_id``'s lists kept from ``since_ms`` on, or a token it was the first
    to list then that no kept list names (an older portal's), in key order."""
    by_list = select(card_tokens.c.card).join(card_links, card_links.c.token == card_tokens.c.token).where(
        card_links.c.kiosk_id == kiosk_id, card_links.c.created_ms >= since_ms)
    unnamed = select(card_tokens.c.card).where(card_tokens.c.kiosk_id == kiosk_id,
                                               card_tokens.c.created_ms >= since_ms, UNLISTED)
    return sorted({r[0] for r in conn.execute(union(by_list, unnamed))})


def _known(conn: Connection, kiosk_id: str) -> None:
    if conn.execute(select(kiosks.c.id).where(kiosks.c.id == kiosk_id)).first() is None:
        raise UnknownKiosk(f"no kiosk {kiosk_id!r} is enrolled")


def kiosk_links(engine: Engine, kiosk_id: str, since_ms: int = 0) -> dict[str, Any]:
    """What ``kiosk_id``'s lists (those kept from ``since_ms`` on) link, card by card, and what :func:`unlink`
    would make of each card now (read only). Tokens as :func:`short` shows them. Raises :class:`UnknownKiosk`."""
    cards = []
    with engine.connect() as conn, conn.begin():
        _known(conn, kiosk_id)
        for card in _kiosk_cards(conn, kiosk_id, since_ms):
            tokens, rows = _card_links(conn, card)
            mine = [r for r in rows if r[0] == kiosk_id and r[3] >= since_ms]
            parts, dropped = _split(tokens, [r for r in rows if not (r[0] == kiosk_id and r[3] >= since_ms)])
            cards.append({"card": short(card), "tokens": len(tokens), "lists": len({r[1] for r in mine}),
                          "links": len(mine), "named": len({r[2] for r in mine}),
                          "kiosks": len({r[0] for r in rows} - {kiosk_id}),
                          "first_ms": min(r[3] for r in mine), "last_ms": max(r[3] for r in mine),
                          "after": [len(p) for p in parts], "dropped": len(dropped)})
    return {"kiosk_id": kiosk_id, "cards": cards, "lists": sum(c["lists"] for c in cards),
            "links": sum(c["links"] for c in cards)}


def unlink(engine: Engine, kiosk_id: str, since_ms: int = 0) -> dict[str, int]:
    """Undo the links ``kiosk_id``'s asks made (a kiosk whose key was stolen, say; ``since_ms``: only those kept
    from then on, the theft): delete its kept lists and make each card they were in again from the lists that
    remain, card by card, each under the card's lock as an ask takes it. A card falls apart into the connected
    components of the remaining lists (the part holding the card's key keeps it, each other part is keyed by its
    lowest token), and a token no remaining list names leaves ``portal_card_tokens``: it is in no card until a
    kiosk lists it again (fail closed).

    One card a transaction, so one lock at a time (a stolen kiosk may have linked thousands of cards; PostgreSQL's
    lock table is not that large), which needs no order: each of the kiosk's lists lies in one card, so a card's
    part of them is all of them. An ask that read the card's old key waits for the lock, reads its tokens' keys
    again and starts over (``_card``). A part's new key is a token that was no card's key, so no ask holds its lock.

    Allotments stay where they are, per token and kiosk, so each card counts its own tokens' again: a kiosk that
    was handed more of a card than the card now has gives it back at its next ask, as far as it holds it unspent
    (:func:`allot`). Returns ``{"lists", "links": rows deleted, "cards": cards undone, "split": of them, those that
    fell apart, "into": the cards those became, "gone": those no other list named a token of, "dropped": tokens
    that left their card, "left": links the kiosk made while this ran (its key is not revoked)}``. Raises
    :class:`UnknownKiosk`."""
    with engine.connect() as conn:
        _known(conn, kiosk_id)
    out = {"lists": 0, "links": 0, "cards": 0, "split": 0, "into": 0, "gone": 0, "dropped": 0, "left": 0}
    for _ in range(8):  # a kiosk that still asks may link again meanwhile: a few rounds, then say so
        with engine.connect() as conn:
            todo = _kiosk_cards(conn, kiosk_id, since_ms)
        if not todo:
            break
        for card in todo:
            for attempt in range(8):
                try:
                    got = _unlink_card(engine, kiosk_id, since_ms, card)
                    break
                except IntegrityError:  # another process kept the card's unlisted links a moment ago (db.py)
                    if attempt == 7:
                        raise
            for k, v in got.items():
                out[k] += v
    mine = and_(card_links.c.kiosk_id == kiosk_id, card_links.c.created_ms >= since_ms)
    with writing(engine) as conn:  # its rows naming a token in no card (none, unless a start's fill raced an undo)
        out["links"] += conn.execute(card_links.delete().where(mine, ~select(card_tokens.c.token).where(
            card_tokens.c.token == card_links.c.token).correlate(card_links).exists())).rowcount
        out["left"] = int(conn.execute(select(func.count()).select_from(card_links).where(mine)).scalar_one())
    return out


def _unlink_card(engine: Engine, kiosk_id: str, since_ms: int, card: str) -> dict[str, int]:
    with writing(engine) as conn:
        if not is_sqlite(engine):
            _lock_card(conn, card)  # then nothing joins or leaves the card until commit (see _card)
        fill_card_links(conn, card)  # an older portal's links of the card, kept as lists before any is undone
        tokens, rows = _card_links(conn, card)
        mine = [r for r in rows if r[0] == kiosk_id and r[3] >= since_ms]
        if not tokens or not mine:  # merged into another card since it was read: that card is undone in turn
            return {}
        rest = [r for r in rows if not (r[0] == kiosk_id and r[3] >= since_ms)]
        parts, dropped = _split(tokens, rest)
        owned = [r[0] for r in conn.execute(_in_card(card).where(card_tokens.c.kiosk_id == kiosk_id))]
        links = conn.execute(card_links.delete().where(card_links.c.kiosk_id == kiosk_id,
                                                       card_links.c.created_ms >= since_ms,
                                                       card_links.c.token.in_(_in_card(card)))).rowcount
        moves = [{"t": t, "k": _key(card, p)} for p in parts if _key(card, p) != card for t in sorted(p)]
        if moves:
            conn.execute(update(card_tokens).where(card_tokens.c.token == bindparam("t")).values(card=bindparam("k")),
                         moves)
        if dropped:
            conn.execute(card_tokens.delete().where(card_tokens.c.token == bindparam("t")),
                         [{"t": t} for t in sorted(dropped)])
        # The tokens it listed first are now first listed by the earliest of the lists that remain.
        firsts: dict[str, tuple[int, str]] = {}
        for kid, _, t, ms in rest:
            firsts[t] = min(firsts.get(t, (ms, kid)), (ms, kid))
        renamed = [{"t": t, "kid": firsts[t][1]} for t in sorted(owned)
                   if t not in dropped and firsts[t][1] != kiosk_id]
        if renamed:
            conn.execute(update(card_tokens).where(card_tokens.c.token == bindparam("t")).values(
                kiosk_id=bindparam("kid")), renamed)
    return {"lists": len({r[1] for r in mine}), "links": links, "cards": 1, "split": int(len(parts) > 1),
            "into": len(parts) if len(parts) > 1 else 0, "gone": int(not parts), "dropped": len(dropped)}


def sponsor_totals(conn: Connection) -> dict[str, Any]:
    """Sponsor money given to projects through points, apart from cash: total, per project, per pool."""
    per_project: dict[str, int] = {}
    per_pool: dict[str, int] = {}
    points = 0
    for pts, yen, project, body in conn.execute(select(entries.c.points, entries.c.amount_yen, entries.c.project,
                                                       entries.c.body).where(entries.c.type == "points_spent",
                                                                             _clean)):
        pool = json.loads(bytes(body))["data"].get("pool", "")
        per_project[project] = per_project.get(project, 0) + int(yen)
        per_pool[pool] = per_pool.get(pool, 0) + int(yen)
        points += int(pts)
    return {"total_yen": sum(per_project.values()), "points": points, "projects": per_project, "pools": per_pool}


def project_sponsors(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    """The sponsor money a project received through points, per pool: ``[{pool, sponsor, sponsor_en, yen}]``
    (the project page: "¥3,000 of this came from points matched by …")."""
    per: dict[str, int] = {}
    for yen, body in conn.execute(select(entries.c.amount_yen, entries.c.body).where(
            entries.c.type == "points_spent", entries.c.project == project_id, _clean)):
        pool = json.loads(bytes(body))["data"].get("pool", "")
        per[pool] = per.get(pool, 0) + int(yen or 0)
    names = {r[0]: (r[1], r[2]) for r in conn.execute(select(sponsor_pools.c.id, sponsor_pools.c.sponsor,
                                                             sponsor_pools.c.sponsor_en))}
    return [{"pool": p, "sponsor": names.get(p, (p, ""))[0], "sponsor_en": names.get(p, (p, ""))[1], "yen": y}
            for p, y in sorted(per.items())]


def sponsor_names(conn: Connection) -> dict[str, tuple[str, str]]:
    """Pool id → (sponsor, sponsor in English)."""
    return {r[0]: (r[1], r[2]) for r in conn.execute(select(sponsor_pools.c.id, sponsor_pools.c.sponsor,
                                                            sponsor_pools.c.sponsor_en))}


def month_sponsor(engine: Engine, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Sponsor money through points from ``first`` to ``last`` (days in Japan, ``policy.TZ``, never the server's
    own time zone), per pool and project, for
    reconciliation: it is never cash, so it stands apart from the kiosks' cash and the provider's file."""
    lo = int(dt.datetime.combine(first, dt.time(), tzinfo=TZ).timestamp() * 1000)
    hi = int(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=TZ).timestamp() * 1000)
    rows: dict[tuple[str, str], dict[str, int]] = {}
    with engine.connect() as conn:
        names = sponsor_names(conn)
        for pts, yen, project, body in conn.execute(select(
                entries.c.points, entries.c.amount_yen, entries.c.project, entries.c.body).where(
                entries.c.type == "points_spent", _clean, entries.c.time_ms >= lo, entries.c.time_ms < hi)):
            pool = json.loads(bytes(body))["data"].get("pool", "")
            r = rows.setdefault((pool, project or ""), {"points": 0, "yen": 0})
            r["points"] += int(pts or 0)
            r["yen"] += int(yen or 0)
    out = [{"pool": p, "sponsor": names.get(p, (p, ""))[0], "sponsor_en": names.get(p, (p, ""))[1], "project": pr, **v}
           for (p, pr), v in sorted(rows.items())]
    return {"total_yen": sum(r["yen"] for r in out), "rows": out}
