"""The leaders' work calendar (lịch công tác) at the gateway.

Entries are typed in with ``congso calendar add`` or imported from an
iCalendar file (``.ics``, exported by Google Calendar, Outlook, Thunderbird
or the province's e-office system). Recurring events (the Monday briefing)
are expanded with ``recurring-ical-events`` into one entry per occurrence
within a window around today. Each imported occurrence's id is derived from
its UID and RECURRENCE-ID, so importing the same file again updates rather
than duplicates; occurrences gone from the file (a cancelled meeting) are
removed from the window on re-import.

Times: an all-day entry has ``start``/``end`` as ``YYYY-MM-DD`` (``end`` the
last day, inclusive); a timed one RFC 3339 with the office's offset.

Published: retained state ``calendar`` with the entries of this week and
next, ``week_start`` the Monday of this week (office time). The gateway
rebuilds every 30 s, so the board turns over on Monday at midnight.
"""

from __future__ import annotations

import hashlib
import base64
import json
import re
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlite_utils

from ..vocab import text as vocab_text
from ..vocab.text import nfc
from . import state
from .dossiers import fit_items

WINDOW_BACK = timedelta(weeks=4)
WINDOW_AHEAD = timedelta(weeks=8)


class CalendarError(ValueError):
    """Input the calendar cannot take; the message says what and where."""


def _clean(value, field: str, where: str = "") -> str | None:
    """Stored text: NFC, one space between words; a control or format character is refused, naming the field."""
    try:
        return vocab_text.clean(value, field, max_len=1000)
    except vocab_text.TextError as e:
        raise CalendarError(f"{where}{e}; nothing imported" if where else str(e)) from None


def _nfc(text) -> str:
    return nfc(str(text or "")).strip()


@dataclass
class Entry:
    id: str
    start: str
    end: str | None
    all_day: bool
    title: str
    leaders: list[str] = field(default_factory=list)
    location: str | None = None
    participants: str | None = None
    preparer: str | None = None
    uid: str | None = None  # iCalendar UID of an imported entry (not published)

    def payload(self) -> dict:
        return {"id": self.id, "start": self.start, "end": self.end, "all_day": self.all_day,
                "leaders": self.leaders, "title": self.title, "location": self.location,
                "participants": self.participants, "preparer": self.preparer}


def _sort_key(start: str, tz: str) -> str:
    if len(start) == 10:
        at = datetime.combine(date.fromisoformat(start), time(0), ZoneInfo(tz))
    else:
        at = datetime.fromisoformat(start)
    return at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(text: str, tz: str, what: str) -> tuple[str, bool]:
    """"2026-11-23 08:00", "23/11/2026 08:00" -> (RFC 3339, False); "2026-11-23", "23/11/2026" -> (date, True)."""
    from .dossiers import DossierError, parse_when

    try:
        value = parse_when(text, tz)
    except DossierError as e:
        raise CalendarError(f"{what}: {e}") from None
    return value, len(value) == 10


def _store(db: sqlite_utils.Database, e: Entry, tz: str, source: str, uid: str | None) -> None:
    db.conn.execute(
        "INSERT INTO calendar_entries(id, start, end, all_day, leaders, title, location, participants, preparer, source, uid, sort_key)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET start=excluded.start, end=excluded.end,"
        " all_day=excluded.all_day, leaders=excluded.leaders, title=excluded.title, location=excluded.location,"
        " participants=excluded.participants, preparer=excluded.preparer, source=excluded.source, uid=excluded.uid,"
        " sort_key=excluded.sort_key",
        (e.id, e.start, e.end, int(e.all_day), json.dumps(e.leaders, ensure_ascii=False), e.title, e.location,
         e.participants, e.preparer, source, uid, _sort_key(e.start, tz)))


def _checked(*, entry_id: str, start: str, title: str, tz: str, end: str | None, leaders, location,
             participants, preparer) -> Entry:
    """An entry from what staff typed, every field checked (``add`` and ``update``)."""
    title = _clean(title, "title")
    if not title:
        raise CalendarError("the title is empty")
    start_v, all_day = parse_moment(start, tz, "--start")
    end_v = None
    if end:
        end_v, end_all_day = parse_moment(end, tz, "--end")
        if end_all_day != all_day:
            raise CalendarError("--start and --end must both have a time, or both be dates (an all-day entry)")
        if _sort_key(end_v, tz) < _sort_key(start_v, tz):
            raise CalendarError(f"--end {end} is before --start {start}")
    return Entry(id=entry_id, start=start_v, end=end_v, all_day=all_day, title=title,
                 leaders=[x for x in (_clean(x, "leader") for x in leaders) if x], location=_clean(location, "location"),
                 participants=_clean(participants, "participants"), preparer=_clean(preparer, "preparer"))


