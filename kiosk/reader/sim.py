"""The simulated reader: the test double and the demo's reader.

Simulated cards answer real FeliCa frames (so the simulator exercises the
same frame and parsing code as the PC/SC readers), and can be every transit
family, unknown IC codes, Express-mode phones, error statuses, slow cards,
cards pulled away mid-read, double taps and two cards at once. The reader can
be unplugged and replugged, refuse to open (EACCES, EBUSY) or lose pcscd.

Three ways to drive it, all doing the same actions:

* a **script** — lines of ``SECONDS ACTION ARGS`` played against the reader clock;
* :meth:`SimReader.press` — keys ``1``-``5`` from the demo window;
* a **socket** — one action per line on ``tcp:127.0.0.1:PORT`` or ``unix:/path``,
  answered with ``ok …`` or ``err …``, so tests can tap from another process.

Actions: ``tap CARD [hold=S]``, ``place CARD``, ``remove [NAME|all]``,
``double-tap CARD [gap=S]``, ``unplug``, ``replug``,
``fault eacces|ebusy|pcscd|none``, ``press KEY``, ``status``.
``CARD`` is a preset name plus ``key=value`` options, e.g.
``suica balance=1500 slow=0.02 drop=1 error=01A6 idm=0123456789abcdef``.
"""

from __future__ import annotations

import datetime as _dt
import errno
import functools
import hashlib
import logging
import os
import shlex
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from kiosk.reader import felica, transit
from kiosk.reader.base import CardReader, Clock, ReaderFault, Tokenizer
from kiosk.reader.events import EventQueue
from kiosk.reader.fixes import pcscd_fix
from kiosk.reader.session import CardLost, CardSession, Collision, FrameSession

if TYPE_CHECKING:
    from kiosk.config.reader import ReaderConfig

log = logging.getLogger(__name__)

# A card PMm: IC type 0x01 (RC-S915 family). Read timeout byte 0x4B (A=3, B=1, E=1):
# about 302 us * (2n + 4) * 4, i.e. ~7 ms for one block.
CARD_PMM = bytes.fromhex("0101 4B 4B 4B 4B 4B 4B".replace(" ", ""))
# Mobile FeliCa 3.0 (IC 0x14): what an iPhone / Android phone reports.
PHONE_PMM = bytes.fromhex("0114 4B 4B 4B 4B 4B 4B".replace(" ", ""))
UNKNOWN_IC_PMM = bytes.fromhex("01EE 4B 4B 4B 4B 4B 4B".replace(" ", ""))

KEYS: dict[str, str] = {
    "1": "tap suica",
    "2": "tap pasmo",
    "3": "tap icoca",
    "4": "tap iphone",
    "5": "tap pulled",
}
"""Demo-window keys: 1 Suica, 2 PASMO, 3 ICOCA, 4 iPhone (Express mode), 5 a card pulled away mid-read."""

DEFAULT_HOLD_S = 0.3
DEFAULT_GAP_S = 0.4


def preset_idm(name: str) -> bytes:
    """A stable made-up IDm per preset name (manufacturer 01 01, like a JR card)."""
    return b"\x01\x01" + hashlib.sha256(b"kiosk-sim:" + name.encode()).digest()[:6]


def _sample_history(balance: int, n: int, seed: int) -> list[bytes]:
    """Plausible newest-first history: rides of ¥140-¥330 ending at ``balance``."""
    out = []
    bal = balance
    day = _dt.date(2024, 4, 1) + _dt.timedelta(days=seed % 200)
    for i in range(n):
        out.append(transit.encode_history_block(
            terminal_type=0x16, process_type=0x01, date=day - _dt.timedelta(days=i),
            balance_yen=bal, transaction_number=(seed * 7 + 100 - i) & 0xFFFFFF, region=0,
            stations=bytes([0x01, 0x10 + i, 0x01, 0x20 + i]),
        ))
        bal = min(transit.MAX_BALANCE_YEN, bal + 140 + (seed + i * 37) % 191)
    return out


