"""The month's timesheet on the official form (Bảng chấm công, mẫu số C01-HD) as XLSX, and the month CSV.

Form C01-HD is the timesheet of administrative units (Thông tư 107/2017/TT-BTC
of 10/10/2017, Bộ Tài chính). ``write_xlsx`` lays the month out as that form:

- the head: "Đơn vị", "Bộ phận", "Mã QHNS" on the left, "Mẫu số: C01-HD" and
  the circular on the right, the title and "Tháng MM năm YYYY" centred;
- the table: STT, Họ và tên, Chức vụ, a column per day (1..N with T2..CN
  under it; columns that are nobody's working day shaded, and each
  person's own days off and holidays shaded), each cell the day's symbol
  (``Day.symbol()``: "+", "P", "+/P" for half days), then "Quy ra công":
  the totals of ``vocab.timesheet.TOTAL_TITLES_VI`` and the late and early
  minutes, as numbers, and a "Cộng" row;
- a day that used a correction (``Day.manual``) is written in blue italics
  and carries the cell comment "Chấm công bổ sung" (the legend says so);
- under the table the legend (``vocab.timesheet.LEGEND``), the date line and
  the three signatures (Người chấm công, Phụ trách bộ phận, Thủ trưởng đơn vị);
- printed on A4 landscape, one page wide, the table's header rows repeated
  on every page, in Times New Roman (the official forms' font).

``write_csv`` writes the same rows (``month_rows``: one list of numbers for
both) for scripts. Every text cell goes through ``vocab.text.write_cell`` /
``csv_field``: a name that begins with "=" stays text.

The settings are read at the edge (``form_header``); the writers take a
``timesheet.Report`` and a ``FormHeader`` only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from typing import IO, BinaryIO

from ..vocab import timesheet as marks
from ..vocab.text import csv_field, write_cell

FORM_CODE = "C01-HD"
CIRCULAR = "(Ban hành kèm theo Thông tư số 107/2017/TT-BTC ngày 10/10/2017 của Bộ Tài chính)"
FONT = "Times New Roman"
WEEKDAYS_VI = ["T2", "T3", "T4", "T5", "T6", "T7", "CN"]
# The "quy ra công" columns: the day totals in the form's order, then the minutes.
DAY_TOTALS = list(marks.TOTAL_TITLES_VI)
TOTAL_KEYS = [*DAY_TOTALS, "late_min", "early_min"]
TOTAL_TITLES = [*marks.TOTAL_TITLES_VI.values(), "Đi muộn (phút)", "Về sớm (phút)"]
CSV_FIXED = ["staff_id", "name", "position", "department"]
MANUAL_NOTE = "Chấm công bổ sung"
MANUAL_COLOUR = "1F4E9A"  # dark blue: stays readable (and darker than the text) on a grey printer
OFF_COLOUR = "D9D9D9"
OFF_LEGEND = "Nền xám – Không phải ngày làm việc (thứ Bảy, Chủ nhật, nghỉ lễ)"
PLACE_PREFIXES = ("UBND xã ", "UBND phường ", "UBND thị trấn ", "Ủy ban nhân dân xã ", "Ủy ban nhân dân phường ",
                  "Ủy ban nhân dân thị trấn ")


@dataclass
class FormHeader:
    office: str            # settings.site.name, "UBND xã Kỳ Châu"
    superior: str = ""     # [timesheet] superior
    budget_code: str = ""  # [timesheet] budget_code (Mã QHNS)
    department: str = ""   # [timesheet] department
    place: str = ""        # [timesheet] place; empty: office name without "UBND xã "/"UBND phường "
    timekeeper: str = ""
    department_head: str = ""
    head: str = ""
    signed_on: date | None = None   # the date line; None: "ngày ... tháng ... năm ..." left to fill by hand

    def place_name(self) -> str:
        if self.place.strip():
            return self.place.strip()
        office = self.office.strip()
        for prefix in PLACE_PREFIXES:
            if office.lower().startswith(prefix.lower()):
                return office[len(prefix):].strip()
        return office

    def date_line(self) -> str:
        place = self.place_name()
        if self.signed_on is None:
            when = "ngày ..... tháng ..... năm ........"
        else:
            when = f"ngày {self.signed_on:%d} tháng {self.signed_on:%m} năm {self.signed_on:%Y}"
        return f"{place}, {when}" if place else when[0].upper() + when[1:]


def form_header(settings, signed_on: date | None = None) -> FormHeader:
    """The form's head from ``[site] name`` and ``[timesheet]``."""
    t = settings.timesheet
    return FormHeader(office=str(settings.site.name or ""), superior=str(t.superior or ""),
                      budget_code=str(t.budget_code or ""), department=str(t.department or ""),
                      place=str(t.place or ""), timekeeper=str(t.timekeeper or ""),
                      department_head=str(t.department_head or ""), head=str(t.head or ""), signed_on=signed_on)


