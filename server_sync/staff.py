"""Staff logins: scrypt password hashes and stateless signed session cookies.

The cookie is ``base64url(username|expiry_ms).HMAC-SHA256(secret, that)``; the secret lives in the
database (``portal_settings.session_secret``), so any portal process behind the proxy accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine

from server_sync.db import get_setting, staff_users, writing

COOKIE = "kiosk_staff"
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


def add_user(engine: Engine, username: str, password: str) -> None:
    if not username or len(username) > 64 or len(password) < 8:
        raise ValueError("username 1-64 characters and a password of at least 8 characters are needed")
    with writing(engine) as conn:
        conn.execute(staff_users.delete().where(staff_users.c.username == username))
        conn.execute(staff_users.insert().values(username=username, password_hash=hash_password(password),
                                                 created_ms=time.time_ns() // 1_000_000))


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
