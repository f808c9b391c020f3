"""The movie maker's renderer (kiosk/player/moviemaker.py), run as the portal runs it: a child process.

The output is H.264 in the kiosk format (High, yuv420p, closed GOP, faststart), exactly as long as the
timeline promises (15–30 s by the number of photos), and each caption is drawn: a decoded frame's caption
band is compared with a rendering of that caption's text, and not with another caption's. One run at
1080p; the others at a small size, to keep CI quick. Bad photos are refused with their reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from kiosk.player import moviemaker as mm
from kiosk.player.transcode import probe

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "sync"))
from photos import photo  # noqa: E402

CAPTIONS = ["畑で野菜を育てました", "子どもたちと一緒に収穫", "みんなで食べるとおいしい！", "地域の皆さんに感謝",
            "次は秋のお祭りです", "ありがとうございました"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk.player.moviemaker", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})


def render(tmp_path: Path, n: int, size: tuple[int, int], *, portrait: int | None = None) -> tuple[Path, dict]:
    photos = []
    for i in range(n):
        shape = (900, 1200) if i == portrait else (1600, 1000)
        photos.append({"path": str(photo(tmp_path / f"p{i}.jpg", i, size=shape)), "caption": CAPTIONS[i % 6]})
    spec = {"group": "子ども応援団", "project": "みんなのこども食堂", "area": "children", "width": size[0],
            "height": size[1], "photos": photos}
    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    dst, poster = tmp_path / "movie.mp4", tmp_path / "poster.jpg"
    r = run("render", str(tmp_path / "spec.json"), str(dst), str(poster))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"frames {round(mm.movie_seconds(n) * 30)}" and lines[-1].startswith("done ")
    assert any(ln.startswith("progress ") for ln in lines)  # what the portal's progress bar follows
    return dst, spec


def frames_at(path: Path, *indices: int) -> list[Image.Image]:
    """The decoded frames at these indices, in one pass."""
    want, got = set(indices), {}
    with av.open(str(path)) as c:
        for n, f in enumerate(c.decode(video=0)):
            if n in want:
                got[n] = f.to_image()
            if n >= max(want):
                break
    assert set(got) == want, f"{path} has no frames {want - set(got)}"
    return [got[i] for i in indices]


def frame_at(path: Path, index: int) -> Image.Image:
    return frames_at(path, index)[0]


def text_mask(img: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    """Where the caption's white text is: bright and grey (the band darkens the photo behind to about 40 %)."""
    a = np.asarray(img.convert("RGB").crop(box), dtype=np.int16)
    return (a.min(axis=2) > 170) & ((a.max(axis=2) - a.min(axis=2)) < 60)


def caption_match(frame: Image.Image, caption: str) -> float:
    """Intersection over union of the frame's text pixels and those of ``caption`` drawn where the renderer
    puts it, on black."""
    band, (x, y) = mm.caption_band(caption, frame.size)
    drawn = Image.new("RGB", frame.size)
    drawn.paste(band, (x, y), band)
    box = (0, y, frame.width, y + band.height)
    got, want = text_mask(frame, box), text_mask(drawn, box)
    return float((got & want).sum() / max(1, (got | want).sum()))


def check_captions(path: Path, n: int) -> None:
    parts = mm.timeline(n)[1:-1]
    frames = frames_at(path, *(round((p.start + p.length / 2) * 30) for p in parts))
    for part, frame in zip(parts, frames, strict=True):
        right = caption_match(frame, CAPTIONS[part.index % 6])
        wrong = caption_match(frame, CAPTIONS[(part.index + 1) % 6])
        assert right > 0.55 and wrong < right - 0.25, (part.index, right, wrong)


