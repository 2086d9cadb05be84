"""Leave, official absences and corrections (manual punches): what the timesheet is judged by besides the doors.

The CLI (``congso leave``, ``congso punch``) and the console's leave pages
call exactly these functions; the timesheet engine reads ``on_days`` and
``punches_between``.

Leave (table ``leave``):

- ``kind`` goes through ``vocab.timesheet.parse_kind`` (a timesheet symbol:
  P, Ô, Cô, Ts, T, H, Nb, No, CT; accents and case optional, so "o", "co",
  "ct" are stored as "Ô", "Cô", "CT"); ``half`` through ``parse_half``
  ("am" | "pm", None = whole days; a half applies to every day of the span).
- Days are YYYY-MM-DD (or dd/mm/yyyy, the office's way). ``last_day``
  defaults to ``first_day``, must not be before it, and the span is at most
  366 days (maternity leave is six months).
- The staff member must exist: active, or deactivated with ``first_day`` on
  or before the day they left (the day of the last ``staff.deactivate`` in
  the audit log; without one, their last deletion request or last scan).
- Text (note, reason, entered_by) goes through ``vocab.text.clean``: a
  control character is a clear error naming the option.
- Overlap: an approved or requested leave of the same person covering the
  same session of the same day is an error naming the existing leave's id
  (``congso leave remove ID`` to replace it). A whole-day leave covers both
  sessions. A refused request covers nothing.
- ``status`` is "approved" (entered by the clerk) or "requested" (asked for
  in the console); ``decide`` turns a request into "approved" or "refused"
  with who decided and when. Only approved leave counts (``on_days``).

Corrections (table ``manual_punches``): a forgotten scan entered by hand.

- The staff member must exist (as for leave, on the punch's day); ``reason``
  is required (at least 3 characters); the time is not in the future; two
  punches of one person at the same minute are an error.
- ``at`` is "YYYY-MM-DDTHH:MM" (office time; "YYYY-MM-DD HH:MM" and
  "dd/mm/yyyy HH:MM" too) or RFC 3339 with an offset. It is stored as RFC
  3339 in office time with its ``local_date``, ``entered_by`` and
  ``entered_at``.
- A punch never touches ``attendance_events``: device events are never
  edited; the timesheet reads the punches beside them and flags the day
  ``manual``.

``corrections(rep)`` is the clerk's work list for a month: every working
(person, day) of a ``timesheet.Report`` with a missing "in" or "out", oldest
first, leaving out today's open day (the "out" is not due yet).

Errors are ``LeaveError`` (a ``ValueError``) in English, naming the option
to fix (``--from``, ``--half``, ...).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import sqlite_utils

from ..protocol import clock
from ..vocab import dates
from ..vocab import text as text_mod
from ..vocab import timesheet as marks

STATUSES = ("approved", "requested", "refused")
MAX_SPAN_DAYS = 366
MAX_NOTE = 500
MAX_REASON = 500
MIN_REASON = 3
SESSIONS = marks.SESSIONS  # ("am", "pm")

_LOCAL_RE = re.compile(r"(.+?)[T ](\d{1,2}):(\d{2})")


class LeaveError(ValueError):
    """Leave or a correction that cannot be stored; says what is wrong and which option to fix."""


@contextmanager
def _writing(db: sqlite_utils.Database):
    """One write transaction taken at once (BEGIN IMMEDIATE): a check and the write after it see the same table."""
    conn = db.conn
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


# -- parsing ----------------------------------------------------------------------------
def parse_date(value, option: str) -> date:
    """A day typed as YYYY-MM-DD or dd/mm/yyyy (or a ``date``) -> date; LeaveError naming ``option``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    typed = str(value or "").strip()
    if not typed:
        raise LeaveError(f"{option}: a day is needed (YYYY-MM-DD, e.g. 2027-02-01)")
    try:
        return dates.parse_day(typed)
    except ValueError:
        raise LeaveError(f"{option}: {typed!r} is not a date (YYYY-MM-DD or dd/mm/yyyy, e.g. 2027-02-01)") from None


