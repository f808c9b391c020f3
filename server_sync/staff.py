"""Staff logins: Argon2id password hashes, roles, server-side sessions and CSRF tokens (docs/portal.md, "Security").

**Passwords** are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane) from
``cryptography``; a hash of an older kind (scrypt) or with weaker parameters is verified and replaced
at the user's next successful sign-in.

**Sessions** are rows of ``portal_staff_sessions`` (the SHA-256 of a random session id, the user, the
expiry). The cookie is ``<session id>.<HMAC(secret, id)>``. A session ends when its user signs out, when
an administrator sets their password again, when the user is removed, or after :data:`SESSION_S`; each of these
deletes the rows, so a copied cookie stops working at once on every portal process. A user who changes their own
password (:func:`change_own_password`) stays signed in in the browser they changed it in, under a new session id (a
cookie copied before the change is worthless, as is one of a stolen session); their other sessions end. Signing in
always starts a new session (:func:`make_cookie`, a random id): a cookie the browser brought is never taken over.

**The secret** (cookie MACs and form tokens) is never in the database: ``KIOSK_PORTAL_SESSION_SECRET``
in the environment, or a file only the portal's user can read (:func:`load_secret`), created with
mode 0600 on first start. Every form a signed-in user posts carries :func:`csrf_token` of their session
(an HMAC of its id under the secret), so another site cannot post in their name.

Roles: ``admin`` (everything, and the users page), ``staff`` (center staff: catalog, media,
playlists, kiosks, volunteer activities), ``editor`` (a group's editor: that group's projects and
media only) and ``auditor`` (監査: the city's auditor reads the dashboard's totals, the reconciliation, the
CSVs and the kiosks page's key events, and changes nothing). Which roles open which pages is :data:`PAGE_ROLES`,
and which may change anything is :data:`WRITERS`: the one place the staff UI asks. A user the database lost (deleted
while signed in) has no access at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import stat
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from server_sync.db import groups, staff_sessions, staff_users, writing

COOKIE = "kiosk_staff"
ROLES = ("admin", "staff", "editor", "auditor")
# Which roles open the staff pages of each level (``page(request, level, ...)`` in server_sync/operator.py) and
# see the menu's links to them (templates/base.html).
PAGE_ROLES: dict[str, tuple[str, ...]] = {
    "everyone": ROLES,  # the dashboard (an editor: their group's; an auditor: the center's totals)
    "any": ("admin", "staff", "editor"),  # projects, videos, movies: every role that makes things
    # what an auditor checks: reconciliation, its CSV, donations CSV, points, and the kiosks page (read only: its key
    # events give `kiosk ledger verify --trust-key`; its forms are staff's, docs/receipts.md step 5)
    "audit": ("admin", "staff", "auditor"),
    "staff": ("admin", "staff"),
    "admin": ("admin",),
}
# The only roles that may change anything: every POST under /staff from another role (an auditor) is refused with
# the 403 page, before its handler runs (operator.install's ``ReadOnlyRoles``), whatever the form.
WRITERS = ("admin", "staff", "editor")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Who:
    """The signed-in user and what they may do."""

    name: str
    role: str
    group_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_staff(self) -> bool:
        """Center staff or administrator: the whole catalog, media, playlists and kiosks."""
        return self.role in ("admin", "staff")

    @property
    def is_auditor(self) -> bool:
        """The city's auditor (監査): reads the figures (:data:`PAGE_ROLES` ``audit``), changes nothing."""
        return self.role == "auditor"

    @property
    def may_write(self) -> bool:
        """Whether any form of the staff UI takes this user's post (:data:`WRITERS`)."""
        return self.role in WRITERS

    def may_open(self, level: str) -> bool:
        """Whether pages of ``level`` (a key of :data:`PAGE_ROLES`) are this user's to open."""
        return self.role in PAGE_ROLES[level]

    def may_edit_group(self, group_id: str | None) -> bool:
        """Projects and media of ``group_id``: staff any group's, an editor only their own."""
        return self.is_staff or (self.role == "editor" and group_id is not None and group_id == self.group_id)


ACTION_TARGET = "staff_action_target"
"""The request state's key under which a staff form's handler names what it saved (:func:`note_target`)."""


def note_target(request: Any, target: str) -> None:
    """Name, for the staff actions record (server_sync/staff_actions.py), what this form saved when its address does
    not: the user, group, project, pool or playlist target. Only an ID the form's own check accepted, never any
    other content of the form (no password, no text typed into a field). ``request``: the route's Request."""
    setattr(request.state, ACTION_TARGET, target)


