"""Writing a file so that a power cut leaves the old content or the new, never half, never nothing.

The one way every room of the kiosk writes a file it must find again after a reboot (keys, pepper,
``sync-state.json``, the pushed config, the media index, exports, ``kiosk.toml``)::

    1. write a temp file in the target's directory (same filesystem, so the rename is atomic);
    2. flush it and ``fsync`` it (the bytes are on the medium before anything names them);
    3. ``os.replace`` it onto the target (readers see the old file or the new, never a mix);
    4. ``fsync`` the directory (the rename itself is a directory write: without this a power cut can
       undo it, and a kiosk that had just enrolled would come back "not enrolled").

SD cards and USB sticks are known to acknowledge an fsync before the data is safe; the order still
matters, because it is the only order in which a lying card can be right.

It lives at the bottom of the kiosk (``kiosk.ledger`` imports nothing else of the project) so every
room may use it.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

SECRET_MODE = 0o600

# What a filesystem says when it does not implement fsync on a directory (vfat through some drivers,
# exFAT and NTFS through FUSE). EIO and friends are real failures and are never in this set.
_NO_DIR_FSYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


def fsync_dir(path: str | os.PathLike[str], *, tolerate_unsupported: bool = False) -> None:
    """``fsync`` a directory, making renames and new entries in it durable.

    ``tolerate_unsupported``: only for removable media (FAT on USB sticks), whose drivers may refuse
    fsync on a directory; there the files themselves were fsynced and FAT's fsync also writes its
    allocation table. Every other caller wants the error.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if not (tolerate_unsupported and exc.errno in _NO_DIR_FSYNC):
            raise
    finally:
        os.close(fd)


def make_dirs(path: str | os.PathLike[str]) -> None:
    """``mkdir -p`` whose new directories survive a power cut.

    A new directory is an entry in its parent: until the parent is fsynced, a cut can take it away
    with everything written inside it (fsyncing the files, or the new directory itself, does not keep
    the directory's own name). Each directory this creates is followed by an fsync of its parent.
    """
    p = Path(path)
    missing: list[Path] = []
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made by someone else meanwhile: theirs to make durable, but do it anyway below
        finally:
            if d.is_dir():
                fsync_dir(d.parent)


def _create_temp(target: Path, mode: int | None) -> tuple[int, Path]:
    """A new, empty temp file beside ``target``: ``mode`` exactly (or 0666 less the umask) from creation."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            # O_EXCL: never reuse a file someone else made (or a stale temp with wider permissions).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o666 if mode is None else mode)
        except FileExistsError:
            continue
        break
    if mode is not None:
        try:
            # The umask may have taken bits away (never added them): a secret is at most 0600 from the
            # first byte and exactly 0600 before any byte is written; a shared file gets its bits back.
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
    return fd, tmp


@contextmanager
def atomic_writer(path: str | os.PathLike[str], *, text: bool = False, mode: int | None = None,
                  encoding: str = "utf-8", overwrite: bool = True,
                  tolerate_dir_fsync_unsupported: bool = False) -> Iterator[IO[Any]]:
    """A file object whose content replaces ``path`` durably when the ``with`` block ends without error.

    - ``text``: a text file in ``encoding`` (newlines are written as given), else binary.
    - ``mode``: the file's permission bits, exact and in force before the first byte
      (:data:`SECRET_MODE` for keys and the pepper); ``None`` is 0666 less the umask, as ``open()``.
    - ``overwrite=False``: an existing ``path`` is a :class:`FileExistsError` and is left alone (a
      secret is never clobbered by accident). Uses a hard link, so not for FAT.
    - ``tolerate_dir_fsync_unsupported``: see :func:`fsync_dir`; for USB sticks only.

    If the block raises (or a write, the fsync or the rename fails) the temp file is removed and
    ``path`` keeps its previous content.
    """
    target = Path(path)
    make_dirs(target.parent)
    if not overwrite and target.exists():
        raise FileExistsError(errno.EEXIST, "refusing to replace an existing file", str(target))
    fd, tmp = _create_temp(target, mode)
    published = False
    try:
        f: IO[Any] = os.fdopen(fd, "w", encoding=encoding, newline="") if text else os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if the target appeared meanwhile: no clobbering, even in a race
            os.unlink(tmp)
        published = True
    finally:
        if not published:
            tmp.unlink(missing_ok=True)
    fsync_dir(target.parent, tolerate_unsupported=tolerate_dir_fsync_unsupported)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None,
                 encoding: str = "utf-8", overwrite: bool = True,
                 tolerate_dir_fsync_unsupported: bool = False) -> int:
    """Replace ``path`` with ``data`` (bytes, or text in ``encoding``) durably; returns the bytes written.

    Options as :func:`atomic_writer`. On any failure ``path`` keeps its previous content and no temp
    file is left.
    """
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with atomic_writer(path, mode=mode, overwrite=overwrite,
                       tolerate_dir_fsync_unsupported=tolerate_dir_fsync_unsupported) as f:
        f.write(raw)
    return len(raw)


def move_durably(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename a finished file (e.g. a transcoded clip) onto ``dst`` so that both survive a power cut.

    The file's data is fsynced first (whoever wrote it may not have), then the rename, then the
    directories that changed. ``src`` and ``dst`` must be on one filesystem.
    """
    src_p, dst_p = Path(src), Path(dst)
    fd = os.open(src_p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    make_dirs(dst_p.parent)
    os.replace(src_p, dst_p)
    fsync_dir(dst_p.parent)
    if src_p.parent.resolve() != dst_p.parent.resolve():
        fsync_dir(src_p.parent)  # the old name's removal; not vital, but a stale name would come back
