"""Entry bodies: the exact bytes that are hashed and signed.

Bodies are canonical JSON per RFC 8785 (JCS). Our domain is deliberately
small: objects with ASCII keys, strings, booleans, null, lists and integers
within ±(2**53 - 1). No floats, ever: money is integer yen.

Bodies are produced and re-checked with msgspec's C JSON encoder (sorted keys)
where it is installed (the ``kiosk`` and ``portal`` extras), else with the
C-accelerated ``json`` module. On this restricted domain both are
byte-identical to JCS (sorted ASCII keys, no whitespace, the same minimal
string escapes); ``json`` is seven times faster than the pure-Python
``rfc8785`` reference implementation and msgspec seven times faster again
(≈ 1 µs a body against ≈ 7.5 µs), which matters because the writer encodes
every append on the citizen's tap path and the verifier re-encodes every
entry. ``tests/ledger/test_encoding.py`` proves both equivalences against
``rfc8785`` with hypothesis, and :func:`build_entry` refuses every
out-of-domain value before encoding, so one can never be signed.

This module is pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 1
MAX_SAFE_INT = 2**53 - 1
ZERO_HASH = bytes(32)

ENTRY_TYPES = (
    "genesis",
    "boot",
    "donation_intent",
    "donation",
    "donation_failed",
    "void",
    "points_grant",
    "close_out",
    "checkpoint",
    "config_change",
    "admin_action",
    "key_change",
    "points_spent",
)

# Envelope keys every body carries, in addition to ``data``.
ENVELOPE_KEYS = frozenset(
    {"v", "kiosk", "key_id", "seq", "prev", "boot", "mono_ms", "wall_ms", "clock_synced", "type", "data"}
)

# Per type, the data keys that must be present (others may be added by later format versions).
REQUIRED_DATA: dict[str, frozenset[str]] = {
    "genesis": frozenset({"public_key", "origin", "timezone"}),
    "boot": frozenset({"software"}),
    "donation_intent": frozenset({"project", "amount_yen", "method", "idem", "donor", "pepper_epoch"}),
    "donation": frozenset(
        {"intent_seq", "project", "amount_yen", "points", "method", "provider_ref", "idem", "donor",
         "pepper_epoch", "totals"}
    ),
    "donation_failed": frozenset({"intent_seq", "idem", "reason"}),
    "void": frozenset({"voids_seq", "reason"}),
    "points_grant": frozenset({"donor", "pepper_epoch", "points", "activity"}),
    "close_out": frozenset({"business_date", "first_seq", "last_seq", "count", "total_yen", "projects", "methods"}),
    "checkpoint": frozenset({"size", "root", "note"}),
    "config_change": frozenset({"version", "digest"}),
    "admin_action": frozenset({"action"}),
    "key_change": frozenset({"public_key", "vouched_by", "proof"}),
    # Points exchanged for a sponsor-matched gift (docs/points.md): ``amount_yen`` is the sponsor's money
    # given to ``project`` from the pool ``pool``, never cash taken at the kiosk.
    "points_spent": frozenset({"donor", "pepper_epoch", "points", "project", "amount_yen", "pool"}),
}

# Who vouches for a key_change entry (docs/ledger.md, "Re-keying"): the key it replaces, which signs
# it, or an administrator's announcement at the portal when that key is lost (the new key signs it).
VOUCHED_BY_PREVIOUS_KEY = "previous_key"
VOUCHED_BY_ADMINISTRATOR = "administrator"


def key_change_message(kiosk: str, seq: int, public_key_hex: str) -> bytes:
    """What the new key signs as ``proof`` in a key_change entry: that its holder takes over this chain here."""
    return f"civic-kiosk.key-change/v1\n{kiosk}\n{seq}\n{public_key_hex}\n".encode()


class EncodingError(ValueError):
    """A body that is not valid, canonical, in-domain ledger JSON."""


def entry_hash(body: bytes) -> bytes:
    """``SHA-256(0x00 || body)``: the chain hash and also the RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + body).digest()


