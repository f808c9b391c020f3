"""schemathesis against the served OpenAPI spec: no input, valid or not, signed or not, gives a 500 (SQLite and
PostgreSQL). The spec's request bodies resolve (server_sync/openapi.py), so signed batch uploads are generated
from the real BatchRequest schema and reach the portal's body validation and ingest checks: the test counts
them by the portal's answers and fails if the batches were never fuzzed past authentication."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sync_helpers import enrolled

from kiosk.ledger import keys
from server_sync.wire import protocol as P

EXAMPLES = int(os.environ.get("KIOSK_FUZZ_EXAMPLES", "6"))
"""Per operation and mode: enough to hit every branch of the parsers, cheap enough for CI."""
BATCH_EXAMPLES = int(os.environ.get("KIOSK_FUZZ_BATCH_EXAMPLES", "40"))
"""The batch upload is the portal's largest input: fuzzed harder."""
# Answers that mean the request stopped before its body was looked at.
BEFORE_BODY = {"unsigned", "bad_created", "stale_request", "unknown_kiosk", "bad_request_signature",
               "digest_mismatch", "bad_idempotency_key", "idempotency_key_required", "too_large",
               "bad_content_length", "method_not_allowed", "not_found", "rate_limited"}
# Answers of the body's schema check (pydantic); anything else past BEFORE_BODY passed it.
SCHEMA_REFUSALS = {"malformed_json", "invalid_request", "batch_too_large"}


def _sign(case, rig, sk) -> tuple[str, bytes, dict]:  # noqa: ANN001
    """Send the generated case as the enrolled kiosk, so fuzzing reaches past authentication."""
    case.path_parameters = {**(case.path_parameters or {}), "kiosk_id": rig.kiosk_id}
    path = case.formatted_path
    raw = case.body
    if isinstance(raw, dict) and "kiosk_id" in raw and path.endswith("/batches"):
        raw = {**raw, "kiosk_id": rig.kiosk_id}  # a kiosk uploads its own ledger: get past that check
        ents = raw.get("entries")
        if isinstance(ents, list) and ents and all(isinstance(e, dict) for e in ents) and \
                isinstance(raw.get("first_seq"), int):
            # Consistent numbering, so the fuzzed entries themselves reach the decoding and chain checks.
            first = raw["first_seq"]
            raw["entries"] = [{**e, "seq": first + i} for i, e in enumerate(ents)]
            raw["last_seq"] = first + len(ents) - 1
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


def _batch_answer(resp: requests.Response) -> str:
    """The portal's error code for a batch upload; ``entry_decoding`` for a body that passed the schema and
    failed on an entry's base64 or signature length (the same 422 code, but past the schema)."""
    if resp.status_code == 200:
        return "ok"
    try:
        answer = json.loads(resp.content)
    except ValueError:
        return f"http_{resp.status_code}"
    code = str(answer.get("error"))
    if code == "invalid_request" and str(answer.get("reason", "")).startswith("entries["):
        return "entry_decoding"
    if os.environ.get("KIOSK_FUZZ_VERBOSE"):
        print(code, answer.get("reason"))
    return code


def test_no_operation_answers_500(portal, rig):
    rig.donate(3)
    assert enrolled(rig, portal).sync_once().ok
    sk = keys.load_private(rig.cfg.private_key_path)
    spec = requests.get(portal.url + "/openapi.json", timeout=10).json()
    # Every reference points into the document (a bare "#/$defs/..." does not resolve from its root).
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec)))
    assert refs and all(r.startswith("#/components/schemas/") and r.rsplit("/", 1)[1] in spec["components"]["schemas"]
                        for r in refs), refs
    assert "WireEntry" in spec["components"]["schemas"]
    schema = schemathesis.openapi.from_url(portal.url + "/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 15
    failures: list[str] = []
    batch_answers: Counter[str] = Counter()
    session = requests.Session()
    for op in ops:
        signed = "{kiosk_id}" in op.path
        is_batch = op.path.endswith("/batches")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=BATCH_EXAMPLES if is_batch else EXAMPLES, deadline=None, database=None,
                      derandomize=True, suppress_health_check=list(HealthCheck))
            # Batches are signed three times in four: the point is to reach past authentication.
            @given(case=op.as_strategy(mode), sign=(st.integers(0, 3).map(bool) if is_batch else st.booleans())
                   if signed else st.just(False))
            def run(case, sign):  # noqa: ANN001
                if sign:
                    path, body, headers = _sign(case, rig, sk)
                    resp = session.request(case.method, portal.url + path, data=body or None, headers=headers,
                                           timeout=10)
                    if case.formatted_path.endswith("/batches"):
                        batch_answers[_batch_answer(resp)] += 1
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
    # Batches were fuzzed: signed uploads reached the body's schema check, and some passed it into ingest.
    reached = sum(n for c, n in batch_answers.items() if c not in BEFORE_BODY)
    past_schema = sum(n for c, n in batch_answers.items() if c not in BEFORE_BODY | SCHEMA_REFUSALS)
    print(f"batch answers: {dict(batch_answers)}")
    assert reached >= BATCH_EXAMPLES // 4, batch_answers
    assert past_schema >= 1, batch_answers
    # The fuzzing never changed the real totals (nothing forged got in).
    assert requests.get(portal.url + "/api/v1/totals", timeout=10).json() == rig.expected_totals()