BEFORE_STATE = "staff_before"
"""The request state's key under which the staff side keeps the signed-in user as read before the route runs
(``(cookie, Who or None)``): the staff actions record reads the session once, and the check that a role may
change anything (operator.ReadOnlyRoles) takes it from there. The route's own check reads it again, after the
form: a session ended while a form or an upload was on its way must refuse it."""


SESSION_S = 8 * 3600

# OWASP Password Storage Cheat Sheet (2024): Argon2id, m=19 MiB, t=2, p=1.
ARGON2_M_KIB, ARGON2_T, ARGON2_P = 19 * 1024, 2, 1
_PHC = f"$argon2id$v=19$m={ARGON2_M_KIB},t={ARGON2_T},p={ARGON2_P}$"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _argon2(password: str, salt: bytes, m: int, t: int, p: int) -> bytes:
    return Argon2id(salt=salt, length=32, iterations=t, lanes=p, memory_cost=m).derive(password.encode())


def hash_password(password: str) -> str:
    """A PHC string: ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`` (unpadded base64)."""
    salt = secrets.token_bytes(16)
    return f"{_PHC}{_b64(salt)}${_b64(_argon2(password, salt, ARGON2_M_KIB, ARGON2_T, ARGON2_P))}"


def needs_rehash(stored: str) -> bool:
    """True for a hash of an older kind or weaker parameters: replaced at the next successful sign-in."""
    return not stored.startswith(_PHC)


_PHC_RE = re.compile(r"^\$argon2id\$v=19\$m=([0-9]{1,7}),t=([0-9]{1,2}),p=([0-9]{1,2})\$([A-Za-z0-9+/]{16,64})"
                     r"\$([A-Za-z0-9+/]{43})$")


def check_password(stored: str, password: str) -> bool:
    """Argon2id (current) or scrypt (hashes made before it), in constant time for a given hash."""
    if stored.startswith("$argon2id$"):
        m = _PHC_RE.match(stored)
        if m is None:
            return False
        mem, t, p = int(m[1]), int(m[2]), int(m[3])
        if not (8 * p <= mem <= 1024 * 1024 and 1 <= t <= 10 and 1 <= p <= 16):
            return False  # a tampered row must not make a sign-in allocate gigabytes
        try:
            got = _argon2(password, _unb64(m[4]), mem, t, p)
            return hmac.compare_digest(got, _unb64(m[5]))
        except (ValueError, InvalidKey):
            return False
    try:
        _, n, r, p_s, salt, h = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p_s), dklen=32)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got.hex(), h)


def add_user(engine: Engine, username: str, password: str, role: str = "admin", group_id: str | None = None) -> None:
    """Create or reset a login. ``staff-add`` makes administrators (the first user must be one)."""
    if not username or len(username) > 64 or len(password) < MIN_PASSWORD:
        raise ValueError("username 1-64 characters and a password of at least 8 characters are needed")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "editor") != (group_id is not None):
        raise ValueError("a group editor needs a group, and only an editor has one")
    with writing(engine) as conn:
        if group_id is not None and conn.execute(select(groups.c.id).where(groups.c.id == group_id)).first() is None:
            raise ValueError(f"no group {group_id!r} (see `kiosk-portal catalog`)")
        conn.execute(staff_users.delete().where(staff_users.c.username == username))
        conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username))  # a reset signs out
        conn.execute(staff_users.insert().values(username=username, password_hash=hash_password(password),
                                                 created_ms=time.time_ns() // 1_000_000, role=role,
                                                 group_id=group_id))


class UserExists(ValueError):
    """:func:`create_user` found a login of that name (perhaps added by another administrator a moment ago)."""


class NoSuchGroup(ValueError):
    """:func:`create_user` or :func:`update_user` was given a group that does not exist (perhaps deleted after the
    users page was opened): nothing is saved."""


def _group_stays(conn: Connection, group_id: str | None) -> None:
    """Raise :class:`NoSuchGroup` unless ``group_id`` (when given) is a group, read inside the caller's write
    transaction. The row is locked for share (PostgreSQL; SQLite's write lock already holds everything), so it
    cannot be deleted before the user naming it is committed."""
    if group_id is not None and conn.execute(
            select(groups.c.id).where(groups.c.id == group_id).with_for_update(read=True)).first() is None:
        raise NoSuchGroup(f"no group {group_id!r}")


