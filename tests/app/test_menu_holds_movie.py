"""The maintenance menu holds the lobby movie, as the opaque donation screens do (docs/player.md, "Covered
frames"; docs/menu.md).

The menu paints the whole screen on every page, so nothing of the movie is seen while it is open: the player
holds its timeline and pauses its decode thread, and when the menu closes (staff, its idle timeout, shutdown) the
movie goes on from the next frame. Driven through the real app: the simulated reader's staff card on the reader
thread, the hidden corner and keys through the app's event path, the real decoder on the demo movies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pygame
import pytest

from kiosk.app.runtime import App
from kiosk.app.staffside import last_played
from tests.app.drive import card_on_reader, entries, headless_cfg, next_read, run_until

SIZE = (320, 180)
HELD_STEPS = 45
"""Main-loop steps the menu stays open while the test watches the movie (about 1.5 s at 30 frames a second)."""


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kiosk.player import ensure_demo_media

    root = tmp_path_factory.mktemp("media-src")
    ensure_demo_media(_cfg(root), size=SIZE, seconds=2.0)
    return root / "media"


def _cfg(data_dir: Path, media: Path | None = None) -> Any:
    return headless_cfg(data_dir, SIZE, media)


def _staff_card_cfg(tmp_path: Path, media: Path) -> Any:
    """Key 1's simulated Suica registered as a staff card, as `kiosk staff card` does."""
    from kiosk.ledger import Pepper
    from kiosk.ops.local_files import ensure_secrets
    from kiosk.reader.sim import preset_idm

    cfg = _cfg(tmp_path / "data", media)
    ensure_secrets(cfg)
    cfg.staff.staff_tokens.append(Pepper.load(cfg.pepper_path).token(preset_idm("suica")).hex)
    return cfg


def _steps(app: App, n: int, seconds: float = 60.0) -> None:
    """Run ``n`` more steps of the app's main loop (each draws a frame), giving up after a generous ``seconds``."""
    count = [0]

    def hook() -> None:
        count[0] += 1

    app.step_hooks.append(hook)
    try:
        app.run(until=lambda a: count[0] >= n, seconds=seconds)
    finally:
        app.step_hooks.remove(hook)
    assert count[0] >= n, f"only {count[0]} of {n} steps in {seconds} s"


def _movie_playing(app: App) -> None:
    player = app.player
    assert player is not None
    run_until(app, lambda p: p.screen.screen == "attract" and p.screen.project is not None, seconds=30)
    start = player.frames_presented
    app.run(until=lambda a: player.frames_presented >= start + 10, seconds=30)
    assert player.frames_presented >= start + 10
    assert not player.held and not player.worker.paused


def _staff_card_opens_the_menu(app: App) -> None:
    """Key 1's card (the staff card) on the simulated reader, on the reader thread, until the menu is open."""
    with card_on_reader(app, "suica"):
        app.run(until=lambda a: a.staff.is_open, seconds=30)


def _open_and_watch_held(app: App) -> dict[str, Any]:
    """With the menu just opened: the movie is held and stays so over HELD_STEPS frames of the menu."""
    player = app.player
    assert player is not None and player.worker is not None
    app.run(until=lambda a: a.staff.is_open and player.held, seconds=30)
    assert app.staff.is_open and player.held and player.worker.paused
    _steps(app, 5)  # a frame the decode thread was converting when the pause came is finished and queued
    before = dict(decoded=player.worker.decoded, presented=player.frames_presented, showing=player.showing,
                  timeline=(player.pacer.expected, player.pacer.dropped, player.pacer.stalls),
                  live=app.live_frames, held_s=player.held_s, t0=time.monotonic())
    _steps(app, HELD_STEPS)
    assert app.staff.is_open and player.held and player.worker.paused
    assert player.worker.decoded == before["decoded"]  # nothing decoded or converted under the menu
    assert player.frames_presented == before["presented"] and player.showing == before["showing"]
    # The timeline stopped: no frame was due, so none was dropped and none is counted as expected.
    assert (player.pacer.expected, player.pacer.dropped, player.pacer.stalls) == before["timeline"]
    assert app.live_frames >= before["live"] + HELD_STEPS  # the screen is live for the systemd watchdog
    assert player.held_s == before["held_s"]  # counted when the hold ends
    before["t1"] = time.monotonic()
    before["at_release"] = _timeline_at_release(player)
    return before