@dataclass(repr=False)
class SimCard:
    """One simulated card or phone. Its ``repr`` never shows the IDm."""

    name: str
    idm: bytes
    pmm: bytes = CARD_PMM
    family: str = "suica"
    systems: tuple[int, ...] = (felica.SYSTEM_TRANSIT,)
    card_type: int = 2
    balance_yen: int = 1000
    history: list[bytes] = field(default_factory=list)
    express: bool = False
    """A phone in Express mode: answers only a 0x0003 poll; any other poll wakes the wallet UI."""
    error_status: tuple[int, int] | None = None
    """Status flags to answer every read with, e.g. (0x01, 0xA6)."""
    slow_s: float = 0.0
    """Extra time the card takes per command; beyond the reader's timeout it is a timeout."""
    drop_after: int | None = None
    """Answer this many commands after a poll, then fall silent (pulled away mid-read)."""
    max_read_blocks: int = 8
    wallet_wakeups: int = 0
    """How many polls would have popped up the phone's wallet (must stay 0)."""
    polls_seen: list[int] = field(default_factory=list)
    _since_poll: int = 0

    def __repr__(self) -> str:
        return f"SimCard({self.name!r}, family={self.family}, balance={self.balance_yen}, idm=<hidden>)"

    # --- the card side of FeliCa --------------------------------------------
    def answer(self, frame: bytes) -> bytes | None:
        """The card's response frame to ``frame``, or None for silence."""
        if len(frame) < 2 or frame[0] != len(frame):
            return None
        code = frame[1]
        if code == felica.POLLING and len(frame) == 6:
            return self._poll(frame)
        self._since_poll += 1
        if self.drop_after is not None and self._since_poll > self.drop_after:
            return None
        if len(frame) < 10 or frame[2:10] not in self._idms():
            return None
        idm = bytes(frame[2:10])
        if code == felica.REQUEST_SERVICE:
            return self._request_service(idm, frame[10:])
        if code == felica.READ_WITHOUT_ENCRYPTION:
            return self._read(idm, frame[10:])
        return None

    def _idms(self) -> list[bytes]:
        # Each system has its own IDm: the top nibble of byte 0 is the system number.
        return [bytes([(self.idm[0] & 0x0F) | (i << 4)]) + self.idm[1:] for i in range(len(self.systems))]

    def _poll(self, frame: bytes) -> bytes | None:
        sc, rc = struct.unpack(">H", frame[2:4])[0], frame[4]
        self.polls_seen.append(sc)
        if self.express and sc != felica.SYSTEM_TRANSIT:
            self.wallet_wakeups += 1
            return None
        for i, sys_code in enumerate(self.systems):
            hi_ok = sc >> 8 == 0xFF or sc >> 8 == sys_code >> 8
            lo_ok = sc & 0xFF == 0xFF or sc & 0xFF == sys_code & 0xFF
            if hi_ok and lo_ok:
                self._since_poll = 0
                body = bytes([felica.POLLING + 1]) + self._idms()[i] + self.pmm
                if rc == 1:
                    body += struct.pack(">H", sys_code)
                return bytes([len(body) + 1]) + body
        return None

    def _system_of(self, idm: bytes) -> int:
        return self.systems[self._idms().index(idm)]

    def _request_service(self, idm: bytes, data: bytes) -> bytes | None:
        if not data:
            return None
        n = data[0]
        if len(data) != 1 + 2 * n:
            return None
        mine = transit.issuer_nodes(self.family) | set(transit.KEYLESS_SERVICES)
        in_transit = self._system_of(idm) == felica.SYSTEM_TRANSIT
        kvs = b"".join(
            struct.pack("<H", 0x0000 if in_transit and struct.unpack("<H", data[1 + 2 * i : 3 + 2 * i])[0] in mine
                        else 0xFFFF)
            for i in range(n)
        )
        body = bytes([felica.REQUEST_SERVICE + 1]) + idm + bytes([n]) + kvs
        return bytes([len(body) + 1]) + body

    def _status(self, idm: bytes, sf1: int, sf2: int) -> bytes:
        return bytes([12, felica.READ_WITHOUT_ENCRYPTION + 1]) + idm + bytes([sf1, sf2])

    def _read(self, idm: bytes, data: bytes) -> bytes | None:
        try:
            ns = data[0]
            services = [struct.unpack("<H", data[1 + 2 * i : 3 + 2 * i])[0] for i in range(ns)]
            pos = 1 + 2 * ns
            nb = data[pos]
            pos += 1
            blocks = []
            for _ in range(nb):
                head = data[pos]
                if head & 0x80:
                    blocks.append((head & 0x0F, data[pos + 1]))
                    pos += 2
                else:
                    blocks.append((head & 0x0F, data[pos + 1] | data[pos + 2] << 8))
                    pos += 3
        except (IndexError, struct.error):
            return self._status(idm, 0x01, 0xA2)
        if self.error_status:
            return self._status(idm, *self.error_status)
        if len(blocks) > self.max_read_blocks:
            return self._status(idm, 0x01, 0xA2)
        if self._system_of(idm) != felica.SYSTEM_TRANSIT:
            return self._status(idm, 0x01, 0xA6)
        out = b""
        for idx, num in blocks:
            if idx >= len(services):
                return self._status(idm, 0x01, 0xA3)
            sc = services[idx]
            if sc == transit.SERVICE_ATTRIBUTE and num == 0:
                out += transit.encode_attribute_block(self.card_type, self.balance_yen)
            elif sc == transit.SERVICE_HISTORY and num < transit.HISTORY_CAPACITY:
                out += self.history[num] if num < len(self.history) else bytes(16)
            elif sc in transit.KEYLESS_SERVICES:
                return self._status(idm, 0x01, 0xA8)
            else:
                return self._status(idm, 0x01, 0xA6)
        body = bytes([felica.READ_WITHOUT_ENCRYPTION + 1]) + idm + bytes([0, 0, len(blocks)]) + out
        return bytes([len(body) + 1]) + body


