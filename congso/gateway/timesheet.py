"""Work rules, holidays and timesheets from the stored attendance events.

The rules, as the office reads them (docs/attendance.md):

- Office hours per weekday come from ``[workrules]`` ("07:30-11:30,13:30-17:00";
  empty = not a working day). A working day is one with hours that is not
  in the ``holidays`` table.
- A person's first scan of the (office-zone) day is "in", the last is
  "out". Lunch breaks are not tracked. With a single scan, the scan is
  "in" when it is before the middle of the day's hours and "out" after it,
  and the other one is reported missing.
- Times are taken to the minute, as on a wall clock. Late: "in" more than
  ``grace_minutes`` after the start; the late minutes then count from the
  start (07:36 with 5 minutes of grace is 6 minutes late; 07:35 is on
  time). Early leave: the same before the end of the day's hours.
- Absent: a working day with no scan, once it is over (a day in the
  future, or today before closing time, is not absent).
- A day with any event from a node whose clock was not synchronised is
  flagged (``*`` in the month table).
- Events whose staff_id is null (a card nobody had, a finger slot the door
  did not know) are credited to whoever the card or slot belongs to now:
  a new colleague's taps from before ``congso card assign`` count.
"""

from __future__ import annotations

import csv
import calendar as calendar_mod
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO

import sqlite_utils

from ..protocol import clock
from ..vocab import text
from ..vocab.text import csv_field, write_cell

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
PERIOD_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")

ABSENT, HOLIDAY, OFF = "V", "L", "-"  # vắng, nghỉ lễ, ngày nghỉ


class RulesError(ValueError):
    pass


# -- work rules ----------------------------------------------------------------------
@dataclass(frozen=True)
class WorkRules:
    hours: dict[int, list[tuple[int, int]]]  # weekday (0 = Monday) -> [(start_min, end_min)]
    grace_minutes: int

    @classmethod
    def from_settings(cls, workrules) -> "WorkRules":
        hours = {}
        for index, name in enumerate(WEEKDAYS):
            hours[index] = parse_hours(getattr(workrules, name), f"[workrules] {name}")
        grace = int(workrules.grace_minutes)
        if not 0 <= grace <= 120:
            raise RulesError(f"[workrules] grace_minutes must be between 0 and 120, got {grace}")
        return cls(hours, grace)

    def periods(self, day: date) -> list[tuple[int, int]]:
        return self.hours[day.weekday()]


