"""The gateway database's schema history: named, ordered, frozen migrations.

Each migration is a name and the SQL (or, for a data migration, a function)
that takes a database from the migration before it to this one. The names
applied are recorded in ``schema_migrations``; a database is upgraded in
place at start by applying, in order, the ones it has not had.

Rules, so that every office's database can always be upgraded:

- A migration that has shipped in a release is never edited, renamed,
  reordered or removed. Fix a mistake with a new migration.
- New migrations go at the end of ``MIGRATIONS``.
- No code elsewhere creates a table "if it is missing" or asks whether a
  table exists: the schema is exactly what these migrations made.

0.1.0 recorded its progress as ``PRAGMA user_version`` (1..6) instead of by
name; a database from it has its first ``user_version`` migrations recorded
as applied the first time a newer congso opens it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str = ""
    # For data migrations: runs inside the same transaction, after ``sql``.
    fn: Callable[[sqlite3.Connection], None] | None = None


class SchemaError(RuntimeError):
    """The database's schema is not one this congso can work with."""


# -- 0.1.0: the schema as released, frozen ------------------------------------------

_0001 = """
CREATE TABLE IF NOT EXISTS "attendance_events" (
   "event_id" TEXT PRIMARY KEY,
   "node_id" TEXT NOT NULL,
   "seq" INTEGER NOT NULL,
   "ts" TEXT NOT NULL,
   "local_date" TEXT NOT NULL,
   "clock_synced" INTEGER NOT NULL,
   "received_at" TEXT NOT NULL,
   "payload" TEXT NOT NULL,
   "method" TEXT NOT NULL,
   "credential" TEXT NOT NULL,
   "staff_id" TEXT,
   "match_score" INTEGER
);
CREATE TABLE IF NOT EXISTS "rating_events" (
   "event_id" TEXT PRIMARY KEY,
   "node_id" TEXT NOT NULL,
   "seq" INTEGER NOT NULL,
   "ts" TEXT NOT NULL,
   "local_date" TEXT NOT NULL,
   "clock_synced" INTEGER NOT NULL,
   "received_at" TEXT NOT NULL,
   "payload" TEXT NOT NULL,
   "desk_id" TEXT NOT NULL,
   "level" TEXT NOT NULL,
   "reasons" TEXT,
   "session_id" TEXT,
   "officer_id" TEXT,
   "dossier_code" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_attendance_events_local_date" ON "attendance_events" ("local_date");
CREATE INDEX IF NOT EXISTS "idx_attendance_events_node_id_seq" ON "attendance_events" ("node_id", "seq");
CREATE INDEX IF NOT EXISTS "idx_rating_events_local_date" ON "rating_events" ("local_date");
CREATE INDEX IF NOT EXISTS "idx_rating_events_node_id_seq" ON "rating_events" ("node_id", "seq");
CREATE TABLE IF NOT EXISTS "nodes" (
   "node_id" TEXT PRIMARY KEY,
   "kind" TEXT,
   "state" TEXT,
   "version" TEXT,
   "since" TEXT,
   "last_seen" TEXT,
   "last_health" TEXT,
   "outbox" INTEGER,
   "clock_synced" INTEGER,
   "devices" TEXT,
   "rejected" INTEGER DEFAULT 0,
   "last_rejection" TEXT
);
CREATE TABLE IF NOT EXISTS "rejections" (
   "id" INTEGER PRIMARY KEY,
   "at" TEXT,
   "sender" TEXT,
   "topic" TEXT,
   "reason" TEXT
);
CREATE TABLE IF NOT EXISTS "command_replies" (
   "cmd_id" TEXT PRIMARY KEY,
   "node_id" TEXT,
   "ok" INTEGER,
   "result" TEXT,
   "error" TEXT,
   "received_at" TEXT
);
"""

_0002 = """
CREATE TABLE IF NOT EXISTS "published_state" (
   "name" TEXT PRIMARY KEY,
   "version" INTEGER,
   "digest" TEXT,
   "published_at" TEXT,
   "payload" TEXT
);
CREATE TABLE IF NOT EXISTS "outgoing_commands" (
   "cmd_id" TEXT PRIMARY KEY,
   "node_id" TEXT,
   "cmd" TEXT,
   "args" TEXT,
   "queued_at" TEXT,
   "sent_at" TEXT,
   "context" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_outgoing_commands_sent_at" ON "outgoing_commands" ("sent_at");
"""

