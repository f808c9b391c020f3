"""The nfcpy backend against nfcpy's real ContactlessFrontend and Type3Tag code.

The fake is an nfc.clf.device.Device at the driver seam, replaying frames.
"""

from __future__ import annotations

import errno
import types
from pathlib import Path

import nfc.clf
import nfc.clf.device
import nfc.clf.transport
import pytest
from reader_fakes import FakeNfcDevice, FrameTable, frontend_with

from kiosk.reader import transit
from kiosk.reader.devices import DEVICE_MAP, NFCPY_IDS
from kiosk.reader.events import CardPresented, CardRemoved, ReaderConnected, ReaderDisconnected, ReadError
from kiosk.reader.fixes import udev_rules
from kiosk.reader.nfcpy_backend import NfcpyReader, open_frontend
from kiosk.reader.sim import make_card
from kiosk.reader.supervisor import ReaderSupervisor, State

IDM = "0112 03A1 B2C3 D4E5"
PMM = "100B 4B42 8485 D0FF"  # IC 0x0B: nfcpy makes it a FeliCa Standard tag
POLL_0003 = "06 00 0003 01 00"
POLL_RSP = f"14 01 {IDM} {PMM} 0003"
ATTR = "0000 0000 0000 0000 2000 00D2 0400 002A"  # type 2, ¥1,234
H0 = "1601 0002 3095 E31A E32B D204 0001 F400"  # 2024-04-21 gate, ¥1,234, #500
H1 = "1601 0002 3094 E31A E32B 7A05 0001 F300"  # 2024-04-20, ¥1,402, #499
READ_CMD = f"18 06 {IDM} 02 8B00 0F09 04 8000 8100 8101 8102"
READ_RSP = f"4D 07 {IDM} 0000 04 {ATTR} {H0} {H1} {'00' * 16}"
READ_01A6 = f"0C 07 {IDM} 01A6"
SHIPPED_RULES = Path(__file__).resolve().parents[2] / "systemd" / "99-kiosk-readers.rules"


def request_service_frames(family: str) -> tuple[str, str]:
    nodes = transit.PROBE_NODES
    cmd = bytes([len(nodes)]) + b"".join(n.to_bytes(2, "little") for n in nodes)
    kvs = b"".join((0 if n in transit.issuer_nodes(family) else 0xFFFF).to_bytes(2, "little") for n in nodes)
    idm = bytes.fromhex(IDM.replace(" ", ""))
    c = bytes([2]) + idm + cmd
    r = bytes([3]) + idm + bytes([len(nodes)]) + kvs
    return (bytes([len(c) + 1]) + c).hex(), (bytes([len(r) + 1]) + r).hex()


def reader_with(device, rconf, pepper, clock, **kw):
    return NfcpyReader(rconf(backend="nfcpy", **kw), pepper.token, opener=lambda path: frontend_with(device),
                       clock=clock)


def poll_for(reader, clock, seconds):
    for _ in range(round(seconds / 0.05)):
        reader.poll()
        clock.advance(0.05)
    return reader.events.drain()


def test_card_present_and_read_through_type3tag(rconf, pepper, clock):
    rs_cmd, rs_rsp = request_service_frames("suica")
    table = FrameTable({POLL_0003: POLL_RSP, READ_CMD: READ_RSP, rs_cmd: rs_rsp})
    dev = FakeNfcDevice(table)
    r = reader_with(dev, rconf, pepper, clock)
    assert "RC-S380/P" in r.open()
    events = poll_for(r, clock, 0.5)
    (tap,) = [e.record for e in events if isinstance(e, CardPresented)]
    assert table.unknown == []  # every frame we sent was the recorded one, byte for byte
    assert tap.family == "suica" and tap.balance_yen == 1234 and tap.last_transaction == 500
    assert [h.balance_yen for h in tap.history] == [1234, 1402]  # empty third slot skipped
    assert tap.token == pepper.token(bytes.fromhex(IDM.replace(" ", "")))
    # polled only for 0x0003 with request code 1, through sense(), many times, never a wildcard
    assert set(dev.sensf_reqs) == {bytes.fromhex("00 0003 01 00")}
    assert len(dev.sensf_reqs) == 10


