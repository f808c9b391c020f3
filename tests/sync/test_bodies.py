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
from kiosk.ledger.encoding import EncodingError, Envelope, build_body
from server_sync import bodies, ingest
from server_sync.errors import PortalError
from server_sync.wire import protocol as P
from tests.json_strategies import ascii_keys, values


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
    lambda b: b.replace(b'"boot":0', '"boot":0,"bé":0'.encode()),  # a non-ASCII envelope key, non-ASCII body
    lambda b: b.replace(b'"action":"menu_open"', '"action":"—"'.encode()).replace(b'"boot":0', '"bé":0'.encode()),
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
    # Integers bounded by the fast parser's types, at each level of data it types, and past them.
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":{"a":9007199254740993}'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[{"a":-9007199254740993}]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[[9007199254740992]]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[[[9007199254740993]]]'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":[[[1]]]'),  # valid, deeper
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":{"a":[{"b":1.5}]}'),
    lambda b: b.replace(b'"action":"menu_open"', b'"action":"menu_open","x":{"a":[{"b":1}]}'),  # valid, deeper
    lambda b: b.replace(b'"seq":1', b'"seq":9007199254740992'),
    lambda b: b.replace(b'"mono_ms":5', b'"mono_ms":9007199254740991'),  # valid
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


@pytest.mark.parametrize("data", [
    {"action": "menu_open", "wall": 9007199254740991, "low": -9007199254740991},  # 16 digits, in the domain
    {"action": "close", "projects": [{"id": "p1", "count": 2, "total_yen": 1000}], "totals": {"kiosk_yen": 5}},
    {"action": "x", "nested": [[1, 2], {"a": None}], "flags": [True, False, None, "s"]},
])
def test_the_fast_path_takes_in_domain_integers_and_the_ledgers_nesting(monkeypatch, data):
    # The types bound the integers where a scan for 16-digit runs sent such bodies to the slow parser.
    body = _body(**data)
    monkeypatch.setattr(encoding, "parse_body", lambda b: pytest.fail("slow path taken"))
    assert bodies.parse_body(body) == json.loads(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**70), 2**70) | st.text(st.sampled_from("0123456789:,[-a"), max_size=40),
                min_size=1, max_size=4))
def test_integers_near_and_past_the_domain_edge_get_the_same_verdict(xs):
    body = _body().replace(b'"action":"menu_open"', b'"action":"menu_open","x":' + json.dumps(
        xs, separators=(",", ":")).encode())
    assert _verdict(bodies.parse_body, body) == _verdict(encoding.parse_body, body)


# --- the envelope rules msgspec checks while decoding (bodies._Body) and the data rules after it ---------------
def _required_data(kind: str) -> dict:
    """The keys ``kind`` requires, each with a value of its type (a bounded or typed integer 1, else "x")."""
    ints = set(encoding._DATA_INTS) | {k for k, types in encoding._DATA_TYPES.get(kind, ()) if types == (int,)}
    return {k: (1 if k in ints else "x") for k in sorted(encoding.REQUIRED_DATA[kind])}


def _typed_body(kind="admin_action", data=None, **env):
    """A canonical body of type ``kind`` (its required data by default) with envelope fields set to anything
    (out-of-domain values included: the json encoder writes what it is given)."""
    if data is None:
        data = _required_data(kind)
    obj = {"v": 1, "kiosk": "k-1", "key_id": "ab" * 8, "seq": 3, "prev": "cd" * 32, "boot": 1, "mono_ms": 5,
           "wall_ms": 1_700_000_000_000, "clock_synced": False, "type": kind, "data": data, **env}
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_decoded_type_names_every_envelope_field():
    # A field check_envelope gained would be unknown to _Body, so such bodies would only take the slow path
    # (decoding leaves the field out, the re-encode differs): right, but slow. This says to add it.
    assert set(bodies._Body.__annotations__) == encoding.ENVELOPE_KEYS


@pytest.mark.parametrize("kind", encoding.ENTRY_TYPES)
def test_every_entry_type_takes_the_fast_path(monkeypatch, kind):
    body = _typed_body(kind)
    want = encoding.parse_body(body)
    monkeypatch.setattr(encoding, "parse_body", lambda b: pytest.fail("slow path taken"))
    assert bodies.parse_body(body) == want


_ODD = [None, True, False, 0, 1, -1, 2, 2**53 - 1, "", "1", "x", "é", "0" * 64, "A" * 64, "g" * 64, "ab" * 31,
        "ab" * 33, " " + "ab" * 32, "ab" * 31 + "a ", "ab" * 31 + "a\n", "abcd" * 15 + "ab c", [], [1], {}, {"a": 1}]


@pytest.mark.parametrize("key", sorted(encoding.ENVELOPE_KEYS))
def test_any_value_of_an_envelope_field_gets_the_same_verdict_and_reason(key):
    for kind in ("admin_action", "checkpoint"):
        for value in [*_ODD, kind, "donation", "genesis", "nope", "Checkpoint"]:
            body = _typed_body(kind, **{key: value})
            assert _verdict(bodies.parse_body, body) == _verdict(encoding.parse_body, body), (kind, key, value)


@pytest.mark.parametrize("kind", encoding.ENTRY_TYPES)
def test_the_data_rules_of_every_type_get_the_same_verdict_and_reason(kind):
    base = _required_data(kind)
    cases = [{k: v for k, v in base.items() if k != missing} for missing in base]  # each required key left out
    for key in encoding._DATA_INTS:  # each bounded integer, present or added, with every kind of value
        cases += [{**base, key: value} for value in _ODD]
    for key, _types in encoding._DATA_TYPES.get(kind, ()):  # each typed name or reference, with every kind of value
        cases += [{**base, key: value} for value in _ODD]
    cases += [{**base, "é": 1}, {**base, "x": [{"é": 1}]}, {**base, "x": {"y": {"é": 1}}},
              {**base, "x": [[{"a": "—"}]]}]
    for data in cases:
        body = _typed_body(kind, data)
        assert _verdict(bodies.parse_body, body) == _verdict(encoding.parse_body, body), (kind, data)


