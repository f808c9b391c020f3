"""Canonical bodies: round trips, the fast path equals RFC 8785, and every non-canonical form is refused."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from enum import IntEnum
from pathlib import Path

import msgspec
import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kiosk.ledger import encoding
from kiosk.ledger.encoding import (
    EncodingError,
    Envelope,
    build_body,
    build_entry,
    canonical,
    fast_canonical,
    new_entry,
    parse_body,
)
from tests.json_strategies import ascii_keys, scalars, values

# The edges of the domain the encoders must agree on: every control character (short escapes and \u00xx),
# DEL and U+2028/2029 (written as they are), quotes, backslashes and slashes, non-ASCII up to the astral
# planes, the safe-integer bounds and their neighbours, empty containers, and key order.
_EDGES = [
    "".join(map(chr, range(0x20))), "\x7f", "\u2028\u2029", "a\u2028b", '"\\/', "</script>", "é", "寄付 ありがとう",
    "\U0001f600\U0010ffff", "\ufeff\ufffd\uffff", "", 2**53 - 1, -(2**53 - 1), 2**53 - 2, 0, -1, True, False, None, [],
    {}, [[{}]], {"b": 1, "a": {"d": [1, True, None], "c": -0}, "B": "x", "_": 0, "~": 1, "": 2},
    {"x": ["\x00", "\u2029", -(2**53 - 1), {"k": "\u00e9\n"}]},
]


@settings(max_examples=400, deadline=None)
@given(values)
@example(_EDGES)
def test_fast_encoder_is_byte_identical_to_rfc8785(value):
    # Both encoders, whichever fast_canonical uses: msgspec's (kiosk and portal extras) and the standard
    # library's (a base install).
    want = rfc8785.dumps(value)
    assert fast_canonical(value) == want == canonical(value)
    assert encoding.json_canonical(value) == want
    assert msgspec.json.Encoder(order="sorted").encode(value) == want


@pytest.mark.parametrize("value", _EDGES)
def test_each_edge_value_is_encoded_as_rfc8785(value):
    assert fast_canonical(value) == rfc8785.dumps(value) == encoding.json_canonical(value)
    assert fast_canonical({"data": value}) == rfc8785.dumps({"data": value})


def test_fast_canonical_uses_msgspec_where_installed():
    # Else the property above would prove an encoder the ledger does not use.
    assert encoding._encode is not encoding.json_canonical
    assert isinstance(getattr(encoding._encode, "__self__", None), msgspec.json.Encoder)


def test_without_msgspec_the_same_bodies_come_from_the_standard_library():
    """A base install (no kiosk or portal extra) has no msgspec: the ledger still writes and checks the same
    bytes, with ``json``."""
    data = {"action": "x", "s": "".join(map(chr, range(0x20))) + "\u2028é\U0001f600", "n": [2**53 - 1, -(2**53 - 1)]}
    with_msgspec = build_entry(ENV, "admin_action", data)[0]
    code = (
        "import sys; sys.modules['msgspec'] = None; sys.modules['msgspec.json'] = None\n"
        "from kiosk.ledger import encoding as e\n"
        "assert e._encode is e.json_canonical, e._encode\n"
        f"env = e.Envelope{dataclasses.astuple(ENV)!r}\n"
        f"body = e.build_entry(env, 'admin_action', {data!r})[0]\n"
        "assert e.parse_body(body)\n"
        "sys.stdout.buffer.write(body)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout == with_msgspec


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(ascii_keys, values, max_size=6))
def test_round_trip(data):
    env = Envelope("k-1", "00" * 8, 7, bytes(32), 1, 123, 1_700_000_000_000, True)
    body = build_body(env, "admin_action", {"action": "x", **{"f" + k: v for k, v in data.items()}})
    obj = parse_body(body)
    assert canonical(obj) == body
    assert obj["data"]["action"] == "x"
    assert {k[1:]: v for k, v in obj["data"].items() if k != "action"} == data


def _body(**over):
    env = Envelope("k-1", "00" * 8, 1, bytes(32), 0, 5, 1_700_000_000_000, False)
    return build_body(env, "admin_action", {"action": "menu_open", **over})


@pytest.mark.parametrize("mutate,reason", [
    (lambda b: b.replace(b'","', b'", "', 1), "canonical"),  # whitespace
    (lambda b: b'{"v":1,' + b[1:].replace(b',"v":1', b""), "canonical"),  # key order
    (lambda b: b.replace(b'"seq":1', b'"seq":1.0'), "float"),
    (lambda b: b.replace(b'"seq":1', b'"seq":1e0'), "float"),
    (lambda b: b.replace(b'"boot":0', b'"boot":9007199254740993'), r"2\*\*53"),
    (lambda b: b.replace(b'"boot":0', b'"boot":NaN'), "NaN"),
    (lambda b: b.replace(b'"v":1,', b'"v":1,"v":1,'), "duplicate"),
    (lambda b: b.replace(b'"action"', b'"\\u0061ction"'), "canonical"),  # needless escape
    (lambda b: b.replace(b'menu_open', b'\\ud800'), "surrogate"),
    (lambda b: b[:-1], "JSON"),
    (lambda b: b"\xff" + b, "UTF-8"),
    (lambda b: b"[1]", "object"),
])
def test_non_canonical_or_out_of_domain_bodies_are_refused(mutate, reason):
    body = _body()
    parse_body(body)
    bad = mutate(body)
    assert bad != body
    with pytest.raises(EncodingError, match=reason):
        parse_body(bad)


@pytest.mark.parametrize("value", [1.5, float("nan"), 2**53, -(2**53), {1: "x"}, {"ü": 1}, b"bytes", "\ud800", (1, 2),
                                   {"a": [1, {"b": 2.5}]}, {"a": (1,)}, {2**60: 1}, {"x"}])
def test_writer_refuses_values_outside_the_domain(value):
    with pytest.raises(EncodingError):
        _body(extra=value)


def test_envelope_checks():
    obj = json.loads(_body())
    for key, bad in [("type", "party"), ("prev", "AB" * 32), ("prev", "zz" * 32), ("seq", 0), ("clock_synced", 1),
                     ("v", 2)]:
        broken = dict(obj, **{key: bad})
        with pytest.raises(EncodingError):
            parse_body(rfc8785.dumps(broken))
    with pytest.raises(EncodingError, match="lacks"):
        parse_body(rfc8785.dumps({k: v for k, v in obj.items() if k != "wall_ms"}))
    with pytest.raises(EncodingError, match="unknown keys"):
        parse_body(rfc8785.dumps(dict(obj, extra=1)))
    with pytest.raises(EncodingError, match="donation data lacks"):
        parse_body(rfc8785.dumps(dict(obj, type="donation")))


class _Colour(IntEnum):
    RED = 7


class _Name(str):
    pass


# Anything a caller might hand the writer, in domain or not: floats, big integers, bytes, tuples, sets, int and
# non-ASCII keys, lone surrogates, an IntEnum, a str subclass.
anything_scalar = (scalars | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.binary(max_size=4)
                   | st.text(max_size=6) | st.just(_Colour.RED) | st.builds(_Name, st.text(max_size=5))
                   | st.frozensets(st.integers(0, 3), max_size=2))
anything = st.recursive(
    anything_scalar,
    lambda inner: (st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(st.text(max_size=4) | st.integers(-2, 2) | st.builds(_Name, ascii_keys), inner,
                                     max_size=3)),
    max_leaves=20)
ENV = Envelope("k-1", "00" * 8, 7, bytes(32), 1, 123, 1_700_000_000_000, True)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(ascii_keys, anything, max_size=5))
def test_whatever_build_entry_emits_passes_the_verifier(data):
    """build_entry no longer parses its own bytes back: what it returns must be exactly what the verifier's
    parse of those bytes gives, for in-domain and out-of-domain input alike (the rest it must refuse)."""
    given_data = {"action": "x", **{"f" + k: v for k, v in data.items()}}
    try:
        body, obj = build_entry(ENV, "admin_action", given_data)
    except EncodingError:
        return
    parsed = parse_body(body)  # the verifier's full check: canonical, in domain, envelope
    assert parsed == obj
    assert fast_canonical(obj) == body
    assert _exact_types(obj)  # no tuple, subclass or alias of the caller's objects survives


def _exact_types(v) -> bool:  # noqa: ANN001
    if type(v) is dict:
        return all(type(k) is str and _exact_types(x) for k, x in v.items())
    if type(v) is list:
        return all(_exact_types(x) for x in v)
    return v is None or type(v) in (str, int, bool)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ascii_keys, values, max_size=6))
def test_build_entry_refuses_no_in_domain_value(data):
    body, obj = build_entry(ENV, "admin_action", {"action": "x", **{"f" + k: v for k, v in data.items()}})
    assert parse_body(body) == obj


def test_build_entry_keeps_no_reference_to_the_callers_data():
    data = {"action": "x", "nested": {"a": [1, 2]}}
    _, obj = build_entry(ENV, "admin_action", data)
    data["nested"]["a"].append(3)
    data["action"] = "y"
    assert obj["data"] == {"action": "x", "nested": {"a": [1, 2]}}


def test_subclasses_are_written_and_kept_as_their_plain_values():
    body, obj = build_entry(ENV, "admin_action", {"action": _Name("menu_open"), "n": _Colour.RED})
    assert parse_body(body) == obj and type(obj["data"]["action"]) is str and type(obj["data"]["n"]) is int
    assert b'"n":7' in body


@pytest.mark.parametrize("field,bad", [("mono_ms", 5.0), ("wall_ms", 2**53), ("seq", 0), ("boot", -1), ("kiosk", 3),
                                       ("clock_synced", 1), ("key_id", b"00"), ("seq", 2**53), ("boot", 2**53),
                                       ("mono_ms", 2**53), ("wall_ms", -1), ("seq", True), ("boot", _Colour.RED),
                                       ("kiosk", "k\ud800"), ("key_id", _Name("00")), ("prev", bytes(31)),
                                       ("clock_synced", None)])
def test_build_entry_refuses_an_out_of_domain_envelope(field, bad):
    env = dataclasses.replace(ENV, **{field: bad})
    with pytest.raises(EncodingError):
        build_entry(env, "admin_action", {"action": "x"})


@pytest.mark.parametrize("field,edge", [("seq", 2**53 - 1), ("boot", 2**53 - 1), ("mono_ms", 2**53 - 1),
                                        ("wall_ms", 2**53 - 1), ("boot", 0), ("mono_ms", 0), ("wall_ms", 0),
                                        ("seq", 1), ("kiosk", "公民館-1\u2028"), ("clock_synced", False)])
def test_build_entry_takes_the_envelope_up_to_its_edges(field, edge):
    env = dataclasses.replace(ENV, **{field: edge})
    body, obj = build_entry(env, "admin_action", {"action": "x"})
    assert parse_body(body) == obj and obj[field] == edge


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ascii_keys, anything, max_size=4), st.integers(-1, 2**53 + 1), st.integers(-1, 2**53 + 1),
       st.text(max_size=4) | st.integers(0, 1), st.booleans() | st.integers(0, 1))
def test_whatever_new_entry_emits_passes_the_verifier(data, seq, wall, kiosk, synced):
    """The writer's call, envelope fields as arguments and held to exact types by check_envelope instead of
    copied: every body it returns parses, in the verifier's full check, to the object returned; in-domain
    envelopes with in-domain data are never refused."""
    given_data = {"action": "x", **{"f" + k: v for k, v in data.items()}}
    try:
        body, obj = new_entry(kiosk, "00" * 8, seq, bytes(32), 1, 123, wall, synced, "admin_action", given_data)
    except EncodingError:
        in_domain = (1 <= seq < 2**53 and 0 <= wall < 2**53 and type(kiosk) is str and _in_domain(kiosk)
                     and type(synced) is bool)
        assert not (in_domain and _in_domain(given_data)), (seq, wall, kiosk, synced, given_data)
        return
    assert parse_body(body) == obj
    assert fast_canonical(obj) == body and _exact_types(obj)


def _in_domain(v) -> bool:  # noqa: ANN001
    if type(v) is dict:
        return all(type(k) is str and k.isascii() and _in_domain(x) for k, x in v.items())
    if type(v) is list:
        return all(_in_domain(x) for x in v)
    if type(v) is int:
        return -(2**53) < v < 2**53
    if type(v) is str:
        return not any("\ud800" <= c <= "\udfff" for c in v)
    return v is None or type(v) is bool


def test_build_entry_refuses_missing_data_keys_and_unknown_types():
    with pytest.raises(EncodingError, match="lacks"):
        build_entry(ENV, "donation", {"project": "p"})
    with pytest.raises(EncodingError, match="unknown entry type"):
        build_entry(ENV, "party", {})
