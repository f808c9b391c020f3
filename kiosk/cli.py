"""The ``kiosk`` command line.

Exit codes: 0 success; 1 the operation failed or did not finish (a ledger invalid,
the portal unreachable, no reader found); 2 bad config or usage; 75 (``kiosk run`` under
systemd only) a bad config was shown on the lobby screen and its file has changed since
(kiosk/app/config_fault.py). A command that did not do its job never exits 0. Errors are
one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from kiosk import __version__
from kiosk.config import ConfigError

# Sub-command groups living in other packages; each module has register(subparsers), which adds the commands
# named here. Only the chosen command's module is imported: `kiosk run` is restarted by the watchdog, and every
# module it imports keeps the lobby screen dark longer (cold start, #16). tests/test_cli.py checks the names.
PLUGINS: dict[str, tuple[str, ...]] = {
    "kiosk.reader.cli": ("reader",),
    "kiosk.player.cli": ("media",),
    "kiosk.sync.cli": ("enroll", "sync", "rekey"),
    "kiosk.sync.receipt_cli": ("receipt",),
    "kiosk.staff.cli": ("closeout", "staff", "export", "status"),
    "kiosk.payment.cli": ("payment",),
}
BUILTIN = ("keygen", "ledger", "demo", "run", "doctor")


def _keygen(args: argparse.Namespace) -> int:
    from kiosk.ledger import keys

    key_path, pub_path = keys.generate(args.out, overwrite=args.force)
    print(f"wrote {key_path} (mode 0600) and {pub_path}")
    print(f"key id {keys.key_id(keys.public_raw(keys.load_public(pub_path)))}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from kiosk.ledger import keys, verify_path
    from kiosk.ledger.audit import not_a_ledger

    why = not_a_ledger(args.path)
    if why:
        # Not "INVALID": nothing was checked, and an auditor must not read a typo, or the portal's CSV picked up
        # from the same USB stick, as a tampered ledger.
        return _not_checked(args, why)
    try:
        pub = keys.load_public(args.pubkey) if args.pubkey else None
    except keys.KeyError_ as exc:  # not the key the auditor meant: nothing was checked against it
        return _not_checked(args, f"--pubkey {exc}")
    note = _checkpoint_note(args.checkpoint) if args.checkpoint else None
    if isinstance(note, _NotANote):
        return _not_checked(args, note.why)
    trusted: dict[int, bytes] = {}
    for t in args.trust_key or []:
        seq, _, hexkey = t.partition(":")
        try:
            trusted[int(seq)] = bytes.fromhex(hexkey)
            if len(trusted[int(seq)]) != 32:
                raise ValueError
        except ValueError:
            print(f"kiosk ledger verify: --trust-key {t!r}: use SEQ:PUBLIC-KEY-HEX (64 hex digits)", file=sys.stderr)
            return 2
    result = verify_path(args.path, pub, note, trusted_keys=trusted)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        # Japanese first, as `kiosk receipt verify` says its verdict (and, when it fails, what to do), then the
        # English line a script reads (OK: / INVALID at seq=N: …); a script that wants one thing reads --json.
        print(result.verdict_ja())
        print(result.summary())
    return 0 if result.ok else 1


def _not_checked(args: argparse.Namespace, why: str) -> int:
    """Exit 1 with the Japanese verdict and ``NOT CHECKED: why`` under it (or, with ``--json``,
    ``{"ok": false, "checked": false, "error": why}``): the input could not be read, so nothing was checked; never
    the word INVALID, which says "tampered"."""
    if args.json:
        print(json.dumps({"ok": False, "checked": False, "error": why}, ensure_ascii=False))
    else:
        from kiosk.ledger.verify import NOT_CHECKED_JA

        print(NOT_CHECKED_JA)
        print(f"NOT CHECKED: {why}")
    return 1


@dataclass(frozen=True)
class _NotANote:
    why: str


def _checkpoint_note(path: str) -> str | _NotANote:
    """The signed checkpoint note ``--checkpoint`` names: a note file, or a saved receipt answer
    (``/api/v1/receipts/CODE``, as `kiosk receipt verify --file` takes), whose ``verification.checkpoint`` is
    the kiosk's signed note the receipt was proved against; why not, if it is neither (nothing is checked then)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _NotANote(f"--checkpoint {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    if not text.lstrip().startswith("{"):
        return text
    try:
        doc = json.loads(text)
        note = doc["verification"]["checkpoint"]
    except (ValueError, KeyError, TypeError):
        note = None
    if not isinstance(note, str):
        return _NotANote(f"--checkpoint {path} is neither a signed checkpoint note nor a saved receipt answer "
                         "(/api/v1/receipts/CODE) with one")
    return note


