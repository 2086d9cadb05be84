"""Quầy và đánh giá: who is on duty at each desk, opening a session for the next citizen, the ratings report.

An officer sees and acts at the desks given to them (``web_user_desks``,
``page.session(request).desks``); an admin at any desk; a clerk sees the
desks. Opening a session is ``ratings.open_session`` (what ``congso desk
open`` calls): the running gateway publishes it on ``state/desk/<desk>``
and the kiosk shows the officer's name. The dossier is picked from the
desk's list, or its code typed or scanned (a USB barcode scanner types the
code and presses Enter into the one text field).

Desk duty (nhận quầy, ``gateway/duty.py``): each desk shows who holds it
("Đang nhận quầy: ... từ 08:02, qua thẻ"); an officer takes and leaves the
desks given to them, for themselves only; an admin for any officer who has
the desk given. ``duty.take``/``duty.leave`` write the audit row; the running
gateway publishes ``state/duty`` and the kiosk shows the name.

The ratings report (``reports.ratings``) is for every role with
``ratings.view``; an officer gets only the votes tied to them: the library
filters by their staff id.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ...gateway import duty as duty_mod
from ...gateway import ratings
from ...gateway import reports as reports_mod
from ...protocol import topics
from ...vocab import levels as levels_mod
from ...vocab import text as text_mod
from ...vocab.dossiers import STATUS_VI, code_in_scan
from .. import access, page

router = APIRouter()

KIOSK_SINCE_DAYS = 90  # a kiosk's desk is known from its votes of the last three months
DOSSIER_CHOICES = 50
BY_VI = {"officer": "Theo cán bộ", "desk": "Theo quầy", "reason": "Theo lý do không hài lòng"}


# -- who may act where ---------------------------------------------------------------
def _desk_id(desk: str) -> str:
    try:
        return topics.check_desk_id(desk)
    except ValueError:
        raise HTTPException(404, f"no desk {desk!r}") from None


def _can_act(request: Request, desk: str) -> bool:
    s = page.session(request)
    if s is None or not access.can(s.role, "desks.session"):
        return False
    return s.role == "admin" or desk in s.desks


def _visible_desks(request: Request, now) -> list[dict]:
    s = page.session(request)
    db = page.db(request)
    since = (now.date() - timedelta(days=KIOSK_SINCE_DAYS)).isoformat()
    if s.role == "officer":
        return ratings.desk_board(db, now, desks=list(s.desks), since=since)
    return ratings.desk_board(db, now, since=since)


def _board_context(request: Request) -> dict:
    now = page.console(request).now()
    board = _visible_desks(request, now)
    db = page.db(request)
    held = duty_mod.holders(db)
    eligible = duty_mod.officers(db)
    s = page.session(request)
    own = s.user.get("staff_id")
    for row in board:
        row["can_act"] = _can_act(request, row["desk_id"])
        holder = held.get(row["desk_id"])
        row["duty"] = holder
        row["duty_text"] = duty_mod.describe_vi(holder, now) if holder else None
        row["duty_mine"] = bool(holder and own and holder["officer_id"] == own)
        # Who may take this desk from here: the officer themselves (if the desk is
        # given to their user), or for an admin every officer it is given to.
        row["duty_candidates"] = sorted(((sid, e["name"]) for sid, e in eligible.items()
                                         if row["desk_id"] in e["desks"]), key=lambda p: (p[1], p[0]))
        row["can_take"] = row["can_act"] and (
            s.role == "admin" and bool(row["duty_candidates"]) or
            s.role != "admin" and any(sid == own for sid, _ in row["duty_candidates"]) and not row["duty_mine"])
        row["can_leave"] = row["can_act"] and bool(holder) and (s.role == "admin" or row["duty_mine"])
    return {"board": board, "is_admin": s.role == "admin"}


def _forms(request: Request, board: list[dict]) -> list[dict]:
    """The open-a-session form of each desk the user may act at, with its dossiers to pick from."""
    db = page.db(request)
    out = []
    for row in board:
        if not row["can_act"]:
            continue
        own = ratings.desk_dossiers(db, row["desk_id"], DOSSIER_CHOICES)
        out.append({"desk_id": row["desk_id"], "dossiers": own or ratings.recent_open_dossiers(db, DOSSIER_CHOICES),
                    "own": bool(own), "session": row["session"], "duty": row["duty"],
                    "duty_candidates": row["duty_candidates"]})
    return out


def _staff_name(db, staff_id: str | None) -> str | None:
    if not staff_id:
        return None
    row = db.execute("SELECT name FROM staff WHERE staff_id = ?", (staff_id,)).fetchone()
    return row[0] if row else None


def _desks_page(request: Request, status_code: int = 200, error: str | None = None, values: dict | None = None,
                failed_desk: str | None = None):
    ctx = _board_context(request)
    s = page.session(request)
    officers = ratings.active_officers(page.db(request)) if s.role == "admin" else []
    return page.render(request, "desks.html", status_code=status_code, active="/desks", title="Quầy và đánh giá",
                       error=error, values=values or {}, failed_desk=failed_desk, forms=_forms(request, ctx["board"]),
                       officers=officers, own_staff=s.user.get("staff_id"), status_vi=STATUS_VI,
                       own_name=_staff_name(page.db(request), s.user.get("staff_id")),
                       default_minutes=ratings.DEFAULT_MINUTES, **ctx)


@router.get("/desks")
@access.requires("desks.view")
def desks(request: Request):
    return _desks_page(request)


@router.get("/desks/board")
@access.requires("desks.view")
def board(request: Request):
    """The board alone (refreshed every few seconds by console.js)."""
    return page.render(request, "desks_board.html", **_board_context(request))


@router.post("/desks/{desk}/open")
@access.requires("desks.session", narrowed=True)
async def open_session(request: Request, desk: str):
    desk = _desk_id(desk)
    if not _can_act(request, desk):
        raise HTTPException(403, f"desk {desk} is not given to this user")
    values = await page.form(request)
    s = page.session(request)
    db = page.db(request)
    # A typed or scanned code wins over the list (the scanner types into the text field).
    code = text_mod.printable(values.get("code") or values.get("dossier") or "").strip()
    code = code_in_scan(code) or code  # the receipt's QR: the portal's URL with the code in it
    if s.role == "admin":
        officer = (values.get("officer") or "").strip()
    else:
        officer = s.user.get("staff_id") or ""
    try:
        if not officer:
            raise ratings.SessionError("choose the officer serving (Cán bộ phục vụ)")
        if len(code) > 64:
            raise ratings.SessionError(f"the dossier code is {len(code)} characters; at most 64")
        minutes_text = (values.get("minutes") or "").strip() or str(ratings.DEFAULT_MINUTES)
        if not minutes_text.isdigit():
            raise ratings.SessionError(f"minutes must be a whole number, got {minutes_text!r}")
        session = ratings.open_session(db, desk, officer, page.console(request).now(), code or None,
                                       int(minutes_text))
    except ValueError as e:
        return _desks_page(request, 422, f"Không mở được phiên ở quầy {desk}: {e}", values, failed_desk=desk)
    page.audit(request, "desks.open", desk, {"officer_id": officer, "dossier_code": session["dossier_code"],
                                             "session_id": session["session_id"],
                                             "expires_at": session["expires_at"]})
    message = f"Đã mở phiên ở quầy {desk}: {session['officer_name']}"
    if session["dossier_code"]:
        message += f", hồ sơ {session['dossier_code']}"
        if not ratings.dossier_exists(db, session["dossier_code"]):
            message += " (mã này chưa có trong danh sách hồ sơ)"
    return page.done(request, "/desks", message + ". Màn hình đánh giá đã hiện tên cán bộ.")


@router.post("/desks/{desk}/close")
@access.requires("desks.session", narrowed=True)
def close_session(request: Request, desk: str):
    desk = _desk_id(desk)
    if not _can_act(request, desk):
        raise HTTPException(403, f"desk {desk} is not given to this user")
    closed = ratings.close_session(page.db(request), desk, page.console(request).now())
    if closed is None:
        return page.done(request, "/desks", f"Quầy {desk} không có phiên nào đang mở.")
    page.audit(request, "desks.close", desk, {"session_id": closed["session_id"], "officer_id": closed["officer_id"]})
    return page.done(request, "/desks", f"Đã đóng phiên của {closed['officer_name']} ở quầy {desk}.")


@router.post("/desks/{desk}/take")
@access.requires("desks.session", narrowed=True)
async def take_desk(request: Request, desk: str):
    """Nhận quầy: an officer for themselves at a desk given to them; an admin for the officer chosen."""
    desk = _desk_id(desk)
    if not _can_act(request, desk):
        raise HTTPException(403, f"desk {desk} is not given to this user")
    values = await page.form(request)
    s = page.session(request)
    own = s.user.get("staff_id") or ""
    officer = (values.get("officer") or "").strip() if s.role == "admin" else own
    if s.role != "admin" and (values.get("officer") or own) != own:
        raise HTTPException(403, "an officer takes a desk for themselves only")
    if not officer:
        if s.role == "admin":
            return _desks_page(request, 422, f"Không nhận được quầy {desk}: chọn cán bộ nhận quầy")
        raise HTTPException(403, "this officer account has no staff id")
    try:
        row = duty_mod.take(page.db(request), desk, officer, page.console(request).now(), via="console",
                            actor=page.actor(request))
    except duty_mod.DutyError as e:
        return _desks_page(request, 422, f"Không nhận được quầy {desk}: {e}")
    return page.done(request, "/desks", f"{row['officer_name']} đã nhận quầy {desk}. Mọi phiếu đánh giá ở quầy "
                                        "này được tính cho cán bộ cho đến khi rời quầy.")


@router.post("/desks/{desk}/leave")
@access.requires("desks.session", narrowed=True)
def leave_desk(request: Request, desk: str):
    """Rời quầy: the officer holding it, or an admin."""
    desk = _desk_id(desk)
    if not _can_act(request, desk):
        raise HTTPException(403, f"desk {desk} is not given to this user")
    s = page.session(request)
    only = None if s.role == "admin" else (s.user.get("staff_id") or "")
    try:
        row = duty_mod.leave(page.db(request), desk, page.console(request).now(), only, actor=page.actor(request))
    except duty_mod.DutyError:
        raise HTTPException(403, f"desk {desk} is held by another officer") from None
    if row is None:
        return page.done(request, "/desks", f"Quầy {desk} chưa có ai nhận.")
    return page.done(request, "/desks", f"{row['officer_name']} đã rời quầy {desk}.")


# -- the ratings report ----------------------------------------------------------------
def _report_query(request: Request, values: dict) -> tuple[dict, "ratings.Report"]:
    """The report the query asks for, narrowed to the officer's own votes for an officer."""
    s = page.session(request)
    c = page.console(request)
    today = c.today()
    first = reports_mod.parse_day_input(values.get("from"), "Từ ngày") or today.replace(day=1)
    last = reports_mod.parse_day_input(values.get("to"), "Đến ngày") or today
    by = values.get("by") or "officer"
    exclude = values.get("exclude_flagged") in ("1", "on", "true")
    officer = None
    if s.role == "officer":
        officer = s.user.get("staff_id")
        if not officer:
            raise HTTPException(403, "this officer account has no staff id")
    rep = reports_mod.ratings(page.db(request), first.isoformat(), last.isoformat(), by, unit=c.settings.site.name,
                              scale_levels=c.settings.rating.levels, exclude_flagged=exclude, officer_id=officer)
    query = {"from": first.isoformat(), "to": last.isoformat(), "by": by}
    if exclude:
        query["exclude_flagged"] = "1"
    return query, rep


