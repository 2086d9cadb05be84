"""The Nhân sự page: staff, cards and fingers, as the office clerk uses them.

Route tests run the real app on a real gateway database (``web_helpers``);
the enrolment's wire part runs through the real ingest, and one enrolment
runs end to end: the real broker, the real gateway process, a real door
process on the fingerprint emulator, and the console's routes, watching the
progress fragment go place -> lift -> place again -> stored.
"""

from __future__ import annotations

import html
import io
import json
import re
import time
import uuid
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from conftest import query, start_gateway, wait_for
from web_helpers import Console
from congso.devices.fingerprint.emulator import FingerprintEmulator
from congso.gateway import commands, domains, staff, state
from congso.gateway.ingest import Ingest
from congso.protocol import messages, topics
from congso.protocol.link import Incoming


@pytest.fixture
def console(tmp_path):
    c = Console(tmp_path)
    c.staff("NV001", "Nguyễn Thị Thu Hà", "Văn phòng")
    c.staff("NV002", "Trần Văn Bình", "Địa chính")
    return c


@pytest.fixture
def clerk(console):
    return console.as_role("clerk")


def count(console, sql, params=()):
    return console.db.execute(sql, params).fetchone()[0]


def audits(console, action):
    return [dict(zip(("actor", "target", "detail"), r)) for r in console.db.execute(
        "SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))]


def door(console, node_id):
    console.db.execute("INSERT OR REPLACE INTO nodes(node_id, kind, state) VALUES (?, 'attendance', 'online')", (node_id,))
    console.db.conn.commit()


def finger(console, node_id, slot, staff_id):
    staff.record_finger(console.db, node_id, slot, staff_id, node_id)


def post(client, url, **data):
    return client.post(url, data={**data, "csrf_token": client.csrf})


# -- roles ----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["viewer", "officer"])
def test_roles_without_staff_rights_see_nothing_and_change_nothing(console, role):
    client = console.as_role(role)
    assert client.get("/staff").status_code == 403
    assert client.get("/staff/NV001").status_code == 403
    assert post(client, "/staff/new", staff_id="NV009", name="Ai Đó").status_code == 403
    assert post(client, "/staff/NV001/deactivate").status_code == 403
    assert post(client, "/staff/NV001/cards", uid="04A1B2C3").status_code == 403
    assert count(console, "SELECT count(*) FROM staff WHERE staff_id = 'NV009'") == 0
    assert staff.get(console.db, "NV001")["active"] == 1
    assert count(console, "SELECT count(*) FROM staff_cards") == 0


def test_a_post_without_the_csrf_token_changes_nothing(console, clerk):
    r = clerk.post("/staff/new", data={"staff_id": "NV009", "name": "Ai Đó"})
    assert r.status_code == 403
    assert staff.get(console.db, "NV009") is None


# -- the list -------------------------------------------------------------------------
def test_list_shows_cards_and_doors_searches_and_pages(console, clerk):
    door(console, "door-1")
    door(console, "door-2")
    staff.assign_card(console.db, "NV001", "04A1B2C3")
    finger(console, "door-1", 0, "NV001")
    finger(console, "door-2", 4, "NV001")
    page = clerk.get("/staff").text
    row = re.search(r"<tr>\s*<td><a href=\"/staff/NV001\">.*?</tr>", page, re.S).group(0)
    assert "Nguyễn Thị Thu Hà" in row and "04A1B2C3" in row and "door-1, door-2" in row
    assert "Trần Văn Bình" in page

    found = clerk.get("/staff", params={"q": "địa chính"}).text
    assert "Trần Văn Bình" in found and "Nguyễn Thị Thu Hà" not in found
    assert "Nguyễn Thị Thu Hà" in clerk.get("/staff", params={"q": "nv001"}).text
    assert "Không có cán bộ nào" in clerk.get("/staff", params={"q": "không-ai"}).text

    for i in range(60):
        staff.add(console.db, f"X{i:03d}", f"Người thứ {i}")
    first = clerk.get("/staff").text
    assert "Trang 1/2" in first and "X047" in first and "X048" not in first
    second = clerk.get("/staff", params={"page": "2"}).text
    assert "X048" in second and "X059" in second and "X000" not in second


def test_deactivated_staff_are_hidden_until_asked_for(console, clerk):
    staff.deactivate(console.db, "NV002")
    page = clerk.get("/staff").text
    assert "Trần Văn Bình" not in page and 'href="/staff?all=1"' in page
    every = clerk.get("/staff", params={"all": "1"}).text
    assert "Trần Văn Bình" in every and "đã nghỉ" in every


# -- add, edit, deactivate ----------------------------------------------------------------
def test_add_a_colleague_and_the_audit_says_who(console, clerk):
    r = post(clerk, "/staff/new", staff_id="NV010", name="Phạm  Thị Lan", department="Tư pháp", position="Công chức")
    assert r.status_code == 303 and r.headers["location"] == "/staff/NV010"
    person = staff.get(console.db, "NV010")
    assert (person["name"], person["department"], person["position"], person["active"]) == \
        ("Phạm Thị Lan", "Tư pháp", "Công chức", 1)
    assert "Đã thêm cán bộ NV010." in clerk.get("/staff/NV010").text
    [a] = audits(console, "staff.add")
    assert a["actor"] == "u-clerk" and a["target"] == "NV010" and "Phạm Thị Lan" in a["detail"]


@pytest.mark.parametrize("staff_id, name, says", [
    ("NV 01", "Ai Đó", "must be 1-32 letters"),
    ("NV001", "Người Khác", "NV001 already exists"),
    ("NV011", "", "has no name"),
    ("NV011", "Tên\x07lạ", "control character"),
])
def test_a_bad_colleague_is_refused_with_the_reason_and_the_form_kept(console, clerk, staff_id, name, says):
    before = count(console, "SELECT count(*) FROM staff")
    r = post(clerk, "/staff/new", staff_id=staff_id, name=name, department="Văn phòng")
    assert r.status_code == 422
    assert "Không lưu được" in r.text and says in r.text
    assert 'value="Văn phòng"' in r.text  # what was typed is kept
    assert count(console, "SELECT count(*) FROM staff") == before
    assert staff.get(console.db, "NV001")["name"] == "Nguyễn Thị Thu Hà"
    assert audits(console, "staff.add") == []


def test_edit_name_and_department(console, clerk):
    form = clerk.get("/staff/NV002/edit").text
    assert 'value="Trần Văn Bình"' in form
    r = post(clerk, "/staff/NV002/edit", name="Trần Văn Bình An", department="Văn phòng")
    assert r.status_code == 303 and r.headers["location"] == "/staff/NV002"
    person = staff.get(console.db, "NV002")
    assert (person["name"], person["department"]) == ("Trần Văn Bình An", "Văn phòng")
    [a] = audits(console, "staff.update")
    detail = json.loads(a["detail"])
    assert detail["before"]["name"] == "Trần Văn Bình" and detail["after"]["department"] == "Văn phòng"

    bad = post(clerk, "/staff/NV002/edit", name="   ", department="Khác")
    assert bad.status_code == 422 and "has no name" in bad.text
    assert staff.get(console.db, "NV002")["department"] == "Văn phòng"
    assert clerk.get("/staff/NV404/edit").status_code == 404
    assert post(clerk, "/staff/NV404/edit", name="Ai").status_code == 404


def test_deactivate_asks_first_and_removes_the_fingers_from_every_door(console, clerk):
    door(console, "door-1")
    door(console, "door-2")
    finger(console, "door-1", 3, "NV001")
    finger(console, "door-2", 0, "NV001")
    finger(console, "door-2", 1, "NV002")
    page = clerk.get("/staff/NV001").text
    assert re.search(r'<form method="post" action="/staff/NV001/deactivate" class="inline" data-confirm="Cho Nguyễn', page)

    r = post(clerk, "/staff/NV001/deactivate")
    assert r.status_code == 303
    assert staff.get(console.db, "NV001")["active"] == 0
    queued = sorted((n, json.loads(a)["slot"]) for n, a in console.db.execute(
        "SELECT node_id, args FROM outgoing_commands WHERE cmd = 'delete_finger'"))
    assert queued == [("door-1", 3), ("door-2", 0)]  # NV002's finger stays
    assert "Đang xoá 2 vân tay" in clerk.get("/staff/NV001").text
    [a] = audits(console, "staff.deactivate")
    assert a["target"] == "NV001" and "door-1:3" in a["detail"]
    # A door's ok reply frees the slot (the library's reply hook).
    [(cmd_id,)] = console.db.execute("SELECT cmd_id FROM outgoing_commands WHERE node_id = 'door-1'").fetchall()
    staff._deleted(console.db, {"node_id": "door-1", "args": {"slot": 3}}, {"ok": True})
    assert query(console.db_path, "SELECT node_id, slot FROM finger_slots WHERE staff_id = 'NV001'") == [("door-2", 0)]

    again = post(clerk, "/staff/NV001/deactivate")
    assert again.status_code == 422 and "already deactivated" in again.text
    assert len(audits(console, "staff.deactivate")) == 1


# -- import -----------------------------------------------------------------------------------
def upload(client, name, data, content_type="text/csv"):
    return client.post("/staff/import", data={"csrf_token": client.csrf}, files={"file": (name, data, content_type)})


def xlsx(rows) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_import_a_csv_adds_and_updates(console, clerk):
    data = ("Mã NV;Họ và tên;Phòng ban;Chức vụ\n"
            "NV002;Trần Văn Bình;Văn phòng;Chuyên viên\n"
            "NV020;<script>alert(1)</script>;Tư pháp;\n").encode("utf-8-sig")
    r = upload(clerk, "nhan-vien.csv", data)
    assert r.status_code == 303
    assert staff.get(console.db, "NV002")["department"] == "Văn phòng"
    assert staff.get(console.db, "NV020")["name"] == "<script>alert(1)</script>"
    page = clerk.get("/staff").text
    assert "Đã nhập 2 cán bộ từ nhan-vien.csv (1 mới, 1 cập nhật)." in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    [a] = audits(console, "staff.import")
    assert json.loads(a["detail"]) == {"file": "nhan-vien.csv", "added": 1, "updated": 1}


def test_import_an_xlsx(console, clerk):
    r = upload(clerk, "nv.xlsx", xlsx([["staff_id", "name", "department"], ["NV030", "Đỗ Thị Mai", "Văn hoá"]]),
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert r.status_code == 303
    assert staff.get(console.db, "NV030")["name"] == "Đỗ Thị Mai"


@pytest.mark.parametrize("name, data, says", [
    ("bad.csv", "staff_id,name\nNV040,Một\nNV 41,Hai\nNV042,\nNV040,Lại\n".encode(),
     ["line 3: staff id 'NV 41'", "line 4: NV042 has no name", "line 5: NV040 again (first on line 2)"]),
    ("nul.csv", b"staff_id,name\nNV040,Mot\nNV043,Ten\x00la\n", ["line 3: holds a NUL byte"]),
    ("noheader.csv", b"a,b\n1,2\n", ["no column for staff_id and name"]),
    ("empty.csv", b"", ["the file is empty"]),
    ("fake.xlsx", b"PK\x03\x04 this is not a zip at all", ["not a readable Excel file"]),
    ("bomb.xlsx", None, ["unpacks to"]),
    ("bad.xlsx", "xlsx-bad-row", ["line 3"]),
])
def test_a_hostile_or_wrong_file_stores_nothing_and_says_which_lines(console, clerk, name, data, says):
    if data is None:  # a zip bomb: tiny packed, huge unpacked
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("xl/worksheets/sheet1.xml", b"\0" * (120 * 1024 * 1024))
        data = out.getvalue()
    elif data == "xlsx-bad-row":
        data = xlsx([["Mã NV", "Họ và tên"], ["NV050", "Tốt"], ["NV 51", "Sai mã"]])
    before = count(console, "SELECT count(*) FROM staff")
    r = upload(clerk, name, data)
    assert r.status_code == 422
    assert "không có gì được lưu" in r.text
    shown = html.unescape(r.text)
    for words in says:
        assert words in shown, (words, shown[-3000:])
    assert count(console, "SELECT count(*) FROM staff") == before
    assert audits(console, "staff.import") == []


def test_import_without_a_file(console, clerk):
    r = clerk.post("/staff/import", data={"csrf_token": clerk.csrf})
    assert r.status_code == 422 and "Hãy chọn một tệp" in r.text


# -- cards ------------------------------------------------------------------------------------
def test_assign_and_remove_a_card_on_the_persons_page(console, clerk):
    r = post(clerk, "/staff/NV001/cards", uid="04:a1:b2:c3")
    assert r.status_code == 303
    assert query(console.db_path, "SELECT uid, staff_id FROM staff_cards") == [("04A1B2C3", "NV001")]
    assert "04A1B2C3" in clerk.get("/staff/NV001").text

    bad = post(clerk, "/staff/NV001/cards", uid="xyz")
    assert bad.status_code == 422 and "is not a card UID" in bad.text and 'value="xyz"' in bad.text
    taken = post(clerk, "/staff/NV002/cards", uid="04A1B2C3")
    assert taken.status_code == 422 and "belongs to NV001" in taken.text
    not_theirs = post(clerk, "/staff/NV002/cards/04A1B2C3/remove")
    assert not_theirs.status_code == 422
    assert count(console, "SELECT count(*) FROM staff_cards") == 1

    assert post(clerk, "/staff/NV001/cards/04A1B2C3/remove").status_code == 303
    assert count(console, "SELECT count(*) FROM staff_cards") == 0
    assert [a["target"] for a in audits(console, "staff.card_assign")] == ["NV001"]
    assert json.loads(audits(console, "staff.card_remove")[0]["detail"]) == {"uid": "04A1B2C3"}


def tap(console, uid, node="door-1"):
    now = datetime.now(ZoneInfo(console.settings.site.timezone))
    console.db.execute(
        "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload, "
        "method, credential, staff_id) VALUES (?,?,?,?,?,1,?,'{}','card',?,NULL)",
        (str(uuid.uuid4()), node, int(time.time() * 1000) % 10**9, now.isoformat(), now.date().isoformat(),
         now.isoformat(), uid))
    console.db.conn.commit()


def test_an_unknown_tap_is_assigned_in_one_click(console, clerk):
    tap(console, "04DEADBEEF0001")
    time.sleep(0.01)
    tap(console, "04DEADBEEF0001", node="door-2")
    page = clerk.get("/staff").text
    section = page[page.index('id="unknown-cards"'):]
    assert re.search(r"<td><code>04DEADBEEF0001</code></td><td>door-2</td><td>[0-9:]+ [0-9/]+</td><td>2</td>", section)
    assert "Gán cho..." in section
    assert '<option value="NV002 · Trần Văn Bình">' in section

    bad = post(clerk, "/staff/cards/assign", uid="04DEADBEEF0001", staff_id="NV404")
    assert bad.status_code == 422 and "Không gán được thẻ 04DEADBEEF0001" in bad.text and "no staff member" in html.unescape(bad.text)
    assert 'value="NV404"' in bad.text  # the pick is kept
    assert count(console, "SELECT count(*) FROM staff_cards") == 0

    r = post(clerk, "/staff/cards/assign", uid="04DEADBEEF0001", staff_id="NV002 · Trần Văn Bình")
    assert r.status_code == 303
    assert query(console.db_path, "SELECT uid, staff_id FROM staff_cards") == [("04DEADBEEF0001", "NV002")]
    after = clerk.get("/staff").text
    assert "Đã gán thẻ 04DEADBEEF0001 cho NV002." in after
    assert 'id="unknown-cards"' not in after  # no unknown card left
    [a] = audits(console, "staff.card_assign")
    assert a["target"] == "NV002" and json.loads(a["detail"]) == {"uid": "04DEADBEEF0001", "from": "unknown"}


# -- fingers ----------------------------------------------------------------------------------
def test_enrolment_needs_the_signed_consent(console, clerk):
    door(console, "door-1")
    page = clerk.get("/staff/NV001").text
    assert 'name="consent" value="yes" required' in page and "Cán bộ đã ký đồng ý cho lưu vân tay" in page

    r = post(clerk, "/staff/NV001/enrol", node="door-1", note="QĐ 12")
    assert r.status_code == 422 and "Vân tay là dữ liệu sinh trắc" in r.text
    assert 'value="QĐ 12"' in r.text
    assert count(console, "SELECT count(*) FROM finger_consents") == 0
    assert count(console, "SELECT count(*) FROM outgoing_commands") == 0

    wrong_door = post(clerk, "/staff/NV001/enrol", node="tv-1", consent="yes")
    assert wrong_door.status_code == 422 and "Hãy chọn một cổng" in wrong_door.text
    assert count(console, "SELECT count(*) FROM outgoing_commands") == 0
    assert count(console, "SELECT count(*) FROM finger_consents") == 0


def test_enrol_records_the_consent_then_queues_and_shows_progress(console, clerk):
    door(console, "door-1")
    door(console, "door-2")
    r = post(clerk, "/staff/NV001/enrol", node="door-1", consent="yes", note="Giấy đồng ý số 3")
    assert r.status_code == 303
    m = re.fullmatch(r"/staff/NV001/enrol/([0-9a-f-]{36})", r.headers["location"])
    cmd_id = m.group(1)
    consent = query(console.db_path, "SELECT staff_id, recorded_by, note FROM finger_consents")
    assert consent == [("NV001", "u-clerk", "Giấy đồng ý số 3")]
    [(node, cmd, args)] = console.db.execute("SELECT node_id, cmd, args FROM outgoing_commands").fetchall()
    assert (node, cmd, json.loads(args)) == ("door-1", "enroll", {"staff_id": "NV001"})
    assert [a["target"] for a in audits(console, "staff.finger_consent")] == ["NV001"]
    assert json.loads(audits(console, "staff.finger_enrol")[0]["detail"]) == {"node": "door-1", "cmd_id": cmd_id}

    page = clerk.get(r.headers["location"])
    assert page.status_code == 200
    assert f'data-refresh="/staff/NV001/enrol/{cmd_id}/progress" data-every="1"' in page.text
    assert '<noscript><meta http-equiv="refresh"' in page.text
    frag = clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress")
    assert frag.status_code == 200 and 'data-last="queued"' in frag.text
    assert "<html" not in frag.text
    # Another person's page does not show this enrolment.
    assert clerk.get(f"/staff/NV002/enrol/{cmd_id}/progress").status_code == 404
    assert clerk.get(f"/staff/NV001/enrol/{uuid.uuid4()}").status_code == 404

    # The door's steps, through the real ingest; then its reply.
    sent_to(console, cmd_id)
    ingest = Ingest(console.db, console.settings.site.id, console.settings.site.timezone)
    for step, words in (("place", "Đặt ngón tay lên đầu đọc"), ("lift", "Nhấc ngón tay ra"),
                        ("place_again", "Đặt lại ngón tay")):
        ingest.process([progress_msg(console, "door-1", cmd_id, step)])
        frag = clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress")
        assert frag.status_code == 200 and f'data-last="{step}"' in frag.text
        assert f'data-now="{step}">Bây giờ: <strong>{words}</strong>' in frag.text
    done = ingest.process([progress_msg(console, "door-1", cmd_id, "stored"),
                           reply_msg(console, "door-1", cmd_id, True, {"slot": 5, "staff_id": "NV001"})])
    # What the gateway does after the commit: the reply's follow-up records the slot.
    commands.run_reply_hooks(console.db, done.replies, state.reply_hooks(domains.DOMAINS))
    frag = clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress")
    assert frag.status_code == 286  # finished: the page stops asking
    assert "Đã lưu ở vị trí 5" in frag.text and "Đã lưu vân tay ở cổng door-1, vị trí 5." in frag.text
    assert "Đang chép sang các cổng khác: door-2." in frag.text
    assert query(console.db_path, "SELECT node_id, slot, staff_id FROM finger_slots") == [("door-1", 5, "NV001")]
    assert clerk.get(r.headers["location"]).text.count("data-refresh=") == 0


@pytest.mark.parametrize("error, says", [
    ("enroll failed: no finger within 20 s", "Không thấy ngón tay trong 20 giây"),
    ("enroll failed: this finger is already enrolled on this door (slot 7)", "Ngón tay này đã có trên cổng này (vị trí 7)"),
])
def test_the_doors_error_is_shown_and_polling_stops(console, clerk, error, says):
    door(console, "door-1")
    cmd_id = post(clerk, "/staff/NV001/enrol", node="door-1", consent="yes").headers["location"].rsplit("/", 1)[1]
    sent_to(console, cmd_id)
    ingest = Ingest(console.db, console.settings.site.id, console.settings.site.timezone)
    ingest.process([progress_msg(console, "door-1", cmd_id, "place"), reply_msg(console, "door-1", cmd_id, False, error=error)])
    frag = clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress")
    assert frag.status_code == 286 and says in frag.text and error in frag.text
    assert '<li class="failed" data-step="place">' in frag.text


def test_an_enrolment_never_sent_says_so_then_expires(console, clerk):
    door(console, "door-1")
    cmd_id = post(clerk, "/staff/NV001/enrol", node="door-1", consent="yes").headers["location"].rsplit("/", 1)[1]
    with console.db.conn:  # queued a minute ago, and no gateway sent it
        console.db.conn.execute("UPDATE outgoing_commands SET queued_at = ? WHERE cmd_id = ?",
                                ((datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")) - timedelta(minutes=1)).isoformat(), cmd_id))
    frag = clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress")
    assert frag.status_code == 200 and "giây mà lệnh chưa được gửi tới cổng" in frag.text
    with console.db.conn:  # past its deadline: it never will be
        console.db.conn.execute("UPDATE outgoing_commands SET deadline = queued_at WHERE cmd_id = ?", (cmd_id,))
    frag = clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress")
    assert frag.status_code == 286 and "Hết hạn: cổng chưa nhận được lệnh" in frag.text
    commands._give_up(console.db, cmd_id)
    assert clerk.get(f"/staff/NV001/enrol/{cmd_id}/progress").status_code == 286


def sent_to(console, cmd_id):
    with console.db.conn:
        console.db.conn.execute("UPDATE outgoing_commands SET sent_at = queued_at WHERE cmd_id = ?", (cmd_id,))


def progress_msg(console, node, cmd, step, **extra):
    body = {"v": 1, "cmd_id": cmd, "step": step, "ts": "2026-12-01T08:00:00+07:00", **extra}
    return Incoming(f"congso/{console.settings.site.id}/node/{node}/progress",
                    json.dumps(body).encode(), time.monotonic())


def reply_msg(console, node, cmd_id, ok, result=None, error=None):
    body = {"v": 1, "cmd_id": cmd_id, "ok": ok, **({"result": result} if ok else {"error": error})}
    return Incoming(f"congso/{console.settings.site.id}/node/{node}/reply", json.dumps(body).encode(), time.monotonic())


def test_a_progress_message_is_kept_only_for_that_nodes_own_sent_command(console):
    door(console, "door-1")
    door(console, "door-2")
    staff_cmd = commands.queue(console.db, "door-1", "enroll", {"staff_id": "NV001"})
    ingest = Ingest(console.db, console.settings.site.id, console.settings.site.timezone)
    # Not sent yet: nothing to speak of.
    ingest.process([progress_msg(console, "door-1", staff_cmd, "place")])
    assert count(console, "SELECT count(*) FROM command_progress") == 0
    sent_to(console, staff_cmd)
    result = ingest.process([
        progress_msg(console, "door-2", staff_cmd, "place"),          # another door speaking for door-1
        progress_msg(console, "door-1", str(uuid.uuid4()), "place"),  # a made-up command
        progress_msg(console, "door-1", staff_cmd, "wave"),           # not a step
        progress_msg(console, "door-1", staff_cmd, "place", v=2),     # another version
        progress_msg(console, "door-1", staff_cmd, "place", ts="08:00"),
        progress_msg(console, "door-1", staff_cmd, "place", cmd_id=7),
        progress_msg(console, "door-1", staff_cmd, "lift"),
        progress_msg(console, "door-1", staff_cmd, "lift"),           # a QoS 1 redelivery
    ])
    assert result.rejected == 4 and not result.acks  # nothing is answered
    assert query(console.db_path, "SELECT cmd_id, step FROM command_progress") == [(staff_cmd, "lift")]
    reasons = [r[0] for r in console.db.execute("SELECT reason FROM rejections ORDER BY id")]
    assert any("progress.step: must be one of place, lift, place_again, stored" in r for r in reasons)
    assert any("progress.v: must be 1" in r for r in reasons)
    assert any("progress.ts" in r for r in reasons) and any("progress.cmd_id" in r for r in reasons)
    # The wire: the topic is a node topic, its ACL line comes with the others.
    assert topics.progress("ky-chau", "door-1") == "congso/ky-chau/node/door-1/progress"
    assert topics.parse("congso/ky-chau/node/door-1/progress").leaf == "progress"
    with pytest.raises(messages.MessageError):
        messages.encode("progress", {"v": 1, "cmd_id": "", "step": "place", "ts": "2026-12-01T08:00:00+07:00"})


def test_delete_a_finger_at_one_door(console, clerk):
    door(console, "door-1")
    finger(console, "door-1", 2, "NV001")
    finger(console, "door-1", 3, "NV002")
    page = clerk.get("/staff/NV001").text
    assert 'action="/staff/NV001/fingers/door-1/2/delete"' in page
    not_theirs = post(clerk, "/staff/NV001/fingers/door-1/3/delete")
    assert not_theirs.status_code == 422 and "không có vân tay ở door-1 vị trí 3" in not_theirs.text
    assert post(clerk, "/staff/NV001/fingers/door-1/x/delete").status_code == 422
    assert count(console, "SELECT count(*) FROM outgoing_commands") == 0

    r = post(clerk, "/staff/NV001/fingers/door-1/2/delete")
    assert r.status_code == 303
    [(node, cmd, args)] = console.db.execute("SELECT node_id, cmd, args FROM outgoing_commands").fetchall()
    assert (node, cmd, json.loads(args)) == ("door-1", "delete_finger", {"slot": 2})
    assert "Đang chờ cổng xoá: door-1" in clerk.get("/staff/NV001").text
    [a] = audits(console, "staff.finger_delete")
    assert json.loads(a["detail"])["slot"] == 2


# -- staff data as the law asks: the consent's text, deletions still pending, the person's data ---------
def test_enrolment_shows_the_consent_text_and_records_which_one(console, clerk):
    from congso.vocab import consent as consent_vocab

    door(console, "door-1")
    page = clerk.get("/staff/NV001").text
    assert html.escape(consent_vocab.CONSENT_TEXTS[consent_vocab.CURRENT], quote=False) in page
    assert f'name="text_id" value="{consent_vocab.CURRENT}"' in page
    # The text changed while the page was open: nothing recorded, nothing queued, the new text shown.
    stale = post(clerk, "/staff/NV001/enrol", node="door-1", consent="yes", text_id="2020-01")
    assert stale.status_code == 422 and "đã thay đổi" in stale.text
    assert count(console, "SELECT count(*) FROM finger_consents") == 0
    assert count(console, "SELECT count(*) FROM outgoing_commands") == 0
    r = post(clerk, "/staff/NV001/enrol", node="door-1", consent="yes", text_id=consent_vocab.CURRENT)
    assert r.status_code == 303
    assert query(console.db_path, "SELECT staff_id, recorded_by, text_id FROM finger_consents") == \
        [("NV001", "u-clerk", consent_vocab.CURRENT)]
    assert json.loads(audits(console, "staff.finger_consent")[0]["detail"])["text_id"] == consent_vocab.CURRENT
    assert f"(mẫu {consent_vocab.CURRENT})" in clerk.get("/staff/NV001").text


def test_after_deactivation_the_page_lists_the_doors_still_to_delete_until_none(console, clerk):
    door(console, "door-1")
    door(console, "door-2")
    finger(console, "door-1", 3, "NV001")
    finger(console, "door-2", 0, "NV001")
    assert clerk.get("/staff/NV001/deletions").status_code == 286  # nothing asked yet
    assert post(clerk, "/staff/NV001/deactivate").status_code == 303
    page = clerk.get("/staff/NV001").text
    assert 'data-refresh="/staff/NV001/deletions" data-every="2"' in page
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    frag = clerk.get("/staff/NV001/deletions")
    assert frag.status_code == 200
    assert 'data-node="door-1"' in frag.text and 'data-node="door-2"' in frag.text
    assert "đang chờ gửi lệnh tới cổng" in frag.text and "Đã xoá vân tay" not in frag.text

    # door-1 answers (the library's reply hook): only door-2 is left.
    staff._deleted(console.db, {"node_id": "door-1", "args": {"slot": 3}}, {"ok": True})
    frag = clerk.get("/staff/NV001/deletions")
    assert frag.status_code == 200 and 'data-node="door-1"' not in frag.text and 'data-node="door-2"' in frag.text
    # door-2 too: done, the script stops polling (286) and the page says so.
    staff._deleted(console.db, {"node_id": "door-2", "args": {"slot": 0}}, {"ok": True})
    frag = clerk.get("/staff/NV001/deletions")
    assert frag.status_code == 286 and "Đã xoá vân tay khỏi mọi máy" in frag.text
    page = clerk.get("/staff/NV001").text
    assert "Đã xoá vân tay khỏi mọi máy" in page and "/staff/NV001/deletions" not in page
    # An active person who never had a deletion gets no such line.
    assert "Đã xoá vân tay khỏi mọi máy" not in clerk.get("/staff/NV002").text


def test_the_admin_downloads_everything_held_about_a_person(console, clerk):
    door(console, "door-1")
    staff.assign_card(console.db, "NV001", "04A1B2C3")
    finger(console, "door-1", 3, "NV001")
    assert 'href="/staff/NV001/export.json"' not in clerk.get("/staff/NV001").text
    assert clerk.get("/staff/NV001/export.json").status_code == 403  # the clerk: no
    assert audits(console, "staff.export_data") == []
    admin = console.as_role("admin")
    assert 'href="/staff/NV001/export.json"' in admin.get("/staff/NV001").text
    r = admin.get("/staff/NV001/export.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"] == 'attachment; filename="du-lieu-ca-nhan-NV001.json"'
    data = json.loads(r.content.decode("utf-8"))
    assert data["staff"]["name"] == "Nguyễn Thị Thu Hà"
    assert [c["uid"] for c in data["cards"]] == ["04A1B2C3"]
    assert [(f["node_id"], f["slot"]) for f in data["fingers"]] == [("door-1", 3)]
    assert "template" not in r.text  # where and when, never the fingerprint itself
    [a] = audits(console, "staff.export_data")
    assert a["actor"] == "u-admin" and a["target"] == "NV001"
    assert admin.get("/staff/NV404/export.json").status_code == 404


# -- end to end: the real door, broker and gateway ------------------------------------------------------
def door_env(broker, node_id, data_dir, port, **extra):
    pins = {"CONGSO_GPIO_GREEN_LED": "GPIO17", "CONGSO_GPIO_RED_LED": "GPIO18", "CONGSO_GPIO_BUZZER": "GPIO22",
            "CONGSO_GPIO_RELAY": "GPIO27", "CONGSO_GPIO_RELAY_PULSE_S": "0.5"}
    env = broker.env(node_id, data_dir, GPIOZERO_PIN_FACTORY="mock", CONGSO_CARD_BACKEND="none",
                     CONGSO_FINGERPRINT_BACKEND="serial", CONGSO_FINGERPRINT_PORT=port,
                     CONGSO_ATTENDANCE_FINGER_POLL_S="0.05", **pins)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_enrol_at_the_emulated_door_from_the_console(spawn, broker, tmp_path):
    console = Console(tmp_path)
    console.staff("NV007", "Lê Thị Hồng", "Văn phòng")
    gw = start_gateway(spawn, broker, console.data_dir)
    emu = FingerprintEmulator(timing=0.1)
    door1 = spawn(["attendance", "run"], door_env(broker, "door-1", tmp_path / "door-1", emu.start(),
                                                  CONGSO_ATTENDANCE_ENROLL_TIMEOUT_S=15), name="door-1")
    try:
        door1.readline_until("roster ")
        wait_for(lambda: query(console.db_path, "SELECT count(*) FROM nodes WHERE node_id='door-1' AND kind='attendance'")[0][0] == 1,
                 15, "the door registered", gw)
        clerk = console.as_role("clerk")
        r = post(clerk, "/staff/NV007/enrol", node="door-1", consent="yes")
        assert r.status_code == 303, r.text[-2000:]
        fragment = r.headers["location"] + "/progress"
        seen: list[str] = []

        def shows(step: str) -> bool:
            frag = clerk.get(fragment)
            last = re.search(r'data-last="([a-z_]+)"', frag.text).group(1)
            if not seen or seen[-1] != last:
                seen.append(last)
            return last == step

        door1.readline_until("enroll place NV007")
        wait_for(lambda: shows("place"), 10, "the fragment says: place the finger", gw)
        emu.place("hong-index")
        door1.readline_until("enroll lift NV007")
        wait_for(lambda: shows("lift"), 10, "the fragment says: lift it", gw)
        emu.lift()
        door1.readline_until("enroll place_again NV007")
        wait_for(lambda: shows("place_again"), 10, "the fragment says: place it again", gw)
        emu.place("hong-index")
        door1.readline_until("enroll stored NV007")
        emu.lift()
        wait_for(lambda: clerk.get(fragment).status_code == 286, 15, "the enrolment finished", gw)
        final = clerk.get(fragment)
        assert "Đã lưu ở vị trí 0" in final.text and "Đã lưu vân tay ở cổng door-1, vị trí 0." in final.text
        seen.append(re.search(r'data-last="([a-z_]+)"', final.text).group(1))
        steps = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
        assert [s for s in steps if s in messages.ENROL_STEPS] == ["place", "lift", "place_again", "stored"], steps
        order = ["queued", "sent", *messages.ENROL_STEPS]
        assert [order.index(s) for s in steps] == sorted(order.index(s) for s in steps), steps
        # Every step the door sent came over MQTT and was kept.
        assert sorted(r[0] for r in query(console.db_path, "SELECT step FROM command_progress")) == \
            sorted(messages.ENROL_STEPS)

        # The roster carries the finger: recorded, published, and the door got it.
        assert query(console.db_path, "SELECT node_id, slot, staff_id FROM finger_slots") == [("door-1", 0, "NV007")]
        deadline = time.monotonic() + 15
        while True:
            words = door1.readline_until("roster ", max(0.1, deadline - time.monotonic())).split()
            if int(words[3]) == 1 and int(words[5]) >= 1:
                break
        row = re.search(r"<tr>\s*<td><a href=\"/staff/NV007\">.*?</tr>", clerk.get("/staff").text, re.S).group(0)
        assert "door-1" in row
        assert emu.slot_of("hong-index") == 0
    finally:
        emu.stop()


def test_withdrawing_consent_deletes_the_fingers_everywhere_and_keeps_the_card(console, clerk):
    door(console, "door-1")
    staff.record_consent(console.db, "NV001", "u-clerk", tz="Asia/Ho_Chi_Minh")
    finger(console, "door-1", 3, "NV001")
    page = clerk.get("/staff/NV001").text
    assert 'action="/staff/NV001/consent/withdraw"' in page
    assert post(clerk, "/staff/NV001/consent/withdraw").status_code == 303
    assert count(console, "SELECT count(*) FROM finger_consents") == 0
    assert query(console.db_path, "SELECT node_id, cmd, args FROM outgoing_commands") == [
        ("door-1", "delete_finger", '{"slot": 3}')]
    assert staff.get(console.db, "NV001")["active"] == 1  # still staff: the card opens the door
    assert len(audits(console, "staff.consent_withdraw")) == 1
    assert 'action="/staff/NV001/consent/withdraw"' not in clerk.get("/staff/NV001").text
    viewer = console.as_role("viewer")
    assert viewer.post("/staff/NV001/consent/withdraw", data={"csrf_token": viewer.csrf}).status_code == 403


def test_a_schedule_group_is_chosen_on_the_staff_form(tmp_path):
    c = Console(tmp_path, CONGSO_WORKRULES_GROUPS="cong-an mon-sat 07:00-11:30,13:00-17:00")
    clerk = c.as_role("clerk")
    form = clerk.get("/staff/new").text
    assert '<option value="cong-an"' in form and "Theo giờ làm việc của cơ quan" in form
    bad = post(clerk, "/staff/new", staff_id="CA01", name="Trần Văn Công", schedule="police")
    assert bad.status_code == 422 and staff.get(c.db, "CA01") is None  # nothing stored
    assert post(clerk, "/staff/new", staff_id="CA01", name="Trần Văn Công", schedule="cong-an").status_code == 303
    assert staff.get(c.db, "CA01")["schedule"] == "cong-an"
    assert post(clerk, "/staff/CA01/edit", name="Trần Văn Công", schedule="").status_code == 303
    assert staff.get(c.db, "CA01")["schedule"] is None
    # Without groups in the settings the form has no such field.
    assert 'name="schedule"' not in Console(tmp_path / "b").as_role("clerk").get("/staff/new").text