def parse_at(value, tz: str) -> datetime:
    """``--at``: "YYYY-MM-DDTHH:MM" in office time, or RFC 3339 with an offset -> an aware datetime (to the minute)."""
    zone = clock.zone(tz)
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=zone)
        return when.astimezone(zone).replace(second=0, microsecond=0)
    typed = str(value or "").strip()
    hint = "YYYY-MM-DDTHH:MM in office time, e.g. 2027-02-01T07:30"
    if not typed:
        raise LeaveError(f"--at: the time of the forgotten scan is needed ({hint})")
    when = None
    m = _LOCAL_RE.fullmatch(typed)
    if m:
        try:
            day = parse_date(m.group(1), "--at")
            when = datetime(day.year, day.month, day.day, int(m.group(2)), int(m.group(3)), tzinfo=zone)
        except (LeaveError, ValueError):
            when = None
    if when is None:
        try:
            parsed = datetime.fromisoformat(typed.replace("Z", "+00:00"))
        except ValueError:
            raise LeaveError(f"--at: {typed!r} is not a time ({hint})") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        when = parsed
    return when.astimezone(zone).replace(second=0, microsecond=0)


def _id(value, what: str) -> int:
    try:
        number = int(str(value).strip().lstrip("#"))
    except (TypeError, ValueError):
        raise LeaveError(f"{what} id must be a number (as listed by congso {what} list), got {value!r}") from None
    if number <= 0:
        raise LeaveError(f"{what} id must be a positive number, got {value!r}")
    return number


def _text(value, option: str, *, required: bool = False, max_len: int = MAX_NOTE) -> str | None:
    try:
        return text_mod.clean(value, option, required=required, max_len=max_len)
    except text_mod.TextError as e:
        raise LeaveError(str(e)) from None


def _bound(value, option: str) -> str | None:
    return None if value in (None, "") else parse_date(value, option).isoformat()


# -- who may have leave -------------------------------------------------------------------
def _left_on(db: sqlite_utils.Database, staff_id: str, tz: str) -> date | None:
    """The day a deactivated person left: their last ``staff.deactivate`` audit row (else the best clue kept)."""
    zone = clock.zone(tz)
    row = db.execute("SELECT at FROM audit_log WHERE action = 'staff.deactivate' AND target = ? "
                     "ORDER BY id DESC LIMIT 1", (staff_id,)).fetchone()
    if row is None:
        row = db.execute("SELECT max(requested_at) FROM finger_deletions WHERE staff_id = ?", (staff_id,)).fetchone()
    if row is not None and row[0]:
        try:
            at = datetime.fromisoformat(row[0])
            return (at.astimezone(zone) if at.tzinfo else at).date()
        except ValueError:
            pass
    row = db.execute("SELECT max(local_date) FROM attendance_events WHERE staff_id = ?", (staff_id,)).fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def _person(db: sqlite_utils.Database, staff_id, day: date, tz: str, what: str) -> dict:
    """The staff row, when ``staff_id`` may have ``what`` on ``day``; else LeaveError."""
    sid = str(staff_id or "").strip()
    if not sid:
        raise LeaveError("STAFF: a staff id is needed (congso staff list), e.g. NV001")
    row = db.execute("SELECT staff_id, name, active FROM staff WHERE staff_id = ?", (sid,)).fetchone()
    if row is None:
        raise LeaveError(f"STAFF: no staff member {sid!r} (congso staff list)")
    person = {"staff_id": row[0], "name": row[1], "active": bool(row[2])}
    if not person["active"]:
        left = _left_on(db, sid, tz)
        if left is None:
            raise LeaveError(f"STAFF: {sid} ({person['name']}) is deactivated and when they left is not known; "
                             f"add them again first (congso staff add) to record {what}")
        if day > left:
            raise LeaveError(f"STAFF: {sid} ({person['name']}) left on {left.isoformat()}: "
                             f"{what} on {day.isoformat()} is after that")
    return person


