from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.reader import felica

IDM = bytes.fromhex("0112 03A1 B2C3 D4E5")
PMM = bytes.fromhex("100B 4B42 8485 D0FF")


def test_polling_command_is_transit_with_request_code_1():
    assert felica.polling_command(0x0003) == bytes.fromhex("06 00 0003 01 00")
    assert felica.sensf_req(0xFE00, 1) == bytes.fromhex("00 FE00 01 00")


@pytest.mark.parametrize("sc", [0xFFFF, 0x00FF, 0xFF00, 0x12FF])
def test_wildcard_polls_are_refused(sc):
    with pytest.raises(ValueError, match="wildcard"):
        felica.polling_command(sc)


def test_parse_polling_response_with_and_without_system_code():
    frame = bytes([20, 0x01]) + IDM + PMM + b"\x00\x03"
    r = felica.parse_polling_response(frame)
    assert (r.idm, r.pmm, r.system_code) == (IDM, PMM, 0x0003)
    r = felica.parse_polling_response(bytes([18, 0x01]) + IDM + PMM)
    assert r.system_code is None
    assert IDM.hex() not in repr(r).lower() and IDM.hex() not in str(r).lower()


def test_read_command_bytes_match_the_spec_layout():
    cmd = felica.read_command(IDM, [0x008B, 0x090F], [(0, 0), (1, 0), (1, 1)])
    assert cmd == bytes.fromhex("16 06") + IDM + bytes.fromhex("02 8B00 0F09 03 8000 8100 8101")
    # block numbers above 255 use the 3-byte element
    assert felica.block_list_element(1, 0x0123) == bytes.fromhex("01 2301")


def test_read_command_refuses_keyed_services():
    with pytest.raises(ValueError, match="needs a key"):
        felica.read_command(IDM, [0x004A], [(0, 0)])


def test_parse_read_response_ok_and_status_error():
    data = bytes(range(32))
    ok = bytes([13 + 32, 0x07]) + IDM + b"\x00\x00\x02" + data
    assert felica.parse_read_response(ok, IDM, 2) == [data[:16], data[16:]]
    err = bytes([12, 0x07]) + IDM + b"\x01\xA6"
    with pytest.raises(felica.StatusError) as ei:
        felica.parse_read_response(err, IDM, 2)
    assert (ei.value.sf1, ei.value.sf2) == (0x01, 0xA6)
    assert "illegal service code" in str(ei.value)


def test_answer_from_another_card_is_a_frame_error():
    other = bytes(8)
    ok = bytes([13 + 16, 0x07]) + other + b"\x00\x00\x01" + bytes(16)
    with pytest.raises(felica.FrameError) as ei:
        felica.parse_read_response(ok, IDM, 1)
    assert IDM.hex() not in str(ei.value).lower()


def test_request_service_round_trip():
    cmd = felica.request_service_command(IDM, [0x1808, 0x090F])
    assert cmd == bytes.fromhex("0F 02") + IDM + bytes.fromhex("02 0818 0F09")
    rsp = bytes([15, 0x03]) + IDM + bytes.fromhex("02 0000 FFFF")
    assert felica.parse_request_service_response(rsp, IDM, 2) == [0, 0xFFFF]


def test_pmm_timeouts_follow_the_formula():
    # read byte 0x85: A=5, B=0, E=2 -> T0 * ((0+1)*n + 6) * 16
    assert felica.max_response_time(PMM, "read", 1) == pytest.approx(felica.T0_SECONDS * 7 * 16)
    assert felica.max_response_time(PMM, "read", 4) == pytest.approx(felica.T0_SECONDS * 10 * 16)
    # request service byte 0x4B: A=3, B=1, E=1
    assert felica.max_response_time(PMM, "request_service", 2) == pytest.approx(felica.T0_SECONDS * (2 * 2 + 4) * 4)
    assert felica.T0_SECONDS == pytest.approx(302e-6, rel=0.01)


def test_mobile_ic_codes():
    assert felica.is_mobile(bytes.fromhex("0114000000000000"))
    assert not felica.is_mobile(PMM)


# --- fuzzing: only documented errors --------------------------------------------

frames = st.binary(max_size=80)


@settings(max_examples=400, deadline=None)
@given(frames, st.integers(1, 6))
def test_fuzz_read_response(frame, n):
    try:
        blocks = felica.parse_read_response(frame, IDM, n)
    except felica.FelicaError:
        return
    assert len(blocks) == n and all(len(b) == 16 for b in blocks)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=120))
def test_fuzz_read_with_random_status_flags(n, sf1, sf2, data):
    frame = bytes([0x07]) + IDM + bytes([sf1, sf2]) + data
    frame = bytes([(len(frame) + 1) & 0xFF]) + frame
    try:
        felica.parse_read_response(frame, IDM, n)
    except felica.StatusError as exc:
        assert (sf1, sf2) != (0, 0) and (exc.sf1, exc.sf2) == (sf1, sf2)
    except felica.FrameError:
        pass
    else:
        assert (sf1, sf2) == (0, 0)


@settings(max_examples=300, deadline=None)
@given(frames)
def test_fuzz_polling_response(frame):
    try:
        r = felica.parse_polling_response(frame)
    except felica.FelicaError:
        return
    assert len(r.idm) == 8 and len(r.pmm) == 8


@settings(max_examples=300, deadline=None)
@given(frames, st.integers(1, 32))
def test_fuzz_request_service_response(frame, n):
    try:
        kvs = felica.parse_request_service_response(frame, IDM, n)
    except felica.FelicaError:
        return
    assert len(kvs) == n


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=8), st.sampled_from(list(felica._PMM_BYTE)), st.integers(1, 15))
def test_fuzz_pmm_timeout_is_positive_and_bounded(pmm, kind, n):
    t = felica.max_response_time(pmm, kind, n)
    assert 0 < t < felica.T0_SECONDS * (8 * 15 + 8) * 4**3 + 1e-9
