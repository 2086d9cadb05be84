"""Nội dung đã chiếu: the console's proof-of-play page and its XLSX, per role.

The real console app on a real gateway database (web_helpers); the showings
are stored through the gateway's real ingest (the hand-built day of
test_plays.py).
"""

from __future__ import annotations

import io
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from test_plays import _store, play_event
from web_helpers import Console

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 24, 16, 0, tzinfo=ZONE)


@pytest.fixture
def hall(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW, CONGSO_SITE_NAME="UBND xã Kỳ Châu")
    _store(c.db_path, [
        play_event("tiem-chung", "2026-11-24T08:00:00+07:00", 10, title="Tiêm chủng (cũ)", seq=1),
        play_event("tiem-chung", "2026-11-24T09:30:00+07:00", 12.5, seq=2),
        play_event("tiem-chung", "2026-11-24T10:00:00+07:00", 7.5, seq=3),
        play_event("board", "2026-11-24T08:01:00+07:00", 3600, item_type="page", title="Bảng hồ sơ", seq=4),
        play_event("tiem-chung", "2026-11-24T11:00:00+07:00", 15, node="tv-2", seq=1),
        play_event("tiem-chung", "2026-11-23T11:00:00+07:00", 15, seq=5),  # the day before
    ], max_behind_days=3650)
    conn = sqlite3.connect(c.db_path)
    with conn:
        conn.execute("INSERT INTO announcements(id, title, body, created_at) VALUES (?,?,?,?)",
                     ("tiem-chung", '=HYPERLINK("http://evil.example","Tiêm chủng")', "…", "2026-11-20T08:00:00+07:00"))
    conn.close()
    return c


def test_the_page_answers_was_it_shown_today(hall):
    v = hall.as_role("viewer")
    assert 'href="/reports/plays"' in v.get("/reports").text
    page = v.get("/reports/plays")  # today (the console's clock) by default
    assert page.status_code == 200
    html = page.text
    for words in ("Lần chiếu", "Tổng thời gian", "Tải XLSX", 'name="from"', 'name="to"', 'name="node"', 'name="item"'):
        assert words in html, words
    assert "Ngày 24/11/2026" in html
    # The TV filter offers both TVs, the slide filter the slide by its current title (escaped).
    assert '<option value="tv-1"' in html and '<option value="tv-2"' in html
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in html or "=HYPERLINK(&quot;http://evil.example&quot;" in html
    assert "<td>Trang</td>" in html and "1:00:00" in html  # the board, an hour
    assert "0:00:30" in html and "0:00:15" in html         # the slide: 3 showings on tv-1, 1 on tv-2
    assert "<tfoot><tr><th colspan=\"4\">Tổng cộng</th><th class=\"num\">5</th><th class=\"num\">1:00:45</th>" in html

    # One TV and one slide over two days.
    page = v.get("/reports/plays?from=23/11/2026&to=2026-11-24&node=tv-1&item=tiem-chung")
    assert page.status_code == 200
    body = page.text[page.text.index("<tbody>"):page.text.index("</tbody>")]
    assert body.count("<tr>") == 2 and "tv-2" not in body
    assert "23/11/2026" in body and "24/11/2026" in body
    assert 'href="/reports/plays.xlsx?from=2026-11-23&amp;to=2026-11-24&amp;node=tv-1&amp;item=tiem-chung"' in page.text

    page = v.get("/reports/plays?from=2026-11-20&to=2026-11-20")
    assert "Không có lần chiếu nào trong khoảng này" in page.text


def test_the_xlsx_download_keeps_titles_as_text(hall):
    c = hall.as_role("clerk")
    r = c.get("/reports/plays.xlsx?from=2026-11-24&to=2026-11-24&item=tiem-chung")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="noi-dung-da-chieu-2026-11-24.xlsx"'
    ws = load_workbook(io.BytesIO(r.content)).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == "BÁO CÁO NỘI DUNG ĐÃ CHIẾU TRÊN MÀN HÌNH" and values[1][0] == "Đơn vị: UBND xã Kỳ Châu"
    header = next(i for i, row in enumerate(values) if row[0] == "Ngày")
    assert [row[1:7] for row in values[header + 1:]] == [
        ("tv-1", "Thông báo", "tiem-chung", '=HYPERLINK("http://evil.example","Tiêm chủng")', 3, "0:00:30"),
        ("tv-2", "Thông báo", "tiem-chung", '=HYPERLINK("http://evil.example","Tiêm chủng")', 1, "0:00:15"),
        (None, None, None, None, 4, "0:00:45"),  # the total (blank cells read back as None)
    ]
    assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row if cell.value is not None)
    csv_text = c.get("/reports/plays.csv?from=2026-11-24&to=2026-11-24").content.decode("utf-8-sig")
    assert "'=HYPERLINK" in csv_text and "Lần chiếu" in csv_text.splitlines()[0]


def test_who_may_see_it(hall):
    for role in ("admin", "clerk", "viewer"):
        assert hall.as_role(role).get("/reports/plays").status_code == 200, role
    o = hall.as_role("officer")
    assert o.get("/reports/plays").status_code == 403
    assert o.get("/reports/plays.xlsx").status_code == 403
    anonymous = hall.client().get("/reports/plays.xlsx")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_bad_input_answers_a_clear_error(hall):
    v = hall.as_role("viewer")
    r = v.get("/reports/plays?from=31/11/2026")
    assert r.status_code == 422 and "Không lập được báo cáo nội dung đã chiếu" in r.text and "31/11/2026" in r.text
    r = v.get("/reports/plays?from=2026-11-25&to=2026-11-24")
    assert r.status_code == 422 and "is after" in r.text
    r = v.get("/reports/plays.xlsx?from=2025-01-01&to=2026-11-24")
    assert r.status_code == 422 and "at most 366 days" in r.text
