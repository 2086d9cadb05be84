"""A PNG of how the month's timesheet (form C01-HD) prints, through LibreOffice headless.

    .venv/bin/python -m congso.tools.print_preview OUT.png [--xlsx FILE] [--month YYYY-MM] [--resolution 80]

Without ``--xlsx`` it makes a demo-like month first: the demo commune's
twelve staff (``demo_office.STAFF``) in a fresh gateway database, four
scans a working day with a few late arrivals and early departures, leave of
several kinds (whole and half days, a business trip), a forgotten scan
entered as a correction, judged by the real timesheet engine and written by
``timesheet_form.write_xlsx``. The XLSX is turned into a PDF with
``soffice --headless --convert-to pdf`` (a private LibreOffice profile, so it
never meets a running LibreOffice), and the PDF's first page into a PNG with
``pdftoppm -png -r 80``. Needs LibreOffice Calc and poppler-utils; nothing
in the test suite depends on them. ``docs/timesheet/c01-hd.png`` is made so.

``fill_month`` (the same month for any number of staff) is what
``bench/timesheet.py`` measures.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

from ..gateway import days_off, leave, staff, timesheet, timesheet_form
from ..gateway.db import open_db
from ..protocol import clock
from ..protocol.settings import load
from . import demo_office

TZ = "Asia/Ho_Chi_Minh"
DEMO_MONTH = "2026-11"
EVENT_SQL = ("INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
             "method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")


def _at(day: date, minute: int, zone) -> datetime:
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)


def fill_month(db, month: str, people: list[tuple[str, str, str, str]], *, seed: int = 17, tz: str = TZ) -> dict:
    """A month of an office: staff, four scans a working day, leave and corrections; returns what was made.

    ``people``: (staff_id, name, department, position). Mostly on time
    (07:20-07:35 in, 11:30-11:40 out for lunch, 13:25-13:35 back, 17:00-17:10
    out); about one day in twenty late, one in thirty leaving early; each
    person in four a leave of some kind (a whole day, a half day, a
    three-day business trip, two sick days); each person in ten absent one
    day without leave; each person in six forgets one evening scan, entered
    as a correction. Monday to Friday and the swapped working days, the
    law's holidays apart (``days_off.day_kinds``: they get no scans).
    """
    rng = random.Random(seed)
    zone = clock.zone(tz)
    first, last = timesheet.month_bounds(month)
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    special = days_off.day_kinds(db, first, last)  # the law's holidays (Tết too) and swapped working days
    workdays = [d for d in days if special.get(d, ("",))[0] != days_off.HOLIDAY
                and (d.weekday() < 5 or special.get(d, ("",))[0] == days_off.WORKDAY)]
    for staff_id, name, department, position in people:
        staff.add(db, staff_id, name, department, position, tz=tz)
    made = {"events": 0, "leave": 0, "corrections": 0}
    off: dict[tuple[str, date], str | None] = {}  # (staff, day) -> "am"/"pm" half or None (whole day)
    for k, (staff_id, *_rest) in enumerate(people):
        if k % 4 != 1:
            continue
        plan = rng.choice(["P", "P/2", "CT", "Ô"])
        start = rng.randrange(0, max(1, len(workdays) - 3))
        if plan == "P":
            spans = [(workdays[start], workdays[start], "P", None)]
        elif plan == "P/2":
            spans = [(workdays[start], workdays[start], "P", rng.choice(["am", "pm"]))]
        elif plan == "CT":
            spans = [(workdays[start], workdays[start + 2], "CT", None)]
        else:
            spans = [(workdays[start], workdays[start + 1], "Ô", None)]
        for from_day, to_day, kind, half in spans:
            leave.add(db, staff_id, kind, from_day.isoformat(), to_day.isoformat(), half, "Đơn đã duyệt",
                      entered_by="vanthu", tz=tz)
            made["leave"] += 1
            for d in workdays:
                if from_day <= d <= to_day:
                    off[(staff_id, d)] = half
    rows, corrections = [], []
    seq = 0
    now = _at(last + timedelta(days=3), 9 * 60, zone)
    for k, (staff_id, *_rest) in enumerate(people):
        forgets = rng.choice(workdays) if k % 6 == 2 else None
        missing = rng.choice(workdays) if k % 10 == 3 else None
        for d in workdays:
            if (staff_id, d) in off and off[(staff_id, d)] is None:
                continue  # a whole day away
            if d == missing and (staff_id, d) not in off:
                continue  # absent without leave
            half = off.get((staff_id, d))
            late = rng.random() < 0.05
            early = rng.random() < 0.033
            times = [rng.randint(440, 455) + (rng.randint(15, 60) if late else 0),  # 07:20-07:35 (late: up to 08:35)
                     rng.randint(690, 700), rng.randint(805, 815),
                     rng.randint(1020, 1030) - (rng.randint(20, 50) if early else 0)]
            if half == "am":
                times = times[2:]
            elif half == "pm":
                times = times[:2]
            if d == forgets:
                corrections.append((staff_id, _at(d, times[-1], zone)))
                times = times[:-1]
            for minute in times:
                seq += 1
                ts = _at(d, minute, zone).replace(second=rng.randint(0, 59)).isoformat()
                rows.append((str(uuid.uuid4()), "door-1", seq, ts, d.isoformat(), 1, ts, "{}", "finger",
                             str(k % 200), staff_id, 120))
    with db.conn:
        db.conn.executemany(EVENT_SQL, rows)
    made["events"] = len(rows)
    for staff_id, when in corrections:
        leave.add_punch(db, staff_id, when.strftime("%Y-%m-%dT%H:%M"), "Quên chấm công khi về, trưởng bộ phận xác nhận",
                        entered_by="vanthu", tz=tz, now=now)
        made["corrections"] += 1
    made["now"] = now
    return made


def demo_month(xlsx: Path, month: str = DEMO_MONTH) -> None:
    """The demo commune's month as the form, to ``xlsx``."""
    with tempfile.TemporaryDirectory(prefix="congso-preview-") as work:
        db = open_db(Path(work) / "gateway.sqlite")
        people = [(sid, name, dept, pos) for sid, name, dept, pos, _card, _slot in demo_office.STAFF]
        made = fill_month(db, month, people)
        settings = load(environ={"CONGSO_TIMESHEET_SUPERIOR": "UBND tỉnh Nghệ An",
                                 "CONGSO_TIMESHEET_BUDGET_CODE": "1234567",
                                 "CONGSO_TIMESHEET_TIMEKEEPER": "Dương Thị Yến",
                                 "CONGSO_TIMESHEET_DEPARTMENT_HEAD": "Lê Thị Hoa",
                                 "CONGSO_TIMESHEET_HEAD": "Nguyễn Văn Hùng"})
        first, last = timesheet.month_bounds(month)
        rules = timesheet.WorkRules.from_settings(settings.workrules)
        rep = timesheet.report(db, rules, first, last, TZ, now=made["now"])
        header = timesheet_form.form_header(settings, signed_on=made["now"].date())
        timesheet_form.write_xlsx(rep, str(xlsx), header)
        db.conn.close()


