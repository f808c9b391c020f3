"""First-run secrets: keys made under their configured names, a half-made pair completed."""

from __future__ import annotations

import stat

import pytest

from kiosk.config import validate_config
from kiosk.ledger import keys
from kiosk.ops.local_files import ensure_secrets


def _cfg(tmp_path):  # noqa: ANN001, ANN202
    return validate_config({"kiosk": {"id": "k-1", "data_dir": "data"},
                            "keys": {"private_key": "secret/signing.pem", "public_key": "public/signing.pub"}},
                           "<test>", tmp_path)


def test_keys_are_written_straight_under_the_configured_names(tmp_path):
    cfg = _cfg(tmp_path)
    ensure_secrets(cfg)
    assert stat.S_IMODE(cfg.private_key_path.stat().st_mode) == 0o600
    assert keys.public_raw(keys.load_public(cfg.public_key_path)) == keys.public_raw(
        keys.load_private(cfg.private_key_path).public_key())
    # No kiosk.key left beside them: a crash there used to block the next start ("already exists").
    assert sorted(p.name for p in cfg.private_key_path.parent.iterdir()) == ["signing.pem"]
    assert cfg.pepper_path.exists()


def test_a_missing_public_key_is_derived_from_the_private_one(tmp_path):
    cfg = _cfg(tmp_path)
    ensure_secrets(cfg)
    before = cfg.private_key_path.read_bytes()
    cfg.public_key_path.unlink()  # a power cut between the two files
    ensure_secrets(cfg)
    assert cfg.private_key_path.read_bytes() == before
    assert keys.public_raw(keys.load_public(cfg.public_key_path)) == keys.public_raw(
        keys.load_private(cfg.private_key_path).public_key())


def test_a_private_key_with_a_damaged_algorithm_identifier_is_a_key_error(tmp_path):
    """One flipped byte in the PKCS#8 algorithm OID (1.3.101.112, Ed25519, to 1.3.101.99): cryptography raises
    UnsupportedAlgorithm, not a ValueError, and `kiosk run` ended in a traceback instead of naming the file."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    der = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    damaged = der.replace(bytes.fromhex("06032b6570"), bytes.fromhex("06032b6563"))
    assert damaged != der
    p = tmp_path / "kiosk.key"
    p.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(damaged) + b"-----END PRIVATE KEY-----\n")
    with pytest.raises(keys.KeyError_, match="kiosk.key"):
        keys.load_private(p)

