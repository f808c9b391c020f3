"""`kiosk receipt verify` says its verdict in Japanese first, for the city's accountant and the donor, then the
English lines as before (docs/receipts.md, "For auditors"): verified, and not verified for each reason a reader can
meet, against a real portal on loopback and a relay in front of it that alters its answers. Exit codes unchanged."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sync_helpers import PROJECTS, enrolled, lose_key

from kiosk.sync import receipt_cli
from server_sync.configstore import publish
from server_sync.wire.receipt import receipt_code, receipt_code_of
from tests.loopback import Handler, LoopbackServer, refused_port

OK = "判定：この寄付は確認できました。"
FAILED = "判定：この寄付は確認できませんでした。"
NOT_CHECKED = "判定：まだ何も確かめていません。"
TELL = "  どうすればよいか：この結果と受領証のリンクを保存し、端末が置いてあるセンターと市の担当者に知らせてください。"


def _verify(capsys, *argv: str) -> tuple[int, list[str], list[str]]:  # noqa: ANN001
    from kiosk.cli import main

    capsys.readouterr()
    rc = main(["receipt", "verify", *argv])
    got = capsys.readouterr()
    return rc, got.out.splitlines(), got.err.splitlines()


def _answer(portal, code: str) -> dict:  # noqa: ANN001
    r = requests.get(f"{portal.url}/api/v1/receipts/{code}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _japanese_then_english(lines: list[str], english: str) -> int:
    """The index of the English line that starts with ``english``: every line before it is Japanese, and there is
    at least one."""
    at = next(i for i, ln in enumerate(lines) if ln.startswith(english))
    assert at > 0, lines
    assert all(re.search(r"[ぁ-んァ-ヶ一-龥]", ln) for ln in lines[:at]), lines
    return at


def test_a_verified_receipt_says_so_in_japanese_first_with_the_clock_note_and_the_refund(portal, rig, capsys):
    rig.clock.is_synced = False  # the kiosk clock was not set when it gave
    gifts = rig.donate(3)
    rig.clock.is_synced = True
    gifts += rig.donate(1)
    unsynced, synced = gifts[1], gifts[3]
    rig.ledger.void(unsynced.seq, "refund")
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    kid = rig.ledger.key_id
    size = _answer(portal, receipt_code(unsynced))["verification"]["checkpoint_size"]

    rc, out, err = _verify(capsys, f"{portal.url}/r/{receipt_code(unsynced)}#k={kid}")
    assert rc == 0 and not err
    at = _japanese_then_english(out, "VERIFIED: ¥")
    amount, project = unsynced.data["amount_yen"], unsynced.data["project"]
    assert re.fullmatch(rf"{OK}¥{amount:,}、寄付先 {project}、\d{{4}}-\d\d-\d\d \d\d:\d\d（日本時間）。", out[0]), out
    assert out[1:at] == [
        "  このときの端末の時計は合っていなかったため、日時はずれているおそれがあります。",
        f"  端末 {rig.kiosk_id} の記録 #{unsynced.seq}、署名の鍵（鍵 ID）{kid}。",
        f"  ポータルを信用せずに確かめました：端末の鍵がこの記録に署名していて、端末が署名した記録の要約"
        f"（{size}件）にこの記録が入っています。",
        "  注意：ポータルの記録では、この寄付はそのあと取り消され、返金されています（台帳の別の記録です）。",
    ]
    # The English lines are the ones they were, under the Japanese: the line a script reads is unchanged.
    assert out[at].startswith(f"VERIFIED: ¥{amount:,} to {project}, ") and out[at].endswith(
        " JST (kiosk clock not set at the time)")
    when = out[at].split(", ")[1].removesuffix(" JST (kiosk clock not set at the time)")
    assert f"、{when}（日本時間）" in out[0], (when, out[0])  # the same kiosk clock reading
    assert out[at + 1:] == [f"  kiosk {rig.kiosk_id}, entry {unsynced.seq}, key {kid}",
                            f"  signed by that key, and in its signed checkpoint of {size} entries "
                            "(inclusion proof)",
                            "  note: the portal says this donation was later voided (a separate ledger entry)"]

    # A gift while the clock was set, not refunded: no clock note, no refund note, in either language.
    rc, out, _ = _verify(capsys, f"{portal.url}/r/{receipt_code(synced)}#k={kid}")
    at = _japanese_then_english(out, "VERIFIED: ¥")
    assert rc == 0 and at == 3 and out[0].startswith(OK), out
    assert not any("時計" in ln or "取り消" in ln for ln in out) and "clock" not in out[at] and len(out) == at + 3


def test_every_reason_a_receipt_is_not_verified_is_said_in_japanese_first(portal, rig, capsys):
    publish(portal.app.state.engine, {"projects": PROJECTS})
    gifts = rig.donate(4)
    mine, other = gifts[2], gifts[1]
    rig.ledger.checkpoint()
    assert enrolled(rig, portal).sync_once().ok
    code, kid = receipt_code(mine), rig.ledger.key_id
    genuine = _answer(portal, code)
    v = genuine["verification"]

    def altered(change) -> bytes:  # noqa: ANN001
        d = copy.deepcopy(genuine)
        change(d)
        return json.dumps(d).encode()

    def flip(hexstr: str) -> str:
        b = bytearray(bytes.fromhex(hexstr))
        b[3] ^= 1
        return bytes(b).hex()

    def reroot(note: str) -> str:
        lines = note.split("\n")
        lines[2] = base64.b64encode(bytes(32)).decode()
        return "\n".join(lines)

    # A receipt someone made up: the kiosk's record with another signature, and a link with the code of that pair.
    body = base64.b64decode(v["entry_body"])
    forged_sig = flip(v["entry_signature"])
    forged_code = receipt_code_of(body, bytes.fromhex(forged_sig))

    def resign(note: str) -> str:  # the note's signature line: the kiosk key's name, another signature
        text, _, sig = note.partition("\n\n")
        dash, name, blob = sig.strip("\n").split(" ")
        raw = base64.b64decode(blob)
        return f"{text}\n\n{dash} {name} {base64.b64encode(raw[:4] + bytes(64)).decode()}\n"

    served: dict[str, tuple[int, bytes]] = {
        "amount": (200, altered(lambda d: d["donation"].update(amount_yen=d["donation"]["amount_yen"] + 1000))),
        "project": (200, altered(lambda d: d["donation"].update(project="another-project"))),
        "seq": (200, altered(lambda d: d["donation"].update(seq=d["donation"]["seq"] + 1))),
        "signature": (200, altered(lambda d: d["verification"].update(entry_signature=forged_sig))),
        "proof": (200, altered(lambda d: d["verification"].update(proof=[flip(v["proof"][0]), *v["proof"][1:]]))),
        "checkpoint": (200, altered(lambda d: d["verification"].update(checkpoint=reroot(v["checkpoint"])))),
        "checkpoint-signature": (200, altered(lambda d: d["verification"].update(checkpoint=resign(v["checkpoint"])))),
        "other": (200, json.dumps({**_answer(portal, receipt_code(other)), "receipt": code}).encode()),
        "awaiting": (200, altered(lambda d: [d["verification"].pop(k) for k in ("checkpoint", "proof")])),
        "busy": (503, b'{"detail": "busy"}'),
        "html": (200, b"<html>a login page</html>"),
    }

    class Relay(Handler):  # /<how>/api/v1/receipts/CODE: the portal's answer, altered that way
        def do_GET(self) -> None:  # noqa: N802
            self.answer(*served[self.path.split("/")[1]])

    cases: list[tuple[str, str, str, str]] = []  # (link, verdict + Japanese reason, English line, how)
    with LoopbackServer(Relay) as relay:
        def via(how: str) -> str:
            return f"{relay.url}/{how}/r/{code}#k={kid}"

        cases += [
            (via("amount"), FAILED + "ポータルが示す金額が、端末の署名した記録の金額と違います。",
             "NOT VERIFIED: the portal shows amount_yen=", "tell"),
            (via("project"), FAILED + "ポータルが示す寄付先のプロジェクトが、端末の署名した記録と違います。",
             "NOT VERIFIED: the portal shows project=", "tell"),
            (via("seq"), FAILED + "ポータルが示す端末または番号が、端末の署名した記録と違います。",
             "NOT VERIFIED: the portal shows seq=", "tell"),
            (f"{relay.url}/signature/r/{forged_code}#k={kid}",
             FAILED + "記録に端末の鍵の署名がありません（署名が合いません）。",
             "NOT VERIFIED: the entry signature is not the kiosk key's", "tell"),
            (via("proof"), FAILED + "記録が、端末の署名した記録の要約に入っていません（証明が合いません）。",
             "NOT VERIFIED: the inclusion proof does not reach", "tell"),
            (via("checkpoint"), FAILED + "記録が、端末の署名した記録の要約に入っていません（証明が合いません）。",
             "NOT VERIFIED: the inclusion proof does not reach", "tell"),
            (via("checkpoint-signature"),
             FAILED + "端末が署名した記録の要約（チェックポイント）の、署名か形が正しくありません。",
             "NOT VERIFIED: checkpoint: ", "tell"),
            (via("other"), FAILED + "ポータルは、この受領証コードの寄付ではなく、別の寄付の記録を返しました。",
             "NOT VERIFIED: the signed record served is not this receipt code's", "tell"),
            (via("awaiting"), NOT_CHECKED + "受領証に、署名付きの記録と証明がまだついていません",
             "NOT VERIFIED: the receipt lacks its body", ""),
            (via("busy"),
             NOT_CHECKED + "ポータルがエラーを返しました（HTTP 503）。少し待ってから、もう一度実行してください。",
             "NOT VERIFIED: the portal answered HTTP 503", ""),
            (via("html"),
             NOT_CHECKED + "ポータルの応答が受領証ではありませんでした。リンクのアドレスを確かめてください。",
             "NOT VERIFIED: the portal's answer is not JSON", ""),
            # The real portal: a code it does not know, and a link naming another kiosk key.
            (f"{portal.url}/r/{'A' * 26}#k={kid}", FAILED + "ポータルはこの受領証コードを知りません。",
             "NOT VERIFIED: the portal does not know this receipt code", ""),
            (f"{portal.url}/r/{code}#k={'ab' * 8}",
             FAILED + "応答の鍵が、受領証のリンク（QRコード）に書かれた端末の鍵と違います。",
             f"NOT VERIFIED: the key is {kid}, not the kiosk key abababababababab", "tell"),
        ]
        with refused_port() as port:  # nothing answers there: nothing was checked, nothing said against the gift
            cases.append((f"http://127.0.0.1:{port}/r/{code}#k={kid}",
                          NOT_CHECKED + f"ポータル（http://127.0.0.1:{port}）につながりませんでした。",
                          f"NOT VERIFIED: cannot reach the portal at http://127.0.0.1:{port}", ""))
            for link, japanese, english, how in cases:
                rc, out, err = _verify(capsys, link)
                assert rc == 1 and not err, (link, out, err)
                assert out[0].startswith(japanese), (link, out)
                # What to do, when the answer did not check out (not when nothing could be checked yet).
                assert out[1:-1] == ([TELL] if how == "tell" else []), (link, out)
                assert out[-1].startswith(english), (link, out)  # the English line, last, as before

    # The same answers saved and checked offline (--file) say the same.
    saved = Path(rig.cfg.kiosk.data_dir) / "answer.json"
    saved.write_bytes(served["amount"][1])
    rc, out, _ = _verify(capsys, f"https://nowhere.invalid/r/{code}#k={kid}", "--file", str(saved))
    assert rc == 1 and out == [FAILED + "ポータルが示す金額が、端末の署名した記録の金額と違います。", TELL,
                               out[-1]] and out[-1].startswith("NOT VERIFIED: the portal shows amount_yen=")


def test_a_key_handed_over_on_an_administrators_word_or_forged_is_said_in_japanese(portal, rig, capsys):
    before = rig.donate(2)
    assert enrolled(rig, portal).sync_once().ok
    old_kid = rig.ledger.key_id
    rig.rekey()  # the old key vouches for the new one: checkable
    lose_key(rig, portal, capsys)  # the administrator vouches for the new key: only the portal's word
    rig.donate(1)
    rig.ledger.checkpoint()
    up = rig.uploader(portal.url)
    assert up.sync_once().ok and up.sync_once().ok
    code = receipt_code(before[0])
    rc, out, _ = _verify(capsys, f"{portal.url}/r/{code}#k={old_kid}")
    assert rc == 1 and out == [
        FAILED + "端末の鍵が管理者の判断で取り替えられています。その引き継ぎはポータルが保証するだけなので、"
        "ポータルを信用せずには確かめられません。", TELL, out[-1]], out
    assert out[-1].startswith("NOT VERIFIED: the kiosk's key was replaced on an administrator's word")

    forged = _answer(portal, code)
    forged["verification"]["key_changes"][0]["entry_signature"] = Ed25519PrivateKey.generate().sign(b"x").hex()
    saved = Path(rig.cfg.kiosk.data_dir) / "forged.json"
    saved.write_text(json.dumps(forged), "utf-8")
    rc, out, _ = _verify(capsys, f"https://nowhere.invalid/r/{code}#k={old_kid}", "--file", str(saved))
    assert rc == 1 and out[0] == FAILED + "応答にある、端末の鍵の引き継ぎが確かめられません。", out
    assert out[-1].startswith("NOT VERIFIED: the key change at seq=") and out[-1].endswith(
        "is not signed by the key it replaces"), out


def test_a_link_that_is_not_one_or_has_no_key_or_an_unreadable_file_is_said_in_japanese(portal, rig, capsys):
    code = "A" * 26
    rc, out, err = _verify(capsys, "a note, not a link")
    assert (rc, out) == (2, []) and err == [
        "受領証のリンクではありません。受領証のリンクは https://ポータル/r/受領証コード#k=鍵ID の形です"
        "（端末のQRコードのリンク）。",
        "kiosk receipt verify: 'a note, not a link' is not a receipt link (https://PORTAL/r/CODE#k=KEYID)"]
    rc, out, err = _verify(capsys, f"{portal.url}/r/{code}")
    assert (rc, out) == (2, []) and err[0] == (
        "リンクに端末の鍵 ID（#k=… の部分）がありません。端末のQRコードのリンクを使うか、--key-id で鍵 ID を"
        "指定してください。")
    assert err[1].startswith("kiosk receipt verify: no key id") and len(err) == 2
    missing = Path(rig.cfg.kiosk.data_dir) / "no-such-answer.json"
    rc, out, err = _verify(capsys, f"{portal.url}/r/{code}#k={'ab' * 8}", "--file", str(missing))
    assert (rc, out) == (1, []) and err[0] == (
        f"{NOT_CHECKED}保存した応答 {missing} を読めませんでした（ファイルがないか、受領証の応答ではありません）。")
    assert err[1].startswith(f"kiosk receipt verify: cannot read {missing}") and len(err) == 2


def test_every_step_of_the_check_has_japanese_words_in_the_compiled_catalog():
    """A step check_receipt may fail at (its ``why`` words, read from its source) has a reason in the command's
    table, and every message the command says is translated in the kiosk's compiled Japanese catalog."""
    from kiosk.ui.i18n import gettext_for
    from server_sync.wire import receipt

    source = Path(receipt.__file__).read_text("utf-8")
    steps = set(re.findall(r'why="(\w+)"', source)) | set(re.findall(r'_Refused\("(\w+)"', source))
    shown = set(re.findall(r'\("(\w+)", (?:data\.get|seq\)|obj\.get)', source))  # the facts the portal shows
    assert shown == {"amount_yen", "project", "seq", "kiosk_id"}, shown
    steps |= {f"shown_{n}" for n in shown}
    assert {"incomplete", "other_receipt", "bad_signature", "admin_key_change", "shown_amount_yen"} <= steps
    assert steps - {"verified"} <= set(receipt_cli.REASONS), steps - set(receipt_cli.REASONS)
    ja = gettext_for("ja")
    said = [v for k, v in vars(receipt_cli).items() if k.isupper() and isinstance(v, str)]
    said += list(receipt_cli.REASONS.values())
    assert len(said) > 20
    for msgid in said:
        assert ja(msgid) != msgid, f"{msgid!r} has no Japanese (add it to kiosk/ui/locale/*/kiosk.po and recompile)"
