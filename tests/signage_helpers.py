"""Sample boards for the signage tests and the bench: realistic, Vietnamese, masked."""

from __future__ import annotations

import functools
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from congso.signage_node import pages  # noqa: E402
from congso.ui import Renderer  # noqa: E402
from congso.vocab.vietnamese import mask_name  # noqa: E402

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 25, 9, 41, tzinfo=TZ)  # Wednesday
OUT = Path(__file__).resolve().parent.parent / "test-out" / "signage"

NAMES = ["Nguyễn Thị Thu Hà", "Trần Văn Bình", "Lê Hoàng Phương Anh", "Phạm Minh Tuấn", "Hoàng Thị Mỹ Duyên",
         "Võ Văn Kiệt", "Đặng Ngọc Ánh", "Bùi Quang Huy", "Đỗ Thị Lan", "Ngô Bảo Châu", "Huỳnh Tấn Phát",
         "Dương Thị Xuân Quỳnh"]
PROCEDURES = ["Đăng ký khai sinh", "Chứng thực bản sao từ bản chính", "Cấp giấy xác nhận tình trạng hôn nhân",
              "Đăng ký kết hôn", "Cấp giấy chứng nhận quyền sử dụng đất lần đầu", "Đăng ký thường trú",
              "Xác nhận hộ nghèo", "Trích lục bản sao giấy khai tử"]
STATUSES = ["received", "processing", "processing", "supplement_required", "ready", "processing"]


def dossiers_state(n: int = 14, now: datetime = NOW) -> dict:
    items = []
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        due = (now + timedelta(days=(i % 5) - 1)).date().isoformat()
        items.append({"code": f"H40.12-2611{20 + i % 5:02d}-{i + 1:04d}", "applicant": mask_name(NAMES[i % len(NAMES)]),
                      "procedure": PROCEDURES[i % len(PROCEDURES)], "received_at": (now - timedelta(days=3)).date().isoformat(),
                      "due_at": due, "status": status, "desk": "Tư pháp - Hộ tịch"})
    counts = {s: sum(d["status"] == s for d in items) for s in ("received", "processing", "supplement_required", "ready", "returned")}
    counts["overdue"] = sum(pages.is_overdue(d["status"], d["due_at"], now) for d in items)
    return {"v": 1, "version": 3, "generated_at": now.isoformat(timespec="seconds"), "counts": counts, "dossiers": items,
            "omitted": 0}


def calendar_state(now: datetime = NOW) -> dict:
    monday = now.date() - timedelta(days=now.weekday())

    def at(day, hh, mm):
        return datetime.combine(monday + timedelta(days=day), datetime.min.time(), TZ).replace(hour=hh, minute=mm).isoformat()

    entries = [
        {"id": "e1", "start": at(0, 7, 30), "end": at(0, 9, 0), "all_day": False, "leaders": ["Chủ tịch Trần Văn Bình"],
         "title": "Họp giao ban đầu tuần", "location": "Phòng họp UBND xã", "participants": "Lãnh đạo UBND", "preparer": "Văn phòng"},
        {"id": "e2", "start": at(2, 8, 0), "end": at(2, 11, 0), "all_day": False, "leaders": ["Phó Chủ tịch Lê Thị Hồng"],
         "title": "Tiếp công dân định kỳ", "location": "Phòng tiếp dân", "participants": None, "preparer": None},
        {"id": "e3", "start": at(2, 14, 0), "end": at(2, 16, 30), "all_day": False,
         "leaders": ["Chủ tịch Trần Văn Bình", "Phó Chủ tịch Lê Thị Hồng"],
         "title": "Hội nghị trực tuyến triển khai chuyển đổi số cấp xã năm 2027", "location": "Hội trường UBND xã",
         "participants": None, "preparer": None},
        {"id": "e4", "start": (monday + timedelta(days=4)).isoformat(), "end": None, "all_day": True,
         "leaders": ["Chủ tịch Trần Văn Bình"], "title": "Làm việc tại huyện", "location": "UBND huyện Kỳ Anh",
         "participants": None, "preparer": None},
        {"id": "e5", "start": at(7, 7, 30), "end": at(7, 9, 0), "all_day": False, "leaders": ["Chủ tịch Trần Văn Bình"],
         "title": "Họp giao ban đầu tuần", "location": "Phòng họp UBND xã", "participants": None, "preparer": None},
    ]
    return {"v": 1, "version": 2, "week_start": monday.isoformat(), "entries": entries}


def announcements_state() -> dict:
    return {"v": 1, "version": 1, "items": [
        {"id": "a1", "title": "Nộp hồ sơ trực tuyến tại nhà", "body": "Người dân có thể nộp hồ sơ và nhận kết quả thủ tục "
         "hành chính qua Cổng Dịch vụ công quốc gia mà không phải đến UBND xã. Quét mã QR để bắt đầu.",
         "qr_url": "https://dichvucong.gov.vn", "valid_from": None, "valid_until": None},
        {"id": "a2", "title": "Lịch tiếp công dân tháng 12", "body": "Chủ tịch UBND xã tiếp công dân vào sáng thứ Năm hằng tuần "
         "tại phòng tiếp dân.", "qr_url": None, "valid_from": None, "valid_until": "2026-12-31T23:59:59+07:00"},
    ]}


