"""Who may enter, and how: ``congso staff``, ``card``, ``enroll``.

Each command is one call into ``congso.gateway.staff``,
``congso.gateway.enrolment``. They write the
gateway database directly (they work while the gateway runs; it
re-publishes the roster within a second).
"""

from __future__ import annotations

import click

from .common import gateway_db, guard, office_now
from .output import output_options, show


# -- staff --------------------------------------------------------------------------
@click.group("staff")
def staff() -> None:
    """Staff members the doors know (the roster).

    \b
    Examples:
      congso staff add NV001 "Nguyễn Thị Thu Hà" -d "Văn phòng"
      congso staff import nhan-vien.csv
      congso staff list --csv > nhan-vien.csv
    """


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
    from ..gateway import audit

    db = gateway_db(settings)
    sid = guard(lib.add, db, staff_id, name, department, position, settings.site.timezone)
    audit.record_cli(db, "staff.add", sid, {"name": name, "department": department, "position": position})
    click.echo(f"added {sid}; next: congso card assign {sid} <UID>  or  congso enroll --node <door> --staff {sid}")


@staff.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Deactivated staff too.")
@output_options
@click.pass_obj
def staff_list(settings, include_inactive, fmt) -> None:
    """Staff with their cards and fingers (door:slot).

    \b
    Examples:
      congso staff list
      congso staff list --all --csv > nhan-vien.csv
    """
    from ..gateway import staff as lib

    rows = lib.list_staff(gateway_db(settings, readonly=True), include_inactive)
    show(fmt, f"{len(rows)} staff", ["staff_id", "name", "department", "position", "active", "cards", "fingers"],
         [[r["staff_id"], r["name"], r["department"], r["position"], "yes" if r["active"] else "no",
           r["cards"], r["fingers"]] for r in rows],
         records=[{**r, "active": bool(r["active"])} for r in rows])


@staff.command("import")
@click.argument("csv_file", type=click.File("rb"))
@click.pass_obj
def staff_import(settings, csv_file) -> None:
    """Add or update staff from a CSV or XLSX file; nothing is imported unless every line is good.

    \b
    Columns (header line required; order free): staff_id,name,department,position
    or the Vietnamese headers: Mã NV,Họ và tên,Phòng ban,Chức vụ.
    CSV in UTF-8 (with or without BOM) or Windows-1258, comma or semicolon;
    or an Excel .xlsx (first sheet).
    Example:
      congso staff import nhan-vien.csv
    """
    from ..gateway import staff as lib
    from ..gateway import audit

    db = gateway_db(settings)
    added, updated = guard(lib.import_csv, db, csv_file.read(), settings.site.timezone, csv_file.name)
    audit.record_cli(db, "staff.import", csv_file.name, {"added": added, "updated": updated})
    click.echo(f"imported {added + updated} staff ({added} new, {updated} updated)")


@staff.command("deactivate")
@click.argument("staff_id")
@click.pass_obj
def staff_deactivate(settings, staff_id) -> None:
    """STAFF_ID left: every door refuses them from now on; past reports keep them.

    \b
    Example:
      congso staff deactivate NV001
    """
    from ..gateway import staff as lib
    from ..gateway import audit

    db = gateway_db(settings)
    guard(lib.deactivate, db, staff_id)
    audit.record_cli(db, "staff.deactivate", staff_id)
    click.echo(f"deactivated {staff_id}: the doors refuse them once the roster is re-published")


# -- cards --------------------------------------------------------------------------
@click.group("card")
def card() -> None:
    """Contactless cards: who has which, and taps nobody's card made.

    \b
    Examples:
      congso card unknown
      congso card assign NV001 04A1B2C3
    """


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
    from ..gateway import audit

    db = gateway_db(settings)
    uid = guard(lib.assign_card, db, staff_id, uid, settings.site.timezone)
    audit.record_cli(db, "staff.card_assign", uid, {"staff_id": staff_id})
    click.echo(f"card {uid} -> {staff_id}")


@card.command("remove")
@click.argument("uid")
@click.pass_obj
def card_remove(settings, uid) -> None:
    """Take card UID away from whoever has it (lost card, reassigned).

    \b
    Example:
      congso card remove 04A1B2C3
    """
    from ..gateway import staff as lib
    from ..gateway import audit

    db = gateway_db(settings)
    uid = guard(lib.remove_card, db, uid)
    audit.record_cli(db, "staff.card_remove", uid)
    click.echo(f"card {uid} removed")


@card.command("unknown")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1), help="How far back.")
@output_options
@click.pass_obj
def card_unknown(settings, days, fmt) -> None:
    """Recent taps of cards nobody has, newest first: assign them with `congso card assign`.

    \b
    Example:
      congso card unknown --days 7
    """
    from ..gateway import staff as lib

    rows = guard(lib.unknown_cards_recent, gateway_db(settings, readonly=True), office_now(settings).date(), days)
    show(fmt, f"{len(rows)} unknown cards", ["uid", "last door", "last tap", "taps"],
         [[r["uid"], r["last_node"], r["last_ts"], r["taps"]] for r in rows],
         empty=f"no unknown cards in the last {days} days")


# -- enrolment ------------------------------------------------------------------------
@click.command("enroll")
@click.option("--node", required=True, help="The door whose sensor the person is at, e.g. door-1.")
@click.option("--staff", "staff_id", required=True, help="Whose finger, e.g. NV001.")
@click.option("--slot", type=click.IntRange(min=0), help="Module slot (default: the first free one).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds to wait for the door's answer (default: 3 x [attendance] enroll_timeout_s + 10, "
                   "time for two placements and the lift between).")
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
    from ..gateway import enrolment
    from ..gateway import audit

    db = gateway_db(settings)

    def queued(cmd_id: str) -> None:
        audit.record_cli(db, "staff.finger_enrol", staff_id, {"node": node, "slot": slot, "cmd_id": cmd_id})
        click.echo(f"asked {node} to enrol {staff_id}: the person places the finger when the green light blinks",
                   err=True)

    done = guard(enrolment.enrol, db, node, staff_id, slot=slot,
                 timeout_s=timeout or enrolment.default_timeout(settings.attendance.enroll_timeout_s),
                 tz=settings.site.timezone, on_queued=queued)
    click.echo(done.summary())


def register(main: click.Group, report: click.Group) -> None:
    for command in (staff, card, enroll):
        main.add_command(command)
