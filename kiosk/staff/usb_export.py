"""Export to a USB stick: the ledger, the day's close-out as CSV, and the day's log, for the city.

Finding the stick: a removable filesystem mounted below ``/media`` or
``/run/media`` (``systemd/99-kiosk-usb-mount.rules`` mounts sticks at
``/media/kiosk/<device>``). ``/proc/mounts`` and the root are parameters, so
tests use a directory in tmp_path as the stick.

Privacy: no raw card ID may leave the kiosk. The ledger holds only keyed
donor tokens by design; the exporter still reads back what it wrote and
refuses the export if any text file or any string in a ledger body is
IDm-shaped, and log lines pass through :func:`kiosk.ops.logsetup.redact`.
Every file is fsynced, then the directory, so pulling the stick right after
"done" keeps the files (FAT's fsync also writes its allocation table).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kiosk.ledger.durable import fsync_dir, write_atomic
from kiosk.ledger.encoding import parse_body
from kiosk.ledger.export import read_export, write_export
from kiosk.ledger.report import business_date, settled_report
from kiosk.ledger.schema import entries
from kiosk.ledger.store import engine_report_entries, read_only_engine
from kiosk.ops.logsetup import IDM_RE, has_idm, redact
from kiosk.staff.closeout import Catalog, changes_after_close, closeout_csv
from kiosk.staff.words import StaffMessage

REMOVABLE_FS = frozenset({"vfat", "exfat", "ntfs", "ntfs3", "fuseblk", "ext4", "ext3", "ext2"})
DEFAULT_MOUNT_ROOTS = ("/media", "/run/media")


class UsbExportError(StaffMessage):
    """The export could not be written completely; ``str()`` is the English message (CLI), ``say(tr)`` the
    menu's."""


@dataclass(frozen=True)
class Stick:
    path: Path
    """Mount point (under ``root``)."""
    device: str
    fstype: str
    free_bytes: int | None = None
    """Free space when it was found (what the menu shows staff, instead of the device and filesystem)."""
    read_only: bool = False
    """Mounted read-only (a stick whose lock switch is on: the kernel mounts it so). Listed only when asked
    (``include_read_only``), so the menu can say why it cannot be written to instead of "no stick found"."""


