"""The [player] config: playlist and slide tables from TOML, strictness, and documented fields."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from kiosk.config import ConfigError, validate_config
from kiosk.config.base import field_docs
from kiosk.config.player import EventSlide, PlayerConfig, PlaylistItem, TimeWindow

TOML = """
[kiosk]
id = "center-1"

[[projects]]
id = "kids"
title = "こども食堂"
area = "children"

[player]
slide_every = 2

[[player.playlist]]
project = "kids"
clip = "0123456789abcdef"
repeat = 2

[[player.playlist.windows]]
days = ["sat", "sun"]
start = "10:00"
end = "16:00"

[[player.playlist]]
project = "kids"

[[player.slides]]
title = "夏のボランティア説明会"
date = 2025-07-12
time = "10:00–12:00"
place = "2階 会議室A"
"""


def test_playlist_and_slides_from_toml():
    cfg = validate_config(tomllib.loads(TOML))
    pl = cfg.player.playlist
    assert [i.project for i in pl] == ["kids", "kids"]
    assert pl[0].clip == "0123456789abcdef" and pl[0].repeat == 2
    assert pl[0].windows[0].days == ["sat", "sun"] and pl[1].windows == []
    slide = cfg.player.slides[0]
    assert slide.date == dt.date(2025, 7, 12) and slide.place == "2階 会議室A"
    assert cfg.player.slide_every == 2


def test_unknown_playlist_key_is_reported_with_a_suggestion():
    data = tomllib.loads(TOML)
    data["player"]["playlist"][1]["projcet"] = "kids"
    with pytest.raises(ConfigError) as exc:
        validate_config(data)
    assert "player.playlist[1].projcet: unknown key (did you mean 'project'?)" in str(exc.value)


@pytest.mark.parametrize("patch", [
    {"clip": "xyz"}, {"clip": "abc"}, {"repeat": 0}, {"windows": [{"days": []}]},
    {"windows": [{"start": "10:00", "end": "10:00"}]}, {"windows": [{"days": ["someday"]}]},
])
def test_bad_playlist_items_are_rejected(patch):
    data = tomllib.loads(TOML)
    data["player"]["playlist"][1].update(patch)
    with pytest.raises(ConfigError):
        validate_config(data)


@pytest.mark.parametrize("model", [PlayerConfig, PlaylistItem, EventSlide, TimeWindow])
def test_every_field_is_documented(model):
    docs = field_docs(model)
    missing = [name for name in model.model_fields if not docs.get(name, "").strip()]
    assert missing == []