def test_error_status_01a6_is_a_read_error(rconf, pepper, clock):
    dev = FakeNfcDevice(FrameTable({POLL_0003: POLL_RSP, READ_CMD: READ_01A6}))
    r = reader_with(dev, rconf, pepper, clock)
    r.open()
    events = poll_for(r, clock, 0.3)
    assert not any(isinstance(e, CardPresented) for e in events)
    (err,) = [e for e in events if isinstance(e, ReadError)]
    assert err.kind == "status" and err.status == (0x01, 0xA6)


def test_card_pulled_during_read_times_out_into_card_lost(rconf, pepper, clock):
    dev = FakeNfcDevice(FrameTable({POLL_0003: POLL_RSP}))  # polls answer, reads get silence
    r = reader_with(dev, rconf, pepper, clock)
    r.open()
    events = poll_for(r, clock, 0.2)
    assert [e.kind for e in events if isinstance(e, ReadError)] == ["card-lost"]
    assert len(dev.commands) == 3  # nfcpy's Type3Tag retried the read three times


def supervised(reader, clock, steps):
    sup = ReaderSupervisor(reader, poll_interval_s=0.05)
    for _ in range(steps):
        sup.step()
        clock.advance(0.05)
    return sup


def reads(dev):
    return sum(1 for c in dev.commands if c[1] == 0x06)


def link_breaks_on_read(table):
    """A driver that raises a CommunicationError nfcpy's send_cmd_recv_rsp does not name: nfcpy 1.0.4 then
    falls out of its retry loop with ``rsp`` unbound (UnboundLocalError), not a TagCommandError."""
    def card(frame):
        if frame[1] == 0x06:
            raise nfc.clf.BrokenLinkError("link broke")
        return table(frame)

    return card


@pytest.mark.parametrize("answer", [
    f"0A 07 {IDM}",     # no status flags: nfcpy's send_cmd_recv_rsp reads rsp[10] (IndexError)
    f"0B 07 {IDM} 01",  # cut after SF1: nfcpy unpacks rsp[10:12] (struct.error)
    "link-breaks",      # nfcpy itself fails unexpectedly (UnboundLocalError): the last resort in base.py
])
def test_a_read_nfcpy_cannot_parse_is_a_read_error_and_a_retap_reads_again(rconf, pepper, clock, caplog, answer):
    table = FrameTable({POLL_0003: POLL_RSP, READ_CMD: answer} if answer != "link-breaks" else {POLL_0003: POLL_RSP})
    card = link_breaks_on_read(table) if answer == "link-breaks" else table
    dev = FakeNfcDevice(card)
    r = reader_with(dev, rconf, pepper, clock, cooldown_ms=3000, removal_misses=3)
    sup = supervised(r, clock, 2)  # open, then the tap: the read fails
    assert sup.state is State.CONNECTED
    (err,) = [e for e in r.events.drain() if isinstance(e, ReadError)]
    assert err.kind == "protocol"
    assert ("tap again" if answer == "link-breaks" else "short answer") in err.detail
    assert "poll failed unexpectedly" not in caplog.text
    assert answer != "link-breaks" or "unexpected UnboundLocalError while reading a card" in caplog.text
    assert IDM.replace(" ", "").lower() not in caplog.text.lower()
    before = reads(dev)
    dev.card = None
    for _ in range(4):  # lifted: removed after 3 misses
        sup.step()
        clock.advance(0.05)
    dev.card = card
    sup.step()  # tapped again 0.2 s later, well inside cooldown_ms: a fresh read, not a cooldown repeat
    assert reads(dev) > before
    assert [e.kind for e in r.events.drain() if isinstance(e, ReadError)] == ["protocol"]


def test_a_short_request_service_answer_still_gives_the_tap(rconf, pepper, clock):
    rs_cmd, _ = request_service_frames("suica")
    dev = FakeNfcDevice(FrameTable({POLL_0003: POLL_RSP, READ_CMD: READ_RSP, rs_cmd: "01"}))  # IndexError in nfcpy
    r = reader_with(dev, rconf, pepper, clock)
    r.open()
    (tap,) = [e.record for e in poll_for(r, clock, 0.3) if isinstance(e, CardPresented)]
    assert (tap.family, tap.balance_yen) == ("transit", 1234)  # family detection is best effort


def test_a_poll_answer_cut_inside_the_system_code_is_no_answer(rconf, pepper, clock):
    dev = FakeNfcDevice(FrameTable({POLL_0003: f"13 01 {IDM} {PMM} 00"}))  # 18+ bytes: rcs380 passes it on
    r = reader_with(dev, rconf, pepper, clock)
    r.open()
    assert poll_for(r, clock, 0.3) == []  # struct.error in nfcpy's Type3Tag() is a garbled poll, not a crash
    assert dev.commands == []


def test_card_removed_after_misses(rconf, pepper, clock):
    rs_cmd, rs_rsp = request_service_frames("suica")
    table = FrameTable({POLL_0003: POLL_RSP, READ_CMD: READ_RSP, rs_cmd: rs_rsp})
    dev = FakeNfcDevice(table)
    r = reader_with(dev, rconf, pepper, clock)
    r.open()
    poll_for(r, clock, 0.2)
    dev.card = None
    events = poll_for(r, clock, 0.2)
    assert [type(e) for e in events] == [CardRemoved]


def test_sim_cards_behind_the_fake_device(rconf, pepper, clock):
    """Every family and an Express-mode phone through nfcpy's Type3Tag code."""
    for spec in ["pasmo", "icoca", "iphone", "unknown-ic"]:
        card = make_card(spec)
        dev = FakeNfcDevice(card.answer)
        r = reader_with(dev, rconf, pepper, clock, extra_system_codes=[0xFE00])
        r.open()
        (tap,) = [e.record for e in poll_for(r, clock, 0.3) if isinstance(e, CardPresented)]
        want = {"iphone": "suica", "unknown-ic": "transit"}.get(spec, spec)
        assert (tap.family, tap.balance_yen) == (want, card.balance_yen)
        assert card.wallet_wakeups == 0


def test_unplug_raises_enodev_from_sense_and_supervisor_recovers(rconf, pepper, clock):
    card = make_card("suica")
    dev = FakeNfcDevice(card.answer)
    plugged = {"yes": True}

    def opener(path):
        if not plugged["yes"]:
            raise OSError(errno.ENODEV, "no nfcpy-supported reader found on usb")
        return frontend_with(dev)

    r = NfcpyReader(rconf(backend="nfcpy", cooldown_ms=0), pepper.token, opener=opener, clock=clock)
    sup = ReaderSupervisor(r)

    def drive(seconds):
        end = clock.now + seconds
        while clock.now < end:
            clock.advance(max(sup.step(), 0.001))
        return sup.events.drain()

    assert sum(isinstance(e, CardPresented) for e in drive(0.5)) == 1
    dev.unplugged, plugged["yes"] = True, False
    events = drive(3.0)
    assert [type(e) for e in events] == [CardRemoved, ReaderDisconnected]
    assert events[-1].fault == "lost" and "ENODEV" in events[-1].reason
    assert r.clf is None and sup.state is State.RECONNECTING
    dev.unplugged, plugged["yes"] = False, True
    events = drive(6.0)
    assert isinstance(events[0], ReaderConnected)
    assert sum(isinstance(e, CardPresented) for e in events) == 1  # cooldown 0: the card still there is a new tap


# --- opening through nfcpy's real device search, faked at libusb -----------------

