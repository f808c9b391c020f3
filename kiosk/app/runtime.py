"""The kiosk runtime: ledger, payment terminal, card reader, movie loop and donation screens in one process.

Threads, and why::

    reader thread ──CardPresented…──▶ service worker ──on_state──▶ snapshot ──▶ main thread draws it
    main thread (pygame) ──touches, keys──┘     (ledger + terminal)               (overlay over the movie)

- The **service worker** owns the :class:`~kiosk.donation.service.DonationService`
  and is the only thread that appends to the ledger or touches the terminal, so
  there is never a second charge in flight, and a slow terminal never freezes
  the screen (a frozen screen is what makes people tap twice). It claims the
  ledger as it starts (an append from any other thread then raises
  ``LedgerThreadError``) and is the app's :class:`~kiosk.ledger.writer.LedgerWriter`
  (``App.ledger_writer``): staff actions, PIN failures, Z reports, volunteer
  grants and pushed configs are jobs in the same inbox as the donation jobs, so
  they are strictly ordered with the gifts. The render and reader threads queue
  theirs without waiting; the menu's background thread and the sync thread wait
  for theirs. Everyone else reads the ledger through the snapshot it publishes
  after each append. Its last act is closing the ledger (the shutdown checkpoint).
- The **main thread** owns pygame: it ticks the player, draws the screen for
  the newest snapshot, hit-tests touches against exactly what it drew, and
  sleeps until the next video frame is due *or* the worker has news, so the
  thank-you is drawn the moment the donation entry is committed.

The thank-you exists only as a flow state reached through ``DonationRecorded``,
which the service sends after the ledger commit: the screen cannot run ahead
of the ledger. If the worker dies (a bug), the kiosk fails closed: taps are no
longer taken, the "temporarily unavailable" screen stays up, and :meth:`App.run`
returns 1 so systemd restarts it (start-up resolves whatever was left open).
"""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import pygame

from kiosk.app.points import PointsOffer, points_desk
from kiosk.app.staffside import StaffSide
from kiosk.donation import flow
from kiosk.donation.service import DonationService
from kiosk.ledger import Ledger, LedgerError, LedgerUnavailable, Pepper
from kiosk.ledger.writer import LedgerWriter
from kiosk.ops.local_files import ensure_secrets, open_ledger
from kiosk.payment import PaymentTerminal, open_terminal
from kiosk.player import Player
from kiosk.player.media import is_sha256  # the player's own module: loaded with Player
from kiosk.reader import CardPresented, ReaderSupervisor, open_reader
from kiosk.reader.events import ReaderEvent
from kiosk.ui.screens import COVERS_MOVIE, ScreenContext, actions, card_read_mark, chrome, render
from kiosk.ui.widgets import Target, hit

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger("kiosk.app.runtime")

ADOPTED_CACHE = "portal-config.cache"
"""Where :meth:`App._adopt_recorded_config` keeps the pushed config laid over the file's, for the next start."""
ADOPTED_PARTS = ("projects", "donation", "playlist", "volunteer")
"""What a pushed config sets on a running kiosk, and what that cache holds (an older cache without ``volunteer``,
the point rules, is rebuilt)."""

OVERLAY_Z = 100
IDLE_TICK_S = 0.25
"""How often the worker ticks the flow when nothing happens (idle timeouts, open-intent retries)."""
MAX_WAIT_S = 1 / 30
FATAL_HOLD_S = 10.0
"""How long the fail-closed screen stays up before :meth:`App.run` returns for a restart."""

Job = Callable[[DonationService], Any]
T = TypeVar("T")


class _Work(msgspec.Struct, frozen=True):
    job: Job
    future: Future[Any] | None = None
    """None: a donation job (an exception escaping it is a bug; the worker fails closed). Else a ledger job
    for another thread: its result or exception goes here and the worker carries on."""


class Snapshot(msgspec.Struct, frozen=True):
    """What the worker last published: the flow state, its screen, and the totals to draw with."""

    version: int
    state: flow.FlowState
    screen: flow.Screen
    totals_yen: dict[str, int]
    tap_at: float | None = None
    """``time.monotonic()`` of the card event that started the donation this state belongs to."""


class Presented(msgspec.Struct, frozen=True):
    """A frame the main thread drew and flipped."""

    frame: int
    snapshot: Snapshot
    screen: flow.Screen
    targets: list[Target]
    at: float


FrameHook = Callable[["App", Presented, pygame.Surface], None]


DETECTED_S = 0.8
"""How long the green "card read" mark stays at the reader after a card is seen."""


class Sounds:
    """The success and failure cues; silent (never an error) where there is no audio device."""

    def __init__(self, enabled: bool = True, volume: int = 80):
        self._cues: dict[str, Any] = {}
        self.asked: list[tuple[str, float]] = []
        """Every cue asked for, with its time.monotonic() (the last 50; tests read the order of the cues)."""
        self.volume = volume
        """0-100, set from the maintenance menu (in memory: a restart goes back to the default)."""
        if not enabled:
            return
        try:
            from kiosk.ui.sounds import detect_wav, failure_wav, success_wav

            if not pygame.mixer.get_init():
                pygame.mixer.init()
            self._cues = {"detect": pygame.mixer.Sound(file=io.BytesIO(detect_wav())),
                          "thanks": pygame.mixer.Sound(file=io.BytesIO(success_wav())),
                          "error": pygame.mixer.Sound(file=io.BytesIO(failure_wav()))}
        except (pygame.error, OSError) as exc:
            log.info("sound cues off: %s", exc)
        self.set_volume(volume)

    def set_volume(self, volume: int) -> None:
        self.volume = max(0, min(100, int(volume)))
        for cue in self._cues.values():
            cue.set_volume(self.volume / 100)

    def play(self, name: str) -> None:
        self.asked = [*self.asked[-49:], (name, time.monotonic())]
        cue = self._cues.get(name)
        if cue is not None:
            try:
                cue.play()
            except pygame.error:
                pass

    def close(self) -> None:
        self._cues.clear()
        if pygame.mixer.get_init():
            pygame.mixer.quit()


class WorkerWriter:
    """The service worker seen as a :class:`~kiosk.ledger.writer.LedgerWriter`."""

    def __init__(self, worker: ServiceWorker):
        self._worker = worker

    @property
    def ledger(self) -> Ledger:
        return self._worker.service.ledger

    def submit(self, fn: Callable[[Ledger], T]) -> Future[T]:
        return self._worker.call(lambda svc: fn(svc.ledger))


