"""Entry bodies and batch documents on the portal's ingest path: the same verdicts, faster.

**Bodies**: :func:`parse_body` gives :func:`kiosk.ledger.encoding.parse_body`'s verdict.

The canonical check is a parse and a re-encode of every body the portal receives. With the standard
library's ``json`` that was about 15 µs of an entry's ingest here (the re-encode alone 10 µs, more than
the SQL insert's per-row cost); msgspec's C codec does both in about 2 µs (docs/sync.md, "Cost of ingest").

The rules stay :func:`~kiosk.ledger.encoding.parse_body`'s, which stays the only definition (the kiosk
writes and checks its own ledger with it; it encodes with msgspec where installed, but parses with the
standard library, so that an auditor's plain install gives the same verdicts). :func:`parse_body` here
takes a fast path only where it can prove the answer is the same, and hands every other body to the
original:

- msgspec decodes it, as the typed dictionary :class:`_Body`, to an object without a float
  (``float_hook`` and the types refuse them), a NaN (not JSON), or an integer beyond ±(2**53-1) (the types
  bound every integer, in the envelope and in ``data`` three levels deep; a body nested deeper goes to the
  original: entries nest three levels). Until then a scan for a run of 16 digits after ``:``, ``,``, ``[``
  or ``-`` looked for long numbers before decoding (a ``bytes.translate`` of the body, then a search:
  about 8,000 instructions an entry, a sixth of the parse), which the bounds in the types now do in
  msgspec's own pass. The type holds the envelope rules of
  :func:`~kiosk.ledger.encoding.check_envelope`, which msgspec checks in C while it decodes: each
  envelope field present, of its type exactly (no bool for an integer, no float, no number for a
  string), the integers' lower bounds, ``v`` = 1, a known entry type, ``data`` an object. An envelope
  key the type does not name is left out of the object (so the re-encode below is not the body), and of
  a duplicate key one is kept (likewise). ``prev`` is looked at after decoding: 64 characters that are
  the hash they spell as ``bytes.hex`` spells it (lowercase hex);
- every key is ASCII (true of every key when the whole body is ASCII; else the envelope's are its own
  names and those inside ``data`` are looked at: a checkpoint entry's note has an em dash);
- msgspec's sorted-key encoding of that object is the body byte for byte. For values in the ledger's
  domain that encoding is RFC 8785's (``tests/sync/test_bodies.py`` checks it against the ``rfc8785``
  reference with hypothesis, as ``tests/ledger/test_encoding.py`` does for the ``json`` encoder), so
  the body is canonical, which also excludes whitespace, duplicate keys, other escapes and "-0";
- then the rest of the envelope check, the part about ``data``, runs on the same object: the keys its
  type requires, and the integers ``check_envelope`` bounds (:func:`~kiosk.ledger.encoding.check_data`,
  which ``check_envelope`` itself calls).

A body that fails any of these goes to the original, which accepts it or raises the error it always
raised, so what is accepted, and why anything is refused, is exactly what it was. Decoding a canonical
text gives the same object in both parsers (JSON has one meaning for it), which the hypothesis test also
checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

import msgspec

from kiosk.ledger import encoding
from kiosk.ledger.encoding import ENTRY_TYPES, FORMAT_VERSION
from server_sync.wire import protocol as P


def _no_float(text: str) -> Any:
    raise ValueError(f"float {text}")


_Count = Annotated[int, msgspec.Meta(ge=0, le=encoding.MAX_SAFE_INT)]
_Int = Annotated[int, msgspec.Meta(ge=-encoding.MAX_SAFE_INT, le=encoding.MAX_SAFE_INT)]
# The values inside ``data``, three levels deep (entries nest at most three: a close-out's projects are a list of
# objects), every integer within ±(2**53-1): msgspec refuses a larger one, or anything nested deeper, as it
# decodes, and the body goes to the original.
_Scalar = None | bool | _Int | str
_Value2 = _Scalar | list[_Scalar] | dict[str, _Scalar]
_Value = _Scalar | list[_Value2] | dict[str, _Value2]


class _Body(TypedDict):
    """check_envelope's rules for the envelope, as a type msgspec checks while it decodes (the data's
    per-type keys are :func:`~kiosk.ledger.encoding.check_data`'s)."""

    v: Literal[FORMAT_VERSION]  # type: ignore[valid-type]  # a constant: 1
    kiosk: str
    key_id: str
    seq: Annotated[int, msgspec.Meta(ge=1, le=encoding.MAX_SAFE_INT)]
    prev: str  # 64 lowercase hex characters: looked at after decoding (a pattern here cost three times more)
    boot: _Count
    mono_ms: _Count
    wall_ms: _Count
    clock_synced: bool
    type: Literal[ENTRY_TYPES]  # type: ignore[valid-type]  # the tuple of every type's name
    data: dict[str, _Value]