def add(db: sqlite_utils.Database, *, start: str, title: str, tz: str, end: str | None = None,
        leaders: list[str] = (), location: str | None = None, participants: str | None = None,
        preparer: str | None = None, source: str = "cli") -> Entry:
    """Add one entry typed by staff. ``start`` without a time makes an all-day entry."""
    entry = _checked(entry_id="c-" + uuid.uuid4().hex[:10], start=start, title=title, tz=tz, end=end, leaders=leaders,
                     location=location, participants=participants, preparer=preparer)
    with db.conn:
        _store(db, entry, tz, source, None)
    return entry


def get(db: sqlite_utils.Database, entry_id: str) -> Entry | None:
    rows = list(db.query("SELECT * FROM calendar_entries WHERE id=?", [entry_id]))
    if not rows:
        return None
    e = _row_entry(rows[0])
    e.uid = rows[0]["uid"]
    return e


def update(db: sqlite_utils.Database, entry_id: str, *, start: str, title: str, tz: str, end: str | None = None,
           leaders: list[str] = (), location: str | None = None, participants: str | None = None,
           preparer: str | None = None) -> tuple[Entry, Entry]:
    """Change every field of one entry, checked as ``add`` checks them; (before, after).

    An imported entry keeps its UID: importing the file again overwrites the change.
    """
    entry = _checked(entry_id=entry_id, start=start, title=title, tz=tz, end=end, leaders=leaders,
                     location=location, participants=participants, preparer=preparer)
    with db.conn:
        rows = list(db.query("SELECT * FROM calendar_entries WHERE id=?", [entry_id]))
        if not rows:
            raise CalendarError(f"no calendar entry {entry_id!r}; see `congso calendar list`")
        before = _row_entry(rows[0])
        db.conn.execute(
            "UPDATE calendar_entries SET start=?, end=?, all_day=?, leaders=?, title=?, location=?, participants=?,"
            " preparer=?, sort_key=? WHERE id=?",
            (entry.start, entry.end, int(entry.all_day), json.dumps(entry.leaders, ensure_ascii=False), entry.title,
             entry.location, entry.participants, entry.preparer, _sort_key(entry.start, tz), entry_id))
    entry.uid = rows[0]["uid"]
    return before, entry


def remove(db: sqlite_utils.Database, entry_id: str) -> dict:
    with db.conn:
        row = list(db.query("SELECT * FROM calendar_entries WHERE id=?", [entry_id]))
        if not row:
            raise CalendarError(f"no calendar entry {entry_id!r}; see `congso calendar list`")
        db.conn.execute("DELETE FROM calendar_entries WHERE id=?", (entry_id,))
    return row[0]


def _row_entry(r: dict) -> Entry:
    return Entry(id=r["id"], start=r["start"], end=r["end"], all_day=bool(r["all_day"]), title=r["title"],
                 leaders=json.loads(r["leaders"] or "[]"), location=r["location"], participants=r["participants"],
                 preparer=r["preparer"])


def between(db: sqlite_utils.Database, first: date, last_excl: date, tz: str) -> list[Entry]:
    """Entries starting on a day in [first, last_excl), in time order (all-day first within a day)."""
    lo = _sort_key(first.isoformat(), tz)
    hi = _sort_key(last_excl.isoformat(), tz)
    rows = db.query("SELECT * FROM calendar_entries WHERE sort_key >= ? AND sort_key < ? ORDER BY sort_key, all_day DESC, id",
                    [lo, hi])
    return [_row_entry(r) for r in rows]


# -- iCalendar import -------------------------------------------------------------

