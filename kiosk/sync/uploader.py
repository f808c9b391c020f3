"""The kiosk side: enrollment, the uploader, and its background thread.

One sync round is: heartbeat (learn the portal's high-water mark, checkpoint and config version),
pull a newer config if there is one, then upload ``accepted+1 ..`` in batches until the portal has
everything that was in the ledger when the round began. Every failure is classified:

- transient (network errors, cut or garbled answers, 5xx, 429, 409 in flight/conflict, a stale
  request time): retried with full-jitter exponential backoff, never sooner than Retry-After;
- permanent (not enrolled, refused entries, equivocation): stop and report it.

Nothing here runs on the donation path: the uploader reads the ledger on its own connection
(:class:`~kiosk.sync.source.LedgerSource`) and only the config applier appends one entry.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger import LedgerError
from kiosk.ledger.clock import Clock, SystemClock
from kiosk.ledger.durable import write_atomic
from kiosk.ledger.encoding import MAX_SAFE_INT  # the largest seq or size an answer may name, as in a body
from kiosk.ledger.keys import public_raw
from kiosk.ops.status import (  # below kiosk.sync; imported by `kiosk run`
    SYNC_ERRORS,  # the kinds staff are told of
    SYNC_STATE_TYPES,
    parse_saved_sync,  # what counts as an unreadable sync-state.json, for `kiosk status` too
)
from kiosk.sync.configapply import ConfigApplier, ConfigApplyError
from server_sync.wire import framing as P  # not protocol: its pydantic models are the portal's (cold start, #16)
from server_sync.wire.retry import Backoff, Transient, retry, retry_after_of

if TYPE_CHECKING:
    import requests

    from kiosk.sync.source import LedgerSource

REUSE_IDLE_S = 2.0
"""Seconds a kept-alive HTTP connection may sit idle and still be reused. A server closes idle connections
after its own keep-alive timeout (uvicorn: 5 s, nginx: 75 s); a request sent on a connection just as the
server closes it is lost with "Remote end closed connection without response" (bench/fleet.py's 200 kiosks met it
in three of four 60 s runs). Closing it here first, well inside the shortest of those timeouts,
leaves no such race; a kiosk syncing once a minute opens a connection a round either way."""

# requests (HTTP) and the ledger reader (SQLAlchemy) are imported when the uploader first talks to the portal or
# reads the ledger, on the sync thread: `kiosk run` builds its uploader before READY=1, and importing them there
# kept the lobby screen dark 0.3 s longer at full speed, four times that on a quarter core (cold start, #16).

log = logging.getLogger(__name__)

ANSWER_MAX_BYTES = 2 * P.MAX_BODY_BYTES
"""The largest answer body the kiosk reads from the portal (8 MiB; its answers are a few kB, a config document
at most about the size of a request). A longer one is cut and the attempt fails (transient)."""
MEDIA_MAX_BYTES = 1 << 30
"""The largest media file (GET /api/v1/media/{sha256}) the kiosk downloads for a pushed config."""
MEDIA_DEADLINE_S = 1800.0
"""Seconds a media file's whole exchange may take (a clip of a few hundred MB over a slow link)."""
SERVER_TIME_MS = (1_577_836_800_000, 7_258_118_400_000)
"""The portal clocks the kiosk learns from (2020-01-01 to 2200-01-01, ms): anything else is ignored."""


def _unknown_key(status: int, data: Any) -> bool:
    """The portal's answer to a request signed with a key it does not hold for this kiosk."""
    return status == 401 and isinstance(data, dict) and data.get("error") == "bad_request_signature"


class SyncError(Exception):
    """A failed exchange or round. ``kind`` is what staff are told of it (a key of
    :data:`kiosk.ops.status.SYNC_ERRORS`: network, portal_busy, not_enrolled, ...), set where the error is built
    and saved beside the message (``SyncState.last_error_kind``): the message is English for the technician and
    may be reworded; the kind is not read back out of it.

    ``never_sent``: the request surely never reached the portal (the connection to it, or to the HTTP proxy on the
    way, was never made: refused, no route, the name not found, a connect timeout). Set only where requests'
    exception is caught (:meth:`Uploader._call_once`, :func:`_never_sent`); False for everything else (a read
    timeout, a reset after sending, a cut or malformed answer, an HTTP status): an outcome unknown, the safe reading
    (kiosk/sync/pointsync.py forgets a card's word then)."""

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None, *,
                 kind: str = "other", never_sent: bool = False):
        if kind not in SYNC_ERRORS:
            raise ValueError(f"unknown sync error kind {kind!r}")
        super().__init__(message)
        self.permanent, self.retry_after, self.kind, self.never_sent = permanent, retry_after, kind, never_sent


LEDGER_MISMATCH = "ledger_mismatch"
"""``SyncState.extra`` key, set while this ledger does not match what the portal holds of it: the portal holds more
entries than the ledger has, or refuses its entries or checkpoint as another history under this kiosk's key
(``equivocation``, ``bad_consistency_proof``). Almost always a data dir restored from an old backup after the kiosk
had synced (docs/sync.md, "A kiosk restored from an old backup"). The status page says to stop taking gifts and
call the administrator; cleared by a round whose entries the portal takes."""
LEDGER_MISMATCH_CODES = frozenset({"equivocation", "bad_consistency_proof"})

CONFIG_REFUSED = "config_refused"
"""``SyncState.extra`` key: the pushed config :meth:`Uploader._pull_config` last refused, ``{version, reason,
detail}``, sent in each heartbeat while no version as new is applied (server_sync/wire/protocol.py
``ConfigRefused``), so the portal's kiosks page says the playlist will not arrive by itself. Cleared when a config
is applied. A ``busy`` wait (saved, its ledger entry not yet written) is no refusal and is not reported."""
CONFIG_REFUSED_REASONS = frozenset({"invalid", "damaged", "media", "disk", "other"})
CONFIG_REFUSED_DETAIL = 200
"""protocol.MAX_CONFIG_REFUSED_DETAIL (not imported: its pydantic models are the portal's)."""


def _one_line(text: str, limit: int) -> str:
    """``text`` on one line without control characters, at most ``limit`` characters (a heartbeat field the portal
    shows as it is)."""
    return " ".join("".join(c if c >= " " and c != "\x7f" else " " for c in text).split())[:limit]


class EnrollError(Exception):
    """Enrollment refused; ``str()`` is the portal's reason."""


# --- what the kiosk believes of an answer (docs/sync.md, "What the kiosk believes of the portal's answers") ------
def _shown(value: Any) -> str:
    return repr(value)[:60]


def _network(exc: Exception) -> str:
    return f"network: {type(exc).__name__}: {str(exc)[:200]}"


