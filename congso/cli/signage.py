"""The signage commands of `congso`: the TV node and what it shows.

``congso signage run`` runs a waiting-hall TV. ``congso dossier``,
``congso calendar`` and ``congso announce`` write the gateway's database
directly (the gateway need not be running); the running gateway notices
the change within a quarter second and re-publishes the boards.
"""

from __future__ import annotations

import os
import sys

import click

from .common import gateway_db, office_now
from .output import output_options, show


def register(main: click.Group, report: click.Group) -> None:
    """Add this role's commands to `congso` and to `congso report`."""
    main.add_command(signage)
    main.add_command(dossier)
    main.add_command(calendar)
    main.add_command(announce)
    main.add_command(media)


# -- the TV ----------------------------------------------------------------------------
@click.group()
def signage() -> None:
    """The waiting-hall TV: dossier board, leaders' calendar, notices, satisfaction.

    \b
    Example:
      CONGSO_NODE_ID=tv-1 congso signage run
    """


@signage.command("run")
@click.option("--screenshot-dir", type=click.Path(file_okay=False), default=None,
              help="Also write each new frame to DIR/screen.png (for checking a TV from afar).")
@click.pass_obj
def signage_run(settings, screenshot_dir) -> None:
    """Run the TV node until SIGTERM or Ctrl-C.

    \b
    Pages rotate every [signage] page_s seconds; the TV is switched off over
    HDMI-CEC outside [signage] on_hours / on_days. Needs CONGSO_NODE_ID (e.g.
    tv-1) and its broker password. Without a screen (SDL_VIDEODRIVER=dummy)
    it still runs: use the screenshot command to see it.

    \b
    Examples:
      CONGSO_NODE_ID=tv-1 congso signage run
      SDL_VIDEODRIVER=dummy CONGSO_DISPLAY_WIDTH=1920 CONGSO_DISPLAY_HEIGHT=1080 congso signage run
    """
    from ..devices.display import DisplayError, FontError
    from ..signage_node.app import SignageApp

    try:
        app = SignageApp(settings, screenshot_dir=screenshot_dir)
        app.install_signal_handlers()
        code = app.run()
    except (ValueError, DisplayError, FontError) as e:
        raise click.ClickException(str(e)) from None
    sys.exit(code)


# -- dossiers ----------------------------------------------------------------------------
@click.group()
def dossier() -> None:
    """Administrative dossiers shown (with masked names) on the hall TVs.

    \b
    Statuses: received (Đã tiếp nhận), processing (Đang xử lý),
    supplement_required (Yêu cầu bổ sung), ready (Đã có kết quả),
    returned (Đã trả kết quả). Vietnamese words are accepted too.

    \b
    Examples:
      congso dossier import ho-so-tuan-47.csv
      congso dossier list --open
    """


@dossier.command("add")
@click.option("--code", required=True, help="Dossier code from the receipt, e.g. 000.00.12.H40-261123-0001.")
@click.option("--applicant", required=True, help="Full name; the TVs show it masked (Nguyễn T. T. H.).")
@click.option("--procedure", required=True, help="The administrative procedure, e.g. 'Đăng ký khai sinh'.")
@click.option("--received", required=True, help="23/11/2026 [14:30] or 2026-11-23 [14:30].")
@click.option("--due", help="Promised return date, same formats; a date alone means by the end of that day.")
@click.option("--status", default="received", show_default=True, help="Initial status.")
@click.option("--desk", help="The desk or section, e.g. 'Tư pháp - Hộ tịch'.")
@click.pass_obj
def dossier_add(settings, code, applicant, procedure, received, due, status, desk) -> None:
    """Register a dossier.

    \b
    Example:
      congso dossier add --code HS-0001 --applicant "Nguyễn Thị Thu Hà" \\
          --procedure "Đăng ký khai sinh" --received 23/11/2026 --due 25/11/2026
    """
    from ..gateway import dossiers
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        d = dossiers.add(db, code, applicant, procedure, received, due, status, desk,
                         now=office_now(settings), tz=settings.site.timezone)
    except dossiers.DossierError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "dossiers.add", d.code, {"procedure": procedure, "status": d.status, "desk": desk})
    click.echo(f"added {d.code} ({d.status}); shown as {dossiers.mask_name(d.applicant)}")


@dossier.command("set-status")
@click.argument("code")
@click.argument("status")
@click.pass_obj
def dossier_set_status(settings, code, status) -> None:
    """Move dossier CODE to STATUS (recorded in its history).

    \b
    Examples:
      congso dossier set-status HS-0001 ready
      congso dossier set-status HS-0001 "Đã trả kết quả"
    """
    from ..gateway import dossiers
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        old, new = dossiers.set_status(db, code, status, now=office_now(settings))
    except dossiers.DossierError as e:
        raise click.ClickException(str(e)) from None
    if old != new:
        audit.record_cli(db, "dossiers.status", code, {"from": old, "to": new})
    click.echo(f"{code}: {old} -> {new}" if old != new else f"{code} is already {new}")


@dossier.command("list")
@click.option("--status", help="Only this status.")
@click.option("--open", "open_only", is_flag=True, help="Only dossiers not yet ready.")
@click.option("--history", "code", metavar="CODE", help="Show the status history of one dossier instead.")
@output_options
@click.pass_obj
def dossier_list(settings, status, open_only, code, fmt) -> None:
    """List dossiers with full names (staff only; the TVs show masked names).

    \b
    Examples:
      congso dossier list --open
      congso dossier list --history HS-0001
      congso dossier list --status ready --csv > ho-so-co-ket-qua.csv
    """
    from ..gateway import dossiers

    db = gateway_db(settings, readonly=True)
    now = office_now(settings)
    if code:
        rows = dossiers.history(db, code)
        if not rows:
            raise click.ClickException(f"no dossier with code {code!r}")
        show(fmt, f"history of {code}", ["at", "status", "by"], [[r["at"], r["status"], r["source"]] for r in rows])
        return
    try:
        rows = dossiers.list_all(db, status, open_only)
    except dossiers.DossierError as e:
        raise click.ClickException(str(e)) from None
    show(fmt, f"{len(rows)} dossiers", ["code", "applicant", "procedure", "received", "due", "status", "desk"],
         [[r["code"], r["applicant"], r["procedure"], r["received_at"], r["due_at"],
           r["status"] + (" (overdue)" if dossiers.is_overdue(r["status"], r["due_at"], now) else ""), r["desk"]]
          for r in rows])


@dossier.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
def dossier_import(settings, file) -> None:
    """Import dossiers from a one-stop system's export (CSV or XLSX).

    \b
    Columns (Vietnamese or English headers, any order, others ignored):
      Mã hồ sơ (code), Người nộp / Chủ hồ sơ / Tên người nộp (applicant),
      Thủ tục / Tên thủ tục (procedure), Ngày tiếp nhận (received),
      Ngày hẹn trả (due), Trạng thái (status), Bộ phận / Quầy (desk).
    Dates dd/mm/yyyy [HH:MM] or YYYY-MM-DD. UTF-8 (with or without BOM) or
    Windows-1258; comma or semicolon separated. Title lines above the
    header are skipped.

    \b
    Every bad line is reported with its number and nothing is imported
    until the whole file is valid. Codes already registered are updated
    (a status change is recorded in the history).

    \b
    Example:
      congso dossier import ho-so-tuan-47.csv
    """
    from ..gateway import dossiers
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        result = dossiers.import_file(db, file, now=office_now(settings), tz=settings.site.timezone)
    except dossiers.DossierError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "dossiers.import", os.path.basename(file), result.summary())
    click.echo(f"imported {file}: {result.summary()}")


# -- calendar ----------------------------------------------------------------------------
@click.group()
def calendar() -> None:
    """The leaders' work calendar; the TVs show this week and next.

    \b
    Examples:
      congso calendar import-ics lich-cong-tac.ics
      congso calendar list
    """


@calendar.command("add")
@click.option("--start", required=True, help="'2026-11-23 08:00' or '23/11/2026 08:00'; a date alone: all day.")
@click.option("--end", help="Same format as --start.")
@click.option("--title", required=True, help="What, e.g. 'Họp giao ban đầu tuần'.")
@click.option("--leader", "leaders", multiple=True, help="A leader taking part (repeat for several).")
@click.option("--location", help="Where, e.g. 'Phòng họp UBND xã'.")
@click.option("--participants", help="Who else attends (Thành phần).")
@click.option("--preparer", help="Who prepares (Chuẩn bị).")
@click.pass_obj
def calendar_add(settings, start, end, title, leaders, location, participants, preparer) -> None:
    """Add an entry to the work calendar.

    \b
    Example:
      congso calendar add --start "2026-11-23 07:30" --end "2026-11-23 09:00" \\
          --title "Họp giao ban" --leader "Chủ tịch Trần Văn Bình" --location "Phòng họp"
    """
    from ..gateway import work_calendar
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        e = work_calendar.add(db, start=start, end=end, title=title, leaders=list(leaders),
                              location=location, participants=participants, preparer=preparer,
                              tz=settings.site.timezone)
    except work_calendar.CalendarError as err:
        raise click.ClickException(str(err)) from None
    audit.record_cli(db, "calendar.add", e.id, {"title": title, "start": str(e.start)})
    click.echo(f"added {e.id}: {e.start} {e.title}")


@calendar.command("list")
@click.option("--weeks", default=2, show_default=True, type=click.IntRange(min=1), help="How many weeks from this Monday.")
@output_options
@click.pass_obj
def calendar_list(settings, weeks, fmt) -> None:
    """List entries from this Monday on.

    \b
    Examples:
      congso calendar list
      congso calendar list --weeks 4 --csv > lich-cong-tac.csv
    """
    from ..gateway import work_calendar

    try:
        monday, entries = work_calendar.from_this_monday(gateway_db(settings, readonly=True), office_now(settings).date(),
                                                         weeks, settings.site.timezone)
    except work_calendar.CalendarError as e:
        raise click.ClickException(str(e)) from None
    show(fmt, f"{len(entries)} entries from {monday}", ["id", "start", "end", "leaders", "title", "location"],
         [[e.id, e.start, e.end, ", ".join(e.leaders), e.title, e.location] for e in entries])


@calendar.command("remove")
@click.argument("entry_id")
@click.pass_obj
def calendar_remove(settings, entry_id) -> None:
    """Remove one entry by its id (see `congso calendar list`).

    \b
    Example:
      congso calendar remove 3f2a9c1e
    """
    from ..gateway import work_calendar
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        row = work_calendar.remove(db, entry_id)
    except work_calendar.CalendarError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "calendar.remove", entry_id, {"title": row["title"], "start": str(row["start"])})
    click.echo(f"removed {entry_id}: {row['start']} {row['title']}")


@calendar.command("import-ics")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--leader", "leaders", multiple=True,
              help="Leader(s) of every event in the file (a leader's own calendar). Otherwise taken from "
                   "'Chủ trì:' in the description, else the organizer's name.")
@click.pass_obj
def calendar_import_ics(settings, file, leaders) -> None:
    """Import an iCalendar (.ics) file; recurring events are expanded.

    \b
    Occurrences from 4 weeks ago to 8 weeks ahead are stored. Importing the
    same file again updates its entries (no duplicates) and removes
    occurrences that are gone from it. A corrupt file imports nothing.
    Description lines 'Chủ trì:', 'Thành phần:' and 'Chuẩn bị:' fill the
    leaders, participants and preparer.

    \b
    Example:
      congso calendar import-ics lich-cong-tac.ics --leader "Chủ tịch UBND xã"
    """
    from ..gateway import work_calendar
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        result = work_calendar.import_ics(db, file, tz=settings.site.timezone,
                                          today=office_now(settings).date(), leaders=list(leaders))
    except work_calendar.CalendarError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "calendar.import", os.path.basename(file), result.summary())
    click.echo(f"imported {file}: {result.summary()}")


# -- announcements ----------------------------------------------------------------------------
@click.group()
def announce() -> None:
    """Notices and online-service slides (with a QR code) for the hall TVs.

    \b
    Examples:
      congso announce add --title "Nộp hồ sơ trực tuyến" --body "..." --qr-url https://dichvucong.gov.vn
      congso announce list
    """


_SCHEDULE_HELP = ('When it plays: weekdays, hours, a date range, space separated; e.g. "mon-fri 07:30-11:30,13:30-17:00" '
                  'or 2026-12-05..2026-12-06 (default: always).')
_SECONDS_HELP = "Seconds on screen each time, 1-3600, e.g. --seconds 15 (default: [signage] slide_s; a video plays to its end)."


