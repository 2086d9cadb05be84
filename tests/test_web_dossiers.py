"""The *Hồ sơ* page: search, filters, paging, add, view with history, edit, status, import.

Through the ASGI test client on a real gateway database (``web_helpers``).
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from encoding_helpers import cp1258
from web_helpers import Console
from congso.gateway import audit, dossiers
from congso.vocab.vietnamese import mask_name

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)
TZN = "Asia/Ho_Chi_Minh"


@pytest.fixture
def console(tmp_path):
    return Console(tmp_path, clock=lambda: NOW)


def add(console, code, applicant="Nguyễn Thị Thu Hà", procedure="Đăng ký khai sinh", received="2026-11-23 08:00",
        due="2026-11-26", status="received", desk=None, online=False):
    return dossiers.add(console.db, code, applicant, procedure, received, due, status, desk, now=NOW, tz=TZN,
                        online=online)


def codes(html: str) -> list[str]:
    return re.findall(r'<td><a href="/dossiers/[^"]+">([^<]+)</a>', html)


def count(console) -> int:
    return console.db.execute("SELECT count(*) FROM dossiers").fetchone()[0]


# -- who may ---------------------------------------------------------------------------------
def test_the_roles_that_may_see_and_change_dossiers(console):
    add(console, "HS-1")
    for role in ("admin", "clerk", "officer"):
        c = console.as_role(role)
        assert c.get("/dossiers").status_code == 200
        assert c.get("/dossiers/HS-1").status_code == 200
        assert c.get("/dossiers/new").status_code == 200
    viewer = console.as_role("viewer")
    for url in ("/dossiers", "/dossiers/HS-1", "/dossiers/new", "/dossiers/import", "/dossiers/HS-1/edit"):
        assert viewer.get(url).status_code == 403, url
    r = viewer.post("/dossiers/HS-1/status", data={"status": "ready", "csrf_token": viewer.csrf})
    assert r.status_code == 403
    assert dossiers.get(console.db, "HS-1")["status"] == "received"
    # Logged out: to the login page.
    r = console.client().get("/dossiers?q=HS")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_a_change_without_the_csrf_token_is_refused(console):
    add(console, "HS-1")
    c = console.as_role("clerk")
    assert c.post("/dossiers/HS-1/status", data={"status": "ready"}).status_code == 403
    assert c.post("/dossiers/new", data={"code": "HS-2", "applicant": "A", "procedure": "P", "received": "23/11/2026"}).status_code == 403
    assert dossiers.get(console.db, "HS-1")["status"] == "received" and count(console) == 1


# -- search, filters, paging -----------------------------------------------------------------
def test_search_by_code_applicant_or_procedure_and_the_full_name_for_staff(console):
    add(console, "000.00.12.H23-261123-0001", applicant="Trần Văn Bình", procedure="Chứng thực bản sao")
    add(console, "000.00.12.H23-261123-0002", applicant="Lê Thị Hoa", procedure="Đăng ký kết hôn")
    add(console, "000.00.12.H23-261124-0003", applicant="Phạm Văn Bình", procedure="Đăng ký khai sinh")
    c = console.as_role("officer")
    r = c.get("/dossiers")
    assert r.status_code == 200 and len(codes(r.text)) == 3
    assert "Trần Văn Bình" in r.text  # staff see the full name
    assert sorted(codes(c.get("/dossiers?q=Bình").text)) == ["000.00.12.H23-261123-0001", "000.00.12.H23-261124-0003"]
    assert codes(c.get("/dossiers?q=kết hôn").text) == ["000.00.12.H23-261123-0002"]
    assert sorted(codes(c.get("/dossiers?q=261123").text)) == ["000.00.12.H23-261123-0001", "000.00.12.H23-261123-0002"]
    assert codes(c.get("/dossiers?q=không có ai").text) == []
    assert "Không có hồ sơ nào" in c.get("/dossiers?q=không có ai").text
    # A search typed in another Unicode form finds the same.
    import unicodedata
    assert len(codes(c.get("/dossiers", params={"q": unicodedata.normalize("NFD", "Bình")}).text)) == 2
    # LIKE's wildcards are just characters.
    assert codes(c.get("/dossiers?q=%25").text) == []


def test_a_scanned_code_and_enter_opens_the_dossier(console):
    add(console, "000.00.12.H23-261123-0001")
    add(console, "000.00.12.H23-261123-00012")
    c = console.as_role("officer")
    page = c.get("/dossiers").text
    assert re.search(r'<form method="get" action="/dossiers"[^>]*>', page)
    assert re.search(r'<input type="search" name="q"[^>]*autofocus', page)  # the scanner types into it at once
    # The scanner types the code and presses Enter: the form's GET, with the code exactly (and spaces around).
    r = c.get("/dossiers", params={"q": " 000.00.12.H23-261123-0001 "})
    assert r.status_code == 303 and r.headers["location"] == "/dossiers/000.00.12.H23-261123-0001"
    assert "000.00.12.H23-261123-0001" in c.get(r.headers["location"]).text
    # The receipt's QR: the portal's page of the dossier, the code in its URL.
    r = c.get("/dossiers", params={"q": "https://dichvucong.example.gov.vn/tra-cuu?ma=000.00.12.H23-261123-0001"})
    assert r.status_code == 303 and r.headers["location"] == "/dossiers/000.00.12.H23-261123-0001"
    # Part of a code is a search.
    r = c.get("/dossiers", params={"q": "261123-000"})
    assert r.status_code == 200 and len(codes(r.text)) == 2


def test_filters_by_status_overdue_desk_and_online(console):
    add(console, "HS-A", received="2026-11-01", status="received", due="2026-11-20", desk="Quầy 1")                     # overdue
    add(console, "HS-B", received="2026-11-01", status="processing", due="2026-11-24T09:00:00+07:00", desk="Quầy 2")    # overdue (09:00 today)
    add(console, "HS-C", received="2026-11-01", status="processing", due="2026-11-24", desk="Quầy 2", online=True)       # due today: not yet
    add(console, "HS-D", received="2026-11-01", status="ready", due="2026-11-10", desk="Quầy 1")                        # done: never overdue
    add(console, "HS-E", received="2026-11-01", status="supplement_required", due=None, online=True)
    c = console.as_role("clerk")
    assert sorted(codes(c.get("/dossiers?status=processing").text)) == ["HS-B", "HS-C"]
    assert codes(c.get("/dossiers?status=ready").text) == ["HS-D"]
    assert sorted(codes(c.get("/dossiers?overdue=1").text)) == ["HS-A", "HS-B"]
    assert sorted(codes(c.get("/dossiers", params={"desk": "Quầy 2"}).text)) == ["HS-B", "HS-C"]
    assert sorted(codes(c.get("/dossiers?online=1").text)) == ["HS-C", "HS-E"]
    assert sorted(codes(c.get("/dossiers?online=0").text)) == ["HS-A", "HS-B", "HS-D"]
    assert codes(c.get("/dossiers", params={"desk": "Quầy 2", "overdue": "1"}).text) == ["HS-B"]
    page = c.get("/dossiers?overdue=1").text
    assert "Quá hạn" in page and "2 hồ sơ" in page
    assert '<option value="Quầy 1"' in page  # the desks to choose from
    # The library agrees with the board's overdue rule.
    rows, total = dossiers.search(console.db, overdue=True, now=NOW)
    assert total == dossiers.board(console.db, NOW)["counts"]["overdue"] == 2


def _many(console, n: int, **extra) -> None:
    with console.db.conn:
        for i in range(n):
            at = (NOW - timedelta(minutes=i)).isoformat(timespec="seconds")
            console.db.conn.execute(
                "INSERT INTO dossiers(code, applicant, procedure, received_at, due_at, status, desk, online, status_changed_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (f"HS-{i:05d}", f"Người nộp {i}", "Chứng thực", at, None, extra.get("status", ["received", "processing"][i % 2]),
                 None, 0, at, at))


def test_fifty_a_page_newest_first_and_the_pager_keeps_the_filters(console):
    _many(console, 120)
    c = console.as_role("clerk")
    first = c.get("/dossiers")
    assert codes(first.text) == [f"HS-{i:05d}" for i in range(50)]
    assert "Trang 1/3" in first.text and "120 hồ sơ" in first.text
    assert codes(c.get("/dossiers?page=3").text) == [f"HS-{i:05d}" for i in range(100, 120)]
    assert codes(c.get("/dossiers?page=9").text) == []
    processing = c.get("/dossiers?status=processing&page=2")
    assert codes(processing.text) == [f"HS-{i:05d}" for i in range(101, 120, 2)]
    assert "Trang 2/2" in processing.text and 'href="/dossiers?status=processing&amp;page=1"' in processing.text
    # A search with page=... lists, even when the text is a code (the pager of a search must page).
    assert c.get("/dossiers?q=HS-00001&page=1").status_code == 200


def test_the_list_query_uses_the_received_at_index_and_stays_fast_with_20000(console):
    _many(console, 20000)
    plan = " ".join(r[3] for r in console.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM dossiers ORDER BY received_at DESC, code LIMIT 50 OFFSET 0"))
    assert "idx_dossiers_received_at" in plan, plan
    c = console.as_role("clerk")
    c.get("/dossiers")
    for url in ("/dossiers", "/dossiers?page=200", "/dossiers?status=processing", "/dossiers?q=Người nộp 1999",
                "/dossiers?overdue=1"):
        started = time.perf_counter()
        r = c.get(url)
        assert r.status_code == 200
        # Generous for a loaded 2-core CI machine; bench/console.py measures the 150 ms target.
        assert time.perf_counter() - started < 1.5, url
    rows, total = dossiers.search(console.db, q="Người nộp 19999", page=1, per_page=50, now=NOW)
    assert total == 1 and rows[0]["code"] == "HS-19999"


# -- add, view, edit, status -----------------------------------------------------------------
def test_add_a_dossier_then_see_it_with_its_history(console):
    c = console.as_role("officer")
    form = {"code": "HS-NEW", "applicant": "Đặng Thị Ngọc Ánh", "procedure": "Chứng thực chữ ký",
            "received": "23/11/2026 14:30", "due": "25/11/2026", "status": "processing", "desk": "Quầy 1",
            "online": "1", "csrf_token": c.csrf}
    r = c.post("/dossiers/new", data=form)
    assert r.status_code == 303 and r.headers["location"] == "/dossiers/HS-NEW"
    stored = dossiers.get(console.db, "HS-NEW")
    assert (stored["applicant"], stored["received_at"], stored["due_at"], stored["status"], stored["desk"], stored["online"]) == \
        ("Đặng Thị Ngọc Ánh", "2026-11-23T14:30:00+07:00", "2026-11-25", "processing", "Quầy 1", 1)
    page = c.get("/dossiers/HS-NEW")
    assert "Đã thêm hồ sơ HS-NEW" in page.text  # the flash
    assert "Đặng Thị Ngọc Ánh" in page.text and "23/11/2026" in page.text and "14:30" in page.text
    assert "Đang xử lý" in page.text and "Trực tuyến" in page.text
    assert [h["source"] for h in dossiers.history(console.db, "HS-NEW")] == ["web"]
    row = audit.search(console.db)[0][0]
    assert (row["actor"], row["via"], row["action"], row["target"]) == ("u-officer", "web", "dossiers.add", "HS-NEW")
    assert "Đặng Thị Ngọc Ánh" not in (row["detail"] or "")
    # The TV's board has the masked name only.
    board = dossiers.board(console.db, NOW)
    assert [d["applicant"] for d in board["dossiers"]] == [mask_name("Đặng Thị Ngọc Ánh")]


@pytest.mark.parametrize("change, shown", [
    ({"code": "HS-1"}, "already exists"),
    ({"applicant": "Ánh\x00"}, "control character"),
    ({"received": "31/02/2026"}, "not a valid date"),
    ({"due": "20/11/2026"}, "before the received date"),
    ({"procedure": ""}, "procedure is empty"),
])
def test_a_bad_new_dossier_is_shown_on_the_form_kept_and_nothing_stored(console, change, shown):
    add(console, "HS-1")
    c = console.as_role("clerk")
    form = {"code": "HS-2", "applicant": "Đặng Thị Ngọc Ánh", "procedure": "Chứng thực", "received": "23/11/2026",
            "due": "25/11/2026", "csrf_token": c.csrf, **change}
    r = c.post("/dossiers/new", data=form)
    assert r.status_code == 422
    assert shown in r.text and "Chưa lưu được" in r.text
    assert 'value="Chứng thực"' in r.text or change.get("procedure") == ""  # what was typed is kept
    assert count(console) == 1 and dossiers.get(console.db, "HS-1")["applicant"] == "Nguyễn Thị Thu Hà"


def test_edit_a_dossier_and_a_bad_edit_changes_nothing(console):
    add(console, "HS-1", desk="Quầy 1")
    c = console.as_role("clerk")
    page = c.get("/dossiers/HS-1/edit")
    assert page.status_code == 200
    assert 'value="Nguyễn Thị Thu Hà"' in page.text and 'value="23/11/2026 08:00"' in page.text and 'value="26/11/2026"' in page.text
    form = {"applicant": "Nguyễn Thị Thu Hằng", "procedure": "Đăng ký khai sinh", "received": "23/11/2026 08:00",
            "due": "27/11/2026 16:00", "desk": "Quầy 3", "online": "1", "csrf_token": c.csrf}
    r = c.post("/dossiers/HS-1/edit", data=form)
    assert r.status_code == 303 and r.headers["location"] == "/dossiers/HS-1"
    d = dossiers.get(console.db, "HS-1")
    assert (d["applicant"], d["due_at"], d["desk"], d["online"], d["status"]) == \
        ("Nguyễn Thị Thu Hằng", "2026-11-27T16:00:00+07:00", "Quầy 3", 1, "received")
    row = audit.search(console.db)[0][0]
    assert row["action"] == "dossiers.edit" and "Quầy 3" in row["detail"] and "Hằng" not in row["detail"]
    before = dossiers.get(console.db, "HS-1")
    r = c.post("/dossiers/HS-1/edit", data={**form, "due": "hôm qua", "desk": "Quầy 9"})
    assert r.status_code == 422 and "hôm qua" in r.text and 'value="Quầy 9"' in r.text
    assert dossiers.get(console.db, "HS-1") == before
    assert c.get("/dossiers/HS-404/edit").status_code == 404


def test_change_the_status_keeps_the_history(console):
    add(console, "HS-1")
    c = console.as_role("officer")
    page = c.get("/dossiers/HS-1").text
    assert 'action="/dossiers/HS-1/status"' in page and 'name="csrf_token"' in page
    for status in ("processing", "supplement_required", "processing", "ready"):
        r = c.post("/dossiers/HS-1/status", data={"status": status, "csrf_token": c.csrf})
        assert r.status_code == 303
    assert [h["status"] for h in dossiers.history(console.db, "HS-1")] == \
        ["received", "processing", "supplement_required", "processing", "ready"]
    page = c.get("/dossiers/HS-1").text
    assert "Hồ sơ HS-1: Đang xử lý → Đã có kết quả." in page
    history = page[page.index("Lịch sử trạng thái"):]
    assert history.count("<tr><td>") == 5 and "Yêu cầu bổ sung" in history
    assert [r["action"] for r in audit.search(console.db)[0]].count("dossiers.status") == 4
    # The same status again: no new history row; an unknown one is refused.
    c.post("/dossiers/HS-1/status", data={"status": "ready", "csrf_token": c.csrf})
    r = c.post("/dossiers/HS-1/status", data={"status": "lost", "csrf_token": c.csrf})
    assert r.status_code == 422 and "unknown status" in r.text
    assert len(dossiers.history(console.db, "HS-1")) == 5
    assert c.post("/dossiers/HS-404/status", data={"status": "ready", "csrf_token": c.csrf}).status_code == 404
    assert c.get("/dossiers/HS-404").status_code == 404


def test_a_code_with_a_slash_has_its_page(console):
    add(console, "123/2026/HS-TP")
    c = console.as_role("clerk")
    r = c.get("/dossiers?q=123/2026/HS-TP")
    assert r.status_code == 303 and r.headers["location"] == "/dossiers/123%2F2026%2FHS-TP"
    assert "123/2026/HS-TP" in c.get(r.headers["location"]).text
    assert c.post("/dossiers/123%2F2026%2FHS-TP/status", data={"status": "ready", "csrf_token": c.csrf}).status_code == 303
    assert dossiers.get(console.db, "123/2026/HS-TP")["status"] == "ready"


# -- import ----------------------------------------------------------------------------------
EXPORT = ("DANH SÁCH HỒ SƠ TIẾP NHẬN\n\n"
          "STT,Mã hồ sơ,Chủ hồ sơ,Tên thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Bộ phận\n"
          "1,HS-1,Nguyễn Văn Tư,Chứng thực,23/11/2026 08:00,25/11/2026,Đang xử lý,Quầy 1\n"
          "2,HS-2,Trần Thị Năm,Khai sinh,23/11/2026,26/11/2026,Đã tiếp nhận,Quầy 2\n")


def test_import_a_csv_export(console):
    add(console, "HS-1", applicant="Nguyễn Văn Tư", procedure="Chứng thực", received="2026-11-23 08:00", due="2026-11-25")
    c = console.as_role("clerk")
    assert c.get("/dossiers/import").status_code == 200
    r = c.post("/dossiers/import", data={"csrf_token": c.csrf},
               files={"file": ("ho-so.csv", cp1258(EXPORT), "text/csv")})
    assert r.status_code == 303 and r.headers["location"] == "/dossiers"
    page = c.get("/dossiers").text
    assert "Đã nhập tệp ho-so.csv: 1 hồ sơ mới, 1 hồ sơ cập nhật" in page
    assert dossiers.get(console.db, "HS-1")["status"] == "processing"
    assert dossiers.get(console.db, "HS-2")["applicant"] == "Trần Thị Năm"
    assert [h["source"] for h in dossiers.history(console.db, "HS-1")] == ["cli", "import"]
    row = audit.search(console.db)[0][0]
    assert (row["action"], row["target"]) == ("dossiers.import", "ho-so.csv")


def test_import_an_xlsx_export(console):
    wb = Workbook()
    sheet = wb.active
    sheet.append(["Mã hồ sơ", "Họ tên", "Tên thủ tục hành chính", "Ngày nhận", "Hẹn trả", "Tình trạng", "Quầy"])
    sheet.append(["HS-X1", "Vũ Thị Mai", "Cấp bản sao trích lục", datetime(2026, 11, 23, 9, 0), datetime(2026, 11, 27), "Chờ trả kết quả", "Quầy 2"])
    buf = io.BytesIO()
    wb.save(buf)
    c = console.as_role("officer")
    r = c.post("/dossiers/import", data={"csrf_token": c.csrf}, files={"file": ("export.xlsx", buf.getvalue(),
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
    assert r.status_code == 303, r.text[:2000]
    d = dossiers.get(console.db, "HS-X1")
    assert (d["applicant"], d["status"], d["desk"]) == ("Vũ Thị Mai", "ready", "Quầy 2")


def test_a_bad_import_lists_every_line_and_stores_nothing(console):
    add(console, "HS-1", applicant="Nguyễn Văn Tư")
    bad = ("Mã hồ sơ,Tên người nộp,Thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái\n"
           "HS-1,Nguyễn Văn Tư,Chứng thực,23/11/2026,25/11/2026,Đã có kết quả\n"
           "HS-3,,Khai sinh,23/11/2026,,\n"
           "HS-4,Lê Văn Sáu,Kết hôn,32/11/2026,,\n"
           "HS-5,Lê Văn Bảy,Kết hôn,23/11/2026,,bay mất\n")
    c = console.as_role("clerk")
    r = c.post("/dossiers/import", data={"csrf_token": c.csrf}, files={"file": ("sai.csv", bad.encode(), "text/csv")})
    assert r.status_code == 422
    assert "không lưu hồ sơ nào" in r.text and "có 3 lỗi" in r.text
    for line in ("line 3: applicant is empty", "line 4: received date", "line 5: unknown status"):
        assert line in r.text, line
    assert "/tmp/" not in r.text  # the file's name, not where the console put it
    assert count(console) == 1 and dossiers.get(console.db, "HS-1")["status"] == "received"
    # No file, a file with no header, a hostile one: a clear message, nothing stored.
    r = c.post("/dossiers/import", data={"csrf_token": c.csrf})
    assert r.status_code == 422 and "Hãy chọn tệp" in r.text
    r = c.post("/dossiers/import", data={"csrf_token": c.csrf}, files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")})
    assert r.status_code == 422 and "no header row" in r.text
    r = c.post("/dossiers/import", data={"csrf_token": c.csrf}, files={"file": ("x.xlsx", b"PK\x03\x04 not a zip", "application/zip")})
    assert r.status_code == 422 and "chưa được nhập" in r.text
    assert count(console) == 1
    assert not any(row["action"] == "dossiers.import" for row in audit.search(console.db)[0])
