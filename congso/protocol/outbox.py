"""The node's durable outbox: events wait here until the gateway acks them.

The promise (wire contract, "Delivery guarantee"): ``add`` returns only after
the event is committed to SQLite (WAL, ``synchronous=FULL``), and the node
gives the person feedback only after ``add`` returned. A row leaves
``outbox`` only when its event id comes back on ``congso/<site>/ack/<node>``;
it then moves to ``acked`` and is kept for ``[outbox] keep_acked_days``, so
that a gateway restored from an older backup can ask for it again
(``resend``, docs/protocol.md). ``outbox`` holds only what is unacked.

``seq`` is the node's event counter. It is kept in its own table, in the same
transaction as the event, so it keeps increasing after acked rows are
deleted and across restarts.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import messages


class OutboxError(RuntimeError):
    """The event could not be stored (disk full, database broken): give no success feedback."""


@dataclass(frozen=True)
class PendingEvent:
    seq: int
    event_id: str
    kind: str  # "attendance" or "rating"
    payload: bytes


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS acked (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    acked_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS acked_at ON acked(acked_at);
"""

# Pruning the kept events at most this often (it is a range delete on an index).
PRUNE_EVERY_S = 600.0


class Outbox:
    """Durable queue of unacked events for one node. Thread-safe."""

    def __init__(self, path: str | Path, node_id: str, keep_acked_days: float = 35.0):
        self.path = Path(path)
        self.node_id = node_id
        self.keep_acked_s = max(0.0, float(keep_acked_days)) * 86400
        self._pruned_at = float("-inf")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on the disk before add() returns, even on power loss.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, kind: str, fields: dict, ts: str, clock_synced: bool) -> dict:
        """Build, validate and durably store one event; return it.

        Raises ``MessageError`` for fields the contract rejects and
        ``OutboxError`` when the event could not be committed.
        """
        if kind not in messages.EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event = {
            "v": messages.VERSION,
            "event_id": str(uuid.uuid4()),
            "node_id": self.node_id,
            "ts": ts,
            "clock_synced": clock_synced,
            "seq": 0,  # replaced inside the transaction
            **fields,
        }
        messages.validate(kind, event)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute("SELECT value FROM counter WHERE name='seq'").fetchone()
                seq = (row[0] if row else 0) + 1
                event["seq"] = seq
                payload = messages.encode(kind, event)
                self._db.execute(
                    "INSERT INTO counter(name, value) VALUES('seq', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                    (seq,),
                )
                self._db.execute(
                    "INSERT INTO outbox(seq, event_id, kind, payload, created_at) VALUES(?,?,?,?,?)",
                    (seq, event["event_id"], kind, payload, time.time()),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise OutboxError(f"could not store the event in {self.path}: {e}") from e
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return event

    def after(self, seq: int, limit: int) -> list[PendingEvent]:
        """Up to ``limit`` unacked events with a seq greater than ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [PendingEvent(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def get(self, event_ids: Iterable[str]) -> list[PendingEvent]:
        ids = list(event_ids)
        out: list[PendingEvent] = []
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                out += [
                    PendingEvent(r[0], r[1], r[2], bytes(r[3]))
                    for r in self._db.execute(
                        f"SELECT seq, event_id, kind, payload FROM outbox WHERE event_id IN ({marks}) ORDER BY seq",
                        chunk,
                    )
                ]
        return out

    def ack(self, event_ids: Iterable[str]) -> int:
        """Move acked events out of the outbox (kept in ``acked``); return how many left it (unknown ids are ignored)."""
        ids = list(event_ids)
        if not ids:
            return 0
        removed = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    if self.keep_acked_s > 0:
                        self._db.execute(
                            "INSERT OR IGNORE INTO acked(seq, event_id, kind, payload, created_at, acked_at) "
                            f"SELECT seq, event_id, kind, payload, created_at, ? FROM outbox WHERE event_id IN ({marks})",
                            [time.time(), *chunk],
                        )
                    removed += self._db.execute(f"DELETE FROM outbox WHERE event_id IN ({marks})", chunk).rowcount
                if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                    self._pruned_at = time.monotonic()
                    self._db.execute("DELETE FROM acked WHERE acked_at < ?", (time.time() - self.keep_acked_s,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return removed

    def acked_after(self, seq: int, limit: int) -> list[PendingEvent]:
        """Up to ``limit`` acked events still kept, with a seq greater than ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, kind, payload FROM acked WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        return [PendingEvent(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def kept_summary(self, after_seq: int) -> dict:
        """For a ``resend`` reply: what this node can send again after ``after_seq``."""
        with self._lock:
            acked, oldest = self._db.execute("SELECT count(*) FILTER (WHERE seq > ?), min(seq) FROM acked", (after_seq,)).fetchone()
            unacked, oldest_unacked = self._db.execute("SELECT count(*), min(seq) FROM outbox").fetchone()
        kept = [s for s in (oldest, oldest_unacked) if s is not None]
        return {"acked_kept": acked, "unacked": unacked, "oldest_kept_seq": min(kept) if kept else None}

    # A resend in progress survives a restart of the node: its cursor is a counter.
    def resend_cursor(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM counter WHERE name='resend'").fetchone()
        return row[0] if row else None

    def set_resend_cursor(self, seq: int | None) -> None:
        with self._lock:
            if seq is None:
                self._db.execute("DELETE FROM counter WHERE name='resend'")
            else:
                self._db.execute(
                    "INSERT INTO counter(name, value) VALUES('resend', ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                    (seq,),
                )

    def depth(self) -> int:
        """Unacked events (what health reports as ``outbox``); kept acked ones do not count."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counter WHERE name='seq'").fetchone()
        return row[0] if row else 0

    def oldest_age_s(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT min(created_at) FROM outbox").fetchone()
        return None if row[0] is None else max(0.0, time.time() - row[0])


def peek(path: str | Path, limit: int = 20) -> list[dict]:
    """Read-only look at an outbox file (for `congso status` and tests)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [json.loads(bytes(r[0])) for r in db.execute("SELECT payload FROM outbox ORDER BY seq LIMIT ?", (limit,))]
    finally:
        db.close()
