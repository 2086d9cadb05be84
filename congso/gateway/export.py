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

from ..vocab.text import csv_field

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


def iter_events(
    db: sqlite_utils.Database, kind: str | None = None, day_from: str | None = None, day_to: str | None = None
) -> Iterator[dict]:
    """Stored events in time order; days are the office's local dates, inclusive."""
    kinds = [kind] if kind else list(KINDS)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown event kind {k!r}; use one of {', '.join(KINDS)}")
    where, params = [], []
    if day_from:
        where.append("local_date >= ?")
        params.append(day_from)
    if day_to:
        where.append("local_date <= ?")
        params.append(day_to)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
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