_0003 = """
CREATE TABLE IF NOT EXISTS "staff" (
   "staff_id" TEXT PRIMARY KEY,
   "name" TEXT NOT NULL,
   "department" TEXT,
   "position" TEXT,
   "active" INTEGER NOT NULL DEFAULT 1,
   "added_at" TEXT
);
CREATE TABLE IF NOT EXISTS "staff_cards" (
   "uid" TEXT PRIMARY KEY,
   "staff_id" TEXT NOT NULL,
   "assigned_at" TEXT
);
CREATE TABLE IF NOT EXISTS "finger_slots" (
   "node_id" TEXT,
   "slot" INTEGER,
   "staff_id" TEXT NOT NULL,
   "enrolled_at" TEXT,
   "source_node" TEXT,
   PRIMARY KEY ("node_id", "slot")
);
CREATE TABLE IF NOT EXISTS "holidays" (
   "day" TEXT PRIMARY KEY,
   "name" TEXT NOT NULL
);
"""

_0004 = """
CREATE TABLE IF NOT EXISTS "dossiers" (
   "code" TEXT PRIMARY KEY,
   "applicant" TEXT NOT NULL,
   "procedure" TEXT NOT NULL,
   "received_at" TEXT NOT NULL,
   "due_at" TEXT,
   "status" TEXT NOT NULL,
   "desk" TEXT,
   "status_changed_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_dossiers_status" ON "dossiers" ("status");
CREATE TABLE IF NOT EXISTS "dossier_history" (
   "id" INTEGER PRIMARY KEY,
   "code" TEXT NOT NULL,
   "status" TEXT NOT NULL,
   "at" TEXT NOT NULL,
   "source" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_dossier_history_code" ON "dossier_history" ("code");
CREATE TABLE IF NOT EXISTS "calendar_entries" (
   "id" TEXT PRIMARY KEY,
   "start" TEXT NOT NULL,
   "end" TEXT,
   "all_day" INTEGER NOT NULL,
   "leaders" TEXT NOT NULL,
   "title" TEXT NOT NULL,
   "location" TEXT,
   "participants" TEXT,
   "preparer" TEXT,
   "source" TEXT,
   "uid" TEXT,
   "sort_key" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_calendar_entries_sort_key" ON "calendar_entries" ("sort_key");
CREATE INDEX IF NOT EXISTS "idx_calendar_entries_uid" ON "calendar_entries" ("uid");
CREATE TABLE IF NOT EXISTS "announcements" (
   "id" TEXT PRIMARY KEY,
   "title" TEXT NOT NULL,
   "body" TEXT NOT NULL,
   "qr_url" TEXT,
   "valid_from" TEXT,
   "valid_until" TEXT,
   "created_at" TEXT NOT NULL
);
"""

_0005 = """
CREATE TABLE IF NOT EXISTS "desk_sessions" (
   "session_id" TEXT PRIMARY KEY,
   "desk_id" TEXT NOT NULL,
   "officer_id" TEXT NOT NULL,
   "officer_name" TEXT NOT NULL,
   "dossier_code" TEXT,
   "opened_at" TEXT NOT NULL,
   "expires_at" TEXT NOT NULL,
   "closed_at" TEXT,
   "closed_by" TEXT,
   "vote_event_id" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_desk_sessions_desk_id_closed_at" ON "desk_sessions" ("desk_id", "closed_at");
CREATE INDEX IF NOT EXISTS "idx_rating_events_session_id" ON "rating_events" ("session_id");
"""


def _0006_node_alerts(conn: sqlite3.Connection) -> None:
    # 0.1.0 added these columns only where missing; ALTER TABLE has no
    # IF NOT EXISTS, and a 0.1.0 database recorded as at 6 already has them.
    have = {row[1] for row in conn.execute('PRAGMA table_info("nodes")')}
    for column in ("alert", "alert_since"):
        if column not in have:
            conn.execute(f'ALTER TABLE "nodes" ADD COLUMN "{column}" TEXT')


# The migrations of release 0.1.0, in order: recorded there as user_version 1..6.
RELEASE_0_1_0 = [
    Migration("0001_events_and_nodes", _0001),
    Migration("0002_state_and_commands", _0002),
    Migration("0003_staff", _0003),
    Migration("0004_public_boards", _0004),
    Migration("0005_ratings", _0005),
    Migration("0006_node_alerts", fn=_0006_node_alerts),
]

