"""Helpers for the rating tests: votes through the gateway's real ingest, staff rows."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from congso.gateway.db import open_db
from congso.gateway.ingest import Ingest
from congso.protocol import messages
from congso.protocol.link import Incoming

from conftest import SITE

TZ = "Asia/Ho_Chi_Minh"


def vote(level: str, ts: str, desk: str = "mot-cua-1", officer: str | None = None, reasons=(),
         session: str | None = None, dossier: str | None = None, node: str = "kiosk-1", seq: int = 1, **extra) -> Incoming:
    """One rating event as a kiosk publishes it, ready for Ingest.process."""
    event = {"v": 1, "event_id": str(uuid.uuid4()), "node_id": node, "ts": ts, "clock_synced": True, "seq": seq,
             "desk_id": desk, "level": level, "reasons": list(reasons), "session_id": session,
             "officer_id": officer, "dossier_code": dossier, **extra}
    return Incoming(f"congso/{SITE}/node/{node}/rating", messages.dumps(event), time.monotonic())


def store(db_file: Path, items: list[Incoming]) -> None:
    """Store votes in a gateway database through the gateway's own ingest."""
    db = open_db(db_file)
    result = Ingest(db, SITE, TZ).process(items)
    assert result.stored == len(items), result
    db.conn.close()


def add_staff(db_file: Path, people: dict[str, str]) -> None:
    """Staff rows (staff_id, name), whatever else the staff module's table holds."""
    db = open_db(db_file)
    if "staff" not in db.table_names():
        db["staff"].create({"staff_id": str, "name": str}, pk="staff_id")
    required = [row[1] for row in db.execute("PRAGMA table_info(staff)").fetchall()
                if row[3] and row[4] is None and row[1] not in ("staff_id", "name") and not row[5]]
    with db.conn:
        for staff_id, name in people.items():
            db["staff"].insert({"staff_id": staff_id, "name": name, **{c: "" for c in required}}, replace=True)
    db.conn.close()


def dumps_reasons(codes) -> str:
    return json.dumps(list(codes), ensure_ascii=False)
