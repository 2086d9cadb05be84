"""Proof of play: was this slide shown, on which TV, how often and for how long.

Each TV reports every showing as a ``play`` event (docs/protocol.md
§3.16.2): ``ts`` when it started, ``seconds`` how long it stayed; ingest
stores each event once in ``play_events`` (its office date in
``local_date``). This module adds them up per office day, TV and item
(page, slide or urgent notice) for ``congso report plays``, the console's
``/reports/plays`` and their XLSX/CSV files.

The title shown is the one the office knows now: a slide's (or an urgent
notice's) current title while it still exists, else the last title a TV
reported for it in the period. Events whose time the gateway flagged as far
from their arrival (``time_flag``: a TV whose clock was wrong) are counted
like the others, under the day their own time says, and the report says how
many there were, so a head of office knows a day's figures may be off.

Every CSV field and XLSX cell goes through ``congso.vocab.text``: a title
that begins with ``=`` stays text, never a formula.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import IO
from zoneinfo import ZoneInfo

import sqlite_utils


ITEM_TYPE_VI = {"page": "Trang", "slide": "Thông báo", "urgent": "Thông báo khẩn"}
# A TV page's name ([signage] pages) as the clerk knows the page, for the report's title column.
PAGE_VI = {"dossiers": "Tình hình giải quyết hồ sơ", "ready": "Hồ sơ đã có kết quả", "calendar": "Lịch công tác",
           "announcements": "Thông báo", "slides": "Ảnh và video", "ratings": "Mức độ hài lòng",
           "kpi": "Chỉ tiêu tháng", "idle": "Tên cơ quan và đồng hồ (không có gì trong lịch chiếu)"}
MAX_DAYS = 366

COLUMNS_EN = ["day", "node", "item_type", "item_id", "title", "showings", "seconds", "first_start", "last_start",
              "time_flagged"]
TERMINAL_COLUMNS = ["day", "tv", "type", "id", "title", "showings", "seconds", "first", "last", "clock off"]
COLUMNS_VI = ["Ngày", "Màn hình", "Loại", "Mã nội dung", "Tiêu đề", "Lần chiếu", "Tổng thời gian",
              "Tổng số giây", "Bắt đầu lần đầu", "Bắt đầu lần cuối", "Lần chiếu giờ máy sai"]


class PlaysError(ValueError):
    """The report cannot be made as asked (the message names the option)."""


@dataclass
class Row:
    day: str            # office date, YYYY-MM-DD
    node: str
    item_type: str      # page | slide | urgent
    item_id: str
    title: str
    showings: int
    seconds: float
    first_start: str    # ISO, office time
    last_start: str
    time_flagged: int = 0  # of the showings, how many came with a time the gateway flagged

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in COLUMNS_EN}


@dataclass
class Report:
    day_from: str
    day_to: str
    node: str | None
    item: str | None
    rows: list[Row] = field(default_factory=list)

    @property
    def showings(self) -> int:
        return sum(r.showings for r in self.rows)

    @property
    def seconds(self) -> float:
        return round(sum(r.seconds for r in self.rows), 1)

    @property
    def time_flagged(self) -> int:
        return sum(r.time_flagged for r in self.rows)

    def as_json(self) -> dict:
        return {"from": self.day_from, "to": self.day_to, "node": self.node, "item": self.item,
                "rows": [r.as_dict() for r in self.rows],
                "totals": {"showings": self.showings, "seconds": self.seconds, "time_flagged": self.time_flagged}}

    def table(self, lang: str = "vi") -> tuple[list[str], list[list]]:
        """(headers, rows) with the total last: Vietnamese for the office's files, English for the terminal."""
        vi = lang == "vi"
        body = []
        for r in self.rows:
            if vi:
                body.append([_dmy(r.day), r.node, ITEM_TYPE_VI.get(r.item_type, r.item_type), r.item_id, r.title,
                             r.showings, duration_vi(r.seconds), r.seconds, _hms(r.first_start),
                             _hms(r.last_start), r.time_flagged])
            else:
                body.append([r.day, r.node, r.item_type, r.item_id, r.title, r.showings, r.seconds,
                             _hms(r.first_start), _hms(r.last_start), r.time_flagged])
        if vi:
            body.append(["Tổng cộng", "", "", "", "", self.showings, duration_vi(self.seconds), self.seconds, "", "",
                         self.time_flagged])
            return list(COLUMNS_VI), body
        body.append(["total", "", "", "", "", self.showings, self.seconds, "", "", self.time_flagged])
        return list(TERMINAL_COLUMNS), body

    def titles_vi(self, unit: str = "") -> list[str]:
        """The workbook's title lines: what, whose, when, and the caveat about clocks when it applies."""
        lines = ["BÁO CÁO NỘI DUNG ĐÃ CHIẾU TRÊN MÀN HÌNH"]
        if unit:
            lines.append(f"Đơn vị: {unit}")
        if self.day_from == self.day_to:
            lines.append(f"Ngày {_dmy(self.day_from)}")
        else:
            lines.append(f"Từ ngày {_dmy(self.day_from)} đến ngày {_dmy(self.day_to)}")
        if self.node:
            lines.append(f"Màn hình: {self.node}")
        if self.item:
            lines.append(f"Nội dung: {self.item}")
        if self.time_flagged:
            lines.append(f"{self.time_flagged} lần chiếu do màn hình có đồng hồ sai gửi về: vẫn được tính, "
                         "ngày ghi nhận có thể không đúng")
        return lines


