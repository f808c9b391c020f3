"""Review 33: a pushed clip the new playlist no longer names was deleted a fixed 10 s after the running kiosk was told
of the config, whether or not its player had taken the new playlist: a slow player (a Pi at a quarter core) could
still be about to open the old clip, a fast one kept a withdrawn video 10 s for nothing. Now the main loop says when
the player's scheduler has taken the new playlist (``App.step`` -> ``StaffSide.playlist_taken`` ->
``ConfigApplier.player_took``), and the clip is deleted then, not before (docs/sync.md, "Removed videos leave the
kiosk").

Real parts: a portal on loopback HTTP, the real `kiosk sync --once --apply-config`, real tiny movies, and a real
headless App started from its config file as `kiosk run` starts it, its own sync thread taking the push. The player
"not yet at a clip boundary" is its decode thread paused (``DecodeWorker.pause``, what a covering screen does).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sync_helpers import PROJECTS, enrolled, make_rig

from kiosk.app.runtime import App
from kiosk.cli import main as kiosk_main
from kiosk.config import to_toml, validate_config
from kiosk.config.cache import load_run_config
from kiosk.player.media import MediaCache
from server_sync.configstore import add_media, publish

ENV = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Two real, tiny movies (title cards) of 0.4 s."""
    from kiosk.player import ensure_demo_media

    root = tmp_path_factory.mktemp("played-movies")
    cfg = validate_config({"kiosk": {"id": "movie-maker", "data_dir": str(root)},
                           "projects": [{"id": n, "title": f"clip {n}", "area": "green", "goal_yen": 1000}
                                        for n in ("a", "b")]}, "<test>", root)
    return [c.path.read_bytes() for c in ensure_demo_media(cfg, size=(64, 36), seconds=0.4, fps=10)]


def _step_until(app: App, pred, what: str, seconds: float = 30.0) -> None:  # noqa: ANN001
    """Step the main loop (each step waits for the next frame or a wake-up) until ``pred()``; liveness only."""
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        app.step()


def test_a_removed_clip_is_deleted_once_the_player_took_the_new_playlist_and_not_before(
        portal, tmp_path: Path, movies: list[bytes]) -> None:
    engine = portal.app.state.engine
    removed, kept = (add_media(engine, m, "video/mp4") for m in movies)
    body = {"projects": PROJECTS[:2], "presets_yen": [100, 300], "default_yen": 100}
    publish(engine, {**body, "playlist": [{"sha256": removed, "name": "a.mp4", "project": PROJECTS[0]["id"]},
                                          {"sha256": kept, "name": "b.mp4", "project": PROJECTS[1]["id"]}]})
    rig = make_rig(tmp_path)
    enrolled(rig, portal).close()
    rig.ledger.close()
    cfg = validate_config({"kiosk": {"id": rig.kiosk_id, "data_dir": str(rig.cfg.data_dir)},
                           "projects": PROJECTS, "player": {"display": "headless", "width": 160, "height": 90},
                           "reader": {"backend": "sim"}, "portal": {"sync_interval_s": 3600}}, "<test>",
                          rig.cfg.data_dir)
    rig.config_path.write_text(to_toml(cfg), "utf-8")
    assert kiosk_main(["sync", "--config", str(rig.config_path), "--once", "--apply-config", "--attempts", "2"]) == 0
    media = rig.cfg.data_dir / "media"

    app = App(load_run_config(rig.config_path)[0], config_path=rig.config_path, sound=False)
    app.start(movie=False)
    try:
        app.after_ready()
        assert app.player is not None and app.player.worker is not None and app.staff is not None
        _step_until(app, lambda: app.movie_on and app.staff.sync is not None
                    and app.staff.sync.status().get("last_attempt_ms") is not None, "the movie and a first sync")
        applier = app.staff.sync.uploader.applier
        assert MediaCache(media).find(removed) is not None

        # The portal drops the clip; the kiosk takes the config while its player is still inside a clip of the old one.
        app.player.worker.pause()
        publish(engine, {**body, "playlist": [{"sha256": kept, "name": "b.mp4", "project": PROJECTS[1]["id"]}]})
        app.staff.nudge_sync()
        _step_until(app, lambda: [it.clip for it in app.cfg.player.playlist] == [kept], "the push adopted")
        for _ in range(5):  # frames go by (a deletion planned on the push alone would run meanwhile)
            app.step()
        assert len(app.player.scheduler.playlist) == 2  # the player has not taken it...
        assert (media / f"{removed}.mp4").is_file() and MediaCache(media).find(removed) is not None  # ...nor lost it

        # The clip on screen ends; at that boundary the scheduler takes the new playlist, and the main loop says so.
        app.player.worker.resume()
        _step_until(app, lambda: [it.clip for it in app.player.scheduler.playlist] == [kept], "the player took it")
        app.step()
        applier.settle(5)
        assert not (media / f"{removed}.mp4").exists() and MediaCache(media).find(removed) is None
        assert MediaCache(media).verify(kept, force=True) == "ok"
    finally:
        app.close()
