"""Checking a ledger (database or export) from its first entry to its last.

The verifier trusts nothing in the file: each body must be canonical and in
domain, hash to its stored ``entry_hash``, carry the previous entry's hash, be
signed by the genesis key, agree with its denormalised columns, and make
sense after what came before (:class:`~kiosk.ledger.state.LedgerState`).
Every checkpoint entry's note must verify and match the tree. Given an
external checkpoint, or an export whose header carries the kiosk's signed
checkpoint, the ledger must reach its size and match its root, which catches a
truncated tail or a rewritten history. An export's header checkpoint must be its
newest checkpoint entry's note, as :func:`kiosk.ledger.export.write_export` writes it
(a null one over checkpoint entries is a cut tail whose header was changed to hide it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger.encoding import (
    VOUCHED_BY_ADMINISTRATOR,
    EncodingError,
    entry_hash,
    key_change_message,
    parse_body,
)
from kiosk.ledger.keys import key_id, public_from_raw, public_raw
from kiosk.ledger.schema import DENORMALISED, denormalise
from kiosk.ledger.sigcheck import PARALLEL_MIN_ENTRIES, SignaturePool, signature_ok, usable_cpus
from kiosk.ledger.state import HistoryError, LedgerState


class Row(NamedTuple):
    """One stored entry as found, before any checking.

    Immutable as a tuple is. A named tuple, not a frozen dataclass: the portal wraps every received entry in
    one, and a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (about 5,700
    instructions a row in bench/ingest_ir.py, a named tuple a third of that). Copy one with a field changed
    by ``row._replace(field=...)``."""

    seq: Any
    body: bytes
    entry_hash: bytes
    signature: bytes
    columns: dict[str, Any] | None = None  # denormalised DB columns, when read from a database


class ExportError(ValueError):
    """An export file that cannot be read (raised by :func:`kiosk.ledger.export.read_export`, also lazily
    while its rows are iterated, which is why it lives here beside :class:`Row`)."""


@dataclass
class VerifyResult:
    ok: bool
    entries: int = 0
    kiosk_id: str | None = None
    bad_seq: int | None = None
    reason: str | None = None
    root: str | None = None
    checkpoint_size: int | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    # {seq (the first entry the key signs), announced_at (the key_change entry), key_id, public_key, vouched_by}
    key_changes: list[dict[str, Any]] = field(default_factory=list)
    snapshot: str | None = None
    """What the ledger file's state snapshot was found to be (kiosk/ledger/audit.py), if it has one."""
    export_checkpoint: str | None = None
    """What an export's header checkpoint was found to be (the export's own signed statement of its size and
    root), for an export; None for a database."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.ok:
            cp = (f", consistent with checkpoint of size {self.checkpoint_size}"
                  if self.checkpoint_size is not None else "")
            by = {VOUCHED_BY_ADMINISTRATOR: "an administrator"}
            keys = "".join(f"; signing key {k['key_id']} from seq={k['seq']} (vouched for by "
                           f"{by.get(k['vouched_by'], 'the previous key')})" for k in self.key_changes)
            snap = f"; {self.snapshot}" if self.snapshot else ""
            exp = f"; {self.export_checkpoint}" if self.export_checkpoint else ""
            return (f"OK: {self.entries} entries of kiosk {self.kiosk_id} verified{cp}; root {self.root}{keys}"
                    f"{snap}{exp}")
        return f"INVALID at seq={self.bad_seq}: {self.reason}"

    def verdict_ja(self) -> str:
        """The verdict in plain Japanese, for the city's auditor and the center's staff, printed above
        :meth:`summary` (as `kiosk receipt verify` says its 判定 first): what was checked and, when it fails, what
        was found in plain words and what to do, on an indented second line. Without the figures' jargon."""
        if self.ok:
            cp = (f"指定したチェックポイント（{self.checkpoint_size}件）とも一致しました。"
                  if self.checkpoint_size is not None else "")
            return (f"判定：正しい台帳です。端末 {self.kiosk_id} の記録 {self.entries}件すべての署名と"
                    f"つながりを確かめ、書き換えは見つかりませんでした。{cp}")
        where = f"{self.bad_seq}番目の記録で" if self.bad_seq else "ファイル全体で"
        head, what, todo = _plain_reason(self.reason or "")
        return f"判定：{head}{where}問題が見つかりました：{what}。\n  対応：{todo}"


BAD_SIGNATURE = "bad signature (not signed by this kiosk's key)"


