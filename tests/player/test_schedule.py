"""Playlist order, time windows, slides and hot reload, on a fake clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.config.player import EventSlide, PlaylistItem, TimeWindow
from kiosk.ledger.clock import FixedClock
from kiosk.player.schedule import ClipRef, Scheduler

TOKYO = ZoneInfo("Asia/Tokyo")


def item(project: str, **kw) -> PlaylistItem:
    return PlaylistItem(project=project, **kw)


def refs(*available: str):
    table = {p: ClipRef(p * 8, Path(f"/m/{p}.mp4"), p) for p in available}
    return lambda it: table.get(it.project)


def at(clock: FixedClock, y: int, mo: int, d: int, h: int, mi: int = 0) -> FixedClock:
    clock.set_wall(dt.datetime(y, mo, d, h, mi, tzinfo=TOKYO))
    return clock


def play(s: Scheduler, clock: FixedClock, n: int, step_s: float = 30.0) -> list[str | None]:
    out = []
    for _ in range(n):
        e = s.next(clock.now())
        out.append(None if e is None else (e.project_id if e.kind == "clip" else f"slide:{e.slide.title}"))
        clock.sleep(step_s)  # seconds (advance() takes the ledger's milliseconds)
    return out


def test_plays_in_order_and_wraps(fake_clock):
    s = Scheduler([item("a"), item("b"), item("c")], [], refs("a", "b", "c"), slide_every=0, tz=TOKYO)
    assert play(s, fake_clock, 7) == ["a", "b", "c", "a", "b", "c", "a"]


def test_repeat_plays_an_item_several_times_in_a_row(fake_clock):
    s = Scheduler([item("a", repeat=3), item("b")], [], refs("a", "b"), slide_every=0, tz=TOKYO)
    assert play(s, fake_clock, 6) == ["a", "a", "a", "b", "a", "a"]


def test_unplayable_items_are_skipped(fake_clock):
    s = Scheduler([item("a"), item("gone"), item("b")], [], refs("a", "b"), slide_every=0, tz=TOKYO)
    assert play(s, fake_clock, 4) == ["a", "b", "a", "b"]


def test_time_of_day_and_weekday_windows(fake_clock):
    morning = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "12:00"}
    weekend = {"days": ["sat", "sun"]}
    s = Scheduler(
        [item("always"), item("morning", windows=[morning]), item("weekend", windows=[weekend])],
        [], refs("always", "morning", "weekend"), slide_every=0, tz=TOKYO,
    )
    at(fake_clock, 2025, 7, 7, 10)  # Monday 10:00
    assert set(play(s, fake_clock, 4, 1)) == {"always", "morning"}
    at(fake_clock, 2025, 7, 7, 12)  # Monday 12:00: the morning window closed (end is exclusive)
    assert set(play(s, fake_clock, 4, 1)) == {"always"}
    at(fake_clock, 2025, 7, 12, 10)  # Saturday
    assert set(play(s, fake_clock, 4, 1)) == {"always", "weekend"}


def test_windows_use_the_kiosk_time_zone(fake_clock):
    s = Scheduler([item("m", windows=[{"start": "09:00", "end": "10:00"}])], [], refs("m"), slide_every=0, tz=TOKYO)
    fake_clock.set_wall(dt.datetime(2025, 7, 7, 0, 30, tzinfo=dt.UTC))  # 09:30 in Tokyo
    assert s.next(fake_clock.now()) is not None
    fake_clock.set_wall(dt.datetime(2025, 7, 7, 9, 30, tzinfo=dt.UTC))  # 18:30 in Tokyo
    assert s.next(fake_clock.now()) is None


def test_overnight_window_belongs_to_the_day_it_opens():
    w = TimeWindow(days=["fri"], start="22:00", end="02:00")
    fri, sat = dt.datetime(2025, 7, 11, tzinfo=TOKYO), dt.datetime(2025, 7, 12, tzinfo=TOKYO)
    assert w.contains(fri.replace(hour=23))
    assert w.contains(sat.replace(hour=1, minute=59))
    assert not w.contains(sat.replace(hour=2))
    assert not w.contains(sat.replace(hour=23))  # Saturday night is not a Friday window
    assert not w.contains(fri.replace(hour=1))  # early Friday belongs to a Thursday window


@given(
    days=st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1, unique=True),
    start=st.integers(0, 23 * 60 + 59),
    end=st.integers(1, 24 * 60),
    when=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31)),
)
def test_window_matches_a_minute_by_minute_walk(days, start, end, when):
    """A window contains a time iff walking back from it, minute by minute, reaches the opening on an open day."""
    if start == end:
        return
    fmt = lambda m: f"{m // 60:02d}:{m % 60:02d}"  # noqa: E731
    w = TimeWindow(days=days, start=fmt(start), end=fmt(end))
    length = end - start if end > start else end - start + 24 * 60
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    expected = False
    for back in range(length):
        t = when - dt.timedelta(minutes=back)
        if t.hour * 60 + t.minute == start:
            expected = names[t.weekday()] in days
            break
    assert w.contains(when) == expected


def test_event_slides_every_n_clips_and_only_while_upcoming(fake_clock):
    slide = EventSlide(title="説明会", date=dt.date(2025, 7, 10), show_days_before=5)
    s = Scheduler([item("a"), item("b")], [slide], refs("a", "b"), slide_every=2, tz=TOKYO)
    at(fake_clock, 2025, 7, 3, 10)  # seven days before: not yet
    assert play(s, fake_clock, 3, 1) == ["a", "b", "a"]
    at(fake_clock, 2025, 7, 7, 10)
    # Three clips have passed since the last slide, so the slide comes first now.
    assert play(s, fake_clock, 5, 1) == ["slide:説明会", "b", "a", "slide:説明会", "b"]
    at(fake_clock, 2025, 7, 11, 0, 1)  # the day after: gone
    assert "slide:説明会" not in play(s, fake_clock, 6, 1)


def test_slides_fill_in_when_no_clip_can_play_and_none_means_nothing(fake_clock):
    slide = EventSlide(title="夏祭り", date=dt.date(2025, 8, 1))
    s = Scheduler([item("missing")], [slide], refs(), slide_every=0, tz=TOKYO)
    e = s.next(fake_clock.now())
    assert e is not None and e.kind == "slide" and e.duration_s == slide.duration_s
    assert Scheduler([], [], refs(), tz=TOKYO).next(fake_clock.now()) is None


def test_hot_reload_takes_effect_at_the_next_boundary_and_keeps_position(fake_clock):
    s = Scheduler([item("a"), item("b"), item("c")], [], refs("a", "b", "c", "d"), slide_every=0, tz=TOKYO)
    assert play(s, fake_clock, 2) == ["a", "b"]
    s.update([item("a"), item("b"), item("d"), item("c")], [])
    # The change is staged: nothing happens until the scheduler is asked for the next clip,
    # and then play continues after "b", which is still in the new list.
    assert [i.project for i in s.playlist] == ["a", "b", "c"]
    assert play(s, fake_clock, 4) == ["d", "c", "a", "b"]


def test_hot_reload_with_the_current_item_removed_starts_from_the_top(fake_clock):
    s = Scheduler([item("a"), item("b")], [], refs("a", "b", "c"), slide_every=0, tz=TOKYO)
    assert play(s, fake_clock, 2) == ["a", "b"]
    s.update([item("c"), item("a")], [])
    assert play(s, fake_clock, 3) == ["c", "a", "c"]


@pytest.mark.parametrize("bad", ["25:00", "9:00", "12:60", "24:01"])
def test_window_times_are_validated(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TimeWindow(start=bad)