def _warm_after_first_frame(_svc: DonationService) -> None:
    """Import, on the worker and after the first frame, what the thank-you screen needs but the start path does
    not: segno for the receipt's QR code (its writers pull in urllib, http and email: ~30 ms, ~0.1 s at a quarter
    core). Queued before any tap's jobs, so a donation's thank-you never waits for it (#16)."""
    try:
        import segno  # noqa: F401
    except Exception:  # a job that raises would stop the worker: the thank-you then imports it (and says why)
        log.exception("could not load segno ahead of the first thank-you")


class ServiceWorker:
    """Runs every DonationService call, and every ledger append of the app, on one thread, in order;
    ticks the flow when idle. That thread owns the ledger from its start to its end (see the module doc)."""

    def __init__(self, service: DonationService, publish: Callable[[flow.FlowState | None], None]):
        self.service = service
        self._publish = publish
        self._inbox: queue.Queue[_Work | None] = queue.Queue()
        self._intake = threading.Lock()
        self._accepting = True
        """False once the thread is on its way out: later jobs are refused, so none waits forever."""
        self._thread = threading.Thread(target=self._run, name="donation-service", daemon=True)
        self.writer: LedgerWriter = WorkerWriter(self)
        """How the rest of the app appends: jobs in this worker's inbox, after the donation jobs before them."""
        self.ledger_closed = False
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.card_at: float | None = None
        """When the newest card event was made (reader clock = ``time.monotonic``)."""
        self.tap_at: float | None = None
        """``card_at`` of the card that started the donation in progress (or just ended)."""
        self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="points-lookup")
        """Where the service's network lookups run (the portal's points answer): never on this worker, which
        would hold every donation behind a slow portal. One thread: answers are kept (points-allotted.json) in
        the order they came."""
        service.off_writer = self.off_writer
        self.on_idle: Callable[[], None] | None = None
        """Called on this thread at each idle tick, after the flow's (the app re-decides the points button when the
        business day changes: docs/points.md). Must not raise: a job that raises stops the worker."""
        self._snapshot_retry_at = 0
        """After a failed state snapshot: the ledger size at which to try again."""
        self.idle_snapshots = True
        """Whether idle ticks may write the ledger's state snapshot. ``kiosk run`` holds them off until READY=1
        (App.after_ready): a kiosk restarted with its snapshot a few hundred entries behind would otherwise
        write it while it starts, at the very moment the lobby screen is dark."""

    def off_writer(self, work: Callable[[], T], then: Callable[[T], Any]) -> None:
        """Run ``work()`` on the side thread, then ``then(result)`` as a job on this worker (after the jobs
        queued meanwhile). Nothing of ``work`` may append: only ``then`` runs on the ledger's owner."""

        def run() -> None:
            try:
                result = work()
            except Exception:  # a bug in work(): the flow stays where it was, Cancel still leaves
                log.exception("side work failed")
                return
            self.submit(lambda _svc: then(result))

        self._side.submit(run)  # RuntimeError once shut down: the service then answers without the network

    def start(self) -> ServiceWorker:
        self._thread.start()
        return self

    def submit(self, job: Job) -> None:
        """Queue a donation job (fire and forget); dropped once the worker has stopped or failed."""
        self._put(_Work(job))

    def call(self, job: Job) -> Future[Any]:
        """Queue a job and get its outcome in a future. A worker that stopped or failed closed answers
        with LedgerUnavailable, never with silence."""
        fut: Future[Any] = Future()
        if threading.current_thread() is self._thread:
            # Already on the worker (a job submitting a job): queueing it behind ourselves and waiting would
            # deadlock, and we are the owner anyway, so run it now, in order within the job in hand.
            self._do(_Work(job, fut))
        elif not self._put(_Work(job, fut)):
            fut.set_exception(LedgerUnavailable(self._refusal()))
        return fut

    def _put(self, work: _Work) -> bool:
        # Under the intake lock, so nothing slips in after _shut() has emptied the inbox.
        with self._intake:
            if not self._accepting or self.error is not None:  # failed: refuse now, before _shut gets here
                return False
            self._inbox.put(work)
            return True

    def _refusal(self) -> str:
        if self.error is not None:
            return f"the donation service stopped ({type(self.error).__name__}); nothing is recorded until a restart"
        return "the kiosk is shutting down; nothing more is recorded"

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the jobs queued so far (a charge is never cut off), close the ledger on the worker, then stop;
        ``False`` if it would not within ``timeout``."""
        self._side.shutdown(wait=False, cancel_futures=True)  # a lookup in flight ends by its HTTP timeout
        self._inbox.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        ledger = self.service.ledger
        try:
            # Ledger.open wrote genesis/boot/checkpoint on the opening thread; every append from here on is ours.
            ledger.claim_writer()
            for r in self.service.start():
                log.info("start-up: intent seq=%d -> %s", r.intent_seq, r.outcome)
            self._publish(None)
            self.started.set()
            while True:
                try:
                    work = self._inbox.get(timeout=IDLE_TICK_S)
                except queue.Empty:
                    self.service.tick()
                    if self.on_idle is not None:
                        self.on_idle()
                    self._snapshot_when_idle(ledger)
                    continue
                if work is None:
                    return
                self._do(work)
        except BaseException as exc:  # fail closed: no more taps until a restart resolves what is open
            log.exception("donation service stopped; the kiosk fails closed")
            self.error = exc
            self.started.set()
            try:
                self._publish(None)
            except Exception:
                log.exception("could not publish the fail-closed state")
        finally:
            self._shut(ledger)

    def _snapshot_when_idle(self, ledger: Ledger) -> None:
        """Every ``ledger.snapshot_every`` entries, on an idle tick with nobody mid-donation, write the ledger's
        state snapshot, so the next start replays a few hundred entries, not the kiosk's whole history
        (docs/ledger.md, "Opening a ledger"). A tap that comes meanwhile waits for it (7-10 ms at 10,000 entries,
        20-80 ms at 30,000, at full speed on a real disk; docs/performance.md, "Eighth round"). A failure is
        logged, never raised: the snapshot only saves time at the next start, and the donations go on without it."""
        if (not self.idle_snapshots or not ledger.snapshot_due or ledger.size < self._snapshot_retry_at
                or self.service.state.name not in ("attract", "thanks")):
            return
        try:
            size = ledger.save_snapshot()
        except LedgerError as exc:
            log.warning("ledger state snapshot not written: %s", exc)
            self._snapshot_retry_at = ledger.size + ledger.snapshot_every  # not again at every tick
        except Exception:  # a bug of the snapshot's: it must not stop the donations (the entries are untouched)
            log.exception("ledger state snapshot failed; no more snapshots until a restart")
            self.idle_snapshots = False
        else:
            log.info("ledger state snapshot written at seq=%d", size)

    def _do(self, work: _Work) -> None:
        fut = work.future
        if fut is None:
            work.job(self.service)
            return
        if not fut.set_running_or_notify_cancel():
            return
        try:
            result = work.job(self.service)
        except Exception as exc:  # the caller's to show (a refused Z, a full disk); donations go on
            fut.set_exception(exc)
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        else:
            fut.set_result(result)

    def _shut(self, ledger: Ledger) -> None:
        """On the worker, last: refuse new jobs, answer the queued ones, close the ledger."""
        with self._intake:
            self._accepting = False
        while True:
            try:
                work = self._inbox.get_nowait()
            except queue.Empty:
                break
            if work is not None and work.future is not None and work.future.set_running_or_notify_cancel():
                work.future.set_exception(LedgerUnavailable(self._refusal()))
        try:
            # The shutdown checkpoint is written here, by the owner: nothing is appended from the main thread.
            ledger.close()
            self.ledger_closed = True
        except Exception:
            log.exception("could not close the ledger")


class App:
    """The kiosk. ``App(cfg).start()`` then :meth:`run`; :meth:`close` shuts down cleanly (ledger checkpoint)."""

    def __init__(self, cfg: KioskConfig, *, config_path: str | Path | None = None,
                 receipt_base_url: str | None = None, sound: bool = True,
                 allow_quit_key: bool | None = None):
        self.cfg = cfg
        self.config_path = config_path
        self.ctx = ScreenContext.from_config(cfg, receipt_base_url=receipt_base_url)
        self._receipt_base_url = receipt_base_url
        self._receipt_key_id = ""  # the ledger's key id, once the ledger is open (the receipt QR's fragment)
        self._calls: queue.Queue[Callable[[], None]] = queue.Queue()
        self._sound_enabled = sound
        self._allow_quit_key = allow_quit_key
        self.ledger: Ledger | None = None
        self.pepper: Pepper | None = None
        self.terminal: PaymentTerminal | None = None
        self.reader: ReaderSupervisor | None = None
        self.player: Player | None = None
        self.worker: ServiceWorker | None = None
        self.sounds: Sounds | None = None
        self.staff: StaffSide | None = None
        self._playlist_due: tuple[tuple[Any, Any], list[Any]] | None = None
        """(version, digest) of a pushed config and its playlist, handed to the player and not yet taken by it (its
        scheduler takes a playlist at the next clip boundary): :meth:`step` tells the staff side once it is, and
        only then are the pushed clips that playlist no longer names deleted (docs/sync.md, "Removed videos leave
        the kiosk")."""
        self._warm_queued = False
        self.live_frames = 0
        """Frames that showed a live picture: a new video frame, or a still that is meant to be still.
        The systemd watchdog is fed from this, so a hung loop or a stalled decoder gets the kiosk restarted."""
        self.frame_hooks: list[FrameHook] = []
        self.step_hooks: list[Callable[[], None]] = []
        """Called at the end of every main-loop step (the systemd watchdog and status ping hang here)."""
        self.latencies_ms: list[float] = []
        """Card event → first flipped thank-you frame, per donation (bench and health)."""
        self._snapshot: Snapshot | None = None
        self._version = 0
        self._publish_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._injected: queue.Queue[pygame.event.Event] = queue.Queue()
        self._targets: list[Target] = []
        self._drawn: tuple[Snapshot, flow.Screen, list[Target]] | None = None
        self._frame_screen: tuple[Snapshot | None, flow.Screen | None] | None = None
        """What this frame draws, fixed by :meth:`_covers_movie` before the player decides whether to draw the
        movie, so a state published in between cannot put a see-through screen over an undrawn movie."""
        self._frame_menu: bool | None = None
        """Whether the maintenance menu was open when :meth:`_covers_movie` held the movie for this frame (None:
        not fixed), so a menu closed in between (a finished action's result, on the reader thread) leaves the
        donation screens off this one frame instead of drawing a see-through one over the undrawn movie."""
        self.detected_at = -1e9
        """time.monotonic() of the last card the reader saw (the "card read" mark is drawn for DETECTED_S)."""
        self._frames = 0
        self._presented: Presented | None = None
        self._presented_cv = threading.Condition()
        self._shown_version = -1
        self._shown_name = ""
        self._cued_outcome: tuple[Any, ...] | None = None
        """The outcome (:meth:`_outcome`) last cued, so each gets its sound once."""
        self._project_shown: str | None = None
        self._failed_at: float | None = None
        self._points_offer = PointsOffer(cfg, None)
        """The "use your points" button's pools (docs/points.md): set at start with the applied config."""
        self._points_shown_in = ""
        """The flow state's name when it last changed (the button is decided again on coming to the loop or to a
        thank-you)."""

    # --- lifecycle -------------------------------------------------------------------
    def start(self, *, movie: bool = True) -> App:
        """Everything a tap needs, then (``movie``) the movie's first frame. ``movie=False``: the decode thread
        and libsodium's signing are left to :meth:`after_ready`, which ``kiosk run`` calls after READY=1 (cold
        start, #16): the display shows the still and the attract screen meanwhile, and a tap works (its entries
        signed by ``cryptography`` until then: the same bytes, kiosk/ledger/signing.py)."""
        cfg = self.cfg
        from kiosk.ui import i18n

        # The screens' text first, before anything is created or opened: without it no screen can be drawn, and
        # a kiosk would play its movie, send READY=1 and answer no tap (a checkout that was never installed).
        i18n.require_all()  # CatalogMissing names the fix; cached for the screens
        ensure_secrets(cfg)
        from kiosk.sync.configapply import load_applied, record_applied_config

        # portal-config.json, read once: the projects and amounts, the ledger's record of it and the points
        # button all follow the same reading (nothing writes it before the sync thread starts, below).
        applied = load_applied(cfg.data_dir)
        self._adopt_recorded_config(applied)
        self._adopt_fetched_clips(applied)  # before the player looks up the playlist's clips
        if applied is not None:  # the player starts with it: a deletion a power cut cut short is finished then
            self._playlist_due = ((applied.get("version"), applied.get("digest")), self.cfg.player.playlist)
        pepper = self.pepper = Pepper.load(cfg.pepper_path)  # the sync thread adopts city epochs into it
        self.ledger = open_ledger(cfg, libsodium=movie)
        # Before the worker claims the ledger and before any tap: a config whose ledger entry a power cut lost.
        if record_applied_config(self.ledger, applied):
            log.warning("portal config on disk was not in the ledger (power cut while adopting it): recorded now")
        self._receipt_key_id = self.ledger.key_id
        self.ctx = replace(self.ctx, receipt_key_id=self._receipt_key_id)
        self.terminal = open_terminal(cfg)
        self.terminal.on_live = lambda _live: self._publish(None)  # a separate terminal's state, redrawn live
        service = DonationService.for_config(cfg, self.ledger, self.terminal, on_state=self._on_state,
                                             points=points_desk(cfg))  # use your points (docs/points.md)
        # The "use your points" button and its amounts: decided now, and again whenever they matter (_on_state,
        # _points_new_day, adopt_config): a pool's last day passes, this kiosk gives its whole share.
        self._points_offer = PointsOffer(cfg, applied)
        service.settings = self._points_offer.apply(service.settings, self.ledger, self.ledger.business_date_at_least())
        service.defer_checkpoint = True  # after the thank-you frame is on screen (_after_flip), not while it is drawn
        self.worker = ServiceWorker(service, self._publish)
        self.worker.on_idle = self._points_new_day
        self.worker.idle_snapshots = movie  # else from after_ready on
        self.worker.start()
        if not self.worker.started.wait(60):
            raise RuntimeError("the donation service did not start (open intents unresolved after 60 s)")
        self.player = Player(cfg, config_path=self.config_path)
        self.player.add_overlay(self._overlay, z=OVERLAY_Z)
        self.player.covered = self._covers_movie
        self.player.add_event_listener(self._on_pygame_event)
        self.player.start(decode=movie)
        self.sounds = Sounds(self._sound_enabled)
        # Each tap carries the card's token under every epoch held (balance and daily limit span rotations).
        self.reader = open_reader(cfg, pepper.card_token)
        self.staff = StaffSide(self)
        self.player.add_overlay(self._menu_overlay, z=OVERLAY_Z + 10)  # the menu covers the donation screens
        self.reader.events.subscribe(self._on_reader_event)  # on the reader thread: hand over, never block
        self.reader.start()
        # What start-up made (modules, fonts, config, SQL engines: ~85,000 objects) lives as long as the kiosk.
        # Out of the collector's sight, a full collection walks only what came after: it took 60-150 ms at a
        # quarter of a core and now and then landed on a tap (the p99; issue #16). close() gives them back.
        gc.freeze()
        return self

    def after_ready(self) -> None:
        """What :meth:`start` with ``movie=False`` left: the movie's decoding, libsodium for the ledger's
        signatures (PyNaCl's import and key check, ≈ 10 ms at full speed), and the ledger's state snapshot on
        idle ticks."""
        self.start_movie()
        assert self.ledger is not None, "after_ready() follows start(), which opened the ledger"
        self.ledger.use_libsodium()
        if self.worker is not None:
            self.worker.idle_snapshots = True

    def start_movie(self) -> None:
        """Start decoding the movie (PyAV is imported on the decode thread) if :meth:`start` left it; at once."""
        if self.player is not None and self.player.worker is None:
            self.player.start_decoding(wait_s=0)

    @property
    def movie_on(self) -> bool:
        """Whether a decoded picture (a clip's frame or a slide) has been presented yet."""
        return self.player is not None and self.player.showing is not None

    def _adopt_recorded_config(self, applied: dict[str, Any] | None) -> None:
        """After a restart (a power cut, an update), the config the portal last pushed and this kiosk recorded
        (``applied``: ``portal-config.json``, then ``config_change`` in the ledger) still sets projects, amounts,
        playlist and ``[volunteer]`` (the point rules' version and activities): the portal was told it is applied,
        and will not push it again.

        Laying it over the file's config validates it with the config's models (pydantic), the same each time
        for the same file and document; so the result is kept in ``DATA_DIR/portal-config.cache`` like the
        file's own (kiosk/config/cache.py), and a restart takes it from there (cold start, #16)."""
        if applied is None:
            return
        from kiosk.config.cache import keep, kept
        from kiosk.config.plain import Plain, data_of

        # Only a plain config (kiosk run's) takes plain parts: a model (an App built in-process from one, where
        # pydantic is loaded anyway) keeps models throughout, so a later push can copy it as a model.
        plain = isinstance(self.cfg, Plain)
        inputs = (repr(data_of(self.cfg)) + "\0" + json.dumps(applied.get("config"), sort_keys=True)).encode()
        parts = kept(self.cfg.data_dir, ADOPTED_CACHE, inputs) if plain else None
        if not (isinstance(parts, dict) and set(parts) == set(ADOPTED_PARTS)):
            from kiosk.sync.adopt import overlay  # the config's models: only when the document is new here

            try:
                new = overlay(self.cfg, applied["config"])
            except Exception as exc:  # noqa: BLE001 - a bad file must not stop the kiosk: say so, use the config file
                log.error("portal config v%s (portal-config.json) cannot be used: %s; running on the config file",
                          applied.get("version"), exc)
                return
            parts = {"projects": new.projects, "donation": new.donation, "playlist": new.player.playlist,
                     "volunteer": new.volunteer}
            if plain:
                keep(self.cfg.data_dir, ADOPTED_CACHE, inputs, parts)
        self.cfg.projects = parts["projects"]
        self.cfg.donation = parts["donation"]
        self.cfg.player.playlist = parts["playlist"]
        self.cfg.volunteer = parts["volunteer"]
        self.ctx = ScreenContext.from_config(self.cfg, receipt_base_url=self._receipt_base_url,
                                             receipt_key_id=self._receipt_key_id)
        if self.staff is not None:
            self.staff.config_adopted()
        log.info("portal config v%s in force: %d projects, %d clips", applied.get("version"), len(parts["projects"]),
                 len(parts["playlist"]))

    def _adopt_fetched_clips(self, applied: dict[str, Any] | None) -> None:
        """The applied config's clips that were fetched but never moved into the player's media cache: a config
        applied with ``kiosk sync --once --apply-config`` while ``kiosk run`` was stopped (provisioning or
        recovering a kiosk) leaves them as ``media/<sha256>``, and only the running kiosk's ``on_config`` adopts.
        Moved in now (kiosk/sync/adopt.py ``adopt_media``), before the player looks them up; else the pushed
        playlist found none of its clips and the still slide stayed on screen.

        Nothing waiting (every start but the first after such a run): a ``stat`` a clip, and neither PyAV nor the
        config's models are imported (cold start, #16). A clip that cannot be adopted is logged and left
        out; the start goes on."""
        if not isinstance(applied, dict) or not isinstance(applied.get("config"), dict):
            return
        playlist = applied["config"].get("playlist")
        if not isinstance(playlist, list) or not playlist:
            return
        version = applied.get("version")
        media = self.cfg.data_dir / "media"
        try:
            fetched = [item["sha256"] for item in playlist
                       if isinstance(item, dict) and isinstance(item.get("sha256"), str)
                       and is_sha256(item["sha256"]) and (media / item["sha256"]).is_file()]
            if not fetched:
                return
            from kiosk.player.media import MediaCache  # the player's own module: loaded at start anyway

            # A cached copy beside it that does not verify (lost, damaged: the applier fetched the clip again).
            # One it verified before and unchanged since is not hashed again (verified.json).
            cache = MediaCache(media)
            waiting = [sha for sha in fetched if cache.verify(sha) != "ok"]
        except OSError as exc:
            log.error("portal config v%s: cannot look for fetched clips (%s); they may not play", version, exc)
            return
        if not waiting:
            return
        from kiosk.sync.adopt import adopt_media

        items = [item for item in playlist if isinstance(item, dict) and item.get("sha256") in waiting]
        try:
            ready = set(adopt_media(media, {"playlist": items}))
        except Exception:  # noqa: BLE001 - a clip that will not play must never stop the kiosk
            log.exception("portal config v%s: fetched clips could not be moved into the media cache", version)
            return
        log.info("portal config v%s: %d of %d fetched clips moved into the media cache at start", version,
                 len(ready & set(waiting)), len(waiting))

    def close(self) -> None:
        """Stop taking taps, let a donation in progress finish, then close ledger (checkpoint), terminal, display."""
        if self.reader is not None:
            self.reader.stop()
        if self.staff is not None:
            self.staff.close()  # menu actions finish and sync stops before the ledger closes
        # The worker closes the ledger itself as its last act (checkpoint when anything was appended since the
        # last one): it owns it, and an append from this thread would raise.
        worker_done = self.worker.stop() if self.worker is not None else True
        if self.ledger is not None:
            if self.worker is None:
                self.ledger.close()  # start() failed before the worker existed: never claimed, ours to close
            elif not worker_done:
                log.error("donation service still busy at shutdown; ledger left to close with the process")
        if self.terminal is not None and worker_done:
            self.terminal.close()
        if self.sounds is not None:
            self.sounds.close()
        if self.player is not None:
            self.player.stop()
        gc.unfreeze()  # what start() froze can be collected again (tests start many apps in one process)

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call_in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the main loop before the next frame (from any thread): the player and screen
        context are only touched there."""
        self._calls.put(fn)
        self._wake.set()

    def adopt_config(self, new: KioskConfig, pushed: tuple[Any, Any] | None = None) -> None:
        """Take projects, amounts, playlist and ``[volunteer]`` (point rules) from ``new`` (a portal push or the
        menu); on the main loop. ``pushed``: the (version, digest) of the portal's config ``new`` comes from; once the
        player has taken its playlist, :meth:`step` says so (the pushed clips it no longer names are deleted then).

        The playlist changes at the next clip boundary; the flow's amounts and projects as soon as the worker has
        swapped the flow's settings (it owns the service, so the swap is queued to it), and the screen on show is
        published again with them then, so the loop's band names the amount a tap gives from then on; the menu's
        activities and point rules at once (a grant already waiting on the writer is checked against the rules it
        started with). What the flow's settings take from elsewhere than the pushed parts is kept: the terminal's
        method and whether the donor pays on it; the "use your points" button follows the pools of the document
        applied (portal-config.json, written before the push is adopted), as at start-up (docs/points.md).
        """
        self.cfg.projects = new.projects
        self.cfg.donation = new.donation
        self.cfg.player.playlist = new.player.playlist
        self.cfg.volunteer = new.volunteer
        if self.staff is not None:
            self.staff.config_adopted()
        self.ctx = ScreenContext.from_config(self.cfg, receipt_base_url=self._receipt_base_url,
                                             receipt_key_id=self._receipt_key_id)
        if self.player is not None:
            self.player.reload(self.cfg)
        if pushed is not None:
            self._playlist_due = (pushed, self.cfg.player.playlist)
        settings_cfg = self.cfg

        def swap(svc: DonationService) -> None:
            old = svc.settings
            new_settings = flow.FlowSettings.from_config(settings_cfg, method=old.method,
                                                         pay_on_terminal=old.pay_on_terminal)
            svc.settings = flow.replace(new_settings, points_exchange=old.points_exchange,
                                        points_presets=old.points_presets, points_room=old.points_room)
            self._points_config_applied()
            self._publish(None)  # the screen on show, with the new amounts (the loop's band: what a tap gives)

        self.submit(swap)

    def playlist_handed(self, playlist: list[Any]) -> None:
        """On the main loop, right after the player was handed ``playlist`` other than by :meth:`adopt_config`: the
        maintenance menu's (staff switched a clip off or on, or reloaded the list from the portal). It replaces a
        pushed playlist the player has not taken yet (its scheduler takes the last one handed), so the deletion of the
        pushed clips no longer named waits for this one instead, when that deletes nothing it may open: each of its
        clips is one the pushed playlist names (the deletion keeps those). One naming another clip (a menu page
        opened before the push, the removed clip still on it) leaves the wait as it was: the next push or start
        deletes them (docs/sync.md, "Removed videos leave the kiosk")."""
        due = self._playlist_due
        if due is None:
            return
        pushed = {item.clip for item in due[1]} - {""}  # "" plays a project's newest clip, whichever that is
        if all(item.clip in pushed for item in playlist):
            self._playlist_due = (due[0], list(playlist))

    def _points_config_applied(self) -> None:
        """On the worker, after a push: the pools of the applied config (portal-config.json, read now: written before
        the push is adopted), then the button decided again. Kept as it was when they cannot be read (a job that
        raised would stop the worker)."""
        from kiosk.sync.configapply import load_applied

        try:
            self._points_offer.use(load_applied(self.cfg.data_dir))
        except Exception:  # noqa: BLE001 - the document was validated when applied; never stop the donations
            log.exception("cannot read the pools of the applied config; the points button stays as it was")
            return
        self._decide_points()

    def _decide_points(self) -> bool:
        """On the worker: the "use your points" button and the amounts it offers, from the pools' room left here today
        (docs/points.md, "At the kiosk"); whether the button changed. Never raises (it would stop the worker): the
        settings stay as they were, and an exchange is checked again on the writer anyway."""
        assert self.worker is not None
        svc = self.worker.service
        before = svc.settings.points_exchange
        try:
            svc.settings = self._points_offer.apply(svc.settings, svc.ledger, svc.ledger.business_date_at_least())
        except Exception:  # noqa: BLE001 - a ledger read failed: the next screen change tries again
            log.exception("cannot decide the points button; it stays as it was")
        return svc.settings.points_exchange != before

    def _points_new_day(self) -> None:
        """On the worker's idle tick: a new business day (a pool's last day has passed, or its first come) decides the
        button again, and the screen on show is drawn with it. Cheap when the day is the same (the clock only)."""
        assert self.worker is not None
        try:
            day = self.worker.service.ledger.business_date_at_least()
        except Exception:  # noqa: BLE001 - never stop the worker; the next screen change decides again
            log.exception("cannot read the business day for the points button")
            return
        if day != self._points_offer.day and self._decide_points():
            self._publish(None)

    def request_stop(self) -> None:
        """Make :meth:`run` return after the current frame (safe from any thread and signal handlers)."""
        self._stop.set()
        self._wake.set()

    # --- the main loop ------------------------------------------------------------------
    def run(self, *, seconds: float | None = None, until: Callable[[App], bool] | None = None) -> int:
        """Draw and react until stopped; returns 0, or 1 when the kiosk failed closed."""
        end = time.monotonic() + seconds if seconds is not None else None
        while not self._stop.is_set():
            self.step()
            if until is not None and until(self):
                break
            if end is not None and time.monotonic() >= end:
                break
            if self._failed_at is not None and time.monotonic() - self._failed_at >= FATAL_HOLD_S:
                return 1
        return 1 if self.failed else 0

    def step(self) -> None:
        """One frame: injected input, player tick (events, movie, screens, flip), then wait for the next reason
        to draw."""
        assert self.player is not None
        while True:
            try:
                self._on_pygame_event(self._injected.get_nowait())
            except queue.Empty:
                break
        while True:
            try:
                self._calls.get_nowait()()
            except queue.Empty:
                break
        self._drawn = None
        new_picture = self.player.tick()
        showing = self.player.showing
        # Live: a new movie frame, a still meant to be still, or a screen that covers the movie (the player holds it
        # and draws the screen every step; a stalled decoder is seen once the movie shows again).
        if not self.player.display.lost and (new_picture or self.player.held
                                             or (showing is not None and showing.kind != "video")):
            self.live_frames += 1
        if self.staff is not None:
            self.staff.tick()
        due = self._playlist_due
        # The scheduler's playlist is the new one only once the decode thread took it at a clip boundary: every clip
        # of the old one it was to play is open by then (an unlinked file stays readable), none is opened after.
        if due is not None and self.player.scheduler.playlist == due[1]:
            self._playlist_due = None
            if self.staff is not None:
                self.staff.playlist_taken(due[0])
        if not self._warm_queued:  # the first step has put up the first frame: now what the start path left out
            self._warm_queued = True
            self.submit(_warm_after_first_frame)
        if self._drawn is not None and not self.player.display.lost:
            self._after_flip(*self._drawn)
        for hook in list(self.step_hooks):
            hook()
        pid = self.player.current_project_id
        if pid is not None and pid != self._project_shown:
            self._project_shown = pid
            self.submit(lambda svc: svc.handle(flow.ProjectShown(now_ms=svc.now_ms(), project=pid)))
        self._wait()

    def _wait(self) -> None:
        # Like Player.run's wait, but a worker or reader event wakes us at once.
        assert self.player is not None
        p = self.player
        timeout = 0.1 if p.display.lost else MAX_WAIT_S
        head = p.queue.peek()
        if head is not None:
            due = p.pacer.next_due(head)
            if due is not None:
                timeout = min(timeout, due - p.clock.monotonic())
        if timeout > 0 and self._wake.wait(timeout):
            self._wake.clear()
        else:
            self._wake.clear()

    # --- worker side -----------------------------------------------------------------------
    @property
    def ledger_writer(self) -> LedgerWriter:
        """How anything in the app other than the donation service appends to the ledger."""
        if self.worker is None:
            raise RuntimeError("the app is not started")
        return self.worker.writer

    def submit(self, job: Job) -> None:
        if self.worker is not None and not self.failed:
            self.worker.submit(job)

    @property
    def failed(self) -> bool:
        return self.worker is not None and self.worker.error is not None

    def _on_state(self, state: flow.FlowState) -> None:
        # The loop or a thank-you comes on screen: the points button is decided again (an exchange just used this
        # kiosk's share of a pool; a day passed meanwhile): a few ledger reads on the worker. For the loop before it
        # is drawn; for a thank-you after, drawn again if it changed: the reads must not hold back the thank-you
        # frame (tap p99, #16).
        again = state.name in ("attract", "thanks") and state.name != self._points_shown_in
        self._points_shown_in = state.name
        if again and state.name == "attract":
            self._decide_points()
        self._publish(state)
        if again and state.name == "thanks" and self._decide_points():
            self._publish(None)

    def _publish(self, state: flow.FlowState | None) -> None:
        """On the worker thread: make the new state drawable and wake the main loop."""
        assert self.worker is not None
        svc = self.worker.service
        state = state or svc.state
        totals = {pid: t["total_yen"] for pid, t in svc.ledger.totals()["projects"].items()}
        if state.name == "charging" and (self._snapshot is None or self._snapshot.state.name != "charging"):
            self.worker.tap_at = self.worker.card_at
        screen = flow.screen_for(state, svc.settings)
        progress = self.terminal.progress() if self.terminal is not None else None
        if isinstance(screen, flow.ChargingScreen) and screen.on_terminal and progress is not None:
            screen = flow.replace(screen, terminal_state=progress.state, cancel_requested=progress.cancel_requested,
                             cancel_refused=progress.cancel_refused)
        with self._publish_lock:
            self._version += 1
            self._snapshot = Snapshot(self._version, state, screen, totals, self.worker.tap_at)
        self._wake.set()

    def _on_reader_event(self, ev: ReaderEvent) -> None:
        """On the reader thread: queue the event for the worker, wake the main loop."""
        worker = self.worker
        if self.staff is not None and self.staff.card(ev):
            self._wake.set()  # a staff card opened the menu (or fed it): not a donation
            return

        if isinstance(ev, CardPresented):
            # The gate's "pi": a sound and a mark the moment the card is seen, before any ledger work.
            self.detected_at = time.monotonic()
            if self.sounds is not None:
                self.sounds.play("detect")
            self._wake.set()

        def job(svc: DonationService, ev: ReaderEvent = ev) -> None:
            if isinstance(ev, CardPresented) and worker is not None:
                worker.card_at = ev.at
            svc.reader_event(ev)

        self.submit(job)

    # --- input ----------------------------------------------------------------------------
    def inject(self, event: pygame.event.Event) -> None:
        """Queue an input event as if pygame had delivered it (scripted demos, tests); any thread."""
        self._injected.put(event)
        self._wake.set()

    def touch_at(self, pos: tuple[int, int]) -> None:
        """A finger at ``pos`` (screen pixels), through the same path as a real touch."""
        self.inject(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1, touch=False))

    def _on_pygame_event(self, ev: pygame.event.Event) -> None:
        if self._menu_card_key(ev):
            return
        if self.staff is not None and self.staff.pygame_event(ev, self._surface_size()):
            return
        if ev.type == pygame.QUIT:
            self.request_stop()
        elif ev.type == pygame.FINGERDOWN:
            w, h = self._surface_size()
            self._on_touch((int(ev.x * w), int(ev.y * h)))
        elif ev.type == pygame.MOUSEBUTTONDOWN and ev.button == 1 and not getattr(ev, "touch", False):
            # SDL also turns each finger into a mouse click (``touch`` set): count the finger once.
            self._on_touch(tuple(ev.pos))
        elif ev.type == pygame.KEYDOWN:
            self._on_key(ev)

    def _menu_card_key(self, ev: pygame.event.Event) -> bool:
        """Keys 1-5 tap the simulated cards while the menu is open too (a volunteer's card, the reader test),
        except on the PIN keypad, where digits are the PIN (issue #15 item 15)."""
        key = getattr(ev, "unicode", "") or ""
        if ev.type != pygame.KEYDOWN or not key or key not in "12345" or self.sim is None:
            return False
        if self.staff is None or not self.staff.is_open or self.staff.menu.page in (None, "pin"):
            return False
        self.press(key)
        return True

    def _surface_size(self) -> tuple[int, int]:
        screen = self.player.screen if self.player is not None else None
        return screen.get_size() if screen is not None else (self.cfg.player.width, self.cfg.player.height)

    def _on_touch(self, pos: tuple[int, int]) -> None:
        target = hit(self._targets, pos)  # against what is on screen now, i.e. what the finger aimed at
        if target is not None and target.action == chrome.TERMINAL_CANCEL and self.terminal is not None:
            # The worker is inside charge(): the cancel goes straight to the terminal, which answers CANCELED.
            self.terminal.request_cancel()
            self._wake.set()
            return
        self.submit(lambda svc: svc.handle(actions.event_for(target, svc.now_ms())))

    def _on_key(self, ev: pygame.event.Event) -> None:
        key = getattr(ev, "unicode", "") or ""
        if key in "12345" and key:
            self.press(key)
        elif ev.key == pygame.K_l:
            self.submit(lambda svc: svc.handle(flow.ToggleLanguage(now_ms=svc.now_ms())))
        elif ev.key == pygame.K_ESCAPE and self._quit_key_allowed():
            self.request_stop()

    def _quit_key_allowed(self) -> bool:
        if self._allow_quit_key is not None:
            return self._allow_quit_key
        return self.player is not None and not self.player.display.fullscreen

    @property
    def sim(self) -> Any:
        """The simulated reader when the backend is ``sim`` (keys 1-5 tap its cards), else ``None``."""
        from kiosk.reader.sim import SimReader

        r = self.reader.reader if self.reader is not None else None
        return r if isinstance(r, SimReader) else None

    def press(self, key: str) -> None:
        sim = self.sim
        if sim is None:
            log.info("key %s: no simulated reader (reader.backend is %s)", key, self.cfg.reader.backend)
            return
        try:
            sim.press(key)
        except ValueError as exc:
            log.warning("%s", exc)

    # --- drawing ----------------------------------------------------------------------------
    def _screen_to_draw(self) -> tuple[Snapshot | None, flow.Screen | None]:
        snap = self._snapshot
        if snap is None:
            return None, None
        if self.failed:
            lang = snap.state.lang
            return snap, flow.ErrorScreen("unavailable", "unavailable", flow.HINTS["unavailable"], None, None,
                                          None, None, lang)
        return snap, snap.screen

    def _menu_overlay(self, surface: pygame.Surface, now_ms: int) -> None:
        if self.staff is not None and self.staff.is_open:
            self.staff.render(surface, now_ms)

    def _covers_movie(self) -> bool:
        """Asked by the player before each frame: an opaque full-screen step hides the movie, so its frame is
        not drawn (issue #16). The maintenance menu is one: it paints the whole screen opaque on every page
        (kiosk/ui/menu/render.py), so while it is open the movie is held too, and its decode thread leaves the
        CPU to the menu; when the menu closes, however it closes, the next frame finds it closed and the movie
        goes on."""
        self._frame_screen = self._screen_to_draw()
        self._frame_menu = self.staff is not None and self.staff.is_open
        if self._frame_menu:
            return True
        screen = self._frame_screen[1]
        return screen is not None and screen.screen in COVERS_MOVIE

    def _overlay(self, surface: pygame.Surface, now_ms: int) -> None:
        frame, self._frame_screen = self._frame_screen, None
        menu, self._frame_menu = self._frame_menu, None
        if menu or (self.staff is not None and self.staff.is_open):  # (the menu then paints the whole screen)
            self._targets = []  # donation screens are hidden and untouchable while staff work
            return
        snap, screen = frame if frame is not None else self._screen_to_draw()
        if snap is None or screen is None:
            return
        ctx = self.ctx.with_totals(snap.totals_yen)
        pid = self.player.current_project_id if self.player is not None else None
        # The flow's settings (one immutable reference, swapped whole by the worker): a project the flow does not
        # know yet (a pushed config still being adopted) is not named with the old amounts.
        settings = self.worker.service.settings if self.worker is not None else None
        if (isinstance(screen, flow.AttractScreen) and settings is not None and pid is not None
                and pid != screen.project and pid in settings.projects):
            # The band names the clip on screen in the very frame it starts, not the previous project until the
            # worker has taken ProjectShown in (issue #15 item 10). A touch then gives to what the donor saw.
            screen = flow.replace(screen, project=pid, default_yen=settings.default_yen)
        showing = self.player.showing if self.player is not None else None
        if showing is not None and showing.kind == "slide":
            ctx = replace(ctx, slide_showing=True)  # the loop's band stays off an event slide
        # The flow's clock, not the player's: a screen compares it with the flow's deadlines (the Express
        # window's countdown must reach zero when the flow charges), and the two clocks differ after a suspend.
        flow_now = self.worker.service.now_ms() if self.worker is not None else now_ms
        targets = render(screen, surface, flow_now, ctx=ctx)
        if time.monotonic() - self.detected_at < DETECTED_S:  # the card was just read: show it where it was,
            # over a screen that keeps the reader's place clear (never over the receipt code or a QR code)
            card_read_mark(surface, screen, self.ctx.reader_position, now_ms)
        self._targets = targets
        self._drawn = (snap, screen, targets)

    def _after_flip(self, snap: Snapshot, screen: flow.Screen, targets: list[Target]) -> None:
        now = time.monotonic()
        self._frames += 1
        pres = Presented(self._frames, snap, screen, targets, now)
        first = snap.version != self._shown_version
        if first:
            self._shown_version = snap.version
            name = screen.screen
            outcome = self._outcome(snap, screen)
            if outcome is not None and outcome != self._cued_outcome and self.sounds is not None:
                # A cue per outcome, not per change of screen: a second failed tap on the error screen, or another
                # error right after one, is a new outcome and gets its cue; a redraw of the same one (a language
                # switch, the terminal's state, a republished screen) does not.
                self.sounds.play(name)
            self._cued_outcome = outcome
            if name != self._shown_name:
                if name == "thanks" and snap.tap_at is not None:
                    self.latencies_ms.append((now - snap.tap_at) * 1000)
                if name == "thanks":
                    self.submit(self._after_thanks)
                self._shown_name = name
        if self.failed and self._failed_at is None:
            self._failed_at = now
        with self._presented_cv:
            self._presented = pres
            self._presented_cv.notify_all()
        surface = self.player.screen if self.player is not None else None
        if surface is not None:
            for hook in list(self.frame_hooks):
                hook(self, pres, surface)

    def _outcome(self, snap: Snapshot, screen: flow.Screen) -> tuple[Any, ...] | None:
        """What a thank-you or error screen on show is about, to cue it once (``None``: another screen). A gift's
        thank-you is its receipt; an error is its :class:`~kiosk.donation.flow.ErrorInfo`, which carries when it
        came (``at_ms``), so two alike in all else are two; the fail-closed screen is one outcome."""
        if screen.screen not in ("thanks", "error"):
            return None
        if self.failed:
            return ("failed",)
        return (screen.screen, snap.state.error, snap.state.thanks)

    def _after_thanks(self, svc: DonationService) -> None:
        """On the worker, once the thank-you is on screen: the gift's checkpoint (deferred so that it does not
        compete with drawing the thank-you), then the upload of gift and proof together, in the background."""
        svc.checkpoint_if_due()
        if self.staff is not None:
            self.staff.nudge_sync()

    @property
    def presented(self) -> Presented | None:
        return self._presented

    def wait_presented(self, pred: Callable[[Presented], bool], timeout: float = 10.0) -> Presented | None:
        """Block (another thread than the main loop) until a flipped frame satisfies ``pred``."""
        deadline = time.monotonic() + timeout
        with self._presented_cv:
            while True:
                p = self._presented
                if p is not None and pred(p):
                    return p
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._presented_cv.wait(left)


def target_center(targets: list[Target], action: str, value: Any = None) -> tuple[int, int] | None:
    """Where to touch to press the (topmost) button ``action``/``value``: for scripts and tests."""
    for t in reversed(targets):
        if t.action == action and (value is None or t.value == value):
            return t.rect.center
    return None


def run_kiosk(cfg: KioskConfig, *, config_path: str | Path | None = None, seconds: float | None = None) -> int:
    """``kiosk run``: the production kiosk until SIGTERM/SIGINT (or ``seconds``); 1 when it failed closed.

    Under systemd (Type=notify) it sends READY=1 once the screen and reader are up, STATUS= lines as the
    screens change, WATCHDOG=1 from the render loop only while live frames are presented (so a frozen
    picture gets the process restarted), and STOPPING=1 on the way out.
    """
    from kiosk.ops.logsetup import setup_logging
    from kiosk.ops.notify import Notifier, Watchdog

    log_handler = setup_logging(cfg.kiosk.log_level)
    app = App(cfg, config_path=config_path)
    notifier = Notifier()
    previous = {}

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        app.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)
    # SIGUSR1: save the next frame to DATA_DIR/screen.png (remote support: "what is on the screen?";
    # the end-to-end tests read a headless kiosk's screen this way).
    capture = threading.Event()
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda _s, _f: capture.set())

    def save_screen(_app: App, _pres: Presented, surface: pygame.Surface) -> None:
        if capture.is_set():
            capture.clear()
            tmp = cfg.data_dir / "screen.tmp.png"  # pygame picks the format from the extension
            pygame.image.save(surface, str(tmp))
            os.replace(tmp, cfg.data_dir / "screen.png")

    app.frame_hooks.append(save_screen)
    try:
        # READY=1 as soon as a tap works; the movie's decoding (PyAV's import, the first frames) starts after it.
        app.start(movie=False)
        assert app.ledger is not None, "start() opened the ledger"
        # While the display is released on purpose (TV off, HDMI out) no frames are expected.
        watchdog = Watchdog.from_env(lambda: app.live_frames, notifier=notifier,
                                     waiting=lambda: app.player is not None and app.player.display.lost)
        last_status = [""]

        def on_step() -> None:
            watchdog.tick()
            movie = "on" if app.movie_on else "loading"  # the first decoded picture comes after READY=1
            status = f"screen={app._shown_name or 'starting'} failed={app.failed} movie={movie}"
            if status != last_status[0]:
                last_status[0] = status
                notifier.status(status)

        app.step_hooks.append(on_step)
        notifier.ready(f"kiosk {cfg.kiosk.id} up: reader {cfg.reader.backend}, ledger seq {app.ledger.size}")
        log.info("kiosk %s ready", cfg.kiosk.id)
        app.after_ready()
        return app.run(seconds=seconds)
    finally:
        notifier.stopping("shutting down")
        app.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logging.getLogger().removeHandler(log_handler)  # leave the process's logging as we found it