def _export(args: argparse.Namespace) -> int:
    from kiosk.ledger import write_export
    from kiosk.ledger.audit import not_a_ledger
    from kiosk.ledger.export import is_export

    why = not_a_ledger(args.path)
    if why is None and is_export(args.path):
        why = f"{args.path} is already an export: `kiosk ledger export` takes a kiosk's ledger database (ledger.db)"
    if why:
        print(f"kiosk ledger export: nothing exported: {why}", file=sys.stderr)
        return 1
    n = write_export(args.path, args.out)
    print(f"exported {n} entries to {args.out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    import calendar

    from kiosk.ledger.audit import not_a_ledger
    from kiosk.ledger.export import is_export
    from kiosk.ledger.report import SettledReport, render_text, settled_report
    from kiosk.ledger.store import engine_report_entries, iter_entries, read_only_engine

    day = last = None
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            print(f"kiosk ledger report: --date {args.date!r} is not YYYY-MM-DD", file=sys.stderr)
            return 2
    if args.month:
        try:
            y, m = (int(x) for x in args.month.split("-"))
            day, last = date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])
        except ValueError:
            print(f"kiosk ledger report: --month {args.month!r} is not YYYY-MM (for example 2026-12)", file=sys.stderr)
            return 2
    why = not_a_ledger(args.path)
    if why:
        print(f"kiosk ledger report: nothing counted: {why}", file=sys.stderr)
        return 1
    if is_export(args.path):
        # An export is what an auditor is handed: it is verified before anything in it is counted, so that totals
        # are never printed from a file that was changed (a kiosk's own database is the staff's, on the kiosk).
        # One pass: each entry is counted as the verifier passes it (the very bytes it checked, parsed once), and
        # the count is read only if the whole export verified. Reading the file a second time to count it cost a
        # second decode and parse of every entry, and counted whatever the file held by then.
        from kiosk.ledger import keys, verify_path

        try:
            pub = keys.load_public(args.pubkey) if args.pubkey else None
        except keys.KeyError_ as exc:
            print(f"kiosk ledger report: nothing counted: --pubkey {exc}", file=sys.stderr)
            return 1
        tally = SettledReport(day, last)
        checked = verify_path(args.path, pub, on_entry=tally.add)
        if not checked.ok:
            print(f"kiosk ledger report: nothing counted: the export does not verify: {checked.summary()}",
                  file=sys.stderr)
            return 1
        rep = tally.result()
        rep["verified"] = checked.summary()
    else:
        eng = read_only_engine(args.path)
        try:
            # A dated report reads its days' donations and every void (docs/ledger.md, "Reads that do not grow
            # with the history"); an undated one counts them all.
            rep = settled_report(((e.seq, e.obj) for e in iter_entries(eng)) if day is None
                                 else engine_report_entries(eng, day, last or day), day, last)
        finally:
            eng.dispose()
    print(json.dumps(rep, ensure_ascii=False) if args.json else render_text(rep))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from kiosk.app.demo import DEFAULT_DATA_DIR, run_demo

    return run_demo(args.taps, Path(args.data_dir) if args.data_dir else DEFAULT_DATA_DIR, args.headless,
                    screenshots=Path(args.screenshots) if args.screenshots else None)


