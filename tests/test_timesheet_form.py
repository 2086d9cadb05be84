"""The month's official form (Bảng chấm công, mẫu C01-HD) and the month CSV, read back cell by cell.

A month built by hand from ``timesheet.Day`` objects (April 2027: both
kinds of half day, a business trip, a sick day, an absence, a holiday, a
correction, late and early minutes) is written by ``timesheet_form`` and
read back with openpyxl: the head of the form, every day cell of both
people, the shaded columns, the "quy ra công" totals as numbers, the
legend, the date line and the signatures, the print setup. The CSV carries
the same numbers as the XLSX and as ``timesheet.month_json``.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from congso.gateway import timesheet, timesheet_form
from congso.gateway.timesheet_form import FormHeader
from congso.protocol.settings import load
from congso.vocab import timesheet as marks

TZ = "Asia/Ho_Chi_Minh"
FIRST, LAST = date(2027, 4, 1), date(2027, 4, 30)  # the 1st a Thursday; weekends 3-4, 10-11, 17-18, 24-25
HOLIDAY = 30                                       # Ngày Giải phóng miền Nam, a Friday
OFFICE = "UBND xã Kỳ Châu"
EVIL = "=HYPERLINK(\"http://x.invalid\",\"Bấm\")"

# day -> (am, pm, late_min, early_min, manual); every other working day is "+", "+".
AN = {5: ("+", "P", 0, 0, False),        # worked the morning, annual leave in the afternoon
      6: ("V", "+", 0, 0, False),        # absent the morning
      7: ("CT", "CT", 0, 0, False), 8: ("CT", "CT", 0, 0, False), 9: ("CT", "CT", 0, 0, False),  # a business trip
      12: ("+", "+", 12, 0, False),      # late
      13: ("+", "+", 0, 0, True)}        # the out scan was a correction
BINH = {14: ("Ô", "Ô", 0, 0, False),     # sick
        15: ("P", "+", 0, 0, False),     # annual leave in the morning
        16: ("V", "V", 0, 0, False),     # absent
        19: ("+", "+", 0, 20, False)}    # left early


def weekend(d: date) -> bool:
    return d.weekday() >= 5


def build_day(d: date, plan: dict) -> timesheet.Day:
    if d.day == HOLIDAY:
        return timesheet.Day(day=d, kind="holiday", holiday="Ngày Giải phóng miền Nam", am="L", pm="L")
    if weekend(d):
        return timesheet.Day(day=d, kind="off", am="-", pm="-")
    am, pm, late, early, manual = plan.get(d.day, ("+", "+", 0, 0, False))
    worked = "+" in (am, pm)
    return timesheet.Day(day=d, kind="work", am=am, pm=pm, late_min=late, early_min=early, manual=manual,
                         scans=2 if worked else 0,
                         first=datetime(d.year, d.month, d.day, 7, 30).astimezone() if worked else None,
                         last=datetime(d.year, d.month, d.day, 17, 0).astimezone() if worked else None)


def hand_report() -> timesheet.Report:
    days = [FIRST + timedelta(n) for n in range((LAST - FIRST).days + 1)]
    people = [{"staff_id": "NV001", "name": "Phạm Văn An", "department": "Văn phòng - Thống kê",
               "position": "Công chức Văn phòng", "active": True, "schedule": None},
              {"staff_id": "NV002", "name": EVIL, "department": "Địa chính", "position": "",
               "active": True, "schedule": None}]
    records = {"NV001": [build_day(d, AN) for d in days], "NV002": [build_day(d, BINH) for d in days]}
    return timesheet.Report(FIRST, LAST, days, people, records)


HEADER = FormHeader(office=OFFICE, superior="UBND tỉnh Nghệ An", budget_code="1234567", department="Toàn cơ quan",
                    timekeeper="Lê Thị Hoa", department_head="Trần Thị Mai", head="Nguyễn Văn Hùng",
                    signed_on=date(2027, 5, 3))
EXPECTED_TOTALS = {  # 21 working days (30 days, 8 weekend days, the holiday)
    "NV001": {"worked_days": 20, "paid_leave_days": 1.5, "unpaid_days": 0, "insurance_days": 0,
              "absent_days": 0.5, "late_min": 12, "early_min": 0},
    "NV002": {"worked_days": 18.5, "paid_leave_days": 1.5, "unpaid_days": 0, "insurance_days": 1,
              "absent_days": 1, "late_min": 0, "early_min": 20},
}


def expected_cell(d: date, plan: dict):
    if d.day == HOLIDAY:
        return "L"
    if weekend(d):
        return None
    am, pm, *_ = plan.get(d.day, ("+", "+"))
    return am if am == pm else f"{am}/{pm}"


class Sheet:
    """The workbook read back, with its table located by its "STT" header cell."""

    def __init__(self, data: bytes):
        self.wb = load_workbook(io.BytesIO(data))
        self.ws = self.wb.active
        self.cells = {(c.row, c.column): c for row in self.ws.iter_rows() for c in row if c.value is not None}
        self.h1 = self.find("STT").row
        self.first_day_col = self.find("Ngày trong tháng").column
        self.first_total_col = self.find("Quy ra công").column

    def find(self, value):
        hits = [c for c in self.cells.values() if c.value == value]
        assert hits, f"no cell holds {value!r}"
        return hits[0]

    def texts(self) -> list[str]:
        return [c.value for c in self.cells.values() if isinstance(c.value, str)]

    def row_of(self, name: str) -> int:
        return self.find(name).row

    def day(self, row: int, day: int):
        return self.ws.cell(row=row, column=self.first_day_col + day - 1)

    def totals(self, row: int) -> list:
        return [self.ws.cell(row=row, column=self.first_total_col + k).value for k in range(7)]


def xlsx_bytes(rep, header=HEADER) -> bytes:
    out = io.BytesIO()
    assert timesheet_form.write_xlsx(rep, out, header) == len(rep.people)
    return out.getvalue()


@pytest.fixture(scope="module")
def sheet():
    return Sheet(xlsx_bytes(hand_report()))


def test_the_head_of_the_form(sheet):
    texts = sheet.texts()
    for line in ("UBND tỉnh Nghệ An", "Đơn vị: UBND xã Kỳ Châu", "Bộ phận: Toàn cơ quan", "Mã QHNS: 1234567",
                 "Mẫu số: C01-HD",
                 "(Ban hành kèm theo Thông tư số 107/2017/TT-BTC ngày 10/10/2017 của Bộ Tài chính)",
                 "BẢNG CHẤM CÔNG", "Tháng 04 năm 2027"):
        assert line in texts, line
    # The left lines above the right ones' column; the title and the month centred over the whole table.
    assert sheet.find("Đơn vị: UBND xã Kỳ Châu").column == 1
    assert sheet.find("Mẫu số: C01-HD").column > sheet.first_day_col
    title = sheet.find("BẢNG CHẤM CÔNG")
    assert title.alignment.horizontal == "center" and title.font.bold
    merged = [str(r) for r in sheet.ws.merged_cells.ranges if r.min_row == title.row]
    assert merged and merged[0].startswith("A") and title.row < sheet.h1
    # Nothing set, nothing printed: no empty "Bộ phận:" or "Mã QHNS:" line.
    bare = Sheet(xlsx_bytes(hand_report(), FormHeader(office=OFFICE))).texts()
    assert "Đơn vị: UBND xã Kỳ Châu" in bare
    assert not any(t.startswith(("Bộ phận", "Mã QHNS")) for t in bare)


def test_the_table_header_a_column_a_day_with_its_weekday(sheet):
    ws, h1 = sheet.ws, sheet.h1
    assert [ws.cell(row=h1, column=c).value for c in (1, 2, 3)] == ["STT", "Họ và tên", "Chức vụ"]
    assert sheet.first_day_col == 4
    assert [sheet.day(h1 + 1, d).value for d in range(1, 31)] == list(range(1, 31))
    assert [sheet.day(h1 + 2, d).value for d in range(1, 8)] == ["T5", "T6", "T7", "CN", "T2", "T3", "T4"]
    assert sheet.first_total_col == 4 + 30  # April has 30 days: no 31st column
    titles = [ws.cell(row=h1 + 1, column=sheet.first_total_col + k).value for k in range(7)]
    assert titles == [*marks.TOTAL_TITLES_VI.values(), "Đi muộn (phút)", "Về sớm (phút)"]
    ranges = {str(r) for r in ws.merged_cells.ranges}
    assert f"D{h1}:AG{h1}" in ranges             # "Ngày trong tháng" over the 30 days
    assert f"AH{h1}:AN{h1}" in ranges            # "Quy ra công" over the seven totals
    assert f"A{h1}:A{h1 + 2}" in ranges          # STT over the three header rows
    # Printed on every page.
    assert ws.print_title_rows.replace("$", "") == f"{h1}:{h1 + 2}"


def test_every_day_cell_is_the_days_symbol(sheet):
    an, binh = sheet.row_of("Phạm Văn An"), sheet.row_of(EVIL)
    assert binh == an + 1 == sheet.h1 + 4
    days = [FIRST + timedelta(n) for n in range(30)]
    assert [sheet.day(an, d.day).value for d in days] == [expected_cell(d, AN) for d in days]
    assert [sheet.day(binh, d.day).value for d in days] == [expected_cell(d, BINH) for d in days]
    # The half days and the trip, spelled out.
    assert sheet.day(an, 5).value == "+/P" and sheet.day(an, 6).value == "V/+" and sheet.day(an, 7).value == "CT"
    assert sheet.day(binh, 15).value == "P/+" and sheet.day(binh, 14).value == "Ô"
    # STT, then the position, and the department for a person without one.
    assert [sheet.ws.cell(row=an, column=c).value for c in (1, 3)] == [1, "Công chức Văn phòng"]
    assert [sheet.ws.cell(row=binh, column=c).value for c in (1, 3)] == [2, "Địa chính"]


def test_weekend_and_holiday_columns_are_shaded(sheet):
    an = sheet.row_of("Phạm Văn An")

    def grey(cell) -> bool:
        return cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb.endswith(timesheet_form.OFF_COLOUR)

    for day in range(1, 31):
        off = weekend(date(2027, 4, day)) or day == HOLIDAY
        for row in (sheet.h1 + 1, sheet.h1 + 2, an, an + 1):
            assert grey(sheet.day(row, day)) == off, (day, row)


def test_a_correction_is_marked_by_a_comment_and_a_colour_the_legend_explains(sheet):
    an = sheet.row_of("Phạm Văn An")
    corrected = sheet.day(an, 13)
    assert corrected.value == "+"
    assert corrected.comment is not None and corrected.comment.text.startswith("Chấm công bổ sung")
    assert corrected.font.color.rgb.endswith(timesheet_form.MANUAL_COLOUR) and corrected.font.italic
    assert "*" not in corrected.value
    plain = sheet.day(an, 12)
    assert plain.comment is None and not plain.font.italic
    commented = [c.coordinate for c in sheet.cells.values() if c.comment is not None]
    assert commented == [corrected.coordinate]
    assert any("chấm công bổ sung" in t and t.startswith("Chữ xanh nghiêng") for t in sheet.texts())


def test_the_totals_are_numbers(sheet):
    for staff_id, name in (("NV001", "Phạm Văn An"), ("NV002", EVIL)):
        values = sheet.totals(sheet.row_of(name))
        assert values == [EXPECTED_TOTALS[staff_id][k] for k in timesheet_form.TOTAL_KEYS], staff_id
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    # "Cộng": the column sums.
    total_row = sheet.find("Cộng").row
    assert total_row == sheet.row_of(EVIL) + 1
    assert sheet.totals(total_row) == [38.5, 3, 0, 1, 1.5, 12, 20]


def test_the_legend_from_the_shared_vocabulary(sheet):
    texts = sheet.texts()
    assert "Ký hiệu chấm công:" in texts
    for symbol, words in marks.LEGEND.items():
        if symbol != marks.OFF:  # a day off is a grey cell on the form, never "-"
            assert f"{symbol} – {words}" in texts, symbol
    assert timesheet_form.OFF_LEGEND in texts
    legend_row = sheet.find("Ký hiệu chấm công:").row
    assert legend_row > sheet.find("Cộng").row


def test_the_date_line_and_the_three_signatures(sheet):
    texts = sheet.texts()
    date_line = sheet.find("Kỳ Châu, ngày 03 tháng 05 năm 2027")
    signers = [sheet.find(t) for t in ("Người chấm công", "Phụ trách bộ phận", "Thủ trưởng đơn vị")]
    assert len({c.row for c in signers}) == 1 and signers[0].row == date_line.row + 1
    assert [c.column for c in signers] == sorted(c.column for c in signers)
    assert date_line.column == signers[2].column  # above the head's signature, on the right
    hints = [sheet.ws.cell(row=c.row + 1, column=c.column).value for c in signers]
    assert hints == ["(Ký, họ tên)", "(Ký, họ tên)", "(Ký, họ tên, đóng dấu)"]
    names = [sheet.find(n) for n in ("Lê Thị Hoa", "Trần Thị Mai", "Nguyễn Văn Hùng")]
    assert [c.column for c in names] == [c.column for c in signers]
    assert all(n.row > signers[0].row + 2 for n in names)  # room to sign
    assert sheet.find("Ký hiệu chấm công:").row < date_line.row
    assert "Lê Thị Hoa" in texts
    # No date and no names set: the date to write by hand, the place from the office's name, no names.
    bare = Sheet(xlsx_bytes(hand_report(), FormHeader(office=OFFICE)))
    assert "Kỳ Châu, ngày ..... tháng ..... năm ........" in bare.texts()
    signer_row = bare.find("Người chấm công").row
    assert not [c for c in bare.cells.values() if c.row > signer_row + 1]
    placed = Sheet(xlsx_bytes(hand_report(), FormHeader(office="UBND phường Hưng Dũng", place="TP. Vinh",
                                                         signed_on=date(2027, 5, 3)))).texts()
    assert "TP. Vinh, ngày 03 tháng 05 năm 2027" in placed


def test_print_setup_a4_landscape_one_page_wide(sheet):
    ws = sheet.ws
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert int(ws.page_setup.fitToWidth) == 1 and int(ws.page_setup.fitToHeight) == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert ws.print_title_rows.replace("$", "") == f"{sheet.h1}:{sheet.h1 + 2}"
    assert ws.page_margins.left <= 0.3 and ws.page_margins.right <= 0.3
    an = sheet.row_of("Phạm Văn An")
    for cell in (sheet.find("BẢNG CHẤM CÔNG"), sheet.find("Phạm Văn An"), sheet.day(an, 1), sheet.day(sheet.h1, 1),
                 sheet.ws.cell(row=an, column=sheet.first_total_col), sheet.find("Thủ trưởng đơn vị")):
        assert cell.font.name == "Times New Roman", cell.coordinate
    # Thin borders round the table's cells.
    for cell in (sheet.day(an, 1), sheet.find("Phạm Văn An"), sheet.ws.cell(row=an, column=sheet.first_total_col)):
        assert cell.border.left.style == cell.border.right.style == cell.border.top.style == "thin"


def test_a_name_starting_with_equals_stays_text(sheet):
    cell = sheet.find(EVIL)
    assert cell.data_type == "s" and cell.value == EVIL
    assert not any(c.data_type == "f" for c in sheet.cells.values())


def read_csv(rep) -> list[list[str]]:
    out = io.StringIO()
    assert timesheet_form.write_csv(rep, out) == len(rep.people)
    return list(csv.reader(io.StringIO(out.getvalue())))


def number(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value


def test_the_csv_carries_the_xlsx_numbers(sheet):
    rep = hand_report()
    rows = read_csv(rep)
    assert rows[0] == ["staff_id", "name", "position", "department", *map(str, range(1, 31)),
                       "worked_days", "paid_leave_days", "unpaid_days", "insurance_days", "absent_days",
                       "late_min", "early_min"]
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["NV001"][1:4] == ["Phạm Văn An", "Công chức Văn phòng", "Văn phòng - Thống kê"]
    assert by_id["NV002"][1] == "'" + EVIL  # a formula in a CSV cannot run
    for staff_id, name in (("NV001", "Phạm Văn An"), ("NV002", EVIL)):
        row = by_id[staff_id]
        xlsx_row = sheet.row_of(name)
        assert [number(v) for v in row[-7:]] == sheet.totals(xlsx_row) == \
            [EXPECTED_TOTALS[staff_id][k] for k in timesheet_form.TOTAL_KEYS]
        assert [v or None for v in row[4:-7]] == [sheet.day(xlsx_row, d).value for d in range(1, 31)]


def test_the_csv_and_the_json_agree():
    rep = hand_report()
    data = timesheet.month_json(rep, OFFICE)
    by_id = {r[0]: r for r in read_csv(rep)[1:]}
    for person in data["staff"]:
        row = by_id[person["staff_id"]]
        header = read_csv(rep)[0]
        for key, value in person["totals"].items():
            if key in header:
                assert number(row[header.index(key)]) == value, (person["staff_id"], key)
        for day, marks_of_day in person["days"].items():
            assert row[3 + int(day)] == marks.day_symbol(marks_of_day["am"], marks_of_day["pm"]), day


def test_form_header_reads_the_settings():
    settings = load(environ={"CONGSO_SITE_NAME": "UBND xã Kỳ Châu", "CONGSO_TIMESHEET_BUDGET_CODE": "1234567",
                             "CONGSO_TIMESHEET_HEAD": "Nguyễn Văn Hùng", "CONGSO_TIMESHEET_SUPERIOR": "UBND tỉnh Nghệ An"})
    header = timesheet_form.form_header(settings)
    assert (header.office, header.budget_code, header.head, header.superior) == \
        ("UBND xã Kỳ Châu", "1234567", "Nguyễn Văn Hùng", "UBND tỉnh Nghệ An")
    assert header.signed_on is None and header.place_name() == "Kỳ Châu"
    assert timesheet_form.form_header(settings, date(2027, 5, 3)).date_line() == "Kỳ Châu, ngày 03 tháng 05 năm 2027"


def test_a_path_and_february(tmp_path):
    feb = [date(2027, 2, 1) + timedelta(n) for n in range(28)]
    person = {"staff_id": "NV001", "name": "Phạm Văn An", "department": "Văn phòng", "position": "",
              "active": True, "schedule": None}
    rep = timesheet.Report(feb[0], feb[-1], feb, [person], {"NV001": [build_day(d, {}) for d in feb]})
    path = tmp_path / "c01.xlsx"
    assert timesheet_form.write_xlsx(rep, str(path), FormHeader(office=OFFICE)) == 1
    s = Sheet(path.read_bytes())
    assert s.first_total_col == 4 + 28
    assert s.day(s.h1 + 1, 28).value == 28 and s.ws.cell(row=s.h1 + 1, column=4 + 28).value != 29


# -- a real month, judged by the engine on a real gateway database ------------------------------
def _scan_rows(staff_id: str, day: date, times: list[str], start_seq: int) -> list[tuple]:
    rows = []
    for k, hm in enumerate(times):
        ts = f"{day.isoformat()}T{hm}:00+07:00"
        rows.append((f"{staff_id}-{day}-{k}", "door-1", start_seq + k, ts, day.isoformat(), 1, ts, "{}", "finger",
                     "3", staff_id, 120))
    return rows


@pytest.fixture
def real_month(tmp_path):
    """February 2027 (Tết with no holiday entered): a half day of leave, a trip, a correction, late across lunch."""
    from congso.gateway import leave, staff
    from congso.gateway.db import open_db
    from congso.protocol import clock
    from congso.tools.print_preview import EVENT_SQL

    db = open_db(tmp_path / "gateway.sqlite")
    staff.add(db, "NV001", "Phạm Văn An", "Văn phòng", "Công chức Văn phòng", tz=TZ)
    staff.add(db, "NV002", EVIL, "Địa chính", None, tz=TZ)
    first, last = timesheet.month_bounds("2027-02")
    an = {1: ["07:25", "11:35"],          # leave in the afternoon
          2: [], 3: [],                   # the business trip (Tết from the 4th: nobody comes)
          15: ["07:25"],                  # the evening scan forgotten: entered as a correction
          16: ["14:00", "17:02"]}         # came after lunch
    binh = {17: [], 18: [], 19: []}       # sick two days, then absent
    rows = []
    for n in range(28):
        d = first + timedelta(n)
        if d.weekday() >= 5 or 4 <= d.day <= 10:
            continue
        for sid, plan in (("NV001", an), ("NV002", binh)):
            rows += _scan_rows(sid, d, plan.get(d.day, ["07:25", "17:02"]), len(rows))
    with db.conn:
        db.conn.executemany(EVENT_SQL, rows)
    now = datetime(2027, 3, 2, 9, 0, tzinfo=clock.zone(TZ))
    leave.add(db, "NV001", "P", "2027-02-01", None, "pm", entered_by="vanthu", tz=TZ)
    leave.add(db, "NV001", "CT", "2027-02-02", "2027-02-03", entered_by="vanthu", tz=TZ)
    leave.add(db, "NV002", "Ô", "2027-02-17", "2027-02-18", entered_by="vanthu", tz=TZ)
    leave.add_punch(db, "NV001", "2027-02-15T17:05", "Quên chấm công khi về", entered_by="vanthu", tz=TZ, now=now)
    rules = timesheet.WorkRules.from_settings(load(environ={}).workrules)
    yield timesheet.report(db, rules, first, last, TZ, now=now)
    db.conn.close()


def test_a_real_month_in_xlsx_csv_and_json_to_the_cell(real_month):
    rep = real_month
    s = Sheet(xlsx_bytes(rep))
    data = timesheet.month_json(rep, OFFICE)
    rows = read_csv(rep)
    header, by_id = rows[0], {r[0]: r for r in rows[1:]}
    an, binh = s.row_of("Phạm Văn An"), s.row_of(EVIL)
    # What the engine made of the month, as the form shows it.
    assert s.day(an, 1).value == "+/P"
    assert [s.day(an, d).value for d in (2, 3)] == ["CT"] * 2
    assert s.day(an, 15).value == "+" and s.day(an, 15).comment is not None
    assert s.day(an, 16).value == "V/+"
    assert [s.day(binh, d).value for d in (17, 18, 19)] == ["Ô", "Ô", "V"]
    assert s.ws.cell(row=binh, column=3).value == "Địa chính"
    tet = [int(k) for k, v in data["staff"][0]["days"].items() if v["am"] == "L"]
    assert {4, 5, 8, 9, 10} <= set(tet) and all(s.day(an, d).value == "L" for d in tet)  # Tết, none entered
    assert all(s.day(s.h1 + 1, d).fill.fill_type == "solid" for d in tet)
    for person in data["staff"]:
        sid = person["staff_id"]
        row = s.row_of(person["name"])
        csv_row = by_id[sid]
        # Totals: the JSON's, the CSV's and the XLSX's are the same numbers.
        xlsx_totals = dict(zip(timesheet_form.TOTAL_KEYS, s.totals(row)))
        for key, value in person["totals"].items():
            assert xlsx_totals[key] == value == number(csv_row[header.index(key)]), (sid, key)
        assert set(person["totals"]) >= set(timesheet_form.TOTAL_KEYS)
        # Day cells: the JSON's sessions, the CSV's cell, the XLSX's cell.
        for day, m in person["days"].items():
            symbol = marks.day_symbol(m["am"], m["pm"])
            assert csv_row[3 + int(day)] == symbol, (sid, day)
            assert s.day(row, int(day)).value == (symbol or None), (sid, day)
            assert (s.day(row, int(day)).comment is not None) == ("manual" in m["flags"]), (sid, day)
    totals_an = dict(zip(timesheet_form.TOTAL_KEYS, s.totals(an)))
    assert totals_an["paid_leave_days"] >= 0.5 + len(tet) and totals_an["absent_days"] == 0.5
    assert totals_an["late_min"] > 0  # came after lunch: late into the afternoon session


def test_the_demo_like_month_is_the_same_in_all_three():
    """The print preview's month (12 staff, leave, corrections) through the real engine: CSV = XLSX = JSON."""
    import tempfile

    from congso.gateway.db import open_db
    from congso.tools import demo_office
    from congso.tools.print_preview import fill_month

    with tempfile.TemporaryDirectory() as work:
        db = open_db(f"{work}/gateway.sqlite")
        made = fill_month(db, "2026-11", [p[:4] for p in demo_office.STAFF])
        first, last = timesheet.month_bounds("2026-11")
        rules = timesheet.WorkRules.from_settings(load(environ={"CONGSO_WORKRULES_SCANS": "4"}).workrules)
        rep = timesheet.report(db, rules, first, last, TZ, now=made["now"])
        db.conn.close()
    assert made["leave"] and made["corrections"] and len(rep.people) == 12
    s = Sheet(xlsx_bytes(rep))
    rows = read_csv(rep)
    header, by_id = rows[0], {r[0]: r for r in rows[1:]}
    data = timesheet.month_json(rep, OFFICE)
    seen = set()
    for person in data["staff"]:
        row, csv_row = s.row_of(person["name"]), by_id[person["staff_id"]]
        xlsx_totals = dict(zip(timesheet_form.TOTAL_KEYS, s.totals(row)))
        assert all(xlsx_totals[k] == v == number(csv_row[header.index(k)]) for k, v in person["totals"].items())
        for day, m in person["days"].items():
            symbol = marks.day_symbol(m["am"], m["pm"])
            seen.add(symbol)
            assert csv_row[3 + int(day)] == symbol and s.day(row, int(day)).value == (symbol or None)
    assert {"+", ""} <= seen and (seen & set(marks.LEAVE_KINDS) or any("/" in x for x in seen))


@pytest.mark.parametrize("first,days", [(date(2027, 1, 1), 31), (date(2027, 4, 5), 7), (date(2027, 4, 5), 1)])
def test_any_period_lays_out_without_overlapping_merges(first, days):
    period = [first + timedelta(n) for n in range(days)]
    person = {"staff_id": "NV001", "name": "Phạm Văn An", "department": "Văn phòng", "position": "",
              "active": True, "schedule": None}
    for people in ([person], []):
        rep = timesheet.Report(period[0], period[-1], period, people,
                               {"NV001": [build_day(d, {}) for d in period]} if people else {})
        s = Sheet(xlsx_bytes(rep, HEADER))
        taken: set[tuple[int, int]] = set()
        for r in s.ws.merged_cells.ranges:
            cells = {(row, col) for row in range(r.min_row, r.max_row + 1) for col in range(r.min_col, r.max_col + 1)}
            assert not cells & taken, str(r)
            taken |= cells
        assert s.first_total_col == 4 + days
        for title in ("Người chấm công", "Phụ trách bộ phận", "Thủ trưởng đơn vị", "Cộng"):
            s.find(title)
