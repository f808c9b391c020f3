"""Review 51: clips applied with `kiosk sync --once --apply-config` (run while `kiosk run` is stopped: a kiosk being
provisioned, or recovered) did not play at the next `kiosk run`.

That command fetches the pushed clips into ``DATA_DIR/media/<sha256>`` and writes ``portal-config.json``, but only
the running kiosk's ``on_config`` moved fetched clips into the player's media cache (``media/<sha256>.mp4`` and
``index.json``). At the next start the pushed playlist was in force and the player found none of its clips: it
logged "no such clip in the media cache (import one with `kiosk media import` ...)" for each and showed the still
slide instead of the movie, for good (the config was applied, so the portal never pushed it again). Now `kiosk run`
moves them in at start (kiosk/app/runtime.py ``App._adopt_fetched_clips``; docs/sync.md, "Config push").

Real parts: a portal on loopback HTTP, the real `kiosk sync --once --apply-config` command, real tiny movies, and a
real headless App started from the config file as `kiosk run` starts it (``load_run_config``); the second start runs
in a fresh interpreter to see what it imports.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sync_helpers import PROJECTS, enrolled, make_rig

from kiosk.app.runtime import App
from kiosk.cli import main as kiosk_main
from kiosk.config import to_toml, validate_config
from kiosk.config.cache import load_run_config
from kiosk.player.media import MediaCache
from kiosk.sync.configapply import APPLIED, STAGED
from server_sync.configstore import add_media, publish

ROOT = Path(__file__).resolve().parents[2]
ENV = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}

CHILD = r"""
import json, sys, time
from kiosk.config.cache import load_run_config
from kiosk.app.runtime import App

cfg, _ = load_run_config(sys.argv[1])
app = App(cfg, config_path=sys.argv[1], sound=False)
app.start(movie=False)  # as run_kiosk does; READY=1 right here
at_ready = sorted(sys.modules)
try:
    app.after_ready()
    deadline = time.monotonic() + 30
    while not app.movie_on and time.monotonic() < deadline:
        app.step()
    shown = app.player.showing
finally:
    app.close()
print(json.dumps({"at_ready": at_ready, "kind": shown and shown.kind, "sha": shown and shown.clip_sha}))
"""


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real, tiny movie (a title card)."""
    from kiosk.player import ensure_demo_media

    root = tmp_path_factory.mktemp("adopt-movie")
    cfg = validate_config({"kiosk": {"id": "movie-maker", "data_dir": str(root)},
                           "projects": [{"id": "m", "title": "clip", "area": "green", "goal_yen": 1000}]},
                          "<test>", root)
    (clip,) = ensure_demo_media(cfg, size=(64, 36), seconds=0.4, fps=10)
    return clip.path.read_bytes()


def _provisioned(portal, tmp_path: Path, playlist: list[dict], apply: bool = True) -> Path:
    """A kiosk enrolled at the portal, with `kiosk run` stopped, and the portal's playlist applied to it with
    `kiosk sync --once --apply-config` (``apply``; else staged with `kiosk sync --once`). Returns its config file
    (a headless display, the simulated reader)."""
    publish(portal.app.state.engine, {"projects": PROJECTS[:2], "presets_yen": [100, 300], "default_yen": 100,
                                      "playlist": playlist})
    rig = make_rig(tmp_path)
    enrolled(rig, portal).close()
    rig.ledger.close()
    cfg = validate_config({"kiosk": {"id": rig.kiosk_id, "data_dir": str(rig.cfg.data_dir)},
                           "projects": PROJECTS, "player": {"display": "headless", "width": 160, "height": 90},
                           "reader": {"backend": "sim"}}, "<test>", rig.cfg.data_dir)
    rig.config_path.write_text(to_toml(cfg), "utf-8")
    apply_config = ["--apply-config"] if apply else []
    assert kiosk_main(["sync", "--config", str(rig.config_path), "--once", *apply_config, "--attempts", "2"]) == 0
    return rig.config_path


def _start(path: Path) -> App:
    """`kiosk run`'s start: the config as it loads it, READY=1 (``start(movie=False)``), then the movie."""
    cfg, _ = load_run_config(path)
    app = App(cfg, config_path=path, sound=False)
    app.start(movie=False)
    app.after_ready()
    return app


def _first_shown(app: App):  # noqa: ANN202 - the player's Showing
    assert app.player is not None
    for _ in range(3000):
        if app.movie_on:
            return app.player.showing
        app.step()
    raise AssertionError("nothing shown")


