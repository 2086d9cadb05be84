"""The office's days: ``congso leave``, ``punch`` and ``holiday`` (what the timesheet is judged by).

Each command is one call into the gateway library (``congso.gateway.leave``,
``congso.gateway.timesheet``) and one audit row; they write the gateway
database directly, the gateway need not be stopped.
"""

from __future__ import annotations

import click

from .common import gateway_db, guard
from .output import output_options, show


# -- holidays ---------------------------------------------------------------------------
@click.group("holiday")
def holiday() -> None:
    """Public holidays: not working days, nobody is absent.

    \b
    Examples:
      congso holiday add 2026-09-02 "Quốc khánh"
      congso holiday list --year 2026
    """


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
    from ..gateway import audit

    db = gateway_db(settings)
    first = guard(lib.add_holidays, db, day, name, days)
    audit.record_cli(db, "holiday.add", str(first), {"name": name, "days": days})
    click.echo(f"{days} day(s) from {first} marked as {name}")


@holiday.command("list")
@click.option("--year", type=int, help="Only this year, e.g. 2027 (default: every year).")
@output_options
@click.pass_obj
def holiday_list(settings, year, fmt) -> None:
    """The public holidays, by day: the timesheets count nobody absent on them.

    \b
    Examples:
      congso holiday list
      congso holiday list --year 2027 --csv
    """
    from ..gateway import timesheet as lib

    rows = lib.list_holidays(gateway_db(settings, readonly=True), year)
    show(fmt, f"{len(rows)} holidays", ["day", "name"], [list(r) for r in rows])


@holiday.command("remove")
@click.argument("day")
@click.pass_obj
def holiday_remove(settings, day) -> None:
    """Make DAY (YYYY-MM-DD) a normal day again (a holiday added by mistake, or moved).

    \b
    Example:
      congso holiday remove 2027-02-06
    """
    from ..gateway import timesheet as lib
    from ..gateway import audit

    db = gateway_db(settings)
    guard(lib.remove_holiday, db, day)
    audit.record_cli(db, "holiday.remove", day)
    click.echo(f"{day} is a normal day again")


def register(main: click.Group, report: click.Group) -> None:
    for command in (holiday,):
        main.add_command(command)
