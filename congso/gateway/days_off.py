"""Which days are public holidays and which weekend days are worked: the law's and the office's.

Two sources, the office's winning on the same day:

- **The law** (``source = "law"``): Vietnam's public holidays from the
  ``holidays`` package, the lunar ones included (Tết Nguyên Đán, Giỗ Tổ
  Hùng Vương), with their days in lieu and the weekend days the government
  swapped into working days (``weekend_workdays``). Nobody types them in.
- **The office** (``source = "office"``, the ``holidays`` table): the
  government's extra days off announced each year (``kind = 'off'``,
  ``congso holiday add``) and a weekend day made a working day to lengthen a
  holiday (``kind = 'workday'``, ``congso holiday workday``); an office entry
  also overrides the law on its day (a holiday the province moved).

``day_kinds(db, first, last)`` is what the timesheet reads: a holiday is
never an absence, a swapped working day is judged with the hours of the
schedule's usual working day.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import sqlite_utils

from ..protocol import clock
from ..vocab import dates
from ..vocab import text

HOLIDAY, WORKDAY = "holiday", "workday"
_KIND_OF_ROW = {"off": HOLIDAY, "workday": WORKDAY}


class DaysOffError(ValueError):
    """A day or a name the office typed that cannot be stored; the message says which."""


def parse_day(value: str, what: str = "day") -> date:
    """YYYY-MM-DD or dd/mm/yyyy."""
    value = str(value or "").strip()
    try:
        return dates.parse_day(value)
    except ValueError:
        raise DaysOffError(f"{what} must be YYYY-MM-DD, got {value!r}") from None


@lru_cache(maxsize=64)
def _law(year: int) -> tuple[dict[date, str], frozenset[date]]:
    import holidays

    if not 1995 <= year <= 2200:  # the package's range for Vietnam; outside it: no holiday known
        return {}, frozenset()
    vn = holidays.VN(years=year, language="vi")
    days = {d: text.nfc(name) for d, name in vn.items() if d.year == year}
    swapped = frozenset(d for d in getattr(vn, "weekend_workdays", ()) if d.year == year)
    return days, swapped


def statutory(year: int) -> dict[date, str]:
    """The law's public holidays of ``year``, in Vietnamese (Tết and Giỗ Tổ Hùng Vương included)."""
    return dict(_law(year)[0])


def law_workdays(year: int) -> set[date]:
    """The weekend days of ``year`` the government made working days (swapped for a day off in lieu)."""
    return set(_law(year)[1])


def _name(name: str) -> str:
    try:
        cleaned = text.clean(name, "name", max_len=120)
    except text.TextError as e:
        raise DaysOffError(str(e)) from None
    if not cleaned:
        raise DaysOffError('a day off needs a name (e.g. "Nghỉ bù Tết Nguyên Đán")')
    return cleaned


def add_off(db: sqlite_utils.Database, first_day: str, name: str, days: int = 1) -> date:
    """``days`` days off in a row from ``first_day``, all named ``name``; returns the first day."""
    first = parse_day(first_day)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 30:
        raise DaysOffError(f"--days must be 1 to 30, got {days!r}")
    name = _name(name)
    with db.conn:
        for n in range(days):
            db.conn.execute("INSERT OR REPLACE INTO holidays(day, name, kind) VALUES (?, ?, 'off')",
                            ((first + timedelta(n)).isoformat(), name))
    return first


def add_workday(db: sqlite_utils.Database, day: str, name: str) -> date:
    """Make ``day`` (a weekend day, or a holiday the province moved) a working day named ``name``."""
    d = parse_day(day)
    name = _name(name)
    with db.conn:
        db.conn.execute("INSERT OR REPLACE INTO holidays(day, name, kind) VALUES (?, ?, 'workday')",
                        (d.isoformat(), name))
    return d


def remove(db: sqlite_utils.Database, day: str) -> dict:
    """Drop the office's entry for ``day`` (the law's holidays cannot be removed, only overridden)."""
    d = parse_day(day)
    with db.conn:
        row = db.execute("SELECT day, name, kind FROM holidays WHERE day = ?", (d.isoformat(),)).fetchone()
        if row is None:
            hint = " (a holiday by law: `congso holiday workday` makes it a working day)" if d in statutory(d.year) else ""
            raise DaysOffError(f"{d} has no entry of the office{hint}; see `congso holiday list --year {d.year}`")
        db.conn.execute("DELETE FROM holidays WHERE day = ?", (d.isoformat(),))
    return {"day": row[0], "name": row[1], "kind": _KIND_OF_ROW.get(row[2], HOLIDAY)}


def _office(db: sqlite_utils.Database, first: date, last: date) -> dict[date, tuple[str, str]]:
    return {date.fromisoformat(d): (_KIND_OF_ROW.get(kind, HOLIDAY), name) for d, name, kind in db.execute(
        "SELECT day, name, kind FROM holidays WHERE day BETWEEN ? AND ?", (first.isoformat(), last.isoformat()))}


def day_kinds(db: sqlite_utils.Database, first: date, last: date) -> dict[date, tuple[str, str]]:
    """Every day in [first, last] that is not ordinary: date -> ("holiday" | "workday", name)."""
    out: dict[date, tuple[str, str]] = {}
    for year in range(first.year, last.year + 1):
        days, swapped = _law(year)
        for d, name in days.items():
            if first <= d <= last:
                out[d] = (HOLIDAY, name)
        for d in swapped:
            if first <= d <= last:
                out[d] = (WORKDAY, "Ngày làm việc bù (theo quy định)")
    out.update(_office(db, first, last))
    return out


def list_days(db: sqlite_utils.Database, year: int | None = None, tz: str = "Asia/Ho_Chi_Minh") -> list[dict]:
    """The holidays and swapped working days of ``year`` (every year the office entered anything: None), by day.

    Each: day (YYYY-MM-DD), name, kind ("holiday" | "off" | "workday": a law's holiday, an office's day off,
    a working day), source ("law" | "office").
    """
    office_rows = [(date.fromisoformat(d), n, k) for d, n, k in db.execute(
        "SELECT day, name, kind FROM holidays ORDER BY day")]
    years = {year} if year is not None else ({d.year for d, _, _ in office_rows} or {clock.now(tz).year})  # this year in office time
    rows: dict[date, dict] = {}
    for y in sorted(years):
        days, swapped = _law(y)
        for d, name in days.items():
            rows[d] = {"day": d.isoformat(), "name": name, "kind": HOLIDAY, "source": "law"}
        for d in swapped:
            rows[d] = {"day": d.isoformat(), "name": "Ngày làm việc bù (theo quy định)", "kind": WORKDAY, "source": "law"}
    for d, name, kind in office_rows:
        if year is None or d.year == year:
            rows[d] = {"day": d.isoformat(), "name": name, "kind": "workday" if kind == "workday" else "off",
                       "source": "office"}
    return [rows[d] for d in sorted(rows)]
