"""sd_notify against a real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from kiosk.ops.notify import Notifier, Watchdog, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path):
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:  # sun_path holds 108 bytes
        path = Path(tempfile.mkdtemp(prefix="sdn", dir="/tmp")) / "n.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(path))
    srv.settimeout(0.5)
    yield srv, str(path)
    srv.close()


def received(srv: socket.socket, wait: float = 0.2) -> list[str]:
    srv.settimeout(wait)
    out = []
    while True:
        try:
            out.append(srv.recv(4096).decode())
        except (TimeoutError, BlockingIOError):
            return out


class Frames:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        return self.n


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_ready_status_and_watchdog_reach_the_socket(notify_socket):
    srv, path = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.ready("attract loop")
    assert n.status("reader reconnecting\nretry 2")
    msgs = received(srv)
    assert msgs[0].split("\n")[:2] == ["READY=1", "STATUS=attract loop"]
    assert f"MAINPID={os.getpid()}" in msgs[0]
    assert msgs[1] == "STATUS=reader reconnecting retry 2"  # one line: newlines would split fields


def test_watchdog_pings_only_while_frames_advance(notify_socket):
    srv, path = notify_socket
    frames, clock = Frames(), Clock()
    wd = Watchdog(Notifier(env={"NOTIFY_SOCKET": path}), frames, interval_s=10, clock=clock)
    assert wd.enabled
    # Rendering: 60 fps for 30 s, ticking every frame; pings every interval/2 at most.
    for _ in range(30 * 60):
        frames.n += 1
        clock.t += 1 / 60
        wd.tick()
    assert received(srv) == ["WATCHDOG=1"] * 6 and wd.pings == 6
    # The picture freezes: the loop still ticks but nothing new is presented. The frames shown
    # since the last ping earn one more ping at most; after that, silence, and systemd restarts us.
    for _ in range(5 * 60):
        clock.t += 1 / 60
        wd.tick()
    assert len(received(srv)) <= 1
    for _ in range(60 * 60):
        clock.t += 1 / 60
        wd.tick()
    assert received(srv) == [] and wd.stalled
    # Frames again: pings resume.
    frames.n += 1
    clock.t += 5
    assert wd.tick()
    assert received(srv) == ["WATCHDOG=1"] and not wd.stalled


def test_watchdog_thread_stops_when_the_render_loop_stalls(notify_socket):
    srv, path = notify_socket
    frames = Frames()
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}
    wd = Watchdog.from_env(frames, env=env)
    assert wd.interval_s == 0.2
    wd.start()
    try:
        # Frames for 0.6 s, and on until the thread has pinged three times: a thread that a loaded host leaves
        # unscheduled for a while pings late, not never (the deadline is a liveness bound only).
        shown_until, deadline = time.monotonic() + 0.6, time.monotonic() + 60
        while (time.monotonic() < shown_until or wd.pings < 3) and time.monotonic() < deadline:
            frames.n += 1
            time.sleep(0.01)
        assert received(srv, 0.1).count("WATCHDOG=1") >= 3
        # Render loop stalled: frames stay put. A ping already due for the last frames goes out first; the thread's
        # next due check then finds no new frame and withholds the ping. Waiting for both, not for a fixed 0.15 s
        # the thread may not get on a busy machine, leaves no ping in flight when the silence starts. (In this
        # order: the thread sets `_last_frames` after clearing `stalled`, so `stalled` seen after the last frame
        # was pinged is the later check's, not one from a moment the frame loop itself was not scheduled.)
        def quiet() -> bool:
            return wd._last_frames == frames.n and wd.stalled

        while not quiet() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert quiet()
        received(srv, 0.05)
        time.sleep(0.6)  # three intervals and more: no ping while the frames stay put
        assert received(srv, 0.1) == []
    finally:
        wd.stop()


def test_abstract_socket_address():
    name = f"@kiosk-test-{os.getpid()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(b"\0" + name[1:].encode())
    try:
        assert Notifier(env={"NOTIFY_SOCKET": name}).send("READY=1")
        assert received(srv) == ["READY=1"]
    finally:
        srv.close()


def test_without_systemd_everything_is_a_quiet_no_op():
    n = Notifier(env={})
    assert not n.enabled and not n.ready() and not n.watchdog()
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # for another process
    assert not Watchdog(n, Frames(), None).tick()


def test_tv_switched_off_is_not_a_stall(notify_socket):
    """With the display released for a missing HDMI connector, the live loop keeps the watchdog fed."""
    srv, path = notify_socket
    frames, clock = Frames(), Clock()
    tv_off = {"now": True}
    wd = Watchdog(Notifier(env={"NOTIFY_SOCKET": path}), frames, interval_s=10, clock=clock,
                  waiting=lambda: tv_off["now"])
    for _ in range(20):
        clock.t += 1
        wd.tick()
    assert received(srv) == ["WATCHDOG=1"] * 4
    tv_off["now"] = False  # connector back but the picture does not come: that is a stall
    for _ in range(20):
        clock.t += 1
        wd.tick()
    assert received(srv) == []


def test_a_full_notify_queue_never_blocks_the_caller(tmp_path):
    """systemd not reading (queue full) must cost a datagram, not freeze the render loop."""
    import socket as _socket
    import time as _time

    from kiosk.ops.notify import Notifier

    path = tmp_path / "slow.sock"
    srv = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    srv.bind(str(path))
    n = Notifier(str(path))
    t0 = _time.monotonic()
    results = [n.status(f"ping {i}") for i in range(2000)]  # far more than any receive queue holds
    assert _time.monotonic() - t0 < 5
    assert results[0] is True and False in results  # some were dropped once the queue was full
    srv.close()
