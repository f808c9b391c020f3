"""Files the kiosk writes, cut right after the call that wrote them returned: each must be there.

Each test is a fix the power-cut campaign called for: a new directory is an entry in its parent, and
a new SQLite file is an entry in its directory; fsyncing what is inside keeps neither.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from powercutfs import PowerCutMount

from kiosk.ledger import Ledger, Pepper, keys
from kiosk.ledger.durable import move_durably, write_atomic


def test_write_atomic_into_new_directories_survives_a_cut(pcfs: PowerCutMount) -> None:
    p = pcfs.mountpoint / "kiosk-data" / "keys" / "pepper.json"
    write_atomic(p, "{}")
    pcfs.reboot()
    assert p.read_text() == "{}"


def test_first_boot_key_and_pepper_survive_a_cut(pcfs: PowerCutMount) -> None:
    data = pcfs.mountpoint / "data"
    keys.generate_at(data / "keys" / "kiosk.key", data / "keys" / "kiosk.pub")
    pepper = Pepper.create(data / "pepper.json")
    sk = keys.load_private(data / "keys" / "kiosk.key")
    pcfs.reboot()
    assert keys.load_private(data / "keys" / "kiosk.key").public_key() == sk.public_key()
    assert Pepper.load(data / "pepper.json").token(b"12345678") == pepper.token(b"12345678")


def test_a_new_ledger_and_its_first_entries_survive_a_cut(pcfs: PowerCutMount) -> None:
    path = pcfs.mountpoint / "data" / "ledger.db"
    sk = Ed25519PrivateKey.generate()
    led = Ledger.open(path, sk, "power-1", checkpoint_every=1000)
    size = led.size
    assert size >= 1
    pcfs.cut()
    led.close(checkpoint=False)  # nothing to write: the engine lets go of the files
    pcfs.unmount()
    pcfs.mount()
    led = Ledger.open(path, sk, "power-1", boot=False)
    try:
        assert led.size >= size
    finally:
        led.close(checkpoint=False)


def test_move_durably_into_a_new_directory_survives_a_cut(pcfs: PowerCutMount, tmp_path: Path) -> None:
    src = pcfs.mountpoint / "import.tmp"
    src.write_bytes(b"movie")
    dst = pcfs.mountpoint / "media" / "abc.mp4"
    move_durably(src, dst)
    pcfs.reboot()
    assert dst.read_bytes() == b"movie"
