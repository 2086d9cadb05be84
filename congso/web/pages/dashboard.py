"""Tổng quan: the office at a glance, for every role.

- today's attendance (``timesheet.report`` for today: one indexed query on
  ``attendance_events.local_date``): who is in, who came late, who is not
  in yet, who is on leave or an official absence today (which kind, which
  session: the report's ``Day.leave``; someone on leave is not "not in
  yet"). Names for the admin, the clerk and the viewer; an officer sees
  the counts only;
- today's and this month's ratings (``ratings.summary``, the figures the
  hall TV shows), each level with its one label and colour (``vocab.levels``);
- dossiers by status (``vocab.dossiers`` labels) and the overdue ones, the
  ten most overdue linked to their page;
- the nodes and their problems (``registry``), and the last screenshot of
  every TV and kiosk, taken on request (``devices.py``).

The attendance and the nodes are fragments that ``console.js`` refreshes
every few seconds (``/fragments/attendance-today``, ``/fragments/nodes``);
without JavaScript the page reloads itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import APIRouter, Request

from ...gateway import ratings, timesheet
from ...vocab import timesheet as ts_vocab
from ...vocab import dossiers as dossier_vocab
from ...vocab import levels
from .. import access, page
from . import devices

router = APIRouter()

REFRESH_S = 5
OVERDUE_SHOWN = 10


# -- today's attendance ------------------------------------------------------------------
@dataclass
class Person:
    staff_id: str
    name: str
    department: str
    first: datetime | None = None
    late_min: int = 0
    leave: str = ""  # on leave today: "Nghỉ phép (cả ngày)", "Đi công tác (buổi chiều)"


@dataclass
class AttendanceToday:
    kind: str  # "work", "holiday", "off"
    holiday: str | None
    staff: int = 0
    present: list[Person] = field(default_factory=list)
    late: list[Person] = field(default_factory=list)
    not_in: list[Person] = field(default_factory=list)
    on_leave: list[Person] = field(default_factory=list)
    names: bool = True  # False for an officer: the counts only
    closed: bool = False  # the working day is over: "not in yet" is "absent"


def attendance_today(request: Request) -> AttendanceToday:
    """Today's timesheet (``timesheet.report`` for one day, as ``congso report attendance --day``)."""
    c = page.console(request)
    now = c.now()
    today = now.date()
    rules = timesheet.WorkRules.from_settings(c.settings.workrules)
    rep = timesheet.report(page.db(request), rules, today, today, c.tz, now=now)
    days = {sid: records[0] for sid, records in rep.records.items()}
    any_day = next(iter(days.values()), None)
    kind = any_day.kind if any_day else ("work" if rules.periods(today) else "off")
    periods = rules.periods(today)
    out = AttendanceToday(kind=kind, holiday=any_day.holiday if any_day else None,
                          closed=bool(periods) and now.hour * 60 + now.minute >= periods[-1][1])
    s = page.session(request)
    out.names = s is None or s.role != "officer"
    out.staff = len(rep.people)  # the active staff, and anybody else who scanned today
    afternoon = periods[-1][0] if len(periods) > 1 else None  # minutes from midnight
    minute = now.hour * 60 + now.minute
    for person in rep.people:
        d = days[person["staff_id"]]
        p = Person(person["staff_id"], person["name"], person.get("department") or "", d.first, d.late_min)
        on_leave = dict(getattr(d, "leave", None) or {})
        if on_leave and d.kind == "work":
            p.leave = leave_words(on_leave)
            out.on_leave.append(p)
        if d.scans:
            out.present.append(p)
            if d.late_min:
                out.late.append(p)
        elif d.kind == "work" and person.get("active", True) and not _excused(on_leave, minute, afternoon):
            out.not_in.append(p)
    out.late.sort(key=lambda p: (-p.late_min, p.name))
    out.not_in.sort(key=lambda p: (p.department, p.name))
    out.on_leave.sort(key=lambda p: (p.department, p.name))
    return out


def leave_words(sessions: dict[str, str]) -> str:
    """{"am": "P", "pm": "P"} -> "Nghỉ phép (cả ngày)"; {"pm": "CT"} -> "Đi công tác (buổi chiều)"."""
    def words(kind: str) -> str:
        return ts_vocab.LEAVE_KINDS.get(kind, kind)

    am, pm = sessions.get("am"), sessions.get("pm")
    if am and pm:
        return f"{words(am)} (cả ngày)" if am == pm else f"{words(am)} (buổi sáng), {words(pm)} (buổi chiều)"
    if am:
        return f"{words(am)} (buổi sáng)"
    return f"{words(pm)} (buổi chiều)" if pm else ""


