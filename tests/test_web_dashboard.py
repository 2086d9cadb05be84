"""Tổng quan, the console's dashboard: what each role sees, and the TV's screen on request.

Route tests run the real app on a real gateway database (``web_helpers``),
the office's data stored by the gateway's own code: attendance and rating
events through ``Ingest`` (as they arrive from the doors and kiosks), the
nodes' status and health the same way, dossiers with ``dossiers.add``.
The last test runs the real broker, the real gateway and a real TV
and a real kiosk (``congso signage run``, ``congso rating run`` on SDL's
dummy screen): the "Xem màn hình" button brings back each one's own PNG and
the dashboard shows it.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import dossiers, staff, timesheet
from congso.gateway.ingest import Ingest
from congso.protocol import messages, topics
from congso.protocol.link import Incoming

from web_helpers import Console

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
SITE = "ky-chau"
# Wednesday 25/11/2026, 09:00: the morning session is on (the 24th is a public holiday by law from 2026).
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=ZONE)
OUT = Path(__file__).resolve().parent.parent / "test-out" / "console"


def feed(db, node: str, leaf: str, payload: dict) -> None:
    """One message from a node, through the gateway's real ingest."""
    ingest = Ingest(db, SITE, TZ, max_ahead_h=24 * 3650, max_behind_days=3650)
    result = ingest.process([Incoming(topics.node_topic(SITE, node, leaf), messages.encode(leaf, payload),
                                      time.monotonic())])
    assert result.rejected == 0, result


def scan(db, seq: int, when: str, staff_id: str, node: str = "door-1") -> None:
    feed(db, node, "attendance", {
        "v": 1, "event_id": str(uuid.uuid4()), "node_id": node, "seq": seq, "ts": f"{when}:00+07:00",
        "clock_synced": True, "method": "finger", "credential": "3", "staff_id": staff_id, "match_score": 120})


def vote(db, seq: int, when: str, level: str, node: str = "kiosk-1") -> None:
    feed(db, node, "rating", {
        "v": 1, "event_id": str(uuid.uuid4()), "node_id": node, "seq": seq, "ts": f"{when}:00+07:00",
        "clock_synced": True, "desk_id": "tu-phap", "level": level})


def node_up(db, node: str, kind: str, state: str = "online", devices=None, clock_synced: bool = True) -> None:
    now = datetime.now(ZONE).isoformat(timespec="seconds")
    feed(db, node, "status", {"v": 1, "node_id": node, "kind": kind, "state": state, "version": "0.1.0", "since": now})
    if state == "online":
        feed(db, node, "health", {"v": 1, "node_id": node, "ts": now, "uptime_s": 12.0, "outbox": 0,
                                  "clock_synced": clock_synced, "devices": devices or {"display": "ok"},
                                  "interval_s": 60.0})


@pytest.fixture
def office(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW)
    c.staff("NV001", "Phạm Văn An", "Văn phòng")
    c.staff("NV002", "Lê Thị Bình", "Địa chính")
    c.staff("NV003", "Trần Quốc Cường", "Tư pháp")
    c.staff("NV004", "Đỗ Văn Dũng", "Văn phòng")
    staff.deactivate(c.db, "NV004")  # left the office: never "not in yet"
    c.user("cuong", "officer", staff_id="NV003")
    scan(c.db, 1, "2026-11-25T07:25", "NV001")        # on time
    scan(c.db, 2, "2026-11-25T07:50", "NV002")        # 20 minutes late
    scan(c.db, 3, "2026-11-24T07:20", "NV003")        # yesterday: not today
    return c


def _figures(html: str) -> tuple[int, int, int, int]:
    m = re.search(r'class="figure">(\d+)</span><span class="muted">/(\d+) đã đến', html)
    late = re.search(r'class="figure[^"]*">(\d+)</span><span class="muted"> đi muộn', html)
    out = re.search(r'class="figure[^"]*">(\d+)</span><span class="muted"> chưa đến', html)
    assert m and late and out, html
    return int(m.group(1)), int(m.group(2)), int(late.group(1)), int(out.group(1))


