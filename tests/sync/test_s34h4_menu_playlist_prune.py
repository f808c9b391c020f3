"""Review 34: a pushed clip the portal removed was deleted once the player took the new playlist, but only if the
player took *that* playlist. Staff who switched a clip off (or reloaded the list) on the maintenance menu's playlist
page before the player reached the next clip boundary handed the player their own list instead; the player took it,
never the pushed one, and the removed clip (someone in it withdrew their consent) stayed on the kiosk until the next
push or restart. Now a menu playlist taken instead of a pushed one still waiting lets the deletion go on, when every
clip it names is one the pushed playlist names (kept by the deletion: ``App.playlist_handed``); one naming any other
clip, such as the removed one from a page opened before the push, keeps it waiting, as the player may still open it
(docs/sync.md, "Removed videos leave the kiosk").

Real parts, as tests/sync/test_s33h1_prune_when_played.py: a portal on loopback HTTP, the real `kiosk sync --once
--apply-config`, real tiny movies, a real headless App started from its config file, its own sync thread taking the
push, and the menu's own playlist service (what its page calls when staff switch a clip off). The player "not yet at
a clip boundary" is its decode thread paused (``DecodeWorker.pause``, what the open menu does).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import PROJECTS, enrolled, make_rig

from kiosk.app.runtime import App
from kiosk.cli import main as kiosk_main
from kiosk.config import to_toml, validate_config
from kiosk.config.cache import load_run_config
from kiosk.player.media import MediaCache
from server_sync.configstore import add_media, publish

BODY = {"projects": PROJECTS, "presets_yen": [100, 300], "default_yen": 100}


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}.items():
        monkeypatch.setenv(k, v)


def _step_until(app: App, pred: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Step the main loop (each step waits for the next frame or a wake-up) until ``pred()``; liveness only."""
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        app.step()


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Three real, tiny movies (title cards) of 0.4 s."""
    from kiosk.player import ensure_demo_media

    root = tmp_path_factory.mktemp("menu-movies")
    cfg = validate_config({"kiosk": {"id": "movie-maker", "data_dir": str(root)},
                           "projects": [{"id": n, "title": f"clip {n}", "area": "green", "goal_yen": 1000}
                                        for n in ("a", "b", "c")]}, "<test>", root)
    return [c.path.read_bytes() for c in ensure_demo_media(cfg, size=(64, 36), seconds=0.4, fps=10)]


def _items(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"sha256": sha, "name": f"{n}.mp4", "project": PROJECTS[n]["id"]} for sha, n in pairs]


@pytest.fixture
def running(portal, tmp_path: Path, movies: list[bytes]) -> Iterator[tuple[App, Any, Path, list[str]]]:  # noqa: ANN001
    """A kiosk running the portal's playlist of three clips (removed, kept 1, kept 2), its movie on."""
    engine = portal.app.state.engine
    shas = [add_media(engine, m, "video/mp4") for m in movies]
    publish(engine, {**BODY, "playlist": _items(*zip(shas, range(3), strict=True))})
    rig = make_rig(tmp_path)
    enrolled(rig, portal).close()
    rig.ledger.close()
    cfg = validate_config({"kiosk": {"id": rig.kiosk_id, "data_dir": str(rig.cfg.data_dir)},
                           "projects": PROJECTS, "player": {"display": "headless", "width": 160, "height": 90},
                           "reader": {"backend": "sim"}, "portal": {"sync_interval_s": 3600}}, "<test>",
                          rig.cfg.data_dir)
    rig.config_path.write_text(to_toml(cfg), "utf-8")
    assert kiosk_main(["sync", "--config", str(rig.config_path), "--once", "--apply-config", "--attempts", "2"]) == 0
    app = App(load_run_config(rig.config_path)[0], config_path=rig.config_path, sound=False)
    app.start(movie=False)
    try:
        app.after_ready()
        assert app.player is not None and app.player.worker is not None and app.staff is not None
        _step_until(app, lambda: app.movie_on and app.staff.sync is not None
                    and app.staff.sync.status().get("last_attempt_ms") is not None, "the movie and a first sync")
        yield app, engine, rig.cfg.data_dir / "media", shas
    finally:
        app.close()


def _push_while_inside_a_clip(app: App, engine: Any, shas: list[str]) -> None:
    """The portal drops the first clip; the kiosk takes the config while its player is still inside a clip."""
    assert app.player is not None and app.player.worker is not None and app.staff is not None
    app.player.worker.pause()
    publish(engine, {**BODY, "playlist": _items((shas[1], 1), (shas[2], 2))})
    app.staff.nudge_sync()
    _step_until(app, lambda: [it.clip for it in app.cfg.player.playlist] == shas[1:], "the push adopted")
    assert len(app.player.scheduler.playlist) == 3  # the player has not taken it


def _player_takes(app: App, clips: list[str]) -> None:
    """The clip on screen ends; at that boundary the scheduler takes the last playlist handed to it."""
    assert app.player is not None and app.player.worker is not None and app.staff is not None
    app.player.worker.resume()
    _step_until(app, lambda: [it.clip for it in app.player.scheduler.playlist] == clips, "the player took it")
    for _ in range(3):
        app.step()
    app.staff.sync.uploader.applier.settle(5)


def test_a_clip_switched_off_on_the_menu_before_the_boundary_still_lets_the_removed_clip_go(
        running: tuple[App, Any, Path, list[str]]) -> None:
    app, engine, media, (removed, kept1, kept2) = running
    _push_while_inside_a_clip(app, engine, [removed, kept1, kept2])
    # Staff open the playlist page (it lists the pushed playlist) and switch the first clip off, as the page does.
    services = app.staff.menu.model.s
    listed = list(services.playlist())
    assert [it.clip for it in listed] == [kept1, kept2]
    services.apply_playlist(listed[1:])
    _player_takes(app, [kept2])
    assert not (media / f"{removed}.mp4").exists() and MediaCache(media).find(removed) is None
    for sha in (kept1, kept2):  # the clip switched off stays: the portal's playlist names it
        assert MediaCache(media).verify(sha, force=True) == "ok"


def test_a_menu_list_from_before_the_push_keeps_the_removed_clip_while_the_player_may_open_it(
        running: tuple[App, Any, Path, list[str]]) -> None:
    app, engine, media, (removed, kept1, kept2) = running
    services = app.staff.menu.model.s
    stale = list(services.playlist())  # the page was opened before the push: the removed clip is on it
    _push_while_inside_a_clip(app, engine, [removed, kept1, kept2])
    services.apply_playlist([stale[0], stale[2]])  # staff switch the second clip off on that page
    _player_takes(app, [removed, kept2])
    assert (media / f"{removed}.mp4").is_file() and MediaCache(media).verify(removed, force=True) == "ok"