def create_user(engine: Engine, username: str, password: str, role: str, group_id: str | None = None) -> None:
    """Add a new login; raises :class:`UserExists` (and changes nothing) if the name is taken.

    Unlike :func:`add_user` (``staff-add``: create or reset), an existing user is never replaced: two
    administrators adding the same name at once get one user and one refusal. On PostgreSQL the second
    insert waits for the first's transaction and then fails on the primary key: that is the refusal too."""
    if role not in ROLES or (role == "editor") != (group_id is not None):
        raise ValueError("a group editor needs a group, and only an editor has one")
    try:
        with writing(engine) as conn:
            if conn.execute(select(staff_users.c.username).where(staff_users.c.username == username)).first():
                raise UserExists(username)
            _group_stays(conn, group_id)
            conn.execute(staff_users.insert().values(username=username, password_hash=hash_password(password),
                                                     created_ms=time.time_ns() // 1_000_000, role=role,
                                                     group_id=group_id))
    except IntegrityError:
        raise UserExists(username) from None


def same_user(engine: Engine, username: str, role: str, group_id: str | None, password: str) -> bool:
    """Whether ``username`` exists with exactly this role, group and password: an "add" of it sent twice (a double
    tap, a slow line), whose first copy added it, not a colleague's user of the same name."""
    with engine.connect() as conn:
        row = conn.execute(select(staff_users.c.role, staff_users.c.group_id, staff_users.c.password_hash)
                           .where(staff_users.c.username == username)).first()
    return row is not None and (row[0], row[1]) == (role, group_id) and check_password(row[2], password)


class LastAdmin(ValueError):
    """:func:`update_user` or :func:`delete_user` would leave the portal without an administrator (perhaps because
    another administrator was demoted or deleted a moment ago): nothing is changed."""


def _admin_stays(conn: Connection, username: str) -> None:
    """Raise :class:`LastAdmin` if ``username`` is the only administrator, read inside the caller's write
    transaction before it demotes or deletes that user. The administrators' rows are locked (PostgreSQL: SELECT ...
    FOR UPDATE, in one order so two such transactions cannot deadlock; SQLite's write lock already holds
    everything), so two administrators demoting or deleting each other at the same moment are taken one after the
    other: the second sees the first's change and is refused, and one administrator always remains."""
    admins = conn.execute(select(staff_users.c.username).where(staff_users.c.role == "admin")
                          .order_by(staff_users.c.username).with_for_update()).scalars().all()
    if username in admins and len(admins) == 1:
        raise LastAdmin(username)


def update_user(engine: Engine, username: str, role: str, group_id: str | None, password: str | None) -> bool:
    """Change a login's role and group (and password, when given); False if there is no such user.

    Raises :class:`NoSuchGroup` (and changes nothing: role, group, password and sessions stay) if ``group_id`` is
    not a group now, e.g. deleted after the users page was opened; checked in the same write transaction as the
    change, so a group deleted a moment before is seen. Raises :class:`LastAdmin` (and changes nothing) if the
    change would take the role of the only administrator left (:func:`_admin_stays`)."""
    if role not in ROLES or (role == "editor") != (group_id is not None):
        raise ValueError("a group editor needs a group, and only an editor has one")
    values: dict[str, Any] = {"role": role, "group_id": group_id}
    if password:
        values["password_hash"] = hash_password(password)
    with writing(engine) as conn:
        _group_stays(conn, group_id)
        if role != "admin":
            _admin_stays(conn, username)
        if password:  # a new password ends every session of the old one
            conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username))
        return bool(conn.execute(staff_users.update().where(staff_users.c.username == username)
                                 .values(**values)).rowcount)


class WrongPassword(ValueError):
    """:func:`change_own_password` was given a current password that is not the user's: nothing is changed."""


def change_own_password(engine: Engine, username: str, current: str, new: str) -> str:
    """A signed-in user sets their own password (``/staff/password``, every role, the auditor too); returns the cookie
    of a NEW session for the browser that changed it.

    ``current`` must be their password now (else :class:`WrongPassword`, nothing changed); ``new`` (at least
    :data:`MIN_PASSWORD` characters, checked by the caller) replaces it. Every session of the user ends (a cookie
    copied elsewhere, a phone left signed in at the center, and the one that sent the form: its id may have been
    seen), and a new one starts in the same transaction. When the change was already made (the same form sent twice,
    a double tap, whose current password is the old one and whose new one is the password now) nothing more changes
    and a new session starts too: the sender typed the password now, as at a sign-in. The two passwords tried are
    two guesses: the caller counts a :class:`WrongPassword` as such (server_sync/ratelimit.py). The hashing is done
    outside the write transaction, and the row is replaced only if it still holds the hash that was checked: of two
    changes at once, one wins and the other is checked again against what it left."""
    fresh = hash_password(new)
    for _ in range(3):
        with engine.connect() as conn:
            row = conn.execute(select(staff_users.c.password_hash).where(staff_users.c.username == username)).first()
        if row is None:
            raise WrongPassword(username)
        if not check_password(row[0], current):
            if current != new and check_password(row[0], new):
                return make_cookie(engine, username)  # this form's first copy changed it
            raise WrongPassword(username)
        with writing(engine) as conn:
            if not conn.execute(staff_users.update().where(staff_users.c.username == username,
                                                           staff_users.c.password_hash == row[0])
                                .values(password_hash=fresh)).rowcount:
                continue  # changed meanwhile (the other copy of this form, or an administrator): check again
            conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username))
            return _start_session(engine, conn, username)
    raise WrongPassword(username)


