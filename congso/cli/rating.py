"""The rating commands of ``congso``: the kiosk, desk sessions and the satisfaction report.

Each command is a thin shell over ``congso.gateway.ratings`` or
``congso.rating_node.app``. The desk commands write the gateway database
directly (they work while the gateway is down); the running gateway
publishes the change to the kiosk within a fraction of a second.
"""

from __future__ import annotations

import sys

import click

from .common import gateway_db, office_now






# -- the kiosk -------------------------------------------------------------------
@click.group()
def rating() -> None:
    """The citizen satisfaction kiosk at a one-stop desk."""


@rating.command("run")
@click.pass_obj
def rating_run(settings) -> None:
    """Run the kiosk full screen until SIGTERM or Ctrl-C.

    \b
    The desk comes from [rating] desk_id (CONGSO_RATING_DESK_ID), the node id
    from CONGSO_NODE_ID. Touch screen and/or the GPIO buttons of
    [gpio] buttons (best level first, as many as [rating] levels).
    \b
    Examples:
      CONGSO_NODE_ID=kiosk-1 CONGSO_RATING_DESK_ID=mot-cua-1 congso rating run
      SDL_VIDEODRIVER=dummy GPIOZERO_PIN_FACTORY=mock congso rating run   (no screen, no GPIO)
    """
    from ..rating_node.app import KioskError, run_kiosk

    try:
        sys.exit(run_kiosk(settings))
    except KioskError as e:
        raise click.ClickException(str(e)) from None


# -- desk sessions ----------------------------------------------------------------
@click.group()
def desk() -> None:
    """Desk sessions: tie the kiosk's next vote to the officer serving the citizen.

    \b
    The officer opens a session when serving a citizen; the kiosk at that
    desk then shows the officer's name (and the dossier code) and the
    citizen's vote counts for that officer. A session ends with the vote,
    after --minutes, or with `congso desk close`.
    """


@desk.command("open")
@click.option("--desk", "desk_id", required=True, help="Desk id, as the kiosk's [rating] desk_id, e.g. mot-cua-1.")
@click.option("--officer", required=True, help="Staff id of the officer serving, e.g. NV003.")
@click.option("--dossier", help="Code of the dossier handled, shown on the kiosk.")
@click.option("--minutes", default=15, show_default=True, type=int, help="The session expires after this long without a vote.")
@click.pass_obj
def desk_open(settings, desk_id, officer, dossier, minutes) -> None:
    """Open a session on a desk (closing the one still open there).

    \b
    The officer must be in the staff list; while the office has no staff
    list at all, the staff id stands for the name.
    \b
    Examples:
      congso desk open --desk mot-cua-1 --officer NV003
      congso desk open --desk mot-cua-1 --officer NV003 --dossier 000.00.12.H23-261123-0001 --minutes 30
    """
    from ..gateway import ratings

    db = gateway_db(settings)
    try:
        session = ratings.open_session(db, desk_id, officer, office_now(settings), dossier, minutes)
    except ratings.SessionError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"session {session['session_id']} open on {desk_id}: {session['officer_name']} ({officer})"
               + (f", dossier {session['dossier_code']}" if session["dossier_code"] else "")
               + f", until {session['expires_at']}")


@desk.command("close")
@click.option("--desk", "desk_id", required=True, help="Desk id, e.g. mot-cua-1.")
@click.pass_obj
def desk_close(settings, desk_id) -> None:
    """Close the open session on a desk (the kiosk goes back to votes for the desk only)."""
    from ..gateway import ratings

    session = ratings.close_session(gateway_db(settings), desk_id, office_now(settings))
    if session is None:
        raise click.ClickException(f"no session is open on desk {desk_id}")
    click.echo(f"session {session['session_id']} on {desk_id} ({session['officer_name']}) closed")


@desk.command("list")
@click.pass_obj
def desk_list(settings) -> None:
    """The sessions open now, one per desk."""
    from ..gateway import ratings

    sessions = ratings.open_sessions(gateway_db(settings, readonly=True), office_now(settings))
    if not sessions:
        click.echo("no session open")
        return
    click.echo(f"{'desk':<16} {'officer':<10} {'name':<28} {'dossier':<28} expires")
    for s in sessions:
        click.echo(f"{s['desk_id']:<16} {s['officer_id']:<10} {s['officer_name']:<28} "
                   f"{s['dossier_code'] or '-':<28} {s['expires_at']}")


# -- the report --------------------------------------------------------------------
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
    The files have Vietnamese headers, the screen English ones.
    \b
    Examples:
      congso report ratings --from 2026-11-01 --to 2026-11-30
      congso report ratings --from 2026-11-01 --to 2026-11-30 --xlsx hai-long-t11.xlsx
      congso report ratings --from 2026-11-01 --to 2026-11-30 --by reason --csv -
    """
    from rich.console import Console
    from rich.table import Table

    from ..gateway import ratings

    db = gateway_db(settings, readonly=True)
    try:
        rep = ratings.build_report(db, day_from, day_to, by, unit=settings.site.name,
                                   scale_levels=settings.rating.levels, exclude_flagged=exclude_flagged)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if csv_path == "-":
        ratings.write_csv(rep, sys.stdout)
        return
    headers, body = rep.table("en")
    table = Table(title=f"Satisfaction by {by}, {rep.day_from} to {rep.day_to} ({rep.unit})")
    for h in headers[1:]:
        table.add_column(h, overflow="fold")
    for row in body:
        table.add_row(*["" if v is None else str(v) for v in row[1:]])
    Console(width=max(Console().width, 120)).print(table)
    if csv_path:
        with open(csv_path, "w", encoding="utf-8-sig", newline="") as f:  # BOM: Excel opens it as UTF-8
            ratings.write_csv(rep, f)
        click.echo(f"wrote {csv_path}", err=True)
    if xlsx:
        ratings.write_xlsx(rep, xlsx)
        click.echo(f"wrote {xlsx}", err=True)


def register(main: click.Group, report: click.Group) -> None:
    """Add this role's commands to `congso` and to `congso report`."""
    main.add_command(rating)
    main.add_command(desk)
    report.add_command(report_ratings)
