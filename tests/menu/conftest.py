"""Menu tests: a real ledger in tmp_path, a staff gate on a fake clock, and fakes for every machine action."""

from __future__ import annotations

import os

# Before pygame is imported anywhere: no window, no sound card, no banner.
os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"

import dataclasses  # noqa: E402
import hashlib  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from kiosk.config import KioskConfig, load_config  # noqa: E402
from kiosk.config.player import PlaylistItem  # noqa: E402
from kiosk.config.staff import OpsSettings, StaffSection, ops_settings  # noqa: E402
from kiosk.ledger import DonorToken, Ledger, Pepper  # noqa: E402
from kiosk.ledger.clock import FixedClock  # noqa: E402
from kiosk.ledger.writer import InlineWriter  # noqa: E402
from kiosk.ops.local_files import ensure_secrets, open_ledger  # noqa: E402
from kiosk.ops.status import StatusInputs  # noqa: E402
from kiosk.reader.events import TapRecord  # noqa: E402
from kiosk.staff.gate import StaffGate  # noqa: E402
from kiosk.staff.menu import MaintenanceMenu, MenuServices, View  # noqa: E402
from kiosk.staff.pin import hash_pin  # noqa: E402
from kiosk.staff.usb_export import Stick, export_day  # noqa: E402
from kiosk.ui.widgets import Target  # noqa: E402

PIN = "2468"
SIZE = (640, 360)

CONFIG = """\
[kiosk]
id = "test-kiosk-1"
data_dir = "data"
timezone = "Asia/Tokyo"

[reader]
backend = "sim"

[[projects]]
id = "kodomo"
title = "こども食堂"
title_en = "Children's cafeteria"
area = "children"

[[projects]]
id = "midori"
title = "雑木林を守ろう"
title_en = "Save the woods"
area = "green"

[[volunteer.activities]]
id = "park-cleanup"
title = "公園の清掃"
title_en = "Park clean-up"
points = 10
max_points = 50

[[volunteer.activities]]
id = "event-help"
title = "イベントの手伝い"
title_en = "Event helper"
points = 20
max_points = 100
"""


@lru_cache(maxsize=1)
def pin_hash() -> str:
    # A cheap scrypt cost: the hash format is the real one, the tests just don't wait for it.
    return hash_pin(PIN, n=2**10)


def card_idm(n: int) -> bytes:
    return hashlib.sha256(f"menu-card-{n}".encode()).digest()[:8]


