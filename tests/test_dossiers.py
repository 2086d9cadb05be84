"""Dossiers at the gateway: register, status history, one-stop imports, the masked public board."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from congso.gateway import domains, dossiers, state
from congso.gateway.db import open_db
from congso.protocol import messages

from conftest import run_congso
from encoding_helpers import cp1258 as _cp1258

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo(TZ))  # a Tuesday


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "gateway.sqlite")


def _add(db, code, name="Nguyễn Thị Thu Hà", status="received", due="25/11/2026", received="23/11/2026", now=NOW):
    return dossiers.add(db, code, name, "Đăng ký khai sinh", received, due, status, "Tư pháp", now=now, tz=TZ)


def test_the_board_shows_masked_names_only_and_counts_overdue(db):
    _add(db, "HS-1")
    _add(db, "HS-2", name="Trần Văn Bình", due="20/11/2026", received="18/11/2026")  # overdue
    _add(db, "HS-3", name="Lê Hoa", status="ready")
    payload = dossiers.board(db, NOW)
    data = messages.encode("dossiers", {"v": 1, "version": 1, **payload}).decode()
    assert "Nguyễn Thị Thu Hà" not in data and "Trần Văn Bình" not in data and "Lê Hoa" not in data
    names = {d["code"]: d["applicant"] for d in payload["dossiers"]}
    assert names == {"HS-1": "Nguyễn T. T. H.", "HS-2": "Trần V. B.", "HS-3": "Lê H."}
    assert payload["counts"] == {"received": 2, "processing": 0, "supplement_required": 0, "ready": 1,
                                 "returned": 0, "overdue": 1}
    # Ready for pickup first, then the late one.
    assert [d["code"] for d in payload["dossiers"]] == ["HS-3", "HS-2", "HS-1"]


def test_a_due_date_counts_until_the_end_of_its_day():
    assert not dossiers.is_overdue("processing", "2026-11-24", NOW)
    assert dossiers.is_overdue("processing", "2026-11-23", NOW)
    assert dossiers.is_overdue("received", "2026-11-24T09:30:00+07:00", NOW)
    assert not dossiers.is_overdue("ready", "2026-11-01", NOW)  # done is never late


def test_status_changes_are_kept_and_returned_dossiers_leave_the_board_next_day(db):
    _add(db, "HS-1")
    dossiers.set_status(db, "HS-1", "Đang xử lý", now=NOW)
    dossiers.set_status(db, "HS-1", "ready", now=NOW)
    dossiers.set_status(db, "HS-1", "Đã trả kết quả", now=NOW)
    assert [h["status"] for h in dossiers.history(db, "HS-1")] == ["received", "processing", "ready", "returned"]
    assert dossiers.board(db, NOW)["counts"]["returned"] == 1
    tomorrow = NOW.replace(day=25)
    board = dossiers.board(db, tomorrow)
    assert board["dossiers"] == [] and board["counts"]["returned"] == 0
    with pytest.raises(dossiers.DossierError, match="no dossier"):
        dossiers.set_status(db, "HS-404", "ready", now=NOW)
    with pytest.raises(dossiers.DossierError, match="unknown status 'Xong'"):
        dossiers.set_status(db, "HS-1", "Xong", now=NOW)


def test_a_board_too_big_for_one_message_keeps_the_most_useful_and_counts_the_rest(db):
    with db.conn:
        for i in range(600):
            d = dossiers.Dossier(f"000.00.12.H40-261120-{i:04d}", "Nguyễn Thị Thu Hà", "Cấp giấy chứng nhận quyền sử dụng đất lần đầu " * 2,
                                 "2026-11-20", "2026-12-20", "ready" if i % 50 == 0 else "processing", "Địa chính")
            dossiers._write(db, d, NOW, "test")
    payload = dossiers.board(db, NOW)
    data = messages.encode("dossiers", {"v": 1, "version": 99999, **payload})
    assert len(data) <= messages.MAX_PAYLOAD
    assert payload["omitted"] > 0 and len(payload["dossiers"]) + payload["omitted"] == 600
    assert payload["counts"]["processing"] + payload["counts"]["ready"] == 600
    assert sum(d["status"] == "ready" for d in payload["dossiers"]) == 12  # every ready one kept


def test_the_gateway_publisher_sends_a_valid_dossiers_state(db, tmp_path):
    from congso.protocol import settings as settings_mod

    _add(db, "HS-1")
    sent = []
    settings = settings_mod.load(environ={"CONGSO_DATA_DIR": str(tmp_path), "CONGSO_SITE_ID": "ky-chau"})
    pub = state.Publisher(db, settings, lambda topic, data, retain: sent.append((topic, data)), domains.DOMAINS)
    pub.rebuild()
    got = {t.rsplit("/", 1)[1]: messages.decode(messages.state_kind(t.rsplit("/", 1)[1]), d) for t, d in sent}
    assert got["dossiers"]["dossiers"][0]["applicant"] == "Nguyễn T. T. H."
    assert pub.rebuild() == []  # nothing changed: nothing re-published


ONE_STOP_CSV = """DANH SÁCH HỒ SƠ TIẾP NHẬN
Từ ngày 20/11/2026 đến ngày 24/11/2026

