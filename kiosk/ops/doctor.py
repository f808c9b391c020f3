"""``kiosk doctor``: one report over the whole set-up; every failure comes with its exact fix.

Exit code 0 only when nothing failed (warnings are allowed). Every outside
fact is a parameter of :func:`collect` (file-system root, disk threshold,
clock, HTTP session), so tests build broken set-ups in tmp_path.
"""

from __future__ import annotations

import importlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from kiosk.config import KioskConfig, load_config
from kiosk.ops.checks import Check
from kiosk.ops.status import SYNC_STATE_FILE, mount_options, read_disk_writable, read_saved_sync

MIN_FREE_BYTES = 200 * 1024 * 1024


def _mode_check(name: str, path: Path, fix_create: str) -> Check:
    if not path.exists():
        return Check(name, "fail", f"{path} does not exist", fix_create)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(name, "fail", f"{path} is readable by others (mode {mode:04o})", f"chmod 600 {path}")
    return Check(name, "ok", f"{path} (mode {mode:04o})")


def secret_checks(cfg: KioskConfig) -> list[Check]:
    return [
        _mode_check("keys.private_key", cfg.private_key_path,
                    f"kiosk keygen --out {cfg.private_key_path.parent}"),
        _mode_check("keys.pepper", cfg.pepper_path,
                    "start the kiosk once (it creates the pepper) or restore it from the backup"),
        *city_pepper_checks(cfg),
    ]


def city_pepper_checks(cfg: KioskConfig) -> list[Check]:
    """The city's donor-token pepper (docs/privacy.md): held, with its epochs, and the seal key's mode."""
    from kiosk.ledger.pepper import Pepper, PepperError

    seal = cfg.pepper_path.with_name("seal.key")
    out = [_mode_check("keys.seal", seal, "")] if seal.exists() else []
    try:
        pepper = Pepper.load(cfg.pepper_path)
    except PepperError:
        return out  # keys.pepper above already says what is wrong
    if pepper.domain is None:
        out.append(Check("pepper.city", "warn", "this kiosk's own pepper only: donor tokens are not city-wide yet",
                         "enroll with the portal (`kiosk enroll`), or let the next sync fetch the city's pepper"))
    else:
        out.append(Check("pepper.city", "ok", f"token domain {pepper.domain}, epochs {pepper.epochs}"))
    return out


def ledger_checks(cfg: KioskConfig) -> list[Check]:
    from kiosk.ledger import keys, verify_path

    path = cfg.ledger_path
    if not path.exists():
        return [Check("ledger", "warn", f"{path} does not exist yet (created at first start)")]
    pub = None
    if cfg.public_key_path.exists():
        try:
            pub = keys.load_public(cfg.public_key_path)
        except keys.KeyError_ as exc:
            return [Check("ledger", "fail", str(exc), f"restore {cfg.public_key_path} from the backup")]
    r = verify_path(path, pub)
    if r.ok:
        return [Check("ledger", "ok", f"{r.entries} entries verified; root {r.root[:16]}…")]
    return [Check("ledger", "fail", f"INVALID at seq={r.bad_seq}: {r.reason}",
                  f"stop the kiosk, keep {path} as evidence, and run `kiosk ledger verify {path}`; "
                  "call the portal operator before writing anything new")]


def _tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (``path`` itself when a file), symbolic links not followed."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def _largest(d: Path, n: int = 3) -> str:
    """The ``n`` entries of the data dir that take the most room, with their size ("media/ 3,412 MB, …"): what a
    low disk's report names first, so the technician need not look. "" when it cannot be listed."""
    try:
        sizes = [(_tree_bytes(p), p.name + ("/" if p.is_dir() and not p.is_symlink() else "")) for p in d.iterdir()]
    except OSError:
        return ""
    sizes = [(b, name) for b, name in sorted(sizes, reverse=True)[:n] if b]
    return ", ".join(f"{name} {b / 1_048_576:,.0f} MB" if b >= 1_048_576 else f"{name} {-(-b // 1024)} KB"
                     for b, name in sizes)


