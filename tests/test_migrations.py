"""The gateway database's migrations: an office's 0.1.0 database upgrades in place and keeps every row.

0.1.0 recorded its schema as ``PRAGMA user_version`` (1..6), with no
``schema_migrations`` table; that is the file a commune office has on its
gateway today. The released migrations are frozen: their SQL is pinned by
sha256 below, so editing one fails here (add a new migration instead;
docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import announcements, dossiers, domains, ratings, schema, staff, state, work_calendar
from congso.gateway.db import open_db
from congso.protocol import settings as settings_mod

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=ZoneInfo(TZ))

# What 0.1.0 shipped, frozen: name -> sha256 of the migration's SQL (of its
# function's source, for the one data migration).
RELEASED_0_1_0 = {
    "0001_events_and_nodes": "aa787f88c82eb4369eac105af62ec61385186eeb02bde0e00460d7af7b18c971",
    "0002_state_and_commands": "0080c2f7d098581e30d046ff6b304c0d0df18d178025eaed50faf47d403b917c",
    "0003_staff": "023936c0eaf54523f427a0e66526a0165a7f50809b480c9dea0ba58a4cdad59d",
    "0004_public_boards": "fa63135463856021601137e72a8a7a63d2b613c8fe185cef9c4aad74134317d1",
    "0005_ratings": "d3d9578cd29739fec84d45b10f5b7c5bd5b1dd292c67aa93ae03132dfa38b1c6",
    "0006_node_alerts": "592b402136344346a942b1232a79802bbded943f7c4dc74a39ccfa75ee77ff14",
}
LAST_0_1_0 = "0006_node_alerts"

# One or more rows for every table 0.1.0 had, as 0.1.0 wrote them (only its columns).
ROWS = {
    "attendance_events": [
        {"event_id": "cong-chinh-1", "node_id": "cong-chinh", "seq": 1, "ts": "2026-11-24T07:31:02.120+07:00",
         "local_date": "2026-11-24", "clock_synced": 1, "received_at": "2026-11-24T07:31:02.300+07:00",
         "payload": json.dumps({"v": 1, "method": "card", "credential": "04A1B2C3"}), "method": "card",
         "credential": "04A1B2C3", "staff_id": "NV001", "match_score": None},
        {"event_id": "cong-chinh-2", "node_id": "cong-chinh", "seq": 2, "ts": "2026-11-24T07:40:11.000+07:00",
         "local_date": "2026-11-24", "clock_synced": 0, "received_at": "2026-11-24T07:40:11.500+07:00",
         "payload": "{}", "method": "finger", "credential": "slot:3", "staff_id": "NV002", "match_score": 187},
    ],
    "rating_events": [
        {"event_id": "kiosk-1-1", "node_id": "kiosk-1", "seq": 1, "ts": "2026-11-24T09:12:00.000+07:00",
         "local_date": "2026-11-24", "clock_synced": 1, "received_at": "2026-11-24T09:12:00.200+07:00",
         "payload": "{}", "desk_id": "mot-cua-1", "level": "dissatisfied", "reasons": json.dumps(["thoi_gian"]),
         "session_id": "s-1", "officer_id": "NV001", "dossier_code": "H40.12-261120-0001"},
    ],
    "nodes": [
        {"node_id": "cong-chinh", "kind": "attendance", "state": "online", "version": "0.1.0",
         "since": "2026-11-24T07:00:00+07:00", "last_seen": "2026-11-24T09:00:00+07:00",
         "last_health": json.dumps({"v": 1, "outbox": 0}), "outbox": 0, "clock_synced": 1,
         "devices": json.dumps({"reader": "ok", "finger": "ok"}), "rejected": 2, "last_rejection": "bad seq",
         "alert": "offline for 5 min", "alert_since": "2026-11-24T09:05:00+07:00"},
    ],
    "rejections": [
        {"id": 1, "at": "2026-11-24T08:00:00+07:00", "sender": "cong-chinh", "topic": "congso/ky-chau/node/cong-chinh/x",
         "reason": "unknown topic"},
    ],
    "command_replies": [
        {"cmd_id": "c-1", "node_id": "cong-chinh", "ok": 1, "result": json.dumps({"slot": 3}), "error": None,
         "received_at": "2026-11-24T08:01:00+07:00"},
    ],
    "published_state": [
        {"name": "roster", "version": 41, "digest": "ab" * 32, "published_at": "2026-11-24T08:00:00+07:00",
         "payload": json.dumps({"v": 1, "version": 41, "staff": []})},
    ],
    "outgoing_commands": [
        {"cmd_id": "c-1", "node_id": "cong-chinh", "cmd": "enroll", "args": json.dumps({"staff_id": "NV002"}),
         "queued_at": "2026-11-24T08:00:00+07:00", "sent_at": "2026-11-24T08:00:01+07:00",
         "context": json.dumps({})},
    ],
    "staff": [
        {"staff_id": "NV001", "name": "Nguyễn Thị Thu Hà", "department": "Văn phòng - Thống kê",
         "position": "Công chức", "active": 1, "added_at": "2026-11-01T08:00:00+07:00"},
        {"staff_id": "NV002", "name": "Trần Văn Bình", "department": None, "position": None, "active": 0,
         "added_at": "2026-11-01T08:00:00+07:00"},
    ],
    "staff_cards": [{"uid": "04A1B2C3", "staff_id": "NV001", "assigned_at": "2026-11-01T08:05:00+07:00"}],
    "finger_slots": [{"node_id": "cong-chinh", "slot": 3, "staff_id": "NV002", "enrolled_at": "2026-11-24T08:01:00+07:00",
                      "source_node": "cong-chinh"}],
    "holidays": [{"day": "2026-09-02", "name": "Quốc khánh"}],
    "dossiers": [
        {"code": "H40.12-261120-0001", "applicant": "Lê Thị Mỹ Duyên", "procedure": "Đăng ký khai sinh",
         "received_at": "2026-11-20", "due_at": "2026-11-23", "status": "processing", "desk": "Tư pháp - Hộ tịch",
         "status_changed_at": "2026-11-20T08:15:00+07:00", "updated_at": "2026-11-20T08:15:00+07:00"},
    ],
    "dossier_history": [
        {"id": 1, "code": "H40.12-261120-0001", "status": "received", "at": "2026-11-20T08:10:00+07:00", "source": "cli"},
        {"id": 2, "code": "H40.12-261120-0001", "status": "processing", "at": "2026-11-20T08:15:00+07:00", "source": "import"},
    ],
    "calendar_entries": [
        {"id": "e-1", "start": "2026-11-25T14:00:00+07:00", "end": "2026-11-25T16:00:00+07:00", "all_day": 0,
         "leaders": json.dumps(["Chủ tịch UBND xã"]), "title": "Họp giao ban", "location": "Hội trường",
         "participants": "Toàn thể cán bộ", "preparer": "Văn phòng", "source": "cli", "uid": None,
         "sort_key": "2026-11-25T07:00:00Z"},
    ],
    "announcements": [
        {"id": "a-1", "title": "Lịch tiếp công dân", "body": "Thứ Năm hằng tuần", "qr_url": "https://dichvucong.gov.vn",
         "valid_from": None, "valid_until": "2026-12-31T23:59:59+07:00", "created_at": "2026-11-01T08:00:00+07:00"},
    ],
    "desk_sessions": [
        {"session_id": "s-1", "desk_id": "mot-cua-1", "officer_id": "NV001", "officer_name": "Nguyễn Thị Thu Hà",
         "dossier_code": "H40.12-261120-0001", "opened_at": "2026-11-24T09:00:00+07:00",
         "expires_at": "2026-11-24T09:15:00+07:00", "closed_at": "2026-11-24T09:12:00+07:00", "closed_by": "vote",
         "vote_event_id": "kiosk-1-1"},
    ],
}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}


def make_0_1_0_database(path) -> None:
    """A gateway database as 0.1.0 left it: its six migrations, recorded only as user_version 6, full of rows."""
    conn = sqlite3.connect(str(path))
    schema.migrate(conn, upto=LAST_0_1_0)
    conn.execute("DROP TABLE schema_migrations")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    assert _tables(conn) == set(ROWS), "every 0.1.0 table gets rows here"
    with conn:
        for table, rows in ROWS.items():
            for row in rows:
                cols = ", ".join(f'"{c}"' for c in row)
                conn.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(row))})', list(row.values()))
    conn.close()


def test_a_0_1_0_database_upgrades_in_place_and_keeps_every_row(tmp_path):
    path = tmp_path / "gateway.sqlite"
    make_0_1_0_database(path)

    db = open_db(path)

    applied = schema.applied(db.conn)
    assert applied == [m.name for m in schema.MIGRATIONS]
    adopted = dict(db.execute("SELECT name, applied_at FROM schema_migrations").fetchall())
    assert all("recorded from 0.1.0 user_version 6" in adopted[name] for name in RELEASED_0_1_0)
    for table, rows in ROWS.items():
        cols = list(rows[0])
        key = cols[0]
        found = [dict(zip(cols, r)) for r in
                 db.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{table}" ORDER BY "{key}"')]
        assert found == sorted(rows, key=lambda r: r[key]), table

    # And the library reads them as it reads its own.
    assert staff.get(db, "NV001")["name"] == "Nguyễn Thị Thu Hà"
    assert dossiers.history(db, "H40.12-261120-0001")[-1]["status"] == "processing"
    assert [a["id"] for a in announcements.list_all(db)] == ["a-1"]
    sent = []
    settings = settings_mod.load(environ={"CONGSO_DATA_DIR": str(tmp_path), "CONGSO_SITE_ID": "ky-chau"})
    clock = state.Clock(now=lambda tz: NOW, monotonic=lambda: 0.0)
    pub = state.Publisher(db, settings, lambda topic, data, retain: sent.append((topic, data)), domains.DOMAINS, clock)
    published = pub.rebuild()
    assert {"dossiers", "calendar", "announcements", "ratings"} <= set(published)
    board = next(json.loads(d) for t, d in sent if t.endswith("/state/dossiers"))
    assert board["dossiers"][0]["applicant"] == "Lê T. M. D." and board["counts"]["overdue"] == 1
    assert work_calendar.board(db, NOW, TZ)["entries"][0]["title"] == "Họp giao ban"
    assert ratings.level_counts(db, "2026-11-01", "2026-11-30") == {"dissatisfied": 1}
    # The roster keeps its version: it goes on growing from 41.
    assert db.execute("SELECT version FROM published_state WHERE name='roster'").fetchone()[0] >= 41

    # Opening again changes nothing.
    db.conn.close()
    again = open_db(path)
    assert schema.applied(again.conn) == applied


def test_a_fresh_database_has_every_migration_recorded_by_name(tmp_path):
    db = open_db(tmp_path / "gateway.sqlite")
    assert schema.applied(db.conn) == [m.name for m in schema.MIGRATIONS]
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)


def test_a_database_from_a_newer_congso_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "gateway.sqlite"
    conn = sqlite3.connect(str(path))
    schema.migrate(conn, upto=LAST_0_1_0)
    with conn:
        conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES ('0042_from_a_newer_congso', 'later')")
        conn.execute("INSERT INTO holidays(day, name) VALUES ('2027-01-01', 'Tết Dương lịch')")
    conn.close()

    with pytest.raises(schema.SchemaError) as e:
        open_db(path)
    message = str(e.value)
    assert "0042_from_a_newer_congso" in message and "newer congso" in message and "upgrade congso" in message

    conn = sqlite3.connect(str(path))
    assert schema.applied(conn)[-1] == "0042_from_a_newer_congso"
    assert len(schema.applied(conn)) == len(RELEASED_0_1_0) + 1  # nothing of ours applied on top
    assert conn.execute("SELECT name FROM holidays").fetchall() == [("Tết Dương lịch",)]


def test_a_0_1_0_style_database_with_a_higher_user_version_is_refused(tmp_path):
    path = tmp_path / "gateway.sqlite"
    conn = sqlite3.connect(str(path))
    schema.migrate(conn, upto=LAST_0_1_0)
    conn.execute("DROP TABLE schema_migrations")
    conn.execute("PRAGMA user_version=9")
    conn.close()
    with pytest.raises(schema.SchemaError, match="schema version 9 is newer than this congso knows: upgrade congso"):
        open_db(path)


@pytest.mark.parametrize("broken", [
    schema.Migration("9990_broken_sql", 'CREATE TABLE "half_done" ("a" TEXT); INSERT INTO "no_such_table" VALUES (1)'),
    schema.Migration("9991_broken_fn", 'CREATE TABLE "half_done" ("a" TEXT)',
                     fn=lambda conn: conn.execute("UPDATE staff SET name = NULL")),  # NOT NULL: fails
])
def test_a_migration_that_fails_is_rolled_back_and_not_recorded(tmp_path, broken):
    path = tmp_path / "gateway.sqlite"
    db = open_db(path)
    staff.add(db, "NV001", "Nguyễn Thị Thu Hà")
    before = schema.applied(db.conn)
    version = db.execute("PRAGMA user_version").fetchone()[0]

    with pytest.raises(sqlite3.DatabaseError):
        schema.migrate(db.conn, migrations=[*schema.MIGRATIONS, broken])

    assert "half_done" not in _tables(db.conn)
    assert schema.applied(db.conn) == before
    assert db.execute("PRAGMA user_version").fetchone()[0] == version
    assert staff.get(db, "NV001")["name"] == "Nguyễn Thị Thu Hà"
    # Fixed, it applies and is recorded.
    fixed = schema.Migration(broken.name, 'CREATE TABLE "half_done" ("a" TEXT)')
    assert schema.migrate(db.conn, migrations=[*schema.MIGRATIONS, fixed]) == [broken.name]
    assert "half_done" in _tables(db.conn)


def _released_text(m: schema.Migration) -> str:
    return inspect.getsource(m.fn) if m.fn is not None else m.sql


def test_the_released_migrations_are_frozen():
    # Editing, renaming, reordering or removing a released migration breaks
    # every office's upgrade: fix a mistake with a new migration at the end.
    assert [m.name for m in schema.RELEASE_0_1_0] == list(RELEASED_0_1_0)
    assert schema.MIGRATIONS[: len(RELEASED_0_1_0)] == schema.RELEASE_0_1_0
    for m in schema.RELEASE_0_1_0:
        digest = hashlib.sha256(_released_text(m).encode("utf-8")).hexdigest()
        assert digest == RELEASED_0_1_0[m.name], f"released migration {m.name} was edited"


def test_migration_names_are_numbered_and_unique():
    names = [m.name for m in schema.MIGRATIONS]
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+", n) for n in names), names
    numbers = [n[:4] for n in names]
    assert len(set(numbers)) == len(numbers), "two migrations share a number"
