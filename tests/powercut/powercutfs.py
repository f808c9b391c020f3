"""A power-cut filesystem for tests, in the spirit of LazyFS: FUSE on libfuse 3 through mfusepy.

It passes every read and write through to a backing directory and keeps, beside
it, what it would take to undo each change that has not been made durable yet:

* **file data**: before a byte below the size the file had at its last
  ``fsync``/``fdatasync`` is overwritten, truncated away or punched, the 4 KiB
  page holding it is saved once; the file's durable size is kept too. An
  ``fsync`` or ``fdatasync`` of the file (any handle on the same inode) drops
  its saved pages: from then on that content survives a cut;
* **names**: every create, mkdir, symlink, link, unlink, rmdir and rename is
  logged with its inverse. An unlinked file (or a file a rename replaces)
  is moved aside into a hidden trash folder instead of being removed, so
  undoing the unlink brings back the same inode. An ``fsync`` of a directory
  makes every earlier logged change that touched that directory durable (a
  rename touches both its directories: syncing either keeps it, as one
  journal transaction would). A file's own ``fsync`` does **not** make its
  name durable: that is what the directory sync is for.

A *cut* (``cut`` on the control socket) undoes every change not yet durable,
newest first, and leaves the filesystem dead: every later call fails with EIO,
as a disk without power would. The harness then kills the processes using it,
unmounts, and mounts the same backing directory again ("the next boot").
A clean unmount (no cut) keeps everything, like a clean shutdown.

Reads and writes go through the kernel's page cache (no ``direct_io``), so
shared writable ``mmap`` works (SQLite's ``-shm``); POSIX and BSD locks are left
to the kernel (the filesystem implements neither ``lock`` nor ``flock``), which
is right for processes on one machine. ``rename`` flags (NOREPLACE, EXCHANGE)
are not passed on by the binding; nothing in the kiosk uses them.

Run: ``python tests/powercut/powercutfs.py BACKING MOUNTPOINT --control SOCKET``
(foreground; exits when unmounted). :class:`PowerCutMount` does that for tests.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = 4096
TRASH = ".powercut-trash"
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

log = logging.getLogger("powercutfs")


# --- the model: what a cut throws away ---------------------------------------------------------

@dataclass
class DataUndo:
    """Unsynced changes to one inode's data: its durable size and the durable content of each touched page."""

    fd: int  # our own descriptor on the inode: it stays valid across renames and unlinks
    size: int
    pages: dict[int, bytes] = field(default_factory=dict)

    def save(self, start: int, end: int) -> None:
        """Keep the durable content of [start, end) before it changes (only what lies below the durable size)."""
        end = min(end, self.size)
        if start >= end:
            return
        for n in range(start // PAGE, (end - 1) // PAGE + 1):
            if n not in self.pages:
                self.pages[n] = os.pread(self.fd, PAGE, n * PAGE)

    def restore(self) -> None:
        for n, data in self.pages.items():
            os.pwrite(self.fd, data, n * PAGE)
        os.ftruncate(self.fd, self.size)


@dataclass
class NameOp:
    """One logged change to names, with the directories it touched (relative, '' is the root)."""

    kind: str  # create | mkdir | unlink | rmdir | rename
    path: str
    dirs: frozenset[str]
    new: str | None = None  # rename target
    trash: str | None = None  # where an unlinked (or replaced) entry waits


def _parent(rel: str) -> str:
    return os.path.dirname(rel.rstrip("/"))


class PowerCutState:
    """The filesystem's operations on a backing directory, without FUSE (unit-testable on its own)."""

    def __init__(self, backing: str | os.PathLike):
        self.root = Path(backing).resolve()
        self.trash_dir = self.root / TRASH
        shutil.rmtree(self.trash_dir, ignore_errors=True)  # a clean unmount left it empty; anything else is stale
        self.trash_dir.mkdir()
        self.lock = threading.RLock()
        self.data: dict[int, DataUndo] = {}
        self.names: list[NameOp] = []
        self.handles: dict[int, int] = {}  # FUSE file handle -> our fd on the backing file
        self.dir_handles: dict[int, str] = {}  # FUSE directory handle -> its path when opened
        self._dir_n = 0
        self.dead = False
        self._trash_n = 0
        self.cuts = 0

    # --- helpers ---------------------------------------------------------------------------
    def rel(self, path: str) -> str:
        rel = path.lstrip("/")
        if rel == TRASH or rel.startswith(TRASH + "/"):
            raise OSError(errno.ENOENT, "hidden")
        return rel

    def real(self, path: str) -> str:
        return str(self.root / self.rel(path))

    def alive(self) -> None:
        if self.dead:
            raise OSError(errno.EIO, "the power is off")

    def _trash_name(self) -> str:
        self._trash_n += 1
        return str(self.trash_dir / f"{self._trash_n}")

    def _record(self, fd: int) -> DataUndo:
        ino = os.fstat(fd).st_ino
        rec = self.data.get(ino)
        if rec is None:
            own = os.dup(fd)
            rec = self.data[ino] = DataUndo(own, os.fstat(own).st_size)
        return rec

    def _forget_inode(self, ino: int) -> None:
        rec = self.data.pop(ino, None)
        if rec is not None:
            os.close(rec.fd)

    # --- data ------------------------------------------------------------------------------
    def open(self, path: str, flags: int) -> int:
        self.alive()
        fd = self._open_backing(self.real(path), flags)
        self.handles[fd] = fd
        if flags & os.O_TRUNC:
            self.truncate(None, 0, fd)
        return fd

    @staticmethod
    def _open_backing(real: str, flags: int, mode: int = 0o644) -> int:
        # No O_APPEND: the kernel already chose the offset of every write it sends.
        # No O_WRONLY: the kernel may read pages of a file opened for writing only.
        # No O_TRUNC: the caller truncates through the model, which saves what it cuts away.
        flags &= ~(os.O_APPEND | os.O_TRUNC | getattr(os, "O_DIRECT", 0))
        if flags & os.O_ACCMODE == os.O_WRONLY:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
        return os.open(real, flags, mode)

    def create(self, path: str, flags: int, mode: int) -> int:
        self.alive()
        real = self.real(path)
        existed = os.path.lexists(real)
        fd = self._open_backing(real, flags | os.O_CREAT, mode)
        if not existed:
            rel = self.rel(path)
            self.names.append(NameOp("create", rel, frozenset({_parent(rel)})))
        self.handles[fd] = fd
        if flags & os.O_TRUNC and existed:
            self.truncate(None, 0, fd)
        return fd

    def read(self, fh: int, size: int, offset: int) -> bytes:
        self.alive()
        return os.pread(self.handles[fh], size, offset)

    def write(self, fh: int, data: bytes, offset: int) -> int:
        self.alive()
        fd = self.handles[fh]
        self._record(fd).save(offset, offset + len(data))
        return os.pwrite(fd, data, offset)

    def truncate(self, path: str | None, length: int, fh: int | None) -> None:
        self.alive()
        if fh is not None and fh in self.handles:
            fd, own = self.handles[fh], False
        else:
            assert path is not None
            fd, own = os.open(self.real(path), os.O_RDWR), True
        try:
            size = os.fstat(fd).st_size
            self._record(fd).save(length, size)
            os.ftruncate(fd, length)
        finally:
            if own:
                os.close(fd)

    def fallocate(self, fh: int, mode: int, offset: int, length: int) -> None:
        self.alive()
        fd = self.handles[fh]
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise OSError(errno.EOPNOTSUPP, "collapse/insert range are not modelled")
        rec = self._record(fd)
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            rec.save(offset, offset + length)
        if _libc.fallocate(fd, mode, ctypes.c_long(offset), ctypes.c_long(length)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def fsync(self, fh: int) -> None:
        self.alive()
        self._forget_inode(os.fstat(self.handles[fh]).st_ino)

    def release(self, fh: int) -> None:
        fd = self.handles.pop(fh, None)
        if fd is not None:
            os.close(fd)

    # --- names -----------------------------------------------------------------------------
    def opendir(self, path: str) -> int:
        self._dir_n += 1
        self.dir_handles[self._dir_n] = path
        return self._dir_n

    def mkdir(self, path: str, mode: int) -> None:
        self.alive()
        rel = self.rel(path)
        os.mkdir(self.real(path), mode)
        self.names.append(NameOp("mkdir", rel, frozenset({_parent(rel)})))

    def symlink(self, path: str, target: str) -> None:
        self.alive()
        rel = self.rel(path)
        os.symlink(target, self.real(path))
        self.names.append(NameOp("create", rel, frozenset({_parent(rel)})))

    def link(self, path: str, existing: str) -> None:
        self.alive()
        rel = self.rel(path)
        os.link(self.real(existing), self.real(path))
        self.names.append(NameOp("create", rel, frozenset({_parent(rel)})))

    def unlink(self, path: str) -> None:
        self.alive()
        rel = self.rel(path)
        trash = self._trash_name()
        os.rename(self.real(path), trash)
        self.names.append(NameOp("unlink", rel, frozenset({_parent(rel)}), trash=trash))

    def rmdir(self, path: str) -> None:
        self.alive()
        rel = self.rel(path)
        real = self.real(path)
        if os.listdir(real):
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY))
        trash = self._trash_name()
        os.rename(real, trash)
        self.names.append(NameOp("rmdir", rel, frozenset({_parent(rel)}), trash=trash))

    def rename(self, old: str, new: str) -> None:
        self.alive()
        ro, rn = self.rel(old), self.rel(new)
        src, dst = self.real(old), self.real(new)
        trash = None
        if os.path.lexists(dst) and not os.path.samefile(src, dst):
            if os.path.isdir(dst) and not os.path.islink(dst):
                if not os.path.isdir(src):
                    raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
                if os.listdir(dst):
                    raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY))
            elif os.path.isdir(src):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            trash = self._trash_name()
            os.rename(dst, trash)
        try:
            os.rename(src, dst)
        except OSError:
            if trash is not None:
                os.rename(trash, dst)
            raise
        self.names.append(NameOp("rename", ro, frozenset({_parent(ro), _parent(rn)}), new=rn, trash=trash))

    def fsyncdir(self, path: str) -> None:
        self.alive()
        rel = self.rel(path).rstrip("/")
        # Everything logged so far that touched this directory is now on disk.
        keep: list[NameOp] = []
        for op in self.names:
            if rel in op.dirs:
                self._finalize(op)
            else:
                keep.append(op)
        self.names = keep

    def _finalize(self, op: NameOp) -> None:
        if op.trash is None:
            return
        try:
            if os.path.isdir(op.trash) and not os.path.islink(op.trash):
                os.rmdir(op.trash)
            else:
                st = os.lstat(op.trash)
                if st.st_nlink <= 1:  # the last name of the inode: its unsynced data no longer matters
                    self._forget_inode(st.st_ino)
                os.unlink(op.trash)
        except FileNotFoundError:
            pass

    # --- the cut ---------------------------------------------------------------------------
    def cut(self) -> dict[str, int]:
        """Throw away everything not durable; from now on every call fails with EIO."""
        with self.lock:
            undone, conflicts = 0, 0
            for op in reversed(self.names):
                try:
                    self._undo(op)
                    undone += 1
                except OSError as exc:  # a later durable change moved things; keep what is there
                    log.warning("cut: could not undo %s %s: %s", op.kind, op.path, exc)
                    conflicts += 1
            self.names = []
            files = 0
            for rec in self.data.values():
                try:
                    rec.restore()
                    files += 1
                finally:
                    os.close(rec.fd)
            self.data = {}
            self.dead = True
            self.cuts += 1
            return {"names_undone": undone, "conflicts": conflicts, "files_restored": files}

    def _undo(self, op: NameOp) -> None:
        root = self.root
        if op.kind == "create":
            target = root / op.path
            if os.path.lexists(target):
                os.unlink(target)
        elif op.kind == "mkdir":
            shutil.rmtree(root / op.path)
        elif op.kind in ("unlink", "rmdir"):
            assert op.trash is not None
            if os.path.lexists(root / op.path):
                raise OSError(errno.EEXIST, f"{op.path} exists again")
            os.rename(op.trash, root / op.path)
        elif op.kind == "rename":
            assert op.new is not None
            os.rename(root / op.new, root / op.path)
            if op.trash is not None:
                os.rename(op.trash, root / op.new)

    def sync_all(self) -> None:
        """A clean shutdown: everything becomes durable."""
        with self.lock:
            for op in self.names:
                self._finalize(op)
            self.names = []
            for rec in self.data.values():
                os.close(rec.fd)
            self.data = {}

    def pending(self) -> dict[str, int]:
        with self.lock:
            return {"names": len(self.names), "files": len(self.data),
                    "pages": sum(len(r.pages) for r in self.data.values()), "dead": int(self.dead)}


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


