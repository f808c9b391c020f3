"""Staff logins: scrypt password hashes, roles, stateless signed session cookies and CSRF tokens.

The cookie is ``base64url(username|expiry_ms).HMAC-SHA256(secret, that)``; the secret lives in the
database (``portal_settings.session_secret``), so any portal process behind the proxy accepts it.
Every form a signed-in user posts carries :func:`csrf_token` of their cookie (an HMAC of it under a
separate key), so another site cannot post in their name even where SameSite is not honoured.

Roles: ``admin`` (everything, and the users page), ``staff`` (center staff: catalog, media,
playlists, kiosks, volunteer activities) and ``editor`` (a group's editor: that group's projects and
media only). A user the database lost (deleted while signed in) has no access at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server_sync.db import get_setting, groups, staff_users, writing

COOKIE = "kiosk_staff"
ROLES = ("admin", "staff", "editor")
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

    def may_edit_group(self, group_id: str | None) -> bool:
        """Projects and media of ``group_id``: staff any group's, an editor only their own."""
        return self.is_staff or (self.role == "editor" and group_id is not None and group_id == self.group_id)
SESSION_S = 8 * 3600
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${h.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        _, n, r, p, salt, h = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
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
        conn.execute(staff_users.insert().values(username=username, password_hash=hash_password(password),
                                                 created_ms=time.time_ns() // 1_000_000, role=role,
                                                 group_id=group_id))


def update_user(engine: Engine, username: str, role: str, group_id: str | None, password: str | None) -> bool:
    """Change a login's role and group (and password, when given); False if there is no such user."""
    values: dict[str, Any] = {"role": role, "group_id": group_id}
    if password:
        values["password_hash"] = hash_password(password)
    with writing(engine) as conn:
        return bool(conn.execute(staff_users.update().where(staff_users.c.username == username)
                                 .values(**values)).rowcount)


def delete_user(engine: Engine, username: str) -> bool:
    with writing(engine) as conn:
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


def csrf_token(engine: Engine, cookie: str) -> str:
    """The form token of one session: an HMAC of its cookie, so it changes at every sign-in."""
    return _mac("csrf:" + (get_setting(engine, "session_secret") or ""), cookie)[:40]


def csrf_ok(engine: Engine, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token) and hmac.compare_digest(csrf_token(engine, cookie or ""), token or "")


# A fixed hash to check against when the user does not exist, so timing does not reveal usernames.
_DUMMY = hash_password(secrets.token_hex(8))


def login(engine: Engine, username: str, password: str) -> bool:
    with engine.connect() as conn:
        row = conn.execute(select(staff_users.c.password_hash).where(staff_users.c.username == username)).first()
    return check_password(row[0] if row else _DUMMY, password) and row is not None


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def make_cookie(engine: Engine, username: str) -> str:
    payload = base64.urlsafe_b64encode(f"{username}|{time.time_ns() // 1_000_000 + SESSION_S * 1000}".encode()
                                       ).decode().rstrip("=")
    return f"{payload}.{_mac(get_setting(engine, 'session_secret') or '', payload)}"


def user_from_cookie(engine: Engine, cookie: str | None) -> str | None:
    if not cookie or "." not in cookie or len(cookie) > 400:
        return None
    payload, mac = cookie.rsplit(".", 1)
    secret = get_setting(engine, "session_secret")
    if not secret or not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    try:
        user, exp = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().rsplit("|", 1)
        if int(exp) < time.time_ns() // 1_000_000:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    return user
