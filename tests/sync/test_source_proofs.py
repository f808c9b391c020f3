"""The uploader's consistency proofs (kiosk/sync/source.py ``LedgerSource.consistency_proof``): from a compact
range and the leaves after it, the same proofs as from every leaf of a real ledger file, whatever order the
portal's acknowledgements come in, and without keeping the history's hashes."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger import Pepper, merkle
from kiosk.ledger.clock import FixedClock
from kiosk.sync.source import READ_CHUNK, LedgerSource
from tests.conftest import build_sample


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A real ledger of a little over two READ_CHUNKs of entries, and its leaf hashes read straight off the file."""
    work = tmp_path_factory.mktemp("source-proofs")
    led = build_sample(work / "ledger.db", Ed25519PrivateKey.generate(), Pepper.create(work / "pepper.json"),
                       FixedClock())
    while led.size < 2 * READ_CHUNK + 37:
        led.append("admin_action", {"action": "menu_open", "detail": f"entry {led.size}"})
    led.close(checkpoint=False)
    with closing(sqlite3.connect(work / "ledger.db")) as conn:
        leaves = [h for (h,) in conn.execute("SELECT entry_hash FROM entries ORDER BY seq")]
    return work / "ledger.db", leaves


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=-40, max_value=700), st.integers(min_value=0, max_value=900)),
                min_size=1, max_size=12))
def test_every_proof_is_the_one_all_the_leaves_give(ledger: tuple[Path, list[bytes]],
                                                     steps: list[tuple[int, int]]) -> None:
    """One source for a whole run of syncs: acknowledgements that grow (mostly), go back (a restored portal)
    or stay, and proofs to sizes near them or far past them (a kiosk catching up proves to its newest
    checkpoint from each batch's acknowledgement)."""
    path, leaves = ledger
    with closing(LedgerSource(path)) as src:
        old = 0
        for step, reach in steps:
            old = min(max(0, old + step), len(leaves))
            new = min(old + reach, len(leaves))
            proof = src.consistency_proof(old, new)
            assert proof == merkle.consistency_proof(old, leaves[:new])
            assert merkle.verify_consistency(old, new, merkle.root(leaves[:old]), merkle.root(leaves[:new]), proof)


def test_a_source_keeps_the_range_and_the_unacknowledged_hashes_only(ledger: tuple[Path, list[bytes]]) -> None:
    path, leaves = ledger
    n = len(leaves)
    with closing(LedgerSource(path)) as src:
        assert src.consistency_proof(n - 3, n) == merkle.consistency_proof(n - 3, leaves)  # a restart's first
        assert src._acked.size == n - 3 and len(src._acked.stack) == (n - 3).bit_count()  # noqa: SLF001
        assert len(src._after) == 3 and not src._subtrees  # noqa: SLF001
    # A catch-up: the acknowledgement trails the newest checkpoint; subtrees among the unacknowledged
    # leaves are kept for the next proof, and let go once the acknowledgement passes them.
    with closing(LedgerSource(path)) as src:
        assert src.consistency_proof(100, n) == merkle.consistency_proof(100, leaves)
        assert src._subtrees and all(lo + size > 100 for lo, size in src._subtrees)  # noqa: SLF001
        assert src.consistency_proof(n - 1, n) == merkle.consistency_proof(n - 1, leaves)
        assert len(src._after) == 1 and not src._subtrees  # noqa: SLF001


def test_sizes_the_ledger_does_not_hold_are_refused(ledger: tuple[Path, list[bytes]]) -> None:
    path, leaves = ledger
    n = len(leaves)
    with closing(LedgerSource(path)) as fresh, pytest.raises(ValueError, match=f"holds {n} entries, not {n + 1}"):
        fresh.consistency_proof(n + 1, n + 1)
    with closing(LedgerSource(path)) as src:
        with pytest.raises(ValueError, match=f"holds {n} entries, not {n + 5}"):
            src.consistency_proof(n - 2, n + 5)
        with pytest.raises(ValueError, match="outside"):
            src.consistency_proof(5, 4)
        assert src.consistency_proof(n - 2, n) == merkle.consistency_proof(n - 2, leaves)  # still good after