def _check_domain(value: Any, path: str = "") -> None:
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise EncodingError(f"{path or 'value'}: string holds a lone surrogate") from None
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise EncodingError(f"{path}: integer {value} is outside ±(2**53-1)")
        return
    if isinstance(value, float):
        raise EncodingError(f"{path}: floats are not allowed (use integer yen / ms)")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_domain(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k.isascii():
                raise EncodingError(f"{path}: keys must be ASCII strings, got {k!r}")
            _check_domain(v, f"{path}.{k}" if path else k)
        return
    raise EncodingError(f"{path}: {type(value).__name__} cannot be encoded")


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a value, after checking it is in the domain."""
    _check_domain(value)
    return fast_canonical(value)


_FAST = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_canonical(value: Any) -> bytes:
    """The standard library's encoding of an in-domain value: RFC 8785's bytes (the fallback encoder)."""
    return _FAST.encode(value).encode("utf-8")


_encode: Callable[[Any], bytes]
try:
    from msgspec.json import Encoder as _MsgspecEncoder
except ImportError:  # a base install (the off-line verifier without the kiosk or portal extra)
    _encode = json_canonical
else:
    # Sorted keys, no whitespace, UTF-8 kept as is, the same escapes as ``json`` (\" \\ \b \f \n \r \t
    # and \u00xx for the other control characters; nothing else, not U+2028/2029 nor DEL), integers as
    # digits; a lone surrogate raises UnicodeEncodeError, as above. Out of the domain the two differ
    # (msgspec writes NaN as null, a str subclass is a TypeError): every caller checks the domain first.
    _encode = _MsgspecEncoder(order="sorted").encode


def fast_canonical(value: Any) -> bytes:
    """The same bytes as :func:`canonical` for in-domain values, via a C encoder (msgspec's, or ``json``'s)."""
    try:
        return _encode(value)
    except UnicodeEncodeError:
        raise EncodingError("string holds a lone surrogate") from None


def _no_floats(text: str) -> Any:
    raise EncodingError(f"float {text} in body")


def _no_constants(text: str) -> Any:
    raise EncodingError(f"{text} in body")


# Digits -> 0x01, everything else -> 0x00: a 16-digit run becomes 16 ones (a C-speed test; a regex
# scanning for \d{16} costs more than the whole JSON parse).
_DIGITS_TO_1 = bytes(1 if 0x30 <= b <= 0x39 else 0 for b in range(256))
_DIGIT_RUN = b"\x01" * 16


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise EncodingError(f"integer {text} is outside ±(2**53-1)")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise EncodingError("duplicate key in object")
    for k in out:
        if not k.isascii():
            raise EncodingError(f"non-ASCII key {k!r}")
    return out


# Decoders are built once: json.loads(**hooks) builds a new decoder and scanner on every call.
_FAST_DECODER = json.JSONDecoder(parse_float=_no_floats, parse_constant=_no_constants)
_STRICT_DECODER = json.JSONDecoder(parse_float=_no_floats, parse_int=_safe_int, parse_constant=_no_constants,
                                   object_pairs_hook=_no_duplicates)


def parse_body(body: bytes, *, canonical_known: bool = False) -> dict[str, Any]:
    """Parse and check a body: valid UTF-8 JSON, canonical, in-domain, envelope complete.

    Raises :class:`EncodingError` naming the first problem. ``canonical_known`` skips only the
    re-encode, for bytes :func:`fast_canonical` has just produced (the writer); verifiers never set it.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        # The hooks enforce the domain while parsing (no floats or NaN, safe integers, ASCII keys);
        # the canonical re-encode below rejects everything else: duplicate keys (the re-encoding is
        # shorter), whitespace, key order, escapes, lone surrogates. The per-int and per-object hooks
        # cost a Python call each, so an all-ASCII body without a 16-digit run (no key can be
        # non-ASCII, no integer can exceed 2**53) skips them; parse_float/constant fire only on a hit.
        if text.isascii() and _DIGIT_RUN not in body.translate(_DIGITS_TO_1):
            obj = _FAST_DECODER.decode(text)
        else:
            obj = _STRICT_DECODER.decode(text)
    except EncodingError:
        raise
    except (ValueError, RecursionError) as exc:
        raise EncodingError(f"body is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EncodingError("body is not a JSON object")
    if not canonical_known and fast_canonical(obj) != body:
        raise EncodingError("body is not in canonical (RFC 8785) form")
    check_envelope(obj)
    return obj


def _int(obj: dict[str, Any], key: str, lo: int = 0) -> int:
    v = obj.get(key)
    if type(v) is not int or v < lo:  # noqa: E721 - bool is an int subclass and must not pass
        raise EncodingError(f"field {key!r} must be an integer >= {lo}, got {v!r}")
    return v


_HEX = frozenset("0123456789abcdef")
_ENVELOPE_INTS = (("seq", 1), ("boot", 0), ("mono_ms", 0), ("wall_ms", 0))
_DATA_INTS = ("amount_yen", "points", "intent_seq", "voids_seq", "pepper_epoch", "size")
_STR = (str,)
_STR_OR_NULL = (str, type(None))
_DATA_TYPES: dict[str, tuple[tuple[str, tuple[type, ...]], ...]] = {
    "donation_intent": (("project", _STR), ("method", _STR), ("idem", _STR), ("donor", _STR_OR_NULL)),
    "donation": (("project", _STR), ("method", _STR), ("idem", _STR), ("donor", _STR_OR_NULL),
                 ("provider_ref", _STR)),
    "donation_failed": (("idem", _STR),),
    "points_grant": (("donor", _STR), ("activity", _STR)),
    "points_spent": (("donor", _STR), ("project", _STR), ("pool", _STR)),
    "config_change": (("version", (int,)), ("digest", _STR)),
}
"""Per type, the exact JSON types of the required keys that are names, keys and references: a project is a
string (never null: the kept totals are keyed by it), a donor a token or null (a gift paid without a card).
Every reader (the kiosk's state, the portal's columns and totals, the policy) relies on them; without the
check a signed entry of another type got past the verifier and failed in the portal's write, every retry."""


def check_envelope(obj: dict[str, Any]) -> None:
    """Structural checks every body must pass (types and required keys)."""
    if obj.keys() != ENVELOPE_KEYS:
        missing = ENVELOPE_KEYS - obj.keys()
        if missing:
            raise EncodingError(f"body lacks {sorted(missing)}")
        raise EncodingError(f"body has unknown keys {sorted(obj.keys() - ENVELOPE_KEYS)}")
    if obj["v"] != FORMAT_VERSION or type(obj["v"]) is not int:  # noqa: E721
        raise EncodingError(f"unsupported format version {obj['v']!r}")
    for key, lo in _ENVELOPE_INTS:
        v = obj[key]
        if type(v) is not int or v < lo:  # noqa: E721 - as _int, inlined: this runs for every entry verified
            _int(obj, key, lo)
    if type(obj["clock_synced"]) is not bool:  # noqa: E721
        raise EncodingError("field 'clock_synced' must be a boolean")
    for key in ("kiosk", "key_id", "type", "prev"):
        if type(obj[key]) is not str:  # noqa: E721
            raise EncodingError(f"field {key!r} must be a string")
    prev = obj["prev"]
    if len(prev) != 64 or not _HEX.issuperset(prev):
        raise EncodingError("field 'prev' must be 64 lowercase hex characters")
    kind = obj["type"]
    required = REQUIRED_DATA.get(kind)
    if required is None:
        raise EncodingError(f"unknown entry type {kind!r}")
    data = obj["data"]
    if type(data) is not dict:  # noqa: E721
        raise EncodingError("field 'data' must be an object")
    check_data(kind, data)


def check_data(kind: str, data: dict[str, Any]) -> None:
    """The part of :func:`check_envelope` about ``data`` (of a known ``kind``): the keys the type requires,
    the integer fields' bounds, and the exact types of the type's names and references (:data:`_DATA_TYPES`)."""
    required = REQUIRED_DATA[kind]
    if not required <= data.keys():
        raise EncodingError(f"{kind} data lacks {sorted(required - data.keys())}")
    for key in _DATA_INTS:
        v = data.get(key, 0)
        if type(v) is not int or v < 0:  # noqa: E721 - as _int, inlined: this runs for every entry verified
            _int(data, key, 0)
    for key, types in _DATA_TYPES.get(kind, ()):
        if type(data[key]) not in types:  # exact: a bool is not the int a config version is
            want = " or ".join("null" if t is type(None) else "an integer" if t is int else "a string" for t in types)
            raise EncodingError(f"{kind} field {key!r} must be {want}, got {data[key]!r}"[:300])


@dataclass(frozen=True)
class Envelope:
    """Everything about an entry except its per-type data."""

    kiosk: str
    key_id: str
    seq: int
    prev: bytes
    boot: int
    mono_ms: int
    wall_ms: int
    clock_synced: bool


def build_body(env: Envelope, kind: str, data: dict[str, Any]) -> bytes:
    """Encode a new body canonically. Raises :class:`EncodingError` for anything a verifier would refuse."""
    return build_entry(env, kind, data)[0]


def build_entry(env: Envelope, kind: str, data: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The canonical body and its parsed form (what a verifier will see); see :func:`new_entry`."""
    return new_entry(env.kiosk, env.key_id, env.seq, env.prev, env.boot, env.mono_ms, env.wall_ms,
                     env.clock_synced, kind, data)


def new_entry(kiosk: str, key_id: str, seq: int, prev: bytes, boot: int, mono_ms: int, wall_ms: int,
              clock_synced: bool, kind: str, data: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """:func:`build_entry` with the envelope's fields as arguments: the writer's way, one call per append
    (an :class:`Envelope` per append cost 2.5 µs, a tenth of what the writer's own Python did per append).

    The writer holds itself to the verifier's rules without parsing its own bytes back (that re-parse was
    a sixth of an append's CPU): :func:`_plain` copies ``data`` into plain ``dict``/``list``/``str``/
    ``int``/``bool``/``None``, refusing everything a verifier would (floats, integers beyond ±(2**53-1),
    non-ASCII or non-string keys, tuples, bytes...); :func:`check_envelope` is the verifier's own
    structural check, which also holds the envelope's fields to their exact types (``int``, ``str``,
    ``bool``: the store passes its own), and the integers are then bounded above; and the encoder refuses
    lone surrogates. What the encoder then writes parses back, by construction, to exactly that object:
    ``tests/ledger/test_encoding.py`` checks with hypothesis, over in-domain and out-of-domain data, that
    every body this returns passes :func:`parse_body` and parses to the object returned, and that no
    in-domain value is refused. The verifier and the writer's own start-up replay still parse every
    stored body in full.
    """
    obj = {
        "v": FORMAT_VERSION,
        "kiosk": kiosk,
        "key_id": key_id,
        "seq": seq,
        "prev": prev.hex(),
        "boot": boot,
        "mono_ms": mono_ms,
        "wall_ms": wall_ms,
        "clock_synced": clock_synced,
        "type": kind,
        "data": _plain(data, 1),
    }
    check_envelope(obj)  # exact ints >= their floor, exact strs and bool, 64 hex prev, the type's data keys
    if seq > MAX_SAFE_INT or boot > MAX_SAFE_INT or mono_ms > MAX_SAFE_INT or wall_ms > MAX_SAFE_INT:
        raise EncodingError(f"an envelope integer is outside ±(2**53-1): seq={seq} boot={boot} "
                            f"mono_ms={mono_ms} wall_ms={wall_ms}")
    return fast_canonical(obj), obj


_MAX_DEPTH = 32
"""Deeper nesting is refused by the writer (entries nest three levels); the parser's own limit is far deeper."""


def _plain(value: Any, depth: int) -> Any:
    """A copy of ``value`` in exact builtin types, or :class:`EncodingError` if no verifier would accept it.

    The copy is what the body parses back to: subclasses (an ``IntEnum``, a ``str`` subclass) are
    written by the JSON encoder as their plain value, so they are copied as that; the entry the writer
    keeps never aliases the caller's dicts or lists.
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return value
        raise EncodingError(f"integer {value} is outside ±(2**53-1)")
    if depth >= _MAX_DEPTH:
        raise EncodingError(f"nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = dict(value)  # a C-speed copy; containers and odd scalars are replaced below
        for k, v in out.items():
            if type(k) is not str or not k.isascii():  # noqa: E721 - a str subclass key is refused too
                raise EncodingError(f"keys must be ASCII strings, got {k!r}")
            vt = type(v)
            if vt is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                    raise EncodingError(f"{k}: integer {v} is outside ±(2**53-1)")
            elif not (vt is str or vt is bool or v is None):
                out[k] = _plain(v, depth + 1)  # replacing a key's value while iterating is allowed
        return out
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, float):
        raise EncodingError(f"float {value!r}: floats are not allowed (use integer yen / ms)")
    if isinstance(value, int):  # an IntEnum, say (bool is caught above: it cannot be subclassed)
        return _plain(int.__int__(value), depth)
    if isinstance(value, str):
        return str.__str__(value)
    raise EncodingError(f"{t.__name__} cannot be encoded (tuples, bytes, sets... are not JSON values here)")
