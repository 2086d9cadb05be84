"""Work rules, sessions and timesheets from the stored scans, leave and corrections.

The rules, as the office reads them (docs/attendance.md; ``../shared/OFFICE.md``):

- Office hours per weekday come from ``[workrules]`` ("07:30-11:30,13:30-17:00";
  empty = not a working day), replaced by a seasonal timetable between its
  dates (``seasons``) and, for staff in a schedule group, by the group's
  own week (``groups``). The periods that start before noon make the
  morning session (``am``), the others the afternoon (``pm``).
- Public holidays (the law's, lunar ones included, and the office's extra
  days off) are ``L``; a weekend day swapped into a working day has the
  hours of the schedule's first working weekday (``days_off``).
- ``scans = 2``: the day's first scan is its "in" and the last its "out"
  (one scan alone: "in" before the middle of the day, "out" after it). A
  session that ends before the "in" or starts after the "out", and is not
  covered by leave, is absent (``V``); the others are worked (``+``).
  ``scans = 4``: each session is judged from its own scans (those before
  the middle of the lunch break belong to the morning), a session with
  none is absent.
- Late minutes are the working minutes from the start of the first
  attended session to the "in", early minutes those from the "out" to the
  end of the last attended session (per session with ``scans = 4``); each
  is counted in full once it exceeds ``grace_minutes``, and a break
  between periods never counts (minutes are taken on the wall clock).
- Approved leave (a timesheet symbol, a whole day or one session) marks its
  session with its KIND: neither absent nor late; a scan on a leave day is
  still shown (its "in" and "out").
- A correction (``congso punch add``) is a scan of its own, flagged
  ``manual`` wherever it was used; device events are never edited.
- A session not over yet (the future; today before its end) is ``None``.
  Today before closing time the last scan so far is not an "out" yet.
- A day with an event from a node whose clock was not synchronised is
  flagged ``clock_unsynced``; one whose time was far from its arrival
  ``time_suspect`` (ingest's time_flag).
- Events whose staff_id is null (a card nobody had, a finger slot the door
  did not know) are credited to whoever the card or slot belongs to now.
"""

from __future__ import annotations

import calendar as calendar_mod
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlite_utils

from ..protocol import clock
from ..vocab import schedule as schedule_mod
from ..vocab import timesheet as marks
from ..vocab.timesheet import ABSENT, HOLIDAY, OFF, WORKED
from . import days_off
from . import leave as leave_mod

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
NOON = 12 * 60

Periods = list[tuple[int, int]]


class RulesError(ValueError):
    pass


# -- work rules ----------------------------------------------------------------------
@dataclass(frozen=True)
class Season:
    name: str
    start: tuple[int, int]  # (month, day), inclusive
    end: tuple[int, int]
    periods: Periods

    def covers(self, day: date) -> bool:
        key = (day.month, day.day)
        if self.start <= self.end:
            return self.start <= key <= self.end
        return key >= self.start or key <= self.end  # a winter timetable across the new year


