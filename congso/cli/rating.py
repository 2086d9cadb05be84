"""The rating kiosk, its desk sessions and desk duty: ``congso rating run``, ``congso desk``.

Each command is one call into ``congso.gateway.ratings`` or
``congso.rating_node.app``. The desk commands write the gateway database
directly (they work while the gateway is down); the running gateway
publishes the change to the kiosk within a fraction of a second. The
satisfaction report is in ``cli/reports.py``.
"""

from __future__ import annotations

import sys

import click

from .common import gateway_db, guard, office_now
from ..vocab.text import printable
from .output import TABLE, output_options, show


# -- the kiosk -------------------------------------------------------------------
@click.group()
def rating() -> None:
    """The citizen satisfaction kiosk at a one-stop desk.

    \b
    Example:
      CONGSO_NODE_ID=kiosk-1 CONGSO_RATING_DESK_ID=mot-cua-1 congso rating run
    """


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

    \b
    Desk duty (nhận quầy) is longer: the officer takes the desk for the
    morning (a card tap at the kiosk, the console, or `congso desk take`)
    and every vote there is theirs until they leave it.

    \b
    Examples:
      congso desk open --desk mot-cua-1 --officer NV003
      congso desk list
      congso desk take mot-cua-1 --officer NV003
      congso desk duty
      congso desk leave mot-cua-1
    """


@desk.command("open")
@click.option("--desk", "desk_id", required=True, help="Desk id, as the kiosk's [rating] desk_id, e.g. mot-cua-1.")
@click.option("--officer", required=True, help="Staff id of the officer serving, e.g. NV003.")
@click.option("--dossier", help="Code of the dossier handled, shown on the kiosk.")
@click.option("--minutes", default=15, show_default=True, type=click.IntRange(min=1),
              help="The session expires after this long without a vote.")
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
    from ..gateway import audit

    db = gateway_db(settings)
    session = guard(ratings.open_session, db, desk_id, officer, office_now(settings), dossier, minutes)
    audit.record_cli(db, "desks.open", desk_id, {"officer": officer, "dossier": dossier, "minutes": minutes})
    click.echo(f"session {session['session_id']} open on {desk_id}: {session['officer_name']} ({officer})"
               + (f", dossier {session['dossier_code']}" if session["dossier_code"] else "")
               + f", until {session['expires_at']}")


@desk.command("close")
@click.option("--desk", "desk_id", required=True, help="Desk id, e.g. mot-cua-1.")
@click.pass_obj
def desk_close(settings, desk_id) -> None:
    """Close the open session on a desk (the kiosk goes back to votes for the desk only).

    \b
    Example:
      congso desk close --desk mot-cua-1
    """
    from ..gateway import ratings
    from ..gateway import audit

    db = gateway_db(settings)
    session = ratings.close_session(db, desk_id, office_now(settings))
    if session is None:
        raise click.ClickException(f"no session is open on desk {desk_id}")
    audit.record_cli(db, "desks.close", desk_id, {"officer": session.get("officer_id") or session.get("officer_name")})
    click.echo(f"session {session['session_id']} on {desk_id} ({session['officer_name']}) closed")


@desk.command("list")
@output_options
@click.pass_obj
def desk_list(settings, fmt) -> None:
    """The sessions open now, one per desk.

    \b
    Examples:
      congso desk list
      congso desk list --json
    """
    from ..gateway import ratings

    sessions = ratings.open_sessions(gateway_db(settings, readonly=True), office_now(settings))
    columns = ["desk", "officer", "name", "dossier", "expires"]
    rows = [[s["desk_id"], s["officer_id"], printable(s["officer_name"]), s["dossier_code"] or "-", s["expires_at"]]
            for s in sessions]
    if fmt != TABLE:
        show(fmt, "", columns, rows, records=sessions)
    elif not sessions:
        click.echo("no session open")
    else:
        # Fixed columns, one line per desk: short enough to read at the desk over SSH.
        click.echo(f"{'desk':<16} {'officer':<10} {'name':<28} {'dossier':<28} expires")
        for r in rows:
            click.echo(f"{r[0]:<16} {r[1]:<10} {r[2]:<28} {r[3]:<28} {r[4]}")


# -- desk duty (nhận quầy) -----------------------------------------------------------
@desk.command("take")
@click.argument("desk_id", metavar="DESK")
@click.option("--officer", required=True, metavar="STAFF_ID",
              help="The officer taking the desk: a staff id whose console user has this desk given.")
@click.pass_obj
def desk_take(settings, desk_id, officer) -> None:
    """Give a desk to an officer now (nhận quầy), as their card tap at the kiosk would.

    \b
    Every vote at the desk is theirs until they leave it (a tap, the
    console, `congso desk leave`); whoever held it before is replaced. Only
    an officer whose console user has the desk given may take it:
    `congso web user desks USER mot-cua-1` first. The running gateway
    publishes the change (state/duty) and the kiosk shows the name.
    \b
    Examples:
      congso desk take mot-cua-1 --officer NV003
      congso desk duty
    """
    from ..gateway import audit, duty

    db = gateway_db(settings)
    row = guard(duty.take, db, desk_id, officer.strip(), office_now(settings), via="cli",
                actor=(audit.cli_actor(), "cli"))
    click.echo(f"desk {desk_id} taken by {printable(row['officer_name'])} ({row['officer_id']}) since {row['since']}")


@desk.command("leave")
@click.argument("desk_id", metavar="DESK")
@click.option("--officer", metavar="STAFF_ID", help="Only if this officer holds it (refused otherwise).")
@click.pass_obj
def desk_leave(settings, desk_id, officer) -> None:
    """Free a desk (rời quầy): votes there count for the desk only again.

    \b
    Examples:
      congso desk leave mot-cua-1
      congso desk leave mot-cua-1 --officer NV003
    """
    from ..gateway import audit, duty

    db = gateway_db(settings)
    row = guard(duty.leave, db, desk_id, office_now(settings), (officer or "").strip() or None,
                actor=(audit.cli_actor(), "cli"), via="cli")
    if row is None:
        raise click.ClickException(f"nobody holds desk {desk_id} (congso desk duty lists who holds which)")
    click.echo(f"desk {desk_id} left by {printable(row['officer_name'])} ({row['officer_id']}), "
               f"held since {row['since']}")


@desk.command("duty")
@output_options
@click.pass_obj
def desk_duty(settings, fmt) -> None:
    """Who holds which desk now, since when, and how (card tap, console, CLI).

    \b
    Desks given to an officer but held by nobody are listed as free.
    \b
    Examples:
      congso desk duty
      congso desk duty --json
    """
    from ..gateway import duty

    db = gateway_db(settings, readonly=True)
    held = duty.holders(db)
    desks = sorted(set(held) | {d for e in duty.officers(db).values() for d in e["desks"]})
    columns = ["desk", "officer", "name", "since", "via"]
    rows = []
    for d in desks:
        r = held.get(d)
        rows.append([d, r["officer_id"], printable(r["officer_name"]), r["since"], r["via"]] if r
                    else [d, "-", "(free)", "-", "-"])
    records = [{"desk_id": d, "officer_id": held[d]["officer_id"], "officer_name": held[d]["officer_name"],
                "since": held[d]["since"], "via": held[d]["via"]} if d in held else {"desk_id": d, "officer_id": None}
               for d in desks]
    if fmt != TABLE:
        show(fmt, "", columns, rows, records=records)
    elif not desks:
        click.echo("no desk is held, and no desk is given to an officer (congso web user desks USER DESK)")
    else:
        click.echo(f"{'desk':<16} {'officer':<10} {'name':<28} {'since':<26} via")
        for r in rows:
            click.echo(f"{r[0]:<16} {r[1]:<10} {r[2]:<28} {r[3]:<26} {r[4]}")


def register(main: click.Group, report: click.Group) -> None:
    main.add_command(rating)
    main.add_command(desk)
