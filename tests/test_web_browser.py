"""The console in a real browser (Debian's chromium through Selenium) on the real office.

A real broker, the real gateway, a TV, a door (fingerprint module emulator,
virtual card on vpcd), a rating kiosk and ``congso web run``, all processes
(``browser_helpers.start_office``), started once for the module. Each test
does what a person at the office PC does, and checks it where it matters:
on the TV's screen, at the door, on the kiosk, in the downloaded file. The
window pictures go to ``test-out/console/`` under the names docs/console.md
shows them by (``docs/console/<name>.png``): login, login-error, dashboard,
staff, enrol, calendar, calendar-form, dossiers, announcements, desks,
reports, timesheet, devices, users; and a few more of the steps between.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from browser_helpers import (CHROMIUM, DESK, FAILED_OUT, OFFICE_NAME, OUT, PASSWORD, STAFF, TV_SIZE, Browser, Procs,
                             start_office)
from conftest import Broker, wait_for

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is not installed (Debian's chromium and chromium-driver; `make` installs them)")


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    from congso.devices.pcscd import vpcd_lock

    from conftest import own_pcscd

    root = tmp_path_factory.mktemp("office")
    broker = Broker().start()  # the module's own: no retained desk session or board from other modules
    procs = Procs(root / "logs")
    with vpcd_lock():
        daemon, why = None, ""
        try:
            daemon = own_pcscd(root / "pcscd.log")
        except pytest.skip.Exception as e:
            why = str(e)
        emulators = []
        try:
            o = start_office(root, broker, procs, pcscd_ok=daemon is not None, emulators=emulators)
            o.card_skip_reason = why
            yield o
        finally:
            procs.close()
            for emulator in emulators:
                emulator.stop()
            if daemon is not None:
                daemon.stop()
            broker.cleanup()


@pytest.fixture
def browser(office, tmp_path, request):
    b = Browser(office.url, tmp_path / "chromium-profile", tmp_path / "downloads")
    failed_before = request.session.testsfailed
    yield b
    try:
        if request.session.testsfailed > failed_before:  # the page it failed on, for whoever reads the CI log
            FAILED_OUT.mkdir(parents=True, exist_ok=True)
            b.driver.save_screenshot(str(FAILED_OUT / f"{request.node.name}.png"))
    finally:
        b.quit()


def test_log_in_wrong_password_then_the_dashboard(office, browser):
    user = office.user("vanthu", "clerk")
    browser.go("/")
    assert browser.path.startswith("/login"), browser.path  # no session: the login form
    assert "Đăng nhập" in browser.text("h1") and OFFICE_NAME in browser.text()
    browser.shot("login")

    browser.fill("input[name=username]", user)
    browser.fill("input[name=password]", "sai-mat-khau-roi")
    browser.find("form[action='/login'] button[type=submit]").click()
    browser.wait_text("Tên đăng nhập hoặc mật khẩu không đúng.")
    assert browser.path.startswith("/login")
    assert browser.find("input[name=username]").get_attribute("value") == user  # kept for the next try
    browser.shot("login-error")

    browser.fill("input[name=password]", PASSWORD)
    browser.find("form[action='/login'] button[type=submit]").click()
    browser.wait(lambda: browser.path == "/", 10, "the dashboard")
    assert browser.text("nav a[aria-current=page]") == "Tổng quan"
    assert "vanthu" in browser.text("header .who")
    browser.shot("dashboard")

    browser.logout()
    browser.go("/")
    assert browser.path.startswith("/login")  # the session is over



def _image(png: bytes):
    import io

    import pygame

    return pygame.image.load(io.BytesIO(png), "screen.png")


def _changed_rows(before, after, rect) -> int:
    """How many pixel rows of ``rect`` differ between two pictures of the same size."""
    import pygame

    x, y, w, h = rect
    a, b = (pygame.image.tobytes(s.subsurface(rect), "RGB") for s in (before, after))
    row = w * 3
    return sum(a[i * row:(i + 1) * row] != b[i * row:(i + 1) * row] for i in range(h))


def test_a_calendar_entry_added_in_the_form_is_on_the_tv(office, browser):
    from congso.signage_node import pages

    title = "Họp triển khai chuyển đổi số tháng 12"
    browser.login(office.user("vanthu", "clerk"))
    before = _image(browser.node_screen("tv-1"))
    assert before.get_size() == TV_SIZE
    assert title not in office.tv_text()

    browser.go("/calendar")
    assert "Lịch công tác tuần" in browser.text("h1") and browser.find("nav a[aria-current=page]").text == "Lịch công tác"
    browser.click("a.button[href^='/calendar/new']")
    browser.wait(lambda: browser.path.startswith("/calendar/new"), 10, "the new entry form")
    today = browser.find("input[name=day]").get_attribute("value")  # today, in this week
    browser.set_value("input[name=start_time]", "14:00")
    browser.set_value("input[name=end_time]", "16:30")
    browser.fill("input[name=title]", title)
    browser.fill("textarea[name=leaders]", "Chủ tịch Trần Văn Bình")
    browser.fill("input[name=location]", "Hội trường UBND xã")
    browser.shot("calendar-form")
    browser.click("form[action='/calendar/new'] button[type=submit]")
    browser.wait_text("Đã thêm lịch công tác.")
    assert title in browser.text() and "14:00–16:30" in browser.text()
    browser.shot("calendar")

    # The gateway publishes the week; the TV keeps it and draws it.
    wait_for(lambda: title in [e["title"] for e in (office.tv_state("calendar") or {}).get("entries", [])], 20,
             "the new entry in the TV's state cache", office.gateway)
    entry = [e for e in office.tv_state("calendar")["entries"] if e["title"] == title][0]
    assert entry["start"].startswith(f"{today}T14:00") and entry["leaders"] == ["Chủ tịch Trần Văn Bình"]
    wait_for(lambda: title in office.tv_text(), 20, "the entry on the TV's screen", office.tv)
    after = _image(browser.node_screen("tv-1"))
    browser.shot("devices")
    body, _, _ = pages._calendar_geometry(TV_SIZE)
    # The calendar area changed (the empty week's message became a row); the TV's picture says so.
    assert _changed_rows(before, after, body) > 20


def test_enrol_a_finger_at_the_door_and_watch_the_steps_live(office, browser):
    browser.login(office.user("vanthu", "clerk"))
    browser.go("/staff/NV003")
    assert "Lê Thị Hồng" in browser.text("h1")
    form = "form[action='/staff/NV003/enrol']"
    browser.find(f"{form} select[name=node] option[value='door-1']").click()
    browser.click(f"{form} input[name=consent]")
    browser.fill(f"{form} input[name=note]", "Giấy đồng ý số 12/GĐY ngày 01/12/2026")
    browser.click(f"{form} button[type=submit]")
    browser.wait(lambda: "/enrol/" in browser.path, 10, "the enrolment page")
    browser.mark()

    def now_step(step: str, timeout: float = 20) -> None:
        browser.wait(lambda: browser.find(".enrol-now").get_attribute("data-now") == step, timeout, f"the step {step!r}")

    # The person at the door does what the page (and the door's LED) says, when it says it.
    now_step("place")
    assert browser.find("li[data-step=sent]").get_attribute("class") == "done"
    office.finger.place("hong-index")
    now_step("lift")
    assert [li.get_attribute("class") for li in browser.find_all("ol.steps li")] == [
        "done", "done", "done", "now", "todo", "todo"]
    browser.shot("enrol")
    office.finger.lift()
    now_step("place_again")
    office.finger.place("hong-index")
    now_step("stored")  # the module has the template; the door answers once the finger is off
    office.finger.lift()
    browser.wait(lambda: "Đã lưu vân tay ở cổng door-1, vị trí" in browser.text(".enrol-progress"), 20,
                 "the door's answer with the slot")
    assert browser.same_page()  # every step came into the page while it stayed open: no reload
    slot = office.finger.slot_of("hong-index")
    assert f"Đã lưu ở vị trí {slot}" in browser.text("ol.steps")
    browser.shot("staff-enrol-done")
    wait_for(lambda: office.query("SELECT node_id, slot, staff_id FROM finger_slots WHERE staff_id='NV003'")
             == [("door-1", slot, "NV003")], 10, "the finger recorded", office.gateway)
    # The same finger now opens the door for her.
    office.scan_finger("hong-index", "NV003")


def test_an_unknown_card_tapped_at_the_door_is_assigned_with_one_click(office, browser):
    if not office.card_reader:
        pytest.skip(office.card_skip_reason)
    uid = "04C0FFEE"
    assert office.tap_card(uid).split()[1:5] == ["refused", "card", uid, "-"]
    wait_for(lambda: office.query("SELECT count(*) FROM attendance_events WHERE credential=?", (uid,))[0][0] == 1, 10,
             "the unknown tap stored", office.gateway)

    browser.login(office.user("vanthu", "clerk"))
    browser.go("/staff")
    row = f"#unknown-cards tr:has(input[name=uid][value='{uid}'])"
    assert "door-1" in browser.text(row)
    browser.fill(f"{row} input[name=staff_id]", "NV002")
    browser.shot("staff")
    browser.click(f"{row} button[type=submit]")
    browser.wait_text(f"Đã gán thẻ {uid} cho NV002.")
    assert not browser.find_all(row)  # no longer unknown
    browser.shot("staff-card-assigned")
    assert office.query("SELECT staff_id FROM staff_cards WHERE uid=?", (uid,)) == [("NV002",)]

    # The door learns it with the next roster: the same card now opens for Trần Văn Bình.
    deadline = time.monotonic() + 20
    while (line := office.tap_card(uid)).split()[1] != "accepted" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert line.split()[1:5] == ["accepted", "card", uid, "NV002"], line


def test_an_officer_opens_a_desk_session_by_scanning_and_the_kiosk_names_them(office, browser):
    import base64
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from selenium.webdriver.common.keys import Keys

    from congso.gateway import dossiers, remote

    code = "H23-261201-0042"
    with office.db() as db:
        dossiers.add(db, code, "Phạm Thị Mai", "Đăng ký khai sinh", "2026-12-01", "2026-12-04", "processing", DESK,
                     now=datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")), tz="Asia/Ho_Chi_Minh")
    browser.login(office.user("ms-ha", "officer", staff_id="NV001", desks=[DESK]))
    browser.go("/desks")
    assert browser.find("nav a[aria-current=page]").text == "Quầy và đánh giá"
    assert f"Quầy {DESK}: mở phiên cho công dân tiếp theo" in browser.text()
    assert "Cán bộ phục vụ: Nguyễn Thị Thu Hà (NV001)" in browser.text()
    # The USB barcode scanner types the code into the focused field and presses Enter.
    field = browser.find(f"form[action='/desks/{DESK}/open'] input[name=code]")
    assert browser.driver.switch_to.active_element == field  # the field has the focus: the scanner types there
    field.send_keys(code + Keys.ENTER)
    browser.wait_text(f"Đã mở phiên ở quầy {DESK}: Nguyễn Thị Thu Hà, hồ sơ {code}.")
    board = browser.text(".desk-live")
    assert "Nguyễn Thị Thu Hà (NV001)" in board and code in board
    browser.shot("desks")

    # The kiosk got the session (its state cache) and shows the officer's name (its own screenshot).
    wait_for(lambda: (office.kiosk_state() or {}).get("officer_name") == "Nguyễn Thị Thu Hà", 15,
             "the session in the kiosk's state cache", office.kiosk)
    assert office.kiosk_state()["dossier_code"] == code
    with office.db() as db:
        deadline = time.monotonic() + 15
        while True:
            shot = remote.ask(db, "kiosk-1", "screenshot", {})
            texts = [t.replace("\n", " ") for t in shot["texts"]]
            if any("Nguyễn Thị Thu Hà" in t for t in texts) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    assert f"Cán bộ phục vụ: Nguyễn Thị Thu Hà  ·  Hồ sơ: {code}" in texts, texts
    (OUT / "kiosk-session.png").write_bytes(base64.b64decode(shot["png_base64"]))


def month_length(day) -> int:
    import calendar

    return calendar.monthrange(day.year, day.month)[1]


def test_the_month_timesheet_downloads_as_xlsx_with_the_staff_and_their_days(office, browser):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from openpyxl import load_workbook

    from congso.gateway import staff

    # Trần Văn Bình's finger is in the door's module (slot 150) and in the roster: one real scan today.
    office.finger.enroll_directly("binh-thumb", 150)
    with office.db() as db:
        staff.record_finger(db, "door-1", 150, "NV002", "door-1")
    event_id = office.scan_finger("binh-thumb", "NV002")
    wait_for(lambda: office.query("SELECT ts FROM attendance_events WHERE event_id=?", (event_id,)), 15,
             "the scan stored", office.gateway)
    scanned = datetime.fromisoformat(office.query("SELECT ts FROM attendance_events WHERE event_id=?", (event_id,))[0][0])
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    local = scanned.astimezone(zone)
    month = local.strftime("%Y-%m")

    browser.login(office.user("chanh-vp", "admin"))
    browser.go("/reports")
    assert browser.find("nav a[aria-current=page]").text == "Báo cáo"
    assert browser.find("input[name=month]").get_attribute("value") == month  # this month, ready to look at
    browser.shot("reports")
    browser.find("input[name=month]").submit()  # «Xem tháng»
    browser.wait_text(f"Bảng chấm công tháng {local:%m/%Y}")
    sheet = browser.text("table.timesheet")
    assert all(name in sheet for _, name, _ in STAFF)
    browser.shot("timesheet")
    cells = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('table.timesheet tbody tr')).map("
        "r => Array.from(r.querySelectorAll('td')).map(td => td.textContent.trim()));")
    grid = {row[0]: row for row in cells if row}
    # Each day a cell with the form's symbol of each session (today's, until it is judged, also the hour of the
    # first scan, in the office's time); which symbol depends on the hour this runs at (two scans after the
    # office closed are an absence, OFFICE.md's rules), so only its form is checked here.
    import re

    for sid in ("NV001", "NV002"):
        assert len(grid[sid]) == 2 + month_length(local) + 7, grid[sid]
        today = grid[sid][1 + local.day]
        assert re.fullmatch(r"(\+|V|\+/V|V/\+|\+/|V/)? ?(\d\d:\d\d)?", today), (sid, today)

    browser.click("a[href^='/reports/attendance.xlsx']")
    path = browser.wait_download(".xlsx")
    assert path.name == f"cham-cong-{month}.xlsx"
    ws = load_workbook(path, read_only=True).active
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[0][0] == f"Đơn vị: {OFFICE_NAME}" and f"Tháng {local:%m} năm {local:%Y}" in rows[4]
    numbers = next(r for r in rows if r[0] is None and r[3] == 1 and r[4] == 2)  # the day numbers' row
    days_in_month = len([d for d in numbers[3:] if isinstance(d, int)])
    assert numbers[3:3 + days_in_month] == list(range(1, days_in_month + 1)) and days_in_month >= 28
    people = {r[1]: r for r in rows if isinstance(r[0], int) and isinstance(r[1], str)}  # STT, name, position
    assert {name: r[2] for name, r in people.items()} == {name: dep for _, name, dep in STAFF}
    # The form's symbol for today: worked, absent or not over yet (an empty cell).
    assert people["Trần Văn Bình"][2 + local.day] in (None, "+", "V", "+/", "V/", "V/+", "+/V")


def test_the_other_pages_as_the_head_of_office_sees_them(office, browser):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from congso.gateway import announcements, dossiers

    zone = "Asia/Ho_Chi_Minh"
    now = datetime.now(ZoneInfo(zone))
    with office.db() as db:
        for i, (applicant, procedure, status) in enumerate([
                ("Võ Văn Kiệt", "Chứng thực bản sao từ bản chính", "received"),
                ("Đặng Ngọc Ánh", "Đăng ký kết hôn", "supplement_required"),
                ("Bùi Quang Huy", "Cấp giấy xác nhận tình trạng hôn nhân", "ready")]):
            dossiers.add(db, f"H23-261130-{i + 1:04d}", applicant, procedure, "2026-11-30", "2026-12-03", status, DESK,
                         now=now, tz=zone)
        announcements.add(db, title="Lịch tiếp công dân tháng 12", body="Thứ Tư hằng tuần, 7:30–11:00, Phòng tiếp dân",
                          tz=zone, now=now, qr_url="https://dichvucong.gov.vn")
        from congso.gateway import leave

        today = now.date().isoformat()
        leave.add(db, "NV002", "CT", today, note="Tập huấn tại huyện", entered_by="vanthu", tz=zone)
        leave.add(db, "NV003", "P", today, half="pm", note="Việc gia đình", entered_by="NV003", tz=zone,
                  status="requested")
    browser.login(office.user("chanh-vp", "admin"))
    for path, menu, words, name in (
            ("/dossiers", "Hồ sơ", "Đặng Ngọc Ánh", "dossiers"),
            ("/announcements", "Thông báo", "Lịch tiếp công dân tháng 12", "announcements"),
            ("/users", "Người dùng", "vanthu", "users"),
            ("/leave", "Nghỉ phép & chấm công", "Tập huấn tại huyện", "leave"),
            ("/leave/holidays?year=2027", "Nghỉ phép & chấm công", "Tết Nguyên Đán", "holidays")):
        browser.go(path)
        assert browser.find("nav a[aria-current=page]").text == menu, path
        browser.wait_text(words)
        browser.shot(name)
