"""A config the portal pushed, and the kiosk recorded and reported as applied, is still in force after a
restart (a power cut, an update): the portal will not push it again, so the kiosk must not forget it. And a
config pushed to a running kiosk (``App.adopt_config``) is in force at once, on screen too, without losing what
the flow's settings hold from elsewhere (the terminal, the pools).

Real parts: the kiosk's ConfigApplier records it (ledger entry + portal-config.json) as the sync thread
does, then a real App starts headless on the same data dir.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from kiosk.app.demo import card_spec, demo_template
from kiosk.app.runtime import App, target_center
from kiosk.config import validate_config
from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.sync.configapply import APPLIED, ConfigApplier
from kiosk.ui.screens import chrome
from server_sync.wire import configdoc
from tests.app.drive import card_on_reader, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def _kiosk(tmp_path: Path):  # noqa: ANN202 - (template, config, demo clips, media cache)
    """A headless demo kiosk's config, secrets and clips in ``tmp_path``."""
    from kiosk.player import ensure_demo_media
    from kiosk.player.media import MediaCache

    doc = demo_template()
    doc.pop("demo", None)
    doc["kiosk"]["data_dir"] = str(tmp_path / "data")
    doc["player"] = {"display": "headless", "width": 160, "height": 90}
    doc["reader"] = {"backend": "sim"}
    cfg = validate_config(doc, "<test>", tmp_path)
    clips = ensure_demo_media(cfg, size=(160, 90), seconds=0.3)
    ensure_secrets(cfg)
    cache = MediaCache(cfg.data_dir / "media")
    return doc, cfg, clips, cache


def test_a_pushed_config_is_still_in_force_after_a_restart(tmp_path: Path) -> None:
    doc, cfg, clips, cache = _kiosk(tmp_path)
    pushed_clip = clips[1]
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    body = {"projects": projects, "presets_yen": [200, 300, 700], "default_yen": 300,
            "playlist": [{"sha256": pushed_clip.sha256, "name": "c.mp4", "project": pushed_clip.project_id}],
            "pools": [{"id": "city", "sponsor": "市", "allocations": {cfg.kiosk.id: 500}}]}
    norm = configdoc.normalised(configdoc.validate(body))
    led = open_ledger(cfg)
    ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
        {"version": 4, "digest": configdoc.digest(norm), "config": norm}, lambda sha: cache.path(sha).read_bytes())
    led.close()
    assert cfg.donation.presets_yen != [200, 300, 700]  # the file's config is another

    app = App(cfg, sound=False)
    with _opens(cfg.data_dir / APPLIED) as opened:
        app.start()
    try:
        # One reading of portal-config.json sets the amounts, the playlist and the points button.
        assert len(opened) == 1, opened
        assert app.cfg.donation.presets_yen == [200, 300, 700] and app.cfg.donation.default_yen == 300
        assert [it.clip for it in app.cfg.player.playlist] == [pushed_clip.sha256]
        assert app.worker is not None and app.worker.service.settings.points_exchange
        assert app.ctx is not None
    finally:
        app.close()


