"""Urgent notices: one message drawn over every page of the hall's TVs.

A fire drill, the power going off at 15:00, the office closing early: a
title, a body, how many minutes it stays (1 to 1440) and, optionally, which
TVs (node ids; none: every TV). The builder publishes the retained
``state/urgent`` with the items still valid; the publisher rebuilds every
``state.REFRESH_S`` (30 s), so an expired notice leaves the payload within
that, and the TV itself stops drawing it the moment ``until`` passes by its
own clock (it may be offline). ``until`` is RFC 3339 in the office's zone.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import sqlite_utils

from ..protocol import clock, topics
from ..vocab import text as vocab_text
from . import state

MAX_TITLE = 120
MAX_BODY = 1000
MAX_MINUTES = 1440
MAX_NODES = 50


class UrgentError(ValueError):
    pass


def _nodes(nodes) -> list[str] | None:
    if nodes is None:
        return None
    if isinstance(nodes, str):
        nodes = nodes.split(",")
    out: list[str] = []
    for n in nodes:
        n = str(n).strip().lower()
        if not n:
            continue
        if not topics.NODE_ID_RE.match(n):
            raise UrgentError(f"--nodes: {n!r} is not a node id (lower-case letters, digits and '-', like tv-1)")
        if n not in out:
            out.append(n)
    if len(out) > MAX_NODES:
        raise UrgentError(f"--nodes lists {len(out)} TVs; at most {MAX_NODES} (leave it out for every TV)")
    return out or None


def add(db: sqlite_utils.Database, title: str, body: str, minutes, nodes=None, *, tz: str,
        now: datetime | None = None) -> dict:
    """Store one urgent notice, valid ``minutes`` from ``now``; returns it as the TV receives it."""
    try:
        title = vocab_text.clean(title, "title") or ""
        body = vocab_text.clean(body, "body", multiline=True) or ""
    except vocab_text.TextError as e:
        raise UrgentError(str(e)) from None
    if not title:
        raise UrgentError("the title is empty")
    if len(title) > MAX_TITLE:
        raise UrgentError(f"the title is {len(title)} characters; at most {MAX_TITLE} fit on a TV")
    if len(body) > MAX_BODY:
        raise UrgentError(f"the body is {len(body)} characters; at most {MAX_BODY}")
    try:
        minutes_i = int(str(minutes).strip())
    except (TypeError, ValueError):
        raise UrgentError(f"--minutes must be a whole number of minutes, got {minutes!r}") from None
    if not 1 <= minutes_i <= MAX_MINUTES:
        raise UrgentError(f"--minutes must be 1 to {MAX_MINUTES} (a day), got {minutes_i}")
    node_list = _nodes(nodes)
    if node_list:
        kinds = dict(db.execute(
            f"SELECT node_id, kind FROM nodes WHERE node_id IN ({','.join('?' * len(node_list))})", node_list).fetchall())
        wrong = [n for n in node_list if kinds.get(n) not in (None, "signage")]
        if wrong:
            raise UrgentError(f"--nodes: {', '.join(wrong)} is not a TV (kind {kinds[wrong[0]]}); see `congso nodes`")
    now = now or clock.now(tz)
    until = (now + timedelta(minutes=minutes_i)).replace(microsecond=0)
    item = {"id": "u-" + uuid.uuid4().hex[:8], "title": title, "body": body,
            "until": until.isoformat(timespec="seconds"), "nodes": node_list}
    with db.conn:
        db.conn.execute("INSERT INTO urgent(id, title, body, until, nodes, created_at) VALUES (?,?,?,?,?,?)",
                        (item["id"], title, body, item["until"], json.dumps(node_list) if node_list else None,
                         now.isoformat(timespec="seconds")))
    return item


def _item(row: dict) -> dict:
    return {"id": row["id"], "title": row["title"], "body": row["body"], "until": row["until"],
            "nodes": json.loads(row["nodes"]) if row["nodes"] else None}


def clear(db: sqlite_utils.Database, item_id: str | None = None) -> list[dict]:
    """Withdraw one notice (``item_id``) or every one; returns those removed."""
    with db.conn:
        if item_id:
            rows = list(db.query("SELECT * FROM urgent WHERE id=?", [item_id]))
            if not rows:
                raise UrgentError(f"no urgent notice {item_id!r}")
            db.conn.execute("DELETE FROM urgent WHERE id=?", (item_id,))
        else:
            rows = list(db.query("SELECT * FROM urgent"))
            db.conn.execute("DELETE FROM urgent")
    return [_item(r) for r in rows]


def current(db: sqlite_utils.Database, now: datetime) -> list[dict]:
    """The notices still valid at ``now``, the latest first (ended ones stay in the table, unpublished)."""
    rows = db.query("SELECT * FROM urgent WHERE until > ? ORDER BY created_at DESC, id LIMIT 20",
                    [(now - timedelta(days=2)).isoformat(timespec="seconds")])
    return [_item(r) for r in rows if datetime.fromisoformat(r["until"]) > now]


def build(db: sqlite_utils.Database, ctx: state.Context) -> dict:
    return {"urgent": {"items": current(db, ctx.now)}}


DOMAIN = state.Domain("urgent", builders=(build,))