def make_card(spec: str) -> SimCard:
    """A card from ``PRESET [key=value ...]``; raises ValueError for an unknown preset or option."""
    parts = shlex.split(spec)
    if not parts:
        raise ValueError("empty card spec")
    preset, opts = parts[0].lower(), parts[1:]
    seed = int.from_bytes(hashlib.sha256(preset.encode()).digest()[:2], "big")
    card = SimCard(name=preset, idm=preset_idm(preset), balance_yen=1000 + seed % 4000)
    if preset in transit.FAMILIES:
        card.family = preset
        card.card_type = 3 if preset == "icoca" else 2
    elif preset == "transit":
        card.family = "transit"
    elif preset in ("iphone", "watch"):
        card.pmm, card.express, card.max_read_blocks = PHONE_PMM, True, 1
    elif preset == "android":
        card.pmm, card.family, card.max_read_blocks = PHONE_PMM, "pasmo", 1
    elif preset == "unknown-ic":
        card.pmm, card.family = UNKNOWN_IC_PMM, "transit"
    elif preset in ("edy", "waon", "nanaco"):
        card.systems, card.family = (0xFE00,), "unknown"
    elif preset == "error":
        card.error_status = (0x01, 0xA6)
    elif preset == "slow":
        card.slow_s = 0.004
    elif preset == "pulled":
        card.drop_after = 0
    else:
        raise ValueError(f"unknown card preset {preset!r}")
    for opt in opts:
        key, sep, val = opt.partition("=")
        if not sep:
            raise ValueError(f"card option {opt!r} is not key=value")
        if key == "balance":
            card.balance_yen = int(val)
            if not 0 <= card.balance_yen <= transit.MAX_BALANCE_YEN:
                raise ValueError("balance must be 0..20000")
        elif key == "idm":
            raw = bytes.fromhex(val)
            if len(raw) != 8:
                raise ValueError("idm is 16 hex digits")
            card.idm = raw
        elif key == "name":
            card.name = val
        elif key == "slow":
            card.slow_s = float(val)
        elif key == "drop":
            card.drop_after = int(val)
        elif key == "error":
            raw = bytes.fromhex(val)
            if len(raw) != 2:
                raise ValueError("error is 4 hex digits, e.g. 01A6")
            card.error_status = (raw[0], raw[1])
        elif key == "family":
            card.family = val
        elif key == "history":
            card.history = _sample_history(card.balance_yen, int(val), seed)
        elif key == "express":
            card.express = val.lower() in ("1", "yes", "true")
        elif key == "systems":
            card.systems = tuple(int(x, 16) for x in val.split(","))
        else:
            raise ValueError(f"unknown card option {key!r}")
    if not card.history and "history=0" not in opts:
        card.history = _sample_history(card.balance_yen, 3, seed)
    return card


