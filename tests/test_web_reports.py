"""Báo cáo: attendance by day and by month, the events export; pages and downloads per role.

A real console app on a real gateway database; the scans go in through
the gateway's own ingest. Every download is read back (openpyxl, csv).
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from congso.gateway.ingest import Ingest
from congso.protocol import messages
from congso.protocol.link import Incoming
from rating_helpers import store, vote
from web_helpers import Console

SITE = "test-site"
TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo(TZ))  # November is over
HOSTILE = '=HYPERLINK("http://evil.example/x","Bấm")\x01'

# November 2026: the 2nd is a Monday. Default [workrules]: 07:30-11:30,13:30-17:00, 5 min grace.
SCANS = {
    "NV001": {2: ("07:25", "17:02"), 3: ("07:50", "17:00"), 4: ("07:28", "16:30")},
    "NV002": {2: ("07:29", "17:05")},
    "NV666": {2: ("07:30", "17:00")},
}


def _event(node, seq, day, hm, staff_id):
    return {"v": 1, "event_id": str(uuid.uuid4()), "node_id": node, "seq": seq,
            "ts": f"2026-11-{day:02d}T{hm}:00+07:00", "clock_synced": True,
            "method": "finger", "credential": "3", "staff_id": staff_id, "match_score": 120}


@pytest.fixture
def office(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW)
    c.staff("NV001", "Phạm Văn An", "Văn phòng")
    c.staff("NV002", "Lê Thị Bình", "Địa chính")
    with c.db.conn:  # a name that slipped in from an old import: a formula and a control character
        c.db.execute("INSERT INTO staff(staff_id, name, department, active) VALUES (?, ?, ?, 1)",
                     ("NV666", HOSTILE, "=1+1"))
    events, seq = [], 0
    for sid, days in SCANS.items():
        for day, times in days.items():
            for hm in times:
                seq += 1
                events.append(_event("door-1", seq, day, hm, sid))
    ingest = Ingest(c.db, SITE, TZ, max_behind_days=3650)
    items = [Incoming(f"congso/{SITE}/node/door-1/attendance", messages.encode("attendance", e), time.monotonic())
             for e in events]
    assert ingest.process(items).stored == len(events)
    store(c.db_path, [vote("satisfied", "2026-11-23T09:00:00+07:00", "mot-cua-1", officer="NV001", seq=1)])
    c.user("vt", "clerk")
    c.user("ld", "viewer")
    c.user("cuc", "officer")
    c.user("admin", "admin")
    return c


def _csv(r) -> list[list[str]]:
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in r.headers["content-disposition"]
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def _sheet(r):
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    return load_workbook(io.BytesIO(r.content)).active


@pytest.mark.parametrize("user", ["vt", "ld", "admin"])
def test_month_page_for_each_role_that_may_see_reports(office, user):
    c = office.login(user)
    page = c.get("/reports?month=2026-11")
    assert page.status_code == 200
    assert "Bảng chấm công tháng 11/2026" in page.text
    assert "Phạm Văn An" in page.text
    # Each person a row, each day a cell with the form's symbol: 30 day cells in An's row.
    row = page.text[page.text.index("<td>NV001</td>"):]
    row = row[:row.index("</tr>")]
    assert row.count('class="ts-cell') == 30
    assert '<td class="ts-cell ts-late">+</td>' in row and '<td class="ts-cell ts-absent">V</td>' in row
    assert page.headers["cache-control"] == "no-store"


def test_officer_gets_no_reports(office):
    o = office.login("cuc")
    for url in ("/reports", "/reports?month=2026-11", "/reports/attendance.xlsx?month=2026-11",
                "/reports/attendance.csv?day=2026-11-02", "/reports/events.csv"):
        assert o.get(url).status_code == 403, url


def test_month_xlsx_and_csv_have_the_right_figures(office):
    c = office.login("ld")
    ws = _sheet(c.get("/reports/attendance.xlsx?month=2026-11"))
    values = [[cell.value for cell in row] for row in ws.iter_rows()]
    header = next(row for row in values if row[3] == 1 and row[4] == 2)  # the day numbers' row
    an = next(row for row in values if row[1] == "Phạm Văn An")
    day = {d: header.index(d) for d in (2, 3, 4, 5, 24)}
    # Worked the 2nd to the 4th (late on the 3rd, early on the 4th), absent after; the 24th a holiday by law.
    assert [an[day[d]] for d in (2, 3, 4, 5, 24)] == ["+", "+", "+", "V", "L"]
    worked, absent, late, early = (header.index(t) for t in (
        "Số công hưởng lương thời gian", "Số công vắng không phép", "Đi muộn (phút)", "Về sớm (phút)"))
    # 07:50 is 20 minutes late; 16:30 is 30 minutes early; 20 working days, 3 worked.
    assert (an[worked], an[absent], an[late], an[early]) == (3, 17, 20, 30)

    table = _csv(c.get("/reports/attendance.csv?month=2026-11"))
    head, body = table[0], {r[0]: r for r in table[1:]}
    assert head[:5] == ["staff_id", "name", "position", "department", "1"]
    assert body["NV001"][head.index("3")] == "+" and body["NV001"][head.index("5")] == "V"
    assert body["NV001"][head.index("late_min")] == "20"
    assert body["NV002"][head.index("absent_days")] == "19"


def test_day_page_and_downloads(office):
    c = office.login("vt")
    page = c.get("/reports?day=03/11/2026")
    assert page.status_code == 200 and "Chấm công ngày 03/11/2026" in page.text
    assert "đi muộn 20 phút" in page.text and "vắng" in page.text
    table = _csv(c.get("/reports/attendance.csv?day=2026-11-03"))
    rows = {r[0]: r for r in table[1:]}
    assert table[0][3:5] == ["Giờ vào", "Giờ ra"]
    assert rows["NV001"][3:7] == ["07:50", "17:00", "20", ""] and rows["NV002"][7] == "vắng"
    ws = _sheet(c.get("/reports/attendance.xlsx?day=2026-11-03"))
    values = [[cell.value for cell in row] for row in ws.iter_rows()]
    assert ["NV001", "Phạm Văn An", "Văn phòng", "07:50", "17:00", 20] == next(r for r in values if r[0] == "NV001")[:6]


def test_events_export_csv_and_xlsx(office):
    c = office.login("ld")
    table = _csv(c.get("/reports/events.csv?kind=attendance&from=2026-11-02&to=2026-11-02"))
    assert len(table) - 1 == 6 and {r[table[0].index("staff_id")] for r in table[1:]} == {"NV001", "NV002", "NV666"}
    ws = _sheet(c.get("/reports/events.xlsx?kind=attendance&from=01/11/2026&to=30/11/2026"))
    assert ws.max_row - 1 == 10
    ws = _sheet(c.get("/reports/events.xlsx?kind=rating&from=2026-11-01&to=2026-11-30"))
    header = [cell.value for cell in ws[1]]
    assert ws.max_row == 2 and ws.cell(row=2, column=header.index("officer_id") + 1).value == "NV001"
    r = c.get("/reports/events.csv?kind=attendance&from=2026-11-30&to=2026-11-01")
    assert r.status_code == 422 and "Không xuất được sự kiện" in r.text


def test_a_hostile_name_never_becomes_a_formula(office):
    c = office.login("admin")
    for url in ("/reports/attendance.xlsx?month=2026-11", "/reports/attendance.xlsx?day=2026-11-02"):
        ws = _sheet(c.get(url))
        cells = [cell for row in ws.iter_rows() for cell in row if cell.value is not None]
        assert all(cell.data_type != "f" for cell in cells), url
        names = [cell.value for cell in cells if isinstance(cell.value, str) and "HYPERLINK" in cell.value]
        assert names == [HOSTILE.rstrip("\x01")], url  # as text, the control character gone
        assert "=1+1" in [cell.value for cell in cells]
    for url in ("/reports/attendance.csv?month=2026-11", "/reports/attendance.csv?day=2026-11-02"):
        table = _csv(c.get(url))
        row = next(r for r in table if r[0] == "NV666")
        assert row[1] == "'" + HOSTILE and row[table[0].index("department") if "department" in table[0] else 2] == "'=1+1", url


def test_bad_periods_say_what_is_wrong(office):
    c = office.login("vt")
    r = c.get("/reports?month=2026-13")
    assert r.status_code == 422 and "YYYY-MM" in r.text
    r = c.get("/reports/attendance.xlsx?day=32/11/2026")
    assert r.status_code == 422 and "is not a date" in r.text
