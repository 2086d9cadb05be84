"""*Hồ sơ*: the dossier register for the one-stop officers and the office.

Search (code, applicant, procedure; a USB barcode scanner types a code and
Enter: an exact code opens that dossier), filter by status, overdue, desk
and online, 50 a page; add, view with the status history, edit, change the
status, import a one-stop export (CSV/XLSX: every bad line listed, nothing
stored). Staff see the applicant's full name; the hall TV's board stays
masked (``gateway/dossiers.board``). The library calls are the CLI's.
"""

from __future__ import annotations

import math
import os
import tempfile
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from ...gateway import dossiers
from ...vocab.dossiers import STATUS_VI, STATUSES, as_datetime, code_in_scan, is_overdue
from .. import access, page
from ..app import UPLOAD_LIMIT

router = APIRouter()

SOURCE_VI = {"cli": "dòng lệnh", "web": "bảng điều khiển", "api": "hệ thống một cửa (API)", "import": "nhập tệp"}
FIELDS_VI = {"applicant": "Người nộp", "procedure": "Thủ tục", "received_at": "Ngày tiếp nhận",
             "due_at": "Ngày hẹn trả", "desk": "Quầy / bộ phận", "code": "Mã hồ sơ"}


def _url(code: str, suffix: str = "") -> str:
    return f"/dossiers/{quote(code, safe='')}{suffix}"


def _typed(value: str | None, zone) -> str:
    """A stored date or time as staff type it back: 23/11/2026 or 23/11/2026 14:30."""
    if not value:
        return ""
    if len(value) == 10:
        return f"{value[8:10]}/{value[5:7]}/{value[:4]}"
    try:
        at = as_datetime(value, zone).astimezone(zone)
    except ValueError:
        return value
    return at.strftime("%d/%m/%Y %H:%M")


def _error_vi(e: Exception) -> str:
    field = getattr(e, "field", None)
    what = f" ({FIELDS_VI[field]})" if field in FIELDS_VI else ""
    return f"Chưa lưu được{what}: hãy sửa rồi lưu lại. Chi tiết: {e}"


@router.get("/dossiers")
@access.requires("dossiers.view")
def index(request: Request):
    db = page.db(request)
    args = request.query_params
    q = (args.get("q") or "").strip()
    status = args.get("status") or ""
    if status not in STATUSES:
        status = ""
    want_overdue = args.get("overdue") in ("1", "on", "true")
    desk = (args.get("desk") or "").strip()
    online = args.get("online") or ""
    online_v = {"1": True, "0": False}.get(online)
    number = page.page_number(args.get("page"))
    if q and "page" not in args:
        # A scanned or typed code (or the receipt's QR, the portal's URL with it): straight to the dossier.
        found = dossiers.get(db, code_in_scan(q) or q)
        if found is not None:
            return RedirectResponse(_url(found["code"]), status_code=303)
    now = page.console(request).now()
    rows, total = dossiers.search(db, q or None, status or None, want_overdue, desk or None, number,
                                  page.PAGE_SIZE, now, online=online_v)
    for r in rows:
        r["overdue"] = is_overdue(r["status"], r["due_at"], now)
        r["url"] = _url(r["code"])
    pages = max(1, math.ceil(total / page.PAGE_SIZE))
    kept = {k: v for k, v in (("q", q), ("status", status), ("overdue", "1" if want_overdue else ""),
                              ("desk", desk), ("online", online if online_v is not None else "")) if v}
    base = "/dossiers?" + (urlencode(kept) + "&" if kept else "")
    return page.render(request, "dossiers.html", active="/dossiers", title="Hồ sơ", rows=rows, total=total,
                       page=number, pages=pages, base=base, q=q, status=status, overdue=want_overdue, desk=desk,
                       online=online if online_v is not None else "", desks=dossiers.desks(db),
                       STATUSES=STATUSES, STATUS_VI=STATUS_VI, filtered=bool(kept))


def _form(request: Request, values: dict, *, new: bool, status_code: int = 200, error: str | None = None, code: str = ""):
    return page.render(request, "dossier_form.html", status_code=status_code, active="/dossiers",
                       title="Thêm hồ sơ" if new else f"Sửa hồ sơ {code}", values=values, new=new, code=code,
                       error=error, STATUSES=STATUSES, STATUS_VI=STATUS_VI,
                       action="/dossiers/new" if new else _url(code, "/edit"))


@router.get("/dossiers/new")
@access.requires("dossiers.edit")
def new_form(request: Request):
    return _form(request, {"status": "received"}, new=True)


@router.post("/dossiers/new")
@access.requires("dossiers.edit")
async def add(request: Request):
    values = await page.form(request)
    c = page.console(request)
    try:
        d = dossiers.add(page.db(request), values.get("code", ""), values.get("applicant", ""),
                         values.get("procedure", ""), values.get("received", ""), values.get("due") or None,
                         values.get("status") or "received", values.get("desk") or None,
                         now=c.now(), tz=c.tz, online=values.get("online") == "1", source="web")
    except ValueError as e:
        return _form(request, values, new=True, status_code=422, error=_error_vi(e))
    page.audit(request, "dossiers.add", d.code, {"procedure": d.procedure, "status": d.status, "due_at": d.due_at,
                                                 "desk": d.desk, "online": d.online})
    return page.done(request, _url(d.code), f"Đã thêm hồ sơ {d.code}.")


@router.get("/dossiers/import")
@access.requires("dossiers.edit")
def import_form(request: Request):
    return page.render(request, "dossier_import.html", active="/dossiers", title="Nhập hồ sơ từ tệp", problems=[])


