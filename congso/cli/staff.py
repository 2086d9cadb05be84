"""Who may enter, and how: ``congso staff``, ``card``, ``enroll``; their data (consent, export, deletions).

Each command is one call into ``congso.gateway.staff``,
``congso.gateway.enrolment``. They write the
gateway database directly (they work while the gateway runs; it
re-publishes the roster within a second).
"""

from __future__ import annotations

import json
import sys

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
      congso staff consent NV001 --recorded-by "Trần Văn Bình"
      congso staff deletions
      congso staff export-data NV001 -o NV001.json
    """


@staff.command("add")
@click.argument("staff_id")
@click.argument("name")
@click.option("--department", "-d", help="Phòng ban / đơn vị.")
@click.option("--position", "-p", help="Chức vụ.")
@click.option("--schedule", help="A schedule group of [workrules] groups (hours that differ: commune police, part-time).")
@click.pass_obj
def staff_add(settings, staff_id, name, department, position, schedule) -> None:
    """Add STAFF_ID with NAME (in quotes); the doors know them within a second.

    \b
    Examples:
      congso staff add NV001 "Nguyễn Thị Thu Hà" -d "Văn phòng" -p "Văn thư"
      congso staff add CA01 "Trần Văn Công" -d "Công an xã" --schedule cong-an
    """
    from ..gateway import staff as lib
    from ..gateway import audit

    db = gateway_db(settings)
    groups = _schedule_groups(settings)
    guard(lib.check_schedule, schedule, groups)  # before anything is stored
    sid = guard(lib.add, db, staff_id, name, department, position, settings.site.timezone)
    if schedule:
        guard(lib.set_schedule, db, sid, schedule, groups)
    audit.record_cli(db, "staff.add", sid, {"name": name, "department": department, "position": position,
                                            **({"schedule": schedule} if schedule else {})})
    click.echo(f"added {sid}; next: congso card assign {sid} <UID>  or  congso enroll --node <door> --staff {sid}")


def _schedule_groups(settings) -> set[str]:
    from ..gateway import timesheet

    return set(guard(timesheet.WorkRules.from_settings, settings.workrules).groups)


@staff.command("schedule")
@click.argument("staff_id")
@click.argument("group", required=False)
@click.option("--office", "office_hours", is_flag=True, help="Back on the office's own hours ([workrules] per weekday).")
@click.pass_obj
def staff_schedule(settings, staff_id, group, office_hours) -> None:
    """Put STAFF_ID on the schedule GROUP (one of [workrules] groups), or --office.

    The timesheet judges their days by that group's hours from then on,
    months already past included (the report is always made from the rules).

    \b
    Examples:
      congso staff schedule CA01 cong-an
      congso staff schedule CA01 --office
    """
    from ..gateway import staff as lib
    from ..gateway import audit

    if bool(group) == office_hours:
        raise click.UsageError("give a GROUP or --office")
    db = gateway_db(settings)
    guard(lib.set_schedule, db, staff_id, group, _schedule_groups(settings))
    audit.record_cli(db, "staff.schedule", staff_id, {"schedule": group})
    click.echo(f"{staff_id}: {'schedule ' + group if group else 'the office hours'}")


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
    Their cards stop at once; their fingerprint templates are deleted from
    every door's sensor (asked again until each door confirms: see
    `congso staff deletions`) and from the gateway.
    Example:
      congso staff deactivate NV001
    """
    from ..gateway import staff as lib
    from ..gateway import audit

    db = gateway_db(settings)
    asked = guard(lib.deactivate, db, staff_id, settings.site.timezone)
    audit.record_cli(db, "staff.deactivate", staff_id, {"deletions": [f"{n}:{s}" for n, s in asked]})
    click.echo(f"deactivated {staff_id}: the doors refuse them once the roster is re-published")
    _say_deletions(staff_id, asked)


def _say_deletions(staff_id: str, asked: list[tuple[str, int]]) -> None:
    if asked:
        click.echo(f"asked {len(asked)} door(s) to delete the fingerprint of {staff_id}: "
                   + ", ".join(f"{node} (slot {slot})" for node, slot in asked))
        click.echo(f"the gateway asks again until each door confirms: congso staff deletions {staff_id}")
    else:
        click.echo(f"no door holds a fingerprint of {staff_id}")


@staff.command("deletions")
@click.argument("staff_id", required=False)
@output_options
@click.pass_obj
def staff_deletions(settings, staff_id, fmt) -> None:
    """Fingerprint deletions no door has confirmed yet (a door offline, an error); all staff or STAFF_ID.

    \b
    The gateway asks again whenever an ask fails, and at once when the door
    comes back online. An empty list: every template is gone.
    Examples:
      congso staff deletions
      congso staff deletions NV001 --json
    """
    from ..gateway import privacy

    rows = privacy.pending_deletions(gateway_db(settings, readonly=True), staff_id)
    show(fmt, f"{len(rows)} pending deletions", ["staff_id", "door", "slot", "requested_at", "attempts", "last_outcome"],
         [[r["staff_id"], r["node_id"], r["slot"], r["requested_at"], r["attempts"], r["last_outcome"]] for r in rows],
         records=rows, empty="no deletion pending: every door confirmed" + (f" for {staff_id}" if staff_id else ""))


