"""``kiosk media …``: import, list and verify clips in the media cache.

Registered by the top-level CLI through :func:`register`. Config errors are
left to propagate (the top-level ``main`` turns :class:`ConfigError` into
exit code 2); a bad project id is a usage error (2); a file that cannot be
transcoded, or a cache that fails verification, exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    media = subparsers.add_parser("media", help="movie clips: import, list, verify the media cache",
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


def _usage(cfg) -> dict[str, list[int]]:
    from kiosk.player.media import MediaCache

    cache = MediaCache(cfg.data_dir / "media")
    used: dict[str, list[int]] = {}
    for i, item in enumerate(cfg.player.playlist):
        e = cache.find(item.clip) if item.clip else cache.newest_for(item.project)
        if e is not None:
            used.setdefault(e.sha256, []).append(i)
    return used


def cmd_list(args: argparse.Namespace) -> int:
    from kiosk.player.media import MediaCache

    cfg = _load(args)
    cache = MediaCache(cfg.data_dir / "media")
    entries = cache.entries()
    used = _usage(cfg)
    if not entries:
        print(f"media cache {cache.root} is empty")
        return 0
    print(f"{'sha256':<16} {'project':<20} {'size':>9} {'fps':>5} {'secs':>6}  playlist  title")
    for e in entries:
        where = ",".join(f"#{i}" for i in used.get(e.sha256, [])) or "-"
        present = "" if cache.path(e.sha256).exists() else "  [MISSING]"
        print(f"{e.sha256[:16]:<16} {e.project:<20} {e.width:>4}x{e.height:<4} {e.fps:>5g} {e.duration_s:>6.1f}  "
              f"{where:<8}  {e.title}{present}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from kiosk.player.media import MediaCache

    cfg = _load(args)
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
    print(f"{bad} problem{'s' if bad != 1 else ''}")
    return 1 if bad else 0