# Vietnamese work calendars write the roles into the description:
# "Chủ trì: Chủ tịch UBND xã\nThành phần: ...\nChuẩn bị: Văn phòng".
_LABELS = {
    "leaders": ("chủ trì", "lãnh đạo", "lãnh đạo dự", "leader", "leaders"),
    "participants": ("thành phần", "thành phần tham dự", "tham dự", "participants"),
    "preparer": ("chuẩn bị", "chuẩn bị nội dung", "đơn vị chuẩn bị", "preparer"),
}
_LABEL_OF = {label: key for key, labels in _LABELS.items() for label in labels}


def _description_fields(text: str) -> dict[str, str]:
    found = {}
    for line in _nfc(text).splitlines():
        m = re.match(r"^\s*([^:]{2,30}):\s*(.+)$", line)
        if m and m.group(1).strip().casefold() in _LABEL_OF:
            found.setdefault(_LABEL_OF[m.group(1).strip().casefold()], m.group(2).strip())
    return found


def _cn(prop) -> str:
    """The display name of an ORGANIZER/ATTENDEE, not its e-mail address."""
    if prop is None:
        return ""
    name = prop.params.get("CN") if hasattr(prop, "params") else None
    return _nfc(name) if name else ""


def _moment(value, tz: str) -> tuple[str, bool]:
    if isinstance(value, datetime):
        value = value.replace(tzinfo=ZoneInfo(tz)) if value.tzinfo is None else value.astimezone(ZoneInfo(tz))
        return value.isoformat(timespec="seconds"), False
    return value.isoformat(), True


# Bounds on what one .ics file may make the gateway do (a file with
# RRULE:FREQ=SECONDLY and no end once ran for minutes and took 11 GB).
MAX_ICS_BYTES = 10 * 1024 * 1024
MAX_OCCURRENCES = 5000  # in the import window, all events together
MAX_ITERATIONS = 20000  # steps of one rule from its DTSTART to the window's end
MAX_DEPTH = 8  # VCALENDAR > VEVENT > VALARM is 3; VTIMEZONE > STANDARD 3
EARLIEST_YEAR = 1900
MAX_CPU_S = 10  # of the child process that reads and expands one file
MAX_MEMORY = 1024 * 1024 * 1024
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
# A leaders' work calendar repeats by day, week, month or year.
_FREQ_REFUSED = {"SECONDLY": "every second", "MINUTELY": "every minute", "HOURLY": "every hour"}


def _check_nesting(data: bytes, name: str) -> None:
    """Refuse components nested deeper than any calendar has, before the parser recurses into them."""
    depth = 0
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip().upper()
        if line.startswith(b"BEGIN:"):
            depth += 1
            if depth > MAX_DEPTH:
                raise CalendarError(f"{name}: line {number}: components nested {depth} deep (at most {MAX_DEPTH}); "
                                    "not a calendar export; nothing imported")
        elif line.startswith(b"END:"):
            depth = max(0, depth - 1)


def _naive(value) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) if value.tzinfo else value
    return datetime.combine(value, time(0))


