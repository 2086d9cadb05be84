"""Nhân sự: staff, their cards and their fingers, with live enrolment progress.

Each route is one call into ``congso.gateway.staff`` or
``congso.gateway.enrolment`` (the calls ``congso staff``, ``card`` and
``enroll`` make) and one audit row per change. Enrolling needs the person's
signed consent, recorded (``finger_consents``) before the command is queued;
the progress page polls a fragment fed by the door's ``progress`` messages.

Staff data as the law asks (Law 91/2025/QH15): the consent checkbox shows
the text being agreed to (``vocab.consent``) and records which one
(``text_id``); after a deactivation the person's page lists the doors that
have not yet confirmed deleting their fingerprint (``privacy.pending_deletions``,
a fragment refreshed until it is empty); the admin downloads everything held
about one person as JSON (``privacy.export_person``, a subject-access request).
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ...gateway import enrolment, privacy
from ...gateway import staff as lib
from ...vocab import consent as consent_vocab
from .. import access, page

router = APIRouter()

IMPORT_LIMIT = 20 * 1024 * 1024
UNKNOWN_DAYS = 30
UNKNOWN_SHOWN = 20
CONSENT_TEXT = "Cán bộ đã ký đồng ý cho lưu vân tay"

STEP_VI = {
    "queued": "Đang chờ gửi lệnh tới cổng",
    "sent": "Đã gửi lệnh tới cổng, chờ cổng bắt đầu",
    "place": "Đặt ngón tay lên đầu đọc",
    "lift": "Nhấc ngón tay ra",
    "place_again": "Đặt lại ngón tay",
    "stored": "Đã lưu vân tay: nhấc ngón tay ra",  # the door answers once the finger is lifted
}
STEP_ORDER = ("queued", "sent", "place", "lift", "place_again", "stored")


def _vi_error(e: Exception) -> str:
    """A library error as a Vietnamese sentence with the English detail."""
    return f"Không lưu được: {e}"


def _door_error(detail: str) -> str:
    """What the door said, in Vietnamese first (the English detail kept)."""
    m = re.search(r"no finger within ([\d.]+) s", detail)
    if m:
        return f"Không thấy ngón tay trong {m.group(1)} giây. Hãy làm lại. ({detail})"
    m = re.search(r"already enrolled on this door \(slot (\d+)\)", detail)
    if m:
        return f"Ngón tay này đã có trên cổng này (vị trí {m.group(1)}). ({detail})"
    if "expired" in detail:
        return f"Hết hạn: cổng chưa nhận được lệnh (cổng hoặc gateway không chạy?). ({detail})"
    if "no reply" in detail:
        return f"Cổng không trả lời (cổng có đang trực tuyến không?). ({detail})"
    return f"Cổng báo lỗi: {detail}"


def _person_or_404(request: Request, staff_id: str) -> dict:
    person = lib.get(page.db(request), staff_id)
    if person is None:
        raise HTTPException(404, f"no staff member {staff_id!r}")
    return person


def _url(staff_id: str) -> str:
    return f"/staff/{quote(staff_id, safe='')}"


# -- the list -------------------------------------------------------------------------
@router.get("/staff")
@access.requires("staff.view")
def staff_list(request: Request, q: str | None = None, all: str | None = None):
    return _list(request, q, all == "1")


def _list(request: Request, q: str | None, include_inactive: bool, status_code: int = 200, **extra):
    db = page.db(request)
    number = page.page_number(request.query_params.get("page"))
    q = (q or "").strip()[:100]
    rows, total = lib.search(db, q, include_inactive, number, page.PAGE_SIZE)
    pages = max(1, -(-total // page.PAGE_SIZE))
    args = {k: v for k, v in (("q", q), ("all", "1" if include_inactive else "")) if v}
    base = "/staff?" + (urlencode(args) + "&" if args else "")
    unknown = lib.unknown_cards_recent(db, page.console(request).today(), UNKNOWN_DAYS)[:UNKNOWN_SHOWN]
    return page.render(request, "staff.html", status_code=status_code, active="/staff", title="Nhân sự", rows=rows,
                       total=total, q=q, include_inactive=include_inactive, page=number, pages=pages, base=base,
                       unknown=unknown, unknown_days=UNKNOWN_DAYS, choices=_choices(db) if unknown else [], **extra)


def _choices(db) -> list[dict]:
    return list(db.query("SELECT staff_id, name FROM staff WHERE active = 1 ORDER BY staff_id LIMIT 5000"))


# -- add, edit ----------------------------------------------------------------------------
def _groups(request: Request) -> list[str]:
    """The schedule groups of [workrules] groups (none when the settings have none, or a bad one)."""
    from ...gateway import timesheet

    try:
        return sorted(timesheet.WorkRules.from_settings(page.console(request).settings.workrules).groups)
    except ValueError:
        return []


@router.get("/staff/new")
@access.requires("staff.edit")
def new_form(request: Request):
    return page.render(request, "staff_form.html", active="/staff", title="Thêm cán bộ", values={}, editing=None,
                       groups=_groups(request))


@router.post("/staff/new")
@access.requires("staff.edit")
async def add(request: Request):
    values = await page.form(request)
    db = page.db(request)
    groups = _groups(request)
    try:
        schedule = lib.check_schedule(values.get("schedule"), groups)
        sid = lib.add(db, values.get("staff_id", ""), values.get("name", ""), values.get("department") or None,
                      values.get("position") or None, page.console(request).tz)
        lib.set_schedule(db, sid, schedule, groups)
    except ValueError as e:
        return page.render(request, "staff_form.html", status_code=422, active="/staff", title="Thêm cán bộ",
                           error=_vi_error(e), values=values, editing=None, groups=groups)
    person = lib.get(db, sid)
    page.audit(request, "staff.add", sid, {"name": person["name"], "department": person["department"],
                                           **({"schedule": schedule} if schedule else {})})
    return page.done(request, _url(sid), f"Đã thêm cán bộ {sid}.")


@router.get("/staff/import")
@access.requires("staff.edit")
def import_form(request: Request):
    return page.render(request, "staff_import.html", active="/staff", title="Nhập danh sách cán bộ", errors=[])


@router.post("/staff/import")
@access.requires("staff.edit")
async def import_file(request: Request):
    def failed(message: str, errors: list[str] | None = None):
        return page.render(request, "staff_import.html", status_code=422, active="/staff",
                           title="Nhập danh sách cán bộ", error=message, errors=errors or [])

    try:
        uploaded = await page.upload(request, "file", IMPORT_LIMIT)
    except ValueError as e:
        return failed(f"Không nhập được: {e}. Không có gì được lưu.")
    if uploaded is None:
        return failed("Hãy chọn một tệp CSV hoặc XLSX.")
    name, data = uploaded
    try:
        added, updated = lib.import_csv(page.db(request), data, page.console(request).tz, name)
    except ValueError as e:
        lines = [line for line in str(e).splitlines() if line.strip()]
        head, rest = (lines[0], lines[1:]) if len(lines) > 1 else (lines[0] if lines else str(e), [])
        return failed(f"Tệp {name} có lỗi, không có gì được lưu: {head}", rest)
    page.audit(request, "staff.import", None, {"file": name, "added": added, "updated": updated})
    return page.done(request, "/staff", f"Đã nhập {added + updated} cán bộ từ {name} ({added} mới, {updated} cập nhật).")


@router.post("/staff/cards/assign")
@access.requires("staff.edit")
async def assign_unknown(request: Request):
    """The one-click form of an unknown tap: give that card to the person picked."""
    values = await page.form(request)
    staff_id = _picked(values.get("staff_id", ""))
    try:
        uid = lib.assign_card(page.db(request), staff_id, values.get("uid", ""), page.console(request).tz)
    except ValueError as e:
        return _list(request, None, False, 422, error=f"Không gán được thẻ {values.get('uid', '')}: {e}",
                     picked={values.get("uid", ""): values.get("staff_id", "")})
    page.audit(request, "staff.card_assign", staff_id, {"uid": uid, "from": "unknown"})
    return page.done(request, "/staff", f"Đã gán thẻ {uid} cho {staff_id}.")


def _picked(text: str) -> str:
    """The staff id of a pick ("NV001" or "NV001 · Nguyễn Thị Hà", as the list offers it)."""
    return (text or "").split(" · ", 1)[0].strip()


# -- one person -----------------------------------------------------------------------------
@router.get("/staff/{staff_id}")
@access.requires("staff.view")
def person_page(request: Request, staff_id: str):
    return _person(request, staff_id)


def _person(request: Request, staff_id: str, status_code: int = 200, **extra):
    db = page.db(request)
    person = _person_or_404(request, staff_id)
    cards = [r[0] for r in db.execute("SELECT uid FROM staff_cards WHERE staff_id = ? ORDER BY uid", (staff_id,))]
    fingers = list(db.query("SELECT node_id, slot, enrolled_at FROM finger_slots WHERE staff_id = ? "
                            "ORDER BY node_id, slot", [staff_id]))
    extra.setdefault("values", {})
    return page.render(request, "staff_person.html", status_code=status_code, active="/staff",
                       title=f"Cán bộ {person['name']}", person=person, cards=cards, fingers=fingers,
                       doors=lib.attendance_doors(db), consent=lib.consent(db, staff_id),
                       consent_text=CONSENT_TEXT, consent_body=consent_vocab.text(consent_vocab.CURRENT),
                       consent_id=consent_vocab.CURRENT, **_deletions(request, person), **extra)


# -- fingerprints still to delete (after a deactivation, or one finger at one door) -----------
OUTCOME_VI = {
    "not asked": "chưa gửi lệnh",
    "queued": "đang chờ gửi lệnh tới cổng",
    "sent, no answer yet": "đã gửi lệnh, cổng chưa trả lời",
    "no reply": "cổng không trả lời, sẽ hỏi lại",
    "expired": "cổng không nhận được lệnh (ngoại tuyến?), sẽ hỏi lại khi cổng trực tuyến",
    "refused": "cổng từ chối, sẽ hỏi lại",
}
DELETIONS_EVERY_S = 2


def _outcome_vi(text: str) -> str:
    if text in OUTCOME_VI:
        return OUTCOME_VI[text]
    if text.startswith("refused: "):
        return f"cổng từ chối ({text[len('refused: '):]}), sẽ hỏi lại"
    return text


def _deletions(request: Request, person: dict) -> dict:
    """The doors still to confirm deleting this person's fingers, and whether every one has."""
    db = page.db(request)
    rows = [{**r, "outcome_vi": _outcome_vi(str(r.get("last_outcome") or ""))}
            for r in privacy.pending_deletions(db, person["staff_id"])]
    asked = db.execute("SELECT count(*) FROM finger_deletions WHERE staff_id = ?", (person["staff_id"],)).fetchone()[0]
    return {"deletions": rows, "deletions_asked": asked, "deletions_every": DELETIONS_EVERY_S}


