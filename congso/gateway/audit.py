"""The audit log: who changed what and when, through the console or the CLI.

Kept in the gateway database and never pruned (a commune keeps its records
for years, and a row is about 150 bytes). ``actor`` is the console user or
the Unix user who ran the CLI; ``via`` is ``web``, ``api`` (a token's
name is the actor) or ``cli``. ``detail`` is short text a head of office
can read (what the new values are), never a password or a token.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import date, datetime, timedelta, timezone

import sqlite_utils

from ..vocab import text as text_mod

VIAS = ("web", "api", "cli", "gateway")  # gateway: its own scheduled work (retention)
MAX_DETAIL = 2000


def _now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def cli_actor() -> str:
    """The Unix user behind a CLI change (sudo's caller when run under sudo)."""
    for var in ("SUDO_USER", "LOGNAME", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (a container): the uid says enough
        return f"uid {os.getuid()}"


def _detail(detail) -> str | None:
    if detail is None:
        return None
    if not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    detail = text_mod.printable(detail)
    return detail[:MAX_DETAIL]


def record(db: sqlite_utils.Database, *, actor: str, via: str, action: str,
           target: str | None = None, detail=None) -> None:
    """Write one audit row (in its own transaction when none is open)."""
    if via not in VIAS:
        raise ValueError(f"via must be one of {VIAS}")
    row = [_now_iso(), text_mod.printable(actor)[:100], via, action, None if target is None else text_mod.printable(str(target))[:200], _detail(detail)]
    sql = "INSERT INTO audit_log(at, actor, via, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)"
    if db.conn.in_transaction:
        db.execute(sql, row)
    else:
        with db.conn:
            db.execute(sql, row)


def record_cli(db: sqlite_utils.Database, action: str, target: str | None = None, detail=None) -> None:
    record(db, actor=cli_actor(), via="cli", action=action, target=target, detail=detail)


def search(db: sqlite_utils.Database, q: str | None = None, *, actor: str | None = None,
           day_from: str | None = None, day_to: str | None = None,
           limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    """Newest first; ``q`` matches the action, the target or the detail. Returns (rows, total)."""
    where, args = [], []
    if q:
        like = f"%{q.strip()}%"
        where.append("(action LIKE ? OR target LIKE ? OR detail LIKE ? OR actor LIKE ?)")
        args += [like, like, like, like]
    if actor:
        where.append("actor = ?")
        args.append(actor)
    # Plain comparisons on ``at`` (ISO text, date first) so the index on it is used.
    if day_from:
        where.append("at >= ?")
        args.append(day_from)
    if day_to:
        where.append("at < ?")
        args.append((date.fromisoformat(day_to) + timedelta(days=1)).isoformat())
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    total = db.execute(f"SELECT count(*) FROM audit_log {clause}", args).fetchone()[0]
    rows = [dict(r) for r in db.query(
        f"SELECT id, at, actor, via, action, target, detail FROM audit_log {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*args, int(limit), int(offset)])]
    return rows, total