@dataclass(frozen=True)
class WorkRules:
    hours: dict[int, Periods]  # weekday (0 = Monday) -> [(start_min, end_min)]
    grace_minutes: int
    scans: int = 2
    seasons: tuple[Season, ...] = ()
    groups: dict[str, dict[int, Periods]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, workrules) -> "WorkRules":
        hours = {}
        for index, name in enumerate(WEEKDAYS):
            hours[index] = parse_hours(getattr(workrules, name), f"[workrules] {name}")
        grace = int(workrules.grace_minutes)
        if not 0 <= grace <= 120:
            raise RulesError(f"[workrules] grace_minutes must be between 0 and 120, got {grace}")
        scans = int(getattr(workrules, "scans", 2))
        if scans not in (2, 4):
            raise RulesError(f"[workrules] scans must be 2 or 4, got {scans}")
        seasons = tuple(parse_season(x) for x in getattr(workrules, "seasons", []))
        groups: dict[str, dict[int, Periods]] = {}
        for entry in getattr(workrules, "groups", []):
            name, days, periods = parse_group_entry(entry)
            week = groups.setdefault(name, {i: [] for i in range(7)})
            for d in days:
                week[d] = periods
        return cls(hours, grace, scans, seasons, groups)

    def _week(self, schedule: str | None) -> dict[int, Periods]:
        if schedule and schedule in self.groups:
            return self.groups[schedule]
        return self.hours

    def periods(self, day: date, schedule: str | None = None, swapped: bool = False) -> Periods:
        """The hours of ``day`` for a person on ``schedule`` (None: the office's); ``swapped``: a
        weekend day made a working day, with the hours of the schedule's first working weekday."""
        week = self._week(schedule)
        periods = week[day.weekday()]
        if swapped and not periods:
            periods = next((week[i] for i in range(7) if week[i]), [])
        if periods and week is self.hours:
            for season in self.seasons:
                if season.covers(day):
                    return season.periods
        return periods

    def has_schedule(self, schedule: str | None) -> bool:
        return not schedule or schedule in self.groups


def parse_hours(text: str, where: str) -> Periods:
    try:
        return schedule_mod.parse_hours(text, where)
    except schedule_mod.ScheduleError as e:
        raise RulesError(str(e)) from None


def _month_day(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{2})-(\d{2})", text)
    if not m:
        raise RulesError(f"{where}: {text!r} is not MM-DD")
    month, day = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12 or not 1 <= day <= calendar_mod.monthrange(2024, month)[1]:
        raise RulesError(f"{where}: {text!r} is not a day of the year")
    return month, day


def parse_season(entry: str) -> Season:
    """"summer 04-15..10-14 07:00-11:30,13:30-17:00" -> a Season."""
    where = f"[workrules] seasons: {entry!r}"
    parts = str(entry).split()
    if len(parts) != 3 or ".." not in parts[1]:
        raise RulesError(f"{where} must be \"NAME MM-DD..MM-DD HH:MM-HH:MM,HH:MM-HH:MM\"")
    first, _, last = parts[1].partition("..")
    periods = parse_hours(parts[2], where)
    if not periods:
        raise RulesError(f"{where} has no hours")
    return Season(parts[0], _month_day(first, where), _month_day(last, where), periods)


def parse_group_entry(entry: str) -> tuple[str, list[int], Periods]:
    """"cong-an mon-sat 07:00-11:30,13:30-17:00" -> (name, weekdays, periods)."""
    where = f"[workrules] groups: {entry!r}"
    parts = str(entry).split()
    if len(parts) != 3:
        raise RulesError(f"{where} must be \"NAME DAYS HOURS\", e.g. \"cong-an mon-sat 07:00-11:30,13:30-17:00\"")
    name, spec, hours = parts
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", name):
        raise RulesError(f"{where}: the name {name!r} must be letters, digits, '.', '_' or '-'")
    try:
        days = schedule_mod.parse_days(spec, where)
    except schedule_mod.ScheduleError as e:
        raise RulesError(str(e)) from None
    periods = parse_hours(hours, where)
    if not periods:
        raise RulesError(f"{where} has no hours")
    return name, days, periods


def sessions_of(periods: Periods) -> dict[str, Periods]:
    """The periods of each session: those starting before noon are the morning's."""
    return {"am": [p for p in periods if p[0] < NOON], "pm": [p for p in periods if p[0] >= NOON]}


def working_minutes(periods: Periods, a: int, b: int) -> int:
    """Minutes of [a, b) that fall within ``periods`` (a break between periods is not counted)."""
    return sum(max(0, min(b, e) - max(a, s)) for s, e in periods)


def parse_day(text: str, what: str = "day") -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise RulesError(f"{what} must be YYYY-MM-DD, got {text!r}") from None


# -- one person, one day ------------------------------------------------------------
@dataclass
class Scan:
    at: datetime
    synced: bool = True
    suspect: bool = False  # ingest's time_flag: far from when it reached the gateway
    manual: bool = False   # a correction entered by the clerk


