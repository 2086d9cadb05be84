"""Thông báo: the hall TVs' notices, their validity window and QR link, with the TV's own preview.

- ``GET /announcements``: shown now, later, and ended (paged), each with
  its preview drawn by the TV's layout (``/announcements/{id}/preview.png``).
- add, edit, remove (a confirmation page), and "Xem trước" on the form: the
  typed notice checked by the library (``announcements.draft``) and drawn
  as the TV would, stored nowhere.
- a slide may carry a picture or a video (the form is multipart; the file
  is checked by ``gateway.media.add_file`` and refused in Vietnamese with
  nothing stored), a schedule (``vocab/schedule``) and its own seconds; the
  list shows the picture's thumbnail (``/announcements/media/<sha256>``),
  "Video 0:12" for a clip, and the schedule in words.
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request

from ...gateway import announcements, media, urgent
from ...vocab.schedule import Schedule, ScheduleError
from ...vocab import text as text_mod
from .. import access, page
from .calendar import PreviewFailed, png_response, tv_preview

log = logging.getLogger(__name__)
router = APIRouter()

FIELDS = ("title", "body", "qr_url", "valid_from", "valid_until", "media_sha256", "schedule", "seconds")
FILE_FIELD = "media_file"
SCHEDULE_HINT = "T2–T6: mon-fri; giờ: 07:30-11:30,13:30-17:00; ngày: 2026-12-05..2026-12-06"
ENDED_PER_PAGE = 20


def _local_input(value: str | None, zone) -> str:
    """A stored RFC 3339 time as a ``datetime-local`` input's value (office time)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    except ValueError:
        return value


@router.get("/announcements")
@access.requires("announcements.view")
def listing(request: Request):
    return _listing(request)


