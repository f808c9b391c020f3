"""columns._all_fit, the one-pass check of a batch's rows: when it says every value fits, the exact
per-value check (columns.problem) finds nothing in any row, whatever the rows hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server_sync import columns
from server_sync.db import entries

odd = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=80)
       | st.lists(st.integers(), max_size=70) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))
NAMES = [c.name for c in entries.c]


def _row(values):
    return dict(zip(NAMES, values, strict=False))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(odd, min_size=len(NAMES), max_size=len(NAMES)).map(_row), max_size=6), st.booleans())
def test_all_fit_is_never_wrong_when_it_says_yes(rows, drop_a_key):
    if drop_a_key and rows:
        rows[0].pop("project", None)  # rows without every column take the column-by-column path
    if columns._all_fit(entries, rows):
        assert all(columns.problem(entries, r) is None for r in rows)


def test_all_fit_finds_the_value_that_does_not_fit():
    row = {c: None for c in NAMES}
    good = dict(row, kiosk_id="k-1", seq=5, type="donation", boot=3, project="kodomo", donor="ab" * 32)
    assert columns._all_fit(entries, [good, dict(good, seq=6)])
    for bad in [dict(good, project="p" * 41), dict(good, boot=2**31), dict(good, seq=2**63),
                dict(good, boot=-(2**31) - 1), dict(good, donor="d" * 65)]:
        assert not columns._all_fit(entries, [good, bad])
        assert columns.problem(entries, bad) is not None
    assert columns._all_fit(entries, [dict(good, project=7)])  # a non-string in a string column is not its fault
