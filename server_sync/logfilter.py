"""Receipt codes never reach a log: every log record is redacted as it is made.

A receipt code is a bearer token for one donation (docs/receipts.md), so the paths that carry one
(``/r/{code}``, ``/api/v1/receipts/{code}``) become ``/r/…`` and a bare 26-character code becomes ``…``
in a record's message and arguments. uvicorn's access log holds the path in its arguments, its error
log may quote a request line, and our own modules log through the same machinery; a *record factory*
sees every record of the process whatever logger made it and whatever handlers an operator or uvicorn
configures later (a filter on a logger would miss records propagated from its children, and uvicorn
replaces handlers when it configures logging). :func:`install` is called by ``create_app``.

A my page's secret (``/me/<secret>``, docs/privacy.md) is a bearer token too: a path under ``/me/`` other
than the fixed pages becomes ``/me/…`` the same way, for every logger (a logger filter on the loggers
uvicorn uses missed records of any other module, and a message template such as ``"GET /me/%s"`` with the
secret as its argument).
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Anything after these prefixes up to the next / ? # or space: a mistyped code is nearly a real one.
_CODE_PATH = re.compile(r"(/r/|/api/v1/receipts/)[^/?#\s\"']+")
# A bare code (26 characters of base32, upper or lower case) standing alone in a message.
_BARE_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z2-7]{26}(?![A-Za-z0-9])")
MY_PAGE_PATH = re.compile(r"/me/(?!(?:new|claim|claim\.js|closed)(?=[\s\"'?#]|$))[^\s\"'?#]+")
"""A path under /me/ that may hold a secret: anything but the fixed pages (which a log may name)."""


_TOKEN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
"""64 hex digits standing alone: a donor token (HMAC-SHA256) as a database's own error quotes it, e.g.
PostgreSQL's ``Key (token)=(…) already exists``. Blanked in tracebacks only: a log message may name a media file
or an entry by its SHA-256 on purpose."""


def redact(text: str) -> str:
    return MY_PAGE_PATH.sub("/me/…", _BARE_CODE.sub("…", _CODE_PATH.sub(r"\1…", text)))


def redact_traceback(text: str) -> str:
    """A formatted exception, redacted as a message is and with donor tokens blanked."""
    return _TOKEN.sub("…", redact(text))


class RedactReceipts(logging.Filter):
    """Blank receipt codes and my-page secrets in a record, and donor tokens too in its exception's text (never
    drops a record).

    The arguments are redacted one by one, so a formatter that reads them (uvicorn's access log) still
    finds them. A message with arguments is left alone (``"/me/%s"`` is a template, not a secret) unless
    the formatted line still holds something to redact: then the record carries that line, redacted,
    and no arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # The exception's text (a database error quoting a row's values, a path in a request line) is
            # formatted here, once and redacted; formatters print exc_text when it is set.
            record.exc_text = redact_traceback(_FORMATTER.formatException(record.exc_info))
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str) and not record.args:
            record.msg = redact(record.msg)
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: logging reports it as it would have
            return True
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactReceipts()
_FORMATTER = logging.Formatter()


def install() -> None:
    """Redact every record made in this process from now on (idempotent)."""
    old = logging.getLogRecordFactory()
    if getattr(old, "redacts_receipts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = old(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory.redacts_receipts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
