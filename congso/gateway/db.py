"""The gateway's SQLite database: the office's canonical data.

Opened through sqlite-utils, in WAL mode with ``synchronous=FULL`` (an ack
is a promise that the event survives a power cut). The schema is built by
the named, frozen migrations of ``schema.py``, recorded in the database, so
an old gateway database is upgraded in place at start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from . import schema


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


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations this database has not had (``schema.py``); return their names."""
    return schema.migrate(db.conn)


def open_readonly(path: str | Path) -> sqlite_utils.Database:
    """For reports and exports while the gateway runs (WAL lets both work)."""
    path = Path(path)
    # Never create it: a wrong [data] dir must say so, not show an empty office.
    if not path.is_file() or path.stat().st_size == 0:
        raise FileNotFoundError(
            f"no gateway database at {path}: is [data] dir (CONGSO_DATA_DIR) right, "
            "and has `congso gateway run` ever run with it?")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    return sqlite_utils.Database(conn)
