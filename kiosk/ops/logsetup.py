"""Logging for journald: stdlib logging to stdout, one line per event, card IDs redacted.

Nothing in the kiosk should ever log an IDm (events carry donor tokens), but
a stray ``repr`` or a library's debug line could. :class:`RedactIdm` is the
defence in depth: it replaces anything shaped like an IDm (16 hex digits on
their own, 8 hex bytes with separators, or the Python literal of 8 bytes that
``%r`` of a bytes or bytearray IDm prints) before a line leaves the process.
Longer hex strings, such as 32-digit donor tokens and 64-digit hashes, are
left alone; a 16-digit decimal number (a microsecond timestamp) is redacted
too, the price of never letting an IDm through. Under systemd (``$JOURNAL_STREAM`` set) each line starts with a
``<N>`` syslog priority so journald files it at the right level.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import TextIO

IDM_RE = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{2}(?:[:\- ][0-9A-Fa-f]{2}){7})(?![0-9A-Fa-f])"
)
# A stray ``repr`` of the IDm itself: nfcpy keeps it as a bytearray, the kiosk as bytes, and ``%r`` of either
# prints Python's escaped literal (b'\x01.L\xd8\xa1\xb2\xc3\xd4'), not hex. Any such literal of exactly 8 bytes.
BYTES_LITERAL_RE = re.compile(
    r"""(?<![\w])(?:bytearray\()?b(?P<q>['"])(?P<body>(?:\\x[0-9a-fA-F]{2}|\\[^x]|(?!(?P=q))[^\\\n])*)(?P=q)\)?"""
)
_LITERAL_UNIT = re.compile(r"\\x[0-9a-fA-F]{2}|\\.|.", re.DOTALL)
REDACTED = "[IDm]"
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def _eight_bytes(m: re.Match[str]) -> bool:
    return len(_LITERAL_UNIT.findall(m.group("body"))) == 8


def redact(text: str) -> str:
    text = BYTES_LITERAL_RE.sub(lambda m: REDACTED if _eight_bytes(m) else m.group(0), text)
    return IDM_RE.sub(REDACTED, text)


def has_idm(text: str) -> bool:
    return IDM_RE.search(text) is not None or any(_eight_bytes(m) for m in BYTES_LITERAL_RE.finditer(text))


class RedactIdm(logging.Filter):
    """Redacts IDm-shaped strings from the formatted message (args included) and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string: keep the raw template rather than lose the line
            msg = str(record.msg)
        record.msg = redact(msg)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class OneLineFormatter(logging.Formatter):
    """Folds tracebacks and multi-line messages into one line, so one event is one journal entry."""

    def __init__(self, journald: bool):
        fmt = "%(levelname)s %(name)s: %(message)s" if journald else "%(asctime)s %(levelname)s %(name)s: %(message)s"
        super().__init__(fmt)
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\r", "").replace("\n", " ⏎ ")
        if self.journald:
            line = f"<{_PRIORITY.get(record.levelno, 6)}>{line}"
        return line


def setup_logging(level: str = "INFO", *, stream: TextIO | None = None,
                  env: Mapping[str, str] | None = None) -> logging.Handler:
    """Route the root logger to ``stream`` (stdout) at ``level`` ([kiosk] log_level); returns the handler.

    Replaces handlers a previous call installed, and a plain console handler (``logging.basicConfig``),
    so it is safe to call again after a config reload and each line is printed once.
    """
    env = os.environ if env is None else env
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(OneLineFormatter(journald=bool(env.get("JOURNAL_STREAM"))))
    # On the handler, not a logger: a filter there sees records from every logger, libraries included.
    handler.addFilter(RedactIdm())
    handler.set_name("kiosk-stdout")
    root = logging.getLogger()
    for h in list(root.handlers):
        # Also a plain console handler (``logging.basicConfig``): left in place it printed every line twice,
        # once without redaction. Capturing handlers (pytest's, a file) are subclasses and stay.
        console = type(h) is logging.StreamHandler and h.stream in (sys.stdout, sys.stderr)
        if h.get_name() == "kiosk-stdout" or console:
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