@pytest.mark.slow
def test_a_1080p_movie_is_h264_in_the_kiosk_format_as_long_as_promised_with_its_captions(tmp_path):
    path, spec = render(tmp_path, 3, (1920, 1080), portrait=1)
    info = probe(path)
    assert (info.codec, info.pix_fmt, info.profile, info.width, info.height, info.fps) == (
        "h264", "yuv420p", "High", 1920, 1080, 30.0)
    assert info.closed_gop and info.faststart
    assert mm.movie_seconds(3) == 16.5 and info.frames == round(16.5 * 30) and abs(info.duration_s - 16.5) < 0.04
    check_captions(path, 3)
    # The opening card says the project, the closing card what to do: bright text on the area's colour.
    first, last = frames_at(path, 15, info.frames - 5)
    for img in (first, last):
        corner = img.getpixel((5, 60))
        assert max(abs(a - b) for a, b in zip(corner, mm.AREA_COLOURS["children"], strict=True)) < 12
        assert text_mask(img, (0, 0, 1920, 1080)).sum() > 2000
    assert (text_mask(last, (0, 0, 1920, 1080)) != text_mask(first, (0, 0, 1920, 1080))).sum() > 2000
    poster = Image.open(tmp_path / "poster.jpg")
    assert poster.size == (1920, 1080) and caption_match(poster, CAPTIONS[0]) > 0.55


@pytest.mark.parametrize("n", [6, 10])
def test_the_length_follows_the_number_of_photos_within_15_to_30_seconds(tmp_path, n):
    path, _ = render(tmp_path, n, (320, 180), portrait=2)
    info = probe(path)
    want = {6: 27.0, 10: 30.0}[n]
    assert mm.movie_seconds(n) == want and info.frames == round(want * 30) and info.closed_gop and info.faststart
    check_captions(path, n)
    # Pan and zoom: the picture moves during a photo (two frames half a second apart differ), gently.
    part = mm.timeline(n)[2]
    a, b = (np.asarray(f, dtype=np.int16) for f in frames_at(path, round((part.start + 1.0) * 30),
                                                            round((part.start + 1.5) * 30)))
    assert 2 < np.abs(a - b).mean() < 60


def test_the_timeline_is_exact_and_the_pan_stays_inside_the_photo():
    for n in range(mm.MIN_PHOTOS, mm.MAX_PHOTOS + 1):
        parts = mm.timeline(n)
        total = mm.movie_seconds(n)
        assert 15 <= total <= 30 and [p.kind for p in parts] == ["opening"] + ["photo"] * n + ["closing"]
        assert parts[-1].start + parts[-1].length == pytest.approx(total)
        for a, b in zip(parts, parts[1:], strict=False):
            assert a.start + a.length == pytest.approx(b.start)
    out = (1920, 1080)
    for src in ((2420, 1210), (2151, 2868)):  # a landscape and a portrait photo scaled to cover out × ZOOM
        for index in range(4):
            for u in (-0.2, 0.0, 0.3, 0.5, 1.0, 1.2):
                scale, x0, y0 = mm.ken_burns(u, index, src, out)
                assert 1.0 <= scale <= mm.ZOOM + 1e-9
                assert x0 >= 0 and y0 >= 0
                assert x0 + out[0] * scale <= src[0] + 1e-6 and y0 + out[1] * scale <= src[1] + 1e-6


def test_bad_photos_are_refused_with_their_reason_before_any_render(tmp_path):
    good = photo(tmp_path / "good.jpg", 1)
    rotated = tmp_path / "rotated.jpg"  # a phone photo held upright: stored landscape, EXIF says turn it
    im = Image.open(good)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(rotated, exif=exif)
    wide = photo(tmp_path / "wide.png", 2, size=(10_000, 120), fmt="PNG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:2500])
    text = tmp_path / "text.jpg"
    text.write_text("not a photo", "utf-8")
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (10, 10)).save(gif)
    r = run("check", str(good), str(rotated), str(wide), str(cut), str(text), str(gif))
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert got[0] == {"ok": True, "width": 1200, "height": 900}
    assert got[1] == {"ok": True, "width": 900, "height": 1200}
    assert got[2]["error"] == "too_thin" and (got[2]["width"], got[2]["height"]) == (10_000, 120)  # 1.2 MP: not large
    assert got[3]["error"] == "corrupt"
    assert got[4]["error"] == "not_image" and got[5]["error"] == "not_image"