@router.get("/staff/{staff_id}/deletions")
@access.requires("staff.view")
def deletions_fragment(request: Request, staff_id: str):
    """The pending deletions alone, polled every 2 s; 286 once none is left (the script stops)."""
    person = _person_or_404(request, staff_id)
    view = _deletions(request, person)
    response: HTMLResponse = page.render(request, "staff_deletions.html", person=person, **view)
    if not view["deletions"]:
        response.status_code = 286
    return response


# -- everything held about one person (a subject-access request) ------------------------------
_FILE_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@router.get("/staff/{staff_id}/export.json")
@access.requires("staff.export")
def export_data(request: Request, staff_id: str):
    _person_or_404(request, staff_id)
    try:
        data = privacy.export_person(page.db(request), staff_id)
    except ValueError as e:
        raise HTTPException(404, str(e)) from None
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode("utf-8")
    page.audit(request, "staff.export_data", staff_id, {"bytes": len(body),
                                                        "events": len(data.get("attendance_events") or [])})
    name = _FILE_SAFE.sub("-", staff_id).strip("-") or "nhan-su"
    return Response(content=body, media_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="du-lieu-ca-nhan-{name}.json"',
                             "Cache-Control": "no-store"})


@router.get("/staff/{staff_id}/edit")
@access.requires("staff.edit")
def edit_form(request: Request, staff_id: str):
    person = _person_or_404(request, staff_id)
    return page.render(request, "staff_form.html", active="/staff", title=f"Sửa {person['staff_id']}",
                       values=person, editing=person, groups=_groups(request))


