"""The integration API (``../shared/OFFICE.md``: Integration API): ``/api/v1/...``.

For one-stop systems and nightly scripts, with ``Authorization: Bearer
<token>`` (``congso web token create NAME --scope ...``); a logged-in user
may call it too, with the ``X-CSRF-Token`` header on a change. The guard in
``app.py`` answers 401 (no or unknown token), 403 (wrong scope) and 413
(a body over 64 KiB). Every error is JSON ``{"error": "<English>",
"field": "<name or null>"}``; every change writes one audit row with the
token's name as the actor. docs/api.md is the integrator's page.
"""

from __future__ import annotations

import io
import json

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from ...gateway import dossiers, timesheet, timesheet_form, work_calendar
from ...vocab.dossiers import STATUSES
from .. import access, page

# Declares the bearer scheme in the OpenAPI schema (the guard does the checking).
bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="A token from `congso web token create NAME --scope SCOPE[,SCOPE...]`.")
router = APIRouter(prefix="/api/v1", dependencies=[Depends(bearer)], tags=["integration"])


class ApiError(HTTPException):
    """An error in the API's shape: ``{"error": ..., "field": ...}`` (app.py's handler reads ``field``)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(status, message)
        self.field = field


# -- the schema ---------------------------------------------------------------------------
ERROR_SCHEMA = {"type": "object", "required": ["error", "field"], "properties": {
    "error": {"type": "string", "description": "What is wrong, in English."},
    "field": {"type": ["string", "null"], "description": "The field at fault, or null."}}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


COMMON_ERRORS = {401: _error("No token, or an unknown or revoked one."),
                 403: _error("The token lacks the scope (or a session's CSRF header is missing)."),
                 422: _error("A bad field: nothing was stored. `field` names it.")}
TIME = {"type": "string", "description": "RFC 3339 with its offset, e.g. 2026-11-23T14:30:00+07:00 (a date alone: due by the end of that day)."}
DOSSIER_IN = {"type": "object", "required": ["applicant", "procedure", "received_at", "due_at", "status"],
              "additionalProperties": False, "properties": {
    "applicant": {"type": "string", "description": "Full name (shown masked on the public board)."},
    "procedure": {"type": "string"},
    "received_at": TIME,
    "due_at": {**TIME, "type": ["string", "null"]},
    "status": {"type": "string", "enum": list(STATUSES)},
    "desk": {"type": ["string", "null"]},
    "online": {"type": "boolean", "description": "Submitted through the online public-service portal."}}}
DOSSIER_OUT = {"type": "object", "properties": {
    **{k: v for k, v in DOSSIER_IN["properties"].items()}, "code": {"type": "string"},
    "overdue": {"type": "boolean"}, "status_changed_at": {"type": "string"}, "updated_at": {"type": "string"}}}
CALENDAR_IN = {"type": "object", "required": ["start", "title"], "additionalProperties": False, "properties": {
    "start": {"type": "string", "description": "RFC 3339 time, or YYYY-MM-DD for an all-day entry."},
    "end": {"type": ["string", "null"]},
    "all_day": {"type": "boolean", "description": "true: only the dates of start and end count."},
    "title": {"type": "string"},
    "leaders": {"type": "array", "items": {"type": "string"}},
    "location": {"type": ["string", "null"]},
    "participants": {"type": ["string", "null"]},
    "preparer": {"type": ["string", "null"]}}}
DAY_OUT = {"type": "object", "properties": {
    "am": {"type": ["string", "null"]}, "pm": {"type": ["string", "null"]},
    "in": {"type": ["string", "null"]}, "out": {"type": ["string", "null"]},
    "late_min": {"type": "integer"}, "early_min": {"type": "integer"},
    "flags": {"type": "array", "items": {"type": "string"}}}}
MONTH_OUT = {"type": "object", "properties": {
    "v": {"type": "integer"}, "month": {"type": "string"}, "office": {"type": "string"},
    "staff": {"type": "array", "items": {"type": "object", "properties": {
        "staff_id": {"type": "string"}, "name": {"type": "string"},
        "position": {"type": "string"}, "department": {"type": "string"},
        "days": {"type": "object", "description": "Every day of the month, \"1\"..\"31\".", "additionalProperties": DAY_OUT},
        "totals": {"type": "object", "properties": {
            "absent_days": {"type": "number"}, "late_min": {"type": "integer"}, "early_min": {"type": "integer"},
            "worked_days": {"type": "number"}, "paid_leave_days": {"type": "number"},
            "unpaid_days": {"type": "number"}, "insurance_days": {"type": "number"}}}}}}}}


def _body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _ok(description: str, schema: dict | None = None, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


# -- helpers --------------------------------------------------------------------------------
async def _json_object(request: Request) -> dict:
    raw = await request.body()
    try:
        data = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError) as e:
        raise ApiError(422, f"the body is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object")
    return data


def _now(request: Request):
    return page.console(request).now()


def _tz(request: Request) -> str:
    return page.console(request).tz


# -- dossiers -------------------------------------------------------------------------------
@router.put("/dossiers/{code:path}", status_code=200, summary="Create or update one dossier",
            responses={200: _ok("Updated (or unchanged).", DOSSIER_OUT), 201: _ok("Created.", DOSSIER_OUT),
                       **COMMON_ERRORS, 413: _error("The body is over 64 KiB.")},
            openapi_extra=_body(DOSSIER_IN))
@access.requires_scope("dossiers:write")
async def put_dossier(request: Request, code: str):
    """Checked and cleaned as an import row is (NFC; a control character refused); a bad field stores nothing.
    The public board (`congso/<site>/state/dossiers`) shows the change within 5 s, the name masked."""
    fields = await _json_object(request)
    db = page.db(request)
    try:
        d, outcome = dossiers.put_outcome(db, code, fields, now=_now(request), tz=_tz(request), source="api")
    except dossiers.FieldError as e:
        raise ApiError(422, str(e), e.field) from None
    except dossiers.DossierError as e:
        raise ApiError(422, str(e)) from None
    created = outcome == "new"
    if outcome != "unchanged":  # the same register pushed again every night is no change
        page.audit(request, "dossiers.create" if created else "dossiers.update", d.code,
                   {"status": d.status, "procedure": d.procedure, "due_at": d.due_at, "desk": d.desk, "online": d.online})
    return JSONResponse(dossiers.as_json(dossiers.get(db, d.code), _now(request)), status_code=201 if created else 200)


@router.get("/dossiers", summary="List the dossiers",
            responses={200: _ok("Every dossier (or those with `status`), full fields.",
                                {"type": "array", "items": DOSSIER_OUT}), **COMMON_ERRORS})
@access.requires_scope("dossiers:read")
def list_dossiers(request: Request, status: str | None = None):
    """Newest received first; `status` one of the wire statuses."""
    if status is not None and status not in STATUSES:
        raise ApiError(422, f"status must be one of {', '.join(STATUSES)}, got {status!r}", "status")
    now = _now(request)
    rows = page.db(request).query(
        "SELECT * FROM dossiers" + (" WHERE status = ?" if status else "") + " ORDER BY received_at DESC, code",
        [status] if status else [])
    return JSONResponse([dossiers.as_json(r, now) for r in rows])


# -- reports --------------------------------------------------------------------------------
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/reports/attendance", summary="The month's timesheet",
            responses={200: {"description": "The timesheet as JSON, or with format=xlsx the workbook.",
                             "content": {"application/json": {"schema": MONTH_OUT}, XLSX: {"schema": {"type": "string", "format": "binary"}}}},
                       **COMMON_ERRORS})
@access.requires_scope("reports:read")
def attendance(request: Request, month: str | None = None, format: str = "json"):
    """`month` YYYY-MM; `format` json (the default) or xlsx."""
    if format not in ("json", "xlsx"):
        raise ApiError(422, f"format must be json or xlsx, got {format!r}", "format")
    c = page.console(request)
    try:
        first, last = timesheet.month_bounds(month or "")
        rules = timesheet.WorkRules.from_settings(c.settings.workrules)
    except ValueError as e:
        raise ApiError(422, str(e).replace("--month", "month"), "month") from None
    rep = timesheet.report(page.db(request), rules, first, last, c.tz, now=c.now())
    office = c.settings.site.name
    if format == "json":
        return JSONResponse(timesheet.month_json(rep, office))
    buf = io.BytesIO()
    timesheet_form.write_xlsx(rep, buf, timesheet_form.form_header(c.settings))
    return Response(content=buf.getvalue(), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="cham-cong-{first:%m-%Y}.xlsx"'})


# -- the work calendar ----------------------------------------------------------------------
CALENDAR_FIELDS = ("start", "end", "all_day", "title", "leaders", "location", "participants", "preparer")


def _calendar_field(message: str) -> str | None:
    if message.startswith("--end"):
        return "end"
    if message.startswith("--start"):
        return "start"
    for needle, name in (("--start", "start"), ("--end", "end"), ("title", "title"), ("leader", "leaders"),
                         ("location", "location"), ("participants", "participants"), ("preparer", "preparer")):
        if needle in message:
            return name
    return None


def _optional_text(fields: dict, name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string or null", name)
    return value


@router.post("/calendar", status_code=201, summary="Add a work calendar entry",
             responses={201: _ok("Created; `id` is the entry's id.", {"type": "object", "properties": {"id": {"type": "string"}}}),
                        **COMMON_ERRORS}, openapi_extra=_body(CALENDAR_IN))
@access.requires_scope("calendar:write")
async def add_calendar(request: Request):
    """The entry is on the hall TV's calendar page within seconds."""
    fields = await _json_object(request)
    # Other fields are ignored, as for a dossier.
    for key in ("start", "title"):
        if not isinstance(fields.get(key), str):
            raise ApiError(422, f"{key} is required (a string)", key)
    all_day = fields.get("all_day", False)
    if not isinstance(all_day, bool):
        raise ApiError(422, "all_day must be true or false", "all_day")
    leaders = fields.get("leaders") or []
    if isinstance(leaders, str):
        leaders = [leaders]
    if not isinstance(leaders, list) or not all(isinstance(x, str) for x in leaders):
        raise ApiError(422, "leaders must be a list of names", "leaders")
    start, end = fields["start"].strip(), _optional_text(fields, "end")
    end = end.strip() if end else None
    if all_day:
        start, end = start[:10], end[:10] if end else None
    elif len(start) == 10:
        raise ApiError(422, "start has no time: give one, or \"all_day\": true", "start")
    try:
        entry = work_calendar.add(page.db(request), start=start, title=fields["title"], tz=_tz(request), end=end,
                                  leaders=leaders, location=_optional_text(fields, "location"),
                                  participants=_optional_text(fields, "participants"),
                                  preparer=_optional_text(fields, "preparer"))
    except ValueError as e:
        raise ApiError(422, str(e), _calendar_field(str(e))) from None
    page.audit(request, "calendar.add", entry.id, {"title": entry.title, "start": entry.start, "end": entry.end})
    return JSONResponse({"id": entry.id, **entry.payload()}, status_code=201)


@router.delete("/calendar/{entry_id}", summary="Remove a work calendar entry",
               responses={200: _ok("Removed.", {"type": "object", "properties": {"id": {"type": "string"}, "removed": {"type": "boolean"}}}),
                          404: _error("No such entry."), **COMMON_ERRORS})
@access.requires_scope("calendar:write")
def remove_calendar(request: Request, entry_id: str):
    try:
        row = work_calendar.remove(page.db(request), entry_id)
    except ValueError as e:
        raise ApiError(404, str(e), "id") from None
    page.audit(request, "calendar.remove", entry_id, {"title": row.get("title"), "start": row.get("start")})
    return JSONResponse({"id": entry_id, "removed": True})

