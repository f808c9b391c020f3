"""Every simulator scenario from the issue, through the shared tap logic, on a fake clock."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from kiosk.reader import transit
from kiosk.reader.events import CardPresented, CardRemoved, ReaderConnected, ReaderDisconnected, ReadError
from kiosk.reader.sim import KEYS, SimReader, make_card, parse_script, send
from kiosk.reader.supervisor import ReaderSupervisor, State


@pytest.fixture
def sim(rconf, pepper, clock):
    def make(**kw) -> SimReader:
        r = SimReader(rconf(**kw), pepper.token, clock=clock, sleep=clock.sleep)
        r.open()
        return r

    return make


def run(reader: SimReader, clock, seconds: float, interval: float = 0.05):
    """Poll like the supervisor would, for ``seconds`` of fake time; return the events."""
    for _ in range(round(seconds / interval)):
        reader.poll()
        clock.advance(interval)
    return reader.events.drain()


def taps(events):
    return [e.record for e in events if isinstance(e, CardPresented)]


@pytest.mark.parametrize("family", transit.FAMILIES)
def test_every_family_is_told_apart(sim, clock, family):
    r = sim()
    card = r.tap(f"{family} balance=1500")
    (rec,) = taps(run(r, clock, 1.0))
    assert rec.family == family
    assert rec.balance_yen == 1500
    assert rec.system_code == 0x0003
    assert len(rec.history) == 3 and rec.last_transaction == rec.history[0].transaction_number
    assert rec.token.hex == r.tokenizer(card.idm).hex


def test_family_detection_off_falls_back(sim, clock):
    r = sim(detect_family=False)
    r.tap("pasmo")
    r.tap("icoca")  # collides with pasmo: both on the reader together
    events = run(r, clock, 1.0)
    assert any(isinstance(e, ReadError) and e.kind == "collision" for e in events)
    r.tap("icoca")
    (rec,) = taps(run(r, clock, 1.0))
    assert rec.family == "icoca"  # card type 3 without Request Service
    r.tap("pasmo")
    assert taps(run(r, clock, 1.0))[0].family == "transit"


def test_unknown_ic_code_and_generic_transit(sim, clock):
    r = sim()
    r.tap("unknown-ic")
    (rec,) = taps(run(r, clock, 1.0))
    assert rec.family == "transit" and rec.balance_yen is not None


def test_express_mode_phone_answers_the_0003_poll_and_no_wallet_pops_up(sim, clock):
    r = sim(extra_system_codes=[0xFE00])
    phone = r.tap("iphone")
    (rec,) = taps(run(r, clock, 1.0))
    assert rec.mobile and rec.family == "suica" and rec.balance_yen == phone.balance_yen
    assert phone.wallet_wakeups == 0
    assert set(phone.polls_seen) == {0x0003}
    assert len(rec.history) == 3  # read one block per command (phones take one)


def test_extra_system_code_finds_non_transit_cards_as_unknown(sim, clock):
    for preset in ("edy", "waon", "nanaco"):  # issue #15 item 3: seen by default, so they get an answer
        r = sim()
        r.tap(preset)
        (rec,) = taps(run(r, clock, 1.0))
        assert rec.family == "unknown" and rec.system_code == 0xFE00 and rec.balance_yen is None
    r2 = sim(extra_system_codes=[])
    r2.tap("edy")
    assert taps(run(r2, clock, 1.0)) == []  # turned off: invisible


def test_extra_system_code_is_polled_rarely_while_idle_and_held_cards_stay_put(sim, clock):
    """0xFE00 goes out on one idle cycle in four (a phone that hears it first shows its wallet), and a
    held WAON card is polled every cycle so it is not counted as removed between probes."""
    r = sim()
    listener = r.place("transit systems=8008")  # a FeliCa card of a system we never poll: hears every poll
    run(r, clock, 2.0)  # 40 idle cycles
    assert listener.polls_seen.count(0x0003) == 40 and listener.polls_seen.count(0xFE00) == 10
    r.remove("all")
    waon = r.place("waon")
    events = run(r, clock, 2.0)
    (rec,) = taps(events)
    assert rec.family == "unknown"
    assert not [e for e in events if isinstance(e, CardRemoved)]  # held for 2 s: one tap, never "removed"
    assert waon.polls_seen.count(0xFE00) >= 37  # every cycle once it is held


def test_history_blocks_setting(sim, clock):
    r = sim(history_blocks=12)
    r.tap("suica history=12")
    (rec,) = taps(run(r, clock, 1.0))
    assert len(rec.history) == 12
    assert [h.transaction_number for h in rec.history] == sorted(
        (h.transaction_number for h in rec.history), reverse=True)
    r0 = sim(history_blocks=0)
    r0.tap("suica")
    (rec0,) = taps(run(r0, clock, 1.0))
    assert rec0.history == () and rec0.balance_yen is not None


def test_error_status_is_a_read_error_not_a_tap(sim, clock):
    r = sim()
    r.tap("suica error=01A6")
    events = run(r, clock, 1.0)
    assert taps(events) == []
    (err,) = [e for e in events if isinstance(e, ReadError)]
    assert err.kind == "status" and err.status == (0x01, 0xA6)
    assert any(isinstance(e, CardRemoved) for e in events)


def test_slow_card_within_its_timeout_taps_and_reports_read_time(sim, clock):
    r = sim()
    r.tap("slow", hold_s=1.0)
    (rec,) = taps(run(r, clock, 1.5))
    assert rec.read_ms >= 2 * 4.0  # two commands at 4 ms each on the fake clock


def test_card_slower_than_its_pmm_timeout_is_lost(sim, clock):
    r = sim()
    r.tap("suica slow=0.5", hold_s=2.0)
    events = run(r, clock, 3.0)
    assert taps(events) == []
    assert [e.kind for e in events if isinstance(e, ReadError)] == ["card-lost"]


def test_card_pulled_away_mid_read_is_an_error_and_a_retap_counts(sim, clock):
    r = sim(cooldown_ms=3000)
    card = r.tap("suica drop=0", hold_s=0.2)
    events = run(r, clock, 1.0)
    assert taps(events) == [] and [e.kind for e in events if isinstance(e, ReadError)] == ["card-lost"]
    card.drop_after = None
    r.tap(card)  # same card straight back: a fresh attempt, not swallowed by the cooldown
    (rec,) = taps(run(r, clock, 1.0))
    assert rec.token.hex == r.tokenizer(card.idm).hex


def test_removal_during_a_slow_read(sim, clock):
    r = sim()
    r.tap("suica slow=0.01", hold_s=0.005)  # taken away while the card is still answering
    events = run(r, clock, 1.0)
    assert taps(events) == [] and [e.kind for e in events if isinstance(e, ReadError)] == ["card-lost"]


def test_double_tap_within_cooldown_is_one_tap(sim, clock):
    r = sim(cooldown_ms=3000)
    r.do("double-tap suica gap=0.5")
    events = run(r, clock, 3.0)
    assert len(taps(events)) == 1
    assert sum(isinstance(e, CardRemoved) for e in events) == 1


def test_retap_after_cooldown_is_a_second_tap(sim, clock):
    r = sim(cooldown_ms=1000)
    r.do("double-tap suica gap=1.5")
    assert len(taps(run(r, clock, 3.0))) == 2


def test_held_card_is_one_tap_and_removed_after_misses(sim, clock):
    r = sim(removal_misses=4)
    r.place("suica")
    events = run(r, clock, 5.0)
    assert len(taps(events)) == 1 and not any(isinstance(e, CardRemoved) for e in events)
    r.remove()
    for _i in range(3):
        r.poll()
    assert r.events.drain() == []
    r.poll()
    assert [type(e) for e in r.events.drain()] == [CardRemoved]


def test_two_cards_at_once(sim, clock):
    r = sim()
    r.place("suica")
    r.place("pasmo")
    events = run(r, clock, 1.0)
    assert taps(events) == []
    assert [e.kind for e in events if isinstance(e, ReadError)] == ["collision"]  # reported once
    r.remove("pasmo")
    (rec,) = taps(run(r, clock, 0.5))
    assert rec.family == "suica"


def test_second_card_joining_a_held_one_does_not_retap_it(sim, clock):
    r = sim()
    r.place("suica")
    assert len(taps(run(r, clock, 0.5))) == 1
    r.place("pasmo")
    run(r, clock, 0.5)
    r.remove("pasmo")
    assert taps(run(r, clock, 0.5)) == []


def test_swap_cards_without_gap(sim, clock):
    r = sim()
    r.place("suica")
    run(r, clock, 0.3)
    r.remove()
    r.place("pasmo")
    events = run(r, clock, 0.3)
    assert [type(e) for e in events] == [CardRemoved, CardPresented]


def _supervised(rconf, pepper, clock, **kw):
    r = SimReader(rconf(**kw), pepper.token, clock=clock, sleep=clock.sleep)
    return r, ReaderSupervisor(r)


def drive(sup, clock, seconds):
    end = clock.now + seconds
    while clock.now < end:
        clock.advance(max(sup.step(), 0.001))
    return sup.events.drain()


def test_unplug_and_replug(rconf, pepper, clock):
    r, sup = _supervised(rconf, pepper, clock)
    assert isinstance(drive(sup, clock, 0.1)[0], ReaderConnected)
    r.unplug()
    events = drive(sup, clock, 3.0)
    assert [type(e) for e in events] == [ReaderDisconnected]  # one event, however many retries
    assert events[0].fault == "lost" and sup.state is State.RECONNECTING
    r.replug()
    events = drive(sup, clock, 6.0)
    assert [type(e) for e in events] == [ReaderConnected] and sup.state is State.CONNECTED
    r.tap("suica")
    assert len(taps(drive(sup, clock, 1.0))) == 1


@pytest.mark.parametrize("fault,kind,fix_part", [
    ("eacces", "permission", 'ATTRS{idVendor}=="054c"'),
    ("ebusy", "busy", "blacklist port100"),
    ("pcscd", "no-service", "systemctl enable --now pcscd"),
])
def test_setup_faults_carry_the_fix(rconf, pepper, clock, fault, kind, fix_part):
    r, sup = _supervised(rconf, pepper, clock)
    r.set_fault(fault)
    events = drive(sup, clock, 2.0)
    assert len(events) == 1 and isinstance(events[0], ReaderDisconnected)
    assert events[0].fault == kind and fix_part in events[0].fix
    assert sup.state is State.FAULT
    r.set_fault(None)  # staff applied the fix
    assert [type(e) for e in drive(sup, clock, 6.0)] == [ReaderConnected]


def test_pcscd_stopping_takes_down_an_open_reader(rconf, pepper, clock):
    r, sup = _supervised(rconf, pepper, clock)
    drive(sup, clock, 0.1)
    r.do("fault pcscd")
    events = drive(sup, clock, 2.0)
    kinds = [e.fault for e in events if isinstance(e, ReaderDisconnected)]
    assert kinds == ["lost", "no-service"]


def test_script_drives_the_reader(rconf, pepper, clock):
    r, sup = _supervised(rconf, pepper, clock, cooldown_ms=0)
    n = r.load_script("""
        # seconds action
        0.2 tap suica
        1.0 tap pasmo hold=0.5
        2.0 unplug
        2.5 replug
        4.0 tap icoca
    """)
    assert n == 5
    events = drive(sup, clock, 7.0)
    assert [t.family for t in taps(events)] == ["suica", "pasmo", "icoca"]
    assert sum(isinstance(e, ReaderDisconnected) for e in events) == 1
    assert sum(isinstance(e, ReaderConnected) for e in events) == 2
    assert r.pending_actions == 0


def test_bad_script_lines_are_named():
    with pytest.raises(ValueError, match="line 2"):
        parse_script("0.1 tap suica\nsoon tap pasmo\n")


def test_keys_1_to_5(sim, clock):
    r = sim(cooldown_ms=0)
    got = []
    for key in "12345":
        r.press(key)
        got.append(run(r, clock, 1.0))
    fams = [[t.family for t in taps(ev)] for ev in got]
    assert fams[:4] == [["suica"], ["pasmo"], ["icoca"], ["suica"]]
    assert taps(got[3])[0].mobile
    assert fams[4] == [] and any(isinstance(e, ReadError) and e.kind == "card-lost" for e in got[4])
    with pytest.raises(ValueError):
        r.press("9")
    assert set(KEYS) == set("12345")


def test_card_specs():
    c = make_card("suica balance=500 idm=0123456789abcdef error=01A6 slow=0.1 drop=2 history=5")
    assert (c.balance_yen, c.idm.hex(), c.error_status, c.slow_s, c.drop_after, len(c.history)) == (
        500, "0123456789abcdef", (1, 0xA6), 0.1, 2, 5)
    assert "0123456789abcdef" not in repr(c).lower()
    for bad in ("nosuchcard", "suica balance=99999", "suica idm=12", "suica wat=1", "suica loose"):
        with pytest.raises(ValueError):
            make_card(bad)


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_socket_taps_from_outside(rconf, pepper, tmp_path, kind):
    r = SimReader(rconf(), pepper.token)
    address = r.serve("tcp:127.0.0.1:0" if kind == "tcp" else f"unix:{tmp_path}/sim.sock")
    sup = ReaderSupervisor(r, poll_interval_s=0.01).start()
    try:
        replies = send(address, "status", "tap nimoca balance=777", "bogus", "fault nope")
        assert replies[0].startswith("ok plugged=1")
        assert replies[1] == "ok tapped"
        assert replies[2].startswith("err unknown action")
        assert replies[3].startswith("err unknown fault")
        deadline = time.monotonic() + 30  # liveness only: the supervisor thread's next poll, late on a busy host
        rec = None
        while rec is None and time.monotonic() < deadline:
            ev = sup.get_event(timeout=0.2)
            if isinstance(ev, CardPresented):
                rec = ev.record
        assert rec is not None and rec.family == "nimoca" and rec.balance_yen == 777
    finally:
        sup.stop()
    assert r.control_address == ""


def test_thread_safety_of_actions_while_polling(rconf, pepper):
    r = SimReader(rconf(cooldown_ms=0), pepper.token)
    sup = ReaderSupervisor(r, poll_interval_s=0.002).start()
    try:
        def spam():
            for _i in range(100):
                r.do("tap suica hold=0.001")
                r.do("remove")
        ts = [threading.Thread(target=spam) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        time.sleep(0.05)
    finally:
        sup.stop()
    assert sup.state is State.STOPPED
    assert not any(isinstance(e, ReaderDisconnected) for e in sup.events.drain())


def test_open_errors_are_oserrors_with_errno(rconf, pepper):
    r = SimReader(rconf(), pepper.token)
    r.set_fault("eacces")
    with pytest.raises(OSError) as ei:
        r.open()
    assert ei.value.errno == errno.EACCES