def disk_fix(d: Path, portal: bool) -> str:
    """What to do about a data partition filling up. What fills it is the movies (``DATA_DIR/media``): a USB export
    is written to the stick, the journal lives in RAM under the overlay (or is capped by ``SystemMaxUse`` where it
    is bound to the data partition: docs/deploy.md, "Logs"), the player's metrics are capped (``[player]
    metrics_max_kb``), and the ledger must never be deleted. The portal's clips leave by themselves once
    no playlist names them (kiosk/sync/adopt.py ``prune_pushed_media``): the portal's Playlists page is how they
    are taken off; clips imported by hand never are."""
    lines = [f"free space: `sudo du -xh --max-depth=2 {d} | sort -h | tail -n 15` shows what fills it; the movies "
             f"({d}/media) take the most room (never delete the ledger, the keys or sync-state.json)"]
    if portal:
        lines.append("the clips the portal pushed leave the kiosk by themselves once none of its playlists names "
                     "them (after its next sync): on the portal's Playlists page, take out the videos this kiosk no "
                     "longer shows; one that stays: `journalctl -u kiosk | grep 'media: cannot delete'` says why")
    lines.append("clips imported by hand (`kiosk media import`) are never deleted by a sync: `kiosk media list` "
                 "lists every clip with its title")
    lines.append(f"or grow the data partition holding {d}")
    return "\n".join(lines)


def disk_checks(cfg: KioskConfig, min_free_bytes: int = MIN_FREE_BYTES) -> list[Check]:
    d = cfg.data_dir
    probe = d if d.exists() else d.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError as exc:
        return [Check("disk", "fail", f"cannot stat {probe}: {exc.strerror}", f"mkdir -p {d}")]
    free_mb = usage.free // (1024 * 1024)
    if usage.free < min_free_bytes:
        biggest = _largest(d)
        where = f"; the most room in {d}: {biggest}" if biggest else ""
        return [Check("disk", "fail", f"{free_mb} MB free on {probe} (needs {min_free_bytes // (1024 * 1024)} MB)"
                      f"{where}", disk_fix(d, bool(sync_portal(cfg)[0])))]
    if d.exists() and not os.access(d, os.W_OK):
        return [Check("disk", "fail", f"{d} is not writable", f"chown -R kiosk:kiosk {d}, or remount it read-write")]
    if d.exists() and read_disk_writable(d) is False:
        # statvfs and access(2) said "rw" above, yet nothing can be written: the kernel turned the file system
        # read-only after an I/O error (ext4's errors=remount-ro, "emergency_ro"). No permission to fix: the card
        # or disk is failing.
        why = ("the kernel stopped all writes after a disk error" if "emergency_ro" in (mount_options(d) or set())
               else "a test write there fails")
        return [Check("disk", "fail", f"{d} is read-only: {why}; the SD card is probably failing and nothing "
                      "can be saved",
                      "export the ledger to USB if it still reads (`kiosk export usb`), then replace the SD card "
                      "and restore from the backup; call the maintainer")]
    return [Check("disk", "ok", f"{free_mb} MB free on {probe}")]


def clock_checks(synced: Callable[[], bool] | None = None) -> list[Check]:
    from kiosk.ledger.clock import SystemClock

    if (synced or SystemClock().synced)():
        return [Check("clock", "ok", "system clock is NTP-synchronised")]
    return [Check("clock", "warn", "system clock is not synchronised (entries are marked clock_synced=false; "
                  "the portal corrects their times)", "sudo timedatectl set-ntp true")]


# --- portal -----------------------------------------------------------------------------------------
PORTAL_TIMEOUT_S = 3.0


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host",
                   "Temporary failure in name resolution", "Network is unreachable"):
        if marker in text:
            return marker
    return text.splitlines()[0][:120] if text else type(exc).__name__


