"""Review 51: a video removed at the portal (someone shown in it withdrew their consent) stayed on every kiosk.

The portal sends the kiosks' playlists again without it (docs/portal.md, "Removing a video"), and the kiosks took the
new playlist, but never deleted a pushed clip: the removed video stayed in ``DATA_DIR/media`` for good, unplayed.
Now, once the new config is durable and the running kiosk has taken it up, the pushed clips that no playlist this
kiosk may still play names are deleted (kiosk/sync/configapply.py ``ConfigApplier.prune``, docs/sync.md "Removed
videos leave the kiosk"); clips imported by hand and demo clips never are, nor what a staged config needs.

A real portal on loopback HTTP (the removal made on its staff page), the kiosk's real ledger, uploader, config
applier and media cache, and real (tiny) movie files; the running kiosk's ``on_config`` does what `kiosk run`'s does
(kiosk/app/staffside.py): the clips into the player's cache, the document laid over its config. The read-only disk
is a real tmpfs remounted read-only (needs root, as tests/mounts.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sync_helpers import PASSWORD, PROJECTS, Rig, enrolled, make_rig, staff_session

from kiosk.config import validate_config
from kiosk.player.media import MediaCache
from kiosk.sync.adopt import adopt_media, overlay
from kiosk.sync.configapply import APPLIED, PRUNED, STAGED
from server_sync import catalog, configstore
from server_sync.db import media_info, writing
from server_sync.staff import add_user
from tests.mounts import small_tmpfs

CATALOG = {"groups": [{"id": "group-a", "name": "Aの会"}],
           "projects": [{**p, "group_id": "group-a"} for p in PROJECTS]}
TITLE = "山田花子さんの夏祭り"
"""The removed video's name: a person's name may be in it, so no log line may carry it."""


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Four real, tiny movies (title cards): "removed", "kept", "next" (for a staged config) and "hand" (imported by
    hand on the kiosk)."""
    from kiosk.player import ensure_demo_media

    root = tmp_path_factory.mktemp("prune-movies")
    names = ("removed", "kept", "next", "hand")
    cfg = validate_config({"kiosk": {"id": "movie-maker", "data_dir": str(root)},
                           "projects": [{"id": n, "title": f"clip {n}", "area": "green", "goal_yen": 1000}
                                        for n in names]}, "<test>", root)
    clips = ensure_demo_media(cfg, size=(64, 36), seconds=0.2, fps=10)
    return {n: c.path.read_bytes() for n, c in zip(names, clips, strict=True)}


def _video(engine: Any, data: bytes, name: str, project: str) -> str:
    sha = configstore.add_media(engine, data, "video/mp4")
    poster = configstore.add_media(engine, b"poster " + sha.encode(), "image/jpeg")
    with writing(engine) as conn:
        conn.execute(media_info.insert().values(sha256=sha, name=name, group_id="group-a", project_id=project,
                                                poster_sha256=poster, created_ms=int(time.time() * 1000)))
    return sha


def _publish(engine: Any, *items: tuple[str, str]) -> int:
    return configstore.republish(engine, "all", "staff1", playlist=[
        {"sha256": sha, "name": sha[:8], "project": project, "repeat": 1} for sha, project in items])["version"]


def _remove_at_portal(url: str, sha: str) -> None:
    """The staff remove the video on its page (the confirmation page lists the playlists it is in)."""
    s, token = staff_session(url, "staff1")
    ask = s.get(f"{url}/staff/media/{sha}/remove", timeout=10)
    listed = re.search(r'name="playlists" value="([^"]*)"', ask.text)
    assert ask.status_code == 200 and listed, ask.text[:300]
    r = s.post(f"{url}/staff/media/{sha}/remove", data={"csrf": token, "playlists": listed[1]}, timeout=10)
    assert r.status_code == 200 and "done=removed" in r.url, r.url
    assert requests.get(f"{url}/api/v1/media/{sha}", timeout=10).status_code == 404


class Kiosk:
    """The running kiosk's side: its uploader with the ledger's writer, and `kiosk run`'s on_config. Its player takes
    each new playlist at once (``plays``; `kiosk run`'s main loop says so once its player has: App.step, tested with
    a real player in tests/sync/test_s33h1_prune_when_played.py)."""

    def __init__(self, rig: Rig, portal: Any, watch: tuple[str, ...] = ()) -> None:
        self.rig, self.media = rig, rig.cfg.data_dir / "media"
        self.watch = watch
        self.plays = True
        self.at_tell: list[dict[str, bool]] = []
        """For each config the kiosk was told of: whether each watched clip's file was there then."""
        self.up = enrolled(rig, portal, on_config=self.on_config) if portal is not None else None

    def on_config(self, record: dict[str, Any]) -> None:
        self.at_tell.append({sha: self.has(sha) for sha in self.watch})
        pushed = record["config"]
        adopt_media(self.media, pushed)  # as kiosk/app/staffside.py _on_pushed_config
        overlay(self.rig.cfg, pushed)
        if self.plays:
            assert self.up is not None
            self.up.applier.player_took(record["version"], record["digest"])

    def has(self, sha: str) -> bool:
        return (self.media / f"{sha}.mp4").exists() or (self.media / sha).exists()

    def indexed(self) -> dict[str, str]:
        return {e.sha256: e.source for e in MediaCache(self.media).entries()}