@router.post("/dossiers/import")
@access.requires("dossiers.edit")
async def import_upload(request: Request):
    c = page.console(request)

    def again(message: str, problems=(), status_code: int = 422):
        return page.render(request, "dossier_import.html", status_code=status_code, active="/dossiers",
                           title="Nhập hồ sơ từ tệp", error=message, problems=list(problems))

    try:
        got = await page.upload(request, "file", UPLOAD_LIMIT)
    except ValueError as e:
        return again(f"Không nhận được tệp: {e}")
    if got is None:
        return again("Hãy chọn tệp CSV hoặc Excel (.xlsx) xuất từ phần mềm một cửa.")
    name, content = got
    suffix = ".xlsx" if name.lower().endswith((".xlsx", ".xlsm")) else ".csv"
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="congso-dossiers-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        result = dossiers.import_file(page.db(request), path, now=c.now(), tz=c.tz)
    except dossiers.ImportError_ as e:
        return again(f"Tệp {name} chưa được nhập (không lưu hồ sơ nào): có {len(e.problems)} lỗi, "
                     "hãy sửa trong tệp rồi nhập lại.", [p.replace(path, name) for p in e.problems])
    except ValueError as e:
        return again(f"Tệp {name} chưa được nhập (không lưu hồ sơ nào): {str(e).replace(path, name)}")
    finally:
        os.unlink(path)
    page.audit(request, "dossiers.import", name, {"new": result.new, "updated": result.updated,
                                                  "unchanged": result.unchanged, "encoding": result.encoding})
    message = (f"Đã nhập tệp {name}: {result.new} hồ sơ mới, {result.updated} hồ sơ cập nhật, "
               f"{result.unchanged} không đổi.")
    if result.ignored_columns:
        message += f" Bỏ qua các cột: {', '.join(result.ignored_columns)}."
    return page.done(request, "/dossiers", message)


def _dossier_or_404(request: Request, code: str) -> dict:
    from fastapi import HTTPException

    d = dossiers.get(page.db(request), code)
    if d is None:
        raise HTTPException(404, f"no dossier {code!r}")
    return d


def _view(request: Request, d: dict, status_code: int = 200, error: str | None = None):
    now = page.console(request).now()
    history = dossiers.history(page.db(request), d["code"])
    for h in history:
        h["source_vi"] = SOURCE_VI.get(h["source"], h["source"])
    return page.render(request, "dossier.html", status_code=status_code, active="/dossiers", title=f"Hồ sơ {d['code']}",
                       d=d, history=history, overdue=is_overdue(d["status"], d["due_at"], now), error=error,
                       STATUSES=STATUSES, STATUS_VI=STATUS_VI, url=_url(d["code"]))


@router.get("/dossiers/{code:path}/edit")
@access.requires("dossiers.edit")
def edit_form(request: Request, code: str):
    d = _dossier_or_404(request, code)
    zone = page.console(request).zone
    values = {"applicant": d["applicant"], "procedure": d["procedure"], "received": _typed(d["received_at"], zone),
              "due": _typed(d["due_at"], zone), "desk": d["desk"] or "", "online": "1" if d.get("online") else ""}
    return _form(request, values, new=False, code=d["code"])


@router.post("/dossiers/{code:path}/edit")
@access.requires("dossiers.edit")
async def edit(request: Request, code: str):
    d = _dossier_or_404(request, code)
    values = await page.form(request)
    c = page.console(request)
    try:
        new = dossiers.update(page.db(request), d["code"], values.get("applicant", ""), values.get("procedure", ""),
                              values.get("received", ""), values.get("due") or None, values.get("desk") or None,
                              values.get("online") == "1", now=c.now(), tz=c.tz, source="web")
    except ValueError as e:
        return _form(request, values, new=False, code=d["code"], status_code=422, error=_error_vi(e))
    changed = {k: getattr(new, k) for k, old in (("applicant", d["applicant"]), ("procedure", d["procedure"]),
                                                 ("received_at", d["received_at"]), ("due_at", d["due_at"]),
                                                 ("desk", d["desk"]), ("online", bool(d.get("online"))))
               if getattr(new, k) != old}
    if "applicant" in changed:
        changed["applicant"] = "(đổi tên người nộp)"  # the audit log is no place for citizens' names
    page.audit(request, "dossiers.edit", d["code"], changed or "unchanged")
    return page.done(request, _url(d["code"]), f"Đã lưu hồ sơ {d['code']}.")


@router.post("/dossiers/{code:path}/status")
@access.requires("dossiers.edit")
async def set_status(request: Request, code: str):
    d = _dossier_or_404(request, code)
    values = await page.form(request)
    try:
        old, new = dossiers.set_status(page.db(request), d["code"], values.get("status", ""),
                                       now=page.console(request).now(), source="web")
    except ValueError as e:
        return _view(request, d, 422, f"Chưa đổi được trạng thái: {e}")
    if old == new:
        return page.done(request, _url(d["code"]), f"Hồ sơ {d['code']} vẫn ở trạng thái {STATUS_VI[new]}.")
    page.audit(request, "dossiers.status", d["code"], {"from": old, "to": new})
    return page.done(request, _url(d["code"]), f"Hồ sơ {d['code']}: {STATUS_VI[old]} → {STATUS_VI[new]}.")


@router.get("/dossiers/{code:path}")
@access.requires("dossiers.view")
def view(request: Request, code: str):
    return _view(request, _dossier_or_404(request, code))
