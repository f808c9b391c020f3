"""What runs beside the donation flow inside ``kiosk run``: the maintenance menu, its status page,
background sync to the portal, and applying playlist changes from the menu.

Kept apart from :mod:`kiosk.app.runtime`, which owns the donation loop; the app calls
:meth:`StaffSide.card`, :meth:`StaffSide.pygame_event`, :meth:`StaffSide.tick` and
:meth:`StaffSide.render` at the points noted there.

Nothing here is built before it is needed, because every start of ``kiosk run`` (a watchdog restart, a power
cut) keeps the lobby screen dark until it is ready (cold start, #16): the menu (its pages, reports, refunds and
their imports) is built when staff first open it — until then a tap is checked against the staff cards and a
touch against the hidden corner, exactly as the closed menu would — and the sync thread starts after the first
frame is on the screen.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygame

from kiosk import __version__
from kiosk.config.plain import ops_settings, plain_of
from kiosk.ledger import LedgerError
from kiosk.ops.status import (
    SYNC_ERRORS,
    LedgerFailure,
    PaymentState,
    PaymentUnused,
    ReaderState,
    StatusInputs,
    error_kind,
    ledger_figures,
    portal_reached,
    read_disk_free,
    read_disk_writable,
    read_soc_temp,
    read_uptime,
)
from kiosk.reader import CardPresented, ReaderEvent
from kiosk.staff.gate import StaffGate
from kiosk.staff.menu.gesture import CornerTaps
from kiosk.staff.words import StaffMessage
from kiosk.ui.widgets import Target

if TYPE_CHECKING:
    from kiosk.app.runtime import App
    from kiosk.player.metrics import Sample
    from kiosk.staff.menu import MaintenanceMenu

log = logging.getLogger(__name__)

SYNC_NOW_WAIT_S = 20.0


class SyncFailed(StaffMessage):
    """"Sync now" (or "reload from the portal") ran a round and it failed: said to staff by the kind of the
    uploader's error (:data:`~kiosk.ops.status.SYNC_ERRORS`), e.g. 「同期できませんでした・ポータルにつながりません」,
    never as a bug. ``str()`` is the uploader's own words, for the admin trail and the log; the Sync now page
    shows what to do and those words under it (``status_text.last_error_lines``)."""

    def __init__(self, error: str, kind: str):
        Exception.__init__(self, error)
        self.error, self.kind = error, kind if kind in SYNC_ERRORS else "other"
        self.msgid, self.figures = SYNC_ERRORS[self.kind][0], {}

    def say(self, tr: Callable[[str], str]) -> str:
        failed = tr(SYNC_ERRORS["other"][0])
        failed = failed[:1].upper() + failed[1:]
        if self.kind == "other":
            return failed
        return tr("{problem}; {value}").format(problem=failed, value=tr(SYNC_ERRORS[self.kind][0]))


def _state_stamp(path: Path) -> tuple[int, int, int] | None:
    """What one ``stat`` says of ``sync-state.json`` (inode, size, mtime), None when there is none: another file
    (`kiosk enroll` replaces it) or another write shows as another stamp."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def last_played(samples: list[Sample]) -> Sample | None:
    """The newest one-second sample in which the movie ran (the newest of all when none did, e.g. a still).

    While the menu is open the movie is held (App._covers_movie): its seconds have nothing due, presented or
    dropped, so the status page's player row reads the playback of the last second before staff opened the menu,
    not "0 dropped" for every held second."""
    return next((s for s in reversed(samples) if s.expected or s.presented or s.dropped),
                samples[-1] if samples else None)


