"""Báo cáo: attendance by day and by month, the ratings report, the events export; each as XLSX or CSV;
the office's figures for a month (``/reports/kpi``, ``gateway/kpi.py``); what the TVs showed
(``/reports/plays``, ``gateway/plays.py``, the same call as ``congso report plays``).

Thin over ``gateway/reports.py`` (the same calls as ``congso report ...``)
and ``gateway/export.py`` (``congso events export``). The month's workbook
is ``timesheet_form.write_xlsx`` (the official form), the one the CLI and the API write.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from ...gateway import export as export_mod
from ...gateway import kpi as kpi_mod
from ...gateway import plays as plays_mod
from ...gateway import reports as reports_mod
from ...gateway import timesheet, timesheet_form
from ...vocab.timesheet import LEGEND
from ...vocab import text as text_mod
from .. import access, page

router = APIRouter()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
KIND_VI = {"attendance": "Chấm công", "rating": "Đánh giá"}
LEGEND_VI = " · ".join(f"{symbol}: {words}" for symbol, words in LEGEND.items()) + \
    " · ✎: có chấm công bổ sung · *: máy chấm công chưa đồng bộ đồng hồ"
WEEKDAY_VI = ["T2", "T3", "T4", "T5", "T6", "T7", "CN"]
EXPORT_MAX_DAYS = 366


def _params(request: Request) -> dict:
    return {k: text_mod.nfc(v).strip() for k, v in request.query_params.items()}


def _period(request: Request, values: dict) -> dict:
    """``{"day": "YYYY-MM-DD"}`` or ``{"month": "YYYY-MM"}`` from what was typed (today by default)."""
    month = values.get("month") or ""
    if month:
        if len(month) == 7 and month[2] == "/":  # 12/2026, as typed in the office
            month = f"{month[3:]}-{month[:2]}"
        timesheet.month_bounds(month)  # ReportError-kin if not YYYY-MM
        return {"month": month}
    day = reports_mod.parse_day_input(values.get("day"), "Ngày") or page.console(request).today()
    return {"day": day.isoformat()}


def _attendance(request: Request, period: dict) -> reports_mod.Attendance:
    c = page.console(request)
    return reports_mod.attendance(page.db(request), c.settings.workrules, c.tz, now=c.now(), **period)


def _cells_html(cells) -> Markup:
    """A person's day cells as HTML, escaped here: 60 people x 31 days is faster than in the template."""
    return Markup("".join(f'<td class="ts-cell ts-{cls or "none"}">{escape(text)}</td>' for text, cls in cells))


def _page(request: Request, status_code: int = 200, error: str | None = None, values: dict | None = None,
          att=None, period: dict | None = None):
    c = page.console(request)
    today = c.today()
    values = values or {}
    ctx = {"values": values, "period": period or {}, "att": att, "kind_vi": KIND_VI,
           "this_month": today.strftime("%Y-%m"), "today": today,
           "export_from": values.get("from") or today.replace(day=1).isoformat(),
           "export_to": values.get("to") or today.isoformat()}
    if att is not None:
        rep = att.report
        ctx["qs"] = urlencode(period)
        if att.is_day:
            ctx["rows"] = reports_mod.day_rows_vi(rep)
            ctx["counts"] = reports_mod.day_counts(rep)
        else:
            ctx["grid"] = [{**row, "cells_html": _cells_html(row["cells"])} for row in reports_mod.month_grid(rep)]
            ctx["days"] = [(d.day, WEEKDAY_VI[d.weekday()], d.weekday() >= 5) for d in rep.days]
            ctx["month_label"] = f"{rep.first:%m/%Y}"
    return page.render(request, "reports.html", status_code=status_code, active="/reports", title="Báo cáo",
                       error=error, legend=LEGEND_VI, **ctx)


