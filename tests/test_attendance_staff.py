"""Staff, cards and holidays as the office types them (`congso staff|card|holiday`)."""

from __future__ import annotations

import unicodedata

import pytest

from conftest import run_congso
from congso.gateway import staff
from congso.gateway.db import open_db


@pytest.fixture
def data(tmp_path):
    return tmp_path / "gw"


def cli(data, *args, ok=True):
    r = run_congso(*args, CONGSO_DATA_DIR=str(data))
    assert (r.returncode == 0) == ok, r.stdout + r.stderr
    return r


def test_csv_import_vietnamese_headers_bom_nfc_and_all_or_nothing(data, tmp_path):
    good = tmp_path / "nhan-vien.csv"
    # Excel's "CSV UTF-8": a BOM, semicolons, and names typed in decomposed form (NFD).
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Thu Hà")
    good.write_bytes(("\ufeffMã cán bộ;Họ và tên;Đơn vị;Chức vụ\r\n"
                      f"NV001;{nfd};Văn phòng;Văn thư\r\nNV002;Trần Văn Bình;Địa chính;\r\n").encode("utf-8"))
    assert "imported 2 staff (2 new, 0 updated)" in cli(data, "staff", "import", str(good)).stdout
    db = open_db(data / "gateway.sqlite")
    assert staff.get(db, "NV001")["name"] == "Nguyễn Thị Thu Hà"  # stored NFC
    assert staff.get(db, "NV001")["department"] == "Văn phòng"

    bad = tmp_path / "bad.csv"
    bad.write_text("staff_id,name,department\nNV003,Lê Văn C,\nNV 4,Bad Id,\nNV005,,\nNV003,Again,\n", encoding="utf-8")
    r = cli(data, "staff", "import", str(bad), ok=False)
    assert "3 bad line(s), nothing imported" in r.stderr
    assert "line 3: staff id 'NV 4'" in r.stderr and "line 4: NV005 has no name" in r.stderr
    assert "line 5: NV003 again (first on line 2)" in r.stderr
    assert staff.get(db, "NV003") is None  # not even the good line

    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"staff_id,name\nNV009,\x81\x8d\n")  # undefined in UTF-8 and in Windows-1258
    assert "neither UTF-8 nor Windows-1258" in cli(data, "staff", "import", str(garbage), ok=False).stderr
    noheader = tmp_path / "noheader.csv"
    noheader.write_text("NV001,An\n", encoding="utf-8")
    assert "line 1: no column for staff_id and name" in cli(data, "staff", "import", str(noheader), ok=False).stderr


def test_cards_roster_and_deactivation(data):
    cli(data, "staff", "add", "NV001", "Phạm Văn An", "-d", "Văn phòng")
    cli(data, "staff", "add", "NV002", "Lê Thị Bình")
    assert "already exists" in cli(data, "staff", "add", "NV001", "X", ok=False).stderr
    cli(data, "card", "assign", "NV001", "04:a1:b2:c3:d4:e5:f6")
    assert "belongs to NV001" in cli(data, "card", "assign", "NV002", "04A1B2C3D4E5F6", ok=False).stderr
    assert "not a card UID" in cli(data, "card", "assign", "NV002", "XYZ", ok=False).stderr
    db = open_db(data / "gateway.sqlite")
    staff.record_finger(db, "door-1", 4, "NV002", "door-1")
    staff.record_finger(db, "door-2", 9, "NV002", "door-1")
    assert staff.roster(db) == {"staff": [
        {"staff_id": "NV001", "name": "Phạm Văn An", "department": "Văn phòng", "cards": ["04A1B2C3D4E5F6"], "fingers": {}},
        {"staff_id": "NV002", "name": "Lê Thị Bình", "cards": [], "fingers": {"door-1": [4], "door-2": [9]}},
    ]}
    cli(data, "staff", "deactivate", "NV001")
    assert [s["staff_id"] for s in staff.roster(db)["staff"]] == ["NV002"]
    assert "NV001" not in cli(data, "staff", "list").stdout
    assert "NV001" in cli(data, "staff", "list", "--all").stdout
    cli(data, "staff", "add", "NV001", "Phạm Văn An")  # back again
    assert [s["staff_id"] for s in staff.roster(db)["staff"]] == ["NV001", "NV002"]


def test_holidays(data):
    # Days off the government adds (Tết itself is known by law: tests/test_office_cli.py).
    cli(data, "holiday", "add", "2027-03-08", "Nghỉ thêm", "--days", "3")
    out = cli(data, "holiday", "list", "--year", "2027").stdout
    assert "2027-03-08" in out and "2027-03-10" in out and "Nghỉ thêm" in out
    cli(data, "holiday", "remove", "2027-03-09")
    assert "2027-03-09" not in cli(data, "holiday", "list").stdout
    assert "has no entry of the office" in cli(data, "holiday", "remove", "2027-03-09", ok=False).stderr
    assert "must be YYYY-MM-DD" in cli(data, "holiday", "add", "5/2027", "Tết", ok=False).stderr