# --- FUSE glue -----------------------------------------------------------------------------------

def make_operations(state: PowerCutState) -> Any:
    import mfusepy as fuse

    def guarded(fn: Any) -> Any:
        def call(self: Any, *args: Any) -> Any:
            with state.lock:
                if state.dead:
                    raise fuse.FuseOSError(errno.EIO)
                return fn(self, *args)
        call.__name__ = fn.__name__
        return call

    class Ops(fuse.Operations):
        use_ns = True

        def init_with_config(self, conn: Any, config: Any) -> None:
            if config is not None:
                # No kernel caching of names or attributes: a cut changes them behind the kernel's back
                # (the harness remounts anyway), and nullpath_ok lets open-but-unlinked files work.
                config.entry_timeout = 0
                config.attr_timeout = 0
                config.negative_timeout = 0
                config.hard_remove = 1
                config.nullpath_ok = 1
                config.use_ino = 1
                config.direct_io = 0
                config.kernel_cache = 0

        @guarded
        def getattr(self, path: str | None, fh: Any = None) -> dict[str, Any]:
            st = os.fstat(state.handles[fh.fh]) if fh is not None and fh.fh in state.handles \
                else os.lstat(state.real(path or "/"))
            out = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino",
                                                "st_blocks", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")}
            out["st_atime"], out["st_mtime"], out["st_ctime"] = (out.pop("st_atime_ns"), out.pop("st_mtime_ns"),
                                                                out.pop("st_ctime_ns"))
            return out

        @guarded
        def access(self, path: str, amode: int) -> int:
            if not os.access(state.real(path), amode):
                raise fuse.FuseOSError(errno.EACCES)
            return 0

        @guarded
        def readdir(self, path: str | None, fh: int) -> list[Any]:
            path = path if path is not None else state.dir_handles[fh]
            real = state.real(path)
            hide = TRASH if state.rel(path) == "" else None
            out: list[Any] = []
            # With use_ino an entry needs its inode number: the kernel drops entries whose number is 0.
            for name in [".", "..", *os.listdir(real)]:
                if name == hide:
                    continue
                try:
                    st = os.lstat(os.path.join(real, name))
                except FileNotFoundError:
                    continue
                out.append((name, {"st_mode": st.st_mode, "st_ino": st.st_ino}, 0))
            return out

        @guarded
        def opendir(self, path: str) -> int:
            state.real(path)
            return state.opendir(path)

        def releasedir(self, path: str | None, fh: int) -> int:
            with state.lock:
                state.dir_handles.pop(fh, None)
            return 0

        @guarded
        def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
            # With nullpath_ok libfuse passes no path for calls on a handle: the handle knows it.
            state.fsyncdir(path if path is not None else state.dir_handles[fh])
            return 0

        @guarded
        def readlink(self, path: str) -> str:
            return os.readlink(state.real(path))

        @guarded
        def statfs(self, path: str) -> dict[str, int]:
            sv = os.statvfs(state.real(path))
            return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                 "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

        @guarded
        def chmod(self, path: str | None, mode: int) -> int:
            os.chmod(state.real(path or "/"), mode)
            return 0

        @guarded
        def chown(self, path: str | None, uid: int, gid: int) -> int:
            os.chown(state.real(path or "/"), uid, gid, follow_symlinks=False)
            return 0

        @guarded
        def utimens(self, path: str | None, times: Any = None) -> int:
            if path is not None:
                os.utime(state.real(path), ns=times, follow_symlinks=False)
            return 0

        @guarded
        def open(self, path: str, fi: Any) -> int:
            fi.fh = state.open(path, fi.flags)
            fi.direct_io = 0
            fi.keep_cache = 0
            return 0

        @guarded
        def create(self, path: str, mode: int, fi: Any) -> int:
            fi.fh = state.create(path, fi.flags, mode)
            fi.direct_io = 0
            fi.keep_cache = 0
            return 0

        @guarded
        def read(self, path: str | None, size: int, offset: int, fi: Any) -> bytes:
            return state.read(fi.fh, size, offset)

        @guarded
        def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
            return state.write(fi.fh, data, offset)

        @guarded
        def truncate(self, path: str | None, length: int, fi: Any = None) -> int:
            state.truncate(path, length, fi.fh if fi is not None else None)
            return 0

        @guarded
        def fallocate(self, path: str | None, mode: int, offset: int, size: int, fi: Any) -> int:
            state.fallocate(fi.fh, mode, offset, size)
            return 0

        @guarded
        def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
            state.fsync(fi.fh)
            return 0

        @guarded
        def flush(self, path: str | None, fi: Any) -> int:
            return 0

        def release(self, path: str | None, fi: Any) -> int:
            with state.lock:  # even after a cut: the kernel must be able to close
                state.release(fi.fh)
            return 0

        @guarded
        def mkdir(self, path: str, mode: int) -> int:
            state.mkdir(path, mode)
            return 0

        @guarded
        def rmdir(self, path: str) -> int:
            state.rmdir(path)
            return 0

        @guarded
        def unlink(self, path: str) -> int:
            state.unlink(path)
            return 0

        @guarded
        def rename(self, old: str, new: str) -> int:
            state.rename(old, new)
            return 0

        @guarded
        def symlink(self, target: str, source: str) -> int:
            state.symlink(target, source)  # mfusepy: symlink(link path, what it points to)
            return 0

        @guarded
        def link(self, target: str, source: str) -> int:
            state.link(target, source)
            return 0

        def destroy(self, path: str) -> None:
            with state.lock:
                if not state.dead:
                    state.sync_all()  # unmounted without a cut: a clean shutdown keeps everything

    return Ops()


