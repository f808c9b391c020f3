"""Signature checks spread over processes, for verifying large ledgers.

Ed25519 verification holds the GIL (about 125 µs an entry here) and is three
quarters of the verifier's time, so threads do not help. For big ledgers the
verifier hands batches of ``(seq, signature, entry_hash)`` to a worker process
and checks a share of the batches itself, keeping the main process busy with
parsing and chain checks in between. Results are reconciled by seq, so the
first bad entry reported is the same as in a single-process run.

The worker is started through the ``forkserver`` context, not by forking this
process: a kiosk process has reader and uploader threads, and forking a
threaded process can deadlock the child.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BATCH = 512
PARALLEL_MIN_ENTRIES = 4000  # below this, starting a worker costs more than it saves


def check_batch(pub_raw: bytes, items: list[tuple[int, bytes, bytes]]) -> int | None:
    """First seq in ``items`` whose signature does not verify, else None."""
    pub = Ed25519PublicKey.from_public_bytes(pub_raw)
    for seq, sig, h in items:
        try:
            pub.verify(sig, h)
        except InvalidSignature:
            return seq
    return None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SignaturePool:
    """Collects signatures to check; ``first_bad()`` waits for every batch and returns the lowest bad seq."""

    def __init__(self, pub_raw: bytes, local_share: int = 3):
        self.pub_raw = pub_raw
        self._pending: list[tuple[int, bytes, bytes]] = []
        self._futures: list[Future[int | None]] = []
        self._local_bad: list[int] = []
        self._n = 0
        # Of every `local_share` batches, one is checked here; the main process also parses and chains,
        # so the worker takes the larger part.
        self._local_share = local_share
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["kiosk.ledger.sigcheck"])
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx)

    def add(self, seq: int, signature: bytes, entry_hash: bytes) -> None:
        self._pending.append((seq, signature, entry_hash))
        if len(self._pending) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._n += 1
        if self._n % self._local_share == 0:
            bad = check_batch(self.pub_raw, batch)
            if bad is not None:
                self._local_bad.append(bad)
        else:
            self._futures.append(self._pool.submit(check_batch, self.pub_raw, batch))

    def first_bad(self) -> int | None:
        self._flush()
        bad = list(self._local_bad)
        for f in self._futures:
            r = f.result()
            if r is not None:
                bad.append(r)
        return min(bad) if bad else None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