@router.get("/reports")
@access.requires("reports.view")
def reports(request: Request):
    values = _params(request)
    try:
        period = _period(request, values)
        att = _attendance(request, period)
    except ValueError as e:
        return _page(request, 422, f"Không lập được báo cáo chấm công: {e}", values)
    return _page(request, values=values, att=att, period=period)


def _attendance_download(request: Request, fmt: str):
    values = _params(request)
    if not values.get("day") and not values.get("month"):
        values["month"] = page.console(request).today().strftime("%Y-%m")
    try:
        period = _period(request, values)
        att = _attendance(request, period)
        content = reports_mod.attendance_file(att, fmt, timesheet_form.form_header(page.console(request).settings))
    except ValueError as e:
        return _page(request, 422, f"Không tải được bảng chấm công: {e}", values)
    label = period.get("month") or period.get("day")
    return Response(content=content, media_type=XLSX if fmt == "xlsx" else CSV,
                    headers={"Content-Disposition": f'attachment; filename="cham-cong-{label}.{fmt}"'})


@router.get("/reports/attendance.xlsx")
@access.requires("reports.view")
def attendance_xlsx(request: Request):
    return _attendance_download(request, "xlsx")


@router.get("/reports/attendance.csv")
@access.requires("reports.view")
def attendance_csv(request: Request):
    return _attendance_download(request, "csv")


