"""The fault screen: what the lobby screen shows when ``kiosk run`` cannot start because its config is wrong.

Without it, a typo in ``/etc/kiosk/kiosk.toml`` made ``kiosk run`` exit 2 and systemd restart it every few
seconds, with a black screen the center staff could say nothing about. Now, when ``kiosk run`` is the lobby
screen (started by systemd: ``$NOTIFY_SOCKET`` is set) and a display opens, it shows instead, until the file
changes:

- in large type, in plain Japanese and then in English, that donations are not taken now and that the
  administrator is to be called;
- the config file's path and its first problems (``ConfigError``'s list), each first in plain Japanese
  (:meth:`kiosk.config.problems.Problem.say`: which setting, what is wrong with it, what it should be) for
  the staff, and under it, smaller, as ``kiosk run`` prints it in English, for whoever is called to read off
  the screen or a phone photo.

Meanwhile it tells systemd ``READY=1``, a one-line ``STATUS=``, and ``WATCHDOG=1`` while frames are presented
(so the watchdog does not kill it), logs the problems once, and looks at the file (:func:`_stamp`) every
:data:`WATCH_S` seconds. When the file changes it exits :data:`EXIT_CONFIG_CHANGED` and systemd
(``Restart=always``) starts ``kiosk run`` again on the new file. ``kill -USR1`` saves the next frame to
``screen.png`` in the working directory (``/var/lib/kiosk`` under the unit, the default ``DATA_DIR``), as
``kiosk run`` saves its own screen.

Started by hand (no ``$NOTIFY_SOCKET``), or with no display that opens, :func:`show` returns None and
``kiosk run`` does what it always did: every problem on stderr, exit 2.

Imported only on that path (``kiosk/cli.py``): nothing here is on the normal start's path (cold start, #16).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pygame

from kiosk.config import ConfigError
from kiosk.config.problems import Problem, other
from kiosk.ops.logsetup import setup_logging
from kiosk.ops.notify import Notifier, Watchdog
from kiosk.player.display import REDRAW_EVENTS, Display
from kiosk.ui import widgets as ui
from kiosk.ui.i18n import CatalogMissing, require_all
from kiosk.ui.screens import chrome
from kiosk.ui.widgets import THEME, Theme

log = logging.getLogger("kiosk.config")

EXIT_CONFIG_CHANGED = 75
"""Exit code after the config file changed (EX_TEMPFAIL of sysexits.h, "try again"): ``kiosk run`` did not do
its job, so not 0 (docs/architecture.md, "Exit codes"); not 2 either, so that the journal tells "the file was
edited, starting again on it" (``status=75/TEMPFAIL``) from a start that found the config bad (``status=2``).
``Restart=always`` restarts on either."""

EXIT_STOPPED = 2
"""Exit code when stopped (SIGTERM, ``systemctl stop``) while the fault screen shows: the config is still bad."""

WATCH_S = 2.0
"""How often the config file is looked at (one ``stat``)."""

REFRESH_S = 0.5
"""The screen is presented again this often: the watchdog counts presented frames."""

MAX_PROBLEMS = 5
"""Problems listed on the screen; the rest are counted ("ほか N 件"), and all are in the journal."""

HEADLINE = ("Donations cannot be accepted right now because of a mistake in the settings.",
            "Please contact the administrator.")
"""The large sentence, as msgids: drawn in Japanese, then in English below it."""


JA_LINES = 3
"""Lines of a problem's Japanese wording at most (a long one is cut with "…"; the English is beneath)."""

EN_LINES = 2
"""Lines of a problem's English line at most (a long list of valid keys is cut)."""


def _problem_list(exc: ConfigError) -> list[Problem]:
    return [p for p in exc.details if p.text] or [other(str(exc))]


def _cut(lines: list[str], n: int) -> list[str]:
    return lines if len(lines) <= n else [*lines[:n - 1], lines[n - 1].rstrip() + "…"]


