"""A kiosk's signing keys at the portal: revoking a key from a seq on, and re-keying (docs/sync.md,
"Revoking a key" and "Re-keying").

The ledger itself names its keys: the genesis entry's, then each ``key_change`` entry's (kiosk/ledger,
docs/ledger.md "Re-keying"). The portal keeps what only it can say in ``portal_key_events``:

- ``revoke``: entries at or after ``seq`` signed by the key ``key_id`` are refused (403 ``key_revoked``),
  and any the portal already holds are quarantined (counted nowhere);
- ``admin``: an administrator announced ``public_key`` from ``seq`` on, for a kiosk whose key in force
  was lost; the entry at ``seq`` must be that key's own ``key_change`` (the verifier is told to trust it);
- ``ledger``: the portal took a ``key_change`` entry signed by the previous key (a record for staff;
  the chain itself is the proof);
- ``enroll``: the kiosk enrolled ``public_key`` (seq 1: the key its genesis entry must name). Until the
  portal holds the genesis entry this is the only record of it once an announcement replaced the request
  key (a kiosk that lost its key before its first sync). Not shown to staff: it changes no key.

``portal_kiosks.public_key`` is the key the kiosk signs its *requests* with: the enrolled key, then the
newest one a key_change entry or an administrator announced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from kiosk.ledger.encoding import parse_body
from kiosk.ledger.keys import key_id, public_from_raw
from server_sync import policy, totals
from server_sync.db import entries, key_events, kiosks, lock_kiosk, writing
from server_sync.i18n import N_

REVOKED = "revoked: "  # the quarantine reason of a held entry signed by a revoked key starts with this


class KeyEventError(ValueError):
    """A revocation or announcement that cannot be recorded. ``str()`` is English, for ``kiosk-portal``; ``code``
    names the refusal (``from_seq_too_low``, ``no_kiosk``, ``bad_public_key``, ``from_seq_held``, ``same_key``),
    which the staff page words in the administrator's language (:func:`install`)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class KioskKeys:
    """What ingest needs to know about a kiosk's keys, read once per batch."""

    trusted: dict[int, bytes] = field(default_factory=dict)  # seq -> raw key an administrator announced
    revoked: list[tuple[int, str]] = field(default_factory=list)  # (from seq, key id)
    known: list[bytes] = field(default_factory=list)  # every key the portal has heard of, raw
    enrolled: bytes | None = None  # the newest enrolment's key (None: enrolled before 2026-12-06, not recorded)

    def genesis_key(self, request_key: bytes) -> bytes:
        """The key a kiosk's genesis entry must name: the enrolled one, which an administrator's announcement
        (the key lost before the first sync) replaces as the request key; the request key for a kiosk enrolled
        before enrolments were recorded."""
        return self.enrolled or request_key

    def revoked_at(self, seq: int, kid: str) -> int | None:
        """The revocation's first seq if the entry ``seq`` signed by key ``kid`` is revoked, else None."""
        for start, k in self.revoked:
            if seq >= start and k == kid:
                return start
        return None


def _now() -> int:
    return time.time_ns() // 1_000_000


# Built once with a bound parameter: every batch reads it, and building a statement costs more than running it.
_EVENTS = (select(key_events.c.kind, key_events.c.seq, key_events.c.public_key, key_events.c.key_id)
           .where(key_events.c.kiosk_id == bindparam("kid")).order_by(key_events.c.id))


def load(conn: Connection, kid: str, request_key: bytes) -> KioskKeys:
    out = KioskKeys(known=[request_key])
    for kind, seq, raw, k in conn.execute(_EVENTS, {"kid": kid}):
        if kind == "revoke":
            out.revoked.append((int(seq), k))
        elif raw is not None:
            if kind == "admin":
                out.trusted[int(seq)] = bytes(raw)
            elif kind == "enroll":
                out.enrolled = bytes(raw)
            if bytes(raw) not in out.known:
                out.known.append(bytes(raw))
    return out


def refuse_revoked_request_key(engine: Engine, kid: str, raw: bytes) -> None:
    """403 ``key_revoked`` when ``raw``, the key a request of ``kid``'s was signed with, is revoked for it. A revoked
    key may still send heartbeats and batches (their entries are judged by the key that signed each), but it gets
    nothing private: no my page, no city pepper, no card's points (docs/sync.md, "Revoking a key"); the thief of
    a kiosk holds its key until an administrator announces the next one."""
    with engine.connect() as conn:
        hit = conn.execute(select(key_events.c.seq).where(
            key_events.c.kiosk_id == kid, key_events.c.kind == "revoke", key_events.c.key_id == key_id(raw))).first()
    if hit is not None:
        from server_sync.errors import PortalError

        raise PortalError(403, "key_revoked", f"the key that signed this request is revoked from seq={hit[0]}: "
                          "an administrator must announce the kiosk's next key")


