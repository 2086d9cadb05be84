"""The attendance commands of ``congso``: the door, staff, cards, fingers, holidays, timesheets.

Each command is a thin shell over ``congso.gateway.staff``,
``congso.gateway.timesheet`` or ``congso.attendance_node``. The gateway
commands write the gateway database directly (they work while the gateway
runs; it re-publishes the roster within a second).
"""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from .common import gateway_db, print_table






def _guard(fn, *args, **kw):
    """Run a library call; its ValueError (StaffError, RulesError) becomes a clean CLI error."""
    try:
        return fn(*args, **kw)
    except ValueError as e:
        raise click.ClickException(str(e)) from None


# -- the door -----------------------------------------------------------------------
@click.group("attendance")
def attendance() -> None:
    """The door node: fingerprint and card check-in."""


@attendance.command("run")
@click.pass_obj
def attendance_run(settings) -> None:
    """Run the door until SIGTERM or Ctrl-C.

    \b
    Waits for a finger ([fingerprint] backend/port) and a card ([card]
    reader) at the same time; either may be missing. Each scan is stored
    in the outbox first, then the door answers: green + short beep + the
    strike relay for known staff, red + long beep otherwise, a short beep
    only for the same person again within [attendance] repeat_window_s.
    Prints one 'feedback ...' line per scan.

    \b
    Try it on a laptop with the emulated module (type 'place NV001', 'lift'):
      CONGSO_NODE_ID=door-1 CONGSO_FINGERPRINT_BACKEND=emulator \\
      CONGSO_CARD_BACKEND=none GPIOZERO_PIN_FACTORY=mock congso attendance run
    """
    from ..attendance_node.node import run

    try:
        run(settings)
    except ValueError as e:
        raise click.ClickException(str(e)) from None


# -- staff --------------------------------------------------------------------------
@click.group("staff")
def staff() -> None:
    """Staff members the doors know (the roster)."""


@staff.command("add")
@click.argument("staff_id")
@click.argument("name")
@click.option("--department", "-d", help="Phòng ban / đơn vị.")
@click.option("--position", "-p", help="Chức vụ.")
@click.pass_obj
def staff_add(settings, staff_id, name, department, position) -> None:
    """Add STAFF_ID with NAME (in quotes); the doors know them within a second.

    \b
    Example:
      congso staff add NV001 "Nguyễn Thị Thu Hà" -d "Văn phòng" -p "Văn thư"
    """
    from ..gateway import staff as lib

    sid = _guard(lib.add, gateway_db(settings), staff_id, name, department, position, settings.site.timezone)
    click.echo(f"added {sid}; next: congso card assign {sid} <UID>  or  congso enroll --node <door> --staff {sid}")


@staff.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Deactivated staff too.")
@click.pass_obj
def staff_list(settings, include_inactive) -> None:
    """Staff with their cards and fingers (door:slot)."""
    from ..gateway import staff as lib

    rows = lib.list_staff(gateway_db(settings), include_inactive)
    print_table(f"{len(rows)} staff", ["staff_id", "name", "department", "position", "active", "cards", "fingers"],
           [[r["staff_id"], r["name"], r["department"], r["position"], "yes" if r["active"] else "no",
             r["cards"], r["fingers"]] for r in rows])


@staff.command("import")
@click.argument("csv_file", type=click.File("rb"))
@click.pass_obj
def staff_import(settings, csv_file) -> None:
    """Add or update staff from a CSV file; nothing is imported unless every line is good.

    \b
    Columns (header line required; order free): staff_id,name,department,position
    or the Vietnamese headers: Mã NV,Họ và tên,Phòng ban,Chức vụ.
    UTF-8 with or without BOM (Excel: "CSV UTF-8"), comma or semicolon.
    Example:
      congso staff import nhan-vien.csv
    """
    from ..gateway import staff as lib

    added, updated = _guard(lib.import_csv, gateway_db(settings), csv_file.read(), settings.site.timezone)
    click.echo(f"imported {added + updated} staff ({added} new, {updated} updated)")


@staff.command("deactivate")
@click.argument("staff_id")
@click.pass_obj
def staff_deactivate(settings, staff_id) -> None:
    """STAFF_ID left: every door refuses them from now on; past reports keep them."""
    from ..gateway import staff as lib

    _guard(lib.deactivate, gateway_db(settings), staff_id)
    click.echo(f"deactivated {staff_id}: the doors refuse them once the roster is re-published")


# -- cards --------------------------------------------------------------------------
@click.group("card")
def card() -> None:
    """Contactless cards: who has which, and taps nobody's card made."""


@card.command("assign")
@click.argument("staff_id")
@click.argument("uid")
@click.pass_obj
def card_assign(settings, staff_id, uid) -> None:
    """Give the card UID (hex, as `congso card unknown` shows it) to STAFF_ID.

    \b
    Earlier taps of that card (made while it was unknown) count for
    STAFF_ID in the timesheets.
    Example:
      congso card unknown
      congso card assign NV001 04A1B2C3
    """
    from ..gateway import staff as lib

    uid = _guard(lib.assign_card, gateway_db(settings), staff_id, uid, settings.site.timezone)
    click.echo(f"card {uid} -> {staff_id}")


@card.command("remove")
@click.argument("uid")
@click.pass_obj
def card_remove(settings, uid) -> None:
    """Take card UID away from whoever has it (lost card, reassigned)."""
    from ..gateway import staff as lib

    uid = _guard(lib.remove_card, gateway_db(settings), uid)
    click.echo(f"card {uid} removed")


@card.command("unknown")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1), help="How far back.")
@click.pass_obj
def card_unknown(settings, days) -> None:
    """Recent taps of cards nobody has, newest first: assign them with `congso card assign`."""
    from ..gateway import staff as lib
    from ..protocol import clock

    since = (clock.now(settings.site.timezone).date() - timedelta(days=days)).isoformat()
    rows = lib.unknown_cards(gateway_db(settings, readonly=True), since)
    if not rows:
        click.echo(f"no unknown cards in the last {days} days")
        return
    print_table(f"{len(rows)} unknown cards", ["uid", "last door", "last tap", "taps"],
           [[r["uid"], r["last_node"], r["last_ts"], r["taps"]] for r in rows])


# -- enrolment ------------------------------------------------------------------------
@click.command("enroll")
@click.option("--node", required=True, help="The door whose sensor the person is at, e.g. door-1.")
@click.option("--staff", "staff_id", required=True, help="Whose finger, e.g. NV001.")
@click.option("--slot", type=click.IntRange(min=0), help="Module slot (default: the first free one).")
@click.option("--timeout", type=float, help="Seconds to wait for the door's answer (default: 3 x [attendance] enroll_timeout_s + 10).")
@click.pass_obj
def enroll(settings, node, staff_id, slot, timeout) -> None:
    """Enrol a finger at a door, from here: the door guides the person.

    \b
    At the door: green blinking + beep = place the finger; green + beep =
    lift it; green blinking again = place it again; green + beep = done.
    The finger is then carried to every other door (export here, import
    there) by the gateway, which must be running.
    Example:
      congso enroll --node door-1 --staff NV001
    """
    from ..gateway import commands
    from ..gateway import staff as lib

    db = gateway_db(settings)
    person = lib.get(db, staff_id)
    if person is None or not person["active"]:
        raise click.ClickException(f"no active staff member {staff_id!r} (congso staff list)")
    wait = timeout or 3 * float(settings.attendance.enroll_timeout_s) + 10
    args = {"staff_id": staff_id, **({"slot": slot} if slot is not None else {})}
    cmd_id = _guard(commands.queue, db, node, "enroll", args, {"staff_id": staff_id}, settings.site.timezone)
    click.echo(f"asked {node} to enrol {staff_id}: the person places the finger when the green light blinks", err=True)
    try:
        result = commands.wait_reply(db, cmd_id, wait)
    except commands.CommandError as e:
        raise click.ClickException(f"enrolment at {node} failed: {e}") from None
    others = [n for n in lib.attendance_doors(db) if n != node]
    click.echo(f"enrolled {staff_id} at {node} in slot {result['slot']}"
               + (f"; carrying it to {', '.join(others)}" if others else ""))


# -- holidays ---------------------------------------------------------------------------
@click.group("holiday")
def holiday() -> None:
    """Public holidays: not working days, nobody is absent."""


@holiday.command("add")
@click.argument("day")
@click.argument("name")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 30), help="Several days in a row (Tết).")
@click.pass_obj
def holiday_add(settings, day, name, days) -> None:
    """Mark DAY (YYYY-MM-DD) as the holiday NAME.

    \b
    Examples:
      congso holiday add 2026-09-02 "Quốc khánh"
      congso holiday add 2027-02-05 "Tết Nguyên đán" --days 7
    """
    from ..gateway import timesheet as lib

    db = gateway_db(settings)
    first = _guard(lib.parse_day, day)
    for n in range(days):
        _guard(lib.add_holiday, db, (first + timedelta(n)).isoformat(), name)
    click.echo(f"{days} day(s) from {first} marked as {name}")


@holiday.command("list")
@click.option("--year", type=int, help="Only this year.")
@click.pass_obj
def holiday_list(settings, year) -> None:
    from ..gateway import timesheet as lib

    rows = lib.list_holidays(gateway_db(settings, readonly=True), year)
    print_table(f"{len(rows)} holidays", ["day", "name"], [list(r) for r in rows])


@holiday.command("remove")
@click.argument("day")
@click.pass_obj
def holiday_remove(settings, day) -> None:
    from ..gateway import timesheet as lib

    _guard(lib.remove_holiday, gateway_db(settings), day)
    click.echo(f"{day} is a normal day again")


# -- reports ------------------------------------------------------------------------------
@click.command("attendance")
@click.option("--day", metavar="YYYY-MM-DD", help="One day: in, out, late, left early, absent.")
@click.option("--month", metavar="YYYY-MM", help="A month: a row per staff member, a column per day, totals.")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, writable=True), help="Write the month as an Excel file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), help="Write the table as CSV ('-' for standard output).")
@click.pass_obj
def report_attendance(settings, day, month, xlsx_path, csv_path) -> None:
    """Timesheets from the stored scans, by the [workrules] and the holidays.

    \b
    First scan of the day = in, last = out; late/early when more than
    [workrules] grace_minutes off the office hours (then counted from the
    start/end); absent = a working day with no scan. '*' marks days with
    scans from a door whose clock was not synchronised.
    Examples:
      congso report attendance --day 2026-11-24
      congso report attendance --month 2026-11 --xlsx cham-cong-11-2026.xlsx
      congso report attendance --month 2026-11 --csv - > cham-cong.csv
    """
    from ..gateway import timesheet as lib

    if bool(day) == bool(month):
        raise click.UsageError("give --day YYYY-MM-DD or --month YYYY-MM")
    if day and xlsx_path:
        raise click.UsageError("--xlsx is for --month")
    rules = _guard(lib.WorkRules.from_settings, settings.workrules)
    tz = settings.site.timezone
    if day:
        first = last = _guard(lib.parse_day, day, "--day")
    else:
        first, last = _guard(lib.month_bounds, month)
    rep = lib.report(gateway_db(settings, readonly=True), rules, first, last, tz)
    if day:
        rows = [[p["staff_id"], p["name"], p["department"],
                 d.first.strftime("%H:%M") if d.first else "", d.last.strftime("%H:%M") if d.last else "",
                 d.late_min or "", d.early_min or "", d.status()]
                for p in rep.people for d in rep.records[p["staff_id"]]]
        columns = ["staff_id", "name", "department", "in", "out", "late min", "early min", "status"]
        if csv_path:
            _write_csv(csv_path, columns, rows)
        else:
            print_table(f"attendance {first} ({first:%A})", columns, rows)
        return
    if xlsx_path:
        n = lib.write_xlsx(rep, xlsx_path, settings.site.name)
        click.echo(f"wrote {xlsx_path}: {n} staff, {len(rep.days)} days", err=True)
    if csv_path:
        out = sys.stdout if csv_path == "-" else open(csv_path, "w", encoding="utf-8-sig", newline="")
        try:
            lib.write_csv(rep, out)
        finally:
            if out is not sys.stdout:
                out.close()
    if not xlsx_path and not csv_path:
        rows = [[p["staff_id"], p["name"], *(rep.totals(p["staff_id"])[k] for k in
                                             ("days_present", "late_minutes", "early_minutes", "absent_days"))]
                for p in rep.people]
        print_table(f"attendance {first:%m/%Y} (--xlsx or --csv for the day-by-day table)",
               ["staff_id", "name", "days present", "late min", "early min", "absent days"], rows)


def _write_csv(path: str, columns: list[str], rows: list[list]) -> None:
    import csv

    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8-sig", newline="")
    try:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()


def register(main: click.Group, report: click.Group) -> None:
    """Add this role's commands to `congso` and to `congso report`."""
    for command in (attendance, staff, card, enroll, holiday):
        main.add_command(command)
    report.add_command(report_attendance)