class StaffSide:
    def __init__(self, app: App):
        self.app = app
        cfg = app.cfg
        assert app.ledger is not None
        # Everything staff do is appended by the app's service worker (the ledger's one writer); the menu and
        # the gate queue their entries there instead of appending on the render or reader thread.
        writer = app.ledger_writer
        self.gate = StaffGate(writer, ops_settings(cfg).staff)
        self.last_family: str | None = None
        self._pushed_playlist: list | None = None
        self._player_took: tuple[Any, Any] | None = None
        """(version, digest) of the pushed config whose playlist the player last took (:meth:`playlist_taken`)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="menu-action")
        # Looked at before it is read, so that an enrollment written from here on is seen by the watch below.
        self._state_seen = _state_stamp(cfg.data_dir / "sync-state.json")
        self.sync = self._make_sync() if cfg.portal.url or self._enrolled() else None
        self._sync_started = False
        self._sync_running = False  # sync.start() was called: close() stops it
        self._closing = threading.Event()
        self._watch: threading.Thread | None = None
        """With no sync (no [portal] url, enrolled nowhere): the thread that notices a `kiosk enroll` run beside the
        running kiosk and starts the sync thread then (:meth:`_watch_enrollment`)."""
        self._menu: MaintenanceMenu | None = None
        self._menu_lock = threading.Lock()

    @property
    def menu(self) -> MaintenanceMenu:
        """The maintenance menu, built on first use (a staff card, the hidden corner, a test)."""
        menu = self._menu
        if menu is None:
            with self._menu_lock:  # the reader thread (a staff card) and the main thread (the corner) may race
                if self._menu is None:
                    self._menu = self._build_menu()
                menu = self._menu
        return menu

    def config_adopted(self) -> None:
        """The app took a config (pushed by the portal, or recorded and adopted at start): the menu, when built,
        reads the ops settings from it, so the point rules' version and activities ([volunteer]) are in force
        for the next activity chosen and the next grant."""
        menu = self._menu
        if menu is not None:
            menu.model.s.ops = ops_settings(self.app.cfg)

    def _build_menu(self) -> MaintenanceMenu:
        from kiosk.staff.menu import MaintenanceMenu, services_from_config

        app, cfg, writer = self.app, self.app.cfg, self.app.ledger_writer
        return MaintenanceMenu(
            services_from_config(
                cfg, writer, self.gate,
                status_inputs=self.status_inputs,
                sync_now=self._sync_now if self.sync is not None else None,
                sync_state=(lambda: self.sync.uploader.state) if self.sync is not None else None,
                apply_playlist=self._apply_playlist,
                reload_playlist=self._reload_playlist if self.sync is not None else None,
                volume=lambda: app.sounds.volume if app.sounds is not None else 0,
                set_volume=lambda v: app.sounds.set_volume(v) if app.sounds is not None else None,
                set_language=self._set_language,
                language=lambda: cfg.kiosk.language,
                restart_app=app.request_stop,  # systemd's Restart=always brings it back
                background=self._executor.submit,
                # Refunds run on the menu's executor: the terminal's own client, then a void through the writer.
                refund=app.terminal.refund if app.terminal is not None and app.terminal.can_refund else None,
                refund_method=app.terminal.method if app.terminal is not None else "",
            ),
            screen_size=(cfg.player.width, cfg.player.height),
        )

    # --- sync ------------------------------------------------------------------------------
    def _enrolled(self) -> bool:
        """Enrolled with `kiosk enroll` though the config names no portal: sync with that one."""
        state = self.app.cfg.data_dir / "sync-state.json"
        if self._state_seen is None and not state.exists():
            return False  # never enrolled: no need to import the uploader to say so
        from kiosk.sync.uploader import enrolled_portal

        return bool(enrolled_portal(state))

    def _make_sync(self) -> Any:
        """The uploader and its thread, not started (:meth:`tick` starts it once the first frame is shown)."""
        from kiosk.sync.uploader import BackgroundSync, Uploader

        # Pushed configs are recorded through the worker too: the sync thread waits for its config_change entry.
        uploader = Uploader.from_config(self.app.cfg, writer=self.app.ledger_writer, on_config=self._on_pushed_config,
                                        payment_health=self._payment_report, pepper=self.app.pepper)
        return BackgroundSync(uploader, self.app.cfg.portal.sync_interval_s)

    def _on_pushed_config(self, record: dict) -> None:
        """On the sync thread, after the portal's config was validated, fetched and recorded in the ledger."""
        from kiosk.sync.adopt import adopt_media, overlay

        pushed = record["config"]
        adopt_media(self.app.cfg.data_dir / "media", pushed)
        new = overlay(self.app.cfg, pushed)
        log.info("portal config v%s adopted: %d projects, %d clips", record["version"], len(new.projects),
                 len(new.player.playlist))
        self._pushed_playlist = list(new.player.playlist)
        pushed_as = (record["version"], record["digest"])
        self.app.call_in_loop(lambda: self.app.adopt_config(new, pushed=pushed_as))

    def playlist_taken(self, pushed: tuple[Any, Any]) -> None:
        """On the main loop: the player plays the playlist of the pushed config ``pushed`` (version, digest), the one
        it started with or the one :meth:`_on_pushed_config` handed it. The sync's config applier then deletes the
        pushed clips that playlist no longer names, on a thread of its own (docs/sync.md, "Removed videos leave the
        kiosk")."""
        self._player_took = pushed
        if self.sync is not None:
            self.sync.uploader.applier.player_took(*pushed)

    def nudge_sync(self) -> None:
        if self.sync is not None:
            self.sync.nudge()

    def _sync_now(self) -> str:
        """Ask the background thread to upload now and wait for its answer (the menu shows 'working…')."""
        assert self.sync is not None
        self._start_sync()
        before = self.sync.status().get("last_attempt_ms")
        self.sync.nudge()
        deadline = time.monotonic() + SYNC_NOW_WAIT_S
        while time.monotonic() < deadline:
            st = self.sync.status()
            if st.get("last_attempt_ms") != before:
                if st.get("last_error"):
                    # Said by its kind (the menu took a RuntimeError for a bug: 「予期しないエラー」).
                    error = str(st["last_error"])
                    log.warning("sync now: %s", error)
                    raise SyncFailed(error, error_kind(error, st.get("last_error_kind")))
                return f"{st.get('pending', 0)} pending, accepted through seq {st.get('accepted_through_seq')}"
            time.sleep(0.2)
        raise TimeoutError(f"no answer from the portal within {SYNC_NOW_WAIT_S:.0f} s")

    # --- menu callbacks -----------------------------------------------------------------------
    def _reload_playlist(self) -> list:
        """'Reload from the portal': sync now (a newer config is pulled, recorded and adopted), then the
        playlist as the portal last set it."""
        self._sync_now()
        return list(self._pushed_playlist if self._pushed_playlist is not None else self.app.cfg.player.playlist)

    def _apply_playlist(self, items: list) -> None:
        cfg = plain_of(self.app.cfg)  # a deep copy (of a model or of the plain copy `kiosk run` runs on)
        cfg.player.playlist = list(items)
        player = self.app.player
        assert player is not None

        def hand() -> None:  # the next clip boundary; the player only on the main loop
            player.reload(cfg)
            # Taken instead of a pushed playlist still waiting: the clips that push removed may be deleted once it is
            self.app.playlist_handed(cfg.player.playlist)

        self.app.call_in_loop(hand)

    def _set_language(self, lang: str) -> None:
        match lang:  # the menu offers these two only (MaintenanceMenu._do_lang)
            case "ja" | "en":
                self.app.cfg.kiosk.language = lang  # in memory, as the menu documents
            case _:
                raise ValueError(f"not a kiosk language: {lang!r}")
        # The citizen screens follow it too (issue #15 item 5): the flow's settings live on the worker thread.
        self.app.submit(lambda svc: svc.set_language(lang))

    def status_inputs(self) -> StatusInputs:
        app = self.app
        sup = app.reader
        reader_state = None
        detail = fix = ""
        if sup is not None:
            state = getattr(sup.state, "value", str(sup.state))
            states: dict[str, ReaderState] = {"connected": "connected", "reconnecting": "lost", "fault": "fault",
                                              "starting": "lost", "stopped": "missing"}
            reader_state = states.get(state)
            fault = getattr(sup, "last_fault", None)
            # Why, then the fix: the status page reads the reason first (the fix alone said nothing of the cause).
            detail, fix = getattr(fault, "reason", "") or "", getattr(fault, "fix", "") or ""
        sync = self.sync.status() if self.sync is not None else {}
        from kiosk.sync.uploader import LEDGER_MISMATCH  # imported by `kiosk run`'s sync already

        mismatch = LEDGER_MISMATCH in (sync.get("extra") or {})  # the portal answered: it holds another history
        last_ok = sync.get("last_success_ms")
        # The error and its kind as the uploader set them; a pushed config it could not adopt is kept apart from
        # upload errors (extra["config_error"]), of the kind "config". Staff see either.
        last_error, config_error = sync.get("last_error"), (sync.get("extra") or {}).get("config_error")
        m = last_played(app.player.metrics.history()) if app.player is not None else None
        gaps = list(getattr(m, "switch_gap_ms", []) or [])
        # A kiosk that failed closed (its ledger: the ledger row says so) or has no terminal does not ask it: the
        # payment row says which, with its own advice, not "offline" and "check the power and cable".
        unused: PaymentUnused | None = None
        if app.failed:
            unused = "ledger_failed"
        elif app.terminal is None:
            unused = "no_terminal"
        pay = self._payment() if unused is None else {"payment_state": "", "payment_detail": ""}
        return StatusInputs(
            reader_state=reader_state, reader_detail=detail, reader_fix=fix, last_family=self.last_family,
            # The terminal's own word (Square: live checkout state and a cached device check), not a constant.
            payment_state=_payment_state(pay["payment_state"]), payment_detail=pay["payment_detail"],
            payment_unused=unused,
            # Syncing, with the config's portal or the one `kiosk enroll --portal` joined: not an offline kiosk.
            portal_configured=self.sync is not None,
            # Unreachable only for a network error or a portal too busy to answer: not for any error (a refused
            # request, a kiosk not enrolled, a sync record it cannot save), which sent staff to check the network.
            portal_reachable=None if not sync else portal_reached(last_error, sync.get("last_error_kind")),
            enrolled=None if not sync else sync.get("enrolled_ms") is not None,
            last_sync_age_s=(time.time() * 1000 - last_ok) / 1000 if last_ok else None,
            pending_entries=sync.get("pending") if sync else None,
            ledger_ok=not app.failed,
            ledger_failure=_failure(getattr(getattr(app, "worker", None), "error", None)) if app.failed else None,
            **ledger_figures(app.ledger),
            disk_free_bytes=read_disk_free(app.cfg.data_dir), disk_writable=read_disk_writable(app.cfg.data_dir),
            ledger_mismatch=mismatch,
            sync_error=(last_error or config_error) if sync else None,
            sync_error_kind=(sync.get("last_error_kind") if last_error else "config" if config_error else None)
            if sync else None,
            soc_temp_c=read_soc_temp(),
            uptime_s=read_uptime(), version=__version__,
            dropped_frames_per_min=(getattr(m, "dropped", 0) or 0) * 60.0 if m is not None else None,
            switch_gap_ms=max(gaps) if gaps else None,
        )

    def _payment_report(self) -> dict[str, str]:
        """The terminal's state for the portal's heartbeat (sync thread; ``health()`` never blocks)."""
        pay = self._payment()
        return {"terminal": self.app.cfg.payment.terminal, "state": pay["payment_state"],
                "detail": pay["payment_detail"]}

    def _payment(self) -> dict[str, str]:
        app = self.app
        if app.failed:
            return {"payment_state": "offline", "payment_detail": "the kiosk failed closed"}
        if app.terminal is None:
            return {"payment_state": "offline", "payment_detail": "no terminal"}
        state, detail = app.terminal.health()
        return {"payment_state": state, "payment_detail": detail}

    # --- routing (called by the app) ------------------------------------------------------------
    def card(self, ev: ReaderEvent) -> bool:
        """On the reader thread: True when the menu took the tap (a staff card, or a tap inside the menu)."""
        if isinstance(ev, CardPresented):
            self.last_family = ev.record.family
            if self._menu is None and not self.gate.is_staff_card(ev.record.token):
                return False  # what the closed menu answers for a donor's card, without building it
            return self.menu.card(ev.record)
        return False

    def pygame_event(self, ev: pygame.event.Event, size: tuple[int, int]) -> bool:
        """True when the menu consumed the event. While closed the menu counts corner taps towards the
        hidden gesture; those taps are swallowed here so they never start a donation."""
        if self._menu is None and not self._in_corner(ev, size):
            return False  # what the closed menu answers for anything but a touch in its corner, without building it
        if self.menu.handle_pygame_event(ev):
            return True
        if ev.type == pygame.FINGERDOWN:
            pos = (int(ev.x * size[0]), int(ev.y * size[1]))
        elif ev.type == pygame.MOUSEBUTTONDOWN:
            pos = tuple(ev.pos)
        else:
            return False
        return self.menu.in_corner(pos)

    def _in_corner(self, ev: pygame.event.Event, size: tuple[int, int]) -> bool:
        """Whether the closed menu would look at this event: a touch in the hidden gesture's corner, located as
        the menu counts it (the config's screen size: MaintenanceMenu's before its first render) or as
        :meth:`pygame_event` swallows it (the surface's size)."""
        own = (self.app.cfg.player.width, self.app.cfg.player.height)
        if ev.type == pygame.FINGERDOWN:
            spots = [(int(ev.x * w), int(ev.y * h)) for w, h in (own, size)]
        elif ev.type == pygame.MOUSEBUTTONDOWN:
            spots = [tuple(ev.pos)]
        else:
            return False
        return any(CornerTaps().in_corner(pos, own) for pos in spots)

    def _start_sync(self) -> None:
        """Start the sync thread once: on the first main-loop step, after the first frame (its imports and first
        round would otherwise compete with the start for the CPU), or when staff ask to sync now, if sooner. A kiosk
        with no sync (no [portal] url, enrolled nowhere) starts the watch for an enrollment instead."""
        with self._menu_lock:
            if self._sync_started:
                return
            self._sync_started = True
            if self.sync is not None:
                self._sync_running = True
                self.sync.start()
            elif not self._closing.is_set():
                self._watch = threading.Thread(target=self._watch_enrollment, name="enroll-watch", daemon=True)
                self._watch.start()

    def _watch_enrollment(self) -> None:
        """On its own thread, while the kiosk has no sync: every ``[portal] sync_interval_s`` one ``stat`` of
        ``sync-state.json``; when it changed (`kiosk enroll` run beside the running kiosk writes it), read it, and
        once it names an enrollment, build the uploader and start the sync thread, as a kiosk started enrolled
        would have: the kiosk syncs without a restart (docs/sync.md, "Enrollment"). Nothing on the render, reader
        or tap path: the main loop's step only looks at a flag, as before."""
        path = self.app.cfg.data_dir / "sync-state.json"
        interval = float(self.app.cfg.portal.sync_interval_s)
        while not self._closing.wait(interval):
            stamp = _state_stamp(path)
            if stamp == self._state_seen:
                continue
            self._state_seen = stamp
            try:
                if not self._enrolled():
                    continue
                sync = self._make_sync()
            except Exception:  # noqa: BLE001 - a key or a file that cannot be read now: look again when it changes
                log.exception("enrollment seen in %s, but the sync thread could not be made", path.name)
                continue
            with self._menu_lock:
                if self._closing.is_set():  # the kiosk is stopping: no thread to start
                    sync.uploader.close()
                    return
                self.sync, self._sync_running = sync, True
                sync.start()
                if self._player_took is not None:  # what the player plays: its applier may delete what it left
                    sync.uploader.applier.player_took(*self._player_took)
            log.info("enrolled with %s while running: syncing from now on", sync.uploader.portal_url)
            menu = self._menu
            if menu is not None:  # built while there was no sync: give it the sync pages it hid
                menu.model.s.sync_now = self._sync_now
                menu.model.s.sync_state = lambda up=sync.uploader: up.state
                menu.model.s.reload_playlist = self._reload_playlist
            return

    def tick(self) -> None:
        if not self._sync_started:
            self._start_sync()
        if self._menu is not None:
            self._menu.tick(int(time.monotonic() * 1000))

    @property
    def is_open(self) -> bool:
        return self._menu is not None and self._menu.is_open

    def render(self, surface: pygame.Surface, now_ms: int) -> list[Target]:
        return self.menu.render(surface, now_ms) if self.is_open else []

    def close(self) -> None:
        if self.is_open:
            self.menu.close("shutdown")
        self._closing.set()  # wakes the enrollment watch, which then starts nothing
        with self._menu_lock:
            watch, self._sync_started = self._watch, True  # and nothing starts after this
        if watch is not None:
            watch.join(10.0)
        if self.sync is not None:
            if self._sync_running:
                self.sync.stop()
            self.sync.uploader.close()
        self._executor.shutdown(wait=True, cancel_futures=False)


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def _failure(error: BaseException | None) -> LedgerFailure | None:
    """Why the donation worker stopped (``App.failed``), for the ledger row: an error of the ledger or of its disk
    (``LedgerError``, SQLite's, a full, failing or read-only disk), or any other: a fault in the program. None when
    the error is not at hand."""
    if error is None:
        return None
    disk = isinstance(error, OSError) and error.errno in DISK_ERRNOS
    return "ledger" if disk or isinstance(error, (LedgerError, sqlite3.Error)) else "software"


def _payment_state(word: str) -> PaymentState | None:
    """``PaymentTerminal.health()``'s state as the status page takes it; None ("unknown", yellow) for a word
    ``health()`` may not answer (kiosk/payment/base.py)."""
    match word:
        case "ready" | "busy" | "offline" | "error":
            return word
    return None