def chain_keys(conn: Connection, kid: str) -> list[tuple[int, str]]:
    """``[(first seq it signs, key hex)]`` as the kiosk's stored ledger names them (genesis, key_change)."""
    out: list[tuple[int, str]] = []
    rows = conn.execute(select(entries.c.seq, entries.c.body).where(
        entries.c.kiosk_id == kid, entries.c.type.in_(["genesis", "key_change"])).order_by(entries.c.seq))
    for seq, body in rows:
        data = parse_body(bytes(body))["data"]
        admin = data.get("vouched_by") == "administrator"
        out.append((int(seq) if seq == 1 or admin else int(seq) + 1, data["public_key"]))
    return out


def key_at(conn: Connection, kid: str, seq: int) -> str | None:
    """The key id that signs entry ``seq`` of ``kid`` by what the portal holds (announcements included)."""
    k = conn.execute(select(kiosks.c.public_key, kiosks.c.size).where(kiosks.c.id == kid)).first()
    if k is None:
        return None
    found = key_id(bytes(k[0]))
    announced = [(s, bytes(raw).hex()) for s, raw in conn.execute(select(key_events.c.seq, key_events.c.public_key)
                 .where(key_events.c.kiosk_id == kid, key_events.c.kind == "admin")).all()]
    chain = chain_keys(conn, kid)
    if chain:
        found = key_id(bytes.fromhex(chain[0][1]))
    for start, hexkey in sorted(chain + announced):
        if start <= seq:
            found = key_id(bytes.fromhex(hexkey))
    return found


def revoke(engine: Engine, kid: str, from_seq: int, by: str, reason: str = "") -> dict[str, Any]:
    """Revoke the key that signs ``kid``'s entry ``from_seq`` (and would sign the ones after it), from
    ``from_seq`` on. Entries the portal already holds from there on signed by it are quarantined.
    Returns ``{key_id, quarantined}``."""
    if from_seq < 2:
        raise KeyEventError("--from-seq must be 2 or more (seq 1 is the genesis entry that binds the key)",
                            "from_seq_too_low")
    with writing(engine) as conn:
        k = key_at(conn, kid, from_seq)
        if k is None:
            raise KeyEventError(f"no kiosk {kid!r}", "no_kiosk")
        lock_kiosk(conn, kid)  # as ingest does, before touching its entries
        conn.execute(key_events.insert().values(kiosk_id=kid, kind="revoke", seq=from_seq, public_key=None, key_id=k,
                                                by=by[:64], reason=reason[:200] or None, created_ms=_now()))
        why = f"{REVOKED}key {k} from seq={from_seq}"
        n = 0
        for seq, body, q in conn.execute(select(entries.c.seq, entries.c.body, entries.c.quarantine).where(
                entries.c.kiosk_id == kid, entries.c.seq >= from_seq)).all():
            if parse_body(bytes(body))["key_id"] != k or (q is not None and q != policy.HELD):
                continue
            conn.execute(update(entries).where(entries.c.kiosk_id == kid, entries.c.seq == seq)
                         .values(quarantine=why[:200]))
            n += 1
        # Voids among them act on nothing any more.
        voided = [int(r[0]) for r in conn.execute(select(entries.c.ref_seq).where(
            entries.c.kiosk_id == kid, entries.c.type == "void", entries.c.quarantine == why[:200])).all()]
        if voided:
            conn.execute(update(entries).where(entries.c.kiosk_id == kid, entries.c.seq.in_(voided))
                         .values(voided=False))
        totals.recount(conn, kid)
    return {"key_id": k, "quarantined": n}


def announce(engine: Engine, kid: str, public_key_hex: str, from_seq: int, by: str, reason: str = "") -> dict[str, Any]:
    """An administrator vouches for ``public_key_hex`` as ``kid``'s key from ``from_seq`` on (the kiosk's
    old key is lost; ``kiosk rekey --old-key-lost`` printed the key and the seq). The kiosk signs its
    requests with the new key from now on."""
    try:
        raw = bytes.fromhex(public_key_hex.strip())
        public_from_raw(raw)
    except ValueError:
        raise KeyEventError("--public-key must be 64 hex digits of a raw Ed25519 public key",
                            "bad_public_key") from None
    with writing(engine) as conn:
        k = conn.execute(select(kiosks.c.size, kiosks.c.public_key).where(kiosks.c.id == kid)).first()
        if k is None:
            raise KeyEventError(f"no kiosk {kid!r}", "no_kiosk")
        if from_seq <= k[0] or from_seq < 2:
            raise KeyEventError(f"the portal already holds {kid}'s entries through seq={k[0]}: --from-seq must be "
                                "after them (the seq `kiosk rekey --old-key-lost` printed)", "from_seq_held")
        if bytes(k[1]) == raw:
            raise KeyEventError("that key is already the kiosk's key", "same_key")
        old = key_at(conn, kid, from_seq)
        # The lost key may be in a thief's hands: nothing it signs from here on is taken (403).
        conn.execute(key_events.insert().values(kiosk_id=kid, kind="revoke", seq=from_seq, public_key=None,
                                                key_id=old, by=by[:64], reason="replaced: its holder lost it",
                                                created_ms=_now()))
        conn.execute(key_events.insert().values(kiosk_id=kid, kind="admin", seq=from_seq, public_key=raw,
                                                key_id=key_id(raw), by=by[:64], reason=reason[:200] or None,
                                                created_ms=_now()))
        conn.execute(update(kiosks).where(kiosks.c.id == kid).values(public_key=raw, key_id=key_id(raw)))
    return {"key_id": key_id(raw), "revoked_key_id": old}


