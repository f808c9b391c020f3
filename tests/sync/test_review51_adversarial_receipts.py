"""Review 51, adversarial: the receipt verifiers never say "verified" for a receipt answer that is not the kiosk's.

Real data: a kiosk ledger (real keys, a real `kiosk rekey`), synced to a real portal on loopback, whose
``GET /api/v1/receipts/CODE`` answers are then mutated, field by field and byte by byte, with hypothesis. Each
mutated answer goes to both verifiers a donor or an auditor has: ``check_receipt`` (``kiosk receipt verify``) and
the receipt page's own script, server_sync/static/receipt.js, run unchanged in Node's WebCrypto
(tests/sync/receipt_js_harness.mjs). Whenever one says verified, what it vouches for must be what the kiosk
signed: the same body and signature, the same signed checkpoint and proof, the same amount, project, seq and
kiosk shown (a mutation that changes none of these, a key case in hex or JSON whitespace, may pass).
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync_helpers import PROJECTS, enrolled, make_rig

from kiosk.ledger import checkpoint as cpmod
from server_sync.configstore import publish
from server_sync.embedded import start_portal
from server_sync.wire.receipt import check_receipt, receipt_code

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], str, str]]:
    """Real receipt answers (doc, code, key id): one of a gift made before a re-key (its answer carries the
    key_change that hands the old key over to the new one) and one after it."""
    tmp = tmp_path_factory.mktemp("receipts")
    rig = make_rig(tmp)
    portal = start_portal(f"sqlite:///{tmp}/portal.db")
    try:
        publish(portal.app.state.engine, {"projects": PROJECTS})
        before = rig.donate(2)
        assert enrolled(rig, portal).sync_once().ok
        old_kid = rig.ledger.key_id
        rig.rekey()
        after = rig.donate(1)
        rig.ledger.checkpoint()
        up = rig.uploader(portal.url)
        assert up.sync_once().ok and up.sync_once().ok
        out = []
        for e, kid in ((before[0], old_kid), (after[0], rig.ledger.key_id)):
            code = receipt_code(e)
            r = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10)
            assert r.status_code == 200, r.text
            out.append((r.json(), code, kid))
        assert out[0][0]["verification"]["key_changes"], "the old gift's answer carries the hand-over"
        return out
    finally:
        portal.stop()
        rig.ledger.close(checkpoint=False)


class Page:
    """receipt.js in Node, one process for the module (tests/sync/receipt_js_harness.mjs)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([_node(), str(ROOT / "tests/sync/receipt_js_harness.mjs"),
                                      str(ROOT / "server_sync/static/receipt.js")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def check(self, doc: Any, code: str, kid: str, project_shown: str = "") -> dict[str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"doc": json.dumps(doc), "path": f"/r/{code}", "hash": f"#k={kid}", "project_shown": project_shown}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def _node() -> str:
    """A Node.js: the system's, else the one Playwright (a test dependency) ships to drive its browsers."""
    import playwright

    return shutil.which("node") or str(Path(playwright.__file__).parent / "driver" / "node")


@pytest.fixture(scope="module")
def page() -> Any:
    p = Page()
    yield p
    p.close()


# --- what a verifier may vouch for -----------------------------------------------------------------------
def _claim(doc: Any) -> tuple[Any, ...] | None:
    """What a verified answer vouches for, decoded (hex case and JSON layout do not matter), or None if the answer
    cannot even be decoded that far (then it must not verify)."""
    try:
        v, d = doc["verification"], doc["donation"]
        note = cpmod.parse(v["checkpoint"])[0]
        kcs = tuple((base64.b64decode(k["entry_body"], validate=True), bytes.fromhex(k["entry_signature"]),
                     tuple(bytes.fromhex(p) for p in k["proof"])) for k in v.get("key_changes") or [])
        return (base64.b64decode(v["entry_body"], validate=True), bytes.fromhex(v["entry_signature"]),
                bytes.fromhex(v["public_key"]), note, tuple(bytes.fromhex(p) for p in v["proof"]), kcs,
                d["amount_yen"], d["project"], d["seq"], d["kiosk_id"])
    except Exception:  # noqa: BLE001 - anything undecodable is no claim at all
        return None


def _signed_shown(doc: dict[str, Any]) -> tuple[str, str]:
    body = json.loads(base64.b64decode(doc["verification"]["entry_body"]))
    return f"¥{body['data']['amount_yen']:,}", body["data"]["project"]


def _leaves(x: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(x, dict):
        return [p for k, v in x.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(x, list):
        return [p for i, v in enumerate(x) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    for p in path[:-1]:
        doc = doc[p]
    if delete:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


def _mutate_text(s: str, data: st.DataObject) -> str:
    """One character of ``s`` changed, dropped or added (for base64, hex and the note: their alphabets)."""
    alphabet = "0123456789abcdefABCDEF+/=\n \u2014AQgw" + s[:40]
    i = data.draw(st.integers(0, len(s)))
    how = data.draw(st.sampled_from(["replace", "drop", "insert"]))
    c = data.draw(st.sampled_from(alphabet))
    if how == "replace" and i < len(s):
        return s[:i] + c + s[i + 1:]
    if how == "drop" and i < len(s):
        return s[:i] + s[i + 1:]
    return s[:i] + c + s[i:]


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with one to three fields replaced, mangled, dropped, or taken from elsewhere in the answer."""
    out = copy.deepcopy(doc)
    data = draw(st.data())
    for _ in range(draw(st.integers(1, 3))):
        paths = _leaves(out)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        cur: Any = out
        for p in path:
            cur = cur[p]
        other_path = draw(st.sampled_from(paths))
        other: Any = out
        for p in other_path:
            other = other[p]
        how = draw(st.sampled_from(["text", "other", "int", "none", "drop", "list", "float"]))
        if how == "text" and isinstance(cur, str):
            _set(out, path, _mutate_text(cur, data))
        elif how == "other":
            _set(out, path, copy.deepcopy(other))
        elif how == "int" and isinstance(cur, int):
            _set(out, path, cur + draw(st.sampled_from([-1, 1, 1000, -cur])))
        elif how == "float" and isinstance(cur, int) and not isinstance(cur, bool):
            _set(out, path, cur + 0.5)
        elif how == "none":
            _set(out, path, None)
        elif how == "drop":
            _set(out, path, None, delete=True)
        elif how == "list" and isinstance(path[-1], int):
            lst: Any = out
            for p in path[:-1]:
                lst = lst[p]
            if draw(st.booleans()):
                lst.insert(path[-1], copy.deepcopy(lst[path[-1]]))  # a hash twice: an extra proof step
            else:
                lst.reverse()
    return out


def _verdicts(page: Page | None, doc: Any, code: str, kid: str, genuine_doc: dict[str, Any]) -> None:
    """Each verifier's verdict on ``doc``, held to the genuine answer's claim."""
    want = _claim(genuine_doc)
    res = check_receipt(doc, kid, code=code)  # a verdict, never an exception, whatever the portal serves
    if res.ok:
        assert _claim(doc) == want, f"check_receipt verified a changed claim: {res.reason}"
    if page is not None:
        amount, project = _signed_shown(genuine_doc)
        seen = page.check(doc, code, kid, project_shown=project)
        if seen["result"] == "ok":
            claim = _claim(doc)
            assert claim is not None and claim[:6] == want[:6] and claim[6:] == want[6:], seen  # type: ignore[index]
            assert (seen["amount"], seen["project"]) == (amount, project), seen


def test_the_genuine_answers_verify_in_both_verifiers(genuine, page):
    for doc, code, kid in genuine:
        assert check_receipt(doc, kid, code=code).ok
        seen = page.check(doc, code, kid, _signed_shown(doc)[1])
        assert seen["result"] == "ok", seen


@SETTINGS
@given(data=st.data(), which=st.sampled_from([0, 1]))
def test_no_field_mutation_of_a_real_receipt_verifies_a_changed_claim(genuine, page, data, which):
    doc, code, kid = genuine[which]
    _verdicts(page, data.draw(mutated(doc)), code, kid, doc)


@SETTINGS
@given(data=st.data(), which=st.sampled_from([0, 1]))
def test_no_byte_mutation_of_a_real_receipt_verifies_a_changed_claim(genuine, page, data, which):
    doc, code, kid = genuine[which]
    raw = json.dumps(doc).encode()
    i = data.draw(st.integers(0, len(raw) - 1))
    b = data.draw(st.integers(0, 255))
    changed = raw[:i] + bytes([b]) + raw[i + 1:]
    try:
        bad = json.loads(changed)
    except ValueError:
        return  # not JSON: no verifier gets that far
    _verdicts(page, bad, code, kid, doc)


def test_fields_of_the_wrong_json_type_are_not_verified_rather_than_a_traceback(genuine, tmp_path, capsys):
    """Until review 51 an answer whose ``key_changes`` was a number, or whose ``donation`` was not an object, made
    ``check_receipt`` raise TypeError/AttributeError: `kiosk receipt verify` printed a Python traceback for the
    auditor instead of NOT VERIFIED."""
    from kiosk.cli import main

    doc, code, kid = genuine[1]
    for path, value in ((("verification", "key_changes"), 14), (("donation",), ["x"]), (("verification",), "x"),
                        (("verification", "key_changes"), [1])):
        bad = copy.deepcopy(doc)
        _set(bad, path, value)
        res = check_receipt(bad, kid, code=code)
        assert not res.ok, path
        saved = tmp_path / "bad.json"
        saved.write_text(json.dumps(bad), "utf-8")
        assert main(["receipt", "verify", f"https://portal.invalid/r/{code}#k={kid}", "--file", str(saved)]) == 1
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("判定：") and out[-1].startswith("NOT VERIFIED: "), (path, out)
