"""kiosk/ledger/seqmap.py: the replayed state's two growing maps answer exactly as the dicts they replace,
in any order of keys, and hold a gift in a few bytes."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.ledger.seqmap import DonationMap, SeqMap

SEQS = st.integers(min_value=0, max_value=2**63 - 1)
PROJECTS = st.sampled_from(["kodomo", "midori", "ongaku", "machi", "ゆめ"])
# Mostly increasing keys (a kiosk's ledger), with some below the newest and some repeated (a hand-made one).
OPS = st.lists(st.tuples(st.integers(min_value=-3, max_value=40), st.integers(min_value=0, max_value=10**6),
                         PROJECTS), max_size=60)


def _run(ops: list[tuple[int, int, str]], donations: bool) -> tuple[dict, SeqMap | DonationMap]:
    ref: dict = {}
    m: SeqMap | DonationMap = DonationMap() if donations else SeqMap()
    key = 0
    for step, value, project in ops:
        key = max(0, key + step)
        v = (project, value) if donations else value
        ref[key] = v
        m[key] = v
    return ref, m


def _same(ref: dict, m: SeqMap | DonationMap) -> None:
    assert list(m) == list(ref) and len(m) == len(ref)
    assert list(m.items()) == list(ref.items())
    assert m == ref and ref == m
    for k in range(-2, max(ref, default=0) + 3):
        assert (k in m) == (k in ref)
        assert m.get(k) == ref.get(k)
        assert m.get(k, "none") == ref.get(k, "none")
        if k in ref:
            assert m[k] == ref[k]
        else:
            with pytest.raises(KeyError):
                m[k]  # noqa: B018 - the lookup is the test
    assert "1" not in m and None not in m and m.get("1") is None


@given(OPS)
def test_a_resolution_map_answers_as_a_dict(ops: list[tuple[int, int, str]]) -> None:
    ref, m = _run(ops, donations=False)
    _same(ref, m)
    assert m.keys_list() == list(ref) and m.values_list() == list(ref.values())
    back = SeqMap.from_columns(m.keys_list(), m.values_list())
    _same(ref, back)
    assert back.keys_list() == m.keys_list()


@given(OPS)
def test_a_donation_map_answers_as_a_dict(ops: list[tuple[int, int, str]]) -> None:
    ref, m = _run(ops, donations=True)
    _same(ref, m)
    seqs, projects, yens = m.columns()
    assert seqs == list(ref) and list(zip(projects, yens, strict=True)) == list(ref.values())
    back = DonationMap.from_columns(seqs, projects, yens)
    _same(ref, back)
    assert back.columns() == m.columns()


def test_keys_in_a_kiosks_order_stay_in_arrays_and_a_key_below_the_newest_makes_a_dict() -> None:
    m = SeqMap((s, s + 1) for s in range(1, 3000, 3))
    assert m.compact
    m[1] = 9  # an existing key: replaced in place, where a dict keeps it
    assert m.compact and m[1] == 9 and next(iter(m)) == 1
    m[2] = 5  # below the newest: a dict from here on, in the same order
    assert not m.compact
    assert m.keys_list()[:2] == [1, 4] and m.keys_list()[-1] == 2 and m[2] == 5
    assert not SeqMap.from_columns([5, 3], [1, 2]).compact
    assert not SeqMap.from_columns([5, 5], [1, 2]).compact  # a repeated key: the last value, as dict() keeps
    assert SeqMap.from_columns([5, 5], [1, 2]) == {5: 2}


def test_values_an_array_cannot_hold_go_to_the_dict() -> None:
    m = SeqMap([(1, 2)])
    m[2] = 2**70
    m[2**64] = 3
    assert m == {1: 2, 2: 2**70, 2**64: 3} and not m.compact
    d = DonationMap([(1, ("a", 5))])
    d[2] = ("b", 2**70)
    assert d == {1: ("a", 5), 2: ("b", 2**70)} and list(d) == [1, 2]
    assert DonationMap.from_columns([1, 2], ["a", "b"], [1, 2**70]) == {1: ("a", 1), 2: ("b", 2**70)}


@given(st.lists(SEQS, max_size=5), st.lists(SEQS, max_size=5))
def test_columns_of_different_lengths_are_refused(keys: list[int], values: list[int]) -> None:
    if len(keys) != len(values):
        with pytest.raises(ValueError, match="keys for"):
            SeqMap.from_columns(keys, values)
        with pytest.raises(ValueError, match="seqs"):
            DonationMap.from_columns(keys, ["p"] * len(keys), values)


def test_a_gift_costs_a_few_bytes() -> None:
    """The reason for the module: a gift in both maps under 48 bytes (the dicts took about 110 and 215)."""
    n = 10_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        res, don = SeqMap(), DonationMap()
        for i in range(n):
            res[3 * i + 1] = 3 * i + 2
            don[3 * i + 2] = (("kodomo", "midori", "ongaku", "machi")[i % 4], 100 * (1 + i % 10))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held / n < 48, f"{held / n:.0f} bytes a gift"
    assert don[3 * 77 + 2] == ("midori", 800) and res[3 * 77 + 1] == 3 * 77 + 2