@router.post("/staff/{staff_id}/edit")
@access.requires("staff.edit")
async def edit(request: Request, staff_id: str):
    person = _person_or_404(request, staff_id)
    values = await page.form(request)
    groups = _groups(request)
    try:
        schedule = lib.check_schedule(values.get("schedule"), groups) if groups else person.get("schedule")
        lib.update(page.db(request), staff_id, values.get("name", ""), values.get("department") or None,
                   values.get("position") or None)
        if groups:
            lib.set_schedule(page.db(request), staff_id, schedule, groups)
    except ValueError as e:
        return page.render(request, "staff_form.html", status_code=422, active="/staff",
                           title=f"Sửa {staff_id}", error=_vi_error(e), values={**values, "staff_id": staff_id},
                           editing=person, groups=groups)
    after = lib.get(page.db(request), staff_id)
    fields = ("name", "department", "position", "schedule")
    page.audit(request, "staff.update", staff_id, {
        "before": {k: person.get(k) for k in fields}, "after": {k: after.get(k) for k in fields}})
    return page.done(request, _url(staff_id), "Đã lưu thay đổi.")


def _fingers_deleted(request: Request, staff_id: str, call, action: str, said: str):
    """Deactivation and a withdrawn consent alike: the library call queues a deletion at each door holding a
    finger of theirs; one audit row, and the page says how many are on their way."""
    _person_or_404(request, staff_id)
    try:
        slots = call(page.db(request), staff_id, page.console(request).tz)
    except ValueError as e:
        return _person(request, staff_id, 422, error=_vi_error(e))
    page.audit(request, action, staff_id, {"fingers_deleted": [f"{n}:{s}" for n, s in slots]})
    if slots:
        said += f" Đang xoá {len(slots)} vân tay ở các cổng."
    return page.done(request, _url(staff_id), said)