_DECODER = msgspec.json.Decoder(_Body, float_hook=_no_float)
_ENCODER = msgspec.json.Encoder(order="sorted")
_CONTAINERS = frozenset({dict, list})


def _ascii_keys(value: dict[str, Any] | list[Any]) -> bool:
    """Whether every key in ``value``, and in every dict or list inside it, is ASCII (the keys of a dict
    joined and looked at in one C call; most bodies' data holds no dict or list, which ``isdisjoint`` sees)."""
    if type(value) is dict:
        if not "".join(value).isascii():
            return False
        items: Any = value.values()
    else:
        items = value
    return _CONTAINERS.isdisjoint(map(type, items)) or all(_ascii_keys(v) for v in items if type(v) in _CONTAINERS)


def parse_body(body: bytes) -> dict[str, Any]:
    """:func:`kiosk.ledger.encoding.parse_body` (never with ``canonical_known``): the same object or error."""
    try:
        obj: dict[str, Any] = _DECODER.decode(body)  # type: ignore[assignment]  # a _Body is a dict
        prev = obj["prev"]
        fast = (_ENCODER.encode(obj) == body and (body.isascii() or _ascii_keys(obj["data"]))
                and len(prev) == 64 and bytes.fromhex(prev).hex() == prev)
        if fast:
            encoding.check_data(obj["type"], obj["data"])  # the rest of check_envelope
    except Exception:  # not JSON, a float, a field of the wrong type, a lone surrogate, nested too deep...:
        fast = False  # the original names it (any failure here only means "ask the original")
    if fast:
        return obj
    return encoding.parse_body(body)


# --- batch documents --------------------------------------------------------------------------------
# **Batch documents**: :func:`batch` decodes ``P.BatchRequest`` with msgspec, base64 included, in one C pass
# (pydantic and then base64 per field cost about 4 µs an entry; this, under 1 µs). It only ever says "this
# document is well-formed, and here is what it holds" or "ask pydantic": any refusal of msgspec, and any
# document that a later check of ``ingest._parse_batch`` would refuse, returns None, and the original
# path then gives the error it always gave. So msgspec's rules must be at least as strict as pydantic's
# (tests/sync/test_bodies.py feeds both the same mangled documents): the same types, strictly (no bool or
# float for an int, no number for a string), the same bounds and lengths, unknown fields refused, patterns
# anchored at the very end (``\Z``: Python's ``$`` would let a trailing newline through), and base64 that
# ``binascii.a2b_base64(strict_mode=True)`` accepts (the same alphabet and padding rules).
_SEQ = Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]


class _Entry(msgspec.Struct, forbid_unknown_fields=True):
    seq: _SEQ
    body: bytes
    signature: bytes


class _Consistency(msgspec.Struct, forbid_unknown_fields=True):
    old_size: Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]
    proof: Annotated[list[str], msgspec.Meta(max_length=P.MAX_PROOF_HASHES)]


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    kiosk_id: Annotated[str, msgspec.Meta(pattern=P.KIOSK_ID_RE.pattern.removesuffix("$") + "\\Z")]
    first_seq: _SEQ
    last_seq: _SEQ
    entries: Annotated[list[_Entry], msgspec.Meta(min_length=1, max_length=P.MAX_BATCH_ENTRIES)]
    consistency: _Consistency
    protocol: Annotated[str, msgspec.Meta(pattern=r"^kiosk-sync/1\Z")] = P.PROTOCOL
    checkpoint: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


_BATCH = msgspec.json.Decoder(_Batch)


def batch(raw: bytes, kiosk_id: str) -> tuple[P.BatchRequest, list[tuple[int, bytes, bytes]]] | None:
    """The document's header (entries left out) and its ``(seq, body, signature)`` triples, when it is
    well-formed for ``kiosk_id`` by every rule ``ingest._parse_batch`` applies; else None (ask it why)."""
    try:
        doc = _BATCH.decode(raw)
    except Exception:  # any failure only means "ask the pydantic path"
        return None
    if doc.kiosk_id != kiosk_id or doc.last_seq != doc.first_seq + len(doc.entries) - 1:
        return None
    out = []
    seq = doc.first_seq
    for e in doc.entries:
        if e.seq != seq or len(e.body) > P.MAX_ENTRY_BYTES or len(e.signature) != 64:
            return None
        out.append((seq, e.body, e.signature))
        seq += 1
    head = P.BatchRequest.model_construct(
        protocol=doc.protocol, kiosk_id=doc.kiosk_id, first_seq=doc.first_seq, last_seq=doc.last_seq, entries=[],
        checkpoint=doc.checkpoint,
        consistency=P.Consistency.model_construct(old_size=doc.consistency.old_size, proof=doc.consistency.proof))
    return head, out
