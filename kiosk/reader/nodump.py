"""No memory image of a process that reads cards: no core dump, no peeking at its memory.

A process that reads cards holds each card's IDm for the length of a poll, and the bytes stay in freed memory
long after; the kiosk also holds the pepper that makes donor tokens. Under systemd a kiosk whose picture froze is
killed with SIGABRT (``WatchdogSec=``), whose default action is a core dump: a file in the working directory
(``/var/lib/kiosk``) or in systemd-coredump's store, both on the SD card, holding exactly those bytes.

:func:`forbid_memory_images` makes the process non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``: the kernel writes no
core file, and another process of the same user cannot read its memory through ``/proc/PID/mem`` or ptrace) and sets
``RLIMIT_CORE`` to 0 (systemd-coredump, handed a dump anyway, keeps none). Called first thing by ``kiosk run``,
``kiosk reader probe`` and ``kiosk staff card`` (docs/privacy.md, docs/readers.md).
"""

from __future__ import annotations

import ctypes
import logging
import resource
import sys

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc is among them
    except OSError:
        return None


def forbid_memory_images() -> bool:
    """Make this process leave no core dump and refuse memory reads by other processes; True when both held.

    Never raises: a kiosk that cannot do this (another OS) still runs, and says so in its log.
    """
    ok = True
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        log.warning("could not switch core dumps off (RLIMIT_CORE): %s", exc)
        ok = False
    libc = _libc()
    if libc is None or not hasattr(libc, "prctl") or libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("could not make the process non-dumpable (prctl PR_SET_DUMPABLE)")
        ok = False
    return ok