_watched: list[tuple[str, list[str]]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watched and isinstance(args[0], (str, os.PathLike)):
        path, seen = _watched[-1]
        if os.fspath(args[0]) == path:
            seen.append(str(args[1]))


@contextmanager
def _opens(path: Path):  # noqa: ANN202 - yields the modes ``path`` was opened with, by any thread
    """Every open() of ``path`` while the block runs, seen by a Python audit hook (an observer, nothing is
    replaced; hooks cannot be removed, so one is added once and watches only inside this block)."""
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked.append(True)
    seen: list[str] = []
    _watched.append((os.fspath(path), seen))
    try:
        yield seen
    finally:
        _watched.pop()


_hooked: list[bool] = []


def test_a_cut_between_the_file_and_the_ledger_entry_is_recorded_at_the_next_start(tmp_path: Path) -> None:
    """ConfigApplier writes portal-config.json first, then the config_change entry. A power cut between the two
    (here: the ledger closed under the applier, so its append fails as a dead process's would) leaves a config on
    disk that the ledger does not name; the next start records it before any tap, once, so the portal judges
    the gifts that follow by the presets the kiosk really shows (server_sync/policy.py)."""
    import pytest

    from kiosk.ledger.writer import LedgerThreadError
    doc, cfg, clips, cache = _kiosk(tmp_path)
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    body = {"projects": projects, "presets_yen": [200, 300, 700], "default_yen": 300,
            "playlist": [{"sha256": clips[0].sha256, "name": "c.mp4", "project": clips[0].project_id}]}
    norm = configdoc.normalised(configdoc.validate(body))
    import threading

    led = open_ledger(cfg)
    # The cut: the entry after the file is never written. Here another thread owns the ledger, so this thread's
    # append is refused and nothing reaches it, as if the process had died right after the file.
    owner = threading.Thread(target=led.claim_writer)
    owner.start()
    owner.join()
    with pytest.raises(LedgerThreadError):
        ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
            {"version": 7, "digest": configdoc.digest(norm), "config": norm}, lambda sha: cache.path(sha).read_bytes())
    owner = threading.Thread(target=led.release_writer)
    owner.start()
    owner.join()
    led.close(checkpoint=False)
    led = open_ledger(cfg)
    assert led.last_of_type("config_change") is None  # the ledger never heard of v7
    led.close()

    for start in range(2):
        app = App(cfg, sound=False)
        app.start()
        try:
            assert app.cfg.donation.presets_yen == [200, 300, 700]
        finally:
            app.close()
        led = open_ledger(cfg)
        changes = [e.data for e in led.iter_entries() if e.type == "config_change"]
        led.close()
        assert [(c["version"], c["source"]) for c in changes] == [(7, "portal")], start  # recorded once, not twice


def _push(doc: dict, cfg, cache, version: int, presets: list[int], clip) -> dict:  # noqa: ANN001
    """A config the portal pushed, recorded as the sync thread records it (ledger entry, then
    portal-config.json): the demo's projects, ``presets`` (the first the default) and one clip. Its document."""
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    body = {"projects": projects, "presets_yen": presets, "default_yen": presets[0],
            "playlist": [{"sha256": clip.sha256, "name": "c.mp4", "project": clip.project_id}]}
    norm = configdoc.normalised(configdoc.validate(body))
    led = open_ledger(cfg)
    ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
        {"version": version, "digest": configdoc.digest(norm), "config": norm},
        lambda sha: cache.path(sha).read_bytes())
    led.close()
    return norm


RESTART = r"""
import json, sys
from kiosk.config.cache import load_run_config
from kiosk.app.runtime import App

cfg, cached = load_run_config(sys.argv[1])
app = App(cfg, config_path=sys.argv[1], sound=False)
app.start(movie=False)  # as kiosk run does, up to READY=1
try:
    print(json.dumps({"cached": cached, "pydantic": "pydantic" in sys.modules,
                      "presets": app.cfg.donation.presets_yen, "default": app.cfg.donation.default_yen,
                      "playlist": [it.clip for it in app.cfg.player.playlist],
                      "projects": [p.id for p in app.cfg.projects]}))
finally:
    app.close()
"""


