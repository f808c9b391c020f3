"""``kiosk enroll`` and ``kiosk sync``: the kiosk's side of the portal protocol (server_sync).

Exit codes follow kiosk.cli: 0 success; 1 the operation failed (the portal unreachable or refusing;
for ``sync --once`` also anything left unacknowledged or a pushed config that failed); 2 bad config
or usage.
"""

from __future__ import annotations

import argparse
import json
import sys


def _enroll(args: argparse.Namespace) -> int:
    from kiosk.config import load_config
    from kiosk.sync.uploader import EnrollError, Uploader

    cfg = load_config(args.config)
    up = Uploader.from_config(cfg, portal_url=args.portal)
    try:
        ans = up.enroll(args.code)
    except EnrollError as exc:
        print(f"kiosk enroll: {exc}", file=sys.stderr)
        return 1
    finally:
        up.close()
    if up.set_aside_path is not None:
        print(f"the unreadable sync state was set aside as {up.set_aside_path}")
    print(f"enrolled kiosk {ans.get('kiosk_id', up.kiosk_id)} (key {ans['key_id']}) with {args.portal}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from kiosk.config import load_config
    from kiosk.ledger.writer import InlineWriter
    from kiosk.sync.uploader import Uploader

    cfg = load_config(args.config)
    shown = args.config or "$KIOSK_CONFIG"
    if args.status:
        from kiosk.sync.uploader import SyncState, unreadable_message

        path = cfg.data_dir / "sync-state.json"
        state = SyncState.load(path)
        if state.unreadable is not None:
            print(f"kiosk sync: {unreadable_message(path, state.unreadable, cfg.kiosk.id, shown)}", file=sys.stderr)
            return 1
        print(json.dumps(state.to_json(), ensure_ascii=False))
        return 0
    if not args.once:
        print("kiosk sync: pass --once (the continuous uploader runs inside `kiosk run`)", file=sys.stderr)
        return 2
    ledger = None
    if args.apply_config:
        # Only safe while `kiosk run` is stopped: the ledger has a single writer.
        from kiosk.ops.local_files import open_ledger

        ledger = open_ledger(cfg, boot=False)
    # This process is single-threaded: the config_change append runs inline, in the sync round.
    up = Uploader.from_config(cfg, writer=InlineWriter(ledger) if ledger is not None else None,
                              portal_url=args.portal or "")
    try:
        if up.state.unreadable is not None or (args.portal and not up.enrolled_here):
            # Refused before anything is sent or saved: sync-state.json stays as it was (docs/sync.md, "Enrollment").
            # Without --portal, a kiosk enrolled nowhere goes on below: its round records "not enrolled" for the
            # status page, as `kiosk run` does.
            print(f"kiosk sync: {up.not_enrolled_message(shown)}", file=sys.stderr)
            return 1
        if not up.portal_url:
            print("kiosk sync: no portal URL: set [portal] url in the config or run `kiosk enroll`", file=sys.stderr)
            return 2
        st = up.sync_once(max_attempts=args.attempts)
    finally:
        up.close()
        if ledger is not None:
            ledger.close(checkpoint=False)
    # Not known when the portal did not answer: what it acknowledged before may be lost since (a restored backup).
    pending = (str(st.pending) if st.pending is not None
               else f"unknown (at least {st.pending_at_least} since the portal last answered)")
    line = (f"acknowledged through seq={st.accepted_through_seq} of {st.local_size}; pending {pending}; "
            f"checkpoint {st.checkpoint_size}; config applied v{st.config_applied}"
            + (f", v{st.config_staged} staged" if st.config_staged > st.config_applied else ""))
    # A pushed config that could not be fetched, checked or applied is a failed sync too, though the
    # entries went up: the uploader goes on uploading past it (donations first) and only says so here.
    config_error = st.extra.get("config_error") if st.config_version_seen > st.config_applied else None
    if st.ok and not config_error:
        print(line)
        return 0
    print(f"kiosk sync: {line}; last error: {st.last_error or config_error}", file=sys.stderr)
    return 1


def _rekey(args: argparse.Namespace) -> int:
    from kiosk.config import load_config
    from kiosk.ops.rekey import rekey

    cfg = load_config(args.config)
    r = rekey(cfg, old_key_lost=args.old_key_lost)  # LedgerError/KeyError_: exit 1 with the reason (kiosk.cli)
    if r.seq is None:
        print(f"{cfg.kiosk.id}: the ledger was already handed to key {r.key_id}; key files moved into place")
    elif r.vouched_by == "administrator":
        print(f"{cfg.kiosk.id}: new key {r.key_id} announced at seq={r.seq} (vouched for by an administrator).\n"
              f"Before the kiosk syncs, an administrator runs at the portal:\n"
              f"  kiosk-portal kiosk rekey {cfg.kiosk.id} --public-key {r.public_key} --from-seq {r.seq}")
    else:
        print(f"{cfg.kiosk.id}: signing key is now {r.key_id} from seq={r.seq} (announced by the previous key); "
              "the portal follows at the next sync")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("enroll", help="register this kiosk's key with the portal using a one-time code")
    e.add_argument("--config", help="config file (default $KIOSK_CONFIG)")
    e.add_argument("--portal", required=True, help="portal base URL, e.g. https://portal.example.jp")
    e.add_argument("--code", required=True, help="the code printed by `kiosk-portal enroll-code`")
    e.set_defaults(func=_enroll)

    s = sub.add_parser("sync", help="upload the ledger to the portal")
    s.add_argument("--config", help="config file (default $KIOSK_CONFIG)")
    s.add_argument("--once", action="store_true", help="sync until everything is acknowledged, then exit "
                                                       "(0 only if nothing is left)")
    s.add_argument("--status", action="store_true", help="print the last sync state as JSON and exit")
    s.add_argument("--portal", help="the portal to sync with, which must be the one this kiosk is enrolled with "
                                    "(default: that one, else [portal] url); `kiosk enroll --portal` moves a kiosk")
    s.add_argument("--attempts", type=int, default=8, help="tries before giving up on transient errors (default 8)")
    s.add_argument("--apply-config", action="store_true",
                   help="also record and apply a pushed config (only while `kiosk run` is stopped)")
    s.set_defaults(func=_sync)

    r = sub.add_parser("rekey", help="continue the ledger with a new signing key (stop `kiosk run` first)")
    r.add_argument("--config", help="config file (default $KIOSK_CONFIG)")
    r.add_argument("--old-key-lost", action="store_true",
                   help="the key in force is lost: the new key announces itself and an administrator vouches "
                        "for it at the portal (the command prints what to run there)")
    r.set_defaults(func=_rekey)
