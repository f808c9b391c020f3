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

An exception nobody catches never reached these lines: Python's own hooks (``sys.excepthook``,
``threading.excepthook``, ``sys.unraisablehook``) print its traceback straight to stderr, which journald keeps
as it is. :func:`install_exception_hooks` (``kiosk run``) sends such a traceback through the same redaction and
the kiosk's handler instead, as one ``CRITICAL``/``ERROR`` line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TextIO

IDM_RE = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{2}(?:[:\- ][0-9A-Fa-f]{2}){7})(?![0-9A-Fa-f])"
)
# A stray ``repr`` of the IDm itself: nfcpy keeps it as a bytearray, the kiosk as bytes, and ``%r`` of either
# prints Python's escaped literal (b'\x01.L\xd8\xa1\xb2\xc3\xd4'), not hex. Any such literal of exactly 8 bytes
# (the closing parenthesis only with its ``bytearray(``: the text's own after a plain literal stays).
BYTES_LITERAL_RE = re.compile(
    r"""(?<![\w])(?P<ba>bytearray\()?b(?P<q>['"])(?P<body>(?:\\x[0-9a-fA-F]{2}|\\[^x]|(?!(?P=q))[^\\\n])*)(?P=q)(?(ba)\))"""
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


UNCAUGHT = logging.getLogger("kiosk.uncaught")


def _stderr_handler() -> logging.Handler:
    """What an uncaught exception is written with when no handler is left (``run_kiosk`` removes its own on the
    way out, and an exception leaving it reaches the hook after that): stderr, redacted, one line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    handler.addFilter(RedactIdm())
    return handler


def log_uncaught(level: int, what: str, exc_type: type[BaseException], exc: BaseException | None,
                 tb: TracebackType | None) -> None:
    """Log an exception nobody caught: ``what`` (where it happened) and its whole traceback, chained causes
    included, with IDm-shaped strings redacted here already (logging's last-resort handler has no filter).
    Never raises: a hook that fails would print the raw traceback after all."""
    try:
        text = redact(f"{what}: " + "".join(traceback.format_exception(exc_type, exc, tb)).rstrip())
        record = UNCAUGHT.makeRecord(UNCAUGHT.name, level, __file__, 0, "%s", (text,), None)
        if UNCAUGHT.hasHandlers():
            UNCAUGHT.handle(record)
        else:
            _stderr_handler().handle(record)
    except Exception:  # noqa: BLE001 - the last line of defence: say something, never the raw text
        try:
            sys.stderr.write(f"CRITICAL kiosk.uncaught: {what}: {exc_type.__name__} (traceback not printable)\n")
        except Exception:  # noqa: BLE001 - stderr itself is gone
            pass


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    log_uncaught(logging.CRITICAL, "uncaught exception, the process stops", exc_type, exc, tb)


def _thread_excepthook(args: Any) -> None:  # threading.ExceptHookArgs
    if args.exc_type is SystemExit:  # as Python's own hook: a thread that exits is not an error
        return
    name = args.thread.name if args.thread is not None else "?"
    log_uncaught(logging.ERROR, f"uncaught exception in thread {name}, the thread stopped", args.exc_type,
                 args.exc_value, args.exc_traceback)


def _unraisablehook(args: Any) -> None:  # sys.UnraisableHookArgs
    try:
        where = f"{args.err_msg or 'Exception ignored in'}: {args.object!r}"
    except Exception:  # noqa: BLE001 - a broken repr
        where = args.err_msg or "Exception ignored"
    log_uncaught(logging.ERROR, where, args.exc_type, args.exc_value, args.exc_traceback)


def install_exception_hooks() -> None:
    """Route every exception nobody catches through :func:`log_uncaught`: the main thread's
    (``sys.excepthook``), any other thread's (``threading.excepthook``) and those Python can only ignore, in a
    finaliser or ``__del__`` (``sys.unraisablehook``). Python's defaults print them to stderr unredacted,
    straight into the journal. For a process's entry point (``kiosk run``), not for library code."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisablehook
