"""Hypothesis strategies for the values a ledger body's data may hold (kiosk/ledger/encoding.py's domain):
null, booleans, safe integers, text without lone surrogates, and lists and objects of them with ASCII keys.
Shared by the ledger's encoding tests and the portal's fast body path tests, so both explore the same domain."""

from __future__ import annotations

from hypothesis import strategies as st

from kiosk.ledger.encoding import MAX_SAFE_INT

ascii_keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)  # any text but lone surrogates
)
values = st.recursive(scalars,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_keys, inner, max_size=4),
                      max_leaves=25)
