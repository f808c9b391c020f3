"""``kiosk media …``: import, list, verify and remove clips in the media cache.

Registered by the top-level CLI through :func:`register`. Config errors are
left to propagate (the top-level ``main`` turns :class:`ConfigError` into
exit code 2); a bad project id, or a clip prefix that names no single clip, is a
usage error (2); a file that cannot be transcoded, a cache that fails
verification, or a clip ``remove`` refuses (the running playlist names it, or
the portal pushed it), exits 1.

"The playlist" is the one ``kiosk run`` runs (:func:`_running`): the config
file's, with the pushed config the kiosk saved laid over it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    media = subparsers.add_parser("media", help="movie clips: import, list, verify, remove in the media cache",
                                  description="Manage the checksummed media cache the movie loop plays from.")
    sub = media.add_subparsers(dest="media_command", metavar="COMMAND", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # SUPPRESS: don't clobber a --config given to the top-level parser.
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                       help="kiosk config file (default: $KIOSK_CONFIG)")
        return p

    imp = with_config(sub.add_parser("import", help="transcode a movie into the cache for a project",
                                     description="Transcode FILE to the panel size (H.264, yuv420p, <=1080p30, "
                                                 "closed GOP, faststart) and store it under its SHA-256."))
    imp.add_argument("file", metavar="FILE", type=Path, help="any movie PyAV/FFmpeg can read")
    imp.add_argument("--project", required=True, metavar="ID", help="project id from [[projects]]")
    imp.add_argument("--title", default="", help="label shown by `kiosk media list` (default: the file name)")
    imp.add_argument("--preset", default="fast", help="x264 speed/quality preset (default: fast)")
    imp.add_argument("--crf", type=int, default=20, help="x264 quality, lower is better (default: 20)")
    imp.set_defaults(func=cmd_import)

    ls = with_config(sub.add_parser("list", help="list clips in the cache and the playlist's use of them"))
    ls.set_defaults(func=cmd_list)

    ver = with_config(sub.add_parser("verify", help="re-hash every clip; exit 1 if any is missing or corrupt"))
    ver.set_defaults(func=cmd_verify)

    rm = with_config(sub.add_parser("remove", help="delete a clip no playlist item names (file and cache record)",
                                    description="Delete a clip imported by hand (or a demo clip) from the cache. "
                                                "Refused for a clip the playlist the kiosk runs names, and for a "
                                                "clip the portal pushed (the kiosk deletes those itself once the "
                                                "portal's playlists no longer name them)."))
    rm.add_argument("sha", metavar="SHA", help="the clip's SHA-256 or a unique prefix (as `kiosk media list` shows)")
    rm.set_defaults(func=cmd_remove)


def _load(args: argparse.Namespace):
    from kiosk.config import load_config

    return load_config(getattr(args, "config", None))


def cmd_import(args: argparse.Namespace) -> int:
    from kiosk.player.media import MediaCache
    from kiosk.player.transcode import MediaError

    cfg = _load(args)
    if cfg.project(args.project) is None:
        known = ", ".join(p.id for p in cfg.projects) or "(none configured)"
        print(f"kiosk media import: unknown project {args.project!r}; known projects: {known}", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"kiosk media import: {args.file}: no such file", file=sys.stderr)
        return 2
    cache = MediaCache(cfg.data_dir / "media")
    t = time.monotonic()
    try:
        e = cache.import_file(args.file, project=args.project, title=args.title, width=cfg.player.width,
                              height=cfg.player.height, preset=args.preset, crf=args.crf)
    except MediaError as exc:
        print(f"kiosk media import: {exc}", file=sys.stderr)
        return 1
    print(f"imported {e.sha256}")
    print(f"  project {e.project}, {e.width}x{e.height} @ {e.fps:g} fps, {e.frames} frames, {e.duration_s:.1f} s "
          f"({time.monotonic() - t:.1f} s to transcode)")
    print("  to play it, add to the config:\n")
    print(f'  [[player.playlist]]\n  project = "{e.project}"\n  clip = "{e.sha256[:16]}"')
    return 0


def _running(cfg) -> tuple[Any, str]:
    """The config ``kiosk run`` runs, and where its playlist comes from in words: the config file with the pushed
    config the kiosk saved (``portal-config.json``) laid over it, read and laid as ``kiosk run`` does at its start
    (kiosk/app/runtime.py ``App._adopt_recorded_config``: ``load_applied``, then ``overlay``; a document that cannot
    be laid over the file leaves the file's config, as there). The file alone on a kiosk no portal ever pushed to."""
    from kiosk.sync.adopt import overlay, sets_playlist
    from kiosk.sync.configapply import APPLIED, load_applied

    applied = load_applied(cfg.data_dir)
    if applied is None:
        return cfg, "the config file's [[player.playlist]]"
    version = applied.get("version")
    try:
        new = overlay(cfg, applied["config"])
    except Exception as exc:  # noqa: BLE001 - as kiosk run: a bad file leaves the config file's playlist in force
        return cfg, (f"the config file's [[player.playlist]] (portal config v{version} in {APPLIED} cannot be used: "
                     f"{' '.join(str(exc).split())[:200]})")
    if sets_playlist(applied["config"]):
        return new, f"the portal's playlist (portal config v{version}, {APPLIED})"
    return new, (f"the config file's [[player.playlist]] (portal config v{version}, {APPLIED}, sets no playlist; "
                 "items of projects the portal does not run left out)")


def _usage(cfg, cache) -> dict[str, list[int]]:
    """Each clip the playlist ``cfg`` names: its SHA-256 → the playlist items (``#i``) that name it."""
    used: dict[str, list[int]] = {}
    for i, item in enumerate(cfg.player.playlist):
        e = cache.find(item.clip) if item.clip else cache.newest_for(item.project)
        if e is not None:
            used.setdefault(e.sha256, []).append(i)
    return used


def _origin(e) -> str:
    """Where a clip came from, as the cache records it (``source``): pushed by the portal (it deletes such a clip
    itself once no playlist names it), a demo title card, imported by hand (``kiosk media import``: the source
    file's name), or "-" for an entry that does not say (older releases)."""
    if e.source == "portal":
        return "portal"
    if e.source == "demo":
        return "demo"
    return "imported" if e.source else "-"


def cmd_list(args: argparse.Namespace) -> int:
    from kiosk.player.media import MediaCache

    cfg, playing = _running(_load(args))
    cache = MediaCache(cfg.data_dir / "media")
    entries = cache.entries()
    if not entries:
        print(f"media cache {cache.root} is empty")
        return 0
    used = _usage(cfg, cache)
    print(f"playlist: {playing}")
    print(f"{'sha256':<16} {'project':<20} {'size':>9} {'fps':>5} {'secs':>6}  playlist  {'from':<8}  title")
    for e in entries:
        where = ",".join(f"#{i}" for i in used.get(e.sha256, [])) or "-"
        present = "" if cache.path(e.sha256).exists() else "  [MISSING]"
        print(f"{e.sha256[:16]:<16} {e.project:<20} {e.width:>4}x{e.height:<4} {e.fps:>5g} {e.duration_s:>6.1f}  "
              f"{where:<8}  {_origin(e):<8}  {e.title}{present}")
    print("playlist -: no item of the playlist above names the clip.\n"
          "from portal: pushed by the portal; the kiosk deletes it once no playlist of the portal names it (take it "
          "out on the portal's Playlists page). from imported or demo: stays till removed (`kiosk media remove SHA`).")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from kiosk.player.media import MediaCache

    cfg, playing = _running(_load(args))  # the playlist the kiosk runs, as `kiosk media list` shows it
    cache = MediaCache(cfg.data_dir / "media")
    bad = 0
    for e in cache.entries():
        status = cache.verify(e.sha256, force=True)  # the explicit check reads every byte
        bad += status != "ok"
        print(f"{status.upper():<8} {e.sha256[:16]} {e.project} {e.title}")
    for i, item in enumerate(cfg.player.playlist):
        if cfg.project(item.project) is None:
            print(f"PLAYLIST #{i}: unknown project {item.project!r}")
            bad += 1
        elif (cache.find(item.clip) if item.clip else cache.newest_for(item.project)) is None:
            print(f"PLAYLIST #{i}: no clip in the cache for project {item.project!r}"
                  + (f" clip {item.clip}" if item.clip else ""))
            bad += 1
    print(f"{bad} problem{'s' if bad != 1 else ''} (playlist: {playing})")
    return 1 if bad else 0


def cmd_remove(args: argparse.Namespace) -> int:
    from kiosk.player.media import MediaCache

    cfg, playing = _running(_load(args))
    cache = MediaCache(cfg.data_dir / "media")
    ref = args.sha.strip().lower()
    e = cache.find(ref) if ref else None
    if e is None:
        hits = [x.sha256[:16] for x in cache.entries() if ref and x.sha256.startswith(ref)]
        why = f"{len(hits)} clips start with it ({', '.join(hits)}): give more digits" if hits else \
            "no clip in the cache starts with it (`kiosk media list`)"
        print(f"kiosk media remove: {args.sha!r}: {why}", file=sys.stderr)
        return 2
    items = _usage(cfg, cache).get(e.sha256, [])
    if items:
        named = "; ".join(f"#{i} (project {cfg.player.playlist[i].project}"
                          + (f", clip {cfg.player.playlist[i].clip[:16]})" if cfg.player.playlist[i].clip
                             else ", its newest clip)") for i in items)
        print(f"kiosk media remove: {e.sha256[:16]} not removed: the kiosk plays it. Playlist item {named} of "
              f"{playing} names it; take it out of that playlist first", file=sys.stderr)
        return 1
    if e.source == "portal":
        print(f"kiosk media remove: {e.sha256[:16]} not removed: the portal pushed it, and the kiosk deletes it "
              "itself once no playlist of the portal names it (take it out on the portal's Playlists page); "
              "a playlist waiting to be taken up may still need it", file=sys.stderr)
        return 1
    try:
        cache.discard(e.sha256)  # the file first, durably, then the record (a power cut leaves no orphan file)
    except OSError as exc:
        print(f"kiosk media remove: {e.sha256[:16]}: cannot delete it ({exc.strerror or exc})", file=sys.stderr)
        return 1
    print(f"removed {e.sha256[:16]} (project {e.project}, {e.title or '-'})")
    return 0
