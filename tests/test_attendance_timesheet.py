"""A month built by hand gives exactly the expected timesheet (CLI, CSV and XLSX cells).

The events go through the gateway's real ingest (validation, local dates)
into a real gateway database; the reports are made by `congso report
attendance` as the head of office types it, and the XLSX is read back
with openpyxl.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from conftest import run_congso
from congso.gateway import days_off, staff, timesheet
from congso.gateway.db import open_db
from congso.gateway.ingest import Ingest
from congso.protocol import messages
from congso.protocol.link import Incoming
from congso.protocol.settings import load

SITE = "test-site"
TZ = "Asia/Ho_Chi_Minh"

# October 2026: the 1st is a Thursday; weekends 3-4, 10-11, 17-18, 24-25, 31.
# The 20th is made a holiday: 21 working days.
NORMAL = ("07:25", "17:02")
AN_DAYS = {
    5: ["07:36", "17:00"],             # late 6 (beyond 5 minutes of grace: counted from 07:30)
    6: ["07:35", "16:55"],             # exactly at the grace limit both ways: on time
    7: ["07:20", "16:40"],             # left 20 minutes early
    8: [],                             # absent
    9: ["07:29"],                      # one morning scan: in, no out
    10: ["09:00", "10:00"],            # a Saturday: shown, never late
    12: ["16:58"],                     # one afternoon scan: out, no in
    13: ["07:31", "12:00", "17:30"],   # first and last count
    20: [],                            # the holiday
}
UNSYNCED_DAY = 14                      # 07:30-17:00 from a door whose clock was never synced


def working_days():
    return [d for d in range(1, 32) if date(2026, 10, d).weekday() < 5 and d != 20]


def event(node, seq, day, hm, staff_id, *, method="finger", credential="3", synced=True):
    return {
        "v": 1, "event_id": str(uuid.uuid4()), "node_id": node, "seq": seq,
        "ts": f"2026-10-{day:02d}T{hm}:{seq % 60:02d}+07:00", "clock_synced": synced,
        "method": method, "credential": credential, "staff_id": staff_id, "match_score": 120,
    }


@pytest.fixture
def office(tmp_path):
    data = tmp_path / "gw"
    db = open_db(data / "gateway.sqlite")
    staff.add(db, "NV001", "Phạm Văn An", "Văn phòng")
    staff.add(db, "NV002", "Lê Thị Bình", "Địa chính")
    days_off.add_off(db, "2026-10-20", "Ngày nghỉ bù")
    events, seq = [], 0
    for day in range(1, 32):
        times = AN_DAYS.get(day, list(NORMAL) if day in working_days() else [])
        for hm in times:
            seq += 1
            events.append(event("door-1", seq, day, hm, "NV001", synced=day != UNSYNCED_DAY))
    # Bình's card was not assigned yet on the 15th: the door sent staff_id null.
    for hm in ("07:45", "17:00"):
        seq += 1
        events.append(event("door-1", seq, 15, hm, None, method="card", credential="0A0B0C0D"))
    # The 14th needs its scans (the unsynced door) - AN_DAYS has none for it.
    # The month arrives all at once, weeks later: not a clock gone wrong
    # (ingest would flag events over [gateway] max_behind_days old).
    ingest = Ingest(db, SITE, TZ, max_behind_days=3650)
    items = [Incoming(f"congso/{SITE}/node/door-1/attendance", messages.encode("attendance", e), time.monotonic())
             for e in events]
    result = ingest.process(items)
    assert result.stored == len(events) and result.rejected == 0
    staff.assign_card(db, "NV002", "0A0B0C0D")  # later: the earlier taps count for Bình
    db.conn.close()
    return data


def cli(data, *args):
    r = run_congso(*args, CONGSO_DATA_DIR=str(data), CONGSO_SITE_NAME="UBND xã Thử Nghiệm")
    assert r.returncode == 0, r.stderr
    return r


def test_rules_on_single_days():
    rules = timesheet.WorkRules.from_settings(load(environ={}).workrules)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=timesheet.clock.zone(TZ))
    at = lambda d, hm: datetime.fromisoformat(f"{d}T{hm}:00+07:00")  # noqa: E731
    tue = date(2026, 11, 24)
    late = timesheet.evaluate(rules, date(2026, 11, 23), None, [(at("2026-11-23", "07:36"), True), (at("2026-11-23", "17:00"), True)], now)
    assert (late.late_min, late.early_min, late.status()) == (6, 0, "late 6 min")
    assert timesheet.evaluate(rules, tue, None, [], now).status() == "no scan yet"  # today, before closing
    # Today, before closing: whoever scanned is at work; nobody has left early yet, whatever the hour of the scan.
    noon = datetime(2026, 11, 24, 12, 50, tzinfo=timesheet.clock.zone(TZ))
    arrived = timesheet.evaluate(rules, tue, None, [(at("2026-11-24", "07:31"), True), (at("2026-11-24", "11:40"), True)], noon)
    assert (arrived.late_min, arrived.early_min, arrived.status()) == (0, 0, "at work, day not over")
    after_lunch = timesheet.evaluate(rules, tue, None, [(at("2026-11-24", "12:49"), True)], noon)
    # The morning is over and they came after it: absent that session; not late for the afternoon (13:30).
    assert (after_lunch.am, after_lunch.pm) == ("V", None)
    assert (after_lunch.late_min, after_lunch.early_min, after_lunch.status()) == (0, 0, "absent in the morning, at work, day not over")
    evening = datetime(2026, 11, 24, 17, 30, tzinfo=timesheet.clock.zone(TZ))
    left = timesheet.evaluate(rules, tue, None, [(at("2026-11-24", "07:31"), True), (at("2026-11-24", "16:30"), True)], evening)
    assert (left.early_min, left.status()) == (30, "left early 30 min")
    assert timesheet.evaluate(rules, date(2026, 11, 25), None, [], now).cell() == ""  # the future is not absent
    assert timesheet.evaluate(rules, date(2026, 11, 23), None, [], now).absent
    assert timesheet.evaluate(rules, date(2026, 11, 22), None, [], now).cell() == "-"  # a Sunday
    assert timesheet.evaluate(rules, date(2026, 11, 20), "Lễ", [], now).cell() == "L"
    with pytest.raises(timesheet.RulesError, match=r"\[workrules\] monday: '7h30-11h30'"):
        timesheet.parse_hours("7h30-11h30", "[workrules] monday")


def test_hand_built_month_gives_the_exact_timesheet(office, tmp_path):
    xlsx = tmp_path / "october.xlsx"
    csv_path = tmp_path / "october.csv"
    cli(office, "report", "attendance", "--month", "2026-10", "--xlsx", str(xlsx), "--csv", str(csv_path))

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    an, binh = rows
    assert (an["staff_id"], an["name"], an["department"], binh["name"]) == ("NV001", "Phạm Văn An", "Văn phòng", "Lê Thị Bình")
    cell = lambda row, d: row[str(d)]  # noqa: E731
    assert cell(an, 1) == "+"
    assert cell(an, 5) == "+"          # late, but worked both sessions
    assert cell(an, 8) == "V"
    assert cell(an, 9) == "+"          # one morning scan: worked, the "out" missing (the corrections list)
    assert cell(an, 10) == ""          # a Saturday: not a working day (shaded on the form)
    assert cell(an, 12) == "+"
    assert cell(an, 20) == "L"
    totals = lambda row: [row[k] for k in ("worked_days", "paid_leave_days", "unpaid_days", "insurance_days",  # noqa: E731
                                            "absent_days", "late_min", "early_min")]
    # 22 weekdays, the 20th a holiday: 20 worked, 1 holiday, 1 absent; late 6 (the 5th), early 20 (the 7th).
    assert totals(an) == ["20", "1", "0", "0", "1", "6", "20"]
    # Bình: only the card taps of the 15th, credited after `card assign`.
    assert cell(binh, 15) == "+"
    assert [d for d in range(1, 32) if cell(binh, d) == "V"] == [d for d in working_days() if d != 15]
    assert totals(binh) == ["1", "1", "0", "0", "20", "15", "0"]

    ws = load_workbook(xlsx).active
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0][0] == "Đơn vị: UBND xã Thử Nghiệm"
    assert "BẢNG CHẤM CÔNG" in values[3] and "Tháng 10 năm 2026" in values[4]
    numbers = next(r for r in values if r[3] == 1 and r[4] == 2)  # the day numbers' row
    assert numbers[3 + 30] == 31 and numbers[3 + 31:3 + 38] == [
        "Số công hưởng lương thời gian", "Số công nghỉ hưởng 100% lương", "Số công nghỉ không lương",
        "Số công hưởng BHXH", "Số công vắng không phép", "Đi muộn (phút)", "Về sớm (phút)"]
    weekdays = values[values.index(numbers) + 1]
    assert weekdays[3] == "T5"  # 1 October 2026 is a Thursday
    row = next(r for r in values if r[1] == "Phạm Văn An")
    assert row[:3] == [1, "Phạm Văn An", "Văn phòng"]  # STT, name, position (the department when none)
    assert (row[2 + 1], row[2 + 8], row[2 + 20], row[2 + 10]) == ("+", "V", "L", None)
    assert row[3 + 31:3 + 38] == [20, 1, 0, 0, 1, 6, 20]
    assert next(r for r in values if r[1] == "Lê Thị Bình")[3 + 31:3 + 38] == [1, 1, 0, 0, 20, 15, 0]


def test_day_report_names_late_early_absent_and_the_clock(office):
    out = cli(office, "report", "attendance", "--day", "2026-10-05", "--csv", "-").stdout
    rows = {r["staff_id"]: r for r in csv.DictReader(io.StringIO(out.lstrip("\ufeff")))}
    assert (rows["NV001"]["in"], rows["NV001"]["out"], rows["NV001"]["status"]) == ("07:36", "17:00", "late 6 min")
    assert rows["NV002"]["status"] == "absent"
    out = cli(office, "report", "attendance", "--day", "2026-10-07", "--csv", "-").stdout
    assert "left early 20 min" in out
    out = cli(office, "report", "attendance", "--day", "2026-10-14", "--csv", "-").stdout
    assert "on time" not in out.split("NV001")[1].splitlines()[0] and "clock not synced" in out
    out = cli(office, "report", "attendance", "--day", "2026-10-09", "--csv", "-").stdout
    assert "no out scan" in out


def test_report_errors_are_specific(office):
    r = run_congso("report", "attendance", "--month", "2026-13", CONGSO_DATA_DIR=str(office))
    assert r.returncode != 0 and "--month must be YYYY-MM, got '2026-13'" in r.stderr
    r = run_congso("report", "attendance", "--day", "2026-10-05", CONGSO_DATA_DIR=str(office),
                   CONGSO_WORKRULES_MONDAY="7:30 to 11:30")
    assert r.returncode != 0 and "[workrules] monday: '7:30 to 11:30' is not HH:MM-HH:MM" in r.stderr