def _check_recurrence(ev, n: int, first: date, last: date, budget: int, name: str) -> int:
    """How many occurrences event ``n`` has at most in [first, last); a clear error before any large expansion."""
    from dateutil import rrule as dateutil_rrule
    from icalendar.prop import vRecur

    what = f"{name}: event {n} ({_nfc(ev.get('SUMMARY')) or 'no title'})"
    rules = ev.get("RRULE")
    rules = rules if isinstance(rules, list) else ([rules] if rules is not None else [])
    rdates = ev.get("RDATE")
    rdates = rdates if isinstance(rdates, list) else ([rdates] if rdates is not None else [])
    count = sum(len(getattr(r, "dts", [])) for r in rdates) + 1
    if count > budget:
        raise CalendarError(f"{what}: {count} RDATE dates; at most {MAX_OCCURRENCES} occurrences; nothing imported")
    if not rules:
        return count
    try:
        start = _naive(ev.decoded("DTSTART"))
    except Exception as e:
        raise CalendarError(f"{what}: bad DTSTART ({e}); nothing imported") from None
    if start.year < EARLIEST_YEAR:
        raise CalendarError(f"{what}: starts in {start.year}; a repeating event must start after {EARLIEST_YEAR}")
    raw_start = ev.decoded("DTSTART")
    lo, hi = datetime.combine(first, time(0)), datetime.combine(last, time(0))
    for rule in rules:
        freq = str((rule.get("FREQ") or [""])[0]).upper()
        if freq in _FREQ_REFUSED:
            raise CalendarError(f"{what} repeats {_FREQ_REFUSED[freq]} (RRULE FREQ={freq}): a work calendar "
                                "takes daily, weekly, monthly or yearly repeats; nothing imported")
        months = [int(m) for m in rule.get("BYMONTH", [])]
        days = [int(d) for d in rule.get("BYMONTHDAY", [])]
        if months and days and all(abs(d) > max(_MONTH_DAYS.get(m, 31) for m in months) for d in days):
            raise CalendarError(f"{what}: no date matches its RRULE (day {days} of month {months}); nothing imported")
        bounded = vRecur({k: v for k, v in rule.items() if k.upper() not in ("UNTIL", "COUNT")})
        until = hi
        if rule.get("UNTIL"):
            until = min(until, _naive(rule["UNTIL"][0]))
        limit = int(rule["COUNT"][0]) if rule.get("COUNT") else None
        try:
            # Stepped without COUNT and up to the window's end at most, so a
            # rule no date satisfies (30 February) stops there too.
            steps = dateutil_rrule.rrulestr(bounded.to_ical().decode(), dtstart=start).replace(until=until)
            iterations = 0
            for when in steps:
                iterations += 1
                if limit is not None and iterations >= limit:
                    until = when  # the COUNT-th occurrence: the rule's real end
                    if when >= lo:
                        count += 1
                    break
                if iterations > MAX_ITERATIONS:
                    raise CalendarError(f"{what}: repeats more than {MAX_ITERATIONS} times from {start.date()} to "
                                        f"{until.date()}; give it a later DTSTART or an end; nothing imported")
                if when >= lo:
                    count += 1
                    if count > budget:
                        raise CalendarError(f"{what}: more than {MAX_OCCURRENCES} occurrences between {first} and "
                                            f"{last} (all events together); nothing imported")
        except CalendarError:
            raise
        except Exception as e:  # a rule dateutil cannot read: recurring-ical-events would fail the same way
            raise CalendarError(f"{what}: bad RRULE ({type(e).__name__}: {e}); nothing imported") from None
        # The expansion below then stops at the window's end (or the rule's
        # own end) whatever the rule says: UNTIL in DTSTART's own form.
        for key in [k for k in rule if k.upper() in ("UNTIL", "COUNT")]:
            del rule[key]
        if isinstance(raw_start, datetime):
            rule["UNTIL"] = [until.replace(tzinfo=ZoneInfo("UTC")) if raw_start.tzinfo else until]
        else:
            rule["UNTIL"] = [until.date()]
    return count


@dataclass
class IcsResult:
    entries: int = 0
    new: int = 0
    updated: int = 0
    removed: int = 0
    events: int = 0
    window: tuple[date, date] | None = None

    def summary(self) -> str:
        a, b = self.window
        return (f"{self.entries} entries from {self.events} events between {a} and {b}: "
                f"{self.new} new, {self.updated} updated, {self.removed} removed (gone from the file)")


def parse_ics(data: bytes, *, tz: str, today: date, leaders: list[str] = (), name: str = "file") -> tuple[list[Entry], set[str]]:
    """Entries of every event in the window around ``today``; raises CalendarError for a bad file.

    The checks above refuse what a hostile file is known to try, with a
    message saying what; the expansion itself runs in a child process with
    ``MAX_CPU_S`` of CPU and ``MAX_MEMORY`` of memory, because a rule that
    no date satisfies makes dateutil step day by day to the year 9999
    whatever its UNTIL, and no check can foresee every such rule.
    """
    request = json.dumps({"data": base64.b64encode(data).decode(), "tz": tz, "today": today.isoformat(),
                          "leaders": list(leaders), "name": name, "cpu_s": MAX_CPU_S, "memory": MAX_MEMORY})
    # A module of its own process (not multiprocessing, which would re-run
    # the caller's __main__): the CLI, the gateway or a web console alike.
    try:
        done = subprocess.run([sys.executable, "-m", "congso.gateway.work_calendar"], input=request.encode(),
                              capture_output=True, timeout=MAX_CPU_S * 3 + 30)
        outcome = json.loads(done.stdout) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        outcome, done = None, None
    if outcome is None:
        code = done.returncode if done is not None else "timeout"
        raise CalendarError(f"{name}: expanding its repeating events took more than {MAX_CPU_S} s of work or "
                            f"{MAX_MEMORY // (1024 * 1024)} MB (exit {code}); check its RRULEs; nothing imported")
    if "error" in outcome:
        raise CalendarError(outcome["error"])
    return [Entry(**e) for e in outcome["entries"]], set(outcome["uids"])


