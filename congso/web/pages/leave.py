"""Nghỉ phép & chấm công: the timesheet's inputs the clerk enters (leave, corrections, holidays).

- ``GET /leave?month=YYYY-MM&staff=&status=``: the month's leave and official
  absences (``leave.list_leave``), the requests waiting for a decision at the
  top (approve or refuse: ``leave.decide``); add (``leave.add``, approved at
  once) and remove (a confirmation page, ``leave.remove``).
- ``/leave/request``: an officer asks for leave for themselves (their own
  staff id only; status "requested"), and sees what they asked for.
- ``/leave/corrections?month=YYYY-MM``: the month's days with a missing "in"
  or "out" (``leave.corrections`` of ``timesheet.report``), each with a form
  to enter the forgotten scan (``leave.add_punch``); the corrections already
  entered (``leave.list_punches``), with who, when and why, and remove.
- ``/leave/holidays?year=YYYY``: the statutory holidays (lunar ones too) and
  the office's own days off and swapped working days (``days_off``).

Every change writes one audit row; the logic is in ``gateway/leave.py`` and
``gateway/days_off.py`` (the calls ``congso leave``, ``punch`` and
``holiday`` make).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request

from ...gateway import days_off, leave, timesheet
from ...gateway import reports as reports_mod
from ...vocab import timesheet as ts_vocab
from .. import access, page

router = APIRouter()

STATUS_VI = {"approved": "Đã duyệt", "requested": "Chờ duyệt", "refused": "Không duyệt", "rejected": "Không duyệt"}
HALF_VI = {None: "Cả ngày", "": "Cả ngày", "am": "Buổi sáng", "pm": "Buổi chiều"}
HALF_CHOICES = (("", "Cả ngày"), ("am", "Buổi sáng"), ("pm", "Buổi chiều"))
DAY_KIND_VI = {"holiday": "Nghỉ lễ, Tết", "off": "Nghỉ thêm (theo thông báo)", "workday": "Làm việc bù"}
SOURCE_VI = {"law": "Theo Bộ luật Lao động", "office": "Cơ quan nhập"}
MISSING_VI = {"in": "Thiếu giờ vào", "out": "Thiếu giờ ra", "both": "Thiếu giờ vào và giờ ra"}
REQUESTS_SHOWN = 50
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_TIME_RE = re.compile(r"^(\d{1,2})[:hH.](\d{2})$")


# -- shared bits ---------------------------------------------------------------------------
def _month(request: Request, text: str | None) -> tuple[str, date, date]:
    """("YYYY-MM", first, last) of ``?month=`` (this month when empty or not a month; 12/2026 accepted)."""
    text = (text or "").strip()
    if len(text) == 7 and text[2] == "/":
        text = f"{text[3:]}-{text[:2]}"
    if _MONTH_RE.match(text):
        try:
            first, last = timesheet.month_bounds(text)
            return text, first, last
        except ValueError:
            pass
    text = page.console(request).today().strftime("%Y-%m")
    first, last = timesheet.month_bounds(text)
    return text, first, last


def _shift_month(month: str, n: int) -> str:
    y, m = int(month[:4]), int(month[5:]) + n
    y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return f"{y:04d}-{m:02d}"


def _people(db) -> list[dict]:
    """The active staff, for the pickers (an office has tens, not thousands)."""
    return list(db.query("SELECT staff_id, name, department FROM staff WHERE active = 1 ORDER BY name, staff_id "
                         "LIMIT 5000"))


def _names(db, staff_ids) -> dict[str, str]:
    ids = sorted({s for s in staff_ids if s})
    if not ids:
        return {}
    out = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        out.update(dict(db.execute(f"SELECT staff_id, name FROM staff WHERE staff_id IN ({marks})", chunk).fetchall()))
    return out


def _day(text: str | None, what: str) -> str | None:
    d = reports_mod.parse_day_input(text, what)
    return d.isoformat() if d else None


def _vi_error(e: Exception, what: str = "Chưa lưu được") -> str:
    return f"{what}, hãy sửa rồi gửi lại. Chi tiết: {e}"


def _row(r: dict, names: dict[str, str]) -> dict:
    """A leave row as the pages show it."""
    kind = r.get("kind")
    half = r.get("half") or None
    return {**r, "name": r.get("name") or names.get(r.get("staff_id"), ""),
            "kind_vi": ts_vocab.LEAVE_KINDS.get(kind, kind), "half_vi": HALF_VI.get(half, half),
            "status_vi": STATUS_VI.get(r.get("status"), r.get("status"))}


def _leave_or_404(request: Request, leave_id: str) -> dict:
    try:
        found = leave.get(page.db(request), int(leave_id))
    except (TypeError, ValueError):
        found = None
    if not found:
        raise HTTPException(404, "Không có mục nghỉ phép này.")
    return found


def _own_staff(request: Request) -> str | None:
    s = page.session(request)
    return (s.user.get("staff_id") or None) if s is not None else None


def _kinds() -> list[tuple[str, str]]:
    return list(ts_vocab.LEAVE_KINDS.items())


def _leave_values(values: dict) -> dict:
    """The typed form, checked for the parts the console parses (dates); the rest the library checks."""
    first = _day(values.get("first_day"), "Từ ngày")
    if not first:
        raise leave.LeaveError("the first day is empty (Từ ngày)")
    last = _day(values.get("last_day"), "Đến ngày")
    return {"kind": ts_vocab.parse_kind(values.get("kind", "")), "first_day": first, "last_day": last,
            "half": ts_vocab.parse_half(values.get("half") or None), "note": (values.get("note") or "").strip() or None}


# -- the month's leave -----------------------------------------------------------------------
@router.get("/leave")
@access.requires("leave.view")
def leave_list(request: Request, month: str | None = None, staff: str | None = None, status: str | None = None):
    return _list(request, month, staff, status)


def _list(request: Request, month: str | None, staff: str | None, status: str | None, status_code: int = 200,
          **extra):
    db = page.db(request)
    month, first, last = _month(request, month)
    staff = (staff or "").strip()[:64] or None
    status = status if status in STATUS_VI else None
    rows = leave.list_leave(db, staff_id=staff, first=first.isoformat(), last=last.isoformat(), status=status)
    requests = []
    if access.can(page.session(request).role, "leave.edit"):
        requests = leave.list_leave(db, status="requested")[:REQUESTS_SHOWN]
    names = _names(db, [r.get("staff_id") for r in rows] + [r.get("staff_id") for r in requests])
    number = page.page_number(request.query_params.get("page"))
    total = len(rows)
    pages = max(1, -(-total // page.PAGE_SIZE))
    shown = rows[(number - 1) * page.PAGE_SIZE:number * page.PAGE_SIZE]
    args = {k: v for k, v in (("month", month), ("staff", staff or ""), ("status", status or "")) if v}
    extra.setdefault("values", {"first_day": first.isoformat() if first > page.console(request).today() else
                                 page.console(request).today().isoformat()})
    return page.render(request, "leave.html", status_code=status_code, active="/leave", title="Nghỉ phép",
                       month=month, first=first, last=last, staff=staff, status=status, rows=[_row(r, names) for r in shown],
                       total=total, page=number, pages=pages, base="/leave?" + urlencode(args) + "&",
                       requests=[_row(r, names) for r in requests], people=_people(db), kinds=_kinds(),
                       halves=HALF_CHOICES, status_vi={k: v for k, v in STATUS_VI.items() if k != "rejected"},
                       prev=_shift_month(month, -1), next=_shift_month(month, 1), **extra)


@router.post("/leave/new")
@access.requires("leave.edit")
async def add(request: Request):
    values = await page.form(request)
    c = page.console(request)
    staff_id = (values.get("staff_id") or "").strip()
    try:
        v = _leave_values(values)
        row = leave.add(page.db(request), staff_id, v["kind"], v["first_day"], v["last_day"], v["half"], v["note"],
                        entered_by=page.session(request).name, tz=c.tz, status="approved")
    except ValueError as e:
        return _list(request, values.get("month"), None, None, 422, error=_vi_error(e), values=values)
    page.audit(request, "leave.add", str(row["id"]), {"staff_id": row["staff_id"], "kind": row["kind"],
               "first_day": row["first_day"], "last_day": row["last_day"], "half": row.get("half")})
    return page.done(request, f"/leave?month={row['first_day'][:7]}",
                     f"Đã ghi {ts_vocab.LEAVE_KINDS.get(row['kind'], row['kind']).lower()} cho {staff_id}.")


@router.post("/leave/{leave_id}/decide")
@access.requires("leave.edit")
async def decide(request: Request, leave_id: str):
    before = _leave_or_404(request, leave_id)
    values = await page.form(request)
    approve = values.get("approve") == "1"
    try:
        leave.decide(page.db(request), int(leave_id), approve, decided_by=page.session(request).name,
                     tz=page.console(request).tz)
    except ValueError as e:
        return _list(request, before["first_day"][:7], None, None, 422, error=_vi_error(e, "Chưa duyệt được"))
    page.audit(request, "leave.approve" if approve else "leave.refuse", str(before["id"]),
               {"staff_id": before["staff_id"], "kind": before["kind"], "first_day": before["first_day"],
                "last_day": before["last_day"], "half": before.get("half")})
    word = "Đã duyệt" if approve else "Đã không duyệt"
    return page.done(request, f"/leave?month={before['first_day'][:7]}", f"{word} đơn xin nghỉ của {before['staff_id']}.")


@router.get("/leave/{leave_id}/delete")
@access.requires("leave.edit")
def delete_confirm(request: Request, leave_id: str):
    row = _leave_or_404(request, leave_id)
    names = _names(page.db(request), [row["staff_id"]])
    return page.render(request, "leave_delete.html", active="/leave", title="Xoá mục nghỉ phép", row=_row(row, names))


@router.post("/leave/{leave_id}/delete")
@access.requires("leave.edit")
def delete(request: Request, leave_id: str):
    row = _leave_or_404(request, leave_id)
    try:
        leave.remove(page.db(request), int(leave_id))
    except ValueError as e:
        raise HTTPException(404, str(e)) from None
    page.audit(request, "leave.remove", str(row["id"]), {"staff_id": row["staff_id"], "kind": row["kind"],
               "first_day": row["first_day"], "last_day": row["last_day"], "half": row.get("half"),
               "status": row.get("status")})
    return page.done(request, f"/leave?month={row['first_day'][:7]}", f"Đã xoá mục nghỉ phép của {row['staff_id']}.")


# -- an officer's own request ---------------------------------------------------------------
@router.get("/leave/request")
@access.requires("leave.request", narrowed=True)
def request_form(request: Request):
    return _request_page(request)


def _request_page(request: Request, status_code: int = 200, **extra):
    db = page.db(request)
    own = _own_staff(request)
    if own is None:
        raise HTTPException(403, "Tài khoản này chưa gắn với cán bộ nào nên không xin nghỉ được.")
    today = page.console(request).today()
    mine = leave.list_leave(db, staff_id=own, first=(today - timedelta(days=62)).isoformat())
    names = _names(db, [own])
    extra.setdefault("values", {"first_day": today.isoformat()})
    return page.render(request, "leave_request.html", status_code=status_code, active="/leave/request",
                       title="Xin nghỉ phép", own=own, own_name=names.get(own, own),
                       rows=[_row(r, names) for r in mine][-page.PAGE_SIZE:], kinds=_kinds(), halves=HALF_CHOICES,
                       **extra)


@router.post("/leave/request")
@access.requires("leave.request", narrowed=True)
async def request_add(request: Request):
    values = await page.form(request)
    own = _own_staff(request)
    staff_id = (values.get("staff_id") or own or "").strip()
    if own is None or staff_id != own:
        raise HTTPException(403, "Chỉ được xin nghỉ cho chính mình.")
    try:
        v = _leave_values(values)
        row = leave.add(page.db(request), own, v["kind"], v["first_day"], v["last_day"], v["half"], v["note"],
                        entered_by=page.session(request).name, tz=page.console(request).tz, status="requested")
    except ValueError as e:
        return _request_page(request, 422, error=_vi_error(e, "Chưa gửi được đơn"), values=values)
    page.audit(request, "leave.request", str(row["id"]), {"staff_id": own, "kind": row["kind"],
               "first_day": row["first_day"], "last_day": row["last_day"], "half": row.get("half")})
    return page.done(request, "/leave/request", "Đã gửi đơn xin nghỉ, chờ lãnh đạo duyệt.")


# -- corrections (forgotten scans) ----------------------------------------------------------
def _missing(r: dict) -> str:
    if r.get("missing") in MISSING_VI:
        return MISSING_VI[r["missing"]]
    mi, mo = bool(r.get("missing_in")), bool(r.get("missing_out"))
    if mi and mo:
        return MISSING_VI["both"]
    return MISSING_VI["in"] if mi else MISSING_VI["out"] if mo else str(r.get("missing") or "")


@router.get("/leave/corrections")
@access.requires("leave.view")
def corrections(request: Request, month: str | None = None):
    return _corrections(request, month)


def _corrections(request: Request, month: str | None, status_code: int = 200, **extra):
    db, c = page.db(request), page.console(request)
    month, first, last = _month(request, month)
    now = c.now()
    todo: list[dict] = []
    if first <= now.date():
        rules = timesheet.WorkRules.from_settings(c.settings.workrules)
        rep = timesheet.report(db, rules, first, min(last, now.date()), c.tz, now=now)
        todo = [{**r, "missing_vi": _missing(r)} for r in leave.corrections(rep)]
    number = page.page_number(request.query_params.get("page"))
    pages = max(1, -(-len(todo) // page.PAGE_SIZE))
    shown = todo[(number - 1) * page.PAGE_SIZE:number * page.PAGE_SIZE]
    entered = leave.list_punches(db, first=first.isoformat(), last=last.isoformat())
    names = _names(db, [r.get("staff_id") for r in entered] + [r.get("staff_id") for r in shown])
    entered = [{**r, "name": r.get("name") or names.get(r.get("staff_id"), "")} for r in entered]
    shown = [{**r, "name": r.get("name") or names.get(r.get("staff_id"), "")} for r in shown]
    extra.setdefault("values", {})
    return page.render(request, "corrections.html", status_code=status_code, active="/leave",
                       title="Chấm công bổ sung", month=month, first=first, last=last, todo=shown,
                       todo_total=len(todo), page=number, pages=pages, base=f"/leave/corrections?month={month}&",
                       entered=entered, people=_people(db), prev=_shift_month(month, -1),
                       next=_shift_month(month, 1), **extra)


def _at(values: dict) -> str:
    day = _day(values.get("day"), "Ngày")
    if not day:
        raise leave.LeaveError("the day is empty (Ngày)")
    m = _TIME_RE.match((values.get("time") or "").strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise leave.LeaveError(f"the time must be HH:MM (Giờ), got {values.get('time', '')!r}")
    return f"{day}T{int(m.group(1)):02d}:{m.group(2)}"


@router.post("/leave/corrections")
@access.requires("leave.edit")
async def add_punch(request: Request):
    values = await page.form(request)
    staff_id = (values.get("staff_id") or "").strip()
    try:
        at = _at(values)
        row = leave.add_punch(page.db(request), staff_id, at, values.get("reason", ""),
                              entered_by=page.session(request).name, tz=page.console(request).tz)
    except ValueError as e:
        return _corrections(request, values.get("month"), 422,
                            error=_vi_error(e, f"Chưa ghi được giờ chấm công bổ sung cho {staff_id or '?'}"),
                            values=values)
    punch_id = row.get("id") if isinstance(row, dict) else row
    page.audit(request, "leave.punch_add", str(punch_id), {"staff_id": staff_id, "at": at,
                                                             "reason": values.get("reason", "")})
    month = values.get("month") or at[:7]
    return page.done(request, f"/leave/corrections?month={month}",
                     f"Đã ghi giờ chấm công bổ sung {at[11:16]} ngày {at[8:10]}/{at[5:7]}/{at[:4]} cho {staff_id}.")


@router.post("/leave/corrections/{punch_id}/delete")
@access.requires("leave.edit")
async def remove_punch(request: Request, punch_id: str):
    values = await page.form(request)
    month = values.get("month") or ""
    try:
        removed = leave.remove_punch(page.db(request), int(punch_id))
    except ValueError as e:
        raise HTTPException(404, f"Không có giờ chấm công bổ sung này ({e}).") from None
    detail = {k: removed.get(k) for k in ("staff_id", "ts", "reason")} if isinstance(removed, dict) else None
    page.audit(request, "leave.punch_remove", punch_id, detail)
    return page.done(request, "/leave/corrections" + (f"?month={month}" if _MONTH_RE.match(month) else ""),
                     "Đã xoá giờ chấm công bổ sung.")


# -- holidays ----------------------------------------------------------------------------------
def _year(request: Request, text: str | None) -> int:
    try:
        y = int((text or "").strip())
        if 1900 <= y <= 2200:
            return y
    except ValueError:
        pass
    return page.console(request).today().year


@router.get("/leave/holidays")
@access.requires("leave.view")
def holidays(request: Request, year: str | None = None):
    return _holidays(request, _year(request, year))


def _holidays(request: Request, year: int, status_code: int = 200, **extra):
    rows = days_off.list_days(page.db(request), year)
    shown = [{**r, "kind_vi": DAY_KIND_VI.get(r.get("kind"), r.get("kind")),
              "source_vi": SOURCE_VI.get(r.get("source"), r.get("source")),
              "weekday": _weekday(r.get("day"))} for r in rows]
    extra.setdefault("values", {})
    return page.render(request, "holidays.html", status_code=status_code, active="/leave", title="Ngày nghỉ lễ",
                       year=year, rows=shown, **extra)


WEEKDAY_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")


def _weekday(day) -> str:
    try:
        d = day if isinstance(day, date) else date.fromisoformat(str(day))
    except ValueError:
        return ""
    return WEEKDAY_VI[d.weekday()]


def _year_of(day: str | None, fallback: int) -> int:
    return int(day[:4]) if day and re.match(r"^\d{4}-", day) else fallback


@router.post("/leave/holidays/off")
@access.requires("leave.edit")
async def holiday_off(request: Request):
    values = await page.form(request)
    year = _year(request, values.get("year"))
    try:
        day = _day(values.get("day"), "Ngày")
        if not day:
            raise days_off.DaysOffError("the day is empty (Ngày)")
        try:
            n = int((values.get("days") or "1").strip())
        except ValueError:
            raise days_off.DaysOffError(f"days must be a whole number (Số ngày), got {values.get('days')!r}") from None
        days_off.add_off(page.db(request), day, values.get("name", ""), days=n)
    except ValueError as e:
        return _holidays(request, year, 422, error=_vi_error(e, "Chưa thêm được ngày nghỉ"), values=values)
    page.audit(request, "holiday.add", day, {"name": values.get("name", ""), "days": n})
    return page.done(request, f"/leave/holidays?year={_year_of(day, year)}",
                     f"Đã thêm {n} ngày nghỉ từ {day[8:10]}/{day[5:7]}/{day[:4]}.")


@router.post("/leave/holidays/workday")
@access.requires("leave.edit")
async def holiday_workday(request: Request):
    values = await page.form(request)
    year = _year(request, values.get("year"))
    try:
        day = _day(values.get("wday"), "Ngày")
        if not day:
            raise days_off.DaysOffError("the day is empty (Ngày)")
        days_off.add_workday(page.db(request), day, values.get("wname", ""))
    except ValueError as e:
        return _holidays(request, year, 422, error=_vi_error(e, "Chưa thêm được ngày làm bù"), values=values)
    page.audit(request, "holiday.workday", day, {"name": values.get("wname", "")})
    return page.done(request, f"/leave/holidays?year={_year_of(day, year)}",
                     f"Đã thêm ngày làm việc bù {day[8:10]}/{day[5:7]}/{day[:4]}.")


@router.post("/leave/holidays/{day}/delete")
@access.requires("leave.edit")
async def holiday_remove(request: Request, day: str):
    values = await page.form(request)
    year = _year(request, values.get("year"))
    try:
        d = _day(day, "Ngày")
        days_off.remove(page.db(request), d)
    except ValueError as e:
        return _holidays(request, year, 422, error=_vi_error(e, "Chưa xoá được"))
    page.audit(request, "holiday.remove", d, None)
    return page.done(request, f"/leave/holidays?year={_year_of(d, year)}",
                     f"Đã xoá ngày {d[8:10]}/{d[5:7]}/{d[:4]} khỏi danh sách của cơ quan.")
