"""Run the movie loop on its own: ``python -m kiosk.player --config kiosk.toml [--demo] [--seconds N]``.

For trying the player before the full kiosk app wires it in. ``--demo``
generates title-card clips for the configured projects and plays them when
the playlist is empty. Prints the final totals as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from kiosk.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kiosk.player", description=__doc__.splitlines()[0])
    ap.add_argument("--config", metavar="FILE", help="kiosk config file (default: $KIOSK_CONFIG)")
    ap.add_argument("--demo", action="store_true", help="generate demo clips and play them if the playlist is empty")
    ap.add_argument("--headless", action="store_true", help="use SDL's dummy video driver")
    ap.add_argument("--seconds", type=float, help="stop after this many seconds")
    ap.add_argument("--frames", type=int, help="stop after this many presented frames")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        # The report `kiosk` prints (Japanese first, every problem at once, each with its English line and "did
        # you mean"): staff and installers run this on the kiosk to check the screen. This module is an entry point,
        # the top of its process as kiosk/__main__.py is, so it may use the kiosk command's report (.importlinter
        # names this one import); imported on this failure path only.
        from kiosk.cli import config_report

        print(config_report(exc), file=sys.stderr)
        return 2  # as `kiosk` exits on a bad config
    logging.basicConfig(level=cfg.kiosk.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kiosk.player import Player, demo_playlist, ensure_demo_media

    if args.headless:
        cfg.player.display = "headless"
    if args.demo:
        clips = ensure_demo_media(cfg, size=(cfg.player.width, cfg.player.height))
        if not cfg.player.playlist:
            cfg.player.playlist = demo_playlist(clips)
    with Player(cfg, config_path=args.config or os.environ.get("KIOSK_CONFIG")) as player:
        player.run(seconds=args.seconds, frames=args.frames)
        totals = dict(player.metrics.totals, startup_ttff_ms=player.metrics.startup_ttff_ms,
                      decoder=player.decoder_name)
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