@router.post("/staff/{staff_id}/deactivate")
@access.requires("staff.edit")
async def deactivate(request: Request, staff_id: str):
    return _fingers_deleted(request, staff_id, lib.deactivate, "staff.deactivate",
                            f"Đã cho {staff_id} nghỉ: các cổng không nhận người này nữa.")


@router.post("/staff/{staff_id}/consent/withdraw")
@access.requires("staff.edit")
async def withdraw_consent(request: Request, staff_id: str):
    """The person withdraws their consent (Law 91/2025/QH15): their fingers are deleted at every door."""
    return _fingers_deleted(request, staff_id, lib.withdraw_consent, "staff.consent_withdraw",
                            f"Đã ghi nhận {staff_id} rút lại đồng ý.")


@router.post("/staff/{staff_id}/cards")
@access.requires("staff.edit")
async def assign_card(request: Request, staff_id: str):
    _person_or_404(request, staff_id)
    values = await page.form(request)
    try:
        uid = lib.assign_card(page.db(request), staff_id, values.get("uid", ""), page.console(request).tz)
    except ValueError as e:
        return _person(request, staff_id, 422, error=f"Không gán được thẻ: {e}", values=values)
    page.audit(request, "staff.card_assign", staff_id, {"uid": uid})
    return page.done(request, _url(staff_id), f"Đã gán thẻ {uid}.")


@router.post("/staff/{staff_id}/cards/{uid}/remove")
@access.requires("staff.edit")
async def remove_card(request: Request, staff_id: str, uid: str):
    db = page.db(request)
    _person_or_404(request, staff_id)
    owner = db.execute("SELECT staff_id FROM staff_cards WHERE uid = ?", (uid.upper(),)).fetchone()
    if owner is None or owner[0] != staff_id:
        return _person(request, staff_id, 422, error=f"Thẻ {uid} không thuộc {staff_id}.")
    try:
        uid = lib.remove_card(db, uid)
    except ValueError as e:
        return _person(request, staff_id, 422, error=f"Không gỡ được thẻ: {e}")
    page.audit(request, "staff.card_remove", staff_id, {"uid": uid})
    return page.done(request, _url(staff_id), f"Đã gỡ thẻ {uid}.")


@router.post("/staff/{staff_id}/fingers/{node_id}/{slot}/delete")
@access.requires("staff.edit")
async def delete_finger(request: Request, staff_id: str, node_id: str, slot: int):
    db = page.db(request)
    _person_or_404(request, staff_id)
    owner = db.execute("SELECT staff_id FROM finger_slots WHERE node_id = ? AND slot = ?", (node_id, slot)).fetchone()
    if owner is None or owner[0] != staff_id:
        return _person(request, staff_id, 422, error=f"{staff_id} không có vân tay ở {node_id} vị trí {slot}.")
    try:
        cmd_id = lib.delete_finger(db, node_id, slot, page.console(request).tz)
    except ValueError as e:
        return _person(request, staff_id, 422, error=f"Không xoá được vân tay: {e}")
    page.audit(request, "staff.finger_delete", staff_id, {"node": node_id, "slot": slot, "cmd_id": cmd_id})
    return page.done(request, _url(staff_id), f"Đã gửi lệnh xoá vân tay ở {node_id} (vị trí {slot}).")


