"""PC/SC backend through fake connections that answer APDUs as the readers do."""

from __future__ import annotations

import builtins
import errno

import pytest
from reader_fakes import FakeAcsConnection, FakePcscReader, FakePresence, FakeRcs300Connection

from kiosk.reader import pcsc_backend as pb
from kiosk.reader.base import ReaderFault
from kiosk.reader.events import CardPresented, ReaderConnected, ReaderDisconnected, ReadError
from kiosk.reader.sim import make_card
from kiosk.reader.supervisor import ReaderSupervisor, State


def poll_for(reader, clock, seconds):
    for _ in range(round(seconds / 0.05)):
        reader.poll()
        clock.advance(0.05)
    return reader.events.drain()


def rcs300(rconf, pepper, clock, conn, **kw):
    name = "SONY FeliCa RC-S300/P [RC-S300/P] (0123456) 00 00"
    return pb.PcscReader(rconf(backend="pcsc", **kw), pepper.token,
                         list_readers=lambda: [FakePcscReader(name, lambda: conn)], clock=clock)


def test_rcs300_transparent_session_reads_a_card(rconf, pepper, clock):
    card = make_card("pasmo balance=2345")
    conn = FakeRcs300Connection(card=card.answer)
    r = rcs300(rconf, pepper, clock, conn)
    assert "rcs300" in r.open()
    assert conn.mode == pb.SCARD_SHARE_DIRECT
    assert conn.apdus[:2] == [pb.RCS300_START_SESSION, pb.RCS300_SWITCH_FELICA]
    (tap,) = [e.record for e in poll_for(r, clock, 0.3) if isinstance(e, CardPresented)]
    assert (tap.family, tap.balance_yen) == ("pasmo", 2345)
    assert tap.token == pepper.token(card.idm)
    assert card.polls_seen and set(card.polls_seen) == {0x0003}
    # the PMm-derived read timeout travelled in the 5F46 timer (microseconds), with a 20 ms floor
    assert max(conn.timers_us) >= 20000
    r.close()
    assert conn.apdus[-1] == pb.RCS300_END_SESSION


def test_rcs300_without_card_is_no_tap(rconf, pepper, clock):
    conn = FakeRcs300Connection(card=None)
    r = rcs300(rconf, pepper, clock, conn)
    r.open()
    assert poll_for(r, clock, 0.2) == []


def test_rcs300_status_error_and_pull_away(rconf, pepper, clock):
    card = make_card("suica error=01A6")
    r = rcs300(rconf, pepper, clock, FakeRcs300Connection(card=card.answer))
    r.open()
    assert [e.status for e in poll_for(r, clock, 0.2) if isinstance(e, ReadError)] == [(0x01, 0xA6)]
    pulled = make_card("pulled")
    r2 = rcs300(rconf, pepper, clock, FakeRcs300Connection(card=pulled.answer))
    r2.open()
    assert [e.kind for e in poll_for(r2, clock, 0.2) if isinstance(e, ReadError)] == ["card-lost"]


def test_libccid_refusing_the_escape_is_a_setup_fault_with_the_plist_fix(rconf, pepper, clock):
    r = rcs300(rconf, pepper, clock, FakeRcs300Connection(escape_allowed=False))
    sup = ReaderSupervisor(r)
    sup.step()
    (e,) = sup.events.drain()
    assert isinstance(e, ReaderDisconnected) and e.fault == "setup"
    assert "ifdDriverOptions" in e.fix and "systemctl restart pcscd" in e.fix
    assert sup.state is State.FAULT


def test_reader_unplugged_mid_session_reconnects(rconf, pepper, clock):
    conn = FakeRcs300Connection(card=None)
    r = rcs300(rconf, pepper, clock, conn)
    sup = ReaderSupervisor(r)
    sup.step()
    conn.gone = True
    assert sup.step() == 0.5
    (e1, e2) = sup.events.drain()
    assert isinstance(e1, ReaderConnected) and isinstance(e2, ReaderDisconnected) and e2.fault == "lost"
    conn.gone = False
    assert sup.step() == 0.0 and sup.state is State.CONNECTED


