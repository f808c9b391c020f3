"""A config the portal pushed, and the kiosk recorded and reported as applied, is still in force after a
restart (a power cut, an update): the portal will not push it again, so the kiosk must not forget it.

Real parts: the kiosk's ConfigApplier records it (ledger entry + portal-config.json) as the sync thread
does, then a real App starts headless on the same data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from kiosk.app.demo import demo_template
from kiosk.app.runtime import App
from kiosk.config import validate_config
from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.sync.configapply import ConfigApplier
from server_sync.wire import configdoc

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def test_a_pushed_config_is_still_in_force_after_a_restart(tmp_path: Path) -> None:
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
    pushed_clip = clips[1]
    projects = [{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen")} for p in doc["projects"]]
    body = {"projects": projects, "presets_yen": [200, 300, 700], "default_yen": 300,
            "playlist": [{"sha256": pushed_clip.sha256, "name": "c.mp4", "project": pushed_clip.project_id}]}
    norm = configdoc.normalised(configdoc.validate(body))
    led = open_ledger(cfg)
    ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
        {"version": 4, "digest": configdoc.digest(norm), "config": norm}, lambda sha: cache.path(sha).read_bytes())
    led.close()
    assert cfg.donation.presets_yen != [200, 300, 700]  # the file's config is another

    app = App(cfg, sound=False)
    app.start()
    try:
        assert app.cfg.donation.presets_yen == [200, 300, 700] and app.cfg.donation.default_yen == 300
        assert [it.clip for it in app.cfg.player.playlist] == [pushed_clip.sha256]
        assert app.ctx is not None
    finally:
        app.close()