def render(surface: pygame.Surface, path: str, problems: Sequence[Problem | str], theme: Theme = THEME) -> None:
    """Draw the fault screen on ``surface`` (any size; on a panel narrower than 3:2 in a 3:2 area across its
    middle, :func:`kiosk.ui.widgets.layout_rect`): a pure function of its arguments. A problem given as a
    string (its English line only) is said in Japanese as "the settings file has a mistake"."""
    items = [p if isinstance(p, Problem) else other(p) for p in problems]
    chrome.scrim(surface, theme)
    area = ui.layout_rect(surface.get_size())
    area.centery = surface.get_height() // 2  # a notice, not a step within reach: in the middle of a tall panel
    s = surface.subsurface(area) if area.size != surface.get_size() else surface
    ja, en = chrome.tr("ja"), chrome.tr("en")
    w, h = s.get_size()
    px = lambda f: theme.px(s, f)  # noqa: E731
    pygame.draw.rect(s, theme.warn, pygame.Rect(0, 0, w, px(0.02)))

    # An exclamation mark in a circle (as on the error screens): understood without reading.
    r = px(0.075)
    centre = (px(0.05) + r, px(0.07) + r)
    pygame.draw.circle(s, theme.warn, centre, r)
    ui.text(s, "!", centre, int(r * 1.5), theme.bg, bold=True, anchor="center")
    left = centre[0] + r + px(0.04)
    right = w - px(0.05)

    big = chrome.fit_text(s, "\n".join(ja(m) for m in HEADLINE), pygame.Rect(left, px(0.05), right - left, px(0.3)),
                          px(0.052), theme.text, bold=True)
    eng = chrome.fit_text(s, "\n".join(en(m) for m in HEADLINE),
                          pygame.Rect(left, big.bottom + px(0.02), right - left, px(0.09)), px(0.03), theme.muted)

    # Smaller type: the file and its problems, each in plain Japanese for the staff, then in English for whoever
    # is called (an engineer, over the phone or from a photo).
    x = px(0.05)
    y = max(eng.bottom, centre[1] + r) + px(0.03)
    pygame.draw.line(s, theme.muted, (x, y), (right, y), max(1, px(0.002)))
    y += px(0.02)
    small = px(0.027)
    f = ui.font(small)
    pitch = int(f.get_linesize() * ui.LINE_SPACING)
    jsize, esize = px(0.028), px(0.019)  # a problem: in Japanese for the staff, then in English, smaller
    jf, ef = ui.font(jsize), ui.font(esize)
    jpitch, epitch = int(jf.get_linesize() * ui.LINE_SPACING), int(ef.get_linesize() * ui.LINE_SPACING)
    footer = [ja("When the file is corrected and saved, the kiosk starts again by itself."),
              en("When the file is corrected and saved, the kiosk starts again by itself.")]
    foot_top = h - px(0.03) - (pitch * (len(footer) - 1) + f.get_height())
    y = ui.text(s, ja("Config file: {path}").format(path=path), (x, y), small, theme.accent, bold=True,
                max_width=right - x).bottom + px(0.008)
    y = ui.text(s, ja("Problems found: {n}").format(n=len(items)), (x, y), small, theme.text,
                bold=True).bottom + px(0.008)
    shown = 0
    bullet = jf.size("・")[0]
    gap = px(0.01)
    for i, p in enumerate(items[:MAX_PROBLEMS]):
        jlines = _cut(ui.wrap(p.say(ja), jf, right - x - bullet), JA_LINES)
        elines = _cut(ui.wrap(p.text, ef, right - x - bullet), EN_LINES)
        jheight = jpitch * (len(jlines) - 1) + jf.get_height()
        more = 0 if i + 1 == len(items) else pitch  # room for the "and N more" line under it
        room = foot_top - px(0.01) - more - y
        if jheight + px(0.002) + epitch * (len(elines) - 1) + ef.get_height() > room:
            elines = []  # the staff's words first: the English is in the journal (and `kiosk doctor`)
            if jheight > room:
                break
        ui.text(s, "・", (x, y), jsize, theme.text)
        y = ui.text(s, "\n".join(jlines), (x + bullet, y), jsize, theme.text).bottom
        if elines:
            y = ui.text(s, "\n".join(elines), (x + bullet, y + px(0.002)), esize, theme.muted).bottom
        y += gap
        shown += 1
    if shown < len(items):
        ui.text(s, ja("… and {n} more (all of them are in the log)").format(n=len(items) - shown), (x, y),
                small, theme.muted)
    ui.text(s, "\n".join(footer), (x, foot_top), small, theme.muted)


