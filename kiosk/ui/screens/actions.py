"""From a touch to a flow event: hit-test against what was drawn, then name the event.

Pure, so tests can check every button without a display. A touch that hits no
button is still a :class:`~kiosk.donation.flow.Touch`: on the loop it opens the amount
choice, on thanks/error it dismisses, elsewhere it keeps the screen awake.
"""

from __future__ import annotations

from collections.abc import Callable

from kiosk.donation import flow
from kiosk.ui import widgets as ui
from kiosk.ui.screens import chrome
from kiosk.ui.widgets import Target


def event_for(target: Target | None, now_ms: int) -> flow.Event:
    if target is None:
        return flow.Touch(now_ms=now_ms)
    if target.action == chrome.AMOUNT:
        return flow.ChooseAmount(now_ms=now_ms, amount_yen=int(target.value))
    if target.action == chrome.CANCEL:
        return flow.Cancel(now_ms=now_ms)
    if target.action == chrome.LANG:
        return flow.ToggleLanguage(now_ms=now_ms)
    if target.action == chrome.PICKER:
        return flow.OpenPicker(now_ms=now_ms)
    if target.action == chrome.PICK_PROJECT:
        return flow.PickProject(now_ms=now_ms, project=str(target.value))
    if target.action == chrome.PAY_ON_TERMINAL:
        return flow.PayOnTerminal(now_ms=now_ms)
    if target.action == chrome.MY_PAGE:
        return flow.AskMyPage(now_ms=now_ms)
    if target.action in _POINTS:  # use your points (issue #17, kiosk/ui/screens/points.py)
        return _POINTS[target.action](target, now_ms)
    # TOUCH: on the loop it carries the project that was on screen when the finger came down.
    return flow.Touch(now_ms=now_ms, project=target.value if isinstance(target.value, str) else None)


_POINTS: dict[str, Callable[[Target, int], flow.Event]] = {
    "points_open": lambda t, now: flow.OpenPoints(now_ms=now),
    "points_choose": lambda t, now: flow.ChoosePoints(now_ms=now, points=int(t.value)),
    "points_project": lambda t, now: flow.ChoosePointsProject(now_ms=now, project=str(t.value)),
    "points_confirm": lambda t, now: flow.ConfirmPoints(now_ms=now),
}


def touch(targets: list[Target], pos: tuple[int, int], now_ms: int) -> flow.Event:
    """The flow event for a touch at ``pos`` on a screen that returned ``targets``."""
    return event_for(ui.hit(targets, pos), now_ms)