KEEP_AND_TELL_JA = ("このファイルを消したり上書きしたりせず、そのまま保管してください（端末のSDカードや、"
                    "書き出したUSBメモリのファイルなら、そのSDカードやUSBメモリごと）。端末を置いているセンターと"
                    "市の担当者に、この表示を添えて知らせてください。")
"""What to do with a ledger that does not verify: keep the evidence as it is, and tell the people who can act."""

_NOT_TAMPERED = "正しいかどうか確かめきれませんでした。"
_INVALID = "正しくありません。"
# (words found in VerifyResult.reason, what the Japanese verdict heads with, what was found in plain words, what to
# do). The first match counts: the English reason (under the Japanese line) says the details. An auditor's own
# mistake (another kiosk's key, another kiosk's checkpoint, a key change that needs its --trust-key) is told as
# such, not as a tampered ledger, and says how to run it again.
_PLAIN_REASONS: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("--trust-key",), _NOT_TAMPERED,
     "端末の鍵が管理者の届け出で取り替えられています。その届け出を指定しないと、ここから先を確かめられません",
     "ポータルに記録された鍵の届け出を管理者から受け取り、下の英語の行にあるとおり --trust-key を付けて、もう一度"
     "実行してください。"),
    (("(--pubkey)",), _NOT_TAMPERED,
     "指定した公開鍵（--pubkey）とは別の端末の台帳です",
     "公開鍵のファイルがこの端末のもの（その端末の keys/kiosk.pub）か確かめて、もう一度実行してください。"
     "合っているのにこう出るなら、" + KEEP_AND_TELL_JA),
    ((BAD_SIGNATURE,), _INVALID,
     "端末の鍵で署名されていない記録があります（書き換えられたおそれ）", KEEP_AND_TELL_JA),
    (("entry_hash does not match",), _INVALID,
     "記録の中身が、署名されたときから変わっています（書き換えられたおそれ）", KEEP_AND_TELL_JA),
    (("entry missing", "duplicate or out-of-order", "entry moved or reordered"), _INVALID,
     "記録が抜けているか、重なっているか、順番が入れ替わっています", KEEP_AND_TELL_JA),
    (("truncated", "cut from the end", "cut short"), _INVALID,
     "終わりのほうの記録が欠けています（切り取られたおそれ）", KEEP_AND_TELL_JA),
    (("history differs",), _INVALID,
     "指定したチェックポイントの時点までの記録が、その後に書き換えられています", KEEP_AND_TELL_JA),
    (("checkpoint file",), _NOT_TAMPERED,  # after "truncated" and "history differs", which name it too
     "指定したチェックポイント（--checkpoint）が、この台帳の端末のものではありません",
     "指定したファイル（保存した受領証など）がこの端末のものか確かめて、もう一度実行してください。合っているのに"
     "こう出るなら、" + KEEP_AND_TELL_JA),
    (("snapshot",), _INVALID,
     "端末の鍵が署名した状態の控えと、記録の中身が合いません", KEEP_AND_TELL_JA),
    (("export header",), _INVALID,
     "書き出したファイルの先頭の部分が書き換えられています（記録が切り取られたおそれ）", KEEP_AND_TELL_JA),
    (("malformed entry", "header is not JSON", "not a kiosk-ledger-export", "cannot read database", "body: "),
     _INVALID, "ファイルが壊れているか、読めない部分があります", KEEP_AND_TELL_JA),
    (("holds no entries",), _INVALID, "記録が一つもありません", KEEP_AND_TELL_JA),
)


def _plain_reason(reason: str) -> tuple[str, str, str]:
    """(verdict head, what was found, what to do) for an English ``VerifyResult.reason``, in plain Japanese."""
    for words, head, what, todo in _PLAIN_REASONS:
        if any(w in reason for w in words):
            return head, what, todo
    return _INVALID, "書き換え、記録の欠け、または壊れたファイルのおそれがあります", KEEP_AND_TELL_JA


NOT_CHECKED_JA = ("判定：何も確かめていません。ファイルが台帳ではないか、読めませんでした（理由は下の英語の行の"
                  "とおり）。台帳が正しくないという意味ではありません。\n"
                  "  対応：指定したファイル（台帳は端末の ledger.db か、書き出した ledger.jsonl）を確かめて、もう一度"
                  "実行してください。")
"""The Japanese verdict above ``NOT CHECKED: …`` (kiosk ledger verify): nothing was checked, so nothing was found."""