def _never_sent(exc: Exception) -> bool:
    """Whether requests' exception ``exc`` says the request surely never reached the portal: the connection to it
    (or to the HTTP proxy on the way) was never made: refused, no route, the name not found, a connect timeout.
    Anything else (a read timeout, a reset or a closed connection after sending, a TLS failure) is unknown."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProxyError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError) or isinstance(exc, requests.exceptions.SSLError):
        return False  # a reset or a closed connection after sending ("Connection aborted."), a TLS failure: unknown
    inner = exc.args[0] if exc.args else None
    reason = inner.reason if isinstance(inner, MaxRetryError) else None
    if isinstance(reason, ProxyError):  # only the connection to the proxy itself failing: nothing was sent
        reason = reason.original_error
    # urllib3's NewConnectionError (refused, unreachable, NameResolutionError) is a ConnectTimeoutError: raised only
    # while the connection is being made, before a byte of the request is sent.
    return isinstance(reason, ConnectTimeoutError)


def _malformed(why: str) -> SyncError:
    return SyncError(f"portal answer malformed: {why}", kind="bad_answer")


def _seq_field(data: dict[str, Any], key: str, lo: int = 0, hi: int = MAX_SAFE_INT) -> int:
    """``data[key]``: a plain int (not a bool, not a float, not a string) in ``lo..hi``, else SyncError."""
    value = data.get(key)
    if type(value) is not int:
        raise _malformed(f"{key} is {_shown(value)}, not an integer")
    if not lo <= value <= hi:
        raise _malformed(f"{key}={_shown(value)} is outside {lo}..{hi}")
    return value


def sync_answer(data: Any, kiosk_id: str) -> dict[str, Any]:
    """The parts of a portal's ``SyncAnswer`` (heartbeat and batch answers; server_sync/wire/protocol.py) the
    kiosk uses, checked: ``kiosk_id`` (a string, this kiosk's), ``accepted_through_seq`` and ``checkpoint_size``
    (plain ints, the checkpoint at most the high-water mark), ``config_version`` and ``pepper_epoch`` (plain
    ints, the latter 0 when absent). Raises a transient :class:`SyncError` ("portal answer ...") otherwise:
    nothing of a malformed answer is believed. The bounds against this ledger and the batch sent are the
    caller's. Plain checks, not the portal's pydantic model: the uploader is built on `kiosk run`'s start path,
    which imports no pydantic (cold start, #16)."""
    if data is None:
        raise _malformed("not JSON (an empty body or a web page: not a kiosk portal?)")
    if not isinstance(data, dict):
        raise _malformed(f"a {type(data).__name__}, not a JSON object")
    kid = data.get("kiosk_id")
    if not isinstance(kid, str):
        raise _malformed(f"kiosk_id is {_shown(kid)}, not a string")
    if kid != kiosk_id:
        raise SyncError(f"portal answer for kiosk {_shown(kid)}, not this kiosk ({kiosk_id}): not believed",
                        kind="bad_answer")
    accepted = _seq_field(data, "accepted_through_seq")
    out = {"kiosk_id": kid, "accepted_through_seq": accepted,
           "checkpoint_size": _seq_field(data, "checkpoint_size", hi=accepted),
           "config_version": _seq_field(data, "config_version"),
           "pepper_epoch": _seq_field(data, "pepper_epoch") if "pepper_epoch" in data else 0}
    return out


# --- one exchange's deadline (docs/sync.md, "What the kiosk believes of the portal's answers") -------------------
class _Deadline:
    """A wall-clock limit on one exchange with the portal: sending the request, the status line and headers, and
    the body. requests' ``timeout`` bounds each socket read, not their sum, so a portal sending one byte within
    every read timeout would hold the exchange for as long as it likes; and a check of the time between reads
    cannot run while the thread is inside requests, blocked reading the headers. So a timer thread shuts the
    socket down when the time is up: ``shutdown()`` wakes a ``recv()`` blocked in another thread at once, with end
    of file (``close()`` would not wake it), and requests raises. The socket is that of the connection
    :func:`_watch` saw this thread use (every connection of the uploader's session reports itself)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end_at = time.monotonic() + seconds
        self.passed = False
        """The time ran out before :meth:`finish`: the answer, whatever was read of it, is not believed."""
        self._lock = threading.Lock()  # one of _cut and finish wins: no cut after finish returns
        self._done = False
        self._conn: Any = None
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn
            if self.passed and not self._done:
                self._shut(conn)  # the time ran out while connecting: no request on it

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.passed = True
            self._shut(self._conn)

    @staticmethod
    def _shut(conn: Any) -> None:
        import socket  # here, on the timer's thread: not on `kiosk run`'s start path (see above)

        sock = getattr(conn, "sock", None)
        if sock is not None and not isinstance(sock, socket.socket):
            sock = getattr(sock, "socket", None)  # urllib3's TLS-in-TLS wrapper (an HTTPS proxy)
        if sock is None:
            return
        try:
            # socket.socket's own, not ssl.SSLSocket's: that one also drops its TLS state, under the reading thread.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # closed or detached already

    def finish(self) -> bool:
        """Stop the timer (before the connection goes back to the pool, so a late cut never hits the next
        request's); True when the time had run out."""
        with self._lock:
            self._done = True
        self._timer.cancel()
        return self.passed


_exchange = threading.local()
"""``.deadline``: the :class:`_Deadline` of the exchange this thread is making, or None."""


def _watch(conn: Any) -> None:
    """A connection of the uploader's session, about to connect or send a request: the current exchange's."""
    deadline = getattr(_exchange, "deadline", None)
    if deadline is not None:
        deadline.watch(conn)


class _Watched:
    """Mixed into urllib3's connection classes: each connection reports itself to the current exchange's deadline
    when it connects and when it sends a request (a kept-alive one does not connect again)."""

    def connect(self) -> None:
        _watch(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


@functools.cache
def _deadline_adapter() -> type[Any]:
    """requests' HTTPAdapter whose pools make :class:`_Watched` connections (also through an HTTP(S) proxy).
    Built on first use: requests is not imported on `kiosk run`'s start path (see above)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Conn(_Watched, HTTPConnection):
        pass

    class SConn(_Watched, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(HTTPSConnectionPool):
        ConnectionCls = SConn

    pools = {"http": Pool, "https": SPool}

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            new = proxy not in self.proxy_manager
            manager = super().proxy_manager_for(proxy, **kwargs)
            if new and not proxy.lower().startswith("socks"):  # a SOCKS manager has pools of its own kind
                manager.pool_classes_by_scheme = pools
            return manager

    return Adapter


@dataclass
class SyncState:
    """What the kiosk knows about its sync, persisted in ``sync-state.json`` (and shown to staff)."""

    portal_url: str = ""
    kiosk_id: str = ""
    key_id: str = ""
    enrolled_ms: int | None = None
    accepted_through_seq: int = 0
    checkpoint_size: int = 0
    local_size: int = 0
    last_success_ms: int | None = None
    last_attempt_ms: int | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    """The kind of ``last_error`` (:attr:`SyncError.kind`), set with it; None with none. A file saved by a release
    before this field has the error without it (the status page then reads the kind from the words)."""
    config_version_seen: int = 0
    config_applied: int = 0
    config_staged: int = 0
    accepted_known: bool = True
    """False from the start of a round until the portal's heartbeat answer is taken: ``accepted_through_seq`` is
    then only what the portal held when it last answered (a portal restored from a backup holds less)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> int | None:
        """Entries the portal does not hold; None (not known) when the last round had no answer from the portal
        and it had acknowledged some: never a figure lower than the truth may be, which staff read as "nothing
        left to upload" before wiping a kiosk. With nothing ever acknowledged, the whole ledger is pending."""
        if not self.accepted_known and self.accepted_through_seq > 0:
            return None
        return self.pending_at_least

    @property
    def pending_at_least(self) -> int:
        """Entries after what the portal acknowledged when it last answered: never sent, or sent and not answered."""
        return max(0, self.local_size - self.accepted_through_seq)

    @property
    def ok(self) -> bool:
        return self.last_error is None and self.pending == 0 and self.last_success_ms is not None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pending": self.pending, "pending_at_least": self.pending_at_least, "ok": self.ok}

    def __post_init__(self) -> None:
        self.unreadable: str | None = None
        """Why ``sync-state.json`` could not be read (see :meth:`load`), or None. Not a field: never saved."""

    @classmethod
    def load(cls, path: Path) -> SyncState:
        """The state in ``path``. A missing file is a kiosk that never enrolled (a blank state). A file that is
        there but cannot be read, or is not a state (a power cut on an SD card that lied about its writes: empty,
        zeros, cut off, JSON of another shape), is a blank state with :attr:`unreadable` set: it holds this
        kiosk's enrollment, so it is never taken for "never enrolled" and never overwritten (:meth:`save`
        refuses); only a new enrollment replaces it, setting it aside (:meth:`set_aside`)."""
        return cls.read(path)[0]

    @classmethod
    def read(cls, path: Path) -> tuple[SyncState, bytes | None]:
        """:meth:`load`, and the bytes it read (None when there were none to read)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(), None
        except OSError as exc:
            return cls._broken(f"{exc.strerror or exc}"), None
        return cls.parse(raw), raw

    @classmethod
    def parse(cls, raw: bytes) -> SyncState:
        """The state in the bytes of a ``sync-state.json`` (:attr:`unreadable` set when they are none). Judged by
        :func:`kiosk.ops.status.parse_saved_sync`, as `kiosk status` and `kiosk doctor` judge the file."""
        data, why = parse_saved_sync(raw)
        if data is None:
            return cls._broken(why or "not a sync state")
        # Keys of another version (or report-only ones: pending, ok) are left out.
        return cls(**{k: v for k, v in data.items() if k in SYNC_STATE_TYPES})

    @classmethod
    def _broken(cls, why: str) -> SyncState:
        st = cls()
        st.unreadable = why
        return st

    def save(self, path: Path) -> bytes:
        """Write the state to ``path``; returns the bytes written."""
        if self.unreadable is not None:
            raise SyncStateUnreadable(unreadable_message(path, self.unreadable))
        # Durably: without the fsyncs a power cut right after enrolling could leave an empty or missing
        # file, and the kiosk "not enrolled" for good (the enrollment code is single-use).
        raw = json.dumps(self.to_json(), indent=1).encode("utf-8")
        write_atomic(path, raw)
        return raw

    def enrollment(self) -> tuple[str, str, str, int | None]:
        """What a successful `kiosk enroll` writes: the portal, kiosk id, key id and enrollment time."""
        return self.portal_url, self.kiosk_id, self.key_id, self.enrolled_ms

    def set_aside(self, path: Path) -> Path | None:
        """Move an unreadable ``path`` (:attr:`unreadable`) to ``<name>.unreadable-<ms>`` beside it, kept for whoever
        wants to look at it, so that :meth:`save` may write a new one. None when there was nothing to set aside."""
        if self.unreadable is None:
            return None
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time() * 1000)}")
        kept: Path | None = aside
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            kept = None  # gone meanwhile: nothing to keep
        self.unreadable = None
        return kept




class SyncStateUnreadable(OSError):
    """:meth:`SyncState.save` over a file that could not be read: refused, the file is kept."""


def unreadable_message(path: Path, why: str, kiosk_id: str = "ID", config: str = "FILE") -> str:
    """What staff read when ``sync-state.json`` cannot be read: which file, why, that it is kept, and the fix."""
    return (f"{path} is unreadable ({why}); it is kept as it is. It held this kiosk's enrollment, so the kiosk "
            f"cannot sync until it is enrolled again: on the portal server run `kiosk-portal enroll-code --kiosk-id "
            f"{kiosk_id}`, then here `kiosk enroll --config {config} --portal URL --code CODE` (the same kiosk and "
            "key; the ledger is intact and everything in it is uploaded)")


@contextlib.contextmanager
def _state_lock(state_path: Path) -> Iterator[None]:
    """Hold the lock of ``state_path``'s directory (``flock`` on the directory itself: no file of its own) while a
    writer reads and replaces ``sync-state.json``, so that no enrollment written by another process falls between
    an uploader's look at the file and its save. Without ``flock`` (not Linux) or the directory, unlocked."""
    try:
        import fcntl

        fd = os.open(state_path.parent, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):  # a file system without locks: as before, unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class Uploader:
    """Uploads one kiosk's ledger to its portal. Not thread-safe: one thread drives it."""

    def __init__(self, *, kiosk_id: str, signing_key: Ed25519PrivateKey, ledger_path: str | os.PathLike,
                 state_path: str | os.PathLike, portal_url: str = "", writer: Any = None, clock: Clock | None = None,
                 data_dir: str | os.PathLike | None = None, batch_entries: int = P.DEFAULT_BATCH_ENTRIES,
                 timeout: tuple[float, float] = (5.0, 30.0), backoff_base: float = 0.5, backoff_cap: float = 60.0,
                 session: requests.Session | None = None, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_config: Callable[[dict[str, Any]], None] | None = None,
                 payment_health: Callable[[], dict[str, str]] | None = None,
                 pepper_path: str | os.PathLike | None = None, pepper: Any = None,
                 reuse_idle_s: float = REUSE_IDLE_S, check_config: Callable[[dict[str, Any]], object] | None = None):
        self.kiosk_id = kiosk_id
        self.pepper_path = Path(pepper_path) if pepper_path else None
        """Where the city's pepper is adopted into (kiosk/sync/peppersync.py); None: this uploader does not."""
        self.pepper = pepper
        """The running kiosk's live :class:`~kiosk.ledger.pepper.Pepper`, updated in place on adoption."""
        self.payment_health = payment_health
        """The running kiosk's terminal report (terminal, state, detail) for each heartbeat; None outside one."""
        self.sk = signing_key
        self.pub_hex = public_raw(signing_key.public_key()).hex()
        self.previous_key_path: Path | None = None
        """``kiosk.key.previous`` after `kiosk rekey` (kiosk/ops/rekey.py): requests are signed with it until the
        portal has taken the key_change entry (it answers ``bad_request_signature`` to one key or the other)."""
        self.ledger_path = Path(ledger_path)
        self.state_path = Path(state_path)
        self.state, self._state_seen = SyncState.read(self.state_path)
        """``_state_seen``: the bytes of ``sync-state.json`` as this uploader last read or wrote them; others there
        are another process's (:meth:`adopt_newer_enrollment`)."""
        self.moving_to: str | None = None
        """A portal other than the one this kiosk is enrolled with, named by ``portal_url`` (`kiosk enroll --portal`,
        `kiosk sync --portal`): the uploader talks to it, but the enrollment stays the saved one until :meth:`enroll`
        there succeeds. Until then nothing is saved (:meth:`save_state`): a mistyped URL changes nothing."""
        if portal_url:
            url = portal_url.rstrip("/")
            if self.state.enrolled_ms is not None and self.state.portal_url and self.state.portal_url != url:
                self.moving_to = url
            else:
                self.state.portal_url = url
        self.set_aside_path: Path | None = None
        """Where :meth:`enroll` moved an unreadable ``sync-state.json`` (:meth:`SyncState.set_aside`), or None."""
        self.clock = clock or SystemClock()
        self.batch_entries = max(1, min(batch_entries, P.MAX_BATCH_ENTRIES))
        self.timeout = timeout
        self.backoff_policy = Backoff(backoff_base, backoff_cap)
        self._http = session
        self._watched = False  # the session's adapter is _deadline_adapter's
        self.reuse_idle_s = reuse_idle_s
        """A kept-alive connection idle longer than this is closed here rather than reused (see REUSE_IDLE_S)."""
        self._last_answer: float | None = None  # time.monotonic() of the last answer read, or None
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.offset_s = 0.0  # portal clock minus ours, learned from every answer
        self._source: LedgerSource | None = None
        # ``writer``: the ledger's LedgerWriter when this process may record pushed configs, else None (stage).
        # ``check_config``: raises for a pushed config this kiosk cannot run (ConfigApplier.check; from_config's).
        self.applier = ConfigApplier(Path(data_dir) if data_dir else self.state_path.parent, writer, on_config,
                                     check_config)

    @classmethod
    def from_config(cls, cfg: Any, *, writer: Any = None, portal_url: str = "", **kw: Any) -> Uploader:
        """An uploader for a :class:`kiosk.config.KioskConfig` (state in ``data_dir/sync-state.json``).

        The portal: ``portal_url`` when given (``kiosk enroll --portal``), else the one this kiosk is
        enrolled with, else ``[portal] url``. Enrolling with another portal is how a kiosk moves: the
        config file's URL is where it starts, and is not edited by hand to follow.
        """
        from kiosk.ledger import keys

        state_path = cfg.data_dir / "sync-state.json"
        url = portal_url or enrolled_portal(state_path) or cfg.portal.url
        if not portal_url and cfg.portal.url and url.rstrip("/") != cfg.portal.url.rstrip("/"):
            log.warning("enrolled with %s; [portal] url says %s: using %s (`kiosk enroll --portal URL --code CODE` "
                        "moves the kiosk)", url, cfg.portal.url, url)
        def runnable(pushed: dict[str, Any]) -> object:
            """This kiosk's config with the pushed document laid over it, as `kiosk run` adopts it: raises when the
            kiosk cannot run it (checked before the document is written or recorded: ConfigApplier.check)."""
            from kiosk.sync.adopt import overlay  # the config's models: only when a new document arrives

            return overlay(cfg, pushed)

        up = cls(kiosk_id=cfg.kiosk.id, signing_key=keys.load_private(cfg.private_key_path),
                 ledger_path=cfg.ledger_path, state_path=state_path,
                 portal_url=url, writer=writer, data_dir=cfg.data_dir,
                 **{"pepper_path": cfg.pepper_path, "check_config": runnable, **kw})
        up.previous_key_path = cfg.private_key_path.with_name(cfg.private_key_path.name + ".previous")
        return up

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def http(self) -> requests.Session:
        if self._http is None:
            import requests

            self._http = requests.Session()
        if not self._watched:
            # Also on a session passed in (bench/fleet.py's, which times each answer): every exchange has its
            # deadline (_Deadline).
            adapter = _deadline_adapter()()
            self._http.mount("http://", adapter)
            self._http.mount("https://", adapter)
            self._watched = True
        return self._http

    @property
    def source(self) -> LedgerSource:
        if self._source is None:
            from kiosk.sync.source import LedgerSource

            self._source = LedgerSource(self.ledger_path)
        return self._source

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        if self._http is not None:
            self._http.close()

    @property
    def portal_url(self) -> str:
        """The portal this uploader talks to: :attr:`moving_to`, else the state's."""
        return self.moving_to or self.state.portal_url

    @property
    def enrolled_here(self) -> bool:
        """This kiosk is enrolled with :attr:`portal_url`, as far as its (readable) sync-state.json says."""
        return self.moving_to is None and self.state.unreadable is None and self.state.enrolled_ms is not None

    def not_enrolled_message(self, config: str = "FILE") -> str:
        """Why this uploader may not sync (not :attr:`enrolled_here`), with the fix."""
        if self.state.unreadable is not None:
            return unreadable_message(self.state_path, self.state.unreadable, self.kiosk_id, config)
        move = f"`kiosk enroll --config {config} --portal {self.portal_url} --code CODE`"
        if self.moving_to is not None:
            return (f"kiosk is not enrolled with this portal ({self.moving_to}); it is enrolled with "
                    f"{self.state.portal_url}. Nothing was sent and {self.state_path.name} is unchanged: leave out "
                    f"--portal to sync with {self.state.portal_url}, or, to move the kiosk, run {move} with a code "
                    f"from the new portal (`kiosk-portal enroll-code --kiosk-id {self.kiosk_id}`)")
        return (f"kiosk is not enrolled with this portal: on the portal server run `kiosk-portal enroll-code "
                f"--kiosk-id {self.kiosk_id}`, then run {move}")

    def save_state(self) -> None:
        """Save ``sync-state.json``; not while this uploader talks to a portal the kiosk is not enrolled with
        (:attr:`moving_to`: a refused or failed override is not recorded), nor over a file that could not be read
        (kept as it is; :meth:`enroll` sets it aside). Never over an enrollment another process wrote meanwhile:
        that one is adopted first (:meth:`adopt_newer_enrollment`), under the lock `kiosk enroll` writes under."""
        if self.moving_to is not None:
            return
        with _state_lock(self.state_path):
            self.adopt_newer_enrollment()
            if self.moving_to is None and self.state.unreadable is None:
                self._state_seen = self.state.save(self.state_path)

    def adopt_newer_enrollment(self) -> bool:
        """Take the enrollment from ``sync-state.json`` when another process wrote a new one since this uploader
        last read or wrote the file: `kiosk enroll` run from a shell while `kiosk run` (or a `kiosk sync --once`)
        is running, re-enrolling or moving the kiosk (docs/sync.md, "Enrollment"). Without this the running
        uploader's next save wrote its old enrollment back, the kiosk stayed where it was and the code was spent.

        Only the enrollment (portal, kiosk id, key id, time) and the upload position that goes with it are taken;
        the rest (config versions, the pepper's and config's errors) is this uploader's own, newer than any other
        process's copy. A file that is now missing or cannot be read is not adopted: the next save writes this
        state over it, as before. True when an enrollment was adopted."""
        try:
            raw = self.state_path.read_bytes()
        except OSError:
            return False
        if raw == self._state_seen:
            return False
        self._state_seen = raw
        disk, st = SyncState.parse(raw), self.state
        if disk.unreadable is not None or (st.unreadable is None and disk.enrollment() == st.enrollment()):
            return False  # broken, or written by another uploader of the same enrollment (`kiosk sync --once`)
        log.warning("%s was changed by another process (`kiosk enroll`): now %s", self.state_path.name,
                    f"enrolled with {disk.portal_url}" if disk.enrolled_ms is not None else "enrolled nowhere")
        if disk.portal_url != st.portal_url:
            self.offset_s = 0.0  # the clock offset was the old portal's
        st.portal_url, st.kiosk_id, st.key_id, st.enrolled_ms = disk.enrollment()
        st.accepted_through_seq, st.checkpoint_size = disk.accepted_through_seq, disk.checkpoint_size
        st.accepted_known, st.last_error, st.last_error_kind, st.unreadable = (False, disk.last_error,
                                                                              disk.last_error_kind, None)
        if self.moving_to == st.portal_url:
            self.moving_to = None
        return True

    def _url(self, path: str) -> str:
        if not self.portal_url:
            raise SyncError("no portal URL: set [portal] url in the config or run `kiosk enroll`", permanent=True,
                            kind="not_enrolled")
        return self.portal_url + path

    def _learn_clock(self, data: Any) -> None:
        # Only a plausible portal clock (a plain int within SERVER_TIME_MS): 10**400 would overflow the float.
        t = data.get("server_time") if isinstance(data, dict) else None
        if type(t) is int and SERVER_TIME_MS[0] <= t <= SERVER_TIME_MS[1]:
            self.offset_s = t / 1000 - time.time()

    def _call(self, method: str, path: str, body: bytes = b"", idem: str = "", signed: bool = True, *,
              max_bytes: int = ANSWER_MAX_BYTES, deadline_s: float | None = None
              ) -> tuple[int, Any, requests.Response]:
        """One request to the portal, every one the kiosk makes (the uploader's, and pointsync's and peppersync's
        through it): redirects are not followed (a 3xx is a SyncError naming its Location), the answer's body
        is read in chunks and cut at ``max_bytes``, and the whole exchange (the request sent, the status line and
        headers, the body) is cut at ``deadline_s`` seconds after it began (default: the read timeout, which then
        bounds the whole answer, not only each read of it; :class:`_Deadline`)."""
        limits = (max_bytes, self.timeout[1] if deadline_s is None else deadline_s)
        status, data, resp = self._call_once(method, path, body, idem, signed, self.sk, limits)
        olds = self._previous_keys() if signed else []
        if signed and _unknown_key(status, data):
            # Re-keyed, and the portal has not taken the key_change entry yet: it still knows an old key (the
            # newest it has taken, if the kiosk was re-keyed more than once since: kiosk/ops/rekey.py). Last, the
            # retired keys: a portal restored from a backup taken before the hand-over knows only one of those.
            from kiosk.ledger import keys

            retired = self._retired_keys()
            for old in olds + retired:
                try:
                    old_sk = keys.load_private(old)
                except (OSError, keys.KeyError_):  # retired by another process meanwhile, or not a key
                    continue
                status, data, resp = self._call_once(method, path, body, idem, signed, old_sk, limits)
                if not _unknown_key(status, data):
                    if old in retired and status < 400:
                        log.warning("request signed with the retired key %s: the portal knows no newer key of this "
                                    "kiosk (restored from a backup taken before `kiosk rekey`?); it learns the new "
                                    "one again from the key_change entry", old.name)
                    break
        elif olds and status < 400:
            # The portal knows the key in force: the old ones are not needed to sign for it again. Kept, retired
            # (kiosk/ops/rekey.py, retire), for a portal restored from a backup taken before it learnt the new key.
            from kiosk.ops.rekey import retire

            for old in olds:
                try:
                    retire(old, self.sk_path)
                except FileNotFoundError:
                    pass
        return status, data, resp

    @property
    def sk_path(self) -> Path:
        """``kiosk.key``, beside ``kiosk.key.previous`` (:attr:`previous_key_path`)."""
        assert self.previous_key_path is not None
        return self.previous_key_path.with_name(self.previous_key_path.name.removesuffix(".previous"))

    def _retired_keys(self) -> list[Path]:
        """``kiosk.key.retired.N`` (kiosk/ops/rekey.py), newest first; listed only after a refused signature."""
        from kiosk.ops.rekey import retired_paths

        return [] if self.previous_key_path is None else retired_paths(self.sk_path)[::-1]

    def _previous_keys(self) -> list[Path]:
        """``kiosk.key.previous`` and the older ``kiosk.key.previous.N`` still on disk, newest first. The folder
        is listed on every signed request, not only while ``kiosk.key.previous`` exists: a `kiosk rekey` stopped
        between moving it to ``.N`` and writing the new one leaves only ``.N`` (a listing of a few names)."""
        from kiosk.ops.rekey import older_previous_paths

        prev = self.previous_key_path
        if prev is None:
            return []
        return ([prev] if prev.exists() else []) + older_previous_paths(prev)[::-1]

    def _call_once(self, method: str, path: str, body: bytes, idem: str, signed: bool, sk: Ed25519PrivateKey,
                   limits: tuple[int, float]) -> tuple[int, Any, requests.Response]:
        import requests

        headers = {"Content-Type": "application/json"} if body else {}
        if signed:
            headers.update(P.sign_request(sk, self.kiosk_id, method, path, body,
                                          int(time.time() + self.offset_s), idem))
        now = time.monotonic()
        if self._http is not None and self._last_answer is not None and now - self._last_answer > self.reuse_idle_s:
            self._http.close()  # its pooled connections only: the session opens new ones as needed
        url, http = self._url(path), self.http
        max_bytes, deadline_s = limits
        deadline = _exchange.deadline = _Deadline(deadline_s)
        try:
            try:
                # Never redirected: requests would resend a 307/308 with its method, body and signed headers to
                # wherever the Location names, and believe what answers there.
                resp = http.request(method, url, data=body or None, headers=headers, timeout=self.timeout,
                                    allow_redirects=False, stream=True)
            except requests.RequestException as exc:
                unsent = _never_sent(exc)
                if deadline.finish():
                    raise self._dropped(None, f"answer took longer than {deadline_s:g} s to arrive (cut before its "
                                        "status line and headers were complete)", "network", unsent) from None
                raise self._dropped(None, _network(exc), "network", unsent) from None
            if 300 <= resp.status_code < 400:
                where = resp.headers.get("Location", "")[:200]
                raise self._dropped(resp, f"HTTP {resp.status_code}: the portal redirects to {where!r}; redirects are "
                                    "not followed (set [portal] url to the portal's own address)", "bad_answer")
            content = self._read_body(resp, max_bytes, deadline)  # a body cut mid-way, too long or too slow raises
        finally:
            _exchange.deadline = None
            deadline.finish()
        self._last_answer = time.monotonic()
        try:
            data = json.loads(content) if content else None
        except ValueError:
            if resp.status_code < 500 and resp.headers.get("content-type", "").startswith("application/json"):
                raise SyncError(f"HTTP {resp.status_code}: answer is not valid JSON (cut off?)",
                                kind="bad_answer") from None
            data = None
        self._learn_clock(data)
        return resp.status_code, data, resp

    def _dropped(self, resp: requests.Response | None, message: str, kind: str, never_sent: bool = False
                 ) -> SyncError:
        """A failed attempt: its connection closed (the rest of an answer is not read) and the next request on a
        fresh one. Returns the error to raise (``never_sent``: see :class:`SyncError`)."""
        if resp is not None:
            resp.close()
        self._last_answer = None
        return SyncError(message, kind=kind, never_sent=never_sent)

    def _read_body(self, resp: requests.Response, max_bytes: int, deadline: _Deadline) -> bytes:
        """The answer's body, read as it arrives: at most ``max_bytes``, within the exchange's ``deadline``. The read
        timeout bounds each read only, so a server sending a byte a second would otherwise hold an attempt for
        as long as it likes. Afterwards ``resp.content`` and ``resp.text`` work as usual."""
        import http.client

        import requests
        import urllib3

        def cut(why: str, kind: str = "bad_answer") -> SyncError:
            return self._dropped(resp, f"HTTP {resp.status_code}: answer {why}", kind)

        def late(size: int) -> SyncError:
            return cut(f"took longer than {deadline.seconds:g} s to arrive ({size} bytes so far)", "network")

        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise cut(f"of {length} bytes is longer than {max_bytes}")
        if getattr(resp, "_content_consumed", False) and isinstance(getattr(resp, "_content", None), bytes):
            # The session read the body already (bench/fleet.py's times each answer to its last byte).
            if len(resp.content) > max_bytes:
                raise cut(f"is longer than {max_bytes} bytes")
            if deadline.finish():  # cut: a body that ends when the connection does would look whole
                raise late(len(resp.content))
            return resp.content
        read = getattr(resp.raw, "read1", None) or resp.raw.read  # read1: what has arrived, not a full chunk
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := read(64 * 1024, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise cut(f"is longer than {max_bytes} bytes")
                if time.monotonic() > deadline.end_at:
                    raise late(size)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, requests.RequestException, OSError) as exc:
            raise (late(size) if deadline.finish() else self._dropped(resp, _network(exc), "network")) from None
        if deadline.finish():  # cut: a body that ends when the connection does would look whole
            raise late(size)
        content = b"".join(chunks)
        resp._content = content
        resp._content_consumed = True  # type: ignore[attr-defined]
        resp.close()  # back to the pool (read whole): kept alive for the next request
        return content

    def local_save_error(self, exc: OSError) -> SyncError:
        """A round that could not save ``sync-state.json`` (a full or read-only disk). The portal keeps what it
        acknowledged (the next heartbeat says so), so nothing is lost: reported (``local_save``) and retried."""
        return SyncError(f"cannot write {self.state_path.name}: {exc.strerror or exc}", kind="local_save")

    def _mismatch(self, message: str) -> SyncError:
        """This ledger forks from the portal's copy (:data:`LEDGER_MISMATCH`): recorded in the sync state, and a
        permanent error (no retry can mend it)."""
        self.state.extra[LEDGER_MISMATCH] = message
        return SyncError(message, permanent=True, kind="mismatch")

    def _retry_after(self, resp: requests.Response) -> float | None:
        # An HTTP-date is measured from the answer's Date header, else from the portal's clock as we
        # learned it: a Pi without an RTC may be days off.
        portal_now = datetime.fromtimestamp(time.time() + self.offset_s, UTC)
        return retry_after_of(resp.headers, portal_now)

    def _fail(self, status: int, data: Any, resp: requests.Response) -> SyncError:
        code = data.get("error", "") if isinstance(data, dict) else ""
        reason = data.get("reason", "") if isinstance(data, dict) else resp.text[:200]
        msg = f"HTTP {status} {code}: {reason}".strip()
        if code in LEDGER_MISMATCH_CODES:
            return self._mismatch(msg)
        if status >= 500 or status == 429 or code in ("in_flight", "conflict", "stale_request"):
            return SyncError(msg, retry_after=self._retry_after(resp) if code != "stale_request" else 0,
                             kind="portal_busy")
        # A 2xx that is not the answer asked for (a 204, a config that is not an object): not the portal's answer.
        return SyncError(msg, permanent=True, kind="bad_answer" if status < 400 else "refused")

    # --- enrollment -------------------------------------------------------------------------------
    def enroll(self, code: str, max_attempts: int = 3) -> dict[str, Any]:
        """Register this kiosk's key with ``code``. Network errors, 5xx and 429 are retried with backoff: the
        portal answers a repeated enrollment of the same kiosk and key again (server_sync/enroll.py), so a
        lost answer costs a retry, never the code."""
        sig = P.b64(self.sk.sign(P.enroll_message(self.kiosk_id, code, self.pub_hex)))
        body = json.dumps({"kiosk_id": self.kiosk_id, "code": code, "public_key": self.pub_hex,
                           "signature": sig}).encode()

        def attempt() -> tuple[int, Any, requests.Response]:
            status, data, resp = self._call("POST", "/api/v1/enroll", body, signed=False)
            if status >= 500 or status == 429:
                raise self._fail(status, data, resp)
            return status, data, resp

        def classify(exc: Exception) -> Transient | None:
            return Transient(exc.retry_after) if isinstance(exc, SyncError) and not exc.permanent else None

        try:
            status, data, resp = retry(attempt, classify=classify, backoff=self.backoff_policy,
                                       max_attempts=max_attempts, sleep=self.sleep, rng=self.rng)
        except SyncError as exc:
            raise EnrollError(str(exc)) from None
        if status != 200 or not isinstance(data, dict):
            reason = data.get("reason") if isinstance(data, dict) else resp.text[:200]
            raise EnrollError(f"portal refused enrollment (HTTP {status}): {reason}")
        if not isinstance(data.get("key_id"), str):
            # Some other server answering 200 (a wrong port, a captive portal): not an enrollment.
            raise EnrollError(f"{self.portal_url} answered HTTP 200 without a key id: not a kiosk portal?")
        # Only now, enrolled, does the state change: a file that could not be read is kept beside the new one, and
        # a kiosk enrolling with another portal moves there (docs/sync.md, "Enrollment").
        self.set_aside_path = self.state.set_aside(self.state_path)
        if self.set_aside_path is not None:
            log.warning("unreadable %s kept as %s", self.state_path.name, self.set_aside_path.name)
        if self.moving_to is not None:
            log.warning("kiosk moved from %s to %s", self.state.portal_url, self.moving_to)
            self.state.portal_url, self.moving_to = self.moving_to, None
        self.state.kiosk_id, self.state.key_id = self.kiosk_id, data["key_id"]
        self.state.enrolled_ms = int(time.time() * 1000)
        self.state.accepted_through_seq = self.state.checkpoint_size = 0
        self.state.last_error = self.state.last_error_kind = None
        with _state_lock(self.state_path):  # a running kiosk's uploader adopts it (adopt_newer_enrollment)
            self._state_seen = self.state.save(self.state_path)
        self.sync_pepper()  # provisioned at enrollment; a failure here is retried by the next sync round
        return data

    def sync_pepper(self, portal_epoch: int | None = None) -> list[int]:
        """Adopt the city's pepper when this kiosk lacks ``portal_epoch`` (``None``: ask anyway). Never raises:
        the outcome is logged and kept in ``state.extra["pepper_error"]``; uploads go on either way."""
        from kiosk.ledger.pepper import Pepper, PepperError
        from kiosk.sync.peppersync import PepperSyncError, fetch

        if self.pepper_path is None or portal_epoch == 0:
            return []
        try:
            held = self.pepper if self.pepper is not None else Pepper.load(self.pepper_path)
            if portal_epoch is not None and held.city_epoch is not None and held.city_epoch >= portal_epoch:
                return []
            new = fetch(self, self.pepper_path, held)
        except (SyncError, PepperSyncError, PepperError, OSError) as exc:
            self.state.extra["pepper_error"] = str(exc)
            log.error("city pepper not adopted: %s", exc)
            return []
        self.state.extra.pop("pepper_error", None)
        return new

    # --- one round --------------------------------------------------------------------------------
    def heartbeat(self) -> dict[str, Any]:
        now: dict[str, Any] = {"boot": self.source.last_boot(), "mono_ms": self.clock.mono_ms(),
                               "wall_ms": self.clock.wall_ms(), "clock_synced": bool(self.clock.synced()),
                               "ledger_size": self.source.size()}
        if self.payment_health is not None:
            try:
                pay = self.payment_health()
                now["payment"] = {"terminal": pay["terminal"], "state": pay["state"],
                                  "detail": pay.get("detail", "")[:P.MAX_PAYMENT_DETAIL]}
            except Exception:  # a report must never stop the upload it rides on
                log.exception("payment status for the heartbeat")
        refused = self._config_refused()
        if refused is not None:
            now["config_refused"] = refused
        status, data, resp = self._call("POST", f"/api/v1/kiosks/{self.kiosk_id}/heartbeat",
                                         json.dumps(now).encode())
        if status != 200:
            raise self._fail(status, data, resp)
        return sync_answer(data, self.kiosk_id)

    def _config_refused(self) -> dict[str, Any] | None:
        """The heartbeat's ``config_refused`` (server_sync/wire/protocol.py ``ConfigRefused``): the pushed config
        :meth:`_pull_config` last refused, while no version as new is applied; None otherwise. Read from the saved
        state, which another process (`kiosk sync`) may have written: anything not of its shape is left out."""
        got = self.state.extra.get(CONFIG_REFUSED)
        if not isinstance(got, dict):
            return None
        version, reason, detail = got.get("version"), got.get("reason"), got.get("detail", "")
        if type(version) is not int or not 1 <= version < 2**31 or version <= self.state.config_applied \
                or reason not in CONFIG_REFUSED_REASONS or not isinstance(detail, str):
            return None
        return {"version": version, "reason": reason, "detail": _one_line(detail, CONFIG_REFUSED_DETAIL)}

    def sync_round(self) -> None:
        """Upload everything the ledger holds now. Raises :class:`SyncError`."""
        self.adopt_newer_enrollment()  # `kiosk enroll` run meanwhile from a shell
        if not self.enrolled_here:
            raise SyncError(self.not_enrolled_message(), permanent=True,
                            kind="state_unreadable" if self.state.unreadable is not None else "not_enrolled")
        src = self.source
        self.state.local_size = src.size()  # pending stays true even when the portal cannot be reached
        self.state.accepted_known = False  # until the heartbeat's answer is taken (SyncState.pending)
        ans = self.heartbeat()
        accepted, cp_ack = ans["accepted_through_seq"], ans["checkpoint_size"]
        if accepted > src.size():  # the ledger only grows: checked before the config pull may append to it
            # The portal holds entries this ledger lacks: restored from an old backup (or another kiosk's portal).
            # Permanent: a retry cannot help, and the portal raises its alarm from the heartbeat (docs/sync.md).
            raise self._mismatch(f"portal answer: the portal holds {accepted} entries but this ledger only "
                                 f"{src.size()} (ledger restored from an old backup? another kiosk's portal?)")
        self.sync_pepper(ans["pepper_epoch"])
        self.state.config_version_seen = ans["config_version"]
        if ans["config_version"] > self.state.config_applied:
            self._pull_config(ans["config_version"])
        target = src.size()
        try:
            self._note(accepted, cp_ack, target)
        except OSError as exc:
            # A full or read-only disk. The file is a report, never where an upload resumes from (below), so the
            # gifts still go to the portal; the round's end saves again and, failing, says why (local_save).
            log.error("sync: cannot save %s before the upload, uploading anyway: %s", self.state_path.name, exc)
        # A batch carries the newest checkpoint note the portal can open once it holds the batch: one signed by a
        # key the chain announces at or before the batch's end. After a re-key with a backlog longer than a batch,
        # the newest note is signed by the new key, which the portal learns only from the key_change entry;
        # the batches before it carry the newest note before that entry (docs/sync.md, "Re-keying").
        changes, changes_from = src.key_change_seqs(accepted + 1, target), accepted
        # Every answer must move the round on: one that leaves it where an earlier pass had it (a 200 that does not
        # advance, the same gap or checkpoint mismatch again) would have it resend at once, for ever.
        seen = {(accepted, cp_ack, self.batch_entries)}
        while accepted < target:
            reach = min(target, accepted + self.batch_entries)
            last = P.batch_end(accepted, target, self.batch_entries, src.checkpoint_seqs(accepted + 1, reach))
            rows = src.rows(accepted + 1, last)
            if accepted < changes_from:  # the portal's answer moved us back (a gap): look again from there
                changes, changes_from = src.key_change_seqs(accepted + 1, target), accepted
            cp = src.latest_checkpoint(before=next((s for s in changes if s > last), None))
            note, cp_size, proof = None, cp_ack, []
            if cp is not None and cp[0] >= cp_ack:
                cp_size, note = cp
                proof = src.consistency_proof(cp_ack, cp_size) if cp_size > cp_ack else []
            doc = P.batch_document(self.kiosk_id, rows, note, cp_ack, proof)
            body = json.dumps(doc, separators=(",", ":")).encode()
            key = P.idempotency_key(self.kiosk_id, rows[0][0], rows[-1][0], cp_ack, cp_size)
            status, data, resp = self._call("POST", f"/api/v1/kiosks/{self.kiosk_id}/batches", body, key)
            code = data.get("error") if isinstance(data, dict) else None
            if status == 200:
                got = sync_answer(data, self.kiosk_id)
                if not accepted <= got["accepted_through_seq"] <= last:
                    raise SyncError(f"portal answer: accepted_through_seq={got['accepted_through_seq']} to a batch of "
                                    f"seq {accepted + 1}..{last} (it held {accepted}): not believed", kind="bad_answer")
                accepted, cp_ack = got["accepted_through_seq"], got["checkpoint_size"]
                # In memory only: the round's end (or its failure, in sync_once and BackgroundSync) saves
                # the state. The file is a report, never where an upload resumes from (every round starts
                # from the heartbeat's answer), so a kiosk stopped mid-round loses nothing, and a catch-up
                # pays one durable write (two fsyncs and a rename) a round instead of one a batch.
                self._note(accepted, cp_ack, target, success=True, save=False)
            elif status == 409 and code == "gap" and isinstance(data, dict):
                expected = _seq_field(data, "expected_seq", lo=1)
                if expected - 1 > target:
                    # The portal holds more than this ledger: as the heartbeat's check above, recorded as a mismatch
                    # (the status page's red row), not only an error of its kind.
                    raise self._mismatch(f"portal expects entries this ledger does not have: it expects seq "
                                         f"{expected}, this ledger holds {target} (ledger restored from an old "
                                         "backup? another kiosk's portal?)")
                accepted = expected - 1
            elif status == 409 and code == "checkpoint_ack_mismatch" and isinstance(data, dict):
                cp_ack = _seq_field(data, "checkpoint_size", hi=target)
            elif status == 413 and len(rows) > 1:
                self.batch_entries = max(1, len(rows) // 2)
            else:
                raise self._fail(status, data, resp)
            now = (accepted, cp_ack, self.batch_entries)
            if now in seen:
                raise SyncError(f"portal answer (HTTP {status} {code or ''}) moved nothing: it holds {accepted}, "
                                f"checkpoint {cp_ack}, as before; retried after a pause", kind="bad_answer")
            seen.add(now)
        self._note(accepted, cp_ack, max(target, src.size()), success=True)

    def _note(self, accepted: int, cp_ack: int, local: int, success: bool = False, save: bool = True) -> None:
        st = self.state
        st.accepted_through_seq, st.checkpoint_size, st.local_size = accepted, cp_ack, local
        st.accepted_known = True  # every caller passes what the portal's answer said it holds
        if success:
            st.last_success_ms, st.last_error, st.last_error_kind = int(time.time() * 1000), None, None
            st.extra.pop(LEDGER_MISMATCH, None)  # the portal took this ledger's entries: they match after all
        if save:
            self.save_state()

    def _pull_config(self, announced: int) -> None:
        """Fetch, check and apply the config the heartbeat announced (version ``announced``). A document that is
        not newer than the one applied, or older than the one announced (a cached or lagging answer), is
        refused: it would roll the kiosk back, or be recorded again every round. Refusals and bad configs are
        reported in ``extra["config_error"]``, never raised: they must not stop donations from being uploaded."""
        status, data, resp = self._call("GET", f"/api/v1/kiosks/{self.kiosk_id}/config")
        if status != 200 or not isinstance(data, dict):
            raise self._fail(status, data, resp)

        def refuse(why: str, reason: str = "damaged") -> None:
            self.state.extra["config_error"] = f"config v{announced}: {why}"
            log.error("config push: %s", why)
            if reason == "busy":  # saved, and taken up at a later round: nothing for staff to do
                self.state.extra.pop(CONFIG_REFUSED, None)
                return
            # For the heartbeat, so that the portal's kiosks page says this playlist will not arrive by itself.
            self.state.extra[CONFIG_REFUSED] = {"version": announced, "reason": reason,
                                                "detail": _one_line(why, CONFIG_REFUSED_DETAIL)}

        version, applied = data.get("version"), self.state.config_applied
        if type(version) is not int:
            return refuse(f"portal answer malformed: version is {_shown(version)}, not an integer")
        if version <= applied:
            return refuse(f"the portal's config answer is v{version}, not newer than v{applied} applied: not applied")
        if version < announced:
            return refuse(f"the portal's config answer is v{version}, older than the v{announced} it announced "
                          "(a stale answer?): not applied")

        def fetch(sha: str) -> bytes:
            st, _, r = self._call("GET", f"/api/v1/media/{sha}", signed=False, max_bytes=MEDIA_MAX_BYTES,
                                  deadline_s=MEDIA_DEADLINE_S)
            if st != 200:
                raise SyncError(f"media {sha[:12]}…: HTTP {st}", kind="config")
            return r.content

        try:
            result = self.applier.apply(data, fetch)
        except ConfigApplyError as exc:
            # A bad or unreachable config must not stop donations from being uploaded: report it and go on.
            return refuse(str(exc), exc.reason)
        except SyncError as exc:  # only a media file is fetched here
            return refuse(str(exc), "media")
        except OSError as exc:
            return refuse(str(exc), "disk")
        except LedgerError as exc:
            return refuse(str(exc), "other")
        except Exception as exc:  # noqa: BLE001 - e.g. the running kiosk's on_config: never a reason to stop uploads
            log.exception("config push")
            return refuse(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", "other")
        self.state.extra.pop("config_error", None)
        self.state.extra.pop(CONFIG_REFUSED, None)
        if result in ("applied", "unchanged"):
            self.state.config_applied = version
        elif result == "staged":
            self.state.config_staged = version

    # --- driving ----------------------------------------------------------------------------------
    def sync_once(self, max_attempts: int = 8) -> SyncState:
        """Sync until everything is acknowledged, retrying transient failures (for ``kiosk sync --once``).

        Never raises :class:`SyncError`: the last one is in ``state.last_error``.
        """
        before = self.state.accepted_through_seq

        def one_round() -> None:
            nonlocal before
            before = self.state.accepted_through_seq
            self.state.last_attempt_ms = int(time.time() * 1000)
            try:
                self.sync_round()
            except SyncError as exc:
                self.state.last_error, self.state.last_error_kind = str(exc), exc.kind
                try:
                    self.save_state()
                except OSError as save_exc:
                    log.error("cannot save sync state: %s", save_exc)
                log.warning("sync: %s", exc)
                raise
            except OSError as exc:
                err = self.local_save_error(exc)
                self.state.last_error, self.state.last_error_kind = str(err), err.kind
                log.error("sync: %s", err)
                raise err from None

        def classify(exc: Exception) -> Transient | None:
            if not isinstance(exc, SyncError) or exc.permanent:
                return None
            return Transient(exc.retry_after, progressed=self.state.accepted_through_seq > before)

        try:
            retry(one_round, classify=classify, backoff=self.backoff_policy, max_attempts=max_attempts,
                  sleep=self.sleep, rng=self.rng)
        except SyncError:
            pass  # recorded in state.last_error by one_round
        return self.state


class BackgroundSync:
    """Runs an :class:`Uploader` in a daemon thread (``kiosk run``). ``status()`` is safe from any thread."""

    def __init__(self, uploader: Uploader, interval_s: float = 60.0):
        self.uploader = uploader
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="portal-sync", daemon=True)
        self._lock = threading.Lock()
        self._status: dict[str, Any] = uploader.state.to_json()

    def start(self) -> BackgroundSync:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def nudge(self) -> None:
        """Sync soon (e.g. after a donation) instead of waiting for the interval."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def _run(self) -> None:
        up = self.uploader
        try:
            while not self._stop.is_set():
                # One retry loop per interval: failures back off (never sooner than Retry-After), and the
                # next interval starts again from the shortest wait.
                retry(self._round, classify=self._classify, backoff=up.backoff_policy, sleep=self._pause, rng=up.rng)
                self._pause(self.interval_s)
        except _Stopped:
            pass
        finally:
            up.close()

    def _round(self) -> None:
        up = self.uploader
        up.state.last_attempt_ms = int(time.time() * 1000)
        try:
            up.sync_round()
        except SyncError as exc:
            up.state.last_error, up.state.last_error_kind = str(exc), exc.kind
            raise
        except OSError as exc:  # the kiosk's own disk, full or read-only: said so, not as an internal error
            err = up.local_save_error(exc)
            log.error("sync: %s", err)
            up.state.last_error, up.state.last_error_kind = str(err), err.kind
            raise err from None
        except Exception as exc:  # noqa: BLE001 - the thread must survive anything and say what happened
            log.exception("sync thread")
            up.state.last_error, up.state.last_error_kind = f"internal: {exc}", "other"
            raise
        finally:
            try:
                # Not over a file that could not be read (kept; the round's error says why and what to do), nor
                # over an enrollment `kiosk enroll` wrote meanwhile (adopted instead): Uploader.save_state.
                up.save_state()
            except OSError as exc:
                log.error("cannot save sync state: %s", exc)
            with self._lock:
                self._status = up.state.to_json()

    @staticmethod
    def _classify(exc: Exception) -> Transient:
        # Everything is retried here, "permanent" failures too (at the capped pace): staff may fix them
        # while the kiosk runs (`kiosk enroll`), and the thread must never die.
        return Transient(exc.retry_after if isinstance(exc, SyncError) else None)

    def _pause(self, seconds: float) -> None:
        """Wait, woken early by :meth:`nudge` (sync now) or :meth:`stop` (which ends the thread's loops)."""
        self._wake.wait(seconds)
        self._wake.clear()
        if self._stop.is_set():
            raise _Stopped


class _Stopped(Exception):
    """Raised out of the background thread's waits once :meth:`BackgroundSync.stop` was called."""


def enrolled_portal(state_path: str | os.PathLike) -> str:
    """The portal this kiosk is enrolled with (from ``sync-state.json``), or "" when it is not enrolled."""
    st = SyncState.load(Path(state_path))
    return st.portal_url if st.enrolled_ms is not None else ""


def forget_portal(cfg: Any, reason: str) -> None:
    """Leave the portal this kiosk was enrolled with (it no longer exists, e.g. the demo's, whose port
    changes every run): sync stops asking it, and ``kiosk enroll`` with a new code joins another."""
    path = cfg.data_dir / "sync-state.json"
    st = SyncState.load(path)
    if not st.portal_url and st.enrolled_ms is None:
        return
    st.portal_url, st.key_id, st.enrolled_ms, st.last_error, st.last_error_kind = "", "", None, reason, "not_enrolled"
    st.save(path)


def enroll_kiosk(cfg: Any, portal_url: str, code: str) -> dict[str, Any]:
    """Register the kiosk of ``cfg`` (a KioskConfig) with the portal; raises EnrollError if refused."""
    up = Uploader.from_config(cfg, portal_url=portal_url)
    try:
        return up.enroll(code)
    finally:
        up.close()


def sync_kiosk(cfg: Any, portal_url: str = "", *, code: str | None = None, writer: Any = None,
               max_attempts: int = 5, **kw: Any) -> SyncState:
    """Enroll first if ``code`` is given, then upload until everything is acknowledged.

    Pass the ledger's :class:`~kiosk.ledger.writer.LedgerWriter` as ``writer`` to let pushed configs be applied.
    Returns the uploader's state (``.ok``, ``.pending``, ``.last_error``, ``.accepted_through_seq``).
    """
    up = Uploader.from_config(cfg, writer=writer, portal_url=portal_url, **kw)
    try:
        if code is not None:
            up.enroll(code)
        return up.sync_once(max_attempts=max_attempts)
    finally:
        up.close()