@pytest.mark.parametrize("acr122", [False, True])
def test_acs_readers_direct_transmit(rconf, pepper, clock, acr122):
    card = make_card("toica balance=880")
    conn = FakeAcsConnection(card=card.answer, uid=card.idm, acr122=acr122)
    name = "ACS ACR122U PICC Interface 00 00" if acr122 else "ACS ACR1252 1S CL Reader [ACR1252 Reader PICC] 00 00"
    presence = FakePresence()
    r = pb.PcscReader(rconf(backend="pcsc"), pepper.token,
                      list_readers=lambda: [FakePcscReader("Some Other Reader 00 00", lambda: None),
                                            FakePcscReader(name, lambda: conn)],
                      presence_factory=lambda: presence, clock=clock)
    assert r.open().startswith(name)
    assert r.kind == ("acr122" if acr122 else "acr1252")
    assert poll_for(r, clock, 0.2) == []  # no card event yet: nothing is sent to the reader
    assert conn.apdus == []
    presence.readers.add(name)
    (tap,) = [e.record for e in poll_for(r, clock, 0.3) if isinstance(e, CardPresented)]
    assert (tap.family, tap.balance_yen) == ("toica", 880)
    assert conn.apdus[0] == pb.GET_DATA_UID
    wrapped = conn.apdus[1]
    poll_frame = [6, 0, 0, 3, 1, 0]
    assert wrapped == ([0xFF, 0, 0, 0, 8, 0xD4, 0x42, *poll_frame] if acr122 else [0xFF, 0, 0, 0, 6, *poll_frame])
    presence.readers.clear()
    r.poll()
    assert not conn.connected
    r.close()
    assert presence.closed


def test_acs_reader_with_a_mifare_card_reports_unsupported_once(rconf, pepper, clock):
    conn = FakeAcsConnection(card=lambda f: None, uid=bytes.fromhex("04A1B2C3"))
    presence = FakePresence()
    name = "ACS ACR1252 1S CL Reader [ACR1252 Reader PICC] 00 00"
    r = pb.PcscReader(rconf(backend="pcsc"), pepper.token, list_readers=lambda: [FakePcscReader(name, lambda: conn)],
                      presence_factory=lambda: presence, clock=clock)
    r.open()
    presence.readers.add(name)
    events = poll_for(r, clock, 0.5)
    assert [(type(e), e.kind) for e in events] == [(ReadError, "unsupported")]


def test_reader_chosen_by_name(rconf, pepper, clock):
    r = pb.PcscReader(rconf(backend="pcsc", device="ACR1252"), pepper.token,
                      list_readers=lambda: [FakePcscReader("SONY FeliCa RC-S300/P 00 00", lambda: None)],
                      presence_factory=FakePresence, clock=clock)
    with pytest.raises(OSError) as ei:
        r.open()
    assert ei.value.errno == errno.ENODEV and "ACR1252" in str(ei.value)


def test_pcscd_not_running(rconf, pepper, clock):
    def no_service():
        raise ReaderFault("no-service", "pcscd is not running", "sudo systemctl enable --now pcscd")

    r = pb.PcscReader(rconf(backend="pcsc"), pepper.token, list_readers=no_service, clock=clock)
    sup = ReaderSupervisor(r)
    sup.step()
    (e,) = sup.events.drain()
    assert e.fault == "no-service" and e.fix == "sudo systemctl enable --now pcscd"


def test_pyscard_readers_maps_setup_failures(monkeypatch):
    real_import = builtins.__import__

    def no_pyscard(name, *a, **kw):
        if name.startswith("smartcard"):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pyscard)
    with pytest.raises(ReaderFault) as ei:
        pb.pyscard_readers()
    assert ei.value.fault == "missing" and "pyscard" in ei.value.fix
    monkeypatch.setattr(builtins, "__import__", real_import)

    import sys
    import types

    class EstablishContextException(Exception):
        hresult = -2146435043  # 0x8010001D as pyscard reports it (signed)

    def readers():
        raise EstablishContextException()

    fake = types.ModuleType("smartcard.System")
    fake.readers = readers
    monkeypatch.setitem(sys.modules, "smartcard", types.ModuleType("smartcard"))
    monkeypatch.setitem(sys.modules, "smartcard.System", fake)
    with pytest.raises(ReaderFault) as ei:
        pb.pyscard_readers()
    assert ei.value.fault == "no-service" and "systemctl enable --now pcscd" in ei.value.fix


def test_tlv_parser_fuzz_only_frame_errors():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from kiosk.reader import felica

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=60))
    def check(data):
        try:
            pb._parse_tlv(data)
        except felica.FrameError:
            pass

    check()
