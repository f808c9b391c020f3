"""The portal's fast body parser (server_sync/bodies.py) gives kiosk.ledger.encoding.parse_body's verdict:
the same object for every body it accepts, the same error for every body it refuses."""

from __future__ import annotations

import json

import msgspec
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger import encoding
from kiosk.ledger.encoding import MAX_SAFE_INT, EncodingError, Envelope, build_body
from server_sync import bodies

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


def _verdict(parse, body):
    try:
        return "ok", parse(body)
    except EncodingError as exc:
        return "refused", str(exc)


@settings(max_examples=400, deadline=None)
@given(values)
def test_msgspec_sorted_encoding_is_rfc8785_on_the_ledger_domain(value):
    # The fast path's canonical test rests on this (as the ledger's rests on the json encoder's).
    assert bodies._ENCODER.encode(value) == rfc8785.dumps(value)


def _body(**over):
    # Hex ids without a 16-digit run, as nearly all real ones are (a run sends a body to the slow path).
    env = Envelope("k-1", "ab" * 8, 1, bytes([0xcd]) * 32, 0, 5, 1_700_000_000_000, False)
    return build_body(env, "admin_action", {"action": "menu_open", **over})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ascii_keys, values, max_size=6))
def test_valid_bodies_parse_to_the_same_object(data):
    body = _body(**{"f" + k: v for k, v in data.items()})
    assert bodies.parse_body(body) == encoding.parse_body(body)


# Bytes that a body may be mangled into: every non-canonical or out-of-domain form the ledger's own tests use,
# and random edits of a valid body (hypothesis), must get the same verdict and the same reason.
_MUTATIONS = [
    lambda b: b.replace(b'","', b'", "', 1),  # whitespace
    lambda b: b'{"v":1,' + b[1:].replace(b',"v":1', b""),  # key order
    lambda b: b.replace(b'"seq":1', b'"seq":1.0'),
    lambda b: b.replace(b'"seq":1', b'"seq":1e0'),
    lambda b: b.replace(b'"seq":1', b'"seq":-0'),
    lambda b: b.replace(b'"seq":1', b'"seq":01'),
    lambda b: b.replace(b'"boot":0', b'"boot":9007199254740993'),
    lambda b: b.replace(b'"boot":0', b'"boot":900719925474099'),  # 15 digits: in domain, fast path
    lambda b: b.replace(b'"boot":0', b'"boot":9007199254740991'),  # 2**53 - 1: in domain, 16 digits
    lambda b: b.replace(b'"boot":0', b'"boot":-9007199254740993'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[1,9007199254740993]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[9007199254740993]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[-9007199254740993]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":["a:1234567890123456789"]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":-99999999999999999999999'),
    lambda b: b.replace(b'"boot":0', b'"boot":NaN'),
    lambda b: b.replace(b'"boot":0', b'"boot":Infinity'),
    lambda b: b.replace(b'"v":1,', b'"v":1,"v":1,'),
    lambda b: b.replace(b'"action"', b'"\\u0061ction"'),
    lambda b: b.replace(b'menu_open', b'\\ud800'),
    lambda b: b.replace(b'menu_open', b'\\u00e9'),
    lambda b: b.replace(b'menu_open', "é".encode()),
    lambda b: b.replace(b'"action"', '"é"'.encode()),
    lambda b: b.replace(b'"action":"menu_open"', '"action":"menu_open","x":{"é":1}'.encode()),
    lambda b: b.replace(b'"action":"menu_open"', '"action":"menu_open","x":[{"ab":"—"},{"é":1}]'.encode()),
    lambda b: b.replace(b'"action":"menu_open"', '"action":"—","x":[{"ab":"—"}]'.encode()),  # valid, non-ASCII
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":' + b"[" * 3000 + b"]" * 3000),
    lambda b: b.replace(b'menu_open', b'\\/'),
    lambda b: b.replace(b'menu_open', b'\\u001f'),
    lambda b: b.replace(b'menu_open', b'\\u001F'),
    lambda b: b.replace(b'menu_open', b'\x1f'),
    lambda b: b.replace(b'menu_open', b'\\t'),
    lambda b: b.replace(b'menu_open', b'\\u0009'),
    lambda b: b.replace(b'"clock_synced":false', b'"clock_synced":0'),
    lambda b: b.replace(b'"clock_synced":false', b'"clock_synced":null'),
    lambda b: b.replace(b'"type":"admin_action"', b'"type":"party"'),
    lambda b: b + b" ",
    lambda b: b" " + b,
    lambda b: b + b"\n",
    lambda b: b + b"{}",
    lambda b: b[:-1],
    lambda b: b"\xff" + b,
    lambda b: b"[1]",
    lambda b: b'"x"',
    lambda b: b"1",
    lambda b: b"",
    lambda b: b"{}",
    lambda b: b"[" * 5000 + b"]" * 5000,
]


@pytest.mark.parametrize("i", range(len(_MUTATIONS)))
def test_mangled_bodies_get_the_same_verdict_and_reason(i):
    body = _MUTATIONS[i](_body())
    assert _verdict(bodies.parse_body, body) == _verdict(encoding.parse_body, body)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_random_edits_get_the_same_verdict_and_reason(data):
    body = bytearray(_body(note=data.draw(values)))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(b'{}[]",:.-+eE0123456789 \\u/tnfalsrx\x00\x7f\xc3\xa9'))
        if op == "insert":
            body[at:at] = bytes([byte])
        elif at < len(body):
            body[at:at + 1] = b"" if op == "delete" else bytes([byte])
    body = bytes(body)
    assert _verdict(bodies.parse_body, body) == _verdict(encoding.parse_body, body)


@pytest.mark.parametrize("note", ["plain", "— a checkpoint note's em dash", "日本語"])
def test_the_fast_path_is_taken_for_an_ordinary_body(monkeypatch, note):
    # Not a timing test: only that a plain body does not fall through to the slow parser.
    body = _body(note=note)
    monkeypatch.setattr(encoding, "parse_body", lambda b: pytest.fail("slow path taken"))
    assert bodies.parse_body(body) == json.loads(body)
    assert isinstance(bodies._DECODER, msgspec.json.Decoder)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**70), 2**70) | st.text(st.sampled_from("0123456789:,[-a"), max_size=40),
                min_size=1, max_size=4))
def test_integers_near_and_past_the_domain_edge_get_the_same_verdict(xs):
    body = _body().replace(b'"action":"menu_open"', b'"action":"menu_open","x":' + json.dumps(
        xs, separators=(",", ":")).encode())
    assert _verdict(bodies.parse_body, body) == _verdict(encoding.parse_body, body)