# -- leave ------------------------------------------------------------------------------
_LEAVE_SELECT = ("SELECT l.id, l.staff_id, s.name, l.kind, l.first_day, l.last_day, l.half, l.note, l.status, "
                 "l.entered_by, l.entered_at, l.decided_by, l.decided_at "
                 "FROM leave l LEFT JOIN staff s ON s.staff_id = l.staff_id")


def _rows(db, where: str, args) -> list[dict]:
    return [dict(r) for r in db.query(f"{_LEAVE_SELECT} {where}", args)]


def get(db: sqlite_utils.Database, leave_id) -> dict | None:
    """One leave row (with the person's ``name``), or None."""
    rows = _rows(db, "WHERE l.id = ?", [_id(leave_id, "leave")])
    return rows[0] if rows else None


def _sessions(half: str | None) -> set[str]:
    return set(SESSIONS) if half is None else {half}


def _describe(row: dict) -> str:
    days = row["first_day"] if row["first_day"] == row["last_day"] else f"{row['first_day']} to {row['last_day']}"
    part = "whole day(s)" if not row["half"] else f"{row['half']} only"
    return f"{row['kind']} {days}, {part}, {row['status']}"


def _check_overlap(db, staff_id: str, first: date, last: date, half: str | None, exclude: int | None = None) -> None:
    wanted = _sessions(half)
    for other in _rows(db, "WHERE l.staff_id = ? AND l.status IN ('approved', 'requested') "
                           "AND l.first_day <= ? AND l.last_day >= ? ORDER BY l.first_day, l.id",
                       [staff_id, last.isoformat(), first.isoformat()]):
        if other["id"] == exclude:
            continue
        common = wanted & _sessions(other["half"])
        if common:
            day = max(first, date.fromisoformat(other["first_day"]))
            session = "whole day" if len(common) == 2 else common.pop()
            raise LeaveError(
                f"{staff_id} already has leave #{other['id']} ({_describe(other)}) on {day.isoformat()} ({session}); "
                f"remove it first to replace it: congso leave remove {other['id']}")


