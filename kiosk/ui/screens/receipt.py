"""The receipt QR code, made fast enough to sit on the tap-to-thank-you path.

``ui.qr`` lets segno try all eight mask patterns and sets pixels one by one:
about 4-13 ms here. Here the mask is fixed (every decoder reads every mask; the
penalty search only polishes scan margins, and the code is shown large on a
white card), the result is cached per URL (the thank-you is redrawn every
frame), and the pixels are written as one 8-bit buffer.

Even with a fixed mask, ``segno.make`` is about 2 ms of pure Python (4x that on
a quarter of a core) and every gift has a new receipt code. But the URLs
differ only in the code: ``{base}/r/{code}#k={key}`` with a code of fixed
length. For one length the version, the error level, the header bits, the
padding and the mask are the same, and every step from the data bits to the
modules (Reed-Solomon, interleaving, placement, the mask) is affine over GF(2).
So one code made by segno per (base, key, length) is a template, and another
code's matrix is the template with the modules flipped where its bits differ:
the Reed-Solomon of the *difference* of the two codes' data (a few hundred
table look-ups) placed at the template's module positions. The result is
segno's matrix exactly (``tests/app/test_tap_path.py`` compares them over
random codes); anything the template does not cover (another length, a
non-ASCII character, a mode other than byte) goes to segno.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

import msgspec
import pygame

if TYPE_CHECKING:
    import segno

log = logging.getLogger(__name__)

QUIET = 2
FIXED_MASK = 0
_PALETTE = [(255, 255, 255), (0, 0, 0)]


class _Template(msgspec.Struct, frozen=True):
    """One URL's matrix and where each bit of the final message sits in it."""

    url: bytes
    start: int
    """Byte offset of the receipt code in the URL."""
    header_bits: int
    """Mode indicator and character count before the first data byte."""
    width: int
    matrix: bytes
    """The template's modules, row by row, 0/1."""
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...]
    """Per Reed-Solomon block: first data codeword, number of data codewords, generator polynomial."""
    data_pos: tuple[int, ...]
    """Data codeword index → its index in the final (interleaved) message."""
    ecc_pos: tuple[tuple[int, ...], ...]
    """Per block, error codeword j → its index in the final message."""
    module_of_bit: tuple[int, ...]
    """Final message bit → module index (row * width + col)."""


def _segno(url: str) -> segno.QRCode:
    import segno  # off the start path (its writers pull in urllib, http, email); the app warms it (App.step)

    return segno.make(url, error="m", micro=False, mask=FIXED_MASK)


def _segno_internals() -> tuple[Any, Any]:
    """segno's ``consts`` and ``encoder`` modules, which the template reads (imported on first use)."""
    from segno import consts, encoder

    return consts, encoder


@lru_cache(maxsize=8)
def _template(prefix: str, suffix: str, length: int) -> _Template | None:
    # The template reads segno's encoder module, which is not its public API: if a future segno moves
    # it, the thank-you must still show a QR, so any failure here means "no template" and segno itself
    # draws the code (tests/app/test_tap_path.py compares the two and would fail loudly in CI).
    try:
        return _make_template(prefix, suffix, length)
    except Exception:  # noqa: BLE001 - the fallback is segno's public API, always correct
        log.warning("receipt QR template unavailable with this segno; using segno.make", exc_info=True)
        return None


