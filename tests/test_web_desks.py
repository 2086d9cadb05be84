"""Quầy và đánh giá: desk sessions from the officer's PC, and the ratings report, per role.

Route tests run the real console app on a real gateway database (web_helpers).
The last test runs the real broker, the real gateway process and a real
kiosk app: a session opened through the web route puts the officer's name
on the kiosk's screen.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from congso.gateway import accounts, dossiers, ratings
from rating_helpers import store, vote
from web_helpers import Console

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
DESK, OTHER = "mot-cua-1", "mot-cua-2"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)


def rows(console, sql, params=()):
    return [tuple(r) for r in console.db.execute(sql, params).fetchall()]


@pytest.fixture
def office(tmp_path):
    c = Console(tmp_path, clock=lambda: NOW)
    c.staff("NV003", "Lê Thị Cúc")
    c.staff("NV004", "Trần Văn Dũng")
    c.user("cuc", "officer", "NV003", desks=[DESK])
    c.user("dung", "officer", "NV004", desks=[OTHER])
    c.user("admin", "admin")
    c.user("vt", "clerk")
    c.user("ld", "viewer")
    for code, received in (("H23-0001", "2026-11-20T08:00"), ("H23-0002", "2026-11-23T14:00"),
                           ("H23-0003", "2026-11-22T10:00")):
        dossiers.add(c.db, code, "Nguyễn Văn An", "Chứng thực bản sao", received, None, "received", DESK,
                     now=NOW, tz=TZ)
    dossiers.add(c.db, "H23-0009", "Phạm Thị Hà", "Khai sinh", "2026-11-23T15:00", None, "returned", DESK,
                 now=NOW, tz=TZ)
    return c


def test_officer_opens_a_session_by_scanning_the_code_and_closes_it(office):
    o = office.login("cuc")
    page = o.get("/desks")
    assert page.status_code == 200
    # One text field with autofocus (the scanner types there and presses Enter) in the desk's form.
    form = page.text[page.text.index(f'action="/desks/{DESK}/open"'):]
    form = form[:form.index("</form>")]
    assert 'name="code"' in form and "autofocus" in form and 'type="submit"' in form
    # The desk's dossiers not yet returned, newest first; the returned one is not offered.
    assert form.index("H23-0002") < form.index("H23-0003") < form.index("H23-0001")
    assert "H23-0009" not in form
    # Only the officer's own desk has a form.
    assert f'action="/desks/{OTHER}/open"' not in page.text

    r = o.post(f"/desks/{DESK}/open", data={"code": "  H23-0003 ", "dossier": "", "csrf_token": o.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/desks"
    [s] = ratings.open_sessions(office.db, NOW)
    assert (s["desk_id"], s["officer_id"], s["officer_name"], s["dossier_code"]) == (DESK, "NV003", "Lê Thị Cúc", "H23-0003")
    assert s["expires_at"] == (NOW + timedelta(minutes=15)).isoformat(timespec="seconds")
    page = o.get("/desks")
    assert "Đã mở phiên ở quầy mot-cua-1: Lê Thị Cúc, hồ sơ H23-0003" in page.text
    board = o.get("/desks/board").text
    assert "Lê Thị Cúc" in board and "H23-0003" in board and "09:15" in board
    [(actor, action, target, detail)] = rows(office, "SELECT actor, action, target, detail FROM audit_log")
    assert (actor, action, target) == ("cuc", "desks.open", DESK)
    assert json.loads(detail)["officer_id"] == "NV003"

    r = o.post(f"/desks/{DESK}/close", data={"csrf_token": o.csrf})
    assert r.status_code == 303
    assert ratings.open_sessions(office.db, NOW) == []
    assert rows(office, "SELECT closed_by FROM desk_sessions") == [("closed",)]
    assert rows(office, "SELECT action, target FROM audit_log ORDER BY id")[-1] == ("desks.close", DESK)


def test_picking_from_the_list_and_the_officer_is_always_the_user(office):
    o = office.login("cuc")
    # An officer cannot open a session in another officer's name.
    r = o.post(f"/desks/{DESK}/open", data={"code": "", "dossier": "H23-0002", "officer": "NV004",
                                            "minutes": "30", "csrf_token": o.csrf})
    assert r.status_code == 303
    [s] = ratings.open_sessions(office.db, NOW)
    assert (s["officer_id"], s["dossier_code"]) == ("NV003", "H23-0002")
    assert s["expires_at"] == (NOW + timedelta(minutes=30)).isoformat(timespec="seconds")


def test_officer_cannot_act_at_another_desk_and_nothing_changes(office):
    a = office.login("admin")
    assert a.post(f"/desks/{OTHER}/open", data={"officer": "NV004", "csrf_token": a.csrf}).status_code == 303
    before = rows(office, "SELECT * FROM desk_sessions")
    audit_before = rows(office, "SELECT COUNT(*) FROM audit_log")
    o = office.login("cuc")
    assert o.post(f"/desks/{OTHER}/open", data={"code": "H23-0001", "csrf_token": o.csrf}).status_code == 403
    assert o.post(f"/desks/{OTHER}/close", data={"csrf_token": o.csrf}).status_code == 403
    assert rows(office, "SELECT * FROM desk_sessions") == before
    assert rows(office, "SELECT COUNT(*) FROM audit_log") == audit_before
    # The officer's board lists their own desk only.
    board = o.get("/desks/board").text
    assert DESK in board and OTHER not in board


@pytest.mark.parametrize("role", ["viewer", "clerk"])
def test_viewer_and_clerk_cannot_open_or_close_sessions(office, role):
    c = office.login({"viewer": "ld", "clerk": "vt"}[role])
    assert c.post(f"/desks/{DESK}/open", data={"code": "H23-0001", "csrf_token": c.csrf}).status_code == 403
    assert c.post(f"/desks/{DESK}/close", data={"csrf_token": c.csrf}).status_code == 403
    assert rows(office, "SELECT COUNT(*) FROM desk_sessions") == [(0,)]
    assert rows(office, "SELECT COUNT(*) FROM audit_log") == [(0,)]
    page = c.get("/desks")
    if role == "viewer":
        assert page.status_code == 403
    else:  # the clerk sees who is on duty, with no form to open a session
        assert page.status_code == 200 and "/open" not in page.text


def test_without_csrf_token_nothing_opens(office):
    o = office.login("cuc")
    assert o.post(f"/desks/{DESK}/open", data={"code": "H23-0001"}).status_code == 403
    assert rows(office, "SELECT COUNT(*) FROM desk_sessions") == [(0,)]


def test_admin_picks_the_officer_and_errors_keep_the_form(office):
    a = office.login("admin")
    page = a.get("/desks")
    # The admin acts at every desk: both have a form, with the officer to choose.
    assert f'action="/desks/{DESK}/open"' in page.text and f'action="/desks/{OTHER}/open"' in page.text
    assert 'name="officer"' in page.text and "Trần Văn Dũng (NV004)" in page.text
    r = a.post(f"/desks/{DESK}/open", data={"code": "H23-0001", "officer": "", "csrf_token": a.csrf})
    assert r.status_code == 422 and "Không mở được phiên" in r.text and 'value="H23-0001"' in r.text
    r = a.post(f"/desks/{DESK}/open", data={"code": "H23-0001", "officer": "NV999", "csrf_token": a.csrf})
    assert r.status_code == 422 and "unknown officer" in r.text
    r = a.post(f"/desks/{DESK}/open", data={"code": "H23-0001", "officer": "NV004", "minutes": "0", "csrf_token": a.csrf})
    assert r.status_code == 422
    assert rows(office, "SELECT COUNT(*) FROM desk_sessions") == [(0,)]
    r = a.post(f"/desks/{DESK}/open", data={"code": "H23-0001", "officer": "NV004", "csrf_token": a.csrf})
    assert r.status_code == 303
    assert [s["officer_name"] for s in ratings.open_sessions(office.db, NOW)] == ["Trần Văn Dũng"]
    assert a.post("/desks/Bad Desk!/open", data={"officer": "NV004", "csrf_token": a.csrf}).status_code == 404


# -- the ratings report ------------------------------------------------------------------
@pytest.fixture
def voted(office):
    items = [vote("very_satisfied", "2026-11-23T09:00:00+07:00", DESK, officer="NV003", seq=1),
             vote("satisfied", "2026-11-23T09:10:00+07:00", DESK, officer="NV003", seq=2),
             vote("dissatisfied", "2026-11-23T09:20:00+07:00", DESK, officer="NV003", seq=3, reasons=["thai_do"]),
             vote("dissatisfied", "2026-11-23T10:00:00+07:00", OTHER, officer="NV004", seq=4, node="kiosk-2"),
             vote("very_satisfied", "2026-11-23T11:00:00+07:00", OTHER, seq=5, node="kiosk-2")]
    store(office.db_path, items)
    return office


def _csv(response) -> list[list[str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads it as UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_officer_sees_only_their_own_ratings(voted):
    o = voted.login("cuc")
    page = o.get("/desks/ratings?from=2026-11-01&to=2026-11-30")
    assert page.status_code == 200
    assert "Lê Thị Cúc" in page.text and "Trần Văn Dũng" not in page.text and "không gắn cán bộ" not in page.text
    assert "3 phiếu, hài lòng 66,7%" in page.text
    table = _csv(o.get("/desks/ratings.csv?from=01/11/2026&to=30/11/2026"))
    body = table[1:]
    assert [r[1] for r in body] == ["NV003", ""]  # their row and the total, nobody else
    assert body[0][3] == "3" and body[-1][3] == "3"
    # Grouped by desk, still only their votes (the other officer's desk does not appear).
    by_desk = _csv(o.get("/desks/ratings.csv?from=2026-11-01&to=2026-11-30&by=desk"))
    assert [r[1] for r in by_desk[1:]] == [DESK, "Tổng cộng"]


def test_viewer_sees_every_rating_and_the_xlsx_has_the_figures(voted):
    v = voted.login("ld")
    page = v.get("/desks/ratings?from=2026-11-01&to=2026-11-30")
    assert page.status_code == 200
    assert "Lê Thị Cúc" in page.text and "Trần Văn Dũng" in page.text and "không gắn cán bộ" in page.text
    r = v.get("/desks/ratings.xlsx?from=2026-11-01&to=2026-11-30&by=officer")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content)).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    header = next(row for row in values if row[0] == "Đơn vị")
    pct = header.index("Tỷ lệ hài lòng (%)")
    by_id = {row[1]: row for row in values[values.index(header) + 1:] if row[0] is not None}
    assert by_id["NV003"][3] == 3 and by_id["NV003"][pct] == 66.7
    assert by_id["NV004"][3] == 1 and by_id["NV004"][pct] == 0
    total = values[-1]
    assert total[2] == "Tổng cộng" and total[3] == 5 and total[pct] == 60.0
    by_reason = _csv(v.get("/desks/ratings.csv?from=2026-11-01&to=2026-11-30&by=reason"))
    assert [r[3] for r in by_reason[1:] if r[1] == "thai_do"] == ["1"]


def test_bad_dates_answer_a_clear_error(voted):
    v = voted.login("ld")
    r = v.get("/desks/ratings?from=31/02/2026")
    assert r.status_code == 422 and "is not a date" in r.text and "31/02/2026" in r.text
    r = v.get("/desks/ratings?from=2026-11-30&to=2026-11-01")
    assert r.status_code == 422 and "after" in r.text


def test_a_hostile_officer_name_never_becomes_a_formula(office):
    hostile = '=HYPERLINK("http://evil.example/x","Bấm vào đây")\x07'
    with office.db.conn:
        office.db.execute("INSERT INTO staff(staff_id, name, active) VALUES (?, ?, 1)", ("NV666", hostile))
    store(office.db_path, [vote("satisfied", "2026-11-23T09:00:00+07:00", DESK, officer="NV666", seq=1)])
    a = office.login("admin")
    r = a.get("/desks/ratings.xlsx?from=2026-11-01&to=2026-11-30")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content)).active
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    names = [c.value for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert names == ['=HYPERLINK("http://evil.example/x","Bấm vào đây")']  # text as typed, the BEL gone
    table = _csv(a.get("/desks/ratings.csv?from=2026-11-01&to=2026-11-30"))
    assert [r[2] for r in table if r[1] == "NV666"] == ["'" + hostile]
    page = a.get("/desks/ratings?from=2026-11-01&to=2026-11-30")
    assert "=HYPERLINK(&#34;http" in page.text or "=HYPERLINK(&quot;http" in page.text


# -- desk duty (nhận quầy) from the officer's PC ------------------------------------------
def _board_row(client, desk: str) -> str:
    board = client.get("/desks/board").text
    start = board.index(f"<td><strong>{desk}</strong></td>")
    return board[start:board.index("</tr>", start)]


def test_officer_takes_and_leaves_their_own_desk(office):
    o = office.login("cuc")
    row = _board_row(o, DESK)
    assert "Chưa có ai nhận quầy" in row and f'action="/desks/{DESK}/take"' in row
    assert f'action="/desks/{DESK}/leave"' not in row
    r = o.post(f"/desks/{DESK}/take", data={"csrf_token": o.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/desks"
    assert rows(office, "SELECT desk_id, officer_id, officer_name, since, via FROM desk_duty") == [
        (DESK, "NV003", "Lê Thị Cúc", NOW.isoformat(timespec="seconds"), "console")]
    assert "Lê Thị Cúc đã nhận quầy mot-cua-1" in o.get("/desks").text
    row = _board_row(o, DESK)
    assert "Đang nhận quầy: Lê Thị Cúc từ 09:00, qua trang quản trị" in row
    assert f'action="/desks/{DESK}/leave"' in row and "Rời quầy" in row and f'action="/desks/{DESK}/take"' not in row
    [(actor, via, action, target, detail)] = rows(office, "SELECT actor, via, action, target, detail FROM audit_log")
    assert (actor, via, action, target) == ("cuc", "web", "desks.take", DESK)
    assert json.loads(detail)["officer_id"] == "NV003"

    r = o.post(f"/desks/{DESK}/leave", data={"csrf_token": o.csrf})
    assert r.status_code == 303
    assert rows(office, "SELECT COUNT(*) FROM desk_duty") == [(0,)]
    assert rows(office, "SELECT actor, action, target FROM audit_log ORDER BY id")[-1] == ("cuc", "desks.leave", DESK)
    assert "Chưa có ai nhận quầy" in _board_row(o, DESK)


def test_an_officer_cannot_take_or_leave_for_another(office):
    office.staff("NV005", "Nguyễn Văn An")
    office.user("an", "officer", "NV005", desks=[DESK])
    d = office.login("dung")
    assert d.post(f"/desks/{OTHER}/take", data={"csrf_token": d.csrf}).status_code == 303
    before = rows(office, "SELECT * FROM desk_duty")
    audit_before = rows(office, "SELECT COUNT(*) FROM audit_log")
    o = office.login("cuc")
    # Another officer's desk: neither take nor leave.
    assert o.post(f"/desks/{OTHER}/take", data={"csrf_token": o.csrf}).status_code == 403
    assert o.post(f"/desks/{OTHER}/leave", data={"csrf_token": o.csrf}).status_code == 403
    # Their own desk, in someone else's name: refused.
    assert o.post(f"/desks/{DESK}/take", data={"officer": "NV005", "csrf_token": o.csrf}).status_code == 403
    # Without the CSRF token: nothing.
    assert o.post(f"/desks/{DESK}/take", data={}).status_code == 403
    assert rows(office, "SELECT * FROM desk_duty") == before
    assert rows(office, "SELECT COUNT(*) FROM audit_log") == audit_before
    # NV005 holds the shared desk: NV003 cannot free it for them, but may take it over for themselves.
    a = office.login("an")
    assert a.post(f"/desks/{DESK}/take", data={"csrf_token": a.csrf}).status_code == 303
    assert o.post(f"/desks/{DESK}/leave", data={"csrf_token": o.csrf}).status_code == 403
    assert rows(office, "SELECT officer_id FROM desk_duty WHERE desk_id=?", (DESK,)) == [("NV005",)]
    assert o.post(f"/desks/{DESK}/take", data={"csrf_token": o.csrf}).status_code == 303
    assert rows(office, "SELECT officer_id FROM desk_duty WHERE desk_id=?", (DESK,)) == [("NV003",)]
    detail = json.loads(rows(office, "SELECT detail FROM audit_log ORDER BY id DESC LIMIT 1")[0][0])
    assert detail["replaced"] == "NV005"


@pytest.mark.parametrize("role", ["viewer", "clerk"])
def test_viewer_and_clerk_cannot_take_a_desk(office, role):
    c = office.login({"viewer": "ld", "clerk": "vt"}[role])
    assert c.post(f"/desks/{DESK}/take", data={"officer": "NV003", "csrf_token": c.csrf}).status_code == 403
    assert c.post(f"/desks/{DESK}/leave", data={"csrf_token": c.csrf}).status_code == 403
    assert rows(office, "SELECT COUNT(*) FROM desk_duty") == [(0,)]


def test_admin_gives_a_desk_to_an_officer_who_has_it(office):
    a = office.login("admin")
    page = a.get("/desks").text
    form = page[page.index(f'id="nhan-quay-{DESK}"'):]
    form = form[:form.index("</form>")]
    assert '<option value="NV003"' in form and "NV004" not in form  # only officers given the desk
    r = a.post(f"/desks/{DESK}/take", data={"officer": "NV004", "csrf_token": a.csrf})
    assert r.status_code == 422 and f"NV004 may not hold desk {DESK}" in r.text
    assert a.post(f"/desks/{DESK}/take", data={"officer": "NV003", "csrf_token": a.csrf}).status_code == 303
    assert rows(office, "SELECT officer_id, via FROM desk_duty") == [("NV003", "console")]
    assert rows(office, "SELECT actor, action FROM audit_log") == [("admin", "desks.take")]
    assert a.post(f"/desks/{DESK}/leave", data={"csrf_token": a.csrf}).status_code == 303
    assert rows(office, "SELECT COUNT(*) FROM desk_duty") == [(0,)]
    assert "Quầy mot-cua-1 chưa có ai nhận." in a.post(f"/desks/{DESK}/leave", data={"csrf_token": a.csrf},
                                                        follow_redirects=True).text


# -- end to end: the web route, the gateway, the kiosk ------------------------------------
def test_opening_a_session_on_the_web_puts_the_officer_on_the_kiosk(broker, spawn, tmp_path, monkeypatch):
    from conftest import start_gateway, wait_for
    from test_rating_kiosk import BUTTONS, LEDS, SIZE, Harness
    from gpiozero.pins.mock import MockFactory

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    gateway = start_gateway(spawn, broker, tmp_path / "data", CONGSO_SITE_NAME="UBND xã Kỳ Châu")
    try:
        console = Console(tmp_path)  # the console on the gateway's own database
        console.staff("NV003", "Lê Thị Cúc")
        console.user("cuc", "officer", "NV003", desks=[DESK])
        env = {"CONGSO_RATING_DESK_ID": DESK, "CONGSO_DISPLAY_WIDTH": SIZE[0], "CONGSO_DISPLAY_HEIGHT": SIZE[1],
               "CONGSO_GPIO_BUTTONS": ",".join(BUTTONS), "CONGSO_GPIO_BUTTON_LEDS": ",".join(LEDS)}
        kiosk = Harness(broker.settings("kiosk-1", tmp_path / "kiosk", **env), MockFactory())
        try:
            assert kiosk.app.runtime.link.wait_connected(10)
            o = console.login("cuc")
            r = o.post(f"/desks/{DESK}/open", data={"code": "H23-261124-0007", "csrf_token": o.csrf})
            assert r.status_code == 303
            wait_for(lambda: kiosk.app.kiosk.current_session() is not None, 5, "the session at the kiosk")
            kiosk.settle()
            assert kiosk.texts()["officer"] == "Cán bộ phục vụ: Lê Thị Cúc  ·  Hồ sơ: H23-261124-0007"
            # And in the kiosk's state cache, so it survives a kiosk restart.
            cached = kiosk.app.runtime.cached_state().get(f"desk/{DESK}")
            assert cached["officer_name"] == "Lê Thị Cúc" and cached["officer_id"] == "NV003"
            kiosk.screenshot("web-session")

            r = o.post(f"/desks/{DESK}/close", data={"csrf_token": o.csrf})
            assert r.status_code == 303
            wait_for(lambda: kiosk.app.kiosk.session is None, 5, "the session cleared at the kiosk")
        finally:
            kiosk.close()
    finally:
        gateway.terminate()
