"""The batch and heartbeat answer is read in one statement (server_sync/ingest.py ``answer``): its config
version and pepper epoch must be what configstore.current_version and citypepper.current_epoch say, for
every kind of target and group, on SQLite and PostgreSQL (the subqueries differ from the plain reads)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.ledger.keys import public_raw
from server_sync import citypepper
from server_sync.configstore import current_version
from server_sync.db import configs, create_schema, kiosk_info, make_engine, peppers, writing
from server_sync.enroll import enroll, issue_code
from server_sync.ingest import Ingestor
from server_sync.wire import protocol as P


def _enroll(engine, kid: str) -> None:  # noqa: ANN001
    sk = Ed25519PrivateKey.generate()
    code = issue_code(engine, kid)
    pub = public_raw(sk.public_key()).hex()
    enroll(engine, P.EnrollRequest(kiosk_id=kid, code=code, public_key=pub,
                                   signature=P.b64(sk.sign(P.enroll_message(kid, code, pub)))))


def _publish(engine, version: int, target: str) -> None:  # noqa: ANN001
    with writing(engine) as conn:  # rows as configstore.publish stores them (the document is not read here)
        conn.execute(configs.insert().values(version=version, digest="0" * 64, document="{}", target=target,
                                             created_ms=int(time.time() * 1000)))


@pytest.mark.parametrize("group", [None, "", "lobby"])
def test_the_answers_config_version_and_epoch_are_the_plain_reads(db_url: str, group: str | None) -> None:
    engine = make_engine(db_url)
    try:
        create_schema(engine)
        ing = Ingestor(engine)
        for kid in ("kiosk-a", "kiosk-b"):
            _enroll(engine, kid)
        if group is not None:
            with writing(engine) as conn:
                conn.execute(kiosk_info.insert().values(kiosk_id="kiosk-a", kiosk_group=group))
        seen = []

        def check() -> None:
            with engine.connect() as conn:
                for kid in ("kiosk-a", "kiosk-b", "kiosk-unknown"):
                    ans = ing.answer(conn, kid)
                    assert ans["config_version"] == current_version(conn, kid), (kid, group)
                    assert ans["pepper_epoch"] == citypepper.current_epoch(conn)
                seen.append(ing.answer(conn, "kiosk-a")["config_version"])

        check()  # nothing published: 0
        _publish(engine, 1, "all")
        check()
        _publish(engine, 2, "group:lobby")
        check()
        _publish(engine, 3, "kiosk:kiosk-b")  # another kiosk's own
        _publish(engine, 4, "group:other")
        check()
        _publish(engine, 5, "group:")  # no kiosk is in the empty group
        check()
        _publish(engine, 6, "kiosk:kiosk-a")
        check()
        with writing(engine) as conn:
            top = citypepper.current_epoch(conn)
            conn.execute(peppers.insert().values(epoch=top + 1, pepper=bytes(32), created_ms=0))
        check()
        assert seen == ([0, 1, 2, 2, 2, 6, 6] if group == "lobby" else [0, 1, 1, 1, 1, 6, 6])
    finally:
        engine.dispose()
