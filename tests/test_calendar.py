"""The leaders' calendar and the announcements at the gateway: ICS import, the weekly board."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import announcements, work_calendar
from congso.gateway.db import open_db
from congso.protocol import messages

from conftest import run_congso

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo(TZ))  # Wednesday; week_start Monday 23/11

# A weekly Monday briefing (one Monday cancelled, one moved), an all-day
# event, a UTC-timed event; Vietnamese typed decomposed (NFD) on purpose.
ICS = unicodedata.normalize("NFD", """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//UBND xa Ky Chau//Lich cong tac//VI
BEGIN:VEVENT
UID:giao-ban@kychau
DTSTAMP:20261101T000000Z
DTSTART;TZID=Asia/Ho_Chi_Minh:20261102T073000
DTEND;TZID=Asia/Ho_Chi_Minh:20261102T090000
RRULE:FREQ=WEEKLY;BYDAY=MO
EXDATE;TZID=Asia/Ho_Chi_Minh:20261130T073000
SUMMARY:Họp giao ban đầu tuần
LOCATION:Phòng họp UBND xã
DESCRIPTION:Chủ trì: Chủ tịch Trần Văn Bình\\nThành phần: Lãnh đạo UBND\\, công chức\\nChuẩn bị: Văn phòng
END:VEVENT
BEGIN:VEVENT
UID:giao-ban@kychau
RECURRENCE-ID;TZID=Asia/Ho_Chi_Minh:20261123T073000
DTSTAMP:20261101T000000Z
DTSTART;TZID=Asia/Ho_Chi_Minh:20261123T140000
DTEND;TZID=Asia/Ho_Chi_Minh:20261123T153000
SUMMARY:Họp giao ban đầu tuần (dời sang chiều)
LOCATION:Phòng họp UBND xã
DESCRIPTION:Chủ trì: Chủ tịch Trần Văn Bình
END:VEVENT
BEGIN:VEVENT
UID:tiep-dan@kychau
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261126
DTEND;VALUE=DATE:20261127
SUMMARY:Tiếp công dân định kỳ
ORGANIZER;CN=Phó Chủ tịch Lê Thị Hồng:mailto:pct@kychau.gov.vn
END:VEVENT
BEGIN:VEVENT
UID:huyen@kychau
DTSTAMP:20261101T000000Z
DTSTART:20261201T020000Z
DTEND:20261201T040000Z
SUMMARY:Hội nghị trực tuyến với UBND huyện
ATTENDEE;CN=Nguyễn Văn Tư:mailto:a@x.vn
ATTENDEE;CN=Đỗ Thị Lan:mailto:b@x.vn
END:VEVENT
END:VCALENDAR
""").replace("\n", "\r\n")


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "gateway.sqlite")


def test_ics_import_expands_recurrences_and_keeps_vietnamese_nfc(db, tmp_path):
    f = tmp_path / "lich.ics"
    f.write_text(ICS, encoding="utf-8")
    first = work_calendar.import_ics(db, f, tz=TZ, today=NOW.date())
    board = work_calendar.board(db, NOW, TZ)
    messages.validate("calendar", {"v": 1, "version": 1, **board})
    assert board["week_start"] == "2026-11-23"
    got = [(e["start"], e["title"]) for e in board["entries"]]
    assert got == [
        ("2026-11-23T14:00:00+07:00", "Họp giao ban đầu tuần (dời sang chiều)"),  # the moved occurrence
        ("2026-11-26", "Tiếp công dân định kỳ"),
        ("2026-12-01T09:00:00+07:00", "Hội nghị trực tuyến với UBND huyện"),  # UTC -> office time
    ]  # 30/11 is cancelled (EXDATE); next week has no other Monday in the window
    moved, tiep_dan, huyen = board["entries"]
    assert moved["leaders"] == ["Chủ tịch Trần Văn Bình"] and moved["title"] == unicodedata.normalize("NFC", moved["title"])
    assert tiep_dan["all_day"] and tiep_dan["end"] is None and tiep_dan["leaders"] == ["Phó Chủ tịch Lê Thị Hồng"]
    assert huyen["participants"] == "Nguyễn Văn Tư, Đỗ Thị Lan"
    # Other weeks: every remaining Monday in the 4-weeks-back/8-weeks-ahead window.
    mondays = [e for e in work_calendar.between(db, NOW.date().replace(day=1), NOW.date().replace(month=12, day=31), TZ)
               if e.title == "Họp giao ban đầu tuần"]
    assert [m.start[:10] for m in mondays] == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-12-07", "2026-12-14",
                                                "2026-12-21", "2026-12-28"]
    assert mondays[0].participants == "Lãnh đạo UBND, công chức" and mondays[0].preparer == "Văn phòng"

    # The same file again: nothing duplicated.
    again = work_calendar.import_ics(db, f, tz=TZ, today=NOW.date())
    assert again.new == 0 and again.updated == first.new and again.removed == 0
    assert db["calendar_entries"].count == first.new

    # One more Monday cancelled in the file: that occurrence goes on re-import.
    f.write_text(ICS.replace("EXDATE;TZID=Asia/Ho_Chi_Minh:20261130T073000", "EXDATE;TZID=Asia/Ho_Chi_Minh:20261130T073000,20261207T073000"),
                 encoding="utf-8")
    third = work_calendar.import_ics(db, f, tz=TZ, today=NOW.date())
    assert third.removed == 1 and db["calendar_entries"].count == first.new - 1


def test_a_corrupt_ics_imports_nothing_and_says_why(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path / "data")}
    bad = tmp_path / "bad.ics"
    bad.write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Họp\r\nDTSTART:2026-99-99\r\n", encoding="utf-8")
    r = run_congso("calendar", "import-ics", str(bad), **env)
    assert r.returncode != 0 and "is not a valid iCalendar file" in r.stderr, r.stderr
    half = tmp_path / "half.ics"
    half.write_text(ICS.replace("UID:tiep-dan@kychau\r\n", ""), encoding="utf-8")
    r = run_congso("calendar", "import-ics", str(half), **env)
    assert r.returncode != 0 and "has no UID" in r.stderr and "nothing imported" in r.stderr
    r = run_congso("calendar", "list", **env)
    assert "0 entries" in r.stdout
    r = run_congso("calendar", "import-ics", str(tmp_path / "nope.ics"), **env)
    assert "no such file" in r.stderr


def test_cli_calendar_add_list_remove(tmp_path):
    env = {"CONGSO_DATA_DIR": str(tmp_path / "data")}
    r = run_congso("calendar", "add", "--start", "2030-01-07 07:30", "--end", "2030-01-07 09:00", "--title", "Họp giao ban",
                   "--leader", "Chủ tịch Trần Văn Bình", "--location", "Phòng họp", **env)
    assert r.returncode == 0, r.stderr
    entry_id = r.stdout.split()[1].rstrip(":")
    r = run_congso("calendar", "add", "--start", "2030-01-07 09:00", "--end", "2030-01-07 08:00", "--title", "x", **env)
    assert "is before --start" in r.stderr
    r = run_congso("calendar", "add", "--start", "2030-01-07", "--end", "2030-01-07 08:00", "--title", "x", **env)
    assert "both have a time" in r.stderr
    db = open_db(tmp_path / "data" / "gateway.sqlite")
    assert db["calendar_entries"].count == 1
    r = run_congso("calendar", "remove", entry_id, **env)
    assert r.returncode == 0 and db["calendar_entries"].count == 0
    assert "no calendar entry" in run_congso("calendar", "remove", entry_id, **env).stderr


def test_announcements_are_published_until_they_end(db):
    past = announcements.add(db, title="Lịch nghỉ Quốc khánh", body="Nghỉ 2/9", tz=TZ, now=NOW,
                             valid_from="2026-08-25", valid_until="2026-09-03")
    now_item = announcements.add(db, title="Nộp hồ sơ trực tuyến", body="Cổng dịch vụ công quốc gia", tz=TZ, now=NOW,
                                 qr_url="https://dichvucong.gov.vn", valid_until="31/12/2026")
    later = announcements.add(db, title="Tiêm chủng mở rộng", body="Trạm y tế xã", tz=TZ, now=NOW, valid_from="01/12/2026 07:00")
    board = announcements.board(db, NOW)
    messages.validate("announcements", {"v": 1, "version": 1, **board})
    assert [i["id"] for i in board["items"]] == [now_item["id"], later["id"]]  # the ended one is gone
    assert now_item["valid_until"] == "2026-12-31T23:59:59+07:00"
    assert not announcements.is_current(later, NOW) and announcements.is_current(now_item, NOW)
    assert past["id"] not in str(board)
    with pytest.raises(announcements.AnnouncementError, match="--qr-url must be an http"):
        announcements.add(db, title="x", body="y", tz=TZ, now=NOW, qr_url="dichvucong.gov.vn")
    with pytest.raises(announcements.AnnouncementError, match="is not after --from"):
        announcements.add(db, title="x", body="y", tz=TZ, now=NOW, valid_from="2026-12-02", valid_until="2026-12-01")