def _excused(sessions: dict[str, str], minute: int, afternoon: int | None) -> bool:
    """Not "not in yet": on leave all day, or for the morning while the afternoon has not begun."""
    if sessions.get("am") and sessions.get("pm"):
        return True
    return bool(sessions.get("am")) and (afternoon is None or minute < afternoon)


# -- ratings ------------------------------------------------------------------------------
def _scale_codes(settings) -> list[str]:
    try:
        return [lv.code for lv in levels.scale(settings.rating.levels)]
    except levels.ScaleError:
        return [lv.code for lv in levels.scale(3)]


def _bars(counts: dict[str, int]) -> dict:
    total = sum(counts.values())
    rows = []
    for code, n in counts.items():
        r, g, b = levels.color(code)
        rows.append({"code": code, "label": levels.label(code), "count": n, "color": f"#{r:02x}{g:02x}{b:02x}",
                     "pct": round(100.0 * n / total, 1) if total else 0.0})
    return {"total": total, "rows": rows, "satisfied_pct": levels.satisfied_pct(counts)}


def ratings_summary(request: Request) -> dict:
    c = page.console(request)
    s = ratings.summary(page.db(request), c.today(), _scale_codes(c.settings))
    return {"today": _bars(s["today"]), "month": _bars(s["month"])}


# -- dossiers ---------------------------------------------------------------------------------
_OPEN = ",".join(f"'{s}'" for s in dossier_vocab.OPEN_STATUSES)
# Open and past due, as ``vocab.dossiers.is_overdue`` says (a due date alone: the whole day counts).
# status uses its index; the rule is checked again in Python for the rows shown.
_OVERDUE_WHERE = (f"status IN ({_OPEN}) AND due_at IS NOT NULL AND "
                  "((length(due_at) = 10 AND due_at < :today) OR (length(due_at) > 10 AND julianday(due_at) <= julianday(:now)))")


def dossier_summary(request: Request) -> dict:
    db, now = page.db(request), page.console(request).now()
    counts = dict(db.execute("SELECT status, count(*) FROM dossiers GROUP BY status").fetchall())
    by_status = [{"status": s, "label": dossier_vocab.STATUS_VI[s], "count": counts.get(s, 0)}
                 for s in dossier_vocab.STATUSES]
    params = {"today": now.date().isoformat(), "now": now.isoformat(timespec="seconds")}
    overdue_count = db.execute(f"SELECT count(*) FROM dossiers WHERE {_OVERDUE_WHERE}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT code, applicant, procedure, due_at, status, desk FROM dossiers WHERE {_OVERDUE_WHERE} "
        "ORDER BY substr(due_at, 1, 10), due_at, code LIMIT :n", {**params, "n": OVERDUE_SHOWN}).fetchall()
    overdue = []
    for code, applicant, procedure, due_at, status, desk in rows:
        if not dossier_vocab.is_overdue(status, due_at, now):
            continue
        due = dossier_vocab.as_datetime(due_at, now.tzinfo, end_of_day=True)
        late = now - due
        overdue.append({"code": code, "applicant": applicant, "procedure": procedure, "due_at": due_at,
                        "status_vi": dossier_vocab.STATUS_VI.get(status, status), "desk": desk,
                        "days_late": max(0, (late + timedelta(days=1) if len(due_at) == 10 else late).days)})
    return {"by_status": by_status, "total": sum(counts.values()), "overdue_count": overdue_count,
            "overdue": overdue}


# -- the routes ------------------------------------------------------------------------------
@router.get("/")
@access.requires("dashboard.view")
def dashboard(request: Request):
    rows = devices.node_rows(request)
    return page.render(request, "dashboard.html", active="/", title="Tổng quan", refresh_s=REFRESH_S,
                       att=attendance_today(request), ratings=ratings_summary(request),
                       dossiers=dossier_summary(request), rows=rows, screens=devices.screens(request, rows))


@router.get("/fragments/attendance-today")
@access.requires("dashboard.view")
def attendance_fragment(request: Request):
    return page.render(request, "dashboard_attendance.html", att=attendance_today(request))


@router.get("/fragments/nodes")
@access.requires("dashboard.view")
def nodes_fragment(request: Request):
    return page.render(request, "dashboard_nodes.html", rows=devices.node_rows(request))