def test_clips_applied_while_the_kiosk_was_stopped_play_at_its_next_start(portal, tmp_path: Path, movie: bytes,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    sha = add_media(portal.app.state.engine, movie, "video/mp4")
    path = _provisioned(portal, tmp_path, [{"sha256": sha, "name": "kodomo.mp4", "project": "kodomo"}])
    media = path.parent / "media"
    assert (media / sha).is_file() and MediaCache(media).find(sha) is None  # fetched, not in the player's cache

    caplog.set_level(logging.INFO)
    app = _start(path)
    try:
        shown = _first_shown(app)
        assert [it.clip for it in app.cfg.player.playlist] == [sha]  # the pushed playlist is in force...
        assert (shown.kind, shown.clip_sha, shown.project_id) == ("video", sha, "kodomo")  # ...and its clip plays
    finally:
        app.close()
    assert not (media / sha).exists() and MediaCache(media).find(sha).source == "portal"  # moved, not copied
    assert "no such clip in the media cache" not in caplog.text

    # The next start finds nothing waiting: it neither imports PyAV before READY=1 (cold start, #16) nor the
    # pushed config's models, and plays the clip from the cache.
    res = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert (got["kind"], got["sha"]) == ("video", sha)
    assert [m for m in got["at_ready"] if m == "av" or m.startswith(("av.", "kiosk.sync.adopt", "pydantic"))] == []


def test_a_fetched_clip_that_cannot_be_adopted_is_skipped_and_the_kiosk_starts(portal, tmp_path: Path, movie: bytes,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A file the portal sent that is no movie (its checksum is right: the portal stored it so) is logged with its
    short hash, left out, and the rest of the pushed playlist plays; the kiosk starts and takes taps."""
    eng = portal.app.state.engine
    bad = add_media(eng, b"\x00not a movie at all" * 50, "video/mp4")
    good = add_media(eng, movie, "video/mp4")
    path = _provisioned(portal, tmp_path, [{"sha256": bad, "name": "broken.mp4", "project": "kodomo"},
                                           {"sha256": good, "name": "midori.mp4", "project": "midori"}])
    caplog.set_level(logging.INFO)
    app = _start(path)
    try:
        shown = _first_shown(app)
        assert (shown.kind, shown.clip_sha) == ("video", good)
        assert app.worker is not None and app.worker.alive
    finally:
        app.close()
    assert f"pushed clip {bad[:12]} is not a playable movie" in caplog.text
    assert MediaCache(path.parent / "media").find(bad) is None


def test_a_config_staged_while_the_kiosk_was_stopped_plays_once_the_kiosk_syncs(portal, tmp_path: Path,
                                                                              movie: bytes) -> None:
    """`kiosk sync --once` without ``--apply-config`` only stages (``portal-config.pending.json`` and the fetched
    clips): the kiosk starts on its own playlist, and its first sync takes the version from the portal again
    (the staged clips are not fetched again), adopts the clips (``on_config``) and plays them."""
    sha = add_media(portal.app.state.engine, movie, "video/mp4")
    path = _provisioned(portal, tmp_path, [{"sha256": sha, "name": "kodomo.mp4", "project": "kodomo"}], apply=False)
    media = path.parent / "media"
    assert (media / sha).is_file() and (path.parent / STAGED).exists() and not (path.parent / APPLIED).exists()
    app = _start(path)
    try:
        shown = _first_shown(app)
        assert shown.clip_sha != sha  # not applied at start: the ledger does not name it yet
        for _ in range(3000):  # the sync thread starts after the first frame; its first round applies it
            shown = app.player.showing
            if shown is not None and shown.clip_sha == sha:
                break
            app.step()
        assert shown is not None and (shown.kind, shown.clip_sha) == ("video", sha)
    finally:
        app.close()
    assert not (path.parent / STAGED).exists() and not (media / sha).exists()


@pytest.mark.parametrize("harm", ["lost", "damaged"])
def test_a_clip_whose_cached_copy_was_lost_is_fetched_and_plays_again(portal, tmp_path: Path, movie: bytes,
                                                                      harm: str) -> None:
    """Recovering a kiosk whose cached copy of a pushed clip is gone or damaged (``media/<sha256>.mp4``, its index
    entry left): the applier fetches the clip again (the cached copy does not verify), and the start moves the
    fresh copy in. Before, the cache's entry counted as adopted: the fetched copy stayed beside it unused and the player
    skipped the clip ("file is missing", "checksum mismatch") for good."""
    sha = add_media(portal.app.state.engine, movie, "video/mp4")
    path = _provisioned(portal, tmp_path, [{"sha256": sha, "name": "kodomo.mp4", "project": "kodomo"}])
    _start(path).close()  # adopted at this start
    media = path.parent / "media"
    if harm == "lost":
        (media / f"{sha}.mp4").unlink()
    else:
        (media / f"{sha}.mp4").write_bytes(movie[: len(movie) // 2])
    publish(portal.app.state.engine, {"projects": PROJECTS[:2], "presets_yen": [100, 500], "default_yen": 100,
                                      "playlist": [{"sha256": sha, "name": "kodomo.mp4", "project": "kodomo"}]})
    assert kiosk_main(["sync", "--config", str(path), "--once", "--apply-config", "--attempts", "2"]) == 0
    assert (media / sha).is_file()  # fetched again
    app = _start(path)
    try:
        shown = _first_shown(app)
        assert (shown.kind, shown.clip_sha) == ("video", sha)
    finally:
        app.close()
    assert not (media / sha).exists() and MediaCache(media).verify(sha) == "ok"
