"""`kiosk receipt verify`'s reading of a receipt link: portal, code, and the key id from the #k= fragment."""

from __future__ import annotations

import pytest

from kiosk.sync.receipt_cli import split_url

CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize(("fragment", "key"), [
    ("#k=0123456789abcdef", "0123456789abcdef"),
    ("#k=0123456789abcdef&k=fedcba9876543210", "0123456789abcdef"),  # the first one
    ("#k=", None),  # an empty key id is no key id: the command asks for --key-id
    ("", None),
])
def test_split_url_takes_the_key_id_from_the_fragment(fragment: str, key: str | None) -> None:
    assert split_url(f"https://portal.example/center/r/{CODE}{fragment}") == (
        "https://portal.example/center", CODE, key)


def test_split_url_refuses_a_link_with_no_receipt_code() -> None:
    with pytest.raises(ValueError, match="not a receipt link"):
        split_url("https://portal.example/about#k=0123456789abcdef")
