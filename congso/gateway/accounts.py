"""The console's people and machines: users, roles, sessions, the login lockout, API tokens.

There are no default users and no default passwords (``docs/console.md``):
``congso web user add`` makes each one. Only argon2 hashes of passwords
are kept; of a session cookie and of an API token only a sha256 (both are
long random strings, so a fast hash is enough and a copy of the database
logs nobody in). Sessions live in the database, so ``congso web user
disable`` in a shell ends a user's sessions in the running console at once.

The lockout (``../shared/OFFICE.md``): after ``LOCK_AFTER`` failed logins in
a row for one user name, or from one client address, every attempt is
refused for ``LOCK_S`` seconds whatever the password. A success clears the
user name's and the address's count.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import staff as staff_mod

ROLES = ("admin", "clerk", "officer", "viewer")
ROLE_VI = {
    "admin": "Quản trị",
    "clerk": "Văn phòng",
    "officer": "Cán bộ một cửa",
    "viewer": "Xem báo cáo",
}
SCOPES = ("dossiers:read", "dossiers:write", "calendar:write", "reports:read")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is an attack
LOCK_AFTER = 5
LOCK_S = 60.0
TOKEN_PREFIX = "cs_"

# One of OWASP's equivalent argon2id settings (7 MiB, 5 passes, 1 lane): the
# memory is taken only while a password is checked, one check at a time, and
# the console's budget is 90 MB beside the gateway (bench/console.py).
_hasher = PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1)


class AccountError(ValueError):
    """A user, a password, a token or a role is not acceptable; the message says why."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not staff_mod.STAFF_ID_RE.match(name):
        raise AccountError(f"user name {name!r}: use 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must have at most {MAX_PASSWORD} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        raise AccountError("the password must not hold control characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


# -- users -------------------------------------------------------------------------
def add_user(db: sqlite_utils.Database, name: str, role: str, password: str,
             staff_id: str | None = None) -> dict:
    name, role = check_name(name), check_role(role)
    if staff_id:
        staff_id = staff_mod.check_staff_id(staff_id)
        if staff_mod.get(db, staff_id) is None:
            raise AccountError(f"no staff member {staff_id!r} (congso staff list)")
    # An officer without a staff id may log in and keep dossiers, but opens no
    # desk session and sees no ratings until tied to one (the CLI warns).
    if db["web_users"].count_where("name = ?", [name]):
        raise AccountError(f"user {name!r} already exists")
    row = {"name": name, "role": role, "staff_id": staff_id or None, "password_hash": hash_password(password),
           "active": 1, "created_at": _now_iso(), "password_changed_at": _now_iso(), "last_login_at": None}
    db["web_users"].insert(row)
    return public_user(row)


def public_user(row: dict) -> dict:
    return {k: row.get(k) for k in ("name", "role", "staff_id", "active", "created_at", "last_login_at")}


def get_user(db: sqlite_utils.Database, name: str) -> dict | None:
    rows = list(db.query("SELECT * FROM web_users WHERE name = ?", [name]))
    return rows[0] if rows else None


def _need_user(db, name: str) -> dict:
    row = get_user(db, name)
    if row is None:
        raise AccountError(f"no user {name!r} (congso web user list)")
    return row


def list_users(db: sqlite_utils.Database) -> list[dict]:
    desks = {}
    for r in db.query("SELECT user, desk_id FROM web_user_desks ORDER BY desk_id"):
        desks.setdefault(r["user"], []).append(r["desk_id"])
    return [{**public_user(r), "desks": desks.get(r["name"], [])}
            for r in db.query("SELECT * FROM web_users ORDER BY name")]


def _refuse_last_admin(db, row: dict) -> None:
    """The office must keep one active admin: nobody could manage users or tokens again."""
    if row["role"] == "admin" and row["active"]:
        others = db.execute("SELECT count(*) FROM web_users WHERE role = 'admin' AND active = 1 AND name != ?",
                            [row["name"]]).fetchone()[0]
        if others == 0:
            raise AccountError(f"{row['name']} is the last active admin: make another user admin first")


def set_active(db: sqlite_utils.Database, name: str, active: bool) -> None:
    row = _need_user(db, name)
    if not active:
        _refuse_last_admin(db, row)
    with db.conn:
        db.execute("UPDATE web_users SET active = ? WHERE name = ?", [1 if active else 0, name])
        if not active:
            db.execute("DELETE FROM web_sessions WHERE user = ?", [name])


def set_role(db: sqlite_utils.Database, name: str, role: str, staff_id: str | None = None) -> None:
    row = _need_user(db, name)
    role = check_role(role)
    if role != "admin":
        _refuse_last_admin(db, row)
    staff_id = staff_id if staff_id is not None else row["staff_id"]
    if staff_id and staff_mod.get(db, staff_id) is None:
        raise AccountError(f"no staff member {staff_id!r}")
    with db.conn:
        db.execute("UPDATE web_users SET role = ?, staff_id = ? WHERE name = ?", [role, staff_id or None, name])
        # A changed role is a new set of rights: log in again under it.
        db.execute("DELETE FROM web_sessions WHERE user = ?", [name])


def set_password(db: sqlite_utils.Database, name: str, password: str) -> None:
    _need_user(db, name)
    hashed = hash_password(password)
    with db.conn:
        db.execute("UPDATE web_users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                   [hashed, _now_iso(), name])
        db.execute("DELETE FROM web_sessions WHERE user = ?", [name])


def set_desks(db: sqlite_utils.Database, name: str, desks: list[str]) -> list[str]:
    _need_user(db, name)
    desks = sorted({d.strip() for d in desks if d.strip()})
    with db.conn:
        db.execute("DELETE FROM web_user_desks WHERE user = ?", [name])
        for d in desks:
            db.execute("INSERT INTO web_user_desks(user, desk_id) VALUES (?, ?)", [name, d])
    return desks


def user_desks(db: sqlite_utils.Database, name: str) -> list[str]:
    return [r["desk_id"] for r in db.query("SELECT desk_id FROM web_user_desks WHERE user = ? ORDER BY desk_id", [name])]


# -- login and lockout -----------------------------------------------------------------
@dataclass
class LoginResult:
    user: dict | None = None
    locked_for_s: float = 0.0  # > 0: refused without looking at the password
    now_locked: bool = False   # this failure was the one that locked it


def _lock_left(db, keys: list[str], now: float) -> float:
    left = 0.0
    for r in db.query(f"SELECT locked_until FROM web_login_failures WHERE key IN ({','.join('?' * len(keys))})", keys):
        if r["locked_until"] and r["locked_until"] > now:
            left = max(left, r["locked_until"] - now)
    return left


def _fail(db, keys: list[str], now: float) -> None:
    with db.conn:
        for key in keys:
            db.execute(
                "INSERT INTO web_login_failures(key, failures, last_at, locked_until) VALUES (?, 1, ?, NULL) "
                "ON CONFLICT(key) DO UPDATE SET failures = CASE WHEN locked_until IS NOT NULL AND locked_until <= ? "
                "THEN 1 ELSE failures + 1 END, last_at = excluded.last_at, "
                "locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= ? THEN NULL ELSE locked_until END",
                [key, now, now, now])
            db.execute("UPDATE web_login_failures SET locked_until = ? WHERE key = ? AND failures >= ? "
                       "AND (locked_until IS NULL OR locked_until <= ?)", [now + LOCK_S, key, LOCK_AFTER, now])


def login(db: sqlite_utils.Database, name: str, password: str, client: str, now: float | None = None) -> LoginResult:
    """Check a login; counts failures per user name and per client address."""
    now = time.time() if now is None else now
    name = (name or "").strip()[:64]
    keys = [f"user:{name.lower()}", f"addr:{client}"]
    left = _lock_left(db, keys, now)
    if left > 0:
        return LoginResult(locked_for_s=left)
    row = get_user(db, name) if name else None
    with _CHECKING:
        ok = _check_password(row, password)
    if not ok:
        _fail(db, keys, now)
        return LoginResult(now_locked=_lock_left(db, keys, now) > 0)
    with db.conn:
        db.execute(f"DELETE FROM web_login_failures WHERE key IN (?, ?)", keys)
        db.execute("UPDATE web_users SET last_login_at = ? WHERE name = ?", [_now_iso(), row["name"]])
        if _hasher.check_needs_rehash(row["password_hash"]):
            db.execute("UPDATE web_users SET password_hash = ? WHERE name = ?", [_hasher.hash(password), row["name"]])
    return LoginResult(user=row)


# One password check at a time in a process: a burst of logins then costs
# 7 MiB and one core, not 7 MiB and a core per attempt.
_CHECKING = threading.Lock()


def _check_password(row: dict | None, password) -> bool:
    ok = False
    if row is not None and row["active"] and isinstance(password, str) and len(password) <= MAX_PASSWORD:
        try:
            ok = _hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    elif isinstance(password, str):
        # Same work for an unknown user, so timing does not tell who exists.
        try:
            _hasher.verify(_dummy_hash(), password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass
    return ok


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("congso-no-such-user-" + secrets.token_hex(8))


# -- sessions --------------------------------------------------------------------------
TOUCH_EVERY_S = 60.0  # last_seen is written at most this often: one write a minute, not one a request


@dataclass
class Session:
    user: dict
    csrf_token: str
    desks: list[str]

    @property
    def name(self) -> str:
        return self.user["name"]

    @property
    def role(self) -> str:
        return self.user["role"]


def new_session(db: sqlite_utils.Database, user_name: str, client: str, now: float | None = None) -> str:
    """A new session for ``user_name``; returns the cookie value (only its hash is stored)."""
    now = time.time() if now is None else now
    cookie = secrets.token_urlsafe(32)
    with db.conn:
        db.execute("INSERT INTO web_sessions(id_hash, user, csrf_token, created_at, last_seen, client) "
                   "VALUES (?, ?, ?, ?, ?, ?)", [_sha(cookie), user_name, secrets.token_urlsafe(32), _now_iso(), now, client])
        # Sessions idle for a day are gone whatever the idle setting: keep the table small.
        db.execute("DELETE FROM web_sessions WHERE last_seen < ?", [now - 86400])
    return cookie


def session(db: sqlite_utils.Database, cookie: str | None, idle_s: float, now: float | None = None) -> Session | None:
    """The live session of this cookie, or None (unknown, idle too long, or its user disabled)."""
    if not cookie or len(cookie) > 200:
        return None
    now = time.time() if now is None else now
    rows = list(db.query(
        "SELECT s.id_hash, s.csrf_token, s.last_seen, u.* FROM web_sessions s JOIN web_users u ON u.name = s.user "
        "WHERE s.id_hash = ?", [_sha(cookie)]))
    if not rows:
        return None
    r = rows[0]
    if not r["active"] or now - r["last_seen"] > idle_s:
        with db.conn:
            db.execute("DELETE FROM web_sessions WHERE id_hash = ?", [r["id_hash"]])
        return None
    # Touched often enough that a short idle setting never ends a session in use.
    if now - r["last_seen"] > min(TOUCH_EVERY_S, idle_s / 4):
        with db.conn:
            db.execute("UPDATE web_sessions SET last_seen = ? WHERE id_hash = ?", [now, r["id_hash"]])
    user = {k: r[k] for k in ("name", "role", "staff_id", "active")}
    return Session(user=user, csrf_token=r["csrf_token"], desks=user_desks(db, user["name"]))


def end_session(db: sqlite_utils.Database, cookie: str | None) -> None:
    if cookie:
        with db.conn:
            db.execute("DELETE FROM web_sessions WHERE id_hash = ?", [_sha(cookie)])


# -- API tokens ------------------------------------------------------------------------
def parse_scopes(text: str | list[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = sorted({s.strip() for s in items if s.strip()})
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise AccountError(f"scope {', '.join(bad) or '(none)'}: choose from {', '.join(SCOPES)}")
    return scopes


def create_token(db: sqlite_utils.Database, name: str, scopes: str | list[str]) -> str:
    """A new bearer token; the text is returned once and never stored."""
    name = check_name(name)
    scopes = parse_scopes(scopes)
    live = list(db.query("SELECT name FROM api_tokens WHERE name = ? AND revoked_at IS NULL", [name]))
    if live:
        raise AccountError(f"token {name!r} exists: revoke it first (congso web token revoke {name})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.conn:
        db.execute("DELETE FROM api_tokens WHERE name = ?", [name])
        db.execute("INSERT INTO api_tokens(name, token_hash, scopes, created_at) VALUES (?, ?, ?, ?)",
                   [name, _sha(token), ",".join(scopes), _now_iso()])
    return token


def revoke_token(db: sqlite_utils.Database, name: str) -> None:
    with db.conn:
        cur = db.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [_now_iso(), name])
    if cur.rowcount == 0:
        raise AccountError(f"no live token {name!r} (congso web token list)")


def list_tokens(db: sqlite_utils.Database) -> list[dict]:
    return [dict(r) for r in db.query(
        "SELECT name, scopes, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name")]


def token_scopes(db: sqlite_utils.Database, token: str | None) -> tuple[str, list[str]] | None:
    """(name, scopes) of a live token, or None."""
    if not token or len(token) > 200:
        return None
    rows = list(db.query("SELECT name, scopes, last_used_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                         [_sha(token)]))
    if not rows:
        return None
    r = rows[0]
    today = _now_iso()[:10]
    if not r["last_used_at"] or r["last_used_at"][:10] != today:  # one write a day, not one a request
        with db.conn:
            db.execute("UPDATE api_tokens SET last_used_at = ? WHERE name = ?", [_now_iso(), r["name"]])
    return r["name"], r["scopes"].split(",")
