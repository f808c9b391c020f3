"""The movie maker: a group's photos and captions become a short movie in the kiosk format.

An opening card (group and project title), each photo with a gentle pan and zoom (Ken Burns) and its
caption in the vendored Noto Sans JP, and a closing card "ICカードをタッチして寄付", joined by short
cross-fades, 15–30 s long, encoded with the same writer as :mod:`kiosk.player.transcode` (H.264
High, yuv420p, closed GOP, faststart), so the movie needs no further conversion on a kiosk.

The portal runs this as a child process (``python -m kiosk.player.moviemaker``): it imports neither
PyAV nor Pillow itself (docs/architecture.md, contract 5), and a decoder crash on a strange photo
takes down a child, not the portal. Pillow decodes the photos (EXIF rotation applied, the size read
from the header before any pixel is decoded) and draws the text; PyAV encodes. Both are in the
``portal`` extra; the kiosk never runs this module.

Two commands, both answering on stdout:

- ``check PHOTO...``: one JSON line per photo, ``{"ok": true, "width": W, "height": H}`` or
  ``{"ok": false, "error": CODE, ...}`` with CODE ``not_image`` | ``too_large`` | ``too_thin`` |
  ``corrupt``;
- ``render SPEC.json DST.mp4 [POSTER.jpg]``: ``frames N``, ``progress n`` lines, then ``done <probe
  JSON>``, the same protocol as the transcoder's, so the portal's one job runner follows both. A
  failure prints ``error: <reason>`` on stderr, exits 1 and leaves no ``DST`` and no poster;
- ``poster MOVIE.mp4 POSTER.jpg``: a frame a third of the way in, as a JPEG (for uploaded videos).
"""

from __future__ import annotations

import json
import math
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from kiosk.player.palette import AREA_COLOURS, ASSET_FONTS, UNDRAWABLE, drawable  # noqa: F401 - also imported from here