def serve_control(state: PowerCutState, address: str) -> None:
    """One command a line: ``cut``, ``pending``, ``sync``; the answer is one JSON line."""
    import json

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for raw in self.rfile:
                cmd = raw.decode().strip()
                if cmd == "cut":
                    out: dict[str, Any] = state.cut()
                elif cmd == "pending":
                    out = state.pending()
                elif cmd == "sync":
                    state.sync_all()
                    out = {"ok": 1}
                else:
                    out = {"error": f"unknown command {cmd!r}"}
                self.wfile.write((json.dumps(out) + "\n").encode())
                self.wfile.flush()

    if os.path.exists(address):
        os.unlink(address)
    server = socketserver.ThreadingUnixStreamServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="powercut-control", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    import mfusepy as fuse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("backing")
    ap.add_argument("mountpoint")
    ap.add_argument("--control", required=True, help="Unix socket for cut/pending/sync")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="powercutfs: %(message)s")
    state = PowerCutState(args.backing)
    serve_control(state, args.control)
    class Fuse(fuse.FUSE):
        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            # libfuse 3 folds ftruncate into truncate: pass the handle on (mfusepy drops it), so a
            # file that is open but already unlinked can still be truncated.
            return self.ftruncate(path, length, fip) if fip else super().truncate_fuse_3(path, length, fip)

    Fuse(make_operations(state), args.mountpoint, raw_fi=True, foreground=True, nothreads=False,
              default_permissions=True, allow_other=False, fsname="powercutfs", subtype="powercut")
    return 0