def sync_portal(cfg: KioskConfig) -> tuple[str, str, str | None]:
    """``(url, why, unreadable)``: the portal this kiosk syncs with, by the uploader's rule (kiosk/sync/uploader.py,
    ``Uploader.from_config``): the portal ``DATA_DIR/sync-state.json`` says it is enrolled with (a `kiosk enroll`,
    which may have moved it: docs/sync.md, "Enrollment"), else ``[portal] url``. ``why`` says which of the two,
    for the report; ``unreadable`` is why the file cannot be read, or None (the uploader then takes
    ``[portal] url`` and refuses to sync until the kiosk is enrolled again). The file is read by
    :func:`~kiosk.ops.status.read_saved_sync`, as kiosk.ops may not import kiosk.sync (.importlinter)."""
    config_url = cfg.portal.url.rstrip("/")
    state = cfg.data_dir / SYNC_STATE_FILE
    data, unreadable = read_saved_sync(state)
    if data is None:
        return config_url, "[portal] url", unreadable
    url, enrolled = data.get("portal_url"), data.get("enrolled_ms")
    if not isinstance(url, str) or not (enrolled is None or type(enrolled) is int):
        return config_url, "[portal] url", "not a sync state"
    if enrolled is None or not url:
        return config_url, "[portal] url", None
    if url == config_url:
        return url, "[portal] url, and the kiosk is enrolled there", None
    named = f"[portal] url names {config_url}" if config_url else "[portal] url is empty"
    return url, (f"the portal this kiosk is enrolled with, in {state}; {named}, which the kiosk no longer uses "
                 "since `kiosk enroll` moved it"), None


def _redirected(r: Any, asked: str, path: str, config_path: str) -> tuple[str, str] | None:
    """``(detail, fix)`` when ``r``, the answer to ``asked`` (the portal URL + ``path``), is a redirect; else None.

    Not followed, as the uploader does not follow one (kiosk/sync/uploader.py): a check that passed through a
    redirect would say "reachable" and "enrolled" of a kiosk that can never sync. The fix names the address
    to write only when the redirect keeps the path (the portal moved, or http became https); anything else (a
    Wi-Fi login page, another site) is not a portal address."""
    if not 300 <= r.status_code < 400:
        return None
    where = urljoin(asked, r.headers.get("Location", ""))[:200] if r.headers.get("Location") else "nowhere"
    base = where[:-len(path)].rstrip("/") if where.endswith(path) and where != asked else ""
    hint = f' (if {base} is the portal: url = "{base}")' if base else ""
    return (f"{asked} answered HTTP {r.status_code}, a redirect to {where}: not followed",
            f"correct [portal] url in {config_path} to the portal's own address{hint}; "
            "the kiosk's uploads do not follow redirects either")