@dataclass
class Day:
    day: date
    kind: str  # "work", "holiday", "off"
    holiday: str | None = None
    am: str | None = None
    pm: str | None = None
    first: datetime | None = None   # "in"
    last: datetime | None = None    # "out"
    scans: int = 0
    late_min: int = 0
    early_min: int = 0
    missing_in: bool = False
    missing_out: bool = False
    manual: bool = False
    pending: bool = False  # today, a working day with no scan so far and a session not over
    clock_unsynced: bool = False
    time_suspect: bool = False
    day_open: bool = False  # today, before closing time: the last scan is not an "out" yet
    leave: dict[str, str] = field(default_factory=dict)  # session -> KIND

    @property
    def absent(self) -> bool:
        return ABSENT in (self.am, self.pm)

    def marks(self) -> tuple[str | None, str | None]:
        return self.am, self.pm

    def symbol(self) -> str:
        """The form's cell: "+", "P", "+/P" (morning/afternoon), "" for an off day or a day not over."""
        return marks.day_symbol(self.am, self.pm)

    def cell(self) -> str:
        """The console's month cell: the symbol (today's also the hour of the first scan), "✎" a correction,
        "*" when a clock or a time is in doubt."""
        out = self.symbol()
        if self.kind == "off":
            # Not a working day: "-", or the hour they came (a Saturday's meeting).
            out = _hm(self.first or self.last) if self.scans else OFF
        elif self.day_open and self.scans:
            # Today, not judged yet: the hour they came, so the grid says who is in.
            out = f"{out} {_hm(self.first or self.last)}".strip()
        if self.manual:
            out += "✎"
        if self.clock_unsynced or self.time_suspect:
            out += "*"
        return out

    def remarks(self) -> list[tuple[str, object]]:
        """What the day report says of this day, as (code, value) pairs; worded by ``status`` (English)
        and by the console (Vietnamese, ``reports.day_status_vi``)."""
        out: list[tuple[str, object]] = []
        if self.kind == "holiday":
            out.append(("holiday", self.holiday))
        elif self.kind == "off" and not self.scans:
            out.append(("off", None))
        kinds = sorted(set(self.leave.values()), key=list(marks.LEAVE_KINDS).index)
        for kind in kinds:
            sessions = [s for s in marks.SESSIONS if self.leave.get(s) == kind]
            out.append(("leave" if len(sessions) == 2 else f"leave_{sessions[0]}", kind))
        if self.am == ABSENT and self.pm == ABSENT:
            out.append(("absent", None))
        elif self.am == ABSENT:
            out.append(("absent_am", None))
        elif self.pm == ABSENT:
            out.append(("absent_pm", None))
        if self.pending:
            out.append(("pending", None))
        if self.late_min:
            out.append(("late", self.late_min))
        if self.early_min:
            out.append(("early", self.early_min))
        if self.day_open and self.first is not None:
            out.append(("at_work", None))
        elif self.missing_out:
            out.append(("missing_out", None))
        if self.missing_in:
            out.append(("missing_in", None))
        if self.manual:
            out.append(("manual", None))
        if self.time_suspect:
            out.append(("time_suspect", None))
        if self.clock_unsynced:
            out.append(("clock_unsynced", None))
        if not out and self.scans:
            out.append(("on_time", None))
        return out

    def status(self) -> str:
        """The day report's words (English: the CLI is for the technician and the office)."""
        return ", ".join(STATUS_WORDS_EN[code].format(_kind_en(value) if code.startswith("leave") else value)
                         for code, value in self.remarks())


