"""The systemd notify protocol, written in-process (sd_notify(3): one datagram to ``$NOTIFY_SOCKET``).

No wrapper library: ``sdnotify`` on PyPI is unmaintained and ``systemd-python``
needs compiling, and the protocol is a newline-separated ``KEY=VALUE``
datagram on an AF_UNIX socket whose path may be abstract (leading ``@``).

:class:`Watchdog` sends ``WATCHDOG=1`` only while the render loop really
presents frames: it watches a frame counter, so a frozen picture (decoder
hung, display lost, loop stuck) stops the pings and systemd restarts the
service after ``WatchdogSec``. One exception: while the display is
deliberately released (HDMI unplugged, TV switched off; see
kiosk/player/display.py) nothing is presented by design, and a restart
would not bring the TV back, so ``waiting()`` excuses the missing frames.
Call :meth:`Watchdog.tick` from the render loop itself so that a loop hung
while waiting still stops the pings.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def socket_address(path: str) -> str | bytes:
    """An abstract socket (``@name``) is addressed with a leading NUL byte."""
    return b"\0" + path[1:].encode() if path.startswith("@") else path


class Notifier:
    """Sends notify datagrams; does nothing when not started by systemd (no ``$NOTIFY_SOCKET``)."""

    def __init__(self, socket_path: str | None = None, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=…"``) as one datagram. False if not sent."""
        if not self.path:
            return False
        msg = "\n".join(f.replace("\n", " ") if f.startswith("STATUS=") else f for f in fields).encode()
        with self._lock:
            try:
                if self._sock is None:
                    # Non-blocking: this is called from the render loop, and a reader that has stopped
                    # draining its queue must cost us a lost datagram, never a frozen picture.
                    self._sock = socket.socket(socket.AF_UNIX,
                                               socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
                self._sock.sendto(msg, socket_address(self.path))
                return True
            except OSError as exc:
                # systemd may be restarting; a lost ping is better than a crashed kiosk.
                log.warning("sd_notify to %s failed: %s", self.path, exc.strerror or exc)
                return False

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: the screen and the reader are up (Type=notify units count as started)."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """``WatchdogSec`` in seconds from ``$WATCHDOG_USEC``; None when the watchdog is off or meant for another PID."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000


class Watchdog:
    """Pings systemd while ``frames()`` keeps rising.

    Call :meth:`tick` from the render loop (cheap: it pings at most every
    ``interval/2``), or :meth:`start` a thread that checks every
    ``interval/4``. Either way a ping needs at least ``min_frames`` newly
    presented frames since the previous ping, so a loop that still runs but
    shows nothing new also lets the watchdog fire.
    """

    def __init__(self, notifier: Notifier, frames: Callable[[], int], interval_s: float | None, *,
                 min_frames: int = 1, waiting: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.notifier = notifier
        self.frames = frames
        self.waiting = waiting
        """True while the display is released on purpose (no connector): frames are not expected."""
        self.interval_s = interval_s
        self.min_frames = min_frames
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_frames = frames()
        self.pings = 0
        self.stalled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, frames: Callable[[], int], notifier: Notifier | None = None,
                 env: Mapping[str, str] | None = None, **kw: object) -> Watchdog:
        return cls(notifier or Notifier(env=env), frames, watchdog_interval(env), **kw)  # type: ignore[arg-type]

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None and self.notifier.enabled

    def tick(self) -> bool:
        """Ping if due and frames advanced; returns True when a ping was sent."""
        if not self.enabled:
            return False
        now = self._clock()
        if now - self._last_ping < self.interval_s / 2:  # type: ignore[operator]
            return False
        count = self.frames()
        excused = self.waiting is not None and self.waiting()
        if count - self._last_frames < self.min_frames and not excused:
            if not self.stalled:
                log.error("render loop stalled at frame %d: withholding WATCHDOG=1", count)
                self.stalled = True
            return False
        if self.stalled:
            log.info("render loop moving again at frame %d", count)
            self.stalled = False
        self._last_frames = count
        self._last_ping = now
        if self.notifier.watchdog():
            self.pings += 1
            return True
        return False

    def start(self) -> Watchdog:
        """Check from a daemon thread (for loops that cannot call :meth:`tick`)."""
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        period = self.interval_s / 4  # type: ignore[operator]
        while not self._stop.wait(period):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