def _run(args: argparse.Namespace) -> int:
    from kiosk.reader.nodump import forbid_memory_images

    # First: the kiosk will hold the pepper and every card's IDm; a watchdog SIGABRT must not dump them to disk.
    forbid_memory_images()
    from kiosk.ops.logsetup import install_exception_hooks, setup_logging

    # A traceback nobody caught (any thread) goes through the log's IDm redaction, not raw to the journal.
    install_exception_hooks()
    from kiosk.config.cache import load_run_config

    # A bad file raises ConfigError: exit 2 with every problem listed. An unchanged file that validated at the
    # last start comes from the validated-config cache (kiosk/config/cache.py): a restart is dark that much less.
    try:
        cfg, cached = load_run_config(args.config)
    except ConfigError as exc:
        # As the lobby screen (under systemd, with a display) a bad config is shown on it, not a black screen in
        # a restart loop, until the file changes (kiosk/app/config_fault.py; imported on this path only). By
        # hand, or with no display: every problem on stderr, Japanese first (main, config_report), and exit 2.
        import os

        if not os.environ.get("NOTIFY_SOCKET"):  # by hand: not even pygame is imported
            raise
        from kiosk.app.config_fault import show

        code = show(exc)
        if code is None:
            raise
        return code
    setup_logging(cfg.kiosk.log_level)  # run_kiosk sets it up again (same handler, replaced): one line per event
    import logging

    logging.getLogger("kiosk.config").info("config %s: %s", args.config or "$KIOSK_CONFIG",
                                           "unchanged since the last start (validated then)" if cached
                                           else "validated")
    from kiosk.app.runtime import run_kiosk

    return run_kiosk(cfg, config_path=args.config or None, seconds=args.seconds)


def _doctor(args: argparse.Namespace) -> int:
    from kiosk.ops.doctor import run_doctor
    from kiosk.ui.i18n import catalog_checks

    return run_doctor(args.config, more=(catalog_checks,))


