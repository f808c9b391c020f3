from __future__ import annotations

import errno

from kiosk.reader.base import CardReader, ReaderFault
from kiosk.reader.events import ReaderConnected, ReaderDisconnected
from kiosk.reader.supervisor import ReaderSupervisor, State


class FlakyReader(CardReader):
    """A reader whose open/sense fail with whatever the test queues (the device seam)."""

    backend = "sim"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.open_errors: list[BaseException] = []
        self.poll_error: BaseException | None = None
        self.opens = 0
        self.closes = 0

    def open(self) -> str:
        self.opens += 1
        if self.open_errors:
            raise self.open_errors.pop(0)
        return "flaky"

    def close(self) -> None:
        self.closes += 1

    def sense(self, system_code):
        if self.poll_error is not None:
            e, self.poll_error = self.poll_error, None
            raise e
        return None


def make(rconf, pepper, clock):
    r = FlakyReader(rconf(), pepper.token, clock=clock)
    return r, ReaderSupervisor(r)


def test_backoff_doubles_from_half_a_second_to_five(rconf, pepper, clock):
    r, sup = make(rconf, pepper, clock)
    r.open_errors = [OSError(errno.ENODEV, "gone")] * 8
    delays = [sup.step() for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert sup.step() == 0.0 and sup.state is State.CONNECTED
    events = sup.events.drain()
    assert [type(e) for e in events] == [ReaderDisconnected, ReaderConnected]


def test_backoff_resets_after_a_good_connection(rconf, pepper, clock):
    r, sup = make(rconf, pepper, clock)
    r.open_errors = [OSError(errno.ENODEV, "x")] * 3
    [sup.step() for _ in range(4)]
    r.poll_error = OSError(errno.ENODEV, "unplugged")
    assert sup.step() == 0.5  # lost: first retry after 0.5 s
    assert r.closes == 1 and sup.state is State.RECONNECTING
    r.open_errors = [OSError(errno.ENODEV, "x")]
    assert sup.step() == 1.0
    assert sup.step() == 0.0 and sup.state is State.CONNECTED


def test_poll_interval_accounts_for_time_spent(rconf, pepper, clock):
    r, sup = make(rconf, pepper, clock)
    sup.step()
    assert sup.step() == sup.poll_interval_s == 0.05


def test_permission_and_busy_are_configuration_faults(rconf, pepper, clock):
    r, sup = make(rconf, pepper, clock)
    r.open_errors = [OSError(errno.EACCES, "denied"), OSError(errno.EACCES, "denied"), OSError(errno.EBUSY, "busy")]
    sup.step(); sup.step(); sup.step()
    events = sup.events.drain()
    assert [e.fault for e in events] == ["permission", "busy"]  # the repeat is not re-reported
    assert "udevadm" in events[0].fix and "GROUP=\"plugdev\"" in events[0].fix
    assert "blacklist port100" in events[1].fix
    assert sup.state is State.FAULT and sup.last_fault is events[1]


def test_reader_fault_passes_its_fix_through(rconf, pepper, clock):
    r, sup = make(rconf, pepper, clock)
    r.open_errors = [ReaderFault("missing", "pyscard is not installed", "apt install python3-pyscard")]
    sup.step()
    (e,) = sup.events.drain()
    assert (e.fault, e.fix, e.is_config_fault) == ("missing", "apt install python3-pyscard", True)


def test_a_bug_in_poll_does_not_kill_the_loop(rconf, pepper, clock, caplog):
    r, sup = make(rconf, pepper, clock)
    sup.step()
    r.poll_error = RuntimeError("bug")
    assert sup.step() == 0.05
    assert sup.state is State.CONNECTED
    assert "poll failed unexpectedly" in caplog.text


def test_threaded_start_stop(rconf, pepper):
    r = FlakyReader(rconf(), pepper.token)
    with ReaderSupervisor(r, poll_interval_s=0.001) as sup:
        ev = sup.get_event(timeout=30)  # liveness only: the supervisor thread's first step, late on a busy host
        assert isinstance(ev, ReaderConnected)
    assert sup.state is State.STOPPED and r.closes >= 1