MIN_PHOTOS, MAX_PHOTOS = 3, 10
MIN_S, MAX_S = 15.0, 30.0
CARD_S = 3.0
"""The opening and the closing card each stay this long."""
FADE_S = 0.5
"""Cross-fade between two parts (inside the later part's time, so the length is exact)."""
ZOOM = 1.12
"""How far the pan and zoom moves in: gentle, so a face is never cut off."""
MAX_PIXELS = 210_000_000
"""A JPEG photo may have this many pixels (a 200-megapixel phone's 16,320 × 12,240 photo); more is refused
from its header, before any pixel is decoded (a decompression bomb: a small file that claims 50,000 × 50,000).
A JPEG is decoded scaled down by libjpeg itself (:meth:`PIL.Image.Image.draft`, DCT scaling: 1/2, 1/4 or 1/8 a
side), so memory follows the movie's size, not the photo's: checking an 8,160 × 6,144 photo (a 50-megapixel
phone's) takes about 7 MB, a 12,000 × 9,000 one 14 MB, a 16,320 × 12,240 one 25 MB; making the movie's
picture of each 88, 59 and 87 MB (peak RSS of a child; docs/portal.md). Pillow's own guard
(``Image.MAX_IMAGE_PIXELS``) is set to this limit in both the check and the render."""
MAX_PIXELS_WHOLE = 52_000_000
"""A photo that has to be decoded whole first, a PNG, a WebP or a progressive JPEG (libjpeg keeps a
progressive JPEG's every coefficient, 3–6 bytes a pixel, at any scale), may have this many pixels (a
50-megapixel phone's 8,160 × 6,144 = 50.1 million): about 150–400 MB to decode. A phone's camera writes
baseline JPEGs; a PNG this large is a scan or an export, and saving it as a JPEG is the way out the message
gives."""
MAX_ASPECT = 10
"""A photo's long side is at most this many times its short side (a phone's panorama is 3–8:1, a phone's
screen 2.2:1). Each photo is scaled to *cover* the frame, so the thinner it is the larger it grows: at 10:1 a
tall strip covers a 1080p frame at 2,150 × 21,500 pixels (185 MB in Pillow's RGB), no more than decoding the
largest photo decoded whole (52 million pixels: 210 MB) takes; the widest JPEG allowed (45,800 × 4,580) is
decoded at half size (22,900 × 2,290: 210 MB, 364 MB at the peak of making its picture); an 8,000 × 4 strip
would grow to 2.4 million × 1,210 pixels (12 GB). :func:`check_photo` refuses thinner photos, and
:func:`_load_cover` crops one it is given anyway."""
BACKGROUND = (255, 255, 255)
"""What a photo's transparent parts are shown on: white, as a browser shows a PNG or a WebP on a page and a
drawing program on its canvas, where a logo or an illustration "with a transparent background" was drawn
and looked at (the portal's pages are near-white too). Such pictures are mostly dark lines or text meant
for a light page: black swallowed them, and the area's colour of the title cards would swallow a drawing in
that colour (an orange logo on the children's orange)."""
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
""""MPO" is a camera's JPEG with a CIPA multi-picture (MPF) preview image after it: an ordinary JPEG to any
browser, and the movie uses its first (primary) image."""
MAX_CAPTION = 60
UNEXPECTED = "unexpected error in the renderer"
"""The start of the ``error:`` line of a render that failed on anything but a photo, a file or the encoder."""
CLOSING = "ICカードをタッチして寄付"
CLOSING_EN = "Tap your IC card to give"
FONT = ASSET_FONTS / "NotoSansJP-Bold-subset.otf"
FONT_REGULAR = ASSET_FONTS / "NotoSansJP-Regular-subset.otf"
INK = (255, 255, 255)
BAND_ALPHA = 150
"""The caption band darkens the photo behind it to about 40 %: white text stays readable on any photo."""
VISIBLE = 0.56
"""On the kiosk the attract screen's opaque band covers the frame below this share of its height
(kiosk/ui/screens/attract.py), so captions and card text sit above it: a caption near the top, the cards'
text centred in the visible part."""
TOP_MARGIN = 0.04


class PhotoError(Exception):
    """A photo that cannot be used. ``code`` is for the portal's message; ``str()`` says why."""

    def __init__(self, code: str, detail: str, **info: Any):
        super().__init__(detail)
        self.code = code
        self.info = info


# --- the plan (pure) -------------------------------------------------------------------------------

def movie_seconds(n_photos: int) -> float:
    """3.5 s a photo between the two cards, kept within 15–30 s (ten photos get 2.4 s each)."""
    return min(MAX_S, max(MIN_S, 2 * CARD_S + 3.5 * n_photos))


@dataclass(frozen=True)
class Part:
    kind: str  # "opening" | "photo" | "closing"
    start: float
    length: float
    index: int = 0  # the photo's index for kind == "photo"


def timeline(n_photos: int, seconds: float | None = None) -> list[Part]:
    """Opening card, the photos in equal shares, closing card: end to end, filling ``seconds`` exactly."""
    total = movie_seconds(n_photos) if seconds is None else seconds
    card = min(CARD_S, total / (n_photos + 2))
    each = (total - 2 * card) / n_photos
    parts = [Part("opening", 0.0, card)]
    parts += [Part("photo", card + i * each, each, i) for i in range(n_photos)]
    parts.append(Part("closing", total - card, card))
    return parts


def _ease(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3 - 2 * u)


