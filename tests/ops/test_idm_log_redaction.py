"""The journal's last defence against a stray IDm: Python's own repr of the card ID is redacted too.

kiosk/ops/logsetup.py promises that a stray ``repr`` or a library's debug line never carries a card's IDm to the
journal (and from there to the staff's USB export, kiosk/staff/usb_export.py). ``%r`` of an IDm does not print
hex: it prints Python's escaped literal, ``b'\\x01.L\\xd8\\xa1\\xb2\\xc3\\xd4'`` for bytes and
``bytearray(b'...')`` for nfcpy's ``Tag.idm``. Those must come out as ``[IDm]`` like the hex does, in the message,
its arguments and a traceback's text; a 16-byte value (a donor token's bytes) stays readable.
"""

from __future__ import annotations

import io
import logging

import pytest

from kiosk.ops.logsetup import has_idm, redact, setup_logging
from tests.app.test_idm_not_in_core_dump import idm_forms

IDMS = [bytes.fromhex(h) for h in ("012E4CD8A1B2C3D4", "01275C22A0B1C2D3", "0101272727272727", "3031323334353637")]


@pytest.fixture
def journal():
    buf = io.StringIO()
    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    handler = setup_logging("DEBUG", stream=buf, env={"JOURNAL_STREAM": "8:1234"})
    yield buf
    root.removeHandler(handler)
    root.setLevel(old_level)
    assert root.handlers == old_handlers


@pytest.mark.parametrize("idm", IDMS, ids=lambda b: b.hex())
def test_a_stray_repr_of_the_idm_never_reaches_the_journal(journal, idm):
    log = logging.getLogger("kiosk.test.idm")
    token_bytes = bytes(range(16))
    log.debug("sensf_res idm=%r tag.idm=%r token=%r", idm, bytearray(idm), token_bytes)
    log.warning(f"card {idm!r} answered late")  # an f-string: the repr is in the message itself
    try:
        raise ValueError(f"answer from a different card: {idm!r} != {bytearray(idm)!r}")
    except ValueError:
        log.exception("read failed")
    text = journal.getvalue()
    lines = text.splitlines()
    assert len(lines) == 3 and text.count("[IDm]") == 5, text
    assert repr(token_bytes) in lines[0]  # not 8 bytes: not an IDm
    raw = text.encode()
    assert [kind for kind, form in idm_forms(idm).items() if form in raw and kind.endswith("repr")] == []


def test_redact_and_has_idm_see_every_literal_of_eight_bytes_and_nothing_else():
    for idm in IDMS:
        for shown in (repr(idm), repr(bytearray(idm))):
            assert redact(f"x {shown} y") == "x [IDm] y" and has_idm(shown)
    assert not has_idm(repr(b"1234567")) and not has_idm(repr(bytes(9)))
    assert redact("job'abcdefgh' stays") == "job'abcdefgh' stays"  # a quote after a word is not a bytes literal
