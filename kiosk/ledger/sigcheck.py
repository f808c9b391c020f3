"""Signature checks spread over threads, for verifying large ledgers.

An Ed25519 verify is about three quarters of the verifier's time (≈ 110 µs of ≈ 150 µs an entry here),
and ``cryptography`` (≥ 42; 50 here) releases the GIL while OpenSSL checks a signature, so a second
thread really does run on a second core: ``tests/ledger/test_verify_parallel.py`` checks that two
threads verify with more CPU time than wall time. Threads replaced a worker process (until
2026-12-03): that cost a forkserver start (a new interpreter importing ``cryptography``) and pickling
every batch, the worker re-imported the calling script's ``__main__`` (a script without a
``__main__`` guard crashed), and its fixed share of the batches made the main process wait for it
whenever the shared second core was busy elsewhere: on this 2-core host the process path verified
4,000 entries *slower* than one process.

The work is shared, not split in fixed parts: the main thread queues a batch of
``(seq, signature, entry_hash)`` each time it has parsed ``BATCH`` entries, and checks a queued batch
itself whenever the helpers are behind, and every batch still queued at the end. With a free second
core the helpers take about two thirds of the signatures; with no free core the main thread checks
nearly all of them itself, as a single-threaded run would, and waits only for the batches already
being checked. Results are reconciled by seq, so the first bad entry reported is the same as in a
single-threaded run.
"""

from __future__ import annotations

import os
import threading
from collections import deque

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BATCH = 128
"""Entries per batch: small enough that waiting for the helpers' last batches costs little (≈ 15 ms of
verifies), large enough that the hand-over is negligible."""
PARALLEL_MIN_ENTRIES = 4000
"""Below this a helper thread did not pay on this 2-core shared host (docs/ledger.md, "Speed"): parallel over
single-threaded wall time was 0.84-1.3 at 250-2,000 entries, 1.1-1.2 at 4,000."""
MAX_HELPERS = 3


def signature_ok(pub: Ed25519PublicKey, signature: bytes, entry_hash: bytes) -> bool:
    """Whether ``signature`` is ``pub``'s over ``entry_hash``. A stored signature that is not bytes (text: the
    library raises TypeError) is a bad signature, never a traceback, on every path of the verifier."""
    try:
        pub.verify(signature, entry_hash)
    except (InvalidSignature, TypeError):
        return False
    return True


def check_batch(pub: Ed25519PublicKey, items: list[tuple[int, bytes, bytes]]) -> int | None:
    """First seq in ``items`` whose signature does not verify, else None."""
    for seq, sig, h in items:
        if not signature_ok(pub, sig, h):
            return seq
    return None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SignaturePool:
    """Collects signatures to check; ``first_bad()`` checks or waits for every batch and returns the lowest bad seq."""

    def __init__(self, pub_raw: bytes, helpers: int | None = None):
        self._pub = Ed25519PublicKey.from_public_bytes(pub_raw)
        self._pending: list[tuple[int, bytes, bytes]] = []
        self._queue: deque[list[tuple[int, bytes, bytes]]] = deque()
        self._bad: list[int] = []
        self._error: BaseException | None = None  # a helper's unexpected exception, raised by first_bad()
        self._busy = 0  # batches a helper has taken and not finished
        self._turn = 0  # of every helpers + 1 signatures, one is this thread's (see add)
        self._closed = False
        self._cv = threading.Condition()
        n = helpers if helpers is not None else min(MAX_HELPERS, max(1, usable_cpus() - 1))
        self._threads = [threading.Thread(target=self._helper, name=f"sigcheck-{i}", daemon=True) for i in range(n)]
        for t in self._threads:
            t.start()

    def add(self, seq: int, signature: bytes, entry_hash: bytes) -> None:
        self._turn += 1
        if self._turn > len(self._threads):
            # This thread's share, checked at once: while it is inside OpenSSL it holds no GIL, and that is
            # when a helper, back from its own verify, can take the GIL. A helper waiting while this thread
            # runs Python (parsing) gets it only when the interpreter forces a switch, every 5 ms: with the
            # whole share checked a batch at a time, the helpers did one verify per switch and two threads
            # verified no faster than one.
            self._turn = 0
            if not signature_ok(self._pub, signature, entry_hash):
                self._bad.append(seq)
            return
        self._pending.append((seq, signature, entry_hash))
        if len(self._pending) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        with self._cv:
            self._queue.append(batch)
            self._cv.notify()
            # Helpers behind (or starved of CPU by other processes): this thread checks one itself.
            mine = self._queue.popleft() if len(self._queue) > len(self._threads) else None
        if mine is not None:
            self._check(mine)

    def _check(self, batch: list[tuple[int, bytes, bytes]]) -> None:
        bad = check_batch(self._pub, batch)
        if bad is not None:
            with self._cv:
                self._bad.append(bad)

    def _helper(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                batch = self._queue.popleft()
                self._busy += 1
            try:
                self._check(batch)
            except BaseException as exc:  # e.g. a stored signature that is not bytes: raised as in one thread
                with self._cv:
                    self._error = self._error or exc
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    def first_bad(self) -> int | None:
        self._flush()
        while True:  # whatever no helper has started, this thread checks rather than waits for
            with self._cv:
                batch = self._queue.popleft() if self._queue else None
            if batch is None:
                break
            self._check(batch)
        with self._cv:
            while self._busy:
                self._cv.wait()
            if self._error is not None:
                raise self._error
            return min(self._bad) if self._bad else None

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        for t in self._threads:
            t.join()
