"""The ``kiosk-portal`` command line.

Exit codes: 0 success; 1 the operation failed; 2 bad usage or input. Errors are one line, no traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import mimetypes
import os
import sys
from pathlib import Path

from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

DEFAULT_DB = "sqlite:///portal.db"


class BadDatabaseURL(Exception):
    """``--db`` (or $KIOSK_PORTAL_DB) does not parse; the message never repeats the URL."""


def _engine(url: str):  # noqa: ANN202
    from server_sync.db import create_schema, make_engine

    _check_url(url)
    eng = make_engine(url)
    create_schema(eng)
    return eng


def _open(args: argparse.Namespace):  # noqa: ANN202
    """:func:`_engine` for a command that sets a portal up (``db_use="create"``): a SQLite file that is not there
    yet is created, and said so first (:func:`_announce_new`)."""
    _announce_new(args)
    return _engine(args.db)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (relative: to the current folder, as SQLite opens it); None for another database,
    or a SQLite database in memory."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    db = u.database
    if not u.drivername.startswith("sqlite") or not db or db == ":memory:" or db.startswith("file:") \
            or u.query.get("mode") == "memory":
        return None
    return Path(db)


def _near_db(path: Path) -> Path | None:
    """A database file beside ``path`` whose name is close to it (``portal.db`` for ``portl.db``)."""
    import difflib

    try:
        names = sorted(n.name for n in path.parent.iterdir()
                       if n.suffix in (".db", ".sqlite", ".sqlite3") and n.is_file() and n.name != path.name)
    except OSError:
        return None
    same_but_case = [n for n in names if n.lower() == path.name.lower()]
    close = same_but_case or difflib.get_close_matches(path.name, names[:1000], n=1, cutoff=0.75)
    return path.parent / close[0] if close else None


def _where(args: argparse.Namespace) -> tuple[str, str]:
    """Where the URL came from, when not from --db: (Japanese, English) words to add."""
    if args.db_from == "default":
        return ("--db も $KIOSK_PORTAL_DB もないので、いまのフォルダーの portal.db です",
                "no --db and no $KIOSK_PORTAL_DB: portal.db in the current folder")
    if args.db_from == "env":
        return "$KIOSK_PORTAL_DB の指定です", "from $KIOSK_PORTAL_DB"
    return "", ""


def _missing_db(args: argparse.Namespace) -> int | None:
    """A SQLite ``--db`` whose file is not there. A command that only reads or changes a portal's data
    (``db_use="open"``) stops: exit 2, nothing created (an empty database would answer "no kiosks", "¥0", "the
    totals are right", and stay on disk). One that sets a portal up (``db_use="create"``) goes on, and
    :func:`_open` says first that it makes a new empty database there. A folder that is not there stops both."""
    path = _sqlite_file(args.db)
    args.new_db = None
    if path is None or path.is_file():
        return None
    shown = path.absolute()
    ja_where, en_where = _where(args)
    ja_where, en_where = (f"（{ja_where}）" if ja_where else ""), (f" ({en_where})" if en_where else "")
    cmd = f"kiosk-portal {args.command}"
    if path.exists():  # a folder, or a device
        ja_what, en_what = ("フォルダーです", "it is a folder") if path.is_dir() else ("ふつうのファイルではありません",
                                                                                 "not a regular file")
        print(f"{cmd}: {shown} はデータベースのファイルではありません（{ja_what}）{ja_where}。--db で、ポータルの"
              f"データベースのファイル（portal.db など）を指定してください。\n"
              f"{cmd}: {shown} is not a database file ({en_what}){en_where}; name the portal's database file "
              f"with --db", file=sys.stderr)
        return 2
    folder = next((d for d in reversed(path.absolute().parents) if not d.is_dir()), None)
    if folder is not None:
        print(f"{cmd}: データベースのファイル {shown} を開けません。フォルダー {folder} がありません{ja_where}。"
              f"--db のパスを確かめてください。何も作っていません。\n"
              f"{cmd}: cannot open the database file {shown}: there is no folder {folder}{en_where}; check the "
              f"--db path. Nothing was created.", file=sys.stderr)
        return 2
    near = _near_db(path.absolute())
    ja_near = f"{near.name} のことですか？" if near else ""
    en_near = f" (did you mean {near}?)" if near else ""
    if args.db_use == "create":
        args.new_db = (shown, ja_near, en_near, ja_where, en_where)
        return None
    print(f"{cmd}: データベースのファイル {shown} がありません{ja_where}。{ja_near}--db で、ポータルのデータベースの"
          f"ファイルを指定してください。何も作っていません。\n"
          f"{cmd}: no database file {shown}{en_near}{en_where}; name the portal's database file with --db "
          f"(or $KIOSK_PORTAL_DB). Nothing was created.", file=sys.stderr)
    return 2


def _announce_new(args: argparse.Namespace) -> None:
    """Once, before a command that sets a portal up creates its SQLite file (:func:`_missing_db`): a mistyped
    --db is seen, not a silently empty portal."""
    new, args.new_db = getattr(args, "new_db", None), None
    if new is None or new[0].exists():
        return
    shown, ja_near, en_near, ja_where, en_where = new
    cmd = f"kiosk-portal {args.command}"
    print(f"{cmd}: 新しい空のデータベースを作ります：{shown}{ja_where}。{ja_near}"
          f"いまのポータルのデータを使うつもりなら、止めて --db のパスを直してください。\n"
          f"{cmd}: creating a new empty database at {shown}{en_near}{en_where}; if you meant an existing portal, "
          f"stop and fix the --db path", file=sys.stderr, flush=True)


def _check_url(url: str) -> None:
    """BadDatabaseURL if ``url`` does not parse (a port that is not a number, no scheme)."""
    from sqlalchemy.engine import make_url

    try:
        make_url(url)
    except (ValueError, ArgumentError):
        # Never the URL itself, nor the parser's words about it: it may hold the database password.
        raise BadDatabaseURL("--db: not a database URL like sqlite:///portal.db or "
                             "postgresql+psycopg://user:pw@host:5432/db ($KIOSK_PORTAL_DB when --db is not "
                             "given)") from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server_sync.staff import default_secret_file, load_secret

    _check_url(args.db)
    try:  # the first start creates the session secret file (mode 0600); a world-readable one stops here
        load_secret()
    except (RuntimeError, OSError) as exc:
        print(f"kiosk-portal serve: session secret ({default_secret_file()}): {exc}", file=sys.stderr)
        return 2
    from server_sync import i18n

    try:  # every page needs them; without them, stop here with the fix (not one traceback per worker)
        i18n.require_all()
    except i18n.CatalogMissing as exc:
        print(f"kiosk-portal serve: {exc}", file=sys.stderr)
        return 2
    if args.fd is not None and args.workers > 1:
        print("kiosk-portal serve: --fd serves one process; use --host/--port with --workers", file=sys.stderr)
        return 2
    if args.workers > 1:
        # Several processes share nothing but the database (docs/sync.md, "Running several portals").
        _open(args).dispose()
        os.environ["KIOSK_PORTAL_DB"] = args.db
        uvicorn.run("server_sync.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, proxy_headers=True, log_level=args.log_level)
        return 0
    from server_sync.app import create_app, options_from_env, settle_collector

    try:
        opts = options_from_env()
    except RuntimeError as exc:
        print(f"kiosk-portal serve: {exc}", file=sys.stderr)
        return 2
    if args.fd is not None:
        import socket

        try:  # family, type and protocol read from the socket itself (IPPROTO_TCP: asyncio then sets TCP_NODELAY)
            sock = socket.socket(fileno=args.fd)
        except OSError as exc:
            print(f"kiosk-portal serve: --fd {args.fd} is not an open socket: {exc.strerror}", file=sys.stderr)
            return 2
    _announce_new(args)
    app = create_app(args.db, **opts)
    settle_collector()
    if args.fd is None:
        uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True, log_level=args.log_level)
        return 0
    config = uvicorn.Config(app, proxy_headers=True, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _enroll_code(args: argparse.Namespace) -> int:
    from server_sync.enroll import issue_code

    try:
        code = issue_code(_open(args), args.kiosk_id, args.days)
    except ValueError as exc:
        print(f"kiosk-portal enroll-code: {exc}", file=sys.stderr)
        return 2
    print(code)
    return 0


def _staff_add(args: argparse.Namespace) -> int:
    from server_sync.staff import add_user

    password = os.environ.get("KIOSK_PORTAL_PASSWORD") or _ask_password(f"password for {args.user}: ")
    if not password:  # no terminal and nothing on stdin: a script or a systemd unit
        print("kiosk-portal staff-add: no password: set $KIOSK_PORTAL_PASSWORD (or run it in a terminal)",
              file=sys.stderr)
        return 2
    try:
        add_user(_open(args), args.user, password, args.role, args.group)
    except ValueError as exc:
        print(f"kiosk-portal staff-add: {exc}", file=sys.stderr)
        return 2
    print(f"staff user {args.user} saved")
    return 0


def _has_terminal() -> bool:
    if sys.stdin.isatty():
        return True
    try:
        with open("/dev/tty"):  # getpass prompts there even when stdin is a pipe
            return True
    except OSError:
        return False


def _ask_password(prompt: str) -> str:
    """Prompted on the terminal; without one, the first line of stdin (a pipe); "" when there is neither."""
    try:
        if _has_terminal():
            return getpass.getpass(prompt)
        return sys.stdin.readline().rstrip("\r\n") if sys.stdin else ""
    except EOFError:
        return ""


def _config_set(args: argparse.Namespace) -> int:
    from server_sync.configstore import publish
    from server_sync.wire.configdoc import ConfigDocError

    try:
        doc = json.loads(Path(args.file).read_text("utf-8"))
        out = publish(_open(args), doc)
    except (OSError, ValueError) as exc:
        kind = "invalid config" if isinstance(exc, ConfigDocError) else "cannot read"
        print(f"kiosk-portal config-set: {kind}: {exc}", file=sys.stderr)
        return 2
    print(f"published config version {out['version']} (digest {out['digest']})")
    return 0


def _read_catalog(path: str) -> object:
    """A catalog file: JSON ``{"groups": [...], "projects": [...]}``, or TOML with ``[[groups]]`` and
    ``[[projects]]`` tables (a kiosk's ``kiosk.toml`` works: its other sections are ignored)."""
    text = Path(path).read_text("utf-8")
    if path.endswith(".toml"):
        import tomllib

        data = tomllib.loads(text)
        return {k: data[k] for k in ("groups", "projects") if k in data}
    return json.loads(text)


def _catalog_import(args: argparse.Namespace) -> int:
    from server_sync.catalog import CatalogError, import_catalog
    from server_sync.configstore import republish_everywhere
    from server_sync.wire.configdoc import ConfigDocError

    try:
        doc = _read_catalog(args.file)
    except OSError as exc:
        print(f"kiosk-portal catalog-import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        print(f"kiosk-portal catalog-import: {args.file} is not valid: {exc}", file=sys.stderr)
        return 2
    eng = _open(args)
    try:
        n_groups, n_projects = import_catalog(eng, doc)
    except CatalogError as exc:
        print(f"kiosk-portal catalog-import: nothing imported: {exc}", file=sys.stderr)
        return 2
    print(f"imported {n_groups} groups and {n_projects} projects")
    if args.publish:
        try:
            outs = republish_everywhere(eng, by="kiosk-portal catalog-import")
        except ConfigDocError as exc:
            print(f"kiosk-portal catalog-import: imported, but not published: {exc}", file=sys.stderr)
            return 1
        for out in outs:  # every target keeps its own playlist
            print(f"published config version {out['version']} for {out['target']} (digest {out['digest']})")
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from server_sync.catalog import list_groups, list_projects

    with _engine(args.db).connect() as conn:
        print(json.dumps({"groups": list_groups(conn), "projects": list_projects(conn)}, ensure_ascii=False,
                         indent=1))
    return 0


def _media_add(args: argparse.Namespace) -> int:
    from server_sync.configstore import add_media

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"kiosk-portal media-add: {exc.strerror}: {args.file}", file=sys.stderr)
        return 2
    ctype = mimetypes.guess_type(args.file)[0] or "application/octet-stream"
    print(add_media(_open(args), data, ctype))
    return 0


def _kiosks(args: argparse.Namespace) -> int:
    from server_sync.queries import fleet

    rows = fleet(_engine(args.db))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for k in rows:
        flag = " ALARM" if k["alarm"] else ""
        refused = k.get("config_refused")
        if refused is not None and refused["version"] == k["config_current"] > k["config_applied"]:
            # The newest it was given, refused (operator.config_words): it will not arrive by itself.
            flag += f" REFUSED(v{refused['version']} {refused['reason']}: {refused['detail']})"
        print(f"{k['id']:<28} last_seq={k['last_seq']:<8} pending={k['pending']:<6} "
              f"checkpoint={k['checkpoint_size']:<8} config={k['config_applied']}/{k['config_current']}{flag}")
    return 0


def _kiosk(args: argparse.Namespace) -> int:
    from server_sync import kiosk_keys
    from server_sync.db import writing
    from server_sync.ingest import resume, suspend

    if args.action in ("revoke", "rekey"):
        if args.from_seq is None or (args.action == "rekey") != bool(args.public_key):
            print(f"kiosk-portal kiosk {args.action}: needs --from-seq N"
                  + (" and --public-key HEX" if args.action == "rekey" else " (and no --public-key)"), file=sys.stderr)
            return 2
        by = os.environ.get("USER", "") or "kiosk-portal"
        try:
            if args.action == "revoke":
                out = kiosk_keys.revoke(_engine(args.db), args.kiosk_id, args.from_seq, by, args.reason or "")
                print(f"{args.kiosk_id}: key {out['key_id']} revoked from seq={args.from_seq}; its uploads from there "
                      f"are refused (403); {out['quarantined']} entries already held are quarantined")
            else:
                out = kiosk_keys.announce(_engine(args.db), args.kiosk_id, args.public_key, args.from_seq, by,
                                          args.reason or "")
                print(f"{args.kiosk_id}: key {out['key_id']} announced from seq={args.from_seq} (the old key "
                      f"{out['revoked_key_id']} is revoked from there); the kiosk signs its requests with it now")
        except kiosk_keys.KeyEventError as exc:
            print(f"kiosk-portal kiosk {args.action}: {exc}", file=sys.stderr)
            return 1
        return 0
    with writing(_engine(args.db)) as conn:
        if args.action == "suspend":
            ok = suspend(conn, args.kiosk_id, args.reason or "suspended by an administrator")
            released = 0
        else:
            got = resume(conn, args.kiosk_id)
            ok, released = got is not None, got or 0
    if not ok:
        print(f"kiosk-portal kiosk {args.action}: no kiosk {args.kiosk_id!r} is enrolled", file=sys.stderr)
        return 1
    if args.action == "suspend":
        print(f"{args.kiosk_id}: suspended; its uploads are stored but not counted until `kiosk resume`")
    else:
        print(f"{args.kiosk_id}: resumed; {released} held entries are counted again")
    return 0


def _plural(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _day(ms: int) -> str:
    """``ms`` as a time in Japan (``policy.TZ``), never the server's own zone: a portal in a data centre runs on
    UTC, and staff who read "14:30" mean 14:30 at the center."""
    import datetime as dt

    from server_sync.policy import TZ

    return dt.datetime.fromtimestamp(ms / 1000, TZ).strftime("%Y-%m-%d %H:%M")


def _since_ms(value: str | None) -> int | None:
    """``--since`` in ms since the epoch: Japan time (as :func:`_day` prints it) unless it names its own offset
    (``+09:00``, ``Z``); 0 without it; None when it does not parse."""
    import datetime as dt

    from server_sync.policy import TZ

    if not value:
        return 0
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=TZ)
    return round(when.timestamp() * 1000)


def _cards(args: argparse.Namespace) -> int:
    """The lists of card tokens a kiosk's asks linked (docs/points.md, "Undoing a kiosk's links"): list them, by
    card, or undo them. Tokens are shown by their first 8 hex digits only (docs/privacy.md)."""
    from sqlalchemy import select

    from kiosk.ledger.keys import key_id
    from server_sync import pools
    from server_sync.db import key_events, kiosks

    since = _since_ms(args.since)
    if since is None:
        print(f"kiosk-portal cards {args.action}: --since: not a date and time like 2026-12-06 or "
              f"'2026-12-06 14:30' (Japan time)", file=sys.stderr)
        return 2
    eng = _engine(args.db)
    kid = args.kiosk
    kid_since = f"{kid} (since {_day(since)})" if since else kid
    try:
        if args.action == "links":
            got = pools.kiosk_links(eng, kid, since)
        else:
            done = pools.unlink(eng, kid, since)
    except pools.UnknownKiosk as exc:
        print(f"kiosk-portal cards {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.action == "links":
        if not got["cards"]:
            print(f"{kid_since}: no card links kept (its asks have listed no card's tokens)")
            return 0
        print(f"{kid_since}: {_plural(got['lists'], 'list')} ({_plural(got['links'], 'link')}) in "
              f"{_plural(len(got['cards']), 'card')}; `kiosk-portal cards unlink` would:")
        for c in got["cards"]:
            after = ("keep it whole" if len(c["after"]) == 1
                     else f"split it into {len(c['after'])} cards of {', '.join(map(str, c['after']))} tokens"
                     if c["after"] else "leave no card")
            dropped = f", and {_plural(c['dropped'], 'token')} no other kiosk listed would leave it" \
                if c["dropped"] else ""
            print(f"  card {c['card']} ({_plural(c['tokens'], 'token')}, lists of {_plural(c['kiosks'], 'other kiosk')}"
                  f"): {_plural(c['lists'], 'list')} naming {_plural(c['named'], 'token')}, {_day(c['first_ms'])} to "
                  f"{_day(c['last_ms'])}; {after}{dropped}")
        return 0
    if not done["cards"]:
        print(f"{kid_since}: no card links kept; nothing to undo")
        return 0
    whole = done["cards"] - done["split"] - done["gone"]
    print(f"{kid_since}: {_plural(done['lists'], 'list')} ({_plural(done['links'], 'link')}) removed from "
          f"{_plural(done['cards'], 'card')}: {_plural(done['split'], 'card')} split (into {done['into']}), "
          f"{_plural(whole, 'card')} stayed one card, {_plural(done['gone'], 'card')} named only by this kiosk "
          f"{'is' if done['gone'] == 1 else 'are'} no card now; {_plural(done['dropped'], 'token')} no other kiosk "
          f"listed left their cards")
    print("each card counts its own tokens' points again: a kiosk that holds more of a card than the card has gives "
          "the rest back at its next ask, as far as it holds them unspent")
    with eng.connect() as conn:
        k = conn.execute(select(kiosks.c.public_key).where(kiosks.c.id == kid)).first()
        revoked = k is not None and conn.execute(select(key_events.c.id).where(
            key_events.c.kiosk_id == kid, key_events.c.kind == "revoke",
            key_events.c.key_id == key_id(bytes(k[0])))).first() is not None
    if not revoked:
        print(f"kiosk-portal cards unlink: {kid}'s key is not revoked: its next ask for a card links that card again"
              + (f" ({_plural(done['left'], 'link')} made while this ran are kept)" if done["left"] else "")
              + f"; revoke it first (`kiosk-portal kiosk revoke {kid} --from-seq N`)", file=sys.stderr)
    return 0


def _pepper(args: argparse.Namespace) -> int:
    """The city's donor-token pepper (server_sync/citypepper.py): never printed, only its epochs."""
    from server_sync import citypepper

    eng = _open(args)  # status --domain sets a portal up; rotate and status need one (main)
    if args.action == "rotate":
        new = citypepper.rotate(eng)
        print(f"pepper epoch {new} made; each kiosk adopts it (sealed) at its next sync, and keeps the old ones")
        return 0
    try:
        if args.domain:
            citypepper.ensure(eng, args.domain)
    except ValueError as exc:
        print(f"kiosk-portal pepper: {exc}", file=sys.stderr)
        return 2
    st = citypepper.status(eng)
    if args.domain and st["domain"] != args.domain:
        print(f"kiosk-portal pepper: this portal's token domain is already {st['domain']!r}", file=sys.stderr)
        return 1
    print(json.dumps(st, ensure_ascii=False))
    return 0


def _totals(args: argparse.Namespace) -> int:
    from server_sync import totals as kept
    from server_sync.queries import totals

    eng = _engine(args.db)
    if args.recount:  # after a hand edit of the database that --check found
        kept.recount_all(eng)
        print("totals: the kept totals were counted again from the entries", file=sys.stderr)
        return 0
    if args.check:  # the kept totals against a count of every entry (server_sync/totals.py)
        diffs = kept.check(eng)
        for d in diffs:
            print(d)
        print("totals: the kept totals equal a count of the entries" if not diffs
              else f"totals: {len(diffs)} differences", file=sys.stderr)
        return 1 if diffs else 0
    print(json.dumps(totals(eng), ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-portal", description="central portal for donation kiosks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def db(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", default=None,
                        help="database URL: sqlite:///portal.db (default: $KIOSK_PORTAL_DB, else portal.db in the "
                             "current folder) or postgresql+psycopg://user:pw@host/db")
        # "open": a command that reads or changes a portal's data refuses a SQLite file that is not there;
        # "create": one that sets a portal up makes it, and says so (_missing_db).
        sp.set_defaults(db_use="open")

    s = sub.add_parser("serve", help="run the portal web service")
    db(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1, help="processes (use PostgreSQL for more than one)")
    s.add_argument("--fd", type=int, default=None,
                   help="serve on this inherited, bound TCP socket instead of --host/--port (how `kiosk demo` "
                        "starts its portal: the port is held from the moment it is chosen)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=_serve, db_use="create")

    e = sub.add_parser("enroll-code", help="print a one-time enrollment code for a kiosk")
    db(e)
    e.add_argument("--kiosk-id", required=True)
    e.add_argument("--days", type=int, default=7, help="days the code stays valid (default 7)")
    e.set_defaults(func=_enroll_code, db_use="create")

    st = sub.add_parser("staff-add", help="create or reset a staff login (password from $KIOSK_PORTAL_PASSWORD "
                                          "or prompted); more users on /staff/users")
    db(st)
    st.add_argument("--user", required=True)
    st.add_argument("--role", choices=["admin", "staff", "editor", "auditor"], default="admin",
                    help="admin (default; everything), staff (center staff), editor (one group's projects) or "
                         "auditor (the city's auditor: reads the totals, reconciliation and CSVs, changes nothing)")
    st.add_argument("--group", help="the group id an editor edits (with --role editor)")
    st.set_defaults(func=_staff_add, db_use="create")

    c = sub.add_parser("config-set", help="publish a new config version from a JSON file")
    db(c)
    c.add_argument("file")
    c.set_defaults(func=_config_set, db_use="create")

    ci = sub.add_parser("catalog-import", help="add or update groups and projects from a JSON or TOML file")
    db(ci)
    ci.add_argument("file", help='JSON {"groups": [...], "projects": [...]} or TOML with [[groups]]/[[projects]]')
    ci.add_argument("--publish", action="store_true",
                    help="then publish a new config version for every target so kiosks get the catalog")
    ci.set_defaults(func=_catalog_import, db_use="create")

    cl = sub.add_parser("catalog", help="print the groups and projects as JSON (contacts included: staff only)")
    db(cl)
    cl.set_defaults(func=_catalog)

    m = sub.add_parser("media-add", help="store a media file; prints its sha256 for the playlist")
    db(m)
    m.add_argument("file")
    m.set_defaults(func=_media_add, db_use="create")

    k = sub.add_parser("kiosks", help="the fleet: last seq, pending, checkpoint, alarms")
    db(k)
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=_kiosks)

    ks = sub.add_parser("kiosk", help="suspend a kiosk (uploads held, not counted) or resume it; revoke its key "
                                      "from a seq on; announce its new key when the old one is lost")
    db(ks)
    ks.add_argument("action", choices=["suspend", "resume", "revoke", "rekey"])
    ks.add_argument("kiosk_id", metavar="ID")
    ks.add_argument("--reason", help="why (shown to staff)")
    ks.add_argument("--from-seq", type=int, metavar="N",
                    help="revoke, rekey: the first seq the revocation or the new key applies to")
    ks.add_argument("--public-key", metavar="HEX", help="rekey: the new key as `kiosk rekey --old-key-lost` printed it")
    ks.set_defaults(func=_kiosk)

    cd = sub.add_parser("cards", help="the card links a kiosk's points asks made: list them, or undo them (a kiosk "
                                      "whose key was stolen); tokens shown shortened")
    db(cd)
    cd.add_argument("action", choices=["links", "unlink"])
    cd.add_argument("--kiosk", required=True, metavar="ID", help="the kiosk whose links to list or undo")
    cd.add_argument("--since", metavar="WHEN", help="only the links it made from then on (the theft), in Japan "
                                                   "time: 2026-12-06 or '2026-12-06 14:30'")
    cd.set_defaults(func=_cards)

    pp = sub.add_parser("pepper", help="the city's donor-token pepper: rotate it, or show its epochs (never the "
                                       "secret)")
    db(pp)
    pp.add_argument("action", choices=["rotate", "status"])
    pp.add_argument("--domain", help="status only: name the token domain when the portal has none yet (e.g. the "
                                     "city's name)")
    pp.set_defaults(func=_pepper)

    t = sub.add_parser("totals", help="print the public totals as JSON")
    db(t)
    t.add_argument("--check", action="store_true",
                   help="count every settled donation again and compare with the kept totals (exit 1 if they differ)")
    t.add_argument("--recount", action="store_true",
                   help="replace the kept totals with a count of the entries (after a hand edit --check found)")
    t.set_defaults(func=_totals)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.db_from = "--db" if args.db is not None else "env" if os.environ.get("KIOSK_PORTAL_DB") else "default"
    if args.db is None:
        args.db = os.environ.get("KIOSK_PORTAL_DB") or DEFAULT_DB
    if args.command == "pepper" and args.action == "status" and args.domain:
        args.db_use = "create"  # naming the token domain of a new portal
    try:
        _check_url(args.db)
        refused = _missing_db(args)
        if refused is not None:
            return refused
        return int(args.func(args) or 0)
    except BadDatabaseURL as exc:
        print(f"kiosk-portal {args.command}: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        ja = ("データベースがありません。PostgreSQL にデータベースを作ってから（createdb）、やり直してください"
              if isinstance(exc, OperationalError) and "does not exist" in reason and "database" in reason
              else "データベースを使えませんでした（理由は次の行）")
        print(f"kiosk-portal {args.command}: {ja}。\nkiosk-portal {args.command}: database: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