def test_a_render_that_fails_leaves_no_movie_and_no_poster(tmp_path):
    photos = [{"path": str(photo(tmp_path / f"p{i}.jpg", i)), "caption": "x"} for i in range(2)]
    photos.append({"path": str(tmp_path / "gone.jpg"), "caption": "x"})  # removed after the check
    (tmp_path / "spec.json").write_text(json.dumps({"group": "g", "project": "p", "width": 160, "height": 90,
                                                    "photos": photos}), "utf-8")
    r = run("render", str(tmp_path / "spec.json"), str(tmp_path / "m.mp4"), str(tmp_path / "poster.jpg"))
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "gone.jpg" in r.stderr
    assert not (tmp_path / "m.mp4").exists() and not (tmp_path / "poster.jpg").exists()


def test_line_breaks_and_control_characters_in_the_text_are_drawn_as_spaces(tmp_path):
    """Pillow's text layout (raqm) fails on a paragraph separator (LF, CR, U+001C–U+001E, U+0085, U+2029): the
    portal refuses such captions, and the renderer draws them as spaces wherever its text comes from (the group's
    name and the project's title are the catalog's)."""
    captions = ["畑で\u2029野菜を育てました", "子どもたちと\r\n一緒に収穫", "みんなで\x1e食べる\x85とおいしい！"]
    photos = [{"path": str(photo(tmp_path / f"p{i}.jpg", i, size=(640, 480))), "caption": c}
              for i, c in enumerate(captions)]
    spec = {"group": "子ども\n応援団\x1c", "project": "みんなの\u2029こども\u2028食堂\x1d", "area": "children",
            "width": 320, "height": 180, "photos": photos}
    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    r = run("render", str(tmp_path / "spec.json"), str(tmp_path / "m.mp4"), str(tmp_path / "poster.jpg"))
    assert r.returncode == 0, r.stderr
    assert mm.drawable(captions[1]) == "子どもたちと  一緒に収穫"
    parts = mm.timeline(3)[1:-1]
    frames = frames_at(tmp_path / "m.mp4", *(round((p.start + p.length / 2) * 30) for p in parts))
    for i, frame in enumerate(frames):
        assert caption_match(frame, mm.drawable(captions[i])) > 0.55, i
    assert text_mask(frame_at(tmp_path / "m.mp4", 15), (0, 0, 320, 180)).sum() > 100  # the opening card's text