def delete_user(engine: Engine, username: str) -> bool:
    """Remove a login and its sessions; False if there is no such user. Raises :class:`LastAdmin` (and removes
    nothing) if it is the only administrator left (:func:`_admin_stays`)."""
    with writing(engine) as conn:
        _admin_stays(conn, username)
        conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username))
        return bool(conn.execute(staff_users.delete().where(staff_users.c.username == username)).rowcount)


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(staff_users.c.username, staff_users.c.role, staff_users.c.group_id,
                                   staff_users.c.created_ms).order_by(staff_users.c.username)).all()
    return [{"username": u, "role": r, "group_id": g, "created_ms": c} for u, r, g, c in rows]


def who(engine: Engine, username: str | None) -> Who | None:
    """The user behind a verified cookie, with their role now (not as it was at sign-in)."""
    if username is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(staff_users.c.role, staff_users.c.group_id)
                           .where(staff_users.c.username == username)).first()
    if row is None or row[0] not in ROLES:
        return None
    return Who(username, row[0], row[1])


# --- the secret ---------------------------------------------------------------------------------------
SECRET_ENV = "KIOSK_PORTAL_SESSION_SECRET"
SECRET_FILE_ENV = "KIOSK_PORTAL_SECRET_FILE"


class SecretError(RuntimeError):
    """The session secret cannot be used: the message says what to do."""


def default_secret_file() -> Path:
    """``$KIOSK_PORTAL_SECRET_FILE``, else ``session-secret`` in systemd's ``$STATE_DIRECTORY``
    (/var/lib/kiosk-portal for the unit), else ``~/.local/state/kiosk-portal/session-secret``."""
    if os.environ.get(SECRET_FILE_ENV):
        return Path(os.environ[SECRET_FILE_ENV])
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "session-secret"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "kiosk-portal" / "session-secret"


def load_secret(path: Path | None = None) -> bytes:
    """The session secret: ``$KIOSK_PORTAL_SESSION_SECRET`` (at least 32 characters), else the file
    ``path`` (default :func:`default_secret_file`), created with mode 0600 when missing. A file that
    others may read or write is refused (:class:`SecretError`), as is a short or empty one."""
    env = os.environ.get(SECRET_ENV)
    if env is not None:
        if len(env) < 32:
            raise SecretError(f"{SECRET_ENV} is shorter than 32 characters: use e.g. `openssl rand -hex 32`")
        return env.encode()
    path = path or default_secret_file()
    if not path.exists():
        _create_secret(path)
    st = path.stat()
    if st.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise SecretError(f"session secret {path} is readable or writable by other users (mode "
                          f"{stat.S_IMODE(st.st_mode):04o}): run `chmod 600 {path}` (docs/portal.md, Security)")
    text = path.read_text("ascii", errors="replace").strip()
    if len(text) < 32:
        raise SecretError(f"session secret {path} holds fewer than 32 characters: delete it and start again")
    return text.encode()


def _create_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and never replaces one another worker made a moment ago
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


_SECRETS: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


def use_secret(engine: Engine, secret: bytes) -> None:
    """The secret for sessions over ``engine`` (create_app calls this with :func:`load_secret`)."""
    _SECRETS[engine] = secret


def _secret(engine: Engine) -> bytes:
    if engine not in _SECRETS:
        _SECRETS[engine] = load_secret()
    return _SECRETS[engine]


