"""The monthly reconciliation names its months as staff read them, 「2026年12月」 ("Dec 2026" in English), while its
addresses and the accounting CSV keep ``YYYY-MM`` (docs/portal.md, dates and times on every page).

A real portal on loopback, the page read in headless Chromium. Before: the heading, the links to the months before
and after, the CSV link and the sponsor money's heading all said 「2026-12」, 「← 2026-11」, 「2027-01 →」.
"""

from __future__ import annotations

import re

import pytest
from sync_helpers import needs_chromium, staff_page, staff_session


@pytest.fixture
def center(staff_site):  # noqa: ANN001, ANN201 - conftest's portal with the login staff1
    return staff_site


@needs_chromium
def test_the_reconciliation_months_are_in_words_and_the_addresses_keep_iso(center, browser) -> None:  # noqa: ANN001
    page = staff_page(browser, center.url, "staff1", size=(1000, 900))
    page.goto(center.url + "/staff/reconciliation?month=2026-12")
    assert page.locator("h2").first.inner_text().endswith("· 2026年12月")
    assert page.locator("#prev").inner_text() == "← 2026年11月"
    assert page.locator("#next").inner_text() == "2027年1月 →"
    assert page.locator("#csv").inner_text() == "会計用 CSV（2026年12月）"
    assert page.locator("#sponsor h2").inner_text().endswith("· 2026年12月")
    assert page.locator("#prev").get_attribute("href") == "/staff/reconciliation?month=2026-11"
    assert page.locator("#next").get_attribute("href") == "/staff/reconciliation?month=2027-01"
    assert page.locator("#csv").get_attribute("href") == "/staff/reconciliation.csv?month=2026-12"
    # No month in ISO left anywhere a person reads on the page.
    assert not re.search(r"\b\d{4}-\d{2}\b", page.locator("main").inner_text())
    # Following the link goes to the month before, in words too.
    page.click("#prev")
    assert page.locator("h2").first.inner_text().endswith("· 2026年11月")


def test_in_english_the_months_are_english(center) -> None:  # noqa: ANN001
    s, _ = staff_session(center.url, "staff1", lang="en")
    html = s.get(center.url + "/staff/reconciliation?month=2027-01", timeout=10).text
    assert "← Dec 2026</a>" in html and ">Feb 2027 →</a>" in html and "(Jan 2027)" in html