def record_enrolment(conn: Connection, kid: str, raw: bytes, now_ms: int) -> None:
    """The kiosk enrolled (or, holding no entries yet, enrolled again with) key ``raw``."""
    conn.execute(key_events.insert().values(kiosk_id=kid, kind="enroll", seq=1, public_key=raw, key_id=key_id(raw),
                                            by=None, reason=None, created_ms=now_ms))


def record_ledger_change(conn: Connection, kid: str, first_seq: int, public_key_hex: str) -> None:
    """Ingest took a key_change entry signed by the previous key: requests now come signed by the new key,
    unless an administrator already announced a key from a later seq. (The kiosk re-keyed, then lost the new
    key before it synced: the announced key is the one it holds, and the one it signs its requests with.)"""
    raw = bytes.fromhex(public_key_hex)
    conn.execute(key_events.insert().values(kiosk_id=kid, kind="ledger", seq=first_seq, public_key=raw,
                                            key_id=key_id(raw), by=None, reason=None, created_ms=_now()))
    later = conn.execute(select(key_events.c.id).where(key_events.c.kiosk_id == kid, key_events.c.kind == "admin",
                                                       key_events.c.seq > first_seq).limit(1)).first()
    if later is None:
        conn.execute(update(kiosks).where(kiosks.c.id == kid).values(public_key=raw, key_id=key_id(raw)))


def history(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every kiosk's key events, oldest first, for the staff kiosks page and ``kiosk-portal kiosks``.

    ``trust`` is what an auditor passes to ``kiosk ledger verify --trust-key`` for an event an administrator announced
    (``admin``: a lost key replaced), ``SEQ:HEX`` with the key's 64 hex digits (docs/receipts.md, step 5); empty for
    the others, which the ledger itself vouches for (a re-key the previous key signed) or which add no key."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(select(key_events).where(key_events.c.kind != "enroll").order_by(key_events.c.id)).mappings():
        raw = bytes(r["public_key"] or b"")
        trust = f"{r['seq']}:{raw.hex()}" if r["kind"] == "admin" and len(raw) == 32 else ""
        out.setdefault(r["kiosk_id"], []).append({"kind": r["kind"], "seq": r["seq"], "key_id": r["key_id"],
                                                  "by": r["by"] or "", "reason": r["reason"] or "",
                                                  "created_ms": r["created_ms"], "trust": trust})
    return out


# The revocation form's field: its number as the page calls it, and the words for a number that cannot be revoked.
FROM_SEQ_MAX = 10**15
TOO_LOW = N_("Enter a record number (seq) of 2 or more. Record 1 is the kiosk's first record, which names its key: "
             "it cannot be revoked.")


def install(app: FastAPI, engine: Engine) -> None:
    """``POST /staff/kiosks/{id}/revocation`` (administrators; the form helper checks its CSRF token). A number that
    cannot be revoked comes back beside the form, with the form open and what was typed; a kiosk the portal does
    not know is the staff pages' "not found"."""
    from server_sync.operator import TO_KIOSKS, NotFound, _int

    @app.post("/staff/kiosks/{kiosk_id}/revocation", response_class=HTMLResponse, tags=["staff"])
    async def kiosks_revocation(kiosk_id: str, request: Request) -> Response:
        """Revoke the kiosk's key from a seq on: docs/sync.md, "Revoking a key"."""
        ui = request.app.state.staff_ui

        def handle(who: Any, lang: str, c: dict[str, Any], form: dict[str, list[str]]) -> Response | str:
            e: dict[str, tuple[str, dict[str, Any]]] = {}
            seq = _int(form, "from_seq", e, 2, FROM_SEQ_MAX, TOO_LOW)
            if seq is not None:
                try:
                    revoke(engine, kiosk_id, seq, who.name, f"revoked by {who.name}")
                except KeyEventError as exc:
                    if exc.code != "from_seq_too_low":
                        raise NotFound(*TO_KIOSKS) from None  # no such kiosk
                    e["from_seq"] = (TOO_LOW, {})
            if e:
                return ui.kiosks_page(who, lang, c, revoking=kiosk_id, form=form,
                                      errors={f"revoke_{kiosk_id}": e["from_seq"]})
            return ui.done("/staff/kiosks", "revoked")
        return await ui.post(request, "admin", handle)
