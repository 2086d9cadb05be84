"""Ratings at the gateway: desk sessions, the TV's summary, the satisfaction report.

Votes themselves are stored by ingest in ``rating_events`` (one row per
``event_id``). This module adds:

- ``desk_sessions``: an officer at a desk serving one citizen (optionally on
  one dossier). ``open_session`` writes it (closing any session still open
  on that desk); it ends with the citizen's vote (a rating event carrying
  its ``session_id``), when it expires, or by ``close_session``. The state
  publisher sends the open session retained on ``state/desk/<desk>`` and
  clears the topic when none is open, so the kiosk shows the officer's name
  and ties the next vote to them.
- the ``ratings`` state: today's and this month's votes per level and the
  month's satisfied percentage, for the waiting-hall TV.
- ``build_report``: votes per officer, desk or reason over a date range, in
  the layout of the per-officer satisfaction report, with CSV and XLSX
  writers.

"Satisfied" everywhere means very satisfied + satisfied over all votes.
A vote the kiosk flagged ``"burst": true`` (it came right after a burst of
presses during the lockout: likely a child or button-mashing) is counted
unless the report is asked to exclude flagged votes, and the report always
says how many there were.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO

import sqlite_utils

from ..protocol import messages, topics
from ..vocab import levels as levels_mod
from ..vocab.text import csv_field, write_cell
from . import state

DEFAULT_MINUTES = 15
MAX_MINUTES = 24 * 60


class SessionError(ValueError):
    """A desk session that cannot be opened or closed as asked (message says why)."""


# -- officers ---------------------------------------------------------------

def _staff_names(db: sqlite_utils.Database, active_only: bool = False) -> dict[str, str] | None:
    """staff_id -> name from the staff table (kept by the staff module), or None if it has none."""
    where = " WHERE active" if active_only else ""
    names = dict(db.execute(f"SELECT staff_id, name FROM staff{where}").fetchall())
    return names or None


def officer_name(db: sqlite_utils.Database, officer_id: str) -> str:
    """The officer's name from the staff list.

    An officer who is not on the list, or no longer active, is an error (a
    typo would tie votes to nobody). Only while the office has no staff list at all (a fresh
    install) the id itself stands for the name.
    """
    if _staff_names(db) is None:
        return officer_id
    names = _staff_names(db, active_only=True) or {}
    if officer_id not in names:
        known = ", ".join(sorted(names)[:10]) + (" ..." if len(names) > 10 else "")
        raise SessionError(f"unknown officer {officer_id!r}: not in the staff list (known: {known})")
    return names[officer_id]


# -- sessions ---------------------------------------------------------------

def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _session_payload(row: dict) -> dict:
    return {key: row[key] for key in ("session_id", "desk_id", "officer_id", "officer_name",
                                       "dossier_code", "opened_at", "expires_at")}


def open_session(db: sqlite_utils.Database, desk_id: str, officer_id: str, now: datetime,
                 dossier_code: str | None = None, minutes: int = DEFAULT_MINUTES) -> dict:
    """Open a session on ``desk_id`` for ``officer_id``; return it (the retained payload's fields).

    Any session still open on that desk is closed first ("replaced"). Commits.
    """
    try:
        topics.check_desk_id(desk_id)
    except ValueError as e:
        raise SessionError(str(e)) from None
    if not officer_id.strip():
        raise SessionError("--officer must not be empty")
    if not 1 <= minutes <= MAX_MINUTES:
        raise SessionError(f"--minutes must be between 1 and {MAX_MINUTES}, got {minutes}")
    dossier_code = (dossier_code or "").strip() or None
    name = officer_name(db, officer_id)
    row = {
        "session_id": str(uuid.uuid4()),
        "desk_id": desk_id,
        "officer_id": officer_id,
        "officer_name": name,
        "dossier_code": dossier_code,
        "opened_at": _iso(now),
        "expires_at": _iso(now + timedelta(minutes=minutes)),
        "closed_at": None,
        "closed_by": None,
        "vote_event_id": None,
    }
    messages.validate("desk", {"v": messages.VERSION, **_session_payload(row)})
    with db.conn:
        db.conn.execute("UPDATE desk_sessions SET closed_at=?, closed_by='replaced' WHERE desk_id=? AND closed_at IS NULL",
                        (_iso(now), desk_id))
        db["desk_sessions"].insert(row)
    return _session_payload(row)


def close_session(db: sqlite_utils.Database, desk_id: str, now: datetime) -> dict | None:
    """Close the open session on ``desk_id``; return it, or None if none was open. Commits."""
    current = open_sessions(db, now, desk_id)
    with db.conn:
        db.conn.execute("UPDATE desk_sessions SET closed_at=?, closed_by='closed' WHERE desk_id=? AND closed_at IS NULL",
                        (_iso(now), desk_id))
    return current[0] if current else None


def open_sessions(db: sqlite_utils.Database, now: datetime, desk_id: str | None = None) -> list[dict]:
    """Sessions open and not expired at ``now``, by desk."""
    sql = "SELECT * FROM desk_sessions WHERE closed_at IS NULL"
    params: list = []
    if desk_id:
        sql += " AND desk_id=?"
        params.append(desk_id)
    rows = list(db.query(sql + " ORDER BY desk_id", params))
    return [_session_payload(r) for r in rows if messages.parse_ts(r["expires_at"]) > now]


def close_used_and_expired_sessions(db: sqlite_utils.Database, ctx: state.Context) -> None:
    """A session ends with its vote or at its expiry (runs in a transaction)."""
    voted = db.execute(
        "SELECT s.session_id, MIN(r.event_id) FROM desk_sessions s JOIN rating_events r ON r.session_id = s.session_id "
        "WHERE s.closed_at IS NULL GROUP BY s.session_id"
    ).fetchall()
    for session_id, event_id in voted:
        db.execute("UPDATE desk_sessions SET closed_at=?, closed_by='vote', vote_event_id=? WHERE session_id=?",
                   (_iso(ctx.now), event_id, session_id))
    for session_id, expires_at in db.execute(
            "SELECT session_id, expires_at FROM desk_sessions WHERE closed_at IS NULL").fetchall():
        if messages.parse_ts(expires_at) <= ctx.now:
            db.execute("UPDATE desk_sessions SET closed_at=?, closed_by='expired' WHERE session_id=?",
                       (expires_at, session_id))


# -- the console's desks page ----------------------------------------------------

def known_desks(db: sqlite_utils.Database, since: str | None = None) -> list[str]:
    """Every desk the office has: the kiosks' (their health's ``desk_id``, or the desk their votes
    came from since ``since``), the desks that had sessions and the desks given to console users."""
    desks: set[str] = set()
    desks.update(r[0] for r in db.execute("SELECT DISTINCT desk_id FROM desk_sessions"))
    desks.update(r[0] for r in db.execute("SELECT DISTINCT desk_id FROM web_user_desks"))
    desks.update(d for d, _ in kiosk_desks(db, since))
    out = []
    for desk in desks:
        try:
            out.append(topics.check_desk_id(desk))
        except (TypeError, ValueError):
            continue  # a stray value in a health payload is no desk
    return sorted(out)


def kiosk_desks(db: sqlite_utils.Database, since: str | None = None) -> list[tuple[str, str]]:
    """(desk_id, node_id) of every rating kiosk: from its health if it says its desk, else from its votes."""
    pairs: set[tuple[str, str]] = set()
    for node_id, desk in db.execute(
            "SELECT node_id, json_extract(last_health, '$.desk_id') FROM nodes "
            "WHERE kind = 'rating' AND json_valid(last_health)"):
        if isinstance(desk, str) and desk:
            pairs.add((desk, node_id))
    sql, params = "SELECT DISTINCT desk_id, node_id FROM rating_events", []
    if since:
        sql += " WHERE local_date >= ?"  # indexed: the last months' votes, not all of them
        params.append(since)
    pairs.update((d, n) for d, n in db.execute(sql, params))
    return sorted(pairs)


def desk_board(db: sqlite_utils.Database, now: datetime, desks: list[str] | None = None,
               since: str | None = None) -> list[dict]:
    """For each desk (all known, or ``desks``): the open session (or None) and its kiosks."""
    wanted = sorted(set(desks)) if desks is not None else known_desks(db, since)
    current = {s["desk_id"]: s for s in open_sessions(db, now)}
    kiosks: dict[str, list[str]] = {}
    for desk, node in kiosk_desks(db, since):
        kiosks.setdefault(desk, []).append(node)
    return [{"desk_id": d, "session": current.get(d), "kiosks": kiosks.get(d, [])} for d in wanted]


def desk_dossiers(db: sqlite_utils.Database, desk_id: str, limit: int = 50) -> list[dict]:
    """The dossiers of a desk not yet returned, newest first (the officer picks the citizen's one).

    "ready" counts: the citizen who comes to collect it is served (and votes) too.
    """
    return list(db.query(
        "SELECT code, applicant, procedure, received_at, status FROM dossiers "
        "WHERE desk = ? AND status != 'returned' ORDER BY received_at DESC LIMIT ?",
        [desk_id, limit]))


def recent_open_dossiers(db: sqlite_utils.Database, limit: int = 50) -> list[dict]:
    """The newest dossiers not yet returned, of any desk (for a desk that has none of its own)."""
    return list(db.query(
        "SELECT code, applicant, procedure, received_at, status, desk FROM dossiers "
        "WHERE status != 'returned' ORDER BY received_at DESC LIMIT ?", [limit]))


def dossier_exists(db: sqlite_utils.Database, code: str) -> bool:
    return db.execute("SELECT 1 FROM dossiers WHERE code = ?", (code,)).fetchone() is not None


def active_officers(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """(staff_id, name) of the active staff, by name: whom an admin may open a session for."""
    return [tuple(r) for r in db.execute("SELECT staff_id, name FROM staff WHERE active ORDER BY name, staff_id")]


# -- the TV's summary and the desks' retained sessions ------------------------

def level_counts(db: sqlite_utils.Database, day_from: str, day_to: str) -> dict[str, int]:
    return dict(db.execute(
        "SELECT level, COUNT(*) FROM rating_events WHERE local_date BETWEEN ? AND ? GROUP BY level",
        (day_from, day_to)).fetchall())


def _scale_codes(settings) -> list[str]:
    n = settings.rating.levels if settings is not None else 3
    try:
        return [lv.code for lv in levels_mod.scale(n)]
    except levels_mod.ScaleError:
        return [lv.code for lv in levels_mod.scale(3)]


def _with_zeros(counts: dict[str, int], codes: list[str]) -> dict[str, int]:
    """Every level of the office's scale (0 when none), then any other level seen, in scale order."""
    keys = [c for c in messages.RATING_LEVELS if c in codes or counts.get(c)]
    return {c: counts.get(c, 0) for c in keys}


def summary(db: sqlite_utils.Database, today: date, codes: list[str]) -> dict:
    today_s = today.isoformat()
    month = level_counts(db, today.replace(day=1).isoformat(), today_s)
    return {
        "today": _with_zeros(level_counts(db, today_s, today_s), codes),
        "month": _with_zeros(month, codes),
        "satisfied_pct_month": levels_mod.satisfied_pct(month),
    }


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict[str, dict | None]:
    out: dict[str, dict | None] = {"ratings": summary(db, ctx.now.date(), _scale_codes(ctx.settings))}
    # Every desk that ever had a session: its open one, or None to clear the topic.
    desks = [r[0] for r in db.execute("SELECT DISTINCT desk_id FROM desk_sessions").fetchall()]
    current = {s["desk_id"]: s for s in open_sessions(db, ctx.now)}
    for desk in desks:
        out[f"desk/{desk}"] = current.get(desk)
    return out


# -- the report -----------------------------------------------------------------

BY_CHOICES = ("officer", "desk", "reason")
NO_OFFICER = "(không gắn cán bộ)"


@dataclass
class ReportRow:
    key: str | None           # officer id, desk id or reason code
    name: str                 # officer name, desk id or reason label
    votes: int
    counts: dict[str, int] = field(default_factory=dict)
    flagged: int = 0

    def pct(self, code: str) -> float | None:
        return round(100.0 * self.counts.get(code, 0) / self.votes, 1) if self.votes else None

    @property
    def satisfied_pct(self) -> float | None:
        return levels_mod.satisfied_pct(self.counts) if self.votes else None


@dataclass
class Report:
    by: str
    unit: str
    day_from: str
    day_to: str
    levels: list[str]
    rows: list[ReportRow]
    total: ReportRow
    exclude_flagged: bool = False
    unsatisfied_votes: int = 0  # by reason: the base of the percentages

    def table(self, lang: str = "vi") -> tuple[list[str], list[list]]:
        """(headers, rows) with the total last; ``lang`` "vi" for the office's files, "en" for the terminal."""
        vi = lang == "vi"
        if self.by == "reason":
            headers = (["Đơn vị", "Mã lý do", "Lý do", "Số phiếu chọn", "Tỷ lệ trên số phiếu không hài lòng (%)"] if vi else
                       ["unit", "reason", "label", "votes", "% of dissatisfied votes"])
            body = [[self.unit, r.key or "", r.name, r.votes,
                     round(100.0 * r.votes / self.unsatisfied_votes, 1) if self.unsatisfied_votes else None]
                    for r in self.rows]
            body.append([self.unit, "", "Tổng số phiếu không hài lòng" if vi else "dissatisfied votes",
                         self.unsatisfied_votes, None])
            return headers, body
        first = {"officer": ["Mã cán bộ", "Cán bộ"] if vi else ["officer_id", "officer"],
                 "desk": ["Quầy"] if vi else ["desk"]}[self.by]
        labels = [levels_mod.label(c) if vi else c for c in self.levels]
        headers = (["Đơn vị", *first, "Số phiếu" if vi else "votes", *labels,
                    *[f"{label} (%)" if vi else f"{label} %" for label in labels],
                    "Tỷ lệ hài lòng (%)" if vi else "satisfied %",
                    "Phiếu nghi bấm liên tục" if vi else "flagged burst"])
        body = []
        for r in [*self.rows, self.total]:
            ident = ([r.key or "", r.name] if self.by == "officer" else [r.name])
            body.append([self.unit, *ident, r.votes, *[r.counts.get(c, 0) for c in self.levels],
                         *[r.pct(c) for c in self.levels], r.satisfied_pct, r.flagged])
        return headers, body


def _day(value: str, option: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a date like 2026-11-23, got {value!r}") from None


def build_report(db: sqlite_utils.Database, day_from: str, day_to: str, by: str = "officer",
                 unit: str = "", scale_levels: int = 3, exclude_flagged: bool = False,
                 officer_id: str | None = None) -> Report:
    """Votes from ``day_from`` to ``day_to`` (office dates, inclusive) grouped ``by`` officer, desk or reason.

    ``officer_id``: only the votes tied to that officer (an officer sees their own ratings only).
    """
    day_from, day_to = _day(day_from, "--from"), _day(day_to, "--to")
    if day_from > day_to:
        raise ValueError(f"--from {day_from} is after --to {day_to}")
    if by not in BY_CHOICES:
        raise ValueError(f"--by must be one of {', '.join(BY_CHOICES)}, got {by!r}")
    where, params = "local_date BETWEEN ? AND ?", [day_from, day_to]
    if exclude_flagged:
        where += " AND COALESCE(json_extract(payload, '$.burst'), 0) = 0"
    if officer_id is not None:
        where += " AND officer_id = ?"
        params.append(officer_id)
    votes = db.execute(
        f"SELECT desk_id, level, reasons, officer_id, COALESCE(json_extract(payload, '$.burst'), 0) "
        f"FROM rating_events WHERE {where}", params).fetchall()
    codes = [lv.code for lv in levels_mod.scale(scale_levels)]
    seen = {level for _, level, _, _, _ in votes}
    level_codes = [c for c in messages.RATING_LEVELS if c in codes or c in seen]

    if by == "reason":
        return _reason_report(votes, unit, day_from, day_to, level_codes, exclude_flagged)

    names = _staff_names(db) or {}
    # Names of officers who have left the staff list: the one their sessions carried.
    session_names = dict(db.execute(
        "SELECT officer_id, officer_name FROM desk_sessions ORDER BY opened_at").fetchall())
    rows: dict[str | None, ReportRow] = {}
    total = ReportRow(None, "Tổng cộng", 0)
    for desk, level, _reasons, officer, burst in votes:
        key = officer if by == "officer" else desk
        if key not in rows:
            name = (names.get(key) or session_names.get(key) or key or NO_OFFICER) if by == "officer" else key
            rows[key] = ReportRow(key, name, 0)
        for r in (rows[key], total):
            r.votes += 1
            r.counts[level] = r.counts.get(level, 0) + 1
            r.flagged += 1 if burst else 0
    ordered = sorted(rows.values(), key=lambda r: (r.key is None, r.name, r.key or ""))
    return Report(by, unit, day_from, day_to, level_codes, ordered, total, exclude_flagged)


def _reason_report(votes, unit, day_from, day_to, level_codes, exclude_flagged) -> Report:
    cited: dict[str, int] = {code: 0 for code, _ in levels_mod.REASONS}
    unsatisfied = none_ticked = 0
    for _desk, level, reasons, _officer, _burst in votes:
        try:
            codes = json.loads(reasons) if reasons else []
        except ValueError:
            codes = []
        for code in dict.fromkeys(codes):  # a reason counts once per vote
            cited[code] = cited.get(code, 0) + 1
        if level in levels_mod.UNSATISFIED_CODES:
            unsatisfied += 1
            none_ticked += 0 if codes else 1
    rows = [ReportRow(code, levels_mod.REASON_LABELS.get(code, code), n) for code, n in cited.items()]
    rows.append(ReportRow(None, "(không chọn lý do)", none_ticked))
    total = ReportRow(None, "Tổng", unsatisfied)
    report = Report("reason", unit, day_from, day_to, level_codes, rows, total, exclude_flagged)
    report.unsatisfied_votes = unsatisfied
    return report


def _title(report: Report) -> list[str]:
    d1, d2 = (date.fromisoformat(d).strftime("%d/%m/%Y") for d in (report.day_from, report.day_to))
    by = {"officer": "theo cán bộ", "desk": "theo quầy", "reason": "theo lý do không hài lòng"}[report.by]
    lines = [f"BÁO CÁO KẾT QUẢ ĐÁNH GIÁ MỨC ĐỘ HÀI LÒNG ({by.upper()})",
             f"Đơn vị: {report.unit}", f"Từ ngày {d1} đến ngày {d2}"]
    if report.exclude_flagged:
        lines.append("Không tính các phiếu nghi bấm liên tục")
    return lines


def write_csv(report: Report, out: IO[str]) -> int:
    """Header and one row per officer/desk/reason, total last; returns the number of rows."""
    headers, body = report.table("vi")
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in body:
        # Officer names, desk ids and reasons never start a formula in Excel.
        writer.writerow([csv_field("" if v is None else v) for v in row])
    return len(body)


def write_xlsx(report: Report, path: str) -> None:
    """The report as a workbook: title lines, then the table with a bold header and total."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    headers, body = report.table("vi")
    wb = Workbook()
    ws = wb.active
    ws.title = {"officer": "Theo cán bộ", "desk": "Theo quầy", "reason": "Theo lý do"}[report.by]
    # Every cell through write_cell: text beginning with "=" stays text, and a
    # control character in a name cannot make openpyxl refuse the workbook.
    titles = _title(report)
    for r, line in enumerate(titles, start=1):
        write_cell(ws, r, 1, line)
    ws["A1"].font = Font(bold=True, size=13)
    header_row = len(titles) + 2  # a blank line between title and table
    for c, h in enumerate(headers, start=1):
        cell = write_cell(ws, header_row, c, h)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
    for r, row in enumerate(body, start=header_row + 1):
        for c, value in enumerate(row, start=1):
            write_cell(ws, r, c, value)
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for i, h in enumerate(headers, start=1):
        width = max(len(str(h)), *(len(str(r[i - 1] or "")) for r in body)) if body else len(str(h))
        ws.column_dimensions[get_column_letter(i)].width = min(40, max(10, width + 2))
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    wb.save(path)


DOMAIN = state.Domain("ratings", builders=(build,), maintenance=(close_used_and_expired_sessions,))
