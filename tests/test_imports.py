"""One reader for every import: real files in every encoding and format an office PC saves, and hostile ones."""

from __future__ import annotations

import codecs
import zipfile
from datetime import datetime

import openpyxl
import pytest

from congso.gateway import dossiers, imports, staff
from congso.gateway.db import open_db
from encoding_helpers import cp1258

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 11, 23, 9, 0).astimezone()

STAFF_CSV = "Mã NV{d}Họ và tên{d}Phòng ban{d}Chức vụ\r\nNV001{d}Nguyễn Thị Thu Hà{d}Văn phòng{d}Văn thư\r\n" \
            "NV002{d}Trần Văn Bình{d}Địa chính{d}\r\n"
DOSSIER_CSV = "Mã hồ sơ{d}Người nộp{d}Thủ tục{d}Ngày tiếp nhận\r\nHS-1{d}Đặng Thị Ngọc Ánh{d}Chứng thực chữ ký{d}24/11/2026\r\n"


ENCODINGS = {
    "utf-8": lambda t: t.encode("utf-8"),
    "utf-8-bom": lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
    "windows-1258": cp1258,
    "utf-16-bom": lambda t: t.encode("utf-16"),  # Excel's "Unicode Text"
}


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "gateway.sqlite")


def _xlsx(path, rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_staff_and_dossier_import_read_every_encoding_and_delimiter(db, tmp_path, encoding, delimiter):
    f = tmp_path / "nhan-vien.csv"
    f.write_bytes(ENCODINGS[encoding](STAFF_CSV.format(d=delimiter)))
    assert staff.import_csv(db, f.read_bytes(), TZ) == (2, 0)
    assert staff.get(db, "NV001")["name"] == "Nguyễn Thị Thu Hà"  # NFC whatever the file held
    assert staff.get(db, "NV002")["department"] == "Địa chính"

    d = tmp_path / "ho-so.csv"
    d.write_bytes(ENCODINGS[encoding](DOSSIER_CSV.format(d=delimiter)))
    result = dossiers.import_file(db, d, now=NOW, tz=TZ)
    assert result.new == 1
    assert dossiers.get(db, "HS-1")["applicant"] == "Đặng Thị Ngọc Ánh"


def test_staff_import_reads_xlsx_with_title_rows_and_formulas_as_values(db, tmp_path):
    f = _xlsx(tmp_path / "nhan-vien.xlsx", [
        ["Mã NV", "Họ và tên", "Phòng ban"],
        ["NV001", "Nguyễn Thị Thu Hà", "Văn phòng"],
        ["NV002", "=HYPERLINK(\"http://evil\",\"Trần Văn Bình\")", "=1+1"],
    ])
    with pytest.raises(staff.StaffError, match="line 3: NV002 has no name"):
        # openpyxl wrote the formulas without a cached value: read as values
        # only, they are empty, and the line is refused rather than evaluated.
        staff.import_csv(db, f.read_bytes(), TZ)
    assert staff.get(db, "NV001") is None  # all or nothing
    f = _xlsx(tmp_path / "ok.xlsx", [["staff_id", "name"], ["NV001", "Nguyễn Thị Thu Hà"], [None, None], ["NV003", "Lê Văn C"]])
    assert staff.import_csv(db, f.read_bytes(), TZ) == (2, 0)


def test_bad_lines_are_reported_with_their_numbers_and_nothing_is_kept(db, tmp_path):
    data = cp1258("staff_id;name\r\nNV001;Hà\r\nNV 2;Bình\r\nNV003;\r\n")
    with pytest.raises(staff.StaffError) as e:
        staff.import_csv(db, data, TZ)
    assert "2 bad line(s), nothing imported" in str(e.value)
    assert "line 3: staff id 'NV 2'" in str(e.value) and "line 4: NV003 has no name" in str(e.value)
    assert staff.list_staff(db) == []


def test_hostile_files_give_a_clear_error(db, tmp_path):
    not_zip = tmp_path / "ho-so.xlsx"
    not_zip.write_bytes(b"PK\x03\x04 this is not a zip at all")
    with pytest.raises(dossiers.DossierError, match="not a readable Excel file"):
        dossiers.import_file(db, not_zip, now=NOW, tz=TZ)
    with pytest.raises(staff.StaffError, match="not a readable Excel file"):
        staff.import_csv(db, not_zip.read_bytes(), TZ)

    # A zip bomb: a sheet that unpacks to far more than any staff list, from a small file.
    bomb = tmp_path / "bomb.xlsx"
    _xlsx(bomb, [["Mã hồ sơ", "Người nộp", "Thủ tục", "Ngày tiếp nhận"]])
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/padding.xml", b" " * (imports.MAX_UNPACKED + 1))
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(dossiers.DossierError, match="unpacks to"):
        dossiers.import_file(db, bomb, now=NOW, tz=TZ)

    # One cell a million rows down, or a million columns to the right (a
    # sheet's claimed dimension): refused without filling the gap.
    far = openpyxl.Workbook()
    far.active.append(["staff_id", "name"])
    far.active.cell(row=1_000_000, column=1, value="NV999")
    far.save(tmp_path / "far.xlsx")
    with pytest.raises(staff.StaffError, match=f"more than {imports.MAX_ROWS} rows"):
        staff.import_csv(db, (tmp_path / "far.xlsx").read_bytes(), TZ)
    wide = openpyxl.Workbook()
    wide.active.append(["staff_id", "name"])
    wide.active.cell(row=2, column=16384, value="x")
    wide.save(tmp_path / "wide.xlsx")
    with pytest.raises(staff.StaffError, match=f"row 2: 16384 columns; at most {imports.MAX_COLUMNS}"):
        staff.import_csv(db, (tmp_path / "wide.xlsx").read_bytes(), TZ)

    # A binary file named .csv, a field longer than any name, a file that is neither encoding.
    with pytest.raises(staff.StaffError, match="NUL byte"):
        staff.import_csv(db, b"staff_id,name\nNV001,\x00\x00\x00\n", TZ)
    with pytest.raises(staff.StaffError, match="broken CSV"):
        staff.import_csv(db, b'staff_id,name\nNV001,"' + b"a" * (imports.MAX_FIELD + 1) + b'"\n', TZ)
    with pytest.raises(staff.StaffError, match="neither UTF-8 nor Windows-1258"):
        staff.import_csv(db, b"staff_id,name\nNV001,\x81\x8d\n", TZ)
    assert staff.list_staff(db) == []
