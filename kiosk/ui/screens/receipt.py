"""The receipt QR code, made fast enough to sit on the tap-to-thank-you path.

``ui.qr`` lets segno try all eight mask patterns and sets pixels one by one:
about 4-13 ms here, paid again on every frame the thank-you is up. The code
depends only on the receipt URL, so it is built once per URL (cached), with
one fixed mask (every decoder reads every mask; the penalty search only
polishes scan margins, and the code is shown large on a white card), and its
pixels are written as one buffer.
"""

from __future__ import annotations

from functools import lru_cache

import pygame

QUIET = 2
FIXED_MASK = 0


@lru_cache(maxsize=8)
def receipt_qr(url: str, size: int) -> pygame.Surface:
    """Black on white, error correction M, quiet zone 2, scaled by a whole factor to at most ``size`` pixels."""
    import segno  # off the start path (its writers pull in urllib, http, email); the app warms it (App.step)

    code = segno.make(url, error="m", micro=False, mask=FIXED_MASK)
    rows = [bytes(row) for row in code.matrix]
    n = len(rows) + 2 * QUIET
    pad = b"\x00" * QUIET
    grid = b"\x00" * n * QUIET + b"".join(pad + r + pad for r in rows) + b"\x00" * n * QUIET
    rgb = bytes(b for v in grid for b in ((0, 0, 0) if v else (255, 255, 255)))
    small = pygame.image.frombytes(rgb, (n, n), "RGB")
    scale = max(1, size // n)
    return pygame.transform.scale(small, (n * scale, n * scale))
