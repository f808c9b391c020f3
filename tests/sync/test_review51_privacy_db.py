"""A database error the portal cannot handle puts no donor token in its log (docs/privacy.md).

The portal's statements carry donor tokens and my-page secrets. An error it does not handle is logged with its
traceback and answered as a 500. SQLAlchemy's errors quote the statement's parameters unless the engine hides them,
and PostgreSQL's own message quotes the row (``Key (token)=(…) already exists``). Here a real refusal (a token
already held, on the portal's own table and engine, SQLite and PostgreSQL) is logged as the portal logs: the line
names the statement but not the token.
"""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy.exc import IntegrityError

from server_sync import logfilter
from server_sync.db import card_tokens, create_schema, make_engine

TOKEN = "f00dfacecafe" * 5 + "beef"


def test_a_refused_statement_does_not_quote_the_donor_token(db_url: str) -> None:
    eng = make_engine(db_url)
    try:
        create_schema(eng)
        row = {"token": TOKEN, "card": TOKEN, "kiosk_id": "k1", "created_ms": 1}
        with eng.begin() as conn:
            conn.execute(card_tokens.insert(), row)
        with pytest.raises(IntegrityError) as err, eng.begin() as conn:
            conn.execute(card_tokens.insert(), row)
        logfilter.install()  # as create_app does
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        log = logging.getLogger("server_sync.test_review51_privacy_db")
        log.addHandler(handler)
        try:
            try:
                raise err.value
            except IntegrityError:
                log.exception("the database refused a statement")
        finally:
            log.removeHandler(handler)
        text = out.getvalue()
        assert "portal_card_tokens" in text and "IntegrityError" in text  # still says what failed, and where
        assert TOKEN not in text and TOKEN[:16] not in text
    finally:
        eng.dispose()
