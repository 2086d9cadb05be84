"""Nghỉ phép & chấm công: leave, requests, corrections and holidays through the console's pages.

A real console app on a real gateway database (``web_helpers``); the scans
go in through the gateway's own ingest, the timesheet is the real one, and
what a page shows is checked where the user sees it (the list, the month
report, the dashboard).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from congso.gateway.ingest import Ingest
from congso.protocol import messages
from congso.protocol.link import Incoming
from web_helpers import Console

SITE = "test-site"
TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo(TZ))  # a Tuesday; November is over

# November 2026: the 2nd is a Monday. Default [workrules]: 07:30-11:30, 13:30-17:00.
SCANS = {
    "NV001": {2: ("07:25", "17:02"), 5: ("13:25", "17:03")},
    "NV002": {2: ("07:29", "17:05"), 3: ("07:29",)},  # the 3rd: in, never out
}


def _event(seq, day, hm, staff_id):
    return {"v": 1, "event_id": str(uuid.uuid4()), "node_id": "door-1", "seq": seq,
            "ts": f"2026-11-{day:02d}T{hm}:00+07:00", "clock_synced": True,
            "method": "finger", "credential": "3", "staff_id": staff_id, "match_score": 120}


@pytest.fixture
def office(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW)
    c.staff("NV001", "Phạm Văn An", "Văn phòng")
    c.staff("NV002", "Lê Thị Bình", "Địa chính")
    events, seq = [], 0
    for sid, days in SCANS.items():
        for day, times in days.items():
            for hm in times:
                seq += 1
                events.append(_event(seq, day, hm, sid))
    ingest = Ingest(c.db, SITE, TZ, max_behind_days=3650)
    items = [Incoming(f"congso/{SITE}/node/door-1/attendance", messages.encode("attendance", e), time.monotonic())
             for e in events]
    assert ingest.process(items).stored == len(events)
    c.user("vt", "clerk")
    c.user("ld", "viewer")
    c.user("cuc", "officer")  # staff NV-cuc, "Cán bộ cuc"
    return c


def rows(console, sql, params=()):
    return console.db.execute(sql, params).fetchall()


def audits(console, action):
    return [(r[0], r[1], json.loads(r[2]) if r[2] else None) for r in console.db.execute(
        "SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))]


def tr(html: str, marker: str) -> str:
    """The table row holding ``marker`` (an attribute or a cell)."""
    i = html.index(marker)
    start = html.rindex("<tr", 0, i)
    return html[start:html.index("</tr>", i)]


def person_row(report_html: str, staff_id: str) -> str:
    return tr(report_html, f"<td>{staff_id}</td>")


def cells(report_html: str, staff_id: str) -> list[tuple[str, str]]:
    """(class, text) of each day's cell in a person's row of the month report."""
    return re.findall(r'<td class="ts-cell ts-([^"]*)">([^<]*)</td>', person_row(report_html, staff_id))


def test_clerk_adds_a_half_day_leave_seen_in_the_list_and_the_month_report(office):
    vt = office.login("vt")
    # Before: the 5th's morning is an absence (An came at 13:25).
    assert cells(vt.get("/reports?month=2026-11").text, "NV001")[4][1] == "V/+"
    r = vt.post("/leave/new", data={"staff_id": "NV001", "kind": "P", "first_day": "05/11/2026", "last_day": "",
                                    "half": "am", "note": "Việc gia đình", "csrf_token": vt.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/leave?month=2026-11"
    stored = rows(office, "SELECT staff_id, kind, first_day, last_day, half, status, entered_by FROM leave")
    assert stored == [("NV001", "P", "2026-11-05", "2026-11-05", "am", "approved", "vt")]
    leave_id = rows(office, "SELECT id FROM leave")[0][0]
    assert audits(office, "leave.add") == [("vt", str(leave_id), {
        "staff_id": "NV001", "kind": "P", "first_day": "2026-11-05", "last_day": "2026-11-05", "half": "am"})]

    page = vt.get("/leave?month=2026-11")
    assert page.status_code == 200 and "Đã ghi nghỉ phép cho NV001." in page.text
    row = tr(page.text, f'data-leave="{leave_id}"')
    assert "Phạm Văn An" in row and "Nghỉ phép" in row and "Buổi sáng" in row and "05/11/2026" in row
    assert "Việc gia đình" in row and "Đã duyệt" in row
    # Another month does not list it; the person filter keeps it, another person's does not.
    assert f'data-leave="{leave_id}"' not in vt.get("/leave?month=2026-10").text
    assert f'data-leave="{leave_id}"' in vt.get("/leave?month=2026-11&staff=NV001").text
    assert f'data-leave="{leave_id}"' not in vt.get("/leave?month=2026-11&staff=NV002").text

    # The month report: the 5th is now annual leave in the morning, worked in the afternoon.
    assert cells(vt.get("/reports?month=2026-11").text, "NV001")[4][1] == "P/+"


def test_a_clerk_removes_a_leave_after_a_confirmation(office):
    vt = office.login("vt")
    vt.post("/leave/new", data={"staff_id": "NV002", "kind": "CT", "first_day": "2026-11-09",
                                "last_day": "2026-11-10", "csrf_token": vt.csrf})
    leave_id = rows(office, "SELECT id FROM leave")[0][0]
    confirm = vt.get(f"/leave/{leave_id}/delete")
    assert confirm.status_code == 200 and "Đi công tác" in confirm.text and "Lê Thị Bình" in confirm.text
    assert rows(office, "SELECT count(*) FROM leave") == [(1,)]  # looking is not removing
    r = vt.post(f"/leave/{leave_id}/delete", data={"csrf_token": vt.csrf})
    assert r.status_code == 303
    assert rows(office, "SELECT count(*) FROM leave") == [(0,)]
    assert [a[1] for a in audits(office, "leave.remove")] == [str(leave_id)]
    assert vt.get(f"/leave/{leave_id}/delete").status_code == 404


def test_a_bad_leave_says_why_and_keeps_what_was_typed(office):
    vt = office.login("vt")
    r = vt.post("/leave/new", data={"staff_id": "NV001", "kind": "P", "first_day": "2026-11-12",
                                    "last_day": "2026-11-10", "note": "Ghi chú giữ lại", "csrf_token": vt.csrf})
    assert r.status_code == 422
    assert "Chưa lưu được" in r.text and "is before" in r.text and "Ghi chú giữ lại" in r.text
    assert rows(office, "SELECT count(*) FROM leave") == [(0,)]


def test_a_viewer_sees_leave_but_cannot_add_or_remove(office):
    vt = office.login("vt")
    vt.post("/leave/new", data={"staff_id": "NV001", "kind": "Ô", "first_day": "2026-11-16", "csrf_token": vt.csrf})
    leave_id = rows(office, "SELECT id FROM leave")[0][0]
    ld = office.login("ld")
    page = ld.get("/leave?month=2026-11")
    assert page.status_code == 200 and "Ốm, điều dưỡng" in page.text
    assert 'action="/leave/new"' not in page.text and f"/leave/{leave_id}/delete" not in page.text
    before = rows(office, "SELECT * FROM leave")
    assert ld.post("/leave/new", data={"staff_id": "NV002", "kind": "P", "first_day": "2026-11-17",
                                       "csrf_token": ld.csrf}).status_code == 403
    assert ld.post(f"/leave/{leave_id}/delete", data={"csrf_token": ld.csrf}).status_code == 403
    assert ld.post("/leave/corrections", data={"staff_id": "NV002", "day": "2026-11-03", "time": "17:00",
                                               "reason": "quên chấm", "csrf_token": ld.csrf}).status_code == 403
    assert ld.post("/leave/holidays/off", data={"day": "2026-11-20", "name": "Nghỉ", "days": "1",
                                                "csrf_token": ld.csrf}).status_code == 403
    assert rows(office, "SELECT * FROM leave") == before
    assert rows(office, "SELECT count(*) FROM manual_punches") == [(0,)]
    assert rows(office, "SELECT count(*) FROM holidays") == [(0,)]


def test_an_officer_requests_leave_for_themselves_only_and_a_clerk_approves(office):
    cuc = office.login("cuc")
    assert cuc.get("/leave").status_code == 403  # the office's leave list is not an officer's
    assert "/leave/request" in cuc.get("/").text  # the dashboard links to the request form
    form = cuc.get("/leave/request")
    assert form.status_code == 200 and "Cán bộ cuc" in form.text
    # Someone else's leave: refused, nothing stored.
    r = cuc.post("/leave/request", data={"staff_id": "NV001", "kind": "P", "first_day": "2026-12-07",
                                         "csrf_token": cuc.csrf})
    assert r.status_code == 403
    assert rows(office, "SELECT count(*) FROM leave") == [(0,)]
    r = cuc.post("/leave/request", data={"staff_id": "NV-cuc", "kind": "P", "first_day": "2026-12-07",
                                         "last_day": "2026-12-08", "note": "Về quê", "csrf_token": cuc.csrf})
    assert r.status_code == 303
    assert rows(office, "SELECT staff_id, status, entered_by FROM leave") == [("NV-cuc", "requested", "cuc")]
    leave_id = rows(office, "SELECT id FROM leave")[0][0]
    assert tr(cuc.get("/leave/request").text, f'data-leave="{leave_id}"').count("Chờ duyệt") == 1
    # An officer decides nothing.
    assert cuc.post(f"/leave/{leave_id}/decide", data={"approve": "1", "csrf_token": cuc.csrf}).status_code == 403

    vt = office.login("vt")
    page = vt.get("/leave")
    assert "Đơn xin nghỉ chờ duyệt (1)" in page.text
    request_row = tr(page.text[page.text.index('id="requests"'):], f'data-leave="{leave_id}"')
    assert "Cán bộ cuc" in request_row and "Về quê" in request_row
    r = vt.post(f"/leave/{leave_id}/decide", data={"approve": "1", "csrf_token": vt.csrf})
    assert r.status_code == 303
    assert rows(office, "SELECT status, decided_by FROM leave") == [("approved", "vt")]
    assert [a[:2] for a in audits(office, "leave.approve")] == [("vt", str(leave_id))]
    assert "Đơn xin nghỉ chờ duyệt" not in vt.get("/leave").text
    assert "Đã duyệt" in tr(cuc.get("/leave/request").text, f'data-leave="{leave_id}"')


def test_a_clerk_refuses_a_request(office):
    cuc = office.login("cuc")
    cuc.post("/leave/request", data={"staff_id": "NV-cuc", "kind": "No", "first_day": "2026-12-14",
                                     "csrf_token": cuc.csrf})
    leave_id = rows(office, "SELECT id FROM leave")[0][0]
    vt = office.login("vt")
    assert vt.post(f"/leave/{leave_id}/decide", data={"approve": "0", "csrf_token": vt.csrf}).status_code == 303
    assert rows(office, "SELECT status, decided_by FROM leave") == [("refused", "vt")]
    assert len(audits(office, "leave.refuse")) == 1
    assert "Không duyệt" in tr(cuc.get("/leave/request").text, f'data-leave="{leave_id}"')


def test_an_officer_without_a_staff_id_cannot_request(office):
    from congso.gateway import accounts

    accounts.add_user(office.db, "khach", "officer", "mat-khau-thu-nghiem-10", None)
    c = office.login("khach")
    assert c.get("/leave/request").status_code == 403
    assert c.post("/leave/request", data={"staff_id": "", "kind": "P", "first_day": "2026-12-07",
                                          "csrf_token": c.csrf}).status_code == 403
    assert rows(office, "SELECT count(*) FROM leave") == [(0,)]


def test_a_correction_leaves_the_to_do_list_and_is_listed_with_its_reason(office):
    vt = office.login("vt")
    page = vt.get("/leave/corrections?month=2026-11")
    assert page.status_code == 200
    todo = tr(page.text, 'data-staff="NV002" data-day="2026-11-03"')
    assert "Lê Thị Bình" in todo and "07:29" in todo and "Thiếu giờ ra" in todo
    assert 'data-staff="NV001"' not in page.text  # An's days are whole (or absent, not a correction)
    r = vt.post("/leave/corrections", data={"staff_id": "NV002", "day": "2026-11-03", "time": "17:02",
                                            "reason": "Quên chấm công khi về", "month": "2026-11",
                                            "csrf_token": vt.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/leave/corrections?month=2026-11"
    stored = rows(office, "SELECT staff_id, ts, local_date, reason, entered_by FROM manual_punches")
    assert stored == [("NV002", "2026-11-03T17:02:00+07:00", "2026-11-03", "Quên chấm công khi về", "vt")]
    punch_id = rows(office, "SELECT id FROM manual_punches")[0][0]
    assert audits(office, "leave.punch_add") == [("vt", str(punch_id), {
        "staff_id": "NV002", "at": "2026-11-03T17:02", "reason": "Quên chấm công khi về"})]

    page = vt.get("/leave/corrections?month=2026-11")
    assert 'data-staff="NV002" data-day="2026-11-03"' not in page.text
    entered = tr(page.text, f'data-punch="{punch_id}"')
    assert "Lê Thị Bình" in entered and "17:02 03/11/2026" in entered
    assert "Quên chấm công khi về" in entered and "<td>vt</td>" in entered
    # The month report counts the day as worked (flagged as a correction there).
    day3 = cells(vt.get("/reports?month=2026-11").text, "NV002")[2][1]
    assert day3.startswith("+") and "/" not in day3 and "V" not in day3  # (the report's own mark may follow)

    # Removed: back on the to-do list.
    assert vt.post(f"/leave/corrections/{punch_id}/delete", data={"month": "2026-11",
                                                                 "csrf_token": vt.csrf}).status_code == 303
    assert rows(office, "SELECT count(*) FROM manual_punches") == [(0,)]
    assert len(audits(office, "leave.punch_remove")) == 1
    assert 'data-staff="NV002" data-day="2026-11-03"' in vt.get("/leave/corrections?month=2026-11").text


def test_a_correction_without_a_reason_is_refused_and_the_form_kept(office):
    vt = office.login("vt")
    r = vt.post("/leave/corrections", data={"staff_id": "NV002", "day": "2026-11-03", "time": "17:02",
                                            "reason": "", "month": "2026-11", "csrf_token": vt.csrf})
    assert r.status_code == 422 and "--reason" in r.text
    r = vt.post("/leave/corrections", data={"staff_id": "NV002", "day": "2026-11-03", "time": "25:00",
                                            "reason": "quên chấm", "month": "2026-11", "csrf_token": vt.csrf})
    assert r.status_code == 422 and "HH:MM" in r.text
    assert rows(office, "SELECT count(*) FROM manual_punches") == [(0,)]


def test_holidays_page_lists_the_law_and_the_office_entries(office):
    vt = office.login("vt")
    page = vt.get("/leave/holidays?year=2027")
    assert page.status_code == 200
    # Tết Nguyên Đán 2027 (6 February) is there without anyone entering it.
    tet = tr(page.text, 'data-day="2027-02-06"')
    assert "Nghỉ lễ, Tết" in tet and "Theo Bộ luật Lao động" in tet
    r = vt.post("/leave/holidays/workday", data={"wday": "2027-02-13", "wname": "Làm bù cho ngày nghỉ Tết",
                                                 "year": "2027", "csrf_token": vt.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/leave/holidays?year=2027"
    r = vt.post("/leave/holidays/off", data={"day": "2027-02-15", "days": "2", "name": "Nghỉ thêm dịp Tết",
                                             "year": "2027", "csrf_token": vt.csrf})
    assert r.status_code == 303
    page = vt.get("/leave/holidays?year=2027")
    swapped = tr(page.text, 'data-day="2027-02-13"')
    assert "Làm bù cho ngày nghỉ Tết" in swapped and "Làm việc bù" in swapped and "Thứ Bảy" in swapped
    assert "Cơ quan nhập" in swapped
    assert "Nghỉ thêm dịp Tết" in tr(page.text, 'data-day="2027-02-16"')
    assert [a[1] for a in audits(office, "holiday.workday")] == ["2027-02-13"]
    assert [a[1] for a in audits(office, "holiday.add")] == ["2027-02-15"]
    # The office's entry can be removed; the law's cannot (no button).
    assert "/leave/holidays/2027-02-13/delete" in swapped and "/delete" not in tet
    assert vt.post("/leave/holidays/2027-02-13/delete", data={"year": "2027", "csrf_token": vt.csrf}).status_code == 303
    assert 'data-day="2027-02-13"' not in vt.get("/leave/holidays?year=2027").text
    assert rows(office, "SELECT day FROM holidays ORDER BY day") == [("2027-02-15",), ("2027-02-16",)]


def test_a_holiday_workday_counts_in_the_month_report(office):
    vt = office.login("vt")
    assert cells(vt.get("/reports?month=2026-11").text, "NV001")[6][0] == "off"  # Saturday the 7th
    assert vt.post("/leave/holidays/workday", data={"wday": "2026-11-07", "wname": "Làm bù",
                                                    "csrf_token": vt.csrf}).status_code == 303
    # Now a working day: nobody scanned, so it is an absence on the form.
    assert cells(vt.get("/reports?month=2026-11").text, "NV001")[6][1] == "V"
    assert "<td>Làm bù</td>" in tr(vt.get("/leave/holidays?year=2026").text, 'data-day="2026-11-07"')


def test_without_the_csrf_token_nothing_changes(office):
    vt = office.login("vt")
    posts = [("/leave/new", {"staff_id": "NV001", "kind": "P", "first_day": "2026-11-05"}),
             ("/leave/corrections", {"staff_id": "NV002", "day": "2026-11-03", "time": "17:00", "reason": "quên chấm"}),
             ("/leave/holidays/off", {"day": "2026-11-20", "name": "Nghỉ", "days": "1"}),
             ("/leave/holidays/workday", {"wday": "2026-11-21", "wname": "Làm bù"})]
    for url, data in posts:
        assert vt.post(url, data=data).status_code == 403, url
        assert vt.post(url, data={**data, "csrf_token": "not-the-token"}).status_code == 403, url
    cuc = office.login("cuc")
    assert cuc.post("/leave/request", data={"staff_id": "NV-cuc", "kind": "P",
                                            "first_day": "2026-12-07"}).status_code == 403
    for table in ("leave", "manual_punches", "holidays"):
        assert rows(office, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_the_dashboard_says_who_is_on_leave_today(office):
    vt = office.login("vt")
    vt.post("/leave/new", data={"staff_id": "NV001", "kind": "CT", "first_day": "2026-12-01",
                                "last_day": "2026-12-03", "csrf_token": vt.csrf})
    vt.post("/leave/new", data={"staff_id": "NV002", "kind": "P", "first_day": "2026-12-01", "half": "pm",
                                "csrf_token": vt.csrf})
    html = vt.get("/fragments/attendance-today").text
    assert "Nghỉ phép, đi công tác hôm nay" in html
    assert "Phạm Văn An <span class=\"muted small\">(Đi công tác (cả ngày))</span>" in html
    assert "Lê Thị Bình <span class=\"muted small\">(Nghỉ phép (buổi chiều))</span>" in html
    # On a trip all day: not "not in yet". Bình is due this morning: still "not in yet".
    not_in = html[html.index("Chưa đến</h3>"):html.index("Nghỉ phép, đi công tác hôm nay")]
    assert "Phạm Văn An" not in not_in and "Lê Thị Bình" in not_in
    # An officer sees the count, not the names.
    cuc_html = office.login("cuc").get("/fragments/attendance-today").text
    assert "nghỉ phép, công tác" in cuc_html and "Phạm Văn An" not in cuc_html


def test_pages_are_vietnamese_and_answer_bad_arguments_with_this_month(office):
    vt = office.login("vt")
    for url in ("/leave?month=abc", "/leave/corrections?month=2026-13", "/leave/holidays?year=xyz",
                "/leave?status=nonsense&staff=%3Cscript%3E"):
        r = vt.get(url)
        assert r.status_code == 200, url
        assert "<script>" not in r.text.replace('<script src="/static/console.js" defer></script>', "")
    assert "Nghỉ phép &amp; chấm công" in vt.get("/leave").text  # the menu entry
    assert re.search(r'<a href="/leave" class="active"', vt.get("/leave").text)
