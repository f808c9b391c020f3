"""Driving a real :class:`~kiosk.app.runtime.App` in tests: wait for a presented screen, tap a card on its simulated
reader, read its ledger."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kiosk.app.demo import demo_template
from kiosk.app.runtime import App
from kiosk.config import validate_config
from kiosk.ledger.store import iter_entries, read_only_engine
from kiosk.reader import CardPresented, ReaderEvent, ReadError
from kiosk.reader.sim import KEYS, SimCard, make_card


def run_until(app: App, pred, seconds: float = 10.0) -> Any:  # noqa: ANN001
    """Run the app's main loop until a flipped frame satisfies ``pred``; fail naming the screen it is on."""
    app.run(until=lambda a: a.presented is not None and pred(a.presented), seconds=seconds)
    p = app.presented
    assert p is not None and pred(p), f"still on {p.screen if p else None}"
    return p


@contextmanager
def card_on_reader(app: App, card: str | SimCard | None = None, *, brush: bool = False) -> Iterator[None]:
    """A tap on the app's simulated reader that lasts until the test has seen it taken: ``card`` (a simulated card
    or its spec: ``"suica"`` is key 1's card, ``"pasmo"`` key 2's ..., or a :func:`~kiosk.app.demo.card_spec`) is put
    on the reader and stays there until the block ends, then it is taken away. Inside the block, run the app until
    the tap has done what it does (a screen, a menu page). With no ``card`` the block puts it there itself with a key
    (``app.press``, or keys 1-5 through the app's event path), and each card a key puts there stays the same way.

    Why: a key's tap lasts 0.3 s (:data:`kiosk.reader.sim.DEFAULT_HOLD_S`), a short ``sim.tap`` hold even less, and
    a reader thread starved on a loaded host (a 2-core CI machine) can miss the whole of it; the test then waited
    for ever. Each block starts once the reader has seen the last card go, so a card tapped again is a new tap.

    ``brush``: the card is taken away the moment the reader has read it, by the reader's own thread (a card that
    only brushed the reader), rather than at the end of the block.
    """
    sim = app.sim
    assert sim is not None, f"reader.backend is {app.cfg.reader.backend}, not the simulated reader"
    if sim.debouncer.current is not None:  # the last card is still there as far as the reader knows
        app.run(until=lambda a: sim.debouncer.current is None, seconds=10)
        assert sim.debouncer.current is None, "the reader has not seen the last card go"
    placed: list[SimCard] = []
    lifting = [brush]
    real_press = sim.press

    def lift(ev: ReaderEvent) -> None:  # on the reader thread, right after the read (the app's listener came first)
        if lifting[0] and isinstance(ev, (CardPresented, ReadError)):
            lifting[0] = False
            for c in placed:
                sim.remove(c.name)

    def press_and_hold(key: str) -> str:  # SimReader.press, but the key's card stays
        action = KEYS.get(key, "")
        if not action.startswith("tap "):
            return real_press(key)  # not a key with a card: as ever (its ValueError)
        placed.append(c := make_card(action.removeprefix("tap ")))
        sim.place(c)
        return "placed"

    if brush:
        sim.events.subscribe(lift)  # (no unsubscribe: it stays idle once the card is lifted)
    if card is None:
        sim.press = press_and_hold
    else:
        placed.append(c := make_card(card) if isinstance(card, str) else card)  # noted first: a read may come at once
        sim.place(c)
    try:
        yield
    finally:
        if card is None:
            del sim.press  # SimReader.press again
        lifting[0] = False
        for c in placed:
            sim.remove(c.name)


def next_read(app: App) -> threading.Event:
    """Set, on the app's simulated reader's thread right after the app has taken it in, by the reader's next read
    (a card read or a read error). Call it before the card goes on the reader (:func:`card_on_reader`), then wait
    on it instead of running the app: the main loop stands still while a starved reader thread (a loaded 2-core
    CI host) is slow to read, so the screen and the movie the tap is taken on are the ones the test saw last."""
    sim = app.sim
    assert sim is not None, f"reader.backend is {app.cfg.reader.backend}, not the simulated reader"
    read = threading.Event()

    def note(ev: ReaderEvent) -> None:  # after the app's own listener (subscribed when the app started)
        if isinstance(ev, (CardPresented, ReadError)):
            read.set()

    sim.events.subscribe(note)  # (no unsubscribe: once set it changes nothing)
    return read


def square_app(tmp_path: Path, fake: Any, size: tuple[int, int] = (320, 180), **app_kw: Any) -> App:
    """A demo kiosk (headless, simulated reader) paying through the Square adapter against ``fake``
    (tests/payment/fake_square.py), its token file in place; not started."""
    from tests.payment.fake_square import DEVICE, LOCATION, TOKEN

    data = demo_template()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    tok = data_dir / "square-token"
    tok.write_text(TOKEN)
    tok.chmod(0o600)
    data["kiosk"]["data_dir"] = str(data_dir)
    data["player"] = {"display": "headless", "width": size[0], "height": size[1]}
    data["reader"] = {"backend": "sim", "poll_interval_ms": 10, "cooldown_ms": 0}
    data["payment"] = {"terminal": "square", "square": {
        "base_url": fake.url, "location_id": LOCATION, "device_id": DEVICE, "deadline_s": 60,
        "answer_grace_s": 5, "poll_interval_ms": 100}}
    return App(validate_config(data, "<test>", data_dir), **app_kw)


def entries(app: App) -> list[Any]:
    """Every entry of the app's ledger, read through a connection of its own."""
    eng = read_only_engine(app.cfg.ledger_path)
    try:
        return list(iter_entries(eng))
    finally:
        eng.dispose()


def headless_cfg(data_dir: Path, size: tuple[int, int], media: Path | None = None,
                 flow: dict[str, Any] | None = None) -> Any:
    """The demo config on SDL's headless display at ``size`` with the simulated reader polled fast; with
    ``media`` (a folder of demo clips), those clips copied in and played as the demo playlist."""
    from kiosk.player import demo_playlist
    from kiosk.player.media import MediaCache

    data = demo_template()
    data["kiosk"]["data_dir"] = str(data_dir)
    data["player"] = {"display": "headless", "width": size[0], "height": size[1]}
    data["reader"] = {"backend": "sim", "poll_interval_ms": 10, "cooldown_ms": 0}
    if flow is not None:
        data["flow"] = flow
    cfg = validate_config(data, "<test>", data_dir)
    if media is not None:
        shutil.copytree(media, data_dir / "media")
        clips = {e.project: e.sha256 for e in MediaCache(data_dir / "media").entries()}
        cfg.player.playlist = demo_playlist(
            [type("C", (), {"project_id": p, "sha256": s})() for p, s in clips.items()])
    return cfg
