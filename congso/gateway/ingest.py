"""Ingest: a batch of MQTT messages from the nodes becomes one transaction.

Events are inserted with ``event_id`` as primary key (``INSERT OR IGNORE``:
a duplicate is a no-op), the node registry is updated from status and
health, command replies are kept for the CLI that sent the command, and bad
messages are counted per sender. The caller publishes the acks only after
``process`` returned, i.e. after the commit.

What a node may say is checked against what the registry knows of it: its
kind is the one of its first status, and a status claiming another kind is
refused; an attendance event only from an attendance node, a rating only
from a rating node (a TV or a kiosk in the public hall must not change a
timesheet); a
reply only to a command sent to it and not yet settled (``commands``); a
``progress`` step (an addition) only for a command sent to that very node,
kept in ``command_progress`` and answered by nothing. An
event whose time is far from its arrival (``[gateway] max_ahead_h``,
``max_behind_days``) is stored with ``time_flag`` set, which the reports
show. Signs of two devices using one node id (the same ``seq`` with another
event id, the uptime going back again and again) are kept on the node's
row for the registry's alert.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlite_utils

from ..protocol import clock, messages, topics
from ..protocol.link import Incoming
from ..protocol.rejects import RejectLog
from . import commands, duty, privacy

log = logging.getLogger(__name__)

MAX_REJECTIONS_KEPT = 1000
# Which node kind may send which event (as the registry knows the node).
EVENT_FROM = {"attendance": "attendance", "rating": "rating", "play": "signage", "duty": "rating"}
# Two devices with one id: their uptimes interleave, so a node's uptime goes
# back and then *up again past where it was* (the other program is back).
# A restart, even a crash loop, only ever goes back.
UPTIME_ALTERNATIONS = 2
UPTIME_WINDOW_S = 120.0

_ATTENDANCE_SQL = (
    "INSERT OR IGNORE INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
    "method, credential, staff_id, match_score, time_flag) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_RATING_SQL = (
    "INSERT OR IGNORE INTO rating_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
    "desk_id, level, reasons, session_id, officer_id, dossier_code, time_flag) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)

_PLAY_SQL = (
    "INSERT OR IGNORE INTO play_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
    "item_type, item_id, seconds, title, media_sha256, time_flag) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_DUTY_SQL = (
    "INSERT OR IGNORE INTO duty_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
    "desk_id, action, staff_id, card_hash, time_flag) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass
class BatchResult:
    acks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stored: int = 0  # new events inserted
    duplicates: int = 0
    rejected: int = 0
    ignored_replies: int = 0  # for no command sent and unsettled: made up, replayed, redelivered
    replies: list[dict] = field(default_factory=list)  # command replies stored in this batch
    events: int = 0  # new attendance and rating rows (for the state publisher)
    duty_changed: bool = False  # a card tap changed who holds a desk (state/duty to publish)


class Ingest:
    def __init__(self, db: sqlite_utils.Database, site: str, tz: str, rejects: RejectLog | None = None,
                 max_ahead_h: float = 24.0, max_behind_days: float = 35.0):
        self.db = db
        self.site = site
        self.zone = ZoneInfo(tz)
        self.tz = tz
        self.rejects = rejects or RejectLog(log)
        self.max_ahead = timedelta(hours=max_ahead_h)
        self.max_behind = timedelta(days=max_behind_days)
        self.totals = {"stored": 0, "duplicates": 0, "rejected": 0, "ignored_replies": 0}
        self._uptime: dict[str, float] = {}
        self._peak_before_drop: dict[str, float] = {}  # uptime just before it last went back
        self._alternations: dict[str, deque] = defaultdict(deque)
        self._warned_duplicate: dict[str, float] = {}

    def _known_kinds(self) -> dict[str, str]:
        # Read at every batch (a few dozen rows): `congso gateway forget-node`
        # in another process removes a row, and this must see it.
        return {r[0]: r[1] for r in self.db.execute("SELECT node_id, kind FROM nodes WHERE kind IS NOT NULL")}

    def _time_flag(self, ts: str, arrived) -> str | None:
        """"ahead"/"behind" for an event time far from its arrival (a node clock gone wrong), else None."""
        when = messages.parse_ts(ts)
        if when - arrived > self.max_ahead:
            return "ahead"
        if arrived - when > self.max_behind:
            return "behind"
        return None

    def _uptime_went_back(self, node_id: str, uptime_s: float) -> str | None:
        last = self._uptime.get(node_id)
        self._uptime[node_id] = uptime_s
        if last is None:
            return None
        if uptime_s < last - 1.0:
            self._peak_before_drop[node_id] = last
            return None
        peak = self._peak_before_drop.get(node_id)
        if peak is None or uptime_s <= peak:
            return None
        del self._peak_before_drop[node_id]  # back above the drop: the first program again
        now = time.monotonic()
        times = self._alternations[node_id]
        times.append(now)
        while times and now - times[0] > UPTIME_WINDOW_S:
            times.popleft()
        if len(times) >= UPTIME_ALTERNATIONS:
            return (f"its uptime went back and up again {len(times)} times within {UPTIME_WINDOW_S:.0f} s "
                    "(two programs taking turns)")
        return None

    def _local_date(self, ts: str) -> str:
        return messages.parse_ts(ts).astimezone(self.zone).date().isoformat()

    def process(self, items: list[Incoming]) -> BatchResult:
        """Validate and store a batch in one transaction. Never raises on bad input."""
        arrived = clock.now(self.tz)
        now = arrived.isoformat(timespec="milliseconds")
        result = BatchResult()
        kinds = self._known_kinds()
        duplicate: dict[str, str] = {}  # node_id -> evidence of a second device with its id
        batch_seqs: dict[tuple[str, int], str] = {}
        attendance_rows: list[tuple] = []
        rating_rows: list[tuple] = []
        play_rows: list[tuple] = []
        duty_rows: list[tuple] = []
        seen: dict[str, dict] = {}  # node_id -> registry columns to update
        replies: list[dict] = []
        progress: list[tuple[str, str, str, str]] = []  # (cmd_id, node_id, step, at)
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
                if kind not in ("reply", "progress") and msg["node_id"] != sender:
                    raise messages.MessageError(
                        kind, "node_id", f"{msg['node_id']!r} does not match the topic's node {sender!r}"
                    )
                if kind in EVENT_FROM and kinds.get(sender, EVENT_FROM[kind]) != EVENT_FROM[kind]:
                    raise messages.MessageError(
                        kind, None, f"{sender} is a {kinds[sender]} node: {kind} events come only from {EVENT_FROM[kind]} nodes"
                    )
                if kind == "status" and kinds.get(sender) not in (None, msg["kind"]):
                    # The kind is pinned at first sight: a TV in the public hall
                    # must not make itself a door by saying so.
                    raise messages.MessageError(
                        kind, "kind", f"{sender} is registered as a {kinds[sender]} node; a status saying "
                        f"{msg['kind']!r} is refused (a device given another role: congso gateway forget-node {sender})"
                    )
            except (ValueError, messages.MessageError) as e:
                rejections.append((sender, item.topic, str(e)))
                continue

            update = seen.setdefault(sender, {})
            update["last_seen"] = now
            # Stored in lower case so that one event in two spellings is still
            # one row; acked in the sender's own spelling.
            if kind in EVENT_FROM:
                event_id = msg["event_id"].lower()
                evidence = self._seq_collision(kind, sender, msg["seq"], event_id, batch_seqs)
                if evidence:
                    duplicate[sender] = evidence
                common = (event_id, sender, msg["seq"], msg["ts"], self._local_date(msg["ts"]),
                          int(msg["clock_synced"]), now, item.payload.decode("utf-8"))
                flag = self._time_flag(msg["ts"], arrived)
                if kind == "attendance":
                    attendance_rows.append(
                        (*common, msg["method"], msg["credential"], msg["staff_id"], msg["match_score"], flag)
                    )
                elif kind == "play":
                    play_rows.append((*common, msg["item_type"], msg["item_id"], float(msg["seconds"]), msg["title"],
                                      msg["media_sha256"], flag))
                elif kind == "duty":
                    duty_rows.append((*common, msg["desk_id"], msg["action"], msg["staff_id"], msg["card_hash"], flag))
                else:
                    rating_rows.append(
                        (*common, msg["desk_id"], msg["level"], json.dumps(msg["reasons"], ensure_ascii=False),
                         msg["session_id"], msg["officer_id"], msg["dossier_code"], flag)
                    )
                result.acks[sender].append(msg["event_id"])
            elif kind == "status":
                update.update(kind=msg["kind"], state=msg["state"], version=msg["version"], since=msg["since"])
                kinds[sender] = msg["kind"]
            elif kind == "health":
                update.update(
                    last_health=item.payload.decode("utf-8"),
                    outbox=msg["outbox"],
                    clock_synced=int(msg["clock_synced"]),
                    devices=json.dumps(msg["devices"], ensure_ascii=False),
                    interval_s=msg["interval_s"],
                )
                evidence = self._uptime_went_back(sender, float(msg["uptime_s"]))
                if evidence:
                    duplicate[sender] = evidence
            elif kind == "progress":
                # A step of a running enrolment (an addition, docs/protocol.md §3.8.1): kept for the
                # console's progress page, answered by nothing.
                progress.append((msg["cmd_id"], sender, msg["step"], now))
            elif kind == "reply":
                if any(r["cmd_id"] == msg["cmd_id"] for r in replies):
                    result.ignored_replies += 1  # the same reply twice in one batch
                    continue
                replies.append(
                    {
                        "cmd_id": msg["cmd_id"],
                        "node_id": sender,
                        "ok": int(msg["ok"]),
                        # A fingerprint template (export_finger) is stored sealed (privacy.py).
                        "result": json.dumps(privacy.sealed_reply_result(self.db, msg["result"]), ensure_ascii=False)
                        if msg["result"] is not None else None,
                        "error": msg["error"],
                        "received_at": now,
                    }
                )

        for node_id, evidence in duplicate.items():
            seen.setdefault(node_id, {"last_seen": now}).update(duplicate_at=now, duplicate_evidence=evidence)
            if time.monotonic() - self._warned_duplicate.get(node_id, -1e9) > 60:
                self._warned_duplicate[node_id] = time.monotonic()
                log.warning("two devices use the id %s: %s", node_id, evidence)

        conn = self.db.conn
        stored_replies = []
        with conn:  # one transaction: commit here, or roll back on error
            before = conn.total_changes
            conn.executemany(_ATTENDANCE_SQL, attendance_rows)
            conn.executemany(_RATING_SQL, rating_rows)
            conn.executemany(_PLAY_SQL, play_rows)
            new_duty = []
            for row in duty_rows:  # one by one: only the new ones change who holds a desk
                if conn.execute(_DUTY_SQL, row).rowcount:
                    new_duty.append(row[0])
            result.stored = conn.total_changes - before
            for node_id, cols in seen.items():
                self._upsert_node(conn, node_id, cols)
            # After the registry: a kiosk's health in this very batch says which desk it rates.
            result.duty_changed = duty.apply_taps(conn, new_duty)
            for r in replies:
                # Only the first answer to a command we sent this node counts.
                if not commands.settle_reply(conn, r["cmd_id"], r["node_id"], bool(r["ok"]), now):
                    result.ignored_replies += 1
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO command_replies(cmd_id, node_id, ok, result, error, received_at) "
                    "VALUES (:cmd_id, :node_id, :ok, :result, :error, :received_at)",
                    r,
                )
                stored_replies.append(r)
            for cmd_id, node_id, step, at in progress:
                # A node speaks only for itself: only a command sent to that very node gets its steps.
                conn.execute(
                    "INSERT OR IGNORE INTO command_progress(cmd_id, step, at) SELECT ?, ?, ? "
                    "WHERE EXISTS (SELECT 1 FROM outgoing_commands WHERE cmd_id = ? AND node_id = ? AND sent_at IS NOT NULL)",
                    (cmd_id, step, at, cmd_id, node_id),
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

        if result.ignored_replies:
            log.info("ignored %d replies to no command sent and unsettled (made up, replayed or redelivered)",
                     result.ignored_replies)
        result.replies = stored_replies
        result.rejected = len(rejections)
        result.duplicates = len(attendance_rows) + len(rating_rows) + len(play_rows) + len(duty_rows) - result.stored
        for key in ("stored", "duplicates", "rejected", "ignored_replies"):
            self.totals[key] += getattr(result, key)
        return result

    def _seq_collision(self, kind: str, node_id: str, seq: int, event_id: str,
                       batch_seqs: dict[tuple[str, int], str]) -> str | None:
        """Evidence of a second device with this id: its ``seq`` already belongs to another event."""
        other = batch_seqs.setdefault((node_id, seq), event_id)
        if other == event_id:
            row = self.db.execute(
                f"SELECT event_id FROM {kind}_events WHERE node_id=? AND seq=? AND event_id<>? LIMIT 1",
                (node_id, seq, event_id),
            ).fetchone()
            other = row[0] if row else event_id
        if other == event_id:
            return None
        return (f"seq {seq} came with two different events ({other} and {event_id}); "
                "or this node's outbox was wiped and it counts from 1 again")

    @staticmethod
    def _upsert_node(conn, node_id: str, cols: dict) -> None:
        names = ["node_id", *cols]
        marks = ",".join("?" * len(names))
        updates = ",".join(f"{c}=excluded.{c}" for c in cols)
        conn.execute(
            f"INSERT INTO nodes({','.join(names)}) VALUES ({marks}) ON CONFLICT(node_id) DO UPDATE SET {updates}",
            [node_id, *cols.values()],
        )
