"""``congso leave``, ``punch`` and ``holiday`` as the clerk types them (OFFICE.md's commands).

Most commands run in-process through click's ``CliRunner`` on a real
gateway database (``CONGSO_DATA_DIR``), with the Unix user set through
``SUDO_USER`` so that who entered each change can be checked in the rows
and in the audit log; one runs as a real subprocess to show what a clerk
sees of an error (a message and exit status 1, no traceback).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date

import pytest
from click.testing import CliRunner

from congso.cli import main
from congso.gateway import leave, staff
from congso.gateway.db import open_db

from conftest import run_congso

TZ = "Asia/Ho_Chi_Minh"
CLERK = "van-thu-lan"


@pytest.fixture
def data(tmp_path):
    data = tmp_path / "gw"
    db = open_db(data / "gateway.sqlite")
    staff.add(db, "NV001", "Phạm Văn An", "Văn phòng")
    staff.add(db, "NV002", "Lê Thị Bình", "Địa chính")
    db.conn.close()
    return data


def congso(data, *args, ok=True):
    env = {"CONGSO_DATA_DIR": str(data), "SUDO_USER": CLERK, "CONGSO_CONFIG": None}
    r = CliRunner().invoke(main, list(args), env=env)
    assert (r.exit_code == 0) == ok, (r.exit_code, r.output, r.exception)
    if not ok:
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.exception   # a clean error, no traceback
    return r


def db_of(data):
    return open_db(data / "gateway.sqlite")


def audits(data, action=None) -> list[dict]:
    rows = [dict(r) for r in db_of(data).query("SELECT actor, via, action, target, detail FROM audit_log ORDER BY id")]
    return [r for r in rows if action is None or r["action"] == action]


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def scan(data, staff_id, ts, seq):
    db = db_of(data)
    with db.conn:
        db.conn.execute(
            "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload,"
            " method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (str(uuid.uuid4()), "door-1", seq, ts, ts[:10], 1, ts, "{}", "card", "0A0B0C0D", staff_id, None))


# -- leave --------------------------------------------------------------------------------
def test_leave_add_prints_its_id_and_what_it_covers_and_is_audited(data):
    r = congso(data, "leave", "add", "NV001", "--kind", "P", "--from", "2027-02-01", "--half", "am",
               "--note", "Việc gia đình")
    assert r.output.strip() == "leave #1: NV001 Phạm Văn An: P (Nghỉ phép), 2027-02-01, morning only"
    r = congso(data, "leave", "add", "NV001", "--kind", "CT", "--from", "2027-02-02", "--to", "04/02/2027")
    assert r.output.strip() == "leave #2: NV001 Phạm Văn An: CT (Đi công tác), 2027-02-02 to 2027-02-04, whole days"
    rows = leave.list_leave(db_of(data))
    assert [(x["id"], x["entered_by"], x["status"]) for x in rows] == [(1, CLERK, "approved"), (2, CLERK, "approved")]
    added = audits(data, "leave.add")
    assert [(a["actor"], a["via"], a["target"]) for a in added] == [(CLERK, "cli", "1"), (CLERK, "cli", "2")]
    assert json.loads(added[0]["detail"]) == {"staff_id": "NV001", "kind": "P", "from": "2027-02-01",
                                              "to": "2027-02-01", "half": "am", "note": "Việc gia đình"}


def test_kinds_typed_without_accents_are_stored_as_the_symbols_and_list_json_parses(data):
    for day, typed in (("2027-02-01", "o"), ("2027-02-02", "co"), ("2027-02-03", "ct")):
        congso(data, "leave", "add", "NV002", "--kind", typed, "--from", day)
    congso(data, "leave", "add", "NV001", "--kind", "p", "--from", "2027-03-01")
    feb = json_lines(congso(data, "leave", "list", "--month", "2027-02", "--json").output)
    assert [(x["id"], x["staff_id"], x["kind"], x["first_day"]) for x in feb] == [
        (1, "NV002", "Ô", "2027-02-01"), (2, "NV002", "Cô", "2027-02-02"), (3, "NV002", "CT", "2027-02-03")]
    assert feb[0]["name"] == "Lê Thị Bình" and feb[0]["entered_by"] == CLERK and feb[0]["half"] is None
    assert [x["id"] for x in json_lines(congso(data, "leave", "list", "--json").output)] == [1, 2, 3, 4]
    assert [x["id"] for x in json_lines(congso(data, "leave", "list", "--staff", "NV001", "--json").output)] == [4]
    table = congso(data, "leave", "list", "--month", "2027-02").output
    assert "3 leave" in table and "Cô" in table and "Lê Thị Bình" in table
    rows = list(csv.reader(io.StringIO(congso(data, "leave", "list", "--month", "2027-03", "--csv").output)))
    assert rows[0][:4] == ["id", "staff_id", "name", "kind"] and rows[1][:4] == ["4", "NV001", "Phạm Văn An", "P"]
    assert congso(data, "leave", "list", "--month", "2027-04").output.strip() == "no leave in 2027-04"


def test_a_half_day_plus_a_full_one_and_overlap_refused_naming_the_id(data):
    congso(data, "leave", "add", "NV001", "--kind", "P", "--from", "2027-02-01", "--half", "am")
    congso(data, "leave", "add", "NV001", "--kind", "Cô", "--from", "2027-02-01", "--half", "pm")
    congso(data, "leave", "add", "NV001", "--kind", "H", "--from", "2027-02-02")
    assert leave.on_days(db_of(data), "2027-02-01", "2027-02-02") == {
        ("NV001", date(2027, 2, 1)): {"am": "P", "pm": "Cô"},
        ("NV001", date(2027, 2, 2)): {"am": "H", "pm": "H"}}
    r = congso(data, "leave", "add", "NV001", "--kind", "Ô", "--from", "2027-01-31", "--to", "2027-02-01", ok=False)
    assert "Error: NV001 already has leave #1" in r.output and "congso leave remove 1" in r.output
    r = congso(data, "leave", "add", "NV001", "--kind", "CT", "--from", "2027-02-02", "--half", "pm", ok=False)
    assert "already has leave #3" in r.output and "congso leave remove 3" in r.output
    assert len(leave.list_leave(db_of(data))) == 3 and len(audits(data, "leave.add")) == 3
    # Replace it: remove, then add.
    r = congso(data, "leave", "remove", "3")
    assert r.output.strip() == "removed leave #3: NV001 Phạm Văn An: H (Hội nghị, học tập), 2027-02-02, whole day"
    removed = audits(data, "leave.remove")
    assert [(a["actor"], a["target"]) for a in removed] == [(CLERK, "3")]
    assert json.loads(removed[0]["detail"])["kind"] == "H"
    congso(data, "leave", "add", "NV001", "--kind", "CT", "--from", "2027-02-02", "--half", "pm")
    assert "no leave #3" in congso(data, "leave", "remove", "3", ok=False).output


def test_leave_errors_are_clear_and_store_nothing(data):
    cases = [
        (["--kind", "P", "--from", "2027-02-01", "--note", "Nghỉ\x07phép"], "--note: holds the control character U+0007"),
        (["--kind", "X", "--from", "2027-02-01"], "--kind: leave kind must be one of P, Ô, Cô, Ts, T, H, Nb, No, CT"),
        (["--kind", "P", "--from", "2027-02-01", "--half", "noon"], "--half must be am or pm"),
        (["--kind", "P", "--from", "2027-13-01"], "--from: '2027-13-01' is not a date"),
        (["--kind", "P", "--from", "2027-02-05", "--to", "2027-02-04"], "--to (2027-02-04) is before --from (2027-02-05)"),
        (["--kind", "Ts", "--from", "2027-01-01", "--to", "2028-01-02"], "is 367 days; at most 366"),
    ]
    for args, message in cases:
        r = congso(data, "leave", "add", "NV001", *args, ok=False)
        assert message in r.output, (args, r.output)
    assert "no staff member 'NV404'" in congso(data, "leave", "add", "NV404", "--kind", "P", "--from", "2027-02-01",
                                                ok=False).output
    assert "--month must be YYYY-MM" in congso(data, "leave", "list", "--month", "02/2027", ok=False).output
    assert leave.list_leave(db_of(data)) == [] and audits(data) == []


def test_a_request_made_in_the_console_is_approved_or_refused(data):
    db = db_of(data)
    asked = leave.add(db, "NV002", "P", "2027-02-15", "2027-02-16", entered_by="binh", tz=TZ, status="requested")
    other = leave.add(db, "NV001", "Nb", "2027-02-19", entered_by="an", tz=TZ, status="requested")
    requested = json_lines(congso(data, "leave", "list", "--status", "requested", "--json").output)
    assert [x["id"] for x in requested] == [asked["id"], other["id"]]
    r = congso(data, "leave", "approve", str(asked["id"]))
    assert r.output.startswith(f"leave #{asked['id']} approved: NV002 Lê Thị Bình: P (Nghỉ phép), 2027-02-15 to 2027-02-16")
    r = congso(data, "leave", "refuse", str(other["id"]))
    assert r.output.startswith(f"leave #{other['id']} refused: NV001")
    rows = {x["id"]: x for x in leave.list_leave(db_of(data))}
    assert (rows[asked["id"]]["status"], rows[asked["id"]]["decided_by"]) == ("approved", CLERK)
    assert (rows[other["id"]]["status"], rows[other["id"]]["decided_by"]) == ("refused", CLERK)
    assert [(a["action"], a["target"], a["actor"]) for a in audits(data)] == [
        ("leave.approve", str(asked["id"]), CLERK), ("leave.refuse", str(other["id"]), CLERK)]
    assert "is approved already" in congso(data, "leave", "refuse", str(asked["id"]), ok=False).output
    assert len(audits(data)) == 2


# -- corrections ------------------------------------------------------------------------------
def test_punch_add_list_remove_and_the_same_minute_refused(data):
    before = db_of(data).execute("SELECT count(*) FROM attendance_events").fetchone()[0]
    r = congso(data, "punch", "add", "NV001", "--at", "2026-11-02T17:05", "--reason", "Quên chấm công khi về")
    assert r.output.strip() == "correction #1: NV001 Phạm Văn An scanned at 2026-11-02 17:05 (Quên chấm công khi về)"
    r = congso(data, "punch", "add", "NV001", "--at", "2026-11-02T17:05", "--reason", "lần hai", ok=False)
    assert "already has correction #1 at 2026-11-02 17:05" in r.output
    assert "--reason: say why" in congso(data, "punch", "add", "NV001", "--at", "2026-11-02T07:30", "--reason", "x",
                                         ok=False).output
    assert "is in the future" in congso(data, "punch", "add", "NV001", "--at", "2099-01-01T07:30", "--reason",
                                        "quên chấm", ok=False).output
    assert "control character" in congso(data, "punch", "add", "NV001", "--at", "2026-11-02T07:30", "--reason",
                                         "quên\x1bchấm", ok=False).output
    congso(data, "punch", "add", "NV002", "--at", "2026-11-03T07:31", "--reason", "Máy hỏng buổi sáng")
    listed = json_lines(congso(data, "punch", "list", "--month", "2026-11", "--json").output)
    assert [(p["id"], p["staff_id"], p["ts"], p["local_date"], p["entered_by"]) for p in listed] == [
        (1, "NV001", "2026-11-02T17:05:00+07:00", "2026-11-02", CLERK),
        (2, "NV002", "2026-11-03T07:31:00+07:00", "2026-11-03", CLERK)]
    assert [p["id"] for p in json_lines(congso(data, "punch", "list", "--staff", "NV002", "--json").output)] == [2]
    assert "Máy hỏng buổi sáng" in congso(data, "punch", "list").output
    r = congso(data, "punch", "remove", "1")
    assert r.output.strip() == "removed correction #1: NV001 at 2026-11-02 17:05"
    assert [p["id"] for p in leave.list_punches(db_of(data))] == [2]
    assert "no correction #1" in congso(data, "punch", "remove", "1", ok=False).output
    assert [(a["action"], a["target"], a["actor"]) for a in audits(data)] == [
        ("punch.add", "1", CLERK), ("punch.add", "2", CLERK), ("punch.remove", "1", CLERK)]
    assert json.loads(audits(data, "punch.add")[0]["detail"]) == {
        "staff_id": "NV001", "at": "2026-11-02T17:05:00+07:00", "reason": "Quên chấm công khi về"}
    # Device events are never edited.
    assert db_of(data).execute("SELECT count(*) FROM attendance_events").fetchone()[0] == before


def test_punch_todo_lists_the_missing_scans_until_corrected(data):
    # November 2026: Monday the 2nd, An scanned in only; Tuesday the 3rd, Bình scanned out only.
    scan(data, "NV001", "2026-11-02T07:28:00+07:00", 1)
    scan(data, "NV002", "2026-11-02T07:20:00+07:00", 2)
    scan(data, "NV002", "2026-11-02T17:10:00+07:00", 3)
    scan(data, "NV002", "2026-11-03T17:01:00+07:00", 4)
    todo = json_lines(congso(data, "punch", "todo", "--month", "2026-11", "--json").output)
    assert todo == [
        {"day": "2026-11-02", "staff_id": "NV001", "name": "Phạm Văn An", "in": "07:28", "out": None, "missing": "out"},
        {"day": "2026-11-03", "staff_id": "NV002", "name": "Lê Thị Bình", "in": None, "out": "17:01", "missing": "in"},
    ]
    table = congso(data, "punch", "todo", "--month", "2026-11").output
    assert "2 days to correct in 2026-11" in table and "fix one: congso punch add NV001 --at 2026-11-02T" in table
    congso(data, "punch", "add", "NV001", "--at", "2026-11-02T17:00", "--reason", "Quên chấm công khi về")
    todo = json_lines(congso(data, "punch", "todo", "--month", "2026-11", "--json").output)
    assert [(t["staff_id"], t["day"]) for t in todo] == [("NV002", "2026-11-03")]
    congso(data, "punch", "add", "NV002", "--at", "2026-11-03T07:30", "--reason", "Quên chấm công khi đến")
    assert congso(data, "punch", "todo", "--month", "2026-11").output.strip() == "nothing to correct in 2026-11"
    rows = list(csv.reader(io.StringIO(congso(data, "punch", "todo", "--month", "2026-11", "--csv").output)))
    assert rows == [["day", "staff_id", "name", "in", "out", "missing"]]


# -- holidays ---------------------------------------------------------------------------------
def test_holiday_workday_and_the_laws_holidays_in_the_list(data):
    r = congso(data, "holiday", "workday", "2027-02-20", "Làm bù cho ngày 12/02/2027")
    assert r.output.strip() == "2027-02-20 is a working day: Làm bù cho ngày 12/02/2027"
    congso(data, "holiday", "add", "2027-02-12", "Nghỉ bù Tết Nguyên Đán")
    days = {d["day"]: d for d in json_lines(congso(data, "holiday", "list", "--year", "2027", "--json").output)}
    # Tết 2027 (6 February) and Giỗ Tổ Hùng Vương (10/3 lunar: 16 April) with nobody entering them.
    assert days["2027-02-06"]["source"] == "law" and days["2027-02-06"]["kind"] == "holiday"
    assert "Tết" in days["2027-02-06"]["name"]
    assert days["2027-04-16"]["source"] == "law" and "Hùng Vương" in days["2027-04-16"]["name"]
    assert days["2027-02-20"] == {"day": "2027-02-20", "name": "Làm bù cho ngày 12/02/2027", "kind": "workday",
                                  "source": "office"}
    assert days["2027-02-12"] == {"day": "2027-02-12", "name": "Nghỉ bù Tết Nguyên Đán", "kind": "off",
                                  "source": "office"}
    assert "Quốc khánh" in congso(data, "holiday", "list", "--year", "2027").output
    assert [(a["action"], a["target"], a["actor"]) for a in audits(data)] == [
        ("holiday.workday", "2027-02-20", CLERK), ("holiday.add", "2027-02-12", CLERK)]
    assert json.loads(audits(data, "holiday.workday")[0]["detail"]) == {"name": "Làm bù cho ngày 12/02/2027"}
    assert "control character" in congso(data, "holiday", "workday", "2027-03-06", "Làm\x00bù", ok=False).output
    r = congso(data, "holiday", "remove", "2027-02-20")
    assert r.output.strip() == "2027-02-20 (Làm bù cho ngày 12/02/2027) is no longer an office working day"
    assert audits(data)[-1]["action"] == "holiday.remove"
    # Without --year: this year's holidays, and every year the office entered days for.
    listed = {d["day"][:4] for d in json_lines(congso(data, "holiday", "list", "--json").output)}
    assert "2027" in listed and len(listed) >= 2


# -- what a clerk sees ------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["leave"], ["leave", "add"], ["leave", "list"], ["leave", "remove"], ["leave", "approve"], ["leave", "refuse"],
    ["punch"], ["punch", "add"], ["punch", "list"], ["punch", "remove"], ["punch", "todo"],
    ["holiday", "workday"], ["holiday", "list"]])
def test_help_teaches_by_example(command):
    r = CliRunner().invoke(main, [*command, "--help"])
    assert r.exit_code == 0 and "Example" in r.output
    assert f"congso {' '.join(command)}" in r.output or len(command) == 1


def test_an_error_is_a_message_and_exit_status_1_not_a_traceback(data):
    r = run_congso("leave", "add", "NV001", "--kind", "Z", "--from", "2027-02-01", CONGSO_DATA_DIR=str(data))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("Error: --kind: leave kind must be one of P, Ô, Cô, Ts, T, H, Nb, No, CT "
                                "(timesheet symbols), got 'Z'")
    r = run_congso("punch", "remove", "seven", CONGSO_DATA_DIR=str(data))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "punch id must be a number" in r.stderr


@pytest.mark.parametrize("args", [["leave", "list"], ["punch", "list"], ["punch", "todo", "--month", "2027-02"],
                                  ["holiday", "list"]], ids=" ".join)
def test_listing_commands_never_create_a_database(tmp_path, args):
    wrong = tmp_path / "no-such-dir"
    r = CliRunner().invoke(main, args, env={"CONGSO_DATA_DIR": str(wrong), "CONGSO_CONFIG": None})
    assert r.exit_code == 1 and str(wrong) in r.output, r.output
    assert not wrong.exists()
