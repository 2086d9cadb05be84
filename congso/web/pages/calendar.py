"""Lịch công tác: the leaders' week as the TV shows it, its entries, and the ICS import with a preview.

- ``GET /calendar?week=YYYY-MM-DD``: the week (Monday to Sunday) holding that
  day, by day, and the TV's own drawing of it (``/calendar/preview.png``).
- add, edit, delete (a confirmation page: it works without JavaScript).
- ``/calendar/import``: the uploaded file is parsed by the library (bounded,
  in a child process), kept under ``<data dir>/web-uploads/`` (mode 0600,
  removed once applied or after an hour) and the page lists what would be
  added, changed (old → new) and removed. "Áp dụng" parses the kept file
  again, plans again against the database as it is now and applies only if
  that plan is the one shown (its digest); nothing the browser sends back is
  taken as the plan.

The TV previews come from ``tv_preview``: ``python -m congso.signage_node.preview``
in a child process (pygame never loads into the console), cached by its
input, so a second view of unchanged data costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time as time_mod
from collections import OrderedDict
from datetime import date, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ...gateway import announcements as announcements_mod
from ...gateway import work_calendar
from .. import access, page

log = logging.getLogger(__name__)
router = APIRouter()

ICS_LIMIT = work_calendar.MAX_ICS_BYTES
UPLOAD_DIR = "web-uploads"
UPLOAD_TTL_S = 3600
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# -- the TV's own drawing, in a child process --------------------------------------------

PREVIEW_SIZE = (1280, 720)  # a TV's size unless [display] width/height say otherwise
PREVIEW_TIMEOUT_S = 20
PREVIEW_CACHE = 24  # PNGs kept (about 60 kB each)
_cache: OrderedDict[tuple, tuple[bytes, int]] = OrderedDict()
_cache_lock = threading.Lock()
# At most two renderers at once (a list of ten notices asks for ten pictures; the machine has 2 cores).
_renderers = threading.BoundedSemaphore(2)
TV_ROWS_720P = 9  # calendar rows on one TV page at 1280x720 (signage_node.pages); only to guess before a drawing


class PreviewFailed(RuntimeError):
    pass


def preview_size(settings) -> tuple[int, int]:
    d = getattr(settings, "display", None)
    w, h = int(getattr(d, "width", 0) or 0), int(getattr(d, "height", 0) or 0)
    return (w, h) if w >= 64 and h >= 64 else PREVIEW_SIZE


def tv_preview(settings, page_name: str, now: datetime, states: dict, week: int = 0, index: int = 0) -> tuple[bytes, int]:
    """(PNG, pages) of the TV's ``page_name`` drawn from ``states`` (the builders' payloads) at ``now``."""
    size = preview_size(settings)
    request = json.dumps({"site_name": settings.site.name, "now": now.isoformat(timespec="seconds"), "states": states},
                         ensure_ascii=False, sort_keys=True).encode()
    key = (page_name, hashlib.sha256(request).hexdigest(), size, week, index)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    font = str(getattr(getattr(settings, "display", None), "font", "") or "")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    args = [sys.executable, "-m", "congso.signage_node.preview", "--page", page_name, "--width", str(size[0]),
            "--height", str(size[1]), "--week", str(week), "--index", str(index)] + (["--font", font] if font else [])
    with _renderers:
        with _cache_lock:
            if key in _cache:  # drawn by another request while this one waited
                return _cache[key]
        try:
            done = subprocess.run(args, input=request, capture_output=True, timeout=PREVIEW_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise PreviewFailed(f"the preview renderer took more than {PREVIEW_TIMEOUT_S} s") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        raise PreviewFailed(f"the preview renderer failed (exit {done.returncode}): "
                            f"{done.stderr.decode(errors='replace')[-500:]}")
    pages_n = 1
    for line in done.stderr.decode(errors="replace").splitlines()[::-1]:
        m = re.match(r"^pages (\d+)$", line.strip())
        if m:
            pages_n = int(m.group(1))
            break
    result = (done.stdout, pages_n)
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > PREVIEW_CACHE:
            _cache.popitem(last=False)
    return result


def cached_pages(settings, page_name: str, now: datetime, states: dict, week: int = 0) -> int | None:
    """How many pages the first page's drawing said, if that drawing is cached (else None)."""
    request = json.dumps({"site_name": settings.site.name, "now": now.isoformat(timespec="seconds"), "states": states},
                         ensure_ascii=False, sort_keys=True).encode()
    key = (page_name, hashlib.sha256(request).hexdigest(), preview_size(settings), week, 0)
    with _cache_lock:
        hit = _cache.get(key)
    return hit[1] if hit else None


