from __future__ import annotations

import pytest

from kiosk.reader.debounce import Debouncer, Seen


def test_held_card_is_one_tap():
    d = Debouncer(cooldown_s=3, removal_misses=3)
    assert d.seen("a", 0.0) == (Seen.TAP, None)
    for i in range(1, 50):
        assert d.seen("a", i * 0.05) == (Seen.HELD, None)


def test_removed_only_after_several_misses():
    d = Debouncer(cooldown_s=0, removal_misses=3)
    d.seen("a", 0.0)
    assert d.missed(0.05) is None
    assert d.missed(0.10) is None
    assert d.seen("a", 0.15) == (Seen.HELD, None)  # flicker at the edge of the field: same tap
    assert d.missed(0.20) is None and d.missed(0.25) is None
    assert d.missed(0.30) == "a"
    assert d.current is None


def test_retap_within_cooldown_is_not_a_new_tap():
    d = Debouncer(cooldown_s=3, removal_misses=1)
    d.seen("a", 0.0)
    assert d.missed(1.0) == "a"
    assert d.seen("a", 2.5)[0] is Seen.COOLDOWN  # 2.5 s after it was last seen
    assert d.missed(3.0) == "a"
    assert d.seen("a", 5.6)[0] is Seen.TAP  # 3.1 s after it was last seen (at 2.5)


def test_cooldown_counts_from_last_seen_not_first_tap():
    d = Debouncer(cooldown_s=3, removal_misses=1)
    d.seen("a", 0.0)
    d.seen("a", 10.0)  # held for 10 s
    d.missed(10.1)
    assert d.seen("a", 12.0)[0] is Seen.COOLDOWN
    d.missed(12.1)
    assert d.seen("a", 15.5)[0] is Seen.TAP


def test_different_card_replaces_current():
    d = Debouncer(cooldown_s=3, removal_misses=3)
    d.seen("a", 0.0)
    assert d.seen("b", 0.1) == (Seen.TAP, "a")
    assert d.current == "b"


def test_failed_read_is_retried_on_retap_but_not_while_held():
    d = Debouncer(cooldown_s=3, removal_misses=1)
    d.seen("a", 0.0)
    d.forget("a")
    assert d.seen("a", 0.05) == (Seen.HELD, None)
    d.missed(0.1)
    assert d.seen("a", 0.2)[0] is Seen.TAP


def test_zero_cooldown_every_return_is_a_tap():
    d = Debouncer(cooldown_s=0, removal_misses=1)
    d.seen("a", 0.0)
    d.missed(0.05)
    assert d.seen("a", 0.06)[0] is Seen.TAP


def test_bad_settings():
    with pytest.raises(ValueError):
        Debouncer(cooldown_s=1, removal_misses=0)
    with pytest.raises(ValueError):
        Debouncer(cooldown_s=-1)