def _timeline_at_release(player: Any) -> list[tuple[int, int, int]]:
    """Filled at the step that releases the hold (the step the menu is gone in: the hold ends and the frames are
    selected at the same instant) with the timeline's (dropped, stalls) right after that selection and how many
    of the frames it found queued were already due when the hold began (a step late just before the hold)."""
    pacer, seen, released, due_at_hold = player.pacer, [], [False], [0]
    real_release, real_select = pacer.release, pacer.select

    def release(now: float) -> None:
        if pacer.held_at is not None:
            released[0] = True
            due_at_hold[0] = sum(1 for f in list(player.queue._dq)
                                 if f.seg == pacer.seg and pacer._anchor + f.pts <= pacer.held_at)
        real_release(now)

    def select(*args: Any, **kw: Any) -> Any:
        sel = real_select(*args, **kw)
        if released[0] and not seen:
            seen.append((pacer.dropped, pacer.stalls, due_at_hold[0]))
        return sel

    pacer.release, pacer.select = release, select
    return seen


def _goes_on(app: App, before: dict[str, Any]) -> None:
    """After the menu closed: the movie goes on from where it was held, with nothing dropped or re-anchored."""
    player = app.player
    assert player is not None and player.worker is not None
    app.run(until=lambda a: player.frames_presented >= before["presented"] + 5
            and player.worker.decoded > before["decoded"], seconds=30)
    assert not app.staff.is_open and not player.held and not player.worker.paused
    assert player.frames_presented >= before["presented"] + 5 and player.worker.decoded > before["decoded"]
    _, dropped, stalls = before["timeline"]
    # The held time cost no frame: in the step that lets the movie go on, every frame is due from where the hold
    # stopped it, so none is overtaken (dropped) but those already overtaken when the hold began, and the timeline
    # is not re-anchored as after a stall; without the shift every frame queued before the hold would be 45 steps
    # late there. Read at that step: the steps after it drop the frames a late step overtook, as they should, and
    # a loaded CI host makes some late (the decode thread, just resumed, refilling the queue on a busy CPU, or the
    # loop not scheduled for a while); so can a late step just before the hold (in practice none are due then).
    [(dropped_then, stalls_then, due_at_hold)] = before["at_release"]
    assert (dropped_then - dropped, stalls_then) == (max(0, due_at_hold - 1), stalls), before["at_release"]
    assert player.held_s - before["held_s"] >= before["t1"] - before["t0"]  # the whole time the test watched


def test_the_menu_holds_the_movie_and_staff_closing_it_lets_the_movie_go_on(tmp_path, media):
    with App(_staff_card_cfg(tmp_path, media), sound=False, allow_quit_key=False) as app:
        _movie_playing(app)
        size_before = app.ledger.size
        _staff_card_opens_the_menu(app)
        before = _open_and_watch_held(app)
        # A donor's card (key 2's) while the menu is open: the menu takes it, as ever; no donation starts.
        with card_on_reader(app, "pasmo"):
            app.run(until=lambda a: a.staff.last_family == "pasmo", seconds=30)
        assert app.staff.last_family == "pasmo"  # read, and routed to the open menu
        _steps(app, 10)
        assert app.staff.is_open and app.player.held and app.player.worker.decoded == before["decoded"]
        app.inject(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="\x1b"))  # Back: closes
        _goes_on(app, before)
        kinds = [e.type for e in entries(app) if e.seq > size_before]
        assert "donation_intent" not in kinds and "donation" not in kinds


def test_the_menus_idle_timeout_lets_the_held_movie_go_on(tmp_path, media):
    cfg = _staff_card_cfg(tmp_path, media)
    with App(cfg, sound=False) as app:
        _movie_playing(app)
        _staff_card_opens_the_menu(app)
        before = _open_and_watch_held(app)
        menu = app.staff.menu
        # Staff walked away: their last touch was longer ago than the idle timeout. The app's own tick closes it.
        with menu._lock:
            menu.model.last_input -= cfg.staff.idle_timeout_s + 1
        _goes_on(app, before)
        app.run(until=lambda a: any(e.type == "admin_action" and e.data.get("action") == "menu_close"
                                    for e in entries(a)), seconds=30)
        closes = [e.data for e in entries(app) if e.type == "admin_action" and e.data.get("action") == "menu_close"]
        assert [c["reason"] for c in closes] == ["idle"]