def png_response(png: bytes) -> Response:
    # Drawn from office data: never kept by a proxy; the browser may keep it briefly.
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=30"})


# -- the week -----------------------------------------------------------------------------

def _monday(request: Request, week: str | None) -> date:
    today = page.console(request).today()
    if week:
        try:
            today = date.fromisoformat(week)
        except ValueError:
            try:
                today = datetime.strptime(week, "%d/%m/%Y").date()
            except ValueError:
                pass  # a bad ?week= shows this week
    return work_calendar.week_start(today)


def _preview_moment(request: Request, monday: date) -> tuple[datetime, int]:
    """(the TV's "now", week 0 or 1) for a preview of the week of ``monday``.

    This week and next: now, as the TV shows them now. Any other week: the
    same weekday and time shifted into that week, as the TV will show it then.
    """
    now = page.console(request).now().replace(second=0, microsecond=0)
    this_monday = work_calendar.week_start(now.date())
    weeks = (monday - this_monday).days // 7
    if weeks in (0, 1):
        return now, weeks
    return now + timedelta(weeks=weeks), 0


def _states(request: Request, now: datetime) -> dict:
    db, tz = page.db(request), page.console(request).tz
    return {"calendar": work_calendar.board(db, now, tz), "announcements": announcements_mod.board(db, now)}


def _when(e: work_calendar.Entry, zone) -> dict:
    if e.all_day:
        start = date.fromisoformat(e.start)
        text = "Cả ngày"
        if e.end and e.end != e.start:
            text += f" (đến {date.fromisoformat(e.end).strftime('%d/%m')})"
        return {"day": start, "time": text}
    start = datetime.fromisoformat(e.start).astimezone(zone)
    text = start.strftime("%H:%M")
    if e.end and e.end != e.start:
        end = datetime.fromisoformat(e.end).astimezone(zone)
        text += f"–{end.strftime('%H:%M')}" if end.date() == start.date() else f" – {end.strftime('%H:%M %d/%m')}"
    return {"day": start.date(), "time": text}