def _make_template(prefix: str, suffix: str, length: int) -> _Template | None:
    consts, _enc = _segno_internals()
    url = prefix + "A" * length + suffix
    if not url.isascii():
        return None
    code = _segno(url)
    # Through segno's public properties (its private _mode, _version, _error are not in its type hints): one
    # byte-mode segment, a QR code (not a Micro QR, whose version is a name such as "M4"), and the level's
    # number in segno's tables.
    version = code.version
    if code.mode != "byte" or not isinstance(version, int):
        return None
    error = consts.ERROR_MAPPING[code.error]
    width = len(code.matrix)
    # Where each final-message bit goes: segno's own placement, with bit numbers instead of bits.
    grid = [list(row) for row in _enc.make_matrix(width, width)]
    _enc.add_finder_patterns(grid, width, width)
    _enc.add_alignment_patterns(grid, width, width)
    n_bits = sum(1 for row in grid for v in row if v == 0x2)
    _enc.add_codewords(grid, list(range(3, 3 + n_bits)), version)
    module_of_bit = [0] * n_bits
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v >= 3:
                module_of_bit[v - 3] = i * width + j
    # Blocks and the interleaved order (segno.encoder.make_blocks and make_final_message).
    blocks: list[tuple[int, int, tuple[int, ...]]] = []
    data_blocks: list[list[int]] = []
    ecc_blocks: list[list[tuple[int, int]]] = []
    first = 0
    for info in consts.ECC[version][error]:
        n_ecc = info.num_total - info.num_data
        for _ in range(info.num_blocks):
            blocks.append((first, info.num_data, tuple(consts.GEN_POLY[n_ecc])))
            data_blocks.append(list(range(first, first + info.num_data)))
            ecc_blocks.append([(len(ecc_blocks), j) for j in range(n_ecc)])
            first += info.num_data
    order = [d for d in (x for col in zip_longest(*data_blocks) for x in col) if d is not None]
    data_pos = [0] * first
    for pos, d in enumerate(order):
        data_pos[d] = pos
    ecc_order = [e for e in (x for col in zip_longest(*ecc_blocks) for x in col) if e is not None]
    ecc_pos = [[0] * len(b) for b in ecc_blocks]
    for pos, (b, j) in enumerate(ecc_order):
        ecc_pos[b][j] = first + pos
    count_bits = 8 if version < 10 else 16  # byte mode's character count (ISO/IEC 18004 table 3)
    return _Template(url.encode("ascii"), len(prefix), 4 + count_bits, width,
                     bytes(v for row in code.matrix for v in row), tuple(blocks), tuple(data_pos),
                     tuple(tuple(p) for p in ecc_pos), tuple(module_of_bit))


def _flip(t: _Template, url: bytes) -> bytes:
    """The matrix of ``url`` (same length as the template's): the template's with the difference applied."""
    n_data = len(t.data_pos)
    diff = [0] * n_data
    for i in range(t.start, len(url)):
        delta = url[i] ^ t.url[i]
        if delta:
            bit = t.header_bits + 8 * i
            k, s = divmod(bit, 8)
            diff[k] ^= delta >> s
            if s:
                diff[k + 1] ^= (delta << (8 - s)) & 0xFF
    final: dict[int, int] = {}
    consts, _ = _segno_internals()  # (only ever reached once a template was made: segno is imported)
    glog, gexp = consts.GALIOS_LOG, consts.GALIOS_EXP
    for b, (first, n, gen) in enumerate(t.blocks):
        block = diff[first:first + n]
        if not any(block):
            continue
        rem = block + [0] * len(gen)
        for k in range(n):  # the same synthetic division as segno.encoder.make_blocks
            coef = rem[k]
            if coef:
                lc = glog[coef]
                for m, g in enumerate(gen):
                    rem[k + m + 1] ^= gexp[lc + g]
        for j, v in enumerate(rem[n:]):
            if v:
                final[t.ecc_pos[b][j]] = v
        for k, v in enumerate(block):
            if v:
                final[t.data_pos[first + k]] = v
    out = bytearray(t.matrix)
    where = t.module_of_bit
    for cw, v in final.items():
        base = cw * 8
        for bit in range(8):
            if v & (0x80 >> bit):
                out[where[base + bit]] ^= 1
    return bytes(out)


def qr_matrix(url: str, code: str | None = None) -> tuple[int, bytes]:
    """(width, modules row by row as 0/1 bytes) of segno's QR code of ``url`` (error M, fixed mask), using a
    template when ``code`` is the part of ``url`` that changes from gift to gift."""
    if code and code in url and url.isascii():
        start = url.rindex(code)
        t = _template(url[:start], url[start + len(code):], len(code))
        if t is not None:
            return t.width, _flip(t, url.encode("ascii"))
    matrix = _segno(url).matrix
    return len(matrix), bytes(v for row in matrix for v in row)


@lru_cache(maxsize=8)
def receipt_qr(url: str, size: int, code: str | None = None) -> pygame.Surface:
    """Black on white, error correction M, quiet zone 2, scaled by a whole factor to at most ``size`` pixels.
    ``code``: the receipt code inside ``url`` (for the fast path; the pixels are the same without it)."""
    width, modules = qr_matrix(url, code)
    n = width + 2 * QUIET
    pad = b"\x00" * QUIET
    rows = b"".join(pad + modules[r * width:(r + 1) * width] + pad for r in range(width))
    grid = b"\x00" * n * QUIET + rows + b"\x00" * n * QUIET
    small = pygame.image.frombytes(grid, (n, n), "P")  # 8 bits a module: 0 white, 1 black (the palette)
    small.set_palette(_PALETTE)
    scale = max(1, size // n)
    return pygame.transform.scale(small, (n * scale, n * scale))