def test_todays_attendance_names_for_the_office_counts_only_for_an_officer(office):
    for role in ("admin", "clerk", "viewer"):
        client = office.as_role(role)
        page = client.get("/")
        assert page.status_code == 200
        # 2 of the 3 active staff in, 1 late, Cường not in yet (his scan was yesterday).
        assert _figures(page.text) == (2, 3, 1, 1), role
        assert "Lê Thị Bình" in page.text and "07:50, 20 phút" in page.text
        assert "Trần Quốc Cường" in page.text and "Chưa đến" in page.text
        assert "Đỗ Văn Dũng" not in page.text
        # The live part: a fragment, refreshed every 5 s, the same figures.
        assert 'data-refresh="/fragments/attendance-today" data-every="5"' in page.text
        assert 'data-refresh="/fragments/nodes"' in page.text
        fragment = client.get("/fragments/attendance-today")
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert _figures(fragment.text) == (2, 3, 1, 1) and "Trần Quốc Cường" in fragment.text

    officer = office.login("cuong")
    for url in ("/", "/fragments/attendance-today"):
        html = officer.get(url).text
        assert _figures(html) == (2, 3, 1, 1)
        for name in ("Phạm Văn An", "Lê Thị Bình", "Trần Quốc Cường"):
            assert name not in html, (url, name)


def test_attendance_after_closing_says_absent_and_a_weekend_says_so(tmp_path):
    evening = datetime(2026, 11, 25, 17, 30, tzinfo=ZONE)
    c = Console(tmp_path / "a", clock=lambda: evening)
    c.staff("NV001", "Phạm Văn An")
    c.staff("NV002", "Lê Thị Bình")
    scan(c.db, 1, "2026-11-25T07:29", "NV001")
    scan(c.db, 2, "2026-11-25T17:01", "NV001")
    html = c.as_role("clerk").get("/").text
    assert "1</span><span class=\"muted\"> vắng" in html and "Vắng (không chấm công hôm nay)" in html
    assert "Lê Thị Bình" in html

    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=ZONE)
    s = Console(tmp_path / "b", clock=lambda: saturday)
    s.staff("NV001", "Phạm Văn An")
    html = s.as_role("clerk").get("/").text
    assert "Hôm nay là ngày nghỉ" in html and "chưa đến" not in html


def test_ratings_today_and_this_month_per_level(office):
    db = office.db
    for seq, level in enumerate(["very_satisfied"] * 3 + ["dissatisfied"], start=1):
        vote(db, seq, f"2026-11-25T08:{seq:02d}", level)
    vote(db, 10, "2026-11-03T10:00", "satisfied")
    vote(db, 11, "2026-11-04T10:00", "satisfied")
    vote(db, 12, "2026-10-30T10:00", "dissatisfied")   # last month: not counted
    html = office.as_role("viewer").get("/").text
    assert "Hôm nay: 4 lượt" in html and "<strong>75,0%</strong> hài lòng" in html
    assert "Tháng này: 6 lượt" in html and "<strong>83,3%</strong> hài lòng" in html
    # One label and one colour per level, as on the kiosk and the TV (vocab.levels).
    assert "Rất hài lòng" in html and "Không hài lòng" in html
    assert 'width="75.0" height="10" fill="#2ea043"' in html     # today: 3 of 4 very satisfied
    assert 'fill="#d63031"' in html                              # dissatisfied


def test_dossiers_by_status_and_the_most_overdue(office):
    db = office.db
    for i in range(12):  # due 1..12 days ago, still being processed
        due = (NOW - timedelta(days=i + 1)).date().isoformat()
        dossiers.add(db, f"HS-QH-{i:02d}", f"Người nộp {i}", "Đăng ký khai sinh", "2026-10-01", due, "processing",
                     now=NOW, tz=TZ)
    dossiers.add(db, "HS-HAN-1", "Nguyễn Thị Hà", "Chứng thực", "2026-11-20", "2026-11-25", "received", now=NOW, tz=TZ)
    dossiers.add(db, "HS-XONG", "Lê Văn Xong", "Chứng thực", "2026-11-01", "2026-11-02", "returned", now=NOW, tz=TZ)
    dossiers.add(db, "HS-GIO", "Võ Thị Giờ", "Chứng thực", "2026-11-20", "2026-11-25 08:00", "supplement_required",
                 now=NOW, tz=TZ)  # due at 08:00 today: overdue at 09:00
    html = office.as_role("admin").get("/").text
    counts = dict(re.findall(r'<a href="/dossiers\?status=\w+">([^<]+)</a></th>\s*<td class="num">(\d+)</td>', html))
    assert counts == {"Đã tiếp nhận": "1", "Đang xử lý": "12", "Yêu cầu bổ sung": "1", "Đã có kết quả": "0",
                      "Đã trả kết quả": "1"}
    assert re.search(r'Quá hạn</span></a></th><td class="num">13</td>', html)
    shown = re.findall(r'<a href="/dossiers/([^"]+)">', html)
    assert len(shown) == 10 and shown[0] == "HS-QH-11" and shown[1] == "HS-QH-10"  # the most overdue first
    assert "HS-HAN-1" not in html and "HS-XONG" not in html                      # due today; returned
    assert "12 ngày" in html and "10 hồ sơ quá hạn lâu nhất trong 13" in html
    # The viewer has no dossier pages: the codes are shown, not linked.
    viewer = office.as_role("viewer").get("/").text
    assert "HS-QH-11" in viewer and '<a href="/dossiers/' not in viewer and '<a href="/dossiers?' not in viewer