# -- after 0.1.0 ----------------------------------------------------------------------

# Commands get a deadline (never sent after it, published with MQTT message
# expiry) and are settled once (answered, expired, or no reply): a reply is
# stored only for a command sent and not yet settled. Events whose time is
# far from their arrival keep a flag; the registry keeps each node's own
# heartbeat interval and the evidence of two devices using one id.
_0007 = """
ALTER TABLE "outgoing_commands" ADD COLUMN "deadline" TEXT;
ALTER TABLE "outgoing_commands" ADD COLUMN "settled_at" TEXT;
ALTER TABLE "outgoing_commands" ADD COLUMN "outcome" TEXT;
CREATE INDEX IF NOT EXISTS "idx_outgoing_commands_settled_at" ON "outgoing_commands" ("settled_at");
ALTER TABLE "attendance_events" ADD COLUMN "time_flag" TEXT;
ALTER TABLE "rating_events" ADD COLUMN "time_flag" TEXT;
ALTER TABLE "nodes" ADD COLUMN "interval_s" REAL;
ALTER TABLE "nodes" ADD COLUMN "duplicate_at" TEXT;
ALTER TABLE "nodes" ADD COLUMN "duplicate_evidence" TEXT
"""

# The office console (congso web): its users (argon2 hashes only), the
# desks given to each officer, server-side sessions (only a hash of the
# cookie is kept, so a copy of the database logs nobody in), login
# failures for the lockout, API tokens (a hash and scopes), the audit log of
# every change made through the console or the CLI, and the steps a node
# reports while it runs a long command (the door's enrolment: place, lift,
# place again); the staff member's written consent to keep a fingerprint,
# recorded before any enrolment (biometric data). A dossier remembers whether it came through the online
# public-service portal (the API's "online").
_0008 = """
CREATE TABLE IF NOT EXISTS "web_users" (
  "name" TEXT PRIMARY KEY, "role" TEXT NOT NULL, "staff_id" TEXT,
  "password_hash" TEXT NOT NULL, "active" INTEGER NOT NULL DEFAULT 1,
  "created_at" TEXT NOT NULL, "password_changed_at" TEXT, "last_login_at" TEXT
);
CREATE TABLE IF NOT EXISTS "web_user_desks" (
  "user" TEXT NOT NULL, "desk_id" TEXT NOT NULL, PRIMARY KEY ("user", "desk_id")
);
CREATE TABLE IF NOT EXISTS "web_sessions" (
  "id_hash" TEXT PRIMARY KEY, "user" TEXT NOT NULL, "csrf_token" TEXT NOT NULL,
  "created_at" TEXT NOT NULL, "last_seen" REAL NOT NULL, "client" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_web_sessions_user" ON "web_sessions" ("user");
CREATE TABLE IF NOT EXISTS "web_login_failures" (
  "key" TEXT PRIMARY KEY, "failures" INTEGER NOT NULL, "last_at" REAL NOT NULL, "locked_until" REAL
);
CREATE TABLE IF NOT EXISTS "api_tokens" (
  "name" TEXT PRIMARY KEY, "token_hash" TEXT NOT NULL UNIQUE, "scopes" TEXT NOT NULL,
  "created_at" TEXT NOT NULL, "revoked_at" TEXT, "last_used_at" TEXT
);
CREATE TABLE IF NOT EXISTS "audit_log" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT, "at" TEXT NOT NULL, "actor" TEXT NOT NULL,
  "via" TEXT NOT NULL, "action" TEXT NOT NULL, "target" TEXT, "detail" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_audit_log_at" ON "audit_log" ("at");
ALTER TABLE "dossiers" ADD COLUMN "online" INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS "idx_dossiers_received_at" ON "dossiers" ("received_at");
CREATE INDEX IF NOT EXISTS "idx_desk_sessions_officer_id" ON "desk_sessions" ("officer_id");
CREATE TABLE IF NOT EXISTS "finger_consents" (
  "staff_id" TEXT PRIMARY KEY, "given_at" TEXT NOT NULL, "recorded_by" TEXT NOT NULL, "note" TEXT
);
CREATE TABLE IF NOT EXISTS "command_progress" (
  "cmd_id" TEXT NOT NULL, "step" TEXT NOT NULL, "at" TEXT NOT NULL, PRIMARY KEY ("cmd_id", "step")
)
"""