def _mac(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _same(got: str, want: str) -> bool:
    """``hmac.compare_digest`` of two strings as UTF-8 bytes: on ``str`` it raises TypeError for a non-ASCII
    character (a cookie or form field anyone can send), which must be a plain "no", never a 500."""
    return hmac.compare_digest(got.encode("utf-8", "surrogatepass"), want.encode("utf-8", "surrogatepass"))


def _session_id(engine: Engine, cookie: str | None) -> str | None:
    """The session id of a cookie whose MAC is right (not yet whether the session exists)."""
    if not cookie or "." not in cookie or len(cookie) > 200:
        return None
    sid, mac = cookie.rsplit(".", 1)
    if not _same(mac, _mac(_secret(engine), "session:" + sid)[:32]):
        return None
    return sid


# --- sessions ---------------------------------------------------------------------------------------
def make_cookie(engine: Engine, username: str, replacing: str | None = None) -> str:
    """Start a session for ``username``: its row, and the cookie that names it (a new random id every time).
    ``replacing``: the cookie the browser brought to the sign-in; its session (a colleague's, on the center's
    shared PC) ends in the same transaction, since the browser's cookie is about to be replaced."""
    old = _session_id(engine, replacing)
    with writing(engine) as conn:
        if old is not None:
            _delete_session(conn, old)
        return _start_session(engine, conn, username)


def _delete_session(conn: Connection, sid: str) -> None:
    conn.execute(delete(staff_sessions).where(staff_sessions.c.id_hash == _id_hash(sid)))


def _start_session(engine: Engine, conn: Connection, username: str) -> str:
    """:func:`make_cookie` inside the caller's write transaction."""
    sid = secrets.token_urlsafe(32)
    now = time.time_ns() // 1_000_000
    conn.execute(delete(staff_sessions).where(staff_sessions.c.expires_ms < now))  # tidy as we go
    conn.execute(staff_sessions.insert().values(id_hash=_id_hash(sid), username=username, created_ms=now,
                                                expires_ms=now + SESSION_S * 1000))
    return f"{sid}.{_mac(_secret(engine), 'session:' + sid)[:32]}"


def user_from_cookie(engine: Engine, cookie: str | None) -> str | None:
    """The user of a live session, or None (bad MAC, signed out, password reset, user removed, expired)."""
    sid = _session_id(engine, cookie)
    if sid is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(staff_sessions.c.username, staff_sessions.c.expires_ms)
                           .where(staff_sessions.c.id_hash == _id_hash(sid))).first()
    if row is None or row[1] < time.time_ns() // 1_000_000:
        return None
    return str(row[0])


def end_session(engine: Engine, cookie: str | None) -> None:
    """Sign out: the session's row goes, so the cookie is worthless wherever it was copied."""
    sid = _session_id(engine, cookie)
    if sid is not None:
        with writing(engine) as conn:
            _delete_session(conn, sid)


def end_sessions_of(engine: Engine, username: str) -> int:
    """End every session of ``username``; how many there were."""
    with writing(engine) as conn:
        return int(conn.execute(delete(staff_sessions).where(staff_sessions.c.username == username)).rowcount or 0)


def csrf_token(engine: Engine, cookie: str) -> str:
    """The form token of one session: an HMAC of its id, so it changes at every sign-in."""
    sid = _session_id(engine, cookie)
    return _mac(_secret(engine), "csrf:" + sid)[:40] if sid else ""


def csrf_ok(engine: Engine, cookie: str | None, token: str | None) -> bool:
    want = csrf_token(engine, cookie or "")
    return bool(want and token) and _same(want, token or "")


# A fixed hash to check against when the user does not exist, so timing does not reveal usernames.
_DUMMY = hash_password(secrets.token_hex(8))


@dataclass(frozen=True)
class LoginResult:
    """What :func:`check_login` found: true when the password was right. ``known``: a user of that name exists (whether
    or not the password was right), so the staff actions record keeps a failed sign-in's name only then, without
    looking the name up a second time (server_sync/staff_actions.py, :func:`~server_sync.staff_actions.sign_in`)."""

    ok: bool
    known: bool

    def __bool__(self) -> bool:
        return self.ok


def login(engine: Engine, username: str, password: str) -> bool:
    """Whether ``password`` is ``username``'s (:func:`check_login`)."""
    return check_login(engine, username, password).ok


def check_login(engine: Engine, username: str, password: str) -> LoginResult:
    """Check a password (one look-up of the user); on success, an old-kind hash is replaced by a current Argon2id
    one. The result is true when the password was right, and says whether the user exists."""
    with engine.connect() as conn:
        row = conn.execute(select(staff_users.c.password_hash).where(staff_users.c.username == username)).first()
    ok = check_password(row[0] if row else _DUMMY, password) and row is not None
    if ok and needs_rehash(row[0]):  # type: ignore[index]
        with writing(engine) as conn:
            conn.execute(staff_users.update().where(staff_users.c.username == username,
                                                    staff_users.c.password_hash == row[0])  # type: ignore[index]
                         .values(password_hash=hash_password(password)))
    return LoginResult(ok=ok, known=row is not None)