# --- batch documents -------------------------------------------------------------------------------------
def _doc(**over):
    entries = [(5 + i, _body(i=i), bytes([i]) * 64) for i in range(3)]
    doc = P.batch_document("kiosk-1", entries, "origin\n7\nroot\n\n— sig\n", 4, [bytes(32), bytes([1]) * 32])
    doc.update(over)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _pydantic_path(raw, kid="kiosk-1"):
    """ingest._parse_batch without the fast path: its answer, or its error."""
    real = bodies.batch
    try:
        bodies.batch = lambda *a: None
        req, ds = ingest._parse_batch(raw, kid)
        return "ok", _head(req), [(d.seq, d.body, d.signature, d.entry_hash) for d in ds]
    except PortalError as exc:
        return "refused", exc.status, exc.code
    finally:
        bodies.batch = real


def _head(req):
    return (req.protocol, req.kiosk_id, req.first_seq, req.last_seq, req.checkpoint,
            req.consistency.old_size, list(req.consistency.proof))


def _fast_agrees(raw, kid="kiosk-1"):
    fast = bodies.batch(raw, kid)
    slow = _pydantic_path(raw, kid)
    if fast is None:
        return True  # the original path answers; nothing to compare
    head, triples = fast
    assert slow[0] == "ok", (raw[:300], slow)  # the fast path never accepts what the original refuses
    assert _head(head) == slow[1]
    assert [(s, b, g, encoding.entry_hash(b)) for s, b, g in triples] == slow[2]
    return True


def _entry(i=0, **over):
    e = {"seq": 5 + i, "body": P.b64(_body(i=i)), "signature": P.b64(bytes([i]) * 64)}
    e.update(over)
    return e


_DOC_MUTATIONS = [
    {}, {"protocol": "kiosk-sync/2"}, {"protocol": "kiosk-sync/1\n"}, {"protocol": None}, {"kiosk_id": "kiosk-1\n"},
    {"kiosk_id": "kiosk-2"}, {"kiosk_id": "K"}, {"kiosk_id": 1}, {"first_seq": 0}, {"first_seq": True},
    {"first_seq": 5.0}, {"first_seq": "5"}, {"first_seq": 2**53}, {"last_seq": 8}, {"last_seq": 6},
    {"entries": []}, {"entries": [_entry(0)] * 1001}, {"entries": [_entry(0), _entry(2), _entry(1)]},
    {"entries": [_entry(0, seq=True), _entry(1), _entry(2)]},
    {"entries": [_entry(0, extra=1), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body="!!!!"), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=P.b64(_body()).rstrip("=")), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=" " + P.b64(_body())), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=P.b64(_body()) + "\n"), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=P.b64(b"x" * (16 * 1024 + 1))), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=P.b64(b"x" * (16 * 1024))), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=P.b64(b"x" * 30000)), _entry(1), _entry(2)]},
    {"entries": [_entry(0, signature=P.b64(bytes(63))), _entry(1), _entry(2)]},
    {"entries": [_entry(0, signature=P.b64(bytes(65))), _entry(1), _entry(2)]},
    {"entries": [_entry(0, signature=P.b64(bytes(70))), _entry(1), _entry(2)]},
    {"entries": [_entry(0, body=1)]},
    {"entries": [{"seq": 5, "body": P.b64(_body())}]},
    {"checkpoint": None}, {"checkpoint": "x" * 2001}, {"checkpoint": "x" * 2000}, {"checkpoint": 7},
    {"consistency": {"old_size": -1, "proof": []}}, {"consistency": {"old_size": 4, "proof": ["a"] * 65}},
    {"consistency": {"old_size": 4, "proof": [1]}}, {"consistency": {"old_size": 4}},
    {"consistency": {"old_size": 4, "proof": [], "x": 1}}, {"consistency": None}, {"extra": True},
]


@pytest.mark.parametrize("i", range(len(_DOC_MUTATIONS)))
def test_batch_documents_fast_path_never_accepts_more(i):
    assert _fast_agrees(_doc(**_DOC_MUTATIONS[i]))


@pytest.mark.parametrize("raw", [
    b"", b"[]", b"{", b"null", _doc()[:-1], _doc() + b"x", _doc() + b" ",
    _doc().replace(b'"first_seq":5', b'"first_seq":5,"first_seq":6'),
    _doc().replace(b'"protocol":"kiosk-sync/1",', b""), _doc().replace(b'"checkpoint":', b'"checkpoint":null,"c":'),
    _doc().replace(b'"first_seq":5', b'"first_seq":5,"first_seq":5'),
])
def test_malformed_batch_documents_fast_path_never_accepts_more(raw):
    assert _fast_agrees(raw)


def test_a_well_formed_batch_takes_the_fast_path():
    assert bodies.batch(_doc(), "kiosk-1") is not None
    assert bodies.batch(_doc(), "kiosk-2") is None  # addressed to another kiosk: the original says 403


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_edits_of_a_batch_document(data):
    raw = bytearray(_doc())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        byte = data.draw(st.sampled_from(b'{}[]",:.-+=/ 0123456789aAzZ\\\n\x00'))
        if data.draw(st.booleans()):
            raw[at:at] = bytes([byte])
        elif at < len(raw):
            raw[at:at + 1] = bytes([byte])
    assert _fast_agrees(bytes(raw))
