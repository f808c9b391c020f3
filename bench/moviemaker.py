"""The movie maker: seconds to render a 20 s 1080p movie from 6 photos, against a bare PyAV encode of
the same frames in the same run; one JSON line.

    python bench/moviemaker.py [--size 1920x1080] [--seconds 20] [--quick]

Six phone-sized photos (4032×3024 JPEGs, one portrait) are made first. Then, in this order:

- the baseline: the movie's frames are composed (``compose_s``: pan and zoom, captions, cards, fades)
  and converted to yuv420p (``convert_s``) into memory, untimed as far as the baseline goes; then
  ``bare_encode_s`` times only PyAV encoding and muxing them with the movie maker's own encoder settings
  (libx264, the same preset and CRF, closed GOP, faststart);
- ``render_s``: the movie maker's ``render()`` from the photos to the finished MP4, which is what the
  portal's child process runs (photo decoding and all).

``ratio`` = render_s / bare_encode_s (1.0 would mean composing costs nothing next to encoding);
``realtime_x`` = movie seconds per second of rendering. ``--quick`` renders at 320×180 (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CAPTIONS = ["畑で野菜を育てました", "子どもたちと一緒に収穫", "みんなで食べるとおいしい！", "地域の皆さんに感謝",
            "次は秋のお祭りです", "ありがとうございました"]


def make_photos(root: Path, n: int = 6) -> list[dict[str, str]]:
    from PIL import Image, ImageDraw, ImageFilter

    out = []
    for i in range(n):
        w, h = (3024, 4032) if i == 2 else (4032, 3024)
        im = Image.new("RGB", (w, h), ((53 * i + 40) % 256, (97 * i + 120) % 256, (31 * i + 200) % 256))
        d = ImageDraw.Draw(im)
        for k in range(-h, w, 160):
            d.line((k, 0, k + h, h), fill=((255 - 40 * i) % 256, 230, 40), width=24)
        d.ellipse((w // 3, h // 3, 2 * w // 3, 2 * h // 3), fill=(245, 245, 245))
        im = im.filter(ImageFilter.GaussianBlur(2))  # closer to a photo's soft edges than hard vector lines
        path = root / f"photo{i}.jpg"
        im.save(path, "JPEG", quality=90)
        out.append({"path": str(path), "caption": CAPTIONS[i % len(CAPTIONS)]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="320x180 (a smoke run)")
    args = ap.parse_args()
    import av
    from av.video.reformatter import VideoReformatter

    from kiosk.player import moviemaker as mm
    from kiosk.player.transcode import h264_encoder, open_output, probe

    w, h = (320, 180) if args.quick else tuple(int(x) for x in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench-moviemaker-") as tmp:
        root = Path(tmp)
        spec = mm.Spec(group="子ども応援団", project="みんなのこども食堂", area="children", photos=make_photos(root),
                       width=w, height=h, seconds=args.seconds)
        encoder = h264_encoder()
        fps = Fraction(spec.fps)

        # Baseline: the same frames, composed and converted first, then only encoded.
        to_yuv = VideoReformatter()
        compose_s = convert_s = 0.0
        frames = []
        t = time.perf_counter()
        for img in mm.Frames(spec):
            t1 = time.perf_counter()
            compose_s += t1 - t
            frames.append(to_yuv.reformat(av.VideoFrame.from_image(img), format="yuv420p"))
            t = time.perf_counter()
            convert_s += t - t1
        t0 = time.perf_counter()
        out, stream = open_output(root / "bare.mp4", encoder, w, h, fps, spec.preset, spec.crf)
        with out:
            for n, vf in enumerate(frames):
                vf.pts, vf.time_base = n, 1 / fps
                for packet in stream.encode(vf):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        bare_encode_s = time.perf_counter() - t0
        n_frames = len(frames)
        del frames

        # The movie maker, end to end.
        t0 = time.perf_counter()
        mm.render(spec, root / "movie.mp4")
        render_s = time.perf_counter() - t0
        info = probe(root / "movie.mp4")
    print(json.dumps({
        "bench": "moviemaker", "size": f"{w}x{h}", "photos": len(spec.photos), "movie_s": round(info.duration_s, 2),
        "frames": n_frames, "encoder": encoder, "preset": spec.preset, "crf": spec.crf,
        "render_s": round(render_s, 2), "bare_encode_s": round(bare_encode_s, 2),
        "ratio": round(render_s / bare_encode_s, 2), "compose_s": round(compose_s, 2),
        "convert_s": round(convert_s, 2), "realtime_x": round(info.duration_s / render_s, 2),
        "kiosk_format": info.codec == "h264" and info.closed_gop and info.faststart,
    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
