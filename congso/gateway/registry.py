"""The node registry seen by a technician: who is online, and what is wrong.

Ingest keeps one row per node in ``nodes`` (status, last health, devices).
This module reads it for ``congso nodes`` and raises *alerts*: a node that
went offline (its last will or a clean stop), a node gone silent (no
message for three heartbeats although its status says online, e.g. a
frozen program or a broker that has not noticed yet), a device that is
not ``ok``, and two devices that use the same node id (``ingest`` keeps the
evidence on the node's row: a ``seq`` that came with two events, an uptime
that keeps going back). Online, silent and offline are decided by one rule,
``protocol.liveness``, from each node's own heartbeat interval. An alert is logged once when it starts and once when it clears,
and kept on the node's row (``alert``, ``alert_since``) for ``congso nodes``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from ..protocol import liveness, messages
from . import state

log = logging.getLogger(__name__)

SILENT_AFTER_S = liveness.silent_after_s(None)  # a node that does not say its interval
# How long the evidence of two devices with one id keeps the alert up.
DUPLICATE_ALERT_S = 900.0


@dataclass
class NodeView:
    node_id: str
    kind: str | None
    online: bool
    liveness: str  # "online", "silent" or "offline" (protocol.liveness)
    interval_s: float | None  # the node's own heartbeat interval, from its health
    state: str | None
    last_seen: str | None
    last_seen_s: float | None  # seconds ago
    version: str | None
    outbox: int | None
    clock_synced: bool | None
    devices: dict
    last_frame_age_s: float | None
    rejected: int
    alert: str | None
    alert_since: str | None


def _age(then: str | None, now: datetime) -> float | None:
    if not then:
        return None
    try:
        return max(0.0, (now - messages.parse_ts(then)).total_seconds())
    except ValueError:
        return None


def _silent_after(settings) -> float:
    """Kept for callers of 0.1.0: each node is now judged by its own interval (``liveness``)."""
    return SILENT_AFTER_S


def node_liveness(row: dict, now: datetime) -> str:
    """The one rule (``protocol.liveness``) applied to a registry row."""
    return liveness.judge(row.get("state"), _age(row.get("last_seen"), now), row.get("interval_s"))


def current_alert(row: dict, now: datetime, silent_after_s: float | None = None) -> str | None:
    """The problem with this node right now, in a few words, or None."""
    problems = []
    duplicate_age = _age(row.get("duplicate_at"), now)
    if duplicate_age is not None and duplicate_age <= DUPLICATE_ALERT_S:
        problems.append(f"two devices use the id {row['node_id']}")
    if row.get("state") == "offline":
        problems.append("offline")
    elif node_liveness(row, now) == liveness.SILENT:
        problems.append(f"silent for {_age(row.get('last_seen'), now):.0f} s")
    devices = json.loads(row.get("devices") or "{}")
    bad = [f"{name} {status}" for name, status in sorted(devices.items()) if status != "ok"]
    if bad and row.get("state") != "offline":
        problems.append("device " + ", ".join(bad))
    return "; ".join(problems) or None


def _view(row: dict, now: datetime) -> NodeView:
    health = json.loads(row.get("last_health") or "{}")
    alive = node_liveness(row, now)
    clock = row.get("clock_synced")
    return NodeView(
        node_id=row["node_id"],
        kind=row.get("kind"),
        online=alive == liveness.ONLINE,
        liveness=alive,
        interval_s=row.get("interval_s"),
        state=row.get("state"),
        last_seen=row.get("last_seen"),
        last_seen_s=_age(row.get("last_seen"), now),
        version=row.get("version"),
        outbox=row.get("outbox"),
        clock_synced=None if clock is None else bool(clock),
        devices=json.loads(row.get("devices") or "{}"),
        last_frame_age_s=health.get("last_frame_age_s"),
        rejected=row.get("rejected") or 0,
        alert=row.get("alert"),
        alert_since=row.get("alert_since"),
    )


def list_nodes(db: sqlite_utils.Database, now: datetime, silent_after_s: float | None = None) -> list[NodeView]:
    """Every node the registry knows; ``silent_after_s`` is ignored (each node's own interval decides)."""
    return [_view(row, now) for row in db.query("SELECT * FROM nodes WHERE kind IS NOT NULL ORDER BY kind, node_id")]


def get_node(db: sqlite_utils.Database, node_id: str, now: datetime) -> NodeView | None:
    """One node of the registry (the console asks before it sends a command), or None if unknown."""
    rows = list(db.query("SELECT * FROM nodes WHERE node_id=? AND kind IS NOT NULL", [node_id]))
    return _view(rows[0], now) if rows else None


def problems(row: dict, now: datetime) -> list[tuple[str, object]]:
    """What ``current_alert`` says, as data a page can word in its own language.

    A list of (what, detail): ("duplicate", None), ("offline", None),
    ("silent", seconds), ("device", (name, status)). Empty: nothing wrong.
    """
    out: list[tuple[str, object]] = []
    duplicate_age = _age(row.get("duplicate_at"), now)
    if duplicate_age is not None and duplicate_age <= DUPLICATE_ALERT_S:
        out.append(("duplicate", None))
    if row.get("state") == "offline":
        out.append(("offline", None))
    elif node_liveness(row, now) == liveness.SILENT:
        out.append(("silent", _age(row.get("last_seen"), now)))
    if row.get("state") != "offline":
        devices = json.loads(row.get("devices") or "{}")
        out += [("device", (name, status)) for name, status in sorted(devices.items()) if status != "ok"]
    return out


def node_problems(db: sqlite_utils.Database, now: datetime) -> dict[str, list[tuple[str, object]]]:
    """``problems`` of every node that has one right now, by node id (the console's dashboard)."""
    out = {}
    for row in db.query("SELECT node_id, state, last_seen, devices, interval_s, duplicate_at FROM nodes "
                        "WHERE kind IS NOT NULL ORDER BY kind, node_id"):
        found = problems(row, now)
        if found:
            out[row["node_id"]] = found
    return out


def raise_alerts(db: sqlite_utils.Database, ctx: state.Context) -> None:
    """Log each alert when it starts and when it clears; keep it on the node's row."""
    for row in db.query("SELECT node_id, state, last_seen, devices, alert, interval_s, duplicate_at, duplicate_evidence "
                        "FROM nodes WHERE kind IS NOT NULL"):
        alert = current_alert(row, ctx.now)
        if alert == row.get("alert"):
            continue
        if alert:
            log.warning("ALERT node %s: %s", row["node_id"], alert)
        else:
            log.warning("RECOVERED node %s (was: %s)", row["node_id"], row.get("alert"))
        db.conn.execute(
            "UPDATE nodes SET alert=?, alert_since=? WHERE node_id=?",
            (alert, ctx.now.isoformat(timespec="seconds") if alert else None, row["node_id"]),
        )


DOMAIN = state.Domain("nodes", maintenance=(raise_alerts,))


def forget(db: sqlite_utils.Database, node_id: str) -> bool:
    """Remove a node from the registry (retired, or given another role); its events stay. False if unknown.

    The node's kind is pinned at its first status (ingest); after this, its
    next status registers it afresh.
    """
    with db.conn:
        return db.conn.execute("DELETE FROM nodes WHERE node_id=?", (node_id,)).rowcount == 1