class FakeUSB:
    """nfc.clf.transport.USB at the libusb seam: one RC-S380 on bus 1, device 4."""

    error = errno.EBUSY

    @classmethod
    def find(cls, path):
        if not path.startswith("usb"):
            return None
        return [(0x054C, 0x06C3, 1, 4)]

    def __init__(self, bus, dev):
        raise OSError(self.error, "fake libusb")


def fake_os(access: bool):
    import os

    return types.SimpleNamespace(access=lambda p, m: access, R_OK=os.R_OK, W_OK=os.W_OK, strerror=os.strerror)


@pytest.mark.parametrize("access,err,fault,fix_part", [
    (False, errno.EACCES, "permission", 'ATTRS{idProduct}=="06c3"'),
    (True, errno.EBUSY, "busy", "blacklist port100"),
])
def test_open_reports_eacces_and_ebusy(monkeypatch, rconf, pepper, clock, access, err, fault, fix_part):
    monkeypatch.setattr(nfc.clf.transport, "USB", FakeUSB)
    monkeypatch.setattr(nfc.clf.device, "os", fake_os(access))
    monkeypatch.setattr(nfc.clf.device.sys, "platform", "linux")
    with pytest.raises(OSError) as ei:
        open_frontend("usb")  # a partial path: nfcpy alone would just say "not found"
    assert ei.value.errno == err
    r = NfcpyReader(rconf(backend="nfcpy", device="usb:054c:06c3"), pepper.token, clock=clock)
    sup = ReaderSupervisor(r)
    sup.step()
    (e,) = sup.events.drain()
    assert e.fault == fault and fix_part in e.fix
    assert sup.state is State.FAULT


def test_eacces_on_a_partial_path_prints_the_rules_for_every_reader_nfcpy_may_open(monkeypatch, rconf, pepper, clock):
    """An ACR122U (docs: pcsc or nfcpy) under nfcpy on device "usb": nfcpy does not say which reader refused."""
    class Acr122(FakeUSB):
        error = errno.EACCES

        @classmethod
        def find(cls, path):
            return [(0x072F, 0x2200, 1, 4)] if path.startswith("usb") else None

    monkeypatch.setattr(nfc.clf.transport, "USB", Acr122)
    monkeypatch.setattr(nfc.clf.device, "os", fake_os(False))
    monkeypatch.setattr(nfc.clf.device.sys, "platform", "linux")
    sup = ReaderSupervisor(NfcpyReader(rconf(backend="nfcpy", device="usb"), pepper.token, clock=clock))
    sup.step()
    (e,) = sup.events.drain()
    assert e.fault == "permission"
    assert 'ATTRS{idVendor}=="072f", ATTRS{idProduct}=="2200"' in e.fix
    shipped = SHIPPED_RULES.read_text().splitlines()
    assert [line for line in shipped if line.startswith("SUBSYSTEM") and line not in e.fix] == []


def test_the_shipped_udev_rules_are_the_readers_nfcpy_may_open():
    """One list in code (devices.NFCPY_IDS -> fixes.udev_rules) and the shipped file say the same."""
    shipped = SHIPPED_RULES.read_text()
    header, _, rules = shipped.partition("\n\n#")
    assert "SUBSYSTEM" not in header
    assert "#" + rules == udev_rules() + "\n"
    # and they are exactly the readers of our map that nfcpy 1.0.4 has a driver for
    assert set(NFCPY_IDS) == set(DEVICE_MAP) & set(nfc.clf.device.usb_device_map)


def test_open_with_nothing_plugged_is_enodev(monkeypatch):
    class NoUSB(FakeUSB):
        @classmethod
        def find(cls, path):
            return []

    monkeypatch.setattr(nfc.clf.transport, "USB", NoUSB)
    with pytest.raises(OSError) as ei:
        open_frontend("usb")
    assert ei.value.errno == errno.ENODEV