def _child_main() -> None:
    """``python -m congso.gateway.work_calendar``: one file in, its entries out, within its bounds."""
    import resource

    request = json.loads(sys.stdin.buffer.read())
    cpu_s, memory, name = int(request["cpu_s"]), int(request["memory"]), request["name"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    except (ValueError, OSError):
        pass  # a lower hard limit already set (a container): it bounds us anyway
    try:
        entries, uids = _parse_ics(base64.b64decode(request["data"]), tz=request["tz"],
                                   today=date.fromisoformat(request["today"]), leaders=request["leaders"], name=name)
        outcome = {"entries": [asdict(e) for e in entries], "uids": sorted(uids)}
    except CalendarError as e:
        outcome = {"error": str(e)}
    except MemoryError:
        outcome = {"error": f"{name}: expanding its events took more than {memory // (1024 * 1024)} MB; nothing imported"}
    except RecursionError:
        outcome = {"error": f"{name}: components nested too deep; nothing imported"}
    except Exception as e:  # the parser's own bug on a strange file: said, not a traceback
        outcome = {"error": f"{name}: cannot be read ({type(e).__name__}: {e}); nothing imported"}
    sys.stdout.write(json.dumps(outcome, ensure_ascii=False))


def _parse_ics(data: bytes, *, tz: str, today: date, leaders: list[str] = (), name: str = "file") -> tuple[list[Entry], set[str]]:
    import icalendar
    import recurring_ical_events

    if len(data) > MAX_ICS_BYTES:
        raise CalendarError(f"{name}: the file is {len(data) // (1024 * 1024)} MB; at most "
                            f"{MAX_ICS_BYTES // (1024 * 1024)} MB (export only the leaders' calendar)")
    _check_nesting(data, name)
    try:
        cal = icalendar.Calendar.from_ical(data)
    except RecursionError:
        raise CalendarError(f"{name}: components nested too deep; nothing imported") from None
    except Exception as e:  # icalendar raises ValueError, IndexError ... for garbage
        raise CalendarError(f"{name} is not a valid iCalendar file: {e}") from None
    if getattr(cal, "name", "") != "VCALENDAR":
        raise CalendarError(f"{name} is not an iCalendar file (no BEGIN:VCALENDAR)")
    events = list(cal.walk("VEVENT"))
    uids = {_nfc(ev.get("UID")) for ev in events}
    problems = []
    for n, ev in enumerate(events, start=1):
        if not ev.get("UID"):
            problems.append(f"event {n} ({_nfc(ev.get('SUMMARY')) or 'no title'}) has no UID")
        if not ev.get("DTSTART"):
            problems.append(f"event {n} ({_nfc(ev.get('SUMMARY')) or 'no title'}) has no DTSTART")
    if problems:
        raise CalendarError(f"{name}: nothing imported: " + "; ".join(problems))
    first, last = today - WINDOW_BACK, today + WINDOW_AHEAD
    budget = MAX_OCCURRENCES
    for n, ev in enumerate(events, start=1):
        budget -= _check_recurrence(ev, n, first, last, budget, name)
    try:
        occurrences = list(recurring_ical_events.of(cal).between(first, last))
    except Exception as e:
        raise CalendarError(f"{name}: cannot expand its events ({type(e).__name__}: {e}); nothing imported") from None
    if len(occurrences) > MAX_OCCURRENCES:
        raise CalendarError(f"{name}: {len(occurrences)} occurrences between {first} and {last}; at most "
                            f"{MAX_OCCURRENCES}; nothing imported")
    numbers: dict[str, int] = {}
    for n, ev in enumerate(events, start=1):
        numbers.setdefault(_nfc(ev.get("UID")), n)
    out = []
    for ev in occurrences:
        uid = _nfc(ev.get("UID"))
        start_v, all_day = _moment(ev.decoded("DTSTART"), tz)
        end_raw = ev.decoded("DTEND") if ev.get("DTEND") else None
        end_v = None
        if end_raw is not None:
            if all_day and not isinstance(end_raw, datetime):
                end_raw = end_raw - timedelta(days=1)  # iCalendar's all-day end is exclusive; ours is the last day
                end_v = end_raw.isoformat() if end_raw.isoformat() > start_v else None
            else:
                end_v, _ = _moment(end_raw, tz)
        # recurring-ical-events sets RECURRENCE-ID on each occurrence it makes.
        rid = ev.get("RECURRENCE-ID")
        rid_text = rid.to_ical().decode() if rid is not None and hasattr(rid, "to_ical") else start_v
        desc = _description_fields(ev.get("DESCRIPTION", ""))
        who = list(leaders) or [x.strip() for x in re.split(r"[;,]", desc.get("leaders", "")) if x.strip()]
        if not who and _cn(ev.get("ORGANIZER")):
            who = [_cn(ev.get("ORGANIZER"))]
        attendees = ev.get("ATTENDEE")
        attendees = attendees if isinstance(attendees, list) else ([attendees] if attendees else [])
        names = [_cn(a) for a in attendees if _cn(a)]
        participants = desc.get("participants") or (", ".join(names) if names else None)
        where = f"{name}: event {numbers.get(uid, '?')}: "
        out.append(Entry(
            id="ics-" + hashlib.sha1(f"{uid}|{rid_text}".encode()).hexdigest()[:16],
            start=start_v, end=end_v, all_day=all_day,
            title=_clean(ev.get("SUMMARY"), "title", where) or "(không có tiêu đề)",
            leaders=[x for x in (_clean(x, "leaders", where) for x in who) if x],
            location=_clean(ev.get("LOCATION"), "location", where),
            participants=_clean(participants, "participants", where),
            preparer=_clean(desc.get("preparer"), "preparer", where), uid=uid,
        ))
    return out, uids


def import_ics(db: sqlite_utils.Database, path: str | Path, *, tz: str, today: date, leaders: list[str] = ()) -> IcsResult:
    """Import an .ics file: all of it or nothing; re-importing updates in place."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CalendarError(f"{path}: no such file") from None
    entries, uids = parse_ics(data, tz=tz, today=today, leaders=[_nfc(x) for x in leaders], name=str(path))
    result = IcsResult(entries=len(entries), events=len(uids), window=(today - WINDOW_BACK, today + WINDOW_AHEAD))
    lo = _sort_key((today - WINDOW_BACK).isoformat(), tz)
    hi = _sort_key((today + WINDOW_AHEAD).isoformat(), tz)
    keep = {e.id for e in entries}
    with db.conn:
        for e in entries:
            exists = db.execute("SELECT 1 FROM calendar_entries WHERE id=?", (e.id,)).fetchone()
            _store(db, e, tz, f"ics:{path.name}", e.uid)
            if exists:
                result.updated += 1
            else:
                result.new += 1
        for uid in uids:
            for (eid,) in db.execute("SELECT id FROM calendar_entries WHERE uid=? AND sort_key >= ? AND sort_key < ?",
                                     (uid, lo, hi)).fetchall():
                if eid not in keep:
                    db.conn.execute("DELETE FROM calendar_entries WHERE id=?", (eid,))
                    result.removed += 1
    return result


# -- an import planned, shown, then applied (the console) ----------------------------

_COMPARED = ("start", "end", "all_day", "title", "leaders", "location", "participants", "preparer")


@dataclass
class IcsPlan:
    """What importing a file would change: entries to add, (old, new) pairs to change, entries to remove."""

    adds: list[Entry] = field(default_factory=list)
    changes: list[tuple[Entry, Entry]] = field(default_factory=list)
    removes: list[Entry] = field(default_factory=list)
    unchanged: int = 0
    events: int = 0
    window: tuple[date, date] | None = None

    @property
    def empty(self) -> bool:
        return not (self.adds or self.changes or self.removes)

    def digest(self) -> str:
        """A fingerprint of exactly this plan (and of the entries it replaces): applying checks it is unchanged."""
        h = hashlib.sha256()
        for kind, items in (("add", self.adds), ("remove", self.removes)):
            for e in items:
                h.update(json.dumps([kind, asdict(e)], ensure_ascii=False, sort_keys=True).encode())
        for old, new in self.changes:
            h.update(json.dumps(["change", asdict(old), asdict(new)], ensure_ascii=False, sort_keys=True).encode())
        return h.hexdigest()

    def summary(self) -> str:
        return (f"{len(self.adds)} new, {len(self.changes)} changed, {len(self.removes)} removed, "
                f"{self.unchanged} unchanged")


def changed_fields(old: Entry, new: Entry) -> list[str]:
    return [f for f in _COMPARED if getattr(old, f) != getattr(new, f)]


def plan_ics_import(db: sqlite_utils.Database, entries: list[Entry], uids: set[str], *, tz: str,
                    today: date, replace_imported: bool = False) -> IcsPlan:
    """What ``entries`` (``parse_ics`` of a file) would change, matched by UID; reads only.

    Same rule as ``import_ics``: an occurrence already stored (same UID and
    RECURRENCE-ID) is changed if any field differs, a new one added; an
    occurrence of one of the file's UIDs inside the window and gone from
    the file is removed. With ``replace_imported`` the file is the whole
    calendar: every imported entry (one with a UID) inside the window that
    the file no longer has is removed too. Entries typed by staff are never
    touched.
    """
    plan = IcsPlan(events=len(uids), window=(today - WINDOW_BACK, today + WINDOW_AHEAD))
    keep = {e.id for e in entries}
    for e in entries:
        old = get(db, e.id)
        if old is None:
            plan.adds.append(e)
        elif changed_fields(old, e):
            plan.changes.append((old, e))
        else:
            plan.unchanged += 1
    lo = _sort_key((today - WINDOW_BACK).isoformat(), tz)
    hi = _sort_key((today + WINDOW_AHEAD).isoformat(), tz)
    for uid in sorted(uids):
        for r in db.query("SELECT * FROM calendar_entries WHERE uid=? AND sort_key >= ? AND sort_key < ? ORDER BY sort_key",
                          [uid, lo, hi]):
            if r["id"] not in keep:
                gone = _row_entry(r)
                gone.uid = r["uid"]
                plan.removes.append(gone)
    if replace_imported:
        for r in db.query("SELECT * FROM calendar_entries WHERE uid IS NOT NULL AND sort_key >= ? AND sort_key < ?"
                          " ORDER BY sort_key", [lo, hi]):
            if r["id"] not in keep and r["uid"] not in uids:
                gone = _row_entry(r)
                gone.uid = r["uid"]
                plan.removes.append(gone)
    key = lambda e: _sort_key(e.start, tz)  # noqa: E731
    plan.adds.sort(key=key)
    plan.changes.sort(key=lambda pair: key(pair[1]))
    plan.removes.sort(key=key)
    return plan


def apply_ics_plan(db: sqlite_utils.Database, plan: IcsPlan, *, tz: str, source: str) -> None:
    """Apply exactly ``plan`` in one transaction (nothing else the file holds is written)."""
    with db.conn:
        for e in plan.adds:
            _store(db, e, tz, source, e.uid)
        for _, e in plan.changes:
            _store(db, e, tz, source, e.uid)
        for e in plan.removes:
            db.conn.execute("DELETE FROM calendar_entries WHERE id=?", (e.id,))


# -- published ------------------------------------------------------------------

def week_start(today: date) -> date:
    return today - timedelta(days=today.weekday())


def from_this_monday(db: sqlite_utils.Database, today: date, weeks: int, tz: str) -> tuple[date, list[Entry]]:
    """This week's Monday and the entries of ``weeks`` weeks from it (``congso calendar list``, the console)."""
    if not isinstance(weeks, int) or weeks < 1:
        raise CalendarError(f"weeks must be a whole number from 1, got {weeks!r}")
    monday = week_start(today)
    return monday, between(db, monday, monday + timedelta(weeks=weeks), tz)


def board(db: sqlite_utils.Database, now: datetime, tz: str) -> dict:
    monday = week_start(now.date())
    entries = [e.payload() for e in between(db, monday, monday + timedelta(days=14), tz)]
    base = {"week_start": monday.isoformat()}
    kept, omitted = fit_items(base, "entries", entries)
    payload = {**base, "entries": kept}
    if omitted:
        payload["omitted"] = omitted
    return payload


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict:
    return {"calendar": board(db, ctx.now, ctx.tz)}


DOMAIN = state.Domain("calendar", builders=(build,))


if __name__ == "__main__":
    _child_main()
