from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.reader import transit
from kiosk.reader.transit import parse_attribute_block, parse_history_block

# Layouts from the issue: a Suica-group card (type 2) with ¥1,234, and a gate ride on 2024-04-21.
ATTR = bytes.fromhex("0000 0000 0000 0000 2000 00D2 0400 002A")
HIST = bytes.fromhex("1601 0002 3095 E31A E32B D204 0001 F400")


def test_attribute_block():
    a = parse_attribute_block(ATTR)
    assert (a.card_type, a.balance_yen, a.update_counter) == (2, 1234, 0x2A)
    assert parse_attribute_block(bytes.fromhex("0000 0000 0000 0000 3500 0010 2700 0000")).card_type == 3


def test_history_block():
    h = parse_history_block(HIST)
    assert h.terminal_type == 0x16 and h.terminal_name == "gate"
    assert h.process_type == 0x01 and h.process_name == "fare"
    assert h.date == dt.date(2024, 4, 21)
    assert h.balance_yen == 1234
    assert h.transaction_number == 500
    assert h.region == 0
    assert h.stations == bytes.fromhex("E31AE32B")


@pytest.mark.parametrize("bad", [b"", bytes(15), bytes(17), "x" * 16])
def test_wrong_length_is_value_error(bad):
    with pytest.raises(ValueError):
        parse_attribute_block(bad)
    with pytest.raises(ValueError):
        parse_history_block(bad)


@pytest.mark.parametrize("month", [0, 13, 15])
def test_impossible_month(month):
    blk = bytearray(HIST)
    raw = (24 << 9) | (month << 5) | 1
    blk[4:6] = raw.to_bytes(2, "big")
    with pytest.raises(ValueError, match="month"):
        parse_history_block(bytes(blk))


def test_impossible_day_and_balance():
    blk = bytearray(HIST)
    blk[4:6] = ((24 << 9) | (2 << 5) | 30).to_bytes(2, "big")  # 30 February
    with pytest.raises(ValueError, match="impossible date"):
        parse_history_block(bytes(blk))
    attr = bytearray(ATTR)
    attr[11:13] = (30000).to_bytes(2, "little")
    with pytest.raises(ValueError, match="purse limit"):
        parse_attribute_block(bytes(attr))


def test_empty_history_slots_are_skipped():
    records, bad = transit.parse_history([HIST, bytes(16), bytes(16)])
    assert len(records) == 1 and bad == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_parsers_only_raise_value_error(data):
    for fn in (parse_attribute_block, parse_history_block):
        try:
            fn(data)
        except ValueError:
            pass


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 255), st.integers(0, 255), st.dates(dt.date(2000, 1, 1), dt.date(2127, 12, 31)),
    st.integers(0, 20000), st.integers(0, 2**24 - 1), st.integers(0, 255), st.binary(min_size=4, max_size=4),
)
def test_history_round_trip(term, proc, date, bal, txn, region, stations):
    blk = transit.encode_history_block(terminal_type=term, process_type=proc, date=date, balance_yen=bal,
                                       transaction_number=txn, region=region, stations=stations)
    h = parse_history_block(blk)
    assert (h.terminal_type, h.process_type, h.date, h.balance_yen, h.transaction_number, h.region, h.stations) == (
        term, proc, date, bal, txn, region, stations)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 15), st.integers(0, 20000), st.integers(0, 0xFFFF))
def test_attribute_round_trip(ct, bal, counter):
    a = parse_attribute_block(transit.encode_attribute_block(ct, bal, counter))
    assert (a.card_type, a.balance_yen, a.update_counter) == (ct, bal, counter)


def test_family_probe_nodes_are_unique_per_family():
    seen = {}
    for fam, nodes in transit.FAMILY_PROBE.items():
        assert nodes, fam
        for n in nodes:
            assert n not in seen, (fam, seen.get(n))
            seen[n] = fam
            # unique: no other family's node set holds it
            assert [f for f in transit.FAMILIES if n in transit.issuer_nodes(f)] == [fam]


@pytest.mark.parametrize("fam", transit.FAMILIES)
def test_family_from_key_versions(fam):
    nodes = transit.PROBE_NODES
    kvs = [0 if n in transit.issuer_nodes(fam) else 0xFFFF for n in nodes]
    assert transit.family_from_key_versions(nodes, kvs, 2) == fam


def test_family_fallbacks():
    nodes = transit.PROBE_NODES
    none = [0xFFFF] * len(nodes)
    assert transit.family_from_key_versions(nodes, none, 2) == "transit"
    assert transit.family_from_key_versions(nodes, none, 3) == "icoca"
    everything = [0] * len(nodes)  # ambiguous: several families match
    assert transit.family_from_key_versions(nodes, everything, 2) == "transit"
