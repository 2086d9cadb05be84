"""Thông báo in the console: current, future and ended; add, edit, remove; the TV's own preview."""

from __future__ import annotations

import io
import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import announcements
from web_helpers import Console

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)
OUT = Path(__file__).resolve().parent.parent / "test-out" / "console"


@pytest.fixture
def console(tmp_path):
    return Console(tmp_path, clock=lambda: NOW)


@pytest.fixture
def clerk(console):
    return console.as_role("clerk")


def rows(console) -> list[dict]:
    return list(console.db.query("SELECT * FROM announcements ORDER BY id"))


def audits(console, action: str) -> list[dict]:
    return list(console.db.query("SELECT * FROM audit_log WHERE action=? ORDER BY id", [action]))


def post(client, url="/announcements/new", **fields):
    data = {"csrf_token": client.csrf, "title": "Nộp hồ sơ trực tuyến", "action": "save",
            "body": "Người dân có thể nộp hồ sơ qua Cổng dịch vụ công quốc gia.\nKhông cần đến xã.",
            "qr_url": "https://dichvucong.gov.vn", "valid_from": "", "valid_until": "2026-12-31T17:00"}
    data.update(fields)
    return client.post(url, data=data)


def section(page: str, heading: str) -> str:
    start = page.index(heading)
    nxt = page.find("<h2>", start + 1)
    return page[start:nxt if nxt > 0 else None]


def test_current_future_and_ended_each_listed(console, clerk):
    assert post(clerk).status_code == 303
    assert post(clerk, title="Lịch tiêm chủng tháng 1", valid_from="05/01/2027 07:00", valid_until="").status_code == 303
    assert post(clerk, title="Nghỉ lễ Quốc khánh", valid_from="2026-08-30T00:00", valid_until="2026-09-03T23:59").status_code == 303
    page = clerk.get("/announcements").text
    assert "Nộp hồ sơ trực tuyến" in section(page, "Đang hiện")
    assert "đến 17:00 31/12/2026" in section(page, "Đang hiện") and "https://dichvucong.gov.vn" in section(page, "Đang hiện")
    assert "Lịch tiêm chủng tháng 1" in section(page, "Sắp hiện") and "Từ 07:00 05/01/2027" in section(page, "Sắp hiện")
    assert "Nghỉ lễ Quốc khánh" in section(page, "Đã hết hạn")
    for a in rows(console):
        assert f'src="/announcements/{a["id"]}/preview.png"' in page or a["title"] == "Nghỉ lễ Quốc khánh"


def test_add_edit_remove_each_audited(console, clerk):
    post(clerk)
    (a,) = rows(console)
    assert a["valid_until"] == "2026-12-31T17:00:00+07:00" and a["valid_from"] is None
    assert a["body"].endswith("\nKhông cần đến xã.")
    assert audits(console, "announcements.add")[0]["target"] == a["id"]
    form = clerk.get(f"/announcements/{a['id']}/edit").text
    assert 'value="2026-12-31T17:00"' in form and "Không cần đến xã." in form
    r = post(clerk, f"/announcements/{a['id']}/edit", title="Nộp hồ sơ trực tuyến (cập nhật)",
             qr_url="https://dichvucong.gov.vn/p/home", valid_from="01/12/2026 08:00", valid_until="15/12/2026 17:00")
    assert r.status_code == 303
    (b,) = rows(console)
    assert (b["id"], b["title"], b["qr_url"], b["valid_from"], b["valid_until"], b["created_at"]) == (
        a["id"], "Nộp hồ sơ trực tuyến (cập nhật)", "https://dichvucong.gov.vn/p/home", "2026-12-01T08:00:00+07:00",
        "2026-12-15T17:00:00+07:00", a["created_at"])
    assert "2026-12-31T17:00:00+07:00" in audits(console, "announcements.edit")[0]["detail"]
    assert clerk.get(f"/announcements/{a['id']}/delete").status_code == 200 and rows(console)
    r = clerk.post(f"/announcements/{a['id']}/delete", data={"csrf_token": clerk.csrf})
    assert r.status_code == 303 and rows(console) == []
    assert audits(console, "announcements.remove")[0]["target"] == a["id"]


@pytest.mark.parametrize("fields, said", [
    ({"title": ""}, "--title is empty"),
    ({"qr_url": "javascript:alert(1)"}, "must be an http(s) link"),
    ({"valid_from": "2026-12-10T08:00", "valid_until": "2026-12-09T08:00"}, "is not after --from"),
    ({"valid_until": "32/12/2026"}, "--until"),
    ({"title": "x" * 201}, "at most 200"),
])
def test_bad_input_keeps_what_was_typed_and_stores_nothing(console, clerk, fields, said):
    r = post(clerk, body="Nội dung đã gõ, giữ nguyên", **fields)
    assert r.status_code == 422 and said in r.text and "Chưa lưu được thông báo" in r.text
    assert "Nội dung đã gõ, giữ nguyên" in r.text
    assert rows(console) == [] and audits(console, "announcements.add") == []


