"""The office's reports, assembled once for the CLI and the console: what to show and how to write it.

``attendance(...)`` checks the period the user asked for and builds the
timesheet (``timesheet.report``); ``day_table``, ``month_summary`` and
``month_table`` turn it into (columns, rows); ``write_csv``/``write_json``
write any such table and ``timesheet.write_csv``/``write_xlsx`` the month table and workbook.
``ratings(...)`` builds the satisfaction report and ``write_ratings`` writes
every file asked for, each of them (CSV to standard output included).

Every CSV field and XLSX cell is written as data: a name or a department
that begins with ``=``, ``+``, ``-``, ``@``, a tab or a CR never becomes a
formula (``congso.vocab.text``).
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import IO, Iterator, Sequence

import sqlite_utils

from ..vocab import dates
from ..vocab import text
from . import ratings as ratings_mod
from . import timesheet


class ReportError(ValueError):
    """The report cannot be made as asked; the message names the option."""


# -- dates as the office types them ------------------------------------------------------
def parse_day_input(value: str | None, what: str = "day") -> date | None:
    """A date typed as dd/mm/yyyy (the office's way) or YYYY-MM-DD (a date input); None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dates.parse_day(value)
    except ValueError:
        raise ReportError(f"{what}: {value!r} is not a date (dd/mm/yyyy)") from None


# -- attendance ------------------------------------------------------------------------
@dataclass
class Attendance:
    report: timesheet.Report
    day: date | None  # one day asked for; None: a month

    @property
    def is_day(self) -> bool:
        return self.day is not None


def attendance(db: sqlite_utils.Database, workrules, tz: str, *, day: str | None = None,
               month: str | None = None, now=None) -> Attendance:
    """The timesheet of one ``day`` (YYYY-MM-DD) or one ``month`` (YYYY-MM) by ``[workrules]``.

    ``now`` (aware, office time): what "not over yet" is judged against; the clock by default.
    """
    if bool(day) == bool(month):
        raise ReportError("give --day YYYY-MM-DD or --month YYYY-MM")
    try:
        rules = timesheet.WorkRules.from_settings(workrules)
        if day:
            first = last = timesheet.parse_day(day, "--day")
        else:
            first, last = timesheet.month_bounds(month)
    except ValueError as e:
        raise ReportError(str(e)) from None
    return Attendance(timesheet.report(db, rules, first, last, tz, now=now), first if day else None)


DAY_COLUMNS = ["staff_id", "name", "department", "in", "out", "late min", "early min", "status"]
SUMMARY_COLUMNS = ["staff_id", "name", "days present", "worked days", "paid leave", "unpaid", "insurance",
                   "absent days", "late min", "early min"]
SUMMARY_KEYS = ("days_present", "worked_days", "paid_leave_days", "unpaid_days", "insurance_days", "absent_days",
                "late_min", "early_min")


def day_table(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    """One row per person and day: in, out, late, early, status."""
    rows = [[p["staff_id"], p["name"], p["department"],
             d.first.strftime("%H:%M") if d.first else "", d.last.strftime("%H:%M") if d.last else "",
             d.late_min or "", d.early_min or "", d.status()]
            for p in rep.people for d in rep.records[p["staff_id"]]]
    return DAY_COLUMNS, rows


def month_summary(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    """One row per person with the month's totals (the terminal's view of a month)."""
    rows = [[p["staff_id"], p["name"], *(rep.totals(p["staff_id"])[k] for k in SUMMARY_KEYS)] for p in rep.people]
    return SUMMARY_COLUMNS, rows


def month_table(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    """The month day by day, as the CSV has it: a symbol per day, then the totals."""
    from . import timesheet_form

    return timesheet_form.csv_columns(rep), timesheet_form.month_rows(rep)


# -- the console's views ----------------------------------------------------------------
STATUS_WORDS_VI = {
    "holiday": "nghỉ lễ ({})", "off": "ngày nghỉ", "absent": "vắng", "pending": "chưa chấm công",
    "absent_am": "vắng buổi sáng", "absent_pm": "vắng buổi chiều",
    "leave": "{}", "leave_am": "buổi sáng: {}", "leave_pm": "buổi chiều: {}", "manual": "có chấm công bổ sung",
    "late": "đi muộn {} phút", "early": "về sớm {} phút", "at_work": "đang làm việc",
    "missing_out": "thiếu giờ ra", "missing_in": "thiếu giờ vào", "time_suspect": "giờ quẹt đáng ngờ",
    "clock_unsynced": "máy chưa đồng bộ giờ", "on_time": "đúng giờ",
}


def day_status_vi(d: timesheet.Day) -> str:
    """The day report's words for the office's staff (``Day.status`` is the terminal's English)."""
    return ", ".join(STATUS_WORDS_VI[code].format(_kind_vi(value) if code.startswith("leave") else value)
                     for code, value in d.remarks())


def _kind_vi(kind: str) -> str:
    from ..vocab.timesheet import LEAVE_KINDS

    return f"{LEAVE_KINDS.get(kind, kind)} ({kind})"


def _day_class(d: timesheet.Day) -> str:
    if d.absent:
        return "absent"
    if d.kind == "holiday":
        return "holiday"
    if d.kind == "off" and not d.scans:
        return "off"
    if d.late_min or d.early_min or d.missing_in or d.missing_out:
        return "late"
    if d.leave:
        return "leave"
    return "ok" if d.scans else ""


def day_rows_vi(rep: timesheet.Report) -> list[dict]:
    """One row per person for a one-day report (the console's table)."""
    rows = []
    for p in rep.people:
        d = rep.records[p["staff_id"]][0]
        rows.append({"staff_id": p["staff_id"], "name": p["name"], "department": p["department"],
                     "in": d.first.strftime("%H:%M") if d.first else "",
                     "out": d.last.strftime("%H:%M") if d.last else "",
                     "late_min": d.late_min, "early_min": d.early_min,
                     "status": day_status_vi(d), "cls": _day_class(d)})
    return rows


def day_counts(rep: timesheet.Report) -> dict[str, int]:
    """In, late, absent and not yet in, over the people of a one-day report."""
    days = [rep.records[p["staff_id"]][0] for p in rep.people]
    return {"people": len(days), "in": sum(1 for d in days if d.scans),
            "late": sum(1 for d in days if d.late_min), "absent": sum(1 for d in days if d.absent),
            "pending": sum(1 for d in days if d.pending and not d.leave),
            "on_leave": sum(1 for d in days if d.leave)}


def not_in_yet(rep: timesheet.Report) -> list[dict]:
    """A one-day report's people with no scan and no leave for the whole day: who the head of office asks after."""
    out = []
    for p in rep.people:
        d = rep.records[p["staff_id"]][0]
        if d.kind == "work" and not d.scans and len(d.leave) < 2:
            out.append({"staff_id": p["staff_id"], "name": p["name"], "department": p["department"],
                        "absent": d.absent, "status": day_status_vi(d)})
    return out


def on_leave(rep: timesheet.Report) -> list[dict]:
    """A one-day report's people on leave or an official absence, with the kind and the session."""
    from ..vocab.timesheet import LEAVE_KINDS, SESSION_VI

    out = []
    for p in rep.people:
        d = rep.records[p["staff_id"]][0]
        for kind in sorted(set(d.leave.values())):
            sessions = [s for s in ("am", "pm") if d.leave.get(s) == kind]
            out.append({"staff_id": p["staff_id"], "name": p["name"], "kind": kind, "kind_vi": LEAVE_KINDS[kind],
                        "sessions": "cả ngày" if len(sessions) == 2 else "buổi " + SESSION_VI[sessions[0]]})
    return out


def month_grid(rep: timesheet.Report) -> list[dict]:
    """The month for the console: per person, a (text, class) cell per day and the totals."""
    out = []
    for p in rep.people:
        sid = p["staff_id"]
        days = rep.records[sid]
        out.append({"staff_id": sid, "name": p["name"], "department": p["department"],
                    "cells": [(d.cell(), _day_class(d)) for d in days], "totals": rep.totals(sid)})
    return out


DAY_COLUMNS_VI = ["Mã NV", "Họ và tên", "Phòng ban", "Giờ vào", "Giờ ra", "Đi muộn (phút)", "Về sớm (phút)",
                  "Tình trạng"]


def day_table_vi(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    rows = [[r["staff_id"], r["name"], r["department"], r["in"], r["out"], r["late_min"] or "",
             r["early_min"] or "", r["status"]] for r in day_rows_vi(rep)]
    return DAY_COLUMNS_VI, rows


def write_table_xlsx(out, columns: Sequence[str], rows: Sequence[Sequence], *, sheet: str,
                     titles: Sequence[str] = ()) -> int:
    """Title lines, a bold header and the rows, every cell through ``write_cell``; returns the row count."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    for r, line in enumerate(titles, start=1):
        text.write_cell(ws, r, 1, line).font = Font(bold=True, size=13 if r == 1 else 11)
    header = len(titles) + 2 if titles else 1
    for c, h in enumerate(columns, start=1):
        text.write_cell(ws, header, c, h).font = Font(bold=True)
    n = 0
    for r, row in enumerate(rows, start=header + 1):
        for c, value in enumerate(row, start=1):
            text.write_cell(ws, r, c, value)
        n += 1
    for c, h in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(c)].width = max(10, min(40, len(str(h)) + 4))
    ws.freeze_panes = ws.cell(row=header + 1, column=1)
    wb.save(out)
    return n


def attendance_file(att: Attendance, fmt: str, form) -> bytes:
    """The attendance report as a download: ``fmt`` "xlsx" or "csv" (UTF-8 with a BOM, for Excel)."""
    import io

    from . import timesheet_form

    rep = att.report
    if fmt == "csv":
        buf = io.StringIO()
        if att.is_day:
            write_csv(buf, *day_table_vi(rep))
        else:
            timesheet_form.write_csv(rep, buf)
        return buf.getvalue().encode("utf-8-sig")
    if fmt != "xlsx":
        raise ReportError(f"format must be xlsx or csv, got {fmt!r}")
    if att.is_day:
        buf = io.BytesIO()
        write_table_xlsx(buf, *day_table_vi(rep), sheet=f"{att.day:%d-%m-%Y}",
                         titles=[form.office, f"Chấm công ngày {att.day:%d/%m/%Y}"])
        return buf.getvalue()
    buf = io.BytesIO()
    timesheet_form.write_xlsx(rep, buf, form)  # the month's one workbook (the CLI's and the API's)
    return buf.getvalue()


def ratings_file(rep: ratings_mod.Report, fmt: str) -> bytes:
    """The satisfaction report as a download (xlsx, or csv with a BOM)."""
    import io

    if fmt == "csv":
        buf = io.StringIO()
        ratings_mod.write_csv(rep, buf)
        return buf.getvalue().encode("utf-8-sig")
    if fmt != "xlsx":
        raise ReportError(f"format must be xlsx or csv, got {fmt!r}")
    buf = io.BytesIO()
    ratings_mod.write_xlsx(rep, buf)
    return buf.getvalue()


# -- writers ---------------------------------------------------------------------------
def write_csv(out: IO[str], columns: Sequence[str], rows: Sequence[Sequence]) -> int:
    """Header and rows; text that could start a formula is prefixed (OWASP). Return the row count."""
    writer = csv.writer(out)
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([text.csv_field("" if v is None else v) for v in row])
        n += 1
    return n


def write_json(out: IO[str], columns: Sequence[str], rows: Sequence[Sequence]) -> int:
    """One JSON object per row and line, keyed by column."""
    n = 0
    for row in rows:
        out.write(json.dumps(dict(zip(columns, row)), ensure_ascii=False) + "\n")
        n += 1
    return n


@contextmanager
def opened(path: str, encoding: str = "utf-8-sig") -> Iterator[IO[str]]:
    """``path`` for writing text, or standard output for ``-``.

    Files get a BOM by default so that Excel opens them as UTF-8; standard
    output does not (it goes to a pipe or a terminal).
    """
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding=encoding, newline="") as f:
        yield f


def write_attendance(att: Attendance, *, csv_path: str | None = None, xlsx_path: str | None = None,
                     json_path: str | None = None, form=None) -> list[str]:
    """Write every file asked for ('-': standard output); return what was written, for the user."""
    from . import timesheet_form

    rep = att.report
    if att.is_day and xlsx_path:
        raise ReportError("--xlsx is for --month")
    done = []
    if xlsx_path:
        n = timesheet_form.write_xlsx(rep, xlsx_path, form)
        done.append(f"wrote {xlsx_path}: {n} staff, {len(rep.days)} days")
    columns, rows = day_table(rep) if att.is_day else month_table(rep)
    if csv_path:
        with opened(csv_path) as out:
            if att.is_day:
                write_csv(out, columns, rows)
            else:
                timesheet_form.write_csv(rep, out)  # the month table's one writer
        if csv_path != "-":
            done.append(f"wrote {csv_path}")
    if json_path:
        with opened(json_path, encoding="utf-8") as out:
            write_json(out, columns, rows)
        if json_path != "-":
            done.append(f"wrote {json_path}")
    return done


# -- ratings ---------------------------------------------------------------------------
def ratings(db: sqlite_utils.Database, day_from: str, day_to: str, by: str, *, unit: str, scale_levels: int,
            exclude_flagged: bool = False, officer_id: str | None = None) -> ratings_mod.Report:
    """The satisfaction report; ``officer_id``: only that officer's votes (an officer's own report)."""
    try:
        return ratings_mod.build_report(db, day_from, day_to, by, unit=unit, scale_levels=scale_levels,
                                        exclude_flagged=exclude_flagged, officer_id=officer_id)
    except ValueError as e:
        raise ReportError(str(e)) from None


def write_ratings(rep: ratings_mod.Report, *, csv_path: str | None = None, xlsx_path: str | None = None) -> list[str]:
    """Write each file asked for, all of them ('-': CSV to standard output); return what was written."""
    done = []
    if csv_path:
        with opened(csv_path) as out:
            ratings_mod.write_csv(rep, out)
        if csv_path != "-":
            done.append(f"wrote {csv_path}")
    if xlsx_path:
        ratings_mod.write_xlsx(rep, xlsx_path)
        done.append(f"wrote {xlsx_path}")
    return done