class VerifyFailure(Exception):
    """The first bad entry: ``seq`` and a human reason."""

    def __init__(self, seq: int, reason: str):
        super().__init__(f"seq={seq}: {reason}")
        self.seq, self.reason = seq, reason


_Bad = VerifyFailure


class ChainVerifier:
    """Checks entries one at a time, in order; keeps only what the next entry needs.

    Incremental on purpose: the portal resumes from the last entry it accepted,
    and tests can copy a verifier after a prefix instead of re-checking it.
    """

    def __init__(self, pubkey: Ed25519PublicKey | None = None, header: dict[str, Any] | None = None,
                 trusted_keys: dict[int, bytes] | None = None):
        self.state = LedgerState()
        self.expected_pub = pubkey
        self.header = header
        # Key changes an administrator announced (seq -> raw key), for a kiosk whose old key was lost:
        # the ledger alone cannot vouch for those (docs/ledger.md, "Re-keying").
        self.trusted_keys: dict[int, bytes] = dict(trusted_keys or {})
        self.pub: Ed25519PublicKey | None = None
        """The key in force: it signs the next entry (after a key_change, the new key)."""
        self.signer: Ed25519PublicKey | None = None
        """The key that had to sign the entry fed last (a caller checking signatures itself uses it)."""
        self.keys: list[Ed25519PublicKey] = []
        """Every key the chain has used, oldest first."""
        self.parse_body: Callable[[bytes], dict[str, Any]] = parse_body
        """Parses and checks a body: :func:`~kiosk.ledger.encoding.parse_body`, or a faster function with
        exactly its verdicts (the portal's ``server_sync.bodies.parse_body``)."""

    def resume_at_state(self) -> None:
        """After ``state`` was rebuilt by replaying stored entries: take the key in force from it."""
        if self.state.public_key is not None:
            self.pub = public_from_raw(bytes.fromhex(self.state.public_key))
            self.keys = [public_from_raw(bytes.fromhex(self.state.genesis["public_key"]))]  # type: ignore[index]
            self.keys += [public_from_raw(bytes.fromhex(k)) for _, k, _ in self.state.key_changes]

    @property
    def size(self) -> int:
        return self.state.size

    def feed(self, row: Row, check_signature: bool = True, check_note: bool = True,
             hashed: bool = False) -> dict[str, Any]:
        """Check one row; returns its parsed body or raises :class:`VerifyFailure`.

        ``check_signature=False`` leaves the entry signature to the caller (a :class:`SignaturePool`);
        everything else is still checked here. ``check_note=False`` also leaves a checkpoint entry's
        note *signature* to the caller (the portal, which checks it unless a later checkpoint entry
        vouches for the entry, docs/sync.md "Ingest by checkpoint"); the note is still parsed and must
        name the entry's size and root. ``hashed=True``: the caller computed ``row.entry_hash`` from
        ``row.body`` itself (the portal, for the rows it builds from a received batch), so the body is not
        hashed a second time to compare; a stored or exported row's hash is always checked.
        """
        st = self.state
        expected = st.size + 1
        if not isinstance(row.seq, int) or row.seq != expected:
            if isinstance(row.seq, int) and row.seq < expected:
                raise _Bad(row.seq, f"duplicate or out-of-order entry (seq={row.seq} after seq={st.size})")
            raise _Bad(expected, f"entry missing (next stored entry is seq={row.seq})")
        seq = row.seq
        try:
            obj = self.parse_body(row.body)
        except EncodingError as exc:
            raise _Bad(seq, f"body: {exc}") from None
        if obj["seq"] != seq:
            raise _Bad(seq, f"body says seq={obj['seq']} (entry moved or reordered)")
        if hashed:
            h = row.entry_hash
        else:
            h = entry_hash(row.body)
            if h != row.entry_hash:
                raise _Bad(seq, "entry_hash does not match the body")
        if seq == 1:
            self.pub = _genesis_key(obj, self.expected_pub, self.header)
            self.keys = [self.pub]
        # Only a key_change, or an entry at a seq where an administrator announced a key, has another signer
        # than the key in force, and only they need _signer's checks.
        if obj["type"] == "key_change" or seq in self.trusted_keys:
            signer = self._signer(seq, obj)
        else:
            signer = self.pub  # type: ignore[assignment]  # set at seq 1 (above), so never None here
        self.signer = signer
        if check_signature:
            if not signature_ok(signer, row.signature, h):
                raise _Bad(seq, BAD_SIGNATURE)
        elif not isinstance(row.signature, (bytes, bytearray, memoryview)):  # text: what the verify above refuses
            raise _Bad(seq, BAD_SIGNATURE)
        if row.columns is not None:
            cols = denormalise(obj)
            if cols != row.columns:
                name = next(n for n in DENORMALISED if row.columns.get(n) != cols[n])
                raise _Bad(seq, f"column {name!r} = {row.columns.get(name)!r} disagrees with the body")
        if obj["type"] == "checkpoint":
            try:
                # A checkpoint entry is never seq 1, so the genesis key is set.
                if check_note:
                    cp = cpmod.open_note(obj["data"]["note"], self.pub)  # type: ignore[arg-type]  # see above
                else:
                    cp, _ = cpmod.parse(obj["data"]["note"])
            except cpmod.CheckpointError as exc:
                raise _Bad(seq, f"checkpoint note: {exc}") from None
            if (cp.size, cp.root.hex()) != (obj["data"]["size"], obj["data"]["root"]):
                raise _Bad(seq, "checkpoint note does not match the entry's size/root")
        try:
            st.apply(seq, obj, h, row.signature)
        except HistoryError as exc:
            raise _Bad(seq, str(exc)) from None
        if obj["type"] == "key_change":
            self.pub = public_from_raw(bytes.fromhex(obj["data"]["public_key"]))  # checked by _signer
            self.keys.append(self.pub)
        return obj

    def _signer(self, seq: int, obj: dict[str, Any]) -> Ed25519PublicKey:
        """The key entry ``seq`` must be signed with; checks a key_change's proof and trust on the way."""
        # seq 1 set self.pub (or raised) and every later seq follows it, so it is never None here.
        current: Ed25519PublicKey = self.pub  # type: ignore[assignment]  # see the line above
        trusted = self.trusted_keys.get(seq)
        if obj["type"] != "key_change":
            if trusted is not None:
                raise _Bad(seq, f"an administrator announced key {trusted.hex()[:16]}… from seq={seq}; this entry "
                                "is not its key_change (signed by the replaced key?)")
            return current
        data = obj["data"]
        try:
            raw = bytes.fromhex(data["public_key"])
            new = public_from_raw(raw)
        except (ValueError, TypeError):
            raise _Bad(seq, "key_change public_key is not a 32-byte Ed25519 key") from None
        try:
            new.verify(_b64(data["proof"]), key_change_message(obj["kiosk"], seq, data["public_key"]))
        except (InvalidSignature, ValueError, TypeError):
            raise _Bad(seq, "key_change proof is not signed by the announced key") from None
        if data.get("vouched_by") != VOUCHED_BY_ADMINISTRATOR:
            if trusted is not None:
                raise _Bad(seq, "an administrator announced a key at this seq; the entry is vouched for otherwise")
            return current  # the replaced key signs the hand-over
        if trusted is None:
            raise _Bad(seq, "key change vouched for by an administrator: give the announcement the portal records "
                            f"(kiosk ledger verify --trust-key {seq}:{raw.hex()})")
        if trusted != raw:
            raise _Bad(seq, f"key change announces {raw.hex()[:16]}…, the administrator announced "
                            f"{trusted.hex()[:16]}…")
        return new


