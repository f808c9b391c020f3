"""schemathesis against the served OpenAPI spec: no input, valid or not, signed or not, gives a 500."""

from __future__ import annotations

import json
import time

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sync_helpers import enrolled

from kiosk.ledger import keys
from server_sync.wire import protocol as P

EXAMPLES = 6  # per operation and mode: enough to hit every branch of the parsers, cheap enough for CI


def _sign(case, rig, sk) -> tuple[str, bytes, dict]:  # noqa: ANN001
    """Send the generated case as the enrolled kiosk, so fuzzing reaches past authentication."""
    case.path_parameters = {**(case.path_parameters or {}), "kiosk_id": rig.kiosk_id}
    path = case.formatted_path
    raw = case.body
    if raw is None or type(raw).__name__ == "NotSet":
        body = b""
    elif isinstance(raw, (bytes, bytearray)):
        body = bytes(raw)
    else:
        body = json.dumps(raw, default=str).encode()
    idem = "fuzz-" + str(time.monotonic_ns()) if path.endswith("/batches") else ""
    headers = P.sign_request(sk, rig.kiosk_id, case.method, path, body, int(time.time()), idem)
    headers["Content-Type"] = "application/json"
    return path, body, headers


def test_no_operation_answers_500(portal, rig):
    rig.donate(3)
    assert enrolled(rig, portal).sync_once().ok
    sk = keys.load_private(rig.cfg.private_key_path)
    schema = schemathesis.openapi.from_url(portal.url + "/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 15
    failures: list[str] = []
    session = requests.Session()
    for op in ops:
        signed = "{kiosk_id}" in op.path
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(mode), sign=st.booleans() if signed else st.just(False))
            def run(case, sign):  # noqa: ANN001
                if sign:
                    path, body, headers = _sign(case, rig, sk)
                    resp = session.request(case.method, portal.url + path, data=body or None, headers=headers,
                                           timeout=10)
                else:
                    resp = case.call(base_url=portal.url, session=session, timeout=10)
                if resp.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:200]}")
                # Every JSON refusal says why.
                if 400 <= resp.status_code < 500:
                    try:
                        answer = json.loads(resp.content)
                    except ValueError:
                        answer = None
                    if isinstance(answer, dict):
                        assert answer.get("reason"), answer

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to break in an operation without inputs
    assert not failures, "\n".join(failures[:10])
    # The fuzzing never changed the real totals (nothing forged got in).
    assert requests.get(portal.url + "/api/v1/totals", timeout=10).json() == rig.expected_totals()