def test_a_restart_takes_the_pushed_config_from_its_cache_without_pydantic(tmp_path: Path) -> None:
    """A kiosk run from the portal has a pushed config: laying it over the file's needs the config's models, and
    the result is the same every start, so it is kept (portal-config.cache) and a restart imports no pydantic
    (cold start, #16). Another push is laid over anew."""
    import json
    import subprocess

    from kiosk.config import to_toml

    doc, cfg, clips, cache = _kiosk(tmp_path)
    path = tmp_path / "kiosk.toml"
    path.write_text(to_toml(cfg), "utf-8")
    projects = [p["id"] for p in doc["projects"]]

    def push(version: int, presets: list[int], clip) -> None:  # noqa: ANN001
        _push(doc, cfg, cache, version, presets, clip)

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def start() -> dict:
        r = subprocess.run([sys.executable, "-c", RESTART, str(path)], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    push(4, [200, 300, 700], clips[1])
    want = {"presets": [200, 300, 700], "default": 200, "playlist": [clips[1].sha256],
            "projects": projects}
    first = start()
    assert first == {"cached": False, "pydantic": True, **want}  # the file and the document validated in full
    assert (cfg.data_dir / "portal-config.cache").exists()
    again = start()
    assert again == {"cached": True, "pydantic": False, **want}  # both from their caches: no pydantic
    push(5, [500, 1000], clips[0])  # the portal pushes another
    third = start()
    assert third["cached"] and third["pydantic"]  # the file's config from its cache, the new document laid over
    assert (third["presets"], third["playlist"]) == ([500, 1000], [clips[0].sha256])
    assert start() == {**third, "pydantic": False}


def test_an_app_built_from_a_model_adopts_a_later_push_after_a_restart(tmp_path: Path) -> None:
    """Seen in the power-cut campaign, whose kiosks are Apps built from a model: the pushed config kept as
    plain parts was swapped into the model at the restart, and the next push failed to copy it (the kiosk
    kept the old amounts while its ledger named the new version, and the portal set its gifts aside). A
    model config keeps models throughout; only `kiosk run`'s plain config takes the kept parts."""
    from kiosk.config.plain import holds_plain
    from kiosk.sync.adopt import overlay

    doc, cfg, clips, cache = _kiosk(tmp_path)
    norm = _push(doc, cfg, cache, 4, [200, 300, 700], clips[1])
    for _ in range(2):  # the second start finds whatever the first one kept
        app = App(cfg.model_copy(deep=True), sound=False)
        app.start()
        try:
            assert app.cfg.donation.presets_yen == [200, 300, 700] and not holds_plain(app.cfg)
            later = overlay(app.cfg, {**norm, "presets_yen": [500, 1000], "default_yen": 500})
            assert later.donation.presets_yen == [500, 1000]
        finally:
            app.close()



def _with_point_rules(doc: dict, clip) -> dict:  # noqa: ANN001
    """A pushed document with the portal's written point rules (v3: one activity, 10 points)."""
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    rules = {"version": 3, "points_per_100_yen": 2,
             "activities": [{"id": "reception-2h", "title": "イベントの受付（2時間）", "points": 10}]}
    body = {"projects": projects, "presets_yen": [100, 500, 1000], "default_yen": 100,
            "playlist": [{"sha256": clip.sha256, "name": "c.mp4", "project": clip.project_id}],
            "points_rules": rules, "points_per_100_yen": 2,
            "activities": configdoc.rule_activities(configdoc.PointRules.model_validate(rules))}
    return configdoc.normalised(configdoc.validate(body))


def _grant_through_the_menu(app: App) -> dict:
    """Staff card (the simulated Suica), Volunteer, the only activity offered, the volunteer's PASMO: the grant's
    data as written."""
    menu = app.staff.menu
    # Each card stays on the simulated reader until it is read (key 1's and key 2's taps last 0.3 s, which a reader
    # thread starved on a loaded CI host can miss: the menu then waited for ever).
    with card_on_reader(app, "suica"):
        app.run(until=lambda a: menu.page == "home", seconds=5)
    menu.model.press("go", "volunteer")
    assert [b.value for b in menu.view().all_buttons if b.action == "activity"] == ["reception-2h"]
    menu.model.press("activity", "reception-2h")
    assert menu.page == "volunteer_tap"  # under rules the points are the rule's: no number to choose
    with card_on_reader(app, "pasmo"):
        app.run(until=lambda a: menu.page == "volunteer_done", seconds=10)
    assert menu.view().notice_level == "green", menu.view().notice
    return [e for e in app.ledger.iter_entries() if e.type == "points_grant"][-1].data


def _staff_card(cfg) -> None:  # noqa: ANN001
    from kiosk.ledger import Pepper
    from kiosk.reader.sim import preset_idm

    cfg.staff.staff_tokens.append(Pepper.load(cfg.pepper_path).token(preset_idm("suica")).hex)


def test_recorded_point_rules_are_in_force_in_the_menu_of_kiosk_run_at_every_start(tmp_path: Path) -> None:
    """`kiosk run` (its plain config): the point rules of the config the portal pushed reach the maintenance menu
    after a restart, from the full validation and from portal-config.cache alike; grants name the rules' version,
    so the portal counts them."""
    from kiosk.config import to_toml
    from kiosk.config.cache import load_run_config

    doc, cfg, clips, cache = _kiosk(tmp_path)
    _staff_card(cfg)
    path = tmp_path / "kiosk.toml"
    path.write_text(to_toml(cfg), "utf-8")
    norm = _with_point_rules(doc, clips[0])
    led = open_ledger(cfg)
    ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
        {"version": 7, "digest": configdoc.digest(norm), "config": norm}, lambda sha: cache.path(sha).read_bytes())
    led.close()
    for start in ("validated", "from portal-config.cache"):
        run_cfg, _ = load_run_config(path)
        app = App(run_cfg, config_path=path, sound=False)
        app.start(movie=False)
        try:
            assert app.cfg.volunteer.rules_version == 3, start
            grant = _grant_through_the_menu(app)
            assert (grant["activity"], grant["points"], grant.get("rules")) == ("reception-2h", 10, 3), start
        finally:
            app.close()
        assert (cfg.data_dir / "portal-config.cache").exists()


