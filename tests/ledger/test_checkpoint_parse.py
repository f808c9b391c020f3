"""Checkpoint notes: the one-pattern match of the common note (kiosk/ledger/checkpoint.py, ``_COMMON_NOTE``)
gives the line-by-line parse's answer: the same checkpoint and signature lines for every note it takes,
and every other note goes to the line-by-line parse, which accepts it or names its fault."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger import checkpoint as cpmod

SK = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _verdict(parse, note):
    try:
        return "ok", parse(note)
    except cpmod.CheckpointError as exc:
        return "refused", str(exc)


def _note(origin="civic-kiosk.ledger/k-1", size=5, root=bytes(range(32)), name=None, extensions=()):
    return cpmod.sign(cpmod.Checkpoint(origin, size, root, extensions), SK, name)


def _same(note):
    assert _verdict(cpmod.parse, note) == _verdict(cpmod._parse_any, note)


@pytest.mark.parametrize("note", [
    _note(), _note(size=0), _note(size=2**63 - 1), _note(root=bytes([255]) * 32), _note(origin="a b", name="n"),
    _note(origin="日本語 — ok", name="日本語"), _note(name="other-name"), _note(origin="x\x85y", name="n"),
])
def test_a_kiosks_note_takes_the_one_pattern_path_and_gets_the_same_answer(monkeypatch, note):
    want = cpmod._parse_any(note)
    monkeypatch.setattr(cpmod, "_parse_any", lambda n: pytest.fail("line-by-line parse taken"))
    assert cpmod.parse(note) == want
    cp, sigs = want
    assert cpmod.open_note(note, SK.public_key(), sigs[0][0]) == cp and len(sigs) == 1


_GOOD = _note()
_TEXT, _, _SIGS = _GOOD.partition("\n\n")
_BLOB = _SIGS.split(" ")[2].rstrip("\n")


def _b64_last(text, char):
    """``text`` (base64 ending in one "=") with its last data character replaced: non-canonical when the
    character's two low bits are not zero."""
    return text[:-2] + char + "="


# Every fault the line-by-line parse names, near misses of the pattern, and notes it accepts that the
# pattern leaves to it (extensions, two signatures): the same answer either way.
_MUTATIONS = [
    lambda n: n,
    lambda n: n.replace("\n5\n", "\n05\n"),
    lambda n: n.replace("\n5\n", "\n9223372036854775808\n"),  # 2**63: 19 digits, past the bound
    lambda n: n.replace("\n5\n", "\n9999999999999999999\n"),
    lambda n: n.replace("\n5\n", "\n99999999999999999999\n"),  # 20 digits
    lambda n: n.replace("\n5\n", "\n٥\n"),  # an Arabic-Indic digit
    lambda n: n.replace("\n5\n", "\n+5\n"),
    lambda n: " " + n,
    lambda n: n.replace("/k-1\n", "/k-1 \n"),
    lambda n: n.replace("civic", "\u3000civic", 1),  # an ideographic space before the origin
    lambda n: n.replace("civic", "\x85civic", 1),  # NEL: strip() removes it, the control class does not
    lambda n: "\n" + n,
    lambda n: n.replace("\n", "\r\n"),
    lambda n: n.replace("k-1", "k\x001", 1),
    lambda n: n.replace("k-1", "k\x7f1", 1),
    lambda n: n.replace("k-1", "k\t1", 1),
    lambda n: n + "\n",
    lambda n: n.rstrip("\n"),
    lambda n: n + "— other " + _BLOB + "\n",  # two signature lines: accepted, by the line-by-line parse
    lambda n: n + "— other AAAA\n",
    lambda n: n + "trailing\n",
    lambda n: _TEXT + "\next\n\n" + _SIGS,  # an extension line (unsigned here, but parse only splits)
    lambda n: _TEXT + "\n\n\n" + _SIGS,
    lambda n: n.replace(" ", "  ", 1),
    lambda n: n.replace("— ", "- ", 1),
    lambda n: n.replace("— ", "—\t", 1),
    lambda n: n.replace(_SIGS.split(" ")[1], "na+me", 1),
    lambda n: n.replace(_SIGS.split(" ")[1], "na\u00a0me", 1),  # a no-break space: whitespace to split()
    lambda n: n.replace(_SIGS.split(" ")[1], "na\x85me", 1),
    lambda n: n.replace(_SIGS.split(" ")[1], "na\u2028me", 1),
    lambda n: n.replace(_SIGS.split(" ")[1], "名前", 1),
    lambda n: n.replace(_SIGS.split(" ")[1] + " ", "", 1),
    lambda n: n.replace(_BLOB, _b64_last(_BLOB, "B")),
    lambda n: n.replace(_BLOB, _b64_last(_BLOB, "w")),
    lambda n: n.replace(_BLOB, _BLOB[:-1]),
    lambda n: n.replace(_BLOB, _BLOB[:-2] + "=="),
    lambda n: n.replace(_BLOB, _BLOB + "AAAA"),
    lambda n: n.replace(_BLOB, base64.b64encode(base64.b64decode(_BLOB)[:-1]).decode()),
    lambda n: n.replace(_BLOB, _BLOB.replace("=", "")),
    lambda n: n.replace(_BLOB, _BLOB[:-4] + "-_A="),  # the URL-safe alphabet
    lambda n: _TEXT.rsplit("\n", 1)[0] + "\n" + _b64_last(_TEXT.rsplit("\n", 1)[1], "B") + "\n\n" + _SIGS,
    lambda n: _TEXT.rsplit("\n", 1)[0] + "\n" + _TEXT.rsplit("\n", 1)[1][:-1] + "\n\n" + _SIGS,
    lambda n: _TEXT.rsplit("\n", 1)[0] + "\n" + base64.b64encode(bytes(31)).decode() + "\n\n" + _SIGS,
    lambda n: _TEXT.rsplit("\n", 1)[0] + "\n" + base64.b64encode(bytes(33)).decode() + "\n\n" + _SIGS,
    lambda n: n.split("\n", 1)[1],  # no origin line
    lambda n: "",
    lambda n: "\n\n",
]


@pytest.mark.parametrize("i", range(len(_MUTATIONS)))
def test_mangled_notes_get_the_same_answer_and_reason(i):
    _same(_MUTATIONS[i](_GOOD))


def test_a_note_that_is_not_text_is_refused_as_before():
    for note in (None, b"x", 5):
        assert _verdict(cpmod.parse, note) == ("refused", "note is not text")


_CHARS = st.sampled_from(list("aZ09+/=-_. —\n\r\t\x00\x1f\x7f\x85\u00a0\u2028\u3000é日") + ["\n\n"])


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_random_edits_get_the_same_answer_and_reason(data):
    note = _note(origin=data.draw(st.sampled_from(["civic-kiosk.ledger/k-1", "a b", "é"])), name="n",
                 size=data.draw(st.integers(0, 2**63 - 1)), root=data.draw(st.binary(min_size=32, max_size=32)))
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(note)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(_CHARS)
        if op == "insert":
            note = note[:at] + piece + note[at:]
        elif at < len(note):
            note = note[:at] + ("" if op == "delete" else piece) + note[at + 1:]
    _same(note)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=6), st.text(max_size=6))
def test_any_origin_and_key_name_get_the_same_answer(origin, name):
    # Every character the two free-text fields could hold: whitespace of every kind, controls, "+".
    text = f"{origin}\n5\n{base64.b64encode(bytes(32)).decode()}\n"
    _same(f"{text}\n— {name} {_BLOB}\n")