def test_a_bad_edit_changes_nothing(console, clerk):
    post(clerk)
    before = rows(console)
    r = post(clerk, f"/announcements/{before[0]['id']}/edit", title="Đổi tên", qr_url="ftp://x")
    assert r.status_code == 422 and 'value="Đổi tên"' in r.text
    assert rows(console) == before and audits(console, "announcements.edit") == []


def test_roles_without_announcements_are_refused(console, clerk):
    post(clerk)
    (a,) = rows(console)
    for role in ("viewer", "officer"):
        c = console.as_role(role)
        assert c.get("/announcements").status_code == 403
        assert c.get(f"/announcements/{a['id']}/preview.png").status_code == 403
        assert post(c).status_code == 403
        assert c.post(f"/announcements/{a['id']}/delete", data={"csrf_token": c.csrf}).status_code == 403
    assert rows(console) == [a]


def _decode(png: bytes):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    import pygame

    return pygame.image.load(io.BytesIO(png), "x.png")


def _rect(console, item: dict, tag: str, now: datetime = NOW):
    from congso.signage_node import pages

    view = pages.View(site_name=console.settings.site.name, now=now, states={"announcements": {"items": [item]}})
    (t,) = [i for i in pages.frame(view, (1280, 720), ("announcements", 0)) if getattr(i, "tag", "") == tag]
    return t.rect


def _ink(surface, rect, dark_below: int = 400) -> int:
    x, y, w, h = rect
    return sum((sum(surface.get_at((px, py))[:3]) < dark_below) for px in range(x, x + w, 2) for py in range(y, y + h, 2))


def test_the_preview_is_the_tv_layout_of_the_notice(console, clerk):
    post(clerk)
    post(clerk, title="Lịch tiêm chủng tháng 1", qr_url="", valid_from="05/01/2027 07:00", valid_until="")
    now_item, later = sorted(rows(console), key=lambda r: r["title"] != "Nộp hồ sơ trực tuyến")
    r = clerk.get(f"/announcements/{now_item['id']}/preview.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "announcement-preview.png").write_bytes(r.content)
    shot = _decode(r.content)
    assert shot.get_size() == (1280, 720)
    payload = {k: now_item[k] for k in ("id", "title", "body", "qr_url", "valid_from", "valid_until")}
    assert _ink(shot, _rect(console, payload, "ann-title")) > 40, "the notice's title is blank on the TV's drawing"
    assert _ink(shot, _rect(console, payload, "ann-body")) > 40
    # The QR code is drawn (black modules on its white box), right of the text as on the TV.
    assert _ink(shot, (900, 200, 300, 300), 100) > 200
    # A notice shown later is drawn as the TV will show it then (not "no data").
    r2 = clerk.get(f"/announcements/{later['id']}/preview.png")
    shot2 = _decode(r2.content)
    at = datetime(2027, 1, 5, 7, 0, tzinfo=ZONE)
    later_payload = {k: later[k] for k in ("id", "title", "body", "qr_url", "valid_from", "valid_until")}
    assert _ink(shot2, _rect(console, later_payload, "ann-title", at)) > 40
    assert r2.content != r.content
    assert clerk.get("/announcements/a-nothere/preview.png").status_code == 404


def test_the_form_preview_draws_without_saving(console, clerk):
    r = post(clerk, action="preview", title="Thông báo thử trước khi đăng")
    assert r.status_code == 200 and rows(console) == []
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', r.text)
    assert m, "no preview image on the form"
    import base64

    png = base64.b64decode(m.group(1))
    (OUT / "announcement-form-preview.png").write_bytes(png)
    assert _decode(png).get_size() == (1280, 720)
    assert 'value="Thông báo thử trước khi đăng"' in r.text  # the form keeps what was typed
    bad = post(clerk, action="preview", qr_url="không phải link")
    assert bad.status_code == 422 and "must be an http(s) link" in bad.text and rows(console) == []


def test_library_update_checks_as_add_does(console):
    item = announcements.add(console.db, title="A", body="b", tz="Asia/Ho_Chi_Minh", now=NOW)
    with pytest.raises(announcements.AnnouncementError):
        announcements.update(console.db, item["id"], title="", body="b", tz="Asia/Ho_Chi_Minh")
    with pytest.raises(announcements.AnnouncementError):
        announcements.update(console.db, "a-missing", title="A", body="b", tz="Asia/Ho_Chi_Minh")
    assert announcements.get(console.db, item["id"])["title"] == "A"