STT,Mã hồ sơ,Chủ hồ sơ,Tên thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Bộ phận,Ghi chú
1,H40.12-261120-0001,Nguyễn Thị Thu Hà,Đăng ký khai sinh,20/11/2026 08:15,21/11/2026 16:00,Đã có kết quả,Tư pháp - Hộ tịch,
2,H40.12-261120-0002,Phạm Văn Đồng,Chứng thực bản sao,20/11/2026,20/11/2026,Đã trả kết quả,Tư pháp - Hộ tịch,
3,H40.12-261123-0003,Lê Thị Mỹ Duyên,Đăng ký kết hôn,2026-11-23,2026-11-26,Yêu cầu bổ sung,Tư pháp - Hộ tịch,thiếu giấy
"""


def test_cli_import_of_a_one_stop_export_with_bom_title_lines_and_vietnamese_headers(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path / "data")}
    f = tmp_path / "export.csv"
    f.write_bytes(b"\xef\xbb\xbf" + ONE_STOP_CSV.encode("utf-8"))
    r = run_congso("dossier", "import", str(f), **env)
    assert r.returncode == 0, r.stderr
    assert "3 new, 0 updated" in r.stdout and "ignored columns: STT, Ghi chú" in r.stdout
    r = run_congso("dossier", "list", **env)
    assert "Lê Thị Mỹ Duyên" in r.stdout and "supplement_required" in r.stdout  # staff see full names
    db = open_db(tmp_path / "data" / "gateway.sqlite")
    assert dossiers.get(db, "H40.12-261120-0001")["due_at"] == "2026-11-21T16:00:00+07:00"

    # The next export: one dossier moved on, one new; the history records the change.
    f2 = tmp_path / "export2.csv"
    f2.write_text("Mã hồ sơ;Người nộp;Thủ tục;Ngày tiếp nhận;Ngày hẹn trả;Trạng thái\n"
                  "H40.12-261123-0003;Lê Thị Mỹ Duyên;Đăng ký kết hôn;23/11/2026;26/11/2026;Đang xử lý\n"
                  "H40.12-261124-0004;Võ Văn Kiệt;Xác nhận tình trạng hôn nhân;24/11/2026;;\n", encoding="utf-8")
    r = run_congso("dossier", "import", str(f2), **env)
    assert r.returncode == 0 and "1 new, 1 updated" in r.stdout, r.stderr
    assert [h["status"] for h in dossiers.history(db, "H40.12-261123-0003")] == ["supplement_required", "processing"]
    assert dossiers.get(db, "H40.12-261124-0004")["status"] == "received"


def test_cli_import_reports_every_bad_line_and_imports_nothing(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path / "data")}
    f = tmp_path / "bad.csv"
    f.write_text("Mã hồ sơ,Tên người nộp,Thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái\n"
                 "HS-1,Nguyễn Văn An,Khai sinh,20/11/2026,22/11/2026,Đang xử lý\n"
                 "HS-2,Trần Thị Bé,Khai tử,31/02/2026,,Đã tiếp nhận\n"
                 "HS-3,,Khai sinh,20/11/2026,,\n"
                 "HS-1,Lê C,Khai sinh,20/11/2026,19/11/2026,xong rồi\n", encoding="utf-8")
    r = run_congso("dossier", "import", str(f), **env)
    assert r.returncode != 0
    assert "nothing imported" in r.stderr
    assert "line 3: received date: '31/02/2026' is not a valid date" in r.stderr
    assert "line 4: applicant is empty" in r.stderr
    assert "line 5: unknown status 'xong rồi'" in r.stderr and "line 5: code HS-1 already appears on line 2" in r.stderr
    db = open_db(tmp_path / "data" / "gateway.sqlite")
    assert dossiers.list_all(db) == []

    f.write_text("Số thứ tự,Tên\n1,x\n", encoding="utf-8")
    r = run_congso("dossier", "import", str(f), **env)
    assert r.returncode != 0 and "no header row with a dossier code column" in r.stderr
    f.write_text("Mã hồ sơ,Thủ tục\nHS-1,x\n", encoding="utf-8")
    r = run_congso("dossier", "import", str(f), **env)
    assert "line 1: missing column(s) applicant: 'người nộp'; received: 'ngày tiếp nhận'" in r.stderr


def test_import_windows_1258_csv_and_xlsx(db, tmp_path):
    # Excel on a Vietnamese Windows: ANSI code page, tones as combining marks.
    f = tmp_path / "ansi.csv"
    text = "Mã hồ sơ,Người nộp,Thủ tục,Ngày tiếp nhận\nHS-9,Đặng Thị Ngọc Ánh,Chứng thực chữ ký,24/11/2026\n"
    f.write_bytes(_cp1258(text))
    result = dossiers.import_file(db, f, now=NOW, tz=TZ)
    assert result.encoding == "Windows-1258" and result.new == 1
    assert dossiers.get(db, "HS-9")["applicant"] == "Đặng Thị Ngọc Ánh"  # NFC again

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["BÁO CÁO HỒ SƠ"])
    sheet.append(["Mã hồ sơ", "Họ tên", "Tên thủ tục hành chính", "Ngày nhận", "Hẹn trả", "Tình trạng", "Quầy"])
    sheet.append(["HS-10", "Ngô Bảo Châu", "Cấp bản sao trích lục", datetime(2026, 11, 24, 9, 30), datetime(2026, 11, 27), "Đang giải quyết", "Quầy 2"])
    x = tmp_path / "export.xlsx"
    book.save(x)
    assert dossiers.import_file(db, x, now=NOW, tz=TZ).new == 1
    row = dossiers.get(db, "HS-10")
    assert (row["received_at"], row["due_at"], row["status"], row["desk"]) == (
        "2026-11-24T09:30:00+07:00", "2026-11-27", "processing", "Quầy 2")

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(dossiers.DossierError, match="not a readable Excel file"):
        dossiers.import_file(db, broken, now=NOW, tz=TZ)


def test_cli_add_and_set_status_explain_mistakes(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path / "data")}
    ok = run_congso("dossier", "add", "--code", "HS-1", "--applicant", "Nguyễn Thị Thu Hà", "--procedure", "Khai sinh",
                    "--received", "23/11/2026", "--due", "25/11/2026", **env)
    assert ok.returncode == 0 and "shown as Nguyễn T. T. H." in ok.stdout, ok.stderr
    again = run_congso("dossier", "add", "--code", "HS-1", "--applicant", "X", "--procedure", "Y", "--received", "23/11/2026", **env)
    assert again.returncode != 0 and "already exists" in again.stderr
    early = run_congso("dossier", "add", "--code", "HS-2", "--applicant", "X", "--procedure", "Y", "--received", "23/11/2026",
                       "--due", "22/11/2026", **env)
    assert "due date 2026-11-22 is before the received date 2026-11-23" in early.stderr
    moved = run_congso("dossier", "set-status", "HS-1", "Đã có kết quả", **env)
    assert moved.returncode == 0 and "HS-1: received -> ready" in moved.stdout
    hist = run_congso("dossier", "list", "--history", "HS-1", **env)
    assert "received" in hist.stdout and "ready" in hist.stdout
    assert json.dumps  # keep the import used when the file is trimmed
