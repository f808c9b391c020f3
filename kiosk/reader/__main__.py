"""``python -m kiosk.reader reader probe …``: the reader commands without the full ``kiosk`` CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from kiosk.config import ConfigError
from kiosk.reader.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.reader")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    # A probe that finds no reader says what to do in Japanese first, from the screens' catalog, as `kiosk` does
    # (kiosk/cli.py; .importlinter names this import): imported only when it is said.
    parser.set_defaults(ja_gettext=_ja_gettext)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        # The report `kiosk` prints (Japanese first, every problem at once, each with its English line and "did
        # you mean"): staff and installers run this on the kiosk to check the reader. This module is an entry point,
        # the top of its process as kiosk/__main__.py is, so it may use the kiosk command's report (.importlinter
        # names this one import); imported on this failure path only.
        from kiosk.cli import config_report

        print(config_report(exc), file=sys.stderr)
        return 2  # as `kiosk` exits on a bad config


def _ja_gettext() -> Callable[[str], str] | None:
    from kiosk.cli import ja_gettext

    return ja_gettext()


if __name__ == "__main__":
    sys.exit(main())