def parse_hours(text: str, where: str) -> list[tuple[int, int]]:
    periods = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = PERIOD_RE.match(part)
        if not m:
            raise RulesError(f"{where}: {part!r} is not HH:MM-HH:MM (e.g. 07:30-11:30,13:30-17:00)")
        h1, m1, h2, m2 = map(int, m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise RulesError(f"{where}: {part!r} is not a time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start or (periods and start < periods[-1][1]):
            raise RulesError(f"{where}: {part!r} must end after it starts and after the period before")
        periods.append((start, end))
    return periods


# -- holidays ----------------------------------------------------------------------
def parse_day(text: str, what: str = "day") -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise RulesError(f"{what} must be YYYY-MM-DD, got {text!r}") from None


def add_holiday(db: sqlite_utils.Database, day: str, name: str) -> date:
    d = parse_day(day)
    try:
        name = text.clean(name, "holiday name", max_len=120)
    except text.TextError as e:
        raise RulesError(str(e)) from None
    if not name:
        raise RulesError("a holiday needs a name (e.g. \"Quốc khánh\")")
    with db.conn:
        db.conn.execute("INSERT OR REPLACE INTO holidays(day, name) VALUES (?, ?)",
                        (d.isoformat(), name))
    return d


def add_holidays(db: sqlite_utils.Database, first_day: str, name: str, days: int = 1) -> date:
    """``days`` holidays in a row from ``first_day`` (Tết), all named ``name``; return the first."""
    first = parse_day(first_day)
    if not isinstance(days, int) or not 1 <= days <= 366:
        raise RulesError(f"a holiday lasts 1 to 366 days, got {days!r}")
    for n in range(days):
        add_holiday(db, (first + timedelta(n)).isoformat(), name)
    return first


def remove_holiday(db: sqlite_utils.Database, day: str) -> None:
    d = parse_day(day)
    with db.conn:
        if db.conn.execute("DELETE FROM holidays WHERE day = ?", (d.isoformat(),)).rowcount == 0:
            raise RulesError(f"{d} is not a holiday (congso holiday list)")


def list_holidays(db: sqlite_utils.Database, year: int | None = None) -> list[tuple[str, str]]:
    if year is None:
        return [tuple(r) for r in db.execute("SELECT day, name FROM holidays ORDER BY day")]
    return [tuple(r) for r in db.execute("SELECT day, name FROM holidays WHERE day LIKE ? ORDER BY day", (f"{year}-%",))]


def _holidays(db, first: date, last: date) -> dict[date, str]:
    return {date.fromisoformat(d): n for d, n in db.execute(
        "SELECT day, name FROM holidays WHERE day BETWEEN ? AND ?", (first.isoformat(), last.isoformat()))}


# -- one person, one day ------------------------------------------------------------
@dataclass
class Day:
    day: date
    kind: str  # "work", "holiday", "off"
    holiday: str | None = None
    first: datetime | None = None   # "in"
    last: datetime | None = None    # "out"
    scans: int = 0
    late_min: int = 0
    early_min: int = 0
    absent: bool = False
    pending: bool = False  # a working day not over yet, no scan so far
    clock_unsynced: bool = False
    # A scan whose time was far from when it reached the gateway (ingest's time_flag).
    time_suspect: bool = False
    day_open: bool = False  # today, before closing time: the last scan is not an "out" yet

    @property
    def missing_out(self) -> bool:
        return self.first is not None and self.last is None

    @property
    def missing_in(self) -> bool:
        return self.first is None and self.last is not None

    def cell(self) -> str:
        """The month table's cell: "07:32–17:05", "V", "L", "-", or "" (not over yet)."""
        if self.scans:
            text = f"{_hm(self.first) if self.first else '?'}–{_hm(self.last) if self.last else '?'}"
            return text + ("*" if self.clock_unsynced or self.time_suspect else "")
        if self.absent:
            return ABSENT
        if self.kind == "holiday":
            return HOLIDAY
        if self.kind == "off":
            return OFF
        return ""

    def remarks(self) -> list[tuple[str, object]]:
        """What the day report says of this day, as (code, value) pairs; worded by ``status`` (English)
        and by the console (Vietnamese, ``reports.day_status_vi``)."""
        out: list[tuple[str, object]] = []
        if self.kind == "holiday":
            out.append(("holiday", self.holiday))
        elif self.kind == "off" and not self.scans:
            out.append(("off", None))
        if self.absent:
            out.append(("absent", None))
        if self.pending:
            out.append(("pending", None))
        if self.late_min:
            out.append(("late", self.late_min))
        if self.early_min:
            out.append(("early", self.early_min))
        if self.missing_out:
            out.append(("at_work" if self.day_open else "missing_out", None))
        if self.missing_in:
            out.append(("missing_in", None))
        if self.time_suspect:
            out.append(("time_suspect", None))
        if self.clock_unsynced:
            out.append(("clock_unsynced", None))
        if not out and self.scans:
            out.append(("on_time", None))
        return out

    def status(self) -> str:
        """The day report's words (English: the CLI is for the technician and the office)."""
        return ", ".join(STATUS_WORDS_EN[code].format(value) for code, value in self.remarks())


STATUS_WORDS_EN = {
    "holiday": "holiday ({})", "off": "off day", "absent": "absent", "pending": "no scan yet",
    "late": "late {} min", "early": "left early {} min", "at_work": "at work, day not over",
    "missing_out": "no out scan", "missing_in": "no in scan", "time_suspect": "time_suspect",
    "clock_unsynced": "clock not synced", "on_time": "on time",
}


def _hm(t: datetime) -> str:
    return t.strftime("%H:%M")


def _minute(t: datetime) -> int:
    return t.hour * 60 + t.minute


def evaluate(rules: WorkRules, day: date, holiday: str | None, scans: list[tuple[datetime, bool]],
             now: datetime) -> Day:
    """One person's day from their scans (local times, with clock_synced)."""
    periods = rules.periods(day)
    kind = "holiday" if holiday else ("work" if periods else "off")
    d = Day(day, kind, holiday, scans=len(scans))
    # Today before closing time nobody has "left early" yet: their last scan so far is not the day's last.
    d.day_open = bool(periods) and day == now.date() and _minute(now) < periods[-1][1]
    if scans:
        times = sorted(s[0] for s in scans)
        d.clock_unsynced = not all(s[1] for s in scans)
        d.time_suspect = any(len(s) > 2 and s[2] for s in scans)
        if d.day_open:
            d.first = times[0]
        elif len(times) > 1:
            d.first, d.last = times[0], times[-1]
        elif periods and _minute(times[0]) >= (periods[0][0] + periods[-1][1]) / 2:
            d.last = times[0]  # one scan in the afternoon: the morning one is missing
        else:
            d.first = times[0]
        if kind == "work":
            start, end = periods[0][0], periods[-1][1]
            grace = rules.grace_minutes
            if d.first is not None and _minute(d.first) - start > grace:
                d.late_min = _minute(d.first) - start
            if d.last is not None and end - _minute(d.last) > grace:
                d.early_min = end - _minute(d.last)
    elif kind == "work":
        today = now.date()
        closing = periods[-1][1]
        if day < today or (day == today and _minute(now) >= closing):
            d.absent = True
        else:
            d.pending = day == today
    return d


# -- reading the events ----------------------------------------------------------------
SCANS_SQL = """
SELECT COALESCE(e.staff_id, c.staff_id, f.staff_id) AS who, e.local_date, e.ts, e.clock_synced, e.time_flag
FROM attendance_events e
LEFT JOIN staff_cards c ON e.staff_id IS NULL AND e.method = 'card' AND c.uid = e.credential
LEFT JOIN finger_slots f ON e.staff_id IS NULL AND e.method = 'finger' AND f.node_id = e.node_id
     AND CAST(f.slot AS TEXT) = e.credential
WHERE e.local_date BETWEEN ? AND ?
"""


def scans_between(db: sqlite_utils.Database, first: date, last: date, tz: str) -> dict[tuple[str, date], list]:
    zone = clock.zone(tz)
    out: dict[tuple[str, date], list] = {}
    for who, local_date, ts, synced, time_flag in db.execute(SCANS_SQL, (first.isoformat(), last.isoformat())):
        if who is None:
            continue  # a card or finger still nobody's
        when = datetime.fromisoformat(ts).astimezone(zone)
        out.setdefault((who, date.fromisoformat(local_date)), []).append((when, bool(synced), time_flag is not None))
    return out


def people(db: sqlite_utils.Database, scans: dict) -> list[dict]:
    """Active staff, and anybody else who scanned in the period (left since, or unknown to the table)."""
    rows = {r[0]: {"staff_id": r[0], "name": r[1], "department": r[2] or "", "active": bool(r[3])}
            for r in db.execute("SELECT staff_id, name, department, active FROM staff")}
    wanted = {sid for sid, row in rows.items() if row["active"]} | {sid for sid, _ in scans}
    return [rows.get(sid, {"staff_id": sid, "name": "(not in the staff list)", "department": "", "active": False})
            for sid in sorted(wanted)]


@dataclass
class Report:
    first: date
    last: date
    days: list[date]
    people: list[dict]
    records: dict[str, list[Day]] = field(default_factory=dict)  # staff_id -> a Day per day

    def totals(self, staff_id: str) -> dict[str, int]:
        days = self.records[staff_id]
        return {
            "late_minutes": sum(d.late_min for d in days),
            "early_minutes": sum(d.early_min for d in days),
            "absent_days": sum(1 for d in days if d.absent),
            "days_present": sum(1 for d in days if d.scans),
        }


def report(db: sqlite_utils.Database, rules: WorkRules, first: date, last: date, tz: str,
           now: datetime | None = None) -> Report:
    now = now or clock.now(tz)
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    scans = scans_between(db, first, last, tz)
    holidays = _holidays(db, first, last)
    result = Report(first, last, days, people(db, scans))
    for person in result.people:
        sid = person["staff_id"]
        result.records[sid] = [evaluate(rules, d, holidays.get(d), scans.get((sid, d), []), now) for d in days]
    return result


def month_bounds(text: str) -> tuple[date, date]:
    m = re.match(r"^(\d{4})-(\d{2})$", text or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise RulesError(f"--month must be YYYY-MM, got {text!r}")
    year, month = int(m.group(1)), int(m.group(2))
    return date(year, month, 1), date(year, month, calendar_mod.monthrange(year, month)[1])


# -- output ----------------------------------------------------------------------------
TOTAL_HEADERS = ["late_minutes", "early_minutes", "absent_days"]
TOTAL_TITLES_VI = ["Đi muộn (phút)", "Về sớm (phút)", "Vắng (ngày)"]
LEGEND_VI = "V: vắng · L: nghỉ lễ · -: ngày nghỉ · *: máy chấm công chưa đồng bộ đồng hồ · giờ vào–giờ ra"


def month_rows(rep: Report) -> list[list]:
    rows = []
    for person in rep.people:
        sid = person["staff_id"]
        totals = rep.totals(sid)
        rows.append([sid, person["name"], person["department"], *(d.cell() for d in rep.records[sid]),
                     *(totals[k] for k in TOTAL_HEADERS)])
    return rows


def write_csv(rep: Report, out: IO[str]) -> int:
    """The month day by day as CSV; staff id, name and department never start a formula."""
    writer = csv.writer(out)
    writer.writerow(["staff_id", "name", "department", *(d.isoformat() for d in rep.days), *TOTAL_HEADERS])
    rows = month_rows(rep)
    # Only the three text columns: the day cells are codes congso wrote ("-" is an off day).
    writer.writerows([*(csv_field(v) for v in row[:3]), *row[3:]] for row in rows)
    return len(rows)


def write_xlsx(rep: Report, path: str, office: str) -> int:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = f"{rep.first:%m-%Y}"
    # Every cell through write_cell: a name beginning with "=" stays text, and a
    # control character in it cannot make openpyxl refuse the whole month.
    write_cell(ws, 1, 1, office)
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"Bảng chấm công tháng {rep.first:%m/%Y}"
    ws["A2"].font = Font(bold=True, size=12)
    header_row = 4
    weekday_vi = ["T2", "T3", "T4", "T5", "T6", "T7", "CN"]
    headers = ["Mã NV", "Họ và tên", "Phòng ban", *(d.day for d in rep.days), *TOTAL_TITLES_VI]
    for col, title in enumerate(headers, start=1):
        cell = ws.cell(row=header_row, column=col, value=title)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for i, d in enumerate(rep.days):
        ws.cell(row=header_row - 1, column=4 + i, value=weekday_vi[d.weekday()]).alignment = Alignment(horizontal="center")
    off_fill = PatternFill("solid", fgColor="EEEEEE")
    absent_fill = PatternFill("solid", fgColor="F8D7DA")
    for r, row in enumerate(month_rows(rep), start=header_row + 1):
        for col, value in enumerate(row, start=1):
            cell = write_cell(ws, r, col, value)
            if 4 <= col < 4 + len(rep.days):
                cell.alignment = Alignment(horizontal="center")
                if value in (OFF, HOLIDAY):
                    cell.fill = off_fill
                elif value == ABSENT:
                    cell.fill = absent_fill
    ws.cell(row=header_row + len(rep.people) + 2, column=1, value=LEGEND_VI)
    ws.column_dimensions["A"].width = 10
    ws.column_dimensions["B"].width = 26
    ws.column_dimensions["C"].width = 18
    for i in range(len(rep.days)):
        ws.column_dimensions[get_column_letter(4 + i)].width = 12
    for i in range(len(TOTAL_TITLES_VI)):
        ws.column_dimensions[get_column_letter(4 + len(rep.days) + i)].width = 11
    ws.freeze_panes = ws.cell(row=header_row + 1, column=4)  # names and day numbers stay in view
    wb.save(path)
    return len(rep.people)


def month_json(rep: Report, office: str) -> dict:
    """The month in the contract's JSON form (OFFICE.md: "Leave, corrections and the timesheet").

    Every day of the month is a key of ``days`` ("1".."31"). Today's
    evaluation is of the whole day, so both sessions get the day's mark:
    ``+`` worked, ``L`` public holiday, ``-`` not a working day, ``V``
    absent, ``None`` not over yet (today before the afternoon, with a scan:
    ``+`` then ``None``). ``absent_days`` counts ``V`` sessions as halves.
    """
    staff_out = []
    for person in rep.people:
        days: dict[str, dict] = {}
        absent_sessions = late = early = 0
        for d in rep.records[person["staff_id"]]:
            if d.kind == "holiday":
                am = pm = HOLIDAY
            elif d.scans:
                am, pm = "+", (None if d.day_open else "+")
            elif d.kind == "off":
                am = pm = OFF
            elif d.absent:
                am = pm = ABSENT
            else:
                am = pm = None  # a working day not over yet
            flags = []
            if d.clock_unsynced:
                flags.append("clock_unsynced")
            if d.missing_in:
                flags.append("missing_in")
            if d.missing_out and not d.day_open:
                flags.append("missing_out")
            absent_sessions += (am == ABSENT) + (pm == ABSENT)
            late += d.late_min
            early += d.early_min
            days[str(d.day.day)] = {"am": am, "pm": pm, "in": _hm(d.first) if d.first else None,
                                    "out": _hm(d.last) if d.last else None, "late_min": d.late_min,
                                    "early_min": d.early_min, "flags": flags}
        absent_days = absent_sessions / 2
        staff_out.append({"staff_id": person["staff_id"], "name": person["name"], "days": days,
                          "totals": {"absent_days": int(absent_days) if absent_days.is_integer() else absent_days,
                                     "late_min": late, "early_min": early}})
    return {"v": 1, "month": f"{rep.first:%Y-%m}", "office": office, "staff": staff_out}
