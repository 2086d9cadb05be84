"""Hand-built months, checked session by session in the contract's JSON (OFFICE.md's timesheet rules).

Device scans go through the gateway's real ingest into a real gateway
database; leave, corrections and days off are stored by the library the
CLI and the console call; the month is the library's ``month_json`` (what
``congso report attendance --format json`` and the API answer), judged at
a fixed "now" after the month.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime

import pytest

from conftest import run_congso
from congso.gateway import days_off, reports, staff, timesheet
from congso.gateway.db import open_db
from congso.gateway.ingest import Ingest
from congso.protocol import clock, messages
from congso.protocol.link import Incoming
from congso.protocol.settings import load

SITE, TZ = "test-site", "Asia/Ho_Chi_Minh"
ZONE = clock.zone(TZ)


class Office:
    def __init__(self, tmp_path, **workrules):
        self.data = tmp_path / "gw"
        self.db = open_db(self.data / "gateway.sqlite")
        self.settings = load(environ={}).with_overrides(workrules=workrules) if workrules else load(environ={})
        self.seq = 0
        self.events: list[dict] = []

    def person(self, staff_id: str, name: str, schedule: str | None = None) -> None:
        staff.add(self.db, staff_id, name, "Văn phòng")
        if schedule:
            with self.db.conn:
                self.db.conn.execute("UPDATE staff SET schedule = ? WHERE staff_id = ?", (schedule, staff_id))

    def scans(self, staff_id: str, day: date, *times: str, synced: bool = True) -> None:
        for hm in times:
            self.seq += 1
            self.events.append({
                "v": 1, "event_id": str(uuid.uuid4()), "node_id": "door-1", "seq": self.seq,
                "ts": f"{day.isoformat()}T{hm}:00+07:00", "clock_synced": synced, "method": "card",
                "credential": "AA", "staff_id": staff_id, "match_score": None})

    def leave(self, staff_id: str, kind: str, first: date, last: date | None = None, half: str | None = None) -> None:
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO leave(staff_id, kind, first_day, last_day, half, entered_by, entered_at) VALUES (?,?,?,?,?,?,?)",
                (staff_id, kind, first.isoformat(), (last or first).isoformat(), half, "vanthu", clock.now_iso(TZ)))

    def punch(self, staff_id: str, day: date, hm: str, reason: str = "Quên chấm công") -> None:
        at = datetime.fromisoformat(f"{day.isoformat()}T{hm}:00").replace(tzinfo=ZONE)
        with self.db.conn:
            self.db.conn.execute(
                "INSERT INTO manual_punches(staff_id, ts, local_date, reason, entered_by, entered_at) VALUES (?,?,?,?,?,?)",
                (staff_id, at.isoformat(), day.isoformat(), reason, "vanthu", clock.now_iso(TZ)))

    def month(self, month: str, now: datetime) -> dict:
        if self.events:
            ingest = Ingest(self.db, SITE, TZ, max_behind_days=3650, max_ahead_h=24 * 3650)
            items = [Incoming(f"congso/{SITE}/node/door-1/attendance", messages.encode("attendance", e), time.monotonic())
                     for e in self.events]
            assert ingest.process(items).stored == len(self.events)
            self.events = []
        att = reports.attendance(self.db, self.settings.workrules, TZ, month=month, now=now)
        return {s["staff_id"]: s for s in timesheet.month_json(att.report, "UBND xã Thử Nghiệm")["staff"]}


def day(got: dict, staff_id: str, n: int) -> tuple:
    d = got[staff_id]["days"][str(n)]
    return d["am"], d["pm"], d["in"], d["out"], d["late_min"], d["early_min"], d["flags"]


AFTER_NOVEMBER = datetime(2026, 12, 1, 8, 0, tzinfo=ZONE)
NOV = lambda n: date(2026, 11, n)  # noqa: E731  November 2026: the 1st a Sunday; no public holiday but the 24th


def test_two_scans_a_day_sessions_and_late_across_the_lunch_break(tmp_path):
    o = Office(tmp_path)
    o.person("NV001", "Phạm Văn An")
    o.scans("NV001", NOV(2), "07:28", "17:02")          # a normal day
    o.scans("NV001", NOV(3), "14:50", "17:00")          # came after lunch: morning absent, late 80, not 440
    o.scans("NV001", NOV(4), "09:30", "16:45")          # late 120, early 15
    o.scans("NV001", NOV(5), "07:30", "09:30")          # left at 09:30: afternoon absent, early 120
    o.scans("NV001", NOV(6), "11:00", "17:00")          # late 210 (all in the morning)
    o.scans("NV001", NOV(9), "07:36", "17:00")          # 6 min: beyond the 5 min grace, counted in full
    o.scans("NV001", NOV(10), "07:35", "16:55")         # exactly the grace both ways: on time
    o.scans("NV001", NOV(11), "07:29")                  # one morning scan: the "in", no "out"
    o.scans("NV001", NOV(12), "16:58")                  # one afternoon scan: the "out", no "in"
    o.scans("NV001", NOV(13), "12:30", "17:00")         # came during lunch: morning absent, not late
    o.scans("NV001", NOV(16), "07:25", "17:00", synced=False)
    o.scans("NV001", NOV(21), "08:00", "10:00")         # a Saturday: shown, not a working day
    got = o.month("2026-11", AFTER_NOVEMBER)
    assert list(got["NV001"]["days"]) == [str(n) for n in range(1, 31)]
    assert day(got, "NV001", 1) == ("-", "-", None, None, 0, 0, [])
    assert day(got, "NV001", 2) == ("+", "+", "07:28", "17:02", 0, 0, [])
    assert day(got, "NV001", 3) == ("V", "+", "14:50", "17:00", 80, 0, [])
    assert day(got, "NV001", 4) == ("+", "+", "09:30", "16:45", 120, 15, [])
    assert day(got, "NV001", 5) == ("+", "V", "07:30", "09:30", 0, 120, [])
    assert day(got, "NV001", 6) == ("+", "+", "11:00", "17:00", 210, 0, [])
    assert day(got, "NV001", 9)[4] == 6
    assert day(got, "NV001", 10)[4:6] == (0, 0)
    assert day(got, "NV001", 11) == ("+", "+", "07:29", None, 0, 0, ["missing_out"])
    assert day(got, "NV001", 12) == ("+", "+", None, "16:58", 0, 0, ["missing_in"])
    assert day(got, "NV001", 13) == ("V", "+", "12:30", "17:00", 0, 0, [])
    assert day(got, "NV001", 16)[6] == ["clock_unsynced"]
    assert day(got, "NV001", 21) == ("-", "-", "08:00", "10:00", 0, 0, [])
    assert day(got, "NV001", 24)[:2] == ("L", "L")   # Ngày Văn hóa Việt Nam, by law from 2026
    assert day(got, "NV001", 17)[:2] == ("V", "V")
    # 20 working days (the 24th a holiday): 9 fully absent (17-20, 23, 25-27, 30) + 3 halves.
    totals = got["NV001"]["totals"]
    assert (totals["absent_days"], totals["late_min"], totals["early_min"]) == (10.5, 416, 135)
    assert (totals["worked_days"], totals["paid_leave_days"]) == (9.5, 1)


def test_four_scans_a_day_judge_each_session(tmp_path):
    o = Office(tmp_path, scans=4)
    o.person("NV001", "Phạm Văn An")
    o.scans("NV001", NOV(2), "07:28", "11:31", "13:29", "17:01")   # all four
    o.scans("NV001", NOV(3), "07:28", "17:01")                     # two scans: each session misses one
    o.scans("NV001", NOV(4), "07:40", "11:00", "13:45", "16:30")   # late 10 + 15, early 30 + 30
    o.scans("NV001", NOV(5), "13:30", "17:00")                     # the afternoon only
    got = o.month("2026-11", AFTER_NOVEMBER)
    assert day(got, "NV001", 2) == ("+", "+", "07:28", "17:01", 0, 0, [])
    assert day(got, "NV001", 3) == ("+", "+", "07:28", "17:01", 0, 0, ["missing_in", "missing_out"])
    assert day(got, "NV001", 4) == ("+", "+", "07:40", "16:30", 25, 60, [])
    assert day(got, "NV001", 5) == ("V", "+", "13:30", "17:00", 0, 0, [])


def test_half_day_leave_business_trip_and_a_correction(tmp_path):
    o = Office(tmp_path)
    o.person("NV001", "Phạm Văn An")
    o.person("NV002", "Lê Thị Bình")
    o.leave("NV001", "P", NOV(2), half="am")             # annual leave in the morning
    o.scans("NV001", NOV(2), "13:35", "17:00")           # 5 min after the afternoon's start: within grace
    o.leave("NV001", "Ô", NOV(3), half="pm")             # sick in the afternoon
    o.scans("NV001", NOV(3), "07:30", "11:30")           # left at the end of the morning: not early
    o.leave("NV001", "CT", NOV(4), NOV(6))               # a business trip, three days
    o.scans("NV001", NOV(5), "07:20", "07:21")           # came by before leaving: shown, not lost
    o.scans("NV002", NOV(2), "07:25")                    # forgot the evening scan ...
    o.punch("NV002", NOV(2), "17:05")                    # ... the clerk corrects it
    o.punch("NV002", NOV(3), "07:30")                    # a whole day entered by hand
    o.punch("NV002", NOV(3), "17:00")
    got = o.month("2026-11", AFTER_NOVEMBER)
    assert day(got, "NV001", 2) == ("P", "+", "13:35", "17:00", 0, 0, [])
    assert day(got, "NV001", 3) == ("+", "Ô", "07:30", "11:30", 0, 0, [])
    assert day(got, "NV001", 4)[:2] == ("CT", "CT")
    assert day(got, "NV001", 5) == ("CT", "CT", "07:20", "07:21", 0, 0, [])
    assert day(got, "NV002", 2) == ("+", "+", "07:25", "17:05", 0, 0, ["manual"])
    assert day(got, "NV002", 3) == ("+", "+", "07:30", "17:00", 0, 0, ["manual"])
    t = got["NV001"]["totals"]
    # Worked: 2 halves + 3 days of trip (counted as work); leave: 0.5 P + 1 holiday; insurance: 0.5 Ô.
    assert (t["worked_days"], t["paid_leave_days"], t["insurance_days"], t["unpaid_days"]) == (4, 1.5, 0.5, 0)
    assert t["absent_days"] == 20 - 5
    # The device's events were not touched: only the clerk's table holds the corrections.
    assert o.db.execute("SELECT count(*) FROM attendance_events WHERE staff_id = 'NV002'").fetchone()[0] == 1


def test_tet_2027_and_a_swapped_saturday_with_nothing_entered_but_the_swap(tmp_path):
    o = Office(tmp_path)
    o.person("NV001", "Phạm Văn An")
    feb = lambda n: date(2027, 2, n)  # noqa: E731
    # Tết Nguyên Đán 2027 falls on Saturday 6 February; the law's days off are 4-10 February.
    days_off.add_workday(o.db, "2027-02-20", "Làm bù cho ngày nghỉ Tết")   # a Saturday worked
    for n in range(1, 29):
        if feb(n).weekday() < 5 or n == 20:
            o.scans("NV001", feb(n), "07:25", "17:02")
    got = o.month("2027-02", datetime(2027, 3, 1, 8, 0, tzinfo=ZONE))
    for n in range(4, 11):
        assert day(got, "NV001", n)[:2] == ("L", "L"), n
    assert day(got, "NV001", 3)[:2] == ("+", "+")
    assert day(got, "NV001", 11)[:2] == ("+", "+")
    assert day(got, "NV001", 20) == ("+", "+", "07:25", "17:02", 0, 0, [])
    assert day(got, "NV001", 21)[:2] == ("-", "-")
    t = got["NV001"]["totals"]
    assert (t["absent_days"], t["worked_days"], t["paid_leave_days"]) == (0, 16, 7)


def test_a_seasonal_timetable_changes_mid_month_and_a_schedule_group_has_its_own_week(tmp_path):
    o = Office(tmp_path, seasons=["summer 11-16..12-31 07:00-11:00,13:30-17:30"],
               groups=["cong-an mon-sat 07:00-11:30,13:00-17:00"])
    o.person("NV001", "Phạm Văn An")
    o.person("CA01", "Trần Văn Công", schedule="cong-an")
    o.scans("NV001", NOV(13), "07:28", "17:00")     # before the season: on time
    o.scans("NV001", NOV(16), "07:28", "17:00")     # summer hours from the 16th: late 28, early 30
    o.scans("CA01", NOV(14), "07:03", "17:00")      # a Saturday: a working day for the police
    o.scans("CA01", NOV(16), "07:10", "17:00")      # their own hours: late 10, not summer's
    got = o.month("2026-11", AFTER_NOVEMBER)
    assert day(got, "NV001", 13)[4:6] == (0, 0)
    assert day(got, "NV001", 16)[4:6] == (28, 30)
    assert day(got, "NV001", 14)[:2] == ("-", "-")
    assert day(got, "CA01", 14)[:2] == ("+", "+")
    assert day(got, "CA01", 16)[4:6] == (10, 0)
    assert day(got, "CA01", 21)[:2] == ("V", "V")   # the next Saturday, no scan: absent for them
    assert day(got, "CA01", 15)[:2] == ("-", "-")   # Sunday


@pytest.mark.parametrize("key, value, message", [
    ("seasons", ["summer 04-15-10-14 07:00-11:30"], r"\[workrules\] seasons: .* must be"),
    ("seasons", ["summer 02-30..10-14 07:00-11:30"], r"'02-30' is not a day of the year"),
    ("groups", ["cong-an mon-xyz 07:00-11:30"], r"'mon-xyz' is not mon..sun"),
    ("groups", ["cong-an mon-fri 7h-11h"], r"is not HH:MM-HH:MM"),
])
def test_a_bad_season_or_group_is_a_clear_error(tmp_path, key, value, message):
    settings = load(environ={}).with_overrides(workrules={key: value})
    with pytest.raises(timesheet.RulesError, match=message):
        timesheet.WorkRules.from_settings(settings.workrules)


def test_the_cli_answers_the_same_json_and_says_a_bad_rule(tmp_path):
    o = Office(tmp_path)
    o.person("NV001", "Phạm Văn An")
    o.leave("NV001", "P", NOV(2))
    o.db.conn.close()
    import json

    r = run_congso("report", "attendance", "--month", "2026-11", "--format", "json", CONGSO_DATA_DIR=str(o.data))
    assert r.returncode == 0, r.stderr
    an = json.loads(r.stdout)["staff"][0]
    assert (an["days"]["2"]["am"], an["days"]["2"]["pm"]) == ("P", "P")
    r = run_congso("report", "attendance", "--month", "2026-11", "--format", "json", CONGSO_DATA_DIR=str(o.data),
                   CONGSO_WORKRULES_GROUPS="police mon-sun")
    assert r.returncode != 0 and "[workrules] groups: 'police mon-sun' must be" in r.stderr


def test_the_day_report_at_eight_says_who_is_not_in_yet_and_who_is_on_leave(tmp_path):
    o = Office(tmp_path)
    for sid, name in (("NV001", "Phạm Văn An"), ("NV002", "Lê Thị Bình"), ("NV003", "Đỗ Minh Châu")):
        o.person(sid, name)
    today = date(2026, 11, 25)
    o.scans("NV001", today, "07:26")
    o.leave("NV003", "CT", today)
    o.month("2026-11", AFTER_NOVEMBER)  # stores the scans
    att = reports.attendance(o.db, o.settings.workrules, TZ, day=today.isoformat(),
                             now=datetime(2026, 11, 25, 8, 0, tzinfo=ZONE))
    assert [p["staff_id"] for p in reports.not_in_yet(att.report)] == ["NV002"]
    assert [(p["staff_id"], p["kind"], p["sessions"]) for p in reports.on_leave(att.report)] == [("NV003", "CT", "cả ngày")]
    rows = {r["staff_id"]: r["status"] for r in reports.day_rows_vi(att.report)}
    assert rows["NV002"] == "chưa chấm công" and rows["NV003"] == "Đi công tác (CT)"
    assert reports.day_counts(att.report)["on_leave"] == 1


def test_staff_schedule_from_the_cli(tmp_path):
    data = tmp_path / "gw"
    env = {"CONGSO_DATA_DIR": str(data), "CONGSO_WORKRULES_GROUPS": "cong-an mon-sat 07:00-11:30,13:00-17:00"}
    r = run_congso("staff", "add", "CA01", "Trần Văn Công", "--schedule", "police", **env)
    assert r.returncode == 1 and "no schedule group 'police' in [workrules] groups (known: cong-an)" in r.stderr
    assert run_congso("staff", "add", "CA01", "Trần Văn Công", "--schedule", "cong-an", **env).returncode == 0
    db = open_db(data / "gateway.sqlite")
    assert staff.get(db, "CA01")["schedule"] == "cong-an"
    r = run_congso("staff", "schedule", "CA01", "--office", **env)
    assert r.returncode == 0, r.stderr
    assert staff.get(db, "CA01")["schedule"] is None
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'staff.schedule'").fetchone()[0] == 1