def add(db: sqlite_utils.Database, staff_id, kind, first_day, last_day=None, half=None, note=None, *,
        entered_by, tz, status: str = "approved") -> dict:
    """Record leave or an official absence; return the stored row. ``status="requested"``: a request to decide."""
    try:
        kind = marks.parse_kind(kind)
    except ValueError as e:
        raise LeaveError(f"--kind: {e}") from None
    try:
        half = marks.parse_half(half)
    except ValueError as e:
        raise LeaveError(str(e)) from None
    first = parse_date(first_day, "--from")
    last = first if last_day in (None, "") else parse_date(last_day, "--to")
    if last < first:
        raise LeaveError(f"--to ({last.isoformat()}) is before --from ({first.isoformat()})")
    span = (last - first).days + 1
    if span > MAX_SPAN_DAYS:
        raise LeaveError(f"--from {first.isoformat()} --to {last.isoformat()} is {span} days; "
                         f"at most {MAX_SPAN_DAYS} (enter a longer absence as two leaves)")
    if status not in ("approved", "requested"):
        raise LeaveError(f"a new leave is 'approved' or 'requested', got {status!r}")
    note = _text(note, "--note", max_len=MAX_NOTE)
    entered_by = _text(entered_by, "entered_by", required=True, max_len=100)
    person = _person(db, staff_id, first, tz, "leave")
    sid = person["staff_id"]
    with _writing(db):
        _check_overlap(db, sid, first, last, half)
        cursor = db.conn.execute(
            "INSERT INTO leave(staff_id, kind, first_day, last_day, half, note, status, entered_by, entered_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sid, kind, first.isoformat(), last.isoformat(), half, note, status, entered_by, clock.now_iso(tz)))
        leave_id = cursor.lastrowid
    return get(db, leave_id)


def decide(db: sqlite_utils.Database, leave_id, approve: bool, *, decided_by, tz) -> dict:
    """A requested leave -> "approved" or "refused", with who decided and when; return the row."""
    row = get(db, leave_id)
    if row is None:
        raise LeaveError(f"no leave #{leave_id} (congso leave list)")
    if row["status"] != "requested":
        raise LeaveError(f"leave #{row['id']} is {row['status']} already; only a request can be approved or refused")
    decided_by = _text(decided_by, "decided_by", required=True, max_len=100)
    status = "approved" if approve else "refused"
    with _writing(db):
        if approve:
            _check_overlap(db, row["staff_id"], date.fromisoformat(row["first_day"]),
                           date.fromisoformat(row["last_day"]), row["half"], exclude=row["id"])
        db.conn.execute("UPDATE leave SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'requested'",
                        (status, decided_by, clock.now_iso(tz), row["id"]))
    return get(db, row["id"])


def remove(db: sqlite_utils.Database, leave_id) -> dict:
    """Delete a leave (entered by mistake, or to be replaced); return the removed row."""
    row = get(db, leave_id)
    if row is None:
        raise LeaveError(f"no leave #{leave_id} (congso leave list)")
    with db.conn:
        db.conn.execute("DELETE FROM leave WHERE id = ?", (row["id"],))
    return row


def list_leave(db: sqlite_utils.Database, *, staff_id=None, first=None, last=None, status=None) -> list[dict]:
    """Leave overlapping [first, last] (either bound optional), by first day; with the person's ``name``."""
    where, args = [], []
    if staff_id:
        where.append("l.staff_id = ?")
        args.append(str(staff_id).strip())
    first_s, last_s = _bound(first, "--from"), _bound(last, "--to")
    if last_s is not None:
        where.append("l.first_day <= ?")
        args.append(last_s)
    if first_s is not None:
        where.append("l.last_day >= ?")
        args.append(first_s)
    if status:
        if status not in STATUSES:
            raise LeaveError(f"--status must be one of {', '.join(STATUSES)}, got {status!r}")
        where.append("l.status = ?")
        args.append(status)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    return _rows(db, f"{clause} ORDER BY l.first_day, l.staff_id, l.id", args)


def on_days(db: sqlite_utils.Database, first, last) -> dict:
    """Approved leave in [first, last]: {(staff_id, date): {"am": KIND, "pm": KIND}} (only the sessions covered)."""
    first, last = parse_date(first, "first"), parse_date(last, "last")
    out: dict[tuple[str, date], dict[str, str]] = {}
    for sid, kind, d1, d2, half in db.execute(
            "SELECT staff_id, kind, first_day, last_day, half FROM leave "
            "WHERE status = 'approved' AND first_day <= ? AND last_day >= ? ORDER BY id",
            (last.isoformat(), first.isoformat())):
        day = max(first, date.fromisoformat(d1))
        end = min(last, date.fromisoformat(d2))
        while day <= end:
            sessions = out.setdefault((sid, day), {})
            for session in SESSIONS if half is None else (half,):
                sessions.setdefault(session, kind)
            day += timedelta(days=1)
    return out


# -- corrections (manual punches) ---------------------------------------------------------
_PUNCH_SELECT = ("SELECT p.id, p.staff_id, s.name, p.ts, p.local_date, p.reason, p.entered_by, p.entered_at "
                 "FROM manual_punches p LEFT JOIN staff s ON s.staff_id = p.staff_id")


def get_punch(db: sqlite_utils.Database, punch_id) -> dict | None:
    rows = [dict(r) for r in db.query(f"{_PUNCH_SELECT} WHERE p.id = ?", [_id(punch_id, "punch")])]
    return rows[0] if rows else None


def add_punch(db: sqlite_utils.Database, staff_id, at, reason, *, entered_by, tz, now: datetime | None = None) -> dict:
    """Record a forgotten scan (a correction) with who entered it, when and why; return the stored row."""
    when = parse_at(at, tz)
    now = now or clock.now(tz)
    if when > now:
        raise LeaveError(f"--at {when.strftime('%Y-%m-%dT%H:%M')} is in the future; a correction is for a scan "
                         "that was forgotten")
    reason = _text(reason, "--reason", max_len=MAX_REASON)
    if not reason or len(reason) < MIN_REASON:
        raise LeaveError(f"--reason: say why the scan is entered by hand (at least {MIN_REASON} characters), "
                         "e.g. \"quên chấm công, trưởng bộ phận xác nhận\"")
    entered_by = _text(entered_by, "entered_by", required=True, max_len=100)
    local_date = when.date()
    person = _person(db, staff_id, local_date, tz, "a correction")
    sid = person["staff_id"]
    ts = when.isoformat(timespec="seconds")
    with _writing(db):
        for other_id, other_ts in db.execute(
                "SELECT id, ts FROM manual_punches WHERE local_date = ? AND staff_id = ?", (local_date.isoformat(), sid)):
            other = datetime.fromisoformat(other_ts).astimezone(when.tzinfo)
            if other.replace(second=0, microsecond=0) == when:
                raise LeaveError(f"{sid} already has correction #{other_id} at {when.strftime('%Y-%m-%d %H:%M')} "
                                 f"(congso punch remove {other_id} to replace it)")
        cursor = db.conn.execute(
            "INSERT INTO manual_punches(staff_id, ts, local_date, reason, entered_by, entered_at) VALUES (?, ?, ?, ?, ?, ?)",
            (sid, ts, local_date.isoformat(), reason, entered_by, clock.now_iso(tz)))
        punch_id = cursor.lastrowid
    return get_punch(db, punch_id)


def remove_punch(db: sqlite_utils.Database, punch_id) -> dict:
    """Delete a correction (entered by mistake); return the removed row."""
    row = get_punch(db, punch_id)
    if row is None:
        raise LeaveError(f"no correction #{punch_id} (congso punch list)")
    with db.conn:
        db.conn.execute("DELETE FROM manual_punches WHERE id = ?", (row["id"],))
    return row


def list_punches(db: sqlite_utils.Database, *, staff_id=None, first=None, last=None) -> list[dict]:
    """Corrections whose office day is in [first, last] (either bound optional), oldest first."""
    where, args = [], []
    if staff_id:
        where.append("p.staff_id = ?")
        args.append(str(staff_id).strip())
    first_s, last_s = _bound(first, "--from"), _bound(last, "--to")
    if first_s is not None:
        where.append("p.local_date >= ?")
        args.append(first_s)
    if last_s is not None:
        where.append("p.local_date <= ?")
        args.append(last_s)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    return [dict(r) for r in db.query(f"{_PUNCH_SELECT} {clause} ORDER BY p.ts, p.id", args)]


def punches_between(db: sqlite_utils.Database, first, last, tz: str) -> dict:
    """Corrections in [first, last]: {(staff_id, date): [aware datetime in office time, ...]}, each list in order."""
    first, last = parse_date(first, "first"), parse_date(last, "last")
    zone = clock.zone(tz)
    out: dict[tuple[str, date], list[datetime]] = {}
    for sid, ts, local_date in db.execute(
            "SELECT staff_id, ts, local_date FROM manual_punches WHERE local_date BETWEEN ? AND ? ORDER BY ts",
            (first.isoformat(), last.isoformat())):
        out.setdefault((sid, date.fromisoformat(local_date)), []).append(datetime.fromisoformat(ts).astimezone(zone))
    for times in out.values():
        times.sort()
    return out


def corrections(rep) -> list[dict]:
    """The clerk's work list from a ``timesheet.Report``: every working (person, day) missing an "in" or an "out".

    Oldest first (then by staff id). Rows: staff_id, name, day (date), in,
    out (aware datetimes or None: what the day has), missing ("in" | "out").
    Today's open day is left out: its "out" is not due yet.
    """
    rows = []
    for person in rep.people:
        sid = person["staff_id"]
        for d in rep.records.get(sid, []):
            if d.kind != "work" or d.day_open or not (d.missing_in or d.missing_out):
                continue
            rows.append({"staff_id": sid, "name": person.get("name", ""), "day": d.day,
                         "in": d.first, "out": d.last, "missing": "in" if d.missing_in else "out"})
    rows.sort(key=lambda r: (r["day"], r["staff_id"]))
    return rows
