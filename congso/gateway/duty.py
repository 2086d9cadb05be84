"""Who holds each desk (nhận quầy): an officer's card tap at the kiosk, or the console.

An officer takes a desk and every vote there is theirs until they leave it
(``desk_duty``, one row per desk held). A desk session (``ratings``: one
citizen, one dossier) still wins for the vote it is for.

Taking and leaving come two ways, both ending in ``desk_duty``:

- the kiosk: the officer taps their staff card; the kiosk knows the card
  from ``state/duty`` (officers' cards as hashes, never UIDs) and records
  a ``duty`` event in its outbox, so it works offline and the tap is never
  lost. Ingest stores each event once (``duty_events``) and ``apply_taps``
  applies the new ones, in the order they happened: a tap older than the
  desk's current holder's ``since`` changes nothing (the console or a
  later tap came after it).
- the console's desk page, from the officer's PC: ``take`` / ``leave``.

Who may take a desk: an active staff member linked to a console user with
that desk given (``web_user_desks``), the same people the desk page lets
act there. The ``duty`` state lists exactly them, with their cards'
hashes; anyone else's card is a citizen's and the kiosk ignores it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime

import sqlite_utils

from ..protocol import messages, topics
from . import state


class DutyError(ValueError):
    """A take or leave that cannot be done as asked (the message says why)."""


def card_hash(site: str, uid: str) -> str:
    """The form a card travels in to the hall's nodes: no UID is readable off ``state/duty``."""
    return hashlib.sha256(f"congso-card:{site}:{uid.strip().upper()}".encode()).hexdigest()


def officers(db: sqlite_utils.Database) -> dict[str, dict]:
    """staff_id -> {"name", "desks": [...]} for the active staff who may hold a desk."""
    out: dict[str, dict] = {}
    rows = db.execute(
        "SELECT s.staff_id, s.name, d.desk_id FROM web_users u JOIN staff s ON s.staff_id = u.staff_id "
        "JOIN web_user_desks d ON d.user = u.name WHERE u.active AND s.active ORDER BY s.staff_id, d.desk_id"
    ).fetchall()
    for staff_id, name, desk_id in rows:
        entry = out.setdefault(staff_id, {"name": name, "desks": []})
        if desk_id not in entry["desks"]:
            entry["desks"].append(desk_id)
    return out


def holders(db: sqlite_utils.Database) -> dict[str, dict]:
    """desk_id -> the desk_duty row of who holds it now."""
    return {r["desk_id"]: r for r in db.query("SELECT * FROM desk_duty ORDER BY desk_id")}


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _set(conn: sqlite3.Connection, desk_id: str, action: str, staff_id: str, name: str, at: str, via: str,
         event_id: str | None) -> str:
    """Apply one take or leave at time ``at``; returns what happened ("taken", "left", or why not)."""
    current = conn.execute("SELECT officer_id, since FROM desk_duty WHERE desk_id=?", (desk_id,)).fetchone()
    if current and messages.parse_ts(current[1]) > messages.parse_ts(at):
        return "stale: the desk changed hands after this"
    if action == "take":
        conn.execute("INSERT OR REPLACE INTO desk_duty(desk_id, officer_id, officer_name, since, via, event_id) "
                     "VALUES (?,?,?,?,?,?)", (desk_id, staff_id, name, at, via, event_id))
        return "taken"
    if current is None or current[0] != staff_id:
        return "not held by this officer"
    conn.execute("DELETE FROM desk_duty WHERE desk_id=?", (desk_id,))
    return "left"


def apply_taps(conn: sqlite3.Connection, event_ids: list[str]) -> bool:
    """Apply newly stored ``duty_events`` (inside ingest's transaction); True if a desk changed hands."""
    if not event_ids:
        return False
    db = sqlite_utils.Database(conn)
    allowed = officers(db)
    marks = ",".join("?" * len(event_ids))
    rows = conn.execute(f"SELECT event_id, desk_id, action, staff_id, ts, node_id FROM duty_events "
                        f"WHERE event_id IN ({marks}) ORDER BY ts, seq", event_ids).fetchall()
    changed = False
    for event_id, desk_id, action, staff_id, ts, node_id in rows:
        who = allowed.get(staff_id)
        if who is None or desk_id not in who["desks"]:
            outcome = f"refused: {staff_id} may not hold desk {desk_id}"
        else:
            outcome = _set(conn, desk_id, action, staff_id, who["name"], ts, f"card:{node_id}", event_id)
            changed = changed or outcome in ("taken", "left")
        conn.execute("UPDATE duty_events SET outcome=? WHERE event_id=?", (outcome, event_id))
    return changed


def take(db: sqlite_utils.Database, desk_id: str, staff_id: str, now: datetime, via: str = "console") -> dict:
    """The officer takes ``desk_id`` now (replacing whoever held it). Commits."""
    try:
        topics.check_desk_id(desk_id)
    except ValueError as e:
        raise DutyError(str(e)) from None
    who = officers(db).get(staff_id)
    if who is None or desk_id not in who["desks"]:
        raise DutyError(f"{staff_id} may not hold desk {desk_id}: give the desk to their console user "
                        f"(congso web user desks) first")
    with db.conn:
        _set(db.conn, desk_id, "take", staff_id, who["name"], _iso(now), via, None)
    return holders(db)[desk_id]


def leave(db: sqlite_utils.Database, desk_id: str, now: datetime, staff_id: str | None = None) -> dict | None:
    """Free ``desk_id`` (only if ``staff_id``, when given, holds it); the row that was, or None. Commits."""
    with db.conn:
        current = holders(db).get(desk_id)
        if current is None:
            return None
        if staff_id is not None and current["officer_id"] != staff_id:
            raise DutyError(f"desk {desk_id} is held by {current['officer_name']}, not by {staff_id}")
        db.conn.execute("DELETE FROM desk_duty WHERE desk_id=?", (desk_id,))
    return current


def officer_at(db: sqlite_utils.Database, desk_id: str) -> str | None:
    row = holders(db).get(desk_id)
    return row["officer_id"] if row else None


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict:
    allowed = officers(db)
    cards: dict[str, list[str]] = {}
    for staff_id, uid in db.execute("SELECT staff_id, uid FROM staff_cards ORDER BY uid"):
        if staff_id in allowed:
            cards.setdefault(staff_id, []).append(card_hash(ctx.site, uid))
    desks = {r["desk_id"]: {"officer_id": r["officer_id"], "officer_name": r["officer_name"], "since": r["since"],
                            "via": r["via"]} for r in holders(db).values()}
    for entry in allowed.values():
        for desk_id in entry["desks"]:
            desks.setdefault(desk_id, None)
    return {"duty": {"desks": desks,
                     "officers": [{"staff_id": sid, "name": e["name"], "desks": e["desks"], "cards": cards.get(sid, [])}
                                  for sid, e in sorted(allowed.items())]}}


DOMAIN = state.Domain("duty", builders=(build,))


def describe(row: dict | None) -> str:
    """For logs and the CLI."""
    return json.dumps(row, ensure_ascii=False) if row else "free"