def _seed(portal: Any, movies: dict[str, bytes]) -> tuple[Any, dict[str, str]]:
    eng = portal.app.state.engine
    catalog.import_catalog(eng, CATALOG)
    add_user(eng, "staff1", PASSWORD, "staff")
    shas = {"removed": _video(eng, movies["removed"], TITLE, "kodomo"),
            "kept": _video(eng, movies["kept"], "雑木林の冬", "midori")}
    _publish(eng, (shas["removed"], "kodomo"), (shas["kept"], "midori"))
    return eng, shas


def _own_clips(rig: Rig, movies: dict[str, bytes]) -> dict[str, str]:
    """The kiosk's demo clips (`kiosk run --demo`: one a project) and one imported by hand (`kiosk media import`),
    with the origin the cache records for each."""
    from kiosk.player import ensure_demo_media

    media = rig.cfg.data_dir / "media"
    own = {c.sha256: "demo" for c in ensure_demo_media(rig.cfg, size=(64, 36), seconds=0.2, fps=10)}
    src = media.parent / "hand.mp4"
    src.write_bytes(movies["hand"])
    own[MediaCache(media).add(src, project="kodomo", title="手で入れた動画", source="hand.mp4").sha256] = "hand.mp4"
    return own


def test_a_video_removed_at_the_portal_leaves_the_kiosk_once_it_plays_the_new_playlist(
        portal, tmp_path: Path, movies: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    eng, shas = _seed(portal, movies)
    rig = make_rig(tmp_path)
    own = _own_clips(rig, movies)
    kiosk = Kiosk(rig, portal, watch=(shas["removed"],))
    assert kiosk.up is not None
    try:
        rig.donate(2)
        assert kiosk.up.sync_once().ok
        kiosk.up.applier.settle(5)
        assert kiosk.indexed() == {shas["removed"]: "portal", shas["kept"]: "portal", **own}

        _remove_at_portal(portal.url, shas["removed"])
        rig.donate(2)
        caplog.set_level(logging.INFO)
        st = kiosk.up.sync_once()
        assert st.ok and st.pending == 0 and "config_error" not in st.extra, st  # the gifts went too
        kiosk.up.applier.settle(5)

        # Told of the new playlist while the file was still there (the player may have been on the old one).
        assert kiosk.at_tell[-1] == {shas["removed"]: True}
        # Then deleted: file, index entry and its "hashed right" record; nothing else.
        media = rig.cfg.data_dir / "media"
        assert not kiosk.has(shas["removed"])
        assert kiosk.indexed() == {shas["kept"]: "portal", **own}
        assert shas["removed"] not in (media / "verified.json").read_text()
        for sha in (shas["kept"], *own):
            assert MediaCache(media).verify(sha, force=True) == "ok"
        applied = json.loads((rig.cfg.data_dir / APPLIED).read_text())
        assert json.loads((rig.cfg.data_dir / PRUNED).read_text()) == {"version": applied["version"],
                                                                          "digest": applied["digest"]}
        said = [r.getMessage() for r in caplog.records if "deleted clip" in r.getMessage()]
        assert said == [f"media: deleted clip {shas['removed'][:12]}: no playlist of this kiosk names it any more"]
        kiosk_said = [r.getMessage() for r in caplog.records if r.name.startswith("kiosk")]
        assert kiosk_said and all(TITLE not in m and "夏祭り" not in m for m in kiosk_said)
        # Taking it up fetched nothing again: the kept clip is in the cache once, no raw copy beside it.
        assert not (media / shas["kept"]).exists()
    finally:
        kiosk.up.applier.close()
        rig.ledger.close(checkpoint=False)


def test_a_power_cut_before_the_deletion_ended_is_finished_at_the_next_start_keeping_a_staged_configs_clips(
        portal, tmp_path: Path, movies: dict[str, bytes]) -> None:
    eng, shas = _seed(portal, movies)
    rig = make_rig(tmp_path)
    own = _own_clips(rig, movies)
    kiosk = Kiosk(rig, portal)
    assert kiosk.up is not None
    assert kiosk.up.sync_once().ok
    kiosk.up.applier.settle(5)

    _remove_at_portal(portal.url, shas["removed"])
    kiosk.plays = False  # the power goes before the player reached a clip boundary of the new playlist
    assert kiosk.up.sync_once().ok
    assert kiosk.has(shas["removed"])
    kiosk.up.applier.close()
    # ... or in the middle of it: the file gone, its index entry not yet.
    (rig.cfg.data_dir / "media" / f"{shas['removed']}.mp4").unlink()
    rig.ledger.close(checkpoint=False)

    # Meanwhile the portal publishes another video, and a standalone `kiosk sync --once` stages it (fetched only).
    nxt = _video(eng, movies["next"], "音楽祭の練習", "ongaku")
    _publish(eng, (shas["kept"], "midori"), (nxt, "ongaku"))
    assert rig.uploader(portal.url, writer=None).sync_once().ok
    assert json.loads((rig.cfg.data_dir / STAGED).read_text())["config"]["playlist"][1]["sha256"] == nxt
    assert (rig.cfg.data_dir / "media" / nxt).exists()

    # The next start: the kiosk runs the applied config; its leftovers go, what the staged config needs stays.
    from kiosk.ops.local_files import open_ledger

    rig.ledger = open_ledger(rig.cfg, clock=rig.clock)
    restarted = Kiosk(rig, None)
    up = restarted.up = rig.uploader(portal.url, on_config=restarted.on_config)
    try:
        up.applier.settle(5)
        assert restarted.has(shas["removed"]) or shas["removed"] in restarted.indexed()  # not before its player plays
        applied = json.loads((rig.cfg.data_dir / APPLIED).read_text())
        up.applier.player_took(applied["version"], applied["digest"])  # as `kiosk run`'s first step does
        up.applier.settle(5)
        assert restarted.indexed() == {shas["kept"]: "portal", **own}
        assert (rig.cfg.data_dir / "media" / nxt).exists() and restarted.has(shas["kept"])
        assert up.applier.prune() == []  # again: nothing more, no error
    finally:
        up.applier.close()
        rig.ledger.close(checkpoint=False)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def test_a_read_only_media_disk_keeps_the_clip_till_it_is_writable_and_the_gifts_still_go(
        portal, tmp_path: Path, movies: dict[str, bytes]) -> None:
    eng, shas = _seed(portal, movies)
    data_dir = tmp_path / "k1"
    data_dir.mkdir()
    with small_tmpfs(data_dir / "media", "4m") as media:
        rig = make_rig(tmp_path, "k1")
        kiosk = Kiosk(rig, portal)
        assert kiosk.up is not None
        applier = kiosk.up.applier
        try:
            assert kiosk.up.sync_once().ok
            applier.settle(5)
            _remove_at_portal(portal.url, shas["removed"])
            applier.prune_retry_s = 0.05
            _mount("-o", "remount,ro", str(media))
            try:
                rig.donate(3)
                st = kiosk.up.sync_once()
                # The new playlist is taken (it needs no new clip) and the gifts are uploaded.
                assert st.ok and st.pending == 0 and "config_error" not in st.extra, st
                assert kiosk.up.state.config_applied == json.loads((data_dir / APPLIED).read_text())["version"]
                assert applier.prune() is None  # a try fails (logged), and the next is planned
                assert kiosk.has(shas["removed"])
                assert not (data_dir / PRUNED).exists() or \
                    json.loads((data_dir / PRUNED).read_text())["version"] != kiosk.up.state.config_applied
            finally:
                _mount("-o", "remount,rw", str(media))
            applier.settle(5)
            assert not kiosk.has(shas["removed"]) and kiosk.has(shas["kept"])
            assert set(kiosk.indexed()) == {shas["kept"]}
        finally:
            applier.close()
            rig.ledger.close(checkpoint=False)
            shutil.rmtree(media, ignore_errors=True)


def test_a_second_copy_beside_a_cached_clip_is_deleted_and_a_copy_that_repairs_one_is_not(
        tmp_path: Path, movies: dict[str, bytes]) -> None:
    """Releases before this one fetched every clip again for each new config version and left the download
    (``media/<sha256>``) beside the cached ``<sha256>.mp4``. The cleanup deletes such a second copy of a clip the
    playlists still name when the cached one verifies; when the cached one is damaged, the download is what repairs
    it (adopt_media), so it stays."""
    from kiosk.sync.adopt import prune_pushed_media

    media = tmp_path / "media"
    media.mkdir()
    shas = {}
    for name in ("kept", "next"):
        sha = hashlib.sha256(movies[name]).hexdigest()
        (media / sha).write_bytes(movies[name])
        shas[name] = sha
    assert set(adopt_media(media, {"playlist": [{"sha256": s, "project": "kept"} for s in shas.values()]})) == set(
        shas.values())
    cache = MediaCache(media)
    for name, sha in shas.items():  # the old releases' second download of each
        (media / sha).write_bytes(movies[name])
    damaged = cache.path(shas["next"])
    damaged.write_bytes(damaged.read_bytes()[:-100])

    assert prune_pushed_media(media, set(shas.values())) == []  # nothing the playlists name is removed
    assert not (media / shas["kept"]).exists() and cache.verify(shas["kept"]) == "ok"
    assert (media / shas["next"]).exists()  # the damaged cached copy's repair stays
    assert set(adopt_media(media, {"playlist": [{"sha256": shas["next"], "project": "kept"}]})) == {shas["next"]}
    assert MediaCache(media).verify(shas["next"], force=True) == "ok"
