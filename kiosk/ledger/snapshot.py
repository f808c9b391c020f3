"""A ledger's replayed state as bytes, so that opening a long ledger need not replay every entry. Pure.

``Ledger.open`` rebuilds a :class:`~kiosk.ledger.state.LedgerState` (totals, open intents, idempotency
keys, the Merkle range, the keys in force) by replaying the whole file: ≈ 15 µs an entry, and the lobby
screen is dark that long after every restart (docs/ledger.md, "Opening a ledger"). The writer therefore
keeps a *state snapshot* in the ledger file: this module's :func:`encode` of the state at some size, signed
by the key in force. Opening decodes it and replays only the entries after it.

Data, not ``pickle``: whoever holds the disk can write the file, and decoding must never run their code.
Every field of the state is here, so the state opened from a snapshot is the state a full replay gives,
field for field (tests/ledger/test_snapshot.py holds them to that).

The signature is over :func:`message` (a domain tag and the blob's SHA-256), never over 32 bare bytes, so
a snapshot's signature can never be passed off as an entry's (entries sign their 32-byte hash).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable
from typing import Any

from kiosk.ledger.idemmap import IdemMap
from kiosk.ledger.merkle import CompactRange
from kiosk.ledger.seqmap import DonationMap, SeqMap
from kiosk.ledger.state import LedgerState

_loads: Callable[[bytes], Any]
try:  # the kiosk extra: ≈ 3 times as fast as the standard library on a long ledger's snapshot
    from msgspec.json import decode as _msgspec_decode

    _loads = _msgspec_decode
except ImportError:  # a base install: the same objects, from json
    _loads = json.loads

FORMAT = 1
"""Bumped whenever the encoding changes; a snapshot of another format is ignored (the file is replayed)."""

_TAG = b"kiosk ledger state snapshot v1\n"


class SnapshotError(ValueError):
    """A snapshot that cannot be decoded into a state (the ledger is then replayed from its first entry)."""


def message(blob: bytes) -> bytes:
    """What the key in force signs for the snapshot ``blob``."""
    return _TAG + hashlib.sha256(blob).digest()


def encode(st: LedgerState) -> bytes:
    """Every field of ``st`` as compact JSON, keys sorted: the same state gives the same bytes whether its
    dicts were built by the writer (keys in the order it wrote them) or parsed from entries (canonical order),
    so ``kiosk ledger verify`` can compare a snapshot with a replay byte for byte."""
    doc = {
        "size": st.size, "tip": st.tip.hex(), "boot": st.boot,
        "tree": [st.tree.size, [h.hex() for h in st.tree.stack]],
        "sigs": st.sigs.hex() if st.sigs is not None else None,
        "project_totals": st.project_totals, "kiosk_total": st.kiosk_total,
        "intents": list(st.intents.values()),  # each intent carries its own "seq"
        "idem": st.idem.as_dict(),
        # The maps that grow by one pair per gift go as columns: a few long lists to parse, not one small
        # list per gift (allocations are what decoding a long ledger's snapshot costs).
        "resolution": [st.resolution.keys_list(), st.resolution.values_list()],
        "donations": list(st.donations.columns()),
        "voided": sorted(st.voided),
        "cp": [st.cp_size, st.cp_note, st.cp_root.hex() if st.cp_root is not None else None, st.cp_mono],
        "genesis": st.genesis, "kiosk_id": st.kiosk_id, "key_id": st.key_id, "public_key": st.public_key,
        "key_changes": st.key_changes,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("ascii")


def decode(blob: bytes) -> LedgerState:
    """The state :func:`encode` made ``blob`` from; :class:`SnapshotError` if it is not one."""
    try:
        doc = _loads(blob)
        if not isinstance(doc, dict):
            raise TypeError("not a JSON object")
        st = LedgerState()
        st.size, st.boot = _count(doc["size"]), _count(doc["boot"])
        st.tip = _hash(doc["tip"])
        tree_size, stack = doc["tree"]
        st.tree = CompactRange.restore(tree_size, [_hash(h) for h in stack])
        if st.tree.size != st.size:
            raise ValueError(f"Merkle range of {st.tree.size} leaves for {st.size} entries")
        st.sigs = None if doc["sigs"] is None else _hash(doc["sigs"])
        st.project_totals = {_str(p): [_int(t[0]), _count(t[1])] for p, t in _dict(doc["project_totals"]).items()}
        yen, count = doc["kiosk_total"]
        st.kiosk_total = [_int(yen), _count(count)]
        st.intents = {_count(i["seq"]): _dict(i) for i in doc["intents"]}
        # The three maps that grow with the ledger (one pair per gift) are checked a column at a time, in C.
        idem = _dict(doc["idem"])
        _all(str, idem.keys())
        _counts(idem.values())
        st.idem = IdemMap.from_dict(idem)
        intents, resolving = doc["resolution"]
        _counts(intents)
        _counts(resolving)
        st.resolution = SeqMap.from_columns(intents, resolving)
        seqs, projects, yens = doc["donations"]
        _counts(seqs)
        _all(str, projects)
        _counts(yens)
        st.donations = DonationMap.from_columns(seqs, projects, yens)
        st.voided = set(doc["voided"])
        _counts(st.voided)
        cp_size, st.cp_note, cp_root, cp_mono = doc["cp"]
        st.cp_size, st.cp_mono = _count(cp_size), _int(cp_mono)
        st.cp_root = None if cp_root is None else _hash(cp_root)
        st.genesis = doc["genesis"] if doc["genesis"] is None else _dict(doc["genesis"])
        st.kiosk_id, st.key_id, st.public_key = doc["kiosk_id"], doc["key_id"], doc["public_key"]
        st.key_changes = [(_count(seq), _str(key), _str(by)) for seq, key, by in doc["key_changes"]]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise SnapshotError(f"not a state snapshot: {type(exc).__name__}: {exc}") from None
    return st


def _all(kind: type, values: Iterable[Any]) -> None:
    if not set(map(type, values)) <= {kind}:
        raise TypeError(f"a value that is not of type {kind.__name__}")


def _counts(values: Collection[Any]) -> None:
    _all(int, values)
    if min(values, default=0) < 0:
        raise ValueError("a negative count or seq")


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{v!r} is not an integer")
    return v


def _count(v: Any) -> int:
    if _int(v) < 0:
        raise ValueError(f"{v} is negative")
    return int(v)


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{v!r} is not a string")
    return v


def _dict(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"{v!r} is not an object")
    return v


def _hash(v: Any) -> bytes:
    h = bytes.fromhex(_str(v))
    if len(h) != 32:
        raise ValueError(f"a hash of {len(h)} bytes")
    return h
