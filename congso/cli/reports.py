"""The head of office's reports: ``congso report attendance``, ``ratings``, ``kpi``, ``plays``.

Assembly and writers are in ``congso.gateway.reports`` (the console makes
the same calls); this module parses the options and prints.
"""

from __future__ import annotations

import click

from .common import gateway_db, guard
from .output import print_table


@click.command("attendance")
@click.option("--day", metavar="YYYY-MM-DD", help="One day: in, out, late, left early, absent.")
@click.option("--month", metavar="YYYY-MM", help="A month: a row per staff member, a column per day, totals.")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, writable=True), help="Write the month as an Excel file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), help="Write the table as CSV ('-' for standard output).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the table as JSON lines, one object per row ('-' for standard output).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: the month as OFFICE.md's timesheet object on standard output (what the console's API answers).")
@click.pass_obj
def report_attendance(settings, day, month, xlsx_path, csv_path, json_path, fmt) -> None:
    """Timesheets from the stored scans, leave and corrections, by the [workrules] and the holidays.

    \b
    Each working day has a morning and an afternoon session, each marked
    +, a leave kind (P, Ô, Cô, Ts, T, H, Nb, No, CT), L (holiday) or V
    (absent). [workrules] scans = 2: first scan = in, last = out; 4: each
    session its own. Late/early count working minutes only (never the lunch
    break), in full once over [workrules] grace_minutes. The --xlsx file is
    the official form (Bảng chấm công, C01-HD), ready to print and sign.
    Examples:
      congso report attendance --day 2026-11-24
      congso report attendance --month 2026-11 --xlsx cham-cong-11-2026.xlsx
      congso report attendance --month 2026-11 --csv - > cham-cong.csv
      congso report attendance --month 2026-11 --format json
    """
    import json

    from ..gateway import reports, timesheet

    if bool(day) == bool(month):
        raise click.UsageError("give --day YYYY-MM-DD or --month YYYY-MM")
    if day and xlsx_path:
        raise click.UsageError("--xlsx is for --month")
    if csv_path == "-" and json_path == "-":
        raise click.UsageError("only one of --csv and --json can go to standard output")
    if fmt == "json" and not month:
        raise click.UsageError("--format json is for --month YYYY-MM")
    att = guard(reports.attendance, gateway_db(settings, readonly=True), settings.workrules, settings.site.timezone,
                day=day, month=month)
    if fmt == "json":
        click.echo(json.dumps(timesheet.month_json(att.report, settings.site.name), ensure_ascii=False))
        return
    from ..gateway import timesheet_form

    for line in guard(reports.write_attendance, att, csv_path=csv_path, xlsx_path=xlsx_path, json_path=json_path,
                      form=timesheet_form.form_header(settings)):
        click.echo(line, err=True)
    if xlsx_path or csv_path or json_path:
        return
    rep = att.report
    if att.is_day:
        columns, rows = reports.day_table(rep)
        print_table(f"attendance {rep.first} ({rep.first:%A})", columns, rows)
    else:
        columns, rows = reports.month_summary(rep)
        print_table(f"attendance {rep.first:%m/%Y} (--xlsx or --csv for the day-by-day table)", columns, rows)


@click.command("ratings")
@click.option("--from", "day_from", required=True, metavar="YYYY-MM-DD", help="First day, inclusive (office time zone).")
@click.option("--to", "day_to", required=True, metavar="YYYY-MM-DD", help="Last day, inclusive.")
@click.option("--by", type=click.Choice(["officer", "desk", "reason"]), default="officer", show_default=True,
              help="One row per officer, per desk, or per reason given after a dissatisfied vote.")
@click.option("--xlsx", type=click.Path(dir_okay=False, writable=True), help="Also write the report as an Excel workbook.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), help="Also write it as CSV ('-': standard output).")
@click.option("--exclude-flagged", is_flag=True, help="Leave out votes the kiosk flagged as a burst of presses.")
@click.pass_obj
def report_ratings(settings, day_from, day_to, by, xlsx, csv_path, exclude_flagged) -> None:
    """Citizen satisfaction over a period, per officer (the usual report), desk or reason.

    \b
    Columns: unit ([site] name), officer, votes, the votes at each level,
    each level's percentage, the satisfied percentage (very satisfied +
    satisfied over all votes) and the votes flagged as a burst of presses.
    Votes outside any desk session count under "(không gắn cán bộ)".
    The files have Vietnamese headers, the screen English ones. With
    --csv - the CSV is the only thing on standard output (and --xlsx is
    written too).
    \b
    Examples:
      congso report ratings --from 2026-11-01 --to 2026-11-30
      congso report ratings --from 2026-11-01 --to 2026-11-30 --xlsx hai-long-t11.xlsx
      congso report ratings --from 2026-11-01 --to 2026-11-30 --by reason --csv -
    """
    from ..gateway import reports

    rep = guard(reports.ratings, gateway_db(settings, readonly=True), day_from, day_to, by,
                unit=settings.site.name, scale_levels=settings.rating.levels, exclude_flagged=exclude_flagged)
    if csv_path != "-":
        headers, body = rep.table("en")
        print_table(f"Satisfaction by {by}, {rep.day_from} to {rep.day_to} ({rep.unit})", headers[1:],
                    [row[1:] for row in body])
    for line in reports.write_ratings(rep, csv_path=csv_path, xlsx_path=xlsx):
        click.echo(line, err=True)


@click.command("kpi")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month (office time zone).")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the figures as an Excel workbook (Vietnamese).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of the table.")
@click.pass_obj
def report_kpi(settings, month, xlsx_path, as_json) -> None:
    """The office's three figures for a month, with the counts behind each and the [kpi] targets.

    \b
    On time:      dossiers DUE in the month resolved (ready or returned,
                  the time read from their history) by the end of their due
                  day, over those resolved plus those still open and
                  overdue; open ones not yet due are shown, not counted.
    Online:       dossiers RECEIVED in the month that came through the
                  online portal (the dossier's `online` flag), over all
                  received.
    Satisfaction: votes of the month at very satisfied or satisfied, over
                  all votes; votes the kiosk flagged as a burst of presses
                  are left out (and counted apart).
    A share with nothing to count is shown as "-" (null in JSON). Targets:
    [kpi] on_time_target, online_target, satisfaction_target (0..1).
    \b
    Examples:
      congso report kpi --month 2026-11
      congso report kpi --month 2026-11 --xlsx chi-tieu-11-2026.xlsx
      congso report kpi --month 2026-11 --json
    """
    import json
    from pathlib import Path

    from ..gateway import kpi

    k = guard(kpi.month, gateway_db(settings, readonly=True), month, settings.site.timezone,
              targets=settings.kpi.as_dict())
    if xlsx_path:
        Path(xlsx_path).write_bytes(kpi.xlsx_bytes(k, settings.site.name))
        click.echo(f"wrote {xlsx_path}", err=True)
    if as_json:
        click.echo(json.dumps(k, ensure_ascii=False))
        return
    headers, rows = kpi.table(k, "en")
    print_table(f"Figures for {k['month']} ({settings.site.name})", headers, rows)