def _media_options(fn):
    fn = click.option("--seconds", help=_SECONDS_HELP)(fn)
    fn = click.option("--schedule", help=_SCHEDULE_HELP)(fn)
    fn = click.option("--video", type=click.Path(exists=True, dir_okay=False),
                      help="An MP4 (H.264, up to 4K, [media] max_video_s long) shown as the slide, e.g. --video tiem-chung.mp4.")(fn)
    fn = click.option("--image", type=click.Path(exists=True, dir_okay=False),
                      help="A JPEG or PNG shown as the slide, e.g. --image poster.jpg.")(fn)
    return fn


def _store_media(settings, db, image, video) -> str | None:
    """The --image/--video file checked and stored (its sha256), None without one."""
    from ..gateway import audit
    from ..gateway import media as media_mod

    if image and video:
        raise click.UsageError("give --image or --video, not both")
    path = image or video
    if not path:
        return None
    try:
        row = media_mod.add_file(db, settings.data_dir, path, os.path.basename(path), settings, office_now(settings), "cli",
                                 expect="video" if video else "image")
    except media_mod.MediaError as e:
        raise click.ClickException(f"{path}: {e}") from None
    audit.record_cli(db, "media.add", row["sha256"], {"name": row["name"], "kind": row["kind"], "size": row["size"]})
    return row["sha256"]


@announce.command("add")
@click.option("--title", required=True, help="Shown large, and in the scrolling ticker.")
@click.option("--body", default="", help="The text of the slide (may be empty with --image or --video).")
@click.option("--qr-url", help="A link shown as a QR code, e.g. https://dichvucong.gov.vn.")
@click.option("--from", "valid_from", help="Shown from (date, or date and time); default now.")
@click.option("--until", "valid_until", help="Shown until (a date alone: to the end of that day).")
@_media_options
@click.pass_obj
def announce_add(settings, title, body, qr_url, valid_from, valid_until, image, video, schedule, seconds) -> None:
    """Add an announcement: a text notice, a picture or a short video.

    \b
    Examples:
      congso announce add --title "Nộp hồ sơ trực tuyến" \\
          --body "Làm thủ tục tại nhà qua Cổng dịch vụ công quốc gia" \\
          --qr-url https://dichvucong.gov.vn --until 31/12/2026
      congso announce add --title "Tiêm chủng mở rộng" --image poster.jpg \\
          --schedule "2026-12-05..2026-12-06 07:30-11:30" --seconds 20
      congso announce add --title "Dịch vụ công trực tuyến" --video gioi-thieu.mp4 --schedule mon-fri

    A picture is checked (JPEG or PNG by its content, [media] max_image_mb,
    max_side_px) and resized for the TVs; a video must already be MP4 H.264
    (at most 4K, [media] max_video_s and max_video_mb): it is played as is.
    """
    from ..gateway import announcements
    from ..gateway import audit

    db = gateway_db(settings)
    try:
        announcements.draft(title=title, body=body, qr_url=qr_url, valid_from=valid_from, valid_until=valid_until,
                            schedule=schedule, seconds=seconds, tz=settings.site.timezone)
    except announcements.AnnouncementError as e:
        raise click.ClickException(str(e)) from None  # before storing any file
    sha = _store_media(settings, db, image, video)
    try:
        item = announcements.add(db, title=title, body=body, qr_url=qr_url, valid_from=valid_from,
                                 valid_until=valid_until, tz=settings.site.timezone, now=office_now(settings),
                                 media_sha256=sha, schedule=schedule, seconds=seconds)
    except announcements.AnnouncementError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "announcements.add", item["id"], {"title": item["title"], "media_sha256": sha,
                                                          "schedule": item["schedule"], "seconds": item["seconds"]})
    click.echo(f"added {item['id']}: {item['title']}" + (f" ({'video' if video else 'picture'} {sha[:12]})" if sha else ""))


@announce.command("edit")
@click.argument("item_id")
@click.option("--title", help="A new title.")
@click.option("--body", help="A new text (\"\" for none).")
@click.option("--qr-url", help='A new QR link ("" for none).')
@click.option("--from", "valid_from", help='Shown from ("" for now).')
@click.option("--until", "valid_until", help='Shown until ("" for no end).')
@_media_options
@click.option("--no-media", is_flag=True, help="Drop the picture or video: a text notice again.")
@click.pass_obj
def announce_edit(settings, item_id, title, body, qr_url, valid_from, valid_until, image, video, schedule, seconds,
                  no_media) -> None:
    """Change an announcement; options not given keep their value.

    \b
    Examples:
      congso announce edit a-1b2c3d4e --image poster-moi.png
      congso announce edit a-1b2c3d4e --schedule "mon-fri 13:30-17:00" --seconds 30
      congso announce edit a-1b2c3d4e --schedule "" --no-media
    """
    from ..gateway import announcements
    from ..gateway import audit

    if no_media and (image or video):
        raise click.UsageError("--no-media drops the file; do not give --image/--video with it")
    db = gateway_db(settings)
    before = announcements.get(db, item_id)
    if before is None:
        raise click.ClickException(f"no announcement {item_id!r}; see `congso announce list`")
    fields = {"title": before["title"] if title is None else title, "body": before["body"] if body is None else body,
              "qr_url": before["qr_url"] if qr_url is None else (qr_url or None),
              "valid_from": before["valid_from"] if valid_from is None else (valid_from or None),
              "valid_until": before["valid_until"] if valid_until is None else (valid_until or None),
              "schedule": before["schedule"] if schedule is None else (schedule or None),
              "seconds": before["seconds"] if seconds is None else (seconds or None)}
    try:
        announcements.draft(tz=settings.site.timezone, item_id=item_id, **fields)
    except announcements.AnnouncementError as e:
        raise click.ClickException(str(e)) from None
    sha = _store_media(settings, db, image, video)
    if sha is None:
        sha = None if no_media else before["media_sha256"]
    try:
        before, after = announcements.update(db, item_id, tz=settings.site.timezone, media_sha256=sha, **fields)
    except announcements.AnnouncementError as e:
        raise click.ClickException(str(e)) from None
    changed = {k: [before.get(k), after.get(k)] for k in ("title", "body", "qr_url", "valid_from", "valid_until",
                                                          "media_sha256", "schedule", "seconds")
               if before.get(k) != after.get(k)}
    audit.record_cli(db, "announcements.edit", item_id, {"title": after["title"], "changed": changed})
    if "media_sha256" in changed:
        from ..gateway import media as media_mod

        media_mod.release(db, settings.data_dir, before["media_sha256"])  # its old file, if no slide uses it now
    click.echo(f"changed {item_id}: " + (", ".join(changed) if changed else "nothing"))


def _kind(db, row) -> str:
    from ..gateway import media as media_mod

    if not row.get("media_sha256"):
        return "text"
    m = media_mod.get(db, row["media_sha256"])
    if m is None:
        return "missing file"
    return f"video {media_mod.duration_vi(m['duration_s'])}" if m["kind"] == "video" else f"picture {m['width']}x{m['height']}"


def _seconds_text(value) -> str | None:
    return None if value is None else (str(int(value)) if value == int(value) else str(value))


@announce.command("list")
@output_options
@click.pass_obj
def announce_list(settings, fmt) -> None:
    """List announcements (ended ones too, marked), with their kind and schedule.

    \b
    Examples:
      congso announce list
      congso announce list --json
    """
    from ..gateway import announcements

    now = office_now(settings)
    db = gateway_db(settings, readonly=True)
    rows = announcements.list_all(db)
    show(fmt, f"{len(rows)} announcements", ["id", "title", "kind", "schedule", "seconds", "from", "until", "qr",
                                             "shown now"],
         [[r["id"], r["title"], _kind(db, r), r["schedule"], _seconds_text(r["seconds"]), r["valid_from"], r["valid_until"], r["qr_url"],
           "yes" if announcements.is_current(r, now) else "no"] for r in rows])


@announce.command("remove")
@click.argument("item_id")
@click.pass_obj
def announce_remove(settings, item_id) -> None:
    """Remove an announcement by its id (see `congso announce list`).

    \b
    Example:
      congso announce remove 7b1d4e2a
    """
    from ..gateway import announcements
    from ..gateway import audit

    try:
        db = gateway_db(settings)
        row = announcements.remove(db, item_id)
    except announcements.AnnouncementError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "announcements.remove", item_id, {"title": row["title"]})
    from ..gateway import media as media_mod

    if media_mod.release(db, settings.data_dir, row.get("media_sha256")):
        click.echo(f"removed its media file {row['media_sha256'][:12]} (no other announcement used it)")
    click.echo(f"removed {item_id}: {row['title']}")


