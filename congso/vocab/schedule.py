"""When something may be on: weekdays, hours of the day and a date range.

One small language, shared by the work rules (``[workrules] groups``), the
TV's pages (``[signage] pages``) and the slides (``congso announce add
--schedule``), so a clerk learns it once:

    mon-fri                      weekdays (a range, a list mon,wed,fri, or both)
    07:30-11:30,13:30-17:00      hours of the day
    2026-12-05..2026-12-06       a date range (one date alone: that day)

A schedule is any of the three, separated by spaces, in any order; a part
left out does not limit (``""`` is always on). ``Schedule.on(now)`` is the
one test the TV and the gateway both use. Pure: the standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

DAY_ABBREV = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
DAY_VI = ("T2", "T3", "T4", "T5", "T6", "T7", "CN")
PERIOD_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.\.\d{4}-\d{2}-\d{2})?$")
MAX_TEXT = 200

Periods = list[tuple[int, int]]  # (start minute, end minute) of the day


class ScheduleError(ValueError):
    """Text that is not a schedule; the message names the part and shows the form."""


def parse_hours(text: str, where: str = "hours") -> Periods:
    """"07:30-11:30,13:30-17:00" -> [(450, 690), (810, 1020)], in order, not overlapping."""
    periods: Periods = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = PERIOD_RE.match(part)
        if not m:
            raise ScheduleError(f"{where}: {part!r} is not HH:MM-HH:MM (e.g. 07:30-11:30,13:30-17:00)")
        h1, m1, h2, m2 = map(int, m.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
            raise ScheduleError(f"{where}: {part!r} is not a time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start or (periods and start < periods[-1][1]):
            raise ScheduleError(f"{where}: {part!r} must end after it starts and after the period before")
        periods.append((start, end))
    return periods


def parse_days(spec: str, where: str = "days") -> list[int]:
    """"mon-fri" / "mon,wed,fri" / "mon-wed,sat" -> weekdays (0 = Monday)."""
    days: list[int] = []
    for item in spec.lower().split(","):
        a, _, b = item.partition("-")
        if a not in DAY_ABBREV or (b and b not in DAY_ABBREV):
            raise ScheduleError(f"{where}: {item!r} is not mon..sun, a range mon-fri or a list mon,wed,fri")
        lo, hi = DAY_ABBREV[a], DAY_ABBREV[b or a]
        if hi < lo:
            raise ScheduleError(f"{where}: {item!r} runs backwards")
        days.extend(d for d in range(lo, hi + 1) if d not in days)
    return sorted(days)


def _parse_dates(token: str, where: str) -> tuple[date, date]:
    first, _, last = token.partition("..")
    try:
        a = date.fromisoformat(first)
        b = date.fromisoformat(last) if last else a
    except ValueError:
        raise ScheduleError(f"{where}: {token!r} is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD") from None
    if b < a:
        raise ScheduleError(f"{where}: {token!r} ends before it starts")
    return a, b


@dataclass(frozen=True)
class Schedule:
    days: tuple[int, ...] = ()          # empty: every day of the week
    hours: tuple[tuple[int, int], ...] = ()  # empty: all day
    first: date | None = None
    last: date | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str | None, where: str = "schedule") -> "Schedule":
        text = " ".join(str(text or "").split())
        if len(text) > MAX_TEXT:
            raise ScheduleError(f"{where}: {len(text)} characters; at most {MAX_TEXT}")
        days: list[int] | None = None
        hours: Periods | None = None
        dates: tuple[date, date] | None = None
        for token in text.split():
            if token[:1].isdigit() and _DATE_RE.match(token):
                if dates is not None:
                    raise ScheduleError(f"{where}: two date ranges ({token!r}); give one, e.g. 2026-12-05..2026-12-06")
                dates = _parse_dates(token, where)
            elif token[:1].isdigit():
                if hours is not None:
                    raise ScheduleError(f"{where}: two lists of hours; join them with commas: 07:30-11:30,13:30-17:00")
                hours = parse_hours(token, where)
            else:
                if days is not None:
                    raise ScheduleError(f"{where}: two lists of weekdays; join them with commas: mon-fri,sun")
                days = parse_days(token, where)
        return cls(tuple(days or ()), tuple(hours or ()), dates[0] if dates else None,
                   dates[1] if dates else None, text)

    def on(self, now: datetime) -> bool:
        """Is ``now`` (in office time) inside the schedule?"""
        day = now.date()
        if self.first and day < self.first or self.last and day > self.last:
            return False
        if self.days and now.weekday() not in self.days:
            return False
        if self.hours:
            minute = now.hour * 60 + now.minute
            return any(a <= minute < b for a, b in self.hours)
        return True

    @property
    def always(self) -> bool:
        return not (self.days or self.hours or self.first)

    def describe_vi(self) -> str:
        """For the console: "T2–T6 · 07:30–11:30 · 05/12–06/12/2026"; "" when always on."""
        parts = []
        if self.days:
            parts.append(", ".join(DAY_VI[d] for d in self.days))
        if self.hours:
            parts.append(", ".join(f"{a // 60:02d}:{a % 60:02d}–{b // 60:02d}:{b % 60:02d}" for a, b in self.hours))
        if self.first:
            if self.first == self.last:
                parts.append(self.first.strftime("%d/%m/%Y"))
            else:
                parts.append(f"{self.first:%d/%m}–{self.last:%d/%m/%Y}")
        return " · ".join(parts)


def is_on(text: str | None, now: datetime) -> bool:
    """The TV's test for a slide's or a page's schedule text; a schedule it cannot read is off (never an error screen)."""
    try:
        return Schedule.parse(text).on(now)
    except ScheduleError:
        return False
