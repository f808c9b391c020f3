"""Demo title cards: generated once per project in the cache format, reused afterwards."""

from __future__ import annotations

import av

from kiosk.config import validate_config
from kiosk.player.demo_media import demo_playlist, ensure_demo_media
from kiosk.player.media import MediaCache
from kiosk.player.slides import AREA_COLOURS
from kiosk.player.transcode import probe


def test_demo_clips_are_in_the_cache_format(demo_cache, projects):
    media, shas = demo_cache
    assert set(shas) == {p["id"] for p in projects}
    for project in projects:
        path = media / f"{shas[project['id']]}.mp4"
        info = probe(path)
        assert (info.codec, info.pix_fmt, info.width, info.height, info.fps) == ("h264", "yuv420p", 160, 90, 30.0)
        assert info.closed_gop and info.faststart and info.frames == 30
        with av.open(str(path)) as c:
            first = next(c.decode(video=0)).reformat(format="rgb24")
        corner = tuple(bytes(first.planes[0])[3 * 2 + first.planes[0].line_size * 2:][:3])
        want = AREA_COLOURS[project["area"]]
        assert max(abs(a - b) for a, b in zip(corner, want, strict=True)) < 12  # the area colour, nowhere near black


def test_generation_is_idempotent_and_follows_the_projects(tmp_path, projects):
    projects = projects[:2]
    cfg = validate_config({"kiosk": {"id": "test-1", "data_dir": str(tmp_path)}, "projects": projects})
    first = ensure_demo_media(cfg, size=(96, 54), seconds=0.3)
    assert [c.reused for c in first] == [False, False]
    stamps = {c.sha256: c.path.stat().st_mtime_ns for c in first}

    again = ensure_demo_media(cfg, size=(96, 54), seconds=0.3)
    assert [c.reused for c in again] == [True, True]
    assert [c.sha256 for c in again] == [c.sha256 for c in first]
    assert {c.sha256: c.path.stat().st_mtime_ns for c in again} == stamps

    projects[1]["title"], projects[1]["title_en"] = "まちの緑化・改", "Greening, renamed"
    cfg = validate_config({"kiosk": {"id": "test-1", "data_dir": str(tmp_path)}, "projects": projects})
    third = ensure_demo_media(cfg, size=(96, 54), seconds=0.3)
    assert third[0].reused and third[0].sha256 == first[0].sha256
    assert not third[1].reused and third[1].sha256 != first[1].sha256
    cache = MediaCache(tmp_path / "media")
    assert sorted(e.sha256 for e in cache.entries()) == sorted(c.sha256 for c in third)  # the stale card is gone
    assert not first[1].path.exists()

    items = demo_playlist(third)
    assert [(i.project, i.clip) for i in items] == [(c.project_id, c.sha256) for c in third]