def ken_burns(u: float, index: int, src: tuple[int, int], out: tuple[int, int]) -> tuple[float, float, float]:
    """The window on the photo at time ``u`` (0–1 through its part): ``(scale, x0, y0)`` mapping an output
    pixel (x, y) to the photo's (x0 + x·scale, y0 + y·scale).

    ``src`` is the photo already scaled to cover ``out`` × :data:`ZOOM`. Even photos zoom in, odd ones
    zoom out, and each drifts across the slack the crop leaves (portrait photos pan down the picture).
    ``u`` a little outside 0–1 (during a cross-fade) stays inside the photo.
    """
    e = _ease(u)
    z = 1.0 + (ZOOM - 1.0) * (e if index % 2 == 0 else 1.0 - e)  # 1 = widest view
    scale = ZOOM / z  # source pixels per output pixel
    ww, wh = out[0] * scale, out[1] * scale
    slack_x, slack_y = max(0.0, src[0] - ww), max(0.0, src[1] - wh)
    # Alternate the drift's direction; start and end off-centre so the movement is visible but small.
    a, b = (0.3, 0.7) if index % 4 in (0, 3) else (0.7, 0.3)
    fx = a + (b - a) * e
    return scale, slack_x * fx, slack_y * (0.35 + 0.3 * e)


# --- photos ---------------------------------------------------------------------------------------------

def pixel_limit(im: Any) -> int:
    """How many pixels ``im`` (opened, not decoded) may have: :data:`MAX_PIXELS` for a JPEG that libjpeg can
    decode scaled down, :data:`MAX_PIXELS_WHOLE` for anything decoded whole first."""
    scalable = im.format in ("JPEG", "MPO") and not im.info.get("progressive")
    return MAX_PIXELS if scalable else MAX_PIXELS_WHOLE


def _too_large(w: int, h: int, limit: int) -> PhotoError:
    return PhotoError("too_large", f"{w}×{h} pixels is over {limit:,} pixels for this kind of photo", width=w,
                      height=h, max_pixels=limit)