def _events_download(request: Request, fmt: str):
    values = _params(request)
    today = page.console(request).today()
    try:
        kind = values.get("kind") or "attendance"
        if kind not in export_mod.KINDS:
            raise ValueError(f"kind must be one of {', '.join(export_mod.KINDS)}, got {kind!r}")
        first = reports_mod.parse_day_input(values.get("from"), "Từ ngày") or today.replace(day=1)
        last = reports_mod.parse_day_input(values.get("to"), "Đến ngày") or today
        if first > last:
            raise ValueError(f"Từ ngày {first:%d/%m/%Y} is after Đến ngày {last:%d/%m/%Y}")
        if (last - first).days >= EXPORT_MAX_DAYS:
            raise ValueError(f"at most {EXPORT_MAX_DAYS} days in one export")
        content, _n = export_mod.export_bytes(page.db(request), fmt, kind, first.isoformat(), last.isoformat())
    except ValueError as e:
        return _page(request, 422, f"Không xuất được sự kiện: {e}", values)
    name = f"su-kien-{kind}-{first.isoformat()}-{last.isoformat()}.{fmt}"
    return Response(content=content, media_type=XLSX if fmt == "xlsx" else CSV,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/reports/events.xlsx")
@access.requires("reports.view")
def events_xlsx(request: Request):
    return _events_download(request, "xlsx")


@router.get("/reports/events.csv")
@access.requires("reports.view")
def events_csv(request: Request):
    return _events_download(request, "csv")


# -- the office's figures (gateway/kpi.py, the same call as `congso report kpi`) --------

def _kpi(request: Request) -> tuple[dict, str]:
    c = page.console(request)
    values = _params(request)
    month = values.get("month") or c.today().strftime("%Y-%m")
    if len(month) == 7 and month[2] == "/":  # 11/2026, as typed in the office
        month = f"{month[3:]}-{month[:2]}"
    return kpi_mod.month(page.db(request), month, c.tz, now=c.now(), targets=c.settings.kpi.as_dict()), month


@router.get("/reports/kpi")
@access.requires("reports.view")
def kpi_page(request: Request):
    try:
        k, month = _kpi(request)
    except ValueError as e:
        return page.render(request, "kpi.html", status_code=422, active="/reports", title="Chỉ tiêu tháng",
                           error=f"Không lập được chỉ tiêu tháng: {e}", k=None,
                           month=_params(request).get("month", ""))
    first, _ = kpi_mod.month_bounds(k["month"])
    _headers, rows = kpi_mod.table(k, "vi")
    figures = [{"key": key, "title": row[0], "pct": row[1], "counts": row[2], "target": row[3], "met": k[key]["met"],
                "result": row[4], "share": k[key]["share"], "target_share": k[key]["target"]}
               for key, row in zip(kpi_mod.TARGET_KEYS, rows)]
    return page.render(request, "kpi.html", active="/reports", title="Chỉ tiêu tháng", k=k, month=k["month"],
                       month_label=f"{first:%m/%Y}", figures=figures, qs=urlencode({"month": k["month"]}))


@router.get("/reports/kpi.xlsx")
@access.requires("reports.view")
def kpi_xlsx(request: Request):
    try:
        k, _month = _kpi(request)
    except ValueError as e:
        return page.render(request, "kpi.html", status_code=422, active="/reports", title="Chỉ tiêu tháng",
                           error=f"Không tải được chỉ tiêu tháng: {e}", k=None,
                           month=_params(request).get("month", ""))
    content = kpi_mod.xlsx_bytes(k, page.console(request).settings.site.name)
    return Response(content=content, media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="chi-tieu-{k["month"]}.xlsx"'})


# -- proof of play (gateway/plays.py, the same call as `congso report plays`) ------------

def _plays(request: Request) -> tuple[dict, plays_mod.Report]:
    """The query as typed (today by default) and its report; ValueError with the field's name."""
    c = page.console(request)
    values = _params(request)
    today = c.today()
    first = reports_mod.parse_day_input(values.get("from"), "Từ ngày") or today
    last = reports_mod.parse_day_input(values.get("to"), "Đến ngày") or first
    node = values.get("node") or None
    item = values.get("item") or None
    rep = plays_mod.report(page.db(request), first, last, node=node, item=item, tz=c.tz)
    query = {"from": first.isoformat(), "to": last.isoformat()}
    if node:
        query["node"] = node
    if item:
        query["item"] = item
    return query, rep


def _plays_page(request: Request, status_code: int = 200, error: str | None = None, query: dict | None = None,
                rep: plays_mod.Report | None = None):
    db = page.db(request)
    items = sorted({(kind, ident): title for (kind, ident), title in plays_mod.current_titles(db).items()
                    if kind == "slide"}.items(), key=lambda kv: kv[1])
    rows = [] if rep is None else [{**r.as_dict(), "type_vi": plays_mod.ITEM_TYPE_VI.get(r.item_type, r.item_type),
                                    "duration": plays_mod.duration_vi(r.seconds)} for r in rep.rows]
    return page.render(request, "plays.html", status_code=status_code, active="/reports",
                       title="Nội dung đã chiếu", error=error, values=query or _params(request), rep=rep, rows=rows,
                       total_duration=plays_mod.duration_vi(rep.seconds) if rep else "",
                       tvs=plays_mod.tv_nodes(db), slides=[(ident, title) for (_k, ident), title in items],
                       qs=urlencode(query) if query else "")


@router.get("/reports/plays")
@access.requires("reports.view")
def plays_page(request: Request):
    try:
        query, rep = _plays(request)
    except ValueError as e:
        return _plays_page(request, 422, f"Không lập được báo cáo nội dung đã chiếu: {e}")
    return _plays_page(request, query=query, rep=rep)


def _plays_download(request: Request, fmt: str):
    try:
        query, rep = _plays(request)
        content = plays_mod.file_bytes(rep, fmt, page.console(request).settings.site.name)
    except ValueError as e:
        return _plays_page(request, 422, f"Không tải được báo cáo nội dung đã chiếu: {e}")
    period = rep.day_from if rep.day_from == rep.day_to else f"{rep.day_from}-{rep.day_to}"
    return Response(content=content, media_type=XLSX if fmt == "xlsx" else CSV,
                    headers={"Content-Disposition": f'attachment; filename="noi-dung-da-chieu-{period}.{fmt}"'})


@router.get("/reports/plays.xlsx")
@access.requires("reports.view")
def plays_xlsx(request: Request):
    return _plays_download(request, "xlsx")


@router.get("/reports/plays.csv")
@access.requires("reports.view")
def plays_csv(request: Request):
    return _plays_download(request, "csv")