def portal_checks(cfg: KioskConfig, config_path: str = "FILE", *, http: Any = None,
                  timeout: float = PORTAL_TIMEOUT_S, now: Callable[[], float] = time.time) -> list[Check]:
    """Is the portal reachable (``/healthz``), and does it know this kiosk's key (a signed, read-only GET)?
    A redirect fails the check, not followed (see :func:`_redirected`)."""
    url, why, unreadable = sync_portal(cfg)
    if not url:
        return [Check("portal", "ok", "no portal configured (offline kiosk)")]
    import requests

    moved_here = why.startswith("the portal this kiosk is enrolled with")
    named = f" ({why})" if moved_here else ""
    where = (f"the portal's address: this kiosk syncs with {url} since `kiosk enroll` (editing [portal] url changes "
             f"nothing; `kiosk enroll --config {config_path} --portal URL --code CODE` moves it)" if moved_here
             else f"[portal] url in {config_path}")
    session = http or requests
    try:
        r = session.get(f"{url}/healthz", timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        host = urlparse(url).hostname or url
        return [Check("portal", "fail", f"{url} unreachable: {_short(exc)}{named}",
                      f"check the network (`ping -c3 {host}`, the LAN cable or Wi-Fi) and {where}; donations are "
                      "kept on the kiosk meanwhile")]
    if moved := _redirected(r, f"{url}/healthz", "/healthz", config_path):
        if moved_here:
            moved = (moved[0] + named, f"ask the portal operator for the portal's own address and a code "
                     f"(`kiosk-portal enroll-code --kiosk-id {cfg.kiosk.id}`), then `kiosk enroll --config "
                     f"{config_path} --portal ADDRESS --code CODE`; the kiosk's uploads do not follow redirects")
        return [Check("portal", "fail", *moved)]
    if r.status_code != 200:
        return [Check("portal", "fail", f"{url}/healthz answered HTTP {r.status_code}{named}",
                      "ask the portal operator to check `systemctl status kiosk-portal` on the server")]
    checks = [Check("portal", "ok", f"{url} reachable{named}")]
    try:
        from server_sync.wire import protocol as P
    except ModuleNotFoundError:
        return checks + [Check("portal.enrolled", "warn", "cannot check enrollment: server_sync is not installed")]
    from kiosk.ledger import keys

    try:
        sk = keys.load_private(cfg.private_key_path)
    except (keys.KeyError_, OSError):
        return checks + [Check("portal.enrolled", "warn", "cannot check enrollment without the signing key "
                               "(see keys.private_key above)")]
    kid = cfg.kiosk.id
    path = f"/api/v1/kiosks/{kid}/config"
    target = urlparse(url).path.rstrip("/") + path
    enroll_fix = (f"on the portal server run `kiosk-portal enroll-code --kiosk-id {kid}`, then here "
                  f"`sudo -u kiosk kiosk enroll --config {config_path} --portal {url} --code CODE`")
    if unreadable is not None:
        # The uploader refuses to sync over it (docs/sync.md, "Enrollment"), whatever the portal holds.
        return checks + [Check("portal.enrolled", "fail", f"{cfg.data_dir / 'sync-state.json'} is unreadable "
                               f"({unreadable}): the kiosk cannot sync until it is enrolled again (the file is kept, "
                               "the ledger is intact)", enroll_fix)]
    try:
        # Not redirected either: requests would carry the signed headers to wherever the Location points.
        r = session.get(url + path, headers=P.sign_request(sk, kid, "GET", target, b"", int(now())), timeout=timeout,
                        allow_redirects=False)
    except requests.RequestException as exc:
        return checks + [Check("portal.enrolled", "fail", f"enrollment check failed: {_short(exc)}",
                               "retry `kiosk doctor`; if it persists ask the portal operator")]
    if moved := _redirected(r, url + path, path, config_path):
        return checks + [Check("portal.enrolled", "fail", *moved)]
    try:
        code = (r.json() or {}).get("error", "")
    except ValueError:
        code = ""
    if r.status_code == 200 or (r.status_code == 404 and code == "no_config"):
        return checks + [Check("portal.enrolled", "ok", f"enrolled as {kid}")]
    if code == "unknown_kiosk":
        return checks + [Check("portal.enrolled", "fail", f"kiosk {kid} is not enrolled with {url}{named}", enroll_fix)]
    if code == "bad_request_signature":
        return checks + [Check("portal.enrolled", "fail", f"the portal holds another key for {kid} "
                               "(the key was regenerated?)", "re-enroll: " + enroll_fix)]
    if code == "stale_request":
        return checks + [Check("portal.enrolled", "fail", "the portal refused our request time: the clock is off",
                               "sudo timedatectl set-ntp true, wait a minute, rerun `kiosk doctor`")]
    return checks + [Check("portal.enrolled", "fail", f"enrollment check answered HTTP {r.status_code} {code}".strip(),
                           "ask the portal operator")]


# --- systemd and the display ---------------------------------------------------------------------------
INSTALL_FIX = "sudo bash /opt/kiosk/src/systemd/install.sh   (safe to run again)"


def unit_checks(cfg: KioskConfig | None = None, root: Path = Path("/")) -> list[Check]:
    """kiosk.service and the timers are installed and enabled; the power rule is in place."""
    etc = root / "etc/systemd/system"
    search = (etc, root / "lib/systemd/system", root / "usr/lib/systemd/system")
    wanted: list[tuple[str, tuple[str, ...], str]] = [
        ("kiosk.service", ("kiosk.service",), "multi-user.target.wants"),
        ("kiosk-closeout.timer", ("kiosk-closeout.timer", "kiosk-closeout.service"), "timers.target.wants"),
    ]
    if cfg is None or sync_portal(cfg)[0]:
        wanted.append(("kiosk-sync.timer", ("kiosk-sync.timer", "kiosk-sync.service"), "timers.target.wants"))
    out: list[Check] = []
    for unit, files, wants in wanted:
        missing = [f for f in files if not any((d / f).exists() for d in search)]
        if missing:
            out.append(Check(f"systemd.{unit}", "fail", f"{', '.join(missing)} not installed", INSTALL_FIX))
        elif not (etc / wants / unit).is_symlink() and not (etc / wants / unit).exists():
            out.append(Check(f"systemd.{unit}", "fail", f"{unit} is installed but not enabled",
                             f"sudo systemctl enable --now {unit}"))
        else:
            out.append(Check(f"systemd.{unit}", "ok", "installed and enabled"))
    if not (root / "etc/polkit-1/rules.d/50-kiosk-power.rules").exists():
        out.append(Check("systemd.polkit", "warn", "no polkit rule: the menu cannot reboot or shut down",
                         INSTALL_FIX))
    return out


def display_checks(root: Path = Path("/")) -> list[Check]:
    """The console must never blank the screen (consoleblank=0 on the kernel command line)."""
    p = root / "sys/module/kernel/parameters/consoleblank"
    try:
        value = p.read_text().strip()
    except OSError:
        return []
    if value == "0":
        return [Check("display.blanking", "ok", "console blanking is off")]
    return [Check("display.blanking", "warn", f"the console blanks the screen after {value} s",
                  "add consoleblank=0 to /boot/firmware/cmdline.txt (install.sh does) and reboot")]


def donation_checks(cfg: KioskConfig, config_path: str = "FILE") -> list[Check]:
    """Amount buttons a first gift of the day can use: a preset above ``daily_limit_per_card_yen`` is refused
    ("limit reached") for every card, every time. Not a config error: the portal pushes the presets
    (kiosk/sync/adopt.py) while the daily limit is this file's own, so a push must not be refused for it."""
    d = cfg.donation
    over = sorted({p for p in d.presets_yen if p > d.daily_limit_per_card_yen})
    if not over:
        return [Check("donation", "ok", f"amounts {list(d.presets_yen)} yen, at most {d.daily_limit_per_card_yen} "
                      "yen per card a day")]
    shown = ", ".join(f"{p} yen" for p in over)
    return [Check("donation", "fail", f"the button{'s' if len(over) > 1 else ''} for {shown} can never be used: "
                  f"[donation] daily_limit_per_card_yen is {d.daily_limit_per_card_yen}, so every card is told "
                  "it reached its limit",
                  f"in {config_path} raise [donation] daily_limit_per_card_yen to at least {max(over)}, or remove "
                  f"{shown} from presets_yen (on a kiosk that takes its amounts from the portal, ask the portal "
                  "operator)")]


def ops_checks(cfg: KioskConfig, config_path: str = "FILE") -> list[Check]:
    from kiosk.config.staff import ops_settings

    staff = ops_settings(cfg).staff
    if not staff.pin_hash and not staff.staff_tokens:
        return [Check("staff", "warn", "no PIN and no staff cards: the maintenance menu cannot be opened",
                      f"`kiosk staff set-pin --config {config_path}` and/or `kiosk staff card --config "
                      f"{config_path}`, then put the printed lines under [staff]")]
    return [Check("staff", "ok", f"menu opens with {'PIN' if staff.pin_hash else 'no PIN'} and "
                  f"{len(staff.staff_tokens)} staff card(s)")]


def payment_checks(cfg: KioskConfig, config_path: str = "FILE") -> list[Check]:
    """The terminal takes real money: not the simulator outside a demo; Square's token private, the device paired."""
    pc = cfg.payment
    if pc.terminal == "sim":
        if cfg.kiosk.demo:
            return [Check("payment", "ok", "simulated terminal (a demo kiosk: no real money)")]
        return [Check("payment", "fail", "the payment terminal is the simulator: it takes no money, yet the kiosk "
                      "would record and thank for gifts",
                      f'set [payment] terminal = "square" and fill in [payment.square] in {config_path} '
                      "(docs/payment.md); only for a demo or test kiosk set [kiosk] demo = true")]
    from kiosk.payment import square_device_id

    sq = pc.square
    token_path = cfg.resolve(sq.access_token_file)
    out = [_mode_check("payment.square.token", token_path,
                       f"put the Square access token on one line in {token_path}, then chmod 600 {token_path} "
                       "(docs/payment.md, credentials)")]
    pair_fix = f"kiosk payment pair --config {config_path}   (then enter the code on the Square Terminal)"
    device = square_device_id(cfg)
    if not device:
        return out + [Check("payment.square.device", "fail", "no Square Terminal is paired with this kiosk", pair_fix)]
    if out[0].status != "ok":
        return out
    from square import Square

    from kiosk.payment.square import SquareSetupError, check_device, read_token

    try:
        token = read_token(token_path)
    except SquareSetupError as exc:
        return out[:-1] + [Check("payment.square.token", "fail", str(exc), f"rewrite {token_path} (one line)")]
    client = Square(base_url=sq.base_url.rstrip("/"), token=token, timeout=sq.request_timeout_s)
    state, detail = check_device(client, device, timeout_s=sq.request_timeout_s)
    if state == "ok":
        return out + [Check("payment.square.device", "ok", f"{detail} is paired and known to Square")]
    fixes = {"unpaired": pair_fix,
             "unauthorized": f"create a new access token in the Square Developer Dashboard, write it to {token_path} "
                             f"(mode 0600), and check [payment.square] base_url (production or sandbox)",
             "unreachable": f"check the network and [payment.square] base_url ({sq.base_url}) in {config_path}; "
                            "https://issquareup.com shows Square's own status"}
    return out + [Check("payment.square.device", "fail", detail, fixes.get(state, pair_fix))]


def optional_checks(cfg: KioskConfig, **reader_kw: Any) -> list[Check]:
    """Checks contributed by other packages (reader hardware, …) when they are installed."""
    out: list[Check] = []
    for module, func in (("kiosk.ops.reader_doctor", "reader_checks"),):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        out.extend(getattr(mod, func)(cfg, **reader_kw))
    return out


def collect(config_path: str | None, *, root: Path = Path("/"), min_free_bytes: int | None = None,
            clock_synced: Callable[[], bool] | None = None, http: Any = None,
            reader_kw: dict[str, Any] | None = None, more: Iterable[Callable[[], list[Check]]] = ()) -> list[Check]:
    """Every check, in report order. Raises ConfigError for a config that cannot be loaded. ``more``: checks
    of the layers above this one (the screens' catalogs, kiosk/ui/i18n.py), which `kiosk doctor` passes in."""
    from kiosk.config.staff import ops_settings

    cfg = load_config(config_path)
    shown = config_path or os.environ.get("KIOSK_CONFIG") or "FILE"
    if min_free_bytes is None:
        min_free_bytes = ops_settings(cfg).status.min_free_mb * 1024 * 1024
    checks = [Check("config", "ok", f"{shown} is valid")]
    checks += secret_checks(cfg)
    checks += ledger_checks(cfg)
    checks += disk_checks(cfg, min_free_bytes)
    checks += clock_checks(clock_synced)
    for extra in more:
        checks += extra()
    checks += donation_checks(cfg, shown)
    checks += payment_checks(cfg, shown)
    checks += optional_checks(cfg, **(reader_kw or {}))
    checks += portal_checks(cfg, shown, http=http)
    checks += unit_checks(cfg, root)
    checks += display_checks(root)
    checks += ops_checks(cfg, shown)
    return checks


def run_doctor(config_path: str | None, **kw: Any) -> int:
    """Print the report; 0 only when no check failed. ``kw`` goes to :func:`collect`."""
    checks = collect(config_path, **kw)
    for c in checks:
        print(c.render())
    failed = [c for c in checks if c.status == "fail"]
    print(f"\n{len(checks)} checks: {len(failed)} failed, "
          f"{sum(c.status == 'warn' for c in checks)} warnings")
    return 1 if failed else 0
