"""Transit IC card contents: the keyless 0x008B and 0x090F blocks, and family detection.

Layouts (field notes, cross-checked with the long-standing community
descriptions of the "Cybernetics" SF card format):

* 0x008B block 0: byte 8 high nibble = card type, bytes 11-12 = balance (LE),
  bytes 14-15 = update counter.
* 0x090F history block: [0] terminal type, [1] process type, [4:6] date
  (7-bit year since 2000, 4-bit month, 5-bit day, big-endian bits),
  [6:10] line/station (or time for purchases), [10:12] balance after (LE),
  [12:15] transaction number (BE), [15] region.

Parsers raise :class:`ValueError` (only) for a block that is not 16 bytes or
holds an impossible value, so callers can drop one bad block without crashing.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Iterable, Sequence

import msgspec

SERVICE_ATTRIBUTE = 0x008B
SERVICE_HISTORY = 0x090F
SERVICE_GATE = 0x108F
KEYLESS_SERVICES = (SERVICE_ATTRIBUTE, SERVICE_HISTORY, SERVICE_GATE)

HISTORY_CAPACITY = 20
MAX_BALANCE_YEN = 20_000
"""Every transit IC e-money purse (cards and phones) is capped at ¥20,000."""

BLOCK = 16

CARD_TYPE_NAMES = {0: "EX-IC", 2: "Suica group", 3: "ICOCA"}

FAMILIES = (
    "suica", "pasmo", "icoca", "kitaca", "toica", "manaca",
    "sugoca", "nimoca", "hayakaken", "pitapa",
)
"""Named families; a card that cannot be told apart is ``transit``, a non-transit system ``unknown``."""

TERMINAL_NAMES = {
    0x03: "fare adjustment", 0x05: "bus", 0x07: "ticket machine", 0x08: "ticket machine",
    0x09: "charge machine", 0x12: "ticket machine", 0x16: "gate", 0x17: "gate",
    0x18: "ticket office", 0x1B: "phone", 0xC7: "shop", 0xC8: "vending machine",
}
PROCESS_NAMES = {
    0x01: "fare", 0x02: "charge", 0x03: "ticket purchase", 0x04: "fare adjustment",
    0x07: "new card", 0x0D: "bus", 0x0F: "bus", 0x14: "auto-charge entry",
    0x15: "auto-charge exit", 0x46: "purchase", 0x48: "bonus charge", 0x4A: "purchase cancel",
}


class AttributeInfo(msgspec.Struct, frozen=True):
    """Block 0 of service 0x008B."""

    card_type: int
    """High nibble of byte 8: 0 EX-IC, 2 the Suica/PASMO/TOICA/manaca/PiTaPa/nimoca/SUGOCA/Hayakaken group, 3 ICOCA."""
    last_region: int
    """Low nibble of byte 8: region of the last payment (changes with use; not an issuer)."""
    balance_yen: int
    update_counter: int

    @property
    def card_type_name(self) -> str:
        return CARD_TYPE_NAMES.get(self.card_type, f"type {self.card_type}")


class HistoryRecord(msgspec.Struct, frozen=True):
    """One 0x090F entry (newest first on the card)."""

    terminal_type: int
    process_type: int
    date: _dt.date
    balance_yen: int
    transaction_number: int
    region: int
    stations: bytes
    """Bytes 6-9: entry/exit line and station codes (for purchases, bytes 6-7 are the time)."""

    @property
    def terminal_name(self) -> str:
        return TERMINAL_NAMES.get(self.terminal_type, f"terminal {self.terminal_type:02X}")

    @property
    def process_name(self) -> str:
        return PROCESS_NAMES.get(self.process_type & 0x7F, f"process {self.process_type:02X}")


def _block(block: bytes, what: str) -> bytes:
    if not isinstance(block, (bytes, bytearray, memoryview)):
        raise ValueError(f"{what} block must be bytes, not {type(block).__name__}")
    block = bytes(block)
    if len(block) != BLOCK:
        raise ValueError(f"{what} block is {len(block)} bytes, expected {BLOCK}")
    return block


def parse_attribute_block(block: bytes) -> AttributeInfo:
    """Parse block 0 of 0x008B. Raises ValueError for a wrong length or an impossible balance."""
    b = _block(block, "attribute")
    balance = struct.unpack("<H", b[11:13])[0]
    if balance > MAX_BALANCE_YEN:
        raise ValueError(f"attribute block balance ¥{balance} exceeds the ¥{MAX_BALANCE_YEN} purse limit")
    return AttributeInfo(
        card_type=b[8] >> 4,
        last_region=b[8] & 0x0F,
        balance_yen=balance,
        update_counter=struct.unpack(">H", b[14:16])[0],
    )


def is_empty_history_block(block: bytes) -> bool:
    """Unused history slots are all zero (a new card has fewer than 20 entries)."""
    return len(block) == BLOCK and not any(block)


def parse_history_block(block: bytes) -> HistoryRecord:
    """Parse one 0x090F block. Raises ValueError for a wrong length, an impossible date or balance."""
    b = _block(block, "history")
    raw = struct.unpack(">H", b[4:6])[0]
    year, month, day = 2000 + (raw >> 9), (raw >> 5) & 0x0F, raw & 0x1F
    if not 1 <= month <= 12:
        raise ValueError(f"history block has month {month}")
    try:
        date = _dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"history block has impossible date {year}-{month:02d}-{day:02d}") from None
    balance = struct.unpack("<H", b[10:12])[0]
    if balance > MAX_BALANCE_YEN:
        raise ValueError(f"history block balance ¥{balance} exceeds the ¥{MAX_BALANCE_YEN} purse limit")
    return HistoryRecord(
        terminal_type=b[0],
        process_type=b[1],
        date=date,
        balance_yen=balance,
        transaction_number=int.from_bytes(b[12:15], "big"),
        region=b[15],
        stations=b[6:10],
    )


def parse_history(blocks: Iterable[bytes]) -> tuple[list[HistoryRecord], int]:
    """Parse several history blocks, skipping empty slots; returns (records, number of bad blocks)."""
    records: list[HistoryRecord] = []
    bad = 0
    for blk in blocks:
        if is_empty_history_block(blk):
            continue
        try:
            records.append(parse_history_block(blk))
        except ValueError:
            bad += 1
    return records, bad


# --- encoding (the simulator writes cards with these) --------------------------

def encode_attribute_block(card_type: int, balance_yen: int, update_counter: int = 0, last_region: int = 0) -> bytes:
    if not 0 <= card_type <= 15 or not 0 <= last_region <= 15:
        raise ValueError("card type and region are 4 bits")
    if not 0 <= balance_yen <= MAX_BALANCE_YEN:
        raise ValueError("balance out of range")
    b = bytearray(BLOCK)
    b[8] = card_type << 4 | last_region
    b[11:13] = struct.pack("<H", balance_yen)
    b[14:16] = struct.pack(">H", update_counter & 0xFFFF)
    return bytes(b)


def encode_history_block(
    *, terminal_type: int, process_type: int, date: _dt.date, balance_yen: int,
    transaction_number: int, region: int = 0, stations: bytes = b"\0\0\0\0",
) -> bytes:
    if not 2000 <= date.year <= 2127:
        raise ValueError("year must be 2000..2127")
    if not 0 <= balance_yen <= MAX_BALANCE_YEN or not 0 <= transaction_number < 1 << 24:
        raise ValueError("balance or transaction number out of range")
    if len(stations) != 4:
        raise ValueError("stations is 4 bytes")
    b = bytearray(BLOCK)
    b[0], b[1] = terminal_type & 0xFF, process_type & 0xFF
    b[4:6] = struct.pack(">H", (date.year - 2000) << 9 | date.month << 5 | date.day)
    b[6:10] = stations
    b[10:12] = struct.pack("<H", balance_yen)
    b[12:15] = transaction_number.to_bytes(3, "big")
    b[15] = region & 0xFF
    return bytes(b)


# --- telling families apart ----------------------------------------------------
# Service/area codes at 0x1800 and above that each issuer puts in system 0x0003.
# These are community observations (the Japanese wdic "サイバネ規格" page, as
# collected by the Metrodroid project); several are marked unverified there, so
# detection is best effort and anything ambiguous falls back to "transit".
_ISSUER_NODES: dict[str, frozenset[int]] = {
    "hayakaken": frozenset({0x1F88, 0x1F8A, 0x2048, 0x204A, 0x2448, 0x244A, 0x2488, 0x248A,
                            0x24C8, 0x24CA, 0x2508, 0x250A, 0x2548, 0x254A}),
    "icoca": frozenset({0x1A48, 0x1A4A, 0x1A88, 0x1A8A, 0x9608, 0x960A}),
    "kitaca": frozenset({0x1848, 0x184B, 0x2088, 0x208B, 0x20C8, 0x20CB, 0x2108, 0x210B,
                         0x2148, 0x214B, 0x2188, 0x218B}),
    "manaca": frozenset({0x9888, 0x988B, 0x98CC, 0x98CF, 0x9908, 0x990A, 0x9948, 0x994A,
                         0x9988, 0x998B}),
    "nimoca": frozenset({0x1F48, 0x1F4A, 0x1F88, 0x1F8A, 0x1FC8, 0x1FCA, 0x2008, 0x200A,
                         0x2048, 0x204A}),
    "pasmo": frozenset({0x1848, 0x184B, 0x1908, 0x190A, 0x1948, 0x194B, 0x1988, 0x198B,
                        0x1CC8, 0x1CCA, 0x1D08, 0x1D0A, 0x2308, 0x230A, 0x2348, 0x234B,
                        0x2388, 0x238B, 0x23C8, 0x23CB}),
    "pitapa": frozenset({0x1B88, 0x1B8A, 0x9748, 0x974A}),
    "sugoca": frozenset({0x1F88, 0x1F8A, 0x2048, 0x204B, 0x21C8, 0x21CB, 0x2208, 0x220A,
                         0x2248, 0x224A, 0x2288, 0x228A}),
    "suica": frozenset({0x1808, 0x180A, 0x1848, 0x184B, 0x18C8, 0x18CA, 0x1908, 0x190A,
                        0x1948, 0x194B, 0x1988, 0x198B, 0x2308, 0x230A, 0x2348, 0x234B,
                        0x2388, 0x238B, 0x23C8, 0x23CB}),
    "toica": frozenset({0x1848, 0x184B, 0x1E08, 0x1E0A, 0x1E48, 0x1E4A, 0x1E88, 0x1E8A,
                        0x1E8B, 0x1ECC, 0x1ECF}),
}


def _unique_nodes() -> dict[str, tuple[int, ...]]:
    """For each family, the nodes no other family has (two at most, to keep one Request Service)."""
    out: dict[str, tuple[int, ...]] = {}
    for fam, nodes in _ISSUER_NODES.items():
        others = frozenset().union(*(v for k, v in _ISSUER_NODES.items() if k != fam))
        out[fam] = tuple(sorted(nodes - others))[:2]
    return out


FAMILY_PROBE: dict[str, tuple[int, ...]] = _unique_nodes()
"""Family -> node codes that only that family's cards carry."""

PROBE_NODES: tuple[int, ...] = tuple(sorted({n for nodes in FAMILY_PROBE.values() for n in nodes}))
"""Everything one Request Service sends (fits the 32-node limit)."""

assert 0 < len(PROBE_NODES) <= 32 and all(FAMILY_PROBE.values())


def issuer_nodes(family: str) -> frozenset[int]:
    """All known nodes of a family (the simulator builds cards from these)."""
    return _ISSUER_NODES.get(family, frozenset())


def family_from_key_versions(nodes: Sequence[int], key_versions: Sequence[int], card_type: int | None) -> str:
    """Pick the family whose unique nodes exist (key version != 0xFFFF); else fall back.

    Fallback: card type 3 is only ICOCA; anything else is plain ``transit``.
    """
    if len(nodes) != len(key_versions):
        raise ValueError("one key version per node")
    present = {n for n, kv in zip(nodes, key_versions, strict=True) if kv != 0xFFFF}
    hits = [fam for fam, probe in FAMILY_PROBE.items() if present.intersection(probe)]
    if len(hits) == 1:
        return hits[0]
    if card_type == 3:
        return "icoca"
    return "transit"