def _params(request: Request) -> dict:
    return {k: text_mod.nfc(v) for k, v in request.query_params.items()}


@router.get("/desks/ratings")
@access.requires("ratings.view", narrowed=True)
def ratings_report(request: Request):
    values = _params(request)
    s = page.session(request)
    try:
        query, rep = _report_query(request, values)
    except ValueError as e:
        return page.render(request, "desk_ratings.html", status_code=422, active=_active(request),
                           title="Báo cáo đánh giá", error=f"Không lập được báo cáo: {e}", values=values,
                           rep=None, by_vi=BY_VI, own_only=s.role == "officer")
    headers, body = rep.table("vi")
    return page.render(request, "desk_ratings.html", active=_active(request), title="Báo cáo đánh giá",
                       values=query, rep=rep, headers=headers, body=body, by_vi=BY_VI, qs=urlencode(query),
                       own_only=s.role == "officer", satisfied_col=_satisfied_col(rep, headers),
                       level_labels=[levels_mod.label(c) for c in rep.levels])


def _active(request: Request) -> str:
    return "/desks" if access.can(page.session(request).role, "desks.view") else "/reports"


def _satisfied_col(rep, headers: list[str]) -> int | None:
    return headers.index("Tỷ lệ hài lòng (%)") if "Tỷ lệ hài lòng (%)" in headers else None


def _download(request: Request, fmt: str):
    try:
        query, rep = _report_query(request, _params(request))
        content = reports_mod.ratings_file(rep, fmt)
    except ValueError as e:
        return page.render(request, "desk_ratings.html", status_code=422, active=_active(request),
                           title="Báo cáo đánh giá", error=f"Không lập được báo cáo: {e}", values=_params(request),
                           rep=None, by_vi=BY_VI, own_only=page.session(request).role == "officer")
    s = page.session(request)
    who = f"-{s.user.get('staff_id')}" if s.role == "officer" else ""
    name = f"danh-gia-{rep.by}{who}-{rep.day_from}-{rep.day_to}.{fmt}"
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
             else "text/csv; charset=utf-8")
    return Response(content=content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/desks/ratings.xlsx")
@access.requires("ratings.view", narrowed=True)
def ratings_xlsx(request: Request):
    return _download(request, "xlsx")


@router.get("/desks/ratings.csv")
@access.requires("ratings.view", narrowed=True)
def ratings_csv(request: Request):
    return _download(request, "csv")