STATUS_WORDS_EN = {
    "holiday": "holiday ({})", "off": "off day", "absent": "absent", "absent_am": "absent in the morning",
    "absent_pm": "absent in the afternoon", "pending": "no scan yet",
    "leave": "on leave ({})", "leave_am": "on leave in the morning ({})", "leave_pm": "on leave in the afternoon ({})",
    "late": "late {} min", "early": "left early {} min", "at_work": "at work, day not over",
    "missing_out": "no out scan", "missing_in": "no in scan", "manual": "corrected by hand",
    "time_suspect": "time_suspect", "clock_unsynced": "clock not synced", "on_time": "on time",
}
LEAVE_KINDS_EN = {"P": "annual leave", "Ô": "sick", "Cô": "child sick", "Ts": "maternity", "T": "work accident",
                  "H": "meeting, training", "Nb": "compensatory rest", "No": "unpaid leave", "CT": "business trip"}


def _kind_en(kind: str) -> str:
    return f"{kind}: {LEAVE_KINDS_EN.get(kind, kind)}"


def _hm(t: datetime | None) -> str:
    return t.strftime("%H:%M") if t else ""


def _minute(t: datetime) -> int:
    return t.hour * 60 + t.minute


def _over(day: date, end: int, now: datetime) -> bool:
    """Whether a session of ``day`` ending at minute ``end`` is over at ``now``."""
    today = now.date()
    return day < today or (day == today and _minute(now) >= end)


def evaluate(rules: WorkRules, day: date, holiday: str | None, scans: list, now: datetime, *,
             leave: dict[str, str] | None = None, schedule: str | None = None, swapped: bool = False) -> Day:
    """One person's day from their scans (``Scan`` objects, or (time, synced[, suspect]) tuples, local times).

    ``holiday``: the holiday's name; ``leave``: approved leave, session -> KIND;
    ``swapped``: a weekend day made a working day.
    """
    scans = [s if isinstance(s, Scan) else Scan(s[0], bool(s[1]), len(s) > 2 and bool(s[2])) for s in scans]
    leave = dict(leave or {})
    periods = [] if holiday else rules.periods(day, schedule, swapped)
    kind = "holiday" if holiday else ("work" if periods else "off")
    d = Day(day, kind, holiday, scans=len(scans))
    times = sorted(s.at for s in scans)
    d.clock_unsynced = any(not s.synced for s in scans)
    d.time_suspect = any(s.suspect for s in scans)
    d.manual = any(s.manual for s in scans)
    if kind != "work":
        d.am = d.pm = HOLIDAY if kind == "holiday" else OFF
        if times:
            d.first, d.last = times[0], (times[-1] if len(times) > 1 else None)
        return d
    sessions = sessions_of(periods)
    d.day_open = day == now.date() and _minute(now) < periods[-1][1]
    mark: dict[str, str | None] = {}
    for name in marks.SESSIONS:
        if not sessions[name]:
            mark[name] = OFF  # Saturday morning only: no afternoon session
        elif name in leave:
            mark[name] = leave[name]
            d.leave[name] = leave[name]
        else:
            mark[name] = None  # judged below
    judged = [n for n in marks.SESSIONS if mark[n] is None]
    if rules.scans == 4:
        _judge_each_session(rules, d, sessions, judged, mark, scans, now)
    else:
        _judge_day(rules, d, periods, sessions, judged, mark, times, now)
    d.am, d.pm = mark["am"], mark["pm"]
    d.pending = not times and day == now.date() and any(mark[n] is None for n in judged)
    return d


def _judge_day(rules, d: Day, periods, sessions, judged, mark, times, now) -> None:
    """``scans = 2``: the day's first scan is the "in", the last the "out" (OFFICE.md's rules)."""
    if times:
        if d.day_open:
            d.first = times[0]
        elif len(times) > 1:
            d.first, d.last = times[0], times[-1]
        elif _minute(times[0]) >= (periods[0][0] + periods[-1][1]) / 2:
            d.last = times[0]  # one scan in the afternoon: the morning one is missing
            d.missing_in = True
        else:
            d.first = times[0]
            d.missing_out = not d.day_open
    first = _minute(d.first) if d.first else None
    last = _minute(d.last) if d.last else None
    attended = []
    for name in judged:
        start, end = sessions[name][0][0], sessions[name][-1][1]
        if not _over(d.day, end, now):
            if first is not None and end > first:
                attended.append(name)  # in progress: late already counts, the session is not judged yet
            continue
        if not times or (first is not None and end <= first) or (last is not None and start >= last):
            mark[name] = ABSENT
        else:
            mark[name] = WORKED
            attended.append(name)
    if not attended:
        return
    if first is not None:
        late = working_minutes(periods, sessions[attended[0]][0][0], first)
        d.late_min = late if late > rules.grace_minutes else 0
    if last is not None:
        early = working_minutes(periods, last, sessions[attended[-1]][-1][1])
        d.early_min = early if early > rules.grace_minutes else 0


