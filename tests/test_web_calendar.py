"""Lịch công tác in the console: the week, add/edit/delete, the ICS import planned then applied, the TV's preview.

Through the real app on a real gateway database (``web_helpers.Console``);
the preview is the real child process drawing with the TV's page functions.
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import work_calendar
from web_helpers import Console

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)  # a Tuesday; the week of Monday 30/11
OUT = Path(__file__).resolve().parent.parent / "test-out" / "console"


@pytest.fixture
def console(tmp_path):
    return Console(tmp_path, clock=lambda: NOW)


@pytest.fixture
def clerk(console):
    return console.as_role("clerk")


def rows(console) -> list[dict]:
    return list(console.db.query("SELECT * FROM calendar_entries ORDER BY sort_key"))


def audits(console, action: str) -> list[dict]:
    return list(console.db.query("SELECT * FROM audit_log WHERE action=? ORDER BY id", [action]))


def add(client, **fields):
    data = {"csrf_token": client.csrf, "day": "2026-12-02", "start_time": "08:00", "end_time": "09:30",
            "title": "Họp giao ban đầu tuần", "leaders": "Chủ tịch UBND xã\nPhó Chủ tịch UBND xã",
            "location": "Phòng họp số 1", "participants": "Các công chức chuyên môn", "preparer": "Văn phòng"}
    data.update(fields)
    return client.post("/calendar/new", data=data)


# -- the week ------------------------------------------------------------------------------

def test_the_week_by_day_with_every_field_and_the_tv_preview(console, clerk):
    r = add(clerk)
    assert r.status_code == 303 and r.headers["location"] == "/calendar?week=2026-11-30"
    add(clerk, day="2026-12-07", start_time="", end_time="", title="Tiếp công dân định kỳ")  # next week
    page = clerk.get("/calendar?week=2026-12-02").text
    assert "Lịch công tác tuần 30/11/2026 – 06/12/2026" in page
    # Monday to Sunday, every day listed, the entry on its day with all it says.
    days = re.findall(r'class="cal-day">([^<]+)<', page)
    assert days == ["Thứ Hai, 30/11/2026", "Thứ Ba, 01/12/2026", "Thứ Tư, 02/12/2026", "Thứ Năm, 03/12/2026",
                    "Thứ Sáu, 04/12/2026", "Thứ Bảy, 05/12/2026", "Chủ Nhật, 06/12/2026"]
    for text in ("08:00–09:30", "Chủ tịch UBND xã, Phó Chủ tịch UBND xã", "Họp giao ban đầu tuần", "Phòng họp số 1",
                 "Các công chức chuyên môn", "Văn phòng"):
        assert text in page
    assert "Tiếp công dân định kỳ" not in page  # next week's
    assert 'href="/calendar?week=2026-11-23"' in page and 'href="/calendar?week=2026-12-07"' in page
    assert 'src="/calendar/preview.png?week=2026-11-30&amp;page_no=0"' in page
    nxt = clerk.get("/calendar?week=2026-12-07").text
    assert "Tiếp công dân định kỳ" in nxt and "Cả ngày" in nxt and "Họp giao ban đầu tuần" not in nxt


def test_roles_without_the_calendar_are_refused_and_change_nothing(console):
    for role in ("viewer", "officer"):
        c = console.as_role(role)
        assert c.get("/calendar").status_code == 403
        assert c.get("/calendar/preview.png").status_code == 403
        assert add(c).status_code == 403
    assert rows(console) == []


# -- add, edit, delete -------------------------------------------------------------------------

def test_add_edit_delete_each_audited(console, clerk):
    add(clerk)
    (row,) = rows(console)
    assert row["title"] == "Họp giao ban đầu tuần" and row["start"] == "2026-12-02T08:00:00+07:00"
    assert row["end"] == "2026-12-02T09:30:00+07:00" and row["location"] == "Phòng họp số 1"
    assert audits(console, "calendar.add")[0]["target"] == row["id"]

    form = clerk.get(f"/calendar/{row['id']}/edit").text
    assert 'value="2026-12-02"' in form and 'value="08:00"' in form and "Phó Chủ tịch UBND xã" in form
    r = clerk.post(f"/calendar/{row['id']}/edit", data={
        "csrf_token": clerk.csrf, "day": "03/12/2026", "start_time": "14:00", "end_time": "16:30",
        "title": "Họp HĐND xã", "leaders": "Chủ tịch HĐND xã", "location": "Hội trường", "participants": "",
        "preparer": ""})
    assert r.status_code == 303 and r.headers["location"] == "/calendar?week=2026-11-30"
    (after,) = rows(console)
    assert (after["id"], after["title"], after["start"], after["end"], after["location"], after["preparer"]) == (
        row["id"], "Họp HĐND xã", "2026-12-03T14:00:00+07:00", "2026-12-03T16:30:00+07:00", "Hội trường", None)
    edit_audit = audits(console, "calendar.edit")[0]
    assert edit_audit["target"] == row["id"] and "Họp giao ban đầu tuần" in edit_audit["detail"]

    confirm = clerk.get(f"/calendar/{row['id']}/delete")
    assert confirm.status_code == 200 and "Họp HĐND xã" in confirm.text and rows(console)  # asking deletes nothing
    r = clerk.post(f"/calendar/{row['id']}/delete", data={"csrf_token": clerk.csrf})
    assert r.status_code == 303 and rows(console) == []
    assert audits(console, "calendar.remove")[0]["target"] == row["id"]
    assert clerk.get(f"/calendar/{row['id']}/edit").status_code == 404


@pytest.mark.parametrize("fields, said", [
    ({"title": "  "}, "the title is empty"),
    ({"end_time": "07:00"}, "is before --start"),
    ({"day": "31/02/2026"}, "not a valid date"),
    ({"start_time": "", "end_time": "10:00"}, "both have a time"),
    ({"title": "Họp\u200bkín"}, "title"),
])
def test_bad_input_keeps_what_was_typed_and_stores_nothing(console, clerk, fields, said):
    r = add(clerk, location="Nhà văn hoá thôn Đông", **fields)
    assert r.status_code == 422
    assert said in r.text and "Chưa lưu được lịch công tác" in r.text
    assert 'value="Nhà văn hoá thôn Đông"' in r.text and "Các công chức chuyên môn" in r.text
    assert rows(console) == [] and audits(console, "calendar.add") == []


def test_a_bad_edit_changes_nothing(console, clerk):
    add(clerk)
    (row,) = rows(console)
    r = clerk.post(f"/calendar/{row['id']}/edit", data={"csrf_token": clerk.csrf, "day": "2026-12-02",
                                                        "start_time": "10:00", "end_time": "09:00", "title": "Đổi giờ"})
    assert r.status_code == 422 and 'value="Đổi giờ"' in r.text
    assert rows(console) == [row] and audits(console, "calendar.edit") == []


# -- ICS import: preview, then apply exactly that ---------------------------------------------

def ics(*events: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//vi\r\n" + "".join(events) + "END:VCALENDAR\r\n").encode()


def event(uid: str, start: str, title: str, location: str = "Phòng họp", end: str | None = None, extra: str = "") -> str:
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART;TZID=Asia/Ho_Chi_Minh:{start}\r\n"
            + (f"DTEND;TZID=Asia/Ho_Chi_Minh:{end}\r\n" if end else "")
            + f"SUMMARY:{title}\r\nLOCATION:{location}\r\nDESCRIPTION:Chủ trì: Chủ tịch UBND xã\r\n{extra}END:VEVENT\r\n")


def upload(client, data: bytes, name: str = "lich.ics", leaders: str = "", replace: bool = True):
    return client.post("/calendar/import", data={"csrf_token": client.csrf, "leaders": leaders,
                                                 **({"replace": "1"} if replace else {})},
                       files={"file": (name, data, "text/calendar")})


def uploads_dir(console) -> Path:
    return console.data_dir / "web-uploads"


def hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


def table(page: str, table_id: str) -> str:
    m = re.search(rf'id="{table_id}".*?</table>', page, re.S)
    return m.group(0) if m else ""


def test_import_preview_lists_adds_changes_removes_and_apply_does_exactly_that(console, clerk):
    first = ics(event("giao-ban", "20261130T073000", "Giao ban đầu tuần"),
                event("tiep-dan", "20261203T080000", "Tiếp công dân"),
                event("hop-dang-uy", "20261204T140000", "Họp Đảng ủy"))
    r = upload(clerk, first)
    assert r.status_code == 200 and "3 mục thêm" in r.text
    r = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": hidden(r.text, "token"),
                                                    "digest": hidden(r.text, "digest")})
    assert r.status_code == 303
    assert sorted(x["title"] for x in rows(console)) == ["Giao ban đầu tuần", "Họp Đảng ủy", "Tiếp công dân"]
    typed = add(clerk, title="Trực tiếp dân")  # not from the file: an import never touches it
    assert typed.status_code == 303
    before = {x["uid"]: x for x in rows(console)}

    second = ics(event("giao-ban", "20261130T073000", "Giao ban đầu tuần"),  # unchanged
                 event("tiep-dan", "20261203T080000", "Tiếp công dân", location="Bộ phận một cửa"),  # changed
                 event("hoi-nghi", "20261205T080000", "Hội nghị tổng kết năm"))  # added; hop-dang-uy removed
    r = upload(clerk, second, name="lich-moi.ics")
    assert r.status_code == 200
    page = r.text
    assert "1 mục thêm" in page and "1 mục sửa" in page and "1 mục xoá" in page and "1 mục giữ nguyên" in page
    assert "Hội nghị tổng kết năm" in table(page, "plan-adds")
    changes = table(page, "plan-changes")
    assert "Phòng họp" in changes and "Bộ phận một cửa" in changes  # old -> new
    assert changes.index("Phòng họp") < changes.index("Bộ phận một cửa")
    assert "Họp Đảng ủy" in table(page, "plan-removes")
    planned = table(page, "plan-adds") + table(page, "plan-changes") + table(page, "plan-removes")
    assert "Giao ban đầu tuần" not in planned and "Trực tiếp dân" not in planned
    # Not "the whole calendar": an event gone from the file is not removed, only its own lost occurrences.
    partial = upload(clerk, second, name="lich-moi.ics", replace=False).text
    assert "0 mục xoá" in partial and "1 mục thêm" in partial
    clerk.post("/calendar/import/cancel", data={"csrf_token": clerk.csrf, "token": hidden(partial, "token")})
    token = hidden(page, "token")
    kept = list(uploads_dir(console).glob("*.ics"))
    assert [p.name for p in kept] == [f"{token}.ics"] and (kept[0].stat().st_mode & 0o777) == 0o600
    assert rows(console) and {x["uid"]: x for x in rows(console)} == before  # a preview changes nothing

    # A plan made up in the browser is never taken: a wrong digest applies nothing.
    r = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": token, "digest": "0" * 64})
    assert r.status_code == 409 and {x["uid"]: x for x in rows(console)} == before

    r = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": token,
                                                    "digest": hidden(page, "digest")})
    assert r.status_code == 303
    after = {x["uid"]: x for x in rows(console)}
    assert set(after) == {"giao-ban", "tiep-dan", "hoi-nghi", None}
    assert after["giao-ban"] == before["giao-ban"]  # unchanged is not rewritten
    assert after["tiep-dan"]["location"] == "Bộ phận một cửa" and after["tiep-dan"]["id"] == before["tiep-dan"]["id"]
    assert after["hoi-nghi"]["title"] == "Hội nghị tổng kết năm"
    assert after[None] == before[None]  # the typed entry
    assert list(uploads_dir(console).iterdir()) == []  # the kept file is gone once applied
    audit = audits(console, "calendar.import")[-1]
    assert audit["target"] == "lich-moi.ics" and before["hop-dang-uy"]["id"] in audit["detail"]
    # Applied once: the same form again finds nothing to apply.
    r = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": token,
                                                    "digest": hidden(page, "digest")})
    assert r.status_code == 410 and {x["uid"]: x for x in rows(console)} == after


def test_a_change_made_after_the_preview_stops_the_apply(console, clerk):
    upload_page = upload(clerk, ics(event("tiep-dan", "20261203T080000", "Tiếp công dân"))).text
    add(clerk, title="Giao ban")  # someone else's change does not matter ...
    r = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": hidden(upload_page, "token"),
                                                    "digest": hidden(upload_page, "digest")})
    assert r.status_code == 303  # ... unless it touches the plan:
    r = upload(clerk, ics(event("tiep-dan", "20261203T080000", "Tiếp công dân (đổi giờ)")))
    assert "1 mục sửa" in r.text
    (entry,) = [x for x in rows(console) if x["uid"] == "tiep-dan"]
    clerk.post(f"/calendar/{entry['id']}/delete", data={"csrf_token": clerk.csrf})
    r2 = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": hidden(r.text, "token"),
                                                     "digest": hidden(r.text, "digest")})
    assert r2.status_code == 409 and "Lịch đã thay đổi từ lúc xem trước" in r2.text and "1 mục thêm" in r2.text
    assert not [x for x in rows(console) if x["uid"] == "tiep-dan"]


def test_another_user_cannot_apply_someone_elses_upload(console, clerk):
    r = upload(clerk, ics(event("tiep-dan", "20261203T080000", "Tiếp công dân")))
    other = console.as_role("admin")
    r2 = other.post("/calendar/import/apply", data={"csrf_token": other.csrf, "token": hidden(r.text, "token"),
                                                     "digest": hidden(r.text, "digest")})
    assert r2.status_code == 410 and rows(console) == []


@pytest.mark.parametrize("data, said", [
    (ics(event("spam", "20261201T080000", "Spam", extra="RRULE:FREQ=SECONDLY\r\n")), "every second"),
    (b"BEGIN:VCALENDAR\r\n" + b"BEGIN:VEVENT\r\n" * 50 + b"END:VCALENDAR\r\n", "nested"),
    (b"\x89PNG\r\n\x1a\nnot a calendar", "not"),
    (ics(event("x", "20261201T080000", "Bad", extra="RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\n")), "no date matches"),
])
def test_a_hostile_ics_gives_the_library_error_and_changes_nothing(console, clerk, data, said):
    add(clerk)
    before = rows(console)
    r = upload(clerk, data, name="doc.ics")
    assert r.status_code == 422
    assert "Tệp không nhập được, lịch không thay đổi gì" in r.text and said in r.text
    assert "Áp dụng" not in r.text
    assert rows(console) == before and audits(console, "calendar.import") == []
    assert not uploads_dir(console).exists() or list(uploads_dir(console).iterdir()) == []


def test_an_upload_not_applied_is_removed_after_an_hour(console, clerk):
    r = upload(clerk, ics(event("tiep-dan", "20261203T080000", "Tiếp công dân")))
    token = hidden(r.text, "token")
    for p in uploads_dir(console).iterdir():
        os.utime(p, (p.stat().st_mtime - 3700,) * 2)
    upload(clerk, ics(event("khac", "20261203T080000", "Khác")))  # any later upload sweeps
    assert not (uploads_dir(console) / f"{token}.ics").exists()
    r2 = clerk.post("/calendar/import/apply", data={"csrf_token": clerk.csrf, "token": token,
                                                     "digest": hidden(r.text, "digest")})
    assert r2.status_code == 410 and rows(console) == []


def test_plan_ics_import_is_pure(console):
    work_calendar.add(console.db, start="2026-12-02 08:00", title="Nhập tay", tz="Asia/Ho_Chi_Minh")
    entries, uids = work_calendar.parse_ics(ics(event("a", "20261203T080000", "A")), tz="Asia/Ho_Chi_Minh",
                                            today=NOW.date())
    before = rows(console)
    plan = work_calendar.plan_ics_import(console.db, entries, uids, tz="Asia/Ho_Chi_Minh", today=NOW.date())
    assert [e.title for e in plan.adds] == ["A"] and not plan.changes and not plan.removes
    assert rows(console) == before and plan.digest() == work_calendar.plan_ics_import(
        console.db, entries, uids, tz="Asia/Ho_Chi_Minh", today=NOW.date()).digest()


# -- the TV's own drawing ---------------------------------------------------------------------

def _decode(png: bytes):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    import pygame

    return pygame.image.load(io.BytesIO(png), "x.png")


def _title_rect(console, payload: dict, tag: str):
    """Where the TV's layout puts ``tag`` (the same pure page functions the child draws with)."""
    from congso.signage_node import pages

    view = pages.View(site_name=console.settings.site.name, now=NOW, states={"calendar": payload})
    (text,) = [i for i in pages.frame(view, (1280, 720), ("calendar", 0, 0)) if getattr(i, "tag", "") == tag]
    return text.rect