@staff.command("consent")
@click.argument("staff_id")
@click.option("--recorded-by", help="Who took the signed consent (your name).")
@click.option("--note", help="Where the signed paper is kept, or anything worth saying.")
@click.option("--withdraw", is_flag=True, help="The person withdraws consent: their fingerprints are deleted everywhere.")
@click.pass_obj
def staff_consent(settings, staff_id, recorded_by, note, withdraw) -> None:
    """Record that STAFF_ID signed the consent to keep a fingerprint (needed before `congso enroll`), or withdraw it.

    \b
    The text they sign is printed first; which text it was is recorded.
    Withdrawal deletes their fingerprints from every door and the gateway,
    like deactivation, but they stay staff: their cards still open the doors.
    Examples:
      congso staff consent NV001 --recorded-by "Trần Văn Bình" --note "Bản giấy lưu hồ sơ NV001"
      congso staff consent NV001 --withdraw
    """
    from ..gateway import staff as lib
    from ..gateway import audit
    from ..vocab import consent as texts

    db = gateway_db(settings)
    if withdraw:
        if recorded_by or note:
            raise click.UsageError("--withdraw takes no --recorded-by or --note")
        had = lib.consent(db, staff_id)
        asked = guard(lib.withdraw_consent, db, staff_id, settings.site.timezone)
        audit.record_cli(db, "staff.consent_withdraw", staff_id,
                         {"had_consent": had is not None, "deletions": [f"{n}:{s}" for n, s in asked]})
        click.echo(f"{staff_id} withdrew consent: no fingerprint of theirs is kept; their cards still work")
        _say_deletions(staff_id, asked)
        return
    if not recorded_by:
        raise click.UsageError("say who recorded the consent: --recorded-by NAME (or --withdraw)")
    click.echo(f"Nội dung đồng ý ({texts.CURRENT}):")
    click.echo(texts.text(texts.CURRENT))
    guard(lib.record_consent, db, staff_id, recorded_by, note, settings.site.timezone, texts.CURRENT)
    audit.record_cli(db, "staff.consent", staff_id, {"recorded_by": recorded_by, "text_id": texts.CURRENT, "note": note})
    click.echo(f"recorded the consent of {staff_id} (text {texts.CURRENT}, recorded by {recorded_by}); "
               f"next: congso enroll --node <door> --staff {staff_id}")


@staff.command("export-data")
@click.argument("staff_id")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, writable=True),
              help="Write the JSON here (default: standard output).")
@click.pass_obj
def staff_export_data(settings, staff_id, out) -> None:
    """Everything held about STAFF_ID, as JSON (a person's request for their data).

    \b
    Their record, cards, where their fingers are enrolled (never the
    fingerprint itself), consent, attendance events, corrections, leave, the
    audit rows that name them and any deletion still pending. Give it to the
    person; the export itself is audited.
    Example:
      congso staff export-data NV001 -o NV001-du-lieu.json
    """
    from ..gateway import audit, privacy

    db = gateway_db(settings)
    data = guard(privacy.export_person, db, staff_id)
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    audit.record_cli(db, "staff.export_data", staff_id, {"to": out or "stdout", "events": len(data["attendance_events"])})
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
        click.echo(f"wrote everything held about {staff_id} to {out} "
                   f"({len(data['attendance_events'])} attendance events)", err=True)
    else:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()


# -- retention ------------------------------------------------------------------------
@click.command("prune")
@click.option("--dry-run", is_flag=True, help="Only say how many events would go.")
@click.pass_obj
def gateway_prune(settings, dry_run) -> None:
    """Remove attendance events older than [privacy] attendance_retention_days (the gateway does it daily).

    \b
    0 days keeps everything. Deleted in small batches: safe while the
    gateway runs.
    Examples:
      congso gateway prune --dry-run
      congso gateway prune
    """
    from ..gateway import audit, privacy

    days = int(settings.privacy.attendance_retention_days)
    today = office_now(settings).date()
    cutoff = privacy.prune_cutoff(days, today)
    if cutoff is None:
        click.echo("[privacy] attendance_retention_days = 0: every attendance event is kept")
        return
    db = gateway_db(settings, readonly=dry_run)
    n = guard(privacy.prune_events, db, days, today, dry_run)
    if dry_run:
        click.echo(f"would remove {n} attendance events from before {cutoff} (kept: {days} days)")
        return
    if n:
        audit.record_cli(db, "privacy.prune_events", cutoff, {"removed": n, "retention_days": days})
    click.echo(f"removed {n} attendance events from before {cutoff} (kept: {days} days)")


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
    Their signed consent must be recorded first (congso staff consent).
    Example:
      congso staff consent NV001 --recorded-by "Trần Văn Bình"
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
                 tz=settings.site.timezone, on_queued=queued, require_consent=True)
    click.echo(done.summary())


def register(main: click.Group, report: click.Group) -> None:
    for command in (staff, card, enroll):
        main.add_command(command)
    main.commands["gateway"].add_command(gateway_prune)