def _unescape(field_: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...).
    out, i = [], 0
    while i < len(field_):
        if field_[i] == "\\" and i + 4 <= len(field_) and field_[i + 1:i + 4].isdigit():
            out.append(chr(int(field_[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


def _mount_table(mounts: Path) -> list[tuple[str, str, str, list[str]]]:
    """(device, mount point, file system type, options) of each line of ``mounts`` (/proc/mounts), in mount order;
    [] when it cannot be read."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return []
    return [(_unescape(p[0]), _unescape(p[1]), p[2], p[3].split(",")) for p in map(str.split, lines) if len(p) >= 4]


def find_sticks(root: Path = Path("/"), mounts: Path = Path("/proc/mounts"),
                mount_roots: Iterable[str] = DEFAULT_MOUNT_ROOTS, *, include_read_only: bool = False) -> list[Stick]:
    """Writable removable filesystems mounted below ``mount_roots``, in mount order; with ``include_read_only``
    the read-only ones too (``Stick.read_only``)."""
    prefixes = [r.rstrip("/") + "/" for r in mount_roots]
    found: list[Stick] = []
    for dev, mnt, fstype, opts in _mount_table(mounts):
        read_only = "rw" not in opts
        if not dev.startswith("/dev/") or fstype not in REMOVABLE_FS or (read_only and not include_read_only):
            continue
        if not any(mnt.startswith(p) for p in prefixes):
            continue
        path = root / mnt.lstrip("/")
        if path.is_dir():
            try:
                free: int | None = shutil.disk_usage(path).free
            except OSError:  # pulled out between the mount table and here: still listed, the export says why
                free = None
            found.append(Stick(path, dev, fstype, free, read_only))
    return found


STICK_GONE = ("the USB stick is no longer there ({detail}): insert it again, press Look again and choose it; "
              "nothing was written")
"""The stick chosen on the list is no longer mounted where it was (pulled out, or something else is mounted
there): writing would put the export on the kiosk's own disk, and staff would leave believing they carry it."""


def _mounted(mounts: Path, point: Path) -> tuple[str, list[str]] | None:
    """(device, mount options) of what is mounted at ``point`` now (the last mount there: the one seen), or None."""
    want = os.path.realpath(point)
    seen = None
    for dev, mnt, _fstype, opts in _mount_table(mounts):
        if os.path.normpath(mnt) == want:
            seen = (dev, opts)
    return seen


def check_stick(stick: Path, device: str, mounts: Path = Path("/proc/mounts")) -> int:
    """Raise :class:`UsbExportError` unless ``device`` is still mounted read-write at ``stick`` (by the kernel's
    mount table, read now) and ``stick`` is that mount; returns the file system's ``st_dev``, which every file of
    the export must be on."""
    seen = _mounted(mounts, stick)
    if seen is None:
        raise UsbExportError(STICK_GONE, detail=f"nothing is mounted at {stick}")
    dev, opts = seen
    if dev != device:
        raise UsbExportError(STICK_GONE, detail=f"{dev} is mounted at {stick}, not {device}")
    if "rw" not in opts:
        raise UsbExportError(READ_ONLY, detail="mounted read-only")
    try:
        here, parent = os.stat(stick), os.stat(stick.parent)
    except OSError as exc:
        raise UsbExportError(STICK_GONE, detail=exc.strerror or exc) from None
    if here.st_dev == parent.st_dev and here.st_ino != parent.st_ino:  # a plain folder, not the mount's root
        raise UsbExportError(STICK_GONE, detail=f"{stick} is a folder on this kiosk's disk")
    return here.st_dev


@dataclass
class ExportResult:
    directory: Path
    files: list[tuple[str, int]] = field(default_factory=list)
    """(file name, bytes) of each file written."""
    entries: int = 0
    business_date: str = ""
    closeout: dict[str, Any] = field(default_factory=dict)
    """The report written to CSV, with ``close_out_seq`` (None when the day is not closed: an X report)."""
    notes: list[str] = field(default_factory=list)
    """Things staff should know, e.g. "logs not exported: journalctl not found" (English: the CLI, MANIFEST.txt)."""
    running_totals: bool = False
    """The day is not closed: the CSV holds the running (X) totals. The menu says so in the staff's language."""
    logs_error: str = ""
    """Why the day's log could not be exported ("" when it was, or when no log source was given)."""
    changes_after_close: int = 0
    """Donations after the day's close-out, and refunds of donations it counted: the CSV (the signed close-out)
    does not hold them. The menu says so, with what to do (a new Z, then export again)."""

    def summary(self) -> str:
        lines = [f"exported to {self.directory}"]
        lines += [f"  {name}  {size:,} bytes" for name, size in self.files]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


FILE_KINDS = (("ledger.jsonl", "Ledger"), ("closeout-", "Totals of the day (CSV)"), ("kiosk-", "Log"),
              ("MANIFEST.txt", "List of files and checksums"))
"""What each exported file is, for staff (English msgids), by the start of its name."""


def export_lines(r: ExportResult, cat: Catalog) -> list[str]:
    """What the menu shows after an export, in the staff's language (issue #15: the Japanese page printed
    "exported to …" and "note: … is not closed yet").

    The folder is named relative to the stick (staff chose the stick; the mount point means nothing to them),
    each file by what it is with its name, which is what they see on the city's PC. Why the logs failed is
    written in MANIFEST.txt, in the words of the tool that failed."""
    tr = cat.gettext
    lines = [tr("Folder on the stick: {name}").format(name=r.directory.name)]
    for name, size in r.files:
        kind = next((k for prefix, k in FILE_KINDS if name.startswith(prefix)), "File")
        lines.append(tr("{kind}: {name}, {size}").format(
            kind=tr(kind), name=name, size=cat.ngettext("{n} byte", "{n} bytes", size).format(n=f"{size:,}")))
    if r.running_totals:
        lines.append("※ " + tr("{day} is not closed yet: the CSV holds the running totals (X report).").format(
            day=r.business_date))
    if r.changes_after_close:
        lines.append("※ " + cat.ngettext(
            "{day}: {n} change after the close-out is not in the CSV. Run the Z report again, then export again.",
            "{day}: {n} changes after the close-out are not in the CSV. Run the Z report again, then export again.",
            r.changes_after_close).format(day=r.business_date, n=r.changes_after_close))
    if r.logs_error:
        lines.append("※ " + tr("The log could not be exported (the reason is in MANIFEST.txt)."))
    return lines


LogSource = Callable[[int, int], Iterable[str]]
"""(start ms, end ms) -> log lines for that window."""


def journal_lines(unit: str = "kiosk.service") -> LogSource:
    """A log source reading ``unit``'s journal through journalctl."""
    def read(start_ms: int, end_ms: int) -> Iterable[str]:
        exe = shutil.which("journalctl")
        if exe is None:
            raise UsbExportError("journalctl not found")
        r = subprocess.run([exe, "-u", unit, "--since", f"@{start_ms // 1000}", "--until", f"@{end_ms // 1000}",
                            "-o", "short-iso", "--no-pager", "-q"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise UsbExportError("journalctl failed: {detail}", detail=r.stderr.strip()[:200])
        return r.stdout.splitlines()
    return read


def _write_file(path: Path, data: bytes) -> int:
    # A stick is FAT more often than not, and some FAT drivers refuse fsync on directories: the one
    # place the kiosk tolerates that (the files themselves are fsynced, and FAT's fsync writes its table).
    return write_atomic(path, data, tolerate_dir_fsync_unsupported=True)


def _idm_strings(value: Any) -> bool:
    if isinstance(value, str):
        return IDM_RE.fullmatch(value) is not None
    if isinstance(value, dict):
        return any(_idm_strings(v) for v in value.values())
    if isinstance(value, list):
        return any(_idm_strings(v) for v in value)
    return False


SAFE_DATA_KEYS = frozenset({"clip"})
"""Entry data fields that hold 16 hex digits by design: the menu's playlist actions name a clip by the first 16
hex digits of its SHA-256, as `kiosk media list` shows it (an `admin_action`'s ``clip``)."""


def scan_ledger_export(path: Path) -> int:
    """Count entries whose data holds an IDm-shaped string (a value that is exactly 16 hex digits).

    Whole values only: bodies are full of longer hex (tokens, hashes, keys) that a substring search would flag,
    and base64 fields are left encoded. Only an entry's ``data`` is looked at, where whatever the kiosk records
    goes: the envelope's fields are fixed by the format (``key_id`` is 16 hex digits by design, the signing key's
    fingerprint), and the kiosk's own id, which may be a Raspberry Pi's 16-digit serial, is not a card's. Nor are
    the fields of :data:`SAFE_DATA_KEYS`. A ledger holding any of these had every export refused for ever.
    """
    _, rows = read_export(path)
    hits = 0
    for r in rows:
        obj = parse_body(r.body)
        own = obj.get("kiosk")
        data = {k: v for k, v in obj.get("data", {}).items() if k not in SAFE_DATA_KEYS and v != own}
        if _idm_strings(data):
            hits += 1
    return hits


def _newest_day(eng: Any, tz: ZoneInfo) -> date | None:
    """The business day of the newest activity: the later of the newest donation's day and the newest
    close-out's ``business_date`` (None: neither yet). Two index reads, not the history."""
    with eng.connect() as conn:
        gift = conn.execute(select(entries.c.body).where(entries.c.type == "donation")
                            .order_by(entries.c.seq.desc()).limit(1)).first()
        close = conn.execute(select(entries.c.body).where(entries.c.type == "close_out")
                             .order_by(entries.c.seq.desc()).limit(1)).first()
    days = []
    if gift is not None:
        days.append(business_date(parse_body(gift[0])["wall_ms"], tz))
    if close is not None:
        days.append(date.fromisoformat(parse_body(close[0])["data"]["business_date"]))
    return max(days, default=None)


def newest_day(ledger_path: Path, timezone: str = "Asia/Tokyo") -> date | None:
    """The business day an export holds when none is asked for: the newest day with donations or a close-out
    (docs/menu.md, "Which day the export holds"), not today by the clock. Staff who close late and export just
    after midnight export the day they just closed, not the new empty one; on a morning before the first gift,
    the last day that had any. None when the ledger has neither (the export then holds today)."""
    eng = read_only_engine(ledger_path)
    try:
        return _newest_day(eng, ZoneInfo(timezone))
    finally:
        eng.dispose()


def _day_report(ledger_path: Path, day: date | None,
                timezone: str) -> tuple[date, dict[str, Any], int | None, int]:
    """(day, the report the CSV holds, its close-out seq or None, the changes the close-out does not hold)."""
    tz = ZoneInfo(timezone)
    eng = read_only_engine(ledger_path)
    try:  # the day's entries, not the whole history (docs/ledger.md, "Reads that do not grow with the history")
        day = day or _newest_day(eng, tz) or datetime.now(tz).date()
        parsed = engine_report_entries(eng, day, day)
    finally:
        eng.dispose()
    closed = [(seq, obj["data"]) for seq, obj in parsed
              if obj["type"] == "close_out" and obj["data"]["business_date"] == day.isoformat()]
    if closed:
        seq, data = closed[-1]
        # Gifts after the Z and refunds of gifts it counted: the signed close-out (the CSV) no longer holds them.
        added, voided = changes_after_close(parsed, day, seq)
        return day, dict(data), seq, added + voided
    rep = settled_report(parsed, day)
    rep["business_date"] = day.isoformat()
    return day, rep, None, 0


def export_day(stick: Path, ledger_path: Path, *, kiosk_id: str, timezone: str = "Asia/Tokyo",
               day: date | None = None, titles: dict[str, str] | None = None,
               logs: LogSource | None = None, now: datetime | None = None, device: str | None = None,
               mounts: Path = Path("/proc/mounts")) -> ExportResult:
    """Write ``kiosk-<id>-<timestamp>/`` on ``stick``: ledger.jsonl, closeout-<date>.csv, kiosk-<date>.log,
    MANIFEST.txt.

    The CSV is the day's latest Z report, or the running X totals when the day
    is not closed yet (noted in the result); ``day`` defaults to :func:`newest_day` (today when None).
    With ``device`` (the stick as :func:`find_sticks` listed it), the mount table is read again right
    before writing and after:
    the export is refused, with nothing written, unless that device is still mounted read-write at ``stick``
    (a stick pulled out after the list was drawn leaves its folder, or another mount, behind). Raises
    :class:`UsbExportError`.
    """
    if not stick.is_dir():
        raise UsbExportError("{stick} is not a mounted stick", stick=stick)
    tz = ZoneInfo(timezone)
    now = now or datetime.now(tz)
    try:
        day, rep, close_seq, stale = _day_report(ledger_path, day, timezone)
    except Exception as exc:  # noqa: BLE001 - only the database's own errors are said in words; the rest raise
        raise _unreadable(exc) from None
    lines: list[str] | None = None
    logs_error: str | None = None
    if logs is not None:  # read first: the day's log is part of what must fit on the stick
        start = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
        try:
            lines = [redact(line) for line in logs(start, start + 86_400_000)]
        except (UsbExportError, OSError, subprocess.SubprocessError) as exc:
            logs_error = str(exc) or type(exc).__name__
    wal = Path(f"{ledger_path}-wal")
    ledger_bytes = ledger_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    # The export is base64 JSON: about twice the database (its write-ahead log included); then the day's log.
    need = ledger_bytes * 2 + sum(len(line.encode()) + 1 for line in lines or ()) + 1_048_576
    if shutil.disk_usage(stick).free < need:
        raise UsbExportError("the stick has {free} MB free; {need} MB needed",
                             free=shutil.disk_usage(stick).free // 1_048_576, need=-(-need // 1_048_576))
    out = stick / f"kiosk-{kiosk_id}-{now.strftime('%Y%m%d-%H%M%S')}"
    on = check_stick(stick, device, mounts) if device is not None else None  # right before the first write
    try:
        out.mkdir(parents=False, exist_ok=False)
    except OSError as exc:
        if exc.errno in READ_ONLY_ERRNOS:
            raise UsbExportError(READ_ONLY, detail=exc.strerror or exc) from None
        raise UsbExportError("cannot write to the stick: {detail}", detail=exc.strerror or exc) from None
    result = ExportResult(out, business_date=day.isoformat(), closeout={**rep, "close_out_seq": close_seq},
                          changes_after_close=stale)
    try:
        if on is not None and os.stat(out).st_dev != on:  # unmounted between the check and the folder
            raise UsbExportError(STICK_GONE, detail=f"{out} is not on {device}")
        ledger_file = out / "ledger.jsonl"
        result.entries = write_export(ledger_path, ledger_file, tolerate_dir_fsync_unsupported=True)
        if scan_ledger_export(ledger_file):
            ledger_file.unlink()
            raise UsbExportError("refused: the ledger export holds an IDm-shaped value; call the developers")
        result.files.append((ledger_file.name, ledger_file.stat().st_size))

        csv_text = closeout_csv(rep, close_out_seq=close_seq, titles=titles)
        if has_idm(csv_text):
            raise UsbExportError("refused: the close-out CSV holds an IDm-shaped value")
        name = f"closeout-{day.isoformat()}.csv"
        result.files.append((name, _write_file(out / name, csv_text.encode("utf-8"))))
        if close_seq is None:
            result.running_totals = True
            result.notes.append(f"{day} is not closed yet: the CSV holds the running (X) totals")
        elif stale:
            result.notes.append(f"{day}: {stale} donations or refunds after the close-out are not in the CSV; "
                                "run the Z report again, then export again")

        if logs_error is not None:
            result.logs_error = logs_error
            result.notes.append(f"logs not exported: {logs_error}")
        elif lines is not None:
            text = "".join(line.rstrip("\n") + "\n" for line in lines)  # the day's log, read before the check
            if has_idm(text):  # cannot happen after redact(); kept so a regression fails closed
                raise UsbExportError("refused: the log still holds an IDm-shaped value")
            name = f"kiosk-{day.isoformat()}.log"
            result.files.append((name, _write_file(out / name, text.encode("utf-8"))))

        manifest = [f"kiosk {kiosk_id}", f"exported {now.isoformat(timespec='seconds')}",
                    f"business date {day.isoformat()}", f"ledger entries {result.entries}",
                    "verify with: kiosk ledger verify ledger.jsonl", ""]
        for fname, size in result.files:
            digest = hashlib.sha256((out / fname).read_bytes()).hexdigest()
            manifest.append(f"{digest}  {fname}  ({size} bytes)")
        manifest += [f"note: {n}" for n in result.notes]
        result.files.append(("MANIFEST.txt", _write_file(out / "MANIFEST.txt", ("\n".join(manifest) + "\n").encode())))
        fsync_dir(stick, tolerate_unsupported=True)  # the new export directory's own entry
        os.sync()
        if device is not None:  # still there after the last write: "done" means the files are on the stick
            check_stick(stick, device, mounts)
    except (UsbExportError, OSError) as exc:
        # Half an export is worse than none: someone would hand it over. Best effort (the stick may be gone).
        shutil.rmtree(out, ignore_errors=True)
        if isinstance(exc, UsbExportError):
            raise
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # said as the check before would have said it, in words
            raise UsbExportError("the stick has {free} MB free; {need} MB needed",
                                 free=_free_mb(stick), need=-(-need // 1_048_576)) from None
        if exc.errno in READ_ONLY_ERRNOS:  # FAT remounts itself read-only on an error it finds while writing
            raise UsbExportError(READ_ONLY, detail=exc.strerror or exc) from None
        raise UsbExportError("writing to the stick failed ({detail}); nothing was left on it",
                             detail=exc.strerror or exc) from None
    except Exception as exc:  # noqa: BLE001 - a ledger SQLite cannot read (a damaged file, a failing card)
        shutil.rmtree(out, ignore_errors=True)
        raise _unreadable(exc) from None
    return result


READ_ONLY = ("the stick is read-only ({detail}): turn off its lock switch or use another stick, then look "
             "again; nothing was left on it")
"""A stick the kernel will not write to (its lock switch on, or FAT turned read-only after an error)."""
READ_ONLY_ERRNOS = frozenset({errno.EROFS})


LEDGER_UNREADABLE = ("the ledger on this kiosk could not be read ({detail}); nothing was left on the stick; "
                     "call the maintainer")
"""A ledger file SQLite cannot read, said in staff words instead of a traceback (kiosk export usb, the menu)."""


def _unreadable(exc: Exception) -> Exception:
    """:data:`LEDGER_UNREADABLE` for SQLite's own error (``sqlite3.Error``, or SQLAlchemy's wrapping of one);
    any other exception as it is (a bug must still show as one)."""
    why = exc if isinstance(exc, sqlite3.Error) else getattr(exc, "orig", None)
    if isinstance(why, sqlite3.Error):
        return UsbExportError(LEDGER_UNREADABLE, detail=str(why))
    return exc


def _free_mb(stick: Path) -> int:
    try:
        return shutil.disk_usage(stick).free // 1_048_576
    except OSError:  # the stick was pulled meanwhile
        return 0


def result_json(r: ExportResult) -> str:
    return json.dumps({"directory": str(r.directory), "files": r.files, "entries": r.entries,
                       "business_date": r.business_date, "notes": r.notes}, ensure_ascii=False)