def verify_rows(rows: Iterable[Row], pubkey: Ed25519PublicKey | None = None, checkpoint_note: str | None = None,
                header: dict[str, Any] | None = None, parallel: bool = False,
                trusted_keys: dict[int, bytes] | None = None,
                at_size: tuple[int, Callable[[LedgerState], None]] | None = None,
                on_entry: Callable[[int, dict[str, Any]], None] | None = None) -> VerifyResult:
    """Verify a whole ledger. ``parallel`` shares entry signatures with helper threads
    (:mod:`kiosk.ledger.sigcheck`); the verdict, first bad seq included, is the same either way.
    ``trusted_keys``: key changes an administrator announced ({seq: raw key}), see :class:`ChainVerifier`.
    ``at_size=(n, look)``: ``look(state)`` once the replay stands at *n* entries (the state snapshot's check,
    kiosk/ledger/audit.py, without a second replay); what it sees counts only if the result is ok.
    ``on_entry(seq, parsed body)``: each entry once the verifier has passed it, in seq order (``kiosk ledger report``
    counts an export in the same pass that verifies it); like ``at_size``, what it is given counts only if the
    result is ok (with ``parallel``, an entry's signature may be checked after it was handed on)."""
    v = ChainVerifier(pubkey, header, trusted_keys)
    st = v.state
    pool: SignaturePool | None = None
    pool_pub: Ed25519PublicKey | None = None  # the key object the pool checks with (compared by identity)
    # The signed checkpoints the ledger must be consistent with: the one given (--checkpoint), and an export's
    # own, in its header (the kiosk's signed statement of the ledger's size and root when it was exported).
    wanted: list[tuple[str, str, cpmod.Checkpoint]] = []  # (what it is, note, parsed note)
    notes = [("checkpoint file", checkpoint_note)]
    if header is not None and header.get("checkpoint") is not None:
        notes.append(("export header's checkpoint", header["checkpoint"]))
    for label, note in notes:
        if note is None:
            continue
        if not isinstance(note, str):
            return VerifyResult(False, reason=f"{label}: not a signed note", bad_seq=0)
        try:
            wanted.append((label, note, cpmod.parse(note)[0]))
        except cpmod.CheckpointError as exc:
            return VerifyResult(False, reason=f"{label}: {exc}", bad_seq=0)
    root_at: dict[int, bytes] = {}  # the tree's root as the replay passed each wanted checkpoint's size
    sizes = {cp.size for _, _, cp in wanted}
    if 0 in sizes:
        root_at[0] = st.tree.root()
    look_at, look = at_size if at_size is not None else (-1, None)
    # An export's newest checkpoint entry (seq, note): an honest export's header carries exactly that note.
    newest_cp: tuple[int, str] | None = None
    try:
        try:
            for row in rows:
                if pool is None:
                    obj = v.feed(row)
                    if parallel and v.pub is not None:  # the key is known once genesis is checked
                        pool = SignaturePool(public_raw(v.pub))
                        pool_pub = v.pub
                else:
                    obj = v.feed(row, check_signature=False)
                    # Identity, not bytes (public_raw is a call into OpenSSL per row): every entry the genesis key
                    # signs gets that very object from the verifier; a key the chain changed to is a new object.
                    if v.signer is pool_pub:
                        pool.add(row.seq, row.signature, row.entry_hash)
                    elif not signature_ok(v.signer, row.signature, row.entry_hash):  # type: ignore[arg-type]
                        raise _Bad(row.seq, BAD_SIGNATURE)  # signed by a key the chain changed to: checked in order
                if on_entry is not None:
                    on_entry(row.seq, obj)
                if obj["type"] == "checkpoint":
                    newest_cp = (row.seq, obj["data"]["note"])
                if sizes and st.size in sizes:
                    root_at[st.size] = st.tree.root()
                if st.size == look_at:
                    look(st)  # type: ignore[misc]  # look_at is -1 unless look is set
        except _Bad as bad:
            # A bad signature earlier in the ledger outranks a later structural fault.
            sig_bad = pool.first_bad() if pool is not None else None
            if sig_bad is not None and sig_bad < bad.seq:
                return VerifyResult(False, sig_bad - 1, st.kiosk_id, sig_bad, BAD_SIGNATURE)
            return VerifyResult(False, st.size, st.kiosk_id, bad.seq, bad.reason)
        except ExportError as exc:
            sig_bad = pool.first_bad() if pool is not None else None
            if sig_bad is not None:
                return VerifyResult(False, sig_bad - 1, st.kiosk_id, sig_bad, BAD_SIGNATURE)
            return VerifyResult(False, st.size, st.kiosk_id, st.size + 1, str(exc))
        if pool is not None:
            sig_bad = pool.first_bad()
            if sig_bad is not None:
                return VerifyResult(False, sig_bad - 1, st.kiosk_id, sig_bad, BAD_SIGNATURE)
    finally:
        if pool is not None:
            pool.close()
    if st.size == 0:
        return VerifyResult(False, 0, None, 1, "ledger holds no entries")
    result = VerifyResult(True, st.size, st.kiosk_id, root=st.tree.root().hex(), totals=_totals(st),
                          key_changes=[{"seq": seq + (by != VOUCHED_BY_ADMINISTRATOR), "announced_at": seq,
                                        "key_id": key_id(bytes.fromhex(k)), "public_key": k, "vouched_by": by}
                                       for seq, k, by in st.key_changes])
    if header is not None and header.get("entries") not in (None, st.size):
        return _fail(result, st.size + 1, f"export header promises {header['entries']} entries, found {st.size}")
    for label, note, _ in wanted:
        cp = None
        err: cpmod.CheckpointError | None = None
        for k in reversed(v.keys):  # a note signed before a key change verifies with the key of its time
            try:
                cp = cpmod.open_note(note, k)
                break
            except cpmod.CheckpointError as exc:
                err = err or exc
        if cp is None:
            return _fail(result, 0, f"{label} is not signed by a key of this ledger: {err}")
        if cp.origin != cpmod.origin_for(st.kiosk_id or ""):
            return _fail(result, 0, f"{label} is for {cp.origin!r}, not this ledger")
        if cp.size > st.size:
            return _fail(result, st.size + 1,
                         f"ledger truncated: the {label} covers {cp.size} entries, ledger has {st.size}")
        if root_at.get(cp.size) != cp.root:
            return _fail(result, cp.size, f"history differs from the {label}: the first {cp.size} entries "
                                          "do not produce its root")
        if label == "checkpoint file":
            result.checkpoint_size = cp.size
        else:
            result.export_checkpoint = f"export's own signed checkpoint of size {cp.size} matches the entries"
    if header is not None:
        # `kiosk ledger export` puts the newest checkpoint entry's note in the header (kiosk/ledger/export.py), so
        # a header without it, or with another note, was not written by an export: most likely its tail was cut
        # and the header changed so that nothing would show it.
        note = header.get("checkpoint")
        if newest_cp is not None and note is None:
            return _fail(result, st.size + 1,
                         f"export header has no checkpoint, yet its entries hold checkpoint entries (the newest at "
                         f"seq={newest_cp[0]}): an export always carries the newest one in its header, so this "
                         "header was changed, and entries may have been cut from the end")
        if newest_cp is not None and note != newest_cp[1]:
            return _fail(result, 0, f"export header's checkpoint is not the note of its newest checkpoint entry "
                                    f"(seq={newest_cp[0]}), as an export's always is: the header was changed")
        if newest_cp is None and note is not None:
            return _fail(result, 0, "export header carries a checkpoint, yet its entries hold no checkpoint entry "
                                    "(an export's header checkpoint is its newest checkpoint entry's note): the "
                                    "header or the entries were changed")
        if note is None:
            result.export_checkpoint = ("export carries no signed checkpoint (its ledger never wrote one): nothing "
                                        "in it vouches that no entries were cut from its end")
    return result


