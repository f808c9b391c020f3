"""`kiosk run` with a config it cannot use, as the lobby screen: a fault screen, not a black restart loop.

A real `kiosk run` process under SDL's dummy driver and a real notify socket (as systemd starts it): it must
say READY=1, a STATUS naming the problem, keep WATCHDOG=1 coming, draw the fault screen (read back with
``kill -USR1``, as support reads a kiosk's screen), and exit when the file is edited so that systemd starts it
again on the new file. By hand (no notify socket) it still lists the problems on stderr and exits 2
(``tests/app/test_app_cli.py::test_run_with_a_bad_config_exits_2_listing_every_problem`` too).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pygame
import pytest

from kiosk.ui.widgets import compare_images, measure_boxes
from tests import goldenkit

ROOT = Path(__file__).resolve().parents[2]
BAD = '[kiosk]\nid = "Bad Id"\nlanguage = "fr"\n\n[donation]\npresets_yen = []\n\n[reader]\nbackend = "usb"\n'
MANY = ('[kiosk]\nid = "Bad Id"\nlanguage = "fr"\n\n[player]\nwidht = 1280\n\n[reader]\nbackend = "pcs"\n'
        'cooldown_ms = "fast"\n\n[staff]\nfree_attempts = 99\n\n[[projects]]\nid = "a"\ntitle = "A"\n')
"""Seven problems, one of each kind a file's values can have (a real file, read as `kiosk run` reads it)."""
LONG_PATH = "/etc/kiosk/a-very-long-folder-name-made-by-the-installer/another-level-of-folders/kiosk-lobby-main.toml"
JA = ("設定に誤りがあるため、いまは寄付を受け付けていません。", "管理者に連絡してください。")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT), **extra)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "KIOSK_CONFIG",
                 "PYGAME_HIDE_SUPPORT_PROMPT"):
        if name not in extra:
            env.pop(name, None)
    return env


