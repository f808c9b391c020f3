"""``kiosk doctor``: one report over the whole set-up; every failure comes with its exact fix.

Exit code 0 only when nothing failed (warnings are allowed).
"""

from __future__ import annotations

import importlib
import os
import shutil
import stat
from pathlib import Path

from kiosk.checks import Check
from kiosk.config import ConfigError, KioskConfig, load_config

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
    ]


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


def disk_checks(cfg: KioskConfig) -> list[Check]:
    d = cfg.data_dir
    probe = d if d.exists() else d.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError as exc:
        return [Check("disk", "fail", f"cannot stat {probe}: {exc.strerror}", f"mkdir -p {d}")]
    free_mb = usage.free // (1024 * 1024)
    if usage.free < MIN_FREE_BYTES:
        return [Check("disk", "fail", f"{free_mb} MB free on {probe}",
                      f"free space: remove old exports/logs, or grow the data partition holding {d}")]
    if d.exists() and not os.access(d, os.W_OK):
        return [Check("disk", "fail", f"{d} is not writable", f"chown -R kiosk:kiosk {d}, or remount it read-write")]
    return [Check("disk", "ok", f"{free_mb} MB free on {probe}")]


def clock_checks() -> list[Check]:
    from kiosk.ledger.clock import SystemClock

    if SystemClock().synced():
        return [Check("clock", "ok", "system clock is NTP-synchronised")]
    return [Check("clock", "warn", "system clock is not synchronised (entries are marked clock_synced=false; "
                  "the portal corrects their times)", "sudo timedatectl set-ntp true")]


def optional_checks(cfg: KioskConfig) -> list[Check]:
    """Checks contributed by other packages (reader hardware, …) when they are installed."""
    out: list[Check] = []
    for module, func in (("kiosk.reader.doctor", "reader_checks"),):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        out.extend(getattr(mod, func)(cfg))
    return out


def collect(config_path: str | None) -> list[Check]:
    try:
        cfg = load_config(config_path)
    except ConfigError:
        raise
    checks = [Check("config", "ok", f"{config_path or os.environ.get('KIOSK_CONFIG')} is valid")]
    checks += secret_checks(cfg)
    checks += ledger_checks(cfg)
    checks += disk_checks(cfg)
    checks += clock_checks()
    checks += optional_checks(cfg)
    return checks


def run_doctor(config_path: str | None) -> int:
    checks = collect(config_path)
    for c in checks:
        print(c.render())
    failed = [c for c in checks if c.status == "fail"]
    print(f"\n{len(checks)} checks: {len(failed)} failed, "
          f"{sum(c.status == 'warn' for c in checks)} warnings")
    return 1 if failed else 0