def _b64(s: Any) -> bytes:
    if not isinstance(s, str):
        raise ValueError("not a string")
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def worth_parallel(entries: object) -> bool:
    """Whether ``entries`` (a count; an export header's ``entries``, which may be anything in a changed file) make
    checking signatures on helper threads worth it. Not a count: no (the header's check names it later)."""
    return isinstance(entries, int) and entries >= PARALLEL_MIN_ENTRIES and usable_cpus() > 1


def _fail(r: VerifyResult, seq: int, reason: str) -> VerifyResult:
    r.ok, r.bad_seq, r.reason = False, seq, reason
    return r


def _totals(st: LedgerState) -> dict[str, Any]:
    return {"count": st.kiosk_total[1], "total_yen": st.kiosk_total[0]}


def _genesis_key(obj: dict[str, Any], pubkey: Ed25519PublicKey | None,
                 header: dict[str, Any] | None) -> Ed25519PublicKey:
    if obj["type"] != "genesis":
        raise _Bad(1, "the first entry must be genesis")
    try:
        raw = bytes.fromhex(obj["data"]["public_key"])
        pub = public_from_raw(raw)
    except (ValueError, TypeError):
        raise _Bad(1, "genesis public key is not a 32-byte Ed25519 key") from None
    if obj["key_id"] != key_id(raw):
        raise _Bad(1, "genesis key id does not match its public key")
    if obj["data"]["origin"] != cpmod.origin_for(obj["kiosk"]):
        raise _Bad(1, "genesis origin does not match its kiosk id")
    if pubkey is not None and public_raw(pubkey) != raw:
        raise _Bad(1, "ledger was created by another kiosk key than the one given (--pubkey)")
    if header is not None and (header.get("public_key") != raw.hex() or header.get("kiosk_id") != obj["kiosk"]):
        raise _Bad(1, "export header's kiosk id or public key differs from the genesis entry")
    if header is not None and header.get("key_id") != obj["key_id"]:
        raise _Bad(1, f"export header's key_id {header.get('key_id')!r} is not the genesis key's ({obj['key_id']})")
    return pub
