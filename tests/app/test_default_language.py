"""Issue #15 item 5: the menu's default-language setting reaches the citizen screens, through a real App."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.app.demo import card_spec
from kiosk.app.runtime import App, target_center
from kiosk.ui.screens import chrome
from tests.app.drive import card_on_reader, run_until
from tests.app.test_app_e2e import _cfg, media  # noqa: F401  (the module's clips fixture)


@pytest.fixture
def kiosk(tmp_path: Path, media: Path):  # noqa: F811
    cfg = _cfg(tmp_path / "data", media)
    cfg.flow.express_cancel_ms = 0
    app = App(cfg, sound=False)
    app.start()
    yield app
    app.close()


def test_the_default_language_set_in_the_menu_is_what_citizens_see(kiosk):
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.lang == "ja")
    kiosk.staff.menu.model.s.set_language("en")  # what the menu's language page calls
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.lang == "en")
    with card_on_reader(kiosk, card_spec(0)):
        p = run_until(kiosk, lambda p: p.screen.screen == "thanks")
    assert p.screen.lang == "en"
    kiosk.touch_at(target_center(p.targets, chrome.CANCEL))
    run_until(kiosk, lambda p: p.screen.screen == "attract" and p.screen.lang == "en")  # and it stays
