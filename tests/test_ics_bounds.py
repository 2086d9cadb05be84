"""Hostile and careless .ics files: recurrence and nesting are bounded, the error says why, nothing is imported.

Before: ``RRULE:FREQ=SECONDLY`` without an end ran past 5 minutes and 11 GB,
5,000 nested ``BEGIN:VCALENDAR`` gave a RecursionError traceback.
"""

from __future__ import annotations

from datetime import date

import pytest

from congso.gateway import work_calendar
from congso.gateway.db import open_db

TZ = "Asia/Ho_Chi_Minh"
TODAY = date(2026, 11, 23)


def ics(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip()}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n".encode()


def event(uid: str, start: str, rule: str | None = None, summary: str = "Giao ban") -> str:
    lines = [f"UID:{uid}", f"DTSTART:{start}", f"SUMMARY:{summary}"]
    if rule:
        lines.append(f"RRULE:{rule}")
    return "\r\n".join(lines)


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "gateway.sqlite")


def _import(db, tmp_path, data: bytes, name: str = "lich.ics"):
    path = tmp_path / name
    path.write_bytes(data)
    return work_calendar.import_ics(db, path, tz=TZ, today=TODAY)


def _nothing(db) -> bool:
    return db.execute("SELECT count(*) FROM calendar_entries").fetchone()[0] == 0


@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY", "HOURLY"])
def test_sub_daily_repeats_without_end_are_refused_at_once(db, tmp_path, freq):
    data = ics(event("ok", "20261124T080000"), event("spam", "20261101T080000Z", f"FREQ={freq}"))
    with pytest.raises(work_calendar.CalendarError, match=f"event 2 \\(Giao ban\\) repeats every .* FREQ={freq}"):
        _import(db, tmp_path, data)
    assert _nothing(db)


def test_too_many_occurrences_in_the_window_and_rules_from_long_ago_are_refused(db, tmp_path):
    daily = [event(f"d{n}", "20261101T080000", "FREQ=DAILY") for n in range(80)]  # 80 x ~84 days in the window
    with pytest.raises(work_calendar.CalendarError, match="more than 5000 occurrences between 2026-10-26 and 2027-01-18"):
        _import(db, tmp_path, ics(*daily))
    with pytest.raises(work_calendar.CalendarError, match="repeats more than 20000 times from 1901-01-01"):
        _import(db, tmp_path, ics(event("old", "19010101T080000", "FREQ=DAILY;INTERVAL=1")))
    with pytest.raises(work_calendar.CalendarError, match="starts in 1066"):
        _import(db, tmp_path, ics(event("older", "10660101T080000", "FREQ=YEARLY")))
    # A rule no date satisfies (30 February) stops at the window's end instead of running to year 9999.
    with pytest.raises(work_calendar.CalendarError, match=r"no date matches its RRULE \(day \[30\] of month \[2\]\)"):
        _import(db, tmp_path, ics(event("never", "20261101T080000", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")))
    assert _nothing(db)
    # What a commune really has: the Monday briefing since 2015, a daily flag ceremony this quarter.
    result = _import(db, tmp_path, ics(event("mon", "20150105T073000", "FREQ=WEEKLY;BYDAY=MO"),
                                       event("flag", "20261001T070000", "FREQ=DAILY;UNTIL=20261231T000000Z")))
    assert result.entries > 12 + 30


def test_5000_nested_calendars_are_a_clear_error_not_a_recursion_error(db, tmp_path):
    data = b"BEGIN:VCALENDAR\r\n" * 5000 + b"END:VCALENDAR\r\n" * 5000
    with pytest.raises(work_calendar.CalendarError, match=r"line 9: components nested 9 deep \(at most 8\)"):
        _import(db, tmp_path, data)
    assert _nothing(db)


def test_a_huge_file_is_refused_before_it_is_parsed(db, tmp_path):
    data = ics(event("big", "20261124T080000", summary="x" * (work_calendar.MAX_ICS_BYTES + 1)))
    with pytest.raises(work_calendar.CalendarError, match="at most 10 MB"):
        _import(db, tmp_path, data)


def test_any_other_runaway_rule_is_stopped_by_the_work_bound(db, tmp_path, monkeypatch):
    # 29 February that is also the first day of the year: no date matches, and
    # dateutil steps day by day to 9999 whatever UNTIL says. No specific check
    # knows this rule; the child process's CPU bound stops it.
    monkeypatch.setattr(work_calendar, "MAX_CPU_S", 1)
    data = ics(event("never", "20261101T080000", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYYEARDAY=1"))
    with pytest.raises(work_calendar.CalendarError, match="took more than 1 s of work"):
        _import(db, tmp_path, data)
    assert _nothing(db)
