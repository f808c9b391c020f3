"""Canonical bodies: round trips, the fast path equals RFC 8785, and every non-canonical form is refused."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger.encoding import (
    MAX_SAFE_INT,
    EncodingError,
    Envelope,
    build_body,
    canonical,
    fast_canonical,
    parse_body,
)

ascii_keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)  # any text but lone surrogates
)
values = st.recursive(scalars,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_keys, inner, max_size=4),
                      max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(values)
def test_fast_encoder_is_byte_identical_to_rfc8785(value):
    assert fast_canonical(value) == rfc8785.dumps(value) == canonical(value)


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


@pytest.mark.parametrize("value", [1.5, float("nan"), 2**53, -(2**53), {1: "x"}, {"ü": 1}, b"bytes", "\ud800"])
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