# -- enrolment --------------------------------------------------------------------------------
@router.post("/staff/{staff_id}/enrol")
@access.requires("staff.edit")
async def enrol(request: Request, staff_id: str):
    db = page.db(request)
    person = _person_or_404(request, staff_id)
    values = await page.form(request)
    node = values.get("node", "")
    if node not in lib.attendance_doors(db):
        return _person(request, staff_id, 422, error="Hãy chọn một cổng chấm công có trong danh sách.", values=values)
    if values.get("consent") != "yes":
        return _person(request, staff_id, 422,
                       error=f"Chưa đánh dấu «{CONSENT_TEXT}». Vân tay là dữ liệu sinh trắc: cần cán bộ ký đồng ý trước.",
                       values=values)
    if not person["active"]:
        return _person(request, staff_id, 422, error=f"{staff_id} đã nghỉ: hãy thêm lại trước khi lấy vân tay.",
                       values=values)
    text_id = values.get("text_id") or consent_vocab.CURRENT
    if text_id != consent_vocab.CURRENT:
        return _person(request, staff_id, 422, values={**values, "consent": ""},
                       error="Nội dung giấy đồng ý đã thay đổi từ lúc mở trang. Hãy đọc lại nội dung dưới đây, "
                             "cho cán bộ ký lại rồi đánh dấu.")
    who = page.actor(request)[0]
    try:
        lib.record_consent(db, staff_id, who, values.get("note") or None, page.console(request).tz, text_id=text_id)
    except ValueError as e:
        return _person(request, staff_id, 422, error=_vi_error(e), values=values)
    page.audit(request, "staff.finger_consent", staff_id, {"note": values.get("note") or None, "text_id": text_id})
    try:
        cmd_id = enrolment.start(db, node, staff_id, tz=page.console(request).tz, require_consent=True)
    except ValueError as e:
        return _person(request, staff_id, 422, error=_vi_error(e), values=values)
    page.audit(request, "staff.finger_enrol", staff_id, {"node": node, "cmd_id": cmd_id})
    return page.done(request, f"{_url(staff_id)}/enrol/{cmd_id}")


def _progress_or_404(request: Request, staff_id: str, cmd_id: str) -> enrolment.Progress:
    found = enrolment.progress(page.db(request), cmd_id)
    if found is None or found.staff_id != staff_id:
        raise HTTPException(404, f"no enrolment {cmd_id} of {staff_id}")
    return found


def _view(request: Request, p: enrolment.Progress) -> dict:
    """What the progress part shows: every step, done, now or still to come."""
    reached = ["queued"] + (["sent"] if p.state != "queued" else []) + list(p.steps)
    if p.steps and "sent" not in reached:
        reached.insert(1, "sent")
    last = reached[-1]
    items = []
    for step in STEP_ORDER:
        label = STEP_VI[step]
        if step == "stored" and p.slot is not None:
            label = f"Đã lưu ở vị trí {p.slot}"
        if step == "sent":
            label = f"Đã gửi lệnh tới cổng {p.node_id}"
        if step == last:
            state = "failed" if p.error else ("done" if p.finished else "now")
        else:
            state = "done" if step in reached else "todo"
        items.append({"step": step, "label": label, "state": state})
    current = next((i for i in items if i["state"] == "now"), None)
    carried = {}
    if p.slot is not None:
        carried = {n: s for n, s in enrolment.carried(page.db(request), p.staff_id).items() if n != p.node_id}
    return {"p": p, "items": items, "current": current, "last": last,
            "error": _door_error(p.error) if p.error else None, "carried": carried,
            "doors": lib.attendance_doors(page.db(request))}


@router.get("/staff/{staff_id}/enrol/{cmd_id}")
@access.requires("staff.view")
def enrol_page(request: Request, staff_id: str, cmd_id: str):
    person = _person_or_404(request, staff_id)
    p = _progress_or_404(request, staff_id, cmd_id)
    return page.render(request, "staff_enrol.html", active="/staff", title=f"Lấy vân tay: {person['name']}",
                       person=person, **_view(request, p))


@router.get("/staff/{staff_id}/enrol/{cmd_id}/progress")
@access.requires("staff.view")
def enrol_progress(request: Request, staff_id: str, cmd_id: str):
    """The progress part alone, polled every second; 286 once finished (the script stops)."""
    _person_or_404(request, staff_id)
    p = _progress_or_404(request, staff_id, cmd_id)
    view = _view(request, p)
    response: HTMLResponse = page.render(request, "staff_enrol_progress.html", **view)
    if p.finished:
        response.status_code = 286
    return response