def to_png(xlsx: Path, png: Path, resolution: int = 80) -> Path:
    """The XLSX's first printed page as a PNG (LibreOffice headless, then pdftoppm)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        raise SystemExit("print_preview: LibreOffice is not installed (apt-get install libreoffice-calc-nogui)")
    if not shutil.which("pdftoppm"):
        raise SystemExit("print_preview: pdftoppm is not installed (apt-get install poppler-utils)")
    with tempfile.TemporaryDirectory(prefix="congso-preview-") as work:
        work_dir = Path(work)
        profile = (work_dir / "profile").as_uri()
        subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
                        "--outdir", str(work_dir), str(xlsx)], check=True, timeout=180,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pdf = work_dir / (xlsx.stem + ".pdf")
        if not pdf.exists():
            raise SystemExit(f"print_preview: LibreOffice made no PDF of {xlsx}")
        stem = work_dir / "page"
        subprocess.run(["pdftoppm", "-png", "-r", str(resolution), "-f", "1", "-l", "1", "-singlefile",
                        str(pdf), str(stem)], check=True, timeout=120)
        png.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(stem.with_suffix(".png")), png)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("png", type=Path, help="the PNG to write")
    parser.add_argument("--xlsx", type=Path, help="an XLSX to show (default: a demo-like month)")
    parser.add_argument("--month", default=DEMO_MONTH, help=f"the demo month, YYYY-MM (default {DEMO_MONTH})")
    parser.add_argument("--keep-xlsx", type=Path, help="also keep the demo month's XLSX here")
    parser.add_argument("--resolution", type=int, default=80, help="pixels per inch (default 80)")
    args = parser.parse_args(argv)
    if args.xlsx:
        to_png(args.xlsx, args.png, args.resolution)
    else:
        with tempfile.TemporaryDirectory(prefix="congso-preview-") as work:
            xlsx = args.keep_xlsx or Path(work) / "bang-cham-cong.xlsx"
            demo_month(xlsx, args.month)
            to_png(xlsx, args.png, args.resolution)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