def month_rows(rep) -> list[list]:
    """One row a person: staff_id, name, position, department, a symbol a day, then ``TOTAL_KEYS``' numbers.

    The XLSX and the CSV both write these rows, so they cannot disagree.
    """
    rows = []
    for person in rep.people:
        sid = person["staff_id"]
        totals = rep.totals(sid)
        rows.append([sid, person.get("name") or "", person.get("position") or "", person.get("department") or "",
                     *(d.symbol() for d in rep.records[sid]), *(totals[k] for k in TOTAL_KEYS)])
    return rows


def csv_columns(rep) -> list[str]:
    """The CSV's header (and the JSON lines' keys): the person, each day's number, the totals."""
    return [*CSV_FIXED, *(str(d.day) for d in rep.days), *TOTAL_KEYS]


def write_csv(rep, out: IO[str]) -> int:
    """The month as CSV: a header row, then ``month_rows``; returns the number of rows.

    The four text columns go through ``csv_field`` (a name beginning with "="
    gets a leading apostrophe); the day cells are the form's own symbols
    ("+", "P", "+/P"), written as they are so that a script reads them back.
    """
    writer = csv.writer(out)
    writer.writerow(csv_columns(rep))
    rows = month_rows(rep)
    fixed = len(CSV_FIXED)
    writer.writerows([*(csv_field(v) for v in row[:fixed]), *row[fixed:]] for row in rows)
    return len(rows)


def _styles(wb):
    """Named styles for the table (one style assignment a cell keeps the month of 600 staff fast)."""
    from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side

    thin = Side(style="thin", color="000000")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    grey = PatternFill("solid", fgColor=OFF_COLOUR)
    centre = Alignment(horizontal="center", vertical="center")
    centre_wrap = Alignment(horizontal="center", vertical="center", wrap_text=True)
    left = Alignment(horizontal="left", vertical="center")

    def named(name, font, alignment, fill=None):
        style = NamedStyle(name=name, font=font, alignment=alignment, border=box)
        if fill is not None:
            style.fill = fill
        wb.add_named_style(style)
        return name

    body = Font(name=FONT, size=10)
    small = Font(name=FONT, size=10)
    bold = Font(name=FONT, size=10, bold=True)
    manual = Font(name=FONT, size=10, italic=True, bold=True, color=MANUAL_COLOUR)
    return {
        "head": named("c01_head", bold, centre_wrap),
        "head_off": named("c01_head_off", bold, centre_wrap, grey),
        "text": named("c01_text", body, left),
        "number": named("c01_number", body, centre),
        "total": named("c01_total", bold, centre),
        "day": named("c01_day", small, centre),
        "day_off": named("c01_day_off", small, centre, grey),
        "day_manual": named("c01_day_manual", manual, centre),
        "day_manual_off": named("c01_day_manual_off", manual, centre, grey),
    }


