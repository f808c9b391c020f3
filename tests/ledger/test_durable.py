"""kiosk.ledger.durable: temp file, fsync it, rename, fsync the directory; nothing left behind on failure.

``os.fsync`` is wrapped (not replaced) to see which file descriptors get synced and when: the lowest
I/O seam there is. Failures are real: a write the kernel refuses (RLIMIT_FSIZE), text that cannot be
encoded half-way through a file, an exception from the writer's own code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import stat
from pathlib import Path

import pytest

from kiosk.ledger.durable import SECRET_MODE, atomic_writer, fsync_dir, move_durably, write_atomic
from kiosk.ledger.secretfile import write_secret


@pytest.fixture
def fsyncs(monkeypatch):
    """Every os.fsync: 'file' or 'dir', inode, mode, size, and what ``watched["target"]`` held at that moment."""
    calls: list[dict] = []
    real = os.fsync
    watched: dict[str, Path] = {}

    def observing_fsync(fd: int) -> None:
        st = os.fstat(fd)
        target = watched.get("target")
        calls.append({"kind": "dir" if stat.S_ISDIR(st.st_mode) else "file", "ino": st.st_ino,
                      "mode": stat.S_IMODE(st.st_mode), "size": st.st_size,
                      "target": target.read_bytes() if target is not None and target.exists() else None})
        real(fd)

    monkeypatch.setattr(os, "fsync", observing_fsync)
    return calls, watched


def _temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# --- success -------------------------------------------------------------------------------------
def test_the_file_is_fsynced_before_the_rename_and_the_directory_after(tmp_path, fsyncs):
    calls, watched = fsyncs
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    watched["target"] = target
    assert write_atomic(target, b"new content") == 11
    assert target.read_bytes() == b"new content"
    assert [c["kind"] for c in calls] == ["file", "dir"]
    file_sync, dir_sync = calls
    # The synced file is the one that now has the target's name, fully written, before it had it.
    assert file_sync["ino"] == target.stat().st_ino and file_sync["size"] == 11 and file_sync["target"] == b"old"
    # The directory is synced after the rename, so the rename itself is on the medium.
    assert dir_sync["ino"] == tmp_path.stat().st_ino and dir_sync["target"] == b"new content"
    assert _temps(tmp_path) == []


def test_text_and_bytes_and_a_new_directory(tmp_path, fsyncs):
    calls, _ = fsyncs
    target = tmp_path / "new" / "dir" / "kiosk.toml"
    write_atomic(target, 'title = "こども食堂"\n')
    assert target.read_text("utf-8") == 'title = "こども食堂"\n'
    with atomic_writer(tmp_path / "x.jsonl", text=True) as f:
        f.write("line 1\n")
        f.write("line 2\n")
    assert (tmp_path / "x.jsonl").read_text() == "line 1\nline 2\n"
    # The two new directories first, each followed by an fsync of its parent (a new directory is an entry
    # there: tests/powercut shows a cut takes it away otherwise); then file, directory, for each write.
    assert [c["kind"] for c in calls] == ["dir", "dir", "file", "dir", "file", "dir"]
    assert _temps(target.parent) == [] and _temps(tmp_path) == []


def test_mode_is_exact_whatever_the_umask_and_default_follows_it(tmp_path):
    with _umask(0o077):
        write_atomic(tmp_path / "index.json", b"{}", mode=0o644)  # shared with the player's user
        write_atomic(tmp_path / "plain", b"x")
    assert stat.S_IMODE((tmp_path / "index.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o600  # 0666 less the umask, as open()


def test_a_secret_is_0600_before_its_first_byte(tmp_path, fsyncs):
    calls, _ = fsyncs
    target = tmp_path / "keys" / "kiosk.key"
    with _umask(0):  # nothing from the umask: 0600 must come from the writer itself
        with atomic_writer(target, mode=SECRET_MODE) as f:
            (tmp,) = _temps(target.parent)
            st = (target.parent / tmp).stat()
            assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 0  # exists, 0600, still empty
            f.write(b"-----BEGIN PRIVATE KEY-----\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [c for c in calls if c["kind"] == "file"][0]["mode"] == 0o600


def test_write_secret_replaces_a_looser_file_with_a_0600_one_and_never_clobbers_by_accident(tmp_path):
    p = tmp_path / "pepper.json"
    p.write_text("old")
    os.chmod(p, 0o644)
    with pytest.raises(FileExistsError):
        write_secret(p, b"new", replace=False)
    assert p.read_text() == "old" and _temps(tmp_path) == []
    write_secret(p, b"new", replace=True)
    assert p.read_bytes() == b"new" and stat.S_IMODE(p.stat().st_mode) == 0o600
    write_secret(tmp_path / "fresh", b"s", replace=False)
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o600
    assert _temps(tmp_path) == []


# --- failure -------------------------------------------------------------------------------------
def test_a_write_the_kernel_refuses_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "sync-state.json"
    target.write_bytes(b"enrolled")
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # files may not grow past 4 KiB: a full disk
    try:
        with pytest.raises(OSError) as ei:
            write_atomic(target, b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert ei.value.errno == errno.EFBIG
    assert target.read_bytes() == b"enrolled"
    assert _temps(tmp_path) == []


def test_text_that_cannot_be_encoded_half_way_leaves_the_old_file_and_no_temp(tmp_path, fsyncs):
    calls, _ = fsyncs
    target = tmp_path / "ledger.jsonl"
    target.write_text("previous export\n")
    with pytest.raises(UnicodeEncodeError):
        with atomic_writer(target, text=True) as f:
            f.write("line 1\n" * 1000)
            f.write("bad \udcff surrogate\n")
    assert target.read_text() == "previous export\n"
    assert _temps(tmp_path) == [] and calls == []  # nothing was synced, so nothing was renamed


def test_an_error_in_the_writers_own_code_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "portal-config.json"
    target.write_bytes(b"v1")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic_writer(target) as f:
            f.write(b"v2 half")
            raise Boom
    assert target.read_bytes() == b"v1" and _temps(tmp_path) == []


# --- directory fsync refusal: tolerated only where asked (USB sticks) ------------------------------
@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP])
def test_a_refused_directory_fsync_is_tolerated_only_when_asked(tmp_path, monkeypatch, code):
    real = os.fsync

    def fat_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))  # what some FAT drivers say for a directory
        real(fd)

    monkeypatch.setattr(os, "fsync", fat_fsync)
    write_atomic(tmp_path / "MANIFEST.txt", b"ok", tolerate_dir_fsync_unsupported=True)
    assert (tmp_path / "MANIFEST.txt").read_bytes() == b"ok"
    with pytest.raises(OSError) as ei:
        write_atomic(tmp_path / "state.json", b"ok")
    assert ei.value.errno == code
    fsync_dir(tmp_path, tolerate_unsupported=True)


def test_an_io_error_on_the_directory_is_never_tolerated(tmp_path, monkeypatch):
    real = os.fsync

    def dying_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "I/O error")
        real(fd)

    monkeypatch.setattr(os, "fsync", dying_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_atomic(tmp_path / "ledger.jsonl", b"x", tolerate_dir_fsync_unsupported=True)


# --- moves ---------------------------------------------------------------------------------------
def test_move_durably_syncs_the_file_and_both_directories(tmp_path, fsyncs):
    calls, _ = fsyncs
    (tmp_path / "tmp").mkdir()
    src = tmp_path / "tmp" / "import-1.mp4"
    src.write_bytes(b"movie")
    ino = src.stat().st_ino
    move_durably(src, tmp_path / "media" / "abc.mp4")
    assert not src.exists() and (tmp_path / "media" / "abc.mp4").read_bytes() == b"movie"
    # media/ is new: its parent is synced when it is made, so the new directory's name survives too.
    assert [(c["kind"], c["ino"]) for c in calls] == [
        ("file", ino), ("dir", tmp_path.stat().st_ino), ("dir", (tmp_path / "media").stat().st_ino),
        ("dir", (tmp_path / "tmp").stat().st_ino)]