def test_nodes_with_problems_and_the_screens_each_role_sees(office):
    db = office.db
    node_up(db, "door-1", "attendance", devices={"fingerprint": "error", "card": "ok"})
    node_up(db, "kiosk-1", "rating", clock_synced=False)
    node_up(db, "tv-1", "signage", state="offline")
    for role in ("admin", "clerk"):
        client = office.as_role(role)
        html = client.get("/").text
        assert "Thiết bị vân tay: lỗi" in html and "Mất kết nối" in html and "Đồng hồ chưa đồng bộ" in html
        # A button per TV and kiosk (none for the door), no picture yet.
        assert html.count("Xem màn hình</button>") == 2
        assert 'action="/devices/tv-1/screenshot"' in html and 'action="/devices/kiosk-1/screenshot"' in html
        assert 'action="/devices/door-1/screenshot"' not in html
        assert html.count("Chưa chụp màn hình này.") == 2
        fragment = client.get("/fragments/nodes").text
        assert "2 cần xem" in fragment and "Thiết bị vân tay: lỗi" in fragment and "<html" not in fragment
    for role in ("viewer", "officer"):
        client = office.as_role(role)
        html = client.get("/").text
        assert "Thiết bị vân tay: lỗi" in html and "Xem màn hình</button>" not in html
        assert client.get("/devices/tv-1/screen.png").status_code == 404
        # They may look, not ask: a 403 and no command queued.
        r = client.post("/devices/tv-1/screenshot", data={"csrf_token": client.csrf, "next": "/"})
        assert r.status_code == 403
    assert db.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0

    # A screenshot kept by the console is shown to every role.
    png = _png(64, 36)
    office.app.state.console.screenshots["kiosk-1"] = (png, NOW)
    for role in ("viewer", "officer", "clerk"):
        client = office.as_role(role)
        r = client.get("/devices/kiosk-1/screen.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == png
        html = client.get("/").text
        assert re.search(r'<img class="screen" src="/devices/kiosk-1/screen.png\?t=\d+"', html)
        assert "Chụp lúc 09:00 25/11/2026" in html
    anonymous = office.client()
    assert anonymous.get("/devices/kiosk-1/screen.png").status_code == 303


def _png(w: int, h: int) -> bytes:
    import pygame

    surface = pygame.Surface((w, h))
    surface.fill((10, 20, 30))
    surface.fill((200, 0, 0), (0, 0, w // 2, h // 2))
    buf = io.BytesIO()
    pygame.image.save(surface, buf, "x.png")
    return buf.getvalue()


def test_the_dashboard_reads_today_only_from_a_year_of_scans(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW)
    for n in range(60):
        c.staff(f"NV{n:03d}", f"Cán bộ số {n}")
    # 60,000 events: 60 staff x 4 scans x 250 days, as a year of the office.
    first = NOW.date() - timedelta(days=249)
    rows = []
    for d in range(250):
        day = first + timedelta(days=d)
        for n in range(60):
            for k, hm in enumerate(("07:2", "11:3", "13:2", "17:0")):
                ts = f"{day.isoformat()}T{hm}{n % 10}:00+07:00"
                rows.append((str(uuid.uuid4()), "door-1", len(rows), ts, day.isoformat(), 1, ts, "{}", "finger", "3",
                             f"NV{n:03d}", 120))
    with c.db.conn:
        c.db.conn.executemany("INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, "
                              "received_at, payload, method, credential, staff_id, match_score) "
                              "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    assert c.db.execute("SELECT count(*) FROM attendance_events").fetchone()[0] == 60_000
    # Today's scans are found by the local_date index, never by reading the year.
    plan = " ".join(str(r) for r in c.db.execute("EXPLAIN QUERY PLAN " + timesheet.SCANS_SQL,
                                                  (NOW.date().isoformat(),) * 2).fetchall())
    assert "idx_attendance_events_local_date" in plan, plan
    client = c.as_role("clerk")
    client.get("/")
    times = []
    for _ in range(5):
        started = time.perf_counter()
        r = client.get("/fragments/attendance-today")
        times.append(time.perf_counter() - started)
        assert r.status_code == 200
    assert _figures(r.text)[:3] == (60, 60, 0)  # 09:00: all in by 07:29, nobody late
    # Not a benchmark (bench/console.py is): a whole-table read would take seconds.
    assert min(times) < 0.5, times


@pytest.fixture
def e2e_console(tmp_path):
    # The console on the gateway's own database ([data] dir), as `congso web run` would be.
    return Console(tmp_path, CONGSO_SITE_ID="test-site")


def test_the_screenshot_button_brings_back_the_tvs_and_the_kiosks_screen(broker, spawn, tmp_path, e2e_console):
    import pygame

    from conftest import start_gateway, wait_for
    from congso.gateway import registry

    console = e2e_console
    gateway = start_gateway(spawn, broker, console.data_dir)
    tv_env = broker.env("tv-1", tmp_path / "tv", SDL_VIDEODRIVER="dummy", CONGSO_DISPLAY_WIDTH="1280",
                        CONGSO_DISPLAY_HEIGHT="720", CONGSO_SIGNAGE_CEC="none", CONGSO_SIGNAGE_ON_HOURS="00:00-24:00",
                        CONGSO_SIGNAGE_ON_DAYS="monday,tuesday,wednesday,thursday,friday,saturday,sunday")
    tv = spawn(["signage", "run"], tv_env, name="tv")
    kiosk = spawn(["rating", "run"], broker.env("kiosk-1", tmp_path / "kiosk", CONGSO_RATING_DESK_ID="tu-phap",
                                                CONGSO_DISPLAY_WIDTH="800", CONGSO_DISPLAY_HEIGHT="480",
                                                SDL_VIDEODRIVER="dummy", GPIOZERO_PIN_FACTORY="mock"), name="kiosk")

    def online(node):
        return any(v.node_id == node and v.online for v in registry.list_nodes(console.db, datetime.now(ZONE)))

    wait_for(lambda: online("tv-1"), 30, "the TV online", tv)
    wait_for(lambda: online("kiosk-1"), 30, "the kiosk online", kiosk)

    clerk = console.as_role("clerk")
    home = clerk.get("/").text
    assert 'action="/devices/tv-1/screenshot"' in home and "Chưa chụp màn hình này." in home
    r = clerk.post("/devices/tv-1/screenshot", data={"csrf_token": clerk.csrf, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/#screens", r.text[:300] + gateway.tail()
    home = clerk.get("/").text
    assert "Đã chụp màn hình tv-1." in home  # the flash message
    assert re.search(r'<img class="screen" src="/devices/tv-1/screen.png\?t=\d+"', home)

    shot = clerk.get("/devices/tv-1/screen.png")
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
    assert shot.content[:8] == b"\x89PNG\r\n\x1a\n"
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "dashboard-tv-1.png"
    path.write_bytes(shot.content)
    image = pygame.image.load(str(path))
    assert image.get_size() == (1280, 720)
    colours = {tuple(image.get_at((x, y)))[:3] for x in range(0, 1280, 40) for y in range(0, 720, 40)}
    assert len(colours) > 3, colours  # a drawn screen, not a blank one

    # The kiosk's screen too, at its own size.
    r = clerk.post("/devices/kiosk-1/screenshot", data={"csrf_token": clerk.csrf, "next": "/"})
    assert "Đã chụp màn hình kiosk-1." in clerk.get("/").text, gateway.tail() + kiosk.tail()
    kiosk_png = clerk.get("/devices/kiosk-1/screen.png").content
    (OUT / "dashboard-kiosk-1.png").write_bytes(kiosk_png)
    assert pygame.image.load(str(OUT / "dashboard-kiosk-1.png")).get_size() == (800, 480)

    # Every role on the dashboard sees the picture; the command is in the audit log.
    viewer = console.as_role("viewer")
    assert viewer.get("/devices/tv-1/screen.png").content == shot.content
    rows = console.db.execute("SELECT actor, action, target FROM audit_log WHERE action='node.screenshot' ORDER BY id").fetchall()
    assert rows == [("u-clerk", "node.screenshot", "tv-1"), ("u-clerk", "node.screenshot", "kiosk-1")]

    # Identify and reload from the devices page answer "done" in Vietnamese.
    r = clerk.post("/devices/tv-1/identify", data={"csrf_token": clerk.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/devices"
    page = clerk.get("/devices").text
    assert "tv-1 đã nhận lệnh nhận diện" in page, page[:3000] + gateway.tail()
    r = clerk.post("/devices/tv-1/reload", data={"csrf_token": clerk.csrf})
    assert "tv-1 đã tải lại cài đặt và dữ liệu." in clerk.get(r.headers["location"]).text