def test_a_render_that_fails_on_anything_else_says_so_on_its_error_line_and_leaves_nothing(tmp_path):
    """Not only a photo, a file or the encoder: here a spec at 0 fps (a RuntimeError on the way out). The portal
    reads the ``error:`` line (server_sync/mediajobs.py), not a traceback's last line."""
    photos = [{"path": str(photo(tmp_path / f"p{i}.jpg", i)), "caption": "x"} for i in range(3)]
    (tmp_path / "spec.json").write_text(json.dumps({"group": "g", "project": "p", "width": 160, "height": 90,
                                                    "fps": 0, "photos": photos}), "utf-8")
    r = run("render", str(tmp_path / "spec.json"), str(tmp_path / "m.mp4"), str(tmp_path / "poster.jpg"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("error: unexpected error in the renderer: "), r.stderr
    assert not (tmp_path / "m.mp4").exists() and not (tmp_path / "poster.jpg").exists()


def test_a_camera_jpeg_with_a_multi_picture_preview_is_a_photo_and_its_primary_image_is_used(tmp_path):
    """A camera's JPEG with a CIPA DC-007 preview image after it opens in Pillow as format "MPO"."""
    src = photo(tmp_path / "src.jpg", 0, size=(640, 480))
    cam = tmp_path / "DSC00001.JPG"
    with Image.open(src) as im:
        im.save(cam, "MPO", save_all=True, append_images=[Image.new("RGB", (160, 120), (255, 0, 0))])
    with Image.open(cam) as im:
        assert im.format == "MPO" and getattr(im, "n_frames", 1) == 2
    r = run("check", str(cam))
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "width": 640, "height": 480}, r.stdout
    posters = []
    for first in (src, cam):
        out = tmp_path / first.stem
        out.mkdir()
        photos = [{"path": str(first), "caption": ""}]
        photos += [{"path": str(photo(out / f"p{i}.jpg", i, size=(400, 300))), "caption": ""} for i in (1, 2)]
        (out / "spec.json").write_text(json.dumps({"group": "g", "project": "p", "width": 160, "height": 90,
                                                   "photos": photos}), "utf-8")
        r = run("render", str(out / "spec.json"), str(out / "m.mp4"), str(out / "poster.jpg"))
        assert r.returncode == 0, r.stderr
        posters.append(np.asarray(Image.open(out / "poster.jpg").convert("RGB"), dtype=np.int16))
    assert np.abs(posters[0] - posters[1]).mean() < 6  # the same picture as the plain JPEG's, not the red preview


# --- photos as a browser shows them, and within memory ----------------------------------------------------------

OUT = (320, 180)


def _photo_frame(tmp_path: Path, first: Path) -> np.ndarray:
    """The movie's frame halfway through the first photo (no caption), as the renderer composes it, in grey."""
    others = [photo(tmp_path / f"other{i}.jpg", i, size=(400, 300)) for i in range(2)]
    spec = mm.Spec(group="会", project="プロジェクト", photos=[{"path": str(first), "caption": ""}] +
                   [{"path": str(p), "caption": ""} for p in others], width=OUT[0], height=OUT[1])
    frames = mm.Frames(spec)
    part = frames.parts[1]
    return np.asarray(frames.part_image(part, part.start + part.length / 2).convert("L"), dtype=np.int16)


def test_a_16_bit_greyscale_png_shows_its_picture_not_a_white_frame(tmp_path):
    """A scanner's or a raw converter's 16-bit greyscale PNG (a dark-to-light gradient; Pillow opens it as
    "I;16") is accepted by the check, and in the movie it is the same gradient as that picture saved in 8 bits:
    a plain conversion to RGB clipped every value above 255 (of 65,535) to white."""
    ramp16 = np.tile(np.linspace(0, 65535, 800).astype(np.uint16), (600, 1))
    p16 = tmp_path / "grey16.png"
    Image.fromarray(ramp16).save(p16)
    assert Image.open(p16).mode.startswith("I")
    assert mm.check_photo(p16) == (800, 600)  # accepted: no message for the editor
    p8 = tmp_path / "grey8.png"
    Image.fromarray((ramp16 >> 8).astype(np.uint8)).save(p8)

    frame8 = _photo_frame(tmp_path, p8)
    assert frame8.max() - frame8.min() > 150  # the control: the 8-bit picture is a visible gradient
    frame16 = _photo_frame(tmp_path, p16)
    assert frame16.max() - frame16.min() > 150, f"16-bit grey photo rendered flat: {frame16.min()}..{frame16.max()}"
    assert np.abs(frame16 - frame8).max() <= 2  # the same picture


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_every_16_bit_grey_mode_is_scaled_to_8_bits_and_a_transparent_grey_level_shows_the_background(mode):
    """Pillow's modes for 16-bit grey (by byte order, and "I" as older versions open such a PNG) all scale
    65,535 to 255; a 16-bit grey PNG's transparent level (tRNS) shows :data:`mm.BACKGROUND`, as in a browser."""
    levels = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    im = Image.frombytes(mode, (4, 1), levels.astype(">u2" if mode == "I;16B" else "<u2").tobytes()) \
        if mode != "I" else Image.fromarray(levels.astype(np.int32))
    assert im.mode == mode
    assert np.asarray(mm.opaque_rgb(im))[0, :, 0].tolist() == [0, 1, 128, 255]
    im.info["transparency"] = 0  # the black level is transparent
    assert np.asarray(mm.opaque_rgb(im))[0].tolist() == [list(mm.BACKGROUND), [1] * 3, [128] * 3, [255] * 3]


def _dark_logo(path: Path, mode: str) -> Path:
    """A dark drawing (a near-black disc) on a fully transparent background, the way a logo or an illustration
    is exported with "transparent background"."""
    im = Image.new("RGBA", (800, 600), (0, 0, 0, 0))
    ImageDraw.Draw(im).ellipse((250, 150, 550, 450), fill=(20, 20, 30, 255))
    if mode == "P":
        im = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        im.save(path, transparency=im.getpixel((0, 0)))
    elif mode == "LA":
        im.convert("LA").save(path)
    else:
        im.save(path)
    return path


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA"])
def test_a_png_with_a_transparent_background_keeps_its_drawing_visible(tmp_path, mode):
    """A dark drawing on a transparent background (RGBA, palette with tRNS, grey+alpha): a browser shows it on the
    page's white; in the movie it is on white too (:data:`mm.BACKGROUND`), not on black, where it vanished."""
    p = _dark_logo(tmp_path / f"logo-{mode}.png", mode)
    with Image.open(p) as im:
        assert im.mode == mode
    assert mm.check_photo(p) == (800, 600)  # accepted
    frame = _photo_frame(tmp_path, p)
    h, w = frame.shape
    centre = frame[h // 2 - 5: h // 2 + 5, w // 2 - 5: w // 2 + 5].mean()
    corner = frame[h - 15: h - 5, 5:15].mean()
    assert abs(corner - centre) > 60, f"drawing {centre:.0f} vs background {corner:.0f}: invisible"
    assert corner > 240  # white, as the browser showed it


def test_a_very_thin_photo_is_refused_by_the_check_and_the_renderer_stays_within_memory_anyway(tmp_path):
    """Each photo is scaled to cover the frame: an 8,000 × 4 strip (32,000 pixels, within the check's size
    limits) would grow to about 2.4 million × 1,210 pixels (~12 GB) for a 1080p movie, a MemoryError or the OOM
    killer. The check refuses photos thinner than 10:1 (its own code, for its own message on the form); a
    10:1 panorama is a photo. And ``_load_cover``, given the strip anyway, uses its middle within the memory
    the largest allowed photo (8,000 × 6,000) takes, in a 3 GB address space."""
    big = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), (90, 140, 200)).save(big, quality=80)
    thin = tmp_path / "thin.png"
    Image.new("RGB", (8000, 4), (200, 60, 60)).save(thin)
    pano, tall = tmp_path / "pano.jpg", tmp_path / "tall.png"
    Image.new("RGB", (8000, 800), (60, 200, 60)).save(pano, quality=80)
    Image.new("RGB", (4, 8000), (60, 60, 200)).save(tall)
    script = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from pathlib import Path
        from kiosk.player import moviemaker as mm
        for p in sys.argv[1:]:
            try:
                print(p, mm.check_photo(Path(p)), flush=True)
            except mm.PhotoError as exc:
                print(p, exc.code, exc.info, flush=True)
            try:
                img = mm._load_cover(Path(p), (1920, 1080))
                print(p, "ok", img.size, flush=True)
            except MemoryError:
                print(p, "MemoryError", flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", script, str(big), str(pano), str(thin), str(tall)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = r.stdout
    assert f"{big} (8000, 6000)" in out and f"{big} ok" in out, (out, r.stderr[-2000:])  # the control
    assert f"{pano} (8000, 800)" in out and f"{pano} ok (12097, 1210)" in out  # 10:1: a photo, whole
    assert f"{thin} too_thin {{'width': 8000, 'height': 4, 'max': 10}}" in out
    assert f"{tall} too_thin {{'width': 4, 'height': 8000, 'max': 10}}" in out
    assert f"{thin} ok (12097, 1210)" in out, f"the strip exhausts memory in the render: {out.splitlines()[-1]}"
    assert f"{tall} ok (2151, 21504)" in out
    r = run("check", str(thin))  # as the portal asks: a code and the size for its message
    assert json.loads(r.stdout) == {"ok": False, "error": "too_thin", "detail": "8000×4 pixels is thinner than 10:1",
                                    "width": 8000, "height": 4, "max": 10}
