"""Publishing point rules, volunteer activities or sponsor pools never changes what a kiosk plays.

A portal that never published a playlist (its kiosks play the one of their own kiosk.toml) still builds a config
version for all kiosks when an administrator saves the point rules (or staff the activities, or a pool): it carries
the rules, and an empty playlist because none was set. A kiosk takes that version for its points and keeps playing
its own playlist; a playlist staff made empty (the last video removed) still plays nothing pushed.

A real portal over HTTP on loopback (SQLite and PostgreSQL), a real kiosk uploader that fetches, checks and saves the
config (``portal-config.json``), and the kiosk's own adoption of that file (kiosk/sync/adopt.py ``overlay``, what
``kiosk run`` does at its start and on each pushed config).
"""

from __future__ import annotations

import pytest
import requests
from sync_helpers import PASSWORD, PROJECTS, enrolled, staff_session

from kiosk.config import Project
from kiosk.config.player import PlaylistItem
from kiosk.sync.adopt import overlay
from kiosk.sync.configapply import load_applied
from server_sync import catalog, configstore, pools
from server_sync.staff import add_user

RULES_FORM = {
    "points_per_100_yen": "2",
    "r0_id": "event-shift", "r0_title": "イベントの受付（2時間）", "r0_title_en": "Event shift (2 hours)",
    "r0_points": "10", "r0_description": "センターの催しで2時間、受付や案内をする", "r0_description_en": "",
}
OWN = [("kodomo", "", 1), ("midori", "", 2)]
"""The kiosk's own playlist (its kiosk.toml): project, clip (empty: the newest imported for it), repeat."""


@pytest.fixture
def site(portal):  # noqa: ANN001
    eng = portal.app.state.engine
    catalog.import_catalog(eng, {"projects": PROJECTS})
    add_user(eng, "admin", PASSWORD)
    add_user(eng, "staff1", PASSWORD, "staff")
    return portal


@pytest.fixture
def own(rig):  # noqa: ANN001
    rig.cfg.player.playlist = [PlaylistItem(project=p, clip=c, repeat=r) for p, c, r in OWN]
    return rig


def _runs(rig):  # noqa: ANN001, ANN202
    """What the kiosk runs: its own config with the pushed config it saved laid over it (kiosk run's start)."""
    applied = load_applied(rig.cfg.data_dir)
    assert applied is not None, "the kiosk took no config"
    return applied, overlay(rig.cfg, applied["config"])


def _playlist(cfg) -> list[tuple[str, str, int]]:  # noqa: ANN001
    return [(i.project, i.clip, i.repeat) for i in cfg.player.playlist]


def _post(site, user: str, path: str, form: dict[str, str]) -> requests.Response:  # noqa: ANN001
    s, token = staff_session(site.url, user)
    return s.post(site.url + path, data={**form, "csrf": token}, timeout=10)


def test_saving_point_rules_on_a_portal_without_a_playlist_keeps_each_kiosks_own_playlist(site, own):
    # One more project of the kiosk's own file, which the portal does not run: a gift to it would be set aside at
    # the portal, so once the kiosk runs the portal's projects its clip is left out (as the portal leaves out a
    # project that stopped running).
    own.cfg.projects.append(Project(id="bazaar", title="バザー", area="town"))
    own.cfg.player.playlist.append(PlaylistItem(project="bazaar"))
    up = enrolled(own, site)
    assert _post(site, "admin", "/staff/point-rules", RULES_FORM).status_code == 200
    assert up.sync_once().ok
    applied, cfg = _runs(own)
    with site.app.state.engine.connect() as conn:
        assert applied["version"] == configstore.current_version(conn, own.kiosk_id) > 0
    # The rules arrived: the points rate and the activity are the rules' own...
    assert cfg.volunteer.rules_version == 1 and cfg.donation.points_per_100_yen == 2
    assert [(a.id, a.points) for a in cfg.volunteer.activities] == [("event-shift", 10)]
    # ...and the kiosk plays what it played before: its own playlist, not nothing. The playlists page says so,
    # not "0" videos for all kiosks.
    assert _playlist(cfg) == OWN
    s, _ = staff_session(site.url, "admin")
    row = s.get(site.url + "/staff/playlists", timeout=10).text.split('data-target="all"')[1].split("</tr>")[0]
    assert "プレイリストはまだ公開していません" in row, row
    up.close()


def test_volunteer_activities_and_pools_keep_each_kiosks_own_playlist(site, own):
    up = enrolled(own, site)
    r = _post(site, "staff1", "/staff/volunteer", {"a0_id": "cleanup", "a0_title": "清掃", "a0_title_en": "",
                                                   "a0_points": "5", "a0_max_points": "20"})
    assert r.status_code == 200, r.text[:500]
    assert up.sync_once().ok
    applied, cfg = _runs(own)
    assert [(a.id, a.points, a.max_points) for a in cfg.volunteer.activities] == [("cleanup", 5, 20)]
    assert _playlist(cfg) == OWN
    pools.save_pool(site.app.state.engine, {
        "id": "midori-bank", "sponsor": "みどり銀行", "sponsor_en": "", "funded_yen": 10_000, "yen_per_point": 10,
        "per_kiosk_yen": 1000, "areas": [], "start": None, "end": None})
    assert up.sync_once().ok
    later, cfg = _runs(own)
    assert later["version"] > applied["version"] and later["config"]["pools"][0]["id"] == "midori-bank"
    assert _playlist(cfg) == OWN
    up.close()


def test_a_playlist_staff_published_stays_and_one_they_emptied_plays_nothing(site, own):
    eng = site.app.state.engine
    sha = configstore.add_media(eng, b"not really a movie", "video/mp4")
    item = {"sha256": sha, "name": "春の植樹", "project": "midori"}
    up = enrolled(own, site)
    configstore.republish(eng, target="all", by="staff1", playlist=[item], slides=[])  # the playlist page's publish
    assert _post(site, "admin", "/staff/point-rules", RULES_FORM).status_code == 200
    assert up.sync_once().ok
    _, cfg = _runs(own)
    assert cfg.volunteer.rules_version == 1 and _playlist(cfg) == [("midori", sha, 1)]
    s, _ = staff_session(site.url, "admin")
    row = s.get(site.url + "/staff/playlists", timeout=10).text.split('data-target="all"')[1].split("</tr>")[0]
    assert "<td>1</td>" in row and "プレイリストはまだ公開していません" not in row, row
    # The last video taken out of the playlist (server_sync/movies.py take_down does this): the kiosks play none
    # of the pushed videos, whatever the kiosk's own file says; later rules keep it so.
    configstore.republish(eng, target="all", by="staff1", playlist=[])
    assert _post(site, "admin", "/staff/point-rules", {**RULES_FORM, "r0_points": "12"}).status_code == 200
    assert up.sync_once().ok
    _, cfg = _runs(own)
    assert [(a.id, a.points) for a in cfg.volunteer.activities] == [("event-shift", 12)]
    assert _playlist(cfg) == []
    up.close()
