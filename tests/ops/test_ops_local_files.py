"""First-run secrets: keys made under their configured names, a half-made pair completed."""

from __future__ import annotations

import stat

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
