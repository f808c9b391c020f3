"""The checkout's ``reference_id`` names one kiosk's one gift, also for long kiosk ids.

Square keeps at most 40 characters. A kiosk id may have 40 itself, so ``<kiosk id>-<seq>`` cut to 40 gave two
kiosks whose ids start alike the same reference, and an auditor matching Square's records to the ledgers could
not tell their gifts apart. Real parts: the adapter and SDK against the fake Square API on loopback, which refuses
a reference longer than Square's limit; the kiosk ids pass the real config's pattern.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from kiosk.config.kiosk import KioskSection
from kiosk.payment.square import SquareTerminal
from tests.payment.fake_square import FakeSquare
from tests.payment.test_square_terminal import SleepLog, terminal

SQUARE_LIMIT = 40  # characters of a reference_id (the fake Square refuses more, as Square does)
# Two kiosks of one center: ids of the config's longest form (40 characters) that share their first 39.
LONG_A = "tsurugashima-civic-center-lobby-kiosk-01"
LONG_B = "tsurugashima-civic-center-lobby-kiosk-02"


def _reference(fake: FakeSquare, clk: SleepLog, tmp: Path, kiosk_id: str, seq: int) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    t: SquareTerminal = terminal(fake, clk, tmp, reference_prefix=kiosk_id)
    try:
        fake.plan = ["complete"]
        idem = hashlib.sha256(f"{kiosk_id}:{seq}".encode()).hexdigest()[:32]
        assert t.charge(100, idem, reference=str(seq)).status == "approved"  # Square accepted the reference
        return str(fake.only(idem).request["reference_id"])
    finally:
        t.close()


def _kiosk_of(ref: str, kiosks: list[str]) -> list[str]:
    """What docs/payment.md tells an auditor to do with a reference: which of the city's kiosks and which seq."""
    m = re.fullmatch(r"(?P<start>[a-z0-9-]*)~(?P<tag>[0-9a-f]{8})-(?P<seq>\d+)", ref)
    if m is None:
        head, _, seq = ref.rpartition("-")
        return [k for k in kiosks if k == head]
    return [k for k in kiosks if k.startswith(m["start"]) and hashlib.sha256(k.encode()).hexdigest()[:8] == m["tag"]]


@pytest.mark.parametrize("seq", [7, 12345, 9_876_543_210])
def test_kiosks_whose_ids_start_alike_get_different_references(tmp_path: Path, seq: int) -> None:
    for k in (LONG_A, LONG_B):
        assert KioskSection(id=k, data_dir=str(tmp_path)).id == k and len(k) == 40  # both are valid kiosk ids
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        a = _reference(fake, clk, tmp_path / "a", LONG_A, seq)
        b = _reference(fake, clk, tmp_path / "b", LONG_B, seq)
    assert a != b, f"two kiosks, one reference: {a}"
    for ref, kiosk in ((a, LONG_A), (b, LONG_B)):
        assert len(ref) <= SQUARE_LIMIT
        assert ref.endswith(f"-{seq}") and ref.startswith(kiosk[:12]), ref  # still readable: kiosk and 受付番号
        assert _kiosk_of(ref, [LONG_A, LONG_B, "lobby-1"]) == [kiosk], ref


def test_a_short_kiosk_id_keeps_its_plain_reference(tmp_path: Path) -> None:
    clk = SleepLog()
    with FakeSquare(clock=clk.monotonic) as fake:
        ref = _reference(fake, clk, tmp_path, "lobby-1", 42)
    assert ref == "lobby-1-42"
    assert _kiosk_of(ref, [LONG_A, "lobby-1", "lobby-12"]) == ["lobby-1"]