@announce.command("urgent")
@click.argument("title", required=False)
@click.option("--body", default="", help="The text under the title.")
@click.option("--minutes", type=int, help="How long it stays on the TVs, 1 to 1440.")
@click.option("--nodes", help="Only these TVs, comma-separated node ids (default: every TV).")
@click.option("--clear", "clear_", is_flag=True, help="Withdraw the urgent notices (all, or the one --id names).")
@click.option("--id", "item_id", help="With --clear: only this notice.")
@click.pass_obj
def announce_urgent(settings, title, body, minutes, nodes, clear_, item_id) -> None:
    """An urgent notice drawn over every page of the hall's TVs, for N minutes.

    \b
    Examples:
      congso announce urgent "Mất điện lúc 15:00" --body "Xin quý khách thông cảm" --minutes 60
      congso announce urgent "Diễn tập PCCC" --body "..." --minutes 30 --nodes tv-1,tv-2
      congso announce urgent --clear
    """
    from ..gateway import audit, urgent

    db = gateway_db(settings)
    if clear_:
        if title:
            raise click.UsageError("--clear takes no TITLE (use --id to withdraw one notice)")
        try:
            removed = urgent.clear(db, item_id)
        except urgent.UrgentError as e:
            raise click.ClickException(str(e)) from None
        audit.record_cli(db, "urgent.clear", item_id, {"removed": [r["id"] for r in removed]})
        click.echo(f"withdrew {len(removed)} urgent notice(s)")
        return
    if not title:
        raise click.UsageError("give the TITLE (or --clear)")
    if minutes is None:
        raise click.UsageError("--minutes is required: how long the notice stays, 1 to 1440")
    try:
        item = urgent.add(db, title, body, minutes, nodes, tz=settings.site.timezone, now=office_now(settings))
    except urgent.UrgentError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "urgent.add", item["id"], {"title": item["title"], "until": item["until"],
                                                    "nodes": item["nodes"]})
    click.echo(f"added {item['id']}: {item['title']} until {item['until'][11:16]}"
               + (f" on {', '.join(item['nodes'])}" if item["nodes"] else " on every TV"))


# -- media (the slides' pictures and clips) ---------------------------------------------------
@click.group()
def media() -> None:
    """The pictures and videos the slides use, stored on the gateway by their SHA-256.

    \b
    Examples:
      congso media list
      congso media prune            # delete the files no announcement uses
      congso media remove 3f5a...   # one file (refused while a slide uses it)
    """


@media.command("list")
@output_options
@click.pass_obj
def media_list(settings, fmt) -> None:
    """Every stored file: kind, size, dimensions, length, how many announcements use it.

    \b
    Example:
      congso media list --json
    """
    from ..gateway import media as media_mod

    rows = media_mod.list_all(gateway_db(settings, readonly=True))
    show(fmt, f"{len(rows)} media files", ["sha256", "kind", "name", "size", "width", "height", "seconds", "renditions",
                                           "used by"],
         [[r["sha256"], r["kind"], r["name"], r["size"], r["width"], r["height"], r["duration_s"], r["renditions"],
           r["used"]] for r in rows])


@media.command("remove")
@click.argument("sha256")
@click.pass_obj
def media_remove(settings, sha256) -> None:
    """Delete one file and its renditions (refused while an announcement uses it).

    \b
    Example:
      congso media remove 3f5a0c...e9
    """
    from ..gateway import audit
    from ..gateway import media as media_mod

    db = gateway_db(settings)
    try:
        row = media_mod.remove(db, settings.data_dir, sha256.strip().lower())
    except media_mod.MediaError as e:
        raise click.ClickException(str(e)) from None
    audit.record_cli(db, "media.remove", row["sha256"], {"name": row["name"]})
    click.echo(f"removed {row['sha256']} ({row['name'] or row['kind']})")


@media.command("prune")
@click.option("--min-age", "min_age_s", type=click.IntRange(0), default=3600, show_default=True,
              help="Keep files stored less than this many seconds ago (an upload being saved).")
@click.pass_obj
def media_prune(settings, min_age_s) -> None:
    """Delete every file no announcement uses (ended ones count as using theirs).

    \b
    Example:
      congso media prune
    """
    from ..gateway import audit
    from ..gateway import media as media_mod

    db = gateway_db(settings)
    removed = media_mod.prune_unused(db, settings.data_dir, office_now(settings), older_than_s=min_age_s)
    if removed:
        audit.record_cli(db, "media.prune", None, {"removed": [r["sha256"] for r in removed]})
    click.echo(f"removed {len(removed)} unused media file(s), {sum(r['size'] for r in removed)} bytes")
