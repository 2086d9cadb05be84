"""The gateway's SQLite database: the office's canonical data.

Opened through sqlite-utils, in WAL mode with ``synchronous=FULL`` (an ack
is a promise that the event survives a power cut). The schema is built by
numbered migrations; ``PRAGMA user_version`` records how far a database has
come, so an old gateway database is upgraded in place at start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

import sqlite_utils


def _m1_events_and_nodes(db: sqlite_utils.Database) -> None:
    common = {
        "event_id": str,
        "node_id": str,
        "seq": int,
        "ts": str,
        "local_date": str,  # the event's date in the office's zone, for reports
        "clock_synced": int,
        "received_at": str,
        "payload": str,  # the event as received, unknown fields included
    }
    db["attendance_events"].create(
        {**common, "method": str, "credential": str, "staff_id": str, "match_score": int},
        pk="event_id",
        if_not_exists=True,
        not_null={"node_id", "seq", "ts", "local_date", "clock_synced", "received_at", "payload", "method", "credential"},
    )
    db["rating_events"].create(
        {
            **common,
            "desk_id": str,
            "level": str,
            "reasons": str,  # JSON list
            "session_id": str,
            "officer_id": str,
            "dossier_code": str,
        },
        pk="event_id",
        if_not_exists=True,
        not_null={"node_id", "seq", "ts", "local_date", "clock_synced", "received_at", "payload", "desk_id", "level"},
    )
    for table in ("attendance_events", "rating_events"):
        db[table].create_index(["local_date"], if_not_exists=True)
        db[table].create_index(["node_id", "seq"], if_not_exists=True)
    db["nodes"].create(
        {
            "node_id": str,
            "kind": str,
            "state": str,  # online / offline, from the retained status
            "version": str,
            "since": str,
            "last_seen": str,  # gateway time of the last message of any kind
            "last_health": str,  # the last health payload, JSON
            "outbox": int,
            "clock_synced": int,
            "devices": str,  # JSON {name: ok|missing|error}
            "rejected": int,
            "last_rejection": str,
        },
        pk="node_id",
        defaults={"rejected": 0},
        if_not_exists=True,
    )
    db["rejections"].create(
        {"id": int, "at": str, "sender": str, "topic": str, "reason": str},
        pk="id",
        if_not_exists=True,
    )
    db["command_replies"].create(
        {"cmd_id": str, "node_id": str, "ok": int, "result": str, "error": str, "received_at": str},
        pk="cmd_id",
        if_not_exists=True,
    )


def _m2_state_and_commands(db: sqlite_utils.Database) -> None:
    from . import commands, state

    state.migrate(db)
    commands.migrate(db)


def _m3_staff(db: sqlite_utils.Database) -> None:
    from . import staff

    staff.migrate(db)


def _m4_public_boards(db: sqlite_utils.Database) -> None:
    from . import announcements, dossiers, work_calendar

    dossiers.migrate(db)
    work_calendar.migrate(db)
    announcements.migrate(db)


def _m5_ratings(db: sqlite_utils.Database) -> None:
    from . import ratings

    ratings.migrate(db)


def _m6_node_alerts(db: sqlite_utils.Database) -> None:
    from . import registry

    registry.migrate(db)


# Append only: never edit a migration that has shipped.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m1_events_and_nodes,
    _m2_state_and_commands,
    _m3_staff,
    _m4_public_boards,
    _m5_ratings,
    _m6_node_alerts,
]


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) the gateway database."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database) -> int:
    """Apply pending migrations, each in its own transaction; return the new version."""
    current = schema_version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {current} is newer than this congso knows ({len(MIGRATIONS)}): upgrade congso"
        )
    for number, migration in enumerate(MIGRATIONS[current:], start=current + 1):
        # Each migration is written to be re-runnable (IF NOT EXISTS), so one
        # cut short by a power loss simply runs again at the next start.
        migration(db)
        db.execute(f"PRAGMA user_version={number}")
        db.conn.commit()
    return schema_version(db)


def open_readonly(path: str | Path) -> sqlite_utils.Database:
    """For reports and exports while the gateway runs (WAL lets both work)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no gateway database at {path}: has `congso gateway run` ever run with this data dir?")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    return sqlite_utils.Database(conn)
