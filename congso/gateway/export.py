"""Export stored events, one per line (JSON Lines) or row (CSV).

Used by ``congso events export`` and by anyone who wants the raw record:
every event the gateway ever stored, with its ``event_id``, the node's own
``ts`` and ``seq``, and whether the node's clock was synchronised.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from typing import IO, Iterator

import sqlite_utils

from ..vocab.text import csv_field, write_cell

KINDS = ("attendance", "rating")
TABLES = {"attendance": "attendance_events", "rating": "rating_events"}
COMMON = ["kind", "event_id", "node_id", "seq", "ts", "clock_synced", "received_at"]
SPECIFIC = {
    "attendance": ["method", "credential", "staff_id", "match_score"],
    "rating": ["desk_id", "level", "reasons", "session_id", "officer_id", "dossier_code"],
}


def parse_day(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{option} must be a date like 2026-11-23, got {value!r}") from None


def _days_clause(day_from: str | None, day_to: str | None) -> tuple[str, list[str]]:
    """The WHERE clause on local_date (indexed) for a range of office days, inclusive."""
    where, params = [], []
    if day_from:
        where.append("local_date >= ?")
        params.append(day_from)
    if day_to:
        where.append("local_date <= ?")
        params.append(day_to)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


def iter_events(
    db: sqlite_utils.Database, kind: str | None = None, day_from: str | None = None, day_to: str | None = None
) -> Iterator[dict]:
    """Stored events in time order; days are the office's local dates, inclusive."""
    kinds = [kind] if kind else list(KINDS)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown event kind {k!r}; use one of {', '.join(KINDS)}")
    clause, params = _days_clause(day_from, day_to)
    for k in kinds:
        cols = ["event_id", "node_id", "seq", "ts", "clock_synced", "received_at", *SPECIFIC[k]]
        sql = f"SELECT {', '.join(cols)} FROM {TABLES[k]}{clause} ORDER BY local_date, ts, node_id, seq"
        for row in db.execute(sql, params):
            event = {"kind": k, **dict(zip(cols, row))}
            event["clock_synced"] = bool(event["clock_synced"])
            if k == "rating":
                event["reasons"] = json.loads(event["reasons"] or "[]")
            yield event


def write_jsonl(events: Iterator[dict], out: IO[str]) -> int:
    n = 0
    for event in events:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        n += 1
    return n


def write_csv(events: Iterator[dict], out: IO[str], kind: str | None = None) -> int:
    columns = COMMON + (SPECIFIC[kind] if kind else SPECIFIC["attendance"] + SPECIFIC["rating"])
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    n = 0
    for event in events:
        row = dict(event)
        row["clock_synced"] = "true" if row["clock_synced"] else "false"
        if "reasons" in row:
            row["reasons"] = ";".join(row["reasons"])
        # A desk id or credential that begins with "=" stays text in a spreadsheet.
        writer.writerow({k: csv_field(v) for k, v in row.items()})
        n += 1
    return n


# A workbook holds at most this many events: beyond it, the CSV (streams, no limit) is the way.
XLSX_MAX_EVENTS = 30_000


def count_events(db: sqlite_utils.Database, kind: str | None = None, day_from: str | None = None,
                 day_to: str | None = None) -> int:
    """How many events ``iter_events`` would give (indexed on local_date)."""
    kinds = [kind] if kind else list(KINDS)
    clause, params = _days_clause(day_from, day_to)
    total = 0
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown event kind {k!r}; use one of {', '.join(KINDS)}")
        total += db.execute(f"SELECT COUNT(*) FROM {TABLES[k]}{clause}", params).fetchone()[0]
    return total


def write_xlsx(events: Iterator[dict], out, kind: str | None = None) -> int:
    """The events as a workbook (``out``: a path or a binary file), one row each; returns how many.

    Every cell through ``write_cell``: a credential or desk id that begins
    with "=" stays text, a control character cannot break the workbook.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    columns = COMMON + (SPECIFIC[kind] if kind else SPECIFIC["attendance"] + SPECIFIC["rating"])
    wb = Workbook()
    ws = wb.active
    ws.title = {"attendance": "Chấm công", "rating": "Đánh giá"}.get(kind or "", "Sự kiện")
    for c, name in enumerate(columns, start=1):
        write_cell(ws, 1, c, name).font = Font(bold=True)
    n = 0
    for r, event in enumerate(events, start=2):
        row = dict(event)
        if "reasons" in row:
            row["reasons"] = ";".join(row["reasons"])
        for c, name in enumerate(columns, start=1):
            write_cell(ws, r, c, row.get(name))
        n += 1
    ws.freeze_panes = "A2"
    wb.save(out)
    return n


def export_bytes(db: sqlite_utils.Database, fmt: str, kind: str | None = None, day_from: str | None = None,
                 day_to: str | None = None) -> tuple[bytes, int]:
    """The events as a download: (content, how many); ``fmt`` csv (UTF-8 with a BOM), xlsx or jsonl."""
    import io

    if fmt not in ("jsonl", "csv", "xlsx"):
        raise ValueError(f"format must be csv, xlsx or jsonl, got {fmt!r}")
    if fmt == "xlsx":
        n = count_events(db, kind, day_from, day_to)
        if n > XLSX_MAX_EVENTS:
            raise ValueError(f"{n} events are too many for one workbook (at most {XLSX_MAX_EVENTS}): "
                             "choose fewer days or download the CSV")
        buf = io.BytesIO()
        n = write_xlsx(iter_events(db, kind, day_from, day_to), buf, kind)
        return buf.getvalue(), n
    text = io.StringIO()
    rows = iter_events(db, kind, day_from, day_to)
    n = write_jsonl(rows, text) if fmt == "jsonl" else write_csv(rows, text, kind)
    return text.getvalue().encode("utf-8-sig" if fmt == "csv" else "utf-8"), n


def export(db: sqlite_utils.Database, path: str, fmt: str, kind: str | None = None,
           day_from: str | None = None, day_to: str | None = None) -> int:
    """Write the events to ``path`` ('-': standard output) as ``fmt`` (jsonl or csv); return how many."""
    import sys

    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"format must be jsonl or csv, got {fmt!r}")
    rows = iter_events(db, kind, day_from, day_to)
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")
    try:
        return write_jsonl(rows, out) if fmt == "jsonl" else write_csv(rows, out, kind)
    finally:
        if out is not sys.stdout:
            out.close()
