"""The power-cut filesystem itself: what a cut keeps and what it throws away.

Each test writes through a real FUSE mount, cuts the power (``cut``: unsynced changes are undone and the
filesystem answers EIO), unmounts and mounts the same backing directory again, and looks at what is left.
"""

from __future__ import annotations

import errno
import mmap
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from powercutfs import PowerCutMount

from kiosk.ledger.durable import fsync_dir, write_atomic


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_file(m: PowerCutMount, name: str, content: bytes) -> Path:
    """A file whose content and name are both on disk."""
    p = m.mountpoint / name
    p.write_bytes(content)
    fsync_file(p)
    fsync_dir(p.parent)
    assert m.pending()["names"] == 0 and m.pending()["files"] == 0
    return p


def reboot(m: PowerCutMount) -> dict:
    out = m.reboot()
    assert m.pending() == {"names": 0, "files": 0, "pages": 0, "dead": 0}
    return out


def test_unsynced_write_is_lost_on_a_cut(pcfs: PowerCutMount) -> None:
    p = durable_file(pcfs, "a.txt", b"old content")
    with open(p, "r+b") as f:
        f.write(b"NEW")
        f.seek(0, os.SEEK_END)
        f.write(b" and more")
    assert p.read_bytes() == b"NEW content and more"
    reboot(pcfs)
    assert p.read_bytes() == b"old content"


def test_synced_write_survives_a_cut(pcfs: PowerCutMount) -> None:
    p = durable_file(pcfs, "a.txt", b"old content")
    with open(p, "r+b") as f:
        f.write(b"NEW")
        f.flush()
        os.fdatasync(f.fileno())
        f.write(b"xx")  # after the sync: lost
    reboot(pcfs)
    assert p.read_bytes() == b"NEW content"


def test_a_cut_undoes_a_truncate_and_an_extension(pcfs: PowerCutMount) -> None:
    big = os.urandom(3 * 4096 + 100)
    p = durable_file(pcfs, "big.bin", big)
    os.truncate(p, 10)
    with open(p, "ab") as f:
        f.write(b"tail" * 5000)
    with open(p, "wb") as f:  # O_TRUNC through open
        f.write(b"short")
    reboot(pcfs)
    assert p.read_bytes() == big


def test_a_file_synced_but_its_directory_not_vanishes(pcfs: PowerCutMount) -> None:
    p = pcfs.mountpoint / "new.txt"
    p.write_bytes(b"data")
    fsync_file(p)
    reboot(pcfs)
    assert not p.exists()


def test_an_unsynced_rename_is_undone(pcfs: PowerCutMount) -> None:
    target = durable_file(pcfs, "state.json", b'{"v": 1}')
    tmp = pcfs.mountpoint / ".state.json.tmp"
    tmp.write_bytes(b'{"v": 2}')
    fsync_file(tmp)
    os.replace(tmp, target)
    assert target.read_bytes() == b'{"v": 2}'
    reboot(pcfs)
    assert target.read_bytes() == b'{"v": 1}'  # the replaced file comes back, the same inode
    assert not tmp.exists()  # its creation was never made durable either


def test_a_synced_directory_keeps_the_rename(pcfs: PowerCutMount) -> None:
    target = durable_file(pcfs, "state.json", b'{"v": 1}')
    tmp = pcfs.mountpoint / ".state.json.tmp"
    tmp.write_bytes(b'{"v": 2}')
    fsync_file(tmp)
    os.replace(tmp, target)
    fsync_dir(pcfs.mountpoint)
    reboot(pcfs)
    assert target.read_bytes() == b'{"v": 2}'
    assert sorted(os.listdir(pcfs.mountpoint)) == ["state.json"]


def test_a_rename_without_the_file_sync_keeps_the_name_but_not_the_data(pcfs: PowerCutMount) -> None:
    """The classic bug: rename made durable, but the new file's data never synced → an empty file."""
    target = durable_file(pcfs, "state.json", b'{"v": 1}')
    tmp = pcfs.mountpoint / ".state.json.tmp"
    tmp.write_bytes(b'{"v": 2}')
    os.replace(tmp, target)
    fsync_dir(pcfs.mountpoint)
    reboot(pcfs)
    assert target.read_bytes() == b""