class SimReader(CardReader):
    """A reader whose field, cable and setup faults are driven by scripts, keys and a socket."""

    backend: ClassVar[str] = "sim"

    def __init__(
        self,
        config: ReaderConfig,
        tokenizer: Tokenizer,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        events: EventQueue | None = None,
    ):
        super().__init__(config, tokenizer, clock=clock, events=events)
        self.sleep = sleep
        self.field: list[SimCard] = []
        self.plugged = True
        self.fault: str | None = None
        self.is_open = False
        self.opens = 0
        self._lost = False
        self._schedule: list[tuple[float, int, str]] = []
        self._seq = 0
        self._pending_cards: dict[int, SimCard] = {}  # cards waiting to come back (double tap)
        self._lock = threading.RLock()
        self._server: socketserver.BaseServer | None = None
        self._server_thread: threading.Thread | None = None
        self.control_address = ""

    # --- device hooks ------------------------------------------------------------
    def open(self) -> str:
        with self._lock:
            self._run_due()
            if self.fault == "pcscd":
                raise ReaderFault("no-service", "pcscd is not running (SCardEstablishContext: 0x8010001D)", pcscd_fix())
            if not self.plugged:
                raise OSError(errno.ENODEV, "no simulated reader plugged in")
            if self.fault == "eacces":
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
            if self.fault == "ebusy":
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            self.is_open, self._lost = True, False
            self.opens += 1
            return "simulated reader"

    def close(self) -> None:
        with self._lock:
            self.is_open = False

    def usb_id(self) -> tuple[int, int] | None:
        return (0x054C, 0x06C3)  # the fixes shown for sim faults are the RC-S380's

    def sense(self, system_code: int) -> CardSession | None:
        with self._lock:
            self._run_due()
            self._check_device()
            cmd = felica.polling_command(system_code)
            answers = [(c, a) for c in list(self.field) if (a := c.answer(cmd)) is not None]
            if not answers:
                return None
            if len(answers) > 1:
                raise Collision()
            card, frame = answers[0]
            poll = felica.parse_polling_response(frame)
            return FrameSession(poll, functools.partial(self._exchange, card), system_code)

    def _check_device(self) -> None:
        if not self.plugged or self._lost or not self.is_open:
            raise OSError(errno.ENODEV, "simulated reader unplugged")

    def _exchange(self, card: SimCard, frame: bytes, timeout: float) -> bytes:
        if card.slow_s:
            self.sleep(min(card.slow_s, timeout))
        with self._lock:
            self._run_due()
            self._check_device()
            if card.slow_s > timeout or card not in self.field:
                raise CardLost()
            rsp = card.answer(frame)
        if rsp is None:
            raise CardLost()
        return rsp

    # --- actions -----------------------------------------------------------------
    def place(self, card: SimCard | str) -> SimCard:
        c = make_card(card) if isinstance(card, str) else card
        with self._lock:
            self.field.append(c)
        return c

    def remove(self, name: str = "all") -> int:
        with self._lock:
            before = len(self.field)
            self.field = [] if name == "all" else [c for c in self.field if c.name != name]
            return before - len(self.field)

    def tap(self, card: SimCard | str, hold_s: float = DEFAULT_HOLD_S) -> SimCard:
        """Place a card now and take it away after ``hold_s`` (reader clock)."""
        c = self.place(card)
        with self._lock:
            self._at(self.clock() + hold_s, f"remove-card {id(c)}")
        return c

    def unplug(self) -> None:
        with self._lock:
            self.plugged = False

    def replug(self) -> None:
        with self._lock:
            self.plugged = True

    def set_fault(self, kind: str | None) -> None:
        if kind not in (None, "none", "eacces", "ebusy", "pcscd"):
            raise ValueError(f"unknown fault {kind!r} (eacces, ebusy, pcscd or none)")
        with self._lock:
            self.fault = None if kind in (None, "none") else kind
            if self.fault == "pcscd":
                self._lost = True  # pcscd going away takes the open reader with it

    def press(self, key: str) -> str:
        """A key from the demo window: 1-5 (see :data:`KEYS`)."""
        action = KEYS.get(key)
        if action is None:
            raise ValueError(f"no simulator action on key {key!r} (keys 1-5)")
        return self.do(action)

    def do(self, line: str) -> str:
        """Run one action line (the script and socket language). Returns a short reply."""
        words = line.strip().split(None, 1)
        if not words:
            raise ValueError("empty action")
        verb, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
        with self._lock:
            if verb == "tap":
                spec, hold = _take_opt(rest, "hold", DEFAULT_HOLD_S)
                self.tap(spec, hold)
                return "tapped"
            if verb == "double-tap":
                spec, gap = _take_opt(rest, "gap", DEFAULT_GAP_S)
                first = self.tap(spec, DEFAULT_HOLD_S)
                self._at(self.clock() + DEFAULT_HOLD_S + gap, f"place-again {id(first)}")
                self._pending_cards[id(first)] = first
                return "double-tapped"
            if verb == "place":
                self.place(rest)
                return "placed"
            if verb == "remove":
                return f"removed {self.remove(rest.strip() or 'all')}"
            if verb == "unplug":
                self.unplug()
                return "unplugged"
            if verb == "replug":
                self.replug()
                return "replugged"
            if verb == "fault":
                self.set_fault(rest.strip() or "none")
                return f"fault {self.fault or 'none'}"
            if verb == "press":
                return self.press(rest.strip())
            if verb == "status":
                return (f"plugged={int(self.plugged)} open={int(self.is_open)} fault={self.fault or 'none'} "
                        f"cards={','.join(c.name for c in self.field) or '-'}")
        raise ValueError(f"unknown action {verb!r}")

    # --- scripts -------------------------------------------------------------------
    def load_script(self, text: str) -> int:
        """Schedule ``SECONDS ACTION ARGS`` lines relative to now; returns how many. ``#`` starts a comment."""
        start = self.clock()
        steps = parse_script(text)
        with self._lock:
            for at, action in steps:
                self._at(start + at, action)
        return len(steps)

    def _at(self, when: float, action: str) -> None:
        self._seq += 1
        self._schedule.append((when, self._seq, action))
        self._schedule.sort()

    def run_due(self) -> None:
        with self._lock:
            self._run_due()

    def _run_due(self) -> None:
        now = self.clock()
        while self._schedule and self._schedule[0][0] <= now:
            _, _, action = self._schedule.pop(0)
            if action.startswith("remove-card "):
                cid = int(action.split()[1])
                self.field = [c for c in self.field if id(c) != cid]
            elif action.startswith("place-again "):
                card = self._pending_cards.pop(int(action.split()[1]), None)
                if card is not None:
                    self.tap(card, DEFAULT_HOLD_S)
            else:
                try:
                    self.do(action)
                except ValueError as exc:
                    log.warning("simulator script: %s", exc)

    @property
    def pending_actions(self) -> int:
        with self._lock:
            return len(self._schedule)

    # --- control socket -------------------------------------------------------------
    def serve(self, address: str) -> str:
        """Listen for action lines on ``tcp:127.0.0.1:PORT`` or ``unix:/path``; returns the bound address."""
        if self._server is not None:
            return self.control_address
        reader = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line:
                        continue
                    try:
                        reply = "ok " + reader.do(line)
                    except ValueError as exc:
                        reply = f"err {exc}"
                    # The line may hold an idm= option: it is answered, never logged.
                    self.wfile.write((reply + "\n").encode())
                    self.wfile.flush()

        if address.startswith("unix:"):
            path = address[5:]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            server: socketserver.BaseServer = socketserver.ThreadingUnixStreamServer(path, Handler)
            os.chmod(path, 0o600)
            bound = f"unix:{path}"
        elif address.startswith("tcp:"):
            host, _, port = address[4:].rpartition(":")
            if host not in ("127.0.0.1", "localhost"):
                raise ValueError("the simulator socket only listens on loopback")
            server = _LoopbackTCPServer((host, int(port)), Handler)
            bound = f"tcp:{host}:{server.server_address[1]}"
        else:
            raise ValueError("address must be tcp:127.0.0.1:PORT or unix:/path")
        server.daemon_threads = True  # type: ignore[attr-defined]
        self._server = server
        self._server_thread = threading.Thread(target=server.serve_forever, name="sim-reader-socket", daemon=True)
        self._server_thread.start()
        self.control_address = bound
        return bound

    def stop_serving(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self.control_address.startswith("unix:"):
            try:
                os.unlink(self.control_address[5:])
            except OSError:
                pass
        self._server = None
        self.control_address = ""

    def shutdown(self) -> None:
        self.close()
        self.stop_serving()


class _LoopbackTCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a restarted demo can rebind its port at once


def _take_opt(rest: str, key: str, default: float) -> tuple[str, float]:
    parts = shlex.split(rest)
    value = default
    keep = []
    for p in parts:
        if p.startswith(key + "="):
            value = float(p.split("=", 1)[1])
        else:
            keep.append(p)
    if not keep:
        raise ValueError("which card? e.g. 'tap suica'")
    return " ".join(keep), value


def parse_script(text: str) -> list[tuple[float, str]]:
    """``SECONDS ACTION ARGS`` lines -> (seconds, action). Raises ValueError naming the bad line."""
    steps = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        t, _, action = line.partition(" ")
        try:
            at = float(t)
        except ValueError:
            raise ValueError(f"script line {n}: {t!r} is not a time in seconds") from None
        if at < 0 or not action.strip():
            raise ValueError(f"script line {n}: needs 'SECONDS ACTION'")
        steps.append((at, action.strip()))
    return steps


def send(address: str, *lines: str, timeout: float = 5.0) -> list[str]:
    """Client side of the control socket: send action lines, return the replies."""
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = address[5:]
    else:
        host, _, port = address[4:].rpartition(":")
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    with s:
        s.settimeout(timeout)
        s.connect(target)  # type: ignore[arg-type]
        f = s.makefile("rw", encoding="utf-8", newline="\n")
        replies = []
        for line in lines:
            f.write(line + "\n")
            f.flush()
            replies.append(f.readline().strip())
        return replies