# Issue 17, the timesheet the head of office signs, and staff data as the
# law asks: approved leave and official absences (a timesheet symbol, whole
# days or one session); corrections (a forgotten scan entered by the clerk,
# kept apart from the devices' events, with who, when and why); a day the
# government adds off, or a weekend day swapped into a working day
# (``holidays.kind``); each person's schedule group; which consent text
# was signed; and every (door, slot) whose deletion was asked when a person
# left, until that door confirms it.
_0009 = """
CREATE TABLE IF NOT EXISTS "leave" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT, "staff_id" TEXT NOT NULL, "kind" TEXT NOT NULL,
  "first_day" TEXT NOT NULL, "last_day" TEXT NOT NULL, "half" TEXT, "note" TEXT,
  "status" TEXT NOT NULL DEFAULT 'approved',
  "entered_by" TEXT NOT NULL, "entered_at" TEXT NOT NULL, "decided_by" TEXT, "decided_at" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_leave_days" ON "leave" ("first_day", "last_day");
CREATE TABLE IF NOT EXISTS "manual_punches" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT, "staff_id" TEXT NOT NULL, "ts" TEXT NOT NULL,
  "local_date" TEXT NOT NULL, "reason" TEXT NOT NULL, "entered_by" TEXT NOT NULL, "entered_at" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_manual_punches_local_date" ON "manual_punches" ("local_date");
ALTER TABLE "holidays" ADD COLUMN "kind" TEXT NOT NULL DEFAULT 'off';
ALTER TABLE "staff" ADD COLUMN "schedule" TEXT;
ALTER TABLE "finger_consents" ADD COLUMN "text_id" TEXT;
CREATE TABLE IF NOT EXISTS "finger_deletions" (
  "id" INTEGER PRIMARY KEY AUTOINCREMENT, "staff_id" TEXT NOT NULL, "node_id" TEXT NOT NULL,
  "slot" INTEGER NOT NULL, "requested_at" TEXT NOT NULL, "cmd_id" TEXT, "attempts" INTEGER NOT NULL DEFAULT 0,
  "confirmed_at" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_finger_deletions_open" ON "finger_deletions" ("confirmed_at", "node_id")
"""

# Issue 18, an urgent notice over every page of the hall's TVs (``gateway.urgent``):
# until when, and for which TVs (``nodes``: a JSON list of node ids, NULL for all).
_0011 = """
CREATE TABLE IF NOT EXISTS "urgent" (
  "id" TEXT PRIMARY KEY, "title" TEXT NOT NULL, "body" TEXT NOT NULL, "until" TEXT NOT NULL,
  "nodes" TEXT, "created_at" TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_urgent_until" ON "urgent" ("until")
"""

