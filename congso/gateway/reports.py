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

from ..vocab import text
from . import ratings as ratings_mod
from . import timesheet


class ReportError(ValueError):
    """The report cannot be made as asked; the message names the option."""


# -- attendance ------------------------------------------------------------------------
@dataclass
class Attendance:
    report: timesheet.Report
    day: date | None  # one day asked for; None: a month

    @property
    def is_day(self) -> bool:
        return self.day is not None


def attendance(db: sqlite_utils.Database, workrules, tz: str, *, day: str | None = None,
               month: str | None = None) -> Attendance:
    """The timesheet of one ``day`` (YYYY-MM-DD) or one ``month`` (YYYY-MM) by ``[workrules]``."""
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
    return Attendance(timesheet.report(db, rules, first, last, tz), first if day else None)


DAY_COLUMNS = ["staff_id", "name", "department", "in", "out", "late min", "early min", "status"]
SUMMARY_COLUMNS = ["staff_id", "name", "days present", "late min", "early min", "absent days"]


def day_table(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    """One row per person and day: in, out, late, early, status."""
    rows = [[p["staff_id"], p["name"], p["department"],
             d.first.strftime("%H:%M") if d.first else "", d.last.strftime("%H:%M") if d.last else "",
             d.late_min or "", d.early_min or "", d.status()]
            for p in rep.people for d in rep.records[p["staff_id"]]]
    return DAY_COLUMNS, rows


def month_summary(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    """One row per person with the month's totals (the terminal's view of a month)."""
    rows = [[p["staff_id"], p["name"], *(rep.totals(p["staff_id"])[k] for k in
                                         ("days_present", "late_minutes", "early_minutes", "absent_days"))]
            for p in rep.people]
    return SUMMARY_COLUMNS, rows


def month_table(rep: timesheet.Report) -> tuple[list[str], list[list]]:
    """The month day by day: staff_id, name, department, a cell per day, the totals."""
    columns = ["staff_id", "name", "department", *(d.isoformat() for d in rep.days), *timesheet.TOTAL_HEADERS]
    return columns, timesheet.month_rows(rep)


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
                     json_path: str | None = None, office: str = "") -> list[str]:
    """Write every file asked for ('-': standard output); return what was written, for the user."""
    rep = att.report
    if att.is_day and xlsx_path:
        raise ReportError("--xlsx is for --month")
    done = []
    if xlsx_path:
        n = timesheet.write_xlsx(rep, xlsx_path, office)
        done.append(f"wrote {xlsx_path}: {n} staff, {len(rep.days)} days")
    columns, rows = day_table(rep) if att.is_day else month_table(rep)
    if csv_path:
        with opened(csv_path) as out:
            if att.is_day:
                write_csv(out, columns, rows)
            else:
                timesheet.write_csv(rep, out)  # the month table's one writer
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
            exclude_flagged: bool = False) -> ratings_mod.Report:
    try:
        return ratings_mod.build_report(db, day_from, day_to, by, unit=unit, scale_levels=scale_levels,
                                        exclude_flagged=exclude_flagged)
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
