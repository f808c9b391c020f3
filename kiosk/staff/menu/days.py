"""A business day as staff say it: ``11月21日(金)`` / ``Fri 21 Nov``, never ``2025-11-21`` (docs/menu.md).

Fixed names, not the system locale's: a kiosk's locale is whatever the image was built with."""

from __future__ import annotations

from datetime import date

JA_WEEKDAYS = "月火水木金土日"
EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def plain_day(lang: str, day: date, today: date | None = None) -> str:
    """``11月21日(金)`` / ``Fri 21 Nov``; the year only when it is not ``today``'s (a day dated by a clock that
    was not synced)."""
    year_now = (today or day).year
    if lang == "en":
        text = f"{EN_WEEKDAYS[day.weekday()]} {day.day} {EN_MONTHS[day.month - 1]}"
        return text + (f" {day.year}" if day.year != year_now else "")
    text = f"{day.month}月{day.day}日({JA_WEEKDAYS[day.weekday()]})"
    return (f"{day.year}年" if day.year != year_now else "") + text


def plain_iso_day(lang: str, iso: str, today: date | None = None) -> str:
    """:func:`plain_day` of a ``YYYY-MM-DD`` as the ledger and the reports hold it; anything else as it came."""
    try:
        day = date.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    return plain_day(lang, day, today)