def _judge_each_session(rules, d: Day, sessions, judged, mark, scans, now) -> None:
    """``scans = 4``: each session needs its own in and out; scans before the middle of the break are the morning's."""
    am, pm = sessions["am"], sessions["pm"]
    split = (am[-1][1] + pm[0][0]) / 2 if am and pm else None
    ins, outs = [], []
    for name in judged:
        own = sessions[name]
        start, end = own[0][0], own[-1][1]
        mine = sorted(s.at for s in scans if split is None or ((_minute(s.at) < split) == (name == "am")))
        over = _over(d.day, end, now)
        t_in = t_out = None
        if mine:
            if not over:
                t_in = mine[0]
            elif len(mine) > 1:
                t_in, t_out = mine[0], mine[-1]
            elif _minute(mine[0]) >= (start + end) / 2:
                t_out = mine[0]
                d.missing_in = True
            else:
                t_in = mine[0]
                d.missing_out = True
        if t_in is not None:
            ins.append(t_in)
            late = working_minutes(own, start, _minute(t_in))
            d.late_min += late if late > rules.grace_minutes else 0
        if t_out is not None:
            outs.append(t_out)
            early = working_minutes(own, _minute(t_out), end)
            d.early_min += early if early > rules.grace_minutes else 0
        if over:
            mark[name] = WORKED if mine else ABSENT
    d.first = min(ins) if ins else None
    d.last = max(outs) if outs else None


# -- reading the events, the leave and the corrections --------------------------------
SCANS_SQL = """
SELECT COALESCE(e.staff_id, c.staff_id, f.staff_id) AS who, e.local_date, e.ts, e.clock_synced, e.time_flag
FROM attendance_events e
LEFT JOIN staff_cards c ON e.staff_id IS NULL AND e.method = 'card' AND c.uid = e.credential
LEFT JOIN finger_slots f ON e.staff_id IS NULL AND e.method = 'finger' AND f.node_id = e.node_id
     AND CAST(f.slot AS TEXT) = e.credential
WHERE e.local_date BETWEEN ? AND ?
"""


def scans_between(db: sqlite_utils.Database, first: date, last: date, tz: str) -> dict[tuple[str, date], list[Scan]]:
    """Each person's scans of each day: the devices' and the clerk's corrections (``leave.punches_between``)."""
    zone = clock.zone(tz)
    out: dict[tuple[str, date], list[Scan]] = {}
    for who, local_date, ts, synced, time_flag in db.execute(SCANS_SQL, (first.isoformat(), last.isoformat())):
        if who is None:
            continue  # a card or finger still nobody's
        when = datetime.fromisoformat(ts).astimezone(zone)
        out.setdefault((who, date.fromisoformat(local_date)), []).append(Scan(when, bool(synced), time_flag is not None))
    for key, times in leave_mod.punches_between(db, first, last, tz).items():
        out.setdefault(key, []).extend(Scan(t, manual=True) for t in times)
    return out


def people(db: sqlite_utils.Database, scans: dict) -> list[dict]:
    """Active staff, and anybody else who scanned in the period (left since, or unknown to the table)."""
    rows = {r[0]: {"staff_id": r[0], "name": r[1], "department": r[2] or "", "position": r[3] or "",
                   "active": bool(r[4]), "schedule": r[5]}
            for r in db.execute("SELECT staff_id, name, department, position, active, schedule FROM staff")}
    wanted = {sid for sid, row in rows.items() if row["active"]} | {sid for sid, _ in scans}
    return [rows.get(sid, {"staff_id": sid, "name": "(not in the staff list)", "department": "", "position": "",
                           "active": False, "schedule": None})
            for sid in sorted(wanted)]