class FakeClock:
    """Monotonic seconds that move only when a test says so; shared by the gate and the menu."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@dataclass
class FakeSync:
    last_success_ms: int | None = 1_763_700_000_000 - 25 * 60_000
    last_error: str | None = None
    local_size: int = 40
    accepted_through_seq: int = 28
    calls: int = 0

    @property
    def pending(self) -> int:
        return max(0, self.local_size - self.accepted_through_seq)

    def sync_now(self) -> str:
        self.calls += 1
        self.accepted_through_seq = self.local_size
        return "uploaded 12 entries; 0 pending"


@dataclass
class Machine:
    """What the menu does to the kiosk, recorded instead of done."""

    volume: int = 70
    language: str = "ja"
    commands: list[list[str]] = field(default_factory=list)
    restarts: int = 0
    applied: list[list[PlaylistItem]] = field(default_factory=list)
    reloads: int = 0


@dataclass
class Rig:
    cfg: KioskConfig
    ledger: Ledger
    pepper: Pepper
    wall: FixedClock
    clock: FakeClock
    gate: StaffGate
    ops: OpsSettings
    services: MenuServices
    menu: MaintenanceMenu
    sync: FakeSync
    machine: Machine
    stick: Path
    surface: pygame.Surface
    staff_token: DonorToken

    # --- driving the menu the way a person would -----------------------------------------------
    def render(self) -> list[Target]:
        return self.menu.render(self.surface, 0)

    def view(self) -> View:
        return self.menu.view()

    def target(self, action: str, value: Any = None) -> Target:
        targets = self.render()
        found = [t for t in targets if t.action == action and (value is None or t.value == value)]
        assert found, f"no target {action}={value!r} on page {self.menu.page}: {[(t.action, t.value) for t in targets]}"
        return found[0]

    def touch(self, action: str, value: Any = None) -> None:
        """Touch the centre of the drawn button, through a pygame event like a finger would."""
        t = self.target(action, value)
        ev = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=t.rect.center, button=1, touch=False)
        assert self.menu.handle_pygame_event(ev)
        self.render()

    def key(self, name: str) -> None:
        keycodes = {"up": pygame.K_UP, "down": pygame.K_DOWN, "left": pygame.K_LEFT, "right": pygame.K_RIGHT,
                    "enter": pygame.K_RETURN, "esc": pygame.K_ESCAPE, "backspace": pygame.K_BACKSPACE}
        code = keycodes[name] if name in keycodes else getattr(pygame, f"K_{name}")
        ev = pygame.event.Event(pygame.KEYDOWN, key=code, mod=0, unicode=name if name.isdigit() else "")
        self.menu.handle_pygame_event(ev)
        self.render()

    def key_to(self, action: str, value: Any = None) -> None:
        """Arrow right until the wanted button has focus, then Enter: what a keyboard-only user does."""
        buttons = self.view().all_buttons
        for _ in range(len(buttons) + 1):
            b = buttons[self.menu.model.focus]
            if b.action == action and (value is None or b.value == value):
                self.key("enter")
                return
            self.key("right")
        raise AssertionError(f"{action}={value!r} not reachable by keyboard on {self.menu.page}")

    def tap(self, n: int = 1, *, family: str = "suica", balance: int | None = 1234, read_ms: float = 87.4,
            token: DonorToken | None = None) -> bool:
        return self.menu.card(self.record(n, family=family, balance=balance, read_ms=read_ms, token=token))

    def record(self, n: int = 1, *, family: str = "suica", balance: int | None = 1234, read_ms: float = 87.4,
               token: DonorToken | None = None) -> TapRecord:
        return TapRecord(reader_id="sim-0", family=family, system_code=0x0003, token=token or self.token(n),
                         balance_yen=balance, last_transaction=None, read_ms=read_ms)

    def token(self, n: int) -> DonorToken:
        return self.pepper.token(card_idm(n))

    def open(self) -> None:
        assert self.menu.card(self.record(token=self.staff_token))
        assert self.menu.page == "home"

    def admin(self) -> list[dict[str, Any]]:
        return [e.data for e in self.ledger.iter_entries() if e.type == "admin_action"]

    def actions(self) -> list[str]:
        return [d["action"] for d in self.admin()]

    def donate(self, n: int, project: str, yen: int, method: str = "sim") -> int:
        idem = f"menu-{self.ledger.size}"
        intent = self.ledger.record_intent(project, yen, method, self.token(n), idem)
        return self.ledger.record_donation(intent.seq, f"ref-{idem}", yen // 100).seq


PLAYLIST = [PlaylistItem(project="kodomo", clip="a1b2c3d4e5f6a7b8"), PlaylistItem(project="midori"),
            PlaylistItem(project="kodomo", clip="0f1e2d3c4b5a6978", repeat=2)]
STATUS = StatusInputs(reader_state="connected", last_family="suica", payment_state="ready", portal_configured=True,
                      network_up=True, portal_reachable=True, enrolled=True, last_sync_age_s=1500, pending_entries=12,
                      ledger_ok=True, ledger_entries=41, last_seq=41, ledger_bytes=180_224,
                      disk_free_bytes=900 * 1_048_576, soc_temp_c=58.0, uptime_s=3 * 86400 + 4 * 3600,
                      version="0.1.0", dropped_frames_per_min=2.0, switch_gap_ms=35.0)


def build_rig(tmp_path: Path, **overrides: Any) -> Rig:
    site = tmp_path / "site"
    site.mkdir(parents=True)
    (site / "kiosk.toml").write_text(CONFIG, "utf-8")
    cfg = load_config(site / "kiosk.toml")
    ensure_secrets(cfg)
    pepper = Pepper.load(cfg.pepper_path)
    wall = FixedClock()
    ledger = open_ledger(cfg, clock=wall)
    clock = FakeClock()
    staff_token = pepper.token(card_idm(99))
    ops = dataclasses.replace(ops_settings(cfg), staff=StaffSection(
        pin_hash=pin_hash(), staff_tokens=[staff_token.hex], free_attempts=3, lockout_base_s=30, lockout_max_s=900,
        idle_timeout_s=300))
    writer = InlineWriter(ledger)  # the menu's appends run in the test's thread, so every step is synchronous
    gate = StaffGate(writer, ops.staff, clock=clock)
    sync, machine = FakeSync(), Machine()
    stick = tmp_path / "media" / "KIOSK-USB"
    stick.mkdir(parents=True)
    playlist = list(PLAYLIST)

    def reload_playlist() -> list[PlaylistItem]:
        machine.reloads += 1
        playlist[:] = [*PLAYLIST, PlaylistItem(project="midori", clip="9988776655443322")]
        return list(playlist)

    kw: dict[str, Any] = dict(
        writer=writer, gate=gate, ops=ops,
        titles={p.id: p.title for p in cfg.projects}, titles_en={p.id: p.title_en for p in cfg.projects},
        language=lambda: machine.language, set_language=lambda lang: setattr(machine, "language", lang),
        status_inputs=lambda: dataclasses.replace(STATUS),
        sync_now=sync.sync_now, sync_state=lambda: sync,
        playlist=lambda: list(playlist), apply_playlist=machine.applied.append, reload_playlist=reload_playlist,
        volume=lambda: machine.volume, set_volume=lambda v: setattr(machine, "volume", v),
        restart_app=lambda: setattr(machine, "restarts", machine.restarts + 1),
        run_command=machine.commands.append,
        find_sticks=lambda: [Stick(stick, "/dev/sda1", "vfat", free_bytes=7_634_000_000)],
        export=lambda path: export_day(path, ledger.path, kiosk_id=cfg.kiosk.id, timezone=cfg.kiosk.timezone,
                                       titles={p.id: p.title for p in cfg.projects}, logs=None),
        kiosk_id=cfg.kiosk.id, timezone=cfg.kiosk.timezone, version="0.1.0",
        wall_ms=wall.wall_ms,
    )
    kw.update(overrides)
    services = MenuServices(**kw)
    menu = MaintenanceMenu(services, clock=clock, screen_size=SIZE)
    return Rig(cfg, ledger, pepper, wall, clock, gate, ops, services, menu, sync, machine, stick,
               pygame.Surface(SIZE), staff_token)


@pytest.fixture
def rig(tmp_path: Path):
    r = build_rig(tmp_path)
    yield r
    r.ledger.close(checkpoint=False)


@pytest.fixture(scope="session", autouse=True)
def _pygame():
    pygame.init()
    yield
    pygame.quit()
