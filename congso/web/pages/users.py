"""*Người dùng*: console users, API tokens and the audit log (admin only).

Each route is one call into ``congso.gateway.accounts`` (the same calls
``congso web user`` and ``congso web token`` make) and one audit row.
A token's text is shown once, on the page that answers its creation (not a
redirect: a reload of the list never shows it again); only its hash is kept.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from ...gateway import accounts
from ...gateway import audit as audit_mod
from ...gateway import staff as staff_mod
from .. import access, page

router = APIRouter()

AUDIT_PAGE = 50

SCOPE_VI = {
    "dossiers:read": "Đọc hồ sơ",
    "dossiers:write": "Cập nhật hồ sơ",
    "calendar:write": "Cập nhật lịch công tác",
    "reports:read": "Đọc báo cáo (bảng chấm công)",
}


# What an audit row's action means, for the head of office (the code is shown beside it).
ACTION_VI = {
    "user.add": "Thêm người dùng", "user.disable": "Khoá người dùng", "user.enable": "Mở khoá người dùng",
    "user.password": "Đặt lại mật khẩu", "user.role": "Đổi vai trò", "user.desks": "Giao quầy",
    "token.create": "Tạo mã truy cập", "token.revoke": "Thu hồi mã truy cập",
    "staff.add": "Thêm nhân viên", "staff.update": "Sửa nhân viên", "staff.import": "Nhập danh sách nhân viên",
    "staff.deactivate": "Cho nghỉ việc", "staff.card_assign": "Giao thẻ", "staff.card_remove": "Thu thẻ",
    "staff.finger_enrol": "Lấy vân tay", "staff.finger_delete": "Xoá vân tay",
    "staff.finger_consent": "Ghi nhận đồng ý lấy vân tay",
    "holiday.add": "Thêm ngày lễ", "holiday.remove": "Bỏ ngày lễ",
    "dossiers.add": "Thêm hồ sơ", "dossiers.create": "Thêm hồ sơ (API)", "dossiers.edit": "Sửa hồ sơ",
    "dossiers.status": "Đổi trạng thái hồ sơ", "dossiers.import": "Nhập hồ sơ",
    "calendar.add": "Thêm lịch công tác", "calendar.edit": "Sửa lịch công tác",
    "calendar.remove": "Xoá lịch công tác", "calendar.import": "Nhập lịch công tác",
    "announcements.add": "Thêm thông báo", "announcements.edit": "Sửa thông báo",
    "announcements.remove": "Xoá thông báo", "desks.open": "Mở phiên đánh giá", "desks.close": "Đóng phiên đánh giá",
    "node.identify": "Nhận diện thiết bị", "node.reload": "Nạp lại thiết bị", "node.screenshot": "Chụp màn hình",
    "node.forget": "Xoá thiết bị khỏi danh sách", "gateway.restore": "Khôi phục cơ sở dữ liệu",
}


def _officer_needs_staff(role: str, staff_id: str | None) -> None:
    # The page asks for it up front (the CLI only warns): an officer's votes and
    # desk sessions are counted for their staff id.
    if role == "officer" and not staff_id:
        raise accounts.AccountError("an officer must be tied to their staff id: votes are counted for that person")


def _vi(e: Exception) -> str:
    """A Vietnamese sentence for a library error, with the English detail kept."""
    text = str(e)
    known = [
        ("at least", f"Mật khẩu phải có ít nhất {accounts.MIN_PASSWORD} ký tự."),
        ("at most", "Mật khẩu quá dài."),
        ("control characters", "Mật khẩu không được chứa ký tự điều khiển."),
        ("last active admin", "Đây là quản trị viên cuối cùng còn hoạt động: hãy cho người khác quyền quản trị trước."),
        ("already exists", "Tên đăng nhập này đã có."),
        ("user name", "Tên đăng nhập chỉ gồm chữ, số, '.', '_' hoặc '-' (tối đa 32 ký tự), bắt đầu bằng chữ hoặc số."),
        ("officer must be tied", "Cán bộ một cửa phải gắn với mã nhân viên của mình (phiếu đánh giá tính cho người đó)."),
        ("no staff member", "Không có nhân viên với mã này."),
        ("exists: revoke it first", "Đã có mã truy cập còn hiệu lực với tên này: thu hồi nó trước."),
        ("scope", "Hãy chọn ít nhất một quyền hợp lệ cho mã truy cập."),
        ("no live token", "Không có mã truy cập còn hiệu lực với tên này."),
        ("no user", "Không có người dùng này."),
    ]
    for needle, sentence in known:
        if needle in text:
            return f"{sentence} ({text})"
    return f"Không lưu được. ({text})"


def _users_page(request: Request, status_code: int = 200, error: str | None = None, values: dict | None = None,
                token_values: dict | None = None):
    db = page.db(request)
    return page.render(
        request, "users.html", status_code=status_code, active="/users", title="Người dùng", error=error,
        users=accounts.list_users(db), tokens=accounts.list_tokens(db), roles=accounts.ROLES,
        scopes=accounts.SCOPES, scope_vi=SCOPE_VI, staff=staff_mod.list_staff(db), values=values or {},
        token_values=token_values or {}, min_password=accounts.MIN_PASSWORD)


def _user_or_404(request: Request, name: str) -> dict:
    row = accounts.get_user(page.db(request), name)
    if row is None:
        from fastapi import HTTPException
        raise HTTPException(404, "no such user")
    return row


def _edit_page(request: Request, name: str, status_code: int = 200, error: str | None = None):
    db = page.db(request)
    row = _user_or_404(request, name)
    user = {**accounts.public_user(row), "desks": accounts.user_desks(db, name)}
    return page.render(request, "user_edit.html", status_code=status_code, active="/users",
                       title=f"Người dùng {name}", error=error, user=user, roles=accounts.ROLES,
                       staff=staff_mod.list_staff(db), min_password=accounts.MIN_PASSWORD,
                       is_self=page.session(request).name == name)


def _desk_list(text: str) -> list[str]:
    return [d for d in re.split(r"[,;\s]+", text or "") if d]


def _passwords(values: dict) -> str:
    password, again = values.get("password") or "", values.get("password2") or ""
    if password != again:
        raise accounts.AccountError("the two passwords differ")
    return password


@router.get("/users")
@access.requires("users.manage")
def users(request: Request):
    return _users_page(request)


@router.post("/users/new")
@access.requires("users.manage")
async def add_user(request: Request):
    values = await page.form(request)
    db = page.db(request)
    keep = {k: v for k, v in values.items() if k not in ("password", "password2", "csrf_token")}
    name, role = (values.get("name") or "").strip(), values.get("role") or ""
    staff_id = (values.get("staff_id") or "").strip() or None
    desks = _desk_list(values.get("desks", ""))
    try:
        password = _passwords(values)
        _officer_needs_staff(role, staff_id)
        row = accounts.add_user(db, name, role, password, staff_id)
        if desks:
            desks = accounts.set_desks(db, row["name"], desks)
    except accounts.AccountError as e:
        message = "Hai lần nhập mật khẩu không khớp." if "differ" in str(e) else _vi(e)
        return _users_page(request, 422, message, values=keep)
    page.audit(request, "user.add", row["name"], {"role": role, "staff_id": staff_id, "desks": desks})
    return page.done(request, "/users", f"Đã thêm người dùng {row['name']} ({accounts.ROLE_VI[role]}).")


@router.get("/users/audit")
@access.requires("audit.view")
def audit_log(request: Request, q: str = "", actor: str = "", day_from: str = "", day_to: str = ""):
    number = page.page_number(request.query_params.get("page"))
    error = None
    days = {}
    for key, value in (("day_from", day_from), ("day_to", day_to)):
        try:
            days[key] = _day(value)
        except ValueError:
            days[key] = None
            error = f"Ngày không hợp lệ: {value} (dd/mm/yyyy)."
    q, actor = q.strip()[:200], actor.strip()[:100]
    rows, total = audit_mod.search(page.db(request), q or None, actor=actor or None, day_from=days["day_from"],
                                   day_to=days["day_to"], limit=AUDIT_PAGE, offset=(number - 1) * AUDIT_PAGE)
    pages = max(1, (total + AUDIT_PAGE - 1) // AUDIT_PAGE)
    args = {k: v for k, v in (("q", q), ("actor", actor), ("day_from", day_from), ("day_to", day_to)) if v}
    base = "/users/audit?" + (urlencode(args) + "&" if args else "")
    return page.render(request, "audit.html", status_code=422 if error else 200, active="/users",
                       title="Nhật ký thay đổi", error=error, rows=rows, total=total, page=number, pages=pages,
                       base=base, q=q, actor=actor, day_from=day_from, day_to=day_to, action_vi=ACTION_VI)


def _day(text: str) -> str | None:
    """YYYY-MM-DD (a date field) or dd/mm/yyyy (typed) -> YYYY-MM-DD."""
    text = (text or "").strip()
    if not text:
        return None
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if m:
        return date(int(m[3]), int(m[2]), int(m[1])).isoformat()
    return date.fromisoformat(text).isoformat()


@router.post("/users/tokens/new")
@access.requires("users.manage")
async def create_token(request: Request):
    values = await page.form(request)
    data = await request.form()
    chosen = [s for s in data.getlist("scope") if isinstance(s, str)]
    name = (values.get("name") or "").strip()
    try:
        text = accounts.create_token(page.db(request), name, chosen)
    except accounts.AccountError as e:
        return _users_page(request, 422, _vi(e), token_values={"name": name, "scopes": chosen})
    scopes = accounts.parse_scopes(chosen)
    page.audit(request, "token.create", name, {"scopes": ",".join(scopes)})
    return page.render(request, "token_created.html", active="/users", title="Mã truy cập mới", name=name,
                       token=text, scopes=scopes, scope_vi=SCOPE_VI)


@router.post("/users/tokens/{name}/revoke")
@access.requires("users.manage")
def revoke_token(request: Request, name: str):
    try:
        accounts.revoke_token(page.db(request), name)
    except accounts.AccountError as e:
        return _users_page(request, 422, _vi(e))
    page.audit(request, "token.revoke", name)
    return page.done(request, "/users", f"Đã thu hồi mã truy cập {name}: mọi yêu cầu dùng nó bị từ chối từ bây giờ.")


@router.get("/users/{name}/edit")
@access.requires("users.manage")
def edit_user(request: Request, name: str):
    return _edit_page(request, name)


@router.post("/users/{name}/disable")
@access.requires("users.manage")
def disable_user(request: Request, name: str):
    _user_or_404(request, name)
    try:
        accounts.set_active(page.db(request), name, False)
    except accounts.AccountError as e:
        return _edit_page(request, name, 422, _vi(e))
    page.audit(request, "user.disable", name)
    if page.session(request).name == name:
        return page.done(request, "/login", "Tài khoản của bạn đã bị khoá.")
    return page.done(request, "/users", f"Đã khoá {name}: các phiên đăng nhập của người này kết thúc ngay.")


@router.post("/users/{name}/enable")
@access.requires("users.manage")
def enable_user(request: Request, name: str):
    _user_or_404(request, name)
    accounts.set_active(page.db(request), name, True)
    page.audit(request, "user.enable", name)
    return page.done(request, "/users", f"Đã mở khoá {name}.")


@router.post("/users/{name}/password")
@access.requires("users.manage")
async def reset_password(request: Request, name: str):
    values = await page.form(request)
    _user_or_404(request, name)
    try:
        accounts.set_password(page.db(request), name, _passwords(values))
    except accounts.AccountError as e:
        message = "Hai lần nhập mật khẩu không khớp." if "differ" in str(e) else _vi(e)
        return _edit_page(request, name, 422, message)
    page.audit(request, "user.password", name)
    if page.session(request).name == name:
        return page.done(request, "/login", "Đã đổi mật khẩu: hãy đăng nhập lại.")
    return page.done(request, f"/users/{name}/edit", f"Đã đặt lại mật khẩu của {name}; các phiên đăng nhập của người này kết thúc.")


@router.post("/users/{name}/role")
@access.requires("users.manage")
async def change_role(request: Request, name: str):
    values = await page.form(request)
    row = _user_or_404(request, name)
    role = values.get("role") or ""
    staff_id = (values.get("staff_id") or "").strip()
    try:
        _officer_needs_staff(role, staff_id if "staff_id" in values else row["staff_id"])
        accounts.set_role(page.db(request), name, role, staff_id or None if "staff_id" not in values else staff_id)
    except accounts.AccountError as e:
        return _edit_page(request, name, 422, _vi(e))
    page.audit(request, "user.role", name, {"role": role, "from": row["role"], "staff_id": staff_id or None})
    if page.session(request).name == name:
        return page.done(request, "/login", "Đã đổi vai trò: hãy đăng nhập lại.")
    return page.done(request, f"/users/{name}/edit", f"{name} giờ là {accounts.ROLE_VI[role]}; người này đăng nhập lại.")


@router.post("/users/{name}/desks")
@access.requires("users.manage")
async def set_desks(request: Request, name: str):
    values = await page.form(request)
    _user_or_404(request, name)
    try:
        kept = accounts.set_desks(page.db(request), name, _desk_list(values.get("desks", "")))
    except accounts.AccountError as e:
        return _edit_page(request, name, 422, _vi(e))
    page.audit(request, "user.desks", name, {"desks": kept})
    return page.done(request, f"/users/{name}/edit", f"Quầy của {name}: {', '.join(kept) or '(không có)'}.")