def _ink(surface, rect) -> int:
    x, y, w, h = rect
    dark = 0
    for px in range(x, x + w, 2):
        for py in range(y, y + h, 2):
            r, g, b, *_ = surface.get_at((px, py))
            dark += (r + g + b) < 300
    return dark


def test_the_preview_is_the_tv_drawing_the_week(console, clerk):
    empty = clerk.get("/calendar/preview.png?week=2026-11-30")
    assert empty.status_code == 200 and empty.headers["content-type"] == "image/png"
    add(clerk, day="2026-11-30", start_time="07:30", end_time="", title="Giao ban toàn cơ quan đầu tuần")
    r = clerk.get("/calendar/preview.png?week=2026-11-30")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG") and r.content != empty.content
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "calendar-preview.png").write_bytes(r.content)
    shot, blank = _decode(r.content), _decode(empty.content)
    assert shot.get_size() == (1280, 720)
    payload = work_calendar.board(console.db, NOW, "Asia/Ho_Chi_Minh")
    rect = _title_rect(console, payload, "cal0-title")
    assert _ink(shot, rect) > 40, "the entry's title cell is blank on the TV's drawing"
    assert _ink(blank, rect) == 0  # the empty week has nothing there: the check above means something
    # A second view of unchanged data is the cached drawing.
    again = clerk.get("/calendar/preview.png?week=2026-11-30")
    assert again.content == r.content
    # A week far ahead is drawn as the TV will show it then, with its entries.
    add(clerk, day="2027-01-13", start_time="08:00", end_time="", title="Hội nghị cán bộ công chức")
    far = clerk.get("/calendar/preview.png?week=2027-01-11")
    assert far.status_code == 200 and _decode(far.content).get_size() == (1280, 720)
    (OUT / "calendar-preview-later.png").write_bytes(far.content)


def test_a_long_week_is_previewed_page_by_page_as_the_tv_turns_them(console, clerk):
    for i in range(12):
        work_calendar.add(console.db, start=f"2026-12-0{2 + i % 4} {7 + i:02d}:00", title=f"Việc số {i + 1}",
                          tz="Asia/Ho_Chi_Minh")
    page = clerk.get("/calendar?week=2026-11-30").text
    srcs = re.findall(r'src="(/calendar/preview\.png\?[^"]+)"', page)
    assert len(srcs) == 2, srcs  # 12 rows do not fit one 1280x720 TV page
    first, second = (clerk.get(s.replace("&amp;", "&")) for s in srcs)
    assert first.status_code == second.status_code == 200 and first.content != second.content
    (OUT / "calendar-preview-page-2.png").write_bytes(second.content)
    assert _decode(second.content).get_size() == (1280, 720)
    assert clerk.get("/calendar/preview.png?week=2026-11-30&page_no=2").status_code == 404