@click.command("plays")
@click.option("--day", metavar="DATE", help="One day (YYYY-MM-DD or dd/mm/yyyy); today when no date is given.")
@click.option("--from", "day_from", metavar="DATE", help="First day of a period, inclusive (with --to).")
@click.option("--to", "day_to", metavar="DATE", help="Last day of a period, inclusive (with --from).")
@click.option("--node", metavar="TV", help="One TV only, by its node id (e.g. tv-1).")
@click.option("--item", metavar="ID", help="One page, slide or urgent notice only, by its id.")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write the report as an Excel workbook (Vietnamese headers).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write it as CSV ('-': the CSV is the only thing on standard output).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object instead of the table.")
@click.pass_obj
def report_plays(settings, day, day_from, day_to, node, item, xlsx_path, csv_path, as_json) -> None:
    """Proof of play: what each TV showed, per day: how many times and for how long.

    \b
    One row per office day, TV and item (a page such as the board, a slide,
    an urgent notice): the showings, their total time, the first and the
    last start (office time). The title is the slide's current one while it
    exists, else the last one the TV reported. Showings from a TV whose
    clock was far off are counted and said so (column "clock off"; JSON
    time_flagged).
    \b
    Examples:
      congso report plays                                    today, every TV
      congso report plays --day 24/11/2026 --item tiem-chung   was this slide shown that day?
      congso report plays --from 2026-11-01 --to 2026-11-30 --node tv-1 --xlsx chieu-t11.xlsx
      congso report plays --day 2026-11-24 --json
      congso report plays --from 2026-11-01 --to 2026-11-30 --csv - > chieu.csv
    """
    import json

    from ..gateway import plays
    from ..gateway import reports
    from .common import office_now

    if day and (day_from or day_to):
        raise click.UsageError("give --day, or --from and --to, not both")
    if bool(day_from) != bool(day_to):
        raise click.UsageError("--from and --to go together (for one day: --day)")
    if as_json and csv_path == "-":
        raise click.UsageError("only one of --json and --csv - can go to standard output")
    first = guard(reports.parse_day_input, day or day_from, "--day" if day else "--from")
    last = guard(reports.parse_day_input, day or day_to, "--day" if day else "--to")
    if first is None:
        first = last = office_now(settings).date()
    rep = guard(plays.report, gateway_db(settings, readonly=True), first, last, node=node, item=item,
                tz=settings.site.timezone)
    if xlsx_path:
        plays.write_xlsx(rep, xlsx_path, settings.site.name)
        click.echo(f"wrote {xlsx_path}: {len(rep.rows)} rows", err=True)
    if csv_path:
        with reports.opened(csv_path) as out:
            plays.write_csv(rep, out)
        if csv_path != "-":
            click.echo(f"wrote {csv_path}", err=True)
        else:
            return
    if as_json:
        click.echo(json.dumps(rep.as_json(), ensure_ascii=False))
        return
    period = rep.day_from if rep.day_from == rep.day_to else f"{rep.day_from} to {rep.day_to}"
    if not rep.rows:
        click.echo(f"nothing shown {period}" + (f" on {node}" if node else "") + (f" of {item}" if item else ""))
        return
    headers, body = rep.table("en")
    if rep.day_from == rep.day_to:  # the title says the day
        headers, body = headers[1:], [row[1:] for row in body]
        body[-1][0] = "total"
    print_table(f"Showings {period} ({settings.site.name})", headers, body)
    if rep.time_flagged:
        click.echo(f"{rep.time_flagged} showing(s) came from a TV whose clock was far off: counted, "
                   "their day may be wrong (check the TV's time sync)", err=True)


def register(main: click.Group, report: click.Group) -> None:
    report.add_command(report_attendance)
    report.add_command(report_ratings)
    report.add_command(report_kpi)
    report.add_command(report_plays)