# --- the harness side --------------------------------------------------------------------------

def fuse_unavailable() -> str | None:
    """Why a power-cut mount cannot run here (None: it can)."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine: the power-cut filesystem needs FUSE"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    if ctypes.util.find_library("fuse3") is None:
        return "libfuse3 is not installed (Debian package libfuse3-3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"the mfusepy binding is not importable: {exc}"
    return None


class PowerCutMount:
    """Mount a backing directory through the power-cut filesystem in a child process."""

    def __init__(self, backing: Path, mountpoint: Path, control: Path | None = None):
        self.backing, self.mountpoint = Path(backing), Path(mountpoint)
        self.control = control or self.backing.parent / f".{self.mountpoint.name}.ctl"
        self.proc: subprocess.Popen | None = None
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)

    def mount(self, timeout_s: float = 20.0) -> PowerCutMount:
        assert self.proc is None
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.backing), str(self.mountpoint),
                                      "--control", str(self.control)],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while not (self.is_mounted() and self.control.exists()):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"powercutfs exited: {err.strip()[-400:]}")
            if time.monotonic() > deadline:
                self.unmount()
                raise RuntimeError("powercutfs did not mount in time")
            time.sleep(0.02)
        return self

    def is_mounted(self) -> bool:
        # Not os.path.ismount: after a cut the root answers EIO, and ismount would say False.
        target = str(self.mountpoint.resolve())
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == target for line in f)

    def command(self, cmd: str) -> dict[str, Any]:
        import json

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(str(self.control))
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def cut(self) -> dict[str, Any]:
        """The power goes off: unsynced changes are gone and the filesystem answers EIO from now on."""
        return self.command("cut")

    def pending(self) -> dict[str, Any]:
        return self.command("pending")

    def unmount(self, timeout_s: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.is_mounted():
            r = subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True, text=True)
            if r.returncode != 0:  # something still holds it open: detach lazily
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def reboot(self) -> dict[str, Any]:
        """Cut, unmount, mount again (the caller kills its processes between cut and unmount)."""
        out = self.cut()
        self.unmount()
        self.mount()
        return out

    def __enter__(self) -> PowerCutMount:
        return self.mount()

    def __exit__(self, *exc: object) -> None:
        self.unmount()


if __name__ == "__main__":
    sys.exit(main())
