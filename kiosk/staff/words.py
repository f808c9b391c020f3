"""Errors staff read on the menu: an English message id and its figures, so the menu can say it in Japanese.

``str()`` of such an error stays the English sentence the CLI prints and the admin trail records
(``refused: …``); the menu calls :meth:`StaffMessage.say` with its gettext instead (issue #15: a refused grant
or a failed USB export was shown in English on a Japanese menu). Figures that come from outside (a title, a
tool's own error text) go in as figures, never into the message id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class StaffMessage(Exception):
    def __init__(self, msgid: str, **figures: Any):
        self.msgid, self.figures = msgid, figures
        super().__init__(msgid.format(**figures))

    def say(self, tr: Callable[[str], str]) -> str:
        """The message in the staff's language (``tr``: the menu's gettext)."""
        return tr(self.msgid).format(**self.figures)
