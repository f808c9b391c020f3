"""A fake Square API on loopback: the HTTP seam the Square adapter is tested at.

Written from Square's public API reference (Terminal API, Devices API, Refunds
API) and the field notes: every request must carry ``Authorization: Bearer``
and ``Square-Version``; errors are ``{"errors": [{"category", "code",
"detail", "field"}]}``; a create repeated with the same ``idempotency_key`` and
body returns the same object, with another body it is ``400
IDEMPOTENCY_KEY_REUSED``; a checkout goes PENDING → IN_PROGRESS → COMPLETED
(``payment_ids``) or → CANCEL_REQUESTED → CANCELED (``cancel_reason``
BUYER_CANCELED, SELLER_CANCELED, TIMED_OUT); PENDING past its
``deadline_duration`` becomes CANCELED/TIMED_OUT.

It is a real HTTP server (``http.server`` on 127.0.0.1, one thread per
connection), so the real SDK and httpx run unchanged. What the donor does at
the terminal is played by the test (:meth:`FakeSquare.buyer`) or by a plan
applied one step per GetTerminalCheckout (:attr:`FakeSquare.plan`); a
``decline`` step is a tap the card network refused: a FAILED payment that the
checkout goes on to list in its ``payment_ids`` ahead of the one that paid, as
Square has been seen to do (sde1000/quicktill issue 254). GetPayment
(``GET /v2/payments/{id}``) answers each payment's status and money. Faults are
queued per route (:meth:`FakeSquare.fault`): an HTTP status with an optional
``Retry-After``, ``drop`` (connection closed with no answer, nothing done),
``drop_after`` (the request is carried out and stored, then the connection is
closed: the answer never arrives), ``hold`` (the request waits at the door
until :meth:`FakeSquare.release`; a killed client's held request is dropped,
never carried out) and ``hold_after`` (carried out and stored, the answer held
until released: a client killed meanwhile never gets it).

SearchTerminalCheckouts (``POST /v2/terminals/checkouts/search``) filters by
``device_id``, ``status`` and ``created_at`` (``start_at``/``end_at``, inclusive;
without one, Square's default: the last day), pages by :attr:`FakeSquare.page_size`
with a ``cursor``, and leaves out checkouts older than 30 days, as Square does.
Square keeps idempotency keys only for a while: with
:attr:`FakeSquare.forget_keys_after_s` set, a create repeated that long after the
first makes a new checkout. Times at Square are the ``wall`` clock the fake is
given (seconds since the epoch; a test moves it with the kiosk's FixedClock).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "EAAAtest-token"
LOCATION = "L-TEST-CENTER"
DEVICE = "device:TEST-TERMINAL-1"
PAYMENT_TYPES = {"CARD_PRESENT", "MANUAL_CARD_ENTRY", "FELICA_ID", "FELICA_QUICPAY", "FELICA_TRANSPORTATION_GROUP",
                 "FELICA_ALL", "PAYPAY", "QR_CODE"}
_DURATION = re.compile(r"^P(?:T(?:(\d+)M)?(?:(\d+)S)?)$")


def _err(code: str, detail: str, category: str = "INVALID_REQUEST_ERROR", field: str | None = None) -> dict:
    e = {"category": category, "code": code, "detail": detail}
    if field:
        e["field"] = field
    return {"errors": [e]}


def _iso(wall: float | None = None) -> str:
    when = datetime.now(UTC) if wall is None else datetime.fromtimestamp(wall, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(text: str) -> float:
    """An RFC 3339 time (Square's format) as seconds since the epoch; ValueError if it is not one."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


CHECKOUTS_KEPT_S = 30 * 86400
"""Square: "Terminal checkout requests are available for 30 days"."""


@dataclass
class Fault:
    kind: str
    """``status`` (answer ``status`` with an error body), ``status_after`` (carry the request out, then answer
    ``status`` with an error body: Square's 408 REQUEST_TIMEOUT after it stored a checkout), ``garble_after`` (carry
    it out, then answer 200 with a body cut short), ``bad_encoding`` (carry it out, then answer with a
    ``Content-Encoding: gzip`` its plain body does not match, as a broken proxy might), ``drop``, ``drop_after``,
    ``hold``, ``hold_after``, ``answer_after`` (carry it out, then answer 200 with :attr:`doc`: a well-formed answer
    about something else, as from a proxy that mixed up two answers), or ``pass`` (no fault: lets a later fault in
    the queue land on a later request)."""
    status: int = 500
    retry_after: str | None = None
    code: str | None = None
    """The error code of a ``status``/``status_after`` answer (default: RATE_LIMITED for 429, else
    INTERNAL_SERVER_ERROR)."""
    doc: dict | Callable[[], dict] | None = None
    """The body of an ``answer_after`` answer (a callable: made when the answer is sent)."""


@dataclass
class Checkout:
    idem: str
    request: dict
    id: str
    status: str = "PENDING"
    cancel_reason: str | None = None
    payment_ids: list[str] = field(default_factory=list)
    created_mono: float = 0.0
    created_wall: float = 0.0
    deadline_s: float = 300.0
    created_at: str = ""
    updated_at: str = ""
    terminal_error: bool = False
    """The e-money terminal hit an error: Square refuses CancelTerminalCheckout from the API."""
    plan: list[str] = field(default_factory=list)
    ids_hidden: int = 0
    """How many more answers about this COMPLETED checkout leave out its ``payment_ids`` (see
    :attr:`FakeSquare.payment_ids_late`)."""

    def doc(self) -> dict:
        out = dict(self.request)
        out.update({"id": self.id, "status": self.status, "created_at": self.created_at,
                    "updated_at": self.updated_at, "location_id": LOCATION, "app_id": "sq0idp-fake"})
        out.setdefault("deadline_duration", "PT5M")
        if self.cancel_reason:
            out["cancel_reason"] = self.cancel_reason
        if self.payment_ids and self.ids_hidden > 0:
            self.ids_hidden -= 1  # COMPLETED, but this answer does not say which payment yet
        elif self.payment_ids:
            out["payment_ids"] = list(self.payment_ids)
        return out


ENDED = ("REJECTED", "FAILED")


class FakeSquare:
    """The provider's state and the HTTP server in front of it. Use as a context manager."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.clock = clock
        self.wall = wall
        self.forget_keys_after_s: float | None = None
        """How long Square remembers an idempotency key (``None``: for ever): a create repeated later than this
        after the first is a new one, and makes a new checkout."""
        self.page_size = 100
        """Checkouts per page of a SearchTerminalCheckouts answer."""
        self.lock = threading.RLock()
        self.checkouts: dict[str, Checkout] = {}  # by id
        self.by_idem: dict[str, str] = {}
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}  # by idempotency key
        self.refund_steps: list[str] = ["PENDING", "COMPLETED"]
        """The statuses each *new* refund goes through: RefundPayment answers with the first, each
        GetPaymentRefund moves a PENDING one a step on (and it stays at the last). Square: PENDING, COMPLETED,
        REJECTED, FAILED. REJECTED and FAILED are final; the steps after one are what the next new refund (a new
        key) of the same payment plays, as in the simulator: ``["REJECTED", "COMPLETED"]``."""
        self._refund_next: dict[str, list[str]] = {}  # by refund id: the steps still to come
        self.device_codes: dict[str, dict] = {}
        self.devices = {DEVICE}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request that reached us
        self.faults: dict[str, list[Fault]] = {}
        self.plan: list[str] = []
        """Steps applied to each *new* checkout, one per GetTerminalCheckout: ``tap``, ``decline`` (a declined tap:
        a FAILED payment listed in ``payment_ids``), ``complete``, ``cancel``, ``error`` (terminal error: API cancel
        refused), ``wait`` (no change), ``paid_cancel`` (the card was debited, yet Square reports the checkout
        CANCELED/BUYER_CANCELED listing that COMPLETED payment: a device-side error reported as a buyer cancel,
        which Square's staff say happens), ``approved_cancel`` (the same with the payment still APPROVED)."""
        self.payment_ids_late = 0
        """How many answers about a checkout that has just completed leave out its ``payment_ids`` (COMPLETED,
        but not yet saying which payment). 0, the default: every answer has them."""
        self.held = threading.Event()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="fake-square", daemon=True)

    def __enter__(self) -> FakeSquare:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    # --- test controls ---------------------------------------------------------------------
    def fault(self, route: str, *faults: Fault) -> None:
        """Queue faults for ``route``: create, get, cancel, search, payment_get, refund, refund_get, device_code,
        device."""
        with self.lock:
            self.faults.setdefault(route, []).extend(faults)

    def release(self) -> None:
        self._release.set()

    def only(self, idem: str | None = None) -> Checkout:
        with self.lock:
            cos = list(self.checkouts.values()) if idem is None else [self.checkouts[self.by_idem[idem]]]
        assert len(cos) == 1, f"expected one checkout, found {len(cos)}"
        return cos[0]

    def buyer(self, checkout_id: str, action: str) -> None:
        """What the donor does at the terminal: tap, decline, complete, cancel, error."""
        with self.lock:
            self._apply(self.checkouts[checkout_id], action)

    def count_by_idem(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for co in self.checkouts.values():
                out[co.idem] = out.get(co.idem, 0) + 1
            return out

    # --- the provider's rules ------------------------------------------------------------------
    def _apply(self, co: Checkout, action: str) -> None:
        if co.status in ("COMPLETED", "CANCELED"):
            return
        if action == "tap":
            co.status = "IN_PROGRESS"
        elif action == "error":
            co.status, co.terminal_error = "IN_PROGRESS", True
        elif action == "decline":  # the card was declined: a FAILED payment, and the donor may tap again
            co.status = "IN_PROGRESS"
            co.payment_ids = [*co.payment_ids, self._payment(co, "FAILED")]
        elif action == "complete":
            pid = self._payment(co, "COMPLETED")
            co.status, co.payment_ids, co.ids_hidden = "COMPLETED", [*co.payment_ids, pid], self.payment_ids_late
        elif action == "cancel":
            co.status, co.cancel_reason = "CANCELED", "BUYER_CANCELED"
        elif action in ("paid_cancel", "approved_cancel"):  # money taken (or held), checkout reported CANCELED
            pid = self._payment(co, "COMPLETED" if action == "paid_cancel" else "APPROVED")
            co.status, co.cancel_reason, co.payment_ids = "CANCELED", "BUYER_CANCELED", [*co.payment_ids, pid]
        elif action != "wait":
            raise ValueError(action)
        co.updated_at = _iso()

    def _payment(self, co: Checkout, status: str) -> str:
        """A new payment of ``co``'s amount in ``status`` (COMPLETED: the money is taken; FAILED: declined)."""
        pid = "pay_" + uuid.uuid4().hex[:20]
        amount = co.request["amount_money"]["amount"]
        self.payments[pid] = {"id": pid, "amount": amount, "currency": co.request["amount_money"]["currency"],
                              "status": status, "refunded": 0, "checkout_id": co.id, "created_at": _iso()}
        return pid

    def get_payment(self, pid: str) -> tuple[int, dict]:
        """GetPayment: the payment's status and money (Square's Payment object, the fields the kiosk reads)."""
        with self.lock:
            pay = self.payments.get(pid)
            if pay is None:
                return 404, _err("NOT_FOUND", f"payment {pid} not found")
            money = {"amount": pay["amount"], "currency": pay.get("currency", "JPY")}
            doc = {"id": pid, "status": pay.get("status", "COMPLETED"), "amount_money": money,
                   "total_money": money, "source_type": "CARD", "location_id": LOCATION,
                   "created_at": pay.get("created_at", _iso()), "updated_at": _iso()}
            if doc["status"] in ("APPROVED", "COMPLETED"):
                doc["approved_money"] = money
            if pay["refunded"]:
                doc["refunded_money"] = {"amount": pay["refunded"], "currency": money["currency"]}
            return 200, {"payment": doc}

    def _age(self, co: Checkout) -> None:
        """Time passes for ``co``: CANCEL_REQUESTED settles; PENDING past its deadline times out."""
        if co.status == "CANCEL_REQUESTED":
            co.status, co.cancel_reason = "CANCELED", "SELLER_CANCELED"
        elif co.status == "PENDING" and self.clock() - co.created_mono >= co.deadline_s:
            co.status, co.cancel_reason = "CANCELED", "TIMED_OUT"

    def create_checkout(self, body: dict) -> tuple[int, dict]:
        idem = body.get("idempotency_key")
        req = body.get("checkout")
        if not isinstance(idem, str) or not 1 <= len(idem) <= 64:
            return 400, _err("INVALID_VALUE", "idempotency_key must be 1-64 characters", field="idempotency_key")
        if not isinstance(req, dict):
            return 400, _err("MISSING_REQUIRED_PARAMETER", "checkout is required", field="checkout")
        money = req.get("amount_money") or {}
        if money.get("currency") != "JPY" or not isinstance(money.get("amount"), int) or money["amount"] < 1:
            return 400, _err("INVALID_VALUE", "amount_money must be a positive JPY amount", field="amount_money")
        device = (req.get("device_options") or {}).get("device_id")
        if device not in self.devices:
            return 404, _err("NOT_FOUND", f"device {device} not found", category="INVALID_REQUEST_ERROR")
        if req.get("payment_type", "CARD_PRESENT") not in PAYMENT_TYPES:
            return 400, _err("INVALID_ENUM_VALUE", "unknown payment_type", field="payment_type")
        if len(req.get("reference_id") or "") > 40 or len(req.get("note") or "") > 500:
            return 400, _err("VALUE_TOO_LONG", "reference_id or note too long")
        m = _DURATION.match(req.get("deadline_duration") or "PT5M")
        secs = (int(m.group(1) or 0) * 60 + int(m.group(2) or 0)) if m else -1
        if not 10 <= secs <= 300:
            return 400, _err("INVALID_VALUE", "deadline_duration must be 10 s to 5 minutes", field="deadline_duration")
        with self.lock:
            known = self.by_idem.get(idem)
            if known is not None:
                co = self.checkouts[known]
                forgotten = (self.forget_keys_after_s is not None
                             and self.clock() - co.created_mono >= self.forget_keys_after_s)
                if not forgotten:
                    if co.request != req:
                        return 400, _err("IDEMPOTENCY_KEY_REUSED", "the key was used with another request")
                    return 200, {"checkout": co.doc()}
            wall = self.wall()
            now = _iso(wall)
            co = Checkout(idem, req, "chk_" + uuid.uuid4().hex[:18], created_mono=self.clock(), deadline_s=secs,
                          created_at=now, updated_at=now, plan=list(self.plan), created_wall=wall)
            self.checkouts[co.id] = co
            self.by_idem[idem] = co.id
            return 200, {"checkout": co.doc()}

    def get_checkout(self, cid: str) -> tuple[int, dict]:
        with self.lock:
            co = self.checkouts.get(cid)
            if co is None:
                return 404, _err("NOT_FOUND", f"checkout {cid} not found")
            self._age(co)
            if co.plan and co.status not in ("COMPLETED", "CANCELED"):
                self._apply(co, co.plan.pop(0))
            return 200, {"checkout": co.doc()}

    def search_checkouts(self, body: dict) -> tuple[int, dict]:
        """SearchTerminalCheckouts: filter (device_id, status, created_at), sort, cursor pages."""
        query = body.get("query") or {}
        flt = query.get("filter") or {}
        span = flt.get("created_at") or {}
        now = self.wall()
        try:
            start = _parse_time(span["start_at"]) if span.get("start_at") else now - 86400  # Square's default
            end = _parse_time(span["end_at"]) if span.get("end_at") else None
            offset = int(body.get("cursor") or 0)
        except ValueError:
            return 400, _err("INVALID_VALUE", "bad created_at or cursor", field="query.filter.created_at")
        limit = min(int(body.get("limit") or self.page_size), self.page_size)
        with self.lock:
            hits = []
            for co in self.checkouts.values():
                self._age(co)
                if now - co.created_wall > CHECKOUTS_KEPT_S or co.created_wall < start:
                    continue
                if (end is not None and co.created_wall > end) or (
                        flt.get("device_id") and co.request["device_options"]["device_id"] != flt["device_id"]):
                    continue
                if flt.get("status") and co.status != flt["status"]:
                    continue
                hits.append(co)
            hits.sort(key=lambda c: c.created_wall,
                      reverse=(query.get("sort") or {}).get("sort_order", "DESC") == "DESC")
            page = hits[offset:offset + limit]
            out: dict = {"checkouts": [co.doc() for co in page]}
            if offset + limit < len(hits):
                out["cursor"] = str(offset + limit)
            return 200, out

    def cancel_checkout(self, cid: str) -> tuple[int, dict]:
        with self.lock:
            co = self.checkouts.get(cid)
            if co is None:
                return 404, _err("NOT_FOUND", f"checkout {cid} not found")
            self._age(co)
            if co.status in ("COMPLETED", "CANCELED"):
                return 400, _err("BAD_REQUEST", f"checkout is already {co.status}")
            if co.terminal_error:
                return 400, _err("BAD_REQUEST", "an e-money checkout cannot be canceled after a terminal error;"
                                                " cancel on the terminal")
            if co.status == "PENDING":
                co.status, co.cancel_reason = "CANCELED", "SELLER_CANCELED"
            else:
                co.status = "CANCEL_REQUESTED"
            co.updated_at = _iso()
            return 200, {"checkout": co.doc()}

    def refund(self, body: dict) -> tuple[int, dict]:
        idem, pid = body.get("idempotency_key"), body.get("payment_id")
        money = body.get("amount_money") or {}
        with self.lock:
            if idem in self.refunds:
                prev = self.refunds[idem]
                if (prev["payment_id"], prev["amount_money"]) != (pid, money):
                    return 400, _err("IDEMPOTENCY_KEY_REUSED", "the key was used with another request")
                return 200, {"refund": prev}
            pay = self.payments.get(pid or "")
            if pay is None:
                return 404, _err("NOT_FOUND", f"payment {pid} not found")
            if pay.get("status", "COMPLETED") != "COMPLETED":  # a declined payment took no money to give back
                return 400, _err("BAD_REQUEST", f"payment {pid} is {pay['status']} and cannot be refunded")
            # Square: a REJECTED or FAILED refund returned nothing, so it does not use up the payment.
            live = sum(r["amount_money"]["amount"] for r in self.refunds.values()
                       if r["payment_id"] == pid and r["status"] in ("PENDING", "COMPLETED"))
            if money.get("currency") != "JPY" or money.get("amount", 0) + live > pay["amount"]:
                return 400, _err("REFUND_AMOUNT_INVALID", "refund exceeds the payment")
            pay["refunded"] = live + money["amount"]
            steps = list(self.refund_steps) or ["PENDING"]
            ended = [r["id"] for r in self.refunds.values()
                     if r["payment_id"] == pid and r["status"] in ENDED and self._refund_next.get(r["id"])]
            if ended:  # the payment's script goes on from its refused or failed refund (see refund_steps)
                steps = self._refund_next.pop(ended[-1])
            ref = {"id": "ref_" + uuid.uuid4().hex[:18], "status": steps[0], "payment_id": pid,
                   "amount_money": money, "reason": body.get("reason"), "location_id": LOCATION,
                   "created_at": _iso(), "updated_at": _iso()}
            self.refunds[idem] = ref
            self._refund_next[ref["id"]] = steps[1:]
            return 200, {"refund": ref}

    def get_refund(self, refund_id: str) -> tuple[int, dict]:
        with self.lock:
            ref = next((r for r in self.refunds.values() if r["id"] == refund_id), None)
            if ref is None:
                return 404, _err("NOT_FOUND", f"refund {refund_id} not found")
            nxt = self._refund_next.get(refund_id) or []
            if nxt and ref["status"] == "PENDING":  # only a PENDING refund moves on: the others are final
                ref.update(status=nxt.pop(0), updated_at=_iso())
            return 200, {"refund": ref}

    def set_refund(self, refund_id: str, *steps: str) -> None:
        """What the refund ``refund_id`` answers from the next GetPaymentRefund on (the bank has decided)."""
        with self.lock:
            self._refund_next[refund_id] = list(steps)

    def create_device_code(self, body: dict) -> tuple[int, dict]:
        dc = body.get("device_code") or {}
        if dc.get("product_type") != "TERMINAL_API":
            return 400, _err("INVALID_VALUE", "product_type must be TERMINAL_API", field="product_type")
        with self.lock:
            code = {"id": "dc_" + uuid.uuid4().hex[:12], "code": uuid.uuid4().hex[:6].upper(), "name": dc.get("name"),
                    "product_type": "TERMINAL_API", "location_id": dc.get("location_id"), "status": "UNPAIRED",
                    "pair_by": _iso(), "created_at": _iso()}
            self.device_codes[code["id"]] = code
            return 200, {"device_code": code}

    def pair_terminal(self, code_id: str, device_id: str = DEVICE) -> None:
        """Staff signed in on the terminal with the code."""
        with self.lock:
            self.device_codes[code_id].update(status="PAIRED", device_id=device_id, paired_at=_iso())
            self.devices.add(device_id)

    # --- HTTP -----------------------------------------------------------------------------
    def _route(self, method: str, path: str, body: dict) -> tuple[str, Callable[[], tuple[int, dict]]]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v2", "terminals", "checkouts"]:
            return "create", lambda: self.create_checkout(body)
        if method == "POST" and parts == ["v2", "terminals", "checkouts", "search"]:
            return "search", lambda: self.search_checkouts(body)
        if method == "GET" and parts[:3] == ["v2", "terminals", "checkouts"] and len(parts) == 4:
            return "get", lambda: self.get_checkout(parts[3])
        if method == "POST" and parts[:3] == ["v2", "terminals", "checkouts"] and parts[4:] == ["cancel"]:
            return "cancel", lambda: self.cancel_checkout(parts[3])
        if method == "GET" and parts[:2] == ["v2", "payments"] and len(parts) == 3:
            return "payment_get", lambda: self.get_payment(parts[2])
        if method == "POST" and parts == ["v2", "refunds"]:
            return "refund", lambda: self.refund(body)
        if method == "GET" and parts[:2] == ["v2", "refunds"] and len(parts) == 3:
            return "refund_get", lambda: self.get_refund(parts[2])
        if method == "POST" and parts == ["v2", "devices", "codes"]:
            return "device_code", lambda: self.create_device_code(body)
        if method == "GET" and parts[:3] == ["v2", "devices", "codes"] and len(parts) == 4:
            def get_code() -> tuple[int, dict]:
                with self.lock:
                    dc = self.device_codes.get(parts[3])
                return (200, {"device_code": dc}) if dc else (404, _err("NOT_FOUND", "no such device code"))
            return "device_code", get_code
        if method == "GET" and parts[:2] == ["v2", "devices"] and len(parts) == 3:
            def get_device() -> tuple[int, dict]:
                if parts[2] in self.devices:
                    return 200, {"device": {"id": parts[2], "attributes": {"type": "TERMINAL", "name": "Terminal"},
                                            "status": {"category": "AVAILABLE"}}}
                return 404, _err("NOT_FOUND", "no such device")
            return "device", get_device
        return "none", lambda: (404, _err("NOT_FOUND", f"no route {method} {path}"))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                with fake.lock:
                    fake.requests.append((method, self.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, _err("UNAUTHORIZED", "bad token", category="AUTHENTICATION_ERROR"))
                if not self.headers.get("Square-Version"):
                    return self._send(400, _err("MISSING_REQUIRED_PARAMETER", "Square-Version header missing"))
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self._send(400, _err("INVALID_CONTENT_TYPE", "body is not JSON"))
                route, act = fake._route(method, self.path.split("?")[0], body)
                with fake.lock:
                    queue = fake.faults.get(route) or []
                    fault = queue.pop(0) if queue else None
                if fault is not None and fault.kind == "hold":
                    fake.held.set()
                    fake._release.wait(60)
                    if not self._client_alive():
                        return self._drop()  # the kiosk died while we held its request: never carried out
                if fault is not None and fault.kind == "drop":
                    return self._drop()
                if fault is not None and fault.kind == "status":
                    return self._fault_answer(fault)
                status, doc = act()
                if fault is not None and fault.kind == "status_after":
                    return self._fault_answer(fault)  # carried out, answered as an error
                if fault is not None and fault.kind == "garble_after":
                    return self._send_raw(200, json.dumps(doc).encode()[:20])  # carried out, answer cut short
                if fault is not None and fault.kind == "answer_after":
                    # carried out, answered about something else
                    return self._send(200, (fault.doc() if callable(fault.doc) else fault.doc) or {})
                if fault is not None and fault.kind == "bad_encoding":
                    return self._send(status, doc, {"Content-Encoding": "gzip"})  # but the body is plain JSON
                if fault is not None and fault.kind == "hold_after":
                    fake.held.set()
                    fake._release.wait(60)
                    if not self._client_alive():
                        return self._drop()
                if fault is not None and fault.kind == "drop_after":
                    return self._drop()  # stored, answer lost
                self._send(status, doc)

            def _client_alive(self) -> bool:
                try:
                    self.connection.setblocking(False)
                    try:
                        return self.connection.recv(1, socket.MSG_PEEK) != b""
                    except BlockingIOError:
                        return True
                    finally:
                        self.connection.setblocking(True)
                except OSError:
                    return False

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _fault_answer(self, fault: Fault) -> None:
                hdr = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                limited = fault.status == 429
                code = fault.code or ("RATE_LIMITED" if limited else "INTERNAL_SERVER_ERROR")
                doc = _err(code, "injected", category="RATE_LIMIT_ERROR" if limited else "API_ERROR")
                self._send(fault.status, doc, hdr)

            def _send(self, status: int, doc: dict, headers: dict | None = None) -> None:
                self._send_raw(status, json.dumps(doc).encode(), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler
