"""The office's days: ``congso leave``, ``punch`` and ``holiday`` (what the timesheet is judged by).

Each command is one call into the gateway library (``congso.gateway.leave``,
``congso.gateway.days_off``; ``punch todo`` reads ``congso.gateway.timesheet``)
and one audit row with the Unix user (``audit.cli_actor``) as who entered
it; they write the gateway database directly, the gateway need not be
stopped. docs/attendance.md, "Leave, corrections and holidays".
"""

from __future__ import annotations

from datetime import date

import click

from .common import gateway_db, guard, office_now
from .output import output_options, show
from ..vocab.timesheet import LEAVE_KINDS


# -- holidays ---------------------------------------------------------------------------
@click.group("holiday")
def holiday() -> None:
    """Public holidays and days off: not working days, nobody is absent.

    Vietnam's holidays by law, the lunar ones included (Tết Nguyên Đán,
    Giỗ Tổ Hùng Vương), are known without anyone entering them. Enter the
    government's extra days off (`add`) and the weekend days swapped into
    working days (`workday`).

    \b
    Examples:
      congso holiday list --year 2027
      congso holiday add 2027-02-12 "Nghỉ bù Tết Nguyên Đán"
      congso holiday workday 2027-02-20 "Làm bù cho ngày 12/02/2027"
    """


@holiday.command("add")
@click.argument("day")
@click.argument("name")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 30), help="Several days in a row (Tết).")
@click.pass_obj
def holiday_add(settings, day, name, days) -> None:
    """Make DAY (YYYY-MM-DD) a day off named NAME: an extra day the government announced.

    The law's holidays (Tết, Giỗ Tổ Hùng Vương, 30/4, 1/5, 2/9, ...) need no entry.

    \b
    Examples:
      congso holiday add 2027-02-12 "Nghỉ bù Tết Nguyên Đán"
      congso holiday add 2027-04-29 "Nghỉ thêm dịp 30/4" --days 2
    """
    from ..gateway import audit, days_off

    db = gateway_db(settings)
    first = guard(days_off.add_off, db, day, name, days)
    audit.record_cli(db, "holiday.add", str(first), {"name": name, "days": days})
    click.echo(f"{days} day(s) from {first} marked as {name}")


@holiday.command("list")
@click.option("--year", type=int, help="Only this year, e.g. 2027 (default: this year and every year the office entered days for).")
@output_options
@click.pass_obj
def holiday_list(settings, year, fmt) -> None:
    """The days the timesheet does not count as working days, and the swapped working days.

    Vietnam's public holidays by law (Tết and Giỗ Tổ Hùng Vương included,
    from the lunar calendar: nobody enters them) are listed with source
    "law"; the days the office entered with source "office": kind "off"
    (an extra day off the government announced), "holiday", or "workday"
    (a weekend day made a working day).

    \b
    Examples:
      congso holiday list
      congso holiday list --year 2027 --csv
    """
    from ..gateway import days_off

    db = gateway_db(settings, readonly=True)
    if year is not None:
        years = [year]
    else:
        entered = {int(r[0]) for r in db.execute("SELECT DISTINCT substr(day, 1, 4) FROM holidays") if str(r[0]).isdigit()}
        years = sorted(entered | {office_now(settings).year})
    rows = [r for y in years for r in guard(days_off.list_days, db, y)]
    show(fmt, f"{len(rows)} days ({', '.join(map(str, years))})", ["day", "name", "kind", "source"],
         [[str(r["day"]), r["name"], r["kind"], r["source"]] for r in rows],
         records=[{"day": str(r["day"]), "name": r["name"], "kind": r["kind"], "source": r["source"]} for r in rows])


@holiday.command("workday")
@click.argument("day")
@click.argument("name")
@click.pass_obj
def holiday_workday(settings, day, name) -> None:
    """Make DAY (YYYY-MM-DD), a Saturday or Sunday, a working day NAME (swapped to lengthen a holiday).

    The timesheet then judges DAY like a Monday: a scan is expected, no scan
    is an absence.

    \b
    Example:
      congso holiday workday 2027-02-20 "Làm bù cho ngày 08/02/2027"
    """
    from ..gateway import audit, days_off

    db = gateway_db(settings)
    result = guard(days_off.add_workday, db, day, name)
    shown = result.isoformat() if isinstance(result, date) else day
    audit.record_cli(db, "holiday.workday", shown, {"name": name})
    click.echo(f"{shown} is a working day: {name}")


@holiday.command("remove")
@click.argument("day")
@click.pass_obj
def holiday_remove(settings, day) -> None:
    """Drop the office's entry for DAY (YYYY-MM-DD): a day off or a workday entered by mistake, or moved.

    A holiday by law cannot be removed; `congso holiday workday` makes it a working day.

    \b
    Example:
      congso holiday remove 2027-02-12
    """
    from ..gateway import audit, days_off

    db = gateway_db(settings)
    row = guard(days_off.remove, db, day)
    audit.record_cli(db, "holiday.remove", str(row["day"]), {"name": row["name"], "kind": row["kind"]})
    what = "working day" if row["kind"] == "workday" else "day off"
    click.echo(f"{row['day']} ({row['name']}) is no longer an office {what}")


# -- leave ------------------------------------------------------------------------------
KIND_HELP = "Timesheet symbol: " + ", ".join(f"{k} ({v})" for k, v in LEAVE_KINDS.items()) + "; accents optional (o = Ô, co = Cô)."


def _covers(row: dict) -> str:
    days = row["first_day"] if row["first_day"] == row["last_day"] else f"{row['first_day']} to {row['last_day']}"
    part = {"am": "morning only", "pm": "afternoon only"}.get(row["half"] or "", "whole day" if row["first_day"] == row["last_day"] else "whole days")
    return f"{row['staff_id']} {row['name'] or ''}: {row['kind']} ({LEAVE_KINDS.get(row['kind'], '')}), {days}, {part}"


@click.group("leave")
def leave() -> None:
    """Leave and official absences: the timesheet shows their symbol instead of "V" (absent).

    KIND is the form's symbol: P annual leave, Ô sick, Cô child sick,
    Ts maternity, T work accident, H meeting or training, Nb compensatory
    rest, No unpaid leave, CT official business trip. Accents and case are
    optional ("o", "co", "ct").

    \b
    Examples:
      congso leave add NV001 --kind P --from 2027-02-01 --to 2027-02-03
      congso leave add NV002 --kind CT --from 2027-02-04 --half pm --note "Họp tại huyện"
      congso leave list --month 2027-02
      congso leave remove 12
    """


@leave.command("add")
@click.argument("staff_id", metavar="STAFF")
@click.option("--kind", required=True, metavar="KIND", help=KIND_HELP)
@click.option("--from", "first_day", required=True, metavar="YYYY-MM-DD", help="First day, YYYY-MM-DD (dd/mm/yyyy too).")
@click.option("--to", "last_day", metavar="YYYY-MM-DD", help="Last day, YYYY-MM-DD (default: the --from day only).")
@click.option("--half", metavar="am|pm", help="am or pm: only the morning or the afternoon session (default: whole days).")
@click.option("--note", metavar="TEXT", help="Why, or the decision's number (shown in the list).")
@click.pass_obj
def leave_add(settings, staff_id, kind, first_day, last_day, half, note) -> None:
    """Record approved leave or an official absence for STAFF; prints its id and what it covers.

    A leave that covers the same session of a day as another one of the
    same person is refused, naming the other (remove it first to replace
    it). At most 366 days at a time.

    \b
    Examples:
      congso leave add NV001 --kind P --from 2027-02-01 --to 2027-02-03
      congso leave add NV001 --kind o --from 2027-02-08 --half am
      congso leave add NV003 --kind Ts --from 2027-03-01 --to 2027-08-31 --note "QĐ số 12/QĐ-UBND"
    """
    from ..gateway import audit
    from ..gateway import leave as lib

    db = gateway_db(settings)
    row = guard(lib.add, db, staff_id, kind, first_day, last_day, half, note,
                entered_by=audit.cli_actor(), tz=settings.site.timezone)
    audit.record_cli(db, "leave.add", str(row["id"]), {
        "staff_id": row["staff_id"], "kind": row["kind"], "from": row["first_day"], "to": row["last_day"],
        "half": row["half"], "note": row["note"]})
    click.echo(f"leave #{row['id']}: {_covers(row)}")


@leave.command("list")
@click.option("--staff", "staff_id", metavar="STAFF", help="Only this staff member.")
@click.option("--month", metavar="YYYY-MM", help="Only leave touching this month, YYYY-MM.")
@click.option("--status", type=click.Choice(["approved", "requested", "refused"]),
              help="Only this status (requests come from the console).")
@output_options
@click.pass_obj
def leave_list(settings, staff_id, month, status, fmt) -> None:
    """Leave by first day: who, which symbol, which days and sessions, who entered it.

    \b
    Examples:
      congso leave list --month 2027-02
      congso leave list --staff NV001 --json
      congso leave list --status requested
    """
    from ..gateway import leave as lib
    from ..gateway import timesheet

    first = last = None
    if month:
        first, last = guard(timesheet.month_bounds, month)
    rows = guard(lib.list_leave, gateway_db(settings, readonly=True), staff_id=staff_id, first=first, last=last,
                 status=status)
    columns = ["id", "staff_id", "name", "kind", "from", "to", "half", "status", "note", "entered_by", "decided_by"]
    show(fmt, f"{len(rows)} leave", columns,
         [[r["id"], r["staff_id"], r["name"], r["kind"], r["first_day"], r["last_day"], r["half"] or "whole",
           r["status"], r["note"], r["entered_by"], r["decided_by"]] for r in rows],
         records=rows, empty="no leave" + (f" in {month}" if month else ""))


@leave.command("remove")
@click.argument("leave_id", metavar="ID")
@click.pass_obj
def leave_remove(settings, leave_id) -> None:
    """Delete the leave ID (entered by mistake, or to be replaced); see the ids in `congso leave list`.

    \b
    Example:
      congso leave remove 12
    """
    from ..gateway import audit
    from ..gateway import leave as lib

    db = gateway_db(settings)
    row = guard(lib.remove, db, leave_id)
    audit.record_cli(db, "leave.remove", str(row["id"]), {
        "staff_id": row["staff_id"], "kind": row["kind"], "from": row["first_day"], "to": row["last_day"],
        "half": row["half"], "status": row["status"]})
    click.echo(f"removed leave #{row['id']}: {_covers(row)}")


def _decide(settings, leave_id, approve: bool) -> None:
    from ..gateway import audit
    from ..gateway import leave as lib

    db = gateway_db(settings)
    row = guard(lib.decide, db, leave_id, approve, decided_by=audit.cli_actor(), tz=settings.site.timezone)
    audit.record_cli(db, "leave.approve" if approve else "leave.refuse", str(row["id"]), {
        "staff_id": row["staff_id"], "kind": row["kind"], "from": row["first_day"], "to": row["last_day"],
        "half": row["half"]})
    click.echo(f"leave #{row['id']} {row['status']}: {_covers(row)}")


@leave.command("approve")
@click.argument("leave_id", metavar="ID")
@click.pass_obj
def leave_approve(settings, leave_id) -> None:
    """Approve the leave request ID (made in the console); the timesheet counts it from now on.

    \b
    Examples:
      congso leave list --status requested
      congso leave approve 14
    """
    _decide(settings, leave_id, True)


@leave.command("refuse")
@click.argument("leave_id", metavar="ID")
@click.pass_obj
def leave_refuse(settings, leave_id) -> None:
    """Refuse the leave request ID (made in the console); it stays listed as refused.

    \b
    Example:
      congso leave refuse 14
    """
    _decide(settings, leave_id, False)


# -- corrections (manual punches) -----------------------------------------------------------
def _hm(value) -> str:
    return value.strftime("%H:%M") if value is not None else ""


@click.group("punch")
def punch() -> None:
    """Corrections: a forgotten scan entered by hand, with who, when and why.

    It is kept apart from the doors' events (those are never edited) and
    the timesheet flags the day "manual". `congso punch todo` lists the
    month's days missing an in or an out.

    \b
    Examples:
      congso punch todo --month 2027-02
      congso punch add NV001 --at 2027-02-03T17:05 --reason "Quên chấm công khi về"
      congso punch list --month 2027-02
    """


@punch.command("add")
@click.argument("staff_id", metavar="STAFF")
@click.option("--at", "at", required=True, metavar="YYYY-MM-DDTHH:MM", help="When, YYYY-MM-DDTHH:MM in office time (e.g. 2027-02-03T07:30).")
@click.option("--reason", required=True, metavar="TEXT", help="Why it is entered by hand (at least 3 characters; who confirmed it).")
@click.pass_obj
def punch_add(settings, staff_id, at, reason) -> None:
    """Record a forgotten scan of STAFF at --at, as a scan of its own; prints its id.

    Not in the future; one correction a minute per person.

    \b
    Examples:
      congso punch add NV001 --at 2027-02-03T17:05 --reason "Quên chấm công khi về, trưởng phòng xác nhận"
      congso punch add NV002 --at 2027-02-04T07:30 --reason "Máy chấm công hỏng buổi sáng"
    """
    from ..gateway import audit
    from ..gateway import leave as lib

    db = gateway_db(settings)
    row = guard(lib.add_punch, db, staff_id, at, reason, entered_by=audit.cli_actor(), tz=settings.site.timezone)
    audit.record_cli(db, "punch.add", str(row["id"]), {"staff_id": row["staff_id"], "at": row["ts"], "reason": row["reason"]})
    click.echo(f"correction #{row['id']}: {row['staff_id']} {row['name'] or ''} scanned at "
               f"{row['ts'][:10]} {row['ts'][11:16]} ({row['reason']})")


@punch.command("list")
@click.option("--staff", "staff_id", metavar="STAFF", help="Only this staff member.")
@click.option("--month", metavar="YYYY-MM", help="Only this month, YYYY-MM.")
@output_options
@click.pass_obj
def punch_list(settings, staff_id, month, fmt) -> None:
    """The corrections entered, oldest first, with who entered them, when and why.

    \b
    Examples:
      congso punch list --month 2027-02
      congso punch list --staff NV001 --csv
    """
    from ..gateway import leave as lib
    from ..gateway import timesheet

    first = last = None
    if month:
        first, last = guard(timesheet.month_bounds, month)
    rows = guard(lib.list_punches, gateway_db(settings, readonly=True), staff_id=staff_id, first=first, last=last)
    show(fmt, f"{len(rows)} corrections", ["id", "staff_id", "name", "day", "time", "reason", "entered_by", "entered_at"],
         [[r["id"], r["staff_id"], r["name"], r["local_date"], r["ts"][11:16], r["reason"], r["entered_by"],
           r["entered_at"][:16].replace("T", " ")] for r in rows],
         records=rows, empty="no corrections" + (f" in {month}" if month else ""))


@punch.command("remove")
@click.argument("punch_id", metavar="ID")
@click.pass_obj
def punch_remove(settings, punch_id) -> None:
    """Delete the correction ID (entered by mistake); see the ids in `congso punch list`.

    \b
    Example:
      congso punch remove 7
    """
    from ..gateway import audit
    from ..gateway import leave as lib

    db = gateway_db(settings)
    row = guard(lib.remove_punch, db, punch_id)
    audit.record_cli(db, "punch.remove", str(row["id"]), {"staff_id": row["staff_id"], "at": row["ts"], "reason": row["reason"]})
    click.echo(f"removed correction #{row['id']}: {row['staff_id']} at {row['ts'][:10]} {row['ts'][11:16]}")


@punch.command("todo")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month to check, YYYY-MM.")
@output_options
@click.pass_obj
def punch_todo(settings, month, fmt) -> None:
    """The month's working days missing an in or an out scan, oldest first: the clerk's list to correct.

    Today is left out until the day is over. Each line is fixed with
    `congso punch add` (or leave, when the person was away).

    \b
    Examples:
      congso punch todo --month 2027-02
      congso punch todo --month 2027-02 --csv > can-bo-sung.csv
    """
    from ..gateway import leave as lib
    from ..gateway import timesheet

    first, last = guard(timesheet.month_bounds, month)
    rules = guard(timesheet.WorkRules.from_settings, settings.workrules)
    db = gateway_db(settings, readonly=True)
    rep = guard(timesheet.report, db, rules, first, last, settings.site.timezone, now=office_now(settings))
    rows = lib.corrections(rep)
    show(fmt, f"{len(rows)} days to correct in {month}", ["day", "staff_id", "name", "in", "out", "missing"],
         [[r["day"].isoformat(), r["staff_id"], r["name"], _hm(r["in"]), _hm(r["out"]), r["missing"]] for r in rows],
         records=[{"day": r["day"].isoformat(), "staff_id": r["staff_id"], "name": r["name"],
                   "in": _hm(r["in"]) or None, "out": _hm(r["out"]) or None, "missing": r["missing"]} for r in rows],
         empty=f"nothing to correct in {month}")
    if rows and fmt == "table":
        r = rows[0]
        click.echo(f"fix one: congso punch add {r['staff_id']} --at {r['day'].isoformat()}THH:MM --reason \"...\"")


def register(main: click.Group, report: click.Group) -> None:
    for command in (holiday, leave, punch):
        main.add_command(command)