def _stamp(path: Path | None) -> tuple[int, int, int, int] | None:
    """What tells a changed file: inode (an editor's save replaces it), size, mtime, and ctime (a ``chmod`` or
    ``chown`` that makes an unreadable file readable changes only that); None when missing."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _open_display(env: Mapping[str, str]) -> Display | None:
    """The lobby display, as ``kiosk run`` would open it with the default ``[player] display = "auto"``
    (fullscreen at the display's own size under KMS); None when there is none."""
    display = Display("auto", title="kiosk")
    if display.driver == "dummy" and not env.get("SDL_VIDEODRIVER"):
        return None  # no TV and no desktop: SDL's dummy was the fallback, nobody would see a thing
    return display if display.open() else None


def show(exc: ConfigError, *, env: Mapping[str, str] | None = None) -> int | None:
    """Show the fault screen for ``exc`` until its file changes (then :data:`EXIT_CONFIG_CHANGED`) or the
    process is stopped (:data:`EXIT_STOPPED`); None, having shown nothing, when ``kiosk run`` is not the lobby
    screen (no ``$NOTIFY_SOCKET``) or no display opens: the caller reports ``exc`` on stderr and exits 2."""
    env = os.environ if env is None else env
    if not env.get("NOTIFY_SOCKET"):
        return None
    watched = Path(exc.path) if exc.path and exc.path != "(none)" else None
    stamp = _stamp(watched)  # first: a save from now on is seen by the watch
    if watched is not None:
        # The file was read a moment ago; a save since (a second :w right after the first) would otherwise sit
        # behind a screen naming the old problems until the next save. Read it again, after the stamp.
        from kiosk.config import load_config

        try:
            load_config(watched)
        except ConfigError as again:
            exc = again
        else:
            return EXIT_CONFIG_CHANGED  # it is good now: systemd starts kiosk run on it
    try:
        require_all()
    except CatalogMissing:
        return None
    handler = setup_logging("INFO")  # the config's log_level is not known: it could not be read
    display = _open_display(env)
    if display is None:
        logging.getLogger().removeHandler(handler)
        return None
    try:
        return _loop(exc, watched, stamp, display, env)
    finally:
        display.close()
        logging.getLogger().removeHandler(handler)


def _loop(exc: ConfigError, watched: Path | None, stamp: tuple[int, int, int, int] | None, display: Display,
          env: Mapping[str, str]) -> int:
    problems = _problem_list(exc)
    path_shown = str(watched.absolute()) if watched else exc.path
    frames = [0]
    notifier = Notifier(env=env)
    watchdog = Watchdog.from_env(lambda: frames[0], notifier=notifier, env=env,
                                 waiting=lambda: display.lost)
    capture = threading.Event()
    previous_usr1: Any = signal.signal(signal.SIGUSR1, lambda _s, _f: capture.set())

    def present(redraw: bool) -> None:
        if display.surface is None:
            return
        if redraw:
            render(display.surface, path_shown, problems)
        if capture.is_set():
            capture.clear()
            pygame.image.save(display.surface, "screen.tmp.png")  # pygame picks the format from the extension
            os.replace("screen.tmp.png", "screen.png")
        if display.flip():
            frames[0] += 1

    try:
        present(True)
        first = problems[0].text
        notifier.ready(f"config error, fault screen shown: {exc.path}: {len(problems)} "
                       f"problem{'s' if len(problems) != 1 else ''} ({first}); waiting for the file to change")
        log.error("%s ⏎ kiosk run cannot start: the fault screen is shown until the file changes", exc)
        next_watch = time.monotonic() + WATCH_S
        next_present = time.monotonic() + REFRESH_S
        while True:
            redraw = False
            event = pygame.event.wait(int(REFRESH_S * 1000 / 2))
            events = [event, *pygame.event.get()] if event.type != pygame.NOEVENT else pygame.event.get()
            for ev in events:
                if ev.type == pygame.QUIT:  # SIGTERM (SDL turns it into QUIT): systemctl stop
                    notifier.stopping("stopped while showing the config fault screen")
                    return EXIT_STOPPED
                if display.handle(ev) or ev.type in REDRAW_EVENTS:
                    redraw = True
            now = time.monotonic()
            if display.poll(now):
                redraw = True
            if redraw or now >= next_present or capture.is_set():
                present(True)
                next_present = now + REFRESH_S
            watchdog.tick()
            if now >= next_watch:
                next_watch = now + WATCH_S
                if _stamp(watched) != stamp:
                    log.info("config %s changed: exiting %d so that systemd starts kiosk run on it",
                             exc.path, EXIT_CONFIG_CHANGED)
                    notifier.stopping(f"config file {exc.path} changed: starting again on it")
                    return EXIT_CONFIG_CHANGED
    finally:
        signal.signal(signal.SIGUSR1, previous_usr1)
        notifier.close()
