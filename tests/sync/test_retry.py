"""server_sync.wire.retry: the backoff policy, Retry-After in both forms, and the one retry loop."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server_sync.wire.retry import Backoff, Transient, retry, retry_after_of, retry_after_seconds

NOW = datetime(2025, 11, 21, 4, 40, tzinfo=UTC)


# --- the policy ---------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(attempt=st.integers(0, 2000), base=st.floats(0.001, 5), cap=st.floats(0, 120),
       retry_after=st.none() | st.floats(0, 7200), seed=st.integers(0, 2**32))
def test_delay_is_within_the_cap_and_never_sooner_than_retry_after(attempt, base, cap, retry_after, seed):
    b = Backoff(base=base, cap=cap)
    d = b.delay(attempt, retry_after, random.Random(seed))
    assert 0 <= d <= max(cap, min(retry_after or 0, b.longest_retry_after))
    assert d <= min(cap, base * 2.0 ** min(attempt, 60)) or d == min(retry_after, b.longest_retry_after)
    if retry_after is not None:
        assert d >= min(retry_after, b.longest_retry_after)
    if retry_after is None or retry_after <= cap:
        assert d <= cap


def test_full_jitter_spreads_over_the_whole_window():
    rng = random.Random(3)
    waits = [Backoff(base=1.0, cap=30.0).delay(6, rng=rng) for _ in range(2000)]
    assert max(waits) <= 30 and 13 < sum(waits) / len(waits) < 17  # uniform on [0, 30]
    assert min(waits) < 1  # full jitter: sometimes almost at once, so a fleet does not retry in step


def test_an_absurd_retry_after_is_cut_to_the_longest_wait():
    assert Backoff().delay(0, 10**9, random.Random(0)) == 3600.0


# --- Retry-After --------------------------------------------------------------------------------------
def test_retry_after_delay_seconds():
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds(" 0 ", NOW) == 0.0


def test_retry_after_http_date_in_all_three_rfc_9110_forms():
    later = NOW + timedelta(seconds=90)
    assert retry_after_seconds(format_datetime(later, usegmt=True), NOW) == 90.0  # IMF-fixdate
    assert retry_after_seconds(later.strftime("%A, %d-%b-%y %H:%M:%S GMT"), NOW) == 90.0  # obsolete RFC 850
    assert retry_after_seconds(later.strftime("%a %b %d %H:%M:%S %Y"), NOW) == 90.0  # obsolete asctime


def test_retry_after_date_in_the_past_is_zero():
    assert retry_after_seconds(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("garbage", [None, "", "soon", "-5", "1.5", "+3", "１２", "Mon, 32 Foo 2020 25:61:61 GMT",
                                     "Sun, 99 Nov 1994 08:49:37 GMT"])
def test_retry_after_garbage_is_none(garbage):
    assert retry_after_seconds(garbage, NOW) is None


def test_an_http_date_is_measured_from_the_response_date_not_a_wrong_local_clock():
    server_now = NOW + timedelta(days=40)  # a Pi without an RTC, 40 days behind the portal
    headers = {"Date": format_datetime(server_now, usegmt=True),
               "Retry-After": format_datetime(server_now + timedelta(seconds=30), usegmt=True)}
    assert retry_after_of(headers, NOW) == 30.0
    assert retry_after_of({"Retry-After": "7"}, NOW) == 7.0
    assert retry_after_of({}, NOW) is None


# --- the loop -----------------------------------------------------------------------------------------
class Flaky:
    """Fails with the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception):
        self.errors, self.calls = list(errors), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Busy(Exception):
    def __init__(self, retry_after: float | None = None):
        super().__init__("busy")
        self.retry_after = retry_after


def transient_if_busy(exc: Exception) -> Transient | None:
    return Transient(exc.retry_after) if isinstance(exc, Busy) else None


def test_retry_returns_after_transient_failures_waiting_as_the_policy_says():
    slept: list[float] = []
    call = Flaky(Busy(), Busy(retry_after=5), Busy())
    seen: list[tuple[int, float]] = []
    result = retry(call, classify=transient_if_busy, backoff=Backoff(base=1, cap=4), sleep=slept.append,
                   rng=random.Random(1), on_retry=lambda exc, attempt, wait: seen.append((attempt, wait)))
    assert result == "done" and call.calls == 4
    assert [a for a, _ in seen] == [0, 1, 2] and [w for _, w in seen] == slept
    assert slept[0] <= 1 and slept[1] == 5 and slept[2] <= 4  # Retry-After wins over a shorter window


def test_a_permanent_failure_is_raised_at_once():
    slept: list[float] = []
    call = Flaky(KeyError("refused"))
    with pytest.raises(KeyError):
        retry(call, classify=transient_if_busy, sleep=slept.append)
    assert call.calls == 1 and slept == []


def test_max_attempts_counts_calls_and_reraises_the_last_failure():
    slept: list[float] = []
    call = Flaky(Busy(1), Busy(2), Busy(3), Busy(4))
    with pytest.raises(Busy) as ei:
        retry(call, classify=transient_if_busy, max_attempts=3, sleep=slept.append, rng=random.Random(0))
    assert call.calls == 3 and ei.value.retry_after == 3 and len(slept) == 2


def test_progress_starts_the_backoff_over():
    attempts: list[int] = []
    call = Flaky(*[Busy() for _ in range(6)])
    progress = iter([False, False, True, False, True, False])
    retry(call, classify=lambda e: Transient(None, progressed=next(progress)), max_attempts=3,
          sleep=lambda s: None, on_retry=lambda exc, attempt, wait: attempts.append(attempt))
    assert call.calls == 7 and attempts == [0, 1, 0, 1, 0, 1]  # without the resets: given up after 3 calls


def test_an_exception_from_sleep_ends_the_loop():
    class Stop(Exception):
        pass

    def sleep(_s: float) -> None:
        raise Stop

    call = Flaky(Busy(), Busy())
    with pytest.raises(Stop):
        retry(call, classify=transient_if_busy, sleep=sleep)
    assert call.calls == 1
