"""The pure pieces of city-wide tokens and my pages: sealed boxes (server_sync.wire.seal) and the one-time
request format (server_sync.wire.mypage). Real keys from ``cryptography``, nothing mocked."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from server_sync.wire import mypage as W
from server_sync.wire import seal

PEPPER = bytes(range(32))


def test_a_box_opens_only_with_its_key_and_for_its_domain_epoch_and_kiosk():
    k = X25519PrivateKey.generate()
    aad = seal.aad("city-a", 1000, "center-1f")
    box = seal.seal(k.public_key().public_bytes_raw(), PEPPER, aad)
    assert PEPPER not in box and seal.open_box(k, box, aad) == PEPPER
    assert seal.seal(k.public_key().public_bytes_raw(), PEPPER, aad) != box  # a fresh ephemeral key every time
    with pytest.raises(seal.SealError):
        seal.open_box(X25519PrivateKey.generate(), box, aad)  # another kiosk's key
    for other in (seal.aad("city-b", 1000, "center-1f"), seal.aad("city-a", 1001, "center-1f"),
                  seal.aad("city-a", 1000, "city-hall")):
        with pytest.raises(seal.SealError):
            seal.open_box(k, box, other)  # replayed as another domain, epoch or kiosk
    for i in (0, 5, 40, len(box) - 1):
        bad = bytearray(box)
        bad[i] ^= 1
        with pytest.raises(seal.SealError):
            seal.open_box(k, bytes(bad), aad)
    with pytest.raises(seal.SealError):
        seal.open_box(k, box[:20], aad)
    with pytest.raises(seal.SealError):
        seal.seal(b"short", PEPPER, aad)


def test_a_request_round_trips_and_its_signature_covers_every_field():
    sk = Ed25519PrivateKey.generate()
    text = W.make_request(sk, "center-1f", ["aa" * 16, "bb" * 16, "aa" * 16], 1_000, 180_000, nonce=b"\x07" * 16)
    r = W.parse_request(text)
    assert (r.kiosk_id, r.nonce, r.issued_ms, r.expires_ms, r.tokens) == (
        "center-1f", b"\x07" * 16, 1_000, 181_000, ("aa" * 16, "bb" * 16))  # a token named twice counts once
    assert r.verify(sk.public_key()) and not r.verify(Ed25519PrivateKey.generate().public_key())
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    for i in range(len(r.signed)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        try:
            got = W.parse_request(base64.urlsafe_b64encode(bytes(bad)).rstrip(b"=").decode())
        except W.MyPageRequestError:
            continue
        assert not got.verify(sk.public_key()), f"byte {i} is not covered by the signature"
    assert len(text) < 300  # it is a QR code on a lobby screen (2 epochs: 187 characters)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_is_refused_with_a_clear_error_never_a_crash(blob):
    text = base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    try:
        W.parse_request(text)
    except W.MyPageRequestError:
        pass


@pytest.mark.parametrize("tokens,err", [([], "1-16 tokens"), (["ab" * 17], "16 bytes"), (["zz" * 16], None)])
def test_bad_requests_are_refused_when_made(tokens, err):
    with pytest.raises(ValueError, match=err):
        W.make_request(Ed25519PrivateKey.generate(), "k1", tokens, 0, 1000)
