"""What a ledger's history means, replayed entry by entry. Pure: no I/O.

Both the writer (to rebuild totals and open intents at start-up) and the
verifier (to check that every donation settles a real intent with the same
amount, that running totals add up, and that checkpoints match the tree) use
this one replay, so they cannot disagree about what a valid history is.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kiosk.ledger.encoding import ENTRY_TYPES, VOUCHED_BY_ADMINISTRATOR, VOUCHED_BY_PREVIOUS_KEY, ZERO_HASH
from kiosk.ledger.idemmap import IdemMap
from kiosk.ledger.merkle import CompactRange
from kiosk.ledger.seqmap import DonationMap, SeqMap


def fold_signature(acc: bytes, signature: bytes) -> bytes:
    """The signature digest after one more entry: ``SHA-256(acc || signature)``, starting from 32 zero bytes.

    A checkpoint entry's ``sigs`` carries the digest over the signatures of every entry it covers, so the
    one signature on the checkpoint entry vouches for the per-entry signatures too (docs/sync.md).
    """
    return hashlib.sha256(acc + signature).digest()


class HistoryError(ValueError):
    """An entry that is well-formed but does not make sense after the ones before it."""


class LedgerState:
    def __init__(self) -> None:
        self.size = 0
        self.tip = ZERO_HASH
        self.boot = 0
        self.tree = CompactRange()
        # Digest of the per-entry signatures 1..size (fold_signature); None once an entry was applied
        # without its signature, after which no checkpoint's ``sigs`` can be checked against it.
        self.sigs: bytes | None = ZERO_HASH
        self.project_totals: dict[str, list[int]] = {}  # project -> [yen, count]
        self.kiosk_total = [0, 0]
        self.intents: dict[int, dict[str, Any]] = {}  # unresolved intents by seq
        self.idem = IdemMap()  # idempotency key -> intent seq (sorted 128-bit columns: idemmap.py)
        self.resolution = SeqMap()  # intent seq -> resolving entry seq (flat arrays: seqmap.py)
        # settled donation seq -> (project, yen): what a void of it takes back (the rest is in the entry)
        self.donations = DonationMap()
        self.voided: set[int] = set()
        self.cp_size = 0
        self.cp_note: str | None = None
        self.cp_root: bytes | None = None
        self.cp_mono = 0
        self.genesis: dict[str, Any] | None = None
        self.kiosk_id: str | None = None
        self.key_id: str | None = None
        # The key that signs the next entry (hex raw Ed25519): the genesis key until a key_change entry.
        self.public_key: str | None = None
        # Every key_change entry: (its seq, the new key in hex, who vouched for it).
        self.key_changes: list[tuple[int, str, str]] = []

    def signer_of(self, seq: int, obj: dict[str, Any]) -> str | None:
        """The key (hex) whose signature entry ``seq`` must carry: the genesis entry's own key, the new key
        for a key_change an administrator vouches for, else the key in force. Call before :meth:`apply`."""
        data = obj.get("data") or {}
        if seq == 1:
            return data.get("public_key") if isinstance(data.get("public_key"), str) else None
        if obj.get("type") == "key_change" and data.get("vouched_by") == VOUCHED_BY_ADMINISTRATOR:
            return data.get("public_key") if isinstance(data.get("public_key"), str) else None
        return self.public_key

    def apply(self, seq: int, obj: dict[str, Any], h: bytes, signature: bytes | None = None) -> None:
        """Advance by one entry whose body has already been parsed and hash-checked.

        ``signature`` (the stored per-entry signature, checked or not) feeds the signature digest that
        checkpoint entries commit to; without it the digest is unknown from here on.
        """
        if seq != self.size + 1:
            raise HistoryError(f"expected seq={self.size + 1}")
        if obj["prev"] != self.tip.hex():
            raise HistoryError("prev hash does not match the previous entry")
        kind, data = obj["type"], obj["data"]
        if seq == 1:
            if kind != "genesis":
                raise HistoryError("the first entry must be genesis")
            self.kiosk_id, self.key_id, self.genesis = obj["kiosk"], obj["key_id"], data
            self.public_key = data["public_key"]
        else:
            if kind == "genesis":
                raise HistoryError("a second genesis entry")
            if obj["kiosk"] != self.kiosk_id:
                raise HistoryError(f"entry of kiosk {obj['kiosk']!r} in the ledger of {self.kiosk_id!r}")
            # Only a key_change can be signed by another key than the one in force (signer_of); every other
            # entry must carry the key id in force, compared without working out its signer.
            signer = self.signer_of(seq, obj) if kind == "key_change" else self.public_key
            want = self.key_id if signer == self.public_key else _key_id(signer)
            if obj["key_id"] != want:
                what = "the key in force" if signer == self.public_key else "the announced key"
                raise HistoryError(f"key id {obj['key_id']} differs from {what}'s key id {want}")
        boot = obj["boot"]
        if kind == "boot":
            if boot != self.boot + 1:
                raise HistoryError(f"boot entry with counter {boot}, expected {self.boot + 1}")
        elif boot != self.boot:
            raise HistoryError(f"boot counter {boot}, expected {self.boot}")
        handler = _RULES.get(kind)
        if handler is not None:
            handler(self, seq, obj, data)
        self.size = seq
        self.tip = h
        self.boot = boot
        self.tree.append(h)
        self.sigs = fold_signature(self.sigs, signature) if signature is not None and self.sigs is not None else None

    # per-type rules ------------------------------------------------------------
    def _donation_intent(self, seq: int, obj: dict[str, Any], data: dict[str, Any]) -> None:
        if data["idem"] in self.idem:
            raise HistoryError(f"idempotency key reused (first at seq={self.idem[data['idem']]})")
        if data["amount_yen"] < 1:
            raise HistoryError("donation amount must be at least 1 yen")
        self.intents[seq] = dict(data, seq=seq)
        self.idem[data["idem"]] = seq

    def _resolve(self, seq: int, data: dict[str, Any]) -> dict[str, Any]:
        target = data["intent_seq"]
        intent = self.intents.get(target)
        if intent is None:
            raise HistoryError(f"resolves seq={target}, which is not an open donation intent")
        if data["idem"] != intent["idem"]:
            raise HistoryError("idempotency key differs from its intent")
        del self.intents[target]
        self.resolution[target] = seq
        return intent

    def _donation(self, seq: int, obj: dict[str, Any], data: dict[str, Any]) -> None:
        intent = self._resolve(seq, data)
        for key in ("project", "amount_yen", "method", "donor", "pepper_epoch"):
            if data[key] != intent[key]:
                raise HistoryError(f"{key} differs from its intent at seq={intent['seq']}")
        p_yen, p_count = self.project_totals.get(data["project"], [0, 0])
        want = {"project_yen": p_yen + data["amount_yen"], "project_count": p_count + 1,
                "kiosk_yen": self.kiosk_total[0] + data["amount_yen"], "kiosk_count": self.kiosk_total[1] + 1}
        if data["totals"] != want:
            raise HistoryError(f"running totals {data['totals']} do not add up (expected {want})")
        self.donations[seq] = (data["project"], data["amount_yen"])
        self._add(data["project"], data["amount_yen"], +1)

    def _donation_failed(self, seq: int, obj: dict[str, Any], data: dict[str, Any]) -> None:
        self._resolve(seq, data)

    def _void(self, seq: int, obj: dict[str, Any], data: dict[str, Any]) -> None:
        target = data["voids_seq"]
        if target not in self.donations:
            raise HistoryError(f"voids seq={target}, which is not a settled donation")
        if target in self.voided:
            raise HistoryError(f"seq={target} voided twice")
        self.voided.add(target)
        project, yen = self.donations[target]
        self._add(project, yen, -1)

    def _key_change(self, seq: int, obj: dict[str, Any], data: dict[str, Any]) -> None:
        new, by = data["public_key"], data["vouched_by"]
        if not isinstance(new, str) or len(new) != 64 or not set(new) <= set("0123456789abcdef"):
            raise HistoryError("key_change public_key must be 64 lowercase hex characters (raw Ed25519)")
        if by not in (VOUCHED_BY_PREVIOUS_KEY, VOUCHED_BY_ADMINISTRATOR):
            raise HistoryError(f"key_change vouched_by must be {VOUCHED_BY_PREVIOUS_KEY!r} or "
                               f"{VOUCHED_BY_ADMINISTRATOR!r}, not {by!r}")
        if new == self.public_key:
            raise HistoryError("key_change announces the key already in force")
        self.public_key, self.key_id = new, _key_id(new)
        self.key_changes.append((seq, new, by))

    def _checkpoint(self, seq: int, obj: dict[str, Any], data: dict[str, Any]) -> None:
        if data["size"] != self.size:
            raise HistoryError(f"checkpoint size {data['size']} is not the {self.size} entries before it")
        root = self.tree.root()  # once: O(log n) hashes, and a kiosk checkpoints after every donation
        if data["root"] != root.hex():
            raise HistoryError("checkpoint root does not match the Merkle tree of the entries before it")
        if "sigs" in data and self.sigs is not None and data["sigs"] != self.sigs.hex():
            raise HistoryError("checkpoint signature digest does not match the signatures of the entries before it")
        self.cp_size, self.cp_note, self.cp_root, self.cp_mono = data["size"], data["note"], root, obj["mono_ms"]

    def _add(self, project: str, yen: int, sign: int) -> None:
        t = self.project_totals.setdefault(project, [0, 0])
        t[0] += sign * yen
        t[1] += sign
        self.kiosk_total[0] += sign * yen
        self.kiosk_total[1] += sign

    def next_totals(self, project: str, yen: int) -> dict[str, int]:
        p_yen, p_count = self.project_totals.get(project, [0, 0])
        return {"project_yen": p_yen + yen, "project_count": p_count + 1,
                "kiosk_yen": self.kiosk_total[0] + yen, "kiosk_count": self.kiosk_total[1] + 1}


# The per-type rules by entry type (a type without rules of its own has none here).
_RULES = {kind: getattr(LedgerState, "_" + kind) for kind in ENTRY_TYPES if hasattr(LedgerState, "_" + kind)}


def _key_id(public_key_hex: str | None) -> str | None:
    """The ledger key id of a hex key (kiosk.ledger.keys.key_id, without its file-handling imports)."""
    try:
        return hashlib.sha256(bytes.fromhex(public_key_hex or "")).digest()[:8].hex() if public_key_hex else None
    except ValueError:
        return None