def test_point_rules_pushed_while_the_menu_exists_are_in_force_at_once(tmp_path: Path) -> None:
    """The portal pushes rules to a running kiosk whose menu was already built (staff opened it earlier): the next
    grant is under the rules, not the file's free points."""
    from kiosk.sync.adopt import overlay

    doc, cfg, clips, cache = _kiosk(tmp_path)
    _staff_card(cfg)
    app = App(cfg, sound=False)
    app.start(movie=False)
    try:
        assert app.staff.menu.model.s.ops.volunteer.rules_version == 0  # built before the push
        app.adopt_config(overlay(app.cfg, _with_point_rules(doc, clips[0])))  # what _on_pushed_config queues
        grant = _grant_through_the_menu(app)
        assert (grant["activity"], grant["points"], grant.get("rules")) == ("reception-2h", 10, 3)
    finally:
        app.close()


# --- a config pushed to a running kiosk -----------------------------------------------------------------------

def _apply(cfg, cache, norm: dict, version: int) -> None:  # noqa: ANN001
    """Record ``norm`` as the sync thread does (ledger entry, then portal-config.json)."""
    led = open_ledger(cfg)
    ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
        {"version": version, "digest": configdoc.digest(norm), "config": norm},
        lambda sha: cache.path(sha).read_bytes())
    led.close()


def _points_body(doc: dict, clip, pools: list[dict]) -> dict:  # noqa: ANN001
    """The demo's projects and amounts, one clip, and ``pools``: a pushed document."""
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    body = {"projects": projects, "presets_yen": [100, 500, 1000], "default_yen": 100,
            "playlist": [{"sha256": clip.sha256, "name": "c.mp4", "project": clip.project_id}], "pools": pools}
    return configdoc.normalised(configdoc.validate(body))