TOTAL_KEYS = ("worked_days", "paid_leave_days", "unpaid_days", "insurance_days", "absent_days")


@dataclass
class Report:
    first: date
    last: date
    days: list[date]
    people: list[dict]
    records: dict[str, list[Day]] = field(default_factory=dict)  # staff_id -> a Day per day

    def totals(self, staff_id: str) -> dict[str, int | float]:
        """The form's "quy ra công" (days, halves as .5), late and early minutes, days with a scan."""
        days = self.records[staff_id]
        session_marks = [m for d in days for m in (d.am, d.pm)]
        out: dict[str, int | float] = {k: marks.days_number(marks.count(session_marks, k)) for k in TOTAL_KEYS}
        out["late_min"] = sum(d.late_min for d in days)
        out["early_min"] = sum(d.early_min for d in days)
        out["days_present"] = sum(1 for d in days if d.scans)
        return out


def report(db: sqlite_utils.Database, rules: WorkRules, first: date, last: date, tz: str,
           now: datetime | None = None) -> Report:
    now = now or clock.now(tz)
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    scans = scans_between(db, first, last, tz)
    special = days_off.day_kinds(db, first, last)
    leave = leave_mod.on_days(db, first, last)
    result = Report(first, last, days, people(db, scans))
    for person in result.people:
        sid = person["staff_id"]
        schedule = person.get("schedule") if rules.has_schedule(person.get("schedule")) else None
        result.records[sid] = [
            evaluate(rules, d, special[d][1] if special.get(d, ("",))[0] == days_off.HOLIDAY else None,
                     scans.get((sid, d), []), now, leave=leave.get((sid, d)), schedule=schedule,
                     swapped=special.get(d, ("",))[0] == days_off.WORKDAY)
            for d in days]
    return result


def month_bounds(text: str) -> tuple[date, date]:
    m = re.match(r"^(\d{4})-(\d{2})$", text or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise RulesError(f"--month must be YYYY-MM, got {text!r}")
    year, month = int(m.group(1)), int(m.group(2))
    return date(year, month, 1), date(year, month, calendar_mod.monthrange(year, month)[1])


# -- the contract's JSON ------------------------------------------------------------------
def day_flags(d: Day) -> list[str]:
    flags = []
    if d.manual:
        flags.append("manual")
    if d.clock_unsynced:
        flags.append("clock_unsynced")
    if d.missing_in:
        flags.append("missing_in")
    if d.missing_out:
        flags.append("missing_out")
    return flags


def month_json(rep: Report, office: str) -> dict:
    """The month in the contract's JSON form (OFFICE.md: "Leave, corrections and the timesheet").

    Every day of the month is a key of ``days`` ("1".."31"), each session's
    mark as the module's rules give it. ``totals`` has the contract's
    ``absent_days`` (``V`` sessions as halves), ``late_min`` and
    ``early_min``, and the form's other "quy ra công" columns.
    """
    staff_out = []
    for person in rep.people:
        sid = person["staff_id"]
        days = {str(d.day.day): {"am": d.am, "pm": d.pm, "in": _hm(d.first) or None, "out": _hm(d.last) or None,
                                 "late_min": d.late_min, "early_min": d.early_min, "flags": day_flags(d)}
                for d in rep.records[sid]}
        totals = rep.totals(sid)
        staff_out.append({"staff_id": sid, "name": person["name"], "position": person.get("position") or "",
                          "department": person.get("department") or "", "days": days,
                          "totals": {"absent_days": totals["absent_days"], "late_min": totals["late_min"],
                                     "early_min": totals["early_min"],
                                     **{k: totals[k] for k in TOTAL_KEYS if k != "absent_days"}}})
    return {"v": 1, "month": f"{rep.first:%Y-%m}", "office": office, "staff": staff_out}
