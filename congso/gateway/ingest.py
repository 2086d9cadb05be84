"""Ingest: a batch of MQTT messages from the nodes becomes one transaction.

Events are inserted with ``event_id`` as primary key (``INSERT OR IGNORE``:
a duplicate is a no-op), the node registry is updated from status and
health, command replies are kept for the CLI that sent the command, and bad
messages are counted per sender. The caller publishes the acks only after
``process`` returned, i.e. after the commit.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlite_utils

from ..protocol import clock, messages, topics
from ..protocol.link import Incoming
from ..protocol.rejects import RejectLog

log = logging.getLogger(__name__)

MAX_REJECTIONS_KEPT = 1000

_ATTENDANCE_SQL = (
    "INSERT OR IGNORE INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
    "method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_RATING_SQL = (
    "INSERT OR IGNORE INTO rating_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
    "desk_id, level, reasons, session_id, officer_id, dossier_code) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass
class BatchResult:
    acks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stored: int = 0  # new events inserted
    duplicates: int = 0
    rejected: int = 0
    replies: list[dict] = field(default_factory=list)  # command replies stored in this batch
    events: int = 0  # new attendance and rating rows (for the state publisher)


class Ingest:
    def __init__(self, db: sqlite_utils.Database, site: str, tz: str, rejects: RejectLog | None = None):
        self.db = db
        self.site = site
        self.zone = ZoneInfo(tz)
        self.tz = tz
        self.rejects = rejects or RejectLog(log)
        self.totals = {"stored": 0, "duplicates": 0, "rejected": 0}

    def _local_date(self, ts: str) -> str:
        return messages.parse_ts(ts).astimezone(self.zone).date().isoformat()

    def process(self, items: list[Incoming]) -> BatchResult:
        """Validate and store a batch in one transaction. Never raises on bad input."""
        now = clock.now_iso(self.tz)
        result = BatchResult()
        attendance_rows: list[tuple] = []
        rating_rows: list[tuple] = []
        seen: dict[str, dict] = {}  # node_id -> registry columns to update
        replies: list[dict] = []
        rejections: list[tuple[str, str, str]] = []

        for item in items:
            # Who sent it: the topic's node level (the ACL vouches for it).
            parts = item.topic.split("/")
            sender = parts[3] if len(parts) > 3 and topics.NODE_ID_RE.match(parts[3]) else "unknown"
            try:
                where = topics.parse(item.topic)
                if where.kind != "node" or where.site != self.site:
                    raise messages.MessageError("topic", None, f"not a node topic of site {self.site}: {item.topic}")
                sender = where.node
                kind = where.leaf
                msg = messages.decode(kind, item.payload)
                if kind != "reply" and msg["node_id"] != sender:
                    raise messages.MessageError(
                        kind, "node_id", f"{msg['node_id']!r} does not match the topic's node {sender!r}"
                    )
            except (ValueError, messages.MessageError) as e:
                rejections.append((sender, item.topic, str(e)))
                continue

            update = seen.setdefault(sender, {})
            update["last_seen"] = now
            # Stored in lower case so that one event in two spellings is still
            # one row; acked in the sender's own spelling.
            if kind == "attendance":
                attendance_rows.append(
                    (
                        msg["event_id"].lower(), sender, msg["seq"], msg["ts"], self._local_date(msg["ts"]),
                        int(msg["clock_synced"]), now, item.payload.decode("utf-8"),
                        msg["method"], msg["credential"], msg["staff_id"], msg["match_score"],
                    )
                )
                result.acks[sender].append(msg["event_id"])
            elif kind == "rating":
                rating_rows.append(
                    (
                        msg["event_id"].lower(), sender, msg["seq"], msg["ts"], self._local_date(msg["ts"]),
                        int(msg["clock_synced"]), now, item.payload.decode("utf-8"),
                        msg["desk_id"], msg["level"], json.dumps(msg["reasons"], ensure_ascii=False),
                        msg["session_id"], msg["officer_id"], msg["dossier_code"],
                    )
                )
                result.acks[sender].append(msg["event_id"])
            elif kind == "status":
                update.update(kind=msg["kind"], state=msg["state"], version=msg["version"], since=msg["since"])
            elif kind == "health":
                update.update(
                    last_health=item.payload.decode("utf-8"),
                    outbox=msg["outbox"],
                    clock_synced=int(msg["clock_synced"]),
                    devices=json.dumps(msg["devices"], ensure_ascii=False),
                )
            elif kind == "reply":
                replies.append(
                    {
                        "cmd_id": msg["cmd_id"],
                        "node_id": sender,
                        "ok": int(msg["ok"]),
                        "result": json.dumps(msg["result"], ensure_ascii=False) if msg["result"] is not None else None,
                        "error": msg["error"],
                        "received_at": now,
                    }
                )

        conn = self.db.conn
        with conn:  # one transaction: commit here, or roll back on error
            before = conn.total_changes
            conn.executemany(_ATTENDANCE_SQL, attendance_rows)
            conn.executemany(_RATING_SQL, rating_rows)
            result.stored = conn.total_changes - before
            for node_id, cols in seen.items():
                self._upsert_node(conn, node_id, cols)
            for r in replies:
                conn.execute(
                    "INSERT OR REPLACE INTO command_replies(cmd_id, node_id, ok, result, error, received_at) "
                    "VALUES (:cmd_id, :node_id, :ok, :result, :error, :received_at)",
                    r,
                )
            for sender, topic, reason in rejections:
                conn.execute(
                    "INSERT INTO rejections(at, sender, topic, reason) VALUES (?,?,?,?)", (now, sender, topic, reason)
                )
                conn.execute(
                    "INSERT INTO nodes(node_id, rejected, last_rejection) VALUES (?, 1, ?) "
                    "ON CONFLICT(node_id) DO UPDATE SET rejected = coalesce(rejected, 0) + 1, last_rejection = excluded.last_rejection",
                    (sender, f"{now} {reason}"),
                )
            if rejections:
                conn.execute(
                    "DELETE FROM rejections WHERE id <= (SELECT max(id) FROM rejections) - ?", (MAX_REJECTIONS_KEPT,)
                )
        for sender, topic, reason in rejections:
            self.rejects.reject(sender, topic, reason)

        result.replies = replies
        result.rejected = len(rejections)
        result.duplicates = len(attendance_rows) + len(rating_rows) - result.stored
        for key in ("stored", "duplicates", "rejected"):
            self.totals[key] += getattr(result, key)
        return result

    @staticmethod
    def _upsert_node(conn, node_id: str, cols: dict) -> None:
        names = ["node_id", *cols]
        marks = ",".join("?" * len(names))
        updates = ",".join(f"{c}=excluded.{c}" for c in cols)
        conn.execute(
            f"INSERT INTO nodes({','.join(names)}) VALUES ({marks}) ON CONFLICT(node_id) DO UPDATE SET {updates}",
            [node_id, *cols.values()],
        )