def _back_to_the_loop(app: App, default_yen: int):  # noqa: ANN202 - the presented loop
    """Someone opens the amounts and comes back to the loop: a fresh loop state, drawn with the new amounts."""
    w, h = app.cfg.player.width, app.cfg.player.height
    app.touch_at((w // 2, h * 3 // 4))
    p = run_until(app, lambda p: p.screen.screen == "choose_amount")
    app.touch_at(target_center(p.targets, chrome.CANCEL))
    return run_until(app, lambda p: p.screen.screen == "attract" and p.snapshot.state.since_ms > 0
                     and p.screen.default_yen == default_yen)


def test_a_pushed_config_keeps_the_points_button_of_a_kiosk_with_pools(tmp_path: Path) -> None:
    """docs/points.md: the exchange button follows the pools of the applied config."""
    from kiosk.sync.adopt import overlay

    doc, cfg, clips, cache = _kiosk(tmp_path)
    norm = _points_body(doc, clips[0], [{"id": "city", "sponsor": "市", "allocations": {cfg.kiosk.id: 500}}])
    _apply(cfg, cache, norm, 4)
    app = App(cfg, sound=False)
    app.start(movie=False)
    try:
        p = run_until(app, lambda p: p.screen.screen == "attract")
        assert p.screen.points_exchange  # the pools at start-up: the button is there
        # The portal pushes new amounts (same pools), as _on_pushed_config does on a running kiosk.
        app.adopt_config(overlay(app.cfg, {**norm, "presets_yen": [200, 500, 1000], "default_yen": 200}))
        app.worker.call(lambda svc: None).result(10)  # the swap has reached the worker
        p = _back_to_the_loop(app, 200)
        assert p.screen.points_exchange, "the 'use your points' button vanished after a config push"
    finally:
        app.close()


def test_a_first_pool_pushed_to_a_running_kiosk_brings_the_points_button(tmp_path: Path) -> None:
    """A kiosk started without pools gets the button with the push that brings its first pool, as the exchange
    itself (which reads the applied config's pools at each exchange) would take it."""
    from kiosk.sync.adopt import overlay

    doc, cfg, clips, cache = _kiosk(tmp_path)
    _apply(cfg, cache, _points_body(doc, clips[0], []), 4)
    app = App(cfg, sound=False)
    app.start(movie=False)
    try:
        p = run_until(app, lambda p: p.screen.screen == "attract")
        assert not p.screen.points_exchange
        norm = _points_body(doc, clips[0], [{"id": "city", "sponsor": "市", "allocations": {cfg.kiosk.id: 500}}])
        _apply(cfg, cache, {**norm, "default_yen": 500}, 5)  # the sync thread records it, then hands it over
        app.adopt_config(overlay(app.cfg, {**norm, "default_yen": 500}))
        app.worker.call(lambda svc: None).result(10)
        p = run_until(app, lambda p: p.screen.screen == "attract" and p.screen.default_yen == 500)
        assert p.screen.points_exchange
    finally:
        app.close()


@pytest.fixture
def square_rig(tmp_path: Path):
    from tests.app.drive import square_app
    from tests.payment.fake_square import FakeSquare

    with FakeSquare() as fake:
        app = square_app(tmp_path, fake, sound=False)
        app.start()
        yield app, fake
        app.close()


def test_a_square_kiosk_still_asks_for_the_terminal_after_a_config_push(square_rig):
    app, _fake = square_rig
    run_until(app, lambda p: p.screen.screen == "attract")
    new = app.cfg.model_copy(deep=True)
    new.donation.presets_yen = [100, 300, 500]  # the portal pushes new amounts
    app.adopt_config(new)
    app.worker.call(lambda svc: None).result(10)  # the swap has reached the worker
    assert app.worker.service.settings.method == "square"
    app.touch_at((160, 90))
    p = run_until(app, lambda p: p.screen.screen == "choose_amount")
    app.touch_at(target_center(p.targets, chrome.AMOUNT, 500))
    p = run_until(app, lambda p: p.screen.screen == "tap_card")
    assert p.screen.on_terminal, "after a push the Square kiosk says 'tap your IC card on the reader' and " \
                                 "offers no 'pay on the terminal' button"
    assert target_center(p.targets, chrome.PAY_ON_TERMINAL) is not None


def test_the_loop_shows_the_amount_a_tap_gives_after_a_config_push(tmp_path: Path, media: Path):  # noqa: F811
    cfg = _cfg(tmp_path / "data", media)
    cfg.player.playlist = cfg.player.playlist[:1]  # one project's movie on this kiosk
    app = App(cfg, sound=False)
    app.start()
    try:
        run_until(app, lambda p: p.screen.screen == "attract" and p.screen.project is not None)
        new = app.cfg.model_copy(deep=True)
        new.donation.presets_yen, new.donation.default_yen = [300, 500, 1000], 300  # the portal pushes new amounts
        app.adopt_config(new)
        app.worker.call(lambda svc: None).result(10)
        app.run(seconds=1.0)  # the loop goes on; nobody touches it
        shown = app.presented.screen
        assert shown.screen == "attract"
        with card_on_reader(app, card_spec(0)):  # one tap gives "the amount on the band"
            run_until(app, lambda p: p.screen.screen == "thanks")
        (charged,) = [c["amount_yen"] for c in app.terminal.charges()]
        assert shown.default_yen == charged, f"the band said {shown.default_yen} yen, the tap charged {charged} yen"
    finally:
        app.close()
