"""Leave and corrections as the library stores them (``congso.gateway.leave``): every rule of its docstring.

A real gateway database (``open_db``, its migrations) with real staff; the
corrections list is checked on hand-built ``timesheet.Day`` records and on
the real timesheet engine reading a real scan and a real correction.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from congso.gateway import audit, leave, staff, timesheet
from congso.gateway.db import open_db
from congso.protocol.settings import load

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
NOW = datetime(2027, 2, 26, 12, 0, tzinfo=ZONE)  # a Friday at noon


@pytest.fixture
def db(tmp_path):
    db = open_db(tmp_path / "gateway.sqlite")
    staff.add(db, "NV001", "Phạm Văn An", "Văn phòng")
    staff.add(db, "NV002", "Lê Thị Bình", "Địa chính")
    return db


def add(db, staff_id, kind, first, last=None, half=None, note=None, **kw):
    kw.setdefault("entered_by", "lan")
    return leave.add(db, staff_id, kind, first, last, half, note, tz=TZ, **kw)


def punch(db, staff_id, at, reason="quên chấm công", **kw):
    kw.setdefault("entered_by", "lan")
    kw.setdefault("now", NOW)
    return leave.add_punch(db, staff_id, at, reason, tz=TZ, **kw)


def scan(db, staff_id, ts: str, seq: int) -> None:
    """A device event as ingest stores it (the door's own row, which a correction never touches)."""
    local = datetime.fromisoformat(ts).astimezone(ZONE).date().isoformat()
    with db.conn:
        db.conn.execute(
            "INSERT INTO attendance_events(event_id, node_id, seq, ts, local_date, clock_synced, received_at, payload,"
            " method, credential, staff_id, match_score) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (str(uuid.uuid4()), "door-1", seq, ts, local, 1, ts, "{}", "card", "0A0B0C0D", staff_id, None))


def events(db) -> list[tuple]:
    return [tuple(r) for r in db.execute("SELECT * FROM attendance_events ORDER BY seq")]


# -- leave: kinds, halves, days ----------------------------------------------------------
@pytest.mark.parametrize("typed, stored", [("o", "Ô"), ("co", "Cô"), ("ct", "CT"), ("Ô", "Ô"), ("CÔ", "Cô"),
                                           ("ts", "Ts"), ("nb", "Nb"), ("NO", "No"), ("p", "P"), (" h ", "H")])
def test_kinds_typed_without_accents_are_stored_as_the_forms_symbols(db, typed, stored):
    row = add(db, "NV001", typed, "2027-02-01")
    assert row["kind"] == stored
    assert db.execute("SELECT kind FROM leave WHERE id = ?", (row["id"],)).fetchone()[0] == stored


def test_a_half_day_leave_and_a_full_one(db):
    am = add(db, "NV001", "P", "2027-02-01", half="am", note="Việc gia đình")
    pm = add(db, "NV001", "co", "2027-02-01", half="chiều")     # the other session of the same day
    full = add(db, "NV001", "CT", "2027-02-02", "2027-02-03", note="Họp tại huyện")
    assert (am["half"], pm["half"], full["half"]) == ("am", "pm", None)
    assert am["last_day"] == "2027-02-01"                          # --to defaults to --from
    assert (full["first_day"], full["last_day"]) == ("2027-02-02", "2027-02-03")
    assert am["status"] == "approved" and am["entered_by"] == "lan" and am["entered_at"].startswith("20")
    assert am["name"] == "Phạm Văn An" and am["note"] == "Việc gia đình"
    assert leave.on_days(db, "2027-02-01", "2027-02-28") == {
        ("NV001", date(2027, 2, 1)): {"am": "P", "pm": "Cô"},
        ("NV001", date(2027, 2, 2)): {"am": "CT", "pm": "CT"},
        ("NV001", date(2027, 2, 3)): {"am": "CT", "pm": "CT"},
    }
    # on_days keeps to the range it is asked for.
    assert leave.on_days(db, date(2027, 2, 3), date(2027, 2, 3)) == {("NV001", date(2027, 2, 3)): {"am": "CT", "pm": "CT"}}
    assert [r["id"] for r in leave.list_leave(db, staff_id="NV001")] == [am["id"], pm["id"], full["id"]]


def test_dates_typed_the_offices_way_and_their_limits(db):
    assert add(db, "NV001", "P", "01/02/2027", "3/2/2027")["last_day"] == "2027-02-03"
    with pytest.raises(leave.LeaveError, match=r"--to \(2027-02-09\) is before --from \(2027-02-10\)"):
        add(db, "NV002", "P", "2027-02-10", "2027-02-09")
    with pytest.raises(leave.LeaveError, match="--from: '2027-02-30' is not a date"):
        add(db, "NV002", "P", "2027-02-30")
    with pytest.raises(leave.LeaveError, match="--to: 'tomorrow' is not a date"):
        add(db, "NV002", "P", "2027-02-10", "tomorrow")
    with pytest.raises(leave.LeaveError, match="--from: a day is needed"):
        add(db, "NV002", "P", "")
    # Maternity is six months: a year (366 days) is the most one leave holds.
    assert add(db, "NV002", "Ts", "2027-03-01", "2028-02-29")["last_day"] == "2028-02-29"   # 366 days
    with pytest.raises(leave.LeaveError, match="is 367 days; at most 366"):
        add(db, "NV001", "Ts", "2027-03-01", "2028-03-01")
    assert db.execute("SELECT count(*) FROM leave").fetchone()[0] == 2


def test_errors_name_the_option(db):
    with pytest.raises(leave.LeaveError, match="^--kind: leave kind must be one of P, Ô, Cô"):
        add(db, "NV001", "X", "2027-02-01")
    with pytest.raises(leave.LeaveError, match="^--half must be am or pm"):
        add(db, "NV001", "P", "2027-02-01", half="evening")
    with pytest.raises(leave.LeaveError, match="STAFF: no staff member 'NV999'"):
        add(db, "NV999", "P", "2027-02-01")
    with pytest.raises(leave.LeaveError, match="a new leave is 'approved' or 'requested'"):
        add(db, "NV001", "P", "2027-02-01", status="refused")
    assert db.execute("SELECT count(*) FROM leave").fetchone()[0] == 0


def test_a_control_character_in_the_note_is_refused_and_text_is_stored_nfc(db):
    with pytest.raises(leave.LeaveError, match=r"^--note: holds the control character U\+0007"):
        add(db, "NV001", "P", "2027-02-01", note="Nghỉ\x07 phép")
    with pytest.raises(leave.LeaveError, match=r"^--note: holds the control character U\+202E"):
        add(db, "NV001", "P", "2027-02-01", note="\u202eabc")                 # a bidi override
    with pytest.raises(leave.LeaveError, match="^entered_by: is empty"):
        add(db, "NV001", "P", "2027-02-01", entered_by=" ")
    assert db.execute("SELECT count(*) FROM leave").fetchone()[0] == 0
    row = add(db, "NV001", "P", "2027-02-01", note="Con  o\u0302\u0301m\n ")  # decomposed, doubled space
    assert row["note"] == "Con ốm"


# -- leave: overlap -------------------------------------------------------------------------
def test_overlap_is_refused_naming_the_existing_leave(db):
    am = add(db, "NV001", "P", "2027-02-01", half="am")
    trip = add(db, "NV001", "CT", "2027-02-08", "2027-02-12")
    cases = [
        ("Ô", "2027-02-01", None, None, am),            # a whole day covers the morning already taken
        ("Ô", "2027-02-01", None, "am", am),            # the same session
        ("H", "2027-01-28", "2027-02-02", None, am),    # a span around it
        ("P", "2027-02-10", None, "pm", trip),          # a half inside a whole-day span
        ("P", "2027-02-12", "2027-02-15", None, trip),  # the last day of the span
    ]
    for kind, first, last, half, existing in cases:
        with pytest.raises(leave.LeaveError) as e:
            add(db, "NV001", kind, first, last, half)
        assert f"already has leave #{existing['id']}" in str(e.value)
        assert f"congso leave remove {existing['id']}" in str(e.value)
    assert "on 2027-02-12 (whole day)" in _error(lambda: add(db, "NV001", "P", "2027-02-12", "2027-02-15"))
    assert "on 2027-02-01 (am)" in _error(lambda: add(db, "NV001", "Ô", "2027-02-01"))
    assert db.execute("SELECT count(*) FROM leave").fetchone()[0] == 2
    # Not an overlap: the other session, the day after, another person.
    add(db, "NV001", "P", "2027-02-01", half="pm")
    add(db, "NV001", "P", "2027-02-13")
    add(db, "NV002", "P", "2027-02-01", "2027-02-12")
    # Replacing: remove, then add.
    removed = leave.remove(db, trip["id"])
    assert removed["id"] == trip["id"] and removed["kind"] == "CT"
    assert leave.get(db, trip["id"]) is None
    add(db, "NV001", "Ô", "2027-02-08", "2027-02-12")


def _error(fn) -> str:
    with pytest.raises(leave.LeaveError) as e:
        fn()
    return str(e.value)


def test_a_request_blocks_its_sessions_until_refused(db):
    asked = add(db, "NV002", "P", "2027-02-15", "2027-02-16", status="requested", entered_by="binh")
    assert asked["status"] == "requested" and asked["decided_by"] is None
    assert leave.on_days(db, "2027-02-01", "2027-02-28") == {}        # not counted before it is approved
    assert f"already has leave #{asked['id']}" in _error(lambda: add(db, "NV002", "Ô", "2027-02-16", half="pm"))
    refused = leave.decide(db, asked["id"], False, decided_by="truong", tz=TZ)
    assert refused["status"] == "refused" and refused["decided_by"] == "truong" and refused["decided_at"]
    assert leave.on_days(db, "2027-02-01", "2027-02-28") == {}
    add(db, "NV002", "Ô", "2027-02-16", half="pm")                     # a refused request covers nothing
    with pytest.raises(leave.LeaveError, match=f"leave #{asked['id']} is refused already"):
        leave.decide(db, asked["id"], True, decided_by="truong", tz=TZ)


def test_approving_a_request_makes_it_count(db):
    asked = add(db, "NV001", "nb", "2027-02-19", status="requested")
    approved = leave.decide(db, str(asked["id"]), True, decided_by="truong", tz=TZ)
    assert approved["status"] == "approved" and approved["decided_by"] == "truong"
    assert leave.on_days(db, "2027-02-19", "2027-02-19") == {("NV001", date(2027, 2, 19)): {"am": "Nb", "pm": "Nb"}}
    with pytest.raises(leave.LeaveError, match="is approved already; only a request"):
        leave.decide(db, asked["id"], False, decided_by="truong", tz=TZ)
    with pytest.raises(leave.LeaveError, match="no leave #999"):
        leave.decide(db, 999, True, decided_by="truong", tz=TZ)
    with pytest.raises(leave.LeaveError, match="leave id must be a number"):
        leave.remove(db, "abc")
    with pytest.raises(leave.LeaveError, match="no leave #999"):
        leave.remove(db, 999)


def test_list_leave_overlapping_a_range_and_by_status(db):
    jan = add(db, "NV001", "P", "2027-01-25", "2027-02-02")     # runs into February
    feb = add(db, "NV002", "H", "2027-02-15")
    mar = add(db, "NV001", "P", "2027-03-01")
    asked = add(db, "NV002", "P", "2027-02-20", status="requested")
    first, last = timesheet.month_bounds("2027-02")
    assert [r["id"] for r in leave.list_leave(db, first=first, last=last)] == [jan["id"], feb["id"], asked["id"]]
    assert [r["id"] for r in leave.list_leave(db, first="2027-02-03")] == [feb["id"], asked["id"], mar["id"]]
    assert [r["id"] for r in leave.list_leave(db, last="2027-01-31")] == [jan["id"]]
    assert [r["id"] for r in leave.list_leave(db, status="requested")] == [asked["id"]]
    assert [r["id"] for r in leave.list_leave(db, staff_id="NV002", status="approved")] == [feb["id"]]
    with pytest.raises(leave.LeaveError, match="--status must be one of approved, requested, refused"):
        leave.list_leave(db, status="maybe")


def test_someone_who_left_may_have_leave_only_before_they_left(db):
    today = datetime.now(ZONE).date()
    staff.deactivate(db, "NV002")
    audit.record_cli(db, "staff.deactivate", "NV002")                 # what the CLI and the console record
    before = (today - timedelta(days=10)).isoformat()
    assert add(db, "NV002", "P", before)["staff_id"] == "NV002"      # last month's leave, entered late
    assert add(db, "NV002", "P", today.isoformat(), half="am")       # the day they left
    after = (today + timedelta(days=1)).isoformat()
    assert f"left on {today.isoformat()}" in _error(lambda: add(db, "NV002", "P", after))
    # Deactivated with no record of when: refused, saying what to do.
    staff.deactivate(db, "NV001")
    assert "is deactivated and when they left is not known" in _error(lambda: add(db, "NV001", "P", before))


# -- corrections ------------------------------------------------------------------------------
def test_a_punch_is_stored_beside_the_device_events_never_in_them(db):
    scan(db, "NV001", "2027-02-01T07:28:10+07:00", 1)
    before = events(db)
    row = punch(db, "NV001", "2027-02-01T17:05", "Quên chấm công khi về")
    assert row["ts"] == "2027-02-01T17:05:00+07:00" and row["local_date"] == "2027-02-01"
    assert row["reason"] == "Quên chấm công khi về" and row["entered_by"] == "lan" and row["entered_at"]
    assert row["name"] == "Phạm Văn An"
    assert events(db) == before                                     # device events are never edited
    assert leave.punches_between(db, "2027-02-01", "2027-02-28", TZ) == {
        ("NV001", date(2027, 2, 1)): [datetime(2027, 2, 1, 17, 5, tzinfo=ZONE)]}
    assert leave.remove_punch(db, row["id"])["id"] == row["id"]
    assert leave.list_punches(db) == [] and events(db) == before
    with pytest.raises(leave.LeaveError, match=f"no correction #{row['id']}"):
        leave.remove_punch(db, row["id"])


def test_a_punch_in_rfc3339_gets_its_office_day(db):
    # 17:30 UTC is 00:30 the next day in Hà Nội: the office's day is the 2nd.
    row = punch(db, "NV002", "2027-02-01T17:30:00Z")
    assert row["ts"] == "2027-02-02T00:30:00+07:00" and row["local_date"] == "2027-02-02"
    assert [p["id"] for p in leave.list_punches(db, first="2027-02-02", last="2027-02-02")] == [row["id"]]
    assert leave.list_punches(db, first="2027-02-01", last="2027-02-01") == []
    assert punch(db, "NV002", "03/02/2027 07:31")["ts"] == "2027-02-03T07:31:00+07:00"


def test_punch_rules(db):
    with pytest.raises(leave.LeaveError, match="^--reason: say why"):
        punch(db, "NV001", "2027-02-01T07:30", "ok")                # fewer than 3 characters
    with pytest.raises(leave.LeaveError, match="^--reason: say why"):
        punch(db, "NV001", "2027-02-01T07:30", "   ")
    with pytest.raises(leave.LeaveError, match=r"^--reason: holds the control character U\+0000"):
        punch(db, "NV001", "2027-02-01T07:30", "quên\x00 chấm")
    with pytest.raises(leave.LeaveError, match="is in the future"):
        punch(db, "NV001", "2027-02-26T12:01")                      # NOW is 12:00
    assert punch(db, "NV001", "2027-02-26T12:00")["ts"].startswith("2027-02-26T12:00")
    with pytest.raises(leave.LeaveError, match="^--at: '2027-02-01 7h30' is not a time"):
        punch(db, "NV001", "2027-02-01 7h30")
    with pytest.raises(leave.LeaveError, match="STAFF: no staff member 'NV999'"):
        punch(db, "NV999", "2027-02-01T07:30")
    first = punch(db, "NV001", "2027-02-01T07:30")
    # The same minute again (typed another way, seconds or UTC): the second is refused, naming the first.
    for same in ("2027-02-01T07:30", "2027-02-01T07:30:45+07:00", "2027-02-01T00:30:59Z"):
        assert f"already has correction #{first['id']} at 2027-02-01 07:30" in _error(lambda: punch(db, "NV001", same))
    punch(db, "NV001", "2027-02-01T07:31")                          # the next minute is another scan
    punch(db, "NV002", "2027-02-01T07:30")                          # another person
    assert len(leave.list_punches(db)) == 4
    assert [p["ts"][11:16] for p in leave.list_punches(db, staff_id="NV001")] == ["07:30", "07:31", "12:00"]


def test_a_punch_for_someone_who_left_only_before_they_left(db):
    now = datetime.now(ZONE)
    staff.deactivate(db, "NV002")
    audit.record_cli(db, "staff.deactivate", "NV002")
    yesterday = (now - timedelta(days=1)).strftime("%Y-%m-%dT07:30")
    assert leave.add_punch(db, "NV002", yesterday, "quên chấm", entered_by="lan", tz=TZ)["staff_id"] == "NV002"
    staff.deactivate(db, "NV001")
    assert "is deactivated" in _error(lambda: leave.add_punch(db, "NV001", yesterday, "quên chấm", entered_by="lan", tz=TZ))


# -- the corrections list ---------------------------------------------------------------------
def _at(day: int, hm: str) -> datetime:
    return datetime(2027, 2, day, int(hm[:2]), int(hm[3:]), tzinfo=ZONE)


def test_corrections_from_hand_built_days():
    Day = timesheet.Day
    first, last = date(2027, 2, 1), date(2027, 2, 5)
    rep = timesheet.Report(first, last, [first + timedelta(n) for n in range(5)], [
        {"staff_id": "NV002", "name": "Lê Thị Bình"}, {"staff_id": "NV001", "name": "Phạm Văn An"}])
    rep.records["NV001"] = [
        Day(date(2027, 2, 1), "work", am="+", pm="+", first=_at(1, "07:28"), last=_at(1, "17:02"), scans=2),
        Day(date(2027, 2, 2), "work", am="+", pm="V", first=_at(2, "07:29"), scans=1, missing_out=True),
        Day(date(2027, 2, 3), "off", scans=1, first=_at(3, "09:00"), missing_out=True),   # not a working day
        Day(date(2027, 2, 4), "work", am="V", pm="+", last=_at(4, "16:58"), scans=1, missing_in=True),
        Day(date(2027, 2, 5), "work", am="+", first=_at(5, "07:30"), scans=1, missing_out=True,
            day_open=True),                                                                # today: not due yet
    ]
    rep.records["NV002"] = [
        Day(date(2027, 2, 1), "work", am="V", pm="+", last=_at(1, "17:00"), scans=1, missing_in=True),
        *[Day(date(2027, 2, d), "work", am="+", pm="+", scans=2) for d in range(2, 6)],
    ]
    assert leave.corrections(rep) == [
        {"staff_id": "NV002", "name": "Lê Thị Bình", "day": date(2027, 2, 1), "in": None, "out": _at(1, "17:00"),
         "missing": "in"},
        {"staff_id": "NV001", "name": "Phạm Văn An", "day": date(2027, 2, 2), "in": _at(2, "07:29"), "out": None,
         "missing": "out"},
        {"staff_id": "NV001", "name": "Phạm Văn An", "day": date(2027, 2, 4), "in": None, "out": _at(4, "16:58"),
         "missing": "in"},
    ]


def test_a_correction_takes_the_day_off_the_list_of_the_real_timesheet(db):
    rules = timesheet.WorkRules.from_settings(load(None).workrules)
    first, last = timesheet.month_bounds("2027-02")
    scan(db, "NV001", "2027-02-01T07:28:00+07:00", 1)      # Monday: in, no out
    scan(db, "NV002", "2027-02-01T07:25:00+07:00", 2)
    scan(db, "NV002", "2027-02-01T17:03:00+07:00", 3)      # a whole day
    todo = leave.corrections(timesheet.report(db, rules, first, last, TZ, now=NOW))
    assert [(r["staff_id"], r["day"], r["missing"]) for r in todo] == [("NV001", date(2027, 2, 1), "out")]
    assert todo[0]["in"] == _at(1, "07:28") and todo[0]["out"] is None
    punch(db, "NV001", "2027-02-01T17:00", "Quên chấm công khi về")
    rep = timesheet.report(db, rules, first, last, TZ, now=NOW)
    assert leave.corrections(rep) == []
    day = rep.records["NV001"][0]
    assert day.manual and day.last == _at(1, "17:00")
