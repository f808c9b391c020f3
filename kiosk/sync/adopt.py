"""Adopting a configuration pushed by the portal (projects, amounts, playlist) into the running kiosk.

``server_sync`` validates the document, fetches media by checksum into ``data_dir/media/<sha256>``,
records a ``config_change`` ledger entry and then calls back; this module turns that document into a
:class:`~kiosk.config.KioskConfig` and moves the downloaded clips into the player's media cache.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig, Project, as_model
from kiosk.config.player import EventSlide, PlaylistItem, TimeWindow
from kiosk.config.staff import Activity
from kiosk.ledger.durable import fsync_dir

log = logging.getLogger(__name__)


def sets_playlist(pushed: dict[str, Any]) -> bool:
    """Whether the pushed document sets this kiosk's playlist. One with no clips and no event slides section
    (``slides`` null) does not: the portal's staff never published a playlist for this kiosk's target, and the
    portal built the version to carry point rules, volunteer activities or sponsor pools (docs/sync.md,
    "Configs that set no playlist"). The kiosk keeps the playlist it plays then (at its start: its own
    ``[[player.playlist]]``). A playlist staff published always carries its slides section (a list, maybe empty)
    from the portal's playlist page, so one they emptied (the last video removed) still plays no pushed video."""
    return bool(pushed.get("playlist")) or pushed.get("slides") is not None


def overlay(cfg: KioskConfig, pushed: dict[str, Any]) -> KioskConfig:
    """A copy of ``cfg`` with the portal's projects, amounts, playlist (with its weekday and time
    windows), and, when the portal sends them, event slides and volunteer activities. Pure.

    Playlist items not tied to a project are left out: on this kiosk a tap always gives to the
    project on screen, so a clip with no project could not take a gift. A document that sets no playlist
    (:func:`sets_playlist`: one built for point rules, activities or pools on a portal whose staff never
    published a playlist) leaves ``cfg``'s own, less the items of projects the portal does not run.
    """
    cfg = as_model(cfg)  # the running kiosk's plain copy (kiosk/config/plain.py) as a model: validated again
    new = cfg.model_copy(deep=True)
    new.base_dir = cfg.base_dir
    new.projects = [Project(**{k: p[k] for k in ("id", "title", "title_en", "group", "area", "goal_yen") if k in p})
                    for p in pushed["projects"]]
    # The portal judges every gift against the amounts and points rate of the version the kiosk ran
    # (docs/sync.md, "Policy on ingest"), so the kiosk takes them from the document, not its own file.
    # A document from an older portal lacks the last two: the kiosk's own values stay.
    amounts = {"presets_yen": list(pushed["presets_yen"]), "default_yen": pushed["default_yen"]}
    for key in ("max_per_transaction_yen", "points_per_100_yen"):
        if pushed.get(key) is not None:
            amounts[key] = pushed[key]
    new.donation = new.donation.model_copy(update=amounts)
    if sets_playlist(pushed):
        items = []
        for item in pushed.get("playlist") or []:
            if item.get("project") is None:
                log.warning("pushed clip %s has no project; not shown on this kiosk", item["sha256"][:12])
                continue
            items.append(PlaylistItem(project=item["project"], clip=item["sha256"], repeat=item.get("repeat", 1),
                                      windows=[TimeWindow(**w) for w in item.get("windows", [])]))
        new.player.playlist = items
    else:
        # Its own playlist, but only for projects the portal runs: a gift to any other one would be set aside at the
        # portal (not in the catalog), as the portal leaves out the clips of a project that stopped running.
        ids = {p.id for p in new.projects}
        for item in new.player.playlist:
            if item.project not in ids:
                log.warning("playlist item of project %s left out: the portal does not run that project",
                            item.project)
        new.player.playlist = [i for i in new.player.playlist if i.project in ids]
    if pushed.get("slides") is not None:
        new.player.slides = [EventSlide(**{k: v for k, v in s.items() if k != "windows"},
                                        windows=[TimeWindow(**w) for w in s.get("windows", [])])
                             for s in pushed["slides"]]
    if pushed.get("activities") is not None:
        new.volunteer.activities = [Activity(**a) for a in pushed["activities"]]
    rules = pushed.get("points_rules")
    # Written point rules (docs/points.md): the activities and points rate are the rules' own (the portal's
    # document checks that), each activity's points fixed; grants record the version.
    new.volunteer.rules_version = rules["version"] if rules else 0
    if rules:
        new.volunteer.activities = [Activity(id=a["id"], title=a["title"], title_en=a.get("title_en", ""),
                                             points=a["points"], max_points=a["points"]) for a in rules["activities"]]
        new.donation = new.donation.model_copy(update={"points_per_100_yen": rules["points_per_100_yen"]})
    return type(new).model_validate(new.model_dump()).model_copy(update={"base_dir": cfg.base_dir})


