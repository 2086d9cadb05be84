"""The audit log covers every change, through the console and through the CLI.

Each ``congso`` command that changes office data runs here as a real
process (``run_congso``), and its row is read back: who (the Unix user),
via ``cli``, what, on what. A command that fails writes no row.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest
import sqlite_utils

from congso.gateway import audit
from conftest import run_congso
from web_helpers import Console

ACTOR = "thu-ky-test"


@pytest.fixture
def office(tmp_path):
    console = Console(tmp_path)
    env = {"CONGSO_DATA_DIR": str(console.data_dir), "CONGSO_SITE_ID": "ky-chau", "LOGNAME": ACTOR, "USER": ACTOR,
           "CONGSO_BACKUP_DIR": str(tmp_path / "backups")}
    env.pop("SUDO_USER", None)

    def congso(*args: str, ok: bool = True, input: str | None = None):
        r = run_congso(*args, input=input, SUDO_USER="", **env)
        if ok:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    return console, congso, tmp_path


def rows(console: Console, action: str | None = None) -> list[dict]:
    db = sqlite_utils.Database(sqlite3.connect(str(console.db_path)))  # afresh: a restore replaces the file
    try:
        found, _total = audit.search(db, limit=1000)
    finally:
        db.conn.close()
    return [r for r in found if action is None or r["action"] == action]


def last(console: Console, action: str) -> dict:
    found = rows(console, action)
    assert found, f"no audit row {action}; have {[r['action'] for r in rows(console)]}"
    r = found[0]
    assert r["via"] == "cli" and r["actor"] == ACTOR, r
    return r


def test_staff_cards_holidays_are_audited(office):
    console, congso, tmp = office
    congso("staff", "add", "NV001", "Nguyễn Thị Thu Hà", "-d", "Văn phòng")
    r = last(console, "staff.add")
    assert r["target"] == "NV001" and "Nguyễn Thị Thu Hà" in r["detail"]

    csv = tmp / "nv.csv"
    csv.write_text("staff_id,name,department,position\nNV002,Trần Văn Bình,Tư pháp,Công chức\n", encoding="utf-8")
    congso("staff", "import", str(csv))
    r = last(console, "staff.import")
    assert "nv.csv" in r["target"] and '"added": 1' in r["detail"]

    congso("card", "assign", "NV001", "04A1B2C3")
    assert last(console, "staff.card_assign")["target"] == "04A1B2C3"
    congso("card", "remove", "04A1B2C3")
    assert last(console, "staff.card_remove")["target"] == "04A1B2C3"
    congso("staff", "deactivate", "NV002")
    assert last(console, "staff.deactivate")["target"] == "NV002"

    congso("holiday", "add", "2026-09-02", "Quốc khánh", "--days", "2")
    r = last(console, "holiday.add")
    assert r["target"] == "2026-09-02" and "Quốc khánh" in r["detail"]
    congso("holiday", "remove", "2026-09-03")
    assert last(console, "holiday.remove")["target"] == "2026-09-03"

    # a refused command writes nothing
    before = len(rows(console))
    congso("staff", "add", "NV001", "Trùng mã", ok=False)
    congso("card", "remove", "FFFFFFFF", ok=False)
    assert len(rows(console)) == before


def test_dossiers_calendar_announcements_are_audited(office):
    console, congso, tmp = office
    congso("dossier", "add", "--code", "HS-0001", "--applicant", "Lê Thị Mai", "--procedure", "Đăng ký khai sinh",
           "--received", "23/11/2026 08:00", "--due", "25/11/2026")
    r = last(console, "dossiers.add")
    assert r["target"] == "HS-0001" and "Đăng ký khai sinh" in r["detail"]
    congso("dossier", "set-status", "HS-0001", "ready")
    r = last(console, "dossiers.status")
    assert r["target"] == "HS-0001" and "ready" in r["detail"]

    f = tmp / "ho-so.csv"
    f.write_text("Mã hồ sơ,Người nộp,Thủ tục,Ngày tiếp nhận,Ngày hẹn trả,Trạng thái\n"
                 "HS-0002,Phạm Văn Nam,Chứng thực bản sao,24/11/2026,26/11/2026,received\n", encoding="utf-8")
    congso("dossier", "import", str(f))
    assert last(console, "dossiers.import")["target"] == "ho-so.csv"

    monday = date.today() - timedelta(days=date.today().weekday())
    congso("calendar", "add", "--start", f"{monday} 08:00", "--end", f"{monday} 09:00", "--title", "Họp giao ban")
    r = last(console, "calendar.add")
    assert "Họp giao ban" in r["detail"]
    entry = r["target"]
    congso("calendar", "remove", entry)
    assert last(console, "calendar.remove")["target"] == entry

    ics = tmp / "lich.ics"
    day = monday.strftime("%Y%m%d")
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a1@test\r\n"
                   f"DTSTAMP:{day}T000000Z\r\nDTSTART:{day}T020000Z\r\nDTEND:{day}T030000Z\r\n"
                   "SUMMARY:Tiếp công dân\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", encoding="utf-8")
    congso("calendar", "import-ics", str(ics))
    assert last(console, "calendar.import")["target"] == "lich.ics"

    congso("announce", "add", "--title", "Nộp hồ sơ trực tuyến", "--body", "Qua Cổng dịch vụ công")
    r = last(console, "announcements.add")
    assert "Nộp hồ sơ trực tuyến" in r["detail"]
    congso("announce", "remove", r["target"])
    assert last(console, "announcements.remove")["target"] == r["target"]


def test_desks_nodes_and_the_gateway_are_audited(office):
    console, congso, tmp = office
    congso("staff", "add", "NV003", "Đỗ Văn Hùng")
    congso("desk", "open", "--desk", "mot-cua-1", "--officer", "NV003")
    r = last(console, "desks.open")
    assert r["target"] == "mot-cua-1" and "NV003" in r["detail"]
    congso("desk", "close", "--desk", "mot-cua-1")
    assert last(console, "desks.close")["target"] == "mot-cua-1"

    # an enrolment asked of a door (no gateway runs to send it: it times out, but it was asked)
    congso("staff", "consent", "NV003", "--recorded-by", "Trần Văn Bình")
    assert last(console, "staff.consent")["target"] == "NV003"
    congso("enroll", "--node", "door-1", "--staff", "NV003", "--timeout", "0.5", ok=False)
    r = last(console, "staff.finger_enrol")
    assert r["target"] == "NV003" and "door-1" in r["detail"]
    before = len(rows(console))
    congso("enroll", "--node", "door-1", "--staff", "NV404", "--timeout", "0.5", ok=False)  # nobody: refused
    assert len(rows(console)) == before

    # a command sent to a device (no gateway runs: it is queued, then times out; it was still sent)
    congso("node", "identify", "tv-1", "--timeout", "0.5", ok=False)
    assert last(console, "node.identify")["target"] == "tv-1"
    congso("node", "cmd", "tv-1", "display_power", "--args", '{"on": false}', "--timeout", "0.5", ok=False)
    r = last(console, "node.display_power")
    assert r["target"] == "tv-1" and '"on": false' in r["detail"]

    console.db.execute("INSERT INTO nodes(node_id, kind) VALUES ('tv-9', 'signage')")
    console.db.conn.commit()
    congso("gateway", "forget-node", "tv-9")
    assert last(console, "node.forget")["target"] == "tv-9"

    # a backup, then a restore of it: the restored database says who restored it
    (tmp / "backups").mkdir()
    out = congso("gateway", "backup", "--dir", str(tmp / "backups"))
    copies = sorted((tmp / "backups").glob("*.sqlite"))
    assert copies, out.stdout
    congso("gateway", "restore", str(copies[-1]))
    r = last(console, "gateway.restore")
    assert r["target"] == str(copies[-1])
    assert last(console, "node.forget")  # the rows before the backup are in it too


def test_console_users_and_tokens_from_the_cli_are_audited_without_secrets(office):
    console, congso, _tmp = office
    congso("web", "user", "add", "vt", "--role", "clerk", input="mat-khau-van-thu\n")
    r = last(console, "user.add")
    assert r["target"] == "vt" and "clerk" in r["detail"]
    congso("web", "user", "password", "vt", input="mat-khau-moi-cua-vt\n")
    assert last(console, "user.password")["target"] == "vt"
    congso("web", "user", "disable", "vt")
    assert last(console, "user.disable")["target"] == "vt"
    made = congso("web", "token", "create", "motcua", "--scope", "dossiers:write")
    token = made.stdout.strip()
    assert last(console, "token.create")["target"] == "motcua"
    everything = " ".join(f"{r['target']} {r['detail']}" for r in rows(console))
    for secret in ("mat-khau-van-thu", "mat-khau-moi-cua-vt", token):
        assert secret not in everything


def test_changes_in_the_console_are_audited_with_the_user(tmp_path):
    console = Console(tmp_path)
    console.user("chanh-vp", "admin")
    admin = console.login("chanh-vp")
    r = admin.post("/users/new", data={"name": "vt", "role": "clerk", "staff_id": "", "desks": "",
                                      "password": "mat-khau-van-thu", "password2": "mat-khau-van-thu",
                                      "csrf_token": admin.csrf})
    assert r.status_code == 303
    admin.post("/users/vt/role", data={"role": "viewer", "staff_id": "", "csrf_token": admin.csrf})
    admin.post("/users/vt/disable", data={"csrf_token": admin.csrf})
    admin.post("/users/vt/enable", data={"csrf_token": admin.csrf})
    admin.post("/users/vt/password", data={"password": "mat-khau-moi-vt-1", "password2": "mat-khau-moi-vt-1",
                                           "csrf_token": admin.csrf})
    admin.post("/users/vt/desks", data={"desks": "mot-cua-1, mot-cua-2", "csrf_token": admin.csrf})
    admin.post("/users/tokens/new", data={"name": "motcua", "scope": "dossiers:read", "csrf_token": admin.csrf})
    admin.post("/users/tokens/motcua/revoke", data={"csrf_token": admin.csrf})
    found = rows(console)
    actions = [r["action"] for r in reversed(found)]
    assert actions == ["user.add", "user.role", "user.disable", "user.enable", "user.password", "user.desks",
                       "token.create", "token.revoke"]
    assert all(r["actor"] == "chanh-vp" and r["via"] == "web" for r in found)
    assert "mot-cua-2" in found[2]["detail"]
    assert not any("mat-khau" in (r["detail"] or "") for r in found)
