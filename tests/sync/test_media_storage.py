"""One decision, in one place (``server_sync.mediajobs.storage_fault``), of whether an error is the portal's storage
refusing a write: no room (507), read-only (503), or not a storage problem at all (None). The app's answers to an
OSError and to a database error, the movie maker's photos and a media job's failure all use it; the full and
read-only cases through real HTTP on real tmpfs disks are in tests/sync/test_portal_disk_full.py.

The errors here are the drivers' and the system's own exception types, as they arrive at the portal's lowest I/O
seam, wrapped as SQLAlchemy wraps them.
"""

from __future__ import annotations

import errno
import os
import sqlite3

import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError

from server_sync import mediajobs


def _db_error(orig: Exception) -> OperationalError:
    return OperationalError("INSERT INTO media_jobs ...", {}, orig)


@pytest.mark.parametrize(("exc", "want"), [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/spool/job-x.upload"), 507),
    (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), 507),
    (OSError(errno.EROFS, os.strerror(errno.EROFS)), 503),
    (OSError(errno.EIO, os.strerror(errno.EIO)), None),  # a failing disk is not "full": the app's 500, logged
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES)), None),
    (FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)), None),
    (_db_error(sqlite3.OperationalError("database or disk is full")), 507),
    (_db_error(sqlite3.OperationalError("attempt to write a readonly database")), 503),
    (_db_error(sqlite3.OperationalError("database is locked")), None),  # busy: retried, not "no room"
    (_db_error(psycopg.errors.DiskFull('could not extend file "base/16384/2619": No space left on device')), 507),
    (_db_error(psycopg.errors.IoError("could not write to file: Disk quota exceeded")), 507),
    (_db_error(psycopg.errors.AdminShutdown("terminating connection due to administrator command")), None),
    (ValueError("No space left on device"), None),  # words alone, outside an OSError or a driver's error
])
def test_a_storage_error_is_classified_the_same_wherever_it_arrives(exc: BaseException, want: int | None) -> None:
    assert mediajobs.storage_fault(exc) == want


def test_a_database_error_saying_read_only_file_system_is_read_only_not_full() -> None:
    """The one case the unification changes. The app's database-error answer used to tell full from read-only by
    looking for "readonly" in the driver's words, so a driver saying "Read-only file system" (EROFS, in the
    system's spelling) was answered 507 "full" while the same EROFS as an OSError was a 503. Now both are 503,
    and "[Errno 30]" likewise."""
    for words in ("could not write to file \"pg_wal/xlogtemp.1\": Read-only file system",
                  f"[Errno {errno.EROFS}] {os.strerror(errno.EROFS)}: '/var/lib/kiosk-portal/portal.db-wal'"):
        assert mediajobs.storage_fault(_db_error(psycopg.errors.IoError(words))) == 503, words
        assert mediajobs.storage_fault_words(words) == 503, words
    assert mediajobs.storage_fault(OSError(errno.EROFS, os.strerror(errno.EROFS))) == 503


def test_a_childs_words_about_its_output_are_classified_like_its_exception() -> None:
    """A transcoder or renderer child that could not write its output says so on stderr: the job's failure is
    the portal's disk (``NO_ROOM``) exactly when its exception would have been."""
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        err = OSError(code, os.strerror(code), "/spool/job-x.out.mp4")
        assert mediajobs.storage_fault_words(f"error: {err}") == mediajobs.storage_fault(err), code
    assert mediajobs.storage_fault_words("error: [Errno 21] Is a directory: '/spool/job-x.out.mp4'") is None
