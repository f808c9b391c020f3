"""The writer's Ed25519 signer: libsodium where installed, byte for byte what ``cryptography`` signs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger import Ledger, Pepper, verify_path
from kiosk.ledger import checkpoint as cpmod
from kiosk.ledger.signing import Signer

ROOT = Path(__file__).parents[2]


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=600))
def test_libsodium_signs_the_same_bytes_as_cryptography(seed, message):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signer = Signer(key)
    assert signer.backend == "libsodium"  # PyNaCl is in the kiosk extra, which the tests install
    sig = signer.sign(message)
    assert sig == key.sign(message)  # Ed25519 is deterministic (RFC 8032)
    key.public_key().verify(sig, message)


def test_the_ledger_signs_entries_and_notes_with_the_fast_signer(tmp_path):
    key = Ed25519PrivateKey.generate()
    pepper = Pepper.create(tmp_path / "pepper.json")
    led = Ledger.open(tmp_path / "ledger.db", key, "k-sign")
    assert led._signer.backend == "libsodium"
    intent = led.record_intent("p-1", 300, "sim", pepper.token(b"\x01" * 8), "idem-1")
    gift = led.record_donation(intent.seq, "sim-1", 3)
    note = led.checkpoint()
    for entry in (intent, gift):
        assert entry.signature == key.sign(entry.entry_hash)
    assert cpmod.open_note(note, key.public_key()).size == gift.seq  # the note covers every entry so far
    led.close()
    assert verify_path(tmp_path / "ledger.db").ok


def test_a_ledger_opened_without_libsodium_switches_to_it_mid_chain(tmp_path):
    """`kiosk run` opens the ledger signing with cryptography and switches after READY=1 (cold start, #16):
    the entries before and after the switch are the same bytes either would sign, and a later rekey keeps
    libsodium."""
    key = Ed25519PrivateKey.generate()
    pepper = Pepper.create(tmp_path / "pepper.json")
    led = Ledger.open(tmp_path / "ledger.db", key, "k-later", libsodium=False)
    assert led._signer.backend == "cryptography"
    before = led.record_intent("p-1", 300, "sim", pepper.token(b"\x01" * 8), "idem-1")
    assert led.use_libsodium() and led._signer.backend == "libsodium"
    assert led.use_libsodium()  # a second call changes nothing
    after = led.record_donation(before.seq, "sim-1", 3)
    for entry in (before, after):
        assert entry.signature == key.sign(entry.entry_hash)
    new = Ed25519PrivateKey.generate()
    led.rekey(new)
    assert led._signer.backend == "libsodium"
    led.close()
    assert verify_path(tmp_path / "ledger.db").ok


def test_a_rekeyed_ledger_signs_with_the_new_key(tmp_path):
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    led = Ledger.open(tmp_path / "ledger.db", old, "k-rekey")
    led.rekey(new)
    entry = led.append("admin_action", {"action": "after rekey"})
    assert entry.signature == new.sign(entry.entry_hash)
    led.close()
    assert verify_path(tmp_path / "ledger.db").ok


SEED = bytes(range(32))


def _child_signs(prelude: str) -> str:
    """What a fresh interpreter, after ``prelude``, says a ``Signer`` of SEED is and signs for b"entry hash"."""
    code = prelude + (
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
        "from kiosk.ledger.signing import Signer\n"
        f"s = Signer(Ed25519PrivateKey.from_private_bytes({SEED!r}))\n"
        "print(s.backend, s.sign(b'entry hash').hex())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def test_without_pynacl_cryptography_signs_the_same_bytes():
    """A base install (an auditor's, no kiosk extra) has no PyNaCl: the writer signs with cryptography."""
    want = Ed25519PrivateKey.from_private_bytes(SEED).sign(b"entry hash").hex()
    got = _child_signs("import sys; sys.modules['nacl'] = None; sys.modules['nacl.bindings'] = None\n")
    assert got == f"cryptography {want}"


def test_a_libsodium_that_disagrees_is_not_used():
    """The once-per-key self-check: a libsodium whose signature differs from cryptography's (here a stand-in
    module at the library's seam that signs wrongly) is never used to sign an entry."""
    want = Ed25519PrivateKey.from_private_bytes(SEED).sign(b"entry hash").hex()
    got = _child_signs(
        "import sys, types\n"
        "import nacl.bindings as real\n"
        "fake = types.ModuleType('nacl.bindings')\n"
        "fake.crypto_sign_seed_keypair = real.crypto_sign_seed_keypair\n"
        "fake.crypto_sign = lambda m, sk: bytes(64) + m\n"
        "sys.modules['nacl.bindings'] = fake\n")
    assert got == f"cryptography {want}"
