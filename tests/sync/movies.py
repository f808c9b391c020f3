"""Small real movies for upload tests: one solid colour, written with PyAV (the fake is only the content)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path


def solid_movie(path: Path, rgb: tuple[int, int, int], *, size: tuple[int, int] = (320, 180), seconds: float = 1.0,
                fps: int = 24, codec: str = "mpeg4") -> Path:
    """A movie of one colour in a codec the kiosk does not play directly (MPEG-4 Part 2 by default), so the
    portal has to transcode it."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        frame = av.VideoFrame(w, h, "rgb24")
        plane = frame.planes[0]
        row = bytes(rgb) * w + b"\x00" * (plane.line_size - 3 * w)
        plane.update(row * h)
        for i in range(int(seconds * fps)):
            f = frame.reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