def test_the_pin_keypad_holds_the_movie_too_and_a_shutdown_under_it_stops_the_paused_decoder(tmp_path, media):
    """The hidden corner's PIN keypad is a menu page like any other: full-screen and opaque."""
    from kiosk.staff.pin import hash_pin

    cfg = _cfg(tmp_path / "data", media)
    cfg.staff.pin_hash = hash_pin("2468", n=2**10)
    app = App(cfg, sound=False)
    app.start()
    try:
        _movie_playing(app)
        for _ in range(5):
            app.touch_at((2, 2))
            _steps(app, 3)
        assert app.staff.menu.page == "pin"
        _open_and_watch_held(app)
        worker = app.player.worker
    finally:
        app.close()
    assert not worker.is_alive()  # stop() woke the paused decode thread to see the halt


def test_the_status_page_reads_the_last_second_the_movie_played_not_a_held_one(tmp_path, media):
    """While the menu is open every second of the player's metrics is a held one (nothing due, nothing dropped):
    the status page's player row would always read "0 dropped frames/min". It reads the last second played."""
    with App(_staff_card_cfg(tmp_path, media), sound=False) as app:
        player = app.player
        _movie_playing(app)
        time.sleep(0.3)  # the loop is late: its next step drops the frames it overtook
        dropped = player.pacer.dropped
        _steps(app, 1)
        assert player.pacer.dropped > dropped
        read = next_read(app)
        with card_on_reader(app, "suica"):
            # The loop stands still until the staff card is read, however slow the reader thread: no frame is due
            # between the late step and the menu holding the movie, so the late step's second is the last played.
            assert read.wait(30), "the reader has not read the staff card"
            assert app.staff.is_open  # opened on the reader thread, before the loop's next step
        _open_and_watch_held(app)
        metrics = player.metrics
        app.run(until=lambda a: (s := metrics.latest()) is not None and s.expected == 0 and s.presented == 0,
                seconds=30)
        latest = metrics.latest()
        assert latest is not None and latest.expected == latest.presented == latest.dropped == 0  # a held second
        played = [s for s in metrics.history() if s.expected or s.presented or s.dropped]
        assert played and played[-1].dropped > 0  # the second with the late step
        assert last_played(metrics.history()) is played[-1]
        x = app.staff.status_inputs()
        assert x.dropped_frames_per_min == played[-1].dropped * 60.0
        gaps = played[-1].switch_gap_ms
        assert x.switch_gap_ms == (max(gaps) if gaps else None)


def test_last_played_skips_held_seconds_and_falls_back_to_the_newest():
    from kiosk.player.metrics import Sample

    def sample(n: int, expected: int, dropped: int = 0) -> Sample:
        return Sample(t=f"t{n}", uptime_s=float(n), presented=max(0, expected - dropped), expected=expected,
                      dropped=dropped, decode_p95_ms=None)

    played, held = sample(1, 30, dropped=2), sample(2, 0)
    assert last_played([sample(0, 30), played, held, sample(3, 0)]) is played
    assert last_played([held]) is held  # nothing played yet (a still is played: its steps are due too)
    assert last_played([]) is None


def test_a_menu_closed_between_the_hold_and_the_overlays_puts_no_see_through_screen_over_the_undrawn_movie(
        tmp_path, media, monkeypatch):
    """The menu can close after the player has asked whether the movie is covered and before the overlays draw
    (a finished action's result is collected by the reader thread's tap, or by the menu's own render). That frame
    has no movie under it, so the see-through attract screen must not be drawn over what the last frame left."""
    import kiosk.app.runtime as app_mod
    from kiosk.app.runtime import OVERLAY_Z

    rendered: list[str] = []
    real_render = app_mod.render

    def noting_render(data, surface, now_ms, *args, **kw):  # noqa: ANN001
        rendered.append(data.screen)
        return real_render(data, surface, now_ms, *args, **kw)

    monkeypatch.setattr(app_mod, "render", noting_render)
    with App(_staff_card_cfg(tmp_path, media), sound=False) as app:
        player = app.player
        _movie_playing(app)
        _staff_card_opens_the_menu(app)
        _open_and_watch_held(app)
        close_now = [True]

        def close_in_between(surface: pygame.Surface, now_ms: int) -> None:  # under the donation screens' overlay
            if close_now[0]:
                close_now[0] = False
                app.staff.menu.close("staff")

        player.add_overlay(close_in_between, z=OVERLAY_Z - 1)
        rendered.clear()
        covered = player.covered_frames
        _steps(app, 1)
        assert not close_now[0] and not app.staff.is_open
        assert player.covered_frames == covered + 1  # the frame was composed without the movie
        assert rendered == []  # and without a donation screen over the picture the menu left
        _steps(app, 3)
        assert not player.held and "attract" in rendered  # the next frames: the movie, and the attract screen on it