class NotifySocket:
    """systemd's end of sd_notify: a datagram socket whose lines are collected."""

    def __init__(self, path: Path, proc: subprocess.Popen | None = None):
        self.proc = proc
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.lines: list[str] = []

    def wait_for(self, pred, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        for ln in self.lines:
            if pred(ln):
                return ln
        while time.monotonic() < end:
            self.sock.settimeout(min(0.2, max(0.01, end - time.monotonic())))
            try:
                msg = self.sock.recv(65536).decode()
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None:
                    out, err = self.proc.communicate()
                    raise AssertionError(f"exited {self.proc.returncode} before that; sent {self.lines}; "
                                         f"stdout {out!r}; stderr {err!r}") from None
                continue
            new = msg.splitlines()
            self.lines += new
            for ln in new:
                if pred(ln):
                    return ln
        raise AssertionError(f"no such notify line; got {self.lines}")

    def drain(self) -> list[str]:
        """Every line sent so far (the sender has exited: what it sent is queued)."""
        self.sock.setblocking(False)
        while True:
            try:
                self.lines += self.sock.recv(65536).decode().splitlines()
            except BlockingIOError:
                return self.lines


def test_a_bad_config_under_systemd_shows_the_fault_screen_until_the_file_is_fixed(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(BAD)
    notify = NotifySocket(tmp_path / "notify.sock")
    env = _env(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="200000")  # ping at most every 0.1 s
    # cwd: the unit's WorkingDirectory (/var/lib/kiosk), where `kill -USR1` leaves screen.png.
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(cfg)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    notify.proc = proc
    try:
        notify.wait_for(lambda ln: ln == "READY=1")
        status = notify.wait_for(lambda ln: ln.startswith("STATUS="))
        assert "config error" in status and str(cfg) in status and "4 problems" in status
        assert "kiosk.id" in status, status  # the first problem, named
        # The watchdog is fed while the screen shows (every 0.1 s at most here; 15 s under the unit).
        notify.wait_for(lambda ln: ln == "WATCHDOG=1" and notify.lines.count("WATCHDOG=1") >= 3, timeout=10)
        assert notify.lines.index("READY=1") < notify.lines.index("WATCHDOG=1")

        # What is on the screen: the frame the process presents, saved on SIGUSR1.
        proc.send_signal(signal.SIGUSR1)
        shot = tmp_path / "screen.png"
        end = time.monotonic() + 10
        while not shot.exists() and time.monotonic() < end:
            time.sleep(0.05)
        frame = pygame.image.load(str(shot))
        assert frame.get_size() == (1280, 720)
        assert proc.poll() is None, "it exited while the file was unchanged"

        # The installer fixes the file: the process exits (systemd's Restart=always starts it on the new file).
        cfg.write_text('[kiosk]\nid = "fixed-1"\n')
        code = proc.wait(timeout=10)
        out, err = proc.communicate()
        notify.drain()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.sock.close()
    assert code == 75, (code, out, err)
    assert "Traceback" not in out + err
    # The problems are logged once, on one journal line, every one of them.
    logged = [ln for ln in out.splitlines() if "kiosk run cannot start" in ln]
    assert len(logged) == 1 and all(k in logged[0] for k in ("kiosk.id", "kiosk.language", "reader.backend"))
    lines = notify.lines
    assert "STOPPING=1" in lines and any(ln.startswith("STATUS=config file") and "changed" in ln for ln in lines)
    # The frame is the fault screen for this file and these problems, pixel for pixel as drawn in-process.
    expected = pygame.Surface((1280, 720))
    from kiosk.app.config_fault import render
    from kiosk.config import ConfigError, load_config

    cfg.write_text(BAD)
    with pytest.raises(ConfigError) as bad:
        load_config(cfg)
    render(expected, str(cfg), bad.value.details)
    assert compare_images(frame, expected).ok


def test_by_hand_or_without_a_display_the_problems_go_to_stderr_and_it_exits_2(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(BAD)
    by_hand = subprocess.run([sys.executable, "-m", "kiosk", "run", "--config", str(cfg)], cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=20)
    # Exactly as before: the report on stderr, nothing on stdout (not even pygame's banner: nothing of the fault
    # screen is imported).
    assert by_hand.returncode == 2 and "4 problems" in by_hand.stderr and by_hand.stdout == ""
    # Japanese first (the fault screen's words), each problem's English line under it.
    assert by_hand.stderr.startswith(f"設定ファイル：{cfg}  見つかった問題：4件\n"
                                     f"config {cfg}: 4 problems\n  - [kiosk] の id ")
    assert "\n    kiosk.id: " in by_hand.stderr
    # Under systemd but on a machine with no display at all (SDL's dummy driver chosen by default, not asked
    # for): nobody would see a fault screen, so the same exit 2, and the problems on stderr as before.
    env = _env(NOTIFY_SOCKET=str(tmp_path / "nobody.sock"))
    env.pop("SDL_VIDEODRIVER")
    script = ("import sys, kiosk.player.display as d; d.glob.glob = lambda pattern: []; "
              "from kiosk.cli import main; sys.exit(main(sys.argv[1:]))")
    headless = subprocess.run([sys.executable, "-c", script, "run", "--config", str(cfg)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=20)
    assert headless.returncode == 2, headless.stdout + headless.stderr
    assert headless.stderr == by_hand.stderr


def _problems(tmp_path: Path, body: str) -> list:
    from kiosk.config import ConfigError, load_config

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError) as bad:
        load_config(cfg)
    return bad.value.details


def _flat(text: str) -> str:
    return "".join(text.split())  # a long line is drawn wrapped


@pytest.mark.parametrize("size", goldenkit.SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_fault_screen_says_it_in_plain_japanese_first(size: tuple[int, int], tmp_path: Path):
    from kiosk.app.config_fault import render
    from kiosk.ui.i18n import gettext_for

    ja = gettext_for("ja")
    problems = _problems(tmp_path, MANY)
    assert len(problems) == 7 and len({p.kind for p in problems}) == 6
    surface = pygame.Surface(size)
    with measure_boxes() as boxes:
        render(surface, LONG_PATH, problems)
    texts = [b.text for b in boxes]
    big = next(b for b in boxes if JA[0] in b.text)
    assert JA[1] in big.text and big.size >= 0.05 * size[1]  # large: read from across the lobby
    english = next(b for b in boxes if "Please contact the administrator." in b.text)
    assert english.rect.top > big.rect.bottom and english.size < big.size
    assert f"設定ファイル：{LONG_PATH}" in texts and "見つかった問題：7件" in texts
    # Each problem: its plain Japanese first, and under it, smaller and grey, the English line (cut to two
    # lines: the engineer has the journal), in the file's order. The last one shown may be in Japanese only,
    # when its English would not fit above the footer.
    shown, with_english = 0, 0
    for i, p in enumerate(problems):
        jbox = next((b for b in boxes if _flat(b.text) == _flat(p.say(ja))), None)
        if jbox is None:
            break
        assert jbox.size >= 0.027 * size[1]  # the staff's words no smaller than the path's
        ebox = boxes[boxes.index(jbox) + 1]
        if _flat(ebox.text) and _flat(p.text).startswith(_flat(ebox.text).rstrip("…")):
            assert ebox.rect.top >= jbox.rect.bottom and ebox.size < jbox.size, p
            with_english += 1
        shown = i + 1
    assert shown >= 3 and with_english >= shown - 1, texts
    assert f"…ほか{len(problems) - shown}件（すべてログに記録しています）" in texts
    assert not any(_flat(p.say(ja)) in _flat(t) for p in problems[shown:] for t in texts)
    for b in boxes:  # nothing runs off the screen or over another text
        assert surface.get_rect().contains(b.rect), b
        assert not any(b is not o and b.rect.colliderect(o.rect) for o in boxes if b.text != "!"), b
    goldenkit.check(surface, "fault", "config_fault", "ja")


@pytest.mark.parametrize("size", goldenkit.SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_missing_file_and_a_toml_mistake_are_said_in_japanese_on_the_screen(size: tuple[int, int],
                                                                               tmp_path: Path):
    from kiosk.app.config_fault import render
    from kiosk.config import ConfigError, load_config
    from kiosk.ui.i18n import gettext_for

    ja = gettext_for("ja")
    syntax = _problems(tmp_path, '[kiosk]\nid = "k-1"\nlanguage = ja\n')
    missing = tmp_path / "kiosk.tml"  # kiosk.toml is there
    with pytest.raises(ConfigError) as bad:
        load_config(missing)
    for problems, words in ((syntax, "3行目（12文字目）"), (bad.value.details, "名前の似た")):
        surface = pygame.Surface(size)
        with measure_boxes() as boxes:
            render(surface, str(missing), problems)
        [jbox] = [b for b in boxes if words in b.text]
        assert _flat(jbox.text) == _flat(problems[0].say(ja)) and surface.get_rect().contains(jbox.rect)
        assert "見つかった問題：1件" in [b.text for b in boxes]


def test_a_file_fixed_while_kiosk_run_was_starting_is_started_on_at_once(tmp_path: Path):
    """Saved twice in a row: the second save lands after `kiosk run` read the first (still wrong) one. The fault
    screen reads it again before it shows anything: good now, so it exits for systemd to start on it, instead of
    naming problems the file no longer has until someone saves it once more."""
    from kiosk.app.config_fault import EXIT_CONFIG_CHANGED, show
    from kiosk.config import ConfigError

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[kiosk]\nid = "fixed-2"\ndata_dir = "{tmp_path / "data"}"\n')
    read_before = ConfigError(str(cfg), ["kiosk.id: must be 2-40 characters (got 'Bad Id')"])
    assert show(read_before, env={"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")}) == EXIT_CONFIG_CHANGED


def test_making_the_file_readable_counts_as_a_change(tmp_path: Path):
    """An installer's `chmod 0640` / `chown root:kiosk` changes neither the bytes nor the mtime."""
    from kiosk.app.config_fault import _stamp

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(BAD)
    os.chmod(cfg, 0o600)
    before = _stamp(cfg)
    os.chmod(cfg, 0o640)
    assert _stamp(cfg) != before and _stamp(tmp_path / "missing.toml") is None