def _listing(request: Request, status_code: int = 200, urgent_error: str | None = None, urgent_values: dict | None = None):
    c = page.console(request)
    now = c.now()
    db = page.db(request)
    urgent_now = urgent.current(db, now)
    tvs = [r[0] for r in db.execute("SELECT node_id FROM nodes WHERE kind='signage' ORDER BY node_id LIMIT 100")]
    live = announcements.not_ended(db, now)
    current = [a for a in live if announcements.is_current(a, now)]
    future = [a for a in live if not announcements.is_current(a, now)]
    n = page.page_number(request.query_params.get("page"))
    ended, total = announcements.ended(db, now, ENDED_PER_PAGE, (n - 1) * ENDED_PER_PAGE)
    pages = max(1, -(-total // ENDED_PER_PAGE))
    return page.render(request, "announcements.html", status_code=status_code, active="/announcements",
                       title="Thông báo", current=current, future=future, ended=ended, ended_total=total, page_no=n,
                       extras={a["id"]: _extras(db, a) for a in live + ended},
                       pages=pages, urgent_now=urgent_now, tvs=tvs, urgent_error=urgent_error,
                       urgent_values=urgent_values or {"minutes": "30"})


def schedule_vi(text: str | None) -> str:
    """The schedule in words ("T2, T3, T4, T5, T6 · 07:30–11:30"); "" when always on."""
    if not text:
        return ""
    try:
        return Schedule.parse(text).describe_vi()
    except ScheduleError:
        return f"lịch không đọc được: {text}"


def _extras(db, item: dict) -> dict:
    """What the list shows beside the text: the picture's thumbnail or the clip's length, the schedule."""
    out = {"schedule": schedule_vi(item.get("schedule")), "kind": None, "thumb": None, "duration": None}
    found = media.get(db, item["media_sha256"]) if item.get("media_sha256") else None
    if found is not None:
        out["kind"] = found["kind"]
        if found["kind"] == "image":
            smaller = media.renditions(db, found["sha256"])
            out["thumb"] = (smaller[0] if smaller else found)["sha256"]
        else:
            out["duration"] = media.duration_vi(found["duration_s"])
        out["size"] = (found["width"], found["height"])
    elif item.get("media_sha256"):
        out["kind"] = "missing"
    return out


def _values(item: dict, zone) -> dict:
    seconds = item.get("seconds")
    return {"title": item["title"], "body": item["body"], "qr_url": item.get("qr_url") or "",
            "valid_from": _local_input(item.get("valid_from"), zone),
            "valid_until": _local_input(item.get("valid_until"), zone),
            "schedule": item.get("schedule") or "",
            "seconds": "" if seconds is None else (str(int(seconds)) if seconds == int(seconds) else str(seconds))}


def _form(request: Request, values: dict, item: dict | None = None, error: str | None = None, status_code: int = 200,
          preview: str | None = None):
    current = _extras(page.db(request), item) if item else None
    return page.render(request, "announcement_form.html", status_code=status_code, active="/announcements",
                       title="Sửa thông báo" if item else "Thêm thông báo", values=values, item=item, error=error,
                       preview=preview, current_media=current, schedule_hint=SCHEDULE_HINT,
                       max_image_mb=page.console(request).settings.media.max_image_mb,
                       max_video_mb=page.console(request).settings.media.max_video_mb,
                       max_video_s=page.console(request).settings.media.max_video_s)


def _vi_error(e: Exception) -> str:
    return f"Chưa lưu được thông báo, hãy sửa rồi lưu lại. Chi tiết: {e}"


def _args(values: dict) -> dict:
    return {"title": values.get("title", ""), "body": values.get("body", ""), "qr_url": values.get("qr_url") or None,
            "valid_from": values.get("valid_from") or None, "valid_until": values.get("valid_until") or None,
            "schedule": values.get("schedule") or None, "seconds": values.get("seconds") or None}


async def _uploaded(request: Request):
    """The chosen file of the form (a spooled file, never read into memory whole), or None."""
    f = (await request.form()).get(FILE_FIELD)
    if f is None or isinstance(f, str) or not getattr(f, "filename", ""):
        return None
    return f


async def _store_upload(request: Request):
    """The uploaded picture or video stored (its sha256), None if none was chosen; MediaError if refused."""
    f = await _uploaded(request)
    if f is None:
        return None
    c = page.console(request)
    row = media.add_file(page.db(request), c.settings.data_dir, f.file, text_mod.printable(f.filename)[:200],
                         c.settings, c.now(), page.actor(request)[0])
    page.audit(request, "media.add", row["sha256"], {"name": row["name"], "kind": row["kind"], "size": row["size"]})
    return row["sha256"]


def _upload_error(e: media.MediaError) -> str:
    return f"Chưa lưu được thông báo: tệp ảnh/video không dùng được. {e.vi}"


def _moment_for(item: dict, now: datetime) -> datetime:
    """When the TV shows ``item``: now if it is current, its first minute if later, its last if ended."""
    now = now.replace(second=0, microsecond=0)
    if item.get("valid_from") and datetime.fromisoformat(item["valid_from"]) > now:
        return datetime.fromisoformat(item["valid_from"]).astimezone(now.tzinfo)
    if announcements.has_ended(item, now):
        return datetime.fromisoformat(item["valid_until"]).astimezone(now.tzinfo).replace(second=0)
    return now


def _draw(request: Request, item: dict) -> bytes:
    """The TV's notice page with ``item`` alone, drawn at the moment it is shown."""
    c = page.console(request)
    at = _moment_for(item, c.now())
    states = {"announcements": {"items": [{k: item.get(k) for k in ("id", "title", "body", "qr_url", "valid_from",
                                                                     "valid_until")}]}}
    png, _ = tv_preview(c.settings, "announcements", at, states)
    return png


@router.get("/announcements/{item_id}/preview.png")
@access.requires("announcements.view")
def preview_png(request: Request, item_id: str):
    c = page.console(request)
    item = announcements.get(page.db(request), item_id)
    if item is None:
        raise HTTPException(404, "Không có thông báo này.")
    at = _moment_for(item, c.now())
    # Through the builder, as the TV receives it: the board at the moment it is shown, this item only.
    board = announcements.board(page.db(request), at)
    board = {"items": [a for a in board["items"] if a["id"] == item_id] or
             [{k: item[k] for k in ("id", "title", "body", "qr_url", "valid_from", "valid_until")}]}
    try:
        png, _ = tv_preview(c.settings, "announcements", at, {"announcements": board})
    except PreviewFailed as e:
        log.error("announcement preview: %s", e)
        raise HTTPException(503, "Không vẽ được hình xem trước của màn hình TV.") from None
    return png_response(png)


@router.get("/announcements/new")
@access.requires("announcements.edit")
def new_form(request: Request):
    return _form(request, {})


@router.post("/announcements/new")
@access.requires("announcements.edit")
async def add(request: Request):
    values = await page.form(request)
    c = page.console(request)
    if values.get("action") == "preview":
        return _preview(request, values)
    try:
        announcements.draft(tz=c.tz, **_args(values))  # the text checked first: a bad title stores no file
    except ValueError as e:
        return _form(request, values, error=_vi_error(e), status_code=422)
    try:
        sha = await _store_upload(request)
    except media.MediaError as e:
        return _form(request, values, error=_upload_error(e), status_code=422)
    try:
        item = announcements.add(page.db(request), tz=c.tz, now=c.now(), media_sha256=sha, **_args(values))
    except ValueError as e:
        return _form(request, values, error=_vi_error(e), status_code=422)
    page.audit(request, "announcements.add", item["id"], {"title": item["title"], "valid_from": item["valid_from"],
                                                         "valid_until": item["valid_until"], "qr_url": item["qr_url"],
                                                         "media_sha256": item["media_sha256"],
                                                         "schedule": item["schedule"], "seconds": item["seconds"]})
    return page.done(request, "/announcements", "Đã thêm thông báo.")


def _preview(request: Request, values: dict, item: dict | None = None):
    c = page.console(request)
    try:
        drafted = announcements.draft(tz=c.tz, item_id=item["id"] if item else "a-preview",
                                      media_sha256=(item or {}).get("media_sha256"), **_args(values))
    except ValueError as e:
        return _form(request, values, item=item, error=_vi_error(e), status_code=422)
    try:
        png = _draw(request, drafted)
    except PreviewFailed as e:
        log.error("announcement preview: %s", e)
        return _form(request, values, item=item, error="Không vẽ được hình xem trước; thông báo chưa lưu.", status_code=503)
    return _form(request, values, item=item, preview="data:image/png;base64," + base64.b64encode(png).decode())


def _item_or_404(request: Request, item_id: str) -> dict:
    item = announcements.get(page.db(request), item_id)
    if item is None:
        raise HTTPException(404, "Không có thông báo này.")
    return item


@router.get("/announcements/{item_id}/edit")
@access.requires("announcements.edit")
def edit_form(request: Request, item_id: str):
    item = _item_or_404(request, item_id)
    return _form(request, _values(item, page.console(request).zone), item=item)


@router.post("/announcements/{item_id}/edit")
@access.requires("announcements.edit")
async def edit(request: Request, item_id: str):
    item = _item_or_404(request, item_id)
    values = await page.form(request)
    if values.get("action") == "preview":
        return _preview(request, values, item)
    tz = page.console(request).tz
    try:
        announcements.draft(tz=tz, item_id=item_id, **_args(values))  # the text checked before any file is stored
    except ValueError as e:
        return _form(request, values, item=item, error=_vi_error(e), status_code=422)
    try:
        sha = await _store_upload(request)
    except media.MediaError as e:
        return _form(request, values, item=item, error=_upload_error(e), status_code=422)
    if sha is None:
        sha = None if values.get("remove_media") else item.get("media_sha256")
    try:
        before, after = announcements.update(page.db(request), item_id, tz=tz, media_sha256=sha, **_args(values))
    except ValueError as e:
        return _form(request, values, item=item, error=_vi_error(e), status_code=422)
    changed = {k: [before.get(k), after.get(k)] for k in FIELDS if before.get(k) != after.get(k)}
    page.audit(request, "announcements.edit", item_id, {"title": after["title"], "changed": changed})
    if before.get("media_sha256") != after.get("media_sha256"):
        media.release(page.db(request), page.console(request).settings.data_dir, before.get("media_sha256"))
    return page.done(request, "/announcements", "Đã lưu thay đổi thông báo.")


@router.get("/announcements/{item_id}/delete")
@access.requires("announcements.edit")
def delete_confirm(request: Request, item_id: str):
    item = _item_or_404(request, item_id)
    return page.render(request, "announcement_delete.html", active="/announcements", title="Gỡ thông báo", item=item)


@router.post("/announcements/{item_id}/delete")
@access.requires("announcements.edit")
def delete(request: Request, item_id: str):
    _item_or_404(request, item_id)
    try:
        row = announcements.remove(page.db(request), item_id)
    except ValueError as e:
        raise HTTPException(404, str(e)) from None
    page.audit(request, "announcements.remove", item_id, {"title": row["title"]})
    if media.release(page.db(request), page.console(request).settings.data_dir, row.get("media_sha256")):
        page.audit(request, "media.remove", row["media_sha256"], {"after": "announcements.remove"})
    return page.done(request, "/announcements", f"Đã gỡ thông báo: {row['title']}.")



# -- the urgent notice (Thông báo khẩn): over every page of the TVs, for N minutes ---------------

@router.post("/announcements/urgent")
@access.requires("announcements.edit")
async def urgent_add(request: Request):
    values = await page.form(request)
    c = page.console(request)
    try:
        item = urgent.add(page.db(request), values.get("title", ""), values.get("body", ""), values.get("minutes", ""),
                          values.get("nodes") or None, tz=c.tz, now=c.now())
    except ValueError as e:
        return _listing(request, status_code=422, urgent_values=values,
                        urgent_error=f"Chưa đăng được thông báo khẩn, hãy sửa rồi gửi lại. Chi tiết: {e}")
    page.audit(request, "urgent.add", item["id"], {"title": item["title"], "until": item["until"], "nodes": item["nodes"]})
    return page.done(request, "/announcements", f"Đã đăng thông báo khẩn: {item['title']}.")


@router.post("/announcements/urgent/clear")
@access.requires("announcements.edit")
async def urgent_clear(request: Request):
    values = await page.form(request)
    item_id = values.get("id") or None
    try:
        removed = urgent.clear(page.db(request), item_id)
    except ValueError as e:
        raise HTTPException(404, str(e)) from None
    page.audit(request, "urgent.clear", item_id, {"removed": [r["id"] for r in removed]})
    return page.done(request, "/announcements", "Đã gỡ thông báo khẩn." if removed else "Không có thông báo khẩn nào để gỡ.")