@router.get("/calendar")
@access.requires("calendar.view")
def week(request: Request, week: str | None = None):
    c = page.console(request)
    monday = _monday(request, week)
    entries = work_calendar.between(page.db(request), monday, monday + timedelta(days=7), c.tz)
    days = [{"day": monday + timedelta(days=i), "entries": []} for i in range(7)]
    for e in entries:
        w = _when(e, c.zone)
        days[(w["day"] - monday).days]["entries"].append({"e": e, "time": w["time"]})
    now, tv_week = _preview_moment(request, monday)
    # How many TV pages the week takes: the drawing says (once cached); before it, a guess by rows.
    pages_n = cached_pages(c.settings, "calendar", now, _states(request, now), tv_week) or max(1, -(-len(entries) // TV_ROWS_720P))
    return page.render(request, "calendar.html", active="/calendar", title="Lịch công tác", monday=monday,
                       sunday=monday + timedelta(days=6), days=days, count=len(entries), today=c.today(),
                       prev=(monday - timedelta(days=7)).isoformat(), next=(monday + timedelta(days=7)).isoformat(),
                       this_week=work_calendar.week_start(c.today()).isoformat(), preview_pages=pages_n,
                       preview_now=now)


@router.get("/calendar/preview.png")
@access.requires("calendar.view")
def week_preview(request: Request, week: str | None = None, page_no: int = 0):
    monday = _monday(request, week)
    now, tv_week = _preview_moment(request, monday)
    try:
        png, pages_n = tv_preview(page.console(request).settings, "calendar", now, _states(request, now), tv_week,
                                  max(0, min(page_no, 50)))
    except PreviewFailed as e:
        log.error("calendar preview: %s", e)
        raise HTTPException(503, "Không vẽ được hình xem trước của màn hình TV.") from None
    if page_no >= pages_n:
        raise HTTPException(404, f"Tuần này trên TV chỉ có {pages_n} trang.")
    return png_response(png)


# -- add, edit, delete -----------------------------------------------------------------------

FIELDS = ("day", "start_time", "end_day", "end_time", "title", "leaders", "location", "participants", "preparer")


def _split_leaders(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"[\n;,]", text or "") if x.strip()]


def _moments(values: dict) -> tuple[str, str | None]:
    day = (values.get("day") or "").strip()
    start_time = (values.get("start_time") or "").strip()
    end_day = (values.get("end_day") or "").strip()
    end_time = (values.get("end_time") or "").strip()
    if not day:
        raise work_calendar.CalendarError("the day is empty (Ngày)")
    start = f"{day} {start_time}" if start_time else day
    end = None
    if end_time:
        end = f"{end_day or day} {end_time}"
    elif end_day:
        end = end_day
    return start, end


def _form_values(e: work_calendar.Entry, zone) -> dict:
    if e.all_day:
        v = {"day": e.start, "start_time": "", "end_day": e.end if e.end and e.end != e.start else "", "end_time": ""}
    else:
        s = datetime.fromisoformat(e.start).astimezone(zone)
        v = {"day": s.date().isoformat(), "start_time": s.strftime("%H:%M"), "end_day": "", "end_time": ""}
        if e.end:
            t = datetime.fromisoformat(e.end).astimezone(zone)
            v["end_time"] = t.strftime("%H:%M")
            if t.date() != s.date():
                v["end_day"] = t.date().isoformat()
    return {**v, "title": e.title, "leaders": "\n".join(e.leaders), "location": e.location or "",
            "participants": e.participants or "", "preparer": e.preparer or ""}


def _week_of(e: work_calendar.Entry) -> str:
    return work_calendar.week_start(date.fromisoformat(e.start[:10])).isoformat()


def _form(request: Request, values: dict, entry: work_calendar.Entry | None = None, error: str | None = None,
          status_code: int = 200):
    return page.render(request, "calendar_form.html", status_code=status_code, active="/calendar",
                       title="Sửa lịch công tác" if entry else "Thêm lịch công tác", values=values, entry=entry,
                       error=error)


def _vi_error(e: Exception) -> str:
    return f"Chưa lưu được lịch công tác, hãy sửa rồi lưu lại. Chi tiết: {e}"


@router.get("/calendar/new")
@access.requires("calendar.edit")
def new_form(request: Request, day: str | None = None):
    d = day if day and re.match(r"^\d{4}-\d{2}-\d{2}$", day) else page.console(request).today().isoformat()
    return _form(request, {"day": d})


@router.post("/calendar/new")
@access.requires("calendar.edit")
async def add(request: Request):
    values = await page.form(request)
    c = page.console(request)
    try:
        start, end = _moments(values)
        entry = work_calendar.add(page.db(request), start=start, end=end, title=values.get("title", ""), tz=c.tz,
                                  leaders=_split_leaders(values.get("leaders", "")), location=values.get("location") or None,
                                  participants=values.get("participants") or None,
                                  preparer=values.get("preparer") or None, source="web")
    except ValueError as e:
        return _form(request, values, error=_vi_error(e), status_code=422)
    page.audit(request, "calendar.add", entry.id, {"title": entry.title, "start": entry.start})
    return page.done(request, f"/calendar?week={_week_of(entry)}", "Đã thêm lịch công tác.")


def _entry_or_404(request: Request, entry_id: str) -> work_calendar.Entry:
    e = work_calendar.get(page.db(request), entry_id)
    if e is None:
        raise HTTPException(404, "Không có mục lịch này.")
    return e


@router.get("/calendar/{entry_id}/edit")
@access.requires("calendar.edit")
def edit_form(request: Request, entry_id: str):
    e = _entry_or_404(request, entry_id)
    return _form(request, _form_values(e, page.console(request).zone), entry=e)


@router.post("/calendar/{entry_id}/edit")
@access.requires("calendar.edit")
async def edit(request: Request, entry_id: str):
    e = _entry_or_404(request, entry_id)
    values = await page.form(request)
    c = page.console(request)
    try:
        start, end = _moments(values)
        before, after = work_calendar.update(page.db(request), entry_id, start=start, end=end,
                                             title=values.get("title", ""), tz=c.tz,
                                             leaders=_split_leaders(values.get("leaders", "")),
                                             location=values.get("location") or None,
                                             participants=values.get("participants") or None,
                                             preparer=values.get("preparer") or None)
    except ValueError as err:
        return _form(request, values, entry=e, error=_vi_error(err), status_code=422)
    changed = {f: [getattr(before, f), getattr(after, f)] for f in work_calendar.changed_fields(before, after)}
    page.audit(request, "calendar.edit", entry_id, {"title": after.title, "changed": changed})
    return page.done(request, f"/calendar?week={_week_of(after)}", "Đã lưu thay đổi lịch công tác.")


@router.get("/calendar/{entry_id}/delete")
@access.requires("calendar.edit")
def delete_confirm(request: Request, entry_id: str):
    e = _entry_or_404(request, entry_id)
    w = _when(e, page.console(request).zone)
    return page.render(request, "calendar_delete.html", active="/calendar", title="Xoá lịch công tác", entry=e,
                       when=w, week=_week_of(e))


@router.post("/calendar/{entry_id}/delete")
@access.requires("calendar.edit")
def delete(request: Request, entry_id: str):
    e = _entry_or_404(request, entry_id)
    try:
        row = work_calendar.remove(page.db(request), entry_id)
    except ValueError as err:
        raise HTTPException(404, str(err)) from None
    page.audit(request, "calendar.remove", entry_id, {"title": row["title"], "start": row["start"]})
    return page.done(request, f"/calendar?week={_week_of(e)}", f"Đã xoá lịch: {e.title}.")


# -- ICS import: upload, preview, apply ------------------------------------------------------

def _upload_dir(request: Request) -> Path:
    d = Path(page.console(request).settings.data_dir) / UPLOAD_DIR
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def _sweep(directory: Path, now_s: float | None = None) -> None:
    """Remove uploads older than an hour (kept files the user never applied)."""
    now_s = time_mod.time() if now_s is None else now_s
    for f in directory.glob("*"):
        try:
            if now_s - f.stat().st_mtime > UPLOAD_TTL_S:
                f.unlink()
        except OSError:
            pass


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _kept(request: Request, token: str) -> tuple[Path, Path, dict]:
    if not _TOKEN_RE.match(token or ""):
        raise LookupError("bad token")
    d = _upload_dir(request)
    _sweep(d)
    ics, meta_path = d / f"{token}.ics", d / f"{token}.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise LookupError("gone") from None
    if meta.get("user") != page.session(request).name or not ics.exists():
        raise LookupError("not this user's")
    return ics, meta_path, meta


def _forget(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass


def _plan(request: Request, data: bytes, meta: dict) -> work_calendar.IcsPlan:
    c = page.console(request)
    entries, uids = work_calendar.parse_ics(data, tz=c.tz, today=date.fromisoformat(meta["today"]),
                                            leaders=meta.get("leaders") or [], name=meta["name"])
    return work_calendar.plan_ics_import(page.db(request), entries, uids, tz=c.tz, today=date.fromisoformat(meta["today"]),
                                         replace_imported=bool(meta.get("replace")))


def _plan_rows(plan: work_calendar.IcsPlan, zone) -> dict:
    def show(e):
        w = _when(e, zone)
        return {"e": e, "day": w["day"], "time": w["time"]}

    changes = []
    for old, new in plan.changes:
        changes.append({"old": show(old), "new": show(new), "fields": work_calendar.changed_fields(old, new)})
    return {"adds": [show(e) for e in plan.adds], "changes": changes, "removes": [show(e) for e in plan.removes]}


def _import_form(request: Request, error: str | None = None, status_code: int = 200, leaders: str = "",
                 replace: bool = True):
    return page.render(request, "calendar_import.html", status_code=status_code, active="/calendar",
                       title="Nhập lịch từ tệp ICS", error=error, leaders=leaders, replace=replace,
                       limit_mb=ICS_LIMIT // (1024 * 1024))


@router.get("/calendar/import")
@access.requires("calendar.edit")
def import_form(request: Request):
    return _import_form(request)


@router.post("/calendar/import")
@access.requires("calendar.edit")
async def import_upload(request: Request):
    values = await page.form(request)
    leaders = values.get("leaders", "")
    replace = values.get("replace") == "1"
    try:
        got = await page.upload(request, "file", ICS_LIMIT)
    except ValueError as e:
        return _import_form(request, f"Không nhận được tệp: {e}", 413, leaders, replace)
    if got is None:
        return _import_form(request, "Hãy chọn một tệp .ics (xuất từ Google Calendar, Outlook hoặc hệ thống văn phòng điện tử).",
                            422, leaders, replace)
    name, data = got
    c = page.console(request)
    meta = {"user": page.session(request).name, "name": name, "today": c.today().isoformat(),
            "leaders": _split_leaders(leaders), "replace": replace, "at": c.now().isoformat(timespec="seconds")}
    try:
        plan = _plan(request, data, meta)
    except ValueError as e:
        return _import_form(request, f"Tệp không nhập được, lịch không thay đổi gì. Chi tiết: {e}", 422, leaders, replace)
    d = _upload_dir(request)
    _sweep(d)
    token = secrets.token_urlsafe(24)
    _write_private(d / f"{token}.ics", data)
    _write_private(d / f"{token}.json", json.dumps(meta, ensure_ascii=False).encode())
    return page.render(request, "calendar_import_plan.html", active="/calendar", title="Xem trước thay đổi",
                       plan=plan, rows=_plan_rows(plan, c.zone), token=token, digest=plan.digest(), name=name,
                       replace=replace)


@router.post("/calendar/import/apply")
@access.requires("calendar.edit")
async def import_apply(request: Request):
    values = await page.form(request)
    token = values.get("token", "")
    try:
        ics, meta_path, meta = _kept(request, token)
    except LookupError:
        return _import_form(request, "Bản xem trước đã hết hạn (quá một giờ) hoặc đã được áp dụng. Hãy tải tệp lên lại.", 410)
    c = page.console(request)
    try:
        plan = _plan(request, ics.read_bytes(), meta)
    except ValueError as e:
        _forget(ics, meta_path)
        return _import_form(request, f"Tệp không nhập được, lịch không thay đổi gì. Chi tiết: {e}", 422)
    if plan.digest() != values.get("digest"):
        # The calendar changed since the preview was shown: show the new plan, apply nothing.
        return page.render(request, "calendar_import_plan.html", status_code=409, active="/calendar",
                           title="Xem trước thay đổi", plan=plan, rows=_plan_rows(plan, c.zone), token=token,
                           digest=plan.digest(), name=meta["name"], replace=bool(meta.get("replace")),
                           error="Lịch đã thay đổi từ lúc xem trước nên chưa áp dụng gì. Hãy xem lại danh sách dưới đây rồi bấm Áp dụng.")
    work_calendar.apply_ics_plan(page.db(request), plan, tz=c.tz, source=f"ics:{meta['name']}")
    _forget(ics, meta_path)
    page.audit(request, "calendar.import", meta["name"], {
        "added": [e.id for e in plan.adds], "changed": [new.id for _, new in plan.changes],
        "removed": [e.id for e in plan.removes], "unchanged": plan.unchanged})
    return page.done(request, "/calendar", f"Đã nhập {meta['name']}: thêm {len(plan.adds)}, sửa {len(plan.changes)}, "
                                           f"xoá {len(plan.removes)} mục lịch.")


@router.post("/calendar/import/cancel")
@access.requires("calendar.edit")
async def import_cancel(request: Request):
    values = await page.form(request)
    try:
        ics, meta_path, _ = _kept(request, values.get("token", ""))
        _forget(ics, meta_path)
    except LookupError:
        pass
    return page.done(request, "/calendar", "Đã huỷ, lịch không thay đổi.")

