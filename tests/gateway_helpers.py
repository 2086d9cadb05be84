"""Helpers for the gateway fault tests: read the registry as a technician does, damage files for real."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

from conftest import run_congso


def nodes_json(env: dict) -> dict[str, dict]:
    """`congso nodes --json`, by node id."""
    out = run_congso("nodes", "--json", **env)
    assert out.returncode == 0, out.stderr
    return {r["node_id"]: r for r in map(json.loads, out.stdout.splitlines()) if r}


def logged_sum(text: str, pattern: str) -> int:
    """The sum of the first number of every log line matching ``pattern`` (a regex with one group)."""
    return sum(int(m.group(1)) for m in re.finditer(pattern, text))


def damage_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage: the file opens, reading the table fails.

    The database must be closed (no write-ahead log left), as after a clean stop.
    """
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    assert root > 1 and pages > root, (root, pages)
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(os.urandom(page_size))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def files_mb(db: Path) -> float:
    """The database with its write-ahead log and shared memory file."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file()) / 2**20