def check_photo(path: Path) -> tuple[int, int]:
    """The photo's upright size, or :class:`PhotoError`. Reads the header first (size limits before any
    decoding), then decodes it whole, so a truncated or damaged file is refused here, not mid-render. A JPEG is
    decoded at 1/8 of its size a side: libjpeg still reads every byte of it (a damaged one fails the same), in a
    64th of the memory (:data:`MAX_PIXELS`)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as im:
            if im.format not in PHOTO_FORMATS:
                raise PhotoError("not_image", f"format {im.format} is not JPEG, PNG or WebP", format=im.format)
            w, h = im.size
            limit = pixel_limit(im)
            if w * h > limit:
                raise _too_large(w, h, limit)
            if max(w, h) > MAX_ASPECT * min(w, h):
                raise PhotoError("too_thin", f"{w}×{h} pixels is thinner than {MAX_ASPECT}:1", width=w, height=h,
                                 max=MAX_ASPECT)
            im.seek(0)  # an MPO's primary image, not its preview
            im.draft(im.mode, (1, 1))  # a JPEG: the smallest scale, 1/8 a side (PNG and WebP ignore it)
            im.load()
            upright = ImageOps.exif_transpose(im)
            return (h, w) if upright.size != im.size else (w, h)  # the full size, turned as EXIF says
    except PhotoError:
        raise
    except Image.DecompressionBombError as exc:  # over twice MAX_PIXELS: Pillow refuses it at open, undecoded
        raise _claimed_too_large(path, exc) from None
    except UnidentifiedImageError as exc:
        raise PhotoError("not_image", str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated data, a broken header or chunk
        raise PhotoError("corrupt", str(exc)) from None


def _claimed_too_large(path: Path, bomb: Exception) -> PhotoError:
    """``too_large`` with the size the file's header claims, for the editor's message: read with Pillow's guard
    off for just this open, which reads the header and decodes nothing."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            return _too_large(im.width, im.height, pixel_limit(im))
    except Exception:  # noqa: BLE001 - whatever it claims, it is not a photo to use
        return PhotoError("not_image", str(bomb))
    finally:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _load_cover(path: Path, out: tuple[int, int]) -> Any:
    """The photo upright, RGB, scaled once to cover ``out`` × ZOOM (the pan and zoom never upscales)."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's guard at the check's limit (its default would refuse 200 MP)
    with Image.open(path) as im:
        if im.width * im.height > pixel_limit(im):  # check_photo refuses it: never decoded, even if given
            raise _too_large(im.width, im.height, pixel_limit(im))
        im.seek(0)  # an MPO's primary image, not its preview
        im.draft("RGB", (int(out[0] * ZOOM), int(out[1] * ZOOM)))  # JPEG: decode at a reduced size when large
        im.load()
        # No copies of the decoded photo, the largest picture held (a 200 MP JPEG decoded at 1/4: 4,080 × 3,060):
        # turned in place, and used as it is when it is RGB already.
        ImageOps.exif_transpose(im, in_place=True)
        img = im if im.mode == "RGB" and "transparency" not in im.info else opaque_rgb(im)
        w, h = img.size  # a strip thinner than MAX_ASPECT (check_photo refuses one): its middle, not gigabytes
        if w > MAX_ASPECT * h:
            img = img.crop(((w - MAX_ASPECT * h) // 2, 0, (w - MAX_ASPECT * h) // 2 + MAX_ASPECT * h, h))
        elif h > MAX_ASPECT * w:
            img = img.crop((0, (h - MAX_ASPECT * w) // 2, w, (h - MAX_ASPECT * w) // 2 + MAX_ASPECT * w))
        s = max(out[0] * ZOOM / img.width, out[1] * ZOOM / img.height)
        size = (max(1, math.ceil(img.width * s)), max(1, math.ceil(img.height * s)))
        return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)  # a new image: ``im`` may close


def opaque_rgb(img: Any) -> Any:
    """``img`` as 8-bit RGB, looking as it does in a browser.

    16-bit greyscale (a scanner's or a raw converter's PNG: Pillow's modes ``I;16``, ``I;16B``, ``I;16L``,
    ``I;16N``, or ``I`` as older Pillow versions open it) is scaled to 8 bits (65,535 → 255); a plain
    ``convert("RGB")`` clips every value above 255 to white. Transparency, an alpha channel (``RGBA``, ``LA``,
    ``PA``, ``RGBa``, ``La``) or a transparent colour (``info["transparency"]``: a palette's, or a grey or RGB
    PNG's tRNS), is composed onto :data:`BACKGROUND`; ``convert("RGB")`` dropped it, leaving a transparent
    background black. Other modes (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``) convert as Pillow does.
    """
    from PIL import Image, ImageChops

    if img.mode.startswith("I"):
        wide = img if img.mode == "I" else img.convert("I")
        grey = wide.point(lambda v: v / 257 + 0.5).convert("L")  # rounded; converting to L clips to 0–255
        key = img.info.get("transparency")
        if not isinstance(key, int):
            return grey.convert("RGB")
        # The one transparent grey level (tRNS): alpha 0 where v == key, 255 elsewhere, with linear maps only
        # (Pillow's point on 32-bit images takes no other): (v − key)·255 and (key − v)·255, each clipped to 0–255.
        alpha = ImageChops.lighter(wide.point(lambda v: (v - key) * 255).convert("L"),
                                   wide.point(lambda v: (key - v) * 255).convert("L"))
        img = Image.merge("LA", (grey, alpha))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba).convert("RGB")
    return img.convert("RGB")


# --- text -----------------------------------------------------------------------------------------------
# Undrawable characters (``drawable``, ``UNDRAWABLE``) are cleaned by kiosk/player/palette.py, shared with the
# kiosk's screens.


def _font(px: int, bold: bool = True) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT if bold else FONT_REGULAR), max(8, px))


def _phrases(text: str) -> list[str]:
    """Japanese phrases (BudouX) so a line never breaks inside a word; spaces split other text."""
    import budoux

    out: list[str] = []
    for word in text.split(" "):
        parts = budoux.load_default_japanese_parser().parse(word) if word else [""]
        if out and parts:
            parts[0] = " " + parts[0]
        out.extend(parts)
    return [p for p in out if p]


def wrap(text: str, px: int, max_w: int, max_lines: int = 2, bold: bool = True) -> tuple[list[str], Any]:
    """``text`` in at most ``max_lines`` lines no wider than ``max_w``, shrinking the font until it fits."""
    text = drawable(text).strip(" ")
    while True:
        font = _font(px, bold)
        lines: list[str] = []
        for phrase in _phrases(text):
            if lines and font.getlength(lines[-1] + phrase) <= max_w:
                lines[-1] += phrase
            else:
                lines.append(phrase.lstrip())
        if (len(lines) <= max_lines and all(font.getlength(ln) <= max_w for ln in lines)) or px <= 10:
            return lines, font
        px = int(px * 0.9)


def caption_band(text: str, out: tuple[int, int]) -> tuple[Any, tuple[int, int]]:
    """The caption as an RGBA band near the top of the frame, and where it goes: ``(band, (x, y))``."""
    from PIL import Image, ImageDraw

    w, h = out
    px = max(10, round(h * 0.062))
    lines, font = wrap(text, px, int(w * 0.88))
    asc, desc = font.getmetrics()
    line_h = asc + desc
    pad = max(4, round(h * 0.025))
    band_h = line_h * len(lines) + 2 * pad
    band = Image.new("RGBA", (w, band_h), (0, 0, 0, BAND_ALPHA))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text(((w - font.getlength(line)) / 2, pad + i * line_h), line, font=font, fill=INK + (255,))
    return band, (0, round(h * TOP_MARGIN))


def _lighter(rgb: tuple[int, int, int], by: int) -> tuple[int, int, int]:
    return (min(255, rgb[0] + by), min(255, rgb[1] + by), min(255, rgb[2] + by))


def card(lines: list[tuple[str, float, bool]], out: tuple[int, int], bg: tuple[int, int, int]) -> Any:
    """A title card: each line (text, height as a share of the frame, bold) centred, on the area's colour."""
    from PIL import Image, ImageDraw

    w, h = out
    img = Image.new("RGB", out, bg)
    draw = ImageDraw.Draw(img)
    band = max(4, h // 60)  # the kiosk's slides have the same thin bands: the card reads as designed
    draw.rectangle((0, 0, w, band), fill=_lighter(bg, 60))
    draw.rectangle((0, h - band, w, h), fill=_lighter(bg, 60))
    blocks = []
    for text, rel, bold in lines:
        if not text:
            continue
        ls, font = wrap(text, max(10, round(h * rel)), int(w * 0.86), max_lines=2, bold=bold)
        asc, desc = font.getmetrics()
        blocks.append((ls, font, asc + desc))
    gap = h // 24
    total = sum(len(ls) * lh for ls, _, lh in blocks) + gap * max(0, len(blocks) - 1)
    y = max(band * 2, (h * VISIBLE - total) / 2)
    for ls, font, lh in blocks:
        for line in ls:
            draw.text(((w - font.getlength(line)) / 2, y), line, font=font, fill=INK)
            y += lh
        y += gap
    return img


# --- rendering ------------------------------------------------------------------------------------------

@dataclass
class Spec:
    """What to render. ``photos``: ``[{"path": ..., "caption": ...}]`` in order."""

    group: str
    project: str
    photos: list[dict[str, str]]
    area: str = "town"
    width: int = 1920
    height: int = 1080
    fps: int = 30
    seconds: float | None = None
    preset: str = "veryfast"
    crf: int = 20

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Spec:
        known = {k: doc[k] for k in ("group", "project", "photos", "area", "width", "height", "fps", "seconds",
                                     "preset", "crf") if k in doc}
        return cls(**known)


class Frames:
    """The movie's frames, one PIL image each, in order (used by :func:`render` and by the bench's baseline)."""

    def __init__(self, spec: Spec):
        if not MIN_PHOTOS <= len(spec.photos) <= MAX_PHOTOS:
            raise ValueError(f"{len(spec.photos)} photos: between {MIN_PHOTOS} and {MAX_PHOTOS}")
        self.spec = spec
        self.out = (spec.width - spec.width % 2, spec.height - spec.height % 2)
        self.parts = timeline(len(spec.photos), spec.seconds)
        end = self.parts[-1]
        self.count = round((end.start + end.length) * spec.fps)
        bg = AREA_COLOURS.get(spec.area, AREA_COLOURS["town"])
        self.opening = card([(spec.group, 0.06, False), (spec.project, 0.11, True)], self.out, bg)
        self.closing = card([(CLOSING, 0.1, True), (CLOSING_EN, 0.05, False), (spec.project, 0.045, False)],
                            self.out, bg)
        self._photos: dict[int, Any] = {}
        self._bands: dict[int, tuple[Any, tuple[int, int]]] = {}

    def _photo(self, i: int) -> Any:
        if i not in self._photos:
            self._photos = {k: v for k, v in self._photos.items() if k >= i - 1}  # at most two photos in memory
            self._photos[i] = _load_cover(Path(self.spec.photos[i]["path"]), self.out)
            caption = (self.spec.photos[i].get("caption") or "").strip()
            if caption:
                self._bands[i] = caption_band(caption, self.out)
        return self._photos[i]

    def part_image(self, part: Part, t: float) -> Any:
        from PIL import Image

        if part.kind == "opening":
            return self.opening
        if part.kind == "closing":
            return self.closing
        src = self._photo(part.index)
        scale, x0, y0 = ken_burns((t - part.start) / part.length, part.index, src.size, self.out)
        # A resize of a sub-pixel box: the window moves smoothly, and the separable filter is about twice
        # as fast as an affine transform (and filters the slight downscale properly).
        w, h = self.out
        img = src.resize(self.out, Image.Resampling.BILINEAR, box=(x0, y0, x0 + w * scale, y0 + h * scale))
        if part.index in self._bands:
            band, at = self._bands[part.index]
            img.paste(band, at, band)
        return img

    def poster_frame(self) -> int:
        first = self.parts[1]
        return round((first.start + first.length / 2) * self.spec.fps)

    def __iter__(self) -> Iterator[Any]:
        from PIL import Image

        fps = self.spec.fps
        k = 0
        for n in range(self.count):
            t = n / fps
            while k + 1 < len(self.parts) and t >= self.parts[k + 1].start:
                k += 1
            cur = self.parts[k]
            img = self.part_image(cur, t)
            into = t - cur.start
            if k > 0 and into < FADE_S:
                prev = self.part_image(self.parts[k - 1], t)
                img = Image.blend(prev, img, _ease(into / FADE_S))
            yield img


def render(spec: Spec, dst: Path, progress: Callable[[int], None] | None = None, poster: Path | None = None) -> None:
    """Render ``spec`` into ``dst`` in the kiosk format, and the poster frame (the first photo, caption and
    all, halfway through its part) into ``poster`` as a JPEG; both are removed if anything fails."""
    import av
    from av.video.reformatter import VideoReformatter

    from kiosk.player.transcode import h264_encoder, open_output

    frames = Frames(spec)
    w, h = frames.out
    fps = Fraction(spec.fps)
    poster_at = frames.poster_frame() if poster else -1
    to_yuv = VideoReformatter()  # one swscale context for the whole movie
    # Frames are composed on a second thread while this one encodes: Pillow, swscale and x264 release the
    # GIL, so composing the next frames overlaps the encoder's waits (bench/moviemaker.py measures it).
    ready: queue.Queue[Any] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def compose() -> None:
        try:
            for n, img in enumerate(frames):
                if n == poster_at and poster is not None:
                    img.save(poster, "JPEG", quality=85)
                item: Any = to_yuv.reformat(av.VideoFrame.from_image(img), format="yuv420p")
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the encoding thread, which raises it
            ready.put(exc)

    composer = threading.Thread(target=compose, name="moviemaker-compose", daemon=True)
    try:
        out, stream = open_output(dst, h264_encoder(), w, h, fps, spec.preset, spec.crf)
        composer.start()
        with out:
            n = 0
            while (vf := ready.get()) is not None:
                if isinstance(vf, BaseException):
                    raise vf
                vf.pts, vf.time_base = n, 1 / fps
                for packet in stream.encode(vf):
                    out.mux(packet)
                n += 1
                if progress and n % 10 == 0:
                    progress(n)
            for packet in stream.encode(None):
                out.mux(packet)
    except BaseException:
        stop.set()
        dst.unlink(missing_ok=True)
        if poster is not None:
            if composer.ident is not None:  # started: let it finish writing the poster before it is removed
                composer.join(timeout=5)
            poster.unlink(missing_ok=True)
        raise
    finally:
        stop.set()


def poster_of(movie: Path, out: Path, at: float = 0.3) -> None:
    """A JPEG of the frame ``at`` (a share of its length) into ``movie``: the poster of an uploaded video."""
    import av

    with av.open(str(movie)) as c:
        s = c.streams.video[0]
        total = s.frames or 0
        want = int(total * at)
        last = None
        for n, frame in enumerate(c.decode(s)):
            last = frame
            if n >= want:
                break
        if last is None:
            raise ValueError(f"{movie} has no frames")
        last.to_image().save(out, "JPEG", quality=85)


# --- as a child process -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m kiosk.player.moviemaker check PHOTO...`` or ``... render SPEC.json DST.mp4`` (module doc)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check"] and len(args) > 1:
        for p in args[1:]:
            try:
                w, h = check_photo(Path(p))
                print(json.dumps({"ok": True, "width": w, "height": h}), flush=True)
            except PhotoError as exc:
                print(json.dumps({"ok": False, "error": exc.code, "detail": str(exc), **exc.info}), flush=True)
        return 0
    if args[:1] == ["poster"] and len(args) == 3:
        try:
            poster_of(Path(args[1]), Path(args[2]))
        except Exception as exc:  # noqa: BLE001 - a video without a poster is still a video
            Path(args[2]).unlink(missing_ok=True)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        return 0
    if args[:1] == ["render"] and len(args) in (3, 4):
        from dataclasses import asdict

        from kiosk.player.transcode import MediaError, probe

        dst = Path(args[2])
        poster = Path(args[3]) if len(args) == 4 else None
        try:
            spec = Spec.from_json(json.loads(Path(args[1]).read_text("utf-8")))
            frames_total = round(sum(p.length for p in timeline(len(spec.photos), spec.seconds)) * spec.fps)
            print(f"frames {frames_total}", flush=True)
            render(spec, dst, progress=lambda n: print(f"progress {n}", flush=True), poster=poster)
            info = probe(dst)
        except PhotoError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        except (OSError, ValueError, MediaError) as exc:
            dst.unlink(missing_ok=True)
            if poster is not None:
                poster.unlink(missing_ok=True)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        except Exception as exc:  # noqa: BLE001 - e.g. a RuntimeError of Pillow's text layout: a failed job, said so
            dst.unlink(missing_ok=True)
            if poster is not None:
                poster.unlink(missing_ok=True)
            traceback.print_exc()
            # The portal (server_sync/mediajobs.py) knows this prefix: its editor is told in plain words.
            print(f"error: {UNEXPECTED}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        print("done " + json.dumps(asdict(info)), flush=True)
        return 0
    print("usage: python -m kiosk.player.moviemaker check PHOTO... | render SPEC.json DST.mp4 [POSTER.jpg]"
          " | poster MOVIE.mp4 POSTER.jpg", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