def _plugins_for(argv: list[str] | None) -> list[str]:
    """The plugin modules to register for ``argv``: none for a built-in command, the one that adds a plugin's
    command, and all of them when there is no command or an unknown one (help and "invalid choice" list all)."""
    command = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    if command in BUILTIN:
        return []
    mine = [name for name, commands in PLUGINS.items() if command in commands]
    return mine or list(PLUGINS)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, only with the sub-commands it can need (see :data:`PLUGINS`)."""
    p = argparse.ArgumentParser(prog="kiosk", description="IC-card donation kiosk")
    p.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    k = sub.add_parser("keygen", help="create the kiosk's Ed25519 signing key pair")
    k.add_argument("--out", required=True, help="directory for kiosk.key (0600) and kiosk.pub")
    k.add_argument("--force", action="store_true", help="replace an existing key (old entries stay verifiable "
                                                          "only with the old public key)")
    k.set_defaults(func=_keygen)

    led = sub.add_parser("ledger", help="verify, export and report on a ledger")
    lsub = led.add_subparsers(dest="ledger_command", metavar="ACTION")
    lsub.required = True
    v = lsub.add_parser("verify", help="check every entry, signature, link and checkpoint")
    v.add_argument("path", help="ledger database or export file")
    v.add_argument("--pubkey", help="the kiosk's public key (PEM) the ledger must be signed with")
    v.add_argument("--checkpoint", metavar="FILE",
                   help="a signed checkpoint note the ledger must be consistent with, or a saved receipt answer "
                        "(/api/v1/receipts/CODE) whose checkpoint is used")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--trust-key", action="append", metavar="SEQ:HEX",
                   help="a key change an administrator announced at the portal (the kiosk's old key was lost); "
                        "repeatable")
    v.set_defaults(func=_verify)
    e = lsub.add_parser("export", help="write a portable, self-verifying export")
    e.add_argument("path")
    e.add_argument("--out", required=True)
    e.set_defaults(func=_export)
    r = lsub.add_parser("report", help="settled donations (the close-out basis), of a day, a month or all dates")
    r.add_argument("path", help="ledger database or export file")
    when = r.add_mutually_exclusive_group()
    when.add_argument("--date", help="business date YYYY-MM-DD (default: all dates)")
    when.add_argument("--month", metavar="YYYY-MM",
                      help="a month's business dates, with each day's totals (as in the portal's month CSV)")
    r.add_argument("--pubkey", help="an export: the kiosk's public key (PEM) it must be signed with (it is verified "
                   "before anything is counted)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_report)

    d = sub.add_parser("demo", help="run the kiosk on embedded defaults (simulated reader and terminal)")
    d.add_argument("--headless", action="store_true", help="no window: scripted taps only")
    d.add_argument("--taps", type=int, default=10, help="number of scripted donations when headless (default 10)")
    d.add_argument("--data-dir", help="where the demo keeps its ledger, keys and config (default ./kiosk-data)")
    d.add_argument("--screenshots", metavar="DIR", help="save one PNG per screen (every step, every error, English)")
    d.set_defaults(func=_demo)

    run = sub.add_parser("run", help="run the kiosk: reader, payment terminal, movie loop and donation screens")
    run.add_argument("--config", help="config file (default $KIOSK_CONFIG)")
    run.add_argument("--seconds", type=float, help="stop after this many seconds (smoke tests)")
    run.set_defaults(func=_run)

    doc = sub.add_parser("doctor", help="check the set-up and print the exact fix for each fault")
    doc.add_argument("--config", help="config file (default $KIOSK_CONFIG)")
    doc.set_defaults(func=_doctor)

    for name in _plugins_for(argv):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    if "reader" in sub.choices:  # `kiosk reader probe` finding no reader says what to do, Japanese first
        sub.choices["reader"].set_defaults(ja_gettext=ja_gettext)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(config_report(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if isinstance(exc, _operational_errors()):
            print(f"kiosk {args.command}: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError):
            print(f"kiosk {args.command}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
            return 1
        raise


def config_report(exc: ConfigError) -> str:
    """A bad config as ``kiosk doctor`` and ``kiosk run`` by hand print it: Japanese first, in the lobby fault
    screen's words (from the screens' catalog, imported here only: gettext, nothing of the screens), each
    problem's English line under it (:meth:`ConfigError.report`). Without a readable catalog (a checkout never
    installed): the English report alone, as `kiosk doctor` then says in its catalogs line."""
    from kiosk.ui.i18n import gettext_or_none

    ja = gettext_or_none("ja")
    return str(exc) if ja is None else exc.report(ja)


def ja_gettext() -> Callable[[str], str] | None:
    """The screens' Japanese gettext, for a command whose package may not import the UI (``kiosk reader probe``
    finding no reader: kiosk/reader/fixes.py ``no_reader_report``); None without a readable catalog (English only)."""
    from kiosk.ui.i18n import gettext_or_none

    return gettext_or_none("ja")


def _operational_errors() -> tuple[type[Exception], ...]:
    """What a command reports in one line and exits 1 on. Imported when one is raised: the export and
    verification modules behind ExportError are not on `kiosk run`'s start path (cold start, #16)."""
    from kiosk.ledger import LedgerError, PepperError
    from kiosk.ledger.checkpoint import CheckpointError
    from kiosk.ledger.export import ExportError
    from kiosk.ledger.keys import KeyError_
    from kiosk.payment.base import TerminalSetupError
    from kiosk.ui.i18n import CatalogMissing

    return LedgerError, PepperError, KeyError_, ExportError, CheckpointError, TerminalSetupError, CatalogMissing


if __name__ == "__main__":
    sys.exit(main())
