"""The commune of ``make demo``: its people and papers, and a working morning.

``seed`` fills a fresh gateway database with a realistic commune People's
Committee (staff and their cards and fingers, this week's work calendar,
dossiers in every state, announcements). ``Morning`` then plays a working
morning through the real input paths: fingers on the door's emulated
module (its console on the door's stdin), cards on the virtual reader
(pcscd + vpcd), citizens pressing the kiosk's buttons and touching its
screen, officers opening desk sessions and dossiers moving at the gateway.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Callable

import sqlite_utils

from ..gateway import announcements, dossiers, leave, ratings, staff, work_calendar

log = logging.getLogger(__name__)

DOOR, TV, KIOSK, DESK = "door-1", "tv-1", "kiosk-1", "mot-cua-1"

# staff id, name, department, position, card UID (None: finger only), finger slot at the door (None: card only)
STAFF = [
    ("NV001", "Nguyễn Văn Hùng", "Lãnh đạo UBND", "Chủ tịch UBND", "04A1B2C3D4E5F6", 0),
    ("NV002", "Trần Thị Mai", "Lãnh đạo UBND", "Phó Chủ tịch UBND", "04112233445566", 1),
    ("NV003", "Lê Thị Hoa", "Văn phòng - Thống kê", "Công chức Văn phòng", None, 2),
    ("NV004", "Phạm Quốc Bảo", "Địa chính - Xây dựng", "Công chức Địa chính", "0499AABBCCDDEE", 3),
    ("NV005", "Hoàng Thị Thu Hương", "Tư pháp - Hộ tịch", "Công chức Tư pháp", None, 4),
    ("NV006", "Vũ Đức Thắng", "Tài chính - Kế toán", "Công chức Kế toán", "04C0FFEE123456", 5),
    ("NV007", "Đặng Ngọc Ánh", "Văn hóa - Xã hội", "Công chức Văn hóa", None, 6),
    ("NV008", "Bùi Minh Tuấn", "Công an xã", "Trưởng Công an xã", "04BEEF00112233", 7),
    ("NV009", "Đỗ Thị Lan", "Bộ phận Một cửa", "Công chức Một cửa", "04D0C1E2F3A409", 8),
    ("NV010", "Ngô Văn Khánh", "Quân sự", "Chỉ huy trưởng Quân sự", "04ABCDEF012345", 9),
    ("NV011", "Dương Thị Yến", "Văn phòng - Thống kê", "Văn thư", None, 10),
    ("NV012", "Lý Văn Phúc", "Địa chính - Xây dựng", "Công chức Xây dựng", "04123456789ABC", 11),
]
STRANGER_CARD = "DEADBEEF"  # a visitor's bus card: refused, listed in `congso card unknown`
OFFICERS_AT_DESK = ["NV009", "NV005", "NV004"]
DESK_OFFICER = "NV009"  # the console's officer account (motcua) holds the demo desk with her card

# code, applicant (full: masked on every public screen), procedure, received days ago, due in days, status, desk
DOSSIERS = [
    ("000.24.11.H35-261117-0001", "Nguyễn Thị Thu Hà", "Đăng ký khai sinh", 0, 1, "received", "mot-cua-1"),
    ("000.24.11.H35-261117-0002", "Trần Văn Nam", "Chứng thực bản sao từ bản chính", 0, 0, "received", "mot-cua-1"),
    ("000.24.11.H35-261116-0003", "Lê Hoàng Long", "Đăng ký kết hôn", 1, 3, "processing", "mot-cua-2"),
    ("000.24.11.H35-261113-0004", "Phạm Thị Ngọc Bích", "Cấp bản sao trích lục hộ tịch", 4, 1, "processing", "mot-cua-1"),
    ("000.24.11.H35-261110-0005", "Hoàng Văn Dũng", "Đăng ký biến động quyền sử dụng đất", 7, 8, "processing", "mot-cua-2"),
    ("000.24.11.H35-261105-0006", "Võ Thị Kim Oanh", "Cấp giấy phép xây dựng nhà ở riêng lẻ", 12, -2, "processing", "mot-cua-2"),
    ("000.24.11.H35-261112-0007", "Đinh Công Tráng", "Đăng ký thường trú", 5, 2, "supplement_required", "mot-cua-1"),
    ("000.24.11.H35-261114-0008", "Huỳnh Thị Bảo Trâm", "Xác nhận tình trạng hôn nhân", 3, 0, "ready", "mot-cua-1"),
    ("000.24.11.H35-261111-0009", "Mai Xuân Trường", "Đăng ký khai tử", 6, -1, "ready", "mot-cua-1"),
    ("000.24.11.H35-261110-0010", "Cao Thị Phương", "Chứng thực chữ ký", 7, -6, "returned", "mot-cua-1"),
    ("000.24.11.H35-261103-0011", "Tạ Quang Vinh", "Giải quyết trợ cấp xã hội hằng tháng", 14, -3, "received", "mot-cua-2"),
    ("000.24.11.H35-261117-0012", "Lương Thị Hồng Nhung", "Đăng ký khai sinh", 0, 2, "received", "mot-cua-1"),
]
NEW_APPLICANTS = ["Phan Văn Tài", "Kiều Thị Diễm", "Trịnh Quốc Khánh", "Lâm Thị Mỹ Duyên", "Quách Văn Lợi"]
NEW_PROCEDURES = ["Đăng ký khai sinh", "Chứng thực bản sao từ bản chính", "Đăng ký thường trú", "Xác nhận tình trạng hôn nhân"]

# days after Monday, start, end (None: all day), leaders, title, location, participants, preparer
CALENDAR = [
    (0, "07:30", "09:00", ["Nguyễn Văn Hùng", "Trần Thị Mai"], "Giao ban tuần UBND xã", "Phòng họp UBND xã", "Lãnh đạo UBND, các công chức", "Văn phòng"),
    (0, "14:00", "16:30", ["Nguyễn Văn Hùng"], "Kiểm tra tiến độ xây dựng đường giao thông nông thôn thôn 3", "Thôn 3", "Công chức Địa chính - Xây dựng", "Địa chính - Xây dựng"),
    (1, "08:00", "11:00", ["Trần Thị Mai"], "Tiếp công dân định kỳ", "Phòng tiếp công dân", "Công chức Tư pháp, Địa chính", "Văn phòng"),
    (2, "08:00", "11:30", ["Nguyễn Văn Hùng"], "Họp Ban Chỉ đạo chuyển đổi số xã", "Hội trường UBND xã", "Tổ công nghệ số cộng đồng", "Văn phòng"),
    (3, "14:00", "17:00", ["Trần Thị Mai"], "Làm việc với Đoàn kiểm tra của huyện về cải cách hành chính", "Phòng họp UBND xã", "Bộ phận Một cửa", "Văn phòng"),
    (4, None, None, ["Nguyễn Văn Hùng"], "Dự Hội nghị trực tuyến của tỉnh về giải ngân vốn đầu tư công", "Điểm cầu UBND huyện", None, "Tài chính - Kế toán"),
    (7, "07:30", "09:00", ["Nguyễn Văn Hùng", "Trần Thị Mai"], "Giao ban tuần UBND xã", "Phòng họp UBND xã", "Lãnh đạo UBND, các công chức", "Văn phòng"),
    (9, "08:00", "11:00", ["Trần Thị Mai"], "Tiếp công dân định kỳ", "Phòng tiếp công dân", "Công chức Tư pháp, Địa chính", "Văn phòng"),
]

ANNOUNCEMENTS = [
    ("Nộp hồ sơ trực tuyến trên Cổng Dịch vụ công quốc gia",
     "Quét mã QR để nộp hồ sơ, theo dõi kết quả và thanh toán lệ phí trực tuyến, không cần đến UBND xã.",
     "https://dichvucong.gov.vn"),
    ("Cài đặt ứng dụng VNeID",
     "Tài khoản định danh điện tử mức 2 giúp Ông/Bà thực hiện thủ tục hành chính nhanh hơn.",
     "https://vneid.gov.vn"),
    ("Lịch tiếp công dân",
     "Lãnh đạo UBND xã tiếp công dân vào sáng thứ Ba hằng tuần tại Phòng tiếp công dân.", None),
    ("Đánh giá mức độ hài lòng",
     "Mời Ông/Bà đánh giá sự phục vụ của cán bộ tại máy đánh giá đặt ở Bộ phận Một cửa.", None),
]


def seed(db: sqlite_utils.Database, now: datetime, tz: str) -> bool:
    """Fill a fresh gateway database with the commune; False (and nothing done) if it has staff already."""
    if staff.list_staff(db, include_inactive=True):
        return False
    for staff_id, name, department, position, card, slot in STAFF:
        staff.add(db, staff_id, name, department, position, tz=tz)
        if card:
            staff.assign_card(db, staff_id, card, tz=tz)
        if slot is not None:  # a finger is kept only with the person's recorded consent
            staff.record_consent(db, staff_id, "Văn phòng (dữ liệu mẫu)", "demo", tz=tz)
            staff.record_finger(db, DOOR, slot, staff_id, DOOR, tz=tz)
    today = now.replace(hour=7, minute=30, second=0, microsecond=0)
    for code, applicant, procedure, days_ago, due_in, status, desk in DOSSIERS:
        received = (today - timedelta(days=days_ago)).strftime("%Y-%m-%d %H:%M")
        due = (today + timedelta(days=due_in)).strftime("%Y-%m-%d 17:00")
        dossiers.add(db, code, applicant, procedure, received, due, "received", desk, now=now, tz=tz)
        if status != "received":
            dossiers.set_status(db, code, status, now=now, source="demo")
    monday = now.date() - timedelta(days=now.weekday())
    for offset, start, end, leaders, title, location, participants, preparer in CALENDAR:
        day = monday + timedelta(days=offset)
        work_calendar.add(db, start=f"{day} {start}" if start else str(day), end=f"{day} {end}" if end else None,
                          title=title, tz=tz, leaders=leaders, location=location, participants=participants,
                          preparer=preparer)
    for title, body, qr in ANNOUNCEMENTS:
        announcements.add(db, title=title, body=body, qr_url=qr, tz=tz, now=now)
    _seed_leave(db, now, tz)
    return True


# The province's poster and clip about online public services, between the board and the calendar.
POSTER_TITLE = "Nộp hồ sơ trực tuyến (áp phích của tỉnh)"
CLIP_TITLE = "Cài đặt VNeID (video của tỉnh)"


def seed_media(db: sqlite_utils.Database, data_dir, settings, now: datetime, work) -> list[str]:
    """A poster and a short clip as picture and video slides (made on the spot), unless there are some; their titles."""
    from ..gateway import media
    from . import demo_media

    if any(r["media_sha256"] for r in announcements.list_all(db)):
        return []
    tz = settings.site.timezone
    made = []
    poster = media.add_file(db, data_dir, demo_media.make_poster(work / "poster.png"), "poster.png", settings, now,
                            by="demo", expect="image")
    announcements.add(db, title=POSTER_TITLE, body="", tz=tz, now=now, media_sha256=poster["sha256"], seconds=8)
    made.append(POSTER_TITLE)
    try:
        clip_file = demo_media.make_clip(work / "vneid.mp4")
    except Exception as e:  # ffmpeg present but failing: the demo goes on with the poster
        log.warning("the demo's clip could not be made: %s", e)
        clip_file = None
    if clip_file is not None:
        clip = media.add_file(db, data_dir, clip_file, "vneid.mp4", settings, now, by="demo", expect="video")
        announcements.add(db, title=CLIP_TITLE, body="", tz=tz, now=now, media_sha256=clip["sha256"])
        made.append(CLIP_TITLE)
    return made


def _working_day(day, step: int):
    """The next (step 1) or previous (step -1) weekday from ``day``, excluded."""
    day += timedelta(days=step)
    while day.weekday() >= 5:
        day += timedelta(days=step)
    return day


def _seed_leave(db: sqlite_utils.Database, now: datetime, tz: str) -> None:
    """What the clerk has entered this week: a business trip, a half day off, a request, a forgotten scan."""
    today = now.date()
    clerk = "vanthu"
    leave.add(db, "NV007", "CT", today.isoformat(), _working_day(today, 1).isoformat(),
              note="Tập huấn chuyển đổi số tại huyện", entered_by=clerk, tz=tz)
    leave.add(db, "NV005", "P", today.isoformat(), half="pm", note="Việc gia đình", entered_by=clerk, tz=tz)
    leave.add(db, "NV009", "P", _working_day(today, 3).isoformat(), note="Xin nghỉ phép năm", entered_by="motcua",
              tz=tz, status="requested")
    yesterday = _working_day(today, -1)
    leave.add_punch(db, "NV003", f"{yesterday.isoformat()}T17:05", "Quên chấm công khi ra về, trưởng bộ phận xác nhận",
                    entered_by=clerk, tz=tz, now=now)


class Morning:
    """A working morning, played scene by scene until stopped.

    ``door`` writes a line to the door's emulator console; ``tap_card`` puts
    a card on the virtual reader (None when pcscd/vpcd are not available);
    ``kiosk`` is the in-process kiosk (``press(level_index)``,
    ``touch(action)``); ``db`` is the gateway database.
    """

    def __init__(self, db: sqlite_utils.Database, tz: str, door: Callable[[str], None],
                 tap_card: Callable[..., None] | None, kiosk, pace_s: float = 2.5, seed_: int | None = None,
                 kiosk_card: bool = False):
        self.db = db
        self.tz = tz
        self.door = door
        self.tap_card = tap_card
        self.kiosk = kiosk
        self.pace_s = pace_s
        self.rng = random.Random(seed_)
        self.lines: deque[tuple[int, str]] = deque(maxlen=12)  # (number, line): what happened, for the view
        self.said = 0  # lines ever said (the deque forgets)
        self.new_dossiers = 0
        self.kiosk_card = kiosk_card and tap_card is not None  # the kiosk has a reader (vpcd's second slot)
        self.urgent_posted = False

    def say(self, text: str) -> None:
        stamp = self.now().strftime("%H:%M:%S")  # office time, as the events are shown
        self.said += 1
        self.lines.append((self.said, f"{stamp}  {text}"))
        log.info("scene: %s", text)

    def now(self) -> datetime:
        from ..protocol import clock

        return clock.now(self.tz)

    # -- what people do ---------------------------------------------------------
    def arrive(self, person, again: bool = False) -> None:
        staff_id, name, _, _, card, slot = person
        note = " again within a minute (a short beep, not counted twice)" if again else ""
        if card and self.tap_card and (slot is None or self.rng.random() < 0.5):
            self.say(f"{name} taps a card at the door{note}")
            self.tap_card(card)
        elif slot is not None:
            self.say(f"{name} puts a finger on the door's sensor{note}")
            self.door(f"tap {staff_id} 0.8")

    def stranger(self) -> None:
        if self.tap_card:
            self.say("a visitor tries a bus card at the door (refused; see `congso card unknown`)")
            self.tap_card(STRANGER_CARD)
        else:
            self.say("a visitor tries an unknown finger at the door (refused, no event)")
            self.door("tap VISITOR 0.8")

    def move_dossier(self) -> None:
        now = self.now()
        moves = [("received", "processing"), ("processing", "ready"), ("ready", "returned"),
                 ("supplement_required", "processing")]
        self.rng.shuffle(moves)
        for old, new in moves:
            candidates = dossiers.list_all(self.db, status=old)
            if candidates:
                code = self.rng.choice(candidates)["code"]
                dossiers.set_status(self.db, code, new, now=now, source="demo")
                self.say(f"dossier {code}: {old} -> {new}")
                return

    def new_dossier(self) -> None:
        now = self.now()
        self.new_dossiers += 1
        code = f"000.24.11.H35-{now:%y%m%d}-{100 + self.new_dossiers:04d}"
        if dossiers.get(self.db, code):
            return
        applicant = self.rng.choice(NEW_APPLICANTS)
        dossiers.add(self.db, code, applicant, self.rng.choice(NEW_PROCEDURES), now.strftime("%Y-%m-%d %H:%M"),
                     (now + timedelta(days=self.rng.randint(1, 5))).strftime("%Y-%m-%d 17:00"), "received",
                     DESK, now=now, tz=self.tz)
        self.say(f"a citizen hands in dossier {code} at the one-stop desk")

    def citizen_rates(self) -> None:
        officer = self.rng.choice(OFFICERS_AT_DESK)
        open_codes = [d["code"] for d in dossiers.list_all(self.db, status="ready")] or [None]
        code = self.rng.choice(open_codes)
        ratings.open_session(self.db, DESK, officer, self.now(), dossier_code=code, minutes=5)
        name = staff.get(self.db, officer)["name"]
        self.say(f"{name} serves a citizen at {DESK}" + (f" (dossier {code})" if code else ""))
        time.sleep(self.pace_s)  # the kiosk shows the officer's name meanwhile
        roll = self.rng.random()
        levels = self.kiosk.levels()
        if roll < 0.55:
            self.say("the citizen presses the green button: Rất hài lòng")
            self.kiosk.press(0)
        elif roll < 0.85:
            self.say("the citizen touches Hài lòng on the screen")
            self.kiosk.touch("level:1")
        else:
            self.say("the citizen touches Không hài lòng, ticks a reason and sends")
            self.kiosk.touch(f"level:{len(levels) - 1}")
            time.sleep(1.0)
            self.kiosk.touch(f"reason:{self.rng.choice(['thoi_gian', 'so_lan_di_lai', 'huong_dan'])}")
            time.sleep(0.5)
            self.kiosk.touch("send")

    def officer_takes_desk(self, again: bool = False) -> None:
        """Đỗ Thị Lan taps her staff card on the kiosk: she holds the desk (a second tap leaves it)."""
        if not self.kiosk_card:
            return
        person = next(p for p in STAFF if p[0] == DESK_OFFICER)
        self.say(f"{person[1]} taps her staff card on the kiosk's reader: "
                 + ("she leaves the desk (Rời quầy)" if again else "she takes the desk (Nhận quầy)"))
        self.tap_card(person[4], at=KIOSK)

    def citizen_rates_at_duty(self) -> None:
        """A citizen rates with no session opened: the vote is the desk holder's."""
        self.kiosk.wait_ready()  # the last citizen's lockout is over
        self.say("a citizen rates without a session: the vote goes to the officer holding the desk")
        self.kiosk.press(self.rng.choice([0, 0, 1]))

    def urgent_notice(self) -> None:
        """The clerk posts a one-minute urgent notice (the console's Thông báo khẩn does the same)."""
        if self.urgent_posted:
            return
        from ..gateway import urgent

        urgent.add(self.db, "Diễn tập phòng cháy chữa cháy", "Mời quý khách làm theo hướng dẫn của cán bộ.", "1",
                   tz=self.tz, now=self.now())
        self.urgent_posted = True
        self.say("the clerk posts an urgent notice on the TV for one minute: Diễn tập phòng cháy chữa cháy")

    # -- the morning ------------------------------------------------------------
    def scenes(self):
        arrivals = list(STAFF)
        self.rng.shuffle(arrivals)
        if self.kiosk_card:
            yield self.officer_takes_desk
        for person in arrivals[:8]:
            yield lambda p=person: self.arrive(p)
        yield self.stranger
        yield lambda: self.arrive(arrivals[0], again=True)  # a beep, no second event
        yield self.move_dossier
        yield self.citizen_rates
        if self.kiosk_card:
            yield self.citizen_rates_at_duty
        for person in arrivals[8:]:
            yield lambda p=person: self.arrive(p)
        yield self.new_dossier
        yield self.move_dossier
        yield self.citizen_rates
        yield self.urgent_notice
        while True:  # the rest of the day
            yield self.rng.choice([self.move_dossier, self.citizen_rates, self.new_dossier,
                                   lambda: self.arrive(self.rng.choice(STAFF))])

    def run(self, stop: threading.Event) -> None:
        for scene in self.scenes():
            if stop.wait(self.pace_s):
                return
            try:
                scene()
            except Exception as e:  # a scene must not end the demo
                self.say(f"(scene failed: {e})")
                log.exception("demo scene failed")