def adopt_media(media_dir: Path, pushed: dict[str, Any]) -> list[str]:
    """Move clips the sync fetched (``media/<sha256>``, checksum already verified) into the player's cache.

    Returns the hashes now playable. A file that is not a playable clip is skipped with one log line,
    as a corrupt cached clip would be. A clip the cache knows whose cached copy is gone or damaged is moved in
    again from a fetched copy (the sync fetches it again then: kiosk/sync/configapply.py).
    """
    from kiosk.player.media import MediaCache

    cache = MediaCache(media_dir)
    known = {e.sha256: e for e in cache.entries()}
    ready = []
    for item in pushed.get("playlist", []):
        sha = item["sha256"]
        raw = media_dir / sha
        if sha in known and not (raw.is_file() and cache.verify(sha) != "ok"):
            ready.append(sha)
            continue
        if not raw.exists():
            log.error("pushed clip %s was not fetched; skipped", sha[:12])
            continue
        try:
            was = known.get(sha)  # moved in again: it keeps where it came from (a clip imported by hand stays so)
            cache.add(raw, project=was.project if was else item.get("project") or "",
                      title=was.title if was else item.get("name", ""), source=was.source if was else "portal",
                      demo_key=was.demo_key if was else "")
            ready.append(sha)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds for a bad file; one line, keep playing
            log.error("pushed clip %s is not a playable movie (%s); skipped", sha[:12], exc)
    return ready


def prune_pushed_media(media_dir: Path, keep: set[str]) -> list[str]:
    """Delete the clips the portal pushed that ``keep`` (every playlist this kiosk may still play) does not name:
    fetched files not yet adopted (``media/<sha256>``) and cache entries whose origin is the portal (``source``
    "portal", as :func:`adopt_media` adds them). Clips imported by hand (``kiosk media import``: the source is the
    file's name) and demo clips (``demo``) are never touched, whatever the playlists say.

    A fetched file beside a cached copy of the same clip that verifies is a second copy (releases before this one
    fetched every clip again for each new config version): it is deleted too, whatever the playlists say.

    Each deletion is one INFO line with the clip's short hash (never its title: a person's name may be in it).
    Idempotent: a file already gone is no error. Every clip is tried; the first OSError (a read-only disk) is
    raised after the rest were tried, so the caller tries again later. Returns the hashes deleted."""
    from kiosk.player.media import MediaCache, is_sha256

    removed: list[str] = []
    failed: OSError | None = None
    cache = MediaCache(media_dir)
    pushed = {e.sha256 for e in cache.entries() if e.source == "portal"}
    try:
        fetched = {p.name for p in media_dir.iterdir() if is_sha256(p.name) and p.is_file()}
    except FileNotFoundError:
        fetched = set()
    for sha in sorted((pushed | fetched) - keep):
        try:
            gone = False
            if sha in fetched:
                (media_dir / sha).unlink(missing_ok=True)
                gone = True
            if sha in pushed:
                gone = cache.discard(sha) or gone
        except OSError as exc:
            log.error("media: cannot delete clip %s, no longer in any playlist of this kiosk (%s); "
                      "tried again later", sha[:12], exc.strerror or exc)
            failed = failed or exc
            continue
        if gone:
            removed.append(sha)
            log.info("media: deleted clip %s: no playlist of this kiosk names it any more", sha[:12])
    # A fetched copy beside a cached one that verifies: a second copy of the same clip, left by releases that fetched
    # every clip again for each new config version. The cached copy plays; the fetched one only takes room on the SD
    # card. (One whose cached copy does not verify stays: adopt_media moves it in again.)
    doubles = []
    for sha in sorted(fetched & keep & {e.sha256 for e in cache.entries()}):
        try:
            if cache.verify(sha) == "ok":
                (media_dir / sha).unlink(missing_ok=True)
                doubles.append(sha)
        except OSError as exc:
            log.error("media: cannot delete a second copy of clip %s (%s); tried again later", sha[:12],
                      exc.strerror or exc)
            failed = failed or exc
    if doubles:
        log.info("media: deleted the second copy of %d clip(s) already in the player's cache", len(doubles))
    if fetched - keep or doubles:
        try:
            fsync_dir(media_dir)
        except OSError as exc:
            failed = failed or exc
    if failed is not None:
        raise failed
    return removed
