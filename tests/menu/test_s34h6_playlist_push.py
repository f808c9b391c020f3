"""Review 34: the maintenance menu's playlist page read the playlist only when it was entered. When a config pushed
from the portal changed the playlist while staff were on the page (a clip removed because someone in it withdrew
their consent), their next switch handed the player the OLD list, the removed clip included: it played again until
the next push, and once the kiosk had deleted its file the player tried a file that is gone. Now the page reads the
configured playlist again before it applies anything and on every tick while it is up, and keeps what staff meant:
the clip they pressed, found on the new list (docs/menu.md, "A push while the playlist page is open").

The push is made as ``App.adopt_config`` makes it: the config's ``player.playlist`` replaced, which the menu's
``playlist`` service reads (``services_from_config``: ``lambda: list(cfg.player.playlist)``). Presses are touches on
the drawn buttons; ``apply_playlist`` is what the app hands the player (recorded by the rig).
"""

from __future__ import annotations

import pygame

from kiosk.config.player import PlaylistItem
from kiosk.staff.menu.model import PLAYLIST_CHANGED, PLAYLIST_CHANGED_OFF, PLAYLIST_GONE
from kiosk.ui.i18n import gettext_for

from .conftest import Rig

REMOVED = PlaylistItem(project="kodomo", clip="a1b2c3d4e5f6a7b8")
KEPT = PlaylistItem(project="midori", clip="0f1e2d3c4b5a6978")
OTHER = PlaylistItem(project="kodomo", clip="9988776655443322", repeat=2)
ja = gettext_for("ja")


def _on_page(rig: Rig) -> None:
    rig.cfg.player.playlist = [REMOVED, KEPT, OTHER]
    rig.services.playlist = lambda: list(rig.cfg.player.playlist)  # as services_from_config reads it
    rig.open()
    rig.touch("go", "playlist")
    assert [b.value for b in rig.view().buttons] == [0, 1, 2]


def _push(rig: Rig) -> None:
    """The portal's new config, adopted by the app: the removed clip is gone from the playlist."""
    rig.cfg.player.playlist = [KEPT, OTHER]


def test_a_switch_right_after_a_push_never_hands_the_player_the_removed_clip(rig: Rig) -> None:
    _on_page(rig)
    target = rig.target("toggle", 2)  # OTHER, as the page drew it before the push
    _push(rig)  # adopted on the main loop between that frame and the touch
    assert rig.menu.handle_pygame_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=target.rect.center, button=1,
                                                           touch=False))
    assert rig.machine.applied == [[KEPT]]  # OTHER stopped, as pressed; REMOVED nowhere
    assert rig.menu.model.playlist == [(KEPT, True), (OTHER, False)]
    view = rig.view()
    assert view.notice == ja(PLAYLIST_CHANGED_OFF) and view.notice_level == "yellow"
    assert len(view.buttons) == 2 and "停止中" in view.buttons[1].detail
    entry = [d for d in rig.admin() if d["action"] == "playlist_disable"][-1]
    assert (entry["index"], entry["clip"], entry["playing"]) == (1, OTHER.clip[:16], 1)


def test_the_open_page_shows_the_pushed_list_at_the_next_tick(rig: Rig) -> None:
    _on_page(rig)
    rig.touch("toggle", 1)  # KEPT stopped before the push
    assert rig.machine.applied == [[REMOVED, OTHER]]
    _push(rig)  # the app gave the player the whole pushed list
    rig.menu.tick()
    view = rig.view()
    assert [b.value for b in view.buttons] == [0, 1]
    assert rig.menu.model.playlist == [(KEPT, True), (OTHER, True)]  # what the player now plays
    assert view.notice == ja(PLAYLIST_CHANGED)
    rig.touch("toggle", 0)
    assert rig.machine.applied[-1] == [OTHER]
    assert rig.view().notice_level == "green"  # an ordinary switch again


def test_pressing_the_clip_the_push_removed_changes_nothing_and_says_so(rig: Rig) -> None:
    _on_page(rig)
    target = rig.target("toggle", 0)  # REMOVED
    _push(rig)
    rig.menu.touch(target.rect.center)
    assert rig.machine.applied == []
    assert rig.view().notice == ja(PLAYLIST_GONE)
    assert rig.menu.model.playlist == [(KEPT, True), (OTHER, True)]
    assert not [d for d in rig.admin() if d["action"].startswith("playlist")]


def test_switching_on_a_clip_the_push_already_plays_hands_nothing_stale(rig: Rig) -> None:
    _on_page(rig)
    rig.touch("toggle", 2)  # OTHER stopped
    assert rig.machine.applied == [[REMOVED, KEPT]]
    target = rig.target("toggle", 2)
    _push(rig)  # the player now plays KEPT and OTHER
    rig.menu.touch(target.rect.center)  # staff switch OTHER back on from the old page
    assert rig.machine.applied == [[REMOVED, KEPT]]  # nothing more handed: the old list would bring REMOVED back
    assert rig.menu.model.playlist == [(KEPT, True), (OTHER, True)]
    assert rig.view().notice == ja(PLAYLIST_CHANGED)
