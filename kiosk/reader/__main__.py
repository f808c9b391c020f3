"""``python -m kiosk.reader reader probe …``: the reader commands without the full ``kiosk`` CLI."""

from __future__ import annotations

import argparse
import sys

from kiosk.config import ConfigError
from kiosk.reader.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.reader")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
