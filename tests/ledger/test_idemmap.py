"""kiosk/ledger/idemmap.py: the idempotency keys answer exactly as the dict they replace, whatever the keys
look like and in whatever order they come, and a kiosk's key costs a few bytes."""

from __future__ import annotations

import tracemalloc
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger import idemmap
from kiosk.ledger.idemmap import IdemMap

MERGE_EVERY = idemmap.MERGE_EVERY  # the module's own, before the fixture below sets a small one

HEX = "0123456789abcdef"
# Canonical keys, crowded so that high halves and whole keys repeat; and keys a hand-made ledger may carry:
# capitals, a sign, "0x", spaces and underscores (which int() takes), other lengths, text that is not hex.
CANONICAL = st.builds(lambda hi, lo: hi + lo, st.sampled_from(["0" * 16, "f" * 16, "0123456789abcdef"]),
                      st.text(HEX, min_size=16, max_size=16)) | st.text(HEX, min_size=32, max_size=32)
ODD = (st.text(HEX + "ABCDEF ", min_size=30, max_size=34) | st.text(max_size=40)
       | st.just("AB" * 16) | st.just("ab " * 10 + "ab") | st.just("-" + "0" * 30 + "1") | st.just("0x" + "1" * 30)
       | st.just("+" + "1" * 31) | st.just("1_" * 16))
KEYS = CANONICAL | CANONICAL | ODD  # mostly a kiosk's own
VALUES = st.integers(min_value=0, max_value=2**63 - 1) | st.sampled_from([2**63, 2**70, True])
OPS = st.lists(st.tuples(KEYS, VALUES), max_size=80)


@pytest.fixture(autouse=True)
def _small_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idemmap, "MERGE_EVERY", 3)  # merges within a few keys, so hypothesis reaches them


def _same(ref: dict, m: IdemMap, probes: list) -> None:
    assert len(m) == len(ref) and set(m) == set(ref) and sorted(m) == sorted(ref)
    assert m == ref and ref == m and m.as_dict() == ref
    assert dict(m.items()) == ref
    for k in [*ref, *probes, "", "0" * 32, "F" * 32, 5, None]:
        assert (k in m) == (k in ref)
        assert m.get(k) == ref.get(k) and m.get(k, "none") == ref.get(k, "none")
        if k in ref:
            assert m[k] == ref[k] and type(m[k]) is type(ref[k])
        else:
            with pytest.raises(KeyError):
                m[k]  # noqa: B018 - the lookup is the test


@settings(max_examples=300)
@given(st.lists(KEYS, min_size=1, max_size=12, unique=True),
       st.lists(st.tuples(st.integers(min_value=0, max_value=11), VALUES, st.integers(min_value=0, max_value=2)),
                max_size=80),
       st.lists(KEYS, max_size=10))
def test_the_map_answers_as_a_dict(pool: list[str], ops: list[tuple[int, int, int]], probes: list[str]) -> None:
    ref: dict = {}
    m = IdemMap()
    for i, v, asks in ops:  # keys from a small pool, so that they come back after a merge
        k = pool[i % len(pool)]
        for _ in range(asks):  # as the writer and the chain's rules do: is the key new (asked twice)? then add it
            assert (k in m) == (k in ref)
        ref[k] = v
        m[k] = v
        assert len(m) == len(ref)
    for k in pool:  # every key asked for and set once more, wherever it is kept by now
        assert (k in m) == (k in ref)
        m[k] = ref[k] = 7
        assert len(m) == len(ref)
    _same(ref, m, probes)
    back = IdemMap.from_dict(dict(sorted(ref.items())))  # as a snapshot lists them
    _same(ref, back, probes)
    _same(ref, IdemMap.from_dict(ref), probes)  # in any other order too


def test_a_kiosks_keys_go_to_the_sorted_columns() -> None:
    keys = [uuid.uuid4().hex for _ in range(23)]
    m = IdemMap((k, i) for i, k in enumerate(keys))
    assert m.columns_len == 21  # seven merges of three; two wait
    assert m.as_dict() == {k: i for i, k in enumerate(keys)}
    snap = dict(sorted(m.as_dict().items()))
    back = IdemMap.from_dict(snap)
    assert back.columns_len == 23 and back == m
    assert list(back) == sorted(keys)  # the columns iterate in the keys' own order
    assert keys[0] in m  # as the chain's rules ask before they add
    m[keys[0]] = 99  # a key already in a column is replaced in place
    assert m[keys[0]] == 99 and m.columns_len == 21 and len(m) == 23
    m[keys[1]] = 2**63  # a value the column cannot hold: the key moves to the dict
    assert m[keys[1]] == 2**63 and m.columns_len == 20 and len(m) == 23


def test_a_key_asked_for_twice_is_answered_again_after_an_add() -> None:
    """The writer asks whether an intent's key is new and the chain's rules ask again: the second ask reuses the
    first, and any add in between (of that key, or of another that merges the waiting keys) is seen."""
    keys = [uuid.uuid4().hex for _ in range(4)]
    m = IdemMap()
    assert keys[0] not in m and keys[0] not in m
    m[keys[0]] = 1
    assert keys[0] in m and keys[0] in m and m[keys[0]] == 1
    m[keys[1]] = 2
    m[keys[2]] = 3  # the third waiting key: a merge into the columns (MERGE_EVERY is 3 here)
    assert m.columns_len == 3
    assert keys[3] not in m
    m[keys[3]] = 4
    assert keys[3] in m and all(k in m for k in keys) and m == {k: i + 1 for i, k in enumerate(keys)}
    assert "idem-1" not in m and "idem-1" not in m  # a key that never goes to the columns: the same
    m["idem-1"] = 5
    assert "idem-1" in m and m["idem-1"] == 5


def test_other_keys_stay_in_the_dict() -> None:
    odd = ["idem-1", "AB" * 16, "ab " * 10 + "ab", "g" * 32, "a" * 31, "a" * 33, "-" + "0" * 30 + "1", "0x" + "1" * 30,
           "1_" * 16, " " + "a" * 31]
    m = IdemMap((k, i + 1) for i, k in enumerate(odd))
    assert m.columns_len == 0 and m == {k: i + 1 for i, k in enumerate(odd)}
    assert "ab" * 16 not in m and "AB" * 16 in m  # no key is taken for another spelling of its bytes
    back = IdemMap.from_dict({"a" * 32: 1, "idem-1": 2})
    assert back.columns_len == 1 and back == {"a" * 32: 1, "idem-1": 2}


def test_the_same_high_half_twice() -> None:
    a, b, c = "0" * 16 + "1" * 16, "0" * 16 + "2" * 16, "0" * 16 + "3" * 16
    m = IdemMap([(c, 3), (a, 1)])
    m._merge()
    m[b] = 2
    m._merge()
    assert list(m) == [a, b, c] and [m[a], m[b], m[c]] == [1, 2, 3]
    assert "0" * 16 + "0" * 16 not in m and "0" * 16 + "4" * 16 not in m and "0" * 16 + "15" + "1" * 14 not in m


def test_a_kiosks_key_costs_a_few_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason for the module: a key in under 40 bytes (the dict took about 147)."""
    monkeypatch.setattr(idemmap, "MERGE_EVERY", MERGE_EVERY)
    n = 20_000
    keys = [uuid.uuid4().hex for _ in range(n)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        m = IdemMap()
        for i, k in enumerate(keys):
            m[k] = 3 * i + 1
        m._merge()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held / n < 40, f"{held / n:.0f} bytes a key"
    assert m[keys[777]] == 3 * 777 + 1 and m.columns_len == n
