"""`kiosk media list` marked as used only the clips the config FILE's playlist names. On a kiosk the portal manages,
the playlist the kiosk runs is the portal's, laid over the file (``portal-config.json``: kiosk/app/runtime.py
``App._adopt_recorded_config``), so the clips playing showed as unused and a clip imported by hand that the pushed
playlist replaced showed as playing; `kiosk status`'s disk hint sent a technician there to delete the unused ones.
Now the list marks each clip by the playlist the kiosk runs and says where it came from (imported / portal), and
`kiosk media remove SHA` deletes a clip that playlist does not name, refusing one it names (saying which item) and
one the portal pushed (the kiosk deletes those itself).

Real parts: a config file, a data dir, tiny real movies (title cards), the real `kiosk media import`, the pushed
config saved by the kiosk's own ConfigApplier with a real ledger (as the sync thread does) and its clip moved into
the cache by ``adopt_media`` (as `kiosk run` does at start).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kiosk.config import load_config, validate_config
from kiosk.ledger.writer import InlineWriter
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.ops.status import DISK_HINTS
from kiosk.player import cli
from kiosk.player.media import MediaCache
from kiosk.sync.adopt import adopt_media
from kiosk.sync.configapply import APPLIED, ConfigApplier
from server_sync.wire import configdoc

PROJECTS = [{"id": "kids", "title": "こども食堂", "title_en": "Kids", "group": "g", "area": "children",
             "goal_yen": 10000},
            {"id": "green", "title": "まちの緑化", "title_en": "Green", "group": "g", "area": "green",
             "goal_yen": 10000}]


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kiosk")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real, tiny movies (title cards), one a project: {project: file}."""
    from kiosk.player import ensure_demo_media

    root = tmp_path_factory.mktemp("movie-maker")
    cfg = validate_config({"kiosk": {"id": "maker", "data_dir": str(root)}, "projects": PROJECTS}, "<test>", root)
    return {c.project_id: c.path for c in ensure_demo_media(cfg, size=(64, 36), seconds=0.4, fps=10)}


def _config(tmp_path: Path, clip: str = "") -> Path:
    path = tmp_path / "kiosk.toml"
    text = '[kiosk]\nid = "k-1"\ndata_dir = "data"\n\n[player]\nwidth = 160\nheight = 90\n'
    for p in PROJECTS:
        text += (f'\n[[projects]]\nid = "{p["id"]}"\ntitle = "{p["title"]}"\narea = "{p["area"]}"\n'
                 f'group = "g"\ngoal_yen = 10000\n')
    if clip:
        text += f'\n[[player.playlist]]\nproject = "kids"\nclip = "{clip}"\n'
    path.write_text(text, encoding="utf-8")
    return path


def _push(config: Path, movie: Path, project: str) -> str:
    """The portal's config (a playlist of ``movie`` for ``project``) saved as the sync thread saves it, and its clip
    moved into the player's cache as `kiosk run` does at start. Returns the clip's SHA-256."""
    import hashlib

    cfg = load_config(config)
    data = movie.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    body = {"projects": PROJECTS, "presets_yen": [100, 500, 1000], "default_yen": 500,
            "playlist": [{"sha256": sha, "name": "green.mp4", "project": project}]}
    norm = configdoc.normalised(configdoc.validate(body))
    ensure_secrets(cfg)
    led = open_ledger(cfg)
    try:
        assert ConfigApplier(cfg.data_dir, InlineWriter(led)).apply(
            {"version": 4, "digest": configdoc.digest(norm), "config": norm}, lambda _sha: data) == "applied"
    finally:
        led.close()
    assert (cfg.data_dir / APPLIED).is_file()
    assert adopt_media(cfg.data_dir / "media", norm) == [sha]
    return sha


def _rows(out: str) -> dict[str, list[str]]:
    """The listing's clip rows: short hash -> the row's columns."""
    return {line.split()[0]: line.split() for line in out.splitlines() if len(line.split()[0]) == 16
            and not line.startswith("sha256")}


def test_the_list_marks_clips_by_the_playlist_the_kiosk_runs_and_says_where_each_came_from(
        tmp_path: Path, movies: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert run_cli("media", "import", str(movies["kids"]), "--project", "kids", "--title", "夏",
                   "--preset", "ultrafast", "--config", str(config)) == 0
    hand = capsys.readouterr().out.split()[1]
    _config(tmp_path, clip=hand[:16])  # the technician's playlist: the imported clip

    assert run_cli("media", "list", "--config", str(config)) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[hand[:16]][5:7] == ["#0", "imported"], rows  # plays: the file's playlist is the one in force

    pushed = _push(config, movies["green"], "green")  # the portal takes the kiosk over: its playlist runs
    assert run_cli("media", "list", "--config", str(config)) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows[pushed[:16]][5:7] == ["#0", "portal"], out  # playing, pushed by the portal
    assert rows[hand[:16]][5:7] == ["-", "imported"], out  # no longer played: the portal's playlist replaced it
    assert "the portal's playlist (portal config v4" in out, out
    assert run_cli("media", "verify", "--config", str(config)) == 0  # the pushed playlist's clip is in the cache
    capsys.readouterr()

    # The hint `kiosk status` gives for a full disk names the list, and the command that deletes what it marks -.
    assert all("kiosk media list" in DISK_HINTS[k] and "kiosk media remove" in DISK_HINTS[k]
               for k in (("red", True), ("red", False), ("yellow", False)))


def test_remove_refuses_a_clip_the_running_playlist_names_and_one_the_portal_pushed_and_deletes_the_rest(
        tmp_path: Path, movies: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert run_cli("media", "import", str(movies["kids"]), "--project", "kids", "--preset", "ultrafast",
                   "--config", str(config)) == 0
    hand = capsys.readouterr().out.split()[1]
    _config(tmp_path, clip=hand[:16])
    cache = MediaCache(tmp_path / "data" / "media")

    assert run_cli("media", "remove", hand[:10], "--config", str(config)) == 1  # the file's playlist plays it
    err = capsys.readouterr().err
    assert "not removed" in err and "#0 (project kids" in err, err
    assert cache.find(hand) is not None and cache.path(hand).is_file()

    pushed = _push(config, movies["green"], "green")
    assert run_cli("media", "remove", pushed[:12], "--config", str(config)) == 1  # the portal's playlist plays it
    err = capsys.readouterr().err
    assert "#0 (project green" in err and "the portal's playlist" in err, err
    assert cache.path(pushed).is_file()

    assert run_cli("media", "remove", "0" * 64, "--config", str(config)) == 2  # no such clip
    assert "no clip" in capsys.readouterr().err

    assert run_cli("media", "remove", hand[:12], "--config", str(config)) == 0  # the pushed playlist replaced it
    assert f"removed {hand[:16]}" in capsys.readouterr().out
    assert cache.find(hand) is None and not cache.path(hand).exists()
    assert cache.find(pushed) is not None and cache.path(pushed).is_file()  # the playing clip stays


def test_remove_refuses_a_pushed_clip_no_playlist_names_the_kiosk_deletes_those_itself(
        tmp_path: Path, movies: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    pushed = _push(config, movies["green"], "green")
    (tmp_path / "data" / APPLIED).unlink()  # a kiosk back on its file's playlist (none): the clip is named nowhere
    assert run_cli("media", "remove", pushed[:12], "--config", str(config)) == 1
    assert "the portal pushed it" in capsys.readouterr().err
    assert MediaCache(tmp_path / "data" / "media").path(pushed).is_file()
