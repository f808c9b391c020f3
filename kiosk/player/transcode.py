"""Import-time transcoding and probing with PyAV.

Every clip in the media cache is H.264 High, yuv420p, at most 1080p30, at the
panel's size (letterboxed, never stretched), with closed GOPs starting on IDR
frames (every loop start is a clean keyframe) and the ``moov`` atom in front
(faststart). Doing the scaling once here keeps the playback path to a single
colour conversion: the field notes measured CPU scaling halving the frame rate.
Audio is dropped: the lobby loop is silent.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
from av.video.frame import PictureType

MAX_W, MAX_H, MAX_FPS = 1920, 1080, 30
H264Encoder = Literal["libx264", "libopenh264"]
ENCODERS: tuple[H264Encoder, ...] = ("libx264", "libopenh264")


class MediaError(Exception):
    """A file that cannot be imported or played; ``str()`` says why in one line."""


class OverLimit(MediaError):
    """A clip whose pictures or length, as decoded, pass the caller's limits (``max_seconds``, ``max_size`` of
    :func:`transcode`) though its header said otherwise: stopped there, nothing kept. ``str()`` starts with
    ``too long`` or ``too large`` (the portal's media jobs tell the uploader so, server_sync/mediajobs.py)."""


@dataclass(frozen=True)
class ProbeInfo:
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    keyframes: int
    closed_gop: bool
    """First packet is a keyframe, every keyframe is an IDR, and no later packet shows before it."""
    faststart: bool
    """The ``moov`` box comes before ``mdat``."""
    profile: str | None


def _open_video(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a movie and its first video stream, or raise :class:`MediaError` saying which is missing."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open {path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path} has no video stream")
    return container, container.streams.video[0]


def target_fps(src: Fraction | float) -> Fraction:
    """Keep rates up to 30; halve (or third…) faster ones when that lands on 24–30, else 30."""
    src = Fraction(src).limit_denominator(1001)
    if src <= 0:
        return Fraction(MAX_FPS)
    if src <= MAX_FPS:
        return src
    n = math.ceil(src / MAX_FPS)
    return src / n if src / n >= 24 else Fraction(MAX_FPS)


def panel_size(width: int, height: int) -> tuple[int, int]:
    """The panel size capped at 1920×1080 (aspect kept) and rounded down to even numbers for 4:2:0."""
    scale = min(1.0, MAX_W / width, MAX_H / height)
    w, h = int(width * scale), int(height * scale)
    return w - w % 2, h - h % 2


def h264_encoder() -> H264Encoder:
    for name in ENCODERS:
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
                return name
            except Exception:  # listed but not usable as an encoder
                continue
    raise MediaError("no H.264 encoder in this PyAV build (need libx264 or libopenh264)")


def _rotation_filters(rotation: int) -> list[tuple[str, str]]:
    # frame.rotation is counter-clockwise degrees of the display matrix; undo it like ffmpeg's autorotate.
    r = round(rotation) % 360
    if r == 270:  # -90: shown rotated clockwise
        return [("transpose", "clock")]
    if r == 90:
        return [("transpose", "cclock")]
    if r == 180:
        return [("hflip", ""), ("vflip", "")]
    return []


def _build_graph(first: av.VideoFrame, time_base: Fraction, w: int, h: int, fps: Fraction) -> av.filter.Graph:
    graph = av.filter.Graph()
    src = graph.add_buffer(width=first.width, height=first.height, format=first.format, time_base=time_base)
    chain = _rotation_filters(first.rotation or 0) + [
        ("scale", f"{w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic"),
        ("pad", f"{w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black"),
        ("setsar", "1"),
        ("fps", f"{fps.numerator}/{fps.denominator}"),
        ("format", "yuv420p"),
    ]
    node = src
    for name, args in chain:
        nxt = graph.add(name, args) if args else graph.add(name)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    return graph


def encode_options(encoder: str, fps: Fraction, preset: str, crf: int) -> dict[str, str]:
    gop = max(1, round(float(fps) * 2))  # a keyframe every 2 s keeps seeks and loop starts cheap
    if encoder == "libx264":
        return {
            "preset": preset,
            "crf": str(crf),
            "profile": "high",
            "g": str(gop),
            "keyint_min": str(gop),
            "bf": "2",
            "flags": "+cgop",
            # Closed GOPs and IDR-only keyframes: no frame after a keyframe references one before it.
            "x264-params": "open-gop=0:scenecut=0",
        }
    return {"g": str(gop)}


def open_output(
    path: Path, encoder: H264Encoder, w: int, h: int, fps: Fraction, preset: str = "fast", crf: int = 20
) -> tuple[av.container.OutputContainer, av.video.stream.VideoStream]:
    """An MP4 writer set up for the cache format; returns ``(container, stream)``."""
    out = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    stream = out.add_stream(encoder, rate=fps, options=encode_options(encoder, fps, preset, crf))
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.codec_context.time_base = Fraction(1) / fps
    return out, stream


def transcode(
    src: Path,
    dst: Path,
    *,
    width: int,
    height: int,
    preset: str = "fast",
    crf: int = 20,
    progress: Callable[[int], None] | None = None,
    max_seconds: float | None = None,
    max_size: tuple[int, int] | None = None,
) -> ProbeInfo:
    """Transcode ``src`` to the cache format at the panel size into ``dst``; returns the probe of ``dst``.

    ``max_seconds`` and ``max_size`` (long side, short side; either way round) are checked on what is decoded,
    not on the header, which may lie: a clip that passes either stops there with :class:`OverLimit`."""
    w, h = panel_size(width, height)
    encoder = h264_encoder()
    inp, ist = _open_video(src)
    with inp:
        ist.thread_type = "AUTO"
        fps = target_fps(ist.average_rate or ist.guessed_rate or MAX_FPS)
        time_base = ist.time_base or Fraction(1, 90000)
        out, ost = open_output(dst, encoder, w, h, fps, preset, crf)
        graph: av.filter.Graph | None = None
        n_in = n_out = 0
        last_pts = None

        def drain(g: av.filter.Graph) -> None:
            nonlocal n_out
            while True:
                try:
                    f = g.vpull()
                except (av.BlockingIOError, av.EOFError):
                    return
                f.pts, f.time_base = n_out, Fraction(1) / fps
                # Decoded frames carry their source picture type, which libx264 obeys as a forced
                # type; clear it so our GOP structure, not the source's, decides the keyframes.
                f.pict_type = PictureType.NONE
                n_out += 1
                for p in ost.encode(f):
                    out.mux(p)

        try:
            with out:
                try:
                    for frame in inp.decode(ist):
                        if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
                            # Missing or repeated timestamps would confuse the fps filter; synthesise them.
                            frame.pts = (last_pts + 1) if last_pts is not None else 0
                        last_pts = frame.pts
                        if max_size is not None and (max(frame.width, frame.height) > max(max_size)
                                                     or min(frame.width, frame.height) > min(max_size)):
                            raise OverLimit(f"too large: a picture of {frame.width}×{frame.height} pixels is over "
                                            f"{max(max_size)}×{min(max_size)}")
                        if graph is None:
                            graph = _build_graph(frame, time_base, w, h, fps)
                        graph.vpush(frame)
                        drain(graph)
                        if max_seconds is not None and n_out > (max_seconds + 0.5) * fps:  # as cut: 300.03 s is 5:00
                            raise OverLimit(f"too long: over {max_seconds:g} s ({n_out} frames at {float(fps):g}/s)")
                        n_in += 1
                        if progress and n_in % 30 == 0:
                            progress(n_in)
                except av.FFmpegError as exc:
                    if n_in == 0:
                        raise MediaError(f"cannot decode {src}: {exc}") from None
                    # A damaged tail: keep what decoded cleanly.
                if graph is None:
                    raise MediaError(f"{src} has no decodable video frames")
                graph.vpush(None)
                drain(graph)
                for p in ost.encode(None):
                    out.mux(p)
        except BaseException:
            dst.unlink(missing_ok=True)
            raise
    if n_out == 0:
        dst.unlink(missing_ok=True)
        raise MediaError(f"{src} produced no frames")
    return probe(dst)


# --- probing -----------------------------------------------------------------

def _top_level_boxes(path: Path) -> list[str]:
    names: list[str] = []
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                return names
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            elif size == 0:
                names.append(kind.decode("latin-1"))
                return names
            names.append(kind.decode("latin-1"))
            f.seek(size - 8, 1)


def _nal_types(data: bytes, length_size: int) -> list[int]:
    types, i = [], 0
    while i + length_size <= len(data):
        n = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if n == 0 or i + n > len(data):
            break
        types.append(data[i] & 0x1F)
        i += n
    return types


def probe(path: Path) -> ProbeInfo:
    """Describe a clip: format, size, rate, and whether it is closed-GOP and faststart."""
    c, s = _open_video(path)
    with c:
        cc = s.codec_context
        extradata = cc.extradata or b""
        length_size = (extradata[4] & 3) + 1 if len(extradata) > 4 and extradata[0] == 1 else 4
        packets: list[tuple[int, bool, bool]] = []
        for pkt in c.demux(s):
            if pkt.size == 0:
                continue
            idr = 5 in _nal_types(bytes(pkt), length_size) if cc.name == "h264" else pkt.is_keyframe
            packets.append((pkt.pts if pkt.pts is not None else len(packets), pkt.is_keyframe, idr))
        closed = bool(packets) and packets[0][1]
        for i, (pts, key, idr) in enumerate(packets):
            if key and (not idr or any(p < pts for p, _, _ in packets[i + 1 :])):
                closed = False
                break
        fps = float(s.average_rate or s.guessed_rate or 0)
        duration = (float(s.duration * s.time_base) if s.duration and s.time_base
                    else (len(packets) / fps if fps else 0.0))
        boxes = _top_level_boxes(Path(path))
        faststart = "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
        return ProbeInfo(
            codec=cc.name,
            pix_fmt=cc.pix_fmt or "",
            width=cc.width,
            height=cc.height,
            fps=fps,
            frames=len(packets),
            duration_s=duration,
            keyframes=sum(1 for _, k, _ in packets if k),
            closed_gop=closed,
            faststart=faststart,
            profile=cc.profile,
        )


# --- as a child process --------------------------------------------------------------------------

def estimate_frames(path: Path) -> int:
    """Source frames, for a progress bar: the container's count, else duration × rate (0 if unknown)."""
    c, s = _open_video(path)
    with c:
        if s.frames:
            return int(s.frames)
        rate = float(s.average_rate or s.guessed_rate or 0)
        if s.duration and s.time_base:
            return int(float(s.duration * s.time_base) * rate)
        if c.duration:
            return int(c.duration / 1_000_000 * rate)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m kiosk.player.transcode SRC DST --width W --height H [--max-seconds S] [--max-size WxH]``: the
    portal transcodes uploads with this same code, as a child process (the portal imports neither PyAV nor the
    kiosk), with its limits for an uploaded video (:class:`OverLimit`: ``error: too long: …``).

    Prints ``frames <total>``, then ``progress <decoded>`` lines, then ``done <probe JSON>``; a file
    that cannot be used prints ``error: <reason>`` on stderr, exits 1 and leaves no ``DST``.
    """
    import argparse
    import json
    import sys
    from dataclasses import asdict

    ap = argparse.ArgumentParser(prog="python -m kiosk.player.transcode")
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop once the output is longer")
    ap.add_argument("--max-size", default=None, metavar="WxH",
                    help="stop at a picture larger than this, either way round")
    args = ap.parse_args(argv)
    max_size = None
    if args.max_size:
        w, _, h = args.max_size.lower().partition("x")
        if not (w.isdigit() and h.isdigit()):
            ap.error(f"--max-size {args.max_size!r}: use WIDTHxHEIGHT, e.g. 1920x1080")
        max_size = (int(w), int(h))
    try:
        print(f"frames {estimate_frames(args.src)}", flush=True)
        info = transcode(args.src, args.dst, width=args.width, height=args.height,
                         progress=lambda n: print(f"progress {n}", flush=True), max_seconds=args.max_seconds,
                         max_size=max_size)
    except MediaError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print("done " + json.dumps(asdict(info)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