def duration_vi(seconds: float) -> str:
    """12.5 -> "0:00:13", 3725 -> "1:02:05": hours:minutes:seconds, as a clerk reads a duration."""
    total = int(round(seconds or 0))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _dmy(day: str) -> str:
    return date.fromisoformat(day).strftime("%d/%m/%Y")


def _hms(iso: str) -> str:
    return iso[11:19] if iso else ""


def _day(value, option: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except (TypeError, ValueError):
        raise PlaysError(f"{option} must be a date like 2026-11-24, got {value!r}") from None


def _instant(ts: str) -> datetime:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:  # stored events passed the protocol's check; this is for a hand-edited row
        return datetime.min.replace(tzinfo=timezone.utc)


def current_titles(db: sqlite_utils.Database) -> dict[tuple[str, str], str]:
    """(item_type, item_id) -> the title the office gives it now: a page's, a slide's and an urgent notice's that still exists."""
    out: dict[tuple[str, str], str] = {("page", name): title for name, title in PAGE_VI.items()}
    for table, kind in (("announcements", "slide"), ("urgent", "urgent")):
        if table in db.table_names():
            out.update({(kind, r[0]): r[1] for r in db.execute(f"SELECT id, title FROM {table}")})
    return out


def report(db: sqlite_utils.Database, day_from, day_to, node: str | None = None, item: str | None = None,
           tz: str | None = None) -> Report:
    """Showings per office day, TV and item from ``day_from`` to ``day_to`` (inclusive).

    ``node``: one TV only; ``item``: one page, slide or notice id only; ``tz``:
    the office's time zone for the first and last start (UTC when None).
    """
    first, last = _day(day_from, "--from"), _day(day_to, "--to")
    if first > last:
        raise PlaysError(f"--from {first} is after --to {last}")
    if (date.fromisoformat(last) - date.fromisoformat(first)).days >= MAX_DAYS:
        raise PlaysError(f"at most {MAX_DAYS} days in one report; ask for a shorter period")
    node = (node or "").strip() or None
    item = (item or "").strip() or None
    where, params = ["local_date BETWEEN ? AND ?"], [first, last]
    if node:
        where.append("node_id = ?")
        params.append(node)
    if item:
        where.append("item_id = ?")
        params.append(item)
    sql_where = " AND ".join(where)
    # MIN/MAX on the text of ts compare instants only within one offset (a TV
    # keeps its own): grouped by offset too, the groups are merged below.
    # (Normalising every ts with strftime costs twice the whole query.)
    grouped = db.execute(
        "SELECT local_date, node_id, item_type, item_id, COUNT(*), SUM(seconds), MIN(ts), MAX(ts), "
        "SUM(time_flag IS NOT NULL), CASE WHEN substr(ts, -1) IN ('Z', 'z') THEN 'Z' ELSE substr(ts, -6) END AS off "
        f"FROM play_events WHERE {sql_where} GROUP BY local_date, node_id, item_type, item_id, off", params).fetchall()
    zone = ZoneInfo(tz) if tz else timezone.utc
    merged: dict[tuple, list] = {}
    for day, n, kind, ident, count, total, lo, hi, flagged, _off in grouped:
        lo_t, hi_t = _instant(lo), _instant(hi)
        entry = merged.get((day, n, kind, ident))
        if entry is None:
            merged[(day, n, kind, ident)] = [count, total or 0.0, lo_t, hi_t, int(flagged or 0)]
            continue
        entry[0] += count
        entry[1] += total or 0.0
        entry[2] = min(entry[2], lo_t)
        entry[3] = max(entry[3], hi_t)
        entry[4] += int(flagged or 0)
    titles = current_titles(db)
    for kind, ident in {(k[2], k[3]) for k in merged} - set(titles):
        # The last title a TV gave it in the period (the newest day first, by the index on the day).
        match = f"{sql_where} AND item_type = ? AND item_id = ? AND title IS NOT NULL"
        last_day = db.execute(f"SELECT local_date FROM play_events WHERE {match} ORDER BY local_date DESC LIMIT 1",
                              [*params, kind, ident]).fetchone()
        row = db.execute(f"SELECT title FROM play_events WHERE {match} AND local_date = ? ORDER BY ts DESC LIMIT 1",
                         [*params, kind, ident, last_day[0]]).fetchone() if last_day else None
        titles[(kind, ident)] = row[0] if row else ""
    rows = [Row(day, n, kind, ident, titles.get((kind, ident)) or "", e[0], round(e[1], 1),
                e[2].astimezone(zone).isoformat(timespec="seconds"), e[3].astimezone(zone).isoformat(timespec="seconds"),
                e[4])
            for (day, n, kind, ident), e in sorted(merged.items())]
    return Report(first, last, node, item, rows)


def shown(db: sqlite_utils.Database, item_id: str, day, tz: str | None = None) -> dict:
    """"Was this shown on ``day``?": per TV, how many times and for how long, and the day's totals."""
    rep = report(db, day, day, item=item_id, tz=tz)
    nodes = {r.node: {"showings": r.showings, "seconds": r.seconds, "first_start": r.first_start,
                      "last_start": r.last_start, "time_flagged": r.time_flagged} for r in rep.rows}
    title = next((r.title for r in rep.rows if r.title), None)
    if title is None:
        title = next((t for (_kind, ident), t in current_titles(db).items() if ident == item_id), None)
    return {"item_id": item_id, "day": rep.day_from, "title": title, "shown": bool(rep.rows),
            "showings": rep.showings, "seconds": rep.seconds, "nodes": nodes}


def tv_nodes(db: sqlite_utils.Database) -> list[str]:
    """The TVs the gateway knows (for the console's filter)."""
    known = {r[0] for r in db.execute("SELECT node_id FROM nodes WHERE kind = 'signage'")}
    known.update(r[0] for r in db.execute("SELECT DISTINCT node_id FROM play_events"))
    return sorted(known)


# -- files -------------------------------------------------------------------------------
def write_csv(rep: Report, out: IO[str]) -> int:
    """Vietnamese headers and one row per day, TV and item, the total last; returns the number of rows."""
    from .reports import write_csv as write_table

    return write_table(out, *rep.table("vi"))


def write_xlsx(rep: Report, out, unit: str = "") -> int:
    """The report as a workbook (a path or a binary file): title lines, bold header, the rows, the total."""
    from .reports import write_table_xlsx

    headers, body = rep.table("vi")
    sheet = f"{_dmy(rep.day_from).replace('/', '-')}" if rep.day_from == rep.day_to else "Lần chiếu"
    return write_table_xlsx(out, headers, body, sheet=sheet, titles=rep.titles_vi(unit))


def file_bytes(rep: Report, fmt: str, unit: str = "") -> bytes:
    """The report as a download: "xlsx", or "csv" (UTF-8 with a BOM, for Excel)."""
    if fmt == "csv":
        buf = io.StringIO()
        write_csv(rep, buf)
        return buf.getvalue().encode("utf-8-sig")
    if fmt != "xlsx":
        raise PlaysError(f"format must be xlsx or csv, got {fmt!r}")
    buf = io.BytesIO()
    write_xlsx(rep, buf, unit)
    return buf.getvalue()