# Issue 18, the hall's other parts. ``media``: each uploaded picture or video
# (its file is ``<data_dir>/media/<sha256>``, named by its content) and the
# renditions made of it for the TVs; a slide (an announcement) may carry one,
# a schedule (vocab/schedule.py) and its own seconds on screen. ``play_events``:
# what each TV showed, one row per event as for attendance and ratings.
# ``duty_events``: an officer's card tap taking or leaving a desk at a kiosk;
# ``desk_duty``: who holds each desk now (from a tap or the console).
_0012 = """
CREATE TABLE IF NOT EXISTS "media" (
  "sha256" TEXT PRIMARY KEY, "kind" TEXT NOT NULL, "mime" TEXT NOT NULL, "name" TEXT,
  "size" INTEGER NOT NULL, "width" INTEGER, "height" INTEGER, "duration_s" REAL, "codec" TEXT,
  "created_at" TEXT NOT NULL, "created_by" TEXT
);
CREATE TABLE IF NOT EXISTS "media_renditions" (
  "sha256" TEXT PRIMARY KEY, "source_sha256" TEXT NOT NULL, "label" TEXT NOT NULL, "mime" TEXT NOT NULL,
  "size" INTEGER NOT NULL, "width" INTEGER NOT NULL, "height" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_media_renditions_source" ON "media_renditions" ("source_sha256");
ALTER TABLE "announcements" ADD COLUMN "media_sha256" TEXT;
ALTER TABLE "announcements" ADD COLUMN "schedule" TEXT;
ALTER TABLE "announcements" ADD COLUMN "seconds" REAL;
CREATE TABLE IF NOT EXISTS "play_events" (
  "event_id" TEXT PRIMARY KEY, "node_id" TEXT NOT NULL, "seq" INTEGER NOT NULL, "ts" TEXT NOT NULL,
  "local_date" TEXT NOT NULL, "clock_synced" INTEGER NOT NULL, "received_at" TEXT NOT NULL, "payload" TEXT NOT NULL,
  "item_type" TEXT NOT NULL, "item_id" TEXT NOT NULL, "seconds" REAL NOT NULL, "title" TEXT,
  "media_sha256" TEXT, "time_flag" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_play_events_day_item" ON "play_events" ("local_date", "item_id");
CREATE INDEX IF NOT EXISTS "idx_play_events_node_seq" ON "play_events" ("node_id", "seq");
CREATE TABLE IF NOT EXISTS "duty_events" (
  "event_id" TEXT PRIMARY KEY, "node_id" TEXT NOT NULL, "seq" INTEGER NOT NULL, "ts" TEXT NOT NULL,
  "local_date" TEXT NOT NULL, "clock_synced" INTEGER NOT NULL, "received_at" TEXT NOT NULL, "payload" TEXT NOT NULL,
  "desk_id" TEXT NOT NULL, "action" TEXT NOT NULL, "staff_id" TEXT NOT NULL, "card_hash" TEXT,
  "time_flag" TEXT, "outcome" TEXT
);
CREATE INDEX IF NOT EXISTS "idx_duty_events_node_seq" ON "duty_events" ("node_id", "seq");
CREATE TABLE IF NOT EXISTS "desk_duty" (
  "desk_id" TEXT PRIMARY KEY, "officer_id" TEXT NOT NULL, "officer_name" TEXT NOT NULL,
  "since" TEXT NOT NULL, "via" TEXT NOT NULL, "event_id" TEXT
)
"""

# Append only (see the module's docstring).
MIGRATIONS: list[Migration] = [
    *RELEASE_0_1_0,
    Migration("0007_command_deadlines", _0007),
    Migration("0008_office_console", _0008),
    Migration("0009_timesheet_and_privacy", _0009),
    Migration("0011_urgent", _0011),
    Migration("0012_hall", _0012),
]


def _record_table(conn: sqlite3.Connection) -> None:
    conn.execute('CREATE TABLE IF NOT EXISTS "schema_migrations" ("name" TEXT PRIMARY KEY, "applied_at" TEXT NOT NULL)')


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database has had, in the order applied."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]


def _adopt_user_version(conn: sqlite3.Connection) -> None:
    """A 0.1.0 database: record its ``user_version`` migrations by name."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 or applied(conn):
        return
    if version > len(RELEASE_0_1_0):
        raise SchemaError(f"database schema version {version} is newer than this congso knows: upgrade congso")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with conn:
        _record_table(conn)
        conn.executemany(
            "INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)",
            [(m.name, f"{now} (recorded from 0.1.0 user_version {version})") for m in RELEASE_0_1_0[:version]],
        )


def _statements(sql: str) -> list[str]:
    # Our SQL holds no ';' inside literals, so a split is enough; executescript
    # would commit on its own and break the one-transaction-per-migration rule.
    return [s.strip() for s in sql.split(";") if s.strip()]


def migrate(conn: sqlite3.Connection, upto: str | None = None,
            migrations: list[Migration] | None = None) -> list[str]:
    """Apply what this database has not had (up to and including ``upto``); return the names applied now.

    Each migration runs in one transaction together with its record, so a
    power cut leaves it either applied and recorded, or neither.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    known = [m.name for m in migrations]
    if upto is not None and upto not in known:
        raise ValueError(f"no migration named {upto!r}")
    _adopt_user_version(conn)
    done = applied(conn)
    unknown = [name for name in done if name not in known]
    if unknown:
        raise SchemaError(
            f"this database has migrations this congso does not know ({', '.join(unknown)}): "
            "it was written by a newer congso; upgrade congso"
        )
    now_applied = []
    for number, m in enumerate(migrations, start=1):
        if m.name not in done:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _record_table(conn)
                for statement in _statements(m.sql):
                    conn.execute(statement)
                if m.fn is not None:
                    m.fn(conn)
                conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)",
                             (m.name, datetime.now(timezone.utc).isoformat(timespec="seconds")))
                # Kept for tools that read it; the record by name is what counts.
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            now_applied.append(m.name)
        if m.name == upto:
            break
    return now_applied