def ratings_state() -> dict:
    return {"v": 1, "version": 5, "today": {"very_satisfied": 12, "satisfied": 5, "dissatisfied": 1},
            "month": {"very_satisfied": 230, "satisfied": 96, "dissatisfied": 14}, "satisfied_pct_month": 95.9}


def kpi_state() -> dict:
    return {"v": 1, "version": 3, "month": "2026-11",
            "on_time": {"share": 412 / 430, "part": 412, "whole": 430, "target": 1.0},
            "online": {"share": 0.52, "part": 260, "whole": 500, "target": 0.4},
            "satisfaction": {"share": None, "part": 0, "whole": 0, "target": 0.9}}


RED = (255, 0, 0)
BLUE = (0, 0, 255)


def red_blue_picture(path: Path, size=(1600, 900), fmt: str = "PNG") -> tuple[str, int]:
    """A test poster: the left half pure red, the right half pure blue; returns (sha256, size in bytes)."""
    import hashlib

    from PIL import Image as PILImage

    w, h = size
    img = PILImage.new("RGB", size, RED)
    img.paste(BLUE, (w // 2, 0, w, h))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    return sha, len(data)


def picture_slide(sha: str, nbytes: int, size=(1600, 900), slide_id: str = "s1", **extra) -> dict:
    """An announcements item carrying a picture (the manifest as the gateway publishes it)."""
    return {"id": slide_id, "title": "Tiêm chủng mở rộng tại trạm y tế xã", "body": "", "qr_url": None,
            "valid_from": None, "valid_until": None, "schedule": None, "seconds": None,
            "media": {"kind": "image", "sha256": sha, "size": nbytes, "width": size[0], "height": size[1],
                      "duration_s": None, "renditions": []}, **extra}


@functools.lru_cache(maxsize=1)
def _sample_picture() -> tuple[str, int, Path]:
    path = OUT / "media" / "red-blue.png"
    sha, n = red_blue_picture(path)
    return sha, n, path


def full_view(now: datetime = NOW, **kw) -> pages.View:
    sha, n, path = _sample_picture()
    announcements = announcements_state()
    announcements["items"].append(picture_slide(sha, n))
    states = {"dossiers": dossiers_state(now=now), "calendar": calendar_state(now), "announcements": announcements,
              "ratings": ratings_state(), "kpi": kpi_state()}
    states.update(kw.pop("states", {}))
    kw.setdefault("media", {sha: str(path)})
    return pages.View(site_name="UBND xã Kỳ Châu", now=now, states=states, **kw)


class Screen:
    """A surface the size of a TV with the app's two renderers (page and ticker)."""

    def __init__(self, size=(1280, 720)):
        pygame.display.init()
        pygame.font.init()
        self.size = size
        w, h = size
        self.surface = pygame.Surface(size)
        fh = pages.footer_height(size)
        self.main = Renderer(self.surface.subsurface((0, 0, w, h - fh)))
        self.footer = Renderer(self.surface.subsurface((0, h - fh, w, fh)))
        self.fh = fh

    def draw(self, view: pages.View, slot, ticker_offset: int = 0) -> None:
        self.main.draw(pages.frame(view, self.size, slot))
        text = pages.ticker_text(view)
        width = self.footer.measure(text, pages.ticker_font(self.size))[0] if text else 0
        self.footer.draw(pages.ticker(text, self.size, ticker_offset, width))

    def drawn(self):
        """Every text drawn, in screen coordinates."""
        out = list(self.main.drawn_text)
        h = self.size[1] - self.fh
        for d in self.footer.drawn_text:
            out.append(d.__class__(d.tag, d.text, (d.box[0], d.box[1] + h, d.box[2], d.box[3]),
                                   (d.ink[0], d.ink[1] + h, d.ink[2], d.ink[3]), d.size))
        return out

    def save(self, name: str) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.png"
        pygame.image.save(self.surface, str(path))
        return path


# -- a real TV process in the tests ------------------------------------------------------------

def tv_env(broker, tv_dir, size=(1280, 720), **extra) -> dict[str, str]:
    """The settings of ``congso signage run`` as tv-1 on SDL's dummy screen, on all day every day, no CEC."""
    values = {"SDL_VIDEODRIVER": "dummy", "CONGSO_DISPLAY_WIDTH": str(size[0]), "CONGSO_DISPLAY_HEIGHT": str(size[1]),
              "CONGSO_SIGNAGE_CEC": "none", "CONGSO_SIGNAGE_ON_HOURS": "00:00-24:00",
              "CONGSO_SIGNAGE_ON_DAYS": "monday,tuesday,wednesday,thursday,friday,saturday,sunday", **extra}
    return broker.env("tv-1", tv_dir, **values)


def screen_text(shots: Path) -> str:
    """Every text on the TV's screen, one per line (its --screenshot-dir's screen.txt); "" before the first."""
    try:
        return (shots / "screen.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
