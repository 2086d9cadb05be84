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

Every change writes an audit row (``desks.take`` / ``desks.leave``, target
the desk, the detail with the officer, the time it took effect and how):
a tap's as ``via="gateway"`` with the kiosk as actor, the console's and
the CLI's as their user. The last ``desks.leave`` row is also how a late
tap is judged after the desk was freed (``desk_duty`` then has no row).

A tap's time is the kiosk's clock; one far ahead of its arrival (the
kiosk's clock gone wrong) counts as of its arrival, so it cannot hold the
desk against every later change.

A desk held since before today (the officer forgot to tap out) is freed at
the first rebuild of the new office day (``release_overnight``): votes the
next morning are never tied to yesterday's officer. A desk whose holder
may no longer hold it (staff deactivated, the desk taken from their
console user) is freed the same way (``release_not_allowed``).

Votes: the kiosk puts the holder's id in each vote it records while the
desk is held (it knows what its screen showed, and works offline); the
gateway stores the vote as sent and never fills in an ``officer_id`` from
``desk_duty`` afterwards (a vote delivered late would go to whoever holds
the desk when it arrives).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import sqlite_utils

from ..protocol import messages, topics
from ..vocab.cards import card_hash
from . import audit, state

TAKE, LEAVE = "desks.take", "desks.leave"  # audit actions
VIA_VI = {"console": "qua trang quản trị", "cli": "qua dòng lệnh", "card": "qua thẻ"}


class DutyError(ValueError):
    """A take or leave that cannot be done as asked (the message says why)."""


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


def _last_left(conn: sqlite3.Connection, desk_id: str) -> str | None:
    """When ``desk_id`` was last freed (from the audit log), or None."""
    row = conn.execute("SELECT json_extract(detail, '$.at') FROM audit_log WHERE action=? AND target=? "
                       "AND json_valid(detail) ORDER BY id DESC LIMIT 1", (LEAVE, desk_id)).fetchone()
    return row[0] if row and row[0] else None


def _audit(conn: sqlite3.Connection, actor: tuple[str, str], action: str, desk_id: str, detail: dict) -> None:
    audit.record(sqlite_utils.Database(conn), actor=actor[0], via=actor[1], action=action, target=desk_id,
                 detail=detail)


def _set(conn: sqlite3.Connection, desk_id: str, action: str, staff_id: str, name: str, at: str, via: str,
         event_id: str | None, actor: tuple[str, str] | None = None) -> str:
    """Apply one take or leave at time ``at``; returns what happened ("taken", "left", or why not).

    ``actor`` (who, via): write the audit row of the change, in the caller's transaction.
    """
    current = conn.execute("SELECT officer_id, since, officer_name FROM desk_duty WHERE desk_id=?",
                           (desk_id,)).fetchone()
    when = messages.parse_ts(at)
    if current and messages.parse_ts(current[1]) > when:
        return "stale: the desk changed hands after this"
    left = None if current else _last_left(conn, desk_id)
    if left and messages.parse_ts(left) > when:
        return "stale: the desk was left after this"
    detail = {"officer_id": staff_id, "officer_name": name, "at": at, "via": via}
    if event_id:
        detail["event_id"] = event_id
    if action == "take":
        conn.execute("INSERT OR REPLACE INTO desk_duty(desk_id, officer_id, officer_name, since, via, event_id) "
                     "VALUES (?,?,?,?,?,?)", (desk_id, staff_id, name, at, via, event_id))
        if actor:
            if current and current[0] != staff_id:
                detail["replaced"] = current[0]
            _audit(conn, actor, TAKE, desk_id, detail)
        return "taken"
    if current is None or current[0] != staff_id:
        return "not held by this officer"
    conn.execute("DELETE FROM desk_duty WHERE desk_id=?", (desk_id,))
    if actor:
        _audit(conn, actor, LEAVE, desk_id, detail)
    return "left"


def _effective_ts(ts: str, received_at: str) -> str:
    """The tap's time, or its arrival when the kiosk's clock put it later than that."""
    try:
        if messages.parse_ts(ts) > messages.parse_ts(received_at):
            return received_at
    except ValueError:
        pass
    return ts


def kiosk_desk(conn: sqlite3.Connection, node_id: str) -> str | None:
    """The desk a kiosk rates: as its health says (``desk_id``), else as its latest vote says."""
    row = conn.execute("SELECT json_extract(last_health, '$.desk_id') FROM nodes WHERE node_id=?", (node_id,)).fetchone()
    if row and row[0]:
        return row[0]
    row = conn.execute("SELECT desk_id FROM rating_events WHERE node_id=? ORDER BY seq DESC LIMIT 1", (node_id,)).fetchone()
    return row[0] if row else None


def apply_taps(conn: sqlite3.Connection, event_ids: list[str]) -> bool:
    """Apply newly stored ``duty_events`` (inside ingest's transaction); True if a desk changed hands.

    Each event's ``outcome`` says what it did ("taken", "left") or why not
    ("refused: ...", "stale: ...", "not held by this officer").
    """
    if not event_ids:
        return False
    db = sqlite_utils.Database(conn)
    allowed = officers(db)
    marks = ",".join("?" * len(event_ids))
    rows = conn.execute(f"SELECT event_id, desk_id, action, staff_id, ts, node_id, received_at FROM duty_events "
                        f"WHERE event_id IN ({marks}) ORDER BY ts, seq", event_ids).fetchall()
    changed = False
    for event_id, desk_id, action, staff_id, ts, node_id, received_at in rows:
        who = allowed.get(staff_id)
        rated = kiosk_desk(conn, node_id)
        if rated != desk_id:  # a kiosk speaks for its own desk only
            outcome = f"refused: {node_id} rates desk {rated or '(not said yet)'}, not {desk_id}"
        elif who is None or desk_id not in who["desks"]:
            outcome = f"refused: {staff_id} may not hold desk {desk_id}"
        else:
            outcome = _set(conn, desk_id, action, staff_id, who["name"], _effective_ts(ts, received_at),
                           f"card:{node_id}", event_id, actor=(node_id, "gateway"))
            changed = changed or outcome in ("taken", "left")
        conn.execute("UPDATE duty_events SET outcome=? WHERE event_id=?", (outcome, event_id))
    return changed


def take(db: sqlite_utils.Database, desk_id: str, staff_id: str, now: datetime, via: str = "console",
         actor: tuple[str, str] | None = None) -> dict:
    """The officer takes ``desk_id`` now (replacing whoever held it). Commits.

    ``actor``: (who, "web" | "api" | "cli") for the audit row, written in the same transaction.
    """
    try:
        topics.check_desk_id(desk_id)
    except ValueError as e:
        raise DutyError(str(e)) from None
    who = officers(db).get(staff_id)
    if who is None or desk_id not in who["desks"]:
        raise DutyError(f"{staff_id} may not hold desk {desk_id}: give the desk to their console user "
                        f"(congso web user desks) first")
    with db.conn:
        outcome = _set(db.conn, desk_id, "take", staff_id, who["name"], _iso(now), via, None, actor=actor)
    if outcome != "taken":  # the desk changed hands at a later time than this machine's clock says it is
        raise DutyError(f"desk {desk_id} not taken ({outcome}): check this machine's clock")
    return holders(db)[desk_id]


def leave(db: sqlite_utils.Database, desk_id: str, now: datetime, staff_id: str | None = None,
          actor: tuple[str, str] | None = None, via: str = "console") -> dict | None:
    """Free ``desk_id`` (only if ``staff_id``, when given, holds it); the row that was, or None. Commits.

    ``actor``: (who, via) for the audit row; it also dates the leave, so a
    tap older than it arriving later changes nothing.
    """
    with db.conn:
        current = holders(db).get(desk_id)
        if current is None:
            return None
        if staff_id is not None and current["officer_id"] != staff_id:
            raise DutyError(f"desk {desk_id} is held by {current['officer_name']}, not by {staff_id}")
        db.conn.execute("DELETE FROM desk_duty WHERE desk_id=?", (desk_id,))
        if actor:
            _audit(db.conn, actor, LEAVE, desk_id, {"officer_id": current["officer_id"],
                                                    "officer_name": current["officer_name"], "at": _iso(now),
                                                    "via": via, "since": current["since"]})
    return current


def release_overnight(db: sqlite_utils.Database, ctx: state.Context) -> None:
    """Free every desk held since before today (office date): nobody holds a desk across a night.

    Runs in the publisher's transaction; each release is audited as the gateway's own.
    """
    today = ctx.now.date()
    zone = ctx.now.tzinfo
    for row in holders(db).values():
        try:
            since = messages.parse_ts(row["since"]).astimezone(zone).date()
        except ValueError:
            since = None
        if since is not None and since >= today:
            continue
        db.conn.execute("DELETE FROM desk_duty WHERE desk_id=?", (row["desk_id"],))
        _audit(db.conn, ("congso-gateway", "gateway"), LEAVE, row["desk_id"],
               {"officer_id": row["officer_id"], "officer_name": row["officer_name"], "at": _iso(ctx.now),
                "via": "overnight", "since": row["since"]})


def release_not_allowed(db: sqlite_utils.Database, ctx: state.Context) -> None:
    """Free a desk whose holder may no longer hold it (staff deactivated, the desk taken from their user).

    Otherwise the kiosk would go on tying votes to them. Audited as the gateway's own.
    """
    allowed = officers(db)
    for row in holders(db).values():
        who = allowed.get(row["officer_id"])
        if who is not None and row["desk_id"] in who["desks"]:
            continue
        db.conn.execute("DELETE FROM desk_duty WHERE desk_id=?", (row["desk_id"],))
        _audit(db.conn, ("congso-gateway", "gateway"), LEAVE, row["desk_id"],
               {"officer_id": row["officer_id"], "officer_name": row["officer_name"], "at": _iso(ctx.now),
                "via": "no longer allowed", "since": row["since"]})


def via_kind(via: str | None) -> str:
    """"card:kiosk-1" -> "card"; "console", "cli" as they are."""
    return (via or "").split(":", 1)[0]


def describe_vi(row: dict, now: datetime) -> str:
    """"Nguyễn Văn An từ 08:02, qua thẻ": who holds a desk, for the console's desk page (``now``: office time)."""
    try:
        since = messages.parse_ts(row["since"]).astimezone(now.tzinfo)
        when = f"{since:%H:%M}" if since.date() == now.date() else f"{since:%H:%M %d/%m/%Y}"
    except (ValueError, TypeError):
        when = str(row.get("since"))
    how = VIA_VI.get(via_kind(row.get("via")), row.get("via") or "")
    return f"{row['officer_name']} từ {when}, {how}" if how else f"{row['officer_name']} từ {when}"


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


DOMAIN = state.Domain("duty", builders=(build,), maintenance=(release_overnight, release_not_allowed))


def describe(row: dict | None) -> str:
    """For logs and the CLI."""
    return json.dumps(row, ensure_ascii=False) if row else "free"