def write_xlsx(rep, out: str | BinaryIO, header: FormHeader) -> int:
    """The month on form C01-HD to ``out`` (a path or a binary file object); returns the number of staff."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    wb = Workbook()
    ws = wb.active
    ws.title = f"Tháng {rep.first:%m-%Y}"
    style = _styles(wb)
    n_days = len(rep.days)
    first_day_col = 4
    first_total_col = first_day_col + n_days
    last_col = first_total_col + len(TOTAL_KEYS) - 1

    def text(row, col, value, *, size=11, bold=False, italic=False, align="left", to_col=None, wrap=False):
        cell = write_cell(ws, row, col, value)
        cell.font = Font(name=FONT, size=size, bold=bold, italic=italic)
        cell.alignment = Alignment(horizontal=align, vertical="center", wrap_text=wrap)
        if to_col is not None and to_col > col:
            ws.merge_cells(start_row=row, start_column=col, end_row=row, end_column=to_col)
        return cell

    # -- the head of the form ----------------------------------------------------------
    # Three blocks for the signatures (and the head's two sides): the left under the names, the right
    # over the last 14 columns, the middle round the page's middle, never overlapping on a short period.
    right_from = max(first_day_col + n_days // 2 + 1, last_col - 13)
    centre = first_day_col + n_days // 2
    blocks = [(1, 3), (max(first_day_col, centre - 6), min(right_from - 1, centre + 5)), (right_from, last_col)]
    row = 1
    left_lines = []
    if header.superior.strip():
        left_lines.append((header.superior.strip(), False))
    left_lines.append((f"Đơn vị: {header.office}", True))
    if header.department.strip():
        left_lines.append((f"Bộ phận: {header.department.strip()}", True))
    if header.budget_code.strip():
        left_lines.append((f"Mã QHNS: {header.budget_code.strip()}", True))
    right_lines = [(f"Mẫu số: {FORM_CODE}", True, False), (CIRCULAR, False, True)]
    for i in range(max(len(left_lines), len(right_lines))):
        if i < len(left_lines):
            text(row + i, 1, left_lines[i][0], bold=left_lines[i][1], to_col=min(first_day_col + 8, right_from - 1))
        if i < len(right_lines):
            line, bold, italic = right_lines[i]
            text(row + i, right_from, line, size=11 if bold else 9, bold=bold, italic=italic, align="center",
                 to_col=last_col, wrap=italic)
            if italic:
                ws.row_dimensions[row + i].height = 26
    row += max(len(left_lines), len(right_lines)) + 1
    text(row, 1, "BẢNG CHẤM CÔNG", size=14, bold=True, align="center", to_col=last_col)
    ws.row_dimensions[row].height = 20
    text(row + 1, 1, f"Tháng {rep.first:%m} năm {rep.first:%Y}", italic=True, align="center", to_col=last_col)
    row += 3

    # -- the table's header: three rows, repeated on every printed page ------------------
    h1, h2, h3 = row, row + 1, row + 2
    off_columns = [_nobody_works(rep, i) for i in range(n_days)]
    for col, title in ((1, "STT"), (2, "Họ và tên"), (3, "Chức vụ")):
        write_cell(ws, h1, col, title).style = style["head"]
        for r in (h2, h3):
            ws.cell(row=r, column=col).style = style["head"]
        ws.merge_cells(start_row=h1, start_column=col, end_row=h3, end_column=col)
    write_cell(ws, h1, first_day_col, "Ngày trong tháng").style = style["head"]
    for col in range(first_day_col + 1, first_total_col):
        ws.cell(row=h1, column=col).style = style["head"]
    ws.merge_cells(start_row=h1, start_column=first_day_col, end_row=h1, end_column=first_total_col - 1)
    for i, d in enumerate(rep.days):
        name = style["head_off"] if off_columns[i] else style["head"]
        write_cell(ws, h2, first_day_col + i, d.day).style = name
        write_cell(ws, h3, first_day_col + i, WEEKDAYS_VI[d.weekday()]).style = name
    write_cell(ws, h1, first_total_col, "Quy ra công").style = style["head"]
    for col in range(first_total_col + 1, last_col + 1):
        ws.cell(row=h1, column=col).style = style["head"]
    ws.merge_cells(start_row=h1, start_column=first_total_col, end_row=h1, end_column=last_col)
    for k, title in enumerate(TOTAL_TITLES):
        col = first_total_col + k
        write_cell(ws, h2, col, title).style = style["head"]
        ws.cell(row=h3, column=col).style = style["head"]
        ws.merge_cells(start_row=h2, start_column=col, end_row=h3, end_column=col)
    ws.row_dimensions[h2].height = 54

    # -- a row a person ----------------------------------------------------------------
    rows = month_rows(rep)
    sums = [0] * len(TOTAL_KEYS)
    r = h3
    for number, (person, values) in enumerate(zip(rep.people, rows), start=1):
        r += 1
        days = rep.records[person["staff_id"]]
        write_cell(ws, r, 1, number).style = style["number"]
        write_cell(ws, r, 2, values[1]).style = style["text"]
        write_cell(ws, r, 3, values[2] or values[3]).style = style["text"]
        for i, d in enumerate(days):
            symbol = values[4 + i]
            off = d.kind != "work"
            cell = write_cell(ws, r, first_day_col + i, symbol or None)
            if d.manual:
                cell.style = style["day_manual_off"] if off else style["day_manual"]
                cell.comment = Comment(MANUAL_NOTE, "congso", width=140, height=40)
            else:
                cell.style = style["day_off"] if off else style["day"]
        for k, value in enumerate(values[4 + n_days:]):
            write_cell(ws, r, first_total_col + k, value).style = style["number"]
            sums[k] += value
    r += 1
    write_cell(ws, r, 1, "Cộng").style = style["total"]
    for col in range(2, first_total_col):
        ws.cell(row=r, column=col).style = style["total"]
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=first_total_col - 1)
    for k, value in enumerate(sums):
        write_cell(ws, r, first_total_col + k, marks.days_number(value) if k < len(DAY_TOTALS) else value
                   ).style = style["total"]

    # -- the legend --------------------------------------------------------------------
    r += 2
    text(r, 2, "Ký hiệu chấm công:", bold=True, italic=True)
    entries = [f"{symbol} – {words}" for symbol, words in marks.LEGEND.items() if symbol != marks.OFF]
    entries.append(OFF_LEGEND)
    entries.append("Nửa ngày: sáng/chiều, ví dụ +/P – sáng làm việc, chiều nghỉ phép")
    entries.append(f"Chữ xanh nghiêng (có ghi chú) – {MANUAL_NOTE.lower()}")
    legend_cols = [2, first_day_col + 1, first_day_col + 10, first_day_col + 19]
    per_row = len(legend_cols)
    for k, entry in enumerate(entries[:-2]):
        text(r + 1 + k // per_row, legend_cols[k % per_row], entry, size=10)
    r = r + 1 + (len(entries) - 2 + per_row - 1) // per_row
    text(r, 2, entries[-2], size=10, italic=True)
    manual_cell = text(r, legend_cols[2], entries[-1], size=10, italic=True)
    manual_cell.font = Font(name=FONT, size=10, italic=True, bold=True, color=MANUAL_COLOUR)

    # -- the date line and the signatures -------------------------------------------------
    r += 2
    text(r, blocks[2][0], header.date_line(), italic=True, align="center", to_col=blocks[2][1])
    signers = [("Người chấm công", "(Ký, họ tên)", header.timekeeper),
               ("Phụ trách bộ phận", "(Ký, họ tên)", header.department_head),
               ("Thủ trưởng đơn vị", "(Ký, họ tên, đóng dấu)", header.head)]
    for (start, end), (title, hint, name) in zip(blocks, signers):
        text(r + 1, start, title, bold=True, align="center", to_col=end)
        text(r + 2, start, hint, italic=True, size=10, align="center", to_col=end)
        if name.strip():
            text(r + 7, start, name.strip(), bold=True, align="center", to_col=end)
    last_row = r + 7

    # -- columns and printing -------------------------------------------------------------
    ws.column_dimensions["A"].width = 5
    ws.column_dimensions["B"].width = 24
    ws.column_dimensions["C"].width = 18
    for i in range(n_days):
        ws.column_dimensions[get_column_letter(first_day_col + i)].width = 4.6
    for k in range(len(TOTAL_KEYS)):
        ws.column_dimensions[get_column_letter(first_total_col + k)].width = 9
    ws.freeze_panes = f"{get_column_letter(first_day_col)}{h3 + 1}"  # names and day numbers stay in view
    ws.print_title_rows = f"{h1}:{h3}"
    ws.print_area = f"A1:{get_column_letter(last_col)}{last_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if ws.sheet_properties.pageSetUpPr is None:
        ws.sheet_properties.pageSetUpPr = PageSetupProperties()
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.25
    ws.page_margins.top = ws.page_margins.bottom = 0.4
    ws.page_margins.header = ws.page_margins.footer = 0.2
    ws.oddFooter.center.text = "Trang &P / &N"
    ws.oddFooter.center.font = FONT
    ws.oddFooter.center.size = 9
    wb.save(out)
    return len(rep.people)


def _nobody_works(rep, index: int) -> bool:
    """A column to shade: the day is nobody's working day (a weekend, a holiday)."""
    if not rep.people:
        return rep.days[index].weekday() >= 5
    return all(rep.records[p["staff_id"]][index].kind != "work" for p in rep.people)
