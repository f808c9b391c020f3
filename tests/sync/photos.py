"""Real photos for the movie maker's tests, made with Pillow (the fake is only the content)."""

from __future__ import annotations

from pathlib import Path


def photo(path: Path, i: int, size: tuple[int, int] = (1200, 900), fmt: str = "JPEG") -> Path:
    """A picture that is different for each ``i``: a colour field, diagonal stripes and a disc."""
    from PIL import Image, ImageDraw

    w, h = size
    im = Image.new("RGB", size, ((53 * i + 40) % 256, (97 * i + 120) % 256, (31 * i + 200) % 256))
    d = ImageDraw.Draw(im)
    for k in range(-h, w, max(8, w // 12)):
        d.line((k, 0, k + h, h), fill=((255 - 40 * i) % 256, 230, 40), width=max(2, w // 60))
    d.ellipse((w // 3, h // 3, 2 * w // 3, 2 * h // 3), fill=(245, 245, 245))
    im.save(path, fmt, quality=88) if fmt == "JPEG" else im.save(path, fmt)
    return path