def test_unlink_and_rmdir_are_undone_unless_the_directory_is_synced(pcfs: PowerCutMount) -> None:
    keep = durable_file(pcfs, "keep.txt", b"k")
    gone = durable_file(pcfs, "gone.txt", b"g")
    (pcfs.mountpoint / "d").mkdir()
    fsync_dir(pcfs.mountpoint)
    keep.unlink()
    (pcfs.mountpoint / "d").rmdir()
    reboot(pcfs)
    assert keep.read_bytes() == b"k" and (pcfs.mountpoint / "d").is_dir()
    gone.unlink()
    fsync_dir(pcfs.mountpoint)
    reboot(pcfs)
    assert not gone.exists() and keep.exists()
    assert sorted(os.listdir(pcfs.backing / ".powercut-trash")) == []


def test_new_directory_and_its_files_vanish_without_the_parent_sync(pcfs: PowerCutMount) -> None:
    d = pcfs.mountpoint / "media"
    d.mkdir()
    (d / "clip.mp4").write_bytes(b"x" * 10000)
    fsync_file(d / "clip.mp4")
    fsync_dir(d)
    reboot(pcfs)
    assert not d.exists()


def test_write_atomic_survives_a_cut_right_after_it_returns(pcfs: PowerCutMount) -> None:
    p = pcfs.mountpoint / "sync-state.json"
    write_atomic(p, '{"enrolled": true}')
    reboot(pcfs)
    assert p.read_text() == '{"enrolled": true}'


def test_fallocate_is_undone_to_the_durable_size(pcfs: PowerCutMount) -> None:
    p = durable_file(pcfs, "f.bin", b"abc")
    fd = os.open(p, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 1 << 20)
        assert os.fstat(fd).st_size == 1 << 20
    finally:
        os.close(fd)
    reboot(pcfs)
    assert p.read_bytes() == b"abc"


def test_after_a_cut_every_call_fails_with_eio(pcfs: PowerCutMount) -> None:
    p = durable_file(pcfs, "a.txt", b"x")
    pcfs.cut()
    with pytest.raises(OSError) as exc:
        p.write_bytes(b"y")
    assert exc.value.errno == errno.EIO
    pcfs.unmount()
    pcfs.mount()
    assert p.read_bytes() == b"x"


def test_shared_mmap_is_coherent_between_processes(pcfs: PowerCutMount) -> None:
    """What SQLite's -shm needs: a MAP_SHARED write in one process is seen by a map in another."""
    p = pcfs.mountpoint / "x-shm"
    p.write_bytes(b"\0" * 32768)
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 32768) as mm:
        mm[100:105] = b"hello"
        code = (f"import mmap;f=open({str(p)!r},'r+b');m=mmap.mmap(f.fileno(),32768);"
                "print(bytes(m[100:105]).decode());m[200:203]=b'abc'")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "hello", out.stderr
        assert mm[200:203] == b"abc"


def _sqlite(path: Path, sync: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    return db


def test_sqlite_wal_full_keeps_every_commit_and_stays_intact(pcfs: PowerCutMount) -> None:
    path = pcfs.mountpoint / "ledger.db"
    db = _sqlite(path, "FULL")
    db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, v BLOB)")
    other = _sqlite(path, "FULL")  # a second connection: locks and the shared -shm
    for n in range(300):
        (db if n % 2 else other).execute("INSERT INTO t VALUES (?, ?)", (n, os.urandom(300)))
        if n == 150:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pcfs.cut()
    db.close()
    other.close()
    pcfs.unmount()
    pcfs.mount()
    db = _sqlite(path, "FULL")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (300,)
    db.close()


def test_sqlite_without_sync_loses_commits_on_a_cut(pcfs: PowerCutMount) -> None:
    """The filesystem can see a missing fsync: synchronous=OFF commits do not survive."""
    path = pcfs.mountpoint / "ledger.db"
    db = _sqlite(path, "FULL")
    db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO t VALUES (0)")
    db.execute("PRAGMA synchronous=OFF")
    for n in range(1, 50):
        db.execute("INSERT INTO t VALUES (?)", (n,))
    pcfs.cut()
    db.close()
    pcfs.unmount()
    pcfs.mount()
    db = _sqlite(path, "FULL")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM t").fetchone() == (1,)
    db.close()
